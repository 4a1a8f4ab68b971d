//! `stampede capacity`: the profile's mix offered in steps of arrival rate (open model) or
//! users (closed model) until a step breaks a target; the highest sustainable step, the
//! Universal Scalability Law fitted to the steps, and — given a users goal — the instances it
//! needs, with the plan's assumptions beside the number. Steps, fit and plan come from the
//! flags, else the profile's `[capacity]`, else the defaults (`report::capacity::Stepping`).
//!
//! `reports/<run-id>/` gets report.json (its `capacity` section; `load` and `targets` are the
//! sustainable step's), report.html (a "Capacity" section with the throughput and latency
//! against load, the fitted curve and the knee) and junit.xml.
//!
//! Exit codes: 0 a sustainable step was found, 1 none was (the first step broke a target), 2
//! bad usage or configuration, 3 a target unreachable, 130 a signal stopped the run (the steps
//! measured are reported).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use profile::load::Model;
use report::capacity::{CapacityReport, Stepping};
use report::{Report, RunMeta};

use crate::exit::Failure;
use crate::profiles::LoadOverrides;
use crate::target::{Reach, TargetArgs};

#[derive(Debug, Clone, Args)]
pub(crate) struct CapacityArgs {
    #[command(flatten)]
    pub(crate) stack: TargetArgs,
    /// The profile (default: the reference stack's, `scenarios/reference.toml`).
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// `open` (steps are arrival rates) or `closed` (steps are users); overrides the profile.
    #[arg(long, value_parser = ["open", "closed"])]
    pub(crate) model: Option<String>,
    /// The first step: requests per second, or users.
    #[arg(long)]
    pub(crate) start: Option<f64>,
    /// Added at every step.
    #[arg(long)]
    pub(crate) step: Option<f64>,
    /// Seconds each step is held.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) hold: Option<f64>,
    /// No step goes beyond this.
    #[arg(long)]
    pub(crate) ceiling: Option<f64>,
    /// Seconds of quiet between steps.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) cooldown: Option<f64>,
    /// Plan for this many users (with --per-user-rate): how many instances they need.
    #[arg(long, value_name = "N")]
    pub(crate) users_goal: Option<u64>,
    /// Requests per second one user sends on average, in the profile's mix.
    #[arg(long, value_name = "RATE")]
    pub(crate) per_user_rate: Option<f64>,
    /// The share of an instance's sustainable rate the plan fills (0.7: 70 %).
    #[arg(long)]
    pub(crate) headroom: Option<f64>,
}

pub(crate) fn run(args: CapacityArgs) -> ExitCode {
    crate::exit::execute("capacity", capacity(args))
}

impl CapacityArgs {
    fn overrides(&self) -> LoadOverrides {
        LoadOverrides { model: self.model.clone(), ..LoadOverrides::default() }
    }

    /// The profile's stepping (or the defaults) with the flags over it, checked.
    fn stepping(&self, profile: Option<&Stepping>) -> anyhow::Result<Stepping> {
        let mut s = profile.cloned().unwrap_or_default();
        for (value, field) in [
            (self.start, &mut s.start),
            (self.step, &mut s.step),
            (self.hold, &mut s.hold_s),
            (self.ceiling, &mut s.ceiling),
            (self.cooldown, &mut s.cooldown_s),
            (self.headroom, &mut s.headroom),
        ] {
            if let Some(v) = value {
                *field = v;
            }
        }
        if self.users_goal.is_some() {
            s.users_goal = self.users_goal;
        }
        if self.per_user_rate.is_some() {
            s.per_user_rate = self.per_user_rate;
        }
        s.validate().map_err(|e| {
            anyhow::anyhow!("capacity: {e} (the profile's [capacity] with the flags over it)")
        })?;
        Ok(s)
    }
}

async fn capacity(args: CapacityArgs) -> Result<ExitCode, Failure> {
    let mut profile = crate::profiles::read(args.profile.as_deref())?;
    crate::profiles::load(&mut profile, &args.overrides())?;
    let stepping = args.stepping(profile.capacity.as_ref())?;
    let run = args.stack.run_id.clone().unwrap_or_else(crate::meta::run_id);
    let started_at_ms = crate::meta::now_ms();
    let stop = crate::exit::interrupt();
    let profile_name = profile.name.clone();
    let spec = profile.load.clone().expect("profiles::load checked it");
    let objectives = profile.objectives.clone();
    let reached =
        crate::target::reach(&args.stack, &run, profile, Reach { command: "capacity", ..Reach::default() })
            .await?;
    let urls = reached.urls.clone();
    let open = spec.model == Model::Open;
    println!(
        "stampede capacity: {profile_name} against {} ({} model, {} to {} {} by {}, {} s a step), run {run}",
        urls.join(", "),
        if open { "open" } else { "closed" },
        stepping.start,
        stepping.ceiling,
        if open { "requests/s" } else { "users" },
        stepping.step,
        stepping.hold_s,
    );
    let instances = urls.len();
    let target = Arc::clone(&reached.target);
    let result =
        load::capacity::run(target, &spec, &objectives, &stepping, instances, stop, reporter()).await;
    reached.shutdown("capacity").await;
    let outcome = result?;
    let complete = !outcome.interrupted;
    let mut report = Report {
        schema: report::SCHEMA.to_owned(),
        run: RunMeta {
            id: run.clone(),
            command: Some("capacity".to_owned()),
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
        load: Some(outcome.chosen.load),
        targets: outcome.chosen.targets,
        comparison: None,
        capacity: Some(outcome.report),
        passed: false,
    };
    report.passed = report.verdict();
    let dir = args.stack.reports.join(&run);
    let written = report::write_all(&dir, &report).with_context(|| format!("write {}", dir.display()))?;
    let capacity = report.capacity.as_ref().expect("set above");
    print_summary(capacity);
    println!(
        "stampede capacity: {}; report in {} (and report.html, junit.xml)",
        match capacity.sustainable {
            Some(i) => format!("sustainable up to {} {}", capacity.steps[i].offered, capacity.unit),
            None => "no step was sustainable".to_owned(),
        },
        written.json.display()
    );
    Ok(if !complete {
        ExitCode::from(crate::exit::INTERRUPTED)
    } else if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn reporter() -> impl Fn(load::capacity::StepProgress) + Send + Sync + 'static {
    let inner = crate::progress::reporter();
    move |p| match p {
        load::capacity::StepProgress::Load(load::Progress::Phase("offering load")) => {}
        load::capacity::StepProgress::Load(p) => inner(p),
        load::capacity::StepProgress::Begin { index, of, offered } => {
            println!("  step {} of at most {of}: {offered}", index + 1);
        }
        load::capacity::StepProgress::End(step) => {
            println!(
                "    {:.1} answered/s, concurrency {:.2}, p50 {:.2} ms, p99 {:.2} ms, {} errors{}: {}",
                step.throughput,
                step.concurrency,
                step.latency_ms.p50,
                step.latency_ms.p99,
                step.errors,
                if step.unsent > 0 { format!(", {} unsent", step.unsent) } else { String::new() },
                if step.passed {
                    "every target met".to_owned()
                } else {
                    let n = step.missed.len();
                    format!("MISSED {}", report::plural(n as u64, "target", "targets"))
                }
            );
        }
    }
}

/// The steps, the fit and the plan, as text.
fn print_summary(c: &CapacityReport) {
    println!(
        "  {:>12} {:>10} {:>11} {:>9} {:>9} {:>9} {:>7}  verdict",
        c.unit, "answered/s", "concurrency", "p50 ms", "p95 ms", "p99 ms", "errors"
    );
    for (i, s) in c.steps.iter().enumerate() {
        println!(
            "  {:>12} {:>10.1} {:>11.2} {:>9.2} {:>9.2} {:>9.2} {:>7}  {}",
            s.offered,
            s.throughput,
            s.concurrency,
            s.latency_ms.p50,
            s.latency_ms.p95,
            s.latency_ms.p99,
            s.errors,
            if c.sustainable == Some(i) {
                "sustainable (highest)"
            } else if s.passed {
                "met"
            } else if !s.complete {
                "interrupted"
            } else {
                "BROKE a target"
            }
        );
    }
    println!("  stopped: {}", c.stopped);
    match (&c.fit, &c.fit_note) {
        (Some(f), _) => {
            println!(
                "  USL fit over {} steps: λ {:.1}/s, σ (contention) {:.4}, κ (coherency) {:.6}, R² {:.3}",
                f.points, f.lambda, f.sigma, f.kappa, f.r_squared
            );
            match (f.peak_concurrency, f.peak_throughput) {
                (Some(n), Some(x)) => println!("  predicted peak: {x:.1} answered/s at concurrency {n:.1}"),
                _ if f.sigma > 0.0 => println!(
                    "  predicted peak: none (κ = 0: throughput levels off toward λ/σ = {:.1}/s, it does not fall)",
                    f.lambda / f.sigma
                ),
                _ => println!(
                    "  predicted peak: none (σ = κ = 0: throughput grew linearly over the steps measured)"
                ),
            }
        }
        (None, Some(note)) => println!("  USL: not fitted: {note}"),
        (None, None) => {}
    }
    if let Some(p) = &c.plan {
        println!(
            "  plan: {} for {} users",
            report::plural(p.instances, "instance", "instances"),
            p.users_goal
        );
        for a in &p.assumptions {
            println!("    assuming {a}");
        }
    } else if c.stepping.users_goal.is_some() {
        println!("  plan: none (no step was sustainable to plan from)");
    }
}
