//! #14 the multi-layer cache on real services, as the stack deploys it: L2 on Redis, L3 on
//! PostgreSQL, the L1s of several instances on one in-process bus; the same suite and mutant
//! as on memory stores. Here because the stack is the crate that runs both stores.
//!
//! Reads `REDIS_URL` (default `redis://127.0.0.1:6379`) and `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); the L2 lives under a key prefix of its own and
//! the L3 in a schema of its own, both removed afterwards. Either service unreachable: skipped,
//! or a failure under `CI=true`.

use std::sync::Arc;
use std::time::Duration;

use reference::clock::ManualClock;
use reference::l1_cache::multi_layer::{EPOCH_KEY, LayerStats, Layered, MultiLayer, PROMOTED_TTL};
use reference::l1_cache::mutants::MultiLayerLocalOnly;
use reference::l1_cache::{L1Cache, LocalBus, suite};
use reference::store::{Store, Ttl};
use reference::sync::block_on;
use store_postgres::{PgPool, PgStore, PoolPolicy};
use store_redis::RedisStore;

use crate::support::skip;

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A Redis store under a key prefix of its own, purged when dropped.
struct RedisRig {
    store: RedisStore,
}

impl Drop for RedisRig {
    fn drop(&mut self) {
        let _ = block_on(self.store.purge());
    }
}

impl RedisRig {
    /// Every key of the store with what it has left to live.
    fn keys(&self) -> Vec<(String, Ttl)> {
        let keys = block_on(self.store.keys("*")).unwrap();
        keys.into_iter().map(|key| (key.clone(), block_on(self.store.pttl(&key)).unwrap())).collect()
    }
}

fn redis_rig(test: &str) -> Option<RedisRig> {
    let prefix = format!("stampede-test:stack-ml-{test}:{}", std::process::id());
    match RedisStore::connect(&redis_url(), &prefix) {
        Ok(store) => {
            let rig = RedisRig { store };
            block_on(rig.store.purge()).unwrap();
            Some(rig)
        }
        Err(e) => {
            skip("redis", &e);
            None
        }
    }
}

/// A PostgreSQL store in a schema of its own, dropped with it.
struct PgRig {
    store: PgStore,
}

impl Drop for PgRig {
    fn drop(&mut self) {
        let _ = block_on(self.store.drop_schema());
    }
}

fn pg_rig(test: &str) -> Option<PgRig> {
    let name = format!("stampede_stack_ml_{}_{test}", std::process::id());
    let policy = PoolPolicy {
        pool_size: 8,
        max_overflow: 4,
        acquire_timeout: Duration::from_secs(10),
        ..PoolPolicy::SEED
    };
    let pool = PgPool::new(&database_url(), &name, policy).expect("pool policy is valid");
    match block_on(PgStore::open(pool, &name)) {
        Ok(store) => Some(PgRig { store }),
        Err(e) => {
            skip("postgres", &format_args!("unreachable at {}: {e}", database_url()));
            None
        }
    }
}

type Node = MultiLayer<LocalBus, RedisStore, PgStore>;

fn node(l2: &RedisRig, l3: &PgRig, bus: &LocalBus, clock: &Arc<ManualClock>, capacity: usize) -> Node {
    MultiLayer::new(L1Cache::new(capacity, clock.clone(), bus.clone()), l2.store.clone(), l3.store.clone())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

#[test]
fn multi_layer_on_redis_and_postgres_reads_through_and_promotes() {
    let Some(l2) = redis_rig("promote") else { return };
    let Some(l3) = pg_rig("promote") else { return };
    let (bus, clock) = (LocalBus::new(), clock());
    let (a, b) = (node(&l2, &l3, &bus, &clock, 8), node(&l2, &l3, &bus, &clock, 8));
    block_on(a.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60))).unwrap();
    let Ttl::Remaining(l3_ttl) = block_on(l3.store.pttl("project:1:stats")).unwrap() else {
        panic!("l3 ttl")
    };
    assert!(l3_ttl > Duration::from_secs(200) && l3_ttl <= Duration::from_secs(240), "{l3_ttl:?}");
    block_on(l2.store.del("project:1:stats")).unwrap();
    assert_eq!(block_on(b.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    let Ttl::Remaining(promoted) = block_on(l2.store.pttl("project:1:stats")).unwrap() else {
        panic!("l2 ttl")
    };
    assert!(promoted > Duration::from_secs(290) && promoted <= PROMOTED_TTL, "{promoted:?}");
    assert_eq!(block_on(b.get("project:1:stats")).unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(b.layer_stats(), LayerStats { l1_hits: 1, l3_hits: 1, ..LayerStats::default() });
    block_on(b.invalidate("project:*")).unwrap();
    assert_eq!(block_on(a.get("project:1:stats")).unwrap(), None);
    // Only the invalidation epoch is left in Redis, and it expires.
    let left = l2.keys();
    assert!(left.len() == 1 && left[0].0 == EPOCH_KEY && matches!(left[0].1, Ttl::Remaining(_)), "{left:?}");
}

/// The L3 → L2 promotion racing an invalidation, step by step on the real stores: a `get`
/// reads the epoch, then the value from L3; the invalidation runs to completion; the
/// promotion, guarded by the epoch read first, is refused, and no instance reads the value.
#[test]
fn multi_layer_on_redis_and_postgres_promotion_racing_invalidation_is_refused() {
    let Some(l2) = redis_rig("race") else { return };
    let Some(l3) = pg_rig("race") else { return };
    let (bus, clock) = (LocalBus::new(), clock());
    let (a, b) = (node(&l2, &l3, &bus, &clock, 8), node(&l2, &l3, &bus, &clock, 8));
    block_on(a.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60))).unwrap();
    block_on(l2.store.del("project:1:stats")).unwrap();

    let epoch = block_on(l2.store.get(EPOCH_KEY)).unwrap().expect("set wrote the epoch");
    let value = block_on(l3.store.get("project:1:stats")).unwrap().expect("in l3");
    block_on(a.invalidate("project:*")).unwrap();
    let promoted =
        block_on(l2.store.set_guarded(EPOCH_KEY, &epoch, "project:1:stats", value, Some(PROMOTED_TTL)))
            .unwrap();
    assert!(!promoted, "a promotion that read l3 before the invalidation wrote l2 after it");
    assert_eq!(block_on(b.get("project:1:stats")).unwrap(), None);
    assert_eq!(block_on(a.get("project:1:stats")).unwrap(), None);
}

#[test]
fn multi_layer_on_redis_and_postgres_shared_history_has_no_stale_read() {
    let Some(l2) = redis_rig("history") else { return };
    let Some(l3) = pg_rig("history") else { return };
    let (bus, clock) = (LocalBus::new(), clock());
    let nodes: Vec<Arc<Node>> = (0..3).map(|_| Arc::new(node(&l2, &l3, &bus, &clock, 64))).collect();
    let evict = |key: &str| {
        block_on(l2.store.del(key)).unwrap();
    };
    suite::shared_layers(nodes.clone(), 8, 20, evict).unwrap();
    let l3_hits: u64 = nodes.iter().map(|n| n.layer_stats().l3_hits).sum();
    assert!(l3_hits > 0);
    // Every key written to Redis carries a TTL.
    let keys = l2.keys();
    assert!(keys.iter().all(|(_, ttl)| matches!(ttl, Ttl::Remaining(_))), "{keys:?}");
}

#[test]
fn multi_layer_on_redis_and_postgres_mutant_local_only_invalidate_caught() {
    let Some(l2) = redis_rig("local_only") else { return };
    let Some(l3) = pg_rig("local_only") else { return };
    let (bus, clock) = (LocalBus::new(), clock());
    let nodes: Vec<_> =
        (0..3).map(|_| Arc::new(MultiLayerLocalOnly { inner: node(&l2, &l3, &bus, &clock, 64) })).collect();
    let evict = |key: &str| {
        block_on(l2.store.del(key)).unwrap();
    };
    let violation = suite::shared_layers(nodes, 8, 20, evict).unwrap_err();
    assert_eq!(violation.rule, "stale-read", "{violation}");
}
