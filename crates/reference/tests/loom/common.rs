//! What every loom model shares: running a model and collecting the violations it found.

use std::sync::{Arc, Mutex};

use loom::thread;
use reference::Violation;
use reference::invariant::Judgement;
use reference::limit::{Decision, RateLimiter};
use reference::sync::block_on;

/// Violations found across every explored interleaving. A plain std mutex, outside the model:
/// it records, it does not take part.
#[derive(Clone, Default)]
pub(crate) struct Found(Arc<Mutex<Vec<Violation>>>);

impl Found {
    pub(crate) fn record(&self, verdict: Result<(), Violation>) {
        if let Err(v) = verdict {
            self.0.lock().unwrap().push(v);
        }
    }

    pub(crate) fn take(&self) -> Vec<Violation> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Explores every interleaving of `model` (bounded by `LOOM_MAX_PREEMPTIONS`) and returns the
/// violations it recorded.
pub(crate) fn explore<F>(model: F) -> Vec<Violation>
where
    F: Fn(&Found) + Send + Sync + 'static,
{
    let found = Found::default();
    let inside = found.clone();
    loom::model(move || model(&inside));
    found.take()
}

/// Asserts the correct implementation never broke its invariant.
pub(crate) fn assert_holds(violations: &[Violation]) {
    assert!(violations.is_empty(), "correct implementation broke its invariant: {violations:?}");
}

/// Asserts the model caught the mutant, and on the expected rule.
pub(crate) fn assert_caught(violations: &[Violation], rule: &str) {
    assert!(!violations.is_empty(), "mutant survived every interleaving; expected {rule}");
    assert!(
        violations.iter().all(|v| v.rule == rule),
        "mutant caught on an unexpected rule (expected {rule}): {violations:?}"
    );
}

/// Three simultaneous calls for one key through `limiter` (two spawned threads and the model's
/// own), their decisions judged by `judge` and recorded in `found`.
pub(crate) fn three_callers<L: RateLimiter + 'static>(
    limiter: L,
    found: &Found,
    judge: fn(&[Decision]) -> Judgement,
) {
    let limiter = Arc::new(limiter);
    let spawned: Vec<_> = (0..2)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            thread::spawn(move || block_on(limiter.check("user")).unwrap())
        })
        .collect();
    let mut decisions = vec![block_on(limiter.check("user")).unwrap()];
    decisions.extend(spawned.into_iter().map(|h| h.join().unwrap()));
    found.record(judge(&decisions));
}
