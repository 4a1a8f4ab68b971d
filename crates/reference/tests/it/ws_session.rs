//! #17 WebSocket sessions: connection slots, per-type message limits, the outgoing batcher.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::{Clock, ManualClock, Millis};
use reference::store::MemoryStore;
use reference::sync::block_on;
use reference::ws_session::batcher::{Batch, BatchConfig, Batcher, Batching, Full};
use reference::ws_session::invariant::{self, Event};
use reference::ws_session::mutants::{self, RacyCounter, RestartingTimer};
use reference::ws_session::suite::{self, Driver};
use reference::ws_session::{ConnectionSlots, Connections, MessageLimits, message_limit, seed};

use crate::common::model_rejects;

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

fn slots(store: &MemoryStore, max: usize) -> ConnectionSlots<MemoryStore> {
    ConnectionSlots::new(store.clone(), "ws:connections", max, seed::LEASE)
}

fn racy_counter(store: &MemoryStore, max: usize) -> RacyCounter<MemoryStore> {
    RacyCounter { store: store.clone(), prefix: "ws:connections".into(), max, ttl: seed::LEASE }
}

// --- connection slots: contention -----------------------------------------------------------

#[test]
fn ws_session_concurrent_connects_admit_at_most_five() {
    let (_, store) = rig();
    let max = seed::MAX_CONNECTIONS;
    suite::concurrent_connects(Arc::new(slots(&store, max)), max, 16, 300).unwrap();
}

#[test]
fn ws_session_mutant_racy_counter_caught_by_connect_contention() {
    let (_, store) = rig();
    let max = seed::MAX_CONNECTIONS;
    // Races are probabilistic on real threads; many rounds make a miss vanishingly unlikely.
    let violation =
        suite::concurrent_connects(Arc::new(racy_counter(&store, max)), max, 16, 2_000).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

#[test]
fn ws_session_concurrent_disconnects_free_every_slot() {
    let (_, store) = rig();
    // A limit of 16 so that 16 connections can close at once.
    suite::concurrent_disconnects(Arc::new(slots(&store, 16)), 16, 300).unwrap();
}

#[test]
fn ws_session_mutant_racy_counter_caught_by_disconnect_contention() {
    let (_, store) = rig();
    let violation = suite::concurrent_disconnects(Arc::new(racy_counter(&store, 16)), 16, 2_000).unwrap_err();
    assert_eq!(violation.rule, "slot-leak", "{violation}");
}

// --- connection slots: leases against the clock ---------------------------------------------

#[test]
fn ws_session_heartbeats_hold_slots() {
    let (clock, store) = rig();
    let max = seed::MAX_CONNECTIONS;
    suite::heartbeats_hold_slots(&slots(&store, max), &clock, max, seed::LEASE).unwrap();
}

#[test]
fn ws_session_mutant_racy_counter_caught_by_heartbeat_check() {
    let (clock, store) = rig();
    let max = seed::MAX_CONNECTIONS;
    // The counter expires 60 s after its last write while all five connections stay open.
    let violation =
        suite::heartbeats_hold_slots(&racy_counter(&store, max), &clock, max, seed::LEASE).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

#[test]
fn ws_session_crashed_process_slots_lapse_with_the_lease() {
    let (clock, store) = rig();
    let max = seed::MAX_CONNECTIONS;
    let conns = slots(&store, max);
    suite::lapsed_slots_freed(&conns, &clock, max, seed::LEASE).unwrap();
    assert_eq!(block_on(conns.live("crashed")).unwrap(), max);
}

#[test]
fn ws_session_disconnect_frees_the_slot_at_once() {
    let (_, store) = rig();
    let conns = slots(&store, 2);
    assert!(block_on(conns.connect("u", "a")).unwrap());
    assert!(block_on(conns.connect("u", "b")).unwrap());
    assert!(!block_on(conns.connect("u", "c")).unwrap());
    block_on(conns.disconnect("u", "a")).unwrap();
    assert!(block_on(conns.connect("u", "c")).unwrap());
    assert_eq!(block_on(conns.live("u")).unwrap(), 2);
}

// --- connection slots: model-based -----------------------------------------------------------

const MODEL_MAX: usize = 3;

#[derive(Debug, Clone, Copy)]
enum ConnOp {
    Connect(u8, u8),
    Heartbeat(u8, u8),
    Disconnect(u8, u8),
    Advance(u64),
}

fn conn_ops() -> impl Strategy<Value = Vec<ConnOp>> {
    let who = (0..2u8, 0..6u8);
    let op = prop_oneof![
        4 => who.clone().prop_map(|(u, c)| ConnOp::Connect(u, c)),
        2 => who.clone().prop_map(|(u, c)| ConnOp::Heartbeat(u, c)),
        2 => who.prop_map(|(u, c)| ConnOp::Disconnect(u, c)),
        2 => (0..=40_000u64).prop_map(ConnOp::Advance),
    ];
    proptest::collection::vec(op, 1..60)
}

/// The trivially correct model: per user, each live connection's lease deadline.
#[derive(Default)]
struct ConnModel {
    users: HashMap<u8, HashMap<u8, Millis>>,
}

impl ConnModel {
    fn acquire(&mut self, user: u8, conn: u8, now: Millis) -> bool {
        let live = self.users.entry(user).or_default();
        live.retain(|_, until| *until > now);
        if live.contains_key(&conn) || live.len() < MODEL_MAX {
            live.insert(conn, now + seed::LEASE.as_millis() as u64);
            return true;
        }
        false
    }

    fn release(&mut self, user: u8, conn: u8) {
        self.users.entry(user).or_default().remove(&conn);
    }
}

fn conns_against_model<C: Connections>(
    make: impl Fn(&MemoryStore, usize) -> C,
    ops: &[ConnOp],
) -> Result<(), String> {
    let (clock, store) = rig();
    let conns = make(&store, MODEL_MAX);
    let mut model = ConnModel::default();
    for (step, op) in ops.iter().enumerate() {
        let now = clock.now();
        let (got, want) = match *op {
            ConnOp::Advance(ms) => {
                clock.advance(Duration::from_millis(ms));
                continue;
            }
            ConnOp::Disconnect(u, c) => {
                block_on(conns.disconnect(&format!("u{u}"), &format!("c{c}"))).map_err(|e| e.to_string())?;
                model.release(u, c);
                continue;
            }
            ConnOp::Connect(u, c) => {
                (block_on(conns.connect(&format!("u{u}"), &format!("c{c}"))), model.acquire(u, c, now))
            }
            ConnOp::Heartbeat(u, c) => {
                (block_on(conns.heartbeat(&format!("u{u}"), &format!("c{c}"))), model.acquire(u, c, now))
            }
        };
        let got = got.map_err(|e| e.to_string())?;
        if got != want {
            return Err(format!("step {step} {op:?}: got {got}, model says {want}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ws_session_slots_match_model(ops in conn_ops()) {
        prop_assert_eq!(conns_against_model(slots, &ops), Ok(()));
    }
}

#[test]
fn ws_session_mutant_racy_counter_rejected_by_model() {
    assert!(model_rejects(conn_ops(), |ops| conns_against_model(racy_counter, ops)));
}

// --- per-type message limits -------------------------------------------------------------------

#[test]
fn ws_session_message_limits_follow_the_seed_table() {
    assert_eq!(message_limit("comment_add").max, 10);
    assert_eq!(message_limit("typing_indicator").max, 30);
    assert_eq!(message_limit("reaction_add").max, 20);
    assert_eq!(message_limit("poll_vote").max, 100);
    let (clock, store) = rig();
    let limits = MessageLimits::new(store);
    let admitted =
        |kind: &str| (0..40).filter(|_| block_on(limits.check("u", kind)).unwrap().allowed).count();
    assert_eq!(admitted("comment_add"), 10);
    assert_eq!(admitted("reaction_add"), 20, "types are counted apart");
    assert_eq!(admitted("comment_add"), 0);
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted("comment_add"), 10, "the window ends");
}

#[test]
fn ws_session_unknown_message_types_share_one_budget() {
    let (_, store) = rig();
    let limits = MessageLimits::new(store);
    let admitted = (0..150)
        .filter(|i| block_on(limits.check("u", &format!("invented_{}", i % 3))).unwrap().allowed)
        .count();
    assert_eq!(admitted, 100);
}

#[test]
fn ws_session_message_limits_exact_under_contention() {
    let (_, store) = rig();
    suite::message_limits(Arc::new(MessageLimits::new(store)), 16, 8, 40).unwrap();
}

#[test]
fn ws_session_mutant_get_then_set_message_limits_caught_by_contention() {
    let (_, store) = rig();
    let limits = Arc::new(mutants::get_then_set_message_limits(store));
    let violation = suite::message_limits(limits, 16, 8, 40).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

// --- the batcher -------------------------------------------------------------------------------

#[test]
fn ws_session_batcher_holds_under_a_trickle() {
    let config = BatchConfig::SEED;
    suite::trickle(Batcher::new(config), config, Duration::from_millis(90), 200).unwrap();
}

#[test]
fn ws_session_mutant_restarting_timer_caught_by_trickle() {
    let config = BatchConfig::SEED;
    let violation =
        suite::trickle(RestartingTimer::new(config), config, Duration::from_millis(90), 200).unwrap_err();
    assert_eq!(violation.rule, "late-delivery", "{violation}");
    // How late: the first message waits for nine more at 90 ms intervals.
    let mut driver = Driver::new(RestartingTimer::new(config), 0, true);
    for _ in 0..10 {
        driver.push();
        let next = driver.now() + 90;
        driver.advance_to(next);
    }
    let first = driver.events().iter().find_map(|e| match e {
        Event::Delivered { ids, at } if ids.contains(&0) => Some(*at),
        _ => None,
    });
    assert_eq!(first, Some(810));
}

#[test]
fn ws_session_batcher_holds_on_a_stalled_socket() {
    let config = BatchConfig::SEED;
    suite::stalled_socket(Batcher::new(config), config).unwrap();
}

#[test]
fn ws_session_batcher_refuses_the_101st_pending_message() {
    let mut batcher = Batcher::default();
    assert_eq!(batcher.push(0u32, 0), Ok(None));
    assert_eq!(batcher.poll(99), None);
    assert_eq!(batcher.poll(100), Some(vec![0]));
    for id in 1..=100 {
        assert_eq!(batcher.push(id, 100 + id as Millis), Ok(None), "the socket is still writing");
    }
    assert_eq!(batcher.push(101, 300), Err(Full { message: 101, pending: 100 }));
    assert_eq!(batcher.sent(300), Some((1..=10).collect::<Vec<_>>()));
    assert_eq!(batcher.pending(), 90);
}

const SMALL: BatchConfig = BatchConfig { max_batch: 3, max_wait: Duration::from_millis(100), bound: 5 };

#[derive(Debug, Clone, Copy)]
enum BatchOp {
    Push,
    Advance(u64),
    Written,
}

fn batch_ops() -> impl Strategy<Value = Vec<BatchOp>> {
    let op = prop_oneof![
        4 => Just(BatchOp::Push),
        3 => (0..=150u64).prop_map(BatchOp::Advance),
        2 => Just(BatchOp::Written),
    ];
    proptest::collection::vec(op, 1..80)
}

/// The trivially correct model: the pending messages with their push times, and whether a
/// batch is on the wire.
struct BatchModel {
    pending: VecDeque<(u64, Millis)>,
    next_id: u64,
    on_the_wire: bool,
}

impl BatchModel {
    fn take(&mut self, now: Millis) -> Option<Batch<u64>> {
        let oldest = self.pending.front()?.1;
        let due = self.pending.len() >= SMALL.max_batch || now >= oldest + SMALL.max_wait.as_millis() as u64;
        if self.on_the_wire || !due {
            return None;
        }
        self.on_the_wire = true;
        let size = self.pending.len().min(SMALL.max_batch);
        Some(self.pending.drain(..size).map(|(id, _)| id).collect())
    }

    fn deadline(&self) -> Option<Millis> {
        let oldest = self.pending.front()?.1;
        (!self.on_the_wire).then(|| oldest + SMALL.max_wait.as_millis() as u64)
    }
}

fn batcher_against_model<B: Batching<u64>>(
    make: impl Fn(BatchConfig) -> B,
    ops: &[BatchOp],
) -> Result<(), String> {
    let mut driver = Driver::new(make(SMALL), 0, false);
    let mut model = BatchModel { pending: VecDeque::new(), next_id: 0, on_the_wire: false };
    for (step, op) in ops.iter().enumerate() {
        // (what the batcher handed out, what the model says), per call.
        let mut outputs = Vec::new();
        match *op {
            BatchOp::Push => {
                let (accepted, got) = driver.push();
                let (id, now) = (model.next_id, driver.now());
                model.next_id += 1;
                let room = model.pending.len() < SMALL.bound;
                if room {
                    model.pending.push_back((id, now));
                }
                if accepted != room {
                    return Err(format!("step {step}: push of {id} accepted {accepted}, model says {room}"));
                }
                outputs.push((got, model.take(now)));
            }
            BatchOp::Advance(ms) => {
                let target = driver.now() + ms;
                loop {
                    let now = driver.now();
                    let deadlines = [driver.batcher().next_deadline(), model.deadline()];
                    let next = deadlines.into_iter().flatten().filter(|d| *d > now && *d <= target).min();
                    let Some(at) = next else { break };
                    outputs.push((driver.poll_at(at), model.take(at)));
                }
                outputs.push((driver.poll_at(target), model.take(target)));
            }
            BatchOp::Written => {
                if driver.on_the_wire() {
                    let got = driver.written();
                    model.on_the_wire = false;
                    outputs.push((got, model.take(driver.now())));
                }
            }
        }
        for (got, want) in outputs {
            if got != want {
                return Err(format!(
                    "step {step} {op:?} at {}: got {got:?}, model says {want:?}",
                    driver.now()
                ));
            }
        }
    }
    driver.settle();
    invariant::batches(SMALL, driver.events(), true).map_err(|v| v.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ws_session_batcher_matches_model(ops in batch_ops()) {
        prop_assert_eq!(batcher_against_model(Batcher::new, &ops), Ok(()));
    }
}

#[test]
fn ws_session_mutant_restarting_timer_rejected_by_model() {
    assert!(model_rejects(batch_ops(), |ops| batcher_against_model(RestartingTimer::new, ops)));
}

/// The history judge on its own: a batcher that never hands out a batch loses every message.
#[test]
fn ws_session_batch_judge_reports_lost_messages() {
    let events = [Event::Pushed { id: 0, at: 0 }, Event::Pushed { id: 1, at: 5 }];
    let violation = invariant::batches(SMALL, &events, true).unwrap_err();
    assert_eq!(violation.rule, "lost-message", "{violation}");
}
