//! The embedded in-memory store: one critical section per primitive, on the `sync` facade so
//! loom explores every interleaving of the components built on it.
//!
//! The key space is split over [`SHARDS`] maps, each behind its own lock, so that callers on
//! different keys do not queue on one lock. A primitive on one key locks that key's shard; one
//! on several keys (`set_guarded`, `bounded_incr`) or on a pattern (`keys`, `del_matching`)
//! locks every shard it touches, in ascending order, and holds them all for its whole critical
//! section: each primitive is still one atomic step, and no two can deadlock. The queues have
//! their own lock.
//!
//! One process, one store: state is shared by every component instance that holds the same
//! `MemoryStore`, and by nothing else. That is what makes the memory backend *wrong* across
//! several stack instances, on purpose.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Bump, BumpOutcome, Delivery, GcraOutcome, QueueDepth, SlotOutcome, Store, StoreError, StoreResult, Ttl,
    glob_match,
};
use crate::clock::{Clock, Millis, millis};
use crate::sync::{Mutex, MutexGuard, lock};

#[derive(Debug, Clone)]
enum Value {
    Bytes(Vec<u8>),
    Int(i64),
    /// Member → lease deadline.
    Slots(HashMap<String, Millis>),
}

#[derive(Debug, Clone)]
struct Entry {
    value: Value,
    expires_at: Option<Millis>,
}

#[derive(Debug, Default)]
struct Queue {
    ready: VecDeque<(u64, Vec<u8>, u32)>,
    /// id → (payload, attempt, visibility deadline)
    in_flight: BTreeMap<u64, (Vec<u8>, u32, Millis)>,
}

/// How many shards the key space is split over: enough that two threads on different keys
/// rarely meet on one lock. Under loom two, so that the models still see a primitive that locks
/// several shards, without multiplying their interleavings.
#[cfg(not(loom))]
const SHARDS: usize = 16;
#[cfg(loom)]
const SHARDS: usize = 2;

/// A key's shard, by a fixed hash: the shard a key lands in must not vary from run to run
/// (loom replays each interleaving), and keys come from the components, not from an attacker.
#[inline(always)]
fn shard_of(key: &str) -> usize {
    const SHARD_HASH: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5ca1_ab1e);
    // The high bits: the map inside the shard indexes its buckets by the low bits of its own hash.
    (SHARD_HASH.hash_one(key) >> 32) as usize % SHARDS
}

/// The map size below which a shard's expired entries are never swept all at once: per shard,
/// so that a working set of keys that comes and goes (a GCRA key under a high limit idles out
/// every millisecond) is reused in place, not swept and allocated again.
const SWEEP_MIN: usize = 1_024;

/// One shard of the key space.
#[derive(Debug)]
struct Shard {
    /// foldhash, not SipHash: keys come from the components, not from an attacker, and
    /// SipHash cost a fixed-window decision ~18 % of its time (`benches/limiters.rs`).
    entries: HashMap<String, Entry, foldhash::fast::RandomState>,
    /// Expired entries stay in `entries`, invisible, until overwritten or swept; they are all
    /// swept when the map grows past this, which then becomes twice the live size (Redis's
    /// lazy plus active expiry: one hash lookup per access, memory bounded, cost amortised).
    sweep_above: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Self { entries: HashMap::default(), sweep_above: SWEEP_MIN }
    }
}

/// A shard's lock on a cache line of its own, so that threads busy on different shards do not
/// pull one line back and forth.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

#[derive(Debug, Default)]
struct Queues {
    queues: HashMap<String, Queue>,
    next_task_id: u64,
}

fn is_live(entry: &Entry, now: Millis) -> bool {
    entry.expires_at.is_none_or(|at| at > now)
}

impl Shard {
    /// The entry at `key` unless it has expired.
    #[inline(always)]
    fn live(&mut self, key: &str, now: Millis) -> Option<&mut Entry> {
        self.entries.get_mut(key).filter(|entry| is_live(entry, now))
    }

    /// Writes `entry` at `key`. An expired entry still in the map is overwritten in place, its
    /// key kept: no allocation for a key that comes back after its TTL (a GCRA key idles out
    /// within a millisecond under a high limit).
    fn put(&mut self, key: &str, entry: Entry) {
        match self.entries.get_mut(key) {
            Some(slot) => *slot = entry,
            None => {
                self.entries.insert(key.to_owned(), entry);
            }
        }
    }

    #[inline(always)]
    fn sweep_if_due(&mut self, now: Millis) {
        if self.entries.len() > self.sweep_above {
            self.purge_expired(now);
            self.sweep_above = (2 * self.entries.len()).max(SWEEP_MIN);
        }
    }

    fn int(&mut self, key: &str, now: Millis) -> StoreResult<Option<i64>> {
        match self.live(key, now) {
            None => Ok(None),
            Some(entry) => as_int(key, &entry.value).map(Some),
        }
    }

    fn purge_expired(&mut self, now: Millis) {
        self.entries.retain(|_, entry| is_live(entry, now));
    }
}

/// The shards one multi-key primitive holds, locked in ascending order.
struct Locked<'a> {
    guards: [Option<MutexGuard<'a, Shard>>; SHARDS],
}

impl Locked<'_> {
    /// The shard of `key`, which must be among those locked.
    fn shard(&mut self, key: &str) -> &mut Shard {
        self.guards[shard_of(key)]
            .as_deref_mut()
            .expect("the shard of every key the primitive names is locked")
    }

    fn all(&mut self) -> impl Iterator<Item = &mut Shard> {
        self.guards.iter_mut().filter_map(Option::as_deref_mut)
    }
}

/// Adds `delta` to the integer `value` (an integer's decimal text reads as one); the sum.
fn add_int(key: &str, value: &mut Value, delta: i64) -> StoreResult<i64> {
    if let Value::Int(n) = value {
        *n += delta;
        return Ok(*n);
    }
    let sum = as_int(key, value)? + delta;
    *value = Value::Int(sum);
    Ok(sum)
}

fn as_int(key: &str, value: &Value) -> StoreResult<i64> {
    let wrong = || StoreError::WrongKind { key: key.to_owned(), expected: "an integer" };
    match value {
        Value::Int(n) => Ok(*n),
        Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(wrong),
        Value::Slots(_) => Err(wrong()),
    }
}

const NANOS_PER_MILLI: u64 = 1_000_000;

fn deadline(now: Millis, ttl: Duration) -> Millis {
    now.saturating_add(millis(ttl))
}

/// The in-memory [`Store`]. Cloning shares the store.
#[derive(Clone)]
pub struct MemoryStore {
    shards: Arc<[Padded]>,
    queues: Arc<Mutex<Queues>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let shards = (0..SHARDS).map(|_| Padded(Mutex::new(Shard::default()))).collect();
        Self { shards, queues: Arc::new(Mutex::new(Queues::default())), clock }
    }

    /// Runs one primitive on `key` as one critical section, on the key's shard.
    #[inline(always)]
    fn with<T>(&self, key: &str, op: impl FnOnce(&mut Shard, Millis) -> T) -> T {
        let now = self.clock.now();
        let mut shard = lock(&self.shards[shard_of(key)].0);
        let out = op(&mut shard, now);
        shard.sweep_if_due(now);
        out
    }

    /// Runs one primitive on several keys (`None`: on every key) as one critical section,
    /// holding each shard it touches.
    fn with_keys<T>(&self, keys: Option<&[&str]>, op: impl FnOnce(&mut Locked<'_>, Millis) -> T) -> T {
        let now = self.clock.now();
        let mut wanted = [keys.is_none(); SHARDS];
        for key in keys.unwrap_or_default() {
            wanted[shard_of(key)] = true;
        }
        let mut locked = Locked { guards: std::array::from_fn(|_| None) };
        for (i, guard) in locked.guards.iter_mut().enumerate() {
            if wanted[i] {
                *guard = Some(lock(&self.shards[i].0));
            }
        }
        let out = op(&mut locked, now);
        for shard in locked.all() {
            shard.sweep_if_due(now);
        }
        out
    }

    /// Runs one queue primitive as one critical section.
    fn with_queues<T>(&self, op: impl FnOnce(&mut Queues, Millis) -> T) -> T {
        let now = self.clock.now();
        op(&mut lock(&self.queues), now)
    }

    /// How many entries the store holds, expired ones not yet swept included.
    #[cfg(all(test, not(loom)))]
    fn held(&self) -> usize {
        self.shards.iter().map(|shard| lock(&shard.0).entries.len()).sum()
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.with(key, |inner, now| match inner.live(key, now) {
            None => Ok(None),
            Some(entry) => match &entry.value {
                Value::Bytes(b) => Ok(Some(b.clone())),
                Value::Int(n) => Ok(Some(n.to_string().into_bytes())),
                Value::Slots(_) => Err(StoreError::WrongKind { key: key.to_owned(), expected: "a string" }),
            },
        })
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> StoreResult<()> {
        self.with(key, |inner, now| {
            let expires_at = ttl.map(|ttl| deadline(now, ttl));
            inner.put(key, Entry { value: Value::Bytes(value), expires_at });
            Ok(())
        })
    }

    async fn set_nx(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<bool> {
        self.with(key, |inner, now| {
            if inner.live(key, now).is_some() {
                return Ok(false);
            }
            let entry = Entry { value: Value::Bytes(value), expires_at: Some(deadline(now, ttl)) };
            inner.put(key, entry);
            Ok(true)
        })
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        self.with(key, |inner, now| {
            let expires_at = ttl.map(|ttl| deadline(now, ttl));
            match (inner.live(key, now), expected) {
                (Some(Entry { value: Value::Slots(_), .. }), _) => {
                    Err(StoreError::WrongKind { key: key.to_owned(), expected: "a string" })
                }
                (Some(entry), Some(expected)) => {
                    let matches = match &entry.value {
                        Value::Bytes(b) => b.as_slice() == expected,
                        Value::Int(n) => n.to_string().as_bytes() == expected,
                        Value::Slots(_) => false,
                    };
                    if matches {
                        *entry = Entry { value: Value::Bytes(new), expires_at };
                    }
                    Ok(matches)
                }
                (None, None) => {
                    inner.put(key, Entry { value: Value::Bytes(new), expires_at });
                    Ok(true)
                }
                (Some(_), None) | (None, Some(_)) => Ok(false),
            }
        })
    }

    async fn set_guarded(
        &self,
        guard_key: &str,
        expected_guard: &[u8],
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        self.with_keys(Some(&[guard_key, key]), |locked, now| {
            let matches = match locked.shard(guard_key).live(guard_key, now) {
                None => false,
                Some(entry) => match &entry.value {
                    Value::Bytes(b) => b.as_slice() == expected_guard,
                    Value::Int(n) => n.to_string().as_bytes() == expected_guard,
                    Value::Slots(_) => {
                        return Err(StoreError::WrongKind {
                            key: guard_key.to_owned(),
                            expected: "a string",
                        });
                    }
                },
            };
            if matches {
                let expires_at = ttl.map(|ttl| deadline(now, ttl));
                locked.shard(key).put(key, Entry { value: Value::Bytes(value), expires_at });
            }
            Ok(matches)
        })
    }

    async fn del(&self, key: &str) -> StoreResult<bool> {
        self.with(key, |inner, now| Ok(inner.entries.remove(key).is_some_and(|entry| is_live(&entry, now))))
    }

    async fn del_matching(&self, pattern: &str) -> StoreResult<u64> {
        self.with_keys(None, |locked, now| {
            let mut deleted = 0;
            for shard in locked.all() {
                shard.purge_expired(now);
                let before = shard.entries.len();
                shard.entries.retain(|key, _| !glob_match(pattern, key));
                deleted += (before - shard.entries.len()) as u64;
            }
            Ok(deleted)
        })
    }

    async fn keys(&self, pattern: &str) -> StoreResult<Vec<String>> {
        self.with_keys(None, |locked, now| {
            let mut keys = Vec::new();
            for shard in locked.all() {
                shard.purge_expired(now);
                keys.extend(shard.entries.keys().filter(|k| glob_match(pattern, k)).cloned());
            }
            Ok(keys)
        })
    }

    async fn pttl(&self, key: &str) -> StoreResult<Ttl> {
        self.with(key, |inner, now| {
            Ok(match inner.live(key, now) {
                None => Ttl::Missing,
                Some(Entry { expires_at: None, .. }) => Ttl::Persistent,
                Some(Entry { expires_at: Some(at), .. }) => Ttl::Remaining(Duration::from_millis(*at - now)),
            })
        })
    }

    async fn pexpire(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        self.with(key, |inner, now| match inner.live(key, now) {
            None => Ok(false),
            Some(entry) => {
                entry.expires_at = Some(deadline(now, ttl));
                Ok(true)
            }
        })
    }

    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.with(key, |inner, now| {
            let current = inner.int(key, now)?;
            let next = current.unwrap_or(0) + delta;
            match inner.entries.get_mut(key) {
                Some(entry) if current.is_some() => entry.value = Value::Int(next),
                _ => {
                    let entry = Entry { value: Value::Int(next), expires_at: None };
                    inner.put(key, entry);
                }
            }
            Ok(next)
        })
    }

    async fn incr_window(&self, key: &str, delta: i64, window: Duration) -> StoreResult<(i64, Duration)> {
        self.with(key, |inner, now| {
            if let Some(entry) = inner.live(key, now) {
                let count = add_int(key, &mut entry.value, delta)?;
                // A key that somehow lost its TTL gets one back rather than living forever.
                let at = *entry.expires_at.get_or_insert(deadline(now, window));
                return Ok((count, Duration::from_millis(at - now)));
            }
            let at = deadline(now, window);
            inner.put(key, Entry { value: Value::Int(delta), expires_at: Some(at) });
            Ok((delta, Duration::from_millis(at - now)))
        })
    }

    async fn bounded_incr(&self, bumps: &[Bump<'_>]) -> StoreResult<BumpOutcome> {
        let keys: Vec<&str> = bumps.iter().map(|bump| bump.key).collect();
        self.with_keys(Some(&keys), |locked, now| {
            let mut currents = Vec::with_capacity(bumps.len());
            for (index, bump) in bumps.iter().enumerate() {
                let current = locked.shard(bump.key).int(bump.key, now)?.unwrap_or(0);
                if current + bump.delta > bump.limit {
                    return Ok(BumpOutcome::Refused { index, current });
                }
                currents.push(current);
            }
            let mut values = Vec::with_capacity(bumps.len());
            for bump in bumps {
                let shard = locked.shard(bump.key);
                let value = match shard.live(bump.key, now) {
                    Some(entry) => {
                        let next = as_int(bump.key, &entry.value)? + bump.delta;
                        entry.value = Value::Int(next);
                        next
                    }
                    None => {
                        let expires_at = Some(deadline(now, bump.ttl));
                        let entry = Entry { value: Value::Int(bump.delta), expires_at };
                        shard.put(bump.key, entry);
                        bump.delta
                    }
                };
                values.push(value);
            }
            Ok(BumpOutcome::Applied(values))
        })
    }

    async fn gcra(&self, key: &str, interval_ns: u64, burst: u64) -> StoreResult<GcraOutcome> {
        self.with(key, |inner, now| {
            let now_ns = now.saturating_mul(NANOS_PER_MILLI);
            let params = crate::gcra::Params { interval: interval_ns, burst };
            // The TAT as an entry: an integer that expires when the TAT passes.
            let stored = |tat: u64| {
                let ttl_ms = (tat - now_ns).div_ceil(NANOS_PER_MILLI);
                (Value::Int(i64::try_from(tat).unwrap_or(i64::MAX)), Some(now.saturating_add(ttl_ms)))
            };
            if let Some(entry) = inner.live(key, now) {
                let tat = u64::try_from(as_int(key, &entry.value)?).unwrap_or(0);
                return Ok(match params.step(Some(tat), now_ns) {
                    crate::gcra::Step::Admitted { tat, .. } => {
                        (entry.value, entry.expires_at) = stored(tat);
                        GcraOutcome { admitted: true, tat, now: now_ns }
                    }
                    crate::gcra::Step::Refused(_) => GcraOutcome { admitted: false, tat, now: now_ns },
                });
            }
            // An idle key: the step always admits (a burst of at least one).
            let tat = match params.step(None, now_ns) {
                crate::gcra::Step::Admitted { tat, .. } => tat,
                crate::gcra::Step::Refused(_) => {
                    return Ok(GcraOutcome { admitted: false, tat: now_ns, now: now_ns });
                }
            };
            let (value, expires_at) = stored(tat);
            inner.put(key, Entry { value, expires_at });
            Ok(GcraOutcome { admitted: true, tat, now: now_ns })
        })
    }

    async fn slot_acquire(
        &self,
        key: &str,
        member: &str,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<SlotOutcome> {
        self.with(key, |inner, now| {
            let until = deadline(now, lease);
            let entry = match inner.live(key, now) {
                Some(entry) => entry,
                None => {
                    let entry = Entry { value: Value::Slots(HashMap::new()), expires_at: None };
                    inner.entries.entry(key.to_owned()).insert_entry(entry).into_mut()
                }
            };
            let Value::Slots(members) = &mut entry.value else {
                return Err(StoreError::WrongKind { key: key.to_owned(), expected: "a slot set" });
            };
            members.retain(|_, lease_end| *lease_end > now);
            let outcome = if let Some(lease_end) = members.get_mut(member) {
                *lease_end = until;
                SlotOutcome::Renewed { held: members.len() }
            } else if members.len() < limit {
                members.insert(member.to_owned(), until);
                SlotOutcome::Acquired { held: members.len() }
            } else {
                SlotOutcome::Full { held: members.len() }
            };
            // The set lives as long as its longest lease, like a Redis ZSET given PEXPIRE.
            entry.expires_at = members.values().copied().max();
            Ok(outcome)
        })
    }

    async fn slot_release(&self, key: &str, member: &str) -> StoreResult<bool> {
        self.with(key, |inner, now| match inner.live(key, now) {
            None => Ok(false),
            Some(Entry { value: Value::Slots(members), .. }) => {
                Ok(members.remove(member).is_some_and(|lease_end| lease_end > now))
            }
            Some(_) => Err(StoreError::WrongKind { key: key.to_owned(), expected: "a slot set" }),
        })
    }

    async fn slot_count(&self, key: &str) -> StoreResult<usize> {
        self.with(key, |inner, now| match inner.live(key, now) {
            None => Ok(0),
            Some(Entry { value: Value::Slots(members), .. }) => {
                Ok(members.values().filter(|lease_end| **lease_end > now).count())
            }
            Some(_) => Err(StoreError::WrongKind { key: key.to_owned(), expected: "a slot set" }),
        })
    }

    async fn slot_next_expiry(&self, key: &str) -> StoreResult<Option<Duration>> {
        self.with(key, |inner, now| match inner.live(key, now) {
            None => Ok(None),
            Some(Entry { value: Value::Slots(members), .. }) => Ok(members
                .values()
                .filter(|lease_end| **lease_end > now)
                .min()
                .map(|lease_end| Duration::from_millis(lease_end - now))),
            Some(_) => Err(StoreError::WrongKind { key: key.to_owned(), expected: "a slot set" }),
        })
    }

    async fn enqueue(&self, queue: &str, payload: Vec<u8>) -> StoreResult<u64> {
        self.with_queues(|inner, _| {
            inner.next_task_id += 1;
            let id = inner.next_task_id;
            inner.queues.entry(queue.to_owned()).or_default().ready.push_back((id, payload, 0));
            Ok(id)
        })
    }

    async fn reserve(&self, queue: &str, visibility: Duration) -> StoreResult<Option<Delivery>> {
        self.with_queues(|inner, now| {
            let Some(q) = inner.queues.get_mut(queue) else { return Ok(None) };
            let Some((id, payload, attempt)) = q.ready.pop_front() else { return Ok(None) };
            let attempt = attempt + 1;
            q.in_flight.insert(id, (payload.clone(), attempt, deadline(now, visibility)));
            Ok(Some(Delivery { id, payload, attempt }))
        })
    }

    async fn ack(&self, queue: &str, id: u64) -> StoreResult<bool> {
        self.with_queues(|inner, _| {
            Ok(inner.queues.get_mut(queue).is_some_and(|q| q.in_flight.remove(&id).is_some()))
        })
    }

    async fn requeue_expired(&self, queue: &str) -> StoreResult<usize> {
        self.with_queues(|inner, now| {
            let Some(q) = inner.queues.get_mut(queue) else { return Ok(0) };
            let expired: Vec<u64> =
                q.in_flight.iter().filter(|(_, (_, _, until))| *until <= now).map(|(id, _)| *id).collect();
            // Oldest first at the head of the queue: redelivery keeps the original order.
            for id in expired.iter().rev() {
                let (payload, attempt, _) = q.in_flight.remove(id).expect("listed above");
                q.ready.push_front((*id, payload, attempt));
            }
            Ok(expired.len())
        })
    }

    async fn queue_depth(&self, queue: &str) -> StoreResult<QueueDepth> {
        self.with_queues(|inner, _| {
            Ok(inner.queues.get(queue).map_or_else(QueueDepth::default, |q| QueueDepth {
                ready: q.ready.len(),
                in_flight: q.in_flight.len(),
            }))
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{MemoryStore, SHARDS, SWEEP_MIN};
    use crate::clock::ManualClock;
    use crate::store::{Store, Ttl};
    use crate::sync::block_on;

    fn rig() -> (Arc<ManualClock>, MemoryStore) {
        let clock = Arc::new(ManualClock::new(1_000));
        (clock.clone(), MemoryStore::new(clock))
    }

    #[test]
    fn expired_entries_are_invisible_before_they_are_swept() {
        let (clock, store) = rig();
        block_on(store.set("k", b"v".to_vec(), Some(Duration::from_millis(10)))).unwrap();
        clock.advance(Duration::from_millis(10));
        assert_eq!(block_on(store.get("k")).unwrap(), None);
        assert_eq!(block_on(store.pttl("k")).unwrap(), Ttl::Missing);
        assert!(!block_on(store.pexpire("k", Duration::from_secs(1))).unwrap());
        assert!(!block_on(store.compare_and_set("k", Some(b"v"), b"w".to_vec(), None)).unwrap());
        assert_eq!(block_on(store.incr_window("k", 1, Duration::from_secs(1))).unwrap().0, 1);
        clock.advance(Duration::from_secs(1));
        assert!(!block_on(store.del("k")).unwrap());
        assert!(block_on(store.compare_and_set("k", None, b"x".to_vec(), None)).unwrap());
        assert_eq!(block_on(store.get("k")).unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn slot_next_expiry_is_the_earliest_live_lease() {
        let (clock, store) = rig();
        assert_eq!(block_on(store.slot_next_expiry("s")).unwrap(), None);
        block_on(store.slot_acquire("s", "a", Duration::from_millis(100), 5)).unwrap();
        clock.advance(Duration::from_millis(30));
        block_on(store.slot_acquire("s", "b", Duration::from_millis(100), 5)).unwrap();
        assert_eq!(block_on(store.slot_next_expiry("s")).unwrap(), Some(Duration::from_millis(70)));
        clock.advance(Duration::from_millis(70));
        assert_eq!(block_on(store.slot_next_expiry("s")).unwrap(), Some(Duration::from_millis(30)));
        clock.advance(Duration::from_millis(30));
        assert_eq!(block_on(store.slot_next_expiry("s")).unwrap(), None);
    }

    #[test]
    fn expired_entries_are_swept_as_the_map_grows() {
        let (clock, store) = rig();
        // As many keys a round as the shards' sweep thresholds add up to.
        let live = SWEEP_MIN * SHARDS;
        for round in 0..20 {
            for i in 0..live {
                let key = format!("k{round}-{i}");
                block_on(store.incr_window(&key, 1, Duration::from_millis(5))).unwrap();
            }
            clock.advance(Duration::from_millis(5));
        }
        let held = store.held();
        assert!(held <= 2 * live, "{held} entries held, at most {live} of them live");
        assert!(block_on(store.keys("*")).unwrap().is_empty());
    }
}
