//! #10 task queue with ack-late: two workers racing for one task, and a slow worker finishing
//! a task its lease no longer covers while the redelivery runs, every interleaving.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use loom::thread;
use reference::clock::ManualClock;
use reference::store::MemoryStore;
use reference::sync::block_on;
use reference::task_queue::invariant::{self, Drained};
use reference::task_queue::{Consumer, TaskQueue, mutants};

use crate::common::{Found, assert_caught, assert_holds, explore};

const VISIBILITY: Duration = Duration::from_secs(360);

fn queue() -> (Arc<ManualClock>, TaskQueue<MemoryStore>) {
    let clock = Arc::new(ManualClock::new(0));
    (clock.clone(), TaskQueue::new(MemoryStore::new(clock), "imports", VISIBILITY))
}

/// What the queue holds once the workers are done, with `applied` the times each task's
/// effect was reported as taking hold.
fn drained(queue: &TaskQueue<MemoryStore>, id: u64, applied: usize) -> Drained {
    let took_effect: BTreeSet<u64> = block_on(queue.effect(id)).unwrap().map(|_| id).into_iter().collect();
    Drained {
        enqueued: vec![id],
        applied: BTreeMap::from([(id, applied)]),
        took_effect,
        depth: block_on(queue.depth()).unwrap(),
    }
}

/// Takes a task, if any, and completes it; whether its effect took hold now.
fn work<C: Consumer>(consumer: &C) -> bool {
    match block_on(consumer.take()).unwrap() {
        Some(delivery) => block_on(consumer.complete(&delivery, b"done".to_vec())).unwrap().applied,
        None => false,
    }
}

/// One task, two workers taking at once: one of them runs it, once.
fn two_workers_one_task<C: Consumer + 'static>(make: impl Fn(TaskQueue<MemoryStore>) -> C, found: &Found) {
    let (_, queue) = queue();
    let id = block_on(queue.enqueue(b"task".to_vec())).unwrap();
    let consumer = Arc::new(make(queue.clone()));
    let other = {
        let consumer = Arc::clone(&consumer);
        thread::spawn(move || work(&*consumer))
    };
    let applied = usize::from(work(&*consumer)) + usize::from(other.join().unwrap());
    found.record(invariant::exactly_once(&drained(&queue, id, applied)));
}

/// A worker takes the task and outlives its lease; the reaper hands it to a second worker, and
/// the first finishes (effect, ack) while the second runs it: its effect still lands once.
fn slow_worker_and_redelivery<C: Consumer + 'static>(
    make: impl Fn(TaskQueue<MemoryStore>) -> C,
    found: &Found,
) {
    let (clock, queue) = queue();
    let id = block_on(queue.enqueue(b"task".to_vec())).unwrap();
    let consumer = Arc::new(make(queue.clone()));
    let first = block_on(consumer.take()).unwrap().expect("the task is ready");
    clock.advance(VISIBILITY);
    assert_eq!(block_on(queue.reap()).unwrap(), 1);
    let slow = {
        let consumer = Arc::clone(&consumer);
        thread::spawn(move || block_on(consumer.complete(&first, b"done".to_vec())).unwrap().applied)
    };
    let applied = usize::from(work(&*consumer)) + usize::from(slow.join().unwrap());
    found.record(invariant::exactly_once(&drained(&queue, id, applied)));
}

#[test]
fn task_queue_two_workers_run_one_task_once() {
    assert_holds(&explore(|found| two_workers_one_task(|queue| queue, found)));
}

#[test]
fn task_queue_slow_worker_and_redelivery_take_effect_once() {
    assert_holds(&explore(|found| slow_worker_and_redelivery(|queue| queue, found)));
}

#[test]
fn task_queue_mutant_not_idempotent_caught_by_loom() {
    let found = explore(|found| slow_worker_and_redelivery(|queue| mutants::NotIdempotent { queue }, found));
    assert_caught(&found, "effect-duplicated");
}
