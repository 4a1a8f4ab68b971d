//! The import pipeline's workers (#10) and retry claims (#5), judged from the imports'
//! statuses while the fake upstream holds the calls. Once an import has completed with the
//! upstream healthy (the `baseline`), three phases, then a final read:
//!
//! 1. `outlive` — every call held until [`ImportLifecycleCheck::hold_ms`] after the phase
//!    began (an outage in `hang` mode that ends by itself), longer than the target's
//!    visibility timeout and shorter than its hard time limit, while [`ImportLifecycleCheck::held`]
//!    imports per instance keep its workers busy: each task outlives its lease and is put back
//!    while its worker is still on it, so once the worker has finished, a worker takes the
//!    finished task again. Its effect must not be applied a second time (`effect-repeated`).
//! 2. `race` — every call held until released (an outage in `hang` mode), one import per
//!    instance, until each task's lease has expired and a second worker's call is held too (or
//!    the first worker has abandoned its call at the hard time limit); then the held calls are
//!    released at once, one per import answered 503 and the others served. The two deliveries
//!    of one task race to record opposite outcomes: exactly one transition of the video may take
//!    effect (`conflicting-outcomes`: its status records both a result and an error). Every
//!    import must still end once the upstream answers (`lost-task`: a task abandoned by its
//!    worker was never redelivered).
//! 3. `retry` — one import failed by the upstream, then C concurrent re-imports of its URL to
//!    its instance: exactly one may be told to process it (`duplicate-retry-claim`,
//!    `no-retry-claim`).
//!
//! The final read comes after the last phase, so the later deliveries of the first two phases
//! (a finished task taken again, a race's loser) have had their moment: every import of those
//! phases must have ended, with its effect applied exactly once (`effect-missing`,
//! `effect-repeated`).

use std::time::Duration;

use client::{Target, TargetError, User};
use fake_upstream::{Fault, OutageMode};
use profile::template::{Recognise, RequestTemplate};
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::burst;
use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, Need, at_least_one};
use crate::upstream::{self, Control};

pub const KIND: &str = "import-lifecycle";

pub const BASELINE: &str = "baseline";
pub const OUTLIVE: &str = "outlive";
pub const RACE: &str = "race";
pub const RETRY: &str = "retry";

/// The least time between the race's release and the final read: a race's loser records
/// (or, correctly, fails to record) its outcome within a few store round trips of its answer.
const LOSER_GRACE: Duration = Duration::from_millis(500);
/// How long an import failed by the upstream may take to show it.
const FAIL_WAIT: Duration = Duration::from_secs(5);
/// The longest the healthy stack may take to complete a first import (its first credential
/// refresh included).
const BASELINE_WAIT: Duration = Duration::from_secs(15);

/// One import of the check, as last read.
#[derive(Debug, Clone)]
struct Import {
    phase: &'static str,
    instance: usize,
    id: Option<String>,
    unique: String,
    state: Value,
}

struct Driver<'a> {
    target: &'a Target,
    check: &'a ImportLifecycleCheck,
    user: User,
    control: Control,
    ops: Vec<Op>,
    imports: Vec<Import>,
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &ImportLifecycleCheck) -> Result<Verdict, TargetError> {
    let control = Control::of(target, &check.name)?;
    let user = target.user(&check.name).await?;
    control.reset().await?;
    let mut d = Driver { target, check, user, control, ops: Vec::new(), imports: Vec::new() };
    let result = d.phases().await;
    // Whatever happened, the upstream is left healthy for the next check.
    let cleared = d.control.clear_faults().await;
    result?;
    cleared?;
    Ok(judge(&check.name, &d.ops))
}

impl Driver<'_> {
    async fn phases(&mut self) -> Result<(), TargetError> {
        let check = self.check;
        let route = check.route;
        let visibility = Duration::from_millis(check.visibility_ms);
        let limit = Duration::from_millis(check.time_limit_ms);
        let step = Duration::from_millis(check.step_ms);
        // Long enough for a lease to expire and the task to be redelivered and processed.
        let redelivery = visibility + limit + Duration::from_secs(3);

        // 0. The pipeline works: an import completes with the upstream healthy (the stack's
        // first credential refresh may still be under way).
        self.mark(BASELINE, Value::Null);
        let baseline_by = Instant::now() + BASELINE_WAIT;
        while Instant::now() < baseline_by {
            self.submit_one(BASELINE).await;
            let index = self.imports.len() - 1;
            if self.wait_ended(BASELINE, BASELINE_WAIT).await
                && self.imports[index].state.as_str() == Some(check.completed.as_str())
            {
                break;
            }
            tokio::time::sleep(step).await;
        }

        // 1. Every task outlives its lease while its worker finishes it. The calls are held
        // until `hold` after the phase began, not `hold` each: a worker that takes a task still
        // running elsewhere (its lease expired) is answered at once, and does not hold the
        // next phase up for a whole `hold`.
        let hold = Duration::from_millis(check.hold_ms);
        let outage =
            Fault::Outage { mode: OutageMode::Hang, duration_ms: Some(check.hold_ms), route: Some(route) };
        self.control.set_faults(std::slice::from_ref(&outage)).await?;
        self.mark(OUTLIVE, json!([outage]));
        self.submit(OUTLIVE, check.held).await;
        self.wait_ended(OUTLIVE, hold + redelivery).await;
        // A second delivery that overtook its first (a worker was idle) still holds a call:
        // the next phase needs every worker free.
        self.quiesce(hold + Duration::from_secs(5)).await?;

        // 2. Two deliveries of one task held, then released together with opposite answers.
        self.control.set_faults(&[Fault::outage(OutageMode::Hang).on(route)]).await?;
        let before = self.control.snapshot(self.target).await?;
        self.mark(RACE, json!({ "hang": route }));
        let tasks = self.submit(RACE, 1).await;
        let (arrived0, _) = before.route(route);
        let abandoned0 = abandoned(&before, route);
        let deadline = Instant::now() + redelivery;
        loop {
            let now = self.control.snapshot(self.target).await?;
            let arrived = now.route(route).0.saturating_sub(arrived0);
            let gave_up = abandoned(&now, route).saturating_sub(abandoned0);
            let enough = arrived >= 2 * tasks as u64 || gave_up >= 1 || Instant::now() >= deadline;
            if enough {
                self.push_op(
                    "release",
                    now.invoke_us,
                    now.complete_us,
                    Outcome::Ok,
                    json!({
                        "phase": RACE,
                        "tasks": tasks,
                        "arrived": arrived,
                        "abandoned": gave_up,
                    }),
                );
                break;
            }
            tokio::time::sleep(step).await;
        }
        self.control.set_faults(&[Fault::fail_next(503, tasks as u64).on(route)]).await?;
        let released = Instant::now();
        self.wait_ended(RACE, redelivery).await;
        // Every released call answered, so both deliveries of each task have their answer.
        self.quiesce(Duration::from_secs(5)).await?;

        // 3. A failed import retried by C concurrent re-imports.
        self.control.set_faults(&[Fault::fail_next(503, 1).on(route)]).await?;
        self.mark(RETRY, Value::Null);
        self.retry(FAIL_WAIT).await?;

        // The final read, once the race's losers have had their moment.
        tokio::time::sleep_until(released + LOSER_GRACE).await;
        for index in 0..self.imports.len() {
            if [OUTLIVE, RACE].contains(&self.imports[index].phase) {
                self.read(index, "final").await;
            }
        }
        Ok(())
    }

    /// Waits until the upstream has answered every call that reached the route, or `wait`.
    async fn quiesce(&mut self, wait: Duration) -> Result<(), TargetError> {
        let deadline = Instant::now() + wait;
        loop {
            let now = self.control.snapshot(self.target).await?;
            let (arrived, answered) = now.route(self.check.route);
            if answered >= arrived || Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(self.check.step_ms)).await;
        }
    }

    fn push_op(&mut self, f: &'static str, invoke_us: u64, complete_us: u64, outcome: Outcome, value: Value) {
        self.ops.push(Op {
            process: 0,
            instance: 0,
            action: f.into(),
            invoke_us,
            complete_us,
            status: None,
            outcome,
            value,
        });
    }

    fn mark(&mut self, phase: &'static str, faults: Value) {
        let now = self.target.clock.now_us();
        self.push_op("phase", now, now, Outcome::Ok, json!({ "phase": phase, "faults": faults }));
    }

    /// `per_instance` imports for every process of the stack, released together over its
    /// instances; how many were accepted.
    async fn submit(&mut self, phase: &'static str, per_instance: usize) -> usize {
        let count = per_instance * self.target.stack_processes();
        let first = self.imports.len();
        let answers = burst::release(count, |i| {
            let target = self.target.clone();
            let check = self.check.clone();
            let instance = i % target.instances();
            let token = self.user.tokens[instance].clone();
            let unique = format!("{}-{}-{phase}-{}", check.name, target.run, first + i);
            async move {
                let (answer, id) =
                    upstream::import(&target, instance, &token, &check.import, &unique, &check.id).await;
                (instance, unique, answer, id)
            }
        })
        .await;
        let mut accepted = 0;
        for (instance, unique, answer, id) in answers {
            let outcome = if id.is_some() { Outcome::Ok } else { Outcome::Unknown };
            accepted += usize::from(id.is_some());
            self.ops.push(answer.op(0, instance, "import", outcome, json!({ "phase": phase, "id": id })));
            self.imports.push(Import { phase, instance, id, unique, state: Value::Null });
        }
        accepted
    }

    /// Reads the status of import `index`; records it as `f` and whether it has ended.
    async fn read(&mut self, index: usize, f: &'static str) -> bool {
        let check = self.check;
        let import = &self.imports[index];
        let Some(id) = import.id.clone() else { return true };
        let instance = import.instance;
        let phase = import.phase;
        let answer = self
            .target
            .send(instance, Some(&self.user.tokens[instance]), &check.status, &[("id", &id)])
            .await;
        let state = answer.body.pointer(&check.state).cloned().unwrap_or(Value::Null);
        let ended = state.as_str().is_some_and(|s| s == check.completed || s == check.failed);
        let present = |pointer: &str| answer.body.pointer(pointer).is_some_and(|v| !v.is_null());
        let value = json!({
            "phase": phase,
            "id": id,
            "state": state,
            "ended": ended,
            "times_processed": answer.body.pointer(&check.times_processed).cloned().unwrap_or(Value::Null),
            "result": present(&check.result),
            "error": present(&check.error),
        });
        let outcome = match answer.status {
            Some(s) if (200..300).contains(&s) => Outcome::Ok,
            _ => Outcome::Unknown,
        };
        let op = answer.op(0, instance, f, outcome, value);
        self.imports[index].state = state;
        if f == "final" {
            self.ops.push(op);
        }
        ended
    }

    /// Reads the statuses of `phase`'s unfinished imports every step until all have ended or
    /// `wait` has passed; whether all ended.
    async fn wait_ended(&mut self, phase: &'static str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let step = Duration::from_millis(self.check.step_ms);
        let mut open: Vec<usize> =
            (0..self.imports.len()).filter(|&i| self.imports[i].phase == phase).collect();
        loop {
            let mut still = Vec::new();
            for index in open {
                if !self.read(index, "poll").await {
                    still.push(index);
                }
            }
            open = still;
            if open.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(step).await;
        }
    }

    /// Fails one import through the upstream, then re-imports it C times at once.
    async fn retry(&mut self, wait: Duration) -> Result<(), TargetError> {
        self.submit_one(RETRY).await;
        let index = self.imports.len() - 1;
        let failed = self.wait_ended(RETRY, wait).await
            && self.imports[index].state.as_str() == Some(self.check.failed.as_str());
        let now = self.target.clock.now_us();
        self.push_op("failed", now, now, Outcome::Ok, json!({ "phase": RETRY, "failed": failed }));
        self.control.clear_faults().await?;
        if !failed {
            return Ok(());
        }
        let concurrency = self.check.concurrency.unwrap_or(self.target.profile.defaults.concurrency);
        let Import { instance, unique, .. } = self.imports[index].clone();
        let token = self.user.tokens[instance].clone();
        let answers = burst::release(concurrency, |_| {
            let target = self.target.clone();
            let check = self.check.clone();
            let token = token.clone();
            let unique = unique.clone();
            async move { target.send(instance, Some(&token), &check.import, &[("unique", &unique)]).await }
        })
        .await;
        for answer in answers {
            let outcome = match answer.status {
                Some(s) if (200..300).contains(&s) => Outcome::Ok,
                Some(s) if (400..500).contains(&s) => Outcome::Fail,
                _ => Outcome::Unknown,
            };
            let claimed = answer.status.is_some_and(|s| self.check.should_process.matches(s, &answer.body));
            self.ops.push(answer.op(
                0,
                instance,
                "retry",
                outcome,
                json!({ "phase": RETRY, "should_process": claimed }),
            ));
        }
        // The claimed retry runs to its end before the check does.
        self.wait_ended(RETRY, wait).await;
        Ok(())
    }

    async fn submit_one(&mut self, phase: &'static str) {
        let first = self.imports.len();
        let unique = format!("{}-{}-{phase}-{first}", self.check.name, self.target.run);
        let (answer, id) = upstream::import(
            self.target,
            0,
            &self.user.tokens[0],
            &self.check.import,
            &unique,
            &self.check.id,
        )
        .await;
        let outcome = if id.is_some() { Outcome::Ok } else { Outcome::Unknown };
        self.ops.push(answer.op(0, 0, "import", outcome, json!({ "phase": phase, "id": id })));
        self.imports.push(Import { phase, instance: 0, id, unique, state: Value::Null });
    }
}

fn abandoned(snapshot: &upstream::Snapshot, route: fake_upstream::Route) -> u64 {
    snapshot.stats.routes.get(&route).map_or(0, |r| r.abandoned)
}

/// Judges a history of imports, their final statuses and the retry burst.
pub fn judge(name: &str, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let finals: Vec<&Op> = history.iter().filter(|op| op.action == "final").collect();
    let of = |f: &str, phase: &str| -> Vec<&Op> {
        history.iter().filter(|op| op.action == f && op.value["phase"] == phase).collect()
    };
    let imports = |phase: &str| of("import", phase).len();

    // A final status nothing could read says nothing of its task (`finals-read` below).
    let read: Vec<&Op> = finals.iter().copied().filter(|op| op.outcome == Outcome::Ok).collect();
    let lost: Vec<&Op> = read.iter().copied().filter(|op| op.value["ended"] != true).collect();
    if !lost.is_empty() {
        let states: Vec<String> =
            lost.iter().map(|op| format!("{} {}", op.value["id"], op.value["state"])).collect();
        verdict.violate(
            "lost-task",
            format!(
                "{} of {} imports never ended once the upstream answered (a task abandoned by its worker \
                 or lost by the queue was never delivered again): {}",
                lost.len(),
                finals.len(),
                states.join(", ")
            ),
            lost.iter().map(|op| (*op).clone()),
        );
    }
    let ended: Vec<&Op> = read.iter().copied().filter(|op| op.value["ended"] == true).collect();
    // No `times_processed` in a status read 2xx is an effect never applied (the stack writes
    // the count with the effect).
    let times = |op: &Op| op.value["times_processed"].as_u64().unwrap_or(0);
    let repeated: Vec<&Op> = ended.iter().copied().filter(|op| times(op) > 1).collect();
    if !repeated.is_empty() {
        let counts: Vec<String> =
            repeated.iter().map(|op| format!("{} {}", op.value["id"], times(op))).collect();
        verdict.violate(
            "effect-repeated",
            format!(
                "{} of {} ended imports (one attempt each) had their effect applied more than once: {}",
                repeated.len(),
                ended.len(),
                counts.join(", ")
            ),
            repeated.iter().map(|op| (*op).clone()),
        );
    }
    let missing: Vec<&Op> = ended.iter().copied().filter(|op| times(op) == 0).collect();
    if !missing.is_empty() {
        verdict.violate(
            "effect-missing",
            format!("{} of {} ended imports show no applied effect", missing.len(), ended.len()),
            missing.iter().map(|op| (*op).clone()),
        );
    }
    let conflicting: Vec<&Op> =
        ended.iter().copied().filter(|op| op.value["result"] == true && op.value["error"] == true).collect();
    if !conflicting.is_empty() {
        verdict.violate(
            "conflicting-outcomes",
            format!(
                "{} imports record both a result and an error for one attempt: two deliveries' opposite \
                 transitions both took effect",
                conflicting.len()
            ),
            conflicting.iter().map(|op| (*op).clone()),
        );
    }

    let retries = of("retry", RETRY);
    let failed = of("failed", RETRY).first().is_some_and(|op| op.value["failed"] == true);
    let claims: Vec<&Op> = retries.iter().copied().filter(|op| op.value["should_process"] == true).collect();
    let unknown = retries.iter().filter(|op| op.outcome == Outcome::Unknown).count();
    if claims.len() > 1 {
        verdict.violate(
            "duplicate-retry-claim",
            format!(
                "{} of {} concurrent re-imports of a failed video were told to process it",
                claims.len(),
                retries.len()
            ),
            claims.iter().map(|op| (*op).clone()),
        );
    }
    if failed && !retries.is_empty() && claims.is_empty() && unknown == 0 {
        verdict.violate(
            "no-retry-claim",
            format!("none of {} concurrent re-imports of a failed video claimed it", retries.len()),
            retries.iter().map(|op| (*op).clone()),
        );
    }

    // What each phase's imports ended as, and when each phase began (ms into the check).
    let ends = |phase: &str| {
        let mut by_state = serde_json::Map::new();
        for op in finals.iter().filter(|op| op.value["phase"] == phase) {
            let state = op.value["state"].as_str().unwrap_or("unknown").to_owned();
            let n = by_state.get(&state).and_then(Value::as_u64).unwrap_or(0);
            by_state.insert(state, json!(n + 1));
        }
        Value::Object(by_state)
    };
    let start = history.iter().map(|op| op.invoke_us).min().unwrap_or(0);
    let mut timeline = serde_json::Map::new();
    for op in history.iter().filter(|op| op.action == "phase") {
        let phase = op.value["phase"].as_str().unwrap_or("?").to_owned();
        timeline.insert(phase, json!((op.invoke_us - start) / 1_000));
    }
    let end = history.iter().map(|op| op.complete_us).max().unwrap_or(start);
    timeline.insert("end".to_owned(), json!((end - start) / 1_000));
    let release = of("release", RACE).first().map(|op| op.value.clone()).unwrap_or(Value::Null);
    let raced =
        release["tasks"].as_u64().is_some_and(|t| t > 0 && release["arrived"].as_u64() >= Some(2 * t));
    verdict.evidence = json!({
        "imports": { "outlive": imports(OUTLIVE), "race": imports(RACE), "retry": imports(RETRY) },
        "ended_as": { "outlive": ends(OUTLIVE), "race": ends(RACE) },
        "timeline_ms": timeline,
        "ended": ended.len(),
        "lost": lost.len(),
        "times_processed_above_1": repeated.len(),
        "conflicting_outcomes": conflicting.len(),
        "race": { "second_delivery_before_release": raced, "release": release },
        "retry": { "failed_first": failed, "re_imports": retries.len(), "claims": claims.len(), "unknown": unknown },
    });
    verdict.require(
        "imports-ended",
        !ended.is_empty(),
        format!("{} of {} imports ended", ended.len(), finals.len()),
        "imports must reach a final state (`completed`/`failed` at `state`) once the upstream answers",
    );
    verdict.require(
        "finals-read",
        read.len() == finals.len(),
        format!("{} of {} final statuses read", read.len(), finals.len()),
        "the status request must answer 2xx",
    );
    verdict.require(
        "race-exercised",
        raced,
        format!(
            "{} deliveries arrived for {} held tasks before their release",
            release["arrived"].as_u64().unwrap_or(0),
            release["tasks"].as_u64().unwrap_or(0)
        ),
        "a second delivery must arrive while the first is held: the stack's task visibility timeout must \
         lie below hold_ms (stampede serve --task-visibility 1500ms --task-time-limit 3s)",
    );
    verdict.require(
        "retry-exercised",
        failed && !retries.is_empty(),
        if failed {
            format!("{} concurrent re-imports of the failed video", retries.len())
        } else {
            "the import meant to fail did not fail, so no failed video was re-imported".to_owned()
        },
        "the upstream's failure must fail the import (its state `failed`)",
    );
    verdict.bound_unknown(
        history.iter().filter(|op| op.action == "import" || op.action == "retry"),
        MAX_UNKNOWN,
    );
    verdict.summarize(format!(
        "{} imports ended, each effect once; racing deliveries recorded one outcome; {} of {} re-imports \
         claimed the failed video",
        ended.len(),
        claims.len(),
        retries.len()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{OUTLIVE, RACE, RETRY, judge};
    use crate::history::{Op, Outcome};

    fn op(f: &'static str, outcome: Outcome, value: Value) -> Op {
        Op {
            process: 0,
            instance: 0,
            action: f.into(),
            invoke_us: 0,
            complete_us: 1,
            status: Some(200),
            outcome,
            value,
        }
    }

    fn final_read(phase: &str, id: &str, state: &str, times: u64, result: bool, error: bool) -> Op {
        let ended = state == "completed" || state == "failed";
        op(
            "final",
            Outcome::Ok,
            json!({ "phase": phase, "id": id, "state": state, "ended": ended,
                    "times_processed": if times == 0 { Value::Null } else { json!(times) },
                    "result": result, "error": error }),
        )
    }

    /// The history of the correct stack: two outliving imports, one race, one claimed retry.
    fn correct() -> Vec<Op> {
        let mut h = vec![
            op("import", Outcome::Ok, json!({ "phase": OUTLIVE, "id": "a" })),
            op("import", Outcome::Ok, json!({ "phase": OUTLIVE, "id": "b" })),
            op("import", Outcome::Ok, json!({ "phase": RACE, "id": "c" })),
            op("release", Outcome::Ok, json!({ "phase": RACE, "tasks": 1, "arrived": 2, "abandoned": 0 })),
            op("import", Outcome::Ok, json!({ "phase": RETRY, "id": "d" })),
            op("failed", Outcome::Ok, json!({ "phase": RETRY, "failed": true })),
        ];
        h.push(op("retry", Outcome::Ok, json!({ "phase": RETRY, "should_process": true })));
        for _ in 0..7 {
            h.push(op("retry", Outcome::Ok, json!({ "phase": RETRY, "should_process": false })));
        }
        h.push(final_read(OUTLIVE, "a", "completed", 1, true, false));
        h.push(final_read(OUTLIVE, "b", "completed", 1, true, false));
        h.push(final_read(RACE, "c", "failed", 1, false, true));
        h
    }

    fn rules(history: &[Op]) -> Vec<String> {
        judge("import-lifecycle", history).rules().into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn the_correct_history_passes() {
        let verdict = judge("import-lifecycle", &correct());
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["race"]["second_delivery_before_release"], true);
        assert_eq!(verdict.evidence["retry"]["claims"], 1);
        assert_eq!(verdict.evidence["ended_as"]["outlive"]["completed"], 2);
        assert_eq!(verdict.evidence["ended_as"]["race"]["failed"], 1);
        assert!(verdict.summary.contains("1 of 8 re-imports claimed"), "{}", verdict.summary);
    }

    #[test]
    fn mutant_ack_on_receive_loses_the_abandoned_task() {
        let mut h = correct();
        // Acknowledged on receipt: the worker abandoned the call at the time limit, and no
        // second delivery ever came.
        h[3] = op("release", Outcome::Ok, json!({ "phase": RACE, "tasks": 1, "arrived": 1, "abandoned": 1 }));
        let last = h.len() - 1;
        h[last] = final_read(RACE, "c", "processing", 0, false, false);
        let verdict = judge("import-lifecycle", &h);
        assert_eq!(verdict.rules(), ["lost-task"], "{:?}", verdict.violations);
        assert!(
            verdict.violations[0].detail.contains("1 of 3 imports never ended"),
            "{:?}",
            verdict.violations
        );
        assert_eq!(verdict.offending.len(), 1);
    }

    #[test]
    fn mutant_not_idempotent_applies_a_redelivered_effect_again() {
        let mut h = correct();
        let n = h.len();
        h[n - 3] = final_read(OUTLIVE, "a", "completed", 2, true, false);
        h[n - 2] = final_read(OUTLIVE, "b", "completed", 2, true, false);
        let verdict = judge("import-lifecycle", &h);
        assert_eq!(verdict.rules(), ["effect-repeated"], "{:?}", verdict.violations);
        assert!(verdict.violations[0].detail.contains("2 of 3 ended imports"), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["times_processed_above_1"], 2);
    }

    #[test]
    fn mutant_unconditional_update_records_both_outcomes_of_a_race() {
        let mut h = correct();
        let n = h.len();
        h[n - 1] = final_read(RACE, "c", "completed", 1, true, true);
        assert_eq!(rules(&h), ["conflicting-outcomes"]);
    }

    #[test]
    fn mutant_select_for_update_lets_every_retry_claim_the_failed_video() {
        let mut h = correct();
        for o in h.iter_mut().filter(|o| o.action == "retry") {
            o.value["should_process"] = json!(true);
        }
        let verdict = judge("import-lifecycle", &h);
        assert_eq!(verdict.rules(), ["duplicate-retry-claim"], "{:?}", verdict.violations);
        assert!(
            verdict.violations[0].detail.contains("8 of 8 concurrent re-imports"),
            "{:?}",
            verdict.violations
        );
        assert_eq!(verdict.offending.len(), 8);
    }

    #[test]
    fn a_retry_nobody_claims_and_a_missing_effect_are_violations() {
        let mut h = correct();
        for o in h.iter_mut().filter(|o| o.action == "retry") {
            o.value["should_process"] = json!(false);
        }
        let n = h.len();
        h[n - 3] = final_read(OUTLIVE, "a", "completed", 0, true, false);
        assert_eq!(rules(&h), ["effect-missing", "no-retry-claim"]);
    }

    #[test]
    fn unknown_answers_excuse_a_missing_claim_and_an_unfailed_import_skips_the_retry() {
        let mut h = correct();
        for o in h.iter_mut().filter(|o| o.action == "retry") {
            o.value["should_process"] = json!(false);
        }
        let first = h.iter().position(|o| o.action == "retry").unwrap();
        h[first].outcome = Outcome::Unknown;
        // No claim is excused by the unknown answer: no violation (one unknown of the imports is
        // within the bound only for a larger run; here it leaves the check inconclusive).
        let verdict = judge("c", &h);
        assert!(verdict.rules().is_empty(), "{:?}", verdict.violations);
        assert!(verdict.inconclusive(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["unknown-within-bound"]);
        let mut h = correct();
        h.retain(|o| o.action != "retry");
        h[5] = op("failed", Outcome::Ok, json!({ "phase": RETRY, "failed": false }));
        let verdict = judge("c", &h);
        assert!(verdict.inconclusive(), "{:?}", verdict.violations);
        assert_eq!(verdict.missing(), ["retry-exercised"]);
        assert!(verdict.summary.contains("did not fail"), "{}", verdict.summary);
    }

    #[test]
    fn a_race_that_never_happened_is_inconclusive() {
        let mut h = correct();
        for o in h.iter_mut().filter(|o| o.action == "release") {
            o.value["arrived"] = o.value["tasks"].clone();
        }
        let verdict = judge("c", &h);
        assert!(verdict.inconclusive(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["race-exercised"]);
        assert!(verdict.summary.contains("--task-visibility"), "{}", verdict.summary);
    }

    #[test]
    fn the_evidence_and_requirements_say_what_the_correct_run_did() {
        let verdict = judge("c", &correct());
        let e = &verdict.evidence;
        assert_eq!(e["timeline_ms"], json!({ "end": 0 }), "no phase markers in this history");
        assert_eq!((e["ended"].clone(), e["lost"].clone()), (json!(3), json!(0)));
        let observed: Vec<&str> = verdict.requirements.iter().map(|r| r.observed.as_str()).collect();
        assert!(observed.contains(&"every one of 12 operations had a recognised answer"), "{observed:?}");
    }

    #[test]
    fn the_race_counts_two_deliveries_a_task_and_the_retry_needs_re_imports() {
        let race = |tasks: u64, arrived: u64| {
            let mut h = correct();
            for o in h.iter_mut().filter(|o| o.action == "release") {
                o.value["tasks"] = json!(tasks);
                o.value["arrived"] = json!(arrived);
            }
            judge("c", &h).missing().contains(&"race-exercised")
        };
        assert!(race(0, 0), "no task held: no race");
        assert!(race(2, 3), "three deliveries for two tasks: one task raced at most");
        assert!(!race(2, 4));
        // The import failed, but nobody re-imported it.
        let mut h = correct();
        h.retain(|o| o.action != "retry");
        assert_eq!(judge("c", &h).missing(), ["retry-exercised"]);
    }
}

/// The import pipeline's workers (#10) and retry claims (#5), judged from the imports'
/// statuses while the fake upstream holds the calls: a task that outlives its lease has its
/// effect applied once; two deliveries of one task racing record one outcome; a task
/// abandoned at the hard time limit is redelivered and ends once the upstream answers; of C
/// concurrent re-imports of a failed video exactly one claims it. Needs the fake upstream's
/// control API, and the target's visibility timeout below its hard time limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportLifecycleCheck {
    pub name: String,
    /// An import that makes the stack call the upstream; `{unique}` is new for every video.
    pub import: RequestTemplate,
    /// JSON pointer to the imported video's id in the import's answer.
    pub id: String,
    /// How the answer that holds the claim to process the video is recognised.
    pub should_process: Recognise,
    /// Reads the import's status; `{id}` is the id read from the import.
    pub status: RequestTemplate,
    /// JSON pointer to the video's state in the status, and the states that end an import.
    pub state: String,
    #[serde(default = "crate::checkers::support::default_completed")]
    pub completed: String,
    #[serde(default = "crate::checkers::support::default_failed")]
    pub failed: String,
    /// JSON pointer to how many times the import's effect was applied.
    pub times_processed: String,
    /// JSON pointers to what a completion records (the upstream's metadata) and what a
    /// failure records (its reason): one attempt records one or the other.
    pub result: String,
    pub error: String,
    /// The fake upstream's route the imports call.
    pub route: fake_upstream::Route,
    /// The target's visibility timeout of a taken task, and its hard time limit per task.
    pub visibility_ms: u64,
    pub time_limit_ms: u64,
    /// Until how long after the `outlive` phase began the upstream holds its calls: between
    /// the two.
    pub hold_ms: u64,
    /// Imports per instance held together in the `outlive` phase: at least the target's
    /// workers per instance, so that none is idle when the leases expire.
    #[serde(default = "default_held")]
    pub held: usize,
    /// Concurrent re-imports of the failed video (default: the profile's concurrency).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// How often statuses and the upstream's counts are read.
    #[serde(default = "crate::checkers::support::default_step_ms")]
    pub step_ms: u64,
}

fn default_held() -> usize {
    2
}

impl Kind for ImportLifecycleCheck {
    const KIND: &'static str = KIND;
    const DRIVES_UPSTREAM: bool = true;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("import", &self.import), ("status", &self.status)]
    }

    fn recognisers(&self) -> Vec<(&'static str, &Recognise)> {
        vec![("should_process", &self.should_process)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("id", &self.id),
            ("state", &self.state),
            ("times_processed", &self.times_processed),
            ("result", &self.result),
            ("error", &self.error),
        ]
    }

    fn validate(&self) -> Result<(), FieldError> {
        at_least_one("held", self.held as u64)?;
        at_least_one("step_ms", self.step_ms)?;
        if !(self.visibility_ms < self.hold_ms && self.hold_ms < self.time_limit_ms) {
            return Err(FieldError::new(
                "hold_ms",
                format!(
                    "hold_ms {} must lie between visibility_ms {} and time_limit_ms {}: a held task \
                     must outlive its lease without reaching the hard time limit",
                    self.hold_ms, self.visibility_ms, self.time_limit_ms
                ),
            ));
        }
        Ok(())
    }

    /// The lease and the hard time limit the check's phases are timed against.
    fn needs(&self) -> Vec<Need> {
        vec![
            Need::TaskVisibility(Duration::from_millis(self.visibility_ms)),
            Need::TaskTimeLimit(Duration::from_millis(self.time_limit_ms)),
        ]
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
