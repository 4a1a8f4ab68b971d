//! #14 the multi-layer cache: a `get` on one instance that reads through to L3 racing an
//! invalidation on another, every interleaving, over memory L2 and L3.

use std::sync::Arc;
use std::time::Duration;

use loom::thread;
use reference::clock::ManualClock;
use reference::l1_cache::invariant::{self, Read};
use reference::l1_cache::multi_layer::{Layered, MultiLayer};
use reference::l1_cache::mutants::UnguardedL2Promotion;
use reference::l1_cache::{L1Cache, LocalBus};
use reference::store::{MemoryStore, Store};
use reference::sync::block_on;

use crate::common::{Found, assert_caught, assert_holds, explore};

const KEY: &str = "project:1:stats";

type Node = MultiLayer<LocalBus, MemoryStore, MemoryStore>;

/// Instance 0 has set `KEY`, which is since evicted from L2; instance 1 reads it (from L3,
/// promoting) while instance 0 invalidates `project:*`. Once both are done, neither instance
/// serves it.
fn get_while_invalidating<C: Layered + 'static>(wrap: fn(Node) -> C, found: &Found) {
    let clock = Arc::new(ManualClock::new(0));
    let (bus, l2, l3) = (LocalBus::new(), MemoryStore::new(clock.clone()), MemoryStore::new(clock.clone()));
    let node = || wrap(MultiLayer::new(L1Cache::new(2, clock.clone(), bus.clone()), l2.clone(), l3.clone()));
    let nodes = Arc::new([node(), node()]);
    block_on(nodes[0].set(KEY, b"v1".to_vec(), Duration::from_secs(60))).unwrap();
    block_on(l2.del(KEY)).unwrap();
    let reader = {
        let nodes = Arc::clone(&nodes);
        thread::spawn(move || block_on(nodes[1].get(KEY)).unwrap())
    };
    block_on(nodes[0].invalidate("project:*")).unwrap();
    reader.join().unwrap();
    let reads: Vec<Read> = (0..2)
        .map(|i| Read { instance: i, key: KEY.into(), served: block_on(nodes[i].get(KEY)).unwrap() })
        .collect();
    found.record(invariant::no_stale_reads("project:*", &reads));
}

#[test]
fn multi_layer_l3_promotion_fenced_against_a_concurrent_invalidation() {
    assert_holds(&explore(|found| get_while_invalidating(|node| node, found)));
}

#[test]
fn multi_layer_mutant_unguarded_l2_promotion_is_caught() {
    assert_caught(
        &explore(|found| get_while_invalidating(|inner| UnguardedL2Promotion { inner }, found)),
        "stale-read",
    );
}
