//! The shape every invariant check returns when it fails.

use std::fmt;

/// A broken invariant, with the evidence that shows it.
///
/// `rule` is a stable kebab-case name ("over-admission", "lost-update", …): tests assert on it,
/// and the reports of later layers group by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub component: &'static str,
    pub rule: &'static str,
    pub evidence: String,
}

impl Violation {
    pub fn new(component: &'static str, rule: &'static str, evidence: impl Into<String>) -> Self {
        Self { component, rule, evidence: evidence.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.component, self.rule, self.evidence)
    }
}

impl std::error::Error for Violation {}

/// The outcome of judging one observation.
pub type Judgement = Result<(), Violation>;
