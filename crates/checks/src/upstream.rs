//! The fake upstream's side of the checks that drive it: its control API (failures as target
//! errors, snapshots timed on the run's clock), the counts of one route, imports that make the
//! stack call it, and the stack's Prometheus text.

use std::time::Duration;

use fake_upstream::{ControlClient, Fault, Route, Stats};
use serde_json::Value;

use crate::client::{Answer, Target, TargetError};
use crate::profile::RequestTemplate;

/// The fake upstream's control API, for one check.
#[derive(Debug, Clone)]
pub struct Control {
    client: ControlClient,
    url: String,
}

/// What the fake upstream had counted at an instant between `invoke_us` and `complete_us`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub stats: Stats,
    pub invoke_us: u64,
    pub complete_us: u64,
}

impl Snapshot {
    /// Requests to `route` that arrived, and those that have been answered or dropped.
    pub fn route(&self, route: Route) -> (u64, u64) {
        self.stats
            .routes
            .get(&route)
            .map_or((0, 0), |r| (r.requests, r.statuses.values().sum::<u64>() + r.dropped + r.abandoned))
    }

    /// The offset from the fake upstream's clock (ms since it started) to the run's (µs).
    pub fn offset_us(&self) -> i64 {
        let mid = (self.invoke_us + self.complete_us) / 2;
        mid as i64 - (self.stats.elapsed_ms as i64) * 1_000
    }
}

impl Control {
    /// The target's fake upstream, for check `check`.
    pub fn of(target: &Target, check: &str) -> Result<Self, TargetError> {
        let client = target.control(check)?;
        Ok(Self { url: client.base_url().to_owned(), client })
    }

    fn failed(&self, e: fake_upstream::Error) -> TargetError {
        TargetError::Control { url: self.url.clone(), reason: e.to_string() }
    }

    /// Zeroes the counts and clears the faults.
    pub async fn reset(&self) -> Result<(), TargetError> {
        self.client.reset().await.map_err(|e| self.failed(e))
    }

    pub async fn set_faults(&self, faults: &[Fault]) -> Result<(), TargetError> {
        self.client.set_faults(faults).await.map_err(|e| self.failed(e))
    }

    pub async fn clear_faults(&self) -> Result<(), TargetError> {
        self.client.clear_faults().await.map_err(|e| self.failed(e))
    }

    pub async fn snapshot(&self, target: &Target) -> Result<Snapshot, TargetError> {
        let invoke_us = target.clock.now_us();
        let stats = self.client.stats().await.map_err(|e| self.failed(e))?;
        Ok(Snapshot { stats, invoke_us, complete_us: target.clock.now_us() })
    }
}

/// Submits an import of `unique` to `instance`: the answer and the id at `id` in it.
pub async fn import(
    target: &Target,
    instance: usize,
    token: &str,
    template: &RequestTemplate,
    unique: &str,
    id: &str,
) -> (Answer, Option<String>) {
    let answer = target.send(instance, Some(token), template, &[("unique", unique)]).await;
    let ok = answer.status.is_some_and(|s| (200..300).contains(&s));
    let id = if ok { answer.body.pointer(id).and_then(Value::as_str).map(str::to_owned) } else { None };
    (answer, id)
}

/// How each of a check's imports ended, as its status read back says: `(index, state)` ops.
#[derive(Debug, Clone)]
pub struct Ending<'a> {
    /// Reads an import's status; `{id}`.
    pub status: &'a RequestTemplate,
    /// JSON pointer to the processing state in the status.
    pub state: &'a str,
    /// The states that end an import.
    pub completed: &'a str,
    pub failed: &'a str,
}

/// Reads the status of every import in `imports` (`(instance, id)`) until each has ended or
/// `limit` has passed, at most 32 reads at a time; a `status` op per import, its value the
/// last state read (`ended` false for those still running, `completed` true for those that
/// ended completed).
pub async fn await_ended(
    target: &Target,
    tokens: &[String],
    ending: &Ending<'_>,
    imports: &[(usize, String)],
    limit: Duration,
) -> Vec<crate::history::Op> {
    use crate::history::Outcome;
    let deadline = tokio::time::Instant::now() + limit;
    let mut last: Vec<Option<Answer>> = vec![None; imports.len()];
    let mut ended = vec![false; imports.len()];
    loop {
        let pending: Vec<usize> = (0..imports.len()).filter(|i| !ended[*i]).collect();
        for chunk in pending.chunks(32) {
            let reads = chunk.iter().map(|&i| {
                let (instance, id) = &imports[i];
                let token = tokens[*instance].clone();
                async move { (i, target.send(*instance, Some(&token), ending.status, &[("id", id)]).await) }
            });
            for (i, answer) in futures_util::future::join_all(reads).await {
                let state = answer.body.pointer(ending.state).and_then(Value::as_str);
                ended[i] = state.is_some_and(|s| s == ending.completed || s == ending.failed);
                last[i] = Some(answer);
            }
        }
        if ended.iter().all(|e| *e) || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last.into_iter()
        .zip(imports)
        .zip(ended)
        .map(|((answer, (instance, id)), ended)| {
            let answer = answer.expect("every import's status was read at least once");
            let state = answer.body.pointer(ending.state).cloned().unwrap_or(Value::Null);
            let completed = state.as_str() == Some(ending.completed);
            let outcome = if ended { Outcome::Ok } else { Outcome::Unknown };
            answer.op(
                0,
                *instance,
                "status",
                outcome,
                serde_json::json!({ "id": id, "state": state, "ended": ended, "completed": completed }),
            )
        })
        .collect()
}

impl Control {
    /// Samples the counts every 50 ms until `of(stats)` has not changed for `settle` (and
    /// `busy(stats)` holds), or `limit` has passed; the last snapshot, and whether it settled.
    pub async fn plateau<T: PartialEq>(
        &self,
        target: &Target,
        settle: Duration,
        limit: Duration,
        of: impl Fn(&Stats) -> T,
        busy: impl Fn(&Stats) -> bool,
    ) -> Result<(Snapshot, bool), TargetError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut snapshot = self.snapshot(target).await?;
        let mut since = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let next = self.snapshot(target).await?;
            let now = tokio::time::Instant::now();
            if of(&next.stats) != of(&snapshot.stats) || !busy(&next.stats) {
                since = now;
            }
            snapshot = next;
            if now.duration_since(since) >= settle {
                return Ok((snapshot, true));
            }
            if now >= deadline {
                return Ok((snapshot, false));
            }
        }
    }
}

/// The text of `path` on `instance` (a Prometheus endpoint), or why it could not be read.
pub async fn metrics_text(target: &Target, instance: usize, path: &str) -> Result<String, String> {
    let url = format!("{}{path}", target.urls[instance]);
    let response =
        target.http.get(url).timeout(Duration::from_secs(5)).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    response.text().await.map_err(|e| e.to_string())
}

/// The value of the sample `name` (with exactly `labels`, `""` for none) in Prometheus text.
pub fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        let (metric, rest) = match key.split_once('{') {
            Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
            None => (key, ""),
        };
        (metric == name && rest == labels).then(|| value.trim().parse().ok()).flatten()
    })
}

/// The cumulative buckets of histogram `name` in Prometheus text: `(le, count)` in order.
pub fn histogram(text: &str, name: &str) -> Vec<(String, u64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (le, value) = rest.split_once("\"}")?;
            Some((le.to_owned(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{histogram, metric};
    use crate::profile::{Check, Profile};

    const REFERENCE: &str = include_str!("../../../scenarios/reference.toml");

    #[test]
    fn the_reference_profile_has_the_upstream_checks() {
        let profile = Profile::parse(Path::new("reference.toml"), REFERENCE).expect("the reference profile");
        let kinds: Vec<&str> = profile.checks.iter().map(Check::kind).collect();
        for kind in
            ["breaker", "token-refresh", "ws-connections", "import-lifecycle", "upstream-pool", "usage-plan"]
        {
            assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
        }
        let controlled: Vec<&str> =
            profile.checks.iter().filter(|c| c.needs_upstream_control()).map(Check::kind).collect();
        assert_eq!(
            controlled,
            ["breaker", "token-refresh", "import-lifecycle", "upstream-pool", "usage-plan"]
        );
        assert_eq!(profile.checks.last().map(Check::kind), Some("usage-plan"), "the plan's check runs last");
    }

    #[test]
    fn the_plan_check_must_come_after_every_check_that_needs_the_upstream() {
        let plan = REFERENCE.find("[[check]]\nname = \"upstream-usage-plan\"").expect("the plan check");
        let end = REFERENCE.find("[load]").expect("the load section");
        let (head, rest) = REFERENCE.split_at(plan);
        let (plan_check, tail) = rest.split_at(end - plan);
        let breaker = head.find("[[check]]\nname = \"upstream-breaker\"").expect("the breaker check");
        let moved = format!("{}{plan_check}{}{tail}", &head[..breaker], &head[breaker..]);
        let err = Profile::parse(Path::new("p.toml"), &moved).map(drop).unwrap_err().to_string();
        assert!(
            err.contains("p.toml")
                && err.contains("\"upstream-usage-plan\" exhausts the upstream plan")
                && err.contains("\"upstream-breaker\" after it"),
            "{err}"
        );
        let twice = format!("{head}{plan_check}{}{tail}", plan_check.replace("upstream-usage-plan", "again"));
        let err = Profile::parse(Path::new("p.toml"), &twice).map(drop).unwrap_err().to_string();
        assert!(err.contains("both exhaust the upstream plan"), "{err}");
    }

    #[test]
    fn the_pool_and_plan_checks_refuse_what_they_cannot_run_with() {
        let parse =
            |text: &str| Profile::parse(Path::new("p.toml"), text).map(drop).map_err(|e| e.to_string());
        let err = parse(&REFERENCE.replace("max_in_flight = 12", "max_in_flight = 25")).unwrap_err();
        assert!(err.contains("max_in_flight 25 must not exceed max_connections 24"), "{err}");
        let err = parse(
            &REFERENCE.replace("min_requests_per_connection = 2.0", "min_requests_per_connection = 1.0"),
        )
        .unwrap_err();
        assert!(err.contains("min_requests_per_connection must be above 1"), "{err}");
        let err =
            parse(&REFERENCE.replace("max_connections = 24", "max_connections = 24\nmax_conections = 6"))
                .unwrap_err();
        assert!(err.contains("line") && err.contains("max_conections"), "{err}");
        let err = parse(&REFERENCE.replace(
            "limits = [\"/limits/per_day\", \"/limits/per_hour\"]",
            "limits = [\"/limits/per_day\"]",
        ))
        .unwrap_err();
        assert!(err.contains("used and limits must name the same number of periods"), "{err}");
        let err = parse(&REFERENCE.replace("used = [\"/day\", \"/hour\"]", "used = [\"day\", \"/hour\"]"))
            .unwrap_err();
        assert!(err.contains("used \"day\" is not a JSON pointer"), "{err}");
        let err = parse(&REFERENCE.replace("max_calls = 1000", "max_calls = 0")).unwrap_err();
        assert!(err.contains("max_calls must be at least 1"), "{err}");
    }

    #[test]
    fn the_upstream_checks_refuse_what_they_cannot_run_with() {
        let parse =
            |text: &str| Profile::parse(Path::new("p.toml"), text).map(drop).map_err(|e| e.to_string());
        let err = parse(&REFERENCE.replace("open_ms = 2000", "open_ms = 0")).unwrap_err();
        assert!(err.contains("\"upstream-breaker\": open_ms must be at least 1"), "{err}");
        let err = parse(&REFERENCE.replace("route = \"youtube_videos\"", "route = \"vimeo\"")).unwrap_err();
        assert!(err.contains("vimeo"), "{err}");
        let err = parse(&REFERENCE.replace("period_ms = 2000", "period_ms = 2000\nperiod = 1")).unwrap_err();
        assert!(err.contains("period"), "{err}");
        let err = parse(&REFERENCE.replace("limit = 5\n", "limit = 0\n")).unwrap_err();
        assert!(err.contains("limit must be at least 1"), "{err}");
        let err = parse(&REFERENCE.replace("hold_ms = 2600", "hold_ms = 1200")).unwrap_err();
        assert!(
            err.contains("\"import-lifecycle\": hold_ms 1200 must lie between visibility_ms 1500"),
            "{err}"
        );
        let err = parse(&REFERENCE.replace("held = 32\n", "held = 0\n")).unwrap_err();
        assert!(err.contains("held must be at least 1"), "{err}");
    }

    const TEXT: &str = "# HELP stampede_circuit_breaker_state Upstream circuit breaker.\n\
        # TYPE stampede_circuit_breaker_state gauge\n\
        stampede_circuit_breaker_state 1\n\
        stampede_upstream_calls_total{route=\"circuit_open\"} 7\n\
        stampede_breaker_rejection_seconds_sum 0.002\n\
        stampede_breaker_rejection_seconds_count 3\n\
        stampede_breaker_rejection_seconds_bucket{le=\"0.001\"} 2\n\
        stampede_breaker_rejection_seconds_bucket{le=\"0.005\"} 3\n\
        stampede_breaker_rejection_seconds_bucket{le=\"+Inf\"} 3\n";

    #[test]
    fn reads_samples_and_histograms() {
        assert_eq!(metric(TEXT, "stampede_circuit_breaker_state", ""), Some(1.0));
        assert_eq!(metric(TEXT, "stampede_upstream_calls_total", "route=\"circuit_open\""), Some(7.0));
        assert_eq!(metric(TEXT, "stampede_missing", ""), None);
        let buckets = histogram(TEXT, "stampede_breaker_rejection_seconds");
        assert_eq!(buckets, vec![("0.001".to_owned(), 2), ("0.005".to_owned(), 3), ("+Inf".to_owned(), 3)]);
    }
}
