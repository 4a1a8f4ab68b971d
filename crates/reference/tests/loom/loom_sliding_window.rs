//! #2 sliding-log limiter: three callers of one instance, limit two, every interleaving. The
//! instance's admission counter (an atomic) gives every admission a member of its own, so no
//! two calls renew one slot, and the slot set admits exactly the limit.

use std::sync::Arc;
use std::time::Duration;

use reference::clock::ManualClock;
use reference::invariant::Judgement;
use reference::limit::{Decision, Limit};
use reference::sliding_window::{SlidingWindow, invariant};
use reference::store::MemoryStore;

use crate::common::{assert_holds, explore, three_callers};

const LIMIT: Limit = Limit::new(2, Duration::from_secs(60));

/// Three simultaneous calls on an idle key: exactly the limit admitted.
fn judge(decisions: &[Decision]) -> Judgement {
    invariant::burst_fills_free_slots(LIMIT.max, 0, decisions)
}

#[test]
fn sliding_window_admits_exactly_the_limit() {
    assert_holds(&explore(|found| {
        let clock = Arc::new(ManualClock::new(1_000));
        let store = MemoryStore::new(clock.clone());
        three_callers(SlidingWindow::new(store, clock, "sw", LIMIT), found, judge);
    }));
}
