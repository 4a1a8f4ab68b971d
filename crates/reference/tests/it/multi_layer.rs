//! #14 the multi-layer cache (L1 process memory, shared L2 and L3 stores) with cross-instance
//! invalidation, on memory stores.

use std::sync::Arc;
use std::time::Duration;

use reference::clock::ManualClock;
use reference::l1_cache::multi_layer::{LayerStats, Layered, MultiLayer, PROMOTED_TTL};
use reference::l1_cache::mutants::MultiLayerLocalOnly;
use reference::l1_cache::{Applied, Cache, L1Cache, LocalBus, suite};
use reference::store::{MemoryStore, Store, Ttl};
use reference::sync::block_on;

type Node = MultiLayer<LocalBus, MemoryStore, MemoryStore>;

struct Rig {
    clock: Arc<ManualClock>,
    bus: LocalBus,
    l2: MemoryStore,
    l3: MemoryStore,
}

fn rig() -> Rig {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (l2, l3) = (MemoryStore::new(clock.clone()), MemoryStore::new(clock.clone()));
    Rig { clock, bus: LocalBus::new(), l2, l3 }
}

impl Rig {
    fn node(&self, capacity: usize) -> Node {
        let l1 = L1Cache::new(capacity, self.clock.clone(), self.bus.clone());
        MultiLayer::new(l1, self.l2.clone(), self.l3.clone())
    }

    fn evict_l2(&self) -> impl Fn(&str) + '_ {
        |key| {
            block_on(self.l2.del(key)).unwrap();
        }
    }
}

#[test]
fn multi_layer_reads_through_the_layers_and_promotes() {
    let rig = rig();
    let (a, b) = (rig.node(8), rig.node(8));
    block_on(a.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60))).unwrap();
    assert_eq!(block_on(rig.l2.pttl("project:1:stats")).unwrap(), Ttl::Remaining(Duration::from_secs(60)));
    assert_eq!(block_on(rig.l3.pttl("project:1:stats")).unwrap(), Ttl::Remaining(Duration::from_secs(240)));

    // a: L1. b: L2, promoted to its L1. Then b again: L1.
    assert_eq!(block_on(a.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(block_on(b.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(block_on(b.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    // Gone from L2 (evicted): a third instance reads L3 and promotes to L2 for 300 s.
    block_on(rig.l2.del("project:1:stats")).unwrap();
    let c = rig.node(8);
    assert_eq!(block_on(c.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(block_on(rig.l2.pttl("project:1:stats")).unwrap(), Ttl::Remaining(PROMOTED_TTL));
    assert_eq!(block_on(c.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(block_on(c.get("absent")).unwrap(), None);

    assert_eq!(a.layer_stats(), LayerStats { l1_hits: 1, ..LayerStats::default() });
    assert_eq!(b.layer_stats(), LayerStats { l1_hits: 1, l2_hits: 1, ..LayerStats::default() });
    assert_eq!(c.layer_stats(), LayerStats { l1_hits: 1, l3_hits: 1, misses: 1, l2_hits: 0 });
}

#[test]
fn multi_layer_invalidate_clears_every_layer_of_every_instance() {
    let rig = rig();
    let nodes: Vec<Node> = (0..3).map(|_| rig.node(8)).collect();
    block_on(nodes[0].set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60))).unwrap();
    block_on(nodes[0].set("user:1", b"u".to_vec(), Duration::from_secs(60))).unwrap();
    for node in &nodes {
        block_on(node.get("project:1:stats")).unwrap();
    }
    let applied = block_on(nodes[2].invalidate("project:1:*")).unwrap();
    assert_eq!(applied, Applied { instances: 3, dropped: 3 });
    for node in &nodes {
        assert_eq!(block_on(node.get("project:1:stats")).unwrap(), None);
        assert_eq!(block_on(node.get("user:1")).unwrap().as_deref(), Some(&b"u"[..]));
    }
    assert_eq!(block_on(rig.l2.get("project:1:stats")).unwrap(), None);
    assert_eq!(block_on(rig.l3.get("project:1:stats")).unwrap(), None);
}

#[test]
fn multi_layer_fill_refused_after_an_invalidation() {
    // The fence on promotion: a value fetched before an invalidation is not cached after it.
    let rig = rig();
    let l1 = L1Cache::new(4, rig.clock.clone(), rig.bus.clone());
    let generation = l1.generation();
    block_on(l1.invalidate("project:*")).unwrap();
    assert!(!l1.fill("project:1:stats", b"stale".to_vec(), PROMOTED_TTL, generation));
    assert_eq!(l1.get("project:1:stats"), None);
    assert!(l1.fill("project:1:stats", b"fresh".to_vec(), PROMOTED_TTL, l1.generation()));
}

#[test]
fn multi_layer_shared_history_has_no_stale_read() {
    let rig = rig();
    let nodes: Vec<Arc<Node>> = (0..3).map(|_| Arc::new(rig.node(64))).collect();
    suite::shared_layers(nodes.clone(), 8, 100, rig.evict_l2()).unwrap();
    let total = nodes.iter().map(|n| n.layer_stats()).fold(LayerStats::default(), |a, s| LayerStats {
        l1_hits: a.l1_hits + s.l1_hits,
        l2_hits: a.l2_hits + s.l2_hits,
        l3_hits: a.l3_hits + s.l3_hits,
        misses: a.misses + s.misses,
    });
    // Every layer answered, and the post-invalidation reads missed.
    assert!(total.l1_hits > 0 && total.l2_hits > 0 && total.l3_hits > 0 && total.misses > 0, "{total:?}");
}

#[test]
fn multi_layer_mutant_local_only_invalidate_caught_by_history() {
    let rig = rig();
    let nodes: Vec<_> = (0..3).map(|_| Arc::new(MultiLayerLocalOnly { inner: rig.node(64) })).collect();
    let violation = suite::shared_layers(nodes, 8, 100, rig.evict_l2()).unwrap_err();
    assert_eq!(violation.rule, "stale-read", "{violation}");
}
