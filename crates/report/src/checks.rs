//! The checks' results: `reports/<run-id>/checks.json` (schema `checks.schema.json` beside
//! this crate) and the `checks` section of `report.json`. Each verdict is held, violated or
//! inconclusive, and carries its evidence — counts, each broken rule, the smallest set of
//! operations that shows it, each piece of evidence the check needed and whether it was
//! gathered — so a verdict can be understood from the report alone. A check that could not
//! gather what it needs is inconclusive, never held; a broken rule makes it violated whatever
//! else is missing. The HTML and JUnit writers read these types.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schema's identifier; bumped on any incompatible change.
pub const SCHEMA: &str = "stampede.checks/3";

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
    /// The run completed and every check held, or was inconclusive and allowed to be.
    pub passed: bool,
    pub verdicts: Vec<Verdict>,
}

impl ChecksReport {
    /// The verdicts of `status`.
    pub fn count(&self, status: Status) -> usize {
        self.verdicts.iter().filter(|v| v.status == status).count()
    }

    /// `3 held, 1 violated, 2 inconclusive (1 allowed)`: the states that occur.
    pub fn tally(&self) -> String {
        let mut parts = vec![format!("{} held", self.count(Status::Held))];
        for status in [Status::Violated, Status::Inconclusive] {
            if self.count(status) > 0 {
                parts.push(format!("{} {}", self.count(status), status.word()));
            }
        }
        let allowed = self.verdicts.iter().filter(|v| v.allowed).count();
        if allowed > 0 {
            let last = parts.last_mut().expect("inconclusive is there");
            last.push_str(&format!(" ({allowed} allowed)"));
        }
        format!("{} of {} checks: {}", self.count(Status::Held), self.verdicts.len(), parts.join(", "))
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every piece of evidence it needs was gathered, and no rule was broken.
    Held,
    /// A rule was broken: the stack has the bug the check exists for.
    Violated,
    /// Evidence it needs could not be gathered (and no rule was broken): nothing is said of
    /// the stack either way.
    Inconclusive,
}

impl Status {
    /// `held`, `violated`, `inconclusive`.
    pub fn word(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Violated => "violated",
            Status::Inconclusive => "inconclusive",
        }
    }
}

/// A piece of evidence a check needs to judge, and whether the run gathered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// Kebab-case (`windows-judged`, `recovery-observed`, `unknown-within-bound`, …).
    pub name: String,
    pub met: bool,
    /// What was observed, from the evidence.
    pub observed: String,
    /// When not met: what would let the check gather it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// At most this share of a check's operations may end with no usable answer (no answer, a
/// status nothing recognises) before its verdict is inconclusive; a kind may ask for less.
pub const MAX_UNKNOWN: f64 = 0.05;

/// What one check concluded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "VerdictRepr")]
pub struct Verdict {
    /// The check's name in the profile.
    pub check: String,
    /// Its kind (`rate-limit`, `unique-creation`, …).
    pub kind: String,
    pub status: Status,
    /// Inconclusive, and the run was told it may be (`--allow-inconclusive`).
    #[serde(default)]
    pub allowed: bool,
    /// One line for the terminal table, built from the evidence.
    pub summary: String,
    /// Each rule broken, with what was seen.
    pub violations: Vec<Violation>,
    /// The evidence the check needed, each piece gathered or not.
    #[serde(default)]
    pub requirements: Vec<Requirement>,
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

/// A verdict as either schema wrote it: `passed` before there were three states.
#[derive(Deserialize)]
struct VerdictRepr {
    check: String,
    kind: String,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    passed: Option<bool>,
    #[serde(default)]
    allowed: bool,
    summary: String,
    violations: Vec<Violation>,
    #[serde(default)]
    requirements: Vec<Requirement>,
    evidence: Value,
    offending: Vec<Op>,
    operations: usize,
}

impl From<VerdictRepr> for Verdict {
    fn from(r: VerdictRepr) -> Self {
        let status = r.status.unwrap_or(match r.passed {
            Some(true) => Status::Held,
            _ => Status::Violated,
        });
        Self {
            check: r.check,
            kind: r.kind,
            status,
            allowed: r.allowed,
            summary: r.summary,
            violations: r.violations,
            requirements: r.requirements,
            evidence: r.evidence,
            offending: r.offending,
            operations: r.operations,
        }
    }
}

impl Verdict {
    /// A verdict that holds until a rule is broken or a piece of evidence is missing.
    pub fn new(check: &str, kind: &str, operations: usize, evidence: Value) -> Self {
        Self {
            check: check.to_owned(),
            kind: kind.to_owned(),
            status: Status::Held,
            allowed: false,
            summary: String::new(),
            violations: Vec::new(),
            requirements: Vec::new(),
            evidence,
            offending: Vec::new(),
            operations,
        }
    }

    pub fn held(&self) -> bool {
        self.status == Status::Held
    }

    pub fn violated(&self) -> bool {
        self.status == Status::Violated
    }

    pub fn inconclusive(&self) -> bool {
        self.status == Status::Inconclusive
    }

    /// Held, or inconclusive and allowed to be: what a gate lets pass.
    pub fn acceptable(&self) -> bool {
        self.held() || (self.inconclusive() && self.allowed)
    }

    /// Records a broken rule and the operations that show it: violated, whatever else.
    pub fn violate(&mut self, rule: &str, detail: impl Into<String>, ops: impl IntoIterator<Item = Op>) {
        self.status = Status::Violated;
        self.violations.push(Violation { rule: rule.to_owned(), detail: detail.into() });
        let room = MAX_OFFENDING.saturating_sub(self.offending.len());
        self.offending.extend(ops.into_iter().take(room));
    }

    /// Records a piece of evidence the check needs: `met`, or missing — then the verdict is
    /// inconclusive unless a rule is broken — with what was `observed` and the `remedy`.
    pub fn require(&mut self, name: &str, met: bool, observed: impl Into<String>, remedy: impl Into<String>) {
        if !met && self.status == Status::Held {
            self.status = Status::Inconclusive;
        }
        let remedy = remedy.into();
        self.requirements.push(Requirement {
            name: name.to_owned(),
            met,
            observed: observed.into(),
            remedy: (!met && !remedy.is_empty()).then_some(remedy),
        });
    }

    /// The requirement that at most `max` (a share) of `ops` ended with no usable answer,
    /// said with the answers they got (`503 ×96, no answer ×1`).
    pub fn bound_unknown<'a>(&mut self, ops: impl IntoIterator<Item = &'a Op>, max: f64) {
        let ops: Vec<&Op> = ops.into_iter().collect();
        let unknown: Vec<&Op> = ops.iter().copied().filter(|op| op.outcome == Outcome::Unknown).collect();
        let mut answers = std::collections::BTreeMap::<String, usize>::new();
        for op in &unknown {
            *answers.entry(op.status.map_or("no answer".to_owned(), |s| s.to_string())).or_default() += 1;
        }
        let answers: Vec<String> = answers.iter().map(|(a, n)| format!("{a} ×{n}")).collect();
        let met = !ops.is_empty() && unknown.len() as f64 <= max * ops.len() as f64;
        let observed = match ops.len() {
            0 => "no operation was recorded".to_owned(),
            n if unknown.is_empty() => format!("every one of {n} operations had a recognised answer"),
            n => format!(
                "{} of {n} operations had no usable answer ({}); at most {:.0} % may",
                unknown.len(),
                answers.join(", "),
                max * 100.0
            ),
        };
        self.require(
            "unknown-within-bound",
            met,
            observed,
            "is the stack healthy (its dependencies reachable)? are its answers mapped in the profile's recognisers?",
        );
    }

    /// Sets the summary: `held` (built from the evidence by the judge) when the check held;
    /// the broken rules when violated; the missing evidence and what would gather it when
    /// inconclusive.
    pub fn summarize(mut self, held: impl Into<String>) -> Self {
        self.summary = match self.status {
            Status::Held => held.into(),
            Status::Violated => self.violations_line(),
            Status::Inconclusive => self.missing_line(),
        };
        self
    }

    /// Every missing piece of evidence as `name: observed (remedy)`, joined with `; `.
    pub fn missing_line(&self) -> String {
        self.requirements
            .iter()
            .filter(|r| !r.met)
            .map(|r| match &r.remedy {
                Some(remedy) => format!("{}: {} ({remedy})", r.name, r.observed),
                None => format!("{}: {}", r.name, r.observed),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The requirements not met, by name, in order.
    pub fn missing(&self) -> Vec<&str> {
        self.requirements.iter().filter(|r| !r.met).map(|r| r.name.as_str()).collect()
    }

    /// The rules broken, in order.
    pub fn rules(&self) -> Vec<&str> {
        self.violations.iter().map(|v| v.rule.as_str()).collect()
    }

    /// The first violation of each rule broken, as `rule: detail` joined with `; `, then how
    /// many more there were: every rule is named, and a check broken a hundred times stays one
    /// line (`violations`, checks.json and the HTML page hold every one).
    pub fn violations_line(&self) -> String {
        let mut shown: Vec<&Violation> = Vec::new();
        for violation in &self.violations {
            if !shown.iter().any(|s| s.rule == violation.rule) {
                shown.push(violation);
            }
        }
        let mut line =
            shown.iter().map(|v| format!("{}: {}", v.rule, v.detail)).collect::<Vec<_>>().join("; ");
        let more = self.violations.len() - shown.len();
        if more > 0 {
            line.push_str(&format!("; and {more} more"));
        }
        line
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
    fn a_violated_summary_names_every_rule_once_and_counts_the_rest() {
        let mut verdict = Verdict::new("c", "kind", 10, serde_json::json!({}));
        for i in 0..4 {
            verdict.violate("stale-read", format!("instance {i} served the old value"), []);
        }
        verdict.violate("not-visible", "instance 9 answered 404", []);
        let verdict = verdict.summarize("never");
        assert_eq!(
            verdict.summary,
            "stale-read: instance 0 served the old value; not-visible: instance 9 answered 404; and 3 more"
        );
        assert_eq!(verdict.violations.len(), 5);
    }

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
        assert_eq!(verdict.status, Status::Violated);
        assert_eq!(verdict.violations[0].detail, "key \"k\": 2 records");
        assert_eq!(verdict.offending[0].action, "create");
        let written = serde_json::to_value(&verdict).unwrap();
        assert_eq!(
            written["violations"][0],
            serde_json::json!({ "rule": "unique-record", "detail": "key \"k\": 2 records" })
        );
        assert_eq!(written["offending"][0]["action"], "create");
        assert_eq!(written["status"], "violated");
        assert!(written.get("passed").is_none());
    }

    #[test]
    fn a_broken_rule_outweighs_missing_evidence_and_missing_evidence_outweighs_held() {
        let mut v = Verdict::new("c", "counter", 1, serde_json::json!({}));
        v.require("reads-judged", true, "3 reads", "");
        assert!(v.held());
        v.require("recovery-observed", false, "never waited", "pass --max-wait 70s");
        assert!(v.inconclusive());
        let summary = v.clone().summarize("fine").summary;
        assert_eq!(summary, "recovery-observed: never waited (pass --max-wait 70s)");
        v.violate("lost-units", "3 lost", []);
        assert!(v.violated());
        v.require("another", false, "x", "y");
        assert!(v.violated(), "missing evidence never turns a violation back");
        assert_eq!(v.summarize("fine").summary, "lost-units: 3 lost");
    }

    #[test]
    fn unknown_operations_beyond_the_bound_are_missing_evidence_said_with_their_answers() {
        let op = |status: Option<u16>, outcome| Op {
            process: 0,
            instance: 0,
            action: "publish".into(),
            invoke_us: 0,
            complete_us: 1,
            status,
            outcome,
            value: Value::Null,
        };
        let mut ops: Vec<Op> = (0..96).map(|_| op(Some(503), Outcome::Unknown)).collect();
        ops.push(op(None, Outcome::Unknown));
        ops.push(op(Some(202), Outcome::Ok));
        let mut v = Verdict::new("p", "rate-limit", ops.len(), serde_json::json!({}));
        v.bound_unknown(&ops, MAX_UNKNOWN);
        assert!(v.inconclusive());
        assert!(v.requirements[0].observed.contains("97 of 98"), "{:?}", v.requirements);
        assert!(
            v.requirements[0].observed.contains("503 ×96")
                && v.requirements[0].observed.contains("no answer ×1")
        );
        // 5 of 100 is within 5 %; 6 of 100 is not.
        let within: Vec<Op> =
            (0..100).map(|i| op(Some(200), if i < 5 { Outcome::Unknown } else { Outcome::Ok })).collect();
        let mut v = Verdict::new("p", "rate-limit", 100, serde_json::json!({}));
        v.bound_unknown(&within, MAX_UNKNOWN);
        assert!(v.held());
        let beyond: Vec<Op> =
            (0..100).map(|i| op(Some(200), if i < 6 { Outcome::Unknown } else { Outcome::Ok })).collect();
        let mut v = Verdict::new("p", "rate-limit", 100, serde_json::json!({}));
        v.bound_unknown(&beyond, MAX_UNKNOWN);
        assert!(v.inconclusive());
    }
}
