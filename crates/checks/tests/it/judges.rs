//! The judges on synthetic histories: what the correct stack produces passes, and each rule is
//! shown failing on the history its mutant produces.

use checks::checkers::{rate_limit, unique};
use checks::history::{Op, Outcome};
use serde_json::json;

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
    vec![op(9, "probe", at, Outcome::Fail, json!({})), op(9, "probe", at + 1_000_000, Outcome::Ok, json!({}))]
}

#[test]
fn rate_limit_exactly_the_limit_per_window_passes() {
    let mut history = burst(0, 0, 32, 5, 5, 3);
    history.extend(burst(1, 10_000_000, 32, 5, 5, 3));
    let verdict = rate_limit::judge("p", &history, &recovered(20_000_000));
    assert!(verdict.held(), "{:?}", verdict.violations);
    assert_eq!(verdict.evidence["windows"], 2);
}

#[test]
fn rate_limit_a_burst_straddling_two_windows_is_judged_per_window() {
    // 5 admitted in the window ending at 3 s, then 5 more in the next one (ends 3 s later).
    let mut history = burst(0, 0, 10, 5, 5, 3);
    history.extend(burst(0, 2_900_000, 10, 5, 5, 3));
    let verdict = rate_limit::judge("p", &history, &recovered(20_000_000));
    assert!(verdict.held(), "{:?}", verdict.violations);
    assert_eq!(verdict.evidence["windows"], 2);
}

#[test]
fn rate_limit_mutant_get_then_set_history_is_over_admission() {
    let history = burst(0, 0, 32, 9, 5, 3);
    let verdict = rate_limit::judge("p", &history, &recovered(20_000_000));
    assert_eq!(verdict.rules(), ["over-admission"], "{:?}", verdict.violations);
    assert_eq!(verdict.offending.len(), 9);
}

#[test]
fn rate_limit_refusals_below_the_limit_are_false_denials() {
    let history = burst(0, 0, 32, 3, 5, 3);
    let verdict = rate_limit::judge("p", &history, &recovered(20_000_000));
    assert_eq!(verdict.rules(), ["false-denial"], "{:?}", verdict.violations);
}

#[test]
fn rate_limit_mutant_incr_without_ttl_history_is_a_window_that_never_ends() {
    let history = burst(0, 0, 32, 5, 5, 3);
    let probes: Vec<Op> =
        (0..6).map(|i| op(9, "probe", 5_000_000 + i * 1_000_000, Outcome::Fail, json!({}))).collect();
    let verdict = rate_limit::judge("p", &history, &probes);
    assert_eq!(verdict.rules(), ["window-never-ends"], "{:?}", verdict.violations);
    assert_eq!(verdict.evidence["recovered"], false);
}

#[test]
fn rate_limit_an_unknown_answer_is_neither_admission_nor_refusal() {
    let mut history = burst(0, 0, 32, 5, 5, 3);
    history[5].outcome = Outcome::Unknown;
    let verdict = rate_limit::judge("p", &history, &recovered(20_000_000));
    assert!(verdict.held(), "{:?}", verdict.violations);
    assert_eq!(verdict.evidence["unknown"], 1);
    // A handful of requests with one unknown is more than may be unknown: nothing judged.
    let mut history = burst(0, 0, 6, 5, 5, 3);
    history[5].outcome = Outcome::Unknown;
    let verdict = rate_limit::judge("p", &history, &recovered(20_000_000));
    assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["unknown-within-bound"]));
}

/// The first probe refused, stating a reset of `reset_s` (or none), with `max_wait_s` allowed.
fn unwaited(reset_s: Option<u64>, max_wait_s: f64) -> Vec<Op> {
    vec![op(9, "probe", 20_000_000, Outcome::Fail, json!({ "reset_s": reset_s, "max_wait_s": max_wait_s }))]
}

#[test]
fn rate_limit_a_window_longer_than_the_wait_is_inconclusive_naming_it() {
    let history = burst(0, 0, 32, 6, 6, 60);
    let verdict = rate_limit::judge("p", &history, &unwaited(Some(60), 5.0));
    assert!(verdict.inconclusive(), "{verdict:?}");
    assert_eq!(verdict.missing(), ["recovery-observed"]);
    assert!(
        verdict.summary.contains("the 60 s window was not waited out (at most 5 s)"),
        "{}",
        verdict.summary
    );
    assert!(verdict.summary.contains("--max-wait 70s"), "{}", verdict.summary);
    // No stated reset: nothing to wait for.
    let verdict = rate_limit::judge("p", &history, &unwaited(None, 120.0));
    assert_eq!(verdict.missing(), ["recovery-observed"]);
    assert!(verdict.summary.contains("stated no reset"), "{}", verdict.summary);
    // A broken rule still wins.
    let history = burst(0, 0, 32, 9, 6, 60);
    assert!(rate_limit::judge("p", &history, &unwaited(Some(60), 5.0)).violated());
}

#[test]
fn rate_limit_evidence_that_is_not_there_is_said_so() {
    // Bursts below the limit never test the cap.
    let history = burst(0, 0, 4, 4, 5, 3);
    let verdict = rate_limit::judge("p", &history, &recovered(20_000_000));
    assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["limit-reached"]));
    // Answers without the limit: no window to judge (and no over-admission against a limit of 0).
    let mut history = burst(0, 0, 32, 6, 5, 3);
    history.iter_mut().for_each(|op| op.value["limit"] = json!(null));
    let verdict = rate_limit::judge("p", &history, &recovered(20_000_000));
    assert!(!verdict.violated(), "{:?}", verdict.violations);
    assert_eq!(verdict.missing(), ["windows-judged", "limit-reached"]);
    // A dead stack: every answer 503.
    let mut history = burst(0, 0, 32, 0, 5, 3);
    history.iter_mut().for_each(|op| {
        op.outcome = Outcome::Unknown;
        op.status = Some(503);
        op.value = json!({ "limit": null, "reset_s": null, "window_end_us": null });
    });
    let verdict = rate_limit::judge("p", &history, &unwaited(None, 120.0));
    assert!(verdict.inconclusive(), "{verdict:?}");
    assert!(
        verdict.summary.contains("32 of 33 operations had no usable answer (503 ×32)"),
        "{}",
        verdict.summary
    );
}

fn create(round: usize, created: bool, process: bool, id: &str) -> Op {
    op(round, "create", 0, Outcome::Ok, json!({ "created": created, "should_process": process, "id": id }))
}

fn read_back(round: usize, outcome: Outcome) -> Op {
    op(round, "read-back", 1_000, outcome, json!({ "id": "v1" }))
}

#[test]
fn unique_one_creation_one_processor_passes() {
    let mut history = vec![create(0, true, true, "v1")];
    history.extend((0..31).map(|_| create(0, false, false, "v1")));
    history.push(read_back(0, Outcome::Ok));
    let verdict = unique::judge("u", &history);
    assert!(verdict.held(), "{:?}", verdict.violations);
}

#[test]
fn unique_mutant_check_then_insert_history_is_duplicate_creation() {
    let mut history: Vec<Op> = (0..3).map(|_| create(0, true, true, "v1")).collect();
    history.extend((0..29).map(|_| create(0, false, false, "v1")));
    history.push(read_back(0, Outcome::Ok));
    let verdict = unique::judge("u", &history);
    assert_eq!(verdict.rules(), ["duplicate-creation", "duplicate-processing"], "{:?}", verdict.violations);
}

#[test]
fn unique_a_retry_claimed_twice_is_duplicate_processing() {
    let history = vec![create(0, false, true, "v1"), create(0, false, true, "v1"), read_back(0, Outcome::Ok)];
    let verdict = unique::judge("u", &history);
    assert!(verdict.rules().contains(&"duplicate-processing"), "{:?}", verdict.violations);
}

#[test]
fn unique_two_ids_and_an_invisible_resource_are_violations() {
    let history = vec![
        create(0, true, true, "v1"),
        create(0, false, false, "v2"),
        read_back(0, Outcome::Ok),
        read_back(0, Outcome::Fail),
    ];
    let verdict = unique::judge("u", &history);
    assert_eq!(verdict.rules(), ["several-resources", "not-visible"], "{:?}", verdict.violations);
}

#[test]
fn unique_no_creation_without_unknowns_is_a_violation() {
    let history = vec![create(0, false, false, "v1"), read_back(0, Outcome::Ok)];
    let verdict = unique::judge("u", &history);
    assert_eq!(verdict.rules(), ["no-creation"], "{:?}", verdict.violations);
}

#[test]
fn unique_creations_nobody_answered_are_inconclusive() {
    let unanswered = |round| Op { status: Some(503), ..op(round, "create", 0, Outcome::Unknown, json!({})) };
    let history: Vec<Op> = (0..3).flat_map(|round| (0..8).map(move |_| unanswered(round))).collect();
    let verdict = unique::judge("u", &history);
    assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
    assert_eq!(verdict.missing(), ["rounds-judged", "unknown-within-bound"]);
    assert!(verdict.summary.contains("0 of 3 rounds"), "{}", verdict.summary);
}
