//! `stampede report merge | compare | html`: work on written reports, no stack needed.
//!
//! - `merge a.json b.json … --out DIR`: the reports of several load generators as one —
//!   histograms added, counters summed, percentiles read from the sums, targets judged again
//!   (`report::merge` says what is exact). Exit 0 when the merged targets are met, 1 when not.
//! - `compare --baseline OLD.json NEW.json`: per endpoint and percentile, the change against
//!   the baseline, with the tolerance from the flags, else the profile's `[compare]`, else
//!   the defaults; the comparison is written into NEW's report (JSON, HTML, JUnit) or `--out`.
//!   Exit 1 when a latency regressed beyond the tolerance, 0 when none did.
//! - `html REPORT.json`: report.html and junit.xml rendered again from a report.
//!
//! Exit 2 for what cannot be read or does not add up, naming the file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use report::{Report, Tolerance};

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Merge the reports of several load generators: HDR histograms added, counters summed,
    /// percentiles read from the sums (never averaged), targets judged again.
    Merge(MergeArgs),
    /// A run's latencies against a baseline run's, per endpoint and percentile; a regression
    /// beyond the tolerance exits 1 and shows in the report's JUnit and HTML.
    Compare(CompareArgs),
    /// Render report.html and junit.xml again from a report.json.
    Html(HtmlArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The generators' report.json files.
    #[arg(required = true, value_name = "REPORT")]
    pub(crate) reports: Vec<PathBuf>,
    /// Where the merged report.json, report.html and junit.xml go.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// The merged run's id (default: the directory's name).
    #[arg(long)]
    pub(crate) run_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The baseline run's report.json.
    #[arg(long, value_name = "REPORT")]
    pub(crate) baseline: PathBuf,
    /// The run to judge: its report.json.
    #[arg(value_name = "REPORT")]
    pub(crate) current: PathBuf,
    /// The relative increase allowed (0.2: 20 %); overrides the profile's.
    #[arg(long)]
    pub(crate) tolerance: Option<f64>,
    /// Increases up to this many milliseconds are never regressions; overrides the profile's.
    #[arg(long, value_name = "MS")]
    pub(crate) min_change_ms: Option<f64>,
    /// The percentiles compared, comma-separated (p50, p90, p95, p99, p99_9, max).
    #[arg(long, value_delimiter = ',')]
    pub(crate) percentiles: Vec<String>,
    /// The profile whose `[compare]` sets the tolerance (flags override it).
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// Where the compared report goes (default: the directory of the run's report.json).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct HtmlArgs {
    /// The report.json to render.
    #[arg(value_name = "REPORT")]
    pub(crate) report: PathBuf,
    /// Where report.html and junit.xml go (default: beside the report).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

pub(crate) fn run(command: ReportCommand) -> ExitCode {
    let (name, result) = match command {
        ReportCommand::Merge(args) => ("merge", merge(args)),
        ReportCommand::Compare(args) => ("compare", compare(args)),
        ReportCommand::Html(args) => ("html", html(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stampede report {name}: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &Path) -> anyhow::Result<Report> {
    Report::read(path).map_err(anyhow::Error::msg)
}

fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let inputs = args
        .reports
        .iter()
        .map(|p| Ok((p.display().to_string(), read(p)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let id = match &args.run_id {
        Some(id) => id.clone(),
        None => {
            args.out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(crate::meta::run_id)
        }
    };
    let merged = report::merge(&inputs, &id, &crate::meta::host(), crate::meta::now_ms())?;
    let written =
        report::write_all(&args.out, &merged).with_context(|| format!("write {}", args.out.display()))?;
    crate::load::print_summary(&merged);
    println!(
        "stampede report merge: {} reports, {} requests; {} of {} targets met{}; report in {} (and report.html, junit.xml)",
        inputs.len(),
        merged.load.as_ref().map_or(0, |l| l.requests),
        merged.targets.iter().filter(|t| t.passed).count(),
        merged.targets.len(),
        if merged.run.complete { "" } else { " (a generator was interrupted)" },
        written.json.display()
    );
    Ok(if merged.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The tolerance: the flags over the profile's `[compare]` over the defaults.
fn tolerance(args: &CompareArgs) -> anyhow::Result<Tolerance> {
    let mut t = match &args.profile {
        Some(path) => crate::profiles::read(Some(path))?.compare.unwrap_or_default(),
        None => Tolerance::default(),
    };
    if let Some(relative) = args.tolerance {
        t.relative = relative;
    }
    if let Some(ms) = args.min_change_ms {
        t.min_change_ms = ms;
    }
    if !args.percentiles.is_empty() {
        t.percentiles = args.percentiles.iter().map(|p| p.trim().to_owned()).collect();
    }
    t.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(t)
}

fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let tolerance = tolerance(&args)?;
    let baseline = read(&args.baseline)?;
    let mut current = read(&args.current)?;
    if !baseline.run.complete {
        bail!(
            "{}: the baseline run was interrupted; its figures describe part of a run",
            args.baseline.display()
        );
    }
    for (path, r) in [(&args.baseline, &baseline), (&args.current, &current)] {
        if r.load.is_none() {
            bail!("{}: no load ran in that run: nothing to compare", path.display());
        }
    }
    if baseline.run.profile != current.run.profile {
        eprintln!(
            "stampede report compare: note: the baseline ran profile {:?}, this run {:?}",
            baseline.run.profile, current.run.profile
        );
    }
    let comparison = report::compare(&baseline, &args.baseline.display().to_string(), &current, &tolerance);
    let regressions = comparison.regressions;
    current.comparison = Some(comparison);
    current.run.command = Some("report compare".to_owned());
    current.passed = current.verdict();
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => args.current.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    let written = report::write_all(&out, &current).with_context(|| format!("write {}", out.display()))?;
    print_comparison(&current);
    println!(
        "stampede report compare: {} against {} (beyond +{} % and +{} ms); report in {} (and report.html, junit.xml)",
        report::plural(regressions as u64, "regression", "regressions"),
        baseline.run.id,
        tolerance.relative * 100.0,
        tolerance.min_change_ms,
        written.json.display()
    );
    Ok(if regressions == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_comparison(report: &Report) {
    let Some(c) = &report.comparison else { return };
    println!("  {:<20} {:<6} {:>12} {:>12} {:>9}", "endpoint", "", "baseline ms", "this run ms", "change");
    for change in &c.changes {
        let ms = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.2}"));
        println!(
            "  {:<20} {:<6} {:>12} {:>12} {:>9}{}",
            change.endpoint,
            change.percentile,
            ms(change.baseline_ms),
            ms(change.current_ms),
            change.change.map_or("—".to_owned(), |x| format!("{:+.1}%", x * 100.0)),
            if change.regressed { format!("  REGRESSED: {}", change.detail) } else { String::new() }
        );
    }
}

fn html(args: HtmlArgs) -> anyhow::Result<ExitCode> {
    let report = read(&args.report)?;
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => args.report.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    let html = report::write_atomic(&out, "report.html", report::html(&report).as_bytes())
        .with_context(|| format!("write {}", out.display()))?;
    report::write_atomic(&out, "junit.xml", report::junit(&report).as_bytes())
        .with_context(|| format!("write {}", out.display()))?;
    println!("stampede report html: {} (and junit.xml)", html.display());
    Ok(ExitCode::SUCCESS)
}
