//! #4 API usage tracker: two callers, one request left in the hour, every interleaving.

use std::sync::Arc;

use loom::thread;
use reference::clock::ManualClock;
use reference::store::MemoryStore;
use reference::sync::block_on;
use reference::usage_tracker::{UsageLimits, UsageTracker, UsageTracking, invariant, mutants};

use crate::common::{Found, assert_caught, assert_holds, explore};

const LIMITS: UsageLimits = UsageLimits { per_day: 100, per_hour: 1 };

/// Two simultaneous requests with room for one: exactly one is granted.
fn two_callers<T: UsageTracking + 'static>(tracker: T, found: &Found) {
    let tracker = Arc::new(tracker);
    let other = {
        let tracker = Arc::clone(&tracker);
        thread::spawn(move || block_on(tracker.acquire()).unwrap())
    };
    let admissions = [block_on(tracker.acquire()).unwrap(), other.join().unwrap()];
    found.record(invariant::burst_grants_exactly(1, &admissions));
}

fn correct() -> UsageTracker<MemoryStore> {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    UsageTracker::new(MemoryStore::new(clock.clone()), clock, "api", LIMITS)
}

#[test]
fn usage_tracker_grants_exactly_the_remaining_quota() {
    assert_holds(&explore(|found| two_callers(correct(), found)));
}

#[test]
fn usage_tracker_mutant_check_then_record_is_caught() {
    let found = explore(|found| two_callers(mutants::CheckThenRecord { inner: correct() }, found));
    assert_caught(&found, "over-admission");
}
