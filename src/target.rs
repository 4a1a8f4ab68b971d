//! The stack a command drives — running instances (`--target URL`, repeatable), or the
//! reference stack started in this process ([`crate::embedded`]) — reached and probed once.
//! `check`, `load`, `run` and `capacity` share [`TargetArgs`], flattened into each.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use checks::Tuning;
use clap::Args;
use client::{Target, TargetError};
use profile::Profile;

use crate::embedded::{self, Embedded};
use crate::exit::Failure;

/// The stack a command drives, and where the run's reports go.
#[derive(Debug, Clone, Args)]
pub(crate) struct TargetArgs {
    /// Base URL of one instance of a running stack; repeat it for every instance. Without it,
    /// stampede starts the reference stack in this process.
    #[arg(long = "target", value_name = "URL", value_parser = crate::args::parse_url)]
    pub(crate) targets: Vec<String>,
    /// Embedded stack: how many instances.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16), conflicts_with = "targets")]
    pub(crate) instances: u16,
    /// Embedded stack: share state through this Redis.
    #[arg(long, value_name = "URL", conflicts_with = "targets")]
    pub(crate) redis: Option<String>,
    /// Embedded stack: keep records in this PostgreSQL.
    #[arg(long, value_name = "URL", conflicts_with = "targets")]
    pub(crate) database: Option<String>,
    /// Where `<run-id>/` (the run's reports) goes.
    #[arg(long, default_value = "reports")]
    pub(crate) reports: PathBuf,
    /// The run's id (default: the start time and a suffix from the process id).
    #[arg(long, value_parser = crate::args::parse_run_id)]
    pub(crate) run_id: Option<String>,
}

/// How to reach the stack beyond its URLs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reach {
    /// The command reaching it (`check`, `load`, …), for its messages.
    pub(crate) command: &'static str,
    /// The embedded stack's settings (the defaults when no check asks for others).
    pub(crate) tuning: Tuning,
    /// The embedded stack runs this mutant.
    pub(crate) mutant: Option<stack::Mutant>,
    /// The control API of the fake upstream a running stack calls (`--upstream-control`).
    pub(crate) upstream_control: Option<String>,
    /// The embedded stack reaches its dependencies through fault proxies (link faults).
    pub(crate) links: bool,
    /// The embedded stack's instances run as processes (instance faults).
    pub(crate) processes: bool,
    /// Read what each `--target` URL publishes at `/settings` (`check`, `run`).
    pub(crate) read_settings: bool,
    /// A check drives the upstream: without `upstream_control`, the fake upstream's control API
    /// a served stack names at `/settings` is used.
    pub(crate) drives_upstream: bool,
}

/// A stack reached: the embedded one to shut down when the command ends, and the client.
pub(crate) struct Reached {
    pub(crate) embedded: Option<Embedded>,
    pub(crate) urls: Vec<String>,
    pub(crate) target: Arc<Target>,
    /// What each `--target` URL publishes at `/settings` (`crates/stack/openapi.json`): the
    /// document, or why there is none. Empty for the embedded stack, set from the checks.
    pub(crate) settings: Vec<(String, Result<serde_json::Value, String>)>,
}

impl Reached {
    /// How the stack was set up, when stampede started it.
    pub(crate) fn description(&self) -> Option<serde_json::Value> {
        self.embedded.as_ref().map(|e| e.description.clone())
    }

    /// Stops the embedded stack, if stampede started one.
    pub(crate) async fn shutdown(self, command: &str) {
        if let Some(embedded) = self.embedded {
            embedded.shutdown(command).await;
        }
    }
}

/// Starts the embedded stack or names the running one, builds the client, and probes every
/// instance (and a named upstream control API): unreachable is exit 3.
pub(crate) async fn reach(
    args: &TargetArgs,
    run: &str,
    profile: Profile,
    reach: Reach,
) -> Result<Reached, Failure> {
    // A mutant the stack as started would not run is refused, not run as the reference.
    match reach.mutant {
        Some(stack::Mutant::StopAllOnCrash) if !reach.processes => {
            return Err(anyhow::anyhow!(
                "--mutant supervisor::mutants::StopAllOnCrash is the processes' supervisor: it runs only with an \
                 instance fault (`instance = N`, `action = \"kill\"`), which starts the instances as processes"
            )
            .into());
        }
        Some(stack::Mutant::RedisNoReconnect) if args.redis.is_none() && args.targets.is_empty() => {
            return Err(anyhow::anyhow!(
                "--mutant store_redis::mutants::NoReconnect is the Redis connection's: give --redis"
            )
            .into());
        }
        Some(stack::Mutant::CredentialsInErrors) if args.redis.is_none() && args.targets.is_empty() => {
            return Err(anyhow::anyhow!(
                "--mutant store_redis::mutants::CredentialsInErrors is the Redis stores': give --redis (with a password \
                 for it to show)"
            )
            .into());
        }
        Some(stack::Mutant::BrokerOnly)
            if (args.redis.is_none() || args.database.is_none()) && args.targets.is_empty() =>
        {
            return Err(anyhow::anyhow!(
                "--mutant task_queue::mutants::BrokerOnly is the import pipeline's over Redis beside PostgreSQL: \
                 give --redis and --database"
            )
            .into());
        }
        _ => {}
    }
    let embedded = if args.targets.is_empty() {
        let setup = embedded::Setup {
            instances: args.instances,
            redis: args.redis.clone(),
            database: args.database.clone(),
            mutant: reach.mutant,
            links: reach.links,
            processes: reach.processes,
        };
        Some(embedded::start(&setup, run, &reach.tuning).await?)
    } else {
        None
    };
    let urls: Vec<String> = match &embedded {
        Some(e) => e.urls(),
        None => args.targets.clone(),
    };
    let settings =
        if embedded.is_none() && reach.read_settings { published(&urls).await } else { Vec::new() };
    let upstream_control = match &reach.upstream_control {
        Some(given) => Some(given.clone()),
        None if embedded.is_none() && reach.drives_upstream => named_control(&settings, reach.command).await,
        None => None,
    };
    let control = match &embedded {
        Some(e) => Some(e.fake.control_url()),
        None => upstream_control.clone(),
    };
    let target = match Target::new(urls.clone(), profile, run.to_owned()) {
        Ok(mut target) => {
            target.secrets =
                client::Secrets(embedded.as_ref().map(|e| e.secrets.clone()).unwrap_or_default());
            Arc::new(target.with_upstream_control(control))
        }
        Err(e) => {
            if let Some(embedded) = embedded {
                embedded.shutdown(reach.command).await;
            }
            return Err(anyhow::Error::new(e).context("build the HTTP client").into());
        }
    };
    let reached = Reached { embedded, urls, target, settings };
    if let Err(e) = probe(&reached, upstream_control.as_deref()).await {
        reached.shutdown(reach.command).await;
        return Err(e);
    }
    Ok(reached)
}

/// The fake upstream's control API the served stacks name at `/settings`, when they all name
/// one and the same, and it answers; otherwise none, said (the checks that drive the upstream
/// then ask for `--upstream-control`).
async fn named_control(
    settings: &[(String, Result<serde_json::Value, String>)],
    command: &str,
) -> Option<String> {
    let named: Vec<(&str, &str)> = settings
        .iter()
        .filter_map(|(url, doc)| Some((url.as_str(), doc.as_ref().ok()?.get("upstream_control")?.as_str()?)))
        .collect();
    let (url, control) = *named.first()?;
    if named.len() < settings.len() || named.iter().any(|(_, c)| *c != control) {
        println!(
            "stampede {command}: the targets do not all name one fake upstream at /settings ({}): give \
             --upstream-control",
            named.iter().map(|(u, c)| format!("{u}: {c}")).collect::<Vec<_>>().join(", ")
        );
        return None;
    }
    let answers = match fake_upstream::ControlClient::new(control) {
        Ok(client) => client.health().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match answers {
        Ok(()) => {
            println!(
                "stampede {command}: the fake upstream's control API is {control}, as {url}/settings says"
            );
            Some(control.to_owned())
        }
        Err(e) => {
            println!(
                "stampede {command}: {url}/settings names the fake upstream's control API {control}, which does \
                 not answer here ({e}): give --upstream-control"
            );
            None
        }
    }
}

/// What each of `urls` answers at `/settings`: a settings document (schema
/// [`checks::settings::SCHEMA`]), or why there is none (a stack stampede did not write has
/// none).
async fn published(urls: &[String]) -> Vec<(String, Result<serde_json::Value, String>)> {
    let client = match reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build() {
        Ok(client) => client,
        Err(e) => return urls.iter().map(|u| (u.clone(), Err(e.to_string()))).collect(),
    };
    let mut found = Vec::new();
    for url in urls {
        let at = format!("{}/settings", url.trim_end_matches('/'));
        let doc = match client.get(&at).send().await {
            Ok(answer) if answer.status().is_success() => match answer.json::<serde_json::Value>().await {
                Ok(doc) if doc["schema"] == checks::settings::SCHEMA => Ok(doc),
                Ok(_) => Err(format!("answered a document that is not {}", checks::settings::SCHEMA)),
                Err(e) => Err(format!("answered no JSON ({e})")),
            },
            Ok(answer) => Err(format!("answered {}", answer.status())),
            Err(e) => Err(format!("failed: {e}")),
        };
        found.push((url.clone(), doc));
    }
    found
}

async fn probe(reached: &Reached, upstream_control: Option<&str>) -> Result<(), Failure> {
    reached.target.probe().await?;
    if let (None, Some(url)) = (&reached.embedded, upstream_control) {
        let client = fake_upstream::ControlClient::new(url).context("--upstream-control")?;
        client.health().await.map_err(|e| {
            Failure::from(TargetError::Control { url: url.to_owned(), reason: e.to_string() })
        })?;
    }
    Ok(())
}
