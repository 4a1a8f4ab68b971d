//! #11 Single-flight periodic token refresh (seed 000, "Token Refresh + Celery").
//!
//! K scheduler instances each run a beat that ticks. Time is cut into periods of
//! [`Policy::period`], aligned on the Unix epoch, and per token per period exactly one refresh
//! happens: the tick that takes the period's lease (`SET refresh:{token}:{period} NX PX`) calls
//! the upstream and stores the new credential; every other tick of that period finds the lease
//! taken and does nothing. The credential is written by compare-and-set from the record read
//! before the call, so a winner that stalled past its period cannot overwrite a newer
//! credential with an older one. A refresh the upstream refuses releases the lease, so a later
//! tick of the same period retries.
//!
//! A token refreshed in period p stays valid at least to the end of period p+1 because its
//! lifetime is at least two periods ([`Policy::new`] refuses less): as long as some instance
//! ticks in every period, no upstream call goes out with an expired token.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, Millis, millis};
use crate::store::{Store, StoreError, StoreResult};

pub const COMPONENT: &str = "token-refresh";

/// How often tokens are refreshed, and how long the upstream's access tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    period: Duration,
    lifetime: Duration,
}

/// A refresh schedule that cannot keep tokens fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPolicy {
    #[error("refresh period must be at least 1 ms")]
    ZeroPeriod,
    #[error(
        "token lifetime {} ms is shorter than two refresh periods of {} ms; a token refreshed early \
         in one period would expire before the next period's refresh; shorten the period",
        lifetime.as_millis(),
        period.as_millis()
    )]
    LifetimeTooShort { period: Duration, lifetime: Duration },
}

impl Policy {
    pub fn new(period: Duration, lifetime: Duration) -> Result<Self, InvalidPolicy> {
        if millis(period) == 0 {
            return Err(InvalidPolicy::ZeroPeriod);
        }
        if period.checked_mul(2).is_none_or(|two| lifetime < two) {
            return Err(InvalidPolicy::LifetimeTooShort { period, lifetime });
        }
        Ok(Self { period, lifetime })
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The index of the period `now` falls in.
    pub fn period_of(&self, now: Millis) -> u64 {
        now / millis(self.period)
    }
}

/// The seed's schedule.
pub mod seed {
    use super::Policy;
    use std::time::Duration;

    /// The upstream's access tokens live an hour (OAuth `expires_in: 3600`); refreshed every
    /// half hour, the longest period that lifetime allows.
    pub const POLICY: Policy =
        Policy { period: Duration::from_secs(30 * 60), lifetime: Duration::from_secs(60 * 60) };
}

/// What the store holds per token. `{:?}` shows the expiry, not the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: Millis,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_token", &"(not shown)")
            .field("refresh_token", &"(not shown)")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Credential {
    /// The record's text: the expiry, then the two tokens, one a line.
    pub fn encode(&self) -> Vec<u8> {
        format!("{}\n{}\n{}", self.expires_at, self.access_token, self.refresh_token).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Credential> {
        let mut lines = std::str::from_utf8(bytes).ok()?.split('\n');
        let expires_at = lines.next()?.parse().ok()?;
        let (access_token, refresh_token) = (lines.next()?.to_owned(), lines.next()?.to_owned());
        lines.next().is_none().then_some(Credential { access_token, refresh_token, expires_at })
    }

    pub fn is_expired(&self, now: Millis) -> bool {
        now >= self.expires_at
    }
}

/// What the upstream's token endpoint returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub access_token: String,
    /// The refresh token to use next time (the same one, unless the provider rotates them).
    pub refresh_token: String,
    pub expires_in: Duration,
}

/// The upstream refused or failed a refresh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token refresh failed upstream: {0}")]
pub struct RefreshError(pub String);

/// The upstream OAuth token endpoint (`grant_type=refresh_token`).
pub trait Refresher: Send + Sync {
    fn refresh(
        &self,
        token_id: &str,
        refresh_token: &str,
    ) -> impl Future<Output = Result<Grant, RefreshError>> + Send;
}

impl<R: Refresher + ?Sized> Refresher for Arc<R> {
    fn refresh(
        &self,
        token_id: &str,
        refresh_token: &str,
    ) -> impl Future<Output = Result<Grant, RefreshError>> + Send {
        (**self).refresh(token_id, refresh_token)
    }
}

/// What one tick did for one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// This tick refreshed the token; the new credential expires at `expires_at`.
    Refreshed { expires_at: Millis },
    /// The period's refresh was already taken.
    AlreadyTaken,
    /// The upstream refused; the lease was released so a later tick of the period retries.
    Failed(RefreshError),
    /// The credential changed while this tick was refreshing; its older result was dropped.
    Superseded,
    /// The token was disconnected while this tick was refreshing.
    Disconnected,
}

/// A scheduler instance: the correct one and its mutants.
pub trait Scheduler: Send + Sync {
    /// One beat: refreshes every connected token whose refresh this period is still to do.
    fn tick(&self) -> impl Future<Output = StoreResult<Vec<(String, TickOutcome)>>> + Send;
}

const TOKEN_PREFIX: &str = "token:";

/// The key of a token's credential record.
pub fn token_key(id: &str) -> String {
    format!("{TOKEN_PREFIX}{id}")
}

/// The key of a token's refresh lease for one period.
pub fn lease_key(id: &str, period: u64) -> String {
    format!("refresh:{id}:{period}")
}

/// The ids of every connected token, sorted.
pub async fn connected<S: Store>(store: &S) -> StoreResult<Vec<String>> {
    let mut ids: Vec<String> = store
        .keys(&format!("{TOKEN_PREFIX}*"))
        .await?
        .into_iter()
        .filter_map(|key| key.strip_prefix(TOKEN_PREFIX).map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

/// The raw record and the credential it holds.
async fn load<S: Store>(store: &S, id: &str) -> StoreResult<Option<(Vec<u8>, Credential)>> {
    let key = token_key(id);
    let Some(raw) = store.get(&key).await? else { return Ok(None) };
    let credential = Credential::decode(&raw)
        .ok_or(StoreError::WrongKind { key, expected: "an oauth credential record" })?;
    Ok(Some((raw, credential)))
}

/// The credential API clients call the upstream with.
pub async fn credential<S: Store>(store: &S, id: &str) -> StoreResult<Option<Credential>> {
    Ok(load(store, id).await?.map(|(_, credential)| credential))
}

/// The correct scheduler instance.
pub struct RefreshScheduler<S, R> {
    store: S,
    clock: Arc<dyn Clock>,
    refresher: R,
    instance: String,
    policy: Policy,
}

impl<S, R> fmt::Debug for RefreshScheduler<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshScheduler")
            .field("instance", &self.instance)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: Store, R: Refresher> RefreshScheduler<S, R> {
    /// Instance `instance` (its name goes into the leases it takes) of the scheduler.
    pub fn new(
        store: S,
        clock: Arc<dyn Clock>,
        refresher: R,
        instance: impl Into<String>,
        policy: Policy,
    ) -> Self {
        Self { store, clock, refresher, instance: instance.into(), policy }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The lease outlives its period, so no later tick of the period can take it again.
    fn lease_ttl(&self) -> Duration {
        self.policy.period * 2
    }

    /// The lease's value: who took it and when, for whoever inspects the store.
    fn fencing_value(&self, now: Millis) -> Vec<u8> {
        format!("{}@{now}", self.instance).into_bytes()
    }

    /// Stores the credential a user just granted. It was issued now, so the current period's
    /// refresh is taken as done.
    pub async fn connect(&self, id: &str, grant: Grant) -> StoreResult<Credential> {
        let now = self.clock.now();
        let credential = Credential {
            access_token: grant.access_token,
            refresh_token: grant.refresh_token,
            expires_at: now.saturating_add(millis(grant.expires_in)),
        };
        self.store.set(&token_key(id), credential.encode(), None).await?;
        let lease = lease_key(id, self.policy.period_of(now));
        self.store.set_nx(&lease, self.fencing_value(now), self.lease_ttl()).await?;
        Ok(credential)
    }

    /// This period's refresh of one token, if no other tick has taken it.
    pub async fn tick_token(&self, id: &str) -> StoreResult<TickOutcome> {
        let now = self.clock.now();
        let lease = lease_key(id, self.policy.period_of(now));
        if !self.store.set_nx(&lease, self.fencing_value(now), self.lease_ttl()).await? {
            return Ok(TickOutcome::AlreadyTaken);
        }
        let Some((raw, current)) = load(&self.store, id).await? else {
            return Ok(TickOutcome::Disconnected);
        };
        let grant = match self.refresher.refresh(id, &current.refresh_token).await {
            Ok(grant) => grant,
            Err(e) => {
                self.store.del(&lease).await?;
                return Ok(TickOutcome::Failed(e));
            }
        };
        // Measured from before the request: the upstream issued the token no earlier.
        let expires_at = now.saturating_add(millis(grant.expires_in));
        let next =
            Credential { access_token: grant.access_token, refresh_token: grant.refresh_token, expires_at };
        if self.store.compare_and_set(&token_key(id), Some(&raw), next.encode(), None).await? {
            Ok(TickOutcome::Refreshed { expires_at })
        } else {
            Ok(TickOutcome::Superseded)
        }
    }
}

impl<S: Store, R: Refresher> Scheduler for RefreshScheduler<S, R> {
    async fn tick(&self) -> StoreResult<Vec<(String, TickOutcome)>> {
        let mut outcomes = Vec::new();
        for id in connected(&self.store).await? {
            let outcome = self.tick_token(&id).await?;
            outcomes.push((id, outcome));
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod debug_tests {
    use super::Credential;

    #[test]
    fn debug_shows_the_expiry_not_the_tokens() {
        let credential = Credential {
            access_token: "at-hunter2".into(),
            refresh_token: "rt-s3cret".into(),
            expires_at: 42,
        };
        let shown = format!("{credential:?}");
        assert!(shown.contains("42") && !shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
    }
}
