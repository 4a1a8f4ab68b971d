//! The fixed-window limiter as the field wrote it before and during the "atomicity fix".

use crate::limit::{Decision, Limit, RateLimiter};
use crate::store::{Store, StoreResult};

use super::{decide, key};

/// The pre-fix limiter: read the count, compare, write count + 1 (seed 001 "before"). Two
/// callers that read the same count both get in.
#[derive(Debug, Clone)]
pub struct GetThenSet<S> {
    pub store: S,
    pub prefix: String,
    pub limit: Limit,
}

impl<S: Store> RateLimiter for GetThenSet<S> {
    async fn check(&self, id: &str) -> StoreResult<Decision> {
        let key = key(&self.prefix, id);
        let current = match self.store.get(&key).await? {
            Some(bytes) => String::from_utf8_lossy(&bytes).parse::<i64>().unwrap_or(0),
            None => 0,
        };
        if u64::try_from(current).unwrap_or(0) >= self.limit.max {
            return Ok(decide(self.limit, current + 1, self.limit.window));
        }
        self.store.set(&key, (current + 1).to_string().into_bytes(), Some(self.limit.window)).await?;
        Ok(decide(self.limit, current + 1, self.limit.window))
    }
}

/// `INCR` with no TTL on the first hit: the key lives for ever, so the first window never ends
/// and the identifier is locked out after `max` calls.
#[derive(Debug, Clone)]
pub struct IncrWithoutTtl<S> {
    pub store: S,
    pub prefix: String,
    pub limit: Limit,
}

impl<S: Store> RateLimiter for IncrWithoutTtl<S> {
    async fn check(&self, id: &str) -> StoreResult<Decision> {
        let count = self.store.incr_by(&key(&self.prefix, id), 1).await?;
        Ok(decide(self.limit, count, self.limit.window))
    }
}

/// `INCR` then `EXPIRE` on every hit: each hit pushes the window's end out again, so under
/// steady traffic the window never ends and a denied caller stays denied.
#[derive(Debug, Clone)]
pub struct ExpireEveryHit<S> {
    pub store: S,
    pub prefix: String,
    pub limit: Limit,
}

impl<S: Store> RateLimiter for ExpireEveryHit<S> {
    async fn check(&self, id: &str) -> StoreResult<Decision> {
        let key = key(&self.prefix, id);
        let count = self.store.incr_by(&key, 1).await?;
        self.store.pexpire(&key, self.limit.window).await?;
        Ok(decide(self.limit, count, self.limit.window))
    }
}
