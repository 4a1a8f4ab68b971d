//! #3 Daily quota counter (seed 002, "Fix #5: Atomic Quota Tracking").
//!
//! Each user may spend `limit` units a day (10,000 in the seed; an import costs 3). The day is
//! the *local* date in a configured IANA time zone: the counter's key names that date, and the
//! consume that creates it also gives it a TTL ending at the next local midnight — found with
//! jiff, because days are 23 h or 25 h long when the clocks change. A consume is one
//! [`Store::bounded_incr`] (check and increment in one Lua script on Redis, one conditional
//! `UPDATE` in PostgreSQL), so under any contention:
//!
//! - nothing is lost: the day's count equals the sum of the accepted units;
//! - nothing is over-admitted: the count never passes the limit;
//! - the day resets exactly at local midnight: the first consume at or after it sees a fresh
//!   day, one just before it still sees the old day.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::clock::{Clock, Millis};
use crate::store::{Bump, BumpOutcome, Store, StoreError};

pub const COMPONENT: &str = "daily-quota";

/// What a user may spend in one local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaPolicy {
    /// Units a day.
    pub limit: u64,
    /// Units one import costs.
    pub units_per_import: u64,
    /// Usage at or above this share of the limit, in percent, raises a warning.
    pub warn_percent: u64,
}

impl QuotaPolicy {
    /// Whether `used` units are at or above the warning threshold.
    pub fn warns_at(&self, used: u64) -> bool {
        u128::from(used) * 100 >= u128::from(self.limit) * u128::from(self.warn_percent)
    }
}

/// The YouTube Data API quota of seed 002: 3 units per import, 10,000 a day, warn at 80 %.
pub const SEED: QuotaPolicy = QuotaPolicy { limit: 10_000, units_per_import: 3, warn_percent: 80 };

/// The outcome of one consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumption {
    pub accepted: bool,
    /// The units asked for.
    pub units: u64,
    /// Units used today after this consume (unchanged when refused).
    pub used: u64,
    pub limit: u64,
    /// Usage is at or above the warning threshold.
    pub warn: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("clock reads {0} ms since the epoch, outside the calendar jiff supports; check the clock")]
    ClockOutOfRange(Millis),
    #[error("counter {key} holds {value}, not a unit count")]
    Corrupt { key: String, value: String },
}

pub type QuotaResult<T> = Result<T, QuotaError>;

/// A per-user daily quota; the correct counter and its mutants all implement it.
pub trait Quota: Send + Sync {
    /// Spends `units` of `user`'s quota for today if they fit under the limit.
    fn consume(&self, user: &str, units: u64) -> impl Future<Output = QuotaResult<Consumption>> + Send;

    /// Units `user` has used today.
    fn used(&self, user: &str) -> impl Future<Output = QuotaResult<u64>> + Send;
}

/// The correct daily quota.
#[derive(Clone)]
pub struct DailyQuota<S> {
    store: S,
    clock: Arc<dyn Clock>,
    prefix: String,
    zone: TimeZone,
    policy: QuotaPolicy,
}

impl<S> std::fmt::Debug for DailyQuota<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailyQuota")
            .field("prefix", &self.prefix)
            .field("zone", &self.zone.iana_name())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: Store> DailyQuota<S> {
    /// A quota whose counters are `{prefix}:{user}:{local date}`, days counted in `zone`.
    pub fn new(
        store: S,
        clock: Arc<dyn Clock>,
        prefix: impl Into<String>,
        zone: TimeZone,
        policy: QuotaPolicy,
    ) -> Self {
        Self { store, clock, prefix: prefix.into(), zone, policy }
    }

    pub fn policy(&self) -> QuotaPolicy {
        self.policy
    }

    /// Spends one import's worth of units.
    pub async fn import(&self, user: &str) -> QuotaResult<Consumption> {
        self.consume(user, self.policy.units_per_import).await
    }
}

impl<S: Store> Quota for DailyQuota<S> {
    async fn consume(&self, user: &str, units: u64) -> QuotaResult<Consumption> {
        let day = LocalDay::at(&self.zone, self.clock.now())?;
        bounded_consume(&self.store, self.policy, &key(&self.prefix, user, day.date), units, day.left).await
    }

    async fn used(&self, user: &str) -> QuotaResult<u64> {
        let day = LocalDay::at(&self.zone, self.clock.now())?;
        read_used(&self.store, &key(&self.prefix, user, day.date)).await
    }
}

/// The local day an instant falls in, and how long until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDay {
    pub date: Date,
    /// Time left until the next local midnight (the first instant of the next local date).
    pub left: Duration,
}

impl LocalDay {
    pub fn at(zone: &TimeZone, now: Millis) -> QuotaResult<Self> {
        let here = instant(now)?.to_zoned_datetime(zone.clone());
        let date = here.date();
        // The first instant of tomorrow: midnight, or the end of a gap that swallows it.
        let next = date
            .tomorrow()
            .and_then(|d| d.to_zoned_datetime(zone.clone()))
            .map_err(|_| QuotaError::ClockOutOfRange(now))?;
        Ok(Self { date, left: positive(here.duration_until(&next)) })
    }
}

pub(crate) fn key(prefix: &str, user: &str, date: Date) -> String {
    format!("{prefix}:{user}:{date}")
}

/// One all-or-nothing check-and-increment of the counter at `key`; `ttl` is given to the key
/// when this creates it.
pub(crate) async fn bounded_consume<S: Store>(
    store: &S,
    policy: QuotaPolicy,
    key: &str,
    units: u64,
    ttl: Duration,
) -> QuotaResult<Consumption> {
    let bump = Bump { key, delta: to_i64(units), limit: to_i64(policy.limit), ttl };
    Ok(match store.bounded_incr(&[bump]).await? {
        BumpOutcome::Applied(values) => {
            consumption(policy, true, units, values.first().copied().unwrap_or_default())
        }
        BumpOutcome::Refused { current, .. } => consumption(policy, false, units, current),
    })
}

pub(crate) fn consumption(policy: QuotaPolicy, accepted: bool, units: u64, used: i64) -> Consumption {
    let used = u64::try_from(used).unwrap_or(0);
    Consumption { accepted, units, used, limit: policy.limit, warn: policy.warns_at(used) }
}

pub(crate) async fn read_used<S: Store>(store: &S, key: &str) -> QuotaResult<u64> {
    match store.get(key).await? {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(&bytes).ok().and_then(|s| s.parse().ok()).ok_or_else(|| {
            QuotaError::Corrupt { key: key.to_owned(), value: String::from_utf8_lossy(&bytes).into_owned() }
        }),
    }
}

pub(crate) fn instant(now: Millis) -> QuotaResult<Timestamp> {
    i64::try_from(now)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .ok_or(QuotaError::ClockOutOfRange(now))
}

pub(crate) fn to_i64(units: u64) -> i64 {
    i64::try_from(units).unwrap_or(i64::MAX)
}

/// `duration` as a TTL: at least 1 ms, since a key must never be created already expired.
pub(crate) fn positive(duration: SignedDuration) -> Duration {
    Duration::try_from(duration).unwrap_or_default().max(Duration::from_millis(1))
}
