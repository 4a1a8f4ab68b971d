//! The circuit-breaker invariants as checks over what was observed.

use crate::invariant::{Judgement, Violation};

use super::{COMPONENT, CallOutcome, Phase, State};

/// Of `attempts` calls made while the breaker was open, none reached the upstream.
pub fn fails_fast(attempts: u64, upstream_calls: u64) -> Judgement {
    if upstream_calls == 0 {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "call-while-open",
        format!("{upstream_calls} of {attempts} calls reached the upstream while the breaker was open"),
    ))
}

/// Of `callers` that asked for a permit once the open period was over, exactly one was
/// admitted, as the trial.
pub fn one_trial(callers: usize, trials: usize) -> Judgement {
    match trials {
        1 => Ok(()),
        0 if callers == 0 => Ok(()),
        0 => Err(Violation::new(
            COMPONENT,
            "no-trial",
            format!("none of {callers} callers was admitted after the open period"),
        )),
        _ => Err(Violation::new(
            COMPONENT,
            "multiple-trials",
            format!("{trials} of {callers} callers were admitted as half-open trials, expected one"),
        )),
    }
}

/// Once the trial reported `outcome`, the breaker is closed (success) or open again (failure).
pub fn trial_settles(outcome: CallOutcome, after: Phase) -> Judgement {
    match (outcome, after) {
        (CallOutcome::Success, Phase::Closed) | (CallOutcome::Failure, Phase::Open) => Ok(()),
        (CallOutcome::Success, _) => Err(Violation::new(
            COMPONENT,
            "trial-success-not-closed",
            format!("the trial succeeded and the breaker is {after}"),
        )),
        (CallOutcome::Failure, _) => Err(Violation::new(
            COMPONENT,
            "trial-failure-not-reopened",
            format!("the trial failed and the breaker is {after}"),
        )),
    }
}

/// After `consecutive` failures since the breaker closed or last saw a success, it is open
/// exactly when they reach `threshold`. A success that did not reset the count shows up as a
/// breaker that opened early.
pub fn opens_at_threshold(threshold: u32, consecutive: u32, phase: Phase) -> Judgement {
    match (consecutive >= threshold, phase) {
        (false, Phase::Closed) | (true, Phase::Open) => Ok(()),
        (false, _) => Err(Violation::new(
            COMPONENT,
            "opened-before-threshold",
            format!("breaker is {phase} after {consecutive} consecutive failures, threshold {threshold}"),
        )),
        (true, _) => Err(Violation::new(
            COMPONENT,
            "not-opened-at-threshold",
            format!("breaker is {phase} after {consecutive} consecutive failures, threshold {threshold}"),
        )),
    }
}

/// A result reported on a permit from before the last transition (a trial whose lease was
/// taken over, a call admitted before the breaker opened) left the record as it was.
pub fn stale_report_ignored(before: &State, after: &State) -> Judgement {
    if before == after {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "stale-report-applied",
        format!("a stale permit's result moved the record from {before:?} to {after:?}"),
    ))
}

/// Every one of `reported` failures while closed (below the threshold) is in the count.
pub fn failures_counted(reported: u32, state: &State) -> Judgement {
    match *state {
        State::Closed { failures, .. } if failures == reported => Ok(()),
        other => Err(Violation::new(
            COMPONENT,
            "lost-failure",
            format!("{reported} failures reported while closed, record holds {other:?}"),
        )),
    }
}
