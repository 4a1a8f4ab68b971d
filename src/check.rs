//! `stampede check`: the black-box invariant checks of a profile, against running stack
//! instances or the reference stack started here ([`crate::target`]). The checks that drive
//! the upstream the stack calls use a fake upstream's control API: the embedded stack's, or
//! the one `--upstream-control` names for a running stack.
//!
//! Every check ends held, violated or inconclusive (the evidence it needs could not be
//! gathered: never reported as held).
//!
//! Exit codes: 0 every check held, 1 a check found a violation (it wins over everything), 2 bad
//! usage or configuration (a malformed profile names file, line and field; a check that needs
//! `--upstream-control` without it), 3 a target unreachable, 4 a check inconclusive (unless
//! `--allow-inconclusive` names it).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use checks::Check;
use clap::Args;
use client::{Target, TargetError};
use report::checks::{ChecksReport, Status, Verdict};

use crate::exit::{Failure, Findings};
use crate::profiles::Selection;
use crate::target::{Reach, TargetArgs};

#[derive(Debug, Clone, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub(crate) stack: TargetArgs,
    /// The control API of the fake upstream the running stack calls (`http://host:port`), for
    /// the checks that inject upstream faults and read what the upstream saw. Without it: the
    /// one a stack `stampede serve` runs names at `/settings`, or the embedded stack's.
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
    /// Requests per burst, for every check (overrides the profile).
    #[arg(long)]
    pub(crate) concurrency: Option<usize>,
    /// Bursts per check (overrides the profile).
    #[arg(long)]
    pub(crate) rounds: Option<usize>,
    /// The longest a check waits for a phase to come, e.g. a rate limit's window to end
    /// (overrides the profile's `max_wait_ms`; default 120s). Further off, the check is
    /// inconclusive.
    #[arg(long, value_name = "DURATION", value_parser = crate::args::parse_duration)]
    pub(crate) max_wait: Option<std::time::Duration>,
    /// Processes behind each `--target` URL (gunicorn/uvicorn workers, a load balancer's
    /// backends; overrides the profile's `[defaults] processes`): the checks then reach each
    /// URL through fresh connections, enough that every process answers with 99 % probability.
    #[arg(long, value_name = "N")]
    pub(crate) processes: Option<usize>,
    /// The answer header in which the stack names the process that answered (`X-Served-By`;
    /// overrides the profile's `[defaults] instance_header`, `''` for none): the invalidation
    /// check then reads until each process has answered, and is inconclusive when one never did.
    #[arg(long, value_name = "NAME")]
    pub(crate) instance_header: Option<String>,
    /// Let this check end inconclusive without failing the run (exit 4): one the stack
    /// knowingly cannot exercise. Recorded in the report. Repeatable.
    #[arg(long = "allow-inconclusive", value_name = "CHECK")]
    pub(crate) allow_inconclusive: Vec<String>,
    /// Judge nothing: send each request of each check once to every instance and print what
    /// came back (method, path, status, the answer's first 200 bytes, rate-limit and paging
    /// headers) with what each pointer found and whether each recogniser matched — the first
    /// thing to run while mapping a stack to a profile. Exit 0 when every request was
    /// answered (any status), 3 when one was not.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Embedded stack: run this mutant (see `stampede serve --help`).
    #[arg(long, value_name = "NAME", value_parser = stack::Mutant::parse, conflicts_with = "targets")]
    pub(crate) mutant: Option<stack::Mutant>,
    /// Faults around checks (`check = "NAME"`); the profile's faults during the load are left
    /// out: `check` runs no load.
    #[command(flatten)]
    pub(crate) faults: crate::schedule::FaultArgs,
}

pub(crate) fn run(args: CheckArgs) -> ExitCode {
    crate::exit::execute("check", check(args))
}

async fn check(args: CheckArgs) -> Result<ExitCode, Failure> {
    let mut profile = crate::profiles::read(args.profile.as_deref())?;
    let selection = Selection {
        only: args.only.clone(),
        skip: args.skip.clone(),
        allow_inconclusive: args.allow_inconclusive.clone(),
        concurrency: args.concurrency,
        rounds: args.rounds,
        max_wait: args.max_wait,
        processes: args.processes,
        instance_header: args.instance_header.clone(),
    };
    // The whole profile's, unselected: its usage-plan check reads the plan whatever runs.
    let every_check = checks::read(&profile).map_err(anyhow::Error::from)?;
    let checks = crate::profiles::checks(&mut profile, &selection)?;
    args.faults.apply(&mut profile)?;
    let mut faults = profile.faults.clone();
    faults.retain(|f| {
        if f.check.is_none() {
            println!("fault {}: left out (it runs during the load; `stampede check` runs none)", f.name);
        }
        f.check.is_some()
    });
    let run = args.stack.run_id.clone().unwrap_or_else(crate::meta::run_id);
    let started_at_ms = crate::meta::now_ms();
    let profile_name = profile.name.clone();
    let objectives = profile.objectives.clone();
    let reach = Reach {
        command: "check",
        tuning: checks::tuning(&checks, &profile.defaults).map_err(anyhow::Error::msg)?,
        mutant: args.mutant,
        upstream_control: args.upstream_control.clone(),
        links: crate::schedule::need_links(&faults),
        processes: crate::schedule::need_processes(&faults),
        read_settings: true,
        drives_upstream: checks.iter().any(Check::drives_upstream),
    };
    let defaults = profile.defaults.clone();
    let reached = crate::target::reach(&args.stack, &run, profile, reach).await?;
    let schedule =
        match crate::schedule::prepare(&faults, &objectives, &args.faults, &args.stack, &reached, &run).await
        {
            Ok(schedule) => schedule,
            Err(e) => {
                reached.shutdown("check").await;
                return Err(e);
            }
        };
    let urls = reached.urls.clone();
    println!(
        "stampede check: {} against {} ({}), run {run}",
        profile_name,
        urls.join(", "),
        report::plural(urls.len() as u64, "instance", "instances")
    );

    if args.dry_run {
        // Each request once per URL: the dry run shows answers, it does not reach processes.
        let answered = dry_run(&reached.target, &checks).await;
        reached.shutdown("check").await;
        return answered;
    }
    let stop = crate::exit::interrupt();
    let blocked = preflight(
        &reached,
        &checks,
        &every_check,
        &defaults,
        "check",
        &profile_path(args.profile.as_deref()),
    )
    .await;
    let checked = run_checks(
        &reached.target.spread(),
        &checks,
        &blocked,
        &args.allow_inconclusive,
        schedule.checks.as_ref(),
        stop,
    )
    .await;
    let description = reached.description();
    let checked = match checked {
        Ok(checked) => checked,
        Err(e) => {
            reached.shutdown("check").await;
            return Err(e);
        }
    };
    let findings = checked.findings();
    let complete = checked.complete;
    let interrupted = not_run_note(&checked.not_run);
    let report = checked.report(&run, started_at_ms, profile_name, urls, description);
    let dir = args.stack.reports.join(&run);
    let written = report::checks::write(&dir, &report).with_context(|| format!("write {}", dir.display()));
    reached.shutdown("check").await;
    let path = written?;
    println!(
        "stampede check: {}{}; verdicts in {}",
        report.tally(),
        if complete { String::new() } else { interrupted },
        path.display()
    );
    Ok(findings.code())
}

/// The profile as a command to serve it would name it.
pub(crate) fn profile_path(given: Option<&std::path::Path>) -> String {
    given.map_or_else(|| "scenarios/reference.toml".to_owned(), |p| p.display().to_string())
}

/// A cause, found before any check ran, that leaves a check unable to judge: it is reported
/// inconclusive for it, not run.
#[derive(Debug, Clone)]
pub(crate) struct Blocked {
    pub(crate) check: String,
    /// The requirement it misses (`stack-settings`, `upstream-plan`).
    pub(crate) requirement: &'static str,
    pub(crate) observed: String,
    pub(crate) remedy: String,
}

/// Before any check runs against a stack served apart ([`crate::target::Reached::settings`]):
/// each setting it publishes that leaves a check unable to judge, and an upstream plan with
/// fewer calls left than the checks that call the upstream make (read with the profile's
/// `usage-plan` check, selected or not; spent by an earlier run), each said as found. A stack
/// that publishes no settings is said to leave the checks' needs unverified.
pub(crate) async fn preflight(
    reached: &crate::target::Reached,
    checks: &[Check],
    every_check: &[Check],
    defaults: &profile::Defaults,
    command: &str,
    profile: &str,
) -> Vec<Blocked> {
    let mut blocked: Vec<Blocked> = Vec::new();
    if reached.embedded.is_some() {
        return blocked;
    }
    for (url, doc) in &reached.settings {
        match doc {
            Ok(doc) => {
                for unmet in checks::settings::unmet(checks, doc) {
                    if blocked.iter().any(|b| b.check == unmet.check && b.observed.contains(unmet.setting)) {
                        continue;
                    }
                    println!("stampede {command}: {url}: {}", unmet.line());
                    blocked.push(Blocked {
                        check: unmet.check.clone(),
                        requirement: "stack-settings",
                        observed: format!(
                            "{url} has {} {}; the check needs {}",
                            unmet.setting, unmet.served, unmet.needed
                        ),
                        remedy: format!(
                            "serve it with `stampede serve --profile {profile}`, or {}",
                            unmet.flag
                        ),
                    });
                }
            }
            Err(why) => {
                let needing: Vec<&str> =
                    checks.iter().filter(|c| !c.needs().is_empty()).map(Check::name).collect();
                if !needing.is_empty() {
                    println!(
                        "stampede {command}: {url} publishes no settings (GET /settings {why}): what {} need of \
                         the stack is not verified",
                        needing.join(", ")
                    );
                }
            }
        }
    }
    let calling: Vec<&Check> = checks
        .iter()
        .filter(|c| c.drives_upstream() && !blocked.iter().any(|b| b.check == c.name()))
        .collect();
    if calling.is_empty() {
        return blocked;
    }
    match checks::settings::plan_left(&reached.target, every_check).await {
        Ok(Some(plan)) => {
            // What the checks before the one that spends the plan make; that one spends what is left.
            let needed: u64 =
                calling.iter().filter(|c| !c.spends_plan()).map(|c| c.upstream_calls(defaults)).sum();
            let short: Vec<&&Check> = calling
                .iter()
                .filter(|c| plan.left == 0 || (!c.spends_plan() && plan.left < needed))
                .collect();
            if !short.is_empty() {
                let names: Vec<&str> = short.iter().map(|c| c.name()).collect();
                let why = if plan.left == 0 {
                    format!("spent before the checks began ({}): an earlier run spent it", plan.read)
                } else {
                    format!(
                        "{} calls left before the checks began ({}), and the checks that call the upstream make about \
                         {needed}: an earlier run spent the rest",
                        plan.left, plan.read
                    )
                };
                println!(
                    "stampede {command}: the stack's upstream plan is {why}: {} cannot judge",
                    names.join(", ")
                );
                for check in short {
                    blocked.push(Blocked {
                        check: check.name().to_owned(),
                        requirement: "upstream-plan",
                        observed: why.clone(),
                        remedy:
                            "wait for the plan's period to end, or start the stack again with a fresh plan"
                                .to_owned(),
                    });
                }
            }
        }
        Ok(None) => {}
        Err(e) => println!("stampede {command}: the upstream plan could not be read before the checks: {e}"),
    }
    blocked
}

/// What a summary line adds for a run a signal stopped: the checks it kept from running.
pub(crate) fn not_run_note(not_run: &[String]) -> String {
    match not_run.len() {
        0 => " (interrupted)".to_owned(),
        1 => format!(" (interrupted: 1 check not run: {})", not_run[0]),
        n => format!(" (interrupted: {n} checks not run: {})", not_run.join(", ")),
    }
}

/// The dry run of every check, printed as it goes; exit 0 when every request was answered.
async fn dry_run(target: &Target, checks: &[Check]) -> Result<ExitCode, Failure> {
    let mut unanswered = 0;
    for check in checks {
        println!("{} ({})", check.name(), check.kind());
        let run = checks::dry::dry_run(target, check).await?;
        for line in &run.lines {
            println!("  {line}");
        }
        unanswered += run.unanswered;
    }
    println!(
        "stampede check --dry-run: {}, {}; nothing judged",
        report::plural(checks.len() as u64, "check", "checks"),
        if unanswered == 0 {
            "every request answered".to_owned()
        } else {
            format!("{} unanswered", report::plural(unanswered as u64, "request", "requests"))
        }
    );
    Ok(if unanswered == 0 { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

/// What running a profile's checks came to.
pub(crate) struct Checked {
    pub(crate) verdicts: Vec<Verdict>,
    /// False when `stop` ended the run early.
    pub(crate) complete: bool,
    /// A check could not run as configured (exit code 2).
    pub(crate) misconfigured: bool,
    /// The checks a signal kept from running (the one it stopped among them).
    pub(crate) not_run: Vec<String>,
}

impl Checked {
    /// What the checks found, for the exit code.
    pub(crate) fn findings(&self) -> Findings {
        Findings {
            violated: self.verdicts.iter().any(Verdict::violated),
            misconfigured: self.misconfigured,
            inconclusive: self.verdicts.iter().any(|v| !v.acceptable() && !v.violated()),
            interrupted: !self.complete,
        }
    }

    /// The run's checks report: passed when every check held (or was inconclusive and allowed
    /// to be) and none was interrupted.
    pub(crate) fn report(
        self,
        run: &str,
        started_at_ms: u64,
        profile: String,
        target: Vec<String>,
        embedded: Option<serde_json::Value>,
    ) -> ChecksReport {
        ChecksReport {
            schema: report::checks::SCHEMA.to_owned(),
            stampede_version: env!("CARGO_PKG_VERSION").to_owned(),
            run_id: run.to_owned(),
            started_at_ms,
            finished_at_ms: crate::meta::now_ms(),
            complete: self.complete,
            profile,
            target,
            embedded,
            passed: self.complete && !self.misconfigured && self.verdicts.iter().all(Verdict::acceptable),
            verdicts: self.verdicts,
        }
    }
}

/// Runs `checks` against `target` in order, printing a line each, until `stop`; a check named
/// in `allowed` may end inconclusive.
/// `verdict` judged across `windows`, the faults that ran beside its check (which began at
/// `began`, ms since the epoch): one requirement per fault, met when it happened whole while
/// the check ran; a check its fault missed judged nothing across it (inconclusive).
fn across(mut verdict: Verdict, windows: &[report::FaultWindow], began: u64) -> Verdict {
    let into = |ms: u64| ms.saturating_sub(began) as f64 / 1000.0;
    for w in windows {
        let when = match w.ended_at_ms {
            Some(end) => format!("from {:.2} s to {:.2} s into the check", into(w.started_at_ms), into(end)),
            None => format!("from {:.2} s into the check, never removed", into(w.started_at_ms)),
        };
        let (met, observed) = match &w.error {
            None => (true, format!("{} on {}, {when}", w.action, w.target)),
            Some(error) => (false, format!("{} on {}: {error}", w.action, w.target)),
        };
        verdict.require(
            &format!("fault {}", w.name),
            met,
            observed,
            "the check must run through its fault: begin the fault earlier, shorten it, or give the check more rounds",
        );
    }
    let summary = verdict.summary.clone();
    let names: Vec<&str> = windows.iter().map(|w| w.name.as_str()).collect();
    let mut verdict = verdict.summarize(summary);
    if verdict.held() {
        verdict.summary = format!("{} (across fault {})", verdict.summary, names.join(", "));
    }
    verdict
}

pub(crate) async fn run_checks(
    target: &Target,
    checks: &[Check],
    blocked: &[Blocked],
    allowed: &[String],
    around: Option<&crate::schedule::Around>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Checked, Failure> {
    let mut verdicts = Vec::new();
    let mut complete = true;
    let mut misconfigured = false;
    let mut not_run = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        print!("  {:<28} {:<16} ", check.name(), check.kind());
        let _ = std::io::stdout().flush();
        let causes: Vec<&Blocked> = blocked.iter().filter(|b| b.check == check.name()).collect();
        if !causes.is_empty() {
            // Found before it ran: judged nothing, and says why.
            let mut verdict = Verdict::new(check.name(), check.kind(), 0, serde_json::json!({}));
            for cause in causes {
                verdict.require(cause.requirement, false, cause.observed.clone(), &cause.remedy);
            }
            let mut verdict = verdict.summarize("never");
            verdict.allowed = allowed.iter().any(|n| n == check.name());
            let label = if verdict.allowed { "inconclusive (allowed)" } else { "INCONCLUSIVE" };
            println!("{label}  {}", verdict.summary);
            verdicts.push(verdict);
            continue;
        }
        // The faults timed against this check run beside it.
        let faults = around.and_then(|a| a.start(check.name()));
        let began = load::now_ms();
        let verdict = tokio::select! {
            verdict = check.run(target) => Some(verdict),
            _ = stop.wait_for(|s| *s) => None,
        };
        // The check's faults end with it, interrupted or not: none is left applied.
        let windows = match faults {
            Some((ended, task)) => {
                let _ = ended.send(true);
                task.await.unwrap_or_default()
            }
            None => Vec::new(),
        };
        let Some(verdict) = verdict else {
            println!("interrupted");
            complete = false;
            not_run = checks[i..].iter().map(|c| c.name().to_owned()).collect();
            break;
        };
        let mut verdict = match verdict {
            Ok(verdict) => verdict,
            Err(e @ TargetError::Unreachable { .. }) => return Err(e.into()),
            Err(e @ TargetError::Configuration { .. }) => {
                // Not a verdict on the target: the check could not run as configured.
                misconfigured = true;
                let mut v = Verdict::new(check.name(), check.kind(), 0, serde_json::json!({}));
                v.require("configured", false, e.to_string(), "");
                v.summarize("never")
            }
            Err(e) => {
                // The target refused what the check sets up first (users, a project): nothing
                // was judged.
                let mut v = Verdict::new(check.name(), check.kind(), 0, serde_json::json!({}));
                let remedy = match &e {
                    TargetError::Control { .. } => "the fake upstream's control API must answer",
                    TargetError::Users { .. } => "the stack must create users as `[users]` says",
                    _ => "the stack must accept what the check sets up first (a project, a resource)",
                };
                v.require("set-up", false, e.to_string(), remedy);
                v.summarize("never")
            }
        };
        if !windows.is_empty() {
            verdict = across(verdict, &windows, began);
        }
        let configured = !verdict.requirements.iter().any(|r| r.name == "configured");
        verdict.allowed = verdict.inconclusive() && configured && allowed.iter().any(|n| n == check.name());
        let label = match verdict.status {
            Status::Held => "held",
            Status::Violated => "VIOLATED",
            Status::Inconclusive if !configured => "ERROR",
            Status::Inconclusive if verdict.allowed => "inconclusive (allowed)",
            Status::Inconclusive => "INCONCLUSIVE",
        };
        println!("{label}  {}", verdict.summary);
        verdicts.push(verdict);
    }
    Ok(Checked { verdicts, complete, misconfigured, not_run })
}
