//! #14 the multi-layer cache (L1 process memory, shared L2 and L3 stores) with cross-instance
//! invalidation, on memory stores.

use std::sync::Arc;
use std::time::Duration;

use reference::clock::ManualClock;
use reference::l1_cache::invariant::{self, Event};
use reference::l1_cache::multi_layer::{
    EPOCH_KEY, EPOCH_TTL, Layer, LayerStats, Layered, MultiLayer, PROMOTED_TTL, fresh_token,
};
use reference::l1_cache::mutants::{MultiLayerLocalOnly, UnfencedPromotion, UnguardedL2Promotion};
use reference::l1_cache::{Applied, Cache, L1Cache, LocalBus, suite};
use reference::store::{
    Bump, BumpOutcome, Delivery, GcraOutcome, MemoryStore, QueueDepth, SlotOutcome, Store, StoreResult, Ttl,
};
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
fn multi_layer_epoch_rotates_on_every_write_and_carries_a_ttl() {
    let rig = rig();
    let a = rig.node(8);
    assert_eq!(block_on(rig.l2.get(EPOCH_KEY)).unwrap(), None);
    block_on(a.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60))).unwrap();
    let first = block_on(rig.l2.get(EPOCH_KEY)).unwrap().expect("set writes the epoch");
    assert_eq!(block_on(rig.l2.pttl(EPOCH_KEY)).unwrap(), Ttl::Remaining(EPOCH_TTL));
    block_on(a.invalidate("project:*")).unwrap();
    let second = block_on(rig.l2.get(EPOCH_KEY)).unwrap().expect("invalidate writes the epoch");
    assert_ne!(first, second);
    assert_eq!(block_on(rig.l2.pttl(EPOCH_KEY)).unwrap(), Ttl::Remaining(EPOCH_TTL));
    // A pattern matching the epoch deletes it from L2 too.
    block_on(a.invalidate("*")).unwrap();
    assert_eq!(block_on(rig.l2.get(EPOCH_KEY)).unwrap(), None);
}

#[test]
fn multi_layer_missing_epoch_skips_one_promotion_and_is_recreated() {
    let rig = rig();
    let (a, b, c) = (rig.node(8), rig.node(8), rig.node(8));
    block_on(a.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60))).unwrap();
    block_on(rig.l2.del("project:1:stats")).unwrap();
    block_on(rig.l2.del(EPOCH_KEY)).unwrap(); // expired, or deleted by `invalidate("*")`
    // Served from L3 and into its L1, but not into L2: the epoch it read was missing.
    assert_eq!(block_on(b.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(block_on(rig.l2.get("project:1:stats")).unwrap(), None);
    assert_eq!(block_on(rig.l2.pttl(EPOCH_KEY)).unwrap(), Ttl::Remaining(EPOCH_TTL));
    assert_eq!(block_on(b.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    // The next L3 hit promotes under the recreated epoch.
    assert_eq!(block_on(c.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(block_on(rig.l2.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(b.layer_stats(), LayerStats { l1_hits: 1, l3_hits: 1, ..LayerStats::default() });
    assert_eq!(c.layer_stats(), LayerStats { l3_hits: 1, ..LayerStats::default() });
}

#[test]
fn multi_layer_epoch_tokens_are_unique_across_threads() {
    let minted: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let workers: Vec<_> =
            (0..4).map(|_| scope.spawn(|| (0..2_500).map(|_| fresh_token()).collect::<Vec<_>>())).collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let distinct: std::collections::HashSet<&Vec<u8>> = minted.iter().collect();
    assert_eq!(distinct.len(), minted.len());
    assert!(minted.iter().all(|t| t.len() == 16 && t.iter().all(u8::is_ascii_hexdigit)));
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

// --- promotion racing an invalidation, made deterministic -----------------------------------

type Hook = Box<dyn FnOnce() + Send>;

/// A memory store whose next `get` runs a hook after reading and before returning: the point
/// where a promotion has its value in hand and has not filled L1 yet.
#[derive(Clone)]
struct Hooked {
    inner: MemoryStore,
    hook: Arc<std::sync::Mutex<Option<Hook>>>,
}

impl Store for Hooked {
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let value = self.inner.get(key).await;
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        value
    }
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> StoreResult<()> {
        self.inner.set(key, value, ttl).await
    }
    async fn set_nx(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<bool> {
        self.inner.set_nx(key, value, ttl).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        self.inner.compare_and_set(key, expected, new, ttl).await
    }
    async fn set_guarded(
        &self,
        guard_key: &str,
        expected_guard: &[u8],
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        self.inner.set_guarded(guard_key, expected_guard, key, value, ttl).await
    }
    async fn del(&self, key: &str) -> StoreResult<bool> {
        self.inner.del(key).await
    }
    async fn del_matching(&self, pattern: &str) -> StoreResult<u64> {
        self.inner.del_matching(pattern).await
    }
    async fn keys(&self, pattern: &str) -> StoreResult<Vec<String>> {
        self.inner.keys(pattern).await
    }
    async fn pttl(&self, key: &str) -> StoreResult<Ttl> {
        self.inner.pttl(key).await
    }
    async fn pexpire(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        self.inner.pexpire(key, ttl).await
    }
    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.inner.incr_by(key, delta).await
    }
    async fn incr_window(&self, key: &str, delta: i64, window: Duration) -> StoreResult<(i64, Duration)> {
        self.inner.incr_window(key, delta, window).await
    }
    async fn bounded_incr(&self, bumps: &[Bump<'_>]) -> StoreResult<BumpOutcome> {
        self.inner.bounded_incr(bumps).await
    }
    async fn gcra(&self, key: &str, interval_ns: u64, burst: u64) -> StoreResult<GcraOutcome> {
        self.inner.gcra(key, interval_ns, burst).await
    }
    async fn slot_acquire(
        &self,
        key: &str,
        member: &str,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<SlotOutcome> {
        self.inner.slot_acquire(key, member, lease, limit).await
    }
    async fn slot_release(&self, key: &str, member: &str) -> StoreResult<bool> {
        self.inner.slot_release(key, member).await
    }
    async fn slot_count(&self, key: &str) -> StoreResult<usize> {
        self.inner.slot_count(key).await
    }
    async fn slot_next_expiry(&self, key: &str) -> StoreResult<Option<Duration>> {
        self.inner.slot_next_expiry(key).await
    }
    async fn enqueue(&self, queue: &str, payload: Vec<u8>) -> StoreResult<u64> {
        self.inner.enqueue(queue, payload).await
    }
    async fn reserve(&self, queue: &str, visibility: Duration) -> StoreResult<Option<Delivery>> {
        self.inner.reserve(queue, visibility).await
    }
    async fn ack(&self, queue: &str, id: u64) -> StoreResult<bool> {
        self.inner.ack(queue, id).await
    }
    async fn requeue_expired(&self, queue: &str) -> StoreResult<usize> {
        self.inner.requeue_expired(queue).await
    }
    async fn queue_depth(&self, queue: &str) -> StoreResult<QueueDepth> {
        self.inner.queue_depth(queue).await
    }
}

type HookedNode = MultiLayer<LocalBus, Hooked, Hooked>;

/// Instance `b` reads `project:1:stats` from `layer` (the key evicted from L2 when it is L3);
/// between that read and its promotion, instance `a` invalidates `project:*` and returns. Then
/// `b` reads the key again. The recorded history: set (stamps 0–1), invalidate (2–3), the
/// second read (4–5).
fn promotion_races_invalidation<C: Layered + 'static>(
    layer: Layer,
    wrap: impl Fn(HookedNode) -> C,
) -> reference::invariant::Judgement {
    let rig = rig();
    let l2 = Hooked { inner: rig.l2.clone(), hook: Arc::default() };
    let l3 = Hooked { inner: rig.l3.clone(), hook: Arc::default() };
    let node = || {
        let l1 = L1Cache::new(8, rig.clock.clone(), rig.bus.clone());
        wrap(MultiLayer::new(l1, l2.clone(), l3.clone()))
    };
    let (a, b) = (Arc::new(node()), node());
    block_on(a.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60))).unwrap();
    let hooked = match layer {
        Layer::L2 => &l2,
        Layer::L3 => {
            block_on(rig.l2.del("project:1:stats")).unwrap();
            &l3
        }
        other => panic!("the race goes through L2 or L3, not {other:?}"),
    };
    let invalidator = Arc::clone(&a);
    *hooked.hook.lock().unwrap() = Some(Box::new(move || {
        block_on(invalidator.invalidate("project:*")).unwrap();
    }));
    assert_eq!(block_on(b.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    let served = block_on(b.get("project:1:stats")).unwrap();
    let history = [
        Event::Set { key: "project:1:stats".into(), value: b"v1".to_vec(), start: 0, end: 1 },
        Event::Invalidate { pattern: "project:*".into(), start: 2, end: 3 },
        Event::Get { instance: 1, key: "project:1:stats".into(), served, start: 4, end: 5 },
    ];
    invariant::no_stale_after_invalidate(&history)
}

#[test]
fn multi_layer_promotion_racing_invalidation_is_fenced() {
    promotion_races_invalidation(Layer::L2, |node| node).unwrap();
}

#[test]
fn multi_layer_mutant_unfenced_promotion_caught_by_history() {
    let violation = promotion_races_invalidation(Layer::L2, |inner| UnfencedPromotion { inner }).unwrap_err();
    assert_eq!(violation.rule, "stale-read", "{violation}");
}

/// A promotion from L3 that read the value before an invalidation and writes L2 after it: the
/// invalidation replaced the L2 epoch between its L3 and L2 deletes, so the promotion, guarded
/// by the epoch it read before L3, is refused and the next read misses.
#[test]
fn multi_layer_l3_promotion_racing_invalidation_is_fenced() {
    promotion_races_invalidation(Layer::L3, |node| node).unwrap();
}

/// The same race with the L2 promotion a plain `set`: the stale value lands in the shared L2
/// after the invalidation cleared it, and the next read serves it.
#[test]
fn multi_layer_mutant_unguarded_l2_promotion_caught_by_history() {
    let violation =
        promotion_races_invalidation(Layer::L3, |inner| UnguardedL2Promotion { inner }).unwrap_err();
    assert_eq!(violation.rule, "stale-read", "{violation}");
}

/// Instance `b` reads `project:1:stats` from L3 (evicted from L2) as v1; between that read and
/// its promotion, instance `a` sets v2 and returns. The promotion must not put v1 over v2 in
/// L2: `set` replaced the epoch between its L3 and L2 writes. The value L2 holds afterwards.
fn promotion_races_set<C: Layered + 'static>(wrap: impl Fn(HookedNode) -> C) -> Option<Vec<u8>> {
    let rig = rig();
    let l2 = Hooked { inner: rig.l2.clone(), hook: Arc::default() };
    let l3 = Hooked { inner: rig.l3.clone(), hook: Arc::default() };
    let node = || {
        let l1 = L1Cache::new(8, rig.clock.clone(), rig.bus.clone());
        wrap(MultiLayer::new(l1, l2.clone(), l3.clone()))
    };
    let (a, b) = (Arc::new(node()), node());
    block_on(a.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60))).unwrap();
    block_on(rig.l2.del("project:1:stats")).unwrap();
    let writer = Arc::clone(&a);
    *l3.hook.lock().unwrap() = Some(Box::new(move || {
        block_on(writer.set("project:1:stats", b"v2".to_vec(), Duration::from_secs(60))).unwrap();
    }));
    assert_eq!(block_on(b.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    block_on(rig.l2.get("project:1:stats")).unwrap()
}

#[test]
fn multi_layer_l3_promotion_racing_set_keeps_the_new_value() {
    assert_eq!(promotion_races_set(|node| node).as_deref(), Some(&b"v2"[..]));
}

#[test]
fn multi_layer_mutant_unguarded_l2_promotion_overwrites_a_racing_set() {
    let held = promotion_races_set(|inner| UnguardedL2Promotion { inner });
    assert_eq!(held.as_deref(), Some(&b"v1"[..]), "the stale promotion lands over the new value");
}

#[test]
fn multi_layer_lookup_names_the_layer_whose_counter_moved() {
    let rig = rig();
    let (a, b, c) = (rig.node(8), rig.node(8), rig.node(8));
    let key = "project:7:stats";
    let layer_of = |node: &Node| {
        let before = node.layer_stats();
        let found = block_on(node.lookup(key)).unwrap();
        let after = node.layer_stats();
        let moved = match () {
            _ if after.l1_hits > before.l1_hits => Layer::L1,
            _ if after.l2_hits > before.l2_hits => Layer::L2,
            _ if after.l3_hits > before.l3_hits => Layer::L3,
            _ => Layer::Miss,
        };
        assert_eq!(after.gets(), before.gets() + 1, "one counter per lookup");
        assert_eq!(found.layer, moved, "the layer named is the one counted");
        (found.layer, found.value)
    };
    assert_eq!(layer_of(&a), (Layer::Miss, None));
    block_on(a.set(key, b"v".to_vec(), Duration::from_secs(60))).unwrap();
    assert_eq!(layer_of(&a), (Layer::L1, Some(b"v".to_vec())));
    assert_eq!(layer_of(&b), (Layer::L2, Some(b"v".to_vec())));
    block_on(rig.l2.del(key)).unwrap();
    assert_eq!(layer_of(&c), (Layer::L3, Some(b"v".to_vec())));
    assert_eq!(Layer::Miss.as_str(), "MISS");
}
