//! #4 API usage tracker (seed 003): how many upstream API requests were made this UTC day and
//! this UTC hour, against a plan of 100 a day and 20 an hour (configurable), with success and
//! failure stats.
//!
//! Check-and-record is one atomic step: [`Store::bounded_incr`] over the day counter, the hour
//! counter and the day's stats total (one Lua script on Redis, one transaction on PostgreSQL)
//! admits the request and counts it, or refuses it and counts nothing. So the counters equal
//! the number of admitted requests of their period and never pass either limit. Every key is
//! named after its UTC period and expires a little after the period ends ([`DAY_GRACE`],
//! [`HOUR_GRACE`]), so late read-outs still see it and nothing outlives its use.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, Millis, millis};
use crate::store::{Bump, BumpOutcome, Store, StoreError, StoreResult};

pub const COMPONENT: &str = "usage-tracker";

/// How long a day's keys outlive the day.
pub const DAY_GRACE: Duration = Duration::from_secs(60 * 60);
/// How long an hour's key outlives the hour.
pub const HOUR_GRACE: Duration = Duration::from_secs(10 * 60);

const HOUR_MS: Millis = 60 * 60 * 1_000;
const DAY_MS: Millis = 24 * HOUR_MS;

/// Requests allowed per UTC day and per UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageLimits {
    pub per_day: u64,
    pub per_hour: u64,
}

impl UsageLimits {
    /// The upstream plan of seed 003: 100 requests a day, 20 an hour.
    pub const SEED: Self = Self { per_day: 100, per_hour: 20 };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Hour,
}

/// A request admitted and counted; hand it to [`UsageTracking::finish`] once it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The UTC day it was counted in, as days since the epoch.
    pub day: u64,
    /// The day's and the hour's count, this request included.
    pub day_used: u64,
    pub hour_used: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Granted(Grant),
    /// Nothing was counted: `period` already holds `used` of its `limit`.
    Refused {
        period: Period,
        used: u64,
        limit: u64,
    },
}

/// The current UTC day's and hour's counts and the day's stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub day: u64,
    pub hour: u64,
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
}

/// What the correct tracker and its mutants share.
pub trait UsageTracking: Send + Sync {
    /// Admits one upstream request and counts it, or refuses it and counts nothing.
    fn acquire(&self) -> impl Future<Output = StoreResult<Admission>> + Send;

    /// Records how a granted request ended, in the stats of the day it was counted in. An
    /// outcome reported after that day's keys expired is dropped.
    fn finish(&self, grant: &Grant, success: bool) -> impl Future<Output = StoreResult<()>> + Send;

    /// The counters now; each is read on its own, so the figures are not one snapshot.
    fn usage(&self) -> impl Future<Output = StoreResult<Usage>> + Send;
}

/// The correct usage tracker.
pub struct UsageTracker<S> {
    store: S,
    clock: Arc<dyn Clock>,
    prefix: String,
    limits: UsageLimits,
}

impl<S> std::fmt::Debug for UsageTracker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageTracker")
            .field("prefix", &self.prefix)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<S: Store> UsageTracker<S> {
    /// A tracker whose keys start with `{prefix}:`.
    pub fn new(store: S, clock: Arc<dyn Clock>, prefix: impl Into<String>, limits: UsageLimits) -> Self {
        Self { store, clock, prefix: prefix.into(), limits }
    }

    pub fn limits(&self) -> UsageLimits {
        self.limits
    }
}

impl<S: Store> UsageTracking for UsageTracker<S> {
    async fn acquire(&self) -> StoreResult<Admission> {
        let now = self.clock.now();
        let (day, hour) = periods(&self.prefix, now);
        let (day_ttl, hour_ttl) = (day.ttl(now), hour.ttl(now));
        let bumps = [
            Bump { key: &day.counter, delta: 1, limit: cap(self.limits.per_day), ttl: day_ttl },
            Bump { key: &hour.counter, delta: 1, limit: cap(self.limits.per_hour), ttl: hour_ttl },
            Bump { key: &day.total, delta: 1, limit: i64::MAX, ttl: day_ttl },
        ];
        match self.store.bounded_incr(&bumps).await? {
            BumpOutcome::Applied(values) => match values[..] {
                [day_used, hour_used, _] => Ok(Admission::Granted(Grant {
                    day: day.index,
                    day_used: count(day_used),
                    hour_used: count(hour_used),
                })),
                _ => Err(StoreError::Backend(format!(
                    "bounded_incr returned {} values for 3 bumps",
                    values.len()
                ))),
            },
            BumpOutcome::Refused { index: 0, current } => Ok(Admission::Refused {
                period: Period::Day,
                used: count(current),
                limit: self.limits.per_day,
            }),
            BumpOutcome::Refused { index: 1, current } => Ok(Admission::Refused {
                period: Period::Hour,
                used: count(current),
                limit: self.limits.per_hour,
            }),
            BumpOutcome::Refused { .. } => {
                Err(StoreError::Backend(format!("stats counter {} is full", day.total)))
            }
        }
    }

    async fn finish(&self, grant: &Grant, success: bool) -> StoreResult<()> {
        let now = self.clock.now();
        let day = DayKeys::new(&self.prefix, grant.day);
        let ttl = day.ttl(now);
        if ttl.is_zero() {
            return Ok(());
        }
        let key = if success { &day.succeeded } else { &day.failed };
        self.store.incr_window(key, 1, ttl).await?;
        Ok(())
    }

    async fn usage(&self) -> StoreResult<Usage> {
        let (day, hour) = periods(&self.prefix, self.clock.now());
        Ok(Usage {
            day: read_count(&self.store, &day.counter).await?,
            hour: read_count(&self.store, &hour.counter).await?,
            total: read_count(&self.store, &day.total).await?,
            succeeded: read_count(&self.store, &day.succeeded).await?,
            failed: read_count(&self.store, &day.failed).await?,
        })
    }
}

/// The keys of the UTC day and hour that `now` falls in. Unix time has no leap seconds, so a
/// UTC day or hour is a whole number of its lengths since the epoch.
fn periods(prefix: &str, now: Millis) -> (DayKeys, HourKey) {
    (DayKeys::new(prefix, now / DAY_MS), HourKey::new(prefix, now / HOUR_MS))
}

/// The keys of one UTC day: `{prefix}:day:{YYYY-MM-DD}` and
/// `{prefix}:stats:{YYYY-MM-DD}:{total,succeeded,failed}`.
struct DayKeys {
    /// Days since the epoch.
    index: u64,
    counter: String,
    total: String,
    succeeded: String,
    failed: String,
}

impl DayKeys {
    fn new(prefix: &str, index: u64) -> Self {
        let date = utc(index * DAY_MS, "%Y-%m-%d");
        Self {
            index,
            counter: format!("{prefix}:day:{date}"),
            total: format!("{prefix}:stats:{date}:total"),
            succeeded: format!("{prefix}:stats:{date}:succeeded"),
            failed: format!("{prefix}:stats:{date}:failed"),
        }
    }

    /// What the day's keys have left to live at `now`: until the day ends, plus the grace.
    fn ttl(&self, now: Millis) -> Duration {
        until((self.index + 1) * DAY_MS + millis(DAY_GRACE), now)
    }
}

/// The key of one UTC hour: `{prefix}:hour:{YYYY-MM-DDTHH}`.
struct HourKey {
    /// Hours since the epoch.
    index: u64,
    counter: String,
}

impl HourKey {
    fn new(prefix: &str, index: u64) -> Self {
        Self { index, counter: format!("{prefix}:hour:{}", utc(index * HOUR_MS, "%Y-%m-%dT%H")) }
    }

    /// What the hour's key has left to live at `now`: until the hour ends, plus the grace.
    fn ttl(&self, now: Millis) -> Duration {
        until((self.index + 1) * HOUR_MS + millis(HOUR_GRACE), now)
    }
}

fn until(deadline: Millis, now: Millis) -> Duration {
    Duration::from_millis(deadline.saturating_sub(now))
}

/// `at` in UTC, formatted; instants past the year 9999 are clamped to its last second.
fn utc(at: Millis, format: &str) -> String {
    let at = i64::try_from(at).ok().and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
    at.unwrap_or(jiff::Timestamp::MAX).strftime(format).to_string()
}

fn cap(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

async fn read_count<S: Store>(store: &S, key: &str) -> StoreResult<u64> {
    match store.get(key).await? {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| StoreError::WrongKind { key: key.to_owned(), expected: "a counter" }),
    }
}
