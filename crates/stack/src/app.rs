//! The service: its state (the components over the configured backends), the router, and the
//! middleware every request goes through: the query count and metrics (`observe`), the
//! deadline, and the compression policy (`compress`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::tz::TimeZone;
use reference::circuit_breaker::{Breaker, Phase};
use reference::compression::{self, Compress};
use reference::daily_quota::QuotaPolicy;
use reference::l1_cache::L1Cache;
use reference::l1_cache::multi_layer::{Layered, MultiLayer};
use reference::limit::Limit;
use reference::task_queue::TaskQueue;
use reference::usage_tracker::UsageLimits;

use crate::api;
use crate::backend::{AnyStore, Backends};
use crate::chat::{Chat, ChatSettings};
use crate::components::{
    CompressionSlot, DailyQuotaSlot, DashboardCache, ListingSlot, Mutant, Publish, Statuses, UpstreamBreaker,
    UsageSlot, Videos,
};
use crate::error::ApiError;
use crate::metrics::{LayerLabels, Metrics, QueueLabels};
use crate::queries;
use crate::uploads::Uploads;

/// How the stack behaves; every limit the checks need to shorten is here.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This process's name in logs, leases and metrics.
    pub instance: String,
    /// #1 the third-party publish limit per user (seed: 6 a minute).
    pub publish_limit: Limit,
    /// #3 the daily quota; days are local days in `quota_zone`.
    pub quota: QuotaPolicy,
    pub quota_zone: TimeZone,
    /// #4 the upstream API plan.
    pub usage: UsageLimits,
    /// #12 uploads per user per window (seed: 15 a day) and the size cap.
    pub upload_limit: Limit,
    pub max_upload_bytes: u64,
    /// Where upload bodies are stored.
    pub upload_dir: PathBuf,
    /// #17 the project chat over WebSocket.
    pub chat: ChatSettings,
    /// #14 how long a computed dashboard is cached; the L1's capacity.
    pub dashboard_ttl: Duration,
    pub l1_capacity: usize,
    /// #10 how long a reserved task stays invisible to other workers.
    pub task_visibility: Duration,
    /// #10 the hard time limit of one task's processing (Celery's `task_time_limit`): a task
    /// still running after it is abandoned unacknowledged, as if its worker had died, and is
    /// redelivered once its visibility timeout has passed. The seed keeps the visibility
    /// timeout above it, so that no task still running is handed to a second worker.
    pub task_time_limit: Duration,
    /// #7 the upstream breaker policy.
    pub breaker: reference::circuit_breaker::Policy,
    /// Any request not answered in this long gets 503 (uploads and WebSockets excepted).
    pub request_timeout: Duration,
    /// Added before every API request is handled (inside its deadline): a deliberately slowed
    /// stack, for seeing a baseline comparison flag a regression. Zero by default.
    pub added_latency: Duration,
    /// Run this mutant instead of the reference component it replaces.
    pub mutant: Option<Mutant>,
    /// The upstream the import workers call; none: no worker runs, imports stay pending.
    pub upstream: Option<crate::workers::UpstreamLink>,
    /// Import processors per process.
    pub workers: usize,
    /// #8 the pooled client's policy: connections open to the upstream at once, idle ones kept
    /// (requests in flight are capped at the difference), and the call deadline.
    pub upstream_pool: upstream::UpstreamConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            instance: "stack-0".to_owned(),
            publish_limit: Limit::new(6, Duration::from_secs(60)),
            quota: reference::daily_quota::SEED,
            quota_zone: TimeZone::UTC,
            usage: UsageLimits::SEED,
            upload_limit: Limit::new(15, Duration::from_secs(24 * 60 * 60)),
            max_upload_bytes: 64 * 1024 * 1024,
            upload_dir: crate::uploads::default_dir(),
            chat: ChatSettings::default(),
            dashboard_ttl: Duration::from_secs(60),
            l1_capacity: 10_000,
            task_visibility: reference::task_queue::seed::VISIBILITY,
            task_time_limit: reference::task_queue::seed::HARD_LIMIT,
            breaker: reference::circuit_breaker::seed::POLICY,
            request_timeout: Duration::from_secs(5),
            added_latency: Duration::ZERO,
            mutant: None,
            upstream: None,
            workers: 2,
            upstream_pool: upstream::UpstreamConfig::SEED,
        }
    }
}

/// The queue import tasks go through.
pub const IMPORT_QUEUE: &str = "imports";

/// Everything a handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub backends: Backends,
    pub publish: Publish,
    pub quota: DailyQuotaSlot,
    pub usage: UsageSlot,
    pub videos: Videos,
    pub statuses: Statuses,
    pub cache: DashboardCache,
    pub queue: TaskQueue<AnyStore>,
    pub breaker: UpstreamBreaker,
    /// #16 how responses are encoded.
    pub compression: CompressionSlot,
    /// #18 how the feed's list endpoint reads a page.
    pub listing: ListingSlot,
    pub metrics: Metrics,
    pub started: Instant,
    pub uploads: Uploads,
    pub chat: Chat,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("instance", &self.settings.instance).finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(settings: Settings, backends: Backends) -> Self {
        let clock = Arc::clone(&backends.clock);
        let kv = backends.kv.clone();
        let l1 = L1Cache::new(settings.l1_capacity, Arc::clone(&clock), backends.bus.clone());
        let metrics = Metrics::new();
        if let Some(pool) = &backends.pool {
            metrics.pool_max.set(pool.policy().max_connections() as i64);
        }
        let mutant = settings.mutant;
        if let Some(mutant) = mutant {
            tracing::warn!(mutant = mutant.name(), "running a mutant instead of its reference component");
        }
        Self(Arc::new(Inner {
            publish: Publish::new(kv.clone(), "publish", settings.publish_limit, mutant),
            quota: DailyQuotaSlot::new(
                kv.clone(),
                Arc::clone(&clock),
                "quota",
                settings.quota_zone.clone(),
                settings.quota,
                mutant,
            ),
            usage: UsageSlot::new(kv.clone(), Arc::clone(&clock), settings.usage, mutant),
            videos: Videos::new(backends.records.clone(), mutant),
            statuses: Statuses::new(kv.clone(), mutant),
            cache: DashboardCache::new(MultiLayer::new(l1, backends.l2.clone(), backends.l3.clone()), mutant),
            queue: TaskQueue::new(kv.clone(), IMPORT_QUEUE, settings.task_visibility),
            breaker: UpstreamBreaker::new(kv, clock, settings.breaker, mutant),
            compression: CompressionSlot::new(mutant),
            listing: ListingSlot::new(mutant),
            metrics,
            started: Instant::now(),
            uploads: Uploads::new(&settings, &backends),
            chat: Chat::new(&settings, &backends),
            settings,
            backends,
        }))
    }

    /// Refreshes the gauges that mirror state held in the components and backends.
    async fn sample(&self) {
        let stats = self.cache.layer_stats();
        for (layer, value) in
            [("l1", stats.l1_hits), ("l2", stats.l2_hits), ("l3", stats.l3_hits), ("miss", stats.misses)]
        {
            Metrics::mirror(&self.metrics.cache_gets.get_or_create(&LayerLabels { layer }), value);
        }
        let meter = self.uploads.meter();
        self.metrics.upload_held_bytes.set(meter.held() as i64);
        self.metrics.upload_held_bytes_peak.set(meter.peak() as i64);
        if let Some(pool) = &self.backends.pool {
            self.metrics.pool_connections.set(pool.open_connections() as i64);
        }
        if let Ok(state) = self.breaker.state().await {
            let now = self.backends.clock.now();
            let value = match state.phase(now) {
                Phase::Closed => 0,
                Phase::Open => 1,
                Phase::HalfOpen => 2,
            };
            self.metrics.breaker_state.set(value);
        }
        if let Ok(depth) = self.queue.depth().await {
            let queue = IMPORT_QUEUE.to_owned();
            for (state, value) in [("ready", depth.ready), ("in_flight", depth.in_flight)] {
                self.metrics
                    .queue_depth
                    .get_or_create(&QueueLabels { queue: queue.clone(), state })
                    .set(value as i64);
            }
        }
    }
}

/// The whole service.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/users", post(api::users::create))
        .route("/v1/projects", post(api::projects::create))
        .route("/v1/projects/{id}", get(api::projects::get).patch(api::projects::update))
        .route("/v1/projects/{id}/dashboard", get(api::projects::dashboard))
        .route("/v1/videos", post(api::videos::import).get(api::videos::list))
        .route("/v1/videos/{id}", get(api::videos::get))
        .route("/v1/videos/{id}/status", get(api::videos::status).patch(api::videos::merge_status))
        .route("/v1/publish", post(api::limits::publish))
        .route("/v1/quota", get(api::limits::quota))
        .route("/v1/usage", get(api::limits::usage))
        .route("/v1/uploads/{id}", get(api::uploads::get))
        .route_layer(middleware::from_fn_with_state(state.clone(), deadline));
    // Bodies streamed in and sockets held open: no deadline.
    let streams = Router::new()
        .route("/v1/uploads", post(api::uploads::create))
        .route("/v1/projects/{id}/chat", get(api::chat::connect));
    let router = Router::new()
        .merge(api)
        .merge(streams)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        // Observed too, so that unknown routes carry `X-DB-Queries` and show in the metrics.
        .fallback(not_found.layer(middleware::from_fn_with_state(state.clone(), observe)))
        .layer(middleware::from_fn_with_state(state.clone(), compress));
    router.with_state(state)
}

/// #16: every response whose size is known, encoded as the compression policy says (gzip
/// above 1 KiB when asked for and worth it, `Vary: Accept-Encoding` on every compressible
/// response); a body of unknown size (a stream) passes as it is, never buffered.
async fn compress(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let accept: Vec<String> = request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_owned))
        .collect();
    let response = next.run(request).await;
    let Some(len) = response.body().size_hint().exact().and_then(|len| usize::try_from(len).ok()) else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, len).await {
        Ok(body) => body,
        Err(e) => return ApiError::Internal(format!("cannot read the response body: {e}")).into_response(),
    };
    let headers = &parts.headers;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let candidate = compression::Response {
        content_type,
        encoded: headers.contains_key(header::CONTENT_ENCODING)
            || headers.contains_key(header::CONTENT_RANGE),
        len: body.len(),
    };
    let accept: Vec<&str> = accept.iter().map(String::as_str).collect();
    let encoding = state.compression.encode(&accept, candidate, &body);
    let varies = parts.headers.get_all(header::VARY).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|name| name.trim().eq_ignore_ascii_case("accept-encoding")))
    });
    if encoding.vary && !varies {
        parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    match encoding.gzip {
        None => Response::from_parts(parts, body.into()),
        Some(gzip) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::ACCEPT_RANGES);
            parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Response::from_parts(parts, gzip.into())
        }
    }
}

/// Counts the request's queries into `X-DB-Queries` and records its duration.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let (mut response, queries) = queries::scope(next.run(request)).await;
    response.headers_mut().insert("x-db-queries", HeaderValue::from(queries));
    state.metrics.observe(&method, &route, response.status().as_u16(), start.elapsed(), queries);
    response
}

/// A request that takes longer than the deadline is answered 503: a stalled backend never
/// holds a client.
async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.settings.request_timeout;
    let added = state.settings.added_latency;
    let handled = async move {
        if !added.is_zero() {
            tokio::time::sleep(added).await;
        }
        next.run(request).await
    };
    match tokio::time::timeout(limit, handled).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(format!("no answer within {} ms", limit.as_millis())).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// A known route asked with another method: 405 as JSON (axum adds `Allow`).
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The API's contract, `crates/stack/openapi.json`, as committed. Kept as JSON so that
/// serving and testing it needs no YAML parser.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], OPENAPI).into_response()
}

/// Liveness: touches no backend. Names the instance, so a client of several processes can tell
/// which one answered.
async fn healthz(State(state): State<AppState>) -> Response {
    axum::Json(serde_json::json!({ "status": "ok", "instance": state.settings.instance })).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.backends.ping().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.sample().await;
    let mut response = (StatusCode::OK, state.metrics.encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
