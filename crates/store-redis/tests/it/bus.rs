//! The Redis pub/sub invalidation bus between two "processes": two buses with their own
//! connections, the L1s of each on its own bus, L2 and L3 shared on Redis.

use std::sync::Arc;
use std::time::Duration;

use reference::clock::ManualClock;
use reference::l1_cache::multi_layer::{Layered, MultiLayer};
use reference::l1_cache::mutants::{LocalOnlyInvalidate, MultiLayerLocalOnly};
use reference::l1_cache::{Applied, Cache, L1Cache, suite};
use reference::store::{Store, StoreError};
use reference::sync::block_on;
use store_redis::{BusOptions, RedisBus, RedisStore};

use crate::common::{redis_url, rig};

const OPTIONS: BusOptions =
    BusOptions { connect_timeout: Duration::from_secs(2), ack_timeout: Duration::from_millis(500) };

/// Two buses, standing for two processes, on a namespace of this test's own.
fn buses(test: &str) -> [RedisBus; 2] {
    let namespace = format!("stampede-test:{test}:{}", std::process::id());
    [0, 1].map(|_| RedisBus::connect(&redis_url(), &namespace, &OPTIONS).expect("redis answered the rig"))
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

#[test]
fn redis_bus_invalidation_reaches_the_other_process_before_it_returns() {
    let Some(_rig) = rig("bus-reach") else { return };
    let (clock, [one, two]) = (clock(), buses("bus-reach"));
    let (a, b) = (L1Cache::new(8, clock.clone(), one), L1Cache::new(8, clock.clone(), two));
    for cache in [&a, &b] {
        cache.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60));
        cache.set("user:1", b"u".to_vec(), Duration::from_secs(60));
    }
    let applied = block_on(a.invalidate("project:1:*")).unwrap();
    assert_eq!(applied, Applied { instances: 2, dropped: 2 });
    assert_eq!(b.get("project:1:stats"), None);
    assert_eq!(b.get("user:1").as_deref(), Some(&b"u"[..]));
}

#[test]
fn redis_bus_cross_instance_suite_holds() {
    let Some(_rig) = rig("bus-cross") else { return };
    let (clock, buses) = (clock(), buses("bus-cross"));
    let nodes = (0..4).map(|i| Arc::new(L1Cache::new(8, clock.clone(), buses[i % 2].clone()))).collect();
    suite::cross_instance(nodes, 30).unwrap();
}

#[test]
fn redis_bus_mutant_local_only_invalidate_caught_across_processes() {
    let Some(_rig) = rig("bus-local-only") else { return };
    let (clock, buses) = (clock(), buses("bus-local-only"));
    let nodes = (0..4)
        .map(|i| {
            Arc::new(LocalOnlyInvalidate { inner: L1Cache::new(8, clock.clone(), buses[i % 2].clone()) })
        })
        .collect();
    let violation = suite::cross_instance(nodes, 30).unwrap_err();
    assert_eq!(violation.rule, "stale-read", "{violation}");
}

fn multi_layer_nodes(
    l2: &RedisStore,
    l3: &RedisStore,
    buses: &[RedisBus; 2],
) -> Vec<MultiLayer<RedisBus, RedisStore, RedisStore>> {
    let clock = clock();
    (0..4)
        .map(|i| {
            MultiLayer::new(L1Cache::new(64, clock.clone(), buses[i % 2].clone()), l2.clone(), l3.clone())
        })
        .collect()
}

#[test]
fn redis_bus_multi_layer_history_has_no_stale_read() {
    let (Some(l2), Some(l3)) = (rig("bus-ml-l2"), rig("bus-ml-l3")) else { return };
    let buses = buses("bus-ml");
    let nodes: Vec<_> = multi_layer_nodes(&l2.store, &l3.store, &buses).into_iter().map(Arc::new).collect();
    let evict = |key: &str| {
        block_on(l2.store.del(key)).unwrap();
    };
    suite::shared_layers(nodes.clone(), 8, 20, evict).unwrap();
    assert!(nodes.iter().map(|n| n.layer_stats().l3_hits).sum::<u64>() > 0);
}

#[test]
fn redis_bus_multi_layer_mutant_local_only_caught_across_processes() {
    let (Some(l2), Some(l3)) = (rig("bus-mlm-l2"), rig("bus-mlm-l3")) else { return };
    let buses = buses("bus-mlm");
    let nodes: Vec<_> = multi_layer_nodes(&l2.store, &l3.store, &buses)
        .into_iter()
        .map(|inner| Arc::new(MultiLayerLocalOnly { inner }))
        .collect();
    let evict = |key: &str| {
        block_on(l2.store.del(key)).unwrap();
    };
    let violation = suite::shared_layers(nodes, 8, 20, evict).unwrap_err();
    assert_eq!(violation.rule, "stale-read", "{violation}");
}

#[test]
fn redis_bus_silent_subscriber_fails_with_a_typed_timeout() {
    let Some(_rig) = rig("bus-silent") else { return };
    let namespace = format!("stampede-test:bus-silent:{}", std::process::id());
    let bus = RedisBus::connect(&redis_url(), &namespace, &OPTIONS).unwrap();
    // A process that subscribed and never acknowledges.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut silent = client.get_connection().unwrap();
    let mut silent = silent.as_pubsub();
    silent.subscribe(format!("{namespace}:invalidate")).unwrap();

    let cache = L1Cache::new(4, clock(), bus);
    let started = std::time::Instant::now();
    let err = block_on(cache.invalidate("project:*")).unwrap_err();
    assert!(matches!(err, StoreError::Unacknowledged { acked: 1, expected: 2, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(err.to_string().starts_with("invalidation of project:* acknowledged by 1 of 2"), "{err}");
}

#[test]
fn redis_bus_unreachable_server_is_a_typed_error() {
    let options = BusOptions { connect_timeout: Duration::from_millis(500), ..OPTIONS };
    let err =
        RedisBus::connect("redis://127.0.0.1:1", "stampede-test:bus-unreachable", &options).unwrap_err();
    assert!(matches!(err, store_redis::RedisStoreError::Unreachable { .. }), "{err:?}");
    let err = RedisBus::connect("not a url", "stampede-test:bus-bad-url", &options).unwrap_err();
    assert!(matches!(err, store_redis::RedisStoreError::InvalidUrl { .. }), "{err:?}");
}
