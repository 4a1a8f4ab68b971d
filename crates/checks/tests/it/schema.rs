//! `checks.json` against its committed schema: real verdicts validate, and the validator
//! rejects what breaks the schema (so the check can fail).

use checks::checkers::rate_limit;
use checks::history::{Op, Outcome};
use report::checks::{ChecksReport, SCHEMA};
use serde_json::{Value, json};

pub fn validate(report: &Value) -> Result<(), String> {
    let schema: Value =
        serde_json::from_str(include_str!("../../../report/checks.schema.json")).expect("the schema is JSON");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler.add_resource("checks.schema.json", schema).expect("add the schema");
    let index = compiler.compile("checks.schema.json", &mut schemas).expect("the schema compiles");
    schemas.validate(report, index).map_err(|e| format!("{e:#}"))
}

fn sample() -> ChecksReport {
    let over: Vec<Op> = (0..8)
        .map(|i| Op {
            process: 0,
            instance: i % 2,
            action: "request".into(),
            invoke_us: 10,
            complete_us: 900,
            status: Some(202),
            outcome: Outcome::Ok,
            value: json!({ "limit": 5, "reset_s": 3, "window_end_us": 3_000_900 }),
        })
        .collect();
    let failed = rate_limit::judge("publish-rate-limit", &over, &[]);
    let passed = rate_limit::judge("publish-rate-limit-2", &over[..5], &[]);
    ChecksReport {
        schema: SCHEMA.to_owned(),
        stampede_version: "0.1.0".to_owned(),
        run_id: "20261123T000000Z-0001".to_owned(),
        started_at_ms: 1,
        finished_at_ms: 2,
        complete: true,
        profile: "reference".to_owned(),
        target: vec!["http://127.0.0.1:8080".to_owned()],
        embedded: Some(json!({ "instances": 1, "backend": "memory" })),
        passed: false,
        verdicts: vec![failed, passed],
    }
}

#[test]
fn a_report_with_passing_and_failing_verdicts_validates() {
    let report = serde_json::to_value(sample()).unwrap();
    validate(&report).unwrap();
}

#[test]
fn the_schema_rejects_broken_reports() {
    let good = serde_json::to_value(sample()).unwrap();
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("complete");
    assert!(validate(&missing).is_err());
    let mut passed_with_violations = good.clone();
    passed_with_violations["verdicts"][0]["passed"] = json!(true);
    assert!(validate(&passed_with_violations).is_err());
    let mut bad_outcome = good.clone();
    bad_outcome["verdicts"][0]["offending"][0]["outcome"] = json!("maybe");
    assert!(validate(&bad_outcome).is_err());
    let mut extra = good;
    extra["verdicts"][1]["score"] = json!(1);
    assert!(validate(&extra).is_err());
}

#[test]
fn the_report_is_written_atomically_and_reads_back() {
    let dir = std::env::temp_dir().join(format!("stampede-checks-{}", std::process::id()));
    let path = report::checks::write(&dir, &sample()).unwrap();
    let back: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    validate(&back).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
