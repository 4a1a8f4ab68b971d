//! The sliding-window invariants as checks over what was observed. An admission at `t` counts
//! in `[t, t + window)`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::{Millis, millis};
use crate::invariant::{Judgement, Violation};
use crate::limit::{Decision, Limit};

use super::COMPONENT;

/// No interval of length `window` holds more than `max` of the admissions made at `allowed_at`
/// (in any order).
pub fn at_most_max_in_any_window(max: u64, window: Duration, allowed_at: &[Millis]) -> Judgement {
    let mut times = allowed_at.to_vec();
    times.sort_unstable();
    let Some(span) = usize::try_from(max).ok().filter(|span| *span < times.len()) else {
        return Ok(());
    };
    let window = millis(window);
    for (first, last) in times.iter().zip(&times[span..]) {
        if last - first < window {
            return Err(Violation::new(
                COMPONENT,
                "over-admission",
                format!(
                    "{} admissions between {first} and {last} ms, {} ms apart; limit {max} per {window} ms",
                    span + 1,
                    last - first
                ),
            ));
        }
    }
    Ok(())
}

/// In a sequential `history` of `(at, decision)`, in call order, a call was refused only while
/// `max` earlier admissions were live.
pub fn no_false_denial(max: u64, window: Duration, history: &[(Millis, Decision)]) -> Judgement {
    let window = millis(window);
    let mut live: VecDeque<Millis> = VecDeque::new();
    for (step, (at, decision)) in history.iter().enumerate() {
        while live.front().is_some_and(|first| first + window <= *at) {
            live.pop_front();
        }
        if decision.allowed {
            live.push_back(*at);
        } else if (live.len() as u64) < max {
            return Err(Violation::new(
                COMPONENT,
                "false-denial",
                format!("call {step} at {at} ms refused with {} admissions live, limit {max}", live.len()),
            ));
        }
    }
    Ok(())
}

/// Both invariants over a sequential history.
pub fn sequential_history(limit: Limit, history: &[(Millis, Decision)]) -> Judgement {
    let allowed: Vec<Millis> = history.iter().filter(|(_, d)| d.allowed).map(|(at, _)| *at).collect();
    at_most_max_in_any_window(limit.max, limit.window, &allowed)?;
    no_false_denial(limit.max, limit.window, history)
}

/// Of a burst of concurrent calls at one instant, with `live` admissions live before it,
/// exactly `min(calls, max - live)` were admitted.
pub fn burst_fills_free_slots(max: u64, live: u64, decisions: &[Decision]) -> Judgement {
    let calls = decisions.len() as u64;
    let allowed = decisions.iter().filter(|d| d.allowed).count() as u64;
    let expected = calls.min(max.saturating_sub(live));
    let evidence = || format!("{allowed} of {calls} calls admitted with {live} admissions live, limit {max}");
    match allowed.cmp(&expected) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(Violation::new(COMPONENT, "over-admission", evidence())),
        std::cmp::Ordering::Less => Err(Violation::new(COMPONENT, "false-denial", evidence())),
    }
}
