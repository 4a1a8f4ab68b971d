//! Reports to render and validate: one built here from recorded histograms (every section,
//! a failed target, a violated check, an endpoint without requests, names with markup in
//! them), and one a real `stampede run` wrote (`sample-report.json`, checks and 10 s of load
//! against the embedded reference stack).

use hdrhistogram::Histogram;
use report::capacity::{CapacityReport, Step, Stepping};
use report::{
    EndpointReport, FaultWindow, Latency, LoadReport, MetricReading, ObjectiveKind, ObjectiveVerdict, Report,
    RunMeta, Second, Source,
};
use serde_json::json;

/// A name a hostile or careless profile could hold: it must show as text, never as markup.
pub const HOSTILE: &str = r#"<img src=x onerror="alert(1)">&'quoted'"#;

/// The report `stampede run` wrote in a real run (see the module's docs).
pub fn recorded() -> serde_json::Value {
    serde_json::from_str(include_str!("sample-report.json")).expect("the recorded report is JSON")
}

/// A small deterministic generator (xorshift64*), so the sample is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap()
}

/// An endpoint over `seconds` seconds at `rate`/s: latencies around `base_ms` with an
/// exponential tail, a stall of `stall_ms` in second 6, and `errors_per_s` 503s.
fn endpoint(
    name: &str,
    seed: u64,
    seconds: u64,
    rate: u64,
    base_ms: f64,
    errors_per_s: u64,
) -> EndpointReport {
    let mut rng = Rng(seed);
    let mut all = histogram();
    let mut timeline = Vec::new();
    for t in 0..seconds {
        let mut h = histogram();
        for _ in 0..rate {
            let mut ms = base_ms * (0.6 + 0.8 * rng.next()) - base_ms * 2.0 * (1.0 - rng.next()).ln() * 0.3;
            if t == 6 {
                ms += 300.0 * rng.next();
            }
            h.record((ms * 1000.0) as u64).unwrap();
        }
        all.add(&h).unwrap();
        let q = |q: f64| Some(h.value_at_quantile(q) as f64 / 1000.0);
        timeline.push(Second {
            t,
            requests: h.len(),
            errors: errors_per_s,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: Some(h.max() as f64 / 1000.0),
            histogram: report::encode_histogram(&h).unwrap(),
            open: None,
        });
    }
    let requests = all.len();
    let errors = errors_per_s * seconds;
    EndpointReport {
        name: name.to_owned(),
        requests,
        errors,
        outcomes: [("200".to_owned(), requests - errors), ("503".to_owned(), errors)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
        throughput: (requests - errors) as f64 / seconds as f64,
        latency_ms: Latency::of(&all),
        histogram: report::encode_histogram(&all).unwrap(),
        timeline,
    }
}

fn idle(name: &str, seconds: u64) -> EndpointReport {
    EndpointReport {
        name: name.to_owned(),
        requests: 0,
        errors: 0,
        outcomes: Default::default(),
        throughput: 0.0,
        latency_ms: Latency::ZERO,
        histogram: report::encode_histogram(&histogram()).unwrap(),
        timeline: (0..seconds)
            .map(|t| Second {
                t,
                requests: 0,
                errors: 0,
                p50: None,
                p90: None,
                p99: None,
                max: None,
                histogram: report::encode_histogram(&histogram()).unwrap(),
                open: None,
            })
            .collect(),
    }
}

fn target(name: &str, endpoint: Option<&str>, bound: f64, measured: f64, unit: &str) -> ObjectiveVerdict {
    let passed = measured < bound;
    ObjectiveVerdict {
        name: name.to_owned(),
        kind: if unit == "ms" { ObjectiveKind::P99 } else { ObjectiveKind::ErrorRate },
        endpoint: endpoint.map(str::to_owned),
        comparison: "<".to_owned(),
        bound,
        measured: Some(measured),
        unit: unit.to_owned(),
        passed,
        detail: format!(
            "measured {measured:.3} {unit}, {} < {bound} {unit}",
            if passed { "meets" } else { "misses" }
        ),
    }
}

/// The seconds on the timelines' axis where the sample's two faults begin and end (the second
/// never ended): the browser test finds their bands there.
pub const FAULT_SECONDS: [(f64, Option<f64>); 2] = [(3.5, Some(6.25)), (9.5, None)];

/// Two faults of a load whose second 0 began at `second0_ms`: Redis down for 2.75 s, judged
/// on its errors and its recovery, and latency to the upstream that was never removed.
fn faults(second0_ms: u64) -> Vec<FaultWindow> {
    let at = |s: f64| second0_ms + (s * 1000.0) as u64;
    vec![
        FaultWindow {
            name: "redis-down".to_owned(),
            target: "link redis".to_owned(),
            action: "down".to_owned(),
            started_at_ms: at(FAULT_SECONDS[0].0),
            ended_at_ms: FAULT_SECONDS[0].1.map(at),
            error: None,
            recover_within_s: Some(3.0),
            max_errors_during: Some(50),
            max_error_rate: 0.05,
        },
        FaultWindow {
            name: format!("slow upstream {HOSTILE}"),
            target: "link upstream".to_owned(),
            action: "latency 200 ms ± 20 ms".to_owned(),
            started_at_ms: at(FAULT_SECONDS[1].0),
            ended_at_ms: None,
            error: Some(format!("removing it failed: {HOSTILE}")),
            recover_within_s: Some(2.0),
            max_errors_during: None,
            max_error_rate: 0.05,
        },
    ]
}

/// A failed run with every section filled, merged from two generators, compared with a
/// baseline (two regressions), with a capacity run's steps, fit and plan.
pub fn built() -> Report {
    let seconds = 12;
    let mut endpoints = vec![
        endpoint("import", 1, seconds, 40, 4.0, 0),
        endpoint("dashboard", 2, seconds, 25, 9.0, 1),
        endpoint(HOSTILE, 3, seconds, 10, 2.0, 0),
        idle("publish", seconds),
    ];
    // The hostile endpoint's sessions open, as a WebSocket entry's timeline carries them.
    endpoints[2].timeline.iter_mut().for_each(|s| s.open = Some(10 * s.t));
    let requests: u64 = endpoints.iter().map(|e| e.requests).sum();
    let errors: u64 = endpoints.iter().map(|e| e.errors).sum();
    let mut targets: Vec<ObjectiveVerdict> = endpoints
        .iter()
        .filter(|e| e.requests > 0)
        .map(|e| target(&format!("p99 of {}", e.name), Some(&e.name), 100.0, e.latency_ms.p99, "ms"))
        .collect();
    targets.push(target("error rate of dashboard", Some("dashboard"), 0.01, 1.0 / 25.0, "ratio"));
    targets.push(ObjectiveVerdict {
        name: "p99 of publish".to_owned(),
        kind: ObjectiveKind::P99,
        endpoint: Some("publish".to_owned()),
        comparison: "<".to_owned(),
        bound: 500.0,
        measured: None,
        unit: "ms".to_owned(),
        passed: false,
        detail: "nothing was measured".to_owned(),
    });
    let mut report = Report {
        schema: report::SCHEMA.to_owned(),
        run: RunMeta {
            id: "20261123T101500Z-7f3a".to_owned(),
            command: Some("run".to_owned()),
            stampede_version: "0.1.0".to_owned(),
            git_revision: Some("02a8c8d0c0ffee".to_owned()),
            profile: format!("reference {HOSTILE}"),
            target: vec!["http://127.0.0.1:38211".to_owned(), "http://127.0.0.1:38212".to_owned()],
            embedded: Some(json!({ "instances": 2, "backend": "memory", "mutant": null })),
            host: "ci-runner-3".to_owned(),
            started_at_ms: 1_795_422_900_000,
            finished_at_ms: 1_795_422_935_250,
            complete: true,
            interrupted: None,
            sources: Vec::new(),
        },
        checks: Some(serde_json::from_value(json!({
            "schema": "stampede.checks/3",
            "stampede_version": "0.1.0",
            "run_id": "20261123T101500Z-7f3a",
            "started_at_ms": 1_795_422_900_000u64,
            "finished_at_ms": 1_795_422_921_000u64,
            "complete": true,
            "profile": "reference",
            "target": ["http://127.0.0.1:38211", "http://127.0.0.1:38212"],
            "embedded": { "instances": 2, "backend": "memory" },
            "passed": false,
            "verdicts": [
                {
                    "check": "publish-rate-limit", "kind": "rate-limit", "passed": true,
                    "summary": "40 requests, 5 admitted per 3 s window, none over",
                    "violations": [], "evidence": { "admitted": 5, "limit": 5, "windows": 8 },
                    "offending": [], "operations": 40
                },
                {
                    "check": "import-unique", "kind": "unique-creation", "passed": false,
                    "summary": "2 records for 1 of 16 keys",
                    "violations": [{ "rule": "unique-record", "detail": "key \"vid-7\" has 2 records <a> & b" }],
                    "evidence": { "keys": 16, "records": 17, "duplicates": { "vid-7": ["r1", "r2"] } },
                    "offending": [
                        { "process": 3, "instance": 0, "action": "create", "invoke_us": 1200, "complete_us": 5400,
                          "status": 201, "outcome": "ok", "value": { "id": "r1", "key": "vid-7" } },
                        { "process": 5, "instance": 1, "action": "create", "invoke_us": 1250, "complete_us": 6100,
                          "status": 201, "outcome": "ok", "value": { "id": "r2", "key": HOSTILE } }
                    ],
                    "operations": 32
                },
                {
                    "check": "publish-limit-served", "kind": "rate-limit", "status": "inconclusive",
                    "allowed": false,
                    "summary": "recovery-observed: the 60 s window was not waited out (at most 5 s)",
                    "violations": [],
                    "requirements": [
                        { "name": "windows-judged", "met": true, "observed": "3 windows" },
                        { "name": "recovery-observed", "met": false,
                          "observed": "the 60 s window was not waited out (at most 5 s)",
                          "remedy": "serve with a shorter limit window, or pass --max-wait 70s" }
                    ],
                    "evidence": { "windows": 3 }, "offending": [], "operations": 97
                }
            ]
        }))
        .expect("a checks report")),
        load: Some(LoadReport {
            model: "open".to_owned(),
            rate: Some([75.0, 75.0]),
            users: None,
            users_reached: None,
            started_at_ms: 1_795_422_921_400,
            duration_s: seconds as f64,
            requests,
            errors,
            unsent: 0,
            throughput: (requests - errors) as f64 / seconds as f64,
            endpoints,
            metrics: vec![
                MetricReading {
                    name: "cache-hit-rate".to_owned(),
                    numerator: 540.0,
                    denominator: 600.0,
                    value: Some(0.9),
                },
                MetricReading {
                    name: "queries-per-request".to_owned(),
                    numerator: 0.0,
                    denominator: 0.0,
                    value: None,
                },
            ],
            faults: faults(1_795_422_921_000),
        }),
        targets,
        comparison: None,
        capacity: None,
        passed: false,
    };
    let fault_verdicts = report::faults::judge(report.load.as_ref().unwrap());
    report.targets.extend(fault_verdicts);
    // Against a baseline where import answered three times faster: its p95 and p99 regressed.
    let mut baseline = report.clone();
    baseline.run.id = "baseline <7>".to_owned();
    for e in &mut baseline.load.as_mut().unwrap().endpoints {
        if e.name == "import" {
            e.latency_ms.p95 /= 3.0;
            e.latency_ms.p99 /= 3.0;
        }
    }
    report.comparison = Some(report::compare(
        &baseline,
        "reports/baseline/report.json",
        &report,
        &report::Tolerance::default(),
    ));
    // And the record of a capacity run: five steps on a curve that peaks, the fifth broken.
    let histogram = report.load.as_ref().unwrap().endpoints[0].histogram.clone();
    let latency = report.load.as_ref().unwrap().endpoints[0].latency_ms;
    let steps: Vec<Step> = [(100.0, 1.1), (200.0, 2.6), (300.0, 4.9), (400.0, 9.5), (500.0, 31.0)]
        .iter()
        .enumerate()
        .map(|(i, (offered, concurrency))| {
            let throughput = 180.0 * concurrency
                / (1.0 + 0.04 * (concurrency - 1.0) + 0.002 * concurrency * (concurrency - 1.0));
            Step {
                offered: *offered,
                started_at_ms: 1_795_422_921_400 + i as u64 * 12_000,
                duration_s: 10.0,
                requests: (throughput * 10.0) as u64,
                errors: 0,
                unsent: 0,
                throughput,
                concurrency: *concurrency,
                latency_ms: Latency { p99: latency.p99 * (1.0 + i as f64), ..latency },
                histogram: histogram.clone(),
                complete: true,
                passed: i < 4,
                missed: if i < 4 { Vec::new() } else { vec![format!("p99 of {HOSTILE}: misses")] },
            }
        })
        .collect();
    let stepping = Stepping {
        start: 100.0,
        step: 100.0,
        users_goal: Some(100_000),
        per_user_rate: Some(0.02),
        ..Stepping::default()
    };
    let points: Vec<(f64, f64)> = steps.iter().map(|s| (s.concurrency, s.throughput)).collect();
    report.capacity = Some(CapacityReport {
        model: "open".to_owned(),
        unit: "requests/s".to_owned(),
        instances: 2,
        sustainable: Some(3),
        stopped: format!("the step at 500 requests/s broke a target: p99 of {HOSTILE}"),
        limited_by_generator: false,
        fit: report::capacity::fit(&points),
        fit_note: None,
        plan: report::capacity::plan(&stepping, Some(steps[3].throughput), 2, false),
        stepping,
        steps,
    });
    report.run.sources = ["gen-0", "gen-1"]
        .iter()
        .map(|id| Source {
            id: (*id).to_owned(),
            host: format!("{id}.{HOSTILE}"),
            file: format!("/reports/{id}/report.json"),
            started_at_ms: 1_795_422_921_400,
            duration_s: seconds as f64,
            requests: requests / 2,
            complete: true,
        })
        .collect();
    report
}
