//! #2 Sliding-window limiter, an exact sliding log (seed 001, its "future enhancement").
//!
//! Every admission is a member of a bounded set of expiring members with a lease of one
//! window: a call is admitted only while fewer than `max` admissions are live, in the same
//! atomic step that records it ([`Store::slot_acquire`]: a sorted-set Lua script on Redis). So
//! no interval of length `window` ever holds more than `max` admissions, and a call is refused
//! only while `max` admissions are live. An admission at `t` counts in `[t, t + window)`.
//!
//! `Decision::reset_after`: for an admitted call, the window (it is the newest admission, so
//! the whole quota is back once it expires); for a refused one, the time until the oldest live
//! admission expires, read by [`Store::slot_next_expiry`] in a second step right after the
//! refusal. Admissions are only ever added with the longest lease, so that figure is never
//! early; it is late only when the oldest admission expired between the two steps.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::limit::{Decision, Limit, RateLimiter};
use crate::store::{SlotOutcome, Store, StoreError, StoreResult};
use crate::sync::{AtomicU64, Ordering};

pub const COMPONENT: &str = "sliding-window";

/// The correct sliding-log limiter.
pub struct SlidingWindow<S> {
    store: S,
    clock: Arc<dyn Clock>,
    prefix: String,
    limit: Limit,
    /// Tells this instance's admissions apart from every other instance's.
    nonce: u64,
    /// Tells this instance's admissions within one millisecond apart.
    seq: AtomicU64,
}

impl<S> std::fmt::Debug for SlidingWindow<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlidingWindow")
            .field("prefix", &self.prefix)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S: Store> SlidingWindow<S> {
    /// A limiter whose logs are the slot sets `{prefix}:{id}`.
    pub fn new(store: S, clock: Arc<dyn Clock>, prefix: impl Into<String>, limit: Limit) -> Self {
        // A random 64-bit nonce without a dependency: std seeds every `RandomState` from the OS.
        let nonce = RandomState::new().hash_one(0u8);
        Self { store, clock, prefix: prefix.into(), limit, nonce, seq: AtomicU64::new(0) }
    }

    pub fn key(&self, id: &str) -> String {
        crate::fixed_window::key(&self.prefix, id)
    }

    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// A member name no other admission of any instance uses: `{now}-{nonce}-{seq}`.
    fn member(&self) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{}-{:016x}-{seq}", self.clock.now(), self.nonce)
    }
}

impl<S: Store> RateLimiter for SlidingWindow<S> {
    async fn check(&self, id: &str) -> StoreResult<Decision> {
        let key = self.key(id);
        let member = self.member();
        let Limit { max, window } = self.limit;
        let cap = usize::try_from(max).unwrap_or(usize::MAX);
        match self.store.slot_acquire(&key, &member, window, cap).await? {
            SlotOutcome::Acquired { held } => Ok(Decision {
                allowed: true,
                limit: max,
                remaining: max.saturating_sub(held as u64),
                reset_after: window,
            }),
            SlotOutcome::Full { .. } => {
                let reset_after = self.store.slot_next_expiry(&key).await?.unwrap_or(Duration::ZERO);
                Ok(Decision { allowed: false, limit: max, remaining: 0, reset_after })
            }
            // Counting this call as an earlier admission would over-admit; refuse to guess.
            SlotOutcome::Renewed { .. } => Err(StoreError::Backend(format!(
                "sliding-window admission {member} on {key} is already live; instance nonces collided"
            ))),
        }
    }
}
