//! #10 task queue with ack-late.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::{Clock, ManualClock};
use reference::store::{Delivery, MemoryStore, QueueDepth};
use reference::sync::block_on;
use reference::task_queue::invariant::{self, Drained};
use reference::task_queue::suite::{self, Fate};
use reference::task_queue::{Consumer, TaskQueue, mutants, seed};

use crate::common::model_rejects;

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

fn correct(store: &MemoryStore) -> TaskQueue<MemoryStore> {
    TaskQueue::new(store.clone(), "imports", seed::VISIBILITY)
}

fn ack_on_receive(store: &MemoryStore) -> mutants::AckOnReceive<MemoryStore> {
    mutants::AckOnReceive { queue: correct(store) }
}

fn not_idempotent(store: &MemoryStore) -> mutants::NotIdempotent<MemoryStore> {
    mutants::NotIdempotent { queue: correct(store) }
}

/// Worker `w` dies before the effect on a share of first deliveries, and after the effect
/// (before the ack) on a share of first and second ones.
fn deaths(w: usize, delivery: &Delivery) -> Fate {
    let (id, w) = (delivery.id, w as u64);
    if delivery.attempt == 1 && (id + w) % 7 == 0 {
        Fate::DieBeforeEffect
    } else if delivery.attempt <= 2 && (id * 3 + w) % 11 == 0 {
        Fate::DieAfterEffect
    } else {
        Fate::Complete
    }
}

// --- contention: real threads -------------------------------------------------------------

#[test]
fn task_queue_contention_drains_exactly_once_despite_worker_deaths() {
    let (clock, store) = rig();
    let consumer = Arc::new(correct(&store));
    suite::drain_with_deaths(consumer, &correct(&store), &clock, (4_000, 8, 10), deaths).unwrap();
}

#[test]
fn task_queue_mutant_ack_on_receive_caught_by_contention() {
    let (clock, store) = rig();
    let consumer = Arc::new(ack_on_receive(&store));
    let violation =
        suite::drain_with_deaths(consumer, &correct(&store), &clock, (4_000, 8, 10), deaths).unwrap_err();
    assert_eq!(violation.rule, "task-lost", "{violation}");
}

#[test]
fn task_queue_mutant_not_idempotent_caught_by_contention() {
    let (clock, store) = rig();
    let consumer = Arc::new(not_idempotent(&store));
    let violation =
        suite::drain_with_deaths(consumer, &correct(&store), &clock, (4_000, 8, 10), deaths).unwrap_err();
    assert_eq!(violation.rule, "effect-duplicated", "{violation}");
}

// --- redelivery ----------------------------------------------------------------------------

#[test]
fn task_queue_visibility_outlasts_the_hard_time_limit() {
    assert!(seed::SOFT_LIMIT < seed::HARD_LIMIT);
    assert!(seed::VISIBILITY >= seed::HARD_LIMIT, "a task still running would be redelivered");
}

#[test]
fn task_queue_dead_worker_task_redelivered_after_visibility() {
    let (clock, store) = rig();
    let queue = correct(&store);
    let id = block_on(queue.enqueue(b"video-1".to_vec())).unwrap();
    assert_eq!(suite::step(&queue, |_| Fate::DieBeforeEffect), Some((id, false)));
    // Still running as far as anyone can tell until the visibility timeout has passed.
    clock.advance(seed::HARD_LIMIT);
    assert_eq!(block_on(queue.reap()).unwrap(), 0);
    assert_eq!(block_on(queue.take()).unwrap(), None);
    clock.advance(seed::VISIBILITY - seed::HARD_LIMIT);
    assert_eq!(block_on(queue.reap()).unwrap(), 1);
    let completion = block_on(queue.run_once(suite::handler)).unwrap().unwrap();
    assert_eq!(
        (completion.id, completion.attempt, completion.applied, completion.acked),
        (id, 2, true, true)
    );
    assert_eq!(block_on(queue.effect(id)).unwrap(), Some(b"done:video-1".to_vec()));
    assert_eq!(block_on(queue.depth()).unwrap(), QueueDepth::default());
}

#[test]
fn task_queue_redelivered_task_that_took_effect_is_not_applied_twice() {
    let (clock, store) = rig();
    let queue = correct(&store);
    let id = block_on(queue.enqueue(b"video-1".to_vec())).unwrap();
    assert_eq!(suite::step(&queue, |_| Fate::DieAfterEffect), Some((id, true)));
    clock.advance(seed::VISIBILITY);
    block_on(queue.reap()).unwrap();
    let completion = block_on(queue.run_once(suite::handler)).unwrap().unwrap();
    assert_eq!((completion.id, completion.applied, completion.acked), (id, false, true));
}

#[test]
fn task_queue_check_rejects_undrained_lost_and_duplicated() {
    let drained = Drained {
        enqueued: vec![1, 2],
        applied: BTreeMap::from([(1, 1), (2, 1)]),
        took_effect: BTreeSet::from([1, 2]),
        depth: QueueDepth::default(),
    };
    invariant::exactly_once(&drained).unwrap();
    let undrained = Drained { depth: QueueDepth { ready: 0, in_flight: 1 }, ..drained.clone() };
    assert_eq!(invariant::exactly_once(&undrained).unwrap_err().rule, "queue-not-drained");
    let lost = Drained { took_effect: BTreeSet::from([1]), ..drained.clone() };
    assert_eq!(invariant::exactly_once(&lost).unwrap_err().rule, "task-lost");
    let duplicated = Drained { applied: BTreeMap::from([(1, 2), (2, 1)]), ..drained };
    assert_eq!(invariant::exactly_once(&duplicated).unwrap_err().rule, "effect-duplicated");
}

// --- model-based ---------------------------------------------------------------------------

/// One step of a history: the producer enqueues, a worker takes a task and meets its fate,
/// the clock moves, or the reaper runs.
#[derive(Debug, Clone, Copy)]
enum Op {
    Enqueue,
    Work(Fate),
    Advance(u64),
    Reap,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let fate = prop_oneof![
        3 => Just(Fate::Complete),
        1 => Just(Fate::DieBeforeEffect),
        1 => Just(Fate::DieAfterEffect),
    ];
    let op = prop_oneof![
        3 => Just(Op::Enqueue),
        4 => fate.prop_map(Op::Work),
        2 => (0..=400_000u64).prop_map(Op::Advance),
        1 => Just(Op::Reap),
    ];
    proptest::collection::vec(op, 1..60)
}

/// The trivially correct model: a deque of ready tasks, a map of tasks in flight with their
/// deadlines, and the set of tasks that took effect.
#[derive(Debug, Default)]
struct Model {
    next_id: u64,
    ready: VecDeque<(u64, u32)>,
    in_flight: BTreeMap<u64, (u32, u64)>,
    effects: BTreeSet<u64>,
}

impl Model {
    fn enqueue(&mut self) -> u64 {
        self.next_id += 1;
        self.ready.push_back((self.next_id, 0));
        self.next_id
    }

    fn work(&mut self, fate: Fate, now: u64) -> Option<(u64, bool)> {
        let (id, attempt) = self.ready.pop_front()?;
        self.in_flight.insert(id, (attempt + 1, now + seed::VISIBILITY.as_millis() as u64));
        let applied = fate != Fate::DieBeforeEffect && self.effects.insert(id);
        if fate == Fate::Complete {
            self.in_flight.remove(&id);
        }
        Some((id, applied))
    }

    /// Expired tasks go back to the head of the queue, oldest first.
    fn reap(&mut self, now: u64) -> usize {
        let expired: Vec<u64> =
            self.in_flight.iter().filter(|(_, (_, at))| *at <= now).map(|(id, _)| *id).collect();
        for id in expired.iter().rev() {
            let (attempt, _) = self.in_flight.remove(id).expect("listed above");
            self.ready.push_front((*id, attempt));
        }
        expired.len()
    }

    fn depth(&self) -> QueueDepth {
        QueueDepth { ready: self.ready.len(), in_flight: self.in_flight.len() }
    }
}

/// Runs `ops` against a consumer and the model, then drains the queue; the first
/// disagreement or broken invariant, if any.
fn against_model<C: Consumer>(make: impl Fn(&MemoryStore) -> C, ops: &[Op]) -> Result<(), String> {
    let (clock, store) = rig();
    let (queue, consumer) = (correct(&store), make(&store));
    let mut model = Model::default();
    let (mut enqueued, mut applied) = (Vec::new(), BTreeMap::new());
    for (step, op) in ops.iter().enumerate() {
        let now = clock.now();
        match *op {
            Op::Enqueue => {
                let id = block_on(queue.enqueue(format!("task-{step}").into_bytes()))
                    .map_err(|e| e.to_string())?;
                enqueued.push(id);
                let want = model.enqueue();
                if id != want {
                    return Err(format!("step {step}: enqueued as {id}, model says {want}"));
                }
            }
            Op::Work(fate) => {
                let got = suite::step(&consumer, |_| fate);
                let want = model.work(fate, now);
                if got != want {
                    return Err(format!("step {step} {op:?}: got {got:?}, model says {want:?}"));
                }
                if let Some((id, true)) = got {
                    *applied.entry(id).or_insert(0) += 1;
                }
            }
            Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            Op::Reap => {
                let got = block_on(queue.reap()).map_err(|e| e.to_string())?;
                let want = model.reap(now);
                if got != want {
                    return Err(format!("step {step}: reaped {got}, model says {want}"));
                }
            }
        }
        let depth = block_on(queue.depth()).map_err(|e| e.to_string())?;
        if depth != model.depth() {
            return Err(format!("step {step} {op:?}: depth {depth:?}, model says {:?}", model.depth()));
        }
    }
    // Every worker still holding a task has died by now: let the reaper bring them back.
    clock.advance(seed::VISIBILITY);
    block_on(queue.reap()).map_err(|e| e.to_string())?;
    while let Some((id, took)) = suite::step(&consumer, |_| Fate::Complete) {
        *applied.entry(id).or_insert(0) += usize::from(took);
    }
    for (n, id) in enqueued.iter().enumerate() {
        let effect = block_on(queue.effect(*id)).map_err(|e| e.to_string())?;
        if effect.as_ref().is_some_and(|e| *e != format!("done:task-{}", ops_index(ops, n)).into_bytes()) {
            return Err(format!("task {id} took effect {effect:?}"));
        }
    }
    invariant::exactly_once(&suite::observe(&queue, enqueued, applied)).map_err(|v| v.to_string())
}

/// The step index of the `n`-th `Enqueue` in `ops`: its payload is `task-{step}`.
fn ops_index(ops: &[Op], n: usize) -> usize {
    ops.iter()
        .enumerate()
        .filter(|(_, op)| matches!(op, Op::Enqueue))
        .nth(n)
        .map(|(i, _)| i)
        .expect("n-th enqueue")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn task_queue_matches_model(ops in ops()) {
        prop_assert_eq!(against_model(correct, &ops), Ok(()));
    }
}

#[test]
fn task_queue_mutant_ack_on_receive_rejected_by_model() {
    assert!(model_rejects(ops(), |ops| against_model(ack_on_receive, ops)));
}

#[test]
fn task_queue_mutant_not_idempotent_rejected_by_model() {
    assert!(model_rejects(ops(), |ops| against_model(not_idempotent, ops)));
}

// --- effects kept apart from the broker -------------------------------------------------------

/// The queue's store lost (a broker restarted empty), the effects' store kept: the same task
/// delivered again by a new broker is not applied a second time; recorded in the broker, its
/// effect is lost with it and applied again.
#[test]
fn task_queue_effects_kept_apart_outlive_the_brokers_data() {
    let (clock, records) = rig();
    let run = |effects: Option<&MemoryStore>| {
        let broker = MemoryStore::new(clock.clone());
        let queue = TaskQueue::new(broker, "imports", seed::VISIBILITY);
        match effects {
            Some(effects) => queue.with_effects(effects.clone()),
            None => queue,
        }
    };
    let drive = |queue: &TaskQueue<MemoryStore>| {
        block_on(async {
            queue.enqueue(b"video-1".to_vec()).await.unwrap();
            queue.run_once(|d| d.payload.clone()).await.unwrap().unwrap()
        })
    };
    let first = drive(&run(Some(&records)));
    assert!(first.applied && first.acked, "{first:?}");
    // A new, empty broker hands out the same id again: the effect recorded apart holds.
    let again = drive(&run(Some(&records)));
    assert_eq!(again.id, first.id);
    assert!(!again.applied, "applied twice across the broker's loss: {again:?}");
    // Which is also why an effect kept apart must be keyed by the task, not the broker's number:
    // another task that an empty broker numbers 1 finds the first one's effect and is skipped.
    let other = block_on(async {
        let queue = run(Some(&records));
        queue.enqueue(b"video-2".to_vec()).await.unwrap();
        queue.run_once(|d| d.payload.clone()).await.unwrap().unwrap()
    });
    assert_eq!(other.id, first.id);
    assert!(!other.applied, "{other:?}");
    assert_eq!(
        block_on(run(Some(&records)).effect(first.id)).unwrap().as_deref(),
        Some(&b"video-1"[..]),
        "the record names the first task's effect, not the second's"
    );
    // Effects in the broker: lost with it.
    let (a, b) = (drive(&run(None)), drive(&run(None)));
    assert_eq!(a.id, b.id);
    assert!(a.applied && b.applied, "{a:?} {b:?}");
}
