//! #2 GCRA limiter: three callers, burst two, every interleaving of the compare-and-set loop.

use std::sync::Arc;
use std::time::Duration;

use loom::thread;
use reference::clock::ManualClock;
use reference::gcra::{Gcra, invariant, mutants};
use reference::limit::{Limit, RateLimiter};
use reference::store::MemoryStore;
use reference::sync::block_on;

use crate::common::{Found, assert_caught, assert_holds, explore};

const LIMIT: Limit = Limit::new(2, Duration::from_secs(60));

/// Three simultaneous calls on an idle key: exactly the burst is admitted.
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
    found.record(invariant::burst_admits_exactly(LIMIT.max, &decisions));
}

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(0));
    (clock.clone(), MemoryStore::new(clock))
}

#[test]
fn gcra_admits_exactly_the_burst() {
    assert_holds(&explore(|found| {
        let (_, store) = rig();
        three_callers(Gcra::new(store, "gcra", LIMIT), found);
    }));
}

#[test]
fn gcra_mutant_get_then_set_is_caught() {
    let found = explore(|found| {
        let (clock, store) = rig();
        three_callers(mutants::GetThenSet { store, clock, prefix: "gcra".into(), limit: LIMIT }, found);
    });
    assert_caught(&found, "over-admission");
}
