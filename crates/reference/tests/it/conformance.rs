//! The conformance suite (`reference::store_conformance!`) on the memory store, each test on a
//! fresh store over a fresh `ManualClock` that the suites move: the same tests `store-redis`
//! and `store-postgres` run against their servers.

use std::ops::Deref;
use std::sync::Arc;

use reference::clock::ManualClock;
use reference::store::MemoryStore;

/// A memory store and the clock it reads.
struct Rig {
    store: MemoryStore,
    clock: Arc<ManualClock>,
}

impl Deref for Rig {
    type Target = MemoryStore;

    fn deref(&self) -> &MemoryStore {
        &self.store
    }
}

fn fresh(_test: &str) -> Option<Rig> {
    let clock = reference::conformance::clock();
    Some(Rig { store: MemoryStore::new(clock.clone()), clock })
}

reference::store_conformance! {
    store = MemoryStore,
    fresh = fresh,
    clock = |rig: &Rig| rig.clock.clone(),
    pass = |rig: &Rig, by| rig.clock.advance(by),
    visibility = reference::task_queue::seed::VISIBILITY,
}
