//! The token-refresh suite: a stand-in upstream that judges every call made to it, and K
//! scheduler instances ticking together on real threads, run against any implementation and
//! store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, ManualClock, Millis, millis};
use crate::invariant::Judgement;
use crate::store::Store;
use crate::sync::{Mutex, block_on, lock};
use crate::testing::burst;

use super::{Grant, Policy, RefreshError, Refresher, Scheduler, credential, invariant};

/// The upstream OAuth provider and API: issues access tokens `{token}#{n}` that live
/// `lifetime`, logs every refresh it grants, and judges each API call by what it issued.
pub struct FakeOAuth {
    clock: Arc<dyn Clock>,
    lifetime: Duration,
    state: Mutex<Issued>,
}

#[derive(Default)]
struct Issued {
    /// Token id → how many access tokens were issued for it.
    serial: HashMap<String, u64>,
    /// Access token → when it expires.
    expires: HashMap<String, Millis>,
    /// Every granted refresh: token id, when.
    grants: Vec<(String, Millis)>,
    down: bool,
}

impl Issued {
    fn issue(&mut self, token_id: &str, now: Millis, lifetime: Duration) -> Grant {
        let serial = self.serial.entry(token_id.to_owned()).or_default();
        *serial += 1;
        let access_token = format!("{token_id}#{serial}");
        self.expires.insert(access_token.clone(), now.saturating_add(millis(lifetime)));
        Grant { access_token, refresh_token: refresh_token(token_id), expires_in: lifetime }
    }
}

fn refresh_token(token_id: &str) -> String {
    format!("{token_id}-refresh")
}

impl FakeOAuth {
    pub fn new(clock: Arc<dyn Clock>, lifetime: Duration) -> Self {
        Self { clock, lifetime, state: Mutex::new(Issued::default()) }
    }

    /// The consent flow: the first grant for `token_id`.
    pub fn authorize(&self, token_id: &str) -> Grant {
        let now = self.clock.now();
        lock(&self.state).issue(token_id, now, self.lifetime)
    }

    /// While down, every refresh fails.
    pub fn set_down(&self, down: bool) {
        lock(&self.state).down = down;
    }

    /// Every refresh granted so far: token id and when.
    pub fn grants(&self) -> Vec<(String, Millis)> {
        lock(&self.state).grants.clone()
    }

    /// How many refreshes of `token_id` were granted in period `period` of `policy`.
    pub fn granted_in(&self, token_id: &str, policy: Policy, period: u64) -> usize {
        let state = lock(&self.state);
        state.grants.iter().filter(|(id, at)| id == token_id && policy.period_of(*at) == period).count()
    }

    /// An API call on behalf of `token_id` carrying `access_token`, made now.
    pub fn api_call(&self, token_id: &str, access_token: &str) -> Judgement {
        let now = self.clock.now();
        let expires_at = lock(&self.state).expires.get(access_token).copied();
        invariant::token_fresh(token_id, access_token, expires_at, now)
    }
}

impl Refresher for FakeOAuth {
    async fn refresh(&self, token_id: &str, refresh: &str) -> Result<Grant, RefreshError> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        if state.down {
            return Err(RefreshError("upstream unavailable".into()));
        }
        if refresh != refresh_token(token_id) {
            return Err(RefreshError(format!("invalid_grant for {token_id}")));
        }
        state.grants.push((token_id.to_owned(), now));
        Ok(state.issue(token_id, now, self.lifetime))
    }
}

/// `instances` tick together, `ticks` times each, in each of `periods` consecutive periods,
/// over every connected token in `tokens`. Each period's beat lands at a different offset —
/// the first and the last millisecond among them, so consecutive refreshes are up to two
/// periods apart — and just before it every token is used for an upstream call. Every token
/// is refreshed exactly once per period, and no call carries an expired token.
pub fn contention<T, S>(
    instances: Vec<T>,
    store: &S,
    oauth: &FakeOAuth,
    clock: &ManualClock,
    policy: Policy,
    tokens: &[String],
    (periods, ticks): (usize, usize),
) -> Judgement
where
    T: Scheduler + 'static,
    S: Store,
{
    let period_ms = millis(policy.period());
    let first = policy.period_of(clock.now()) + 1;
    let instances = Arc::new(instances);
    for round in 0..periods {
        let period = first + round as u64;
        let offset = match round % 3 {
            0 => 0,
            1 => period_ms - 1,
            _ => (round as u64 * 7_919) % period_ms,
        };
        clock.set(period * period_ms + offset);
        for token in tokens {
            let current = block_on(credential(store, token)).expect("store call").expect("token connected");
            oauth.api_call(token, &current.access_token)?;
        }
        let beat = Arc::clone(&instances);
        burst(instances.len(), move |i| {
            for _ in 0..ticks {
                block_on(beat[i].tick()).expect("store call");
            }
        });
        for token in tokens {
            invariant::one_refresh_per_period(token, period, oauth.granted_in(token, policy, period))?;
        }
    }
    Ok(())
}
