//! `stampede load`: the profile's `[load]` mix offered to a target (`--target URL…`, or the
//! reference stack started here), every response timed in HdrHistogram, the `[targets]`
//! judged, and `reports/<run-id>/` written — `report.json`, `report.html`, `junit.xml`
//! (atomically; on Ctrl-C with what was measured, marked interrupted).
//!
//! Exit codes: 0 every target met, 1 a target missed, 2 bad usage or configuration (a
//! malformed profile, a target naming a metric the stack does not expose), 3 a target
//! unreachable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use checks::client::Target;
use checks::profile::Profile;
use checks::scenario::Model;
use clap::Args;
use report::{Report, RunMeta, TargetVerdict};

use crate::check::{self, StackArgs};
use crate::exit::Failure;

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// The profile (default: the reference stack's, `scenarios/reference.toml`).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// `open` (an arrival rate) or `closed` (goose users); overrides the profile.
    #[arg(long, value_parser = ["open", "closed"])]
    pub model: Option<String>,
    /// Seconds of load (overrides the profile).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Open model: requests per second (overrides the profile; with --ramp-to, the start).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open model: the rate at the end; it ramps linearly.
    #[arg(long)]
    pub ramp_to: Option<f64>,
    /// Closed model: concurrent users (overrides the profile).
    #[arg(long)]
    pub users: Option<usize>,
}

pub fn run(args: LoadArgs) -> ExitCode {
    crate::exit::execute("load", load(args))
}

/// The profile with the command line's overrides, its `[load]` checked again.
pub(crate) fn load_profile(args: &LoadArgs) -> anyhow::Result<Profile> {
    let mut profile = match &args.profile {
        Some(path) => Profile::load(path)?,
        None => Profile::parse(
            std::path::Path::new("scenarios/reference.toml (built in)"),
            check::REFERENCE_PROFILE,
        )?,
    };
    let Some(load) = profile.load.as_mut() else {
        anyhow::bail!("the profile {:?} has no [load] section: nothing to offer", profile.name);
    };
    match args.model.as_deref() {
        Some("open") if load.model == Model::Closed => {
            load.model = Model::Open;
            load.users = None;
            load.users_per_s = None;
            load.think_ms = None;
            load.rate = load.rate.or(Some(50.0));
        }
        Some("closed") if load.model == Model::Open => {
            load.model = Model::Closed;
            load.rate = None;
            load.ramp_to = None;
            load.users = load.users.or(Some(10));
        }
        _ => {}
    }
    if let Some(d) = args.duration {
        load.duration_s = d;
    }
    if let Some(r) = args.rate {
        anyhow::ensure!(load.model == Model::Open, "--rate is for the open model");
        load.rate = Some(r);
        load.ramp_to = None;
    }
    if let Some(r) = args.ramp_to {
        anyhow::ensure!(load.model == Model::Open, "--ramp-to is for the open model");
        load.ramp_to = Some(r);
    }
    if let Some(u) = args.users {
        anyhow::ensure!(load.model == Model::Closed, "--users is for the closed model");
        load.users = Some(u);
    }
    load.validate(&profile.targets)
        .map_err(|e| anyhow::anyhow!("{e} (after the command line's overrides)"))?;
    Ok(profile)
}

/// The signal that ends a run early: Ctrl-C.
pub(crate) fn interrupt() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stampede: interrupted; writing what was measured");
            let _ = tx.send(true);
        }
    });
    rx
}

/// The host this runs on, for the report.
pub(crate) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The git revision stampede was built from, when the build saw one.
pub(crate) fn git_revision() -> Option<String> {
    option_env!("STAMPEDE_GIT_REVISION").map(str::to_owned)
}

/// The stack a load run is offered to: the targets named, or the reference stack started
/// here (`embedded`, to be shut down when the run ends), probed once.
pub(crate) struct Stack {
    pub embedded: Option<check::Embedded>,
    pub urls: Vec<String>,
    pub target: Arc<Target>,
}

pub(crate) async fn stack(args: &StackArgs, run: &str, profile: Profile) -> Result<Stack, Failure> {
    let embedded = if args.targets.is_empty() {
        Some(check::embedded(args, None, run, check::UNBOUNDED_PLAN).await?)
    } else {
        None
    };
    let urls: Vec<String> = match &embedded {
        Some(e) => e.stacks.iter().map(|s| s.url()).collect(),
        None => args.targets.clone(),
    };
    let target =
        Arc::new(Target::new(urls.clone(), profile, run.to_owned()).context("build the HTTP client")?);
    if let Err(e) = target.probe().await {
        if let Some(embedded) = embedded {
            embedded.shutdown("load").await;
        }
        return Err(Failure::Unreachable(e.to_string()));
    }
    Ok(Stack { embedded, urls, target })
}

async fn load(args: LoadArgs) -> Result<ExitCode, Failure> {
    let profile = load_profile(&args)?;
    let run = args.stack.run_id.clone().unwrap_or_else(check::run_id);
    let started_at_ms = check::now_ms();
    let stop = interrupt();
    let profile_name = profile.name.clone();
    let scenario = profile.load.clone().expect("load_profile checked it");
    let targets = profile.targets.clone();
    let Stack { embedded, urls, target } = stack(&args.stack, &run, profile).await?;
    let what = match scenario.model {
        Model::Open => match scenario.ramp_to {
            Some(to) => format!("open model, {} → {to} requests/s", scenario.rate.unwrap_or_default()),
            None => format!("open model, {} requests/s", scenario.rate.unwrap_or_default()),
        },
        Model::Closed => format!("closed model, {} users", scenario.users.unwrap_or_default()),
    };
    println!(
        "stampede load: {profile_name} against {} ({what}, {} s), run {run}",
        urls.join(", "),
        scenario.duration_s
    );
    let plan = load::Plan::new(scenario);
    let result = load::run(Arc::clone(&target), &plan, &targets, stop, crate::progress::reporter()).await;
    if let Some(embedded) = embedded {
        embedded.shutdown("load").await;
    }
    let outcomes = result?;
    let complete = !outcomes.interrupted;
    let passed = complete && outcomes.targets.iter().all(|t| t.passed);
    let report = Report {
        schema: report::SCHEMA.to_owned(),
        run: RunMeta {
            id: run.clone(),
            stampede_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_revision: git_revision(),
            profile: profile_name,
            target: urls,
            embedded: None,
            host: host(),
            started_at_ms,
            finished_at_ms: check::now_ms(),
            complete,
            interrupted: (!complete).then(|| "interrupted (Ctrl-C)".to_owned()),
            sources: Vec::new(),
        },
        checks: None,
        load: Some(outcomes.load),
        targets: outcomes.targets,
        comparison: None,
        capacity: None,
        passed,
    };
    let dir = args.stack.reports.join(&run);
    let written = report::write_all(&dir, &report).with_context(|| format!("write {}", dir.display()))?;
    print_summary(&report);
    println!(
        "stampede load: {} of {} targets met{}; report in {} (and report.html, junit.xml)",
        report.targets.iter().filter(|t| t.passed).count(),
        report.targets.len(),
        if complete { "" } else { " (interrupted)" },
        written.json.display()
    );
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The endpoints' figures and the targets missed, as a table.
pub(crate) fn print_summary(report: &Report) {
    let Some(load) = &report.load else { return };
    println!(
        "  {:<20} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "endpoint", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for e in &load.endpoints {
        let l = &e.latency_ms;
        println!(
            "  {:<20} {:>8} {:>7} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            e.name, e.requests, e.errors, e.throughput, l.p50, l.p95, l.p99, l.p99_9, l.max
        );
    }
    println!("  {:<20} {:>8} {:>7} {:>9.1}", "all", load.requests, load.errors, load.throughput);
    if load.unsent > 0 {
        println!("  {} requests fell due and were never sent (the generator fell behind)", load.unsent);
    }
    if let Some(peak) = load.open_sessions_peak() {
        println!("  WebSocket sessions open at once: {peak} at most (sampled as each second ended)");
    }
    for m in &load.metrics {
        let value = m.value.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
        println!("  metric {:<28} {value} ({} / {})", m.name, m.numerator, m.denominator);
    }
    let missed: Vec<&TargetVerdict> = report.targets.iter().filter(|t| !t.passed).collect();
    for t in missed {
        println!("  MISSED {}: {}", t.name, t.detail);
    }
}
