//! The fault schedule: a profile's `[[fault]]`s (and `--fault`s) applied beside the load, each
//! at its second, removed after its duration, and recorded as a [`FaultWindow`] the report
//! shows and the recovery targets judge.
//!
//! Link faults go through a Toxiproxy API: the embedded one `crate::embedded` starts in front
//! of the embedded stack's Redis, PostgreSQL and upstream, or a user's Toxiproxy (`--toxiproxy
//! URL`) in front of theirs. Command faults run the user's command at the start and their
//! `end_command` at the end, their exit status checked. Instance faults kill an instance of a
//! stack stampede started as processes, whose supervisor must start it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use profile::fault::{Action, Direction, On};
use profile::{Fault, Objectives};
use report::FaultWindow;
use tokio::sync::watch;

use crate::supervised::Supervised;

/// The command line's faults.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FaultArgs {
    /// A fault to inject during the load, beside the profile's `[[fault]]`s: its fields as a
    /// TOML inline table's contents, e.g. `--fault 'name = "redis-down", link = "redis",
    /// action = "down", at_s = 10, duration_s = 5'` (see docs/profile.md). Repeatable.
    #[arg(long = "fault", value_name = "FIELDS", value_parser = parse_fault)]
    pub(crate) faults: Vec<Fault>,
    /// Leave the profile's `[[fault]]`s out (the `--fault`s still run).
    #[arg(long)]
    pub(crate) no_faults: bool,
    /// With `--target`: the Toxiproxy API (`http://host:8474`) whose proxies sit between your
    /// stack and its dependencies; a link fault names one of its proxies.
    #[arg(long, value_name = "URL", requires = "targets", value_parser = crate::args::parse_url)]
    pub(crate) toxiproxy: Option<String>,
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    Fault::parse_flag(text)
}

impl FaultArgs {
    /// The profile's faults with the command line's: `--no-faults` drops the profile's, each
    /// `--fault` is added, and the whole is checked again against the load as overridden.
    pub(crate) fn apply(&self, profile: &mut profile::Profile) -> anyhow::Result<()> {
        if self.no_faults {
            profile.faults.clear();
        }
        // A profile's fault around a check --only/--skip left out has nothing to run beside.
        let checks: Vec<String> = profile.checks.iter().map(|c| c.name.clone()).collect();
        profile.faults.retain(|f| match &f.check {
            Some(check) if !checks.contains(check) => {
                println!("fault {}: left out with its check {check}", f.name);
                false
            }
            _ => true,
        });
        profile.faults.extend(self.faults.iter().cloned());
        profile
            .validate_faults()
            .map_err(|(_, e)| anyhow::anyhow!("{e} (with the command line's faults and overrides)"))
    }
}

/// Whether `faults` need proxies in front of the embedded stack's dependencies.
pub(crate) fn need_links(faults: &[Fault]) -> bool {
    faults.iter().any(|f| matches!(f.on(), On::Link(_)))
}

/// Whether `faults` kill instances: the embedded stack then runs them as processes.
pub(crate) fn need_processes(faults: &[Fault]) -> bool {
    faults.iter().any(|f| matches!(f.on(), On::Instance(_)))
}

/// The faults to run while checks run, each around its own check.
pub(crate) struct Around {
    faults: Vec<Fault>,
    injector: Arc<Injector>,
}

impl Around {
    /// Starts the faults timed against `check` (none: nothing to do), now.
    pub(crate) fn start(
        &self,
        check: &str,
    ) -> Option<(watch::Sender<bool>, tokio::task::JoinHandle<Vec<FaultWindow>>)> {
        let faults: Vec<Fault> =
            self.faults.iter().filter(|f| f.check.as_deref() == Some(check)).cloned().collect();
        if faults.is_empty() {
            return None;
        }
        let (ended, ended_rx) = watch::channel(false);
        let beside = schedule(faults, &Objectives::default(), Arc::clone(&self.injector));
        Some((ended, beside.start(Instant::now(), ended_rx)))
    }
}

/// The faults of a run: those beside the load, those around checks.
#[derive(Default)]
pub(crate) struct Prepared {
    pub(crate) load: Option<load::Beside>,
    pub(crate) checks: Option<Around>,
}

/// The schedule of `faults` for the stack `reached`, refused (exit 2) when it cannot be
/// applied there; nothing without faults.
pub(crate) async fn prepare(
    faults: &[Fault],
    objectives: &Objectives,
    args: &FaultArgs,
    stack: &crate::target::TargetArgs,
    reached: &crate::target::Reached,
    run: &str,
) -> Result<Prepared, crate::exit::Failure> {
    if faults.is_empty() {
        return Ok(Prepared::default());
    }
    let (toxiproxy, links) = match (&reached.embedded, &args.toxiproxy) {
        (Some(embedded), _) => match &embedded.links {
            Some(links) => (Some(faults::Toxiproxy::new(links.server.api_url())), links.names.clone()),
            None => (None, Vec::new()),
        },
        (None, Some(url)) => {
            let client = faults::Toxiproxy::new(url);
            if let Err(e) = client.version().await {
                return Err(crate::exit::Failure::Unreachable(format!("--toxiproxy {url}: {e}")));
            }
            (Some(client), Vec::new())
        }
        (None, None) => (None, Vec::new()),
    };
    let values = vec![
        ("redis".to_owned(), stack.redis.clone().unwrap_or_default()),
        ("database".to_owned(), stack.database.clone().unwrap_or_default()),
        ("run".to_owned(), run.to_owned()),
    ];
    let instances = reached.embedded.as_ref().and_then(|e| e.processes.clone());
    let injector = Injector { toxiproxy, links, instances, values };
    injector.check(faults).await?;
    let injector = Arc::new(injector);
    let (around, during): (Vec<Fault>, Vec<Fault>) = faults.iter().cloned().partition(|f| f.check.is_some());
    Ok(Prepared {
        load: (!during.is_empty()).then(|| schedule(during, objectives, Arc::clone(&injector))),
        checks: (!around.is_empty()).then(|| Around { faults: around, injector }),
    })
}

/// How long a fault's command may run before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What the schedule acts through.
pub(crate) struct Injector {
    /// The Toxiproxy API the links are proxies of, and the proxy each link name is.
    pub(crate) toxiproxy: Option<faults::Toxiproxy>,
    /// Link names the proxies answer to (the embedded stack's; a user's are looked up).
    pub(crate) links: Vec<String>,
    /// Killing an instance of a stack stampede runs as processes.
    pub(crate) instances: Option<Arc<Supervised>>,
    /// A command's placeholders: `redis`, `database`, `run`.
    pub(crate) values: Vec<(String, String)>,
}

impl Injector {
    /// Refuses faults this injector cannot apply, before anything runs (exit 2).
    pub(crate) async fn check(&self, faults: &[Fault]) -> anyhow::Result<()> {
        for fault in faults {
            match fault.on() {
                On::Link(link) => {
                    let Some(toxiproxy) = &self.toxiproxy else {
                        anyhow::bail!(
                            "fault {:?} acts on link {link:?}: a stack you run needs --toxiproxy URL, a Toxiproxy \
                             whose proxy named {link:?} sits between the stack and that dependency",
                            fault.name
                        );
                    };
                    if self.links.is_empty() {
                        // A user's Toxiproxy: the proxy must be there.
                        toxiproxy.proxy(link).await.map_err(|e| {
                            anyhow::anyhow!(
                                "fault {:?}: the Toxiproxy has no proxy {link:?}: {e}",
                                fault.name
                            )
                        })?;
                    } else if !self.links.iter().any(|l| l == link) {
                        anyhow::bail!(
                            "fault {:?} acts on link {link:?}, which this stack does not have; it has {} (redis and \
                             postgres with --redis and --database)",
                            fault.name,
                            self.links.join(", ")
                        );
                    }
                }
                On::Instance(i) => match &self.instances {
                    None => anyhow::bail!(
                        "fault {:?} kills instance {i}: only the stack stampede starts can be killed by instance; \
                         for a stack you run, give a command fault (`command = [\"docker\", \"kill\", …]`, \
                         `[\"kubectl\", \"delete\", \"pod\", …]`)",
                        fault.name
                    ),
                    Some(instances) if i >= instances.count() => anyhow::bail!(
                        "fault {:?} kills instance {i}; the stack has {} (0 to {})",
                        fault.name,
                        instances.count(),
                        instances.count().saturating_sub(1)
                    ),
                    Some(_) => {}
                },
                On::Command => {}
            }
        }
        Ok(())
    }

    /// Applies `fault`; an error says why it could not be. The toxics it added go in `added`
    /// (so that undoing a half-applied fault removes those, never a toxic of the user's).
    async fn apply(&self, fault: &Fault, added: &mut Vec<String>) -> Result<(), String> {
        match fault.on() {
            On::Link(link) => {
                let toxiproxy = self.toxiproxy.as_ref().ok_or("no Toxiproxy")?;
                let action = fault.action.ok_or("no action")?;
                if action == Action::Down {
                    return toxiproxy.set_enabled(link, false).await.map(drop).map_err(|e| e.to_string());
                }
                for toxic in toxics(fault) {
                    toxiproxy.add_toxic(link, &toxic).await.map_err(|e| e.to_string())?;
                    added.push(toxic.name);
                }
                Ok(())
            }
            On::Instance(i) => self.instances.as_ref().ok_or("no instances")?.kill(i),
            On::Command => match &fault.command {
                Some(command) => self.run_command(command).await,
                None => Ok(()),
            },
        }
    }

    /// Ends `fault`: a link is healed (the toxics `added` removed), the end command runs; a
    /// killed instance's fault ends when it answers again, and fails when it has not by the end
    /// of the fault's duration (`deadline`).
    async fn remove(&self, fault: &Fault, deadline: Instant, added: &[String]) -> Result<(), String> {
        match fault.on() {
            On::Link(link) => {
                let toxiproxy = self.toxiproxy.as_ref().ok_or("no Toxiproxy")?;
                if fault.action == Some(Action::Down) {
                    return toxiproxy.set_enabled(link, true).await.map(drop).map_err(|e| e.to_string());
                }
                let mut failed = Vec::new();
                for name in added {
                    if let Err(e) = toxiproxy.remove_toxic(link, name).await {
                        failed.push(e.to_string());
                    }
                }
                if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
            }
            On::Instance(i) => {
                let instances = self.instances.as_ref().ok_or("no instances")?;
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if instances.answers(i).await {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "instance {i} did not answer again within the fault's {} s: it was not started \
                             again",
                            fault.duration_s
                        ));
                    }
                }
            }
            On::Command => match &fault.end_command {
                Some(command) => self.run_command(command).await,
                None => Ok(()),
            },
        }
    }

    async fn run_command(&self, template: &[String]) -> Result<(), String> {
        let values: Vec<(&str, &str)> = self.values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let words: Vec<String> = template.iter().map(|w| profile::fault::fill(w, &values)).collect();
        // What the report and the terminal show: the URLs without their passwords.
        let shown_values: Vec<(&str, String)> = self
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), if k == "run" { v.clone() } else { reference::store::shown_url(v) }))
            .collect();
        let shown_refs: Vec<(&str, &str)> = shown_values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let shown: String =
            template.iter().map(|w| profile::fault::fill(w, &shown_refs)).collect::<Vec<_>>().join(" ");
        let redact = |text: &str| {
            shown_values.iter().zip(&self.values).fold(text.to_owned(), |text, ((_, shown), (_, raw))| {
                if raw.is_empty() { text } else { text.replace(raw.as_str(), shown) }
            })
        };
        let (program, args) = words.split_first().ok_or("an empty command")?;
        let run = tokio::process::Command::new(program)
            .args(args)
            // The same values by environment, for a command that would rather not have them in
            // its command line (`sh -c 'redis-cli -u "$STAMPEDE_REDIS" …'`).
            .envs(self.values.iter().filter(|(k, _)| k != "run").map(|(k, v)| {
                (if k == "redis" { crate::serve::REDIS_ENV } else { crate::serve::DATABASE_ENV }, v.as_str())
            }))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(COMMAND_TIMEOUT, run)
            .await
            .map_err(|_| format!("`{shown}` did not finish within {} s", COMMAND_TIMEOUT.as_secs()))?
            .map_err(|e| format!("`{shown}` could not run: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = redact(&String::from_utf8_lossy(&output.stderr));
            Err(format!("`{shown}` exited with {}: {}", output.status, stderr.trim()))
        }
    }
}

/// The toxics a link fault adds (one per direction it acts in), named after it.
fn toxics(fault: &Fault) -> Vec<faults::Toxic> {
    let streams: &[faults::Stream] = match fault.direction {
        Direction::Both => &[faults::Stream::Upstream, faults::Stream::Downstream],
        Direction::ToDependency => &[faults::Stream::Upstream],
        Direction::ToStack => &[faults::Stream::Downstream],
    };
    streams
        .iter()
        .filter_map(|stream| {
            let name = format!("{}-{}", fault.name, stream.as_str());
            let toxic = match fault.action? {
                Action::Latency => {
                    faults::Toxic::latency(&name, fault.latency_ms.unwrap_or(0), fault.jitter_ms.unwrap_or(0))
                }
                Action::Bandwidth => faults::Toxic::bandwidth(&name, fault.rate_kbps.unwrap_or(1)),
                Action::Reset => faults::Toxic::reset_peer(&name, 0),
                Action::Blackhole => faults::Toxic::timeout(&name, 0),
                Action::Slicer => {
                    let size = fault.slice_bytes.unwrap_or(1);
                    faults::Toxic::slicer(&name, size, size / 2, 0)
                }
                Action::Down | Action::Kill => return None,
            };
            Some(toxic.on(*stream))
        })
        .collect()
}

/// The schedule of `faults` as something the load runs beside itself; each window carries the
/// bounds it is judged by (its own, else `[targets]`').
pub(crate) fn schedule(faults: Vec<Fault>, objectives: &Objectives, injector: Arc<Injector>) -> load::Beside {
    let (recover, max_errors, rate) =
        (objectives.recover_within_s, objectives.max_errors_during, objectives.max_error_rate);
    load::Beside::new(move |began, ended| {
        tokio::spawn(async move {
            let tasks: Vec<_> = faults
                .into_iter()
                .map(|fault| {
                    let (injector, ended) = (Arc::clone(&injector), ended.clone());
                    let (name, target, action) = (fault.name.clone(), fault.target(), fault.action_text());
                    let task = tokio::spawn(async move {
                        let mut window = FaultWindow {
                            name: fault.name.clone(),
                            target: fault.target(),
                            action: fault.action_text(),
                            started_at_ms: 0,
                            ended_at_ms: None,
                            error: None,
                            recover_within_s: fault.recover_within(recover),
                            max_errors_during: fault.max_errors_during.or(max_errors),
                            max_error_rate: rate,
                        };
                        one(&fault, &injector, began, ended, &mut window).await;
                        window
                    });
                    (name, target, action, task)
                })
                .collect();
            let mut windows = Vec::new();
            for (name, target, action, task) in tasks {
                match task.await {
                    Ok(window) => windows.push(window),
                    // Never dropped: a fault whose task failed is a fault that did not happen
                    // as planned.
                    Err(e) => windows.push(FaultWindow {
                        name,
                        target,
                        action,
                        started_at_ms: load::now_ms(),
                        ended_at_ms: None,
                        error: Some(format!("its task failed: {e}")),
                        recover_within_s: None,
                        max_errors_during: None,
                        max_error_rate: rate,
                    }),
                }
            }
            windows.sort_by_key(|w| w.started_at_ms);
            windows
        })
    })
}

/// Runs one fault: waits for its second, applies it, waits out its duration (or the load's
/// end), removes it. A fault the load ended before is recorded as never applied.
async fn one(
    fault: &Fault,
    injector: &Injector,
    began: Instant,
    mut ended: watch::Receiver<bool>,
    window: &mut FaultWindow,
) {
    let start = began + Duration::from_secs_f64(fault.at_s);
    let end = start + Duration::from_secs_f64(fault.duration_s);
    let over = ended.clone();
    let load_ended = async move {
        let _ = ended.wait_for(|e| *e).await;
    };
    tokio::pin!(load_ended);
    tokio::select! {
        () = tokio::time::sleep_until(start.into()) => {}
        () = &mut load_ended => {
            window.started_at_ms = load::now_ms();
            window.error = Some("what it was timed against (the load, or its check) ended before it was due".to_owned());
            return;
        }
    }
    window.started_at_ms = load::now_ms();
    eprintln!("stampede: fault {} — {} on {}", fault.name, window.action, window.target);
    let mut added = Vec::new();
    if let Err(e) = injector.apply(fault, &mut added).await {
        eprintln!("stampede: fault {} could not be applied: {e}", fault.name);
        window.error = Some(format!("could not be applied: {e}"));
        // Whatever part of it took is undone.
        let _ = injector.remove(fault, Instant::now(), &added).await;
        window.ended_at_ms = Some(load::now_ms());
        return;
    }
    // A link or a command is held for the fault's duration; a killed instance's fault lasts
    // until it answers again (at most the duration).
    let cut_short = match fault.on() {
        On::Instance(_) => false,
        On::Link(_) | On::Command => tokio::select! {
            () = tokio::time::sleep_until(end.into()) => false,
            () = &mut load_ended => true,
        },
    };
    let removed = injector.remove(fault, end.max(Instant::now()), &added).await;
    // A killed instance that came back only after the load (or its check) ended did not come
    // back within it.
    let cut_short = cut_short || (matches!(fault.on(), On::Instance(_)) && *over.borrow());
    match removed {
        Ok(()) => window.ended_at_ms = Some(load::now_ms()),
        Err(e) if matches!(fault.on(), On::Instance(_)) => {
            eprintln!("stampede: fault {}: {e}", fault.name);
            window.error = Some(format!("the instance did not come back: {e}"));
        }
        Err(e) => {
            eprintln!("stampede: fault {} could not be removed: {e}", fault.name);
            window.error = Some(format!("could not be removed: {e}"));
        }
    }
    if cut_short && window.error.is_none() {
        window.error =
            Some("what it was timed against (the load, or its check) ended while it was on".to_owned());
    }
    eprintln!("stampede: fault {} over", fault.name);
}
