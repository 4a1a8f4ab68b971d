//! `stampede run`: the main job. Against the reference stack started here (memory backend by
//! default: nothing else need be installed) or `--target URL…`: the profile's checks, then its
//! load, the targets judged, and `reports/<run-id>/` written — `checks.json`, `report.json` (and
//! the files rendered from it), atomically; on SIGINT or SIGTERM with what was measured, marked
//! interrupted.
//!
//! Exit codes: 0 every check held and every target was met, 1 a violation or a missed target
//! (it wins over everything), 2 bad usage or configuration, 3 a target unreachable — every
//! instance, and the `--upstream-control` API when one is named, is probed before anything
//! runs — 4 a check inconclusive (unless `--allow-inconclusive` names it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use report::{Report, RunMeta};

use crate::exit::Failure;
use crate::profiles::{LoadOverrides, Selection};
use crate::target::{Reach, TargetArgs};

#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) stack: TargetArgs,
    /// The control API of the fake upstream the running stack calls, for the checks that
    /// inject upstream faults (without it: the one the stack names at `/settings`, if any).
    #[arg(long, value_name = "URL", requires = "targets", value_parser = crate::args::parse_url)]
    pub(crate) upstream_control: Option<String>,
    /// The profile (default: the reference stack's, `scenarios/reference.toml`).
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// Run only these checks (repeatable).
    #[arg(long = "only", value_name = "CHECK")]
    pub(crate) only: Vec<String>,
    /// Leave these checks out (repeatable).
    #[arg(long = "skip", value_name = "CHECK")]
    pub(crate) skip: Vec<String>,
    /// The longest a check waits for a phase to come (overrides the profile's `max_wait_ms`).
    #[arg(long, value_name = "DURATION", value_parser = crate::args::parse_duration)]
    pub(crate) max_wait: Option<std::time::Duration>,
    /// Processes behind each `--target` URL (overrides the profile's `[defaults] processes`):
    /// the checks reach each URL through fresh connections, enough that every process
    /// answers with 99 % probability; the load keeps its connections.
    #[arg(long, value_name = "N")]
    pub(crate) processes: Option<usize>,
    /// The answer header naming the process that answered (overrides the profile's
    /// `[defaults] instance_header`; see `stampede check --help`).
    #[arg(long, value_name = "NAME")]
    pub(crate) instance_header: Option<String>,
    /// Let this check end inconclusive without failing the run (exit 4). Repeatable.
    #[arg(long = "allow-inconclusive", value_name = "CHECK")]
    pub(crate) allow_inconclusive: Vec<String>,
    /// `open` or `closed`; overrides the profile's load model.
    #[arg(long, value_parser = ["open", "closed"])]
    pub(crate) model: Option<String>,
    /// Seconds of load (overrides the profile).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::parse_seconds)]
    pub(crate) duration: Option<f64>,
    /// Open model: requests per second (overrides the profile).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::parse_rate)]
    pub(crate) rate: Option<f64>,
    /// Closed model: concurrent users (overrides the profile).
    #[arg(long)]
    pub(crate) users: Option<usize>,
    #[command(flatten)]
    pub(crate) faults: crate::schedule::FaultArgs,
    /// Embedded stack: run this mutant (see `stampede serve --help`).
    #[arg(long, value_name = "NAME", value_parser = stack::Mutant::parse, conflicts_with = "targets")]
    pub(crate) mutant: Option<stack::Mutant>,
}

pub(crate) fn run(args: RunArgs) -> ExitCode {
    crate::exit::execute("run", main_job(args))
}

async fn main_job(args: RunArgs) -> Result<ExitCode, Failure> {
    let mut profile = crate::profiles::read(args.profile.as_deref())?;
    let selection = Selection {
        only: args.only.clone(),
        skip: args.skip.clone(),
        allow_inconclusive: args.allow_inconclusive.clone(),
        max_wait: args.max_wait,
        processes: args.processes,
        instance_header: args.instance_header.clone(),
        ..Selection::default()
    };
    // The whole profile's, unselected: its usage-plan check reads the plan whatever runs.
    let every_check = checks::read(&profile).map_err(anyhow::Error::from)?;
    let checks = crate::profiles::checks(&mut profile, &selection)?;
    let overrides = LoadOverrides {
        model: args.model.clone(),
        duration: args.duration,
        rate: args.rate,
        ramp_to: None,
        users: args.users,
    };
    crate::profiles::load(&mut profile, &overrides)?;
    args.faults.apply(&mut profile)?;
    let faults = profile.faults.clone();
    let run = args.stack.run_id.clone().unwrap_or_else(crate::meta::run_id);
    let started_at_ms = crate::meta::now_ms();
    let stop = crate::exit::interrupt();
    let profile_name = profile.name.clone();
    let spec = profile.load.clone().expect("profiles::load checked it");
    let objectives = profile.objectives.clone();
    let reach = Reach {
        command: "run",
        tuning: checks::tuning(&checks, &profile.defaults).map_err(anyhow::Error::msg)?,
        mutant: args.mutant,
        upstream_control: args.upstream_control.clone(),
        links: crate::schedule::need_links(&faults),
        processes: crate::schedule::need_processes(&faults),
        read_settings: true,
        drives_upstream: checks.iter().any(checks::Check::drives_upstream),
    };
    let defaults = profile.defaults.clone();
    let reached = crate::target::reach(&args.stack, &run, profile, reach).await?;
    let schedule =
        match crate::schedule::prepare(&faults, &objectives, &args.faults, &args.stack, &reached, &run).await
        {
            Ok(schedule) => schedule,
            Err(e) => {
                reached.shutdown("run").await;
                return Err(e);
            }
        };
    let urls = reached.urls.clone();
    let target = Arc::clone(&reached.target);
    println!(
        "stampede run: {profile_name} against {} ({}), run {run}",
        urls.join(", "),
        report::plural(urls.len() as u64, "instance", "instances")
    );

    let blocked = crate::check::preflight(
        &reached,
        &checks,
        &every_check,
        &defaults,
        "run",
        &crate::check::profile_path(args.profile.as_deref()),
    )
    .await;
    println!("checks:");
    let checked = crate::check::run_checks(
        &target.spread(),
        &checks,
        &blocked,
        &args.allow_inconclusive,
        schedule.checks.as_ref(),
        stop.clone(),
    )
    .await;
    let checked = match checked {
        Ok(checked) => checked,
        Err(e) => {
            reached.shutdown("run").await;
            return Err(e);
        }
    };
    let checks_complete = checked.complete;
    let not_run = crate::check::not_run_note(&checked.not_run);
    let mut findings = checked.findings();
    let description = reached.description();
    let checks_report =
        checked.report(&run, started_at_ms, profile_name.clone(), urls.clone(), description.clone());
    let checks_passed = checks_report.passed;
    let dir = args.stack.reports.join(&run);
    if let Err(e) = report::checks::write(&dir, &checks_report) {
        reached.shutdown("run").await;
        return Err(anyhow::Error::new(e).context(format!("write {}", dir.display())).into());
    }

    let mut load_result = None;
    if checks_complete {
        println!(
            "load: {} s{}",
            spec.duration_s,
            match faults.iter().filter(|f| f.check.is_none()).count() {
                0 => String::new(),
                n => format!(", {}", report::plural(n as u64, "fault", "faults")),
            }
        );
        let plan = load::Plan::new(spec);
        let result =
            load::run(target, &plan, &objectives, stop.clone(), schedule.load, crate::progress::reporter())
                .await;
        load_result = Some(result);
    }
    reached.shutdown("run").await;
    // A load that could not run (its accounts refused) still leaves the checks' report, the
    // HTML page and junit.xml written, the run marked incomplete with the reason.
    let (measured, load_failed) = match load_result.transpose() {
        Ok(measured) => (measured, None),
        Err(e) => (None, Some(e)),
    };
    let complete = checks_complete && measured.as_ref().is_some_and(|o| !o.interrupted);
    let (load_report, target_verdicts) = match measured {
        Some(o) => (Some(o.load), o.targets),
        None => (None, Vec::new()),
    };
    let passed = complete && checks_passed && target_verdicts.iter().all(|t| t.passed);
    findings.violated |= target_verdicts.iter().any(|t| !t.passed);
    findings.interrupted = !complete;
    let report = Report {
        schema: report::SCHEMA.to_owned(),
        run: RunMeta {
            id: run.clone(),
            command: Some("run".to_owned()),
            stampede_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_revision: crate::meta::git_revision(),
            profile: profile_name,
            target: urls,
            embedded: description,
            host: crate::meta::host(),
            started_at_ms,
            finished_at_ms: crate::meta::now_ms(),
            complete,
            interrupted: match &load_failed {
                Some(e) => Some(format!("the load could not run: {e}")),
                None => (!complete).then(crate::exit::interrupted_by),
            },
            sources: Vec::new(),
        },
        checks: Some(checks_report),
        load: load_report,
        targets: target_verdicts,
        comparison: None,
        capacity: None,
        passed,
    };
    let path = report::write_all(&dir, &report).with_context(|| format!("write {}", dir.display()))?.html;
    if let Some(e) = load_failed {
        println!("stampede run: the reports in {} hold the checks; the load could not run", dir.display());
        // A violation found before wins over everything (exit 1); else the load's failure.
        if findings.violated {
            eprintln!("stampede run: {e}");
            return Ok(findings.code());
        }
        return Err(e.into());
    }
    crate::load::print_summary(&report);
    let checks_report = report.checks.as_ref().expect("set above");
    let met = report.targets.iter().filter(|t| t.passed).count();
    println!(
        "stampede run: {} — {}, {met} of {} targets met{}; report in {}",
        if passed { "PASS" } else { "FAIL" },
        checks_report.tally(),
        report.targets.len(),
        if complete { String::new() } else { not_run },
        path.display()
    );
    Ok(findings.code())
}
