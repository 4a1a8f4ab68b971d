//! The L1 cache suites, run against any implementation: one instance hammered by many threads,
//! and several instances (standing for several processes) on one bus.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::ManualClock;
use crate::invariant::Judgement;
use crate::sync::block_on;
use crate::testing::burst;

use super::Cache;
use super::invariant::{self, Event, Read, Tally};
use super::multi_layer::Layered;

/// `threads` threads each make `ops_per_thread` gets, sets and invalidations on one instance
/// over four times as many keys as it can hold, thread 0 moving the clock on as they go. The
/// instance holds at most `capacity` entries at every observation, and its stats match what
/// the threads saw, exactly.
pub fn contention<C: Cache + 'static>(
    cache: Arc<C>,
    clock: Arc<ManualClock>,
    capacity: usize,
    threads: usize,
    ops_per_thread: usize,
) -> Judgement {
    let worker = Arc::clone(&cache);
    let outcomes = burst(threads, move |thread| -> Result<Tally, crate::Violation> {
        let mut rng = XorShift::new(thread as u64);
        let mut seen = Tally::default();
        for op in 0..ops_per_thread {
            let group = rng.below(4);
            let key = format!("group{group}:item{}", rng.below(capacity as u64));
            match rng.below(10) {
                0..5 => {
                    seen.gets += 1;
                    seen.hits += u64::from(worker.get(&key).is_some());
                }
                5..9 => {
                    let ttl = Duration::from_millis([3, 30, 300][rng.below(3) as usize]);
                    worker.set(&key, op.to_le_bytes().to_vec(), ttl);
                }
                _ => {
                    block_on(worker.invalidate(&format!("group{group}:*"))).expect("bus call");
                }
            }
            invariant::bounded(capacity, worker.len())?;
            if thread == 0 && op % 8 == 0 {
                clock.advance(Duration::from_millis(1));
            }
        }
        Ok(seen)
    });
    let mut seen = Tally::default();
    for outcome in outcomes {
        seen = seen + outcome?;
    }
    invariant::stats_exact(seen, cache.stats(), cache.len())
}

/// `rounds` rounds over instances on one bus, one thread per instance. Each round every
/// instance caches the same project's keys; one instance invalidates `project:{round}:*` while
/// the others keep reading other keys; once it has returned, every instance reads the project's
/// keys again and none may serve one.
pub fn cross_instance<C: Cache + 'static>(nodes: Vec<Arc<C>>, rounds: usize) -> Judgement {
    let nodes = Arc::new(nodes);
    let count = nodes.len();
    for round in 0..rounds {
        let keys = [format!("project:{round}:stats"), format!("project:{round}:feedback")];
        let fill = (Arc::clone(&nodes), keys.clone());
        burst(count, move |i| {
            let (nodes, keys) = &fill;
            for key in keys {
                nodes[i].set(key, format!("{key}@v1").into_bytes(), Duration::from_secs(300));
            }
            nodes[i].set(&format!("user:{i}:profile"), b"profile".to_vec(), Duration::from_secs(300));
        });

        let pattern = format!("project:{round}:*");
        let (invalidate, by) = ((Arc::clone(&nodes), pattern.clone()), round % count);
        burst(count, move |i| {
            let (nodes, pattern) = &invalidate;
            if i == by {
                block_on(nodes[i].invalidate(pattern)).expect("bus call");
            } else {
                nodes[i].get(&format!("user:{i}:profile"));
            }
        });

        let read = (Arc::clone(&nodes), keys);
        let reads: Vec<Read> = burst(count, move |i| {
            let (nodes, keys) = &read;
            keys.iter()
                .map(|key| Read { instance: i, key: key.clone(), served: nodes[i].get(key) })
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
        invariant::no_stale_reads(&pattern, &reads)?;
    }
    Ok(())
}

/// A small deterministic generator, so each thread's workload is reproducible.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Records a multi-layer history: each call stamped from one counter before and after.
struct Recorder {
    stamp: crate::sync::AtomicU64,
    events: crate::sync::Mutex<Vec<Event>>,
}

impl Recorder {
    fn stamp(&self) -> u64 {
        self.stamp.fetch_add(1, crate::sync::Ordering::SeqCst)
    }

    fn push(&self, event: Event) {
        crate::sync::lock(&self.events).push(event);
    }

    fn set<C: Layered>(&self, node: &C, key: &str, value: Vec<u8>) {
        let start = self.stamp();
        block_on(node.set(key, value.clone(), Duration::from_secs(300))).expect("store call");
        self.push(Event::Set { key: key.to_owned(), value, start, end: self.stamp() });
    }

    fn get<C: Layered>(&self, instance: usize, node: &C, key: &str, seen: &mut Tally) {
        let start = self.stamp();
        let served = block_on(node.get(key)).expect("store call");
        let end = self.stamp();
        seen.gets += 1;
        seen.hits += u64::from(served.is_some());
        self.push(Event::Get { instance, key: key.to_owned(), served, start, end });
    }

    fn invalidate<C: Layered>(&self, node: &C, pattern: &str) {
        let start = self.stamp();
        block_on(node.invalidate(pattern)).expect("store call");
        self.push(Event::Invalidate { pattern: pattern.to_owned(), start, end: self.stamp() });
    }
}

/// `threads` threads each reading every key in `keys` through instance `t % nodes`, their
/// tallies added to `tallies`.
fn read_every_key<C: Layered + 'static>(
    nodes: &Arc<Vec<Arc<C>>>,
    recorder: &Arc<Recorder>,
    keys: &Arc<Vec<String>>,
    threads: usize,
    tallies: &mut [Tally],
) {
    let count = nodes.len();
    let shared = (Arc::clone(nodes), Arc::clone(recorder), Arc::clone(keys));
    let seen: Vec<Tally> = burst(threads, move |t| {
        let (nodes, recorder, keys) = &shared;
        let (node, mut seen) = (&*nodes[t % count], Tally::default());
        for key in keys.iter() {
            recorder.get(t % count, node, key, &mut seen);
        }
        seen
    });
    for (t, s) in seen.into_iter().enumerate() {
        tallies[t % count] = tallies[t % count] + s;
    }
}

/// `threads` threads over `nodes` multi-layer instances sharing their L2 and L3 (thread `t`
/// uses instance `t % nodes`), for `rounds` rounds, the whole history recorded. Each round:
/// every thread sets a key of the round's project; `evict_l2` then drops half of them from L2
/// (as memory pressure would), so the next reads are answered by L1, L2 and L3 alike and promote;
/// every thread reads every project key; one thread invalidates `project:{round}:*` while the
/// others read and write user keys; then every thread reads the project keys again. The
/// history shows no stale read after an invalidation returned, and every instance's layer
/// counters match what its callers saw.
///
/// Promotions and the invalidation of the same keys are kept in separate phases, so the check
/// is deterministic: a promotion from L3 racing an invalidation (fenced by the L2 epoch, see
/// [`super::multi_layer`]) is placed exactly by a hooked-store test and explored by loom.
pub fn shared_layers<C: Layered + 'static>(
    nodes: Vec<Arc<C>>,
    threads: usize,
    rounds: usize,
    evict_l2: impl Fn(&str),
) -> Judgement {
    let count = nodes_len_checked(&nodes, threads);
    let nodes = Arc::new(nodes);
    let recorder = Arc::new(Recorder {
        stamp: crate::sync::AtomicU64::new(0),
        events: crate::sync::Mutex::new(Vec::new()),
    });
    let mut tallies = vec![Tally::default(); count];
    for round in 0..rounds {
        let keys: Arc<Vec<String>> =
            Arc::new((0..threads).map(|t| format!("project:{round}:k{t}")).collect());
        let shared = (Arc::clone(&nodes), Arc::clone(&recorder), Arc::clone(&keys));
        burst(threads, move |t| {
            let (nodes, recorder, keys) = &shared;
            recorder.set(&*nodes[t % count], &keys[t], format!("{}@{round}.{t}", keys[t]).into_bytes());
        });
        for key in keys.iter().step_by(2) {
            evict_l2(key);
        }

        read_every_key(&nodes, &recorder, &keys, threads, &mut tallies);

        let by = round % threads;
        let shared = (Arc::clone(&nodes), Arc::clone(&recorder), format!("project:{round}:*"));
        let seen: Vec<Tally> = burst(threads, move |t| {
            let (nodes, recorder, pattern) = &shared;
            let (node, mut seen) = (&*nodes[t % count], Tally::default());
            if t == by {
                recorder.invalidate(node, pattern);
            } else {
                recorder.get(t % count, node, &format!("user:{}", (t + 1) % threads), &mut seen);
                recorder.set(node, &format!("user:{t}"), format!("user:{t}@{round}").into_bytes());
            }
            seen
        });
        for (t, s) in seen.into_iter().enumerate() {
            tallies[t % count] = tallies[t % count] + s;
        }

        read_every_key(&nodes, &recorder, &keys, threads, &mut tallies);
    }
    invariant::no_stale_after_invalidate(&crate::sync::lock(&recorder.events))?;
    for (node, seen) in nodes.iter().zip(tallies) {
        invariant::layers_exact(seen, node.layer_stats(), node.l1_stats())?;
    }
    Ok(())
}

fn nodes_len_checked<C>(nodes: &[Arc<C>], threads: usize) -> usize {
    assert!(nodes.len() >= 2 && threads >= nodes.len(), "at least 2 instances, at least one thread each");
    nodes.len()
}
