//! The GCRA limiter as it is commonly written against a plain key-value store.

use std::sync::Arc;

use crate::clock::Clock;
use crate::limit::{Decision, Limit, RateLimiter};
use crate::store::{Store, StoreResult};

use super::{Params, Step, now_nanos, parse_tat, ttl_until};

/// Read the TAT, decide, then write the new TAT with a plain `SET`: two callers that read the
/// same TAT both conform and both write `TAT + T`, so one arrival is lost and the key admits
/// more than its burst.
pub struct GetThenSet<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
    pub prefix: String,
    pub limit: Limit,
}

impl<S: Store> RateLimiter for GetThenSet<S> {
    async fn check(&self, id: &str) -> StoreResult<Decision> {
        let key = crate::fixed_window::key(&self.prefix, id);
        let now = now_nanos(self.clock.as_ref());
        let tat = parse_tat(&key, self.store.get(&key).await?.as_deref())?;
        match Params::new(self.limit).step(tat, now) {
            Step::Refused(decision) => Ok(decision),
            Step::Admitted { tat, decision } => {
                self.store.set(&key, tat.to_string().into_bytes(), Some(ttl_until(tat, now))).await?;
                Ok(decision)
            }
        }
    }
}
