//! `stampede load`: the profile's `[load]` mix offered to a target (`--target URL…`, or the
//! reference stack started here), every response timed in HdrHistogram, the `[targets]`
//! judged, and `reports/<run-id>/` written — `report.json`, `report.html`, `junit.xml`
//! (atomically; on SIGINT or SIGTERM with what was measured, marked interrupted).
//!
//! Exit codes: 0 every target met, 1 a target missed, 2 bad usage or configuration (a
//! malformed profile, a target naming a metric the stack does not expose), 3 a target
//! unreachable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use profile::load::Model;
use report::{ObjectiveVerdict, Report, RunMeta};

use crate::exit::Failure;
use crate::profiles::LoadOverrides;
use crate::target::{Reach, TargetArgs};

#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) stack: TargetArgs,
    /// The profile (default: the reference stack's, `scenarios/reference.toml`).
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// `open` (an arrival rate) or `closed` (goose users); overrides the profile.
    #[arg(long, value_parser = ["open", "closed"])]
    pub(crate) model: Option<String>,
    /// Seconds of load (overrides the profile).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::parse_seconds)]
    pub(crate) duration: Option<f64>,
    /// Open model: requests per second (overrides the profile; with --ramp-to, the start).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::parse_rate)]
    pub(crate) rate: Option<f64>,
    /// Open model: the rate at the end; it ramps linearly.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::parse_rate)]
    pub(crate) ramp_to: Option<f64>,
    /// Closed model: concurrent users (overrides the profile).
    #[arg(long)]
    pub(crate) users: Option<usize>,
    #[command(flatten)]
    pub(crate) faults: crate::schedule::FaultArgs,
}

pub(crate) fn run(args: LoadArgs) -> ExitCode {
    crate::exit::execute("load", load(args))
}

impl LoadArgs {
    pub(crate) fn overrides(&self) -> LoadOverrides {
        LoadOverrides {
            model: self.model.clone(),
            duration: self.duration,
            rate: self.rate,
            ramp_to: self.ramp_to,
            users: self.users,
        }
    }
}

async fn load(args: LoadArgs) -> Result<ExitCode, Failure> {
    let mut profile = crate::profiles::read(args.profile.as_deref())?;
    crate::profiles::load(&mut profile, &args.overrides())?;
    args.faults.apply(&mut profile)?;
    // `load` runs no check: a fault timed against one has nothing to run beside.
    let mut faults = profile.faults.clone();
    faults.retain(|f| match &f.check {
        Some(check) => {
            println!(
                "fault {}: left out (it runs around the check {check}; `stampede load` runs none)",
                f.name
            );
            false
        }
        None => true,
    });
    let run = args.stack.run_id.clone().unwrap_or_else(crate::meta::run_id);
    let started_at_ms = crate::meta::now_ms();
    let stop = crate::exit::interrupt();
    let profile_name = profile.name.clone();
    let spec = profile.load.clone().expect("profiles::load checked it");
    let objectives = profile.objectives.clone();
    let reach = Reach {
        command: "load",
        links: crate::schedule::need_links(&faults),
        processes: crate::schedule::need_processes(&faults),
        ..Reach::default()
    };
    let reached = crate::target::reach(&args.stack, &run, profile, reach).await?;
    let schedule =
        match crate::schedule::prepare(&faults, &objectives, &args.faults, &args.stack, &reached, &run).await
        {
            Ok(schedule) => schedule,
            Err(e) => {
                reached.shutdown("load").await;
                return Err(e);
            }
        };
    let urls = reached.urls.clone();
    let what = match spec.model {
        Model::Open => match spec.ramp_to {
            Some(to) => format!("open model, {} → {to} requests/s", spec.rate.unwrap_or_default()),
            None => format!("open model, {} requests/s", spec.rate.unwrap_or_default()),
        },
        Model::Closed => format!("closed model, {} users", spec.users.unwrap_or_default()),
    };
    println!(
        "stampede load: {profile_name} against {} ({what}, {} s), run {run}",
        urls.join(", "),
        spec.duration_s
    );
    let plan = load::Plan::new(spec);
    let result = load::run(
        Arc::clone(&reached.target),
        &plan,
        &objectives,
        stop,
        schedule.load,
        crate::progress::reporter(),
    )
    .await;
    reached.shutdown("load").await;
    let measured = result?;
    let complete = !measured.interrupted;
    let passed = complete && measured.targets.iter().all(|t| t.passed);
    let report = Report {
        schema: report::SCHEMA.to_owned(),
        run: RunMeta {
            id: run.clone(),
            command: Some("load".to_owned()),
            stampede_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_revision: crate::meta::git_revision(),
            profile: profile_name,
            target: urls,
            embedded: None,
            host: crate::meta::host(),
            started_at_ms,
            finished_at_ms: crate::meta::now_ms(),
            complete,
            interrupted: (!complete).then(crate::exit::interrupted_by),
            sources: Vec::new(),
        },
        checks: None,
        load: Some(measured.load),
        targets: measured.targets,
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
    Ok(if !complete {
        // Targets judged on part of a run say nothing of the whole: the interruption is the news.
        ExitCode::from(crate::exit::INTERRUPTED)
    } else if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
        println!(
            "  {} fell due and {} never sent (why: the requests-left-unsent target below)",
            report::plural(load.unsent, "request", "requests"),
            if load.unsent == 1 { "was" } else { "were" }
        );
    }
    if let Some(peak) = load.open_sessions_peak() {
        println!("  WebSocket sessions open at once: {peak} at most (sampled as each second ended)");
    }
    for m in &load.metrics {
        let value = m.value.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
        println!("  metric {:<28} {value} ({} / {})", m.name, m.numerator, m.denominator);
    }
    let missed: Vec<&ObjectiveVerdict> = report.targets.iter().filter(|t| !t.passed).collect();
    for t in missed {
        println!("  MISSED {}: {}", t.name, t.detail);
    }
}
