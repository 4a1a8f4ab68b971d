//! #3 daily quota: three consumes on a fresh day, every interleaving.

use std::sync::Arc;

use jiff::tz::TimeZone;
use loom::thread;
use reference::clock::ManualClock;
use reference::daily_quota::{DailyQuota, Quota, QuotaPolicy, SEED, invariant, mutants};
use reference::store::MemoryStore;
use reference::sync::block_on;

use crate::common::{Found, assert_caught, assert_holds, explore};

/// 2026-06-15 12:00 UTC, the middle of a day in New York.
const NOON: u64 = 1_781_524_800_000;

/// Three imports fit under the seed's limit; two fit under this one.
const TWO_IMPORTS: QuotaPolicy = QuotaPolicy { limit: 6, units_per_import: 3, warn_percent: 80 };

fn three_consumers<Q: Quota + 'static>(quota: Q, limit: u64, found: &Found) {
    let quota = Arc::new(quota);
    let spawned: Vec<_> = (0..2)
        .map(|_| {
            let quota = Arc::clone(&quota);
            thread::spawn(move || block_on(quota.consume("user", 3)).unwrap())
        })
        .collect();
    let mut consumptions = vec![block_on(quota.consume("user", 3)).unwrap()];
    consumptions.extend(spawned.into_iter().map(|h| h.join().unwrap()));
    let used = block_on(quota.used("user")).unwrap();
    found.record(invariant::day_total(limit, &consumptions, used));
}

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(NOON));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

fn new_york() -> TimeZone {
    TimeZone::get("America/New_York").unwrap()
}

#[test]
fn daily_quota_admits_up_to_the_limit_and_loses_nothing() {
    let zone = new_york();
    assert_holds(&explore(move |found| {
        let (clock, store) = rig();
        let quota = DailyQuota::new(store, clock, "quota", zone.clone(), TWO_IMPORTS);
        three_consumers(quota, TWO_IMPORTS.limit, found);
    }));
}

#[test]
fn daily_quota_mutant_incr_or_set_is_caught() {
    let zone = new_york();
    let found = explore(move |found| {
        let (clock, store) = rig();
        let mutant =
            mutants::IncrOrSet { store, clock, prefix: "quota".into(), zone: zone.clone(), policy: SEED };
        three_consumers(mutant, SEED.limit, found);
    });
    assert_caught(&found, "lost-units");
}
