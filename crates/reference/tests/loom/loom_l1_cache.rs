//! #14 L1 cache: an invalidation on one instance racing reads and writes on another, every
//! interleaving.

use std::sync::Arc;
use std::time::Duration;

use loom::thread;
use reference::clock::ManualClock;
use reference::l1_cache::invariant::{self, Read, Tally};
use reference::l1_cache::mutants::LocalOnlyInvalidate;
use reference::l1_cache::{Cache, L1Cache, LocalBus};
use reference::sync::block_on;

use crate::common::{Found, assert_caught, assert_holds, explore};

const TTL: Duration = Duration::from_secs(60);

fn correct(clock: &Arc<ManualClock>, bus: &LocalBus) -> L1Cache<LocalBus> {
    L1Cache::new(2, clock.clone(), bus.clone())
}

fn local_only(clock: &Arc<ManualClock>, bus: &LocalBus) -> LocalOnlyInvalidate<LocalBus> {
    LocalOnlyInvalidate { inner: correct(clock, bus) }
}

/// Both instances cache `project:1:stats`; instance 0 invalidates `project:*` while instance 1
/// reads it and caches another key. Once the invalidation has returned and the reader is done,
/// neither instance serves the project's key, instance 1 stays within its capacity, and its
/// stats match what its caller saw.
fn invalidate_while_reading<C: Cache + 'static>(
    make: impl Fn(&Arc<ManualClock>, &LocalBus) -> C,
    found: &Found,
) {
    let (clock, bus) = (Arc::new(ManualClock::new(0)), LocalBus::new());
    let nodes = Arc::new([make(&clock, &bus), make(&clock, &bus)]);
    for node in nodes.iter() {
        node.set("project:1:stats", b"v1".to_vec(), TTL);
    }
    let reader = {
        let nodes = Arc::clone(&nodes);
        thread::spawn(move || {
            let hit = nodes[1].get("project:1:stats").is_some();
            nodes[1].set("user:1", b"u".to_vec(), TTL);
            Tally { gets: 1, hits: u64::from(hit) }
        })
    };
    block_on(nodes[0].invalidate("project:*")).unwrap();
    let mut seen = reader.join().unwrap();
    let reads: Vec<Read> = (0..2)
        .map(|i| Read { instance: i, key: "project:1:stats".into(), served: nodes[i].get("project:1:stats") })
        .collect();
    seen = seen + Tally { gets: 1, hits: u64::from(reads[1].served.is_some()) };
    found.record(invariant::no_stale_reads("project:*", &reads));
    found.record(invariant::bounded(2, nodes[1].len()));
    found.record(invariant::stats_exact(seen, nodes[1].stats(), nodes[1].len()));
}

#[test]
fn l1_cache_invalidation_holds_against_concurrent_reads() {
    assert_holds(&explore(|found| invalidate_while_reading(correct, found)));
}

#[test]
fn l1_cache_mutant_local_only_invalidate_is_caught() {
    assert_caught(&explore(|found| invalidate_while_reading(local_only, found)), "stale-read");
}
