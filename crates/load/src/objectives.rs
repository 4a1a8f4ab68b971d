//! Objectives judged against what a run measured: latency percentiles and error rate per
//! endpoint, throughput, users reached, ratios of the target's own metrics, and the bounds
//! around the faults injected during the load ([`faults`]). An objective the run has no
//! measurement for fails, never passes silently.

use profile::Objectives;
use profile::prometheus::{self, Series};
use report::{LoadReport, MetricReading, ObjectiveKind, ObjectiveVerdict};

/// Every objective of `targets` judged against `load`.
pub fn judge(targets: &Objectives, load: &LoadReport) -> Vec<ObjectiveVerdict> {
    let mut verdicts = Vec::new();
    for e in &load.endpoints {
        let own = targets.endpoint.get(&e.name).cloned().unwrap_or_default();
        let idle = e.requests == 0;
        for (kind, what, bound, measured) in [
            (ObjectiveKind::P50, "p50", own.p50_ms.unwrap_or(targets.p50_ms), e.latency_ms.p50),
            (ObjectiveKind::P95, "p95", own.p95_ms.unwrap_or(targets.p95_ms), e.latency_ms.p95),
            (ObjectiveKind::P99, "p99", own.p99_ms.unwrap_or(targets.p99_ms), e.latency_ms.p99),
        ] {
            verdicts.push(below(
                kind,
                format!("{what} of {}", e.name),
                Some(e.name.clone()),
                bound,
                (!idle).then_some(measured),
                "ms",
            ));
        }
        let rate = (!idle).then(|| e.errors as f64 / e.requests as f64);
        let bound = own.max_error_rate.unwrap_or(targets.max_error_rate);
        let mut v = at_most(
            ObjectiveKind::ErrorRate,
            format!("error rate of {}", e.name),
            Some(e.name.clone()),
            bound,
            rate,
            "ratio",
        );
        if !idle && !v.passed {
            let outcomes: Vec<String> = e.outcomes.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            v.detail = format!("{}; answers {}", v.detail, outcomes.join(", "));
        }
        verdicts.push(v);
    }
    if load.model == "open" {
        // The offered load is the one asked for, or the figures describe another run.
        let mut v = at_most(
            ObjectiveKind::Unsent,
            "requests left unsent".to_owned(),
            None,
            0.0,
            Some(load.unsent as f64),
            "requests",
        );
        if load.unsent > 0 {
            v.detail = format!(
                "{} requests fell due and were never sent: the generator could not offer the rate asked for",
                load.unsent
            );
        }
        verdicts.push(v);
    }
    if let Some(min) = targets.min_throughput {
        verdicts.push(above(
            ObjectiveKind::Throughput,
            "throughput".to_owned(),
            None,
            min,
            Some(load.throughput),
            "req/s",
        ));
    }
    if let Some(min) = targets.min_users {
        let reached = load.users_reached.map(|u| u as f64);
        let mut v =
            above(ObjectiveKind::Users, "concurrent users".to_owned(), None, min as f64, reached, "users");
        if reached.is_none() {
            v.detail = "the open model runs no users; min_users needs the closed model".to_owned();
        }
        verdicts.push(v);
    }
    if let Some(min) = targets.min_ws_sessions {
        let peak = load.open_sessions_peak().map(|n| n as f64);
        verdicts.push(above(
            ObjectiveKind::Sessions,
            "WebSocket sessions open at once".to_owned(),
            None,
            min as f64,
            peak,
            "sessions",
        ));
    }
    for m in &targets.metrics {
        let reading = load.metrics.iter().find(|r| r.name == m.name);
        let value = reading.and_then(|r| r.value);
        if let Some(max) = m.max {
            verdicts.push(at_most(ObjectiveKind::Metric, m.name.clone(), None, max, value, "ratio"));
        }
        if let Some(min) = m.min {
            verdicts.push(above(ObjectiveKind::Metric, m.name.clone(), None, min, value, "ratio"));
        }
    }
    verdicts.extend(faults(load));
    verdicts
}

/// The bounds around every fault window `load` carries: its errors during, its recovery, and a
/// failed verdict for a fault that could not be applied or removed. The judging itself is
/// `report::faults`, so a merged report judges the same way.
pub fn faults(load: &LoadReport) -> Vec<ObjectiveVerdict> {
    report::faults::judge(load)
}

fn below(
    kind: ObjectiveKind,
    name: String,
    endpoint: Option<String>,
    bound: f64,
    measured: Option<f64>,
    unit: &str,
) -> ObjectiveVerdict {
    ObjectiveVerdict::judged(kind, name, endpoint, "<", bound, measured, unit)
}

fn at_most(
    kind: ObjectiveKind,
    name: String,
    endpoint: Option<String>,
    bound: f64,
    measured: Option<f64>,
    unit: &str,
) -> ObjectiveVerdict {
    ObjectiveVerdict::judged(kind, name, endpoint, "<=", bound, measured, unit)
}

fn above(
    kind: ObjectiveKind,
    name: String,
    endpoint: Option<String>,
    bound: f64,
    measured: Option<f64>,
    unit: &str,
) -> ObjectiveVerdict {
    ObjectiveVerdict::judged(kind, name, endpoint, ">=", bound, measured, unit)
}

/// The sums of `selectors` in `text` (Prometheus text); the first selector no series matches
/// is an error naming it.
pub fn sums(text: &str, selectors: &[String]) -> Result<f64, String> {
    let mut total = 0.0;
    for s in selectors {
        let selector = Series::parse(s)?;
        total +=
            prometheus::sum(text, &selector).ok_or_else(|| format!("the target exposes no series {s:?}"))?;
    }
    Ok(total)
}

/// A reading from the numerator and denominator increases.
pub fn reading(name: &str, numerator: f64, denominator: f64) -> MetricReading {
    MetricReading {
        name: name.to_owned(),
        numerator,
        denominator,
        value: (denominator > 0.0).then(|| numerator / denominator),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use report::{EndpointReport, Latency};

    use super::*;

    fn endpoint(name: &str, p99: f64, requests: u64, errors: u64) -> EndpointReport {
        EndpointReport {
            name: name.to_owned(),
            requests,
            errors,
            outcomes: BTreeMap::from([("200".to_owned(), requests - errors), ("503".to_owned(), errors)]),
            throughput: 0.0,
            latency_ms: Latency { p50: 10.0, p95: 50.0, p99, ..Latency::ZERO },
            histogram: String::new(),
            timeline: Vec::new(),
        }
    }

    fn load(endpoints: Vec<EndpointReport>) -> LoadReport {
        LoadReport {
            model: "open".into(),
            rate: Some([10.0, 10.0]),
            users: None,
            users_reached: None,
            started_at_ms: 0,
            duration_s: 10.0,
            requests: endpoints.iter().map(|e| e.requests).sum(),
            errors: 0,
            unsent: 0,
            throughput: 100.0,
            endpoints,
            metrics: vec![reading("cache-hit-rate", 70.0, 100.0), reading("queries", 0.0, 0.0)],
            faults: Vec::new(),
        }
    }

    fn failed(verdicts: &[ObjectiveVerdict]) -> Vec<&str> {
        verdicts.iter().filter(|v| !v.passed).map(|v| v.name.as_str()).collect()
    }

    #[test]
    fn percentiles_and_error_rates_are_judged_per_endpoint() {
        let mut targets = Objectives::default();
        targets.endpoint.insert(
            "slow".into(),
            profile::objectives::EndpointObjectives { p99_ms: Some(900.0), ..Default::default() },
        );
        let v = judge(
            &targets,
            &load(vec![
                endpoint("fast", 499.0, 100, 1),
                endpoint("slow", 800.0, 100, 2),
                endpoint("bad", 501.0, 100, 0),
            ]),
        );
        assert_eq!(failed(&v), ["error rate of slow", "p99 of bad"]);
        let mut short = load(vec![endpoint("e", 1.0, 10, 0)]);
        short.unsent = 3;
        assert_eq!(failed(&judge(&targets, &short)), ["requests left unsent"]);
        let errors = v.iter().find(|v| v.name == "error rate of slow").unwrap();
        assert!(errors.detail.contains("503: 2"), "{}", errors.detail);
    }

    #[test]
    fn a_target_without_a_measurement_fails() {
        let mut targets = Objectives { min_users: Some(10), ..Objectives::default() };
        targets.metrics.push(profile::objectives::MetricObjective {
            name: "queries".into(),
            metrics: "/metrics".into(),
            numerator: vec!["a".into()],
            denominator: vec!["b".into()],
            min: None,
            max: Some(10.0),
        });
        let v = judge(&targets, &load(vec![endpoint("idle", 0.0, 0, 0)]));
        assert_eq!(
            failed(&v),
            [
                "p50 of idle",
                "p95 of idle",
                "p99 of idle",
                "error rate of idle",
                "concurrent users",
                "queries"
            ]
        );
    }

    #[test]
    fn metric_ratios_are_judged_against_their_bounds() {
        let mut targets = Objectives { min_throughput: Some(150.0), ..Objectives::default() };
        targets.metrics.push(profile::objectives::MetricObjective {
            name: "cache-hit-rate".into(),
            metrics: "/metrics".into(),
            numerator: vec!["a".into()],
            denominator: vec!["b".into()],
            min: Some(0.8),
            max: None,
        });
        let v = judge(&targets, &load(vec![endpoint("e", 1.0, 10, 0)]));
        assert_eq!(failed(&v), ["throughput", "cache-hit-rate"]);
    }

    /// `e` with 10 requests a second for 12 s, failing all of seconds 3 and 4.
    fn faulted(mut e: EndpointReport) -> EndpointReport {
        e.timeline = (0..13u64)
            .map(|t| report::Second::counted(t, 10, if (3..=4).contains(&t) { 10 } else { 0 }))
            .collect();
        e
    }

    fn fault(name: &str, recover_within_s: f64, max_errors_during: u64) -> report::FaultWindow {
        report::FaultWindow {
            name: name.into(),
            target: "link redis".into(),
            action: "down".into(),
            started_at_ms: 3_200,
            ended_at_ms: Some(4_800),
            error: None,
            recover_within_s: Some(recover_within_s),
            max_errors_during: Some(max_errors_during),
            max_error_rate: 0.0,
        }
    }

    #[test]
    fn judge_ends_with_the_verdicts_around_each_fault() {
        let mut l = load(vec![faulted(endpoint("e", 1.0, 130, 20))]);
        l.faults = vec![fault("held", 1.0, 20), fault("broken", 0.1, 19)];
        let v = judge(&Objectives::default(), &l);
        let tail: Vec<(&str, ObjectiveKind, bool)> =
            v[v.len() - 4..].iter().map(|v| (v.name.as_str(), v.kind, v.passed)).collect();
        assert_eq!(
            tail,
            [
                ("errors during held", ObjectiveKind::ErrorsDuring, true),
                ("recovery after held", ObjectiveKind::Recovery, true),
                ("errors during broken", ObjectiveKind::ErrorsDuring, false),
                ("recovery after broken", ObjectiveKind::Recovery, false),
            ]
        );
        // Recovered at second 5, 0.2 s after the end at 4.8 s.
        assert!((v[v.len() - 1].measured.unwrap() - 0.2).abs() < 1e-9, "{:?}", v[v.len() - 1]);
        assert_eq!(faults(&l).len(), 4);
        l.faults.clear();
        assert!(faults(&l).is_empty());
    }

    #[test]
    fn a_selector_the_target_does_not_expose_is_named() {
        let text = "stampede_x_total 5\nstampede_y_total{a=\"1\"} 2\nstampede_y_total{a=\"2\"} 3\n";
        assert_eq!(sums(text, &["stampede_x_total".into(), "stampede_y_total".into()]), Ok(10.0));
        let err = sums(text, &["stampede_z".into()]).unwrap_err();
        assert!(err.contains("stampede_z"), "{err}");
    }
}
