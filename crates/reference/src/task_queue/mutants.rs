//! The task queue as the field ran it, before and after the fix.

use crate::store::{Delivery, Store, StoreResult};

use super::{Consumer, TaskQueue, seed};

/// Ack on receive: Celery's default before the seed set `task_acks_late = True`. The message
/// is acknowledged as the worker receives it, before the task runs, so a worker killed
/// mid-task (out of memory, a deploy, the hard time limit) loses the task for good.
#[derive(Debug, Clone)]
pub struct AckOnReceive<S> {
    pub queue: TaskQueue<S>,
}

impl<S: Store> Consumer for AckOnReceive<S> {
    async fn take(&self) -> StoreResult<Option<Delivery>> {
        let Some(delivery) = self.queue.take().await? else { return Ok(None) };
        self.queue.ack(&delivery).await?;
        Ok(Some(delivery))
    }

    async fn apply(&self, delivery: &Delivery, effect: Vec<u8>) -> StoreResult<bool> {
        self.queue.apply(delivery, effect).await
    }

    /// Already acknowledged on receipt.
    async fn ack(&self, _: &Delivery) -> StoreResult<bool> {
        Ok(true)
    }
}

/// Ack late without idempotent effects: what the seed's fix shipped, `task_acks_late = True`
/// over tasks that write their result unconditionally. A worker that dies after the effect and
/// before the ack gets its task redelivered, and the effect is applied a second time.
#[derive(Debug, Clone)]
pub struct NotIdempotent<S> {
    pub queue: TaskQueue<S>,
}

impl<S: Store> Consumer for NotIdempotent<S> {
    async fn take(&self) -> StoreResult<Option<Delivery>> {
        self.queue.take().await
    }

    async fn apply(&self, delivery: &Delivery, effect: Vec<u8>) -> StoreResult<bool> {
        self.queue.effects.set(&self.queue.effect_key(delivery.id), effect, Some(seed::EFFECT_TTL)).await?;
        Ok(true)
    }

    async fn ack(&self, delivery: &Delivery) -> StoreResult<bool> {
        self.queue.ack(delivery).await
    }
}
