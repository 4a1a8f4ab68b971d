//! Limiter throughput: decisions per second of the fixed-window and GCRA limiters on the memory
//! store, on one and two threads, beside `governor`'s keyed GCRA measured in the same run.
//!
//! Every limiter sees the same calls: identifiers spread over 1,000 keys, a limit of a billion
//! a minute so that every decision is an admission (the path that writes). Our limiters run as
//! production wires them: `SystemClock`, and a key string built per call. Each figure is the
//! median of several timed repetitions after a warm-up.

#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reference::clock::SystemClock;
use reference::fixed_window::FixedWindow;
use reference::gcra::Gcra;
use reference::limit::{Limit, RateLimiter};
use reference::store::MemoryStore;
use reference::sync::block_on;

const KEYS: usize = 1_000;
const DECISIONS_PER_THREAD: usize = 200_000;
const REPETITIONS: usize = 7;
const MAX_PER_MINUTE: u32 = 1_000_000_000;
const LIMIT: Limit = Limit::new(MAX_PER_MINUTE as u64, Duration::from_secs(60));

/// One decision for `id`; true if admitted.
type Decide = dyn Fn(&String) -> bool + Send + Sync;

fn ids() -> Arc<Vec<String>> {
    Arc::new((0..KEYS).map(|i| format!("user-{i}")).collect())
}

/// Decisions per second of `decide` on `threads` threads, each making
/// `DECISIONS_PER_THREAD` calls over the keys in a thread-specific order.
fn run(decide: &Arc<Decide>, ids: &Arc<Vec<String>>, threads: usize) -> f64 {
    let started = Instant::now();
    let admitted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (decide, ids) = (Arc::clone(decide), Arc::clone(ids));
                scope.spawn(move || {
                    let mut admitted = 0;
                    for i in 0..DECISIONS_PER_THREAD {
                        // A stride coprime with KEYS visits every key, in a scattered order.
                        let id = &ids[(i * 7_919 + t * 499) % KEYS];
                        admitted += usize::from(decide(black_box(id)));
                    }
                    admitted
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread panicked")).sum()
    });
    let elapsed = started.elapsed();
    let total = threads * DECISIONS_PER_THREAD;
    assert_eq!(admitted, total, "the limit is high enough that every decision is an admission");
    total as f64 / elapsed.as_secs_f64()
}

/// The median decisions per second of each limiter over `REPETITIONS` runs after one warm-up
/// run. The limiters take turns within each repetition, so that load from elsewhere on the
/// machine weighs on all of them alike.
fn measure(limiters: &[Arc<Decide>], threads: usize) -> Vec<f64> {
    let ids = ids();
    for decide in limiters {
        run(decide, &ids, threads);
    }
    let mut rates = vec![Vec::with_capacity(REPETITIONS); limiters.len()];
    for _ in 0..REPETITIONS {
        for (decide, rates) in limiters.iter().zip(&mut rates) {
            rates.push(run(decide, &ids, threads));
        }
    }
    rates
        .into_iter()
        .map(|mut rates| {
            rates.sort_by(f64::total_cmp);
            rates[REPETITIONS / 2]
        })
        .collect()
}

fn ours<L: RateLimiter + 'static>(limiter: L) -> Arc<Decide> {
    Arc::new(move |id: &String| block_on(limiter.check(id)).expect("memory store call").allowed)
}

fn fixed_window() -> Arc<Decide> {
    ours(FixedWindow::new(MemoryStore::new(Arc::new(SystemClock)), "rl", LIMIT))
}

fn gcra() -> Arc<Decide> {
    ours(Gcra::new(MemoryStore::new(Arc::new(SystemClock)), "gcra", LIMIT))
}

fn governor() -> Arc<Decide> {
    let quota = governor::Quota::per_minute(NonZeroU32::new(MAX_PER_MINUTE).expect("nonzero"));
    let limiter = governor::RateLimiter::keyed(quota);
    Arc::new(move |id: &String| limiter.check_key(id).is_ok())
}

fn main() {
    println!(
        "limiter throughput: {KEYS} keys, {DECISIONS_PER_THREAD} decisions per thread, \
         median of {REPETITIONS} after a warm-up"
    );
    println!("{:<28} {:>7} {:>14} {:>14}", "limiter", "threads", "decisions/s", "ours/governor");
    for threads in [1, 2] {
        let names = ["governor (keyed, dashmap)", "fixed-window (memory store)", "gcra (memory store)"];
        let rates = measure(&[governor(), fixed_window(), gcra()], threads);
        for (name, rate) in names.iter().zip(&rates) {
            println!("{name:<28} {threads:>7} {rate:>14.0} {:>14.2}", rate / rates[0]);
        }
    }
}
