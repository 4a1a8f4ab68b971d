//! The workers inside the stack: import processors (#10 ack-late consumers that call the
//! upstream through the circuit breaker #7, the pooled client #8 and the plan's usage
//! tracker #4) and the periodic token-refresh beat (#11).
//!
//! An import task is processed as: read the platform credential (never call with an expired
//! one: the task fails instead), count the call in the usage plan, ask the breaker, call the
//! upstream, then record the result — the video completed or failed, the status merged, the
//! effect applied once per task (`times_processed` in the status), and the task acknowledged
//! last, so a worker that dies mid-task leaves it to be redelivered after its visibility
//! timeout. A call the open circuit refuses was admitted by the usage plan first; it is
//! finished there as failed.
//!
//! A task's processing runs under the hard time limit ([`crate::Settings::task_time_limit`]):
//! past it the processing is abandoned where it stands (its upstream call dropped) and the task
//! is not acknowledged — what a worker killed by Celery's `task_time_limit` leaves behind — so
//! it is redelivered after its visibility timeout. A task that outlives its visibility timeout
//! while still running (a timeout shorter than the time limit) is handed to a second worker
//! meanwhile; the two deliveries race, one transition of the video wins, and the effect is
//! applied once.
//!
//! Without an upstream ([`crate::Settings::upstream`] none) no worker runs and imports stay
//! pending.

use std::sync::Arc;
use std::time::Duration;

use reference::circuit_breaker::{Breaker, CallOutcome};
use reference::status_tracker::{Fields, StatusTracker};
use reference::store::{Delivery, Store};
use reference::task_queue::Consumer;
use reference::token_refresh::{
    self, Credential, Grant, RefreshError, RefreshScheduler, Refresher, Scheduler,
};
use reference::usage_tracker::{Admission, UsageTracking};
use reference::video::{Status, VideoRegistry};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use upstream::{Request, Upstream};

use crate::components::{ImportConsumer, RefreshSlot, UpstreamSlot};
use crate::ledger::ImportTask;
use crate::metrics::RouteLabels;
use crate::settings::{IMPORT_QUEUE, UpstreamLink};
use crate::state::AppState;

/// The credential the workers call the upstream with.
pub const PLATFORM_TOKEN: &str = "platform";

/// The refresher: `POST /oauth2/token` with the refresh grant, through the pooled client.
#[derive(Clone)]
pub struct OauthRefresher {
    client: UpstreamSlot,
    client_id: String,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: u64,
    refresh_token: Option<String>,
}

impl Refresher for OauthRefresher {
    async fn refresh(&self, _token_id: &str, refresh_token: &str) -> Result<Grant, RefreshError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &self.client_id),
        ];
        let body = serde_urlencoded::to_string(form).map_err(|e| RefreshError(e.to_string()))?;
        let request =
            Request::post("/oauth2/token", body).header("content-type", "application/x-www-form-urlencoded");
        let reply = self.client.send(request).await.map_err(|e| RefreshError(e.to_string()))?;
        if !(200..300).contains(&reply.status) {
            return Err(RefreshError(format!(
                "token endpoint answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            )));
        }
        let reply: TokenReply =
            serde_json::from_slice(&reply.body).map_err(|e| RefreshError(e.to_string()))?;
        Ok(Grant {
            access_token: reply.access_token,
            refresh_token: reply.refresh_token.unwrap_or_else(|| refresh_token.to_owned()),
            expires_in: Duration::from_secs(reply.expires_in),
        })
    }
}

/// The running workers; dropped or [`Workers::stop`]ped with the stack.
#[derive(Debug)]
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Workers {
    /// Signals every worker to stop after its current task, and waits for them.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts `count` import processors, the reaper and the refresh beat.
pub async fn start(state: &AppState, link: &UpstreamLink, count: usize) -> Result<Workers, upstream::Error> {
    let mutant = state.settings.mutant;
    let client = UpstreamSlot::new(&link.url, state.settings.upstream_pool, mutant)?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    bootstrap(state, link).await;
    let refresher = OauthRefresher { client: client.clone(), client_id: link.client_id.clone() };
    let scheduler = RefreshScheduler::new(
        state.durable.clone(),
        Arc::clone(&state.backends.clock),
        refresher,
        state.settings.instance.clone(),
        link.refresh,
    );
    let scheduler = Arc::new(RefreshSlot::new(scheduler, mutant));
    let beat = (link.refresh.period() / 10).clamp(Duration::from_millis(50), Duration::from_secs(10));
    tasks.spawn(every(beat, stopped.clone(), move || {
        let scheduler = Arc::clone(&scheduler);
        async move {
            match scheduler.tick().await {
                Ok(outcomes) => {
                    for (token, outcome) in outcomes {
                        tracing::debug!(%token, ?outcome, "refresh tick");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "refresh tick failed"),
            }
        }
    }));
    let reap_queue = state.queue.clone();
    let reap_every =
        (state.settings.task_visibility / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
    tasks.spawn(every(reap_every, stopped.clone(), move || {
        let queue = reap_queue.clone();
        async move {
            if let Err(e) = queue.reap().await {
                tracing::warn!(error = %e, "reaping the import queue failed");
            }
        }
    }));
    if state.ledger.is_some() {
        let redrive = state.clone();
        tasks.spawn(every(reap_every, stopped.clone(), move || {
            let state = redrive.clone();
            async move {
                if let Err(e) = crate::ledger::redrive_if_lost(&state).await {
                    tracing::warn!(error = %e, "driving the import ledger again failed");
                }
            }
        }));
    }
    for worker in 0..count {
        let consumer = ImportConsumer::new(state.queue.clone(), mutant);
        tasks.spawn(process_imports(state.clone(), consumer, client.clone(), worker, stopped.clone()));
    }
    Ok(Workers { stop, tasks })
}

/// Stores the platform credential unless one is there already: its access token is expired,
/// so the first beat refreshes it (exactly one instance takes that period's lease).
async fn bootstrap(state: &AppState, link: &UpstreamLink) {
    let credential =
        Credential { access_token: String::new(), refresh_token: link.refresh_token.clone(), expires_at: 0 };
    let stored = state
        .durable
        .compare_and_set(&token_refresh::token_key(PLATFORM_TOKEN), None, credential.encode(), None)
        .await;
    if let Err(e) = stored {
        tracing::warn!(error = %e, "cannot store the platform credential");
    }
}

async fn every<F, Fut>(period: Duration, mut stopped: watch::Receiver<bool>, mut run: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => run().await,
            _ = stopped.changed() => return,
        }
    }
}

async fn process_imports(
    state: AppState,
    consumer: ImportConsumer,
    client: UpstreamSlot,
    worker: usize,
    mut stopped: watch::Receiver<bool>,
) {
    let mut idle = Duration::from_millis(10);
    loop {
        if *stopped.borrow() {
            return;
        }
        let delivery = match consumer.take().await {
            Ok(Some(delivery)) => delivery,
            Ok(None) => {
                tokio::select! {
                    () = tokio::time::sleep(idle) => {}
                    _ = stopped.changed() => return,
                }
                idle = (idle * 2).min(Duration::from_millis(200));
                continue;
            }
            Err(e) => {
                tracing::warn!(worker, error = %e, queue = IMPORT_QUEUE, "taking a task failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        idle = Duration::from_millis(10);
        let task: ImportTask = match serde_json::from_slice(&delivery.payload) {
            Ok(task) => task,
            Err(e) => {
                tracing::error!(worker, id = delivery.id, error = %e, "dropping a malformed import task");
                let _ = consumer.ack(&delivery).await;
                continue;
            }
        };
        let limit = state.settings.task_time_limit;
        let Ok(result) = tokio::time::timeout(limit, process(&state, &client, &task)).await else {
            tracing::warn!(worker, video = %task.video, id = delivery.id, ?limit,
                "import task exceeded its hard time limit; abandoned, it will be redelivered");
            continue;
        };
        let outcome = match &result {
            Ok(done) => *done,
            Err(e) => {
                tracing::warn!(worker, video = %task.video, error = %e, "import task failed; it will be redelivered");
                continue;
            }
        };
        // The effect is the task's, whichever delivery (or ledger redrive) brought it.
        let effect = Delivery { id: task.identity(), ..delivery.clone() };
        match consumer.apply(&effect, task.video.clone().into_bytes()).await {
            Ok(true) => {
                let key = format!("effects:{}:{}", task.user, task.video);
                if let Ok(n) = state.durable.incr_by(&key, 1).await {
                    let mut fields = Fields::new();
                    fields.insert("times_processed".to_owned(), json!(n));
                    let _ = state.statuses.merge(&format!("{}:{}", task.user, task.video), fields).await;
                    let _ = state.durable.pexpire(&key, reference::status_tracker::TTL).await;
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(worker, error = %e, "recording a task's effect failed; it will be redelivered");
                continue;
            }
        }
        if let Err(e) = consumer.ack(&delivery).await {
            tracing::warn!(worker, error = %e, "acknowledging a task failed; it will be redelivered");
        }
        crate::ledger::forget(&state, &task).await;
        tracing::debug!(worker, video = %task.video, outcome, "import processed");
    }
}

/// Runs one import to its end state; `Err` only for store failures (the task is retried).
async fn process(
    state: &AppState,
    client: &UpstreamSlot,
    task: &ImportTask,
) -> Result<&'static str, reference::video::VideoError> {
    let user = task.user.to_string();
    let status_id = format!("{}:{}", task.user, task.video);
    let Some(video) = state.videos.get(&user, &task.url).await? else {
        return Ok("gone");
    };
    if video.attempt != task.attempt || matches!(video.status, Status::Completed | Status::Failed) {
        // An older attempt's task, or a redelivery of a finished one.
        return Ok("stale");
    }
    if video.status == Status::Pending {
        state.videos.start(&user, &task.url).await?;
    }
    merge(state, &status_id, json!({ "state": "processing" })).await;
    let result = call_upstream(state, client, &task.url).await;
    match result {
        Ok(meta) => {
            state.videos.complete(&user, &task.url).await?;
            merge(state, &status_id, json!({ "state": "completed", "title": meta.0, "duration": meta.1 }))
                .await;
            Ok("completed")
        }
        Err(reason) => {
            state.videos.fail(&user, &task.url).await?;
            merge(state, &status_id, json!({ "state": "failed", "error": reason })).await;
            Ok("failed")
        }
    }
}

async fn merge(state: &AppState, id: &str, fields: serde_json::Value) {
    if let serde_json::Value::Object(fields) = fields
        && let Err(e) = state.statuses.merge(id, fields).await
    {
        tracing::warn!(%id, error = %e, "status merge failed");
    }
}

fn count(state: &AppState, outcome: &str) {
    state.metrics.upstream_calls.get_or_create(&RouteLabels { route: outcome.to_owned() }).inc();
}

/// The upstream's metadata of `url`: `(title, duration)`, or why it could not be had.
async fn call_upstream(
    state: &AppState,
    client: &UpstreamSlot,
    url: &str,
) -> Result<(String, String), String> {
    let now = state.backends.clock.now();
    let credential =
        token_refresh::credential(&state.durable, PLATFORM_TOKEN).await.map_err(|e| e.to_string())?;
    // A token that expires within a second could expire in flight.
    let Some(credential) = credential.filter(|c| !c.is_expired(now + 1_000)) else {
        count(state, "no_credential");
        return Err("no valid upstream credential yet; the refresh beat has not run".to_owned());
    };
    let grant = match state.usage.acquire().await.map_err(|e| e.to_string())? {
        Admission::Granted(grant) => grant,
        Admission::Refused { period, used, limit } => {
            count(state, "plan_exhausted");
            return Err(format!("upstream plan exhausted: {used} of {limit} per {period:?}"));
        }
    };
    let asked = std::time::Instant::now();
    let permit = match state.breaker.acquire().await.map_err(|e| e.to_string())? {
        Ok(permit) => permit,
        Err(rejected) => {
            state.metrics.breaker_rejections.observe(asked.elapsed().as_secs_f64());
            count(state, "circuit_open");
            let _ = state.usage.finish(&grant, false).await;
            return Err(rejected.to_string());
        }
    };
    let request = video_request(url).bearer(&credential.access_token);
    let reply = client.send(request).await;
    let result = match reply {
        Ok(reply) if (200..300).contains(&reply.status) => parse_meta(&reply.body),
        Ok(reply) => Err(format!("upstream answered {}", reply.status)),
        Err(e) => Err(e.to_string()),
    };
    let outcome = if result.is_ok() { CallOutcome::Success } else { CallOutcome::Failure };
    count(state, if result.is_ok() { "ok" } else { "failed" });
    let _ = state.breaker.record(permit, outcome).await;
    let _ = state.usage.finish(&grant, result.is_ok()).await;
    result
}

/// The upstream request for a video URL: TikTok's query for tiktok.com URLs, YouTube's
/// videos list for the rest (the id is the `v` parameter or the last path segment).
fn video_request(url: &str) -> Request {
    let id = external_id(url);
    if url.contains("tiktok.com") {
        let body = json!({ "filters": { "video_ids": [id] } }).to_string();
        Request::post("/v2/video/query/", body).header("content-type", "application/json")
    } else {
        let id: String = serde_urlencoded::to_string([("id", id.as_str())]).unwrap_or_default();
        Request::get(format!("/youtube/v3/videos?{id}&part=snippet,contentDetails"))
    }
}

fn external_id(url: &str) -> String {
    let no_fragment = url.split('#').next().unwrap_or(url);
    let (path, query) = no_fragment.split_once('?').unwrap_or((no_fragment, ""));
    if let Some(v) = query.split('&').find_map(|pair| pair.strip_prefix("v=")) {
        return v.to_owned();
    }
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_owned()
}

fn parse_meta(body: &[u8]) -> Result<(String, String), String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("upstream body: {e}"))?;
    if let Some(item) = value.pointer("/items/0") {
        let title = item.pointer("/snippet/title").and_then(|t| t.as_str()).unwrap_or("").to_owned();
        let duration =
            item.pointer("/contentDetails/duration").and_then(|d| d.as_str()).unwrap_or("").to_owned();
        return Ok((title, duration));
    }
    if let Some(video) = value.pointer("/data/videos/0") {
        let title = video.get("title").and_then(|t| t.as_str()).unwrap_or("").to_owned();
        let duration = video.get("duration").map(|d| d.to_string()).unwrap_or_default();
        return Ok((title, duration));
    }
    Err("the upstream does not know this video".to_owned())
}

#[cfg(test)]
mod tests {
    use super::external_id;

    #[test]
    fn external_ids_of_video_urls() {
        assert_eq!(external_id("https://www.youtube.com/watch?v=abc123&t=4"), "abc123");
        assert_eq!(external_id("https://youtu.be/xyz/"), "xyz");
        assert_eq!(external_id("https://www.tiktok.com/@u/video/7301#top"), "7301");
    }
}
