//! The reference stack started in this process, for `check`, `load`, `run` and `capacity`
//! without `--target`: `--instances` stacks (each with its own state unless `--redis` and
//! `--database` give them shared backends) and a fake upstream they call, its control API on a
//! listener of its own (so the API's connection counts are the stacks' alone). Its settings
//! are what the profile's checks ask for ([`checks::Tuning`]): short windows and timeouts, so
//! every phase a check waits for comes within seconds.

use anyhow::Context;
use checks::Tuning;
use reference::limit::Limit;
use reference::usage_tracker::UsageLimits;

use crate::tuned::{HARNESS_REGISTRATIONS, UNBOUNDED_PLAN, serve_flags};

/// The stacks, the fake upstream, and how they were set up (for the report).
pub(crate) struct Embedded {
    pub(crate) stacks: Vec<stack::RunningStack>,
    /// Instead of `stacks`: the instances as processes under `serve`'s supervisor (the
    /// profile has instance faults).
    pub(crate) processes: Option<std::sync::Arc<crate::supervised::Supervised>>,
    /// The backends the instances share, to purge the run's namespace from at the end.
    backends: Option<stack::BackendConfig>,
    pub(crate) fake: fake_upstream::RunningUpstream,
    /// The fault proxies between the stacks and their dependencies, when the profile has link
    /// faults.
    pub(crate) links: Option<Links>,
    pub(crate) description: serde_json::Value,
    /// What the stack holds and must never show, each with how a report names it.
    pub(crate) secrets: Vec<(String, String)>,
}

/// TCP proxies in front of the embedded stack's dependencies (`redis`, `postgres`,
/// `upstream`), driven through their Toxiproxy API.
pub(crate) struct Links {
    pub(crate) server: faults::RunningProxyServer,
    /// The link names, as the profile's faults name them.
    pub(crate) names: Vec<String>,
}

impl Links {
    /// A proxy server with a proxy for each dependency `to` names (`(link, host:port)`).
    async fn start(to: &[(&str, String)]) -> anyhow::Result<(Self, Vec<String>)> {
        let server = faults::ProxyServer::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("start the fault proxies")?;
        let client = faults::Toxiproxy::new(server.api_url());
        let mut listens = Vec::new();
        for (name, upstream) in to {
            let spec = faults::ProxySpec {
                name: (*name).to_owned(),
                listen: "127.0.0.1:0".to_owned(),
                upstream: upstream.clone(),
                enabled: true,
            };
            match client.create_proxy(&spec).await {
                Ok(proxy) => listens.push(proxy.listen),
                Err(e) => {
                    server.shutdown().await;
                    return Err(anyhow::Error::new(e).context(format!("the {name} fault proxy")));
                }
            }
        }
        let names = to.iter().map(|(n, _)| (*n).to_owned()).collect();
        Ok((Self { server, names }, listens))
    }
}

/// `url` with its host and port replaced by `listen` (`host:port`).
fn through(url: &str, listen: &str) -> anyhow::Result<String> {
    let shown = reference::store::shown_url(url);
    let mut parsed = url::Url::parse(url).with_context(|| format!("{shown:?} is not a URL"))?;
    let (host, port) = listen.rsplit_once(':').context("a proxy's listen address")?;
    parsed.set_host(Some(host.trim_matches(['[', ']']))).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    parsed
        .set_port(Some(port.parse().context("a proxy's port")?))
        .map_err(|()| anyhow::anyhow!("{shown}: no port"))?;
    Ok(parsed.to_string())
}

/// The `host:port` a URL names (with the scheme's default port).
fn authority(url: &str, default_port: u16) -> anyhow::Result<String> {
    let shown = reference::store::shown_url(url);
    let parsed = url::Url::parse(url)
        .with_context(|| format!("{shown:?}: a fault proxy goes in front of a dependency given as a URL"))?;
    let host = parsed.host_str().with_context(|| format!("{shown:?} names no host"))?;
    Ok(format!("{host}:{}", parsed.port().unwrap_or(default_port)))
}

/// What stacks to start: how many, on which shared backends (memory without), which mutant.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) instances: u16,
    pub(crate) redis: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) mutant: Option<stack::Mutant>,
    /// Put a fault proxy in front of each dependency (the profile has link faults).
    pub(crate) links: bool,
    /// Run the instances as processes (the profile has instance faults).
    pub(crate) processes: bool,
}

/// Starts the stacks `setup` describes with `tuning`'s settings; `run` names their namespace on
/// shared servers.
pub(crate) async fn start(setup: &Setup, run: &str, tuning: &Tuning) -> anyhow::Result<Embedded> {
    let refresh = reference::token_refresh::Policy::new(tuning.refresh_period, tuning.token_lifetime)
        .context("refresh policy")?;
    // What can be refused is refused before anything starts.
    anyhow::ensure!(
        !setup.processes || (setup.redis.is_some() && setup.database.is_some()),
        "instance faults run the stack's instances as processes, which share their state only through \
         --redis and --database: give both"
    );
    let redis_at = setup.redis.as_deref().filter(|_| setup.links).map(|u| authority(u, 6379)).transpose()?;
    let database_at =
        setup.database.as_deref().filter(|_| setup.links).map(|u| authority(u, 5432)).transpose()?;
    let fake = fake_upstream::FakeUpstream::start(fake_upstream::Config {
        access_token_lifetime: tuning.token_lifetime,
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
    // The fault proxies: the stacks reach their dependencies through them.
    let (mut redis, mut database, mut upstream_url) =
        (setup.redis.clone(), setup.database.clone(), fake.url());
    let links = if setup.links {
        let linked = async {
            let mut to = vec![("upstream", authority(&upstream_url, 80)?)];
            to.extend(redis_at.clone().map(|at| ("redis", at)));
            to.extend(database_at.clone().map(|at| ("postgres", at)));
            let (links, listens) = Links::start(&to).await?;
            let mut urls = (redis.clone(), database.clone(), upstream_url.clone());
            for ((name, _), listen) in to.iter().zip(&listens) {
                let rewritten = match *name {
                    "upstream" => {
                        through(&urls.2, listen).map(|u| urls.2 = u.trim_end_matches('/').to_owned())
                    }
                    "redis" => urls.0.as_deref().map(|u| through(u, listen)).transpose().map(|u| urls.0 = u),
                    _ => urls.1.as_deref().map(|u| through(u, listen)).transpose().map(|u| urls.1 = u),
                };
                if let Err(e) = rewritten {
                    links.server.shutdown().await;
                    return Err(e);
                }
            }
            Ok::<_, anyhow::Error>((links, urls))
        };
        match linked.await {
            Ok((links, (r, d, u))) => {
                (redis, database, upstream_url) = (r, d, u);
                Some(links)
            }
            Err(e) => {
                fake.shutdown().await;
                return Err(e);
            }
        }
    } else {
        None
    };
    let plan = tuning.upstream_plan.unwrap_or(UNBOUNDED_PLAN);
    let pool = upstream::UpstreamConfig {
        max_connections: tuning.upstream_connections,
        max_idle_per_host: tuning.upstream_idle,
        ..upstream::UpstreamConfig::SEED
    };
    // Straight to the servers, not through the fault proxies: the purge at the end must not
    // depend on a link a fault may have left down.
    let backends = stack::BackendConfig {
        redis: setup.redis.clone(),
        database: setup.database.clone(),
        namespace: namespace.clone(),
        application_name: "stampede-check-purge".to_owned(),
        ..Default::default()
    };
    let mut stacks = Vec::new();
    let mut failed = None;
    let mut processes = None;
    if setup.processes {
        let mut args: Vec<String> = vec![
            "--namespace".into(),
            namespace.clone(),
            "--upstream".into(),
            upstream_url.clone(),
            "--upstream-client-id".into(),
            "stampede".into(),
        ];
        args.extend(serve_flags(tuning, UsageLimits { per_day: plan, per_hour: plan }));
        if let Some(mutant) = setup.mutant {
            args.extend(["--mutant".to_owned(), mutant.name().to_owned()]);
        }
        // The secrets by environment, never in a command line.
        let mut secrets = vec![(crate::serve::REFRESH_TOKEN_ENV, account.refresh_token.clone())];
        secrets.extend(redis.clone().map(|url| (crate::serve::REDIS_ENV, url)));
        secrets.extend(database.clone().map(|url| (crate::serve::DATABASE_ENV, url)));
        match crate::supervised::Supervised::start(setup.instances, args, secrets).await {
            Ok(supervised) => processes = Some(std::sync::Arc::new(supervised)),
            Err(e) => failed = Some(e),
        }
    }
    for i in 0..setup.instances {
        if setup.processes {
            break;
        }
        let mut config = stack::StackConfig::default();
        config.backends.redis = redis.clone();
        config.backends.database = database.clone();
        config.backends.namespace = namespace.clone();
        config.backends.application_name = format!("stampede-check-{i}");
        let settings = &mut config.settings;
        settings.instance = format!("stack-{i}");
        settings.publish_limit = Limit::new(tuning.publish_limit, tuning.publish_window);
        settings.mutant = setup.mutant;
        settings.breaker = reference::circuit_breaker::Policy {
            failure_threshold: tuning.breaker_failures,
            open_for: tuning.breaker_open,
            trial_timeout: tuning.breaker_trial_timeout,
        };
        settings.task_visibility = tuning.task_visibility;
        settings.task_time_limit = tuning.task_time_limit;
        settings.workers = tuning.workers;
        settings.upstream_pool = pool;
        settings.registration_limit = HARNESS_REGISTRATIONS;
        if let Some(deadline) = tuning.connection_deadline {
            settings.connections.header_timeout = deadline;
            settings.connections.body_grace = deadline;
        }
        settings.usage = UsageLimits { per_day: plan, per_hour: plan };
        settings.upstream = Some(stack::UpstreamLink {
            url: upstream_url.clone(),
            client_id: "stampede".to_owned(),
            refresh_token: account.refresh_token.clone(),
            refresh,
        });
        match stack::start(config).await {
            Ok(running) => stacks.push(running),
            Err(e) => {
                failed = Some(anyhow::Error::new(e).context(format!("start embedded stack instance {i}")));
                break;
            }
        }
    }
    if let Some(e) = failed {
        // What started goes down with the one that did not.
        Embedded {
            stacks,
            processes,
            backends: Some(backends),
            fake,
            links,
            description: serde_json::Value::Null,
            secrets: Vec::new(),
        }
        .shutdown("stampede")
        .await;
        return Err(e);
    }
    let ms = human;
    let description = serde_json::json!({
        "instances": setup.instances,
        "backend": match (&setup.redis, &setup.database) {
            (None, None) => "memory",
            (Some(_), None) => "redis",
            (None, Some(_)) => "postgres",
            (Some(_), Some(_)) => "redis+postgres",
        },
        "mutant": setup.mutant.map(|m| m.name()),
        "publish_limit": format!("{}/{}", tuning.publish_limit, ms(tuning.publish_window)),
        "breaker": format!(
            "{} failures, {} open, {} trial timeout",
            tuning.breaker_failures,
            ms(tuning.breaker_open),
            ms(tuning.breaker_trial_timeout)
        ),
        "token_refresh": format!("every {}, tokens live {}", ms(tuning.refresh_period), ms(tuning.token_lifetime)),
        "import_tasks": format!(
            "visibility timeout {}, hard time limit {}",
            ms(tuning.task_visibility),
            ms(tuning.task_time_limit)
        ),
        "workers": tuning.workers,
        "connection_deadline": tuning.connection_deadline.map(ms),
        "upstream_pool": format!(
            "{} connections, {} idle, {} in flight",
            pool.max_connections,
            pool.max_idle_per_host,
            pool.in_flight_limit()
        ),
        "upstream_plan": format!("{plan}/{plan}"),
        "upstream_control": fake.control_url(),
        "namespace": namespace,
        "fault_proxies": links.as_ref().map(|l| l.server.api_url()),
        "processes": setup.processes,
    });
    let mut secrets = vec![("the upstream refresh token".to_owned(), account.refresh_token.clone())];
    for (flag, url) in [("--redis", &setup.redis), ("--database", &setup.database)] {
        let Some(written) = url.as_deref().and_then(|u| url::Url::parse(u).ok()) else { continue };
        let Some(written) = written.password().map(str::to_owned) else { continue };
        // As the server knows it (`%XX` decoded), and as the URL spells it, which is how a stack
        // that prints its URL shows it.
        let decoded = percent_encoding::percent_decode_str(&written).decode_utf8_lossy().into_owned();
        if decoded != written {
            secrets.push((format!("the password in {flag} as written"), written));
        }
        secrets.push((format!("the password in {flag}"), decoded));
    }
    Ok(Embedded { stacks, processes, backends: Some(backends), fake, links, description, secrets })
}

/// `d` as the description writes it: `3s`, `1.5s`, `250ms`.
fn human(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms % 1000 == 0 => format!("{}s", ms / 1000),
        _ if ms % 100 == 0 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{ms}ms"),
    }
}

impl Embedded {
    /// The instances' URLs.
    pub(crate) fn urls(&self) -> Vec<String> {
        match &self.processes {
            Some(p) => p.urls.clone(),
            None => self.stacks.iter().map(|s| s.url()).collect(),
        }
    }

    /// Stops the stacks and the fake upstream, and removes the run's namespace from shared
    /// servers.
    pub(crate) async fn shutdown(self, command: &str) {
        // The instances' own backends go through the fault proxies when there are any (and go
        // with the instances when they are processes): then the servers are opened again,
        // straight.
        let straight = self.links.is_some() || self.processes.is_some();
        let mut backends =
            if straight { None } else { self.stacks.first().map(|s| s.state().backends.clone()) };
        for running in self.stacks {
            let _ = running.shutdown().await;
        }
        if let Some(processes) = self.processes {
            processes.shutdown().await;
        }
        self.fake.shutdown().await;
        if straight && let Some(config) = self.backends.filter(|c| c.redis.is_some() || c.database.is_some())
        {
            match stack::Backends::open(&config).await {
                Ok(opened) => backends = Some(opened),
                Err(e) => eprintln!(
                    "stampede {command}: could not remove the run's namespace from the servers: {e}"
                ),
            }
        }
        // Once more when the first finds a connection a fault broke: the next one is new.
        let purge = async |b: &stack::Backends| match b.purge().await {
            Err(_) => b.purge().await,
            done => done,
        };
        if let Some(backends) = backends
            && let Err(e) = purge(&backends).await
        {
            eprintln!("stampede {command}: could not remove the run's namespace from the servers: {e}");
        }
        if let Some(links) = self.links {
            links.server.shutdown().await;
        }
    }
}
