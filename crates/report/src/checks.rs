//! The checks' results: `reports/<run-id>/checks.json` (schema `checks.schema.json` beside
//! this crate) and the `checks` section of `report.json`. Each verdict carries its evidence —
//! counts, each broken rule, the smallest set of operations that shows it — so a failure can
//! be understood from the report alone. The HTML and JUnit writers read these types.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schema's identifier; bumped on any incompatible change.
pub const SCHEMA: &str = "stampede.checks/2";

/// Offending operations kept per verdict.
pub const MAX_OFFENDING: usize = 20;

/// A run's checks: its metadata and every verdict reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChecksReport {
    pub schema: String,
    pub stampede_version: String,
    pub run_id: String,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    /// False when the run was interrupted: the verdicts are those reached before.
    pub complete: bool,
    pub profile: String,
    pub target: Vec<String>,
    /// How the target was set up, when stampede started it (backends, mutant, settings).
    pub embedded: Option<Value>,
    pub passed: bool,
    pub verdicts: Vec<Verdict>,
}

impl ChecksReport {
    /// The verdicts that did not pass.
    pub fn failed(&self) -> usize {
        self.verdicts.iter().filter(|v| !v.passed).count()
    }
}

/// What one check concluded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// The check's name in the profile.
    pub check: String,
    /// Its kind (`rate-limit`, `unique-creation`, …).
    pub kind: String,
    pub passed: bool,
    /// One line for the terminal table, built from the evidence.
    pub summary: String,
    /// Each rule broken, with what was seen.
    pub violations: Vec<Violation>,
    /// Counts and parameters behind the summary.
    pub evidence: Value,
    /// The operations that show a violation (at most [`MAX_OFFENDING`]).
    pub offending: Vec<Op>,
    /// Operations recorded for this check.
    pub operations: usize,
}

/// A rule broken, and what was seen. Reports written before the rule was a field
/// (`stampede.checks/1`: `"rule: detail"`) read as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ViolationRepr")]
pub struct Violation {
    /// The rule, kebab-case (`over-admission`, `lost-update`, …).
    pub rule: String,
    pub detail: String,
}

/// A violation as either schema wrote it.
#[derive(Deserialize)]
#[serde(untagged)]
enum ViolationRepr {
    Typed { rule: String, detail: String },
    Line(String),
}

impl From<ViolationRepr> for Violation {
    fn from(repr: ViolationRepr) -> Self {
        match repr {
            ViolationRepr::Typed { rule, detail } => Self { rule, detail },
            ViolationRepr::Line(line) => match line.split_once(": ") {
                Some((rule, detail)) => Self { rule: rule.to_owned(), detail: detail.to_owned() },
                None => Self { rule: line, detail: String::new() },
            },
        }
    }
}

impl Verdict {
    /// A verdict that holds until a rule is broken.
    pub fn new(check: &str, kind: &str, operations: usize, evidence: Value) -> Self {
        Self {
            check: check.to_owned(),
            kind: kind.to_owned(),
            passed: true,
            summary: String::new(),
            violations: Vec::new(),
            evidence,
            offending: Vec::new(),
            operations,
        }
    }

    /// Records a broken rule and the operations that show it.
    pub fn violate(&mut self, rule: &str, detail: impl Into<String>, ops: impl IntoIterator<Item = Op>) {
        self.passed = false;
        self.violations.push(Violation { rule: rule.to_owned(), detail: detail.into() });
        let room = MAX_OFFENDING.saturating_sub(self.offending.len());
        self.offending.extend(ops.into_iter().take(room));
    }

    pub fn summarize(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// The rules broken, in order.
    pub fn rules(&self) -> Vec<&str> {
        self.violations.iter().map(|v| v.rule.as_str()).collect()
    }

    /// Every violation as `rule: detail`, joined with `; ` (a summary of a failure).
    pub fn violations_line(&self) -> String {
        self.violations.iter().map(|v| format!("{}: {}", v.rule, v.detail)).collect::<Vec<_>>().join("; ")
    }
}

/// How an operation ended, as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The target answered and the answer says the operation took effect.
    Ok,
    /// The target answered and the answer says it did not.
    Fail,
    /// No usable answer (timeout, connection reset, an unexpected status): it may or may not
    /// have taken effect.
    Unknown,
}

/// One operation of a check's history: invoked at `invoke_us`, completed at `complete_us` (µs
/// since the run began, one monotonic clock).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Op {
    /// The logical client (a user, a connection) that issued it.
    pub process: usize,
    /// The target instance (index into the target's URLs) it was sent to.
    pub instance: usize,
    /// What it did: `publish`, `import`, `read-back`, `probe`, … (`f` in `stampede.checks/1`).
    #[serde(alias = "f")]
    pub action: String,
    pub invoke_us: u64,
    pub complete_us: u64,
    /// The HTTP status; none when there was no answer.
    pub status: Option<u16>,
    pub outcome: Outcome,
    /// What the checker needs from the answer (parsed fields, headers).
    pub value: Value,
}

/// Writes `report` as `dir/checks.json`, atomically.
pub fn write(dir: &Path, report: &ChecksReport) -> std::io::Result<PathBuf> {
    let mut bytes = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    crate::write_atomic(dir, "checks.json", &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_of_the_first_checks_schema_still_reads() {
        let old = serde_json::json!({
            "check": "import-unique", "kind": "unique-creation", "passed": false, "summary": "2 records",
            "violations": ["unique-record: key \"k\": 2 records", "bare"],
            "evidence": {}, "operations": 2,
            "offending": [{ "process": 0, "instance": 1, "f": "create", "invoke_us": 1, "complete_us": 2,
                            "status": 201, "outcome": "ok", "value": null }]
        });
        let verdict: Verdict = serde_json::from_value(old).unwrap();
        assert_eq!(verdict.rules(), ["unique-record", "bare"]);
        assert_eq!(verdict.violations[0].detail, "key \"k\": 2 records");
        assert_eq!(verdict.offending[0].action, "create");
        let written = serde_json::to_value(&verdict).unwrap();
        assert_eq!(
            written["violations"][0],
            serde_json::json!({ "rule": "unique-record", "detail": "key \"k\": 2 records" })
        );
        assert_eq!(written["offending"][0]["action"], "create");
    }
}
