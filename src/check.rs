//! `stampede check`: the black-box invariant checks of a target profile, against running
//! stack instances (`--target URL`, repeatable) or against the reference stack started here
//! (`--instances N` processes' worth of stacks in this process, each with its own state unless
//! `--redis`/`--database` give them shared backends). The checks that drive the upstream the
//! stack calls (breaker, token refresh, import lifecycle) use a fake upstream's control API:
//! the one started with the embedded stack, or the one `--upstream-control` names for a
//! running stack.
//!
//! Exit codes: 0 every check passed, 1 a check found a violation, 2 bad usage or
//! configuration (a malformed profile names file, line and field; a check that needs
//! `--upstream-control` without it), 3 a target unreachable.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use checks::client::{Target, TargetError};
use checks::profile::{Check, Profile};
use checks::report::ChecksReport;
use clap::Args;
use reference::limit::Limit;
use reference::usage_tracker::UsageLimits;

use crate::exit::Failure;

/// The reference stack's profile, used when `--profile` is not given.
pub(crate) const REFERENCE_PROFILE: &str = include_str!("../scenarios/reference.toml");

/// The stack a command drives — running instances, or the reference stack started in this
/// process — and where the run's reports go; `check`, `load`, `run` and `capacity` share it.
#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// Base URL of one instance of a running stack; repeat it for every instance. Without it,
    /// stampede starts the reference stack in this process.
    #[arg(long = "target", value_name = "URL")]
    pub targets: Vec<String>,
    /// Embedded stack: how many instances.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16), conflicts_with = "targets")]
    pub instances: u16,
    /// Embedded stack: share state through this Redis.
    #[arg(long, value_name = "URL", conflicts_with = "targets")]
    pub redis: Option<String>,
    /// Embedded stack: keep records in this PostgreSQL.
    #[arg(long, value_name = "URL", conflicts_with = "targets")]
    pub database: Option<String>,
    /// Where `<run-id>/` (the run's reports) goes.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    /// The run's id (default: the start time and a random suffix).
    #[arg(long)]
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// The control API of the fake upstream the running stack calls (`http://host:port`), for
    /// the checks that inject upstream faults and read what the upstream saw. The embedded
    /// stack's is used without it.
    #[arg(long, value_name = "URL", requires = "targets")]
    pub upstream_control: Option<String>,
    /// The target profile (default: the reference stack's, `scenarios/reference.toml`).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Run only these checks (repeatable).
    #[arg(long = "only", value_name = "CHECK")]
    pub only: Vec<String>,
    /// Leave these checks out (repeatable).
    #[arg(long = "skip", value_name = "CHECK")]
    pub skip: Vec<String>,
    /// Requests per burst, for every check (overrides the profile).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Bursts per check (overrides the profile).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Embedded stack: run this mutant (see `stampede serve --help`).
    #[arg(long, value_name = "NAME", value_parser = stack::Mutant::parse, conflicts_with = "targets")]
    pub mutant: Option<stack::Mutant>,
}

pub fn run(args: CheckArgs) -> ExitCode {
    crate::exit::execute("check", check(args))
}

pub(crate) fn load_profile(args: &CheckArgs) -> anyhow::Result<Profile> {
    let mut profile = match &args.profile {
        Some(path) => Profile::load(path)?,
        None => {
            Profile::parse(std::path::Path::new("scenarios/reference.toml (built in)"), REFERENCE_PROFILE)?
        }
    };
    for name in &args.only {
        if profile.check(name).is_none() {
            let known: Vec<&str> = profile.checks.iter().map(Check::name).collect();
            anyhow::bail!("--only {name:?}: the profile has no such check; it has {}", known.join(", "));
        }
    }
    for name in &args.skip {
        if profile.check(name).is_none() {
            let known: Vec<&str> = profile.checks.iter().map(Check::name).collect();
            anyhow::bail!("--skip {name:?}: the profile has no such check; it has {}", known.join(", "));
        }
    }
    if !args.only.is_empty() {
        profile.checks.retain(|c| args.only.iter().any(|n| n == c.name()));
    }
    profile.checks.retain(|c| !args.skip.iter().any(|n| n == c.name()));
    if let Some(c) = args.concurrency {
        anyhow::ensure!(c >= 1, "--concurrency must be at least 1");
        profile.defaults.concurrency = c;
    }
    if let Some(r) = args.rounds {
        anyhow::ensure!(r >= 1, "--rounds must be at least 1");
        profile.defaults.rounds = r;
    }
    Ok(profile)
}

pub(crate) fn run_id() -> String {
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    format!("{now}-{:04x}", std::process::id() & 0xffff)
}

pub(crate) fn now_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond().max(0) as u64
}

/// The embedded stacks: short windows so a check sees a window end within seconds.
pub(crate) struct Embedded {
    pub(crate) stacks: Vec<stack::RunningStack>,
    pub(crate) fake: fake_upstream::RunningUpstream,
    pub(crate) description: serde_json::Value,
}

impl Embedded {
    /// Stops the stacks and the fake upstream, and removes the run's namespace from shared
    /// servers.
    pub(crate) async fn shutdown(self, command: &str) {
        let backends = self.stacks.first().map(|s| s.state().backends.clone());
        for running in self.stacks {
            let _ = running.shutdown().await;
        }
        self.fake.shutdown().await;
        if let Some(backends) = backends
            && let Err(e) = backends.purge().await
        {
            eprintln!("stampede {command}: could not remove the run's namespace from the servers: {e}");
        }
    }
}

/// Import workers per embedded instance.
pub(crate) const EMBEDDED_WORKERS: usize = 32;

/// The embedded instances' upstream pool: 12 requests in flight, 12 idle connections kept, at
/// most 24 open (the reference profile's `upstream-pool` check expects these numbers). A third
/// of the workers: a burst fills the pool, and the workers its hold releases together are many
/// (the `usage-plan` check's crossing).
pub(crate) const EMBEDDED_POOL: upstream::UpstreamConfig =
    upstream::UpstreamConfig { max_connections: 24, max_idle_per_host: 12, ..upstream::UpstreamConfig::SEED };

/// The embedded stack's upstream plan (#4) without a `usage-plan` check: one no check exhausts.
pub(crate) const UNBOUNDED_PLAN: UsageLimits = UsageLimits { per_day: 1_000_000, per_hour: 1_000_000 };

/// The embedded stack's upstream plan (#4), the same per day and per hour. A `usage-plan`
/// check spends whatever the checks before it left, so with one the plan is sized from the
/// calls those checks make at the run's burst sizes (half as many again, for a slow machine's
/// longer breaker phases) and what the plan check itself needs: enough that no check before it
/// is refused, little enough that it spends the rest in seconds.
pub(crate) fn embedded_plan(profile: &Profile) -> UsageLimits {
    let Some(plan) = profile.checks.iter().position(|c| matches!(c, Check::UsagePlan(_))) else {
        return UNBOUNDED_PLAN;
    };
    let defaults = profile.defaults;
    let bursts = |c: Option<usize>, r: Option<usize>| {
        (c.unwrap_or(defaults.concurrency) * r.unwrap_or(defaults.rounds)) as u64
    };
    let before: u64 = profile.checks[..plan]
        .iter()
        .map(|check| match check {
            Check::Counter(c) => bursts(c.concurrency, c.rounds),
            Check::UniqueCreation(c) => c.rounds.unwrap_or(defaults.rounds) as u64,
            Check::Merge(c) => c.rounds.unwrap_or(defaults.rounds) as u64,
            Check::CursorWalk(c) => 2 * c.rows as u64,
            Check::QueryBudget(_) | Check::Vary(_) => 50,
            // An import every step while the breaker is probed: an open period and a held
            // trial per round, and one more.
            Check::Breaker(c) => {
                (c.rounds.unwrap_or(defaults.rounds) as u64 + 1) * (c.open_ms + c.trial_hold_ms)
                    / c.step_ms.max(1)
            }
            Check::TokenRefresh(c) => c.periods as u64 * c.period_ms / c.import_every_ms.max(1),
            Check::UpstreamPool(c) => c.imports.unwrap_or(defaults.concurrency) as u64,
            _ => 0,
        })
        .sum();
    let own = match &profile.checks[plan] {
        Check::UsagePlan(c) => 2 * c.probe as u64 + 50,
        _ => 0,
    };
    let calls = before * 3 / 2 + own;
    UsageLimits { per_day: calls, per_hour: calls }
}

pub(crate) async fn embedded(
    args: &StackArgs,
    mutant: Option<stack::Mutant>,
    run: &str,
    plan: UsageLimits,
) -> anyhow::Result<Embedded> {
    // Access tokens live 8 s and are refreshed every 2 s (below), so a check sees several
    // refresh periods within seconds.
    // The control API on its own listener: the API listener's connection counts are the
    // stack's alone (the `upstream-pool` check judges them).
    let fake = fake_upstream::FakeUpstream::start(fake_upstream::Config {
        access_token_lifetime: Duration::from_secs(8),
        control_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Default::default()
    })
    .await
    .context("start the fake upstream")?;
    let account = fake
        .register_account(fake_upstream::NewAccount {
            client_id: Some("stampede".to_owned()),
            ..fake_upstream::NewAccount::named("platform")
        })
        .context("register the platform account")?;
    // The process id too: a run id given again must not find an earlier run's keys (its
    // credential names another fake upstream's refresh token).
    let namespace = format!("stampede-check-{run}-{:x}", std::process::id());
    let mut stacks = Vec::new();
    for i in 0..args.instances {
        let mut config = stack::StackConfig::default();
        config.backends.redis = args.redis.clone();
        config.backends.database = args.database.clone();
        config.backends.namespace = namespace.clone();
        config.backends.application_name = format!("stampede-check-{i}");
        config.settings.instance = format!("stack-{i}");
        config.settings.publish_limit = Limit::new(5, Duration::from_secs(3));
        config.settings.mutant = mutant;
        // Open for 2 s, so a check sees the breaker open, half-open and close within seconds.
        config.settings.breaker = reference::circuit_breaker::Policy {
            failure_threshold: 5,
            open_for: Duration::from_secs(2),
            trial_timeout: Duration::from_secs(2),
        };
        // Tasks visible again after 1.5 s and abandoned after 3 s, so a check sees a task
        // outlive its lease and one abandoned within seconds. The visibility timeout stays
        // above the breaker check's 1 s trial hold.
        config.settings.task_visibility = Duration::from_millis(1500);
        config.settings.task_time_limit = Duration::from_secs(3);
        // More import workers than the upstream pool lets call at once (#8): a burst of
        // imports reaches the pool's cap, so a pool without one shows.
        config.settings.workers = EMBEDDED_WORKERS;
        config.settings.upstream_pool = EMBEDDED_POOL;
        // The upstream plan (#4): enough for every check that needs upstream calls, small
        // enough for a `usage-plan` check (last in the profile) to exhaust within seconds.
        config.settings.usage = plan;
        config.settings.upstream = Some(stack::workers::UpstreamLink {
            url: fake.url(),
            client_id: "stampede".to_owned(),
            refresh_token: account.refresh_token.clone(),
            refresh: reference::token_refresh::Policy::new(Duration::from_secs(2), Duration::from_secs(8))
                .context("refresh policy")?,
        });
        let running =
            stack::start(config).await.with_context(|| format!("start embedded stack instance {i}"))?;
        stacks.push(running);
    }
    let description = serde_json::json!({
        "instances": args.instances,
        "backend": match (&args.redis, &args.database) {
            (None, None) => "memory",
            (Some(_), None) => "redis",
            (None, Some(_)) => "postgres",
            (Some(_), Some(_)) => "redis+postgres",
        },
        "mutant": mutant.map(|m| m.name()),
        "publish_limit": "5/3s",
        "breaker": "5 failures, 2s open, 2s trial timeout",
        "token_refresh": "every 2s, tokens live 8s",
        "import_tasks": "visibility timeout 1.5s, hard time limit 3s",
        "workers": EMBEDDED_WORKERS,
        "upstream_pool": format!(
            "{} connections, {} idle, {} in flight",
            EMBEDDED_POOL.max_connections,
            EMBEDDED_POOL.max_idle_per_host,
            EMBEDDED_POOL.in_flight_limit()
        ),
        "upstream_plan": format!("{}/{}", plan.per_day, plan.per_hour),
        "upstream_control": fake.control_url(),
        "namespace": namespace,
    });
    Ok(Embedded { stacks, fake, description })
}

async fn check(args: CheckArgs) -> Result<ExitCode, Failure> {
    let profile = load_profile(&args)?;
    let run = args.stack.run_id.clone().unwrap_or_else(run_id);
    let started_at_ms = now_ms();
    let plan = embedded_plan(&profile);
    let embedded = if args.stack.targets.is_empty() {
        Some(embedded(&args.stack, args.mutant, &run, plan).await?)
    } else {
        None
    };
    let urls: Vec<String> = match &embedded {
        Some(e) => e.stacks.iter().map(|s| s.url()).collect(),
        None => args.stack.targets.clone(),
    };
    let profile_name = profile.name.clone();
    let control = match &embedded {
        Some(e) => Some(e.fake.control_url()),
        None => args.upstream_control.clone(),
    };
    let target = Target::new(urls.clone(), profile, run.clone())
        .context("build the HTTP client")?
        .with_upstream_control(control);
    target.probe().await?;
    if let (None, Some(url)) = (&embedded, &args.upstream_control) {
        let client = fake_upstream::ControlClient::new(url).context("--upstream-control")?;
        client
            .health()
            .await
            .map_err(|e| Failure::from(TargetError::Control { url: url.clone(), reason: e.to_string() }))?;
    }
    println!(
        "stampede check: {} against {} ({} instance(s)), run {run}",
        profile_name,
        urls.join(", "),
        urls.len()
    );

    let stop = crate::load::interrupt();
    let Checked { verdicts, complete, misconfigured } = run_checks(&target, stop).await?;
    let passed = complete && verdicts.iter().all(|v| v.passed);
    let report = ChecksReport {
        schema: checks::report::SCHEMA,
        stampede_version: env!("CARGO_PKG_VERSION"),
        run_id: run.clone(),
        started_at_ms,
        finished_at_ms: now_ms(),
        complete,
        profile: profile_name,
        target: urls,
        embedded: embedded.as_ref().map(|e| e.description.clone()),
        passed,
        verdicts,
    };
    let dir = args.stack.reports.join(&run);
    let path = checks::report::write(&dir, &report).with_context(|| format!("write {}", dir.display()))?;
    if let Some(embedded) = embedded {
        embedded.shutdown("check").await;
    }
    println!(
        "stampede check: {} of {} checks passed{}; verdicts in {}",
        report.verdicts.len() - report.failed(),
        report.verdicts.len(),
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

/// What running a profile's checks came to.
pub(crate) struct Checked {
    pub(crate) verdicts: Vec<checks::verdict::Verdict>,
    /// False when `stop` ended the run early.
    pub(crate) complete: bool,
    /// A check could not run as configured (exit code 2).
    pub(crate) misconfigured: bool,
}

/// Runs every check of `target`'s profile in order, printing a line each, until `stop`.
pub(crate) async fn run_checks(
    target: &Target,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Checked, Failure> {
    let mut verdicts = Vec::new();
    let mut complete = true;
    let mut misconfigured = false;
    let checks: Vec<Check> = target.profile.checks.clone();
    for check in &checks {
        print!("  {:<28} {:<16} ", check.name(), check.kind());
        let _ = std::io::stdout().flush();
        let verdict = tokio::select! {
            verdict = checks::run_check(target, check) => verdict,
            _ = stop.wait_for(|s| *s) => {
                println!("interrupted");
                complete = false;
                break;
            }
        };
        let verdict = match verdict {
            Ok(verdict) => verdict,
            Err(e @ TargetError::Unreachable { .. }) => return Err(e.into()),
            Err(e @ TargetError::Configuration { .. }) => {
                // Not a verdict on the target: the check could not run as configured.
                misconfigured = true;
                let mut v =
                    checks::verdict::Verdict::new(check.name(), check.kind(), 0, serde_json::json!({}));
                v.violate("configuration", e.to_string(), []);
                v.summarize(format!("not run: {e}"))
            }
            Err(e) => {
                // The target refused to set the check up: report it as a failed check.
                let mut v =
                    checks::verdict::Verdict::new(check.name(), check.kind(), 0, serde_json::json!({}));
                v.violate("setup", e.to_string(), []);
                v.summarize(e.to_string())
            }
        };
        let label = match verdict.rules().first() {
            _ if verdict.passed => "pass",
            Some(&"configuration") => "ERROR",
            _ => "FAIL",
        };
        println!("{label}  {}", verdict.summary);
        verdicts.push(verdict);
    }
    Ok(Checked { verdicts, complete, misconfigured })
}
