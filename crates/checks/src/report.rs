//! `reports/<run-id>/checks.json`: the run's metadata and every verdict. The schema is
//! committed beside this crate (`checks.schema.json`) and a test validates real output
//! against it. Written atomically: a temporary file in the same directory, then a rename, so a
//! reader never sees half a report.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::verdict::Verdict;

/// The schema's identifier; bumped on any incompatible change.
pub const SCHEMA: &str = "stampede.checks/1";

#[derive(Debug, Clone, Serialize)]
pub struct ChecksReport {
    pub schema: &'static str,
    pub stampede_version: &'static str,
    pub run_id: String,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    /// False when the run was interrupted: the verdicts are those reached before.
    pub complete: bool,
    pub profile: String,
    pub target: Vec<String>,
    /// How the target was set up, when stampede started it (backends, mutant).
    pub embedded: Option<serde_json::Value>,
    pub passed: bool,
    pub verdicts: Vec<Verdict>,
}

impl ChecksReport {
    pub fn failed(&self) -> usize {
        self.verdicts.iter().filter(|v| !v.passed).count()
    }
}

/// Writes `bytes` to `dir/name` atomically: the run report's writer.
pub use report::write_atomic;

/// Writes `report` as `dir/checks.json`.
pub fn write(dir: &Path, report: &ChecksReport) -> std::io::Result<PathBuf> {
    let mut bytes = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(dir, "checks.json", &bytes)
}
