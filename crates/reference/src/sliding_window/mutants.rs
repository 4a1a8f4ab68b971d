//! The sliding-window limiter as the field would have shipped it.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, millis};
use crate::fixed_window::decide;
use crate::limit::{Decision, Limit, RateLimiter};
use crate::store::{Store, StoreResult};

/// A fixed window mislabelled as sliding: `INCR {prefix}:{id}:{now / window}`, the key expiring
/// at the window's edge, edges on multiples of the window since the epoch. The count restarts
/// at every edge, so `max` calls just before an edge and `max` just after are all admitted:
/// `2 * max` within a few milliseconds.
pub struct FixedWindowAsSliding<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
    pub prefix: String,
    pub limit: Limit,
}

impl<S: Store> RateLimiter for FixedWindowAsSliding<S> {
    async fn check(&self, id: &str) -> StoreResult<Decision> {
        let now = self.clock.now();
        let window = millis(self.limit.window).max(1);
        let index = now / window;
        let to_edge = Duration::from_millis((index + 1) * window - now);
        let key = format!("{}:{id}:{index}", self.prefix);
        let (count, reset_after) = self.store.incr_window(&key, 1, to_edge).await?;
        Ok(decide(self.limit, count, reset_after))
    }
}
