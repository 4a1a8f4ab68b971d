//! #14 The seed's `MultiLayerCache` whole: L1 in process memory ([`L1Cache`]), L2 and L3 shared
//! [`Store`]s (Redis memory and a persistent store in the seed; Redis and PostgreSQL here).
//!
//! `get` reads L1, then L2, then L3, promoting what it finds to the faster layers (to L2 for
//! [`PROMOTED_TTL`], as the seed does, and to L1). `set` writes all three (L3 for four times the
//! TTL). `invalidate(pattern)` deletes the matching keys from L3 and L2, then publishes the
//! pattern on the bus, so that when it returns every instance's L1 has dropped them too.
//!
//! # Promotion into L1
//!
//! Promotion into L1 is fenced: a value fetched from L2 or L3 is cached only if this instance
//! applied no invalidation since the `get` began ([`L1Cache::fill`]). Without the fence a `get`
//! that read a value just before an invalidation deleted it would put it back into L1 after
//! the bus had cleared L1, and serve it afterwards: that is the seed's get-then-promote, kept
//! as [`UnfencedPromotion`](super::mutants::UnfencedPromotion) and caught by a test that
//! places the invalidation between the fetch and the fill with a store hook.
//!
//! # Promotion into L2: the invalidation epoch
//!
//! Promotion from L3 into L2 crosses instances, so the L1's generation cannot fence it: a
//! `get` on one instance that read L3 before an invalidation deleted the key there, and wrote
//! L2 after the invalidation deleted it there, would leave the stale value in L2 for
//! [`PROMOTED_TTL`], where every instance reads it (the plain `set` promotion, kept as
//! [`UnguardedL2Promotion`](super::mutants::UnguardedL2Promotion)). It is fenced by an
//! *invalidation epoch* in L2: the reserved key [`EPOCH_KEY`] holds a random token that every
//! invalidation replaces, and the promotion is written with [`Store::set_guarded`] — only if
//! the epoch still holds the token the `get` read *before it read L3*.
//!
//! - `invalidate(pattern)`: delete the matching keys from L3 (D3); write a fresh token into
//!   the epoch (E); delete the matching keys from L2 (D2); publish on the bus (L1).
//! - `get`, after L1 and L2 missed: read the epoch (g0); read L3; on a hit, write L2 guarded by
//!   g0 (W). If the epoch was missing, no promotion: `set_nx` a fresh token instead, so later
//!   `get`s can promote. The value is returned, and filled into L1 behind the generation
//!   fence, either way. The epoch read costs one more L2 round trip per L2 miss.
//!
//! Why that order is enough. A stale promotion is one that read L3 before D3 (it holds the
//! deleted value) and wrote L2 after D2 (nothing deletes it). Its g0 was read before its L3
//! read, so before D3, so before E: g0 is the token E replaced, or nothing. Its W comes after
//! D2, so after E: the epoch then holds E's token or a later one (or nothing, if a pattern such
//! as `*` deleted it or it expired). Tokens are never reused, so the guard differs, or is
//! missing, and W is refused.
//!
//! Why the simpler orders are not. Epoch first (E, D3, D2): a `get` reads g0 = E's token
//! between E and D3, reads the old value from L3 before D3, and writes it into L2 after D2
//! under a guard that still holds. Epoch last (D3, D2, E): a `get` reads the old token and the
//! old value before D3, and its W lands between D2 and E, while the old token still holds.
//! The loom model (`tests/loom/loom_multi_layer.rs`) finds both when the order is changed.
//!
//! Tokens must be unique: a reused value would be an ABA, a promotion holding an old token
//! passing after the epoch was deleted and recreated with that same value. They are 64 random
//! bits ([`fresh_token`]), and a missing epoch refuses, so an invalidation whose pattern
//! matches [`EPOCH_KEY`] (`*`) and deletes it from L2 only suspends promotions until the next
//! L3 hit creates a new one. The epoch always carries [`EPOCH_TTL`]: its expiry is just as
//! safe.
//!
//! `set` closes the same race with promotion: it writes L3, then replaces the epoch, then
//! writes L2, then L1. A `get` that read the previous value from L3 read its g0 before that
//! L3 write, so before the epoch changed; its promotion, if it lands after the L2 write (the
//! only place it would overwrite the new value), lands after the epoch changed and is
//! refused. One more L2 write per `set` is the price; a refused promotion costs nothing but a
//! later L3 read.
//!
//! The concurrent suites still keep promotions and invalidations of the same keys in separate
//! phases, so their history check is deterministic; the race itself is placed exactly by a
//! hooked-store test (`multi_layer_l3_promotion_racing_invalidation_is_fenced`), and explored
//! by a loom model.

use std::future::Future;
use std::time::Duration;

use crate::store::{Store, StoreResult};
use crate::sync::{Mutex, lock};

use super::{Applied, Cache, InvalidationBus, L1Cache};

/// The TTL a value gets when promoted to L2 or L1 (the seed's `self.l2_cache.set(key, value,
/// 300)`).
pub const PROMOTED_TTL: Duration = Duration::from_secs(300);

/// L3 keeps values this many times longer than L1 and L2 (the seed's `ttl * 4`).
pub const L3_TTL_FACTOR: u32 = 4;

/// The L2 key holding the invalidation epoch, reserved: no cache entry may use it.
pub const EPOCH_KEY: &str = "__multi_layer_epoch";

/// How long an epoch token lives in L2 unless replaced first. Its expiry only refuses the
/// promotions under way until the next L3 hit writes a new one.
pub const EPOCH_TTL: Duration = Duration::from_secs(60 * 60);

/// A token for the epoch no other call, in this process or another, has minted: a per-thread
/// counter and the thread's id, hashed under [`RandomState`](std::hash::RandomState) keys,
/// which std draws at random per process and thread, rendered as 16 hex digits. The counter is
/// a thread-local `Cell`, neither a lock nor an atomic: it only makes the inputs distinct and
/// takes part in no interleaving worth modelling.
pub fn fresh_token() -> Vec<u8> {
    use std::cell::Cell;
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static MINTED: Cell<u64> = const { Cell::new(0) };
    }
    let n = MINTED.with(|minted| {
        let n = minted.get();
        minted.set(n + 1);
        n
    });
    let input = (std::thread::current().id(), n);
    format!("{:016x}", RandomState::new().hash_one(input)).into_bytes()
}

/// Where each `get` was answered; exactly one counter moves per `get`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub l1_hits: u64,
    pub l2_hits: u64,
    pub l3_hits: u64,
    pub misses: u64,
}

impl LayerStats {
    pub fn hits(&self) -> u64 {
        self.l1_hits + self.l2_hits + self.l3_hits
    }

    pub fn gets(&self) -> u64 {
        self.hits() + self.misses
    }
}

/// The layer that answered a `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    L1,
    L2,
    L3,
    Miss,
}

impl Layer {
    /// As the stack's `X-Cache` header says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::L1 => "L1",
            Layer::L2 => "L2",
            Layer::L3 => "L3",
            Layer::Miss => "MISS",
        }
    }
}

/// What one `get` found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub value: Option<Vec<u8>>,
    pub layer: Layer,
}

/// A multi-layer cache instance, as the suites drive it.
pub trait Layered: Send + Sync {
    /// The value at `key` and the layer that answered; exactly one [`LayerStats`] counter
    /// moves.
    fn lookup(&self, key: &str) -> impl Future<Output = StoreResult<Lookup>> + Send;

    fn get(&self, key: &str) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send {
        async move { self.lookup(key).await.map(|found| found.value) }
    }

    fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deletes every key matching `pattern` from every layer of every instance; when it
    /// returns, no instance serves a value set before the call for such a key.
    fn invalidate(&self, pattern: &str) -> impl Future<Output = StoreResult<Applied>> + Send;

    fn layer_stats(&self) -> LayerStats;

    /// The L1's own stats.
    fn l1_stats(&self) -> super::Stats;
}

/// The correct multi-layer cache instance.
pub struct MultiLayer<B, L2, L3> {
    pub(crate) l1: L1Cache<B>,
    pub(crate) l2: L2,
    pub(crate) l3: L3,
    pub(crate) counts: Mutex<LayerStats>,
}

impl<B, L2, L3> std::fmt::Debug for MultiLayer<B, L2, L3> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiLayer").field("l1", &self.l1).finish_non_exhaustive()
    }
}

impl<B: InvalidationBus, L2: Store, L3: Store> MultiLayer<B, L2, L3> {
    /// An instance over its own `l1` and the shared `l2` and `l3`.
    pub fn new(l1: L1Cache<B>, l2: L2, l3: L3) -> Self {
        Self { l1, l2, l3, counts: Mutex::new(LayerStats::default()) }
    }

    pub fn l1(&self) -> &L1Cache<B> {
        &self.l1
    }

    pub(crate) fn count(&self, bump: impl FnOnce(&mut LayerStats)) {
        bump(&mut lock(&self.counts));
    }

    /// Deletes the matching keys from L3, replaces the epoch, then deletes them from L2: in
    /// that order, a concurrent `get` that read a value from L3 before it was deleted there
    /// cannot promote it into L2 after it was deleted there (see the module docs).
    pub(crate) async fn delete_shared(&self, pattern: &str) -> StoreResult<()> {
        self.l3.del_matching(pattern).await?;
        self.rotate_epoch().await?;
        self.l2.del_matching(pattern).await?;
        Ok(())
    }

    /// Writes a fresh token into the epoch, refusing every promotion whose `get` read the
    /// epoch before now.
    pub(crate) async fn rotate_epoch(&self) -> StoreResult<()> {
        self.l2.set(EPOCH_KEY, fresh_token(), Some(EPOCH_TTL)).await
    }

    /// Promotes `value`, read from L3 after the epoch read `epoch`, into L2, unless the epoch
    /// changed since; a missing epoch is recreated instead, for later promotions. True if L2
    /// was written.
    pub(crate) async fn promote_to_l2(
        &self,
        key: &str,
        value: &[u8],
        epoch: Option<&[u8]>,
    ) -> StoreResult<bool> {
        match epoch {
            Some(epoch) => {
                self.l2.set_guarded(EPOCH_KEY, epoch, key, value.to_vec(), Some(PROMOTED_TTL)).await
            }
            None => {
                self.l2.set_nx(EPOCH_KEY, fresh_token(), EPOCH_TTL).await?;
                Ok(false)
            }
        }
    }
}

impl<B: InvalidationBus, L2: Store, L3: Store> Layered for MultiLayer<B, L2, L3> {
    async fn lookup(&self, key: &str) -> StoreResult<Lookup> {
        // Read before any layer: an invalidation applied from here on voids the fill below.
        let generation = self.l1.generation();
        if let Some(value) = self.l1.get(key) {
            self.count(|s| s.l1_hits += 1);
            return Ok(Lookup { value: Some(value), layer: Layer::L1 });
        }
        if let Some(value) = self.l2.get(key).await? {
            self.count(|s| s.l2_hits += 1);
            self.l1.fill(key, value.clone(), PROMOTED_TTL, generation);
            return Ok(Lookup { value: Some(value), layer: Layer::L2 });
        }
        // Read before L3: an invalidation (or set) from here on changes it and voids the
        // promotion below.
        let epoch = self.l2.get(EPOCH_KEY).await?;
        if let Some(value) = self.l3.get(key).await? {
            self.count(|s| s.l3_hits += 1);
            self.promote_to_l2(key, &value, epoch.as_deref()).await?;
            self.l1.fill(key, value.clone(), PROMOTED_TTL, generation);
            return Ok(Lookup { value: Some(value), layer: Layer::L3 });
        }
        self.count(|s| s.misses += 1);
        Ok(Lookup { value: None, layer: Layer::Miss })
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<()> {
        // Slowest first, the epoch between L3 and L2: a promotion of the value this replaces
        // cannot overwrite it in L2 (see the module docs).
        self.l3.set(key, value.clone(), Some(ttl * L3_TTL_FACTOR)).await?;
        self.rotate_epoch().await?;
        self.l2.set(key, value.clone(), Some(ttl)).await?;
        self.l1.set(key, value, ttl);
        Ok(())
    }

    async fn invalidate(&self, pattern: &str) -> StoreResult<Applied> {
        self.delete_shared(pattern).await?;
        self.l1.invalidate(pattern).await
    }

    fn layer_stats(&self) -> LayerStats {
        *lock(&self.counts)
    }

    fn l1_stats(&self) -> super::Stats {
        self.l1.stats()
    }
}
