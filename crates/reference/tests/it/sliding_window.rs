//! #2 sliding-window limiter.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::{Clock, ManualClock, Millis};
use reference::limit::{Decision, Limit, RateLimiter, seed};
use reference::sliding_window::{SlidingWindow, invariant, mutants, suite};
use reference::store::{MemoryStore, Store, Ttl};
use reference::sync::block_on;

use crate::common::{Op, model_rejects};

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_123));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

fn correct(store: &MemoryStore, clock: &Arc<ManualClock>, limit: Limit) -> SlidingWindow<MemoryStore> {
    SlidingWindow::new(store.clone(), clock.clone(), "sw", limit)
}

fn fixed_window_as_sliding(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    limit: Limit,
) -> mutants::FixedWindowAsSliding<MemoryStore> {
    mutants::FixedWindowAsSliding { store: store.clone(), clock: clock.clone(), prefix: "sw".into(), limit }
}

// --- contention: real threads -------------------------------------------------------------

/// 16 threads, 300 bursts, the clock moving 7 s between them: the window slides across bursts.
fn contention<L: RateLimiter + 'static>(limiter: L, clock: &ManualClock) -> reference::invariant::Judgement {
    suite::contention(Arc::new(limiter), clock, seed::USER_TOKEN, 16, 300, Duration::from_secs(7))
}

#[test]
fn sliding_window_contention_admits_exactly_the_free_slots() {
    let (clock, store) = rig();
    contention(correct(&store, &clock, seed::USER_TOKEN), &clock).unwrap();
}

#[test]
fn sliding_window_mutant_fixed_window_as_sliding_caught_by_contention() {
    let (clock, store) = rig();
    let violation =
        contention(fixed_window_as_sliding(&store, &clock, seed::USER_TOKEN), &clock).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

#[test]
fn sliding_window_contention_at_endpoint_scale() {
    let (clock, store) = rig();
    let limit = seed::ENDPOINT;
    let limiter = Arc::new(correct(&store, &clock, limit));
    suite::contention(limiter, &clock, limit, 8, 100, Duration::from_secs(5)).unwrap();
}

// --- the window edge -----------------------------------------------------------------------

#[test]
fn sliding_window_boundary_burst_admits_only_the_limit() {
    let (clock, store) = rig();
    suite::boundary_burst(&correct(&store, &clock, seed::USER_TOKEN), &clock, seed::USER_TOKEN).unwrap();
}

#[test]
fn sliding_window_mutant_fixed_window_as_sliding_caught_by_boundary_burst() {
    let (clock, store) = rig();
    let limit = seed::USER_TOKEN;
    let violation =
        suite::boundary_burst(&fixed_window_as_sliding(&store, &clock, limit), &clock, limit).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

#[test]
fn sliding_window_refusal_reports_when_the_oldest_admission_expires() {
    let (clock, store) = rig();
    let limit = Limit::new(2, Duration::from_secs(10));
    let limiter = correct(&store, &clock, limit);
    assert!(block_on(limiter.check("u")).unwrap().allowed);
    clock.advance(Duration::from_secs(3));
    assert!(block_on(limiter.check("u")).unwrap().allowed);
    clock.advance(Duration::from_secs(1));
    let refused = block_on(limiter.check("u")).unwrap();
    assert_eq!((refused.allowed, refused.reset_after), (false, Duration::from_secs(6)));
    clock.advance(refused.reset_after);
    assert!(block_on(limiter.check("u")).unwrap().allowed);
}

// --- model-based ---------------------------------------------------------------------------

/// The trivially correct model: per key, the instants of the live admissions.
#[derive(Default)]
struct Model {
    logs: HashMap<String, VecDeque<Millis>>,
}

impl Model {
    fn check(&mut self, id: &str, now: Millis, limit: Limit) -> (bool, u64, u64) {
        let window = limit.window.as_millis() as u64;
        let log = self.logs.entry(id.to_owned()).or_default();
        log.retain(|at| at + window > now);
        if (log.len() as u64) < limit.max {
            log.push_back(now);
            (true, limit.max - log.len() as u64, window)
        } else {
            (false, 0, log.front().map_or(0, |first| first + window - now))
        }
    }

    /// The log's key lives as long as its newest admission.
    fn ttl(&self, id: &str, now: Millis, limit: Limit) -> Ttl {
        let window = limit.window.as_millis() as u64;
        match self.logs.get(id).and_then(|log| log.back()) {
            Some(last) if last + window > now => Ttl::Remaining(Duration::from_millis(last + window - now)),
            _ => Ttl::Missing,
        }
    }
}

/// What the model run compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Which calls are admitted, and the invariants over each key's history.
    Admissions,
    /// Also `remaining`, `reset_after` and the key's TTL.
    Everything,
}

/// Runs `ops` against a limiter and the model; the first disagreement or broken invariant.
fn against_model<L: RateLimiter>(
    make: impl Fn(&MemoryStore, &Arc<ManualClock>, Limit) -> L,
    limit: Limit,
    ops: &[Op],
    compare: Compare,
) -> Result<(), String> {
    let (clock, store) = rig();
    let limiter = make(&store, &clock, limit);
    let mut model = Model::default();
    let mut histories: HashMap<String, Vec<(Millis, Decision)>> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
            Op::Call(id) => {
                let id = format!("k{id}");
                let now = clock.now();
                let decision = block_on(limiter.check(&id)).map_err(|e| e.to_string())?;
                histories.entry(id.clone()).or_default().push((now, decision));
                let want = model.check(&id, now, limit);
                if decision.allowed != want.0 {
                    return Err(format!(
                        "step {step} {op:?}: allowed {}, model says {want:?}",
                        decision.allowed
                    ));
                }
                if compare == Compare::Everything {
                    let got = (decision.allowed, decision.remaining, decision.reset_after.as_millis() as u64);
                    if got != want {
                        return Err(format!("step {step} {op:?}: got {got:?}, model says {want:?}"));
                    }
                    let ttl = block_on(store.pttl(&format!("sw:{id}"))).map_err(|e| e.to_string())?;
                    let want = model.ttl(&id, now, limit);
                    if ttl != want {
                        return Err(format!("step {step}: key sw:{id} has TTL {ttl:?}, model says {want:?}"));
                    }
                }
            }
        }
    }
    for history in histories.values() {
        invariant::sequential_history(limit, history).map_err(|v| v.to_string())?;
    }
    Ok(())
}

const SMALL: Limit = Limit::new(3, Duration::from_millis(1_000));

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sliding_window_matches_model(ops in crate::common::ops(3, 700)) {
        prop_assert_eq!(against_model(correct, SMALL, &ops, Compare::Everything), Ok(()));
    }
}

#[test]
fn sliding_window_mutant_fixed_window_as_sliding_rejected_by_model() {
    assert!(model_rejects(crate::common::ops(3, 700), |ops| {
        against_model(fixed_window_as_sliding, SMALL, ops, Compare::Admissions)
    }));
}
