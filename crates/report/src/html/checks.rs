//! The checks' section, and the only place the page reads the checks' document
//! (`Report.checks`, `checks.json`'s JSON): [`section`] renders it, [`tally`] counts what
//! held for the header.

use maud::{Markup, html};
use serde_json::Value;

use super::{badge, pass_fail};

/// How many checks held, of how many.
pub(super) fn tally(checks: &Value) -> Option<(usize, usize)> {
    let verdicts = checks.get("verdicts")?.as_array()?;
    Some((verdicts.iter().filter(|v| v["passed"] == true).count(), verdicts.len()))
}

/// Every check's verdict, failed ones open: its summary, violations, evidence and the
/// operations that broke it.
pub(super) fn section(checks: Option<&Value>) -> Markup {
    let Some(checks) = checks else {
        return html! { section id="checks" { h2 { "Checks" } p.none { "No checks ran in this run." } } "\n" };
    };
    let verdicts = checks.get("verdicts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let held = verdicts.iter().filter(|v| v["passed"] == true).count();
    html! {
        section id="checks" {
            h2 { "Checks" }
            p {
                (held) " of " (verdicts.len()) " checks held"
                @if checks["complete"] == false { " (the checks were interrupted)" }
                ". "
                button type="button" data-details="open" { "expand all" } " "
                button type="button" data-details="close" { "collapse all" }
            }
            @for v in verdicts {
                @let passed = v["passed"] == true;
                @let text = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("");
                details class={ "check " (pass_fail(passed)) } open[!passed] {
                    summary {
                        (badge(passed, "held", "violated")) " " b { (text("check")) } " "
                        span.kind { (text("kind")) } " — " (text("summary"))
                    }
                    @if let Some(violations) = list(v, "violations") {
                        h4 { "Violations" }
                        ul.violations {
                            @for violation in violations {
                                li { (violation.as_str().map_or_else(|| violation.to_string(), Into::into)) }
                            }
                        }
                    }
                    @if let Some(operations) = v.get("operations").and_then(Value::as_u64) {
                        p.note { (operations) " operations recorded." }
                    }
                    @if let Some(evidence) = v.get("evidence") {
                        h4 { "Evidence" }
                        pre { (serde_json::to_string_pretty(evidence).unwrap_or_default()) }
                    }
                    @if let Some(ops) = list(v, "offending") {
                        h4 { "Offending operations" }
                        (offending(ops))
                    }
                }
            }
        }
        "\n"
    }
}
/// A list in a verdict; none when it is empty.
fn list<'a>(verdict: &'a Value, key: &str) -> Option<&'a [Value]> {
    verdict.get(key)?.as_array().map(Vec::as_slice).filter(|l| !l.is_empty())
}

/// The operations that broke a check, a row each.
fn offending(ops: &[Value]) -> Markup {
    let cell = |op: &Value, key: &str| match op.get(key) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Null) | None => "—".to_owned(),
        Some(other) => other.to_string(),
    };
    html! {
        table.ops {
            thead {
                tr {
                    th { "process" } th { "instance" } th { "f" } th { "invoked µs" } th { "completed µs" }
                    th { "status" } th { "outcome" } th { "value" }
                }
            }
            tbody {
                @for op in ops {
                    tr {
                        td.n { (cell(op, "process")) }
                        td.n { (cell(op, "instance")) }
                        td { (cell(op, "f")) }
                        td.n { (cell(op, "invoke_us")) }
                        td.n { (cell(op, "complete_us")) }
                        td.n { (cell(op, "status")) }
                        td { (cell(op, "outcome")) }
                        td { code { (cell(op, "value")) } }
                    }
                }
            }
        }
    }
}
