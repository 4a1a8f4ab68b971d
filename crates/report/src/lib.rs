//! The run report: `reports/<run-id>/report.json` (schema `report.schema.json` beside this
//! crate, validated against real output in a test), and the files rendered from it. Every
//! endpoint's latency histogram travels in the report as HdrHistogram's V2 encoding in base64,
//! so reports from several generators merge exactly: histograms are added, never percentiles
//! averaged.
//!
//! [`write_all`] writes the three files of a run, each atomically:
//! - `report.json` — everything: run metadata, the checks' verdicts (`checks.json`'s
//!   document), per-endpoint percentiles, outcomes, per-second timelines and histograms, the
//!   faults injected during the load, the targets' verdicts (those around the faults from
//!   [`faults`]); the machine-readable contract.
//! - `report.html` ([`html()`]) — the same for people, one self-contained file: verdict, tables,
//!   SVG charts (latency percentiles over time, latency by percentile decoded from the
//!   histograms, throughput and errors; the faults shaded on those over time), the checks'
//!   evidence.
//! - `junit.xml` ([`junit()`]) — a test case per target and per check, for CI servers.
//!
//! Why these dependencies: hdrhistogram is the card's latency recorder and owns its wire
//! format (V2); base64 is how that binary format travels in JSON. maud writes `report.html`:
//! its `html!` macro is checked at compile time and escapes every value spliced into the page,
//! in text and in attributes, so no report string reaches the page unescaped and none is
//! escaped by hand. It was preferred to askama because this page is built from Rust values
//! rather than filled in: the SVG charts, the tables and each section are functions returning
//! markup that splice into one another as already-escaped `Markup`, where askama's template
//! files would take the charts either as strings marked `|safe` (a gap in its auto-escaping,
//! where chart titles carry endpoint names) or as template loops over computed coordinates;
//! and maud needs no files beside the code to make a page that must stay one file. Its runtime
//! is one small crate (itoa, already here through serde_json); its macro adds maud_macros,
//! proc-macro2-diagnostics and syn 2 at build time. The charts are drawn here as SVG, and
//! `junit.xml` is written and escaped here (`junit` says why not with quick-junit).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

pub mod capacity;
pub mod checks;
mod compare;
pub mod faults;
mod html;
mod junit;
mod merge;

pub use compare::{BaselineRef, Change, Comparison, Tolerance, compare};
/// How the page escapes a string, for tests that look for a report's string in a written
/// `report.html` (`tests/support`).
pub use html::escape as escape_html;
pub use html::html;
pub use junit::junit;
pub use merge::{MergeError, merge};

/// The schema's identifier; bumped on any incompatible change.
pub const SCHEMA: &str = "stampede.report/3";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub run: RunMeta,
    /// The `checks.json` of the run's checks, when it ran them.
    pub checks: Option<checks::ChecksReport>,
    pub load: Option<LoadReport>,
    pub targets: Vec<ObjectiveVerdict>,
    /// This run's latencies against a baseline run's (`stampede report compare`).
    pub comparison: Option<Comparison>,
    /// The steps of a capacity run (`stampede capacity`); `load` and `targets` are then its
    /// highest sustainable step's (its first step's when none was).
    pub capacity: Option<capacity::CapacityReport>,
    /// Every check held, every target was met, no regression beyond the tolerance against a
    /// baseline, and the run completed.
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: String,
    /// The command that wrote the report, as typed after `stampede`: `run`, `load`, `capacity`,
    /// `report merge`, `report compare` ([`Report::command`] says it for a report without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub stampede_version: String,
    /// `git rev-parse HEAD` of the tree stampede was built from, when known.
    pub git_revision: Option<String>,
    pub profile: String,
    pub target: Vec<String>,
    /// How the target was set up, when stampede started it.
    pub embedded: Option<serde_json::Value>,
    pub host: String,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    /// False when the run was interrupted (Ctrl-C): what is here was measured before.
    pub complete: bool,
    pub interrupted: Option<String>,
    /// The generators' reports this one was merged from (`stampede report merge`); empty for
    /// a report one generator wrote.
    pub sources: Vec<Source>,
}

/// One generator's report in a merged one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub id: String,
    pub host: String,
    /// The file it was read from.
    pub file: String,
    /// Its load window (milliseconds since the Unix epoch).
    pub started_at_ms: u64,
    pub duration_s: f64,
    pub requests: u64,
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// `open` or `closed`.
    pub model: String,
    /// Open model: the offered rate at the start and the end (requests per second).
    pub rate: Option<[f64; 2]>,
    /// Closed model: users asked for, and the most that ran at once.
    pub users: Option<usize>,
    pub users_reached: Option<usize>,
    /// When the load began (milliseconds since the Unix epoch). The timelines count whole
    /// wall-clock seconds from the one this falls in, so generators' timelines line up exactly.
    pub started_at_ms: u64,
    /// Seconds the load ran (less than planned when interrupted).
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    /// Open model: requests that fell due and were never sent, because the generator could
    /// not keep up (its in-flight cap, its CPU) before the run's end. Not 0 means the offered
    /// rate was not the one asked for.
    pub unsent: u64,
    /// Answered requests per second over the run.
    pub throughput: f64,
    pub endpoints: Vec<EndpointReport>,
    /// What the target's metrics said over the run (increase of each selected series sum).
    pub metrics: Vec<MetricReading>,
    /// The faults injected while the load ran (`[[fault]]`), in the order they began.
    #[serde(default)]
    pub faults: Vec<FaultWindow>,
}

/// One fault injected during the load: what, on what, when it began and ended (wall clock, so
/// it lines up with the timelines' seconds), and the bounds the run is judged by around it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultWindow {
    /// The `[[fault]]`'s name.
    pub name: String,
    /// What it acted on: `link redis`, `link postgres`, `link upstream`, `instance 1`,
    /// `command`.
    pub target: String,
    /// What was done, in words: `down`, `latency 200 ms ± 20 ms`, `kill and restart`, ….
    pub action: String,
    /// When it was applied (milliseconds since the Unix epoch).
    pub started_at_ms: u64,
    /// When it was removed; null when it never was (the run was interrupted, or removing it
    /// failed).
    pub ended_at_ms: Option<u64>,
    /// Why applying or removing it failed, if it did.
    pub error: Option<String>,
    /// After it ends, the per-second error rate must be back under `max_error_rate` within
    /// this many seconds and stay there to the end of the load.
    pub recover_within_s: Option<f64>,
    /// The most failed requests allowed in the seconds it lasted.
    pub max_errors_during: Option<u64>,
    /// The per-second error rate counted as recovered (`[targets] max_error_rate`).
    pub max_error_rate: f64,
}

impl LoadReport {
    /// The most WebSocket sessions open at once: per second, the sum over the endpoints'
    /// samples; none when no endpoint sampled any.
    pub fn open_sessions_peak(&self) -> Option<u64> {
        let mut per_second = std::collections::BTreeMap::<u64, u64>::new();
        for s in self.endpoints.iter().flat_map(|e| &e.timeline) {
            if let Some(open) = s.open {
                *per_second.entry(s.t).or_default() += open;
            }
        }
        per_second.into_values().max()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointReport {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    /// Answers by status (`"200"`) and failures without one (`"timeout"`, `"connect"`, …).
    pub outcomes: std::collections::BTreeMap<String, u64>,
    pub throughput: f64,
    /// Milliseconds.
    pub latency_ms: Latency,
    /// The full histogram (µs, 3 significant figures): HdrHistogram V2, base64.
    pub histogram: String,
    /// One entry per second of the run, by the second each request was due.
    pub timeline: Vec<Second>,
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Second {
    /// The wall-clock second: `t` seconds after the one the load started in (the first second
    /// is partial).
    pub t: u64,
    pub requests: u64,
    pub errors: u64,
    /// Milliseconds; null in a second without requests.
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    /// The second's histogram (µs), HdrHistogram V2 in base64, so merged timelines are exact.
    pub histogram: String,
    /// A WebSocket endpoint's sessions open at the end of the second (sampled at the
    /// wall-clock second's boundary, so generators' samples add up); absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<u64>,
}

impl Second {
    /// Second `t` with its counts and nothing measured (no latencies, an empty histogram): what
    /// the judges of counts per second are tested on.
    pub fn counted(t: u64, requests: u64, errors: u64) -> Self {
        Self {
            t,
            requests,
            errors,
            p50: None,
            p90: None,
            p99: None,
            max: None,
            histogram: String::new(),
            open: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricReading {
    pub name: String,
    pub numerator: f64,
    pub denominator: f64,
    /// `numerator / denominator`; null when the denominator did not move.
    pub value: Option<f64>,
}

/// One target and whether the run met it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectiveVerdict {
    /// `p99 of import`, `error rate of dashboard`, `throughput`, `cache-hit-rate`, ….
    pub name: String,
    /// What is measured: [`ObjectiveKind`].
    pub kind: ObjectiveKind,
    /// The endpoint it applies to, if one.
    pub endpoint: Option<String>,
    /// `<` or `>`: the measured value must be below or above the bound.
    pub comparison: String,
    pub bound: f64,
    pub measured: Option<f64>,
    pub unit: String,
    pub passed: bool,
    /// Why it failed, or what it measured, in words.
    pub detail: String,
}

/// What a target measures, so a merged report can judge it again from merged figures.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    /// An endpoint's latency percentile, milliseconds.
    P50,
    P95,
    P99,
    /// An endpoint's errors over its requests.
    ErrorRate,
    /// Open model: requests due and never sent.
    Unsent,
    /// Answered requests per second, all endpoints.
    Throughput,
    /// Closed model: the most users that ran at once.
    Users,
    /// The most WebSocket sessions open at once (sampled each second, all endpoints).
    Sessions,
    /// A ratio of the target's own metrics, by the target's name.
    Metric,
    /// Seconds from a fault's end until the error rate of every endpoint was back under its
    /// bound for good ([`faults`]), by the fault's name.
    Recovery,
    /// Failed requests of every endpoint in the seconds a fault lasted ([`faults`]).
    ErrorsDuring,
    /// A fault that could not be applied or removed, or whose instance did not come back: always
    /// failed, nothing measured.
    FaultApplied,
}

impl ObjectiveKind {
    /// Judged around a fault window ([`faults`]) rather than over the whole load.
    pub fn is_fault(self) -> bool {
        matches!(self, Self::Recovery | Self::ErrorsDuring | Self::FaultApplied)
    }
}

impl ObjectiveVerdict {
    /// The verdict on `measured` against `bound` by `comparison` (`<`, `<=`, `>`, `>=`); a
    /// target without a measurement fails.
    pub fn judged(
        kind: ObjectiveKind,
        name: String,
        endpoint: Option<String>,
        comparison: &str,
        bound: f64,
        measured: Option<f64>,
        unit: &str,
    ) -> Self {
        let ok = measured.is_some_and(|m| match comparison {
            "<" => m < bound,
            "<=" => m <= bound,
            ">" => m > bound,
            ">=" => m >= bound,
            _ => false,
        });
        let detail = match measured {
            None => "nothing was measured".to_owned(),
            Some(m) => format!(
                "measured {m:.3} {unit}, {} {comparison} {bound} {unit}",
                if ok { "meets" } else { "misses" }
            ),
        };
        Self {
            name,
            kind,
            endpoint,
            comparison: comparison.to_owned(),
            bound,
            measured,
            unit: unit.to_owned(),
            passed: ok,
            detail,
        }
    }
}

impl Report {
    /// The run's verdict from its parts: it completed, every check held, every target was met
    /// and no latency regressed beyond the tolerance against a baseline.
    pub fn verdict(&self) -> bool {
        let checks = self.checks.as_ref().is_none_or(|c| c.passed);
        self.run.complete
            && checks
            && self.targets.iter().all(|t| t.passed)
            && self.comparison.as_ref().is_none_or(|c| c.regressions == 0)
    }

    /// The command that wrote the report: the one it records, else (a report written before
    /// they were recorded) the one its contents say.
    pub fn command(&self) -> &str {
        if let Some(command) = self.run.command.as_deref().filter(|c| !c.is_empty()) {
            return command;
        }
        if self.capacity.is_some() {
            "capacity"
        } else if self.comparison.is_some() {
            "report compare"
        } else if !self.run.sources.is_empty() {
            "report merge"
        } else if self.checks.is_none() && self.load.is_some() {
            "load"
        } else {
            "run"
        }
    }

    /// Reads a report `path` holds, refusing another schema.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(format!(
                    "{}: schema {other:?}, this stampede reads {SCHEMA:?} (written by another version)",
                    path.display()
                ));
            }
            None => return Err(format!("{}: no \"schema\" field: not a stampede report", path.display())),
        }
        serde_json::from_value(value).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Latency {
    /// No requests.
    pub const ZERO: Self =
        Self { min: 0.0, mean: 0.0, p50: 0.0, p90: 0.0, p95: 0.0, p99: 0.0, p99_9: 0.0, max: 0.0 };

    /// The percentiles of `h` (µs) in milliseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// `n` and the noun for it: `1 instance`, `3 instances`, `0 instances`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `h` as base64 of its V2 encoding.
pub fn encode_histogram(h: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2Serializer::new().serialize(h, &mut bytes).map_err(|e| format!("{e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram [`encode_histogram`] wrote.
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| e.to_string())?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("{e:?}"))
}

/// Writes `bytes` to `dir/name` atomically (a temporary file in the same directory, synced,
/// then renamed over it); the final path.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Writes `report` as `dir/report.json`.
fn write_json(dir: &Path, report: &Report) -> std::io::Result<PathBuf> {
    let mut bytes = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(dir, "report.json", &bytes)
}

/// Where [`write_all`] put the run's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub json: PathBuf,
    pub html: PathBuf,
    pub junit: PathBuf,
}

/// Writes `dir/report.json`, `dir/report.html` and `dir/junit.xml`, each atomically; the JSON
/// first, so the two renderings never describe a run whose report is missing.
pub fn write_all(dir: &Path, report: &Report) -> std::io::Result<Written> {
    let json = write_json(dir, report)?;
    let html = write_atomic(dir, "report.html", html::html(report).as_bytes())?;
    let junit = write_atomic(dir, "junit.xml", junit::junit(report).as_bytes())?;
    Ok(Written { json, html, junit })
}

/// Milliseconds since the Unix epoch as UTC `[year, month, day, hour, minute, second]` in the
/// proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`). No clock is read.
pub(crate) fn civil_utc(ms: u64) -> [i64; 6] {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    [year, month, day, rem / 3600, rem % 3600 / 60, rem % 60]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_survives_its_encoding_exactly() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in [1, 250, 999, 1_000, 12_345, 1_000_000, 59_000_000] {
            h.record_n(v, v % 7 + 1).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h).unwrap()).unwrap();
        assert_eq!(back.len(), h.len());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q), "q {q}");
        }
        assert!(decode_histogram("not base64!").is_err());
    }

    /// A report of `command` (none: not recorded) with a load when `load`, checks when `checks`.
    pub(crate) fn titled(command: Option<&str>, load: bool, checks: bool) -> Report {
        let load = load.then(|| {
            serde_json::json!({
                "model": "open", "rate": [10.0, 10.0], "users": null, "users_reached": null,
                "started_at_ms": 0, "duration_s": 1.0, "requests": 0, "errors": 0, "unsent": 0,
                "throughput": 0.0, "endpoints": [], "metrics": []
            })
        });
        let checks = checks.then(|| {
            serde_json::json!({
                "schema": checks::SCHEMA, "stampede_version": "0", "run_id": "r1", "started_at_ms": 0,
                "finished_at_ms": 0, "complete": true, "profile": "p", "target": ["http://t"],
                "embedded": null, "passed": true, "verdicts": []
            })
        });
        serde_json::from_value(serde_json::json!({
            "schema": SCHEMA,
            "run": {
                "id": "r1", "command": command, "stampede_version": "0", "git_revision": null,
                "profile": "p", "target": ["http://t"], "embedded": null, "host": "h",
                "started_at_ms": 0, "finished_at_ms": 0, "complete": true, "interrupted": null,
                "sources": []
            },
            "checks": checks, "load": load, "targets": [], "comparison": null, "capacity": null,
            "passed": true
        }))
        .unwrap()
    }

    #[test]
    fn a_report_names_the_command_that_wrote_it_or_the_one_its_contents_say() {
        assert_eq!(titled(Some("load"), true, true).command(), "load", "recorded wins");
        assert_eq!(titled(Some("report merge"), true, false).command(), "report merge");
        assert_eq!(titled(None, true, false).command(), "load");
        assert_eq!(titled(None, true, true).command(), "run");
        assert_eq!(titled(Some(""), false, true).command(), "run");
        let mut merged = titled(None, true, false);
        merged.run.sources.push(Source {
            id: "g".into(),
            host: "h".into(),
            file: "f".into(),
            started_at_ms: 0,
            duration_s: 1.0,
            requests: 0,
            complete: true,
        });
        assert_eq!(merged.command(), "report merge");
        // Written without one, the field stays out of the JSON (old reports round-trip as read).
        assert!(serde_json::to_value(titled(None, true, false)).unwrap()["run"].get("command").is_none());
        assert_eq!(
            serde_json::to_value(titled(Some("load"), true, false)).unwrap()["run"]["command"],
            "load"
        );
    }

    #[test]
    fn latency_is_read_in_milliseconds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let l = Latency::of(&h);
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99 - 990.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
    }
}
