//! The contention and scenario suites for sliding-window limiters, run against any
//! implementation and store.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, ManualClock, Millis, millis};
use crate::invariant::Judgement;
use crate::limit::{Limit, RateLimiter};
use crate::sync::block_on;
use crate::testing::burst;

use super::invariant;

/// `rounds` bursts of `threads` concurrent calls on one key, the clock moving on by `step`
/// after each: every burst admits exactly as many calls as there are free slots, and no
/// interval of one window holds more than `max` admissions.
pub fn contention<L: RateLimiter + 'static>(
    limiter: Arc<L>,
    clock: &ManualClock,
    limit: Limit,
    threads: usize,
    rounds: usize,
    step: Duration,
) -> Judgement {
    let window = millis(limit.window);
    let mut admitted: Vec<Millis> = Vec::new();
    for _ in 0..rounds {
        let now = clock.now();
        let live = admitted.iter().rev().take_while(|at| **at + window > now).count() as u64;
        let limiter = Arc::clone(&limiter);
        let decisions = burst(threads, move |_| block_on(limiter.check("shared")).expect("store call"));
        invariant::burst_fills_free_slots(limit.max, live, &decisions)?;
        admitted.extend(decisions.iter().filter(|d| d.allowed).map(|_| now));
        clock.advance(step);
    }
    invariant::at_most_max_in_any_window(limit.max, limit.window, &admitted)
}

/// `max` calls one millisecond before an edge of a window aligned to the epoch and `max` more
/// on the edge, from a fresh key: a sliding limiter admits the first `max` only.
pub fn boundary_burst<L: RateLimiter>(limiter: &L, clock: &ManualClock, limit: Limit) -> Judgement {
    let window = millis(limit.window).max(1);
    let edge = (clock.now() / window + 1) * window;
    let mut history = Vec::new();
    for at in [edge - 1, edge] {
        clock.set(at);
        for _ in 0..limit.max {
            history.push((clock.now(), block_on(limiter.check("boundary")).expect("store call")));
        }
    }
    invariant::sequential_history(limit, &history)
}
