//! The circuit-breaker suite, run against any implementation and store: contention on real
//! threads and one scripted lifecycle.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, ManualClock};
use crate::invariant::Judgement;
use crate::sync::{AtomicU64, Ordering, block_on};
use crate::testing::burst;

use super::{Breaker, CallError, CallOutcome, Permit, Policy, State, call, invariant};

/// The error the stand-in upstream returns.
const DOWN: &str = "upstream unavailable";

fn acquire<B: Breaker>(breaker: &B) -> Option<Permit> {
    block_on(breaker.acquire()).expect("store call").ok()
}

fn record<B: Breaker>(breaker: &B, permit: Permit, outcome: CallOutcome) {
    block_on(breaker.record(permit, outcome)).expect("store call");
}

fn state<B: Breaker>(breaker: &B) -> State {
    block_on(breaker.state()).expect("store call")
}

/// One call through the breaker to an upstream that answers `ok`; whether it was admitted.
fn call_once<B: Breaker>(breaker: &B, ok: bool) -> bool {
    match block_on(call(breaker, || async { if ok { Ok(()) } else { Err(DOWN) } })) {
        Ok(()) | Err(CallError::Upstream(_)) => true,
        Err(CallError::Rejected(_)) => false,
        Err(CallError::Store(e)) => panic!("store call: {e}"),
    }
}

/// Fails `failures` calls in a row; the breaker must admit each.
fn fail_calls<B: Breaker>(breaker: &B, failures: u32) {
    for _ in 0..failures {
        assert!(call_once(breaker, false), "a closed breaker refused a call");
    }
}

/// `rounds` times, on a fresh key: open the breaker, let the open period pass, and release
/// `threads` callers at once, each through its own instance from `make(key)` (as on separate
/// hosts sharing one store). Exactly one is admitted as the trial; its result (success on even
/// rounds, failure on odd) closes or re-opens the breaker.
pub fn half_open_single_trial<B, F>(
    make: F,
    clock: &ManualClock,
    policy: Policy,
    threads: usize,
    rounds: usize,
) -> Judgement
where
    B: Breaker + 'static,
    F: Fn(&str) -> B,
{
    for round in 0..rounds {
        let key = format!("cb:round-{round}");
        let instances: Arc<Vec<B>> = Arc::new((0..threads).map(|_| make(&key)).collect());
        fail_calls(&instances[0], policy.failure_threshold);
        clock.advance(policy.open_for);
        let callers = Arc::clone(&instances);
        let permits: Vec<Permit> =
            burst(threads, move |i| acquire(&callers[i])).into_iter().flatten().collect();
        invariant::one_trial(threads, permits.len())?;
        let outcome = if round % 2 == 0 { CallOutcome::Success } else { CallOutcome::Failure };
        for permit in permits {
            record(&instances[0], permit, outcome);
        }
        invariant::trial_settles(outcome, state(&instances[0]).phase(clock.now()))?;
    }
    Ok(())
}

/// `threads` callers, `calls_per_thread` calls each, against a breaker just opened: none reaches
/// the upstream.
pub fn fails_fast<B: Breaker + 'static>(
    breaker: Arc<B>,
    policy: Policy,
    threads: usize,
    calls_per_thread: usize,
) -> Judgement {
    fail_calls(&*breaker, policy.failure_threshold);
    let upstream = Arc::new(AtomicU64::new(0));
    let reached = Arc::clone(&upstream);
    burst(threads, move |_| {
        for _ in 0..calls_per_thread {
            let result = block_on(call(&*breaker, || async {
                reached.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(DOWN)
            }));
            if let Err(CallError::Store(e)) = result {
                panic!("store call: {e}");
            }
        }
    });
    invariant::fails_fast((threads * calls_per_thread) as u64, upstream.load(Ordering::SeqCst))
}

/// `threads` callers each report `per_thread` failures at once to a closed breaker whose
/// threshold is above their total: every failure is in the count.
pub fn failures_counted<B: Breaker + 'static>(
    breaker: Arc<B>,
    threads: usize,
    per_thread: usize,
) -> Judgement {
    let callers = Arc::clone(&breaker);
    let admitted = burst(threads, move |_| (0..per_thread).filter(|_| call_once(&*callers, false)).count());
    let total = admitted.iter().sum::<usize>();
    assert_eq!(total, threads * per_thread, "a breaker below its threshold refused calls");
    invariant::failures_counted(u32::try_from(total).expect("failure count fits u32"), &state(&*breaker))
}

/// One breaker through its whole life, one call at a time: the count resets on success, opens
/// at the threshold, fails fast while open, admits one trial that re-opens on failure, takes a
/// new trial once an unreported one's lease expires, ignores the stale trial's late report, and
/// closes on the new trial's success.
pub fn lifecycle<B: Breaker>(breaker: &B, clock: &ManualClock, policy: Policy) -> Judgement {
    let threshold = policy.failure_threshold;
    let phase = || state(breaker).phase(clock.now());

    for consecutive in 1..threshold {
        call_once(breaker, false);
        invariant::opens_at_threshold(threshold, consecutive, phase())?;
    }
    call_once(breaker, true);
    invariant::opens_at_threshold(threshold, 0, phase())?;
    for consecutive in 1..=threshold {
        call_once(breaker, false);
        invariant::opens_at_threshold(threshold, consecutive, phase())?;
    }

    let admitted = (0..3).filter(|_| call_once(breaker, true)).count() as u64;
    clock.advance(policy.open_for - Duration::from_millis(1));
    let admitted = admitted + u64::from(call_once(breaker, true));
    invariant::fails_fast(4, admitted)?;

    clock.advance(Duration::from_millis(1));
    let trial = acquire(breaker);
    let second = acquire(breaker);
    invariant::one_trial(2, usize::from(trial.is_some()) + usize::from(second.is_some()))?;
    for permit in trial.into_iter().chain(second) {
        record(breaker, permit, CallOutcome::Failure);
    }
    invariant::trial_settles(CallOutcome::Failure, phase())?;

    clock.advance(policy.open_for);
    let Some(abandoned) = acquire(breaker) else { return invariant::one_trial(1, 0) };
    clock.advance(policy.trial_timeout);
    let Some(trial) = acquire(breaker) else { return invariant::one_trial(1, 0) };
    let before = state(breaker);
    record(breaker, abandoned, CallOutcome::Success);
    invariant::stale_report_ignored(&before, &state(breaker))?;
    record(breaker, trial, CallOutcome::Success);
    invariant::trial_settles(CallOutcome::Success, phase())
}
