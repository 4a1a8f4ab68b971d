//! The checks' section: [`section`] renders every verdict, [`tally`] counts what held for the
//! header.

use maud::{Markup, html};

use crate::checks::{ChecksReport, Op, Status, Verdict};

/// `3 held, 1 violated, 2 inconclusive` for the header.
pub(super) fn tally(checks: &ChecksReport) -> String {
    checks.tally()
}

/// A verdict's class (its colour) and badge word.
fn state(v: &Verdict) -> (&'static str, &'static str) {
    match v.status {
        Status::Held => ("pass", "held"),
        Status::Violated => ("fail", "violated"),
        Status::Inconclusive if v.allowed => ("unknown", "inconclusive, allowed"),
        Status::Inconclusive => ("unknown", "inconclusive"),
    }
}

/// Every check's verdict, failed ones open: its summary, violations, evidence and the
/// operations that broke it.
pub(super) fn section(checks: Option<&ChecksReport>) -> Markup {
    let Some(checks) = checks else {
        return html! { section id="checks" { h2 { "Checks" } p.none { "No checks ran in this run." } } "\n" };
    };
    let verdicts = &checks.verdicts;
    html! {
        section id="checks" {
            h2 { "Checks" }
            p {
                (checks.tally())
                @if !checks.complete { " (the checks were interrupted)" }
                ". "
                button type="button" data-details="open" { "expand all" } " "
                button type="button" data-details="close" { "collapse all" }
            }
            @for v in verdicts {
                @let (class, word) = state(v);
                details class={ "check " (class) } open[!v.held()] {
                    summary {
                        span class={ "badge " (class) } { (word) } " " b { (v.check) } " "
                        span.kind { (v.kind) } " — " (v.summary)
                    }
                    @if !v.violations.is_empty() {
                        h4 { "Violations" }
                        ul.violations {
                            @for violation in &v.violations {
                                li { (violation.rule) ": " (violation.detail) }
                            }
                        }
                    }
                    @if !v.requirements.is_empty() {
                        h4 { "Evidence required" }
                        ul.requirements {
                            @for r in &v.requirements {
                                li class=(if r.met { "met" } else { "unmet" }) {
                                    (if r.met { "✓ " } else { "✗ " }) b { (r.name) } ": " (r.observed)
                                    @if let Some(remedy) = &r.remedy { " — " em { (remedy) } }
                                }
                            }
                        }
                    }
                    p.note { (crate::plural(v.operations as u64, "operation", "operations")) " recorded." }
                    h4 { "Evidence" }
                    pre { (serde_json::to_string_pretty(&v.evidence).unwrap_or_default()) }
                    @if !v.offending.is_empty() {
                        h4 { "Offending operations" }
                        (offending(&v.offending))
                    }
                }
            }
        }
        "\n"
    }
}

/// The operations that broke a check, a row each.
fn offending(ops: &[Op]) -> Markup {
    html! {
        table.ops {
            thead {
                tr {
                    th { "process" } th { "instance" } th { "action" } th { "invoked µs" } th { "completed µs" }
                    th { "status" } th { "outcome" } th { "value" }
                }
            }
            tbody {
                @for op in ops {
                    tr {
                        td.n { (op.process) }
                        td.n { (op.instance) }
                        td { (op.action) }
                        td.n { (op.invoke_us) }
                        td.n { (op.complete_us) }
                        td.n { (op.status.map_or_else(|| "—".to_owned(), |s| s.to_string())) }
                        td { (serde_json::to_value(op.outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                        td { code { (op.value) } }
                    }
                }
            }
        }
    }
}
