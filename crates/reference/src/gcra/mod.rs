//! #2 GCRA limiter, the generic cell rate algorithm (seed 001, its "future enhancement").
//!
//! Each key stores its theoretical arrival time (TAT): when the key would be idle again. With
//! emission interval `T = window / max` and burst `max`, a call at `now` is admitted iff
//! `max(TAT, now) + T - now <= max * T`, and then TAT becomes `max(TAT, now) + T`. The update is
//! one atomic store step ([`Store::gcra`]: one Lua script on Redis), so concurrent callers never
//! lose each other's arrivals and each decision costs one round trip; the key's TTL is the time until its TAT passes, so idle keys vanish (a missing key is an idle
//! one). In any interval of length `L`, at most `max + floor(L / T)` calls are admitted.
//!
//! Times are kept in nanoseconds since the epoch so that `T` is exact for any limit in whole
//! nanoseconds; the TTL is rounded up to the millisecond, so a key never vanishes before its
//! TAT passes. Time is the store's (the injected clock for the memory store, the server's
//! for Redis), so instances with skewed clocks still share one schedule.
//!
//! `Decision::reset_after`: for an admitted call, the time until the key is idle again (the
//! whole burst is back); for a refused one, the time until the next call conforms.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::time::Duration;

use crate::clock::Clock;
use crate::limit::{Decision, Limit, RateLimiter};
use crate::store::{Store, StoreError, StoreResult};

pub const COMPONENT: &str = "gcra";

const NANOS_PER_MILLI: u64 = 1_000_000;

/// The correct GCRA limiter.
pub struct Gcra<S> {
    store: S,
    prefix: String,
    limit: Limit,
    params: Params,
}

impl<S> std::fmt::Debug for Gcra<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gcra")
            .field("prefix", &self.prefix)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Gcra<S> {
    /// A limiter whose TATs are stored at `{prefix}:{id}`.
    pub fn new(store: S, prefix: impl Into<String>, limit: Limit) -> Self {
        Self { store, prefix: prefix.into(), limit, params: Params::new(limit) }
    }

    pub fn key(&self, id: &str) -> String {
        crate::fixed_window::key(&self.prefix, id)
    }

    pub fn limit(&self) -> Limit {
        self.limit
    }
}

impl<S: Store> RateLimiter for Gcra<S> {
    async fn check(&self, id: &str) -> StoreResult<Decision> {
        let key = crate::fixed_window::KeyBuf::new(&self.prefix, id);
        let outcome = self.store.gcra(key.as_str(), self.params.interval, self.params.burst).await?;
        Ok(self.params.decide(outcome.admitted, outcome.tat, outcome.now))
    }
}

/// The emission interval and burst of a [`Limit`], in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub interval: u64,
    pub burst: u64,
}

/// The outcome of one GCRA step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Admitted { tat: u64, decision: Decision },
    Refused(Decision),
}

impl Params {
    pub fn new(limit: Limit) -> Self {
        let window = u64::try_from(limit.window.as_nanos()).unwrap_or(u64::MAX);
        Self { interval: window / limit.max.max(1), burst: limit.max }
    }

    /// The emission interval `T`.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// How far past `now` the TAT may be after an admission: `burst * T`.
    fn tolerance(&self) -> u64 {
        self.interval.saturating_mul(self.burst)
    }

    /// Decides a call at `now` against the stored TAT (`None`: idle).
    #[inline]
    pub(crate) fn step(&self, tat: Option<u64>, now: u64) -> Step {
        let start = tat.map_or(now, |tat| tat.max(now));
        let next = start.saturating_add(self.interval);
        if next - now <= self.tolerance() {
            Step::Admitted { tat: next, decision: self.decide(true, next, now) }
        } else {
            Step::Refused(self.decide(false, start, now))
        }
    }

    /// The decision for a step at `now` that left the TAT at `tat`.
    #[inline]
    pub fn decide(&self, admitted: bool, tat: u64, now: u64) -> Decision {
        let ahead = tat.saturating_sub(now);
        if admitted {
            Decision {
                allowed: true,
                limit: self.burst,
                remaining: self.tolerance().saturating_sub(ahead) / self.interval.max(1),
                reset_after: Duration::from_nanos(ahead),
            }
        } else {
            // The next call conforms once `tat + T - now` is back within the tolerance.
            let wait = (ahead + self.interval).saturating_sub(self.tolerance());
            Decision {
                allowed: false,
                limit: self.burst,
                remaining: 0,
                reset_after: Duration::from_nanos(wait),
            }
        }
    }
}

pub(crate) fn now_nanos(clock: &dyn Clock) -> u64 {
    clock.now().saturating_mul(NANOS_PER_MILLI)
}

pub(crate) fn parse_tat(key: &str, value: Option<&[u8]>) -> StoreResult<Option<u64>> {
    value
        .map(|bytes| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| StoreError::WrongKind { key: key.to_owned(), expected: "a gcra arrival time" })
        })
        .transpose()
}

/// The time until `tat` passes, rounded up to the millisecond.
pub(crate) fn ttl_until(tat: u64, now: u64) -> Duration {
    Duration::from_millis((tat - now).div_ceil(NANOS_PER_MILLI))
}
