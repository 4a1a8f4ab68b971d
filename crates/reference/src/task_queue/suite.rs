//! The task-queue suite: workers on real threads, some dying mid-task, draining a queue; run
//! against any consumer and store.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::ManualClock;
use crate::invariant::Judgement;
use crate::store::{Delivery, Store};
use crate::sync::block_on;
use crate::testing::burst;

use super::invariant::{self, Drained};
use super::{Consumer, TaskQueue};

/// What happens to a worker holding a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It runs the task, records the effect and acknowledges.
    Complete,
    /// It dies before the task takes effect.
    DieBeforeEffect,
    /// It dies after the effect took hold, before acknowledging.
    DieAfterEffect,
}

/// The handler every suite worker runs: the task's effect, a pure function of its payload.
pub fn handler(delivery: &Delivery) -> Vec<u8> {
    [b"done:".as_slice(), &delivery.payload].concat()
}

/// One worker step: takes a task and meets `fate` with it; the task's id and whether its
/// effect took hold now, or `None` if nothing was ready.
pub fn step<C: Consumer>(consumer: &C, fate: impl FnOnce(&Delivery) -> Fate) -> Option<(u64, bool)> {
    let delivery = block_on(consumer.take()).expect("store call")?;
    let applied = match fate(&delivery) {
        Fate::DieBeforeEffect => false,
        Fate::DieAfterEffect => block_on(consumer.apply(&delivery, handler(&delivery))).expect("store call"),
        Fate::Complete => {
            block_on(consumer.complete(&delivery, handler(&delivery))).expect("store call").applied
        }
    };
    Some((delivery.id, applied))
}

/// Observes a queue the workers stopped finding work in.
pub fn observe<S: Store>(queue: &TaskQueue<S>, enqueued: Vec<u64>, applied: BTreeMap<u64, usize>) -> Drained {
    let took_effect = enqueued
        .iter()
        .copied()
        .filter(|id| block_on(queue.effect(*id)).expect("store call").is_some())
        .collect();
    let depth = block_on(queue.depth()).expect("store call");
    Drained { enqueued, applied, took_effect, depth }
}

/// Enqueues `tasks` tasks, then `workers` threads drain the queue through `consumer`, worker
/// `w` meeting `fate(w, delivery)` with each task it takes (a dead worker is replaced at once);
/// whenever the workers run dry, the clock moves past the visibility timeout and the reaper
/// runs. Every task takes effect exactly once and the queue drains within `max_rounds`.
pub fn drain_with_deaths<C, S, F>(
    consumer: Arc<C>,
    queue: &TaskQueue<S>,
    clock: &ManualClock,
    (tasks, workers, max_rounds): (usize, usize, usize),
    fate: F,
) -> Judgement
where
    C: Consumer + 'static,
    S: Store,
    F: Fn(usize, &Delivery) -> Fate + Send + Sync + 'static,
{
    let enqueued: Vec<u64> = (0..tasks)
        .map(|i| block_on(queue.enqueue(format!("task-{i}").into_bytes())).expect("store call"))
        .collect();
    let fate = Arc::new(fate);
    let mut applied = BTreeMap::new();
    for _ in 0..max_rounds {
        let (consumer, fate) = (Arc::clone(&consumer), Arc::clone(&fate));
        let steps = burst(workers, move |w| {
            std::iter::from_fn(|| step(&*consumer, |d| fate(w, d))).collect::<Vec<_>>()
        });
        for (id, took) in steps.into_iter().flatten() {
            *applied.entry(id).or_insert(0) += usize::from(took);
        }
        if block_on(queue.depth()).expect("store call") == Default::default() {
            break;
        }
        clock.advance(queue.visibility());
        block_on(queue.reap()).expect("store call");
    }
    invariant::exactly_once(&observe(queue, enqueued, applied))
}
