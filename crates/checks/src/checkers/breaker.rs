//! The upstream circuit breaker (#7), judged from what the fake upstream saw. One import is
//! submitted every step (a new URL each, spread over every instance) while the upstream is
//! made to fail through its control API, its counts for the route sampled every step and each
//! import's processing status read until it ends:
//!
//! 1. `closed` — a healthy upstream: imports complete;
//! 2. `trip` — an outage in `reset` mode (every call fails at once) until an import is refused
//!    by the open breaker;
//! 3. `probe` — every call held [`BreakerCheck::trial_hold_ms`] then answered 503, so a
//!    half-open trial stays in flight while imports keep coming;
//! 4. `recover` — faults cleared: imports complete again.
//!
//! In the `probe` phase every call that reaches the upstream must be a trial. Calls are grouped
//! into *episodes* (from a call's arrival until nothing is in flight): each episode must hold
//! exactly one call (`multiple-trials`), and the next must not arrive before a whole open
//! period has passed since the trial was answered, nor the first before one has passed since
//! the outage began (`call-while-open`). Times come from samples, so every bound is taken on
//! the side that can only excuse the target: a violation is reported only when certain.
//! Where the target exposes its metrics, every instance must see the breaker open once one
//! has (`state-not-shared`: a breaker per process), and the rejected calls' 99th percentile
//! must stay under [`BreakerCheck::max_rejection_ms`] (`slow-rejection`).

use std::time::Duration;

use client::{Target, TargetError, User};
use fake_upstream::{Fault, OutageMode};
use profile::Defaults;
use profile::prometheus;
use profile::template::RequestTemplate;
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::history::{Op, Outcome};
use crate::kind::{FieldError, Kind, Need, at_least_one};
use crate::upstream::{self, Control};

pub const KIND: &str = "breaker";

pub const CLOSED: &str = "closed";
pub const TRIP: &str = "trip";
pub const PROBE: &str = "probe";
pub const RECOVER: &str = "recover";

/// The longest the healthy stack may take to complete a first import (its first credential
/// refresh included).
const BASELINE_WAIT: Duration = Duration::from_secs(15);
/// The longest the failing upstream may take to open the breaker.
const TRIP_WAIT: Duration = Duration::from_secs(10);
/// How long imports may take to end once no more are submitted.
const SETTLE_WAIT: Duration = Duration::from_secs(5);
/// Imports that must complete in a row for the breaker to count as recovered.
const RECOVERED_IN_A_ROW: usize = 3;
/// Clock granularity between the breaker's millisecond clock and the samples.
const SLACK_US: u64 = 50_000;
/// The histogram of rejected calls' latency, and the breaker state gauge.
pub const REJECTION_HISTOGRAM: &str = "stampede_breaker_rejection_seconds";
pub const STATE_GAUGE: &str = "stampede_circuit_breaker_state";

/// What the judge needs of the check's settings.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub open_ms: u64,
    pub max_rejection_ms: f64,
}

/// How an import ended, as its status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Pending,
    Completed,
    /// Refused by the open breaker.
    Open,
    /// Refused by the half-open breaker, its trial in flight.
    HalfOpen,
    /// Failed otherwise (the upstream's answer, no credential, …).
    Failed,
    /// The import itself was not accepted.
    Refused,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Pending => "pending",
            Reason::Completed => "completed",
            Reason::Open => "open",
            Reason::HalfOpen => "half-open",
            Reason::Failed => "failed",
            Reason::Refused => "refused",
        }
    }
}

#[derive(Debug)]
struct Import {
    seq: usize,
    instance: usize,
    phase: &'static str,
    id: Option<String>,
    post_status: Option<u16>,
    invoke_us: u64,
    complete_us: u64,
    state: Value,
    error: Value,
    reason: Reason,
}

struct Driver<'a> {
    target: &'a Target,
    check: &'a BreakerCheck,
    user: User,
    control: Control,
    ops: Vec<Op>,
    imports: Vec<Import>,
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &BreakerCheck) -> Result<Verdict, TargetError> {
    let control = Control::of(target, &check.name)?;
    let rounds = check.rounds.unwrap_or(target.profile.defaults.rounds).max(1);
    let user = target.user(&check.name).await?;
    control.reset().await?;
    let mut d = Driver { target, check, user, control, ops: Vec::new(), imports: Vec::new() };
    let open = Duration::from_millis(check.open_ms);
    let hold = Duration::from_millis(check.trial_hold_ms);

    d.mark(CLOSED, Value::Null);
    d.drive(CLOSED, BASELINE_WAIT, |d| d.count(CLOSED, Reason::Completed) >= 1).await?;
    d.settle().await?;

    let route = check.route;
    d.mark(TRIP, json!([Fault::outage(OutageMode::Reset).on(route)]));
    d.control.set_faults(&[Fault::outage(OutageMode::Reset).on(route)]).await?;
    let opened = d.drive(TRIP, TRIP_WAIT, |d| d.count(TRIP, Reason::Open) >= 1).await?;
    if opened {
        d.scrape_states().await;
    }

    let probe = [Fault::latency(hold).on(route), Fault::fail_fraction(503, 1.0).on(route)];
    d.mark(PROBE, json!(probe));
    d.control.set_faults(&probe).await?;
    if opened {
        // `rounds` trials, and until one was in flight while other imports came (the half-open
        // state exercised), up to as many trials again: a slow machine may miss the first ones.
        let budget = 2 * rounds;
        let limit = (open + hold) * (budget as u32 + 1) + open + Duration::from_secs(3);
        let open_us = check.open_ms * 1_000;
        d.drive(PROBE, limit, |d| {
            let episodes = episodes(&d.ops);
            let ended: Vec<&Episode> = episodes.iter().filter(|e| e.ended).collect();
            let exercised = ended.iter().any(|e| {
                d.imports.iter().filter(|i| i.invoke_us >= e.start_lo && i.invoke_us <= e.end_hi).count() >= 2
            });
            (ended.len() >= budget || (ended.len() >= rounds && exercised))
                && ended.last().is_some_and(|last| d.target.clock.now_us() >= last.end_hi + open_us)
        })
        .await?;
    }

    d.mark(RECOVER, json!([]));
    d.control.clear_faults().await?;
    let limit = open + hold + Duration::from_secs(10);
    // What the judge asks: the last imports completed in a row (one refused half-open while
    // a trial was in flight breaks the row; any three completed would not be recovery).
    d.drive(RECOVER, limit, |d| d.completed_in_a_row(RECOVER) >= RECOVERED_IN_A_ROW).await?;
    d.settle().await?;
    d.scrape_rejections().await;

    let params = Params { open_ms: check.open_ms, max_rejection_ms: check.max_rejection_ms };
    Ok(judge(&check.name, params, &d.into_history()))
}

impl Driver<'_> {
    fn mark(&mut self, phase: &'static str, faults: Value) {
        let now = self.target.clock.now_us();
        self.ops.push(Op {
            process: 0,
            instance: 0,
            action: "phase".into(),
            invoke_us: now,
            complete_us: now,
            status: None,
            outcome: Outcome::Ok,
            value: json!({ "phase": phase, "faults": faults }),
        });
    }

    fn count(&self, phase: &str, reason: Reason) -> usize {
        self.imports.iter().filter(|i| i.phase == phase && i.reason == reason).count()
    }

    /// The `phase` imports that completed in a row at the end, those still pending aside.
    fn completed_in_a_row(&self, phase: &str) -> usize {
        self.imports
            .iter()
            .filter(|i| i.phase == phase)
            .rev()
            .skip_while(|i| i.reason == Reason::Pending)
            .take_while(|i| i.reason == Reason::Completed)
            .count()
    }

    /// One import every step (when `phase` submits), a sample of the upstream's counts and a
    /// read of every unfinished import's status, until `done` or `limit`; whether `done`.
    async fn drive(
        &mut self,
        phase: &'static str,
        limit: Duration,
        done: impl Fn(&Self) -> bool,
    ) -> Result<bool, TargetError> {
        let deadline = Instant::now() + limit;
        let step = Duration::from_millis(self.check.step_ms);
        let mut next = Instant::now();
        loop {
            self.submit(phase).await;
            self.sample(phase).await?;
            self.poll().await;
            if done(self) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            next += step;
            tokio::time::sleep_until(next.max(Instant::now())).await;
        }
    }

    /// Reads statuses, submitting nothing, until every import has ended or the wait is over.
    async fn settle(&mut self) -> Result<(), TargetError> {
        let deadline = Instant::now() + SETTLE_WAIT;
        while self.imports.iter().any(|i| i.reason == Reason::Pending) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(self.check.step_ms)).await;
            self.poll().await;
        }
        Ok(())
    }

    async fn submit(&mut self, phase: &'static str) {
        let seq = self.imports.len();
        let instance = seq % self.target.instances();
        let unique = format!("{}-{}-{seq}", self.check.name, self.target.run);
        let (answer, id) = upstream::import(
            self.target,
            instance,
            &self.user.tokens[instance],
            &self.check.import,
            &unique,
            &self.check.id,
        )
        .await;
        let reason = if id.is_some() { Reason::Pending } else { Reason::Refused };
        self.imports.push(Import {
            seq,
            instance,
            phase,
            id,
            post_status: answer.status,
            invoke_us: answer.invoke_us,
            complete_us: answer.complete_us,
            state: Value::Null,
            error: answer.error.map(Value::String).unwrap_or(Value::Null),
            reason,
        });
    }

    async fn sample(&mut self, phase: &'static str) -> Result<(), TargetError> {
        let snapshot = self.control.snapshot(self.target).await?;
        let (arrived, answered) = snapshot.route(self.check.route);
        self.ops.push(Op {
            process: 0,
            instance: 0,
            action: "upstream".into(),
            invoke_us: snapshot.invoke_us,
            complete_us: snapshot.complete_us,
            status: None,
            outcome: Outcome::Ok,
            value: json!({ "phase": phase, "arrived": arrived, "answered": answered }),
        });
        Ok(())
    }

    /// Reads the status of every unfinished import, all at once.
    async fn poll(&mut self) {
        let check = self.check;
        let reads = self.imports.iter().enumerate().filter(|(_, i)| i.reason == Reason::Pending).map(
            |(index, import)| {
                let target = self.target;
                let token = self.user.tokens[import.instance].clone();
                let id = import.id.clone().unwrap_or_default();
                let instance = import.instance;
                async move {
                    let answer = target.send(instance, Some(&token), &check.status, &[("id", &id)]).await;
                    (index, answer)
                }
            },
        );
        for (index, answer) in futures_util::future::join_all(reads).await {
            let state = answer.body.pointer(&check.state).cloned().unwrap_or(Value::Null);
            let error = answer.body.pointer(&check.error).cloned().unwrap_or(Value::Null);
            let reason = match state.as_str() {
                Some(s) if s == check.completed => Reason::Completed,
                Some(s) if s == check.failed => {
                    let text = error.as_str().unwrap_or("");
                    if text.contains(&check.open_reason) {
                        Reason::Open
                    } else if text.contains(&check.half_open_reason) {
                        Reason::HalfOpen
                    } else {
                        Reason::Failed
                    }
                }
                _ => Reason::Pending,
            };
            let import = &mut self.imports[index];
            import.complete_us = answer.complete_us;
            import.state = state;
            import.error = error;
            import.reason = reason;
        }
    }

    /// Every instance's breaker state, as its metrics tell.
    async fn scrape_states(&mut self) {
        let Some(path) = self.check.metrics.clone() else { return };
        for instance in 0..self.target.instances() {
            let invoke_us = self.target.clock.now_us();
            let text = self.target.metrics_text(instance, &path).await;
            let state = text.as_ref().ok().and_then(|t| prometheus::value(t, STATE_GAUGE, &[]));
            self.ops.push(Op {
                process: 0,
                instance,
                action: "breaker-state".into(),
                invoke_us,
                complete_us: self.target.clock.now_us(),
                status: None,
                outcome: if state.is_some() { Outcome::Ok } else { Outcome::Unknown },
                value: json!({ "state": state, "error": text.err() }),
            });
        }
    }

    /// Every instance's histogram of rejected calls' latency.
    async fn scrape_rejections(&mut self) {
        let Some(path) = self.check.metrics.clone() else { return };
        for instance in 0..self.target.instances() {
            let invoke_us = self.target.clock.now_us();
            let text = self.target.metrics_text(instance, &path).await;
            let buckets =
                text.as_ref().map(|t| prometheus::histogram(t, REJECTION_HISTOGRAM)).unwrap_or_default();
            self.ops.push(Op {
                process: 0,
                instance,
                action: "rejections".into(),
                invoke_us,
                complete_us: self.target.clock.now_us(),
                status: None,
                outcome: if buckets.is_empty() { Outcome::Unknown } else { Outcome::Ok },
                value: json!({ "buckets": buckets, "error": text.err() }),
            });
        }
    }

    fn into_history(self) -> Vec<Op> {
        let mut history = self.ops;
        history.extend(self.imports.into_iter().map(|i| Op {
            process: i.seq,
            instance: i.instance,
            action: "import".into(),
            invoke_us: i.invoke_us,
            complete_us: i.complete_us,
            status: i.post_status,
            outcome: match i.reason {
                Reason::Completed => Outcome::Ok,
                Reason::Open | Reason::HalfOpen | Reason::Failed => Outcome::Fail,
                Reason::Pending | Reason::Refused => Outcome::Unknown,
            },
            value: json!({
                "phase": i.phase,
                "id": i.id,
                "state": i.state,
                "error": i.error,
                "reason": i.reason.name(),
            }),
        }));
        history.sort_by_key(|op| op.invoke_us);
        history
    }
}

/// Calls that overlapped at the upstream in the probe phase, bounded by samples: the first
/// arrived after `start_lo` and by `start_hi`, the first answer came after `answer_lo`, and
/// nothing was in flight any more by `end_hi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    pub start_lo: u64,
    pub start_hi: u64,
    pub answer_lo: Option<u64>,
    pub end_hi: u64,
    pub arrivals: u64,
    pub ended: bool,
}

/// The probe phase's episodes, from its `upstream` samples (the last sample before the phase
/// is the baseline).
pub fn episodes(history: &[Op]) -> Vec<Episode> {
    let mut samples: Vec<&Op> = history.iter().filter(|op| op.action == "upstream").collect();
    samples.sort_by_key(|op| op.invoke_us);
    let first = samples.iter().position(|op| op.value["phase"] == PROBE);
    let Some(first) = first else { return Vec::new() };
    let base = first.checked_sub(1).unwrap_or(first);
    let count = |op: &Op, field: &str| op.value[field].as_u64().unwrap_or(0);
    let mut out = Vec::new();
    let mut current: Option<Episode> = None;
    let mut prev = samples[base];
    for &sample in samples[first..].iter().take_while(|op| op.value["phase"] == PROBE) {
        let (arrived, answered) = (count(sample, "arrived"), count(sample, "answered"));
        let (prev_arrived, prev_answered) = (count(prev, "arrived"), count(prev, "answered"));
        let new = arrived.saturating_sub(prev_arrived);
        let in_flight = arrived.saturating_sub(answered);
        if current.is_none() && (new > 0 || in_flight > 0) {
            current = Some(Episode {
                start_lo: prev.invoke_us,
                start_hi: sample.complete_us,
                answer_lo: None,
                end_hi: sample.complete_us,
                arrivals: 0,
                ended: false,
            });
        }
        if let Some(episode) = current.as_mut() {
            episode.arrivals += new;
            episode.end_hi = sample.complete_us;
            if answered > prev_answered && episode.answer_lo.is_none() {
                episode.answer_lo = Some(prev.invoke_us);
            }
            if in_flight == 0 {
                episode.ended = true;
                out.extend(current.take());
            }
        }
        prev = sample;
    }
    out.extend(current);
    out
}

/// The 99th percentile's upper bound, in seconds, of the summed histograms (`None` when no
/// call was rejected or the buckets do not bound it).
fn p99_bound(history: &[Op]) -> (u64, Option<f64>, Vec<(String, u64)>) {
    let mut total: Vec<(String, u64)> = Vec::new();
    for op in history.iter().filter(|op| op.action == "rejections") {
        for bucket in op.value["buckets"].as_array().into_iter().flatten() {
            let (Some(le), Some(n)) = (bucket[0].as_str(), bucket[1].as_u64()) else { continue };
            match total.iter_mut().find(|(l, _)| l == le) {
                Some((_, sum)) => *sum += n,
                None => total.push((le.to_owned(), n)),
            }
        }
    }
    let count = total.iter().find(|(le, _)| le == "+Inf").map_or(0, |(_, n)| *n);
    if count == 0 {
        return (0, None, total);
    }
    let needed = (count * 99).div_ceil(100);
    let bound = total
        .iter()
        .filter(|(_, n)| *n >= needed)
        .filter_map(|(le, _)| if le == "+Inf" { Some(f64::INFINITY) } else { le.parse::<f64>().ok() })
        .fold(None, |best: Option<f64>, le| Some(best.map_or(le, |b| b.min(le))));
    (count, bound, total)
}

/// Judges a history of the four phases.
pub fn judge(name: &str, params: Params, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let imports: Vec<&Op> = history.iter().filter(|op| op.action == "import").collect();
    let of = |phase: &str, reason: &str| -> Vec<&Op> {
        imports
            .iter()
            .copied()
            .filter(|op| op.value["phase"] == phase && op.value["reason"] == reason)
            .collect()
    };
    let marker = |phase: &str| history.iter().find(|op| op.action == "phase" && op.value["phase"] == phase);
    let open_us = params.open_ms * 1_000;

    let baseline = of(CLOSED, "completed");
    let closed = imports.iter().filter(|op| op.value["phase"] == CLOSED).count();
    verdict.require(
        "baseline",
        !baseline.is_empty(),
        format!("{} of {closed} imports completed with a healthy upstream", baseline.len()),
        "imports must complete while the upstream is healthy (is the stack's upstream plan spent? its credential \
         refreshed?)",
    );

    let refused_open: usize = [TRIP, PROBE, RECOVER].iter().map(|p| of(p, "open").len()).sum();
    let refused_half_open: usize = [PROBE, RECOVER].iter().map(|p| of(p, "half-open").len()).sum();
    let opened = refused_open > 0;
    if !baseline.is_empty() && !opened {
        let failed: Vec<Op> = imports
            .iter()
            .filter(|op| op.value["phase"] == TRIP || op.value["phase"] == PROBE)
            .map(|op| (*op).clone())
            .collect();
        verdict.violate(
            "never-opens",
            format!(
                "{} imports met a failing upstream and none was refused by an open breaker",
                failed.len()
            ),
            failed,
        );
    }

    let episodes = if opened { episodes(history) } else { Vec::new() };
    let imports_during = |e: &Episode| {
        imports.iter().filter(|op| op.invoke_us >= e.start_lo && op.invoke_us <= e.end_hi).count()
    };
    if opened {
        // (a) Nothing reaches the upstream within an open period: not before a whole one has
        // passed since the outage began, nor since a trial was answered.
        let since_trip = marker(TRIP).map(|op| op.invoke_us);
        let mut reopened_at = since_trip;
        let mut early: Vec<(u64, u64)> = Vec::new();
        for episode in &episodes {
            if let Some(since) = reopened_at {
                let gap = episode.start_hi.saturating_sub(since);
                if gap + SLACK_US < open_us {
                    early.push((since, episode.start_hi));
                }
            }
            reopened_at = episode.answer_lo;
        }
        if let Some(shortest) = early.iter().map(|(since, at)| at - since).min() {
            verdict.violate(
                "call-while-open",
                format!(
                    "{} times a call reached the upstream within the {} ms open period, once at most {} ms after it began",
                    early.len(),
                    params.open_ms,
                    shortest / 1_000
                ),
                early.iter().flat_map(|(since, at)| samples_between(history, *since, *at)),
            );
        }
        // (b) One trial at a time.
        let crowded: Vec<&Episode> = episodes.iter().filter(|e| e.arrivals > 1).collect();
        if let Some(most) = crowded.iter().max_by_key(|e| e.arrivals) {
            verdict.violate(
                "multiple-trials",
                format!(
                    "in {} half-open periods several calls reached the upstream, up to {} while {} imports were submitted; expected one trial",
                    crowded.len(),
                    most.arrivals,
                    imports_during(most)
                ),
                samples_between(history, most.start_lo, most.end_hi),
            );
        }
        if episodes.is_empty() {
            verdict.violate(
                "no-trial",
                "the breaker never let a trial through while imports kept coming",
                [],
            );
        }
        let busiest = episodes.iter().map(imports_during).max().unwrap_or(0);
        verdict.require(
            "half-open-exercised",
            busiest >= 2,
            format!("{} trials; at most {busiest} imports submitted while one was in flight", episodes.len()),
            "imports must keep coming while a trial is held: raise trial_hold_ms or lower step_ms",
        );
    }

    // (c) Healthy again, imports complete.
    let recover: Vec<&Op> = imports.iter().copied().filter(|op| op.value["phase"] == RECOVER).collect();
    let last: Vec<&Op> = recover.iter().rev().take(RECOVERED_IN_A_ROW).copied().collect();
    let recovered = !last.is_empty() && last.iter().all(|op| op.value["reason"] == "completed");
    if !baseline.is_empty() && !recovered {
        verdict.violate(
            "no-recovery",
            format!("after the upstream recovered, the last {} imports did not all complete", last.len()),
            last.iter().map(|op| (*op).clone()),
        );
    }

    // Where exposed: every instance sees the open breaker, and rejections are fast.
    let states: Vec<&Op> = history.iter().filter(|op| op.action == "breaker-state").collect();
    let closed_instances: Vec<Op> =
        states.iter().filter(|op| op.value["state"].as_f64() == Some(0.0)).map(|op| (*op).clone()).collect();
    if !closed_instances.is_empty() {
        verdict.violate(
            "state-not-shared",
            format!(
                "{} of {} instances report a closed breaker while another one's refuses calls as open",
                closed_instances.len(),
                states.len()
            ),
            closed_instances,
        );
    }
    let (rejections, p99, buckets) = p99_bound(history);
    if let Some(p99) = p99.filter(|p| *p * 1_000.0 > params.max_rejection_ms) {
        verdict.violate(
            "slow-rejection",
            format!(
                "the 99th percentile of {rejections} rejected calls is up to {} ms, above {} ms",
                p99 * 1_000.0,
                params.max_rejection_ms
            ),
            [],
        );
    }

    let phase_arrivals = |phase: &str| {
        let samples: Vec<&Op> =
            history.iter().filter(|op| op.action == "upstream" && op.value["phase"] == phase).collect();
        match (samples.first(), samples.last()) {
            (Some(_), Some(last)) => last.value["arrived"].as_u64().unwrap_or(0),
            _ => 0,
        }
    };
    verdict.evidence = json!({
        "imports": imports.len(),
        "completed_before_faults": baseline.len(),
        "refused_open": refused_open,
        "refused_half_open": refused_half_open,
        "upstream_calls_by_end_of": {
            "closed": phase_arrivals(CLOSED),
            "trip": phase_arrivals(TRIP),
            "probe": phase_arrivals(PROBE),
            "recover": phase_arrivals(RECOVER),
        },
        "episodes": episodes.iter().map(|e| json!({
            "start_ms": e.start_hi / 1_000,
            "end_ms": e.end_hi / 1_000,
            "calls": e.arrivals,
            "imports_submitted": imports_during(e),
            "ended": e.ended,
        })).collect::<Vec<_>>(),
        "recovered": recovered,
        "breaker_states": states.iter().map(|op| op.value["state"].clone()).collect::<Vec<_>>(),
        "rejections_measured": rejections,
        "rejection_p99_ms_at_most": p99.map(|p| p * 1_000.0),
        "rejection_buckets": buckets,
    });
    // Only what was submitted: the samples of the upstream's counts are the harness's own.
    verdict.bound_unknown(imports.iter().copied(), MAX_UNKNOWN);
    let latency = match p99 {
        Some(p) => format!("; p99 rejection <= {} ms", p * 1_000.0),
        None => String::new(),
    };
    verdict.summarize(format!(
        "opened; {refused_open} calls refused open, {refused_half_open} half-open, none reached the upstream; {} trials one at a time; recovered{latency}",
        episodes.len()
    ))
}

/// The upstream samples taken between `from` and `to`, to show a violation.
fn samples_between(history: &[Op], from: u64, to: u64) -> Vec<Op> {
    history
        .iter()
        .filter(|op| op.action == "upstream" && op.complete_us >= from && op.invoke_us <= to)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PARAMS: Params = Params { open_ms: 2_000, max_rejection_ms: 5.0 };

    /// A synthetic history, times in ms.
    #[derive(Default)]
    struct History {
        ops: Vec<Op>,
        seq: usize,
    }

    impl History {
        fn op(f: &'static str, at_ms: u64, value: serde_json::Value) -> Op {
            Op {
                process: 0,
                instance: 0,
                action: f.into(),
                invoke_us: at_ms * 1_000,
                complete_us: at_ms * 1_000 + 500,
                status: None,
                outcome: Outcome::Ok,
                value,
            }
        }

        fn phase(mut self, at_ms: u64, phase: &str) -> Self {
            self.ops.push(Self::op("phase", at_ms, json!({ "phase": phase })));
            self
        }

        fn import(mut self, at_ms: u64, phase: &str, reason: &str) -> Self {
            let mut op = Self::op("import", at_ms, json!({ "phase": phase, "reason": reason }));
            op.process = self.seq;
            self.seq += 1;
            self.ops.push(op);
            self
        }

        /// Imports every 50 ms over `[from, to)`.
        fn imports(mut self, from: u64, to: u64, phase: &str, reason: &str) -> Self {
            let mut at = from;
            while at < to {
                self = self.import(at, phase, reason);
                at += 50;
            }
            self
        }

        fn sample(mut self, at_ms: u64, phase: &str, arrived: u64, answered: u64) -> Self {
            self.ops.push(Self::op(
                "upstream",
                at_ms,
                json!({ "phase": phase, "arrived": arrived, "answered": answered }),
            ));
            self
        }

        /// Samples every 50 ms over `[from, to)` with counts from `counts(t)`.
        fn samples(mut self, from: u64, to: u64, phase: &str, counts: impl Fn(u64) -> (u64, u64)) -> Self {
            let mut at = from;
            while at < to {
                let (arrived, answered) = counts(at);
                self = self.sample(at, phase, arrived, answered);
                at += 50;
            }
            self
        }

        fn metric(mut self, f: &'static str, value: serde_json::Value) -> Self {
            self.ops.push(Self::op(f, 20_000, value));
            self
        }

        fn build(self) -> Vec<Op> {
            self.ops
        }
    }

    /// Calls arriving at `arrivals` (ms), each answered `hold` ms later: the counts at `t`.
    fn calls(arrivals: &[u64], hold: u64, base: u64) -> impl Fn(u64) -> (u64, u64) + '_ {
        move |t| {
            let arrived = arrivals.iter().filter(|a| **a <= t).count() as u64;
            let answered = arrivals.iter().filter(|a| **a + hold <= t).count() as u64;
            (base + arrived, base + answered)
        }
    }

    /// The correct breaker: opened at 1 100 ms after 5 calls; trials at 3 150 and 6 200 ms,
    /// each held 1 s; faults cleared at 8 300 ms and the next trial, at 9 250 ms, succeeds.
    fn correct() -> History {
        History::default()
            .phase(0, CLOSED)
            .imports(0, 500, CLOSED, "completed")
            .samples(0, 500, CLOSED, |t| (t / 50 + 1, t / 50 + 1))
            .phase(900, TRIP)
            .imports(900, 1_100, TRIP, "failed")
            .imports(1_100, 1_200, TRIP, "open")
            .samples(900, 1_200, TRIP, |t| {
                (10 + ((t - 900) / 50 + 1).min(5), 10 + ((t - 900) / 50 + 1).min(5))
            })
            .phase(1_200, PROBE)
            .imports(1_200, 3_150, PROBE, "open")
            .import(3_150, PROBE, "failed")
            .imports(3_200, 4_150, PROBE, "half-open")
            .imports(4_150, 6_200, PROBE, "open")
            .import(6_200, PROBE, "failed")
            .imports(6_250, 7_200, PROBE, "half-open")
            .imports(7_200, 8_300, PROBE, "open")
            .samples(1_200, 8_300, PROBE, |t| calls(&[3_160, 6_210], 1_000, 15)(t))
            .phase(8_300, RECOVER)
            .imports(8_300, 9_250, RECOVER, "open")
            .imports(9_250, 9_450, RECOVER, "completed")
            .samples(8_300, 9_450, RECOVER, |t| calls(&[9_260, 9_310, 9_360, 9_410], 0, 17)(t))
    }

    fn rules(history: &[Op]) -> Vec<String> {
        judge("breaker", PARAMS, history).rules().into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn correct_breaker_passes() {
        let history = correct().build();
        let verdict = judge("breaker", PARAMS, &history);
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["episodes"].as_array().unwrap().len(), 2);
        assert!(verdict.evidence["refused_half_open"].as_u64().unwrap() > 10);
    }

    #[test]
    fn episodes_bound_the_calls() {
        let history = correct().build();
        let episodes = episodes(&history);
        assert_eq!(episodes.len(), 2);
        assert!(episodes.iter().all(|e| e.arrivals == 1 && e.ended));
        assert!(episodes[0].start_lo <= 3_160_000 && episodes[0].start_hi >= 3_160_000);
        assert!(episodes[0].answer_lo.unwrap() <= 4_160_000 && episodes[0].end_hi >= 4_160_000);
    }

    #[test]
    fn half_open_admitting_every_caller_is_multiple_trials() {
        // The mutant: once the open period is over, every import in the next second reaches
        // the upstream.
        let arrivals: Vec<u64> = (0..20).map(|i| 3_160 + i * 50).collect();
        let history = correct()
            .build()
            .into_iter()
            .filter(|op| !(op.action == "upstream" && op.value["phase"] == PROBE))
            .collect::<Vec<_>>();
        let mut h = History { ops: history, seq: 1_000 };
        h = h.samples(1_200, 8_300, PROBE, |t| calls(&arrivals, 1_000, 15)(t));
        assert_eq!(rules(&h.build()), ["multiple-trials"]);
    }

    #[test]
    fn a_call_within_the_open_period_is_call_while_open() {
        let history: Vec<Op> = correct()
            .build()
            .into_iter()
            .filter(|op| !(op.action == "upstream" && op.value["phase"] == PROBE))
            .collect();
        // A call 300 ms after the probe began: the breaker opened at most 1.1 s before.
        let h = History { ops: history, seq: 1_000 }
            .samples(1_200, 8_300, PROBE, |t| calls(&[1_500, 3_160, 6_210], 1_000, 15)(t));
        assert_eq!(rules(&h.build()), ["call-while-open"]);
        // A trial 1 s after the previous one was answered.
        let history: Vec<Op> = correct()
            .build()
            .into_iter()
            .filter(|op| !(op.action == "upstream" && op.value["phase"] == PROBE))
            .collect();
        let h = History { ops: history, seq: 1_000 }
            .samples(1_200, 8_300, PROBE, |t| calls(&[3_160, 5_200], 1_000, 15)(t));
        assert_eq!(rules(&h.build()), ["call-while-open"]);
    }

    #[test]
    fn a_breaker_that_never_opens() {
        let history: Vec<Op> = correct()
            .build()
            .into_iter()
            .map(|mut op| {
                if op.action == "import" && op.value["reason"] != "completed" {
                    op.value["reason"] = json!("failed");
                }
                op
            })
            .collect();
        assert_eq!(rules(&history), ["never-opens"]);
    }

    #[test]
    fn no_trial_and_no_recovery() {
        let history: Vec<Op> = correct()
            .build()
            .into_iter()
            .filter(|op| {
                !(op.action == "upstream" && (op.value["phase"] == PROBE || op.value["phase"] == RECOVER))
            })
            .map(|mut op| {
                if op.action == "import" && op.value["phase"] == RECOVER {
                    op.value["reason"] = json!("open");
                }
                op
            })
            .collect();
        let h = History { ops: history, seq: 1_000 }.samples(1_200, 9_450, PROBE, |_| (15, 15));
        assert_eq!(rules(&h.build()), ["no-trial", "no-recovery"]);
    }

    #[test]
    fn a_trial_without_other_imports_is_not_exercised() {
        let history: Vec<Op> = correct()
            .build()
            .into_iter()
            .filter(|op| !(op.action == "import" && op.value["reason"] == "half-open"))
            .filter(|op| !(op.action == "import" && op.value["phase"] == PROBE && op.invoke_us > 3_100_000))
            .collect();
        let verdict = judge("breaker", PARAMS, &history);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["half-open-exercised"]);
    }

    #[test]
    fn no_baseline_is_reported_alone() {
        let history: Vec<Op> = correct().build().into_iter().filter(|op| op.action != "import").collect();
        let verdict = judge("breaker", PARAMS, &history);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert!(verdict.missing().contains(&"baseline"), "{:?}", verdict.missing());
    }

    #[test]
    fn metrics_show_a_breaker_per_process_and_slow_rejections() {
        let h = correct()
            .metric("breaker-state", json!({ "state": 1.0 }))
            .metric("breaker-state", json!({ "state": 0.0 }))
            .metric(
                "rejections",
                json!({ "buckets": [["0.001", 90], ["0.005", 97], ["0.01", 100], ["+Inf", 100]] }),
            );
        assert_eq!(rules(&h.build()), ["state-not-shared", "slow-rejection"]);
        let h = correct()
            .metric("breaker-state", json!({ "state": 1.0 }))
            .metric("rejections", json!({ "buckets": [["0.001", 60], ["0.005", 70], ["+Inf", 70]] }))
            .metric("rejections", json!({ "buckets": [["0.001", 29], ["0.005", 30], ["+Inf", 30]] }));
        let history = h.build();
        let verdict = judge("breaker", PARAMS, &history);
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["rejections_measured"], 100);
        let p99 = verdict.evidence["rejection_p99_ms_at_most"].as_f64().unwrap();
        assert!((p99 - 5.0).abs() < 1e-9, "{p99}");
    }

    #[test]
    fn the_evidence_counts_what_the_correct_breaker_did() {
        let verdict = judge("breaker", PARAMS, &correct().build());
        let e = &verdict.evidence;
        assert_eq!((e["imports"].clone(), e["completed_before_faults"].clone()), (json!(181), json!(10)));
        assert_eq!((e["refused_open"].clone(), e["refused_half_open"].clone()), (json!(123), json!(38)));
        assert_eq!(
            e["upstream_calls_by_end_of"],
            json!({ "closed": 10, "trip": 15, "probe": 17, "recover": 20 })
        );
        let submitted: Vec<&Value> =
            e["episodes"].as_array().unwrap().iter().map(|e| &e["imports_submitted"]).collect();
        assert_eq!(submitted, [&json!(22), &json!(22)]);
        assert_eq!(verdict.requirements[0].observed, "10 of 10 imports completed with a healthy upstream");
    }
}

/// The upstream circuit breaker (#7), judged from the fake upstream's counts: with the
/// upstream failing, the breaker opens and calls fail fast without reaching it; after each
/// open period exactly one trial reaches it while imports keep coming; once the upstream is
/// healthy again imports complete. Needs the fake upstream's control API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerCheck {
    pub name: String,
    /// An import that makes the stack call the upstream; `{unique}` is new for every import.
    pub import: RequestTemplate,
    /// JSON pointer to the imported video's id in the import's answer.
    pub id: String,
    /// Reads the import's processing status; `{id}` is the id read from the import.
    pub status: RequestTemplate,
    /// JSON pointers to the processing state and the failure reason in the status.
    pub state: String,
    pub error: String,
    /// The states that end an import.
    #[serde(default = "crate::checkers::support::default_completed")]
    pub completed: String,
    #[serde(default = "crate::checkers::support::default_failed")]
    pub failed: String,
    /// Text of the failure reason when the open breaker refused the call, and when the
    /// half-open breaker refused it because the trial was in flight.
    pub open_reason: String,
    pub half_open_reason: String,
    /// The fake upstream's route the imports call (`youtube_videos`, `tiktok_video_query`).
    pub route: fake_upstream::Route,
    /// The target's breaker policy: how long it stays open.
    pub open_ms: u64,
    /// How long the upstream holds each call while the breaker is probed, so a trial is in
    /// flight long enough for other imports to arrive; below the target's trial timeout.
    #[serde(default = "default_trial_hold_ms")]
    pub trial_hold_ms: u64,
    /// One import is submitted every `step_ms`.
    #[serde(default = "crate::checkers::support::default_step_ms")]
    pub step_ms: u64,
    /// The target's Prometheus endpoint, for the breaker state per instance and the rejected
    /// calls' latency; without it those are not judged.
    #[serde(default)]
    pub metrics: Option<String>,
    /// The most a rejected call may take at the 99th percentile.
    #[serde(default = "default_max_rejection_ms")]
    pub max_rejection_ms: f64,
    /// Half-open trials to observe (default: the profile's rounds).
    #[serde(default)]
    pub rounds: Option<usize>,
}

fn default_trial_hold_ms() -> u64 {
    1_000
}

fn default_max_rejection_ms() -> f64 {
    5.0
}

impl Kind for BreakerCheck {
    const KIND: &'static str = KIND;
    const DRIVES_UPSTREAM: bool = true;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("import", &self.import), ("status", &self.status)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        vec![("id", &self.id), ("state", &self.state), ("error", &self.error)]
    }

    fn validate(&self) -> Result<(), FieldError> {
        at_least_one("open_ms", self.open_ms)?;
        at_least_one("trial_hold_ms", self.trial_hold_ms)?;
        at_least_one("step_ms", self.step_ms)?;
        // NaN too.
        if self.max_rejection_ms.is_nan() || self.max_rejection_ms <= 0.0 {
            return Err(FieldError::new("max_rejection_ms", "max_rejection_ms must be above 0"));
        }
        Ok(())
    }

    /// An import every step while the breaker is probed: an open period and a held trial per
    /// round, and one more.
    fn upstream_calls(&self, defaults: &Defaults) -> u64 {
        (self.rounds.unwrap_or(defaults.rounds) as u64 + 1) * (self.open_ms + self.trial_hold_ms)
            / self.step_ms.max(1)
    }

    /// The breaker open as long as the check expects, a trial allowed to outlast the hold, and
    /// the held trial's task kept by its worker.
    fn needs(&self) -> Vec<Need> {
        let hold = Duration::from_millis(self.trial_hold_ms);
        vec![
            Need::BreakerOpen(Duration::from_millis(self.open_ms)),
            Need::BreakerTrialTimeout(2 * hold),
            Need::UpstreamHold(hold),
        ]
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
