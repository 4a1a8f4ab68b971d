//! What every rate limiter shares: the limit it enforces, the decision it returns, and the
//! trait the correct limiters and their mutants all implement.

use std::future::Future;
use std::time::Duration;

use crate::store::StoreResult;

/// At most `max` admissions per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

impl Limit {
    pub const fn new(max: u64, window: Duration) -> Self {
        Self { max, window }
    }
}

/// The limits of the third-party publishing API (seed 001).
pub mod seed {
    use super::Limit;
    use std::time::Duration;

    /// Per user token: 6 requests a minute.
    pub const USER_TOKEN: Limit = Limit::new(6, Duration::from_secs(60));
    /// Per endpoint: 600 requests a minute.
    pub const ENDPOINT: Limit = Limit::new(600, Duration::from_secs(60));
    /// Video uploads per user: 15 a day.
    pub const UPLOADS: Limit = Limit::new(15, Duration::from_secs(24 * 60 * 60));
}

/// One limiter decision, with what a `RateLimit-*` header set needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    /// Admissions left in the current window after this decision.
    pub remaining: u64,
    /// When the decision would change: the window's end (fixed, sliding) or the next
    /// conforming instant (GCRA).
    pub reset_after: Duration,
}

/// A rate limiter keyed by an identifier (user token, endpoint, user id).
pub trait RateLimiter: Send + Sync {
    /// Decides one request for `id` and records it if admitted.
    fn check(&self, id: &str) -> impl Future<Output = StoreResult<Decision>> + Send;
}
