//! The L1 cache as the field wrote it (seed 004, `MultiLayerCache`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, Millis, millis};
use crate::store::{Store, StoreResult, glob_match};
use crate::sync::{Mutex, lock};

use super::multi_layer::{Layer, LayerStats, Layered, Lookup, MultiLayer, PROMOTED_TTL};
use super::{Applied, Cache, InvalidationBus, L1Cache, Stats, Subscriber};

/// `self.l1_cache = {}`: a plain dict in process memory with no bound, so the L1 grows with
/// every distinct key until the process runs out of memory. Entries still expire and
/// invalidations still reach every instance; only the bound is missing.
pub struct Unbounded<B> {
    local: Arc<Dict>,
    bus: B,
}

struct Dict {
    clock: Arc<dyn Clock>,
    state: Mutex<DictState>,
}

/// Key → (value, expiry).
#[derive(Default)]
struct DictState {
    entries: HashMap<String, (Vec<u8>, Millis)>,
    stats: Stats,
}

impl Subscriber for Dict {
    fn apply(&self, pattern: &str) -> u64 {
        let mut state = lock(&self.state);
        let DictState { entries, stats } = &mut *state;
        let before = entries.len();
        entries.retain(|key, _| !glob_match(pattern, key));
        let dropped = (before - entries.len()) as u64;
        stats.invalidations += dropped;
        dropped
    }
}

impl<B: InvalidationBus> Unbounded<B> {
    pub fn new(clock: Arc<dyn Clock>, bus: B) -> Self {
        let local = Arc::new(Dict { clock, state: Mutex::new(DictState::default()) });
        let subscriber: Arc<dyn Subscriber> = local.clone();
        bus.subscribe(Arc::downgrade(&subscriber));
        Self { local, bus }
    }
}

impl<B: InvalidationBus> Cache for Unbounded<B> {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.local.clock.now();
        let mut state = lock(&self.local.state);
        let DictState { entries, stats } = &mut *state;
        match entries.get(key) {
            Some((value, expires_at)) if *expires_at > now => {
                stats.hits += 1;
                Some(value.clone())
            }
            Some(_) => {
                entries.remove(key);
                stats.expirations += 1;
                stats.misses += 1;
                None
            }
            None => {
                stats.misses += 1;
                None
            }
        }
    }

    fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let expires_at = self.local.clock.now().saturating_add(millis(ttl));
        let mut state = lock(&self.local.state);
        let DictState { entries, stats } = &mut *state;
        if entries.insert(key.to_owned(), (value, expires_at)).is_none() {
            stats.inserts += 1;
        }
    }

    async fn invalidate(&self, pattern: &str) -> StoreResult<Applied> {
        self.bus.publish(pattern).await
    }

    fn len(&self) -> usize {
        lock(&self.local.state).entries.len()
    }

    fn stats(&self) -> Stats {
        lock(&self.local.state).stats
    }
}

/// `invalidate` that clears the calling process's L1 (and the shared layers) but no other
/// process's: every other instance keeps serving the matching entries it holds until they
/// expire or are evicted.
pub struct LocalOnlyInvalidate<B> {
    pub inner: L1Cache<B>,
}

impl<B: InvalidationBus> Cache for LocalOnlyInvalidate<B> {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        self.inner.set(key, value, ttl);
    }

    async fn invalidate(&self, pattern: &str) -> StoreResult<Applied> {
        Ok(Applied { instances: 1, dropped: self.inner.invalidate_local(pattern) })
    }

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn stats(&self) -> Stats {
        self.inner.stats()
    }
}

/// The seed's `MultiLayerCache.invalidate`: clears the calling process's L1 and the shared L2
/// and L3, but no other process's L1, which keeps serving the matching entries it holds.
pub struct MultiLayerLocalOnly<B, L2, L3> {
    pub inner: MultiLayer<B, L2, L3>,
}

impl<B: InvalidationBus, L2: Store, L3: Store> Layered for MultiLayerLocalOnly<B, L2, L3> {
    async fn lookup(&self, key: &str) -> StoreResult<Lookup> {
        self.inner.lookup(key).await
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<()> {
        self.inner.set(key, value, ttl).await
    }

    async fn invalidate(&self, pattern: &str) -> StoreResult<Applied> {
        let dropped = self.inner.l1.invalidate_local(pattern);
        self.inner.delete_shared(pattern).await?;
        Ok(Applied { instances: 1, dropped })
    }

    fn layer_stats(&self) -> LayerStats {
        self.inner.layer_stats()
    }

    fn l1_stats(&self) -> Stats {
        self.inner.l1_stats()
    }
}

/// The seed's get-then-promote: a value fetched from L2 or L3 goes into L1 unconditionally,
/// even when an invalidation was applied to this instance between the fetch and the fill, so
/// the value the invalidation dropped is cached again and served after it returned.
pub struct UnfencedPromotion<B, L2, L3> {
    pub inner: MultiLayer<B, L2, L3>,
}

impl<B: InvalidationBus, L2: Store, L3: Store> Layered for UnfencedPromotion<B, L2, L3> {
    async fn lookup(&self, key: &str) -> StoreResult<Lookup> {
        let inner = &self.inner;
        if let Some(value) = inner.l1.get(key) {
            inner.count(|s| s.l1_hits += 1);
            return Ok(Lookup { value: Some(value), layer: Layer::L1 });
        }
        if let Some(value) = inner.l2.get(key).await? {
            inner.count(|s| s.l2_hits += 1);
            inner.l1.set(key, value.clone(), PROMOTED_TTL);
            return Ok(Lookup { value: Some(value), layer: Layer::L2 });
        }
        if let Some(value) = inner.l3.get(key).await? {
            inner.count(|s| s.l3_hits += 1);
            inner.l2.set(key, value.clone(), Some(PROMOTED_TTL)).await?;
            inner.l1.set(key, value.clone(), PROMOTED_TTL);
            return Ok(Lookup { value: Some(value), layer: Layer::L3 });
        }
        inner.count(|s| s.misses += 1);
        Ok(Lookup { value: None, layer: Layer::Miss })
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<()> {
        self.inner.set(key, value, ttl).await
    }

    async fn invalidate(&self, pattern: &str) -> StoreResult<Applied> {
        self.inner.invalidate(pattern).await
    }

    fn layer_stats(&self) -> LayerStats {
        self.inner.layer_stats()
    }

    fn l1_stats(&self) -> Stats {
        self.inner.l1_stats()
    }
}

/// The seed's L3 → L2 promotion: a value read from L3 is written into the shared L2 with a
/// plain `set`, not guarded by the invalidation epoch read before L3. A `get` that read L3
/// before an invalidation deleted the key there and writes L2 after the invalidation deleted
/// it there puts the stale value back into L2, where every instance reads it for
/// [`PROMOTED_TTL`]. The promotion into L1 stays fenced, so only the shared layer goes stale.
pub struct UnguardedL2Promotion<B, L2, L3> {
    pub inner: MultiLayer<B, L2, L3>,
}

impl<B: InvalidationBus, L2: Store, L3: Store> Layered for UnguardedL2Promotion<B, L2, L3> {
    async fn lookup(&self, key: &str) -> StoreResult<Lookup> {
        let inner = &self.inner;
        let generation = inner.l1.generation();
        if let Some(value) = inner.l1.get(key) {
            inner.count(|s| s.l1_hits += 1);
            return Ok(Lookup { value: Some(value), layer: Layer::L1 });
        }
        if let Some(value) = inner.l2.get(key).await? {
            inner.count(|s| s.l2_hits += 1);
            inner.l1.fill(key, value.clone(), PROMOTED_TTL, generation);
            return Ok(Lookup { value: Some(value), layer: Layer::L2 });
        }
        if let Some(value) = inner.l3.get(key).await? {
            inner.count(|s| s.l3_hits += 1);
            inner.l2.set(key, value.clone(), Some(PROMOTED_TTL)).await?;
            inner.l1.fill(key, value.clone(), PROMOTED_TTL, generation);
            return Ok(Lookup { value: Some(value), layer: Layer::L3 });
        }
        inner.count(|s| s.misses += 1);
        Ok(Lookup { value: None, layer: Layer::Miss })
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<()> {
        self.inner.set(key, value, ttl).await
    }

    async fn invalidate(&self, pattern: &str) -> StoreResult<Applied> {
        self.inner.invalidate(pattern).await
    }

    fn layer_stats(&self) -> LayerStats {
        self.inner.layer_stats()
    }

    fn l1_stats(&self) -> Stats {
        self.inner.l1_stats()
    }
}
