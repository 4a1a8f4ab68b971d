//! The embedded in-memory store: one critical section per primitive, on the `sync` facade so
//! loom explores every interleaving of the components built on it.
//!
//! One process, one store: state is shared by every component instance that holds the same
//! `MemoryStore`, and by nothing else. That is what makes the memory backend *wrong* across
//! several stack instances, on purpose.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::{
    Bump, BumpOutcome, Delivery, GcraOutcome, QueueDepth, SlotOutcome, Store, StoreError, StoreResult, Ttl,
    glob_match,
};
use crate::clock::{Clock, Millis, millis};
use crate::sync::{Mutex, lock};

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

/// The map size below which expired entries are never swept all at once.
const SWEEP_MIN: usize = 1_024;

#[derive(Debug)]
struct Inner {
    /// foldhash, not SipHash: keys come from the components, not from an attacker, and
    /// SipHash cost a fixed-window decision ~18 % of its time (`benches/limiters.rs`).
    entries: HashMap<String, Entry, foldhash::fast::RandomState>,
    queues: HashMap<String, Queue>,
    next_task_id: u64,
    /// Expired entries stay in `entries`, invisible, until overwritten or swept; they are all
    /// swept when the map grows past this, which then becomes twice the live size (Redis's
    /// lazy plus active expiry: one hash lookup per access, memory bounded, cost amortised).
    sweep_above: usize,
}

impl Default for Inner {
    fn default() -> Self {
        Self { entries: HashMap::default(), queues: HashMap::new(), next_task_id: 0, sweep_above: SWEEP_MIN }
    }
}

fn is_live(entry: &Entry, now: Millis) -> bool {
    entry.expires_at.is_none_or(|at| at > now)
}

impl Inner {
    /// The entry at `key` unless it has expired.
    fn live(&mut self, key: &str, now: Millis) -> Option<&mut Entry> {
        self.entries.get_mut(key).filter(|entry| is_live(entry, now))
    }

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
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { inner: Arc::new(Mutex::new(Inner::default())), clock }
    }

    /// Runs one primitive as one critical section.
    fn with<T>(&self, op: impl FnOnce(&mut Inner, Millis) -> T) -> T {
        let now = self.clock.now();
        let mut inner = lock(&self.inner);
        let out = op(&mut inner, now);
        inner.sweep_if_due(now);
        out
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.with(|inner, now| match inner.live(key, now) {
            None => Ok(None),
            Some(entry) => match &entry.value {
                Value::Bytes(b) => Ok(Some(b.clone())),
                Value::Int(n) => Ok(Some(n.to_string().into_bytes())),
                Value::Slots(_) => Err(StoreError::WrongKind { key: key.to_owned(), expected: "a string" }),
            },
        })
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> StoreResult<()> {
        self.with(|inner, now| {
            let expires_at = ttl.map(|ttl| deadline(now, ttl));
            inner.entries.insert(key.to_owned(), Entry { value: Value::Bytes(value), expires_at });
            Ok(())
        })
    }

    async fn set_nx(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<bool> {
        self.with(|inner, now| {
            if inner.live(key, now).is_some() {
                return Ok(false);
            }
            let entry = Entry { value: Value::Bytes(value), expires_at: Some(deadline(now, ttl)) };
            inner.entries.insert(key.to_owned(), entry);
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
        self.with(|inner, now| {
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
                    inner.entries.insert(key.to_owned(), Entry { value: Value::Bytes(new), expires_at });
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
        self.with(|inner, now| {
            let matches = match inner.live(guard_key, now) {
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
                inner.entries.insert(key.to_owned(), Entry { value: Value::Bytes(value), expires_at });
            }
            Ok(matches)
        })
    }

    async fn del(&self, key: &str) -> StoreResult<bool> {
        self.with(|inner, now| Ok(inner.entries.remove(key).is_some_and(|entry| is_live(&entry, now))))
    }

    async fn del_matching(&self, pattern: &str) -> StoreResult<u64> {
        self.with(|inner, now| {
            inner.purge_expired(now);
            let before = inner.entries.len();
            inner.entries.retain(|key, _| !glob_match(pattern, key));
            Ok((before - inner.entries.len()) as u64)
        })
    }

    async fn keys(&self, pattern: &str) -> StoreResult<Vec<String>> {
        self.with(|inner, now| {
            inner.purge_expired(now);
            Ok(inner.entries.keys().filter(|k| glob_match(pattern, k)).cloned().collect())
        })
    }

    async fn pttl(&self, key: &str) -> StoreResult<Ttl> {
        self.with(|inner, now| {
            Ok(match inner.live(key, now) {
                None => Ttl::Missing,
                Some(Entry { expires_at: None, .. }) => Ttl::Persistent,
                Some(Entry { expires_at: Some(at), .. }) => Ttl::Remaining(Duration::from_millis(*at - now)),
            })
        })
    }

    async fn pexpire(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        self.with(|inner, now| match inner.live(key, now) {
            None => Ok(false),
            Some(entry) => {
                entry.expires_at = Some(deadline(now, ttl));
                Ok(true)
            }
        })
    }

    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.with(|inner, now| {
            let current = inner.int(key, now)?;
            let next = current.unwrap_or(0) + delta;
            match inner.entries.get_mut(key) {
                Some(entry) if current.is_some() => entry.value = Value::Int(next),
                _ => {
                    let entry = Entry { value: Value::Int(next), expires_at: None };
                    inner.entries.insert(key.to_owned(), entry);
                }
            }
            Ok(next)
        })
    }

    async fn incr_window(&self, key: &str, delta: i64, window: Duration) -> StoreResult<(i64, Duration)> {
        self.with(|inner, now| {
            if let Some(entry) = inner.live(key, now) {
                let count = as_int(key, &entry.value)? + delta;
                entry.value = Value::Int(count);
                // A key that somehow lost its TTL gets one back rather than living forever.
                let at = *entry.expires_at.get_or_insert(deadline(now, window));
                return Ok((count, Duration::from_millis(at - now)));
            }
            let at = deadline(now, window);
            inner.entries.insert(key.to_owned(), Entry { value: Value::Int(delta), expires_at: Some(at) });
            Ok((delta, Duration::from_millis(at - now)))
        })
    }

    async fn bounded_incr(&self, bumps: &[Bump<'_>]) -> StoreResult<BumpOutcome> {
        self.with(|inner, now| {
            let mut currents = Vec::with_capacity(bumps.len());
            for (index, bump) in bumps.iter().enumerate() {
                let current = inner.int(bump.key, now)?.unwrap_or(0);
                if current + bump.delta > bump.limit {
                    return Ok(BumpOutcome::Refused { index, current });
                }
                currents.push(current);
            }
            let mut values = Vec::with_capacity(bumps.len());
            for bump in bumps {
                let value = match inner.live(bump.key, now) {
                    Some(entry) => {
                        let next = as_int(bump.key, &entry.value)? + bump.delta;
                        entry.value = Value::Int(next);
                        next
                    }
                    None => {
                        let expires_at = Some(deadline(now, bump.ttl));
                        let entry = Entry { value: Value::Int(bump.delta), expires_at };
                        inner.entries.insert(bump.key.to_owned(), entry);
                        bump.delta
                    }
                };
                values.push(value);
            }
            Ok(BumpOutcome::Applied(values))
        })
    }

    async fn gcra(&self, key: &str, interval_ns: u64, burst: u64) -> StoreResult<GcraOutcome> {
        self.with(|inner, now| {
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
            inner.entries.insert(key.to_owned(), Entry { value, expires_at });
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
        self.with(|inner, now| {
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
        self.with(|inner, now| match inner.live(key, now) {
            None => Ok(false),
            Some(Entry { value: Value::Slots(members), .. }) => {
                Ok(members.remove(member).is_some_and(|lease_end| lease_end > now))
            }
            Some(_) => Err(StoreError::WrongKind { key: key.to_owned(), expected: "a slot set" }),
        })
    }

    async fn slot_count(&self, key: &str) -> StoreResult<usize> {
        self.with(|inner, now| match inner.live(key, now) {
            None => Ok(0),
            Some(Entry { value: Value::Slots(members), .. }) => {
                Ok(members.values().filter(|lease_end| **lease_end > now).count())
            }
            Some(_) => Err(StoreError::WrongKind { key: key.to_owned(), expected: "a slot set" }),
        })
    }

    async fn slot_next_expiry(&self, key: &str) -> StoreResult<Option<Duration>> {
        self.with(|inner, now| match inner.live(key, now) {
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
        self.with(|inner, _| {
            inner.next_task_id += 1;
            let id = inner.next_task_id;
            inner.queues.entry(queue.to_owned()).or_default().ready.push_back((id, payload, 0));
            Ok(id)
        })
    }

    async fn reserve(&self, queue: &str, visibility: Duration) -> StoreResult<Option<Delivery>> {
        self.with(|inner, now| {
            let Some(q) = inner.queues.get_mut(queue) else { return Ok(None) };
            let Some((id, payload, attempt)) = q.ready.pop_front() else { return Ok(None) };
            let attempt = attempt + 1;
            q.in_flight.insert(id, (payload.clone(), attempt, deadline(now, visibility)));
            Ok(Some(Delivery { id, payload, attempt }))
        })
    }

    async fn ack(&self, queue: &str, id: u64) -> StoreResult<bool> {
        self.with(|inner, _| {
            Ok(inner.queues.get_mut(queue).is_some_and(|q| q.in_flight.remove(&id).is_some()))
        })
    }

    async fn requeue_expired(&self, queue: &str) -> StoreResult<usize> {
        self.with(|inner, now| {
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
        self.with(|inner, _| {
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

    use super::{MemoryStore, SWEEP_MIN};
    use crate::clock::ManualClock;
    use crate::store::{Store, Ttl};
    use crate::sync::{block_on, lock};

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
        for round in 0..20 {
            for i in 0..SWEEP_MIN {
                let key = format!("k{round}-{i}");
                block_on(store.incr_window(&key, 1, Duration::from_millis(5))).unwrap();
            }
            clock.advance(Duration::from_millis(5));
        }
        let held = lock(&store.inner).entries.len();
        assert!(held <= 2 * SWEEP_MIN, "{held} entries held, at most {SWEEP_MIN} of them live");
        assert!(block_on(store.keys("*")).unwrap().is_empty());
    }
}
