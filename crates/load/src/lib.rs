//! Load generation: the profile's request mix (`[load]`) offered to a target in an open model
//! (arrival rate, [`open`]) or a closed one (goose users, [`closed`]); every response timed to
//! its last byte in HdrHistogram ([`record`]); the target's own metrics read before and after;
//! the objectives (`[targets]`) judged ([`objectives`]). The result is the load section of the
//! run report (crate `report`).
//!
//! Why these dependencies: goose runs the closed model's users and test plan; both models send
//! with hyper's HTTP/1 connection API ([`conn`]: hyper, hyper-util, http-body-util, bytes,
//! all already in the tree through reqwest), falling back to the `client` crate's reqwest
//! client for what it does not speak; hdrhistogram records latencies; rand draws the mix;
//! WebSocket sessions ([`ws`]) connect through the `client` crate (tokio-tungstenite,
//! futures-util).

pub mod capacity;
pub mod closed;
mod conn;
pub mod mix;
pub mod objectives;
pub mod open;
pub mod record;
pub mod ws;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{Target, TargetError};
use profile::Objectives;
use profile::load::{Load, MixEntry, Model};
use report::{FaultWindow, LoadReport, MetricReading, ObjectiveVerdict};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::mix::Account;
use crate::mix::Mix;
use crate::record::{Completion, Recorder};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("target {url}: setting the load up failed: {reason}")]
    Setup { url: String, reason: String },
    /// The profile asks for what the target cannot give (exit code 2).
    #[error("{0}")]
    Configuration(String),
    #[error("goose: {0}")]
    Goose(String),
}

/// What `[load]` says, with the command line's overrides.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: Load,
    pub duration: Duration,
}

impl Plan {
    pub fn new(spec: Load) -> Self {
        let duration = Duration::from_secs_f64(spec.duration_s);
        Self { spec, duration }
    }
}

/// What a run reports while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A phase begins: setting the accounts up, offering the load.
    Phase(&'a str),
    /// Once a second while the load is offered.
    Tick { elapsed: Duration, total: Duration, requests: u64 },
}

/// A finished (or interrupted) load run.
#[derive(Debug)]
pub struct Measured {
    pub load: LoadReport,
    pub targets: Vec<ObjectiveVerdict>,
    pub interrupted: bool,
    /// Open model: requests that fell due with every in-flight slot taken. With requests
    /// unsent, it tells the stack holding `max_in_flight` requests (some) from the generator
    /// falling behind on its own (none).
    pub found_full: u64,
}

/// What runs beside the load from its first moment to its end — the fault schedule: started as
/// the load begins, with that instant and a flag that turns true when the load has ended;
/// what it returns (the faults it injected) goes into the report and is judged.
pub struct Beside(Box<StartBeside>);

/// How [`Beside`] starts: the load's first instant, and the flag that turns true at its end.
type StartBeside = dyn FnOnce(Instant, watch::Receiver<bool>) -> JoinHandle<Vec<FaultWindow>> + Send;

impl Beside {
    /// Starts it now, beside something that began at `began` and signals its end through
    /// `ended` (the load does this itself; a check's faults are started by whoever runs it).
    pub fn start(self, began: Instant, ended: watch::Receiver<bool>) -> JoinHandle<Vec<FaultWindow>> {
        (self.0)(began, ended)
    }

    pub fn new(
        start: impl FnOnce(Instant, watch::Receiver<bool>) -> JoinHandle<Vec<FaultWindow>> + Send + 'static,
    ) -> Self {
        Self(Box::new(start))
    }
}

impl std::fmt::Debug for Beside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Beside")
    }
}

/// Sets the accounts up, reads the target's metrics, offers the load until the plan ends or
/// `stop` turns true (with `beside` running alongside), reads the metrics again, and judges
/// the targets.
pub async fn run(
    target: Arc<Target>,
    plan: &Plan,
    targets: &Objectives,
    stop: watch::Receiver<bool>,
    beside: Option<Beside>,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> Result<Measured, LoadError> {
    let accounts = prepare(&target, &plan.spec, &progress).await?;
    offer(target, accounts, plan, targets, stop, beside, progress).await
}

/// The accounts the mix's requests are spread over, set up on the target.
pub async fn prepare(
    target: &Target,
    spec: &Load,
    progress: &impl Fn(Progress),
) -> Result<Arc<Vec<Account>>, LoadError> {
    progress(Progress::Phase(&format!("setting up {} accounts", spec.accounts)));
    Ok(Arc::new(mix::setup(target, spec).await?))
}

/// [`run`] with the accounts already set up: reads the target's metrics, offers the load
/// until the plan ends or `stop` turns true, reads the metrics again, judges the targets.
/// Metrics unreadable after the load leave their targets not measured (failed, with the
/// reason); what the load measured is kept.
pub async fn offer(
    target: Arc<Target>,
    accounts: Arc<Vec<Account>>,
    plan: &Plan,
    targets: &Objectives,
    stop: watch::Receiver<bool>,
    beside: Option<Beside>,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> Result<Measured, LoadError> {
    let spec = &plan.spec;
    let before = scrape(&target, targets).await?;
    let mix = Mix::new(spec);
    // Before the recorder starts the clock: the first requests due do not wait for the names.
    let client = Arc::new(conn::Client::new(&target, &spec.requests).await);
    let recorder =
        Arc::new(Recorder::new(Instant::now(), now_ms(), spec.requests.iter().map(|e| e.name.clone())));
    let (mut ended, mut beside) = match beside {
        Some(Beside(start)) => {
            let (ended, ended_rx) = watch::channel(false);
            (Some(ended), Some(start(recorder.start(), ended_rx)))
        }
        None => (None, None),
    };
    // A WebSocket entry's sessions open, sampled as each wall-clock second ends.
    let ws_entries: Vec<&MixEntry> = spec.requests.iter().filter(|e| e.websocket.is_some()).collect();
    ws_entries.iter().for_each(|e| recorder.track_sessions(&e.name));
    let sampler = (!ws_entries.is_empty()).then(|| {
        let recorder = Arc::clone(&recorder);
        tokio::spawn(async move {
            for t in 0u64.. {
                tokio::time::sleep_until(recorder.end_of_second(t).into()).await;
                recorder.sample_sessions(t);
            }
        })
    });
    let progress = Arc::new(progress);
    let reporter = {
        let (recorder, stop, progress) = (Arc::clone(&recorder), stop.clone(), Arc::clone(&progress));
        let total = plan.duration;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            while !*stop.borrow() {
                tick.tick().await;
                let elapsed = recorder.start().elapsed();
                progress(Progress::Tick { elapsed, total, requests: recorder.count() });
            }
        })
    };
    progress(Progress::Phase("offering load"));
    let started = Instant::now();
    let mut stopped = false;
    let mut unsent = 0;
    let mut found_full = 0;
    let (rate, users, users_reached) = match spec.model {
        Model::Open => {
            let from = spec.rate.unwrap_or(1.0);
            let schedule = open::Schedule { from, to: spec.ramp_to.unwrap_or(from), duration: plan.duration };
            let sent = open::run(
                &target,
                &client,
                &mix,
                &accounts,
                schedule,
                spec.max_in_flight,
                &recorder,
                stop.clone(),
            )
            .await;
            found_full = sent.found_full;
            if !*stop.borrow() {
                unsent = schedule.total().saturating_sub(sent.sent);
            }
            (Some([schedule.from, schedule.to]), None, None)
        }
        Model::Closed => {
            let users = spec.users.unwrap_or(1);
            let users_ran = closed::run(
                &target,
                &client,
                &mix,
                &accounts,
                closed::Users {
                    users,
                    users_per_s: spec.users_per_s,
                    think_ms: spec.think_ms,
                    duration: plan.duration,
                },
                &recorder,
                stop.clone(),
            )
            .await;
            let (reached, killed) = match users_ran {
                Ok(ran) => ran,
                Err(e) => {
                    // The faults end with the load, failed or not: none is left applied.
                    if let (Some(ended), Some(beside)) = (ended.take(), beside.take()) {
                        let _ = ended.send(true);
                        let _ = beside.await;
                    }
                    return Err(e);
                }
            };
            stopped = killed;
            (None, Some(users), Some(reached))
        }
    };
    reporter.abort();
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let interrupted = stopped || *stop.borrow();
    let faults = match (ended, beside) {
        (Some(ended), Some(beside)) => {
            let _ = ended.send(true);
            beside.await.unwrap_or_default()
        }
        _ => Vec::new(),
    };
    // The metrics after the load: a target or instance that cannot answer now (it crashed at
    // the end, a fault left it down) costs the metric targets their measurement, not the run.
    let (after, unread) = match scrape(&target, targets).await {
        Ok(after) => (after, None),
        Err(LoadError::Setup { url, reason }) => (Vec::new(), Some(format!("{url}: {reason}"))),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let metrics = match &unread {
        None => targets
            .metrics
            .iter()
            .zip(before.iter().zip(&after))
            .map(|(m, ((n0, d0), (n1, d1)))| objectives::reading(&m.name, n1 - n0, d1 - d0))
            .collect::<Vec<MetricReading>>(),
        Some(_) => targets
            .metrics
            .iter()
            .map(|m| MetricReading { name: m.name.clone(), numerator: 0.0, denominator: 0.0, value: None })
            .collect(),
    };
    let endpoints: Vec<_> = recorder.finish(elapsed).into_iter().map(|(e, _)| e).collect();
    let requests = endpoints.iter().map(|e| e.requests).sum();
    let errors = endpoints.iter().map(|e| e.errors).sum();
    let load = LoadReport {
        model: match spec.model {
            Model::Open => "open".to_owned(),
            Model::Closed => "closed".to_owned(),
        },
        rate,
        users,
        users_reached,
        started_at_ms: recorder.start_ms(),
        duration_s: elapsed,
        requests,
        errors,
        unsent,
        throughput: if elapsed > 0.0 { requests as f64 / elapsed } else { 0.0 },
        endpoints,
        metrics,
        faults,
    };
    let mut targets = objectives::judge(targets, &load);
    if let Some(reason) = &unread {
        for v in targets.iter_mut().filter(|v| v.kind == report::ObjectiveKind::Metric) {
            v.passed = false;
            v.measured = None;
            v.detail = format!("not measured: the metrics could not be read after the load ({reason})");
        }
    }
    if load.unsent > 0 && found_full > 0 {
        for v in targets.iter_mut().filter(|v| v.kind == report::ObjectiveKind::Unsent) {
            v.detail = format!(
                "{} requests fell due and were never sent: the stack held all {} in-flight slots the profile \
                 allows (max_in_flight), {found_full} requests found every slot taken",
                load.unsent, spec.max_in_flight
            );
        }
    }
    Ok(Measured { load, targets, interrupted, found_full })
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Each metric target's numerator and denominator sums, over every instance.
async fn scrape(target: &Target, targets: &Objectives) -> Result<Vec<(f64, f64)>, LoadError> {
    let mut out = Vec::new();
    for m in &targets.metrics {
        let (mut n, mut d) = (0.0, 0.0);
        for (instance, base) in target.urls.iter().enumerate() {
            let url = format!("{base}{}", m.metrics);
            let text = target.metrics_text(instance, &m.metrics).await.map_err(|e| LoadError::Setup {
                url: url.clone(),
                reason: format!("reading metrics: {e}"),
            })?;
            let named = |e: String| {
                LoadError::Configuration(format!(
                    "targets.metric {:?}: instance {instance} ({url}): {e}",
                    m.name
                ))
            };
            n += objectives::sums(&text, &m.numerator).map_err(named)?;
            d += objectives::sums(&text, &m.denominator).map_err(named)?;
        }
        out.push((n, d));
    }
    Ok(out)
}

/// The request `entry` makes for `account` on `instance`.
pub fn request(
    target: &Target,
    instance: usize,
    account: &Account,
    entry: &MixEntry,
    vars: &[(&str, String)],
) -> reqwest::RequestBuilder {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let request = target.request(instance, Some(&account.tokens[instance]), &entry.request, &vars);
    match entry.body_bytes {
        Some(size) => request.body(body(size)),
        None => request,
    }
}

/// `size` bytes that repeat no short pattern (an upload's body; xorshift).
pub fn body(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ size as u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// What reqwest's `sent` came to, its body read whole.
async fn answered(sent: Result<reqwest::Response, reqwest::Error>, entry: &MixEntry) -> Completion {
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(body) => Completion::Answered { status, ok: mix::accepted(entry, status, &body) },
                Err(e) => Completion::Failed(if e.is_timeout() { "timeout" } else { "body" }),
            }
        }
        Err(e) => Completion::Failed(failure(&e.to_string(), e.is_timeout(), e.is_connect())),
    }
}

/// A failure without an answer, by kind.
pub fn failure(_message: &str, timeout: bool, connect: bool) -> &'static str {
    if timeout {
        "timeout"
    } else if connect {
        "connect"
    } else {
        "other"
    }
}
