//! The outgoing message batcher of one WebSocket: a pure state machine over the injected time.
//!
//! Messages queue in order. A batch leaves when 10 are pending or when the *oldest* pending
//! one has waited 100 ms, whichever comes first, and only while the socket is free: the batch
//! handed out is on the wire until [`Batching::sent`] reports it written, and the queue fills
//! meanwhile. At 100 pending the next message is refused and handed back, never dropped.
//!
//! The driver calls `push` for each message, `poll` when the clock reaches
//! [`Batching::next_deadline`], and `sent` when the socket has written a batch; each may hand
//! out the next batch to write.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::clock::{Millis, millis};

/// Messages written to the socket in one frame.
pub type Batch<M> = Vec<M>;

/// When batches leave and how much may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// A batch holds at most this many messages, and leaves as soon as that many are pending.
    pub max_batch: usize,
    /// A batch leaves once its oldest message has waited this long.
    pub max_wait: Duration,
    /// Pending messages beyond this are refused.
    pub bound: usize,
}

impl BatchConfig {
    /// 10 messages or 100 ms, 100 pending (seed 004).
    pub const SEED: BatchConfig =
        BatchConfig { max_batch: 10, max_wait: Duration::from_millis(100), bound: 100 };
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self::SEED
    }
}

/// The queue was full; the message is handed back for the caller to decide (typically: close
/// the socket as a slow consumer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full<M> {
    pub message: M,
    pub pending: usize,
}

impl<M> fmt::Display for Full<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "outgoing queue full with {} messages pending; the client is not reading", self.pending)
    }
}

impl<M: fmt::Debug> std::error::Error for Full<M> {}

/// A batcher of outgoing messages.
pub trait Batching<M> {
    /// Queues `message`; the batch to write now, if one is due.
    fn push(&mut self, message: M, now: Millis) -> Result<Option<Batch<M>>, Full<M>>;

    /// The batch to write now, if one is due.
    fn poll(&mut self, now: Millis) -> Option<Batch<M>>;

    /// The batch handed out last has been written; the next one to write now, if one is due.
    fn sent(&mut self, now: Millis) -> Option<Batch<M>>;

    /// When `poll` must next be called; `None` while nothing can become due by waiting alone.
    fn next_deadline(&self) -> Option<Millis>;

    fn pending(&self) -> usize;
}

/// The correct batcher: the wait runs from the oldest pending message.
#[derive(Debug, Clone)]
pub struct Batcher<M> {
    config: BatchConfig,
    queue: VecDeque<(M, Millis)>,
    on_the_wire: bool,
}

impl<M> Batcher<M> {
    pub fn new(config: BatchConfig) -> Self {
        Self { config, queue: VecDeque::new(), on_the_wire: false }
    }

    fn due(&mut self, now: Millis) -> Option<Batch<M>> {
        let (_, oldest) = self.queue.front()?;
        let waited = now.saturating_sub(*oldest) >= millis(self.config.max_wait);
        if self.on_the_wire || !(waited || self.queue.len() >= self.config.max_batch) {
            return None;
        }
        self.on_the_wire = true;
        let size = self.queue.len().min(self.config.max_batch);
        Some(self.queue.drain(..size).map(|(message, _)| message).collect())
    }
}

impl<M> Default for Batcher<M> {
    fn default() -> Self {
        Self::new(BatchConfig::SEED)
    }
}

impl<M> Batching<M> for Batcher<M> {
    fn push(&mut self, message: M, now: Millis) -> Result<Option<Batch<M>>, Full<M>> {
        if self.queue.len() >= self.config.bound {
            return Err(Full { message, pending: self.queue.len() });
        }
        self.queue.push_back((message, now));
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
        if self.on_the_wire {
            return None;
        }
        self.queue.front().map(|(_, oldest)| oldest.saturating_add(millis(self.config.max_wait)))
    }

    fn pending(&self) -> usize {
        self.queue.len()
    }
}
