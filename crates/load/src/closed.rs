//! The closed model, run by goose: `users` users, started `users_per_s` a second, each sending
//! the mix's requests (drawn by weight) one after another with its think time between. goose
//! runs the users (their start, weights, think time, run time, the kill switch); each
//! transaction sends its request with the load's client ([`crate::conn`], as the open model
//! does: the same request, the same pooled connections) and times it to the last byte of the
//! body, into the run's recorder — goose's own request path (a reqwest client per user, a
//! metric record built per request) would cost more than half the generator's speed and time
//! only to the first byte. This model is *not* corrected for coordinated omission: a stalled
//! stack stalls the users, and the requests they would have sent are never timed — the stall
//! test shows it under-reporting beside the open model.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use client::Target;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use tokio::sync::watch;

use crate::LoadError;
use crate::conn::Client;
use crate::mix::{Account, Mix};
use crate::record::Recorder;

/// What each goose user keeps: its account and instance.
#[derive(Debug, Clone)]
struct Session {
    account: usize,
    instance: usize,
}

/// What every transaction reads.
struct Shared {
    mix: Mix,
    accounts: Arc<Vec<Account>>,
    target: Arc<Target>,
    recorder: Arc<Recorder>,
    client: Arc<Client>,
}

/// The closed model's population.
#[derive(Debug, Clone, Copy)]
pub struct Users {
    pub users: usize,
    /// Users started per second (all at once without).
    pub users_per_s: Option<f64>,
    /// Each user's pause between requests, `[min, max]` ms.
    pub think_ms: Option<[u64; 2]>,
    /// How long every user runs once all have started.
    pub duration: Duration,
}

/// The most users that ran at once, and whether the attack was stopped before its time
/// (Ctrl-C, which goose's own handler turns into its kill switch, or `stop`).
pub async fn run(
    target: &Arc<Target>,
    client: &Arc<Client>,
    mix: &Mix,
    accounts: &Arc<Vec<Account>>,
    plan: Users,
    recorder: &Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) -> Result<(usize, bool), LoadError> {
    let Users { users, users_per_s, think_ms, duration } = plan;
    let goose = |e: GooseError| LoadError::Goose(e.to_string());
    let shared = Arc::new(Shared {
        mix: mix.clone(),
        accounts: Arc::clone(accounts),
        target: Arc::clone(target),
        recorder: Arc::clone(recorder),
        client: Arc::clone(client),
    });
    let next_user = Arc::new(AtomicUsize::new(0));
    let on_start: TransactionFunction = {
        let (next_user, accounts, target) =
            (Arc::clone(&next_user), Arc::clone(accounts), Arc::clone(target));
        Arc::new(move |user| {
            let n = next_user.fetch_add(1, Ordering::Relaxed);
            let session = Session { account: n % accounts.len(), instance: n % target.instances() };
            Box::pin(async move {
                user.set_session_data(session);
                Ok(())
            })
        })
    };
    let mut scenario = scenario!("stampede").register_transaction(Transaction::new(on_start).set_on_start());
    if let Some([min, max]) = think_ms {
        scenario =
            scenario.set_wait_time(Duration::from_millis(min), Duration::from_millis(max)).map_err(goose)?;
    }
    for (i, entry) in mix.entries.iter().enumerate() {
        if entry.weight == 0 {
            continue;
        }
        let shared = Arc::clone(&shared);
        let function: TransactionFunction = Arc::new(move |user| {
            let shared = Arc::clone(&shared);
            Box::pin(async move {
                let Shared { mix, accounts, target, recorder, client } = &*shared;
                let session = user.get_session_data_unchecked::<Session>().clone();
                let account = &accounts[session.account];
                let entry = &mix.entries[i];
                let vars = mix.vars(&target.run, account, &mut rand::rng());
                if let Some(ws) = &entry.websocket {
                    let sent = Instant::now();
                    let (outcome, answered) =
                        crate::ws::session(target, session.instance, account, entry, ws, &vars, recorder)
                            .await;
                    recorder.record(&entry.name, sent, answered, outcome);
                    return Ok(());
                }
                let sent = Instant::now();
                let outcome = client.send(target, session.instance, account, i, entry, &vars).await;
                recorder.record(&entry.name, sent, Instant::now(), outcome);
                Ok(())
            })
        });
        let weight = usize::try_from(entry.weight).unwrap_or(usize::MAX);
        let transaction =
            Transaction::new(function).set_name(&entry.name).set_weight(weight).map_err(goose)?;
        scenario = scenario.register_transaction(transaction);
    }
    let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .map_err(goose)?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, target.urls[0].as_str())
        .map_err(goose)?
        .set_default(GooseDefault::Users, users)
        .map_err(goose)?
        .set_default(GooseDefault::RunTime, duration.as_secs().max(1) as usize)
        .map_err(goose)?
        // Every request is timed into the recorder above; goose's own per-request metrics
        // (each request's record sent to its aggregator, errors kept by message) would only
        // cost memory and time.
        .set_default(GooseDefault::NoMetrics, true)
        .map_err(goose)?
        .set_default(GooseDefault::NoPrintMetrics, true)
        .map_err(goose)?
        .set_default(GooseDefault::NoErrorSummary, true)
        .map_err(goose)?
        .set_default(GooseDefault::NoTelnet, true)
        .map_err(goose)?
        .set_default(GooseDefault::Quiet, 1usize)
        .map_err(goose)?;
    if let Some(rate) = users_per_s {
        attack = attack.set_default(GooseDefault::IncreaseRate, rate.to_string().as_str()).map_err(goose)?;
    } else {
        attack = attack.set_default(GooseDefault::IncreaseRate, users.to_string().as_str()).map_err(goose)?;
    }
    // Ctrl-C (or the caller's stop) ends the attack the way goose's own handler does.
    let watcher = tokio::spawn(async move {
        if stop.wait_for(|s| *s).await.is_ok() {
            goose::trigger_killswitch("stopped");
        }
    });
    let metrics = attack.execute().await.map_err(goose);
    watcher.abort();
    Ok((metrics?.maximum_users, goose::is_killswitch_triggered()))
}
