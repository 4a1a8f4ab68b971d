//! The recorded history of a check: every operation as an invocation and a completion on the
//! target's one monotonic stopwatch, the instance it went to, and its parsed outcome — what a
//! checker judges, Jepsen-style, after the fact. The types are the report's.

use client::Answer;
use serde_json::Value;

pub use report::checks::{Op, Outcome};

/// An answer recorded as an operation of the history.
pub trait Record {
    /// The operation `action` of logical client `process` on `instance`, its outcome and what
    /// the checker keeps of the answer.
    fn op(&self, process: usize, instance: usize, action: &str, outcome: Outcome, value: Value) -> Op;
}

impl Record for Answer {
    fn op(&self, process: usize, instance: usize, action: &str, outcome: Outcome, value: Value) -> Op {
        Op {
            process,
            instance,
            action: action.to_owned(),
            invoke_us: self.invoke_us,
            complete_us: self.complete_us,
            status: self.status,
            outcome,
            value,
        }
    }
}
