//! What every loom model shares: running a model and collecting the violations it found.

use std::sync::{Arc, Mutex};

use reference::Violation;

/// Violations found across every explored interleaving. A plain std mutex, outside the model:
/// it records, it does not take part.
#[derive(Clone, Default)]
pub struct Found(Arc<Mutex<Vec<Violation>>>);

impl Found {
    pub fn record(&self, verdict: Result<(), Violation>) {
        if let Err(v) = verdict {
            self.0.lock().unwrap().push(v);
        }
    }

    pub fn take(&self) -> Vec<Violation> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Explores every interleaving of `model` (bounded by `LOOM_MAX_PREEMPTIONS`) and returns the
/// violations it recorded.
pub fn explore<F>(model: F) -> Vec<Violation>
where
    F: Fn(&Found) + Send + Sync + 'static,
{
    let found = Found::default();
    let inside = found.clone();
    loom::model(move || model(&inside));
    found.take()
}

/// Asserts the correct implementation never broke its invariant.
pub fn assert_holds(violations: &[Violation]) {
    assert!(violations.is_empty(), "correct implementation broke its invariant: {violations:?}");
}

/// Asserts the model caught the mutant, and on the expected rule.
pub fn assert_caught(violations: &[Violation], rule: &str) {
    assert!(!violations.is_empty(), "mutant survived every interleaving; expected {rule}");
    assert!(
        violations.iter().all(|v| v.rule == rule),
        "mutant caught on an unexpected rule (expected {rule}): {violations:?}"
    );
}
