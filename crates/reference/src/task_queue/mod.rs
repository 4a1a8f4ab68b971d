//! #10 Task queue with ack-late (seed 002, "Fix #4").
//!
//! A producer enqueues; a worker takes one task at a time (prefetch 1), hidden from the other
//! workers for the visibility timeout, runs the handler, records the handler's effect, and only
//! then acknowledges (ack late). A worker that dies mid-task never acknowledges, so once the
//! visibility timeout has passed the reaper puts the task back and another worker runs it. The
//! effect is recorded under the task id with `SET NX`, so a task whose worker died after its
//! effect took hold is not applied again on redelivery: once the queue drains, every enqueued
//! task has taken effect exactly once.
//!
//! The visibility timeout is at least the hard time limit ([`seed::VISIBILITY`]): a task may
//! legitimately run until the hard limit kills it, and a shorter timeout would hand a task that
//! is still running to a second worker. The margin above it covers the time between reserve and
//! start and the clock skew between worker and broker.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::future::Future;
use std::time::Duration;

use crate::store::{Delivery, QueueDepth, Store, StoreResult};

pub const COMPONENT: &str = "task-queue";

/// The seed's worker settings.
pub mod seed {
    use std::time::Duration;

    /// `task_soft_time_limit`: the task is told to wrap up.
    pub const SOFT_LIMIT: Duration = Duration::from_secs(240);
    /// `task_time_limit`: the task is killed.
    pub const HARD_LIMIT: Duration = Duration::from_secs(300);
    /// The hard limit plus a minute: no task still running is ever redelivered.
    pub const VISIBILITY: Duration = Duration::from_secs(360);
    /// How long a task's effect record is kept to deduplicate redeliveries; the queue must
    /// drain well within it.
    pub const EFFECT_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
}

/// How one task run by [`Consumer::run_once`] or [`Consumer::complete`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub id: u64,
    pub attempt: u32,
    /// The effect took hold now; false if an earlier delivery of the task applied it.
    pub applied: bool,
    /// The acknowledgement removed the task; false if its visibility timeout had passed and it
    /// was redelivered.
    pub acked: bool,
}

/// A worker's side of the queue: the correct one and its mutants.
pub trait Consumer: Send + Sync {
    /// Takes the oldest ready task, if any.
    fn take(&self) -> impl Future<Output = StoreResult<Option<Delivery>>> + Send;

    /// Records `effect` as the task's effect unless an earlier delivery already did; true if
    /// it took hold now.
    fn apply(&self, delivery: &Delivery, effect: Vec<u8>) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Acknowledges the task: it will not be delivered again.
    fn ack(&self, delivery: &Delivery) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Applies the effect of a taken task, then acknowledges it.
    fn complete(
        &self,
        delivery: &Delivery,
        effect: Vec<u8>,
    ) -> impl Future<Output = StoreResult<Completion>> + Send
    where
        Self: Sized,
    {
        async move {
            let applied = self.apply(delivery, effect).await?;
            let acked = self.ack(delivery).await?;
            Ok(Completion { id: delivery.id, attempt: delivery.attempt, applied, acked })
        }
    }

    /// Takes one task, runs `handler` on it and completes it with the effect it returns; `None`
    /// if the queue had nothing ready.
    fn run_once<H>(&self, handler: H) -> impl Future<Output = StoreResult<Option<Completion>>> + Send
    where
        H: FnOnce(&Delivery) -> Vec<u8> + Send,
        Self: Sized,
    {
        async move {
            let Some(delivery) = self.take().await? else { return Ok(None) };
            let effect = handler(&delivery);
            self.complete(&delivery, effect).await.map(Some)
        }
    }
}

/// The correct queue: producer, ack-late consumer and reaper over one store queue.
#[derive(Debug, Clone)]
pub struct TaskQueue<S> {
    store: S,
    /// Where the effects are recorded: the queue's store unless [`TaskQueue::with_effects`].
    pub(crate) effects: S,
    name: String,
    visibility: Duration,
}

impl<S: Store + Clone> TaskQueue<S> {
    /// The queue `name`, whose tasks stay hidden for `visibility` once taken.
    pub fn new(store: S, name: impl Into<String>, visibility: Duration) -> Self {
        Self { effects: store.clone(), store, name: name.into(), visibility }
    }
}

impl<S: Store> TaskQueue<S> {
    /// The same queue with its effects recorded in `effects`: a broker that loses its data (a
    /// Redis restarted without persistence) then loses tasks, never the record of which took
    /// effect, so a task driven again is not applied twice. The record is keyed by the
    /// delivery's `id`, and an empty broker numbers its tasks from 1 again: a caller whose
    /// effects outlive the broker applies them under an id of the task's own (a `Delivery` whose
    /// `id` is the task's identity, as the reference stack's workers do), or a new task finds an
    /// old one's effect under its number and is skipped.
    pub fn with_effects(self, effects: S) -> Self {
        Self { effects, ..self }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn visibility(&self) -> Duration {
        self.visibility
    }

    pub async fn enqueue(&self, payload: Vec<u8>) -> StoreResult<u64> {
        self.store.enqueue(&self.name, payload).await
    }

    /// Puts back every task whose worker held it past the visibility timeout; how many.
    pub async fn reap(&self) -> StoreResult<usize> {
        self.store.requeue_expired(&self.name).await
    }

    pub async fn depth(&self) -> StoreResult<QueueDepth> {
        self.store.queue_depth(&self.name).await
    }

    pub fn effect_key(&self, id: u64) -> String {
        format!("effect:{}:{id}", self.name)
    }

    /// The effect task `id` took, if it took one.
    pub async fn effect(&self, id: u64) -> StoreResult<Option<Vec<u8>>> {
        self.effects.get(&self.effect_key(id)).await
    }
}

impl<S: Store> Consumer for TaskQueue<S> {
    async fn take(&self) -> StoreResult<Option<Delivery>> {
        self.store.reserve(&self.name, self.visibility).await
    }

    async fn apply(&self, delivery: &Delivery, effect: Vec<u8>) -> StoreResult<bool> {
        self.effects.set_nx(&self.effect_key(delivery.id), effect, seed::EFFECT_TTL).await
    }

    async fn ack(&self, delivery: &Delivery) -> StoreResult<bool> {
        self.store.ack(&self.name, delivery.id).await
    }
}
