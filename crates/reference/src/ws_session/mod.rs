//! #17 WebSocket sessions (seed 004, `OptimizedFeedbackConsumer`).
//!
//! Three parts, each with its invariant:
//!
//! - **connection slots**: each connection holds a leased slot in the user's bounded set
//!   ([`Store::slot_acquire`]), renewed by heartbeats and released on disconnect; a crashed
//!   process's slots lapse with their lease. Never more than `max` live connections per user,
//!   whatever the concurrency, and a disconnect frees its slot at once.
//! - **per-type message limits**: one [`FixedWindow`] per message type, from the seed's table.
//! - **the outgoing batcher** ([`batcher`]): messages leave in order, none lost or duplicated,
//!   in batches of at most 10, none waiting more than 100 ms once the socket is free; past 100
//!   pending the next one is refused, never dropped.

pub mod batcher;
pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::future::Future;
use std::time::Duration;

use crate::fixed_window::FixedWindow;
use crate::limit::{Decision, Limit, RateLimiter};
use crate::store::{SlotOutcome, Store, StoreResult};

pub const COMPONENT: &str = "ws-session";

/// The seed's numbers.
pub mod seed {
    use std::time::Duration;

    use crate::limit::Limit;

    /// Live connections per user.
    pub const MAX_CONNECTIONS: usize = 5;
    /// How long a slot outlives its last heartbeat (the seed's 60 s counter TTL).
    pub const LEASE: Duration = Duration::from_secs(60);
    /// Message limits by type; every other type shares [`OTHER_MESSAGES`].
    pub const MESSAGE_LIMITS: &[(&str, Limit)] = &[
        ("comment_add", Limit::new(10, Duration::from_secs(60))),
        ("typing_indicator", Limit::new(30, Duration::from_secs(60))),
        ("reaction_add", Limit::new(20, Duration::from_secs(60))),
    ];
    pub const OTHER_MESSAGES: Limit = Limit::new(100, Duration::from_secs(60));
}

/// Admission of WebSocket connections per user.
pub trait Connections: Send + Sync {
    /// Whether `connection` of `user` may stay open; admitting it takes one of the user's slots.
    fn connect(&self, user: &str, connection: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Renews `connection`'s slot; false if it no longer holds one and must be closed.
    fn heartbeat(&self, user: &str, connection: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Frees `connection`'s slot.
    fn disconnect(&self, user: &str, connection: &str) -> impl Future<Output = StoreResult<()>> + Send;
}

/// The correct connection admission: a leased slot per connection in `{prefix}:{user}`.
#[derive(Debug, Clone)]
pub struct ConnectionSlots<S> {
    store: S,
    prefix: String,
    max: usize,
    lease: Duration,
}

impl<S: Store> ConnectionSlots<S> {
    /// At most `max` live connections per user, each slot lapsing `lease` after its last
    /// connect or heartbeat.
    pub fn new(store: S, prefix: impl Into<String>, max: usize, lease: Duration) -> Self {
        Self { store, prefix: prefix.into(), max, lease }
    }

    pub fn key(&self, user: &str) -> String {
        key(&self.prefix, user)
    }

    /// Live connections of `user`.
    pub async fn live(&self, user: &str) -> StoreResult<usize> {
        self.store.slot_count(&self.key(user)).await
    }

    async fn acquire(&self, user: &str, connection: &str) -> StoreResult<bool> {
        let outcome = self.store.slot_acquire(&self.key(user), connection, self.lease, self.max).await?;
        Ok(!matches!(outcome, SlotOutcome::Full { .. }))
    }
}

impl<S: Store> Connections for ConnectionSlots<S> {
    async fn connect(&self, user: &str, connection: &str) -> StoreResult<bool> {
        self.acquire(user, connection).await
    }

    /// A lapsed slot is taken again if one is free: the connection is live either way.
    async fn heartbeat(&self, user: &str, connection: &str) -> StoreResult<bool> {
        self.acquire(user, connection).await
    }

    async fn disconnect(&self, user: &str, connection: &str) -> StoreResult<()> {
        self.store.slot_release(&self.key(user), connection).await.map(drop)
    }
}

pub(crate) fn key(prefix: &str, user: &str) -> String {
    format!("{prefix}:{user}")
}

/// Per-type message limits, counted per user, each type a limiter of its own over the store.
/// Types not in the table share one budget per user, so inventing message types buys no extra
/// messages.
#[derive(Debug, Clone)]
pub struct MessageLimits<L> {
    by_type: Vec<(&'static str, L)>,
    other: L,
}

impl<S: Store + Clone> MessageLimits<FixedWindow<S>> {
    /// The seed's table on fixed windows keyed `ws:rate:{type}:{user}`.
    pub fn new(store: S) -> Self {
        Self::with(|prefix, limit| FixedWindow::new(store.clone(), prefix, limit))
    }
}

impl<L: RateLimiter> MessageLimits<L> {
    /// The seed's table, each limiter built by `make(key prefix, limit)`.
    pub fn with(make: impl Fn(String, Limit) -> L) -> Self {
        let by_type = seed::MESSAGE_LIMITS
            .iter()
            .map(|(kind, limit)| (*kind, make(format!("ws:rate:{kind}"), *limit)))
            .collect();
        Self { by_type, other: make("ws:rate:other".to_owned(), seed::OTHER_MESSAGES) }
    }

    /// Decides one message of type `kind` from `user`, counting it if admitted.
    pub async fn check(&self, user: &str, kind: &str) -> StoreResult<Decision> {
        let limiter = self.by_type.iter().find(|(k, _)| *k == kind).map_or(&self.other, |(_, l)| l);
        limiter.check(user).await
    }
}

/// The limit that applies to messages of type `kind`.
pub fn message_limit(kind: &str) -> Limit {
    seed::MESSAGE_LIMITS.iter().find(|(k, _)| *k == kind).map_or(seed::OTHER_MESSAGES, |(_, limit)| *limit)
}
