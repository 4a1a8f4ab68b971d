//! `stampede serve`: the reference stack in this process, or `--instances N` separate
//! processes sharing the configured backends.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use reference::limit::Limit;

/// The environment variables that carry serve's secrets (its children get them this way).
pub(crate) const REDIS_ENV: &str = "STAMPEDE_REDIS";
pub(crate) const DATABASE_ENV: &str = "STAMPEDE_DATABASE";
pub(crate) const REFRESH_TOKEN_ENV: &str = "STAMPEDE_UPSTREAM_REFRESH_TOKEN";

#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. With `--instances N`, instance i
    /// listens on port + i (or its own free port when the port is 0).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Keep shared state in this Redis (`redis://host:port`, `redis://:PASSWORD@host:port`).
    /// Read from STAMPEDE_REDIS when not given: a password kept out of the command line.
    #[arg(long, value_name = "URL", env = "STAMPEDE_REDIS", hide_env_values = true)]
    pub(crate) redis: Option<String>,
    /// Keep records, feeds and the L3 cache in this PostgreSQL (`postgres://user@host/db`).
    /// Read from STAMPEDE_DATABASE when not given.
    #[arg(long, value_name = "URL", env = "STAMPEDE_DATABASE", hide_env_values = true)]
    pub(crate) database: Option<String>,
    /// Redis key prefix and PostgreSQL schema, so stacks can share servers.
    #[arg(long, default_value = "stampede")]
    pub(crate) namespace: String,
    /// With `--instances N`: every instance listens on the one port of `--listen` (a free one
    /// for port 0), the kernel spreading connections over them (`SO_REUSEPORT`): several
    /// processes behind one URL, as gunicorn's or uvicorn's workers are. Check such a stack
    /// with `--processes N`.
    #[arg(long, requires = "instances")]
    pub(crate) one_port: bool,
    /// Listen with SO_REUSEPORT (set by `--one-port` for its children).
    #[arg(long, hide = true)]
    pub(crate) reuse_port: bool,
    /// Start this many separate processes sharing the backends.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) instances: u16,
    /// With `--instances`: how many times a minute each instance that stops on its own (a
    /// crash, a kill) is started again on its address (a new port when `--listen`'s is 0
    /// without `--one-port`) before serve stops them all and exits 1; 0 stops them all on the
    /// first (an orchestrator's job then).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub(crate) restarts: usize,
    /// The API to serve the components behind: `reference` (crates/stack/openapi.json,
    /// mapped by scenarios/reference.toml) or `partner` (written the way another team writes
    /// one: its own routes, an API key, numeric ids, `X-RateLimit-*`, next links, 403 for
    /// WebSockets over the limit; mapped by scenarios/partner.toml).
    #[arg(long, default_value = "reference", value_name = "SHAPE", value_parser = parse_shape)]
    pub(crate) shape: stack::Shape,
    /// The publish limit per user, `COUNT/DURATION` (e.g. `6/60s`, `100/1h`).
    #[arg(long, default_value = "6/60s", value_parser = parse_limit)]
    pub(crate) publish_limit: Limit,
    /// How rate-limited answers state their window: `ietf` (`RateLimit-Limit`, `-Remaining`,
    /// `-Reset` in seconds to go), `structured` (`RateLimit: limit=6, remaining=3, reset=41`),
    /// `x-ratelimit` (`X-RateLimit-*`, the reset in epoch seconds), `retry-after` or
    /// `retry-after-date` (only `Retry-After` on a refusal, in seconds or as an HTTP date):
    /// the conventions a profile's rate-limit check can read.
    #[arg(long, default_value = "ietf", value_name = "STYLE", value_parser = parse_headers)]
    pub(crate) rate_limit_headers: stack::RateLimitHeaders,
    /// Refuse a chat connection over the limit by accepting the upgrade and closing it at once
    /// with this close code (e.g. 4429), instead of answering 429 to the handshake.
    #[arg(long, value_name = "CODE", value_parser = parse_close_code)]
    pub(crate) chat_refuse_close: Option<u16>,
    /// Where upload bodies are stored: by default a directory of the process's own under the
    /// temporary directory; `--instances` gives all its instances one, as workers behind one
    /// port share a volume, so that any of them serves an upload's bytes.
    #[arg(long, value_name = "DIR")]
    pub(crate) upload_dir: Option<std::path::PathBuf>,
    /// Uploads per user, `COUNT/DURATION`.
    #[arg(long, default_value = "15/24h", value_parser = parse_limit)]
    pub(crate) upload_limit: Limit,
    /// How long a computed dashboard stays cached.
    #[arg(long, default_value = "60s", value_parser = crate::args::parse_duration)]
    pub(crate) dashboard_ttl: Duration,
    /// IANA time zone whose midnight resets the daily quota.
    #[arg(long, default_value = "UTC")]
    pub(crate) quota_zone: String,
    /// Run this mutant instead of the reference component it replaces (catalogue name, e.g.
    /// `fixed_window::mutants::GetThenSet`, or its last part when unambiguous); for showing
    /// that the checks catch it.
    #[arg(long, value_name = "NAME", value_parser = parse_mutant)]
    pub(crate) mutant: Option<stack::Mutant>,
    /// The upstream (YouTube/TikTok API or a `fake-upstream`) the import workers call. Without
    /// it, a fake upstream is started in this process and its URL printed.
    #[arg(long, value_name = "URL")]
    pub(crate) upstream: Option<String>,
    /// Where the in-process fake upstream's API listens (without `--upstream`); a free port by
    /// default.
    #[arg(long, value_name = "ADDR", conflicts_with = "upstream")]
    pub(crate) upstream_listen: Option<SocketAddr>,
    /// Where the in-process fake upstream's control API listens (without `--upstream`): a
    /// fixed address to give `stampede check --upstream-control`; a free port by default.
    #[arg(long, value_name = "ADDR", conflicts_with = "upstream")]
    pub(crate) upstream_control_listen: Option<SocketAddr>,
    /// OAuth client id of the stack at the upstream.
    #[arg(long, default_value = "stampede")]
    pub(crate) upstream_client_id: String,
    /// The platform account's refresh token at the upstream. Read from
    /// STAMPEDE_UPSTREAM_REFRESH_TOKEN when not given.
    #[arg(
        long,
        value_name = "TOKEN",
        requires = "upstream",
        env = "STAMPEDE_UPSTREAM_REFRESH_TOKEN",
        hide_env_values = true
    )]
    pub(crate) upstream_refresh_token: Option<String>,
    /// How often the platform credential is refreshed (seed: 30m).
    #[arg(long, default_value = "30m", value_parser = crate::args::parse_duration)]
    pub(crate) refresh_period: Duration,
    /// How long the upstream's access tokens live (seed: 1h); at least two refresh periods.
    #[arg(long, default_value = "1h", value_parser = crate::args::parse_duration)]
    pub(crate) token_lifetime: Duration,
    /// The upstream API plan the usage tracker enforces, `PER_DAY/PER_HOUR` (seed: 100/20).
    #[arg(long, default_value = "100/20", value_parser = parse_plan)]
    pub(crate) upstream_plan: reference::usage_tracker::UsageLimits,
    /// How long the upstream circuit breaker stays open before it lets one trial call through
    /// (seed: 60s).
    #[arg(long, default_value = "60s", value_parser = crate::args::parse_duration)]
    pub(crate) breaker_open: Duration,
    /// Consecutive upstream failures that open the circuit breaker (seed: 5).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub(crate) breaker_failures: u32,
    /// How long a half-open trial call may stay unanswered before another may go (seed: 10s).
    #[arg(long, default_value = "10s", value_parser = crate::args::parse_duration)]
    pub(crate) breaker_trial_timeout: Duration,
    /// Import processors per process.
    #[arg(long, default_value_t = 2)]
    pub(crate) workers: usize,
    /// How long a taken import task stays invisible to other workers before it is redelivered
    /// (seed: 360s, the hard time limit plus a minute).
    #[arg(long, default_value = "360s", value_parser = crate::args::parse_duration)]
    pub(crate) task_visibility: Duration,
    /// The hard time limit of one import task: past it the task is abandoned unacknowledged,
    /// as if its worker had died, and redelivered after its visibility timeout (seed: 300s).
    /// A visibility timeout below it lets a task still running reach a second worker.
    #[arg(long, default_value = "300s", value_parser = crate::args::parse_duration)]
    pub(crate) task_time_limit: Duration,
    /// Connections the pooled upstream client keeps open at once, busy or idle (seed: 100).
    /// Requests in flight are capped at this less `--upstream-idle`.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub(crate) upstream_connections: usize,
    /// Idle keep-alive connections the upstream client keeps for reuse (seed: 20); below
    /// `--upstream-connections`.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub(crate) upstream_idle: usize,
    /// Delay every API answer by this long (default 0): a deliberately slowed stack, to see
    /// `stampede report compare` flag the regression against a baseline.
    #[arg(long, default_value = "0s", value_parser = crate::args::parse_duration, value_name = "DURATION")]
    pub(crate) added_latency: Duration,
    /// Registrations per client address (an IPv6 address by its /64), `COUNT/DURATION`.
    #[arg(long, default_value = "300/60s", value_parser = parse_limit)]
    pub(crate) registration_limit: Limit,
    /// Close a connection that has not sent a whole request head this long after the stack
    /// began waiting for one: a new connection, or a kept-alive one between requests.
    #[arg(long, default_value = "5s", value_parser = crate::args::parse_duration, value_name = "DURATION")]
    pub(crate) header_timeout: Duration,
    /// Connections each instance serves at once (default: the descriptor limit less 128). At the
    /// cap a new connection closes the oldest idle one; with none idle it is answered 503 with
    /// `Retry-After`.
    #[arg(long, value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// The slowest average rate an upload body may come at once `--body-grace` has passed,
    /// bytes a second; a slower one is cut off with 408.
    #[arg(long, default_value_t = 8192, value_name = "BYTES")]
    pub(crate) body_floor: u64,
    /// How long an upload body may come slower than `--body-floor` before the floor applies.
    #[arg(long, default_value = "5s", value_parser = crate::args::parse_duration, value_name = "DURATION")]
    pub(crate) body_grace: Duration,
    /// Serve what this profile's checks need (the settings `stampede check` gives the stack it
    /// starts itself) and its `[stack]` settings; a flag given here as well wins. Then
    /// `stampede check --target URL --profile FILE` can judge every check.
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<std::path::PathBuf>,
    /// Log lines as JSON objects instead of text.
    #[arg(long)]
    pub(crate) log_json: bool,
    /// The control API of the fake upstream the supervisor started (set by `--instances` for
    /// its children, which publish it at `/settings`).
    #[arg(long, hide = true)]
    pub(crate) upstream_control_url: Option<String>,
    /// This instance's name (set by `--instances` for its children).
    #[arg(long, hide = true)]
    pub(crate) instance_name: Option<String>,
    /// Shut down when standard input closes (how a parent stops its instances gracefully).
    #[arg(long, hide = true)]
    pub(crate) stop_on_stdin_eof: bool,
    /// Run the instances as children under the supervisor even when there is one (how `stampede
    /// run` starts a stack whose instances a fault kills).
    #[arg(long, hide = true)]
    pub(crate) supervise: bool,
}

/// A socket bound with `SO_REUSEPORT` to `at` (a free port for port 0), not listening, and its
/// port: the instances bind the same port beside it.
fn reserve_port(at: SocketAddr) -> std::io::Result<(tokio::net::TcpSocket, u16)> {
    let socket =
        if at.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(at)?;
    let port = socket.local_addr()?.port();
    Ok((socket, port))
}

/// A close code a server may send: 1000 to 4999, less those reserved for the endpoints' own
/// reports (1005, 1006, 1015) and the unassigned 1016–2999 (RFC 6455 §7.4).
fn parse_close_code(text: &str) -> Result<u16, String> {
    let code: u16 = text.parse().map_err(|_| format!("{text:?} is not a close code"))?;
    match code {
        1000..=1004 | 1007..=1014 | 3000..=4999 => Ok(code),
        _ => Err(format!("{code} cannot be sent in a close frame (1000–1004, 1007–1014, 3000–4999)")),
    }
}

fn parse_headers(text: &str) -> Result<stack::RateLimitHeaders, String> {
    text.parse()
}

fn parse_plan(text: &str) -> Result<reference::usage_tracker::UsageLimits, String> {
    let (day, hour) = text.split_once('/').ok_or_else(|| format!("{text:?} is not PER_DAY/PER_HOUR"))?;
    let day: u64 = day.trim().parse().map_err(|_| format!("{day:?} is not a count"))?;
    let hour: u64 = hour.trim().parse().map_err(|_| format!("{hour:?} is not a count"))?;
    if day == 0 || hour == 0 {
        return Err(format!("{text:?}: both counts must be positive"));
    }
    Ok(reference::usage_tracker::UsageLimits { per_day: day, per_hour: hour })
}

/// The upstream pool of `--upstream-connections` and `--upstream-idle`.
fn upstream_pool(args: &ServeArgs) -> anyhow::Result<upstream::UpstreamConfig> {
    let pool = upstream::UpstreamConfig {
        max_connections: args.upstream_connections,
        max_idle_per_host: args.upstream_idle,
        ..upstream::UpstreamConfig::SEED
    };
    anyhow::ensure!(
        pool.in_flight_limit() > 0,
        "--upstream-connections {} must exceed --upstream-idle {}: requests in flight are capped at \
         their difference",
        args.upstream_connections,
        args.upstream_idle
    );
    Ok(pool)
}

fn parse_shape(text: &str) -> Result<stack::Shape, String> {
    stack::Shape::ALL.iter().find(|(name, _)| *name == text).map(|(_, shape)| *shape).ok_or_else(|| {
        let names: Vec<&str> = stack::Shape::ALL.iter().map(|(name, _)| *name).collect();
        format!("no shape {text:?}; one of {}", names.join(", "))
    })
}

fn parse_mutant(text: &str) -> Result<stack::Mutant, String> {
    stack::Mutant::parse(text)
}

fn parse_limit(text: &str) -> Result<Limit, String> {
    let (count, window) = text.split_once('/').ok_or_else(|| format!("{text:?} is not COUNT/DURATION"))?;
    let count: u64 = count.trim().parse().map_err(|_| format!("{count:?} is not a count"))?;
    let window = crate::args::parse_duration(window.trim())?;
    if count == 0 || window.is_zero() {
        return Err(format!("{text:?}: count and duration must be positive"));
    }
    Ok(Limit::new(count, window))
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.shape == stack::Shape::Reference || args.rate_limit_headers == stack::RateLimitHeaders::Ietf,
        "--rate-limit-headers is the reference shape's: --shape {} states its windows as X-RateLimit-*",
        args.shape.name()
    );
    init_logs(args.log_json);
    if args.instances > 1 || args.supervise {
        return supervise(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve_one(args))
}

fn init_logs(json: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| f.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry().with(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        registry.with(fmt.json()).init();
    } else {
        registry.with(fmt).init();
    }
}

async fn serve_one(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Before anything else: a SIGTERM sent as soon as the listening line is out must stop the
    // stack gracefully, not kill it.
    let signal = shutdown_signal();
    let mut config = stack_config(&args)?;
    let refresh = reference::token_refresh::Policy::new(args.refresh_period, args.token_lifetime)
        .context("--refresh-period and --token-lifetime")?;
    let (fake, link) = upstream_link(&args, refresh).await?;
    config.settings.upstream = Some(link);
    config.settings.upstream_control =
        fake.as_ref().map(fake_upstream::RunningUpstream::control_url).or(args.upstream_control_url.clone());
    let stack = match stack::start(config).await {
        Ok(stack) => stack,
        Err(e @ stack::server::StartError::Backend(_)) => {
            eprintln!("stampede serve: {e}");
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e.into()),
    };
    println!("stampede serve: listening on {}", stack.url());
    std::io::stdout().flush()?;
    let stdin_closed = args.stop_on_stdin_eof;
    stack
        .serve_until(async move {
            if stdin_closed {
                tokio::select! {
                    () = signal => {}
                    () = stdin_eof() => {}
                }
            } else {
                signal.await;
            }
        })
        .await?;
    if let Some(fake) = fake {
        fake.shutdown().await;
    }
    tracing::info!("stack stopped");
    Ok(ExitCode::SUCCESS)
}

/// `args` beneath `--profile FILE`'s settings, the command line's flags winning: the flags
/// that give the profile's checks what they need (as the embedded stack has them), then the
/// profile's `[stack]`, then what was given. Each `[stack]` setting is read as its flag, an
/// error naming its line; a setting that leaves a check unable to judge is said.
pub(crate) fn with_profile(args: ServeArgs) -> anyhow::Result<ServeArgs> {
    use clap::{Args, FromArgMatches};
    let Some(path) = args.profile.clone() else { return Ok(args) };
    let profile = crate::profiles::read(Some(&path))?;
    let checks = checks::read(&profile)?;
    let tuning = checks::tuning(&checks, &profile.defaults).map_err(anyhow::Error::msg)?;
    let plan = match tuning.upstream_plan {
        // A day of hourly runs: the checks that spend the plan spend one hour's.
        Some(hour) => reference::usage_tracker::UsageLimits { per_day: 24 * hour, per_hour: hour },
        None => reference::usage_tracker::UsageLimits {
            per_day: crate::tuned::UNBOUNDED_PLAN,
            per_hour: crate::tuned::UNBOUNDED_PLAN,
        },
    };
    let command = ServeArgs::augment_args(clap::Command::new("stampede serve")).args_override_self(true);
    let mut flags = crate::tuned::serve_flags(&tuning, plan);
    for (key, value) in &profile.stack.settings {
        let name = key.replace('_', "-");
        if let Some(env) = secret_env(&name) {
            return Err(profile
                .stack
                .invalid(
                    key,
                    format!("stack.{key}: may carry a secret, which a profile must not; give it in {env}"),
                )
                .into());
        }
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && !a.is_hide_set() && name != "profile")
            .ok_or_else(|| {
                profile.stack.invalid(key, format!("stack.{key}: `stampede serve` has no option --{name}"))
            })?;
        let given: Vec<String> = match (arg.get_action().takes_values(), value.as_str()) {
            (true, _) => vec![format!("--{name}"), value.clone()],
            (false, "true") => vec![format!("--{name}")],
            (false, "false") => continue,
            (false, _) => {
                return Err(profile.stack.invalid(key, format!("stack.{key}: true or false")).into());
            }
        };
        let argv = std::iter::once("stampede serve".to_owned()).chain(given.iter().cloned());
        // Alone, as its flag: what another setting requires is checked with them all, below.
        if let Err(e) = command.clone().try_get_matches_from(argv)
            && e.kind() != clap::error::ErrorKind::MissingRequiredArgument
        {
            let said = e.render().to_string();
            let first = said.lines().next().unwrap_or_default().trim_start_matches("error: ");
            return Err(profile.stack.invalid(key, format!("stack.{key} = {value:?}: {first}")).into());
        }
        flags.extend(given);
    }
    println!("stampede serve: from {}: {}", path.display(), flags.join(" "));
    // What was given comes last, and wins.
    let given: Vec<std::ffi::OsString> = std::env::args_os().skip_while(|a| a != "serve").skip(1).collect();
    let argv = std::iter::once(std::ffi::OsString::from("stampede serve"))
        .chain(flags.into_iter().map(Into::into))
        .chain(given);
    let matches = command.try_get_matches_from(argv).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let args = ServeArgs::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    // What the command line changed that a check needs, said before the stack starts.
    let mut settings = stack_config(&args)?.settings;
    let refresh = reference::token_refresh::Policy::new(args.refresh_period, args.token_lifetime)
        .context("--refresh-period and --token-lifetime")?;
    settings.upstream = Some(stack::UpstreamLink {
        url: String::new(),
        client_id: String::new(),
        refresh_token: String::new(),
        refresh,
    });
    for unmet in checks::settings::unmet(&checks, &settings.published()) {
        eprintln!("stampede serve: warning: {}", unmet.line());
    }
    Ok(args)
}

/// The environment variable that carries the secret option `name`, for the options a profile's
/// `[stack]` refuses.
fn secret_env(name: &str) -> Option<&'static str> {
    match name {
        "redis" => Some(REDIS_ENV),
        "database" => Some(DATABASE_ENV),
        "upstream-refresh-token" => Some(REFRESH_TOKEN_ENV),
        _ => None,
    }
}

/// The stack `args` describe, but for its upstream.
fn stack_config(args: &ServeArgs) -> anyhow::Result<stack::StackConfig> {
    let instance = args.instance_name.clone().unwrap_or_else(|| "stack-0".to_owned());
    let zone = jiff::tz::TimeZone::get(&args.quota_zone)
        .with_context(|| format!("--quota-zone {:?} is not an IANA time zone", args.quota_zone))?;
    let mut config =
        stack::StackConfig { listen: args.listen, reuse_port: args.reuse_port, ..Default::default() };
    config.backends.redis = args.redis.clone();
    config.backends.database = args.database.clone();
    config.backends.namespace = args.namespace.clone();
    config.backends.application_name = format!("stampede-{instance}");
    config.settings.instance = instance;
    config.settings.shape = args.shape;
    if let Some(dir) = &args.upload_dir {
        config.settings.upload_dir = dir.clone();
    }
    config.settings.publish_limit = args.publish_limit;
    config.settings.rate_limit_headers = args.rate_limit_headers;
    config.settings.chat.refuse_with_close = args.chat_refuse_close;
    config.settings.upload_limit = args.upload_limit;
    config.settings.dashboard_ttl = args.dashboard_ttl;
    config.settings.quota_zone = zone;
    config.settings.mutant = args.mutant;
    config.settings.workers = args.workers;
    config.settings.upstream_pool = upstream_pool(args)?;
    config.settings.usage = args.upstream_plan;
    config.settings.breaker.open_for = args.breaker_open;
    config.settings.breaker.failure_threshold = args.breaker_failures;
    config.settings.breaker.trial_timeout = args.breaker_trial_timeout;
    config.settings.task_visibility = args.task_visibility;
    config.settings.task_time_limit = args.task_time_limit;
    config.settings.added_latency = args.added_latency;
    config.settings.registration_limit = args.registration_limit;
    config.settings.connections = stack::ConnectionLimits {
        header_timeout: args.header_timeout,
        max_connections: args.max_connections,
        body_floor_bytes_per_s: args.body_floor,
        body_grace: args.body_grace,
        ..stack::ConnectionLimits::default()
    };
    Ok(config)
}

/// The upstream named on the command line, or a fake one started here with one registered
/// platform account.
async fn upstream_link(
    args: &ServeArgs,
    refresh: reference::token_refresh::Policy,
) -> anyhow::Result<(Option<fake_upstream::RunningUpstream>, stack::UpstreamLink)> {
    if let Some(url) = &args.upstream {
        let refresh_token = args
            .upstream_refresh_token
            .clone()
            .context("--upstream needs --upstream-refresh-token, the platform account's refresh token")?;
        let link = stack::UpstreamLink {
            url: url.clone(),
            client_id: args.upstream_client_id.clone(),
            refresh_token,
            refresh,
        };
        return Ok((None, link));
    }
    // The control API on a listener of its own, so the API listener's connection counts hold
    // the stack's connections alone (what the `upstream-pool` check judges).
    let mut config = fake_upstream::Config {
        access_token_lifetime: refresh.lifetime(),
        control_listen: Some(args.upstream_control_listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))),
        ..Default::default()
    };
    if let Some(listen) = args.upstream_listen {
        config.listen = listen;
    }
    let fake = fake_upstream::FakeUpstream::start(config).await.context("start the fake upstream")?;
    let account = fake
        .register_account(fake_upstream::NewAccount {
            client_id: Some(args.upstream_client_id.clone()),
            ..fake_upstream::NewAccount::named("platform")
        })
        .context("register the platform account at the fake upstream")?;
    println!("stampede serve: fake upstream on {}", fake.url());
    println!("stampede serve: fake upstream control API on {}", fake.control_url());
    let link = stack::UpstreamLink {
        url: fake.url(),
        client_id: args.upstream_client_id.clone(),
        refresh_token: account.refresh_token,
        refresh,
    };
    Ok((Some(fake), link))
}

/// Resolves on Ctrl-C or SIGTERM. Registers for both when called, not when first polled: a
/// signal that arrives in between is neither lost nor, as before any registration, fatal.
/// Must be called inside the runtime.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (term, interrupt) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
        async move {
            let term = async {
                match term {
                    Ok(mut term) => {
                        term.recv().await;
                    }
                    Err(_) => std::future::pending().await,
                }
            };
            let interrupt = async {
                match interrupt {
                    Ok(mut interrupt) => {
                        interrupt.recv().await;
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                () = term => {}
                () = interrupt => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn stdin_eof() {
    // Blocking read on a plain thread: tokio's stdin would keep the runtime from shutting down.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// The window `--restarts` counts an instance's restarts in.
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Starts `--instances` children, relays their listening lines, starts again one that stops
/// on its own (at most `--restarts` times a minute each), and stops them all on Ctrl-C/SIGTERM
/// (by closing their standard input) or when one stops more often than that.
fn supervise(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("locate the stampede executable")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    // Registered before any child starts, and kept across the loop below: a signal is never
    // missed between two of its turns.
    let signal = {
        let _entered = runtime.enter();
        shutdown_signal()
    };
    let refresh = reference::token_refresh::Policy::new(args.refresh_period, args.token_lifetime)
        .context("--refresh-period and --token-lifetime")?;
    upstream_pool(args)?;
    // One upstream for every instance: a fake one lives in this process.
    let (fake, link) = runtime.block_on(upstream_link(args, refresh))?;
    // One port for every instance: held here, bound but not listening (so that it takes no
    // connection), until they have all stopped.
    let shared = if args.one_port {
        Some(reserve_port(args.listen).context("reserve the shared port")?)
    } else {
        None
    };
    let upload_dir = args
        .upload_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("stampede-uploads-{}", std::process::id())));
    // Instance `i`'s command, to start it and to start it again.
    let command_for = |i: u16| -> anyhow::Result<Command> {
        let mut listen = args.listen;
        if let Some((_, port)) = &shared {
            listen.set_port(*port);
        } else if listen.port() != 0 {
            listen.set_port(listen.port().checked_add(i).context("port out of range")?);
        }
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--namespace")
            .arg(&args.namespace)
            .arg("--shape")
            .arg(args.shape.name())
            .arg("--publish-limit")
            .arg(format!("{}/{}ms", args.publish_limit.max, args.publish_limit.window.as_millis()))
            .arg("--rate-limit-headers")
            .arg(args.rate_limit_headers.name())
            .args(
                args.chat_refuse_close
                    .iter()
                    .flat_map(|code| ["--chat-refuse-close".to_owned(), code.to_string()]),
            )
            .arg("--upload-limit")
            .arg(format!("{}/{}ms", args.upload_limit.max, args.upload_limit.window.as_millis()))
            .arg("--upload-dir")
            .arg(&upload_dir)
            .arg("--dashboard-ttl")
            .arg(format!("{}ms", args.dashboard_ttl.as_millis()))
            .arg("--quota-zone")
            .arg(&args.quota_zone)
            .arg("--instance-name")
            .arg(format!("stack-{i}"))
            .arg("--stop-on-stdin-eof")
            .args(shared.as_ref().map(|_| "--reuse-port"))
            .arg("--upstream")
            .arg(&link.url)
            .args(fake.iter().flat_map(|f| ["--upstream-control-url".to_owned(), f.control_url()]))
            .arg("--upstream-client-id")
            .arg(&link.client_id)
            // Secrets by environment, never in the command line `ps` shows everyone.
            .env(REFRESH_TOKEN_ENV, &link.refresh_token)
            .arg("--refresh-period")
            .arg(format!("{}ms", args.refresh_period.as_millis()))
            .arg("--token-lifetime")
            .arg(format!("{}ms", args.token_lifetime.as_millis()))
            .arg("--workers")
            .arg(args.workers.to_string())
            .arg("--upstream-connections")
            .arg(args.upstream_connections.to_string())
            .arg("--upstream-idle")
            .arg(args.upstream_idle.to_string())
            .arg("--upstream-plan")
            .arg(format!("{}/{}", args.upstream_plan.per_day, args.upstream_plan.per_hour))
            .arg("--breaker-open")
            .arg(format!("{}ms", args.breaker_open.as_millis()))
            .arg("--breaker-failures")
            .arg(args.breaker_failures.to_string())
            .arg("--breaker-trial-timeout")
            .arg(format!("{}ms", args.breaker_trial_timeout.as_millis()))
            .arg("--task-visibility")
            .arg(format!("{}ms", args.task_visibility.as_millis()))
            .arg("--task-time-limit")
            .arg(format!("{}ms", args.task_time_limit.as_millis()))
            .arg("--added-latency")
            .arg(format!("{}ms", args.added_latency.as_millis()))
            .arg("--registration-limit")
            .arg(format!("{}/{}ms", args.registration_limit.max, args.registration_limit.window.as_millis()))
            .arg("--header-timeout")
            .arg(format!("{}ms", args.header_timeout.as_millis()))
            .args(args.max_connections.iter().flat_map(|n| ["--max-connections".to_owned(), n.to_string()]))
            .arg("--body-floor")
            .arg(args.body_floor.to_string())
            .arg("--body-grace")
            .arg(format!("{}ms", args.body_grace.as_millis()))
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for (name, value) in [(REDIS_ENV, &args.redis), (DATABASE_ENV, &args.database)] {
            match value {
                Some(url) => command.env(name, url),
                None => command.env_remove(name),
            };
        }
        if args.log_json {
            command.arg("--log-json");
        }
        if let Some(mutant) = args.mutant {
            command.arg("--mutant").arg(mutant.name());
        }
        Ok(command)
    };
    // The mutant is the supervisor that gives up on the first crash.
    let budget = if args.mutant == Some(stack::Mutant::StopAllOnCrash) { 0 } else { args.restarts };
    let mut children: Vec<Child> = Vec::new();
    for i in 0..args.instances {
        children.push(command_for(i)?.spawn().with_context(|| format!("start instance {i}"))?);
    }
    // When each instance was last started again, within the restart window.
    let mut restarts: Vec<Vec<std::time::Instant>> = vec![Vec::new(); children.len()];
    let mut failed: Option<String> = None;
    runtime.block_on(async {
        let mut signal = std::pin::pin!(signal);
        // With --stop-on-stdin-eof (how `stampede run` starts it), its parent closing the pipe,
        // or dying, stops it too.
        let stdin_closed = async {
            if args.stop_on_stdin_eof { stdin_eof().await } else { std::future::pending().await }
        };
        let mut stdin_closed = std::pin::pin!(stdin_closed);
        while failed.is_none() {
            tokio::select! {
                () = &mut signal => break,
                () = &mut stdin_closed => break,
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    for (i, child) in children.iter_mut().enumerate() {
                        let Ok(Some(status)) = child.try_wait() else { continue };
                        let now = std::time::Instant::now();
                        restarts[i].retain(|at| now.duration_since(*at) < RESTART_WINDOW);
                        if restarts[i].len() >= budget {
                            failed = Some(format!(
                                "instance {i} stopped on its own ({status}) with {} restarts in the last {} s \
                                 ({}); stopped the others",
                                restarts[i].len(),
                                RESTART_WINDOW.as_secs(),
                                if args.mutant == Some(stack::Mutant::StopAllOnCrash) {
                                    "supervisor::mutants::StopAllOnCrash".to_owned()
                                } else {
                                    format!("--restarts {budget}")
                                }
                            ));
                            break;
                        }
                        restarts[i].push(now);
                        eprintln!(
                            "stampede serve: instance {i} stopped on its own ({status}); starting it again \
                             ({} of {} restarts in {} s)",
                            restarts[i].len(),
                            budget,
                            RESTART_WINDOW.as_secs()
                        );
                        let index = u16::try_from(i).expect("at most 64 instances");
                        match command_for(index).and_then(|mut c| c.spawn().context("spawn")) {
                            Ok(again) => *child = again,
                            Err(e) => {
                                failed = Some(format!("instance {i} could not be started again: {e:#}; stopped the others"));
                                break;
                            }
                        }
                    }
                }
            }
        }
    });
    for child in &mut children {
        drop(child.stdin.take());
    }
    for child in &mut children {
        let _ = child.wait();
    }
    if let Some(fake) = fake {
        runtime.block_on(fake.shutdown());
    }
    match failed {
        Some(why) => bail!("{why}"),
        None => Ok(ExitCode::SUCCESS),
    }
}
