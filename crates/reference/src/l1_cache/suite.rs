//! The L1 cache suites, run against any implementation: one instance hammered by many threads,
//! and several instances (standing for several processes) on one bus.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::ManualClock;
use crate::invariant::Verdict;
use crate::sync::block_on;
use crate::testing::burst;

use super::Cache;
use super::invariant::{self, Read, Tally};

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
) -> Verdict {
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
pub fn cross_instance<C: Cache + 'static>(nodes: Vec<Arc<C>>, rounds: usize) -> Verdict {
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
