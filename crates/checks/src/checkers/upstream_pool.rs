//! The pooled client to the upstream (#8), judged from the fake upstream's connection counts.
//! The fake's counts are zeroed and its video route made to hold every call (an outage in
//! `hang` mode), then a burst of imports (a new URL each, spread over every instance) is
//! submitted: every import worker that can call does, and its call stays in flight. Once the
//! calls in flight have stopped growing the hold is lifted, every import is read back until it
//! has ended, and the counts are read:
//!
//! - `too-many-in-flight` — more calls in flight at once than the instances' pools allow
//!   (`max_in_flight` per instance): a pool without its cap sends one call per worker;
//! - `too-many-connections` — more connections open at once, busy or idle, than `max_connections`
//!   per instance;
//! - `no-connection-reuse` — fewer requests per connection accepted than
//!   `min_requests_per_connection`: a client made per request opens a connection per call;
//! - `imports-unfinished` — an import that had not ended when the check stopped waiting.
//!
//! Evidence it needs: the upstream's counts (`observed`), the pools filled to their cap
//! (`pool-filled`: a burst that never filled them — the stack has no more import workers than
//! its cap, or the imports never reached the upstream — cannot tell a capped pool from an
//! uncapped one), and every import completed (`imports-completed`).

use std::time::Duration;

use client::{Target, TargetError};
use fake_upstream::{Fault, OutageMode};
use profile::Defaults;
use profile::template::RequestTemplate;
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::checkers::support::{self, Through};
use crate::history::{Op, Outcome};
use crate::kind::{FieldError, Kind, Need, at_least_one};
use crate::upstream::{self, Control, Ending};

pub const KIND: &str = "upstream-pool";

/// How long the calls in flight must stay unchanged before the hold is lifted: above the
/// stack's idle poll of its queue (the reference's backs off to 200 ms).
const SETTLE: Duration = Duration::from_millis(500);
/// The longest the hold may last; below the stack's upstream deadline.
const HOLD_LIMIT: Duration = Duration::from_secs(5);
/// How long the imports may take to end once the hold is lifted.
const END_WAIT: Duration = Duration::from_secs(15);

/// What the judge needs of the check's settings and of the target.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub instances: u64,
    pub max_connections: u64,
    pub max_in_flight: u64,
    pub min_requests_per_connection: f64,
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &UpstreamPoolCheck) -> Result<Verdict, TargetError> {
    let control = Control::of(target, &check.name)?;
    let user = target.user(&check.name).await?;
    let count = check.imports.unwrap_or(target.profile.defaults.concurrency).max(1);
    control.reset().await?;
    let start = control.snapshot(target).await?;
    let route = check.route;
    control.set_faults(&[Fault::outage(OutageMode::Hang).on(route)]).await?;
    let label = format!("{}-{}", check.name, target.run);
    let mut history = support::insert_rows(
        target,
        &user,
        &check.import,
        Some(&check.id),
        count,
        count,
        Through::All,
        &label,
        0,
        "import",
    )
    .await;
    // Every worker that can call is holding a call once the number in flight stops growing.
    let held = control.plateau(target, SETTLE, HOLD_LIMIT, |s| s.in_flight, |s| s.in_flight > 0).await;
    let cleared = control.clear_faults().await;
    let (held, settled) = held?;
    cleared?;
    let imports: Vec<(usize, String)> = history
        .iter()
        .filter_map(|op| op.value["id"].as_str().map(|id| (op.instance, id.to_owned())))
        .collect();
    let ending = Ending {
        status: &check.status,
        state: &check.state,
        completed: &check.completed,
        failed: &check.failed,
    };
    history.extend(upstream::await_ended(target, &user.tokens, &ending, &imports, END_WAIT).await);
    let end = control.snapshot(target).await?;
    let (arrived, answered) = end.route(route);
    history.push(Op {
        process: 0,
        instance: 0,
        action: "observe".into(),
        invoke_us: start.complete_us,
        complete_us: end.invoke_us,
        status: None,
        outcome: Outcome::Ok,
        value: json!({
            "held_in_flight": held.stats.in_flight,
            "held_settled": settled,
            "open_at_start": start.stats.connections.open,
            "requests": end.stats.requests,
            "route_requests": arrived,
            "route_answered": answered,
            "accepted": end.stats.connections.accepted,
            "peak_open": end.stats.connections.peak_open,
            "peak_in_flight": end.stats.peak_in_flight,
        }),
    });
    let params = Params {
        // The caps are per process, however many connections reach them.
        instances: target.stack_processes() as u64,
        max_connections: check.max_connections,
        max_in_flight: check.max_in_flight,
        min_requests_per_connection: check.min_requests_per_connection,
    };
    Ok(judge(&check.name, params, &history))
}

/// Judges one burst's counts.
pub fn judge(name: &str, params: Params, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let Some(observed) = history.iter().find(|op| op.action == "observe") else {
        verdict.require(
            "observed",
            false,
            "the fake upstream's counts were not read",
            "the fake upstream's control API must answer",
        );
        return verdict.summarize("never");
    };
    let o = &observed.value;
    let n = |key: &str| o[key].as_u64().unwrap_or(0);
    let (requests, accepted, peak_open, peak_in_flight) =
        (n("requests"), n("accepted"), n("peak_open"), n("peak_in_flight"));
    let max_in_flight = params.max_in_flight * params.instances;
    let max_connections = params.max_connections * params.instances;
    let imports = history.iter().filter(|op| op.action == "import").count();
    let submitted = history.iter().filter(|op| op.action == "import" && op.outcome == Outcome::Ok).count();
    let unended: Vec<Op> = history
        .iter()
        .filter(|op| op.action == "status" && op.outcome != Outcome::Unknown && op.value["ended"] != true)
        .cloned()
        .collect();
    let per_connection = if accepted == 0 { f64::INFINITY } else { requests as f64 / accepted as f64 };

    if peak_in_flight > max_in_flight {
        verdict.violate(
            "too-many-in-flight",
            format!(
                "{peak_in_flight} upstream calls in flight at once, above the cap of {max_in_flight} \
                 ({} per instance × {})",
                params.max_in_flight, params.instances
            ),
            [observed.clone()],
        );
    }
    if peak_open > max_connections {
        verdict.violate(
            "too-many-connections",
            format!(
                "{peak_open} connections open to the upstream at once, above {max_connections} \
                 ({} per instance × {})",
                params.max_connections, params.instances
            ),
            [observed.clone()],
        );
    }
    if per_connection < params.min_requests_per_connection {
        verdict.violate(
            "no-connection-reuse",
            format!(
                "{requests} upstream requests over {accepted} new connections ({per_connection:.2} a \
                 connection, at least {} expected of a pool)",
                params.min_requests_per_connection
            ),
            [observed.clone()],
        );
    }
    let failed: Vec<Op> = history
        .iter()
        .filter(|op| op.action == "status" && op.value["ended"] == true && op.value["completed"] != true)
        .cloned()
        .collect();
    let statuses =
        history.iter().filter(|op| op.action == "status" && op.outcome != Outcome::Unknown).count();
    verdict.require(
        "imports-completed",
        failed.is_empty() && submitted > 0 && statuses >= submitted,
        match failed.first() {
            None => format!("every one of {submitted} ended imports completed"),
            Some(first) => format!(
                "{} of {submitted} imports failed although the upstream answered every call (state {}, {})",
                failed.len(),
                first.value["state"],
                first.value["error"]
            ),
        },
        "the imports must be accepted and complete: is the stack's upstream plan spent (restart it, or run usage-plan last)?",
    );
    verdict.bound_unknown(history.iter().filter(|op| op.action == "import"), MAX_UNKNOWN);
    verdict.require(
        "pool-filled",
        peak_in_flight >= max_in_flight,
        format!(
            "the burst of {imports} imports had at most {peak_in_flight} upstream calls in flight at once, \
             against the cap of {max_in_flight} (a pool without its cap looks the same until it is reached)"
        ),
        "the stack needs more import workers than its pool lets call at once (stampede serve: --workers \
         above --upstream-connections less --upstream-idle), or the profile's max_in_flight is not the stack's",
    );
    if !unended.is_empty() {
        verdict.violate(
            "imports-unfinished",
            format!("{} of {submitted} imports had not ended when the check stopped waiting", unended.len()),
            unended,
        );
    }
    verdict.evidence = json!({
        "imports": imports,
        "submitted": submitted,
        "upstream_requests": requests,
        "route_requests": o["route_requests"],
        "held_in_flight": o["held_in_flight"],
        "peak_in_flight": peak_in_flight,
        "max_in_flight": max_in_flight,
        "peak_open": peak_open,
        "max_connections": max_connections,
        "connections_accepted": accepted,
        "open_at_start": o["open_at_start"],
        "requests_per_connection": if per_connection.is_finite() { json!((per_connection * 100.0).round() / 100.0) } else { Value::Null },
    });
    let reuse = match accepted {
        0 => format!("{requests} requests, every one on a connection already open"),
        n => format!("{requests} requests over {}", report::plural(n, "new connection", "new connections")),
    };
    verdict.summarize(format!(
        "{peak_in_flight} in flight at most (cap {max_in_flight}), {peak_open} open (max \
         {max_connections}); {reuse}"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params() -> Params {
        Params { instances: 1, max_connections: 6, max_in_flight: 3, min_requests_per_connection: 2.0 }
    }

    fn history(requests: u64, accepted: u64, peak_open: u64, peak_in_flight: u64) -> Vec<Op> {
        let op = |f: &'static str, value: Value| Op {
            process: 0,
            instance: 0,
            action: f.into(),
            invoke_us: 0,
            complete_us: 1_000,
            status: Some(201),
            outcome: Outcome::Ok,
            value,
        };
        let mut ops: Vec<Op> = (0..24).map(|i| op("import", json!({ "id": format!("v{i}") }))).collect();
        ops.extend((0..24).map(|i| {
            op(
                "status",
                json!({ "id": format!("v{i}"), "state": "completed", "ended": true, "completed": true }),
            )
        }));
        ops.push(op(
            "observe",
            json!({
                "requests": requests,
                "route_requests": 24,
                "accepted": accepted,
                "peak_open": peak_open,
                "peak_in_flight": peak_in_flight,
                "held_in_flight": peak_in_flight,
            }),
        ));
        ops
    }

    #[test]
    fn a_capped_pool_that_reuses_its_connections_passes() {
        // 24 calls and a refresh over the 3 connections the cap lets open.
        let verdict = judge("pool", params(), &history(25, 3, 3, 3));
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["requests_per_connection"], 8.33);
    }

    #[test]
    fn mutant_client_per_request_history_is_no_connection_reuse() {
        // The cap is kept, but every call comes on a connection of its own.
        let verdict = judge("pool", params(), &history(25, 25, 3, 3));
        assert_eq!(verdict.rules(), ["no-connection-reuse"], "{:?}", verdict.violations);
    }

    #[test]
    fn mutant_uncapped_history_is_too_many_in_flight_and_connections() {
        // Every one of 8 workers holds a call, each on its own connection.
        let verdict = judge("pool", params(), &history(25, 8, 8, 8));
        assert_eq!(
            verdict.rules(),
            ["too-many-in-flight", "too-many-connections"],
            "{:?}",
            verdict.violations
        );
    }

    #[test]
    fn the_caps_are_per_instance() {
        let three = Params { instances: 3, ..params() };
        assert!(judge("pool", three, &history(75, 9, 9, 9)).held());
        assert_eq!(
            judge("pool", three, &history(75, 24, 24, 24)).rules(),
            ["too-many-in-flight", "too-many-connections"]
        );
    }

    #[test]
    fn a_burst_that_never_fills_the_pool_cannot_be_judged() {
        // Two workers under a cap of three: a pool without a cap would look the same.
        let verdict = judge("pool", params(), &history(25, 2, 2, 2));
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["pool-filled"]);
        assert!(verdict.summary.contains("--workers"), "{}", verdict.summary);
    }

    #[test]
    fn failed_imports_are_reported_and_not_taken_for_a_small_stack() {
        // Instances that share no credential: only one of them calls the upstream.
        let mut ops = history(25, 1, 1, 1);
        for op in ops.iter_mut().filter(|op| op.action == "status").skip(8) {
            op.value["state"] = json!("failed");
            op.value["completed"] = json!(false);
        }
        let verdict = judge("pool", params(), &ops);
        assert!(verdict.missing().contains(&"imports-completed"), "{verdict:?}");
        assert!(!verdict.violated(), "{verdict:?}");
    }

    #[test]
    fn unfinished_imports_and_missing_counts() {
        let mut ops = history(25, 3, 3, 3);
        ops[30].value["ended"] = json!(false);
        assert_eq!(judge("pool", params(), &ops).rules(), ["imports-unfinished"]);
        ops.retain(|op| op.action != "observe");
        let verdict = judge("pool", params(), &ops);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["observed"]));
    }

    #[test]
    fn the_evidence_and_summary_say_what_was_seen() {
        let v = judge("pool", params(), &history(25, 3, 3, 3));
        assert_eq!(
            v.evidence,
            json!({ "connections_accepted": 3, "held_in_flight": 3, "imports": 24, "max_connections": 6,
                    "max_in_flight": 3, "open_at_start": null, "peak_in_flight": 3, "peak_open": 3,
                    "requests_per_connection": 8.33, "route_requests": 24, "submitted": 24, "upstream_requests": 25 })
        );
        assert_eq!(
            v.summary,
            "3 in flight at most (cap 3), 3 open (max 6); 25 requests over 3 new connections"
        );
        assert_eq!(
            v.requirements.iter().map(|r| r.observed.as_str()).collect::<Vec<_>>()[..2],
            ["every one of 24 ended imports completed", "every one of 24 operations had a recognised answer"]
        );
        // At the caps and the reuse floor exactly (6 open of 6, 2 requests a connection): within them.
        let verdict = judge("pool", params(), &history(12, 6, 6, 3));
        assert!(verdict.rules().is_empty(), "{:?}", verdict.violations);
    }
}

/// The pooled upstream client (#8), judged from the fake upstream's connection counts: a burst
/// of imports while the upstream holds every call, so each worker that can call is in flight at
/// once; the calls in flight and the connections open stay within the instances' caps, and the
/// connections are reused. Needs the fake upstream's control API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamPoolCheck {
    pub name: String,
    /// An import that makes the stack call the upstream; `{unique}` is new for every import.
    pub import: RequestTemplate,
    /// JSON pointer to the import's id in its answer.
    pub id: String,
    /// Reads an import's processing status; `{id}`.
    pub status: RequestTemplate,
    /// JSON pointer to the processing state in the status.
    pub state: String,
    /// The states that end an import.
    #[serde(default = "crate::checkers::support::default_completed")]
    pub completed: String,
    #[serde(default = "crate::checkers::support::default_failed")]
    pub failed: String,
    /// The fake upstream's route the imports call.
    pub route: fake_upstream::Route,
    /// Per instance of the target: connections open to the upstream at once, busy or idle.
    pub max_connections: u64,
    /// Per instance of the target: upstream calls in flight at once. A burst that never reaches
    /// it cannot be judged (a configuration error).
    pub max_in_flight: u64,
    /// Upstream requests per new connection, at least, over the burst.
    #[serde(default = "default_min_requests_per_connection")]
    pub min_requests_per_connection: f64,
    /// Imports in the burst (default: the profile's concurrency).
    #[serde(default)]
    pub imports: Option<usize>,
}

fn default_min_requests_per_connection() -> f64 {
    2.0
}

impl Kind for UpstreamPoolCheck {
    const KIND: &'static str = KIND;
    const DRIVES_UPSTREAM: bool = true;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("import", &self.import), ("status", &self.status)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        vec![("id", &self.id), ("state", &self.state)]
    }

    fn validate(&self) -> Result<(), FieldError> {
        at_least_one("max_connections", self.max_connections)?;
        at_least_one("max_in_flight", self.max_in_flight)?;
        if self.max_in_flight > self.max_connections {
            return Err(FieldError::new(
                "max_in_flight",
                format!(
                    "max_in_flight {} must not exceed max_connections {}",
                    self.max_in_flight, self.max_connections
                ),
            ));
        }
        if self.imports == Some(0) {
            return Err(FieldError::new("imports", "imports must be at least 1"));
        }
        // NaN too.
        if self.min_requests_per_connection.is_nan() || self.min_requests_per_connection <= 1.0 {
            return Err(FieldError::new(
                "min_requests_per_connection",
                "min_requests_per_connection must be above 1",
            ));
        }
        Ok(())
    }

    fn upstream_calls(&self, defaults: &Defaults) -> u64 {
        self.imports.unwrap_or(defaults.concurrency) as u64
    }

    /// The pool the check's bounds describe: its connections, of which those not allowed in
    /// flight are kept idle.
    fn needs(&self) -> Vec<Need> {
        vec![Need::UpstreamPool {
            connections: self.max_connections as usize,
            idle: (self.max_connections - self.max_in_flight) as usize,
        }]
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
