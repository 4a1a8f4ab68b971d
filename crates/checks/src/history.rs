//! The recorded history of a check: every operation as an invocation and a completion with
//! monotonic timestamps, the instance it went to, and its parsed outcome — what a checker
//! judges, Jepsen-style, after the fact.

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

/// How an operation ended, as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// One operation: invoked at `invoke_us`, completed at `complete_us` (µs since the run began).
#[derive(Debug, Clone, Serialize)]
pub struct Op {
    /// The logical client (a user, a connection) that issued it.
    pub process: usize,
    /// The target instance (index into the target's URLs) it was sent to.
    pub instance: usize,
    /// What it was: `publish`, `import`, `read-back`, …
    pub f: &'static str,
    pub invoke_us: u64,
    pub complete_us: u64,
    /// The HTTP status; none when there was no answer.
    pub status: Option<u16>,
    pub outcome: Outcome,
    /// What the checker needs from the answer (parsed fields, headers).
    pub value: Value,
}

/// A history under construction; timestamps are taken from one monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Self { start: Instant::now() }
    }

    /// µs since the run began.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}
