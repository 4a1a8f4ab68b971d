//! #1 fixed-window limiter: three callers, limit two, every interleaving.

use std::sync::Arc;
use std::time::Duration;

use loom::thread;
use reference::clock::ManualClock;
use reference::fixed_window::{FixedWindow, invariant, mutants};
use reference::limit::{Limit, RateLimiter};
use reference::store::MemoryStore;
use reference::sync::block_on;

use crate::common::{Found, assert_caught, assert_holds, explore};

const LIMIT: Limit = Limit::new(2, Duration::from_secs(60));

fn three_callers<L: RateLimiter + 'static>(limiter: L, found: &Found) {
    let limiter = Arc::new(limiter);
    let spawned: Vec<_> = (0..2)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            thread::spawn(move || block_on(limiter.check("user")).unwrap())
        })
        .collect();
    let mut decisions = vec![block_on(limiter.check("user")).unwrap()];
    decisions.extend(spawned.into_iter().map(|h| h.join().unwrap()));
    found.record(invariant::exactly_min_allowed(LIMIT.max, &decisions));
}

fn store() -> MemoryStore {
    MemoryStore::new(Arc::new(ManualClock::new(0)))
}

#[test]
fn fixed_window_admits_exactly_the_limit() {
    assert_holds(&explore(|found| three_callers(FixedWindow::new(store(), "rl", LIMIT), found)));
}

#[test]
fn fixed_window_mutant_get_then_set_is_caught() {
    let found = explore(|found| {
        let mutant = mutants::GetThenSet { store: store(), prefix: "rl".into(), limit: LIMIT };
        three_callers(mutant, found);
    });
    assert_caught(&found, "over-admission");
}
