//! WebSocket sessions as the field wrote them (seed 004, `OptimizedFeedbackConsumer`).

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::{Millis, millis};
use crate::fixed_window::mutants::GetThenSet;
use crate::store::{Store, StoreResult};

use super::batcher::{Batch, BatchConfig, Batching, Full};
use super::{Connections, MessageLimits, key};

/// `check_rate_limit` / `update_connection_count`: a connection counter read with `get`,
/// compared with the limit and written back with `set(count + 1, 60 s)`; disconnect does
/// `get` then `set(max(0, count - 1), 60 s)`. Concurrent connects read the same count and are
/// all admitted; concurrent disconnects lose decrements; and the counter expires 60 s after
/// its last write while the connections it counted are still open. There is no heartbeat.
#[derive(Debug, Clone)]
pub struct RacyCounter<S> {
    pub store: S,
    pub prefix: String,
    pub max: usize,
    pub ttl: Duration,
}

impl<S: Store> RacyCounter<S> {
    async fn count(&self, key: &str) -> StoreResult<i64> {
        Ok(match self.store.get(key).await? {
            Some(bytes) => String::from_utf8_lossy(&bytes).parse().unwrap_or(0),
            None => 0,
        })
    }
}

impl<S: Store> Connections for RacyCounter<S> {
    async fn connect(&self, user: &str, _connection: &str) -> StoreResult<bool> {
        let key = key(&self.prefix, user);
        let count = self.count(&key).await?;
        if count >= self.max as i64 {
            return Ok(false);
        }
        self.store.set(&key, (count + 1).to_string().into_bytes(), Some(self.ttl)).await?;
        Ok(true)
    }

    async fn heartbeat(&self, _user: &str, _connection: &str) -> StoreResult<bool> {
        Ok(true)
    }

    async fn disconnect(&self, user: &str, _connection: &str) -> StoreResult<()> {
        let key = key(&self.prefix, user);
        let count = self.count(&key).await?;
        self.store.set(&key, (count - 1).max(0).to_string().into_bytes(), Some(self.ttl)).await
    }
}

/// The seed's per-type `RateLimiter`: the same table, each type counted with `get` and
/// `set(current + 1, window)`, so concurrent messages of one type all pass the check.
pub type GetThenSetMessageLimits<S> = MessageLimits<GetThenSet<S>>;

/// [`GetThenSetMessageLimits`] over `store`.
pub fn get_then_set_message_limits<S: Store + Clone>(store: S) -> GetThenSetMessageLimits<S> {
    MessageLimits::with(|prefix, limit| GetThenSet { store: store.clone(), prefix, limit })
}

/// `message_sender`: `asyncio.wait_for(queue.get(), timeout=0.1)` re-armed after every
/// message, so the 100 ms run from the *newest* pending message. Under a steady trickle
/// (a message every 90 ms) nothing leaves until 10 have gathered, and the first has waited
/// about 900 ms by then.
#[derive(Debug, Clone)]
pub struct RestartingTimer<M> {
    config: BatchConfig,
    queue: VecDeque<M>,
    last_message: Millis,
    on_the_wire: bool,
}

impl<M> RestartingTimer<M> {
    pub fn new(config: BatchConfig) -> Self {
        Self { config, queue: VecDeque::new(), last_message: 0, on_the_wire: false }
    }

    fn due(&mut self, now: Millis) -> Option<Batch<M>> {
        let quiet = now.saturating_sub(self.last_message) >= millis(self.config.max_wait);
        if self.on_the_wire || self.queue.is_empty() || !(quiet || self.queue.len() >= self.config.max_batch)
        {
            return None;
        }
        self.on_the_wire = true;
        let size = self.queue.len().min(self.config.max_batch);
        Some(self.queue.drain(..size).collect())
    }
}

impl<M> Batching<M> for RestartingTimer<M> {
    fn push(&mut self, message: M, now: Millis) -> Result<Option<Batch<M>>, Full<M>> {
        if self.queue.len() >= self.config.bound {
            return Err(Full { message, pending: self.queue.len() });
        }
        self.queue.push_back(message);
        self.last_message = now;
        Ok(self.due(now))
    }

    fn poll(&mut self, now: Millis) -> Option<Batch<M>> {
        self.due(now)
    }

    fn sent(&mut self, now: Millis) -> Option<Batch<M>> {
        self.on_the_wire = false;
        self.due(now)
    }

    fn next_deadline(&self) -> Option<Millis> {
        if self.on_the_wire || self.queue.is_empty() {
            return None;
        }
        Some(self.last_message.saturating_add(millis(self.config.max_wait)))
    }

    fn pending(&self) -> usize {
        self.queue.len()
    }
}
