//! #14 Bounded L1 cache with pattern invalidation across instances (seed 004,
//! `MultiLayerCache`).
//!
//! The L1 is process memory: at most `capacity` entries (least recently used evicted first),
//! each with a TTL read against the injected clock. Every instance subscribes to an
//! [`InvalidationBus`]; `invalidate(pattern)` drops the matching entries (`*` globs, see
//! [`glob_match`]) from every subscribed instance before it returns, so afterwards no instance
//! serves a matching value cached before the call. Stats are exact under any concurrency:
//! `hits + misses` equals the number of `get`s, and every entry ever inserted is accounted for
//! as still held, evicted, expired or invalidated.

pub mod invariant;
pub mod multi_layer;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::clock::{Clock, Millis, millis};
use crate::store::{StoreResult, glob_match};
use crate::sync::{Mutex, lock};

pub const COMPONENT: &str = "l1-cache";

/// What a cache instance has done since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `get`s that returned a value.
    pub hits: u64,
    /// `get`s that returned nothing (absent or expired).
    pub misses: u64,
    /// Entries created by `set` for a key the cache did not hold.
    pub inserts: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Entries dropped because their TTL had passed.
    pub expirations: u64,
    /// Entries dropped by an invalidation.
    pub invalidations: u64,
}

impl Stats {
    pub fn gets(&self) -> u64 {
        self.hits + self.misses
    }
}

/// What one `invalidate` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Instances that dropped their matching entries before the call returned.
    pub instances: usize,
    /// Entries dropped across those instances.
    pub dropped: u64,
}

/// A cache instance: one process's L1, tied to the others through its bus.
pub trait Cache: Send + Sync {
    fn get(&self, key: &str) -> Option<Vec<u8>>;

    fn set(&self, key: &str, value: Vec<u8>, ttl: Duration);

    /// Drops every entry whose key matches `pattern` from every instance; when it returns, no
    /// instance holds one.
    fn invalidate(&self, pattern: &str) -> impl Future<Output = StoreResult<Applied>> + Send;

    /// Entries held, expired ones not yet dropped included.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn stats(&self) -> Stats;
}

/// The receiving end of the bus: one process's L1.
pub trait Subscriber: Send + Sync {
    /// Drops the local entries matching `pattern`; how many.
    fn apply(&self, pattern: &str) -> u64;
}

/// Carries invalidations to every subscribed instance.
///
/// [`LocalBus`] calls each subscriber in place. A transport between processes (Redis pub/sub)
/// keeps one subscription per process, fans each pattern out to that process's subscribers,
/// and makes `publish` wait for every process's acknowledgement (`PUBLISH` returns how many
/// processes received the message; each acknowledges once applied) so the guarantee holds.
pub trait InvalidationBus: Send + Sync + 'static {
    /// Registers `subscriber` for every pattern published from now on, until it is dropped.
    fn subscribe(&self, subscriber: Weak<dyn Subscriber>);

    /// Applies `pattern` to every live subscriber and returns once all of them have.
    fn publish(&self, pattern: &str) -> impl Future<Output = StoreResult<Applied>> + Send;
}

/// The in-process bus: instances standing for several processes, in one.
#[derive(Clone, Default)]
pub struct LocalBus {
    subscribers: Arc<Mutex<Vec<Weak<dyn Subscriber>>>>,
}

impl std::fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBus").finish_non_exhaustive()
    }
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl InvalidationBus for LocalBus {
    fn subscribe(&self, subscriber: Weak<dyn Subscriber>) {
        lock(&self.subscribers).push(subscriber);
    }

    async fn publish(&self, pattern: &str) -> StoreResult<Applied> {
        // Collected first: applying under the bus lock would order every cache lock after it.
        let live: Vec<Arc<dyn Subscriber>> = {
            let mut subscribers = lock(&self.subscribers);
            subscribers.retain(|s| s.strong_count() > 0);
            subscribers.iter().filter_map(Weak::upgrade).collect()
        };
        let dropped = live.iter().map(|s| s.apply(pattern)).sum();
        Ok(Applied { instances: live.len(), dropped })
    }
}

#[derive(Debug)]
struct Slot {
    value: Vec<u8>,
    expires_at: Millis,
    /// Position in the recency order.
    used: u64,
}

/// Entries plus their recency order, least recently used first.
#[derive(Debug)]
struct Lru {
    capacity: usize,
    entries: HashMap<String, Slot>,
    order: BTreeMap<u64, String>,
    tick: u64,
    /// Invalidations applied so far: a fill decided before one must not land after it.
    generation: u64,
    stats: Stats,
}

impl Lru {
    fn touch(&mut self, key: &str) {
        self.tick += 1;
        let slot = self.entries.get_mut(key).expect("touched key is held");
        self.order.remove(&slot.used);
        slot.used = self.tick;
        self.order.insert(self.tick, key.to_owned());
    }

    fn remove(&mut self, key: &str) -> Option<Slot> {
        let slot = self.entries.remove(key)?;
        self.order.remove(&slot.used);
        Some(slot)
    }

    fn get(&mut self, key: &str, now: Millis) -> Option<Vec<u8>> {
        match self.entries.get(key) {
            Some(slot) if slot.expires_at > now => {
                self.stats.hits += 1;
                self.touch(key);
                Some(self.entries[key].value.clone())
            }
            Some(_) => {
                self.remove(key);
                self.stats.expirations += 1;
                self.stats.misses += 1;
                None
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    fn set(&mut self, key: &str, value: Vec<u8>, expires_at: Millis) {
        if let Some(slot) = self.entries.get_mut(key) {
            (slot.value, slot.expires_at) = (value, expires_at);
            self.touch(key);
            return;
        }
        if self.entries.len() >= self.capacity {
            let (_, oldest) = self.order.pop_first().expect("a full cache holds an entry");
            self.entries.remove(&oldest);
            self.stats.evictions += 1;
        }
        self.entries.insert(key.to_owned(), Slot { value, expires_at, used: 0 });
        self.stats.inserts += 1;
        self.touch(key);
    }

    fn invalidate(&mut self, pattern: &str) -> u64 {
        self.generation += 1;
        let matching: Vec<String> = self.entries.keys().filter(|k| glob_match(pattern, k)).cloned().collect();
        for key in &matching {
            self.remove(key);
        }
        self.stats.invalidations += matching.len() as u64;
        matching.len() as u64
    }
}

/// One instance's local state, what the bus holds on to.
struct Local {
    clock: Arc<dyn Clock>,
    lru: Mutex<Lru>,
}

impl Subscriber for Local {
    fn apply(&self, pattern: &str) -> u64 {
        lock(&self.lru).invalidate(pattern)
    }
}

/// The correct L1 cache instance.
pub struct L1Cache<B> {
    local: Arc<Local>,
    bus: B,
}

impl<B> std::fmt::Debug for L1Cache<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1Cache").field("capacity", &lock(&self.local.lru).capacity).finish_non_exhaustive()
    }
}

impl<B: InvalidationBus> L1Cache<B> {
    /// An instance holding at most `capacity` entries, subscribed to `bus`.
    ///
    /// # Panics
    /// If `capacity` is 0.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>, bus: B) -> Self {
        assert!(capacity > 0, "l1 cache capacity must be at least 1");
        let lru = Lru {
            capacity,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            generation: 0,
            stats: Stats::default(),
        };
        let local = Arc::new(Local { clock, lru: Mutex::new(lru) });
        let subscriber: Arc<dyn Subscriber> = local.clone();
        bus.subscribe(Arc::downgrade(&subscriber));
        Self { local, bus }
    }

    pub fn capacity(&self) -> usize {
        lock(&self.local.lru).capacity
    }

    /// How many invalidations this instance has applied; read before fetching a value from a
    /// slower layer and hand it to [`L1Cache::fill`].
    pub fn generation(&self) -> u64 {
        lock(&self.local.lru).generation
    }

    /// Caches `value` unless an invalidation was applied here since `generation` was read: the
    /// value may have been fetched before that invalidation deleted it from the slower layers,
    /// and filling it now would resurrect it. True if it was cached.
    pub fn fill(&self, key: &str, value: Vec<u8>, ttl: Duration, generation: u64) -> bool {
        let expires_at = self.local.clock.now().saturating_add(millis(ttl));
        let mut lru = lock(&self.local.lru);
        if lru.generation != generation {
            return false;
        }
        lru.set(key, value, expires_at);
        true
    }

    /// Drops the matching entries of this instance only; how many.
    pub fn invalidate_local(&self, pattern: &str) -> u64 {
        self.local.apply(pattern)
    }
}

impl<B: InvalidationBus> Cache for L1Cache<B> {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.local.clock.now();
        lock(&self.local.lru).get(key, now)
    }

    fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let expires_at = self.local.clock.now().saturating_add(millis(ttl));
        lock(&self.local.lru).set(key, value, expires_at);
    }

    async fn invalidate(&self, pattern: &str) -> StoreResult<Applied> {
        self.bus.publish(pattern).await
    }

    fn len(&self) -> usize {
        lock(&self.local.lru).entries.len()
    }

    fn stats(&self) -> Stats {
        lock(&self.local.lru).stats
    }
}
