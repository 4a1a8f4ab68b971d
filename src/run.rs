//! `stampede run`: the main job. Against the reference stack started here (memory backend by
//! default: nothing else need be installed) or `--target URL…`: the profile's checks, then its
//! load, the targets judged, and `reports/<run-id>/` written — `checks.json`, `report.json` (and
//! the files rendered from it), atomically; on Ctrl-C with what was measured, marked
//! interrupted.
//!
//! Exit codes: 0 every check held and every target was met, 1 a violation or a missed target,
//! 2 bad usage or configuration, 3 a target unreachable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use checks::client::Target;
use checks::report::ChecksReport;
use clap::Args;
use report::{Report, RunMeta};

use crate::check::{self, CheckArgs, Checked, StackArgs};
use crate::exit::Failure;
use crate::load::{self, LoadArgs};

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// The control API of the fake upstream the running stack calls, for the checks that
    /// inject upstream faults.
    #[arg(long, value_name = "URL", requires = "targets")]
    pub upstream_control: Option<String>,
    /// The profile (default: the reference stack's, `scenarios/reference.toml`).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Run only these checks (repeatable).
    #[arg(long = "only", value_name = "CHECK")]
    pub only: Vec<String>,
    /// Leave these checks out (repeatable).
    #[arg(long = "skip", value_name = "CHECK")]
    pub skip: Vec<String>,
    /// `open` or `closed`; overrides the profile's load model.
    #[arg(long, value_parser = ["open", "closed"])]
    pub model: Option<String>,
    /// Seconds of load (overrides the profile).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Open model: requests per second (overrides the profile).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed model: concurrent users (overrides the profile).
    #[arg(long)]
    pub users: Option<usize>,
}

impl RunArgs {
    fn check_args(&self) -> CheckArgs {
        CheckArgs {
            stack: self.stack.clone(),
            upstream_control: self.upstream_control.clone(),
            profile: self.profile.clone(),
            only: self.only.clone(),
            skip: self.skip.clone(),
            concurrency: None,
            rounds: None,
            mutant: None,
        }
    }

    fn load_args(&self) -> LoadArgs {
        LoadArgs {
            stack: self.stack.clone(),
            profile: self.profile.clone(),
            model: self.model.clone(),
            duration: self.duration,
            rate: self.rate,
            ramp_to: None,
            users: self.users,
        }
    }
}

pub fn run(args: RunArgs) -> ExitCode {
    crate::exit::execute("run", main_job(args))
}

async fn main_job(args: RunArgs) -> Result<ExitCode, Failure> {
    let check_args = args.check_args();
    let mut profile = check::load_profile(&check_args)?;
    profile.load = load::load_profile(&args.load_args())?.load;
    let run = args.stack.run_id.clone().unwrap_or_else(check::run_id);
    let started_at_ms = check::now_ms();
    let stop = load::interrupt();
    let embedded = if args.stack.targets.is_empty() {
        Some(check::embedded(&args.stack, None, &run, check::embedded_plan(&profile)).await?)
    } else {
        None
    };
    let urls: Vec<String> = match &embedded {
        Some(e) => e.stacks.iter().map(|s| s.url()).collect(),
        None => args.stack.targets.clone(),
    };
    let control = match &embedded {
        Some(e) => Some(e.fake.control_url()),
        None => args.upstream_control.clone(),
    };
    let profile_name = profile.name.clone();
    let scenario = profile.load.clone().expect("load_profile checked it");
    let targets = profile.targets.clone();
    let target = Arc::new(
        Target::new(urls.clone(), profile, run.clone())
            .context("build the HTTP client")?
            .with_upstream_control(control),
    );
    target.probe().await?;
    println!(
        "stampede run: {profile_name} against {} ({} instance(s)), run {run}",
        urls.join(", "),
        urls.len()
    );

    println!("checks:");
    let Checked { verdicts, complete: checks_complete, misconfigured } =
        check::run_checks(&target, stop.clone()).await?;
    let checks_passed = checks_complete && verdicts.iter().all(|v| v.passed);
    let description = embedded.as_ref().map(|e| e.description.clone());
    let checks_report = ChecksReport {
        schema: checks::report::SCHEMA,
        stampede_version: env!("CARGO_PKG_VERSION"),
        run_id: run.clone(),
        started_at_ms,
        finished_at_ms: check::now_ms(),
        complete: checks_complete,
        profile: profile_name.clone(),
        target: urls.clone(),
        embedded: description.clone(),
        passed: checks_passed,
        verdicts,
    };
    let dir = args.stack.reports.join(&run);
    checks::report::write(&dir, &checks_report).with_context(|| format!("write {}", dir.display()))?;

    let mut load_result = None;
    if checks_complete {
        println!("load: {} s", scenario.duration_s);
        let plan = ::load::Plan::new(scenario);
        let result =
            ::load::run(Arc::clone(&target), &plan, &targets, stop.clone(), crate::progress::reporter())
                .await;
        load_result = Some(result);
    }
    if let Some(embedded) = embedded {
        embedded.shutdown("run").await;
    }
    let outcomes = load_result.transpose()?;
    let complete = checks_complete && outcomes.as_ref().is_some_and(|o| !o.interrupted);
    let (load_report, target_verdicts) = match outcomes {
        Some(o) => (Some(o.load), o.targets),
        None => (None, Vec::new()),
    };
    let passed = complete && checks_passed && target_verdicts.iter().all(|t| t.passed);
    let report = Report {
        schema: report::SCHEMA.to_owned(),
        run: RunMeta {
            id: run.clone(),
            stampede_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_revision: load::git_revision(),
            profile: profile_name,
            target: urls,
            embedded: description,
            host: load::host(),
            started_at_ms,
            finished_at_ms: check::now_ms(),
            complete,
            interrupted: (!complete).then(|| "interrupted (Ctrl-C)".to_owned()),
            sources: Vec::new(),
        },
        checks: Some(serde_json::to_value(&checks_report).context("checks as JSON")?),
        load: load_report,
        targets: target_verdicts,
        comparison: None,
        capacity: None,
        passed,
    };
    let path = report::write_all(&dir, &report).with_context(|| format!("write {}", dir.display()))?.html;
    load::print_summary(&report);
    let held = checks_report.verdicts.len() - checks_report.failed();
    let met = report.targets.iter().filter(|t| t.passed).count();
    println!(
        "stampede run: {} — {held} of {} checks held, {met} of {} targets met{}; report in {}",
        if passed { "PASS" } else { "FAIL" },
        checks_report.verdicts.len(),
        report.targets.len(),
        if complete { "" } else { " (interrupted)" },
        path.display()
    );
    Ok(if misconfigured {
        ExitCode::from(2)
    } else if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
