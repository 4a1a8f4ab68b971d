//! #1 fixed-window limiter: three callers, limit two, every interleaving.

use std::sync::Arc;
use std::time::Duration;

use reference::clock::ManualClock;
use reference::fixed_window::{FixedWindow, invariant, mutants};
use reference::invariant::Judgement;
use reference::limit::{Decision, Limit};
use reference::store::MemoryStore;

use crate::common::{assert_caught, assert_holds, explore, three_callers};

const LIMIT: Limit = Limit::new(2, Duration::from_secs(60));

/// Three simultaneous calls on an idle key: exactly the limit is admitted.
fn judge(decisions: &[Decision]) -> Judgement {
    invariant::exactly_min_allowed(LIMIT.max, decisions)
}

fn store() -> MemoryStore {
    MemoryStore::new(Arc::new(ManualClock::new(0)))
}

#[test]
fn fixed_window_admits_exactly_the_limit() {
    assert_holds(&explore(|found| three_callers(FixedWindow::new(store(), "rl", LIMIT), found, judge)));
}

#[test]
fn fixed_window_mutant_get_then_set_is_caught() {
    let found = explore(|found| {
        let mutant = mutants::GetThenSet { store: store(), prefix: "rl".into(), limit: LIMIT };
        three_callers(mutant, found, judge);
    });
    assert_caught(&found, "over-admission");
}
