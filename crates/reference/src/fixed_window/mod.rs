//! #1 Fixed-window rate limiter (seeds 000, 001).
//!
//! The window opens at a key's first hit and lasts `limit.window`; the hit that creates the key
//! also gives it its TTL, in the same atomic step ([`Store::incr_window`]: `INCR` + `PEXPIRE`
//! in one Lua script on Redis). Of M calls inside one window exactly `min(M, max)` are allowed,
//! keys are independent, and the key always carries a TTL, so the window always ends.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use crate::limit::{Decision, Limit, RateLimiter};
use crate::store::{Store, StoreResult};

pub const COMPONENT: &str = "fixed-window";

/// The correct fixed-window limiter.
#[derive(Debug, Clone)]
pub struct FixedWindow<S> {
    store: S,
    prefix: String,
    limit: Limit,
}

impl<S: Store> FixedWindow<S> {
    /// A limiter whose keys are `{prefix}:{id}`.
    pub fn new(store: S, prefix: impl Into<String>, limit: Limit) -> Self {
        Self { store, prefix: prefix.into(), limit }
    }

    pub fn key(&self, id: &str) -> String {
        key(&self.prefix, id)
    }

    pub fn limit(&self) -> Limit {
        self.limit
    }
}

impl<S: Store> RateLimiter for FixedWindow<S> {
    async fn check(&self, id: &str) -> StoreResult<Decision> {
        let (count, reset_after) = self.store.incr_window(&self.key(id), 1, self.limit.window).await?;
        Ok(decide(self.limit, count, reset_after))
    }
}

/// `{prefix}:{id}`, built without the formatting machinery: it is on every call's path.
pub(crate) fn key(prefix: &str, id: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + 1 + id.len());
    key.push_str(prefix);
    key.push(':');
    key.push_str(id);
    key
}

/// The decision for the `count`-th hit of a window.
pub(crate) fn decide(limit: Limit, count: i64, reset_after: std::time::Duration) -> Decision {
    let count = u64::try_from(count).unwrap_or(0);
    Decision {
        allowed: count <= limit.max,
        limit: limit.max,
        remaining: limit.max.saturating_sub(count),
        reset_after,
    }
}
