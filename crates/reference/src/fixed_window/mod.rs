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
        let key = KeyBuf::new(&self.prefix, id);
        let (count, reset_after) = self.store.incr_window(key.as_str(), 1, self.limit.window).await?;
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

/// `{prefix}:{id}` for one call, built in a buffer the thread reuses from call to call: the
/// limiters hand the store a `&str` that lives only for the call, and allocating and freeing a
/// string per decision cost a memory-store decision a fifth of its time. The buffer goes back to
/// the thread that drops the key (a future may move between threads); a key built while the
/// thread's buffer is out (calls interleaved on one thread) allocates one, as before.
pub(crate) struct KeyBuf(String);

thread_local! {
    static SPARE_KEY: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

impl KeyBuf {
    pub(crate) fn new(prefix: &str, id: &str) -> Self {
        let mut key = SPARE_KEY.try_with(std::cell::Cell::take).unwrap_or_default();
        key.clear();
        key.reserve(prefix.len() + 1 + id.len());
        key.push_str(prefix);
        key.push(':');
        key.push_str(id);
        Self(key)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Drop for KeyBuf {
    fn drop(&mut self) {
        let key = std::mem::take(&mut self.0);
        // A thread being torn down keeps no spare.
        let _ = SPARE_KEY.try_with(|spare| spare.set(key));
    }
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{KeyBuf, key};

    #[test]
    fn key_buf_spells_the_key_whether_or_not_the_thread_buffer_is_free() {
        let long = "u".repeat(300);
        let first = KeyBuf::new("rl", "user-1");
        // Built while the thread's buffer is out: a buffer of its own.
        let second = KeyBuf::new("gcra", &long);
        assert_eq!(first.as_str(), key("rl", "user-1"));
        assert_eq!(second.as_str(), key("gcra", &long));
        drop((first, second));
        // The buffer back, holding a longer key than the next: only the new key is read.
        assert_eq!(KeyBuf::new("rl", "x").as_str(), "rl:x");
        assert_eq!(KeyBuf::new("", "").as_str(), ":");
    }
}
