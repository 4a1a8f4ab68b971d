//! What a check concludes: pass or fail, with its evidence — counts, the window, the offending
//! operations — so a failure can be understood from the report alone.

use serde::Serialize;
use serde_json::Value;

use crate::history::Op;

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The check's name in the profile.
    pub check: String,
    /// The checker that judged it (`rate-limit`, `unique-creation`, …).
    pub kind: &'static str,
    pub passed: bool,
    /// One line for the terminal table.
    pub summary: String,
    /// Each broken rule, as `rule: what was seen`.
    pub violations: Vec<String>,
    /// Counts and parameters behind the summary.
    pub evidence: Value,
    /// The operations that show a violation (at most [`MAX_OFFENDING`]).
    pub offending: Vec<Op>,
    /// Operations recorded for this check.
    pub operations: usize,
}

/// Offending operations kept per verdict.
pub const MAX_OFFENDING: usize = 20;

impl Verdict {
    pub fn new(check: &str, kind: &'static str, operations: usize, evidence: Value) -> Self {
        Self {
            check: check.to_owned(),
            kind,
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
        self.violations.push(format!("{rule}: {}", detail.into()));
        let room = MAX_OFFENDING.saturating_sub(self.offending.len());
        self.offending.extend(ops.into_iter().take(room));
    }

    pub fn summarize(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// The first rule broken, without its detail.
    pub fn rules(&self) -> Vec<&str> {
        self.violations.iter().map(|v| v.split(':').next().unwrap_or(v)).collect()
    }
}
