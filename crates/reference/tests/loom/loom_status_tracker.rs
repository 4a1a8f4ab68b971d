//! #6 processing-status tracker: three writers merging disjoint fields, every interleaving.

use std::sync::Arc;

use loom::thread;
use reference::clock::ManualClock;
use reference::status_tracker::{Fields, StatusTracker, Tracker, invariant, key, mutants};
use reference::store::MemoryStore;
use reference::sync::block_on;
use serde_json::json;

use crate::common::{Found, assert_caught, assert_holds, explore};

fn store() -> MemoryStore {
    MemoryStore::new(Arc::new(ManualClock::new(0)))
}

fn field(n: usize) -> Fields {
    Fields::from_iter([(format!("f{n}"), json!(n))])
}

fn three_writers<T: StatusTracker + 'static>(tracker: T, found: &Found) {
    let tracker = Arc::new(tracker);
    let spawned: Vec<_> = (1..3)
        .map(|n| {
            let tracker = Arc::clone(&tracker);
            thread::spawn(move || block_on(tracker.merge("v1", field(n))).unwrap())
        })
        .collect();
    block_on(tracker.merge("v1", field(0))).unwrap();
    for handle in spawned {
        handle.join().unwrap();
    }
    let merged: Fields = (0..3).flat_map(field).collect();
    let stored = block_on(tracker.get("v1")).unwrap();
    found.record(invariant::merges_survive(&key("v1"), &merged, stored.as_ref()));
}

#[test]
fn status_tracker_disjoint_merges_all_survive() {
    assert_holds(&explore(|found| three_writers(Tracker::new(store()), found)));
}

#[test]
fn status_tracker_mutant_read_modify_write_is_caught() {
    let found = explore(|found| three_writers(mutants::ReadModifyWrite { store: store() }, found));
    assert_caught(&found, "lost-field");
}
