//! #2 GCRA limiter.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::{Clock, ManualClock, Millis};
use reference::gcra::{Gcra, Params, invariant, mutants, suite};
use reference::limit::{Limit, RateLimiter, seed};
use reference::store::{MemoryStore, Store, Ttl};
use reference::sync::block_on;

use crate::common::Op;

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

/// Same shape as the mutant's maker; the correct limiter reads time from the store, not a clock.
fn correct(store: &MemoryStore, _clock: &Arc<ManualClock>, limit: Limit) -> Gcra<MemoryStore> {
    Gcra::new(store.clone(), "gcra", limit)
}

fn get_then_set(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    limit: Limit,
) -> mutants::GetThenSet<MemoryStore> {
    mutants::GetThenSet { store: store.clone(), clock: clock.clone(), prefix: "gcra".into(), limit }
}

/// Clock moves between bursts, in units of a tenth of the emission interval: from none (a
/// second burst at the same instant) to a whole burst's worth.
fn steps(limit: Limit) -> Vec<Duration> {
    let tenth = Params::new(limit).interval() / 10;
    [0, 5, 10, 3, 25, 10, 60, 0, 15].iter().map(|n| tenth * *n).collect()
}

// --- contention: real threads -------------------------------------------------------------

#[test]
fn gcra_contention_admits_what_a_sequential_gcra_admits() {
    let (clock, store) = rig();
    let limit = seed::USER_TOKEN;
    let limiter = Arc::new(correct(&store, &clock, limit));
    suite::contention(limiter, &clock, limit, 16, 300, &steps(limit)).unwrap();
}

#[test]
fn gcra_contention_with_a_fractional_emission_interval() {
    let (clock, store) = rig();
    // T = 333.333333 ms: the bound and the decisions are exact to the nanosecond.
    let limit = Limit::new(3, Duration::from_secs(1));
    let limiter = Arc::new(correct(&store, &clock, limit));
    suite::contention(limiter, &clock, limit, 8, 300, &steps(limit)).unwrap();
}

#[test]
fn gcra_mutant_get_then_set_caught_by_contention() {
    let (clock, store) = rig();
    let limit = seed::USER_TOKEN;
    // Races are probabilistic on real threads; many rounds make a miss vanishingly unlikely.
    let violation = suite::contention(
        Arc::new(get_then_set(&store, &clock, limit)),
        &clock,
        limit,
        16,
        2_000,
        &steps(limit),
    )
    .unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

// --- the burst bound itself ----------------------------------------------------------------

#[test]
fn gcra_burst_bound_rejects_one_admission_too_many() {
    let params = Params::new(Limit::new(3, Duration::from_secs(3)));
    // Three at once, then one a second: exactly on the bound.
    invariant::burst_bound(params, &[0, 0, 0, 1_000, 2_000, 3_000]).unwrap();
    // One more a millisecond early breaks it.
    let violation = invariant::burst_bound(params, &[0, 0, 0, 1_000, 1_999, 3_000]).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

// --- model-based ---------------------------------------------------------------------------

/// The trivially correct model: the textbook virtual-scheduling GCRA, per key, in ms.
struct Model {
    tat: HashMap<String, Millis>,
    interval: Millis,
    tolerance: Millis,
}

impl Model {
    fn new(limit: Limit) -> Self {
        let interval = limit.window.as_millis() as u64 / limit.max;
        Self { tat: HashMap::new(), interval, tolerance: interval * (limit.max - 1) }
    }

    /// (allowed, remaining, reset_after in ms)
    fn check(&mut self, id: &str, now: Millis) -> (bool, u64, u64) {
        let tat = self.tat.get(id).copied().unwrap_or(now).max(now);
        if tat - now > self.tolerance {
            return (false, 0, tat - self.tolerance - now);
        }
        let next = tat + self.interval;
        self.tat.insert(id.to_owned(), next);
        (true, (self.tolerance - (tat - now)) / self.interval, next - now)
    }

    /// The key lives until its TAT passes.
    fn ttl(&self, id: &str, now: Millis) -> Ttl {
        match self.tat.get(id) {
            Some(tat) if *tat > now => Ttl::Remaining(Duration::from_millis(tat - now)),
            _ => Ttl::Missing,
        }
    }
}

/// Runs `ops` against a limiter and the model; the first disagreement or broken invariant.
fn against_model<L: RateLimiter>(
    make: impl Fn(&MemoryStore, &Arc<ManualClock>, Limit) -> L,
    limit: Limit,
    ops: &[Op],
) -> Result<(), String> {
    let (clock, store) = rig();
    let limiter = make(&store, &clock, limit);
    let mut model = Model::new(limit);
    let mut admitted: HashMap<String, Vec<Millis>> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
            Op::Call(id) => {
                let id = format!("k{id}");
                let now = clock.now();
                let decision = block_on(limiter.check(&id)).map_err(|e| e.to_string())?;
                if decision.allowed {
                    admitted.entry(id.clone()).or_default().push(now);
                }
                let (allowed, remaining, reset) = model.check(&id, now);
                let want = (allowed, remaining, Duration::from_millis(reset));
                let got = (decision.allowed, decision.remaining, decision.reset_after);
                if got != want {
                    return Err(format!("step {step} {op:?}: got {got:?}, model says {want:?}"));
                }
            }
        }
        for id in model.tat.keys() {
            let ttl = block_on(store.pttl(&format!("gcra:{id}"))).map_err(|e| e.to_string())?;
            let want = model.ttl(id, clock.now());
            if ttl != want {
                return Err(format!("step {step}: key gcra:{id} has TTL {ttl:?}, model says {want:?}"));
            }
        }
    }
    let params = Params::new(limit);
    for times in admitted.values() {
        invariant::burst_bound(params, times).map_err(|v| v.to_string())?;
    }
    Ok(())
}

/// T = 250 ms, burst 4.
const SMALL: Limit = Limit::new(4, Duration::from_millis(1_000));

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gcra_matches_model(ops in crate::common::ops(3, 600)) {
        prop_assert_eq!(against_model(correct, SMALL, &ops), Ok(()));
    }
}
