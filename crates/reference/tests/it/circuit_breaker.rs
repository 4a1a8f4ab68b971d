//! #7 circuit breaker.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::circuit_breaker::{
    Breaker, CallError, CallOutcome, CircuitBreaker, Phase, Policy, State, call, invariant, mutants, seed,
};
use reference::clock::{Clock, ManualClock};
use reference::store::MemoryStore;
use reference::sync::block_on;

use crate::common::model_rejects;

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

fn correct(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    key: &str,
    policy: Policy,
) -> CircuitBreaker<MemoryStore> {
    CircuitBreaker::new(store.clone(), clock.clone(), key, policy)
}

fn half_open_admits_all(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    key: &str,
    policy: Policy,
) -> mutants::HalfOpenAdmitsAll<MemoryStore> {
    mutants::HalfOpenAdmitsAll { breaker: correct(store, clock, key, policy) }
}

// The contention suites and the lifecycle (and the mutant each catches) run in the store
// conformance suite (`conformance.rs`), on this store as on Redis and PostgreSQL.

#[test]
fn circuit_breaker_state_shared_across_instances() {
    let (clock, store) = rig();
    let (a, b) = (correct(&store, &clock, "cb", seed::POLICY), correct(&store, &clock, "cb", seed::POLICY));
    for _ in 0..seed::POLICY.failure_threshold {
        let result = block_on(call(&a, || async { Err::<(), _>("down") }));
        assert!(matches!(result, Err(CallError::Upstream("down"))), "{result:?}");
    }
    let reached = Cell::new(false);
    let result = block_on(call(&b, || async {
        reached.set(true);
        Ok::<_, &str>(())
    }));
    let Err(CallError::Rejected(rejected)) = result else { panic!("instance b was not refused: {result:?}") };
    assert_eq!(rejected.phase, Phase::Open);
    assert_eq!(rejected.retry_after, seed::POLICY.open_for);
    assert!(!reached.get(), "an open breaker called the upstream");
}

#[test]
fn circuit_breaker_check_rejects_calls_while_open_and_lost_failures() {
    // The checks the suites lean on fail when they should.
    assert_eq!(invariant::fails_fast(3, 1).unwrap_err().rule, "call-while-open");
    assert_eq!(invariant::one_trial(3, 0).unwrap_err().rule, "no-trial");
    let closed = State::Closed { generation: 0, failures: 2 };
    assert_eq!(invariant::failures_counted(3, &closed).unwrap_err().rule, "lost-failure");
    assert_eq!(invariant::opens_at_threshold(5, 4, Phase::Open).unwrap_err().rule, "opened-before-threshold");
}

#[test]
fn circuit_breaker_record_round_trips() {
    for state in [
        State::INITIAL,
        State::Closed { generation: 7, failures: 4 },
        State::Open { generation: 8, until: 1_700_000_060_000 },
        State::HalfOpen { generation: 9, lease_until: 1_700_000_070_000 },
    ] {
        assert_eq!(State::decode(&state.encode()), Some(state));
    }
    assert_eq!(State::decode(b"open 1"), None);
    assert_eq!(State::decode(b"ajar 1 2"), None);
}

// --- model-based ---------------------------------------------------------------------------

/// One step of a history: a whole call, the start of a call whose permit is held, the end of a
/// held call (`index` modulo how many are held), or the clock moving on.
#[derive(Debug, Clone, Copy)]
enum Op {
    Call { ok: bool },
    Begin,
    End { index: usize, ok: bool },
    Advance(u64),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => prop::bool::weighted(0.35).prop_map(|ok| Op::Call { ok }),
        2 => Just(Op::Begin),
        2 => (0..4usize, any::<bool>()).prop_map(|(index, ok)| Op::End { index, ok }),
        3 => (0..=1_500u64).prop_map(Op::Advance),
    ];
    proptest::collection::vec(op, 1..80)
}

const SMALL: Policy = Policy {
    failure_threshold: 3,
    open_for: Duration::from_millis(1_000),
    trial_timeout: Duration::from_millis(300),
};

/// The trivially correct model: the breaker's states as a plain machine. `epoch` counts
/// transitions; a ticket's result counts only in the epoch it was issued in.
#[derive(Debug)]
struct Model {
    state: ModelState,
    epoch: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelState {
    Closed(u32),
    Open(u64),
    Trial(u64),
}

#[derive(Debug, Clone, Copy)]
struct Ticket {
    epoch: u64,
    trial: bool,
}

impl Model {
    fn new() -> Self {
        Self { state: ModelState::Closed(0), epoch: 0 }
    }

    fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    fn to(&mut self, state: ModelState) {
        self.epoch += 1;
        self.state = state;
    }

    /// A ticket, or how long until one could be had.
    fn acquire(&mut self, now: u64) -> Result<Ticket, u64> {
        match self.state {
            ModelState::Closed(_) => Ok(Ticket { epoch: self.epoch, trial: false }),
            ModelState::Open(until) | ModelState::Trial(until) if now < until => Err(until - now),
            ModelState::Open(_) | ModelState::Trial(_) => {
                self.to(ModelState::Trial(now + Self::ms(SMALL.trial_timeout)));
                Ok(Ticket { epoch: self.epoch, trial: true })
            }
        }
    }

    fn record(&mut self, ticket: Ticket, ok: bool, now: u64) {
        if ticket.epoch != self.epoch {
            return;
        }
        let reopen = ModelState::Open(now + Self::ms(SMALL.open_for));
        match (self.state, ticket.trial, ok) {
            (ModelState::Closed(_), false, true) => self.state = ModelState::Closed(0),
            (ModelState::Closed(n), false, false) if n + 1 >= SMALL.failure_threshold => self.to(reopen),
            (ModelState::Closed(n), false, false) => self.state = ModelState::Closed(n + 1),
            (ModelState::Trial(_), true, true) => self.to(ModelState::Closed(0)),
            (ModelState::Trial(_), true, false) => self.to(reopen),
            _ => {}
        }
    }

    fn phase(&self, now: u64) -> (Phase, u32) {
        match self.state {
            ModelState::Closed(n) => (Phase::Closed, n),
            ModelState::Open(until) if now < until => (Phase::Open, 0),
            ModelState::Open(_) | ModelState::Trial(_) => (Phase::HalfOpen, 0),
        }
    }
}

/// Runs `ops` against a breaker and the model; the first disagreement, if any.
fn against_model<B: Breaker>(
    make: impl Fn(&MemoryStore, &Arc<ManualClock>, &str, Policy) -> B,
    ops: &[Op],
) -> Result<(), String> {
    let (clock, store) = rig();
    let breaker = make(&store, &clock, "cb", SMALL);
    let mut model = Model::new();
    let mut held = Vec::new();
    let (mut upstream, mut model_upstream) = (0u64, 0u64);
    for (step, op) in ops.iter().enumerate() {
        let now = clock.now();
        match *op {
            Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            Op::Call { ok } => {
                let reached = Cell::new(0);
                let result = block_on(call(&breaker, || async {
                    reached.set(1);
                    if ok { Ok(()) } else { Err("down") }
                }));
                let got = match result {
                    Ok(()) | Err(CallError::Upstream(_)) => Ok(()),
                    Err(CallError::Rejected(r)) => Err(r.retry_after.as_millis() as u64),
                    Err(CallError::Store(e)) => return Err(e.to_string()),
                };
                let want = model.acquire(now).map(|ticket| model.record(ticket, ok, now));
                if got != want {
                    return Err(format!("step {step} {op:?}: got {got:?}, model says {want:?}"));
                }
                upstream += reached.get();
                model_upstream += u64::from(want.is_ok());
                if upstream != model_upstream {
                    return Err(format!(
                        "step {step}: {upstream} upstream calls, model says {model_upstream}"
                    ));
                }
            }
            Op::Begin => {
                let got = block_on(breaker.acquire()).map_err(|e| e.to_string())?;
                let want = model.acquire(now);
                let (g, w) = (
                    got.as_ref().map(|p| p.is_trial()).map_err(|r| r.retry_after.as_millis() as u64),
                    want.map(|t| t.trial),
                );
                if g != w {
                    return Err(format!("step {step} {op:?}: got {g:?}, model says {w:?}"));
                }
                if let (Ok(permit), Ok(ticket)) = (got, want) {
                    held.push((permit, ticket));
                }
            }
            Op::End { index, ok } => {
                if !held.is_empty() {
                    let (permit, ticket) = held.remove(index % held.len());
                    let outcome = if ok { CallOutcome::Success } else { CallOutcome::Failure };
                    block_on(breaker.record(permit, outcome)).map_err(|e| e.to_string())?;
                    model.record(ticket, ok, now);
                }
            }
        }
        let now = clock.now();
        let state = block_on(breaker.state()).map_err(|e| e.to_string())?;
        let got = match state {
            State::Closed { failures, .. } => (Phase::Closed, failures),
            other => (other.phase(now), 0),
        };
        if got != model.phase(now) {
            return Err(format!("step {step} {op:?}: breaker {state:?}, model {:?}", model.state));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn circuit_breaker_matches_model(ops in ops()) {
        prop_assert_eq!(against_model(correct, &ops), Ok(()));
    }
}

#[test]
fn circuit_breaker_mutant_half_open_admits_all_rejected_by_model() {
    assert!(model_rejects(ops(), |ops| against_model(half_open_admits_all, ops)));
}
