//! `stampede report compare`: a run's latencies against a baseline run's, per endpoint and
//! per percentile. A change is a regression when the latency grew by more than the relative
//! tolerance *and* by more than an absolute floor (`min_change_ms`): a 0.4 ms p50 becoming
//! 0.6 ms is +50 % and nothing a user notices, and the floor keeps such noise from failing
//! a gate. An endpoint only one of the two runs measured is listed and not judged: a
//! latency comparison needs two latencies, and a short run at a low rate may send none of a
//! rare request (whether the endpoint answered at all is the run's own targets' to judge).

use serde::{Deserialize, Serialize};

use crate::{EndpointReport, Latency, Report};

/// The percentiles a comparison may look at, by their report names.
pub(crate) const COMPARABLE: [&str; 6] = ["p50", "p90", "p95", "p99", "p99_9", "max"];

/// What counts as a regression; a profile's `[compare]` section (`tolerance`,
/// `min_change_ms`, `percentiles`), each overridden by `stampede report compare`'s flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tolerance {
    /// The relative increase allowed: 0.2 lets a latency grow by 20 %.
    #[serde(rename = "tolerance")]
    pub relative: f64,
    /// Increases up to this many milliseconds are never regressions.
    pub min_change_ms: f64,
    /// Which percentiles are compared (`p50`, `p90`, `p95`, `p99`, `p99_9`, `max`).
    pub percentiles: Vec<String>,
}

impl Default for Tolerance {
    fn default() -> Self {
        // A fifth and 5 ms: run-to-run noise of a healthy stack on a shared CI machine stays
        // under both, a slowed endpoint does not.
        Self {
            relative: 0.20,
            min_change_ms: 5.0,
            percentiles: vec!["p50".into(), "p95".into(), "p99".into()],
        }
    }
}

impl Tolerance {
    /// Refuses a negative or non-finite bound and an unknown percentile, naming it.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.relative.is_finite() && self.relative >= 0.0) {
            return Err(format!("tolerance {}: must be a finite ratio ≥ 0 (0.1 is 10 %)", self.relative));
        }
        if !(self.min_change_ms.is_finite() && self.min_change_ms >= 0.0) {
            return Err(format!("min_change_ms {}: must be a finite number of ms ≥ 0", self.min_change_ms));
        }
        if self.percentiles.is_empty() {
            return Err("percentiles: name at least one".into());
        }
        for p in &self.percentiles {
            if !COMPARABLE.contains(&p.as_str()) {
                return Err(format!("percentile {p:?}: not one of {}", COMPARABLE.join(", ")));
            }
        }
        Ok(())
    }
}

/// A run's latencies against a baseline's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: BaselineRef,
    /// The relative increase allowed.
    pub tolerance: f64,
    pub min_change_ms: f64,
    pub percentiles: Vec<String>,
    pub changes: Vec<Change>,
    /// How many changes are regressions.
    pub regressions: usize,
}

/// Which run the baseline was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRef {
    pub id: String,
    pub file: String,
    pub started_at_ms: u64,
    pub git_revision: Option<String>,
}

/// One endpoint's percentile, before and now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub endpoint: String,
    pub percentile: String,
    /// Milliseconds; null when that run measured nothing on the endpoint.
    pub baseline_ms: Option<f64>,
    pub current_ms: Option<f64>,
    /// `current / baseline − 1`; null when either side measured nothing.
    pub change: Option<f64>,
    pub regressed: bool,
    pub detail: String,
}

/// `current` against `baseline` (read from `baseline_file`).
pub fn compare(
    baseline: &Report,
    baseline_file: &str,
    current: &Report,
    tolerance: &Tolerance,
) -> Comparison {
    let endpoints = |r: &Report| -> Vec<EndpointReport> {
        r.load.as_ref().map(|l| l.endpoints.clone()).unwrap_or_default()
    };
    let (before, now) = (endpoints(baseline), endpoints(current));
    let measured = |list: &[EndpointReport], name: &str| -> Option<Latency> {
        list.iter().find(|e| e.name == name && e.requests > 0).map(|e| e.latency_ms)
    };
    let mut names: Vec<&str> = before.iter().chain(&now).map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut changes = Vec::new();
    for name in names {
        let (b, c) = (measured(&before, name), measured(&now, name));
        if b.is_none() && c.is_none() {
            continue;
        }
        for p in &tolerance.percentiles {
            let (b, c) = (b.map(|l| pick(&l, p)), c.map(|l| pick(&l, p)));
            changes.push(judge(name, p, b, c, tolerance));
        }
    }
    Comparison {
        baseline: BaselineRef {
            id: baseline.run.id.clone(),
            file: baseline_file.to_owned(),
            started_at_ms: baseline.run.started_at_ms,
            git_revision: baseline.run.git_revision.clone(),
        },
        tolerance: tolerance.relative,
        min_change_ms: tolerance.min_change_ms,
        percentiles: tolerance.percentiles.clone(),
        regressions: changes.iter().filter(|c| c.regressed).count(),
        changes,
    }
}

fn pick(l: &Latency, percentile: &str) -> f64 {
    match percentile {
        "p50" => l.p50,
        "p90" => l.p90,
        "p95" => l.p95,
        "p99" => l.p99,
        "p99_9" => l.p99_9,
        _ => l.max,
    }
}

fn judge(endpoint: &str, percentile: &str, before: Option<f64>, now: Option<f64>, t: &Tolerance) -> Change {
    let (change, regressed, detail) = match (before, now) {
        (Some(b), Some(c)) => {
            let change = if b > 0.0 { c / b - 1.0 } else { 0.0 };
            let regressed = change > t.relative && c - b > t.min_change_ms;
            let verdict = if regressed {
                format!("regressed: beyond +{:.0} % and +{} ms", t.relative * 100.0, t.min_change_ms)
            } else if change > t.relative {
                format!("within the {} ms floor", t.min_change_ms)
            } else {
                format!("within +{:.0} %", t.relative * 100.0)
            };
            (Some(change), regressed, format!("{b:.3} → {c:.3} ms ({:+.1} %), {verdict}", change * 100.0))
        }
        (Some(b), None) => {
            (None, false, format!("{b:.3} ms in the baseline; this run measured nothing, not compared"))
        }
        (None, Some(c)) => (None, false, format!("new: {c:.3} ms, not in the baseline")),
        (None, None) => (None, false, "measured in neither run".to_owned()),
    };
    Change {
        endpoint: endpoint.to_owned(),
        percentile: percentile.to_owned(),
        baseline_ms: before,
        current_ms: now,
        change,
        regressed,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LoadReport, RunMeta, SCHEMA};

    fn report(endpoints: &[(&str, u64, f64)]) -> Report {
        let endpoints = endpoints
            .iter()
            .map(|(name, requests, p)| EndpointReport {
                name: (*name).into(),
                requests: *requests,
                errors: 0,
                outcomes: Default::default(),
                throughput: 0.0,
                latency_ms: Latency { p50: *p, p95: p * 2.0, p99: p * 4.0, ..Latency::ZERO },
                histogram: String::new(),
                timeline: Vec::new(),
            })
            .collect();
        Report {
            schema: SCHEMA.into(),
            run: RunMeta {
                id: "base".into(),
                command: None,
                stampede_version: "0".into(),
                git_revision: None,
                profile: "p".into(),
                target: vec![],
                embedded: None,
                host: "h".into(),
                started_at_ms: 5,
                finished_at_ms: 6,
                complete: true,
                interrupted: None,
                sources: vec![],
            },
            checks: None,
            load: Some(LoadReport {
                model: "open".into(),
                rate: None,
                users: None,
                users_reached: None,
                started_at_ms: 0,
                duration_s: 1.0,
                requests: 0,
                errors: 0,
                unsent: 0,
                throughput: 0.0,
                endpoints,
                metrics: vec![],
                faults: vec![],
            }),
            targets: vec![],
            comparison: None,
            capacity: None,
            passed: true,
        }
    }

    fn regressed(c: &Comparison) -> Vec<String> {
        c.changes.iter().filter(|c| c.regressed).map(|c| format!("{} {}", c.endpoint, c.percentile)).collect()
    }

    #[test]
    fn a_latency_beyond_both_the_ratio_and_the_floor_regresses() {
        let t =
            Tolerance { relative: 0.10, min_change_ms: 2.0, percentiles: vec!["p50".into(), "p99".into()] };
        let before =
            report(&[("steady", 10, 10.0), ("slower", 10, 10.0), ("tiny", 10, 0.5), ("better", 10, 9.0)]);
        let now =
            report(&[("steady", 10, 10.9), ("slower", 10, 12.5), ("tiny", 10, 1.0), ("better", 10, 3.0)]);
        let c = compare(&before, "old.json", &now, &t);
        // slower: p50 10 → 12.5 (+25 %, +2.5 ms); p99 40 → 50. tiny: +100 % but p50 +0.5 ms
        // under the floor, p99 2 → 4 (+2 ms, not more than the floor). steady: +9 %.
        assert_eq!(regressed(&c), ["slower p50", "slower p99"]);
        assert_eq!(c.regressions, 2);
        assert_eq!(c.changes.len(), 8);
        let tiny = c.changes.iter().find(|c| c.endpoint == "tiny" && c.percentile == "p50").unwrap();
        assert!(tiny.detail.contains("floor"), "{}", tiny.detail);
        assert_eq!(c.baseline.file, "old.json");
    }

    #[test]
    fn an_endpoint_only_one_run_measured_is_listed_and_not_judged() {
        let t = Tolerance::default();
        let before = report(&[("gone", 10, 1.0), ("idle-before", 0, 0.0)]);
        let now = report(&[("gone", 0, 0.0), ("idle-before", 5, 1.0), ("new", 4, 1.0)]);
        let c = compare(&before, "b", &now, &t);
        assert!(regressed(&c).is_empty(), "{:?}", c.changes);
        let gone: Vec<_> = c.changes.iter().filter(|c| c.endpoint == "gone").collect();
        assert_eq!(gone.len(), 3);
        assert!(gone.iter().all(|c| c.detail.contains("not compared") && c.current_ms.is_none()));
        assert!(c.changes.iter().filter(|c| c.endpoint == "new").all(|c| c.detail.starts_with("new")));
    }

    #[test]
    fn a_run_against_itself_has_no_regression() {
        let r = report(&[("a", 10, 3.0), ("b", 10, 30.0)]);
        let c =
            compare(&r, "same", &r, &Tolerance { relative: 0.0, min_change_ms: 0.0, ..Tolerance::default() });
        assert_eq!(c.regressions, 0);
        assert!(c.changes.iter().all(|c| c.change == Some(0.0)));
    }

    #[test]
    fn bad_tolerances_are_named() {
        let bad = |t: Tolerance| t.validate().unwrap_err();
        assert!(bad(Tolerance { relative: -0.1, ..Tolerance::default() }).starts_with("tolerance -0.1"));
        assert!(
            bad(Tolerance { min_change_ms: f64::NAN, ..Tolerance::default() }).starts_with("min_change_ms")
        );
        assert!(
            bad(Tolerance { percentiles: vec!["p42".into()], ..Tolerance::default() })
                .starts_with("percentile \"p42\"")
        );
        Tolerance::default().validate().unwrap();
    }
}
