//! The upstream API plan (#4), judged as a Jepsen counter: the plan is driven to its limit by
//! imports (a new URL each, spread over every instance), and what it granted is read twice —
//! from the stack's own counters (`usage`) and from the fake upstream's count of calls on the
//! video `route`.
//!
//! A plan that checks its counters and records a call in two steps over-admits only when
//! several calls are decided at the same instant as the limit is crossed, so the check makes
//! them be. With the fake upstream holding every call (an outage in `hang` mode):
//!
//! 1. `probe` — a held burst of [`UsagePlanCheck::probe`] imports: once the plan's count stops
//!    growing, it has granted one call to every import worker (W). Then the imports that bring
//!    the plan down to W + 1 calls left are queued behind them and the hold is lifted.
//! 2. `wave` — a second held burst: the W workers are granted W calls, one is left; the hold is
//!    lifted and every worker, released at once, asks for its next call together. One may be
//!    granted.
//!
//! Rules: no read of the counters above a limit (`over-limit`); no more calls reached the
//! upstream than the plan had left when the check began (`over-admission`); once quiescent,
//! each counter grew by exactly the calls the upstream saw (`usage-not-conserved`); the plan
//! ends exhausted, having refused no call it had room for (`false-denial`); once quiescent every
//! instance reads the same counters (`diverging-reads`). A period that ends
//! during the check (a counter read lower than before) leaves only `over-limit` to judge.
//!
//! The check spends the whole plan for the rest of its period, so the profile runs it after
//! every other check that needs the upstream, and refuses a plan with more than `max_calls`
//! left (a configuration error naming `--upstream-plan`) rather than run for minutes.

use std::time::Duration;

use client::{Target, TargetError, User};
use fake_upstream::{Fault, OutageMode};
use profile::Defaults;
use profile::template::RequestTemplate;
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::checkers::support::{self, Through, pointer_u64};
use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, at_least_one};
use crate::upstream::{self, Control, Ending};

pub const KIND: &str = "usage-plan";

/// How long the plan's count and the calls in flight must stay unchanged to count as settled:
/// above the stack's idle poll of its queue (the reference's backs off to 200 ms).
const SETTLE: Duration = Duration::from_millis(300);
/// The longest a hold may last; below the stack's upstream deadline.
const HOLD_LIMIT: Duration = Duration::from_secs(5);
/// How long imports may take to end once no more are submitted.
const END_WAIT: Duration = Duration::from_secs(30);
/// Imports submitted at once.
const BATCH: usize = 32;

/// One read of the plan's counters.
#[derive(Debug, Clone, PartialEq)]
struct Reading {
    used: Vec<u64>,
    limits: Vec<u64>,
}

impl Reading {
    fn left(&self) -> u64 {
        self.used.iter().zip(&self.limits).map(|(u, l)| l.saturating_sub(*u)).min().unwrap_or(0)
    }

    fn granted(&self) -> u64 {
        self.used.iter().copied().max().unwrap_or(0)
    }
}

struct Driver<'a> {
    target: &'a Target,
    check: &'a UsagePlanCheck,
    user: User,
    control: Control,
    history: Vec<Op>,
    imports: usize,
}

/// The plan's calls left and its counters (used, limits), read on the first instance by a
/// user of its own; none when the answer holds no counters.
pub(crate) async fn read_plan(
    target: &Target,
    check: &UsagePlanCheck,
) -> Result<Option<(u64, Vec<u64>, Vec<u64>)>, TargetError> {
    let user = target.user(&format!("{}-before", check.name)).await?;
    let answer = target.send(0, Some(&user.tokens[0]), &check.usage, &[]).await;
    let numbers = |pointers: &[String]| -> Option<Vec<u64>> {
        pointers.iter().map(|p| pointer_u64(&answer.body, p)).collect()
    };
    Ok(numbers(&check.used).zip(numbers(&check.limits)).map(|(used, limits)| {
        let reading = Reading { used, limits };
        (reading.left(), reading.used, reading.limits)
    }))
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &UsagePlanCheck) -> Result<Verdict, TargetError> {
    let control = Control::of(target, &check.name)?;
    let user = target.user(&check.name).await?;
    let mut d = Driver { target, check, user, control, history: Vec::new(), imports: 0 };
    let route = check.route;
    let start = d.quiesce().await?;
    let first = d.read("start").await?;
    let left = first.left();
    let configuration = |reason: String| TargetError::Configuration { check: check.name.clone(), reason };
    if left > check.max_calls {
        return Err(configuration(format!(
            "the upstream plan has {left} calls left (used {:?} of {:?}); this check spends all of \
             them and at most max_calls = {}: start the stack with a smaller plan (stampede serve \
             --upstream-plan PER_DAY/PER_HOUR) or raise max_calls",
            first.used, first.limits, check.max_calls
        )));
    }
    let needed = 2 * check.probe as u64 + 2;
    if left < needed {
        return Err(configuration(format!(
            "the upstream plan has {left} calls left (used {:?} of {:?}); this check needs at least \
             {needed} (twice probe, and two) to drive it to its limit: run it against a fresh plan \
             (a new period, or a larger --upstream-plan), and after every other check that needs \
             the upstream",
            first.used, first.limits
        )));
    }

    // Probe: every worker holds a granted call; the rest of the plan but W + 1 is queued.
    d.mark("probe");
    d.control.set_faults(&[Fault::outage(OutageMode::Hang).on(route)]).await?;
    d.submit(check.probe).await;
    let held = d.held().await;
    let workers = match &held {
        Ok(reading) => reading.granted().saturating_sub(first.granted()),
        Err(_) => 0,
    };
    if held.is_ok() && workers > 0 && workers < check.probe as u64 {
        let fill = left.saturating_sub(check.probe as u64 + workers + 1);
        d.submit(fill as usize).await;
    }
    d.control.clear_faults().await?;
    held?;
    if workers == 0 {
        return Err(TargetError::Setup {
            url: target.urls[0].clone(),
            reason: format!(
                "the plan granted no upstream call while {} imports were held: the imports never \
                 reached the upstream (read their statuses)",
                check.probe
            ),
        });
    }
    if workers >= check.probe as u64 {
        return Err(configuration(format!(
            "the held burst of {} imports was granted {workers} upstream calls at once: probe must \
             be more than the stack's import workers, and the imports must reach the upstream",
            check.probe
        )));
    }
    // Hundreds of imports: their end is read from the counts, not from each one's status.
    d.idle().await?;

    // Wave: W granted and held, one call left, then every worker asks at once.
    let before = d.read("wave").await?;
    d.control.set_faults(&[Fault::outage(OutageMode::Hang).on(route)]).await?;
    let wave = d.submit((before.left() + workers + 2) as usize).await;
    let held = d.held().await;
    d.control.clear_faults().await?;
    held?;
    d.ended(&wave).await;
    let end = d.quiesce().await?;
    d.read("end").await?;

    let (start_route, _) = start.route(route);
    let (end_route, answered) = end.route(route);
    d.history.push(Op {
        process: 0,
        instance: 0,
        action: "observe".into(),
        invoke_us: start.complete_us,
        complete_us: end.invoke_us,
        status: None,
        outcome: Outcome::Ok,
        value: json!({
            "route_requests": end_route.saturating_sub(start_route),
            "route_answered": answered,
            "in_flight": end.stats.in_flight,
            "workers": workers,
        }),
    });
    Ok(judge(&check.name, &d.history))
}

impl Driver<'_> {
    fn mark(&mut self, phase: &'static str) {
        let now = self.target.clock.now_us();
        self.history.push(Op {
            process: 0,
            instance: 0,
            action: "phase".into(),
            invoke_us: now,
            complete_us: now,
            status: None,
            outcome: Outcome::Ok,
            value: json!({ "phase": phase }),
        });
    }

    /// Reads the plan's counters on every instance; the first instance's reading.
    async fn read(&mut self, phase: &'static str) -> Result<Reading, TargetError> {
        let mut first = None;
        for instance in 0..self.target.instances() {
            let reading = self.read_on(instance, phase).await?;
            first.get_or_insert(reading);
        }
        Ok(first.expect("a target has an instance"))
    }

    async fn read_on(&mut self, instance: usize, phase: &'static str) -> Result<Reading, TargetError> {
        let check = self.check;
        let answer = self.target.send(instance, Some(&self.user.tokens[instance]), &check.usage, &[]).await;
        let numbers = |pointers: &[String]| -> Option<Vec<u64>> {
            pointers.iter().map(|p| pointer_u64(&answer.body, p)).collect()
        };
        let reading = numbers(&check.used).zip(numbers(&check.limits));
        let value = match &reading {
            Some((used, limits)) => json!({ "phase": phase, "used": used, "limits": limits }),
            None => json!({ "phase": phase, "body": answer.body, "error": answer.error }),
        };
        let outcome = if reading.is_some() { Outcome::Ok } else { Outcome::Unknown };
        self.history.push(answer.op(0, instance, "usage", outcome, value));
        match reading {
            Some((used, limits)) => Ok(Reading { used, limits }),
            None => Err(TargetError::Setup {
                url: self.target.urls[instance].clone(),
                reason: format!(
                    "the usage read-back answered {:?} without numbers at {:?} and {:?}: {}",
                    answer.status, check.used, check.limits, answer.body
                ),
            }),
        }
    }

    /// Submits `count` imports, [`BATCH`] at a time; `(instance, id)` of those accepted.
    async fn submit(&mut self, count: usize) -> Vec<(usize, String)> {
        let label = format!("{}-{}-{}", self.check.name, self.target.run, self.imports);
        self.imports += count;
        let ops = support::insert_rows(
            self.target,
            &self.user,
            &self.check.import,
            Some(&self.check.id),
            count,
            BATCH,
            Through::All,
            &label,
            0,
            "import",
        )
        .await;
        let accepted =
            ops.iter().filter_map(|op| op.value["id"].as_str().map(|id| (op.instance, id.to_owned())));
        let accepted = accepted.collect();
        self.history.extend(ops);
        accepted
    }

    /// Samples the plan's count and the calls in flight until neither has changed for
    /// [`SETTLE`]; the last reading.
    async fn held(&mut self) -> Result<Reading, TargetError> {
        let deadline = tokio::time::Instant::now() + HOLD_LIMIT;
        let mut last: Option<(Reading, u64)> = None;
        let mut since = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let reading = self.read_on(0, "held").await?;
            let in_flight = self.control.snapshot(self.target).await?.stats.in_flight;
            let now = tokio::time::Instant::now();
            let sample = (reading, in_flight);
            if last.as_ref() != Some(&sample) {
                since = now;
            }
            let settled = now.duration_since(since) >= SETTLE;
            if settled || now >= deadline {
                return Ok(sample.0);
            }
            last = Some(sample);
        }
    }

    /// Waits for `imports` to end, recording how each did.
    async fn ended(&mut self, imports: &[(usize, String)]) {
        let check = self.check;
        let ending = Ending {
            status: &check.status,
            state: &check.state,
            completed: &check.completed,
            failed: &check.failed,
        };
        let ops = upstream::await_ended(self.target, &self.user.tokens, &ending, imports, END_WAIT).await;
        self.history.extend(ops);
    }

    /// Samples the plan's count and the upstream's until neither has changed for [`SETTLE`]
    /// with nothing in flight: the queued imports have been processed.
    async fn idle(&mut self) -> Result<(), TargetError> {
        let deadline = tokio::time::Instant::now() + END_WAIT;
        let mut last = None;
        let mut since = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let reading = self.read_on(0, "idle").await?;
            let stats = self.control.snapshot(self.target).await?.stats;
            let now = tokio::time::Instant::now();
            let sample = Some((reading, stats.requests));
            if sample != last || stats.in_flight > 0 {
                since = now;
            }
            if now.duration_since(since) >= SETTLE || now >= deadline {
                return Ok(());
            }
            last = sample;
        }
    }

    /// Waits until nothing is in flight at the upstream and its count has settled.
    async fn quiesce(&self) -> Result<upstream::Snapshot, TargetError> {
        let (snapshot, _) = self
            .control
            .plateau(self.target, SETTLE, HOLD_LIMIT, |s| s.requests, |s| s.in_flight == 0)
            .await?;
        Ok(snapshot)
    }
}

fn numbers(value: &Value) -> Vec<u64> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default()
}

/// Judges one run's reads of the plan and the upstream's count.
pub fn judge(name: &str, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let reads: Vec<&Op> =
        history.iter().filter(|op| op.action == "usage" && op.outcome == Outcome::Ok).collect();
    // The first instance's reads: every other instance is read only at the start and the end.
    let first_instance: Vec<&Op> = reads.iter().copied().filter(|op| op.instance == 0).collect();
    let (Some(observed), Some(first), Some(last)) =
        (history.iter().find(|op| op.action == "observe"), first_instance.first(), first_instance.last())
    else {
        verdict.require(
            "observed",
            false,
            "the plan's counters or the upstream's count were not read",
            "`usage` must answer 2xx with the counters at `used` and `limits`; the fake upstream's control API must answer",
        );
        return verdict.summarize("never");
    };
    let limits = numbers(&first.value["limits"]);
    let (start, end) = (numbers(&first.value["used"]), numbers(&last.value["used"]));
    let left = start.iter().zip(&limits).map(|(u, l)| l.saturating_sub(*u)).min().unwrap_or(0);
    let calls = observed.value["route_requests"].as_u64().unwrap_or(0);

    let over: Vec<Op> = reads
        .iter()
        .filter(|op| numbers(&op.value["used"]).iter().zip(numbers(&op.value["limits"])).any(|(u, l)| *u > l))
        .map(|op| (*op).clone())
        .collect();
    if let Some(worst) = over.iter().max_by_key(|op| numbers(&op.value["used"]).into_iter().max()) {
        verdict.violate(
            "over-limit",
            format!(
                "{} reads of the plan's counters were above its limits, up to {:?} of {:?}",
                over.len(),
                numbers(&worst.value["used"]),
                numbers(&worst.value["limits"])
            ),
            over.clone(),
        );
    }
    // Once quiescent, every instance reads the same counters.
    let ends: Vec<&Op> = reads.iter().copied().filter(|op| op.value["phase"] == "end").collect();
    if ends.iter().any(|op| op.value["used"] != ends[0].value["used"]) {
        verdict.violate(
            "diverging-reads",
            format!(
                "once quiescent the instances read the plan's counters as {}",
                ends.iter().map(|op| op.value["used"].to_string()).collect::<Vec<_>>().join(", ")
            ),
            ends.iter().map(|op| (*op).clone()),
        );
    }
    // A counter read lower than an earlier read: its period ended during the check.
    let rolled = first_instance.windows(2).any(|pair| {
        let (a, b) = (numbers(&pair[0].value["used"]), numbers(&pair[1].value["used"]));
        a.iter().zip(&b).any(|(a, b)| b < a)
    });
    let submitted =
        history.iter().filter(|op| op.action == "import" && op.outcome == Outcome::Ok).count() as u64;
    let unended: Vec<Op> = history
        .iter()
        .filter(|op| op.action == "status" && op.outcome != Outcome::Unknown && op.value["ended"] != true)
        .cloned()
        .collect();
    if !rolled {
        if calls > left {
            verdict.violate(
                "over-admission",
                format!(
                    "the upstream saw {calls} calls on its video route, and the plan had {left} left \
                     (used {start:?} of {limits:?})"
                ),
                [observed.clone()],
            );
        }
        let grew: Vec<u64> = start.iter().zip(&end).map(|(s, e)| e.saturating_sub(*s)).collect();
        if unended.is_empty() && grew.iter().any(|g| *g != calls) {
            verdict.violate(
                "usage-not-conserved",
                format!(
                    "the plan's counters grew by {grew:?} once quiescent, and the upstream saw {calls} calls"
                ),
                [(*first).clone(), (*last).clone(), observed.clone()],
            );
        }
        let end_left = end.iter().zip(&limits).map(|(u, l)| l.saturating_sub(*u)).min().unwrap_or(0);
        if unended.is_empty() && submitted > left && end_left > 0 && calls < left {
            verdict.violate(
                "false-denial",
                format!(
                    "{submitted} imports, and the plan ended with {end_left} of its {left} calls unspent \
                     ({calls} reached the upstream)"
                ),
                [(*last).clone(), observed.clone()],
            );
        }
    }
    if !unended.is_empty() {
        verdict.violate(
            "imports-unfinished",
            format!("{} of {submitted} imports had not ended when the check stopped waiting", unended.len()),
            unended,
        );
    }
    verdict.require(
        "plan-left",
        left > 0,
        format!("the plan had {left} calls left at the start (used {start:?} of {limits:?})"),
        "the plan is spent for its period: restart the stack, or run the check once its period has ended",
    );
    verdict.require(
        "limit-crossed",
        submitted > left,
        format!("{submitted} imports against {left} calls left"),
        "submit more imports than the plan has left (max_calls, probe)",
    );
    verdict.require(
        "period-intact",
        !rolled,
        if rolled { "a counter's period ended during the check" } else { "no period ended during the check" },
        "run the check away from the plan's period boundaries (the hour's turn)",
    );
    verdict.bound_unknown(history.iter().filter(|op| op.action == "import"), MAX_UNKNOWN);
    verdict.evidence = json!({
        "limits": limits,
        "used_at_start": start,
        "used_at_end": end,
        "left_at_start": left,
        "upstream_calls": calls,
        "imports": submitted,
        "workers": observed.value["workers"],
        "reads": reads.len(),
        "reads_over_limit": over.len(),
        "period_ended": rolled,
    });
    verdict.summarize(
    format!(
        "{calls} calls granted of {left} left, the plan exhausted at {end:?} of {limits:?}; counters conserved"
    )
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(f: &'static str, value: Value) -> Op {
        Op {
            process: 0,
            instance: 0,
            action: f.into(),
            invoke_us: 0,
            complete_us: 1_000,
            status: Some(200),
            outcome: Outcome::Ok,
            value,
        }
    }

    fn usage(day: u64, hour: u64) -> Op {
        op("usage", json!({ "phase": "held", "used": [day, hour], "limits": [300, 300] }))
    }

    /// A plan of 300 with 200 used by earlier checks; 120 imports, W = 8.
    fn history(reads: &[(u64, u64)], calls: u64) -> Vec<Op> {
        let mut ops: Vec<Op> = reads.iter().map(|(d, h)| usage(*d, *h)).collect();
        ops.extend((0..120).map(|i| op("import", json!({ "id": format!("v{i}") }))));
        ops.extend(
            (0..120)
                .map(|i| op("status", json!({ "id": format!("v{i}"), "state": "failed", "ended": true }))),
        );
        ops.push(op("observe", json!({ "route_requests": calls, "workers": 8 })));
        ops
    }

    #[test]
    fn a_plan_driven_to_its_limit_exactly_passes() {
        let verdict =
            judge("plan", &history(&[(200, 200), (208, 208), (291, 291), (299, 299), (300, 300)], 100));
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["left_at_start"], 100);
    }

    #[test]
    fn mutant_check_then_record_history_is_over_limit_and_over_admission() {
        // The workers released together all read 299 before any recorded its call.
        let verdict =
            judge("plan", &history(&[(200, 200), (208, 208), (291, 291), (299, 299), (306, 306)], 106));
        assert_eq!(verdict.rules(), ["over-limit", "over-admission"], "{:?}", verdict.violations);
    }

    #[test]
    fn counters_that_lose_or_invent_calls_are_not_conserved() {
        let verdict = judge("plan", &history(&[(200, 200), (300, 300)], 97));
        assert_eq!(verdict.rules(), ["usage-not-conserved"]);
    }

    #[test]
    fn a_plan_that_refuses_with_room_left_is_false_denial() {
        let verdict = judge("plan", &history(&[(200, 200), (290, 290)], 90));
        assert_eq!(verdict.rules(), ["false-denial"]);
    }

    #[test]
    fn an_hour_ending_mid_check_leaves_only_the_limits_to_judge() {
        let verdict = judge("plan", &history(&[(200, 200), (250, 250), (300, 50)], 100));
        assert!(verdict.rules().is_empty(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["period_ended"], true);
        assert_eq!(verdict.missing(), ["period-intact"], "the rest could not be judged");
        let verdict = judge("plan", &history(&[(200, 200), (250, 250), (301, 51)], 101));
        assert_eq!(verdict.rules(), ["over-limit"]);
    }

    #[test]
    fn instances_that_count_their_own_plan_diverge() {
        let mut ops = history(&[(200, 200), (300, 300)], 100);
        ops[1].value["phase"] = json!("end");
        let mut other = usage(40, 40);
        other.instance = 1;
        other.value["phase"] = json!("end");
        ops.push(other);
        assert_eq!(judge("plan", &ops).rules(), ["diverging-reads"]);
    }

    #[test]
    fn unfinished_imports_and_missing_reads() {
        let mut ops = history(&[(200, 200), (300, 300)], 100);
        ops[5].value["ended"] = json!(false);
        ops[5].action = "status".into();
        assert_eq!(judge("plan", &ops).rules(), ["imports-unfinished"]);
        let verdict = judge("plan", &[]);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["observed"]));
    }

    #[test]
    fn the_evidence_and_summary_say_what_was_seen() {
        let v = judge("plan", &history(&[(200, 200), (208, 208), (291, 291), (299, 299), (300, 300)], 100));
        assert_eq!(
            v.evidence,
            json!({ "imports": 120, "left_at_start": 100, "limits": [300, 300], "period_ended": false, "reads": 5,
                    "reads_over_limit": 0, "upstream_calls": 100, "used_at_end": [300, 300],
                    "used_at_start": [200, 200], "workers": 8 })
        );
        assert_eq!(
            v.summary,
            "100 calls granted of 100 left, the plan exhausted at [300, 300] of [300, 300]; counters conserved"
        );
        assert_eq!(
            v.requirements.iter().map(|r| r.observed.as_str()).collect::<Vec<_>>(),
            [
                "the plan had 100 calls left at the start (used [200, 200] of [300, 300])",
                "120 imports against 100 calls left",
                "no period ended during the check",
                "every one of 120 operations had a recognised answer"
            ]
        );
        // A counter read equal to an earlier one is no period ending.
        let v = judge("plan", &history(&[(200, 200), (200, 200), (300, 300)], 100));
        assert_eq!(v.evidence["period_ended"], false);
        // A plan spent before the check: nothing to cross.
        let v = judge("plan", &history(&[(300, 300), (300, 300)], 0));
        assert!(v.missing().contains(&"plan-left"), "{:?}", v.missing());
    }
}

/// The upstream API plan (#4), Jepsen counter-style: the plan driven to its limit by
/// concurrent imports, calls granted (as `usage` reads them and as the fake upstream counts
/// them on `route`) never above the limit, and the usage read back once quiescent equal to the
/// calls the upstream saw. It exhausts the plan for the rest of the period: it must come after
/// every other check that needs the upstream, and the plan's remainder must be at most
/// `max_calls` (a configuration error otherwise). Needs the fake upstream's control API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePlanCheck {
    pub name: String,
    /// An import that makes the stack call the upstream; `{unique}` is new for every import.
    pub import: RequestTemplate,
    /// JSON pointer to the import's id in its answer.
    pub id: String,
    /// Reads an import's processing status; `{id}`.
    pub status: RequestTemplate,
    /// JSON pointer to the processing state in the status.
    pub state: String,
    #[serde(default = "crate::checkers::support::default_completed")]
    pub completed: String,
    #[serde(default = "crate::checkers::support::default_failed")]
    pub failed: String,
    /// Reads the plan's counters.
    pub usage: RequestTemplate,
    /// JSON pointers, in `usage`'s answer, to the calls counted in each period (`/day`,
    /// `/hour`) and, in the same order, to each period's limit.
    pub used: Vec<String>,
    pub limits: Vec<String>,
    /// The fake upstream's route the imports call.
    pub route: fake_upstream::Route,
    /// The most calls the plan may have left when the check starts: the check spends them all.
    pub max_calls: u64,
    /// Imports of the first held burst, which measures how many calls the stack grants at once;
    /// more than its import workers.
    #[serde(default = "default_probe")]
    pub probe: usize,
}

fn default_probe() -> usize {
    48
}

impl Kind for UsagePlanCheck {
    const KIND: &'static str = KIND;
    const DRIVES_UPSTREAM: bool = true;
    const SPENDS_PLAN: bool = true;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("import", &self.import), ("status", &self.status), ("usage", &self.usage)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        let mut pointers = vec![("id", self.id.as_str()), ("state", self.state.as_str())];
        pointers.extend(self.used.iter().map(|u| ("used", u.as_str())));
        pointers.extend(self.limits.iter().map(|l| ("limits", l.as_str())));
        pointers
    }

    fn validate(&self) -> Result<(), FieldError> {
        at_least_one("max_calls", self.max_calls)?;
        if self.used.is_empty() || self.used.len() != self.limits.len() {
            return Err(FieldError::new(
                "limits",
                format!(
                    "used and limits must name the same number of periods, at least one ({} and {})",
                    self.used.len(),
                    self.limits.len()
                ),
            ));
        }
        at_least_one("probe", self.probe as u64)
    }

    /// Its held bursts, and the crossing's.
    fn upstream_calls(&self, _defaults: &Defaults) -> u64 {
        2 * self.probe as u64 + 50
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
