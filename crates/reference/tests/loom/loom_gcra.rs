//! #2 GCRA limiter: three callers, burst two, every interleaving of the compare-and-set loop.

use std::sync::Arc;
use std::time::Duration;

use reference::clock::ManualClock;
use reference::gcra::{Gcra, invariant, mutants};
use reference::invariant::Judgement;
use reference::limit::{Decision, Limit};
use reference::store::MemoryStore;

use crate::common::{assert_caught, assert_holds, explore, three_callers};

const LIMIT: Limit = Limit::new(2, Duration::from_secs(60));

/// Three simultaneous calls on an idle key: exactly the limit is admitted.
fn judge(decisions: &[Decision]) -> Judgement {
    invariant::burst_admits_exactly(LIMIT.max, decisions)
}

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(0));
    (clock.clone(), MemoryStore::new(clock))
}

#[test]
fn gcra_admits_exactly_the_burst() {
    assert_holds(&explore(|found| {
        let (_, store) = rig();
        three_callers(Gcra::new(store, "gcra", LIMIT), found, judge);
    }));
}

#[test]
fn gcra_mutant_get_then_set_is_caught() {
    let found = explore(|found| {
        let (clock, store) = rig();
        three_callers(
            mutants::GetThenSet { store, clock, prefix: "gcra".into(), limit: LIMIT },
            found,
            judge,
        );
    });
    assert_caught(&found, "over-admission");
}
