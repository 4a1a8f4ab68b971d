//! Exactly N per window (#1). Each round, C requests of a fresh user are released together
//! over every instance; the answers carry the window's limit and the seconds to its reset, so
//! requests are grouped by the window they were decided in even when a burst straddles a
//! boundary. Then the window must end: the user keeps asking, one request at a time, and must
//! be admitted again within the advertised reset plus a grace period — a window that never ends
//! (a key without TTL, an expiry pushed by every hit) fails here.
//!
//! Evidence it needs: windows whose limit the answers state (`windows-judged`), a window asked
//! more than its limit (`limit-reached`: else the cap was never tested), the window's end
//! observed (`recovery-observed`: the probe runs when the reset is known and within the
//! profile's `max_wait_ms`, `--max-wait`), and few answers nothing recognised.

use std::time::{Duration, SystemTime};

use client::{Answer, Target, TargetError};
use profile::template::{Recognise, RequestTemplate};
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::json;

use crate::burst;
use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, at_least_one};
use crate::window::{Convention, ResetFormat};

pub const KIND: &str = "rate-limit";

/// Slack beyond the advertised reset: its second rounding plus a round trip.
pub const RECOVERY_GRACE: Duration = Duration::from_millis(1_500);
/// A reset in whole seconds (`Retry-After`) places a window's end up to this late.
const RESET_RESOLUTION_US: u64 = 1_000_000;
/// Windows whose estimated ends differ by more than this are different windows.
const SAME_WINDOW_US: u64 = 1_500_000;

fn classify(check: &RateLimitCheck, answer: &Answer) -> Outcome {
    match answer.status {
        Some(status) if check.allowed.matches(status, &answer.body) => Outcome::Ok,
        Some(status) if check.limited.matches(status, &answer.body) => Outcome::Fail,
        _ => Outcome::Unknown,
    }
}

/// An answer as an operation: its outcome and the window it states (its limit, the seconds to
/// its reset and its length), placed on the run's clock; an error when its reset cannot be read.
fn record(
    check: &RateLimitCheck,
    answer: &Answer,
    process: usize,
    instance: usize,
    f: &'static str,
) -> Result<Op, String> {
    let outcome = classify(check, answer);
    let stated = check.convention().read(&answer.headers, SystemTime::now())?;
    // What the profile declares wins over what the answers state: a header may describe
    // another limit than the one under check (GitHub's primary quota beside a secondary limit).
    let limit = check.limit.or(stated.limit);
    let reset = stated.reset_s;
    // The window's end as this answer places it, in µs of the run's clock; only an answer
    // recognised as an admission or a refusal places one (a 503's `Retry-After` is no window).
    let window_end_us = reset
        .filter(|_| outcome != Outcome::Unknown)
        .map(|r| answer.complete_us.saturating_add((r * 1e6) as u64));
    Ok(answer.op(
        process,
        instance,
        f,
        outcome,
        json!({
            "limit": limit,
            "reset_s": reset,
            "window_s": check.window_s.or(stated.window_s),
            "window_end_us": window_end_us,
        }),
    ))
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &RateLimitCheck) -> Result<Verdict, TargetError> {
    let defaults = &target.profile.defaults;
    let concurrency = check.concurrency.unwrap_or(defaults.concurrency);
    let rounds = check.rounds.unwrap_or(defaults.rounds);
    let mut history = Vec::new();
    let mut recoveries = Vec::new();
    for round in 0..rounds {
        let user = target.user(&format!("{}-r{round}", check.name)).await?;
        let answers = burst::release(concurrency, |i| {
            let target = target.clone();
            let check = check.clone();
            let token = user.tokens[i % target.instances()].clone();
            async move {
                let seq = format!("{round}-{i}");
                let instance = i % target.instances();
                let answer = target.send(instance, Some(&token), &check.request, &[("seq", &seq)]).await;
                record(&check, &answer, round, instance, "request")
            }
        })
        .await;
        for answer in answers {
            history.push(answer.map_err(|reason| check.unreadable(reason))?);
        }
        // Only the last round probes recovery: the others would wait a window each.
        if round + 1 == rounds {
            let max_wait = Duration::from_millis(defaults.max_wait_ms);
            recoveries = recover(target, check, &user.tokens, round, max_wait).await?;
        }
    }
    Ok(judge(&check.name, &history, &recoveries))
}

/// After the burst, one request at a time until admitted or the advertised window (plus
/// grace) has passed; not at all past `max_wait` (the first probe records it, for the judge).
async fn recover(
    target: &Target,
    check: &RateLimitCheck,
    tokens: &[String],
    round: usize,
    max_wait: Duration,
) -> Result<Vec<Op>, TargetError> {
    let mut probes = Vec::new();
    let first =
        target.send(0, Some(&tokens[0]), &check.request, &[("seq", &format!("{round}-probe-0"))]).await;
    let mut op = record(check, &first, round, 0, "probe").map_err(|reason| check.unreadable(reason))?;
    op.value["max_wait_s"] = json!(max_wait.as_secs_f64());
    let admitted = op.outcome == Outcome::Ok;
    let reset = op.value["reset_s"].as_f64().map(Duration::from_secs_f64);
    probes.push(op);
    let Some(reset) = reset.filter(|r| !admitted && *r <= max_wait) else {
        return Ok(probes);
    };
    let deadline = tokio::time::Instant::now() + reset + RECOVERY_GRACE;
    let step = (reset / 4).clamp(Duration::from_millis(100), Duration::from_secs(2));
    let mut n = 1;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(step).await;
        let instance = n % target.instances();
        let answer = target
            .send(
                instance,
                Some(&tokens[instance]),
                &check.request,
                &[("seq", &format!("{round}-probe-{n}"))],
            )
            .await;
        let op =
            record(check, &answer, round, instance, "probe").map_err(|reason| check.unreadable(reason))?;
        let done = op.outcome == Outcome::Ok;
        probes.push(op);
        if done {
            break;
        }
        n += 1;
    }
    Ok(probes)
}

/// Judges a history: per user (process) and window, admitted == min(requests, limit) with
/// unknown answers counted either way; and the last probe sequence ends admitted.
pub fn judge(name: &str, history: &[Op], probes: &[Op]) -> Verdict {
    let mut windows_judged = 0;
    let mut reached = 0;
    let mut over = 0;
    let mut under = 0;
    let mut unknown = 0;
    let mut verdict = Verdict::new(name, KIND, history.len() + probes.len(), json!({}));
    let mut processes: Vec<usize> = history.iter().map(|op| op.process).collect();
    processes.sort_unstable();
    processes.dedup();
    let mut unplaced = 0;
    let mut windows_seen = 0;
    let mut placed_over = Vec::new();
    for process in processes {
        let ops: Vec<&Op> = history.iter().filter(|op| op.process == process).collect();
        // The user's answers nothing recognised: each may have been admitted in any of its
        // windows, so each window's count may be short by all of them.
        let unknown_here = ops.iter().filter(|op| op.outcome == Outcome::Unknown).count() as u64;
        unknown += unknown_here as usize;
        let (mut placed, loose): (Vec<&Op>, Vec<&Op>) =
            ops.into_iter().partition(|op| op.value["window_end_us"].is_u64());
        // Those nothing recognised are counted above, wherever they fell.
        let mut loose: Vec<&Op> = loose.into_iter().filter(|op| op.outcome != Outcome::Unknown).collect();
        placed.sort_by_key(|op| op.value["window_end_us"].as_u64());
        // Cut into windows where the estimated ends jump.
        let mut windows: Vec<Vec<&Op>> = Vec::new();
        let mut last_end = None;
        for op in placed {
            let end = op.value["window_end_us"].as_u64().unwrap_or(0);
            match last_end {
                Some(prev) if end.saturating_sub(prev) <= SAME_WINDOW_US => {
                    windows.last_mut().expect("a window was started").push(op)
                }
                _ => windows.push(vec![op]),
            }
            last_end = Some(end);
        }
        // An answer that stated no reset (an admission, when only refusals carry Retry-After)
        // belongs to the window that began before it was sent and ended after it was answered,
        // when the window's length is known (within the reset's one-second resolution); else to
        // none that can be named.
        let mut by_length = vec![0u64; windows.len()];
        loose.retain(|op| {
            let home = windows.iter().position(|window| {
                let end = window[0].value["window_end_us"].as_u64().unwrap_or(0);
                let length_us = window
                    .iter()
                    .find_map(|w| w.value["window_s"].as_u64())
                    .map(|w| w.saturating_mul(1_000_000));
                length_us.is_some_and(|length| {
                    end.saturating_sub(length.saturating_add(RESET_RESOLUTION_US)) <= op.invoke_us
                        && op.complete_us <= end
                })
            });
            home.map(|i| {
                windows[i].push(op);
                by_length[i] += u64::from(op.outcome == Outcome::Ok);
            })
            .is_none()
        });
        unplaced += loose.len();
        // Whatever the windows' alignment, a span shorter than one window meets at most two of
        // them: more than twice the limit admitted within it is over-admission for certain.
        let stray: Vec<&Op> = loose.iter().copied().filter(|op| op.outcome == Outcome::Ok).collect();
        let limit = stray.iter().find_map(|op| op.value["limit"].as_u64());
        let length_us =
            stray.iter().find_map(|op| op.value["window_s"].as_u64()).map(|w| w.saturating_mul(1_000_000));
        let first = stray.iter().map(|op| op.invoke_us).min().unwrap_or(0);
        let span_us = stray.iter().map(|op| op.complete_us).max().unwrap_or(0).saturating_sub(first);
        if let (Some(limit), Some(length_us)) = (limit, length_us)
            && span_us < length_us
            && stray.len() as u64 > limit.saturating_mul(2)
        {
            over += 1;
            verdict.violate(
                "over-admission",
                format!(
                    "user {process}: {} admitted within {} ms, less than one window, which no two windows of limit \
                     {limit} admit",
                    stray.len(),
                    span_us / 1000
                ),
                stray.iter().map(|op| (*op).clone()),
            );
        }
        // Admissions in no named window may have been in any: they excuse a window's refusals
        // as unknown answers do, and the user's windows are not judged whole.
        let unplaced_admitted = loose.iter().filter(|op| op.outcome == Outcome::Ok).count() as u64;
        let unknown_here = unknown_here + unplaced_admitted;
        for (window, by_length) in windows.into_iter().zip(by_length) {
            // A window whose answers state no limit cannot be judged against one.
            let Some(limit) = window.iter().filter_map(|op| op.value["limit"].as_u64()).max() else {
                continue;
            };
            windows_seen += 1;
            if unplaced_admitted == 0 {
                windows_judged += 1;
            }
            let admitted = window.iter().filter(|op| op.outcome == Outcome::Ok).count() as u64;
            let refused = window.iter().filter(|op| op.outcome == Outcome::Fail).count() as u64;
            if window.len() as u64 > limit {
                reached += 1;
            }
            // More than twice the limit needs no placement to be certain: two windows at most
            // meet the span of one burst.
            if admitted > limit && admitted - by_length <= limit && admitted <= limit.saturating_mul(2) {
                // Over only with admissions placed by the window's length: a burst across the
                // boundary of windows aligned to the clock reads the same; a second such window
                // confirms it.
                placed_over.push((
                    process,
                    admitted,
                    limit,
                    window
                        .iter()
                        .filter(|op| op.outcome == Outcome::Ok)
                        .map(|op| (*op).clone())
                        .collect::<Vec<Op>>(),
                ));
            } else if admitted > limit {
                over += 1;
                let shown = window.iter().filter(|op| op.outcome == Outcome::Ok).map(|op| (*op).clone());
                verdict.violate(
                    "over-admission",
                    format!("user {process}: {admitted} admitted in one window of limit {limit}"),
                    shown,
                );
            } else if admitted + unknown_here < limit && refused > 0 {
                under += 1;
                let shown = window.iter().filter(|op| op.outcome == Outcome::Fail).map(|op| (*op).clone());
                verdict.violate(
                    "false-denial",
                    format!("user {process}: {refused} refused while only {admitted} of {limit} were admitted in the window"),
                    shown,
                );
            }
        }
    }
    let confirmed = placed_over.len() >= 2;
    if confirmed {
        for (process, admitted, limit, shown) in placed_over.iter().cloned() {
            over += 1;
            verdict.violate(
                "over-admission",
                format!(
                    "user {process}: {admitted} admitted in one window of limit {limit} (admissions placed by the \
                     window's length)"
                ),
                shown,
            );
        }
    }
    let recovered = probes.iter().any(|op| op.outcome == Outcome::Ok);
    // Waited out, every probe a recognised refusal: a window that never ends. A probe nothing
    // recognised may have been the admission.
    let waited = probes.len() > 1 && probes.iter().all(|op| op.outcome == Outcome::Fail);
    if !probes.is_empty() && !recovered && waited {
        let span_ms = probes.last().map(|l| (l.complete_us - probes[0].invoke_us) / 1000).unwrap_or(0);
        verdict.violate(
            "window-never-ends",
            format!("still refused {span_ms} ms after the first probe, past the advertised reset plus grace"),
            probes.iter().cloned(),
        );
    }
    verdict.require(
        "windows-judged",
        windows_judged > 0,
        match unplaced {
            0 => format!("{windows_judged} windows with their limit and reset stated"),
            n => format!(
                "{windows_judged} windows with their limit and reset stated; {n} answers stated no reset and could \
                 not be placed in a window"
            ),
        },
        "answers must state the window's limit and reset (map limit_header and reset_header, or declare limit); \
         when only refusals state a reset (Retry-After), declare the window's length, window_s",
    );
    verdict.require(
        "limit-reached",
        reached > 0,
        format!("{reached} of {windows_seen} windows were asked more than their limit"),
        "release more requests at once than the limit (concurrency)",
    );
    verdict.require(
        "over-admission-confirmed",
        placed_over.len() != 1,
        match placed_over.len() {
            1 => "1 window admitted more than its limit only when admissions without a reset are placed by the \
                  window's length, which a burst across a boundary of clock-aligned windows also does"
                .to_owned(),
            n => format!("{n} windows over their limit by admissions placed by the window's length"),
        },
        "run more rounds: a second such window confirms it",
    );
    let first = probes.first();
    let reset_s = first.and_then(|p| p.value["reset_s"].as_f64()).map(|r| r.ceil() as u64);
    let max_wait_s = first.and_then(|p| p.value["max_wait_s"].as_f64());
    let (observed, remedy) = match (first, reset_s) {
        _ if recovered => (format!("admitted again after {} probes", probes.len()), String::new()),
        (None, _) => ("no probe was sent".to_owned(), "run at least one round".to_owned()),
        _ if waited => ("refused through the advertised reset plus grace".to_owned(), String::new()),
        _ if probes.len() > 1 => (
            format!(
                "{} of {} probes had no usable answer: whether the window ended is not known",
                probes.iter().filter(|op| op.outcome == Outcome::Unknown).count(),
                probes.len()
            ),
            "the stack must answer the probes (allowed or limited)".to_owned(),
        ),
        (Some(_), None) => (
            "the first probe stated no reset, so the window's end could not be waited for".to_owned(),
            "map reset_header to the header with the seconds to the window's end".to_owned(),
        ),
        (Some(_), Some(reset)) => (
            format!(
                "the {reset} s window was not waited out (at most {} s)",
                max_wait_s.map_or("?".to_owned(), |w| format!("{w:.0}"))
            ),
            format!("serve with a shorter limit window, or pass --max-wait {}s", reset + 10),
        ),
    };
    verdict.require("recovery-observed", recovered || waited, observed, remedy);
    verdict.bound_unknown(history.iter().chain(probes), MAX_UNKNOWN);
    verdict.evidence = json!({
        "windows": windows_judged,
        "windows_at_limit": reached,
        "over_admission_windows": over,
        "false_denial_windows": under,
        "unknown": unknown,
        "unplaced": unplaced,
        "recovery_probes": probes.len(),
        "recovery_checked": recovered || waited,
        "recovered": recovered,
    });
    verdict.summarize(format!(
        "{windows_judged} windows, none admitting more than its limit nor refusing below it ({reached} asked past it); \
         admitted again {} after the burst",
        probes.first().zip(probes.iter().find(|p| p.outcome == Outcome::Ok)).map_or("?".to_owned(), |(a, b)| {
            format!("{} ms", b.complete_us.saturating_sub(a.invoke_us) / 1000)
        })
    ))
}

/// Exactly N admitted per window: C requests of one user released together, R rounds, the
/// window's limit and reset read from the answers' headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitCheck {
    pub name: String,
    /// `{seq}` is the request's number in the run.
    pub request: RequestTemplate,
    pub allowed: Recognise,
    pub limited: Recognise,
    /// The response header with the window's limit; none: `RateLimit` (`limit=`),
    /// `RateLimit-Limit`, `X-RateLimit-Limit`, then `RateLimit-Policy`, the first found.
    #[serde(default)]
    pub limit_header: Option<String>,
    /// The response header with the window's reset; none: `RateLimit` (`reset=` or `t=`),
    /// `RateLimit-Reset`, `X-RateLimit-Reset`, then `Retry-After`, the first found.
    #[serde(default)]
    pub reset_header: Option<String>,
    /// How the reset is written: "delta" (seconds to go), "epoch" (seconds since 1970),
    /// "http-date"; by default told apart value by value, an error when it cannot be.
    #[serde(default)]
    pub reset_format: ResetFormat,
    /// The window's limit, for a stack whose answers do not state it.
    #[serde(default)]
    pub limit: Option<u64>,
    /// The window's length in seconds, for a stack whose admissions state no reset (only
    /// its refusals carry `Retry-After`): an admission is then placed in the window that
    /// spans it. A `RateLimit-Policy` with `w=` states it too.
    #[serde(default)]
    pub window_s: Option<u64>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

impl RateLimitCheck {
    /// Where the answers state the window.
    fn convention(&self) -> Convention<'_> {
        Convention {
            limit_header: self.limit_header.as_deref(),
            reset_header: self.reset_header.as_deref(),
            reset_format: self.reset_format,
        }
    }

    /// A reset that could not be read stops the check: its format must be declared.
    fn unreadable(&self, reason: String) -> TargetError {
        TargetError::Configuration { check: self.name.clone(), reason }
    }
}

impl Kind for RateLimitCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("request", &self.request)]
    }

    fn recognisers(&self) -> Vec<(&'static str, &Recognise)> {
        vec![("allowed", &self.allowed), ("limited", &self.limited)]
    }

    fn validate(&self) -> Result<(), FieldError> {
        self.limit.map_or(Ok(()), |limit| at_least_one("limit", limit))?;
        self.window_s.map_or(Ok(()), |window| at_least_one("window_s", window))
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}

#[cfg(test)]
mod tests {
    //! The judge on synthetic histories: what the correct stack produces holds, each rule is
    //! shown broken on the history its mutant produces, and missing evidence is inconclusive.

    use serde_json::json;

    use super::*;

    fn op(process: usize, f: &'static str, at: u64, outcome: Outcome, value: serde_json::Value) -> Op {
        Op {
            process,
            instance: 0,
            action: f.into(),
            invoke_us: at,
            complete_us: at + 500,
            status: Some(200),
            outcome,
            value,
        }
    }

    /// One burst of `n` requests of user `process` at `at` µs, `admitted` of them allowed, all in
    /// a window of `limit` that ends `reset_s` after.
    fn burst(process: usize, at: u64, n: usize, admitted: usize, limit: u64, reset_s: u64) -> Vec<Op> {
        (0..n)
            .map(|i| {
                let outcome = if i < admitted { Outcome::Ok } else { Outcome::Fail };
                let end = at + 500 + reset_s * 1_000_000;
                op(
                    process,
                    "request",
                    at,
                    outcome,
                    json!({ "limit": limit, "reset_s": reset_s, "window_end_us": end }),
                )
            })
            .collect()
    }

    fn recovered(at: u64) -> Vec<Op> {
        vec![
            op(9, "probe", at, Outcome::Fail, json!({})),
            op(9, "probe", at + 1_000_000, Outcome::Ok, json!({})),
        ]
    }

    #[test]
    fn rate_limit_exactly_the_limit_per_window_passes() {
        let mut history = burst(0, 0, 32, 5, 5, 3);
        history.extend(burst(1, 10_000_000, 32, 5, 5, 3));
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["windows"], 2);
    }

    #[test]
    fn rate_limit_a_burst_straddling_two_windows_is_judged_per_window() {
        // 5 admitted in the window ending at 3 s, then 5 more in the next one (ends 3 s later).
        let mut history = burst(0, 0, 10, 5, 5, 3);
        history.extend(burst(0, 2_900_000, 10, 5, 5, 3));
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["windows"], 2);
    }

    #[test]
    fn rate_limit_mutant_get_then_set_history_is_over_admission() {
        let history = burst(0, 0, 32, 9, 5, 3);
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert_eq!(verdict.rules(), ["over-admission"], "{:?}", verdict.violations);
        assert_eq!(verdict.offending.len(), 9);
        assert_eq!(verdict.evidence["over_admission_windows"], 1);
        assert_eq!(verdict.evidence["false_denial_windows"], 0);
        // Every request and probe counted.
        assert_eq!(verdict.operations, 34);
    }

    #[test]
    fn rate_limit_refusals_below_the_limit_are_false_denials() {
        let history = burst(0, 0, 32, 3, 5, 3);
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert_eq!(verdict.rules(), ["false-denial"], "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["false_denial_windows"], 1);
        assert_eq!(verdict.evidence["over_admission_windows"], 0);
        // The refusals show it, not the admissions.
        assert_eq!(verdict.offending.len(), 20);
        assert!(verdict.offending.iter().all(|op| op.outcome == Outcome::Fail));
    }

    #[test]
    fn rate_limit_a_window_asked_exactly_its_limit_never_tested_the_cap() {
        let history = burst(0, 0, 5, 5, 5, 3);
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["limit-reached"]));
        let history = burst(0, 0, 6, 5, 5, 3);
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert!(verdict.held(), "{verdict:?}");
        let observed = &verdict.requirements.iter().find(|r| r.name == "recovery-observed").unwrap().observed;
        assert_eq!(observed, "admitted again after 2 probes");
    }

    #[test]
    fn rate_limit_mutant_incr_without_ttl_history_is_a_window_that_never_ends() {
        let history = burst(0, 0, 32, 5, 5, 3);
        let probes: Vec<Op> =
            (0..6).map(|i| op(9, "probe", 5_000_000 + i * 1_000_000, Outcome::Fail, json!({}))).collect();
        let verdict = judge("p", &history, &probes);
        assert_eq!(verdict.rules(), ["window-never-ends"], "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["recovered"], false);
        // From the first probe's invocation to the last one's completion.
        assert!(
            verdict.violations[0].detail.starts_with("still refused 5000 ms"),
            "{:?}",
            verdict.violations
        );
        let observed = &verdict.requirements.iter().find(|r| r.name == "recovery-observed").unwrap().observed;
        assert_eq!(observed, "refused through the advertised reset plus grace");
    }

    #[test]
    fn rate_limit_probes_nobody_answered_never_make_a_window_endless() {
        let history = burst(0, 0, 32, 5, 5, 3);
        let mut probes: Vec<Op> =
            (0..4).map(|i| op(9, "probe", 5_000_000 + i * 1_000_000, Outcome::Unknown, json!({}))).collect();
        probes[0].outcome = Outcome::Fail;
        let verdict = judge("p", &history, &probes);
        assert!(verdict.rules().is_empty(), "{:?}", verdict.violations);
        assert!(verdict.missing().contains(&"recovery-observed"), "{:?}", verdict.missing());
        assert!(verdict.summary.contains("3 of 4 probes had no usable answer"), "{}", verdict.summary);
    }

    #[test]
    fn rate_limit_an_unknown_answer_is_neither_admission_nor_refusal() {
        let mut history = burst(0, 0, 32, 5, 5, 3);
        history[5].outcome = Outcome::Unknown;
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["unknown"], 1);
        // A handful of requests with one unknown is more than may be unknown: nothing judged.
        let mut history = burst(0, 0, 6, 5, 5, 3);
        history[5].outcome = Outcome::Unknown;
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["unknown-within-bound"]));
    }

    /// A burst as a stack that states its window only on refusals (`Retry-After`) answers it:
    /// the admissions carry no reset; every answer carries `window_s` when it is known.
    fn retry_after_only(n: usize, admitted: usize, limit: u64, window_s: Option<u64>) -> Vec<Op> {
        let mut history = burst(0, 0, n, admitted, limit, 3);
        for op in history.iter_mut() {
            op.value["window_s"] = json!(window_s);
            if op.outcome == Outcome::Ok {
                op.value["reset_s"] = json!(null);
                op.value["window_end_us"] = json!(null);
            }
        }
        history
    }

    #[test]
    fn rate_limit_admissions_without_a_reset_are_placed_by_the_windows_length() {
        // The window's length known: the admissions are placed and judged.
        let verdict = judge("p", &retry_after_only(32, 6, 6, Some(60)), &recovered(20_000_000));
        assert!(verdict.held(), "{verdict:?}");
        assert_eq!(
            (verdict.evidence["windows"].as_u64(), verdict.evidence["unplaced"].as_u64()),
            (Some(1), Some(0))
        );
        // Over the limit only by admissions so placed: one window could be a burst across a
        // boundary of clock-aligned windows; a second confirms it.
        let verdict = judge("p", &retry_after_only(32, 9, 6, Some(60)), &recovered(20_000_000));
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["over-admission-confirmed"]));
        let mut history = retry_after_only(32, 9, 6, Some(60));
        history.extend(retry_after_only(32, 9, 6, Some(60)).into_iter().map(|mut op| {
            op.process = 1;
            op
        }));
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert_eq!(verdict.rules(), ["over-admission", "over-admission"], "{verdict:?}");
        assert_eq!(verdict.evidence["over_admission_windows"], 2);
        assert!(
            verdict.violations[0].detail.contains("placed by the window's length"),
            "{:?}",
            verdict.violations
        );
        // More than twice the limit needs no second window.
        let verdict = judge("p", &retry_after_only(32, 13, 6, Some(60)), &recovered(20_000_000));
        assert_eq!(verdict.rules(), ["over-admission"], "{verdict:?}");
        // Placed within the reset's one-second resolution of the window's start, not further.
        let mut history = retry_after_only(32, 6, 6, Some(3));
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert_eq!(verdict.evidence["unplaced"], 0, "{verdict:?}");
        history.iter_mut().for_each(|op| op.value["window_s"] = json!(1));
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert_eq!(verdict.evidence["unplaced"], 6, "{verdict:?}");
        // A window shorter than the time since the admissions were sent does not hold them.
        let verdict = judge("p", &retry_after_only(32, 9, 6, Some(1)), &recovered(20_000_000));
        assert!(!verdict.violated(), "{verdict:?}");
        assert_eq!(verdict.evidence["unplaced"], 9);
    }

    #[test]
    fn rate_limit_only_a_recognised_answer_places_a_window() {
        let check: RateLimitCheck = serde_json::from_value(json!({
            "name": "p",
            "request": { "method": "POST", "path": "/p" },
            "allowed": { "status": [202] },
            "limited": { "status": [429] },
        }))
        .unwrap();
        let answer = |status: u16| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("retry-after", reqwest::header::HeaderValue::from_static("1"));
            Answer {
                status: Some(status),
                headers,
                body: json!({}),
                invoke_us: 0,
                complete_us: 10,
                error: None,
            }
        };
        // A 503's Retry-After says when to come back, not where a window ends.
        let unavailable = record(&check, &answer(503), 0, 0, "request").unwrap();
        assert_eq!(
            (unavailable.outcome, unavailable.value["window_end_us"].clone()),
            (Outcome::Unknown, json!(null))
        );
        let refused = record(&check, &answer(429), 0, 0, "request").unwrap();
        assert_eq!(
            (refused.outcome, refused.value["window_end_us"].clone()),
            (Outcome::Fail, json!(1_000_010))
        );
        // A declared limit wins over the one the headers state.
        let check = RateLimitCheck { limit: Some(6), ..check };
        let mut stated = answer(202);
        stated.headers.insert("ratelimit-limit", reqwest::header::HeaderValue::from_static("5000"));
        assert_eq!(record(&check, &stated, 0, 0, "request").unwrap().value["limit"], 6);
    }

    #[test]
    fn rate_limit_more_than_two_limits_admitted_within_one_windows_length_is_over_admission() {
        // Nothing refused, so no window stated: within less than one window's length at most two
        // windows' limits can be admitted, however the windows are aligned.
        let verdict = judge("p", &retry_after_only(32, 32, 6, Some(60)), &recovered(20_000_000));
        assert_eq!(verdict.rules(), ["over-admission"], "{verdict:?}");
        assert!(
            verdict.violations[0].detail.starts_with("user 0: 32 admitted within"),
            "{:?}",
            verdict.violations
        );
        assert!(
            !verdict.offending.is_empty() && verdict.offending.iter().all(|op| op.outcome == Outcome::Ok)
        );
        // Twice the limit is what a burst across a boundary may admit; a longer span than the
        // window, or no length known, proves nothing.
        assert!(!judge("p", &retry_after_only(12, 12, 6, Some(60)), &recovered(20_000_000)).violated());
        assert!(!judge("p", &retry_after_only(13, 13, 6, None), &recovered(20_000_000)).violated());
        let mut spread = retry_after_only(13, 13, 6, Some(2));
        spread.iter_mut().enumerate().for_each(|(i, op)| op.invoke_us += i as u64 * 200_000);
        spread.iter_mut().for_each(|op| op.complete_us = op.invoke_us + 500);
        assert!(!judge("p", &spread, &recovered(20_000_000)).violated());
        assert!(judge("p", &retry_after_only(13, 13, 6, Some(60)), &recovered(20_000_000)).violated());
    }

    #[test]
    fn rate_limit_admissions_that_cannot_be_placed_are_no_false_denial_and_judge_nothing() {
        // Only the refusals state a window: they must not be read as refused below the limit.
        let verdict = judge("p", &retry_after_only(32, 6, 6, None), &recovered(20_000_000));
        assert!(!verdict.violated(), "{:?}", verdict.violations);
        assert_eq!(verdict.missing(), ["windows-judged"]);
        assert_eq!(verdict.evidence["unplaced"], 6);
        let windows = verdict.requirements.iter().find(|r| r.name == "windows-judged").unwrap();
        assert!(windows.observed.contains("6 answers stated no reset"), "{}", windows.observed);
        assert!(windows.remedy.as_deref().unwrap_or("").contains("window_s"), "{:?}", windows.remedy);
        // Refusals with no admission anywhere are still refusals below the limit.
        let verdict = judge("p", &retry_after_only(32, 0, 6, None), &recovered(20_000_000));
        assert_eq!(verdict.rules(), ["false-denial"], "{verdict:?}");
    }

    #[test]
    fn rate_limit_reads_a_fractional_reset() {
        let mut history = burst(0, 0, 32, 6, 6, 60);
        history.iter_mut().for_each(|op| op.value["reset_s"] = json!(59.2));
        let verdict = judge("p", &history, &unwaited(Some(60), 5.0));
        let mut probes = unwaited(None, 5.0);
        probes[0].value["reset_s"] = json!(59.2);
        let fractional = judge("p", &history, &probes);
        assert_eq!(verdict.summary, fractional.summary);
    }

    /// The first probe refused, stating a reset of `reset_s` (or none), with `max_wait_s` allowed.
    fn unwaited(reset_s: Option<u64>, max_wait_s: f64) -> Vec<Op> {
        vec![op(
            9,
            "probe",
            20_000_000,
            Outcome::Fail,
            json!({ "reset_s": reset_s, "max_wait_s": max_wait_s }),
        )]
    }

    #[test]
    fn rate_limit_a_window_longer_than_the_wait_is_inconclusive_naming_it() {
        let history = burst(0, 0, 32, 6, 6, 60);
        let verdict = judge("p", &history, &unwaited(Some(60), 5.0));
        assert!(verdict.inconclusive(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["recovery-observed"]);
        assert!(
            verdict.summary.contains("the 60 s window was not waited out (at most 5 s)"),
            "{}",
            verdict.summary
        );
        assert!(verdict.summary.contains("--max-wait 70s"), "{}", verdict.summary);
        // No stated reset: nothing to wait for.
        let verdict = judge("p", &history, &unwaited(None, 120.0));
        assert_eq!(verdict.missing(), ["recovery-observed"]);
        assert!(verdict.summary.contains("stated no reset"), "{}", verdict.summary);
        // A broken rule still wins.
        let history = burst(0, 0, 32, 9, 6, 60);
        assert!(judge("p", &history, &unwaited(Some(60), 5.0)).violated());
    }

    #[test]
    fn rate_limit_evidence_that_is_not_there_is_said_so() {
        // Bursts below the limit never test the cap.
        let history = burst(0, 0, 4, 4, 5, 3);
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["limit-reached"]));
        // Answers without the limit: no window to judge (and no over-admission against a limit of 0).
        let mut history = burst(0, 0, 32, 6, 5, 3);
        history.iter_mut().for_each(|op| op.value["limit"] = json!(null));
        let verdict = judge("p", &history, &recovered(20_000_000));
        assert!(!verdict.violated(), "{:?}", verdict.violations);
        assert_eq!(verdict.missing(), ["windows-judged", "limit-reached"]);
        // A dead stack: every answer 503.
        let mut history = burst(0, 0, 32, 0, 5, 3);
        history.iter_mut().for_each(|op| {
            op.outcome = Outcome::Unknown;
            op.status = Some(503);
            op.value = json!({ "limit": null, "reset_s": null, "window_end_us": null });
        });
        let verdict = judge("p", &history, &unwaited(None, 120.0));
        assert!(verdict.inconclusive(), "{verdict:?}");
        assert!(
            verdict.summary.contains("32 of 33 operations had no usable answer (503 ×32)"),
            "{}",
            verdict.summary
        );
    }
}
