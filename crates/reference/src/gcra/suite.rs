//! The contention suite for GCRA limiters, run against any implementation and store.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, ManualClock, Millis};
use crate::invariant::Judgement;
use crate::limit::{Limit, RateLimiter};
use crate::sync::block_on;
use crate::testing::burst;

use super::{NANOS_PER_MILLI, Params, invariant};

/// `rounds` bursts of `threads` concurrent calls on one key, the clock moving on by the next
/// of `steps` (cycled) after each: every burst admits exactly what a sequential GCRA admits
/// from the same state, and the whole history keeps the burst bound.
pub fn contention<L: RateLimiter + 'static>(
    limiter: Arc<L>,
    clock: &ManualClock,
    limit: Limit,
    threads: usize,
    rounds: usize,
    steps: &[Duration],
) -> Judgement {
    let params = Params::new(limit);
    let mut tat = 0;
    let mut admitted: Vec<Millis> = Vec::new();
    for round in 0..rounds {
        let now = clock.now();
        let (expected, next_tat) = at_once(params, tat, now * NANOS_PER_MILLI, threads as u64);
        tat = next_tat;
        let limiter = Arc::clone(&limiter);
        let decisions = burst(threads, move |_| block_on(limiter.check("shared")).expect("store call"));
        invariant::burst_admits_exactly(expected, &decisions)?;
        admitted.extend(decisions.iter().filter(|d| d.allowed).map(|_| now));
        clock.advance(steps[round % steps.len()]);
    }
    invariant::burst_bound(params, &admitted)
}

/// How many of `calls` simultaneous calls at `now` a GCRA at `tat` admits, and its TAT after.
fn at_once(params: Params, tat: u64, now: u64, calls: u64) -> (u64, u64) {
    let start = tat.max(now);
    let room = params.interval.saturating_mul(params.burst).saturating_sub(start - now);
    let admitted = calls.min(room / params.interval.max(1));
    (admitted, start + admitted * params.interval)
}
