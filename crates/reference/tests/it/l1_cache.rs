//! #14 bounded L1 cache with pattern invalidation across instances.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::{Clock, ManualClock};
use reference::l1_cache::mutants::{LocalOnlyInvalidate, Unbounded};
use reference::l1_cache::{Applied, Cache, L1Cache, LocalBus, Stats, suite};
use reference::store::glob_match;
use reference::sync::block_on;

use crate::common::model_rejects;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

fn correct(clock: &Arc<ManualClock>, bus: &LocalBus, capacity: usize) -> L1Cache<LocalBus> {
    L1Cache::new(capacity, clock.clone(), bus.clone())
}

fn unbounded(clock: &Arc<ManualClock>, bus: &LocalBus, _capacity: usize) -> Unbounded<LocalBus> {
    Unbounded::new(clock.clone(), bus.clone())
}

fn local_only(clock: &Arc<ManualClock>, bus: &LocalBus, capacity: usize) -> LocalOnlyInvalidate<LocalBus> {
    LocalOnlyInvalidate { inner: correct(clock, bus, capacity) }
}

// --- contention: real threads -------------------------------------------------------------

#[test]
fn l1_cache_contention_stays_bounded_with_exact_stats() {
    let clock = clock();
    let cache = Arc::new(correct(&clock, &LocalBus::new(), 16));
    suite::contention(Arc::clone(&cache), clock, 16, 8, 2_000).unwrap();
    let stats = cache.stats();
    // The workload exercised every path the stats account for.
    assert!(stats.hits > 0 && stats.misses > 0, "{stats:?}");
    assert!(stats.evictions > 0 && stats.expirations > 0 && stats.invalidations > 0, "{stats:?}");
}

#[test]
fn l1_cache_mutant_unbounded_caught_by_contention() {
    let clock = clock();
    let cache = Arc::new(unbounded(&clock, &LocalBus::new(), 16));
    let violation = suite::contention(cache, clock, 16, 8, 2_000).unwrap_err();
    assert_eq!(violation.rule, "unbounded", "{violation}");
}

#[test]
fn l1_cache_invalidation_reaches_every_instance() {
    let (clock, bus) = (clock(), LocalBus::new());
    let nodes = (0..8).map(|_| Arc::new(correct(&clock, &bus, 8))).collect();
    suite::cross_instance(nodes, 200).unwrap();
}

#[test]
fn l1_cache_mutant_local_only_invalidate_caught_by_cross_instance_read() {
    let (clock, bus) = (clock(), LocalBus::new());
    let nodes = (0..8).map(|_| Arc::new(local_only(&clock, &bus, 8))).collect();
    let violation = suite::cross_instance(nodes, 200).unwrap_err();
    assert_eq!(violation.rule, "stale-read", "{violation}");
}

#[test]
fn l1_cache_dropped_instance_leaves_the_bus() {
    let (clock, bus) = (clock(), LocalBus::new());
    let kept = correct(&clock, &bus, 4);
    drop(correct(&clock, &bus, 4));
    kept.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60));
    let applied = block_on(kept.invalidate("project:1:*")).unwrap();
    assert_eq!(applied, Applied { instances: 1, dropped: 1 });
}

// --- model-based ---------------------------------------------------------------------------

const KEYS: [&str; 6] = ["p:1:stats", "p:1:feed", "p:2:stats", "p:2:feed", "u:1", "u:2"];
const PATTERNS: [&str; 6] = ["p:1:*", "p:*", "*:stats", "u:1", "*", "p:3:*"];
const TTLS: [u64; 3] = [50, 200, 1_000];
const INSTANCES: usize = 3;
const CAPACITY: usize = 3;

#[derive(Debug, Clone, Copy)]
enum CacheOp {
    Get { instance: usize, key: usize },
    Set { instance: usize, key: usize, value: u8, ttl: usize },
    Invalidate { instance: usize, pattern: usize },
    Advance(u64),
}

fn cache_ops() -> impl Strategy<Value = Vec<CacheOp>> {
    let instance = 0..INSTANCES;
    let op = prop_oneof![
        4 => (instance.clone(), 0..KEYS.len()).prop_map(|(instance, key)| CacheOp::Get { instance, key }),
        4 => (instance.clone(), 0..KEYS.len(), any::<u8>(), 0..TTLS.len())
            .prop_map(|(instance, key, value, ttl)| CacheOp::Set { instance, key, value, ttl }),
        1 => (instance, 0..PATTERNS.len()).prop_map(|(instance, pattern)| CacheOp::Invalidate { instance, pattern }),
        1 => (0..=300u64).prop_map(CacheOp::Advance),
    ];
    proptest::collection::vec(op, 1..80)
}

/// The trivially correct model of one instance: entries least recently used first.
#[derive(Debug, Default)]
struct Model {
    entries: VecDeque<(String, Vec<u8>, u64)>,
    stats: Stats,
}

impl Model {
    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _, _)| k == key)
    }

    fn get(&mut self, key: &str, now: u64) -> Option<Vec<u8>> {
        let Some(at) = self.position(key) else {
            self.stats.misses += 1;
            return None;
        };
        let entry = self.entries.remove(at).unwrap();
        if entry.2 <= now {
            self.stats.expirations += 1;
            self.stats.misses += 1;
            return None;
        }
        self.stats.hits += 1;
        let value = entry.1.clone();
        self.entries.push_back(entry);
        Some(value)
    }

    fn set(&mut self, key: &str, value: Vec<u8>, expires_at: u64) {
        match self.position(key) {
            Some(at) => {
                self.entries.remove(at);
            }
            None => {
                if self.entries.len() == CAPACITY {
                    self.entries.pop_front();
                    self.stats.evictions += 1;
                }
                self.stats.inserts += 1;
            }
        }
        self.entries.push_back((key.to_owned(), value, expires_at));
    }

    fn invalidate(&mut self, pattern: &str) -> u64 {
        let before = self.entries.len();
        self.entries.retain(|(k, _, _)| !glob_match(pattern, k));
        let dropped = (before - self.entries.len()) as u64;
        self.stats.invalidations += dropped;
        dropped
    }
}

/// Runs `ops` against `INSTANCES` instances on one bus and against the model; the first
/// disagreement, if any.
fn against_model<C: Cache>(
    make: impl Fn(&Arc<ManualClock>, &LocalBus, usize) -> C,
    ops: &[CacheOp],
) -> Result<(), String> {
    let (clock, bus) = (clock(), LocalBus::new());
    let caches: Vec<C> = (0..INSTANCES).map(|_| make(&clock, &bus, CAPACITY)).collect();
    let mut models: Vec<Model> = (0..INSTANCES).map(|_| Model::default()).collect();
    for (step, op) in ops.iter().enumerate() {
        let now = clock.now();
        let disagree = |what: &str, got: &dyn std::fmt::Debug, want: &dyn std::fmt::Debug| {
            Err(format!("step {step} {op:?}: {what}: got {got:?}, model says {want:?}"))
        };
        match *op {
            CacheOp::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            CacheOp::Get { instance, key } => {
                let (got, want) = (caches[instance].get(KEYS[key]), models[instance].get(KEYS[key], now));
                if got != want {
                    return disagree("get", &got, &want);
                }
            }
            CacheOp::Set { instance, key, value, ttl } => {
                caches[instance].set(KEYS[key], vec![value], Duration::from_millis(TTLS[ttl]));
                models[instance].set(KEYS[key], vec![value], now + TTLS[ttl]);
            }
            CacheOp::Invalidate { instance, pattern } => {
                let got =
                    block_on(caches[instance].invalidate(PATTERNS[pattern])).map_err(|e| e.to_string())?;
                let dropped = models.iter_mut().map(|m| m.invalidate(PATTERNS[pattern])).sum();
                let want = Applied { instances: INSTANCES, dropped };
                if got != want {
                    return disagree("invalidate", &got, &want);
                }
            }
        }
        for (i, (cache, model)) in caches.iter().zip(&models).enumerate() {
            if cache.len() != model.entries.len() {
                return disagree(&format!("instance {i} len"), &cache.len(), &model.entries.len());
            }
            if cache.stats() != model.stats {
                return disagree(&format!("instance {i} stats"), &cache.stats(), &model.stats);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn l1_cache_matches_model(ops in cache_ops()) {
        prop_assert_eq!(against_model(correct, &ops), Ok(()));
    }
}

#[test]
fn l1_cache_mutant_unbounded_rejected_by_model() {
    assert!(model_rejects(cache_ops(), |ops| against_model(unbounded, ops)));
}

#[test]
fn l1_cache_mutant_local_only_invalidate_rejected_by_model() {
    assert!(model_rejects(cache_ops(), |ops| against_model(local_only, ops)));
}
