//! The contention suite for usage trackers, run against any implementation and store.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, ManualClock, Millis};
use crate::invariant::Judgement;
use crate::store::Store;
use crate::sync::block_on;
use crate::testing::burst;

use super::{Admission, DAY_MS, HOUR_MS, Usage, UsageLimits, UsageTracking, invariant};

/// The shape of a contention run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub threads: usize,
    pub calls_per_thread: usize,
    pub rounds: usize,
    /// How far the clock moves after each round.
    pub step: Duration,
}

/// `rounds` bursts of `threads` threads making `calls_per_thread` requests each (finishing
/// every granted one, every third as a failure), the clock moving on by `step` after each: a
/// burst grants exactly what the day's and the hour's remaining quota allow, the counters read
/// back equal what was granted and finished, every key under `{prefix}:` carries a TTL, and
/// no period ever holds more than its limit.
pub fn contention<T: UsageTracking + 'static, S: Store>(
    tracker: Arc<T>,
    store: &S,
    clock: &ManualClock,
    limits: UsageLimits,
    prefix: &str,
    load: Load,
) -> Judgement {
    // (granted at, the day it was counted in, finished successfully)
    let mut granted: Vec<(Millis, u64, bool)> = Vec::new();
    for _ in 0..load.rounds {
        let now = clock.now();
        let in_day = granted.iter().filter(|(at, ..)| at / DAY_MS == now / DAY_MS).count() as u64;
        let in_hour = granted.iter().filter(|(at, ..)| at / HOUR_MS == now / HOUR_MS).count() as u64;
        let calls = (load.threads * load.calls_per_thread) as u64;
        let expected =
            calls.min(limits.per_day.saturating_sub(in_day)).min(limits.per_hour.saturating_sub(in_hour));

        let worker = Arc::clone(&tracker);
        let per_thread = load.calls_per_thread;
        let results = burst(load.threads, move |thread| {
            (0..per_thread)
                .map(|call| {
                    let admission = block_on(worker.acquire()).expect("store call");
                    let success = (thread + call) % 3 != 0;
                    if let Admission::Granted(grant) = &admission {
                        block_on(worker.finish(grant, success)).expect("store call");
                    }
                    (admission, success)
                })
                .collect::<Vec<_>>()
        });
        let results: Vec<_> = results.into_iter().flatten().collect();
        let admissions: Vec<Admission> = results.iter().map(|(a, _)| *a).collect();
        invariant::burst_grants_exactly(expected, &admissions)?;
        for (admission, success) in &results {
            if let Admission::Granted(grant) = admission {
                granted.push((now, grant.day, *success));
            }
        }

        let today = now / DAY_MS;
        let day = granted.iter().filter(|(_, d, _)| *d == today).count() as u64;
        let succeeded = granted.iter().filter(|(_, d, ok)| *d == today && *ok).count() as u64;
        let expected_usage = Usage {
            day,
            hour: granted.iter().filter(|(at, ..)| at / HOUR_MS == now / HOUR_MS).count() as u64,
            total: day,
            succeeded,
            failed: day - succeeded,
        };
        invariant::counters_conserved(expected_usage, block_on(tracker.usage()).expect("store call"))?;

        let keys = block_on(store.keys(&format!("{prefix}:*"))).expect("store call");
        let ttls: Vec<_> = keys
            .into_iter()
            .map(|key| {
                let ttl = block_on(store.pttl(&key)).expect("store call");
                (key, ttl)
            })
            .collect();
        invariant::keys_carry_ttl(&ttls)?;

        clock.advance(load.step);
    }
    let at: Vec<Millis> = granted.iter().map(|(at, ..)| *at).collect();
    invariant::never_over_limits(limits, &at)
}
