//! `report.json` against its committed schema (`report.schema.json`, whose `checks` refers to
//! `checks.schema.json`): a built report, a recorded real one and one written by `write_all`
//! validate, and the validator rejects broken reports (so the check can fail).

use serde_json::{Value, json};

use crate::sample;

const BASE: &str = "https://stampede.invalid/schemas/";

pub fn validate(report: &Value) -> Result<(), String> {
    let schema = |text: &str| -> Value { serde_json::from_str(text).expect("the schema is JSON") };
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler
        .add_resource(&format!("{BASE}report.schema.json"), schema(include_str!("../../report.schema.json")))
        .expect("add the report schema");
    compiler
        .add_resource(&format!("{BASE}checks.schema.json"), schema(include_str!("../../checks.schema.json")))
        .expect("add the checks schema");
    let index =
        compiler.compile(&format!("{BASE}report.schema.json"), &mut schemas).expect("the schema compiles");
    schemas.validate(report, index).map_err(|e| format!("{e:#}"))
}

#[test]
fn a_report_built_from_recorded_histograms_validates() {
    validate(&serde_json::to_value(sample::built()).unwrap()).unwrap();
}

#[test]
fn the_report_a_real_run_wrote_validates() {
    let recorded = sample::recorded();
    validate(&recorded).unwrap();
    // It is the typed report too, and has what the renderings draw.
    let report: report::Report = serde_json::from_value(recorded).unwrap();
    let load = report.load.expect("the recorded run loaded the stack");
    assert!(load.endpoints.iter().all(|e| !e.timeline.is_empty()));
    assert!(report.checks.unwrap().verdicts.len() >= 10);
}

#[test]
fn write_all_writes_a_valid_report_and_its_two_renderings_atomically() {
    let dir = std::env::temp_dir().join(format!("stampede-report-{}", std::process::id()));
    let written = report::write_all(&dir, &sample::built()).unwrap();
    let back: Value = serde_json::from_slice(&std::fs::read(&written.json).unwrap()).unwrap();
    validate(&back).unwrap();
    assert_eq!(written.json, dir.join("report.json"));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuites ") && junit.trim_end().ends_with("</testsuites>"));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_schema_rejects_malformed_reports() {
    let good = serde_json::to_value(sample::built()).unwrap();
    validate(&good).unwrap();
    type Breaking = fn(&mut Value);
    let broken: [(&str, Breaking); 18] = [
        ("no verdict", |r| {
            r.as_object_mut().unwrap().remove("passed");
        }),
        ("a percentile as text", |r| r["load"]["endpoints"][0]["latency_ms"]["p99"] = json!("12 ms")),
        ("a negative count", |r| r["load"]["endpoints"][0]["requests"] = json!(-1)),
        ("a histogram that is not base64", |r| r["load"]["endpoints"][0]["histogram"] = json!("not base64!")),
        ("an unknown comparison", |r| r["targets"][0]["comparison"] = json!("==")),
        ("interrupted without saying why", |r| r["run"]["complete"] = json!(false)),
        ("passed with a missed target", |r| r["passed"] = json!(true)),
        ("an unknown load model", |r| r["load"]["model"] = json!("burst")),
        ("a second without its histogram", |r| {
            r["load"]["endpoints"][0]["timeline"][0].as_object_mut().unwrap().remove("histogram");
        }),
        ("an unknown target kind", |r| r["targets"][0]["kind"] = json!("p42")),
        ("a fault without its start", |r| {
            r["load"]["faults"][0].as_object_mut().unwrap().remove("started_at_ms");
        }),
        ("a fault that ended before the epoch", |r| r["load"]["faults"][0]["ended_at_ms"] = json!(-1)),
        ("a fault's field the schema does not know", |r| r["load"]["faults"][1]["severity"] = json!("high")),
        ("passed with a regression", |r| {
            r["targets"] = json!([]);
            r["checks"] = Value::Null;
            r["passed"] = json!(true);
        }),
        ("a field the schema does not know", |r| r["load"]["endpoints"][1]["apdex"] = json!(0.9)),
        // Through the $ref into checks.schema.json: a check that held with violations.
        ("a held check with violations", |r| r["checks"]["verdicts"][1]["status"] = json!("held")),
        ("an inconclusive check with nothing missing", |r| {
            r["checks"]["verdicts"][0]["status"] = json!("inconclusive")
        }),
        ("a held check with evidence missing", |r| {
            r["checks"]["verdicts"][0]["requirements"] =
                json!([{ "name": "windows-judged", "met": false, "observed": "no window" }])
        }),
    ];
    for (what, breaking) in broken {
        let mut report = good.clone();
        breaking(&mut report);
        assert!(validate(&report).is_err(), "the schema accepts a report with {what}");
    }
    // What may legitimately be absent: no checks, no load.
    let mut bare = good;
    bare["checks"] = Value::Null;
    bare["load"] = Value::Null;
    validate(&bare).unwrap();
}
