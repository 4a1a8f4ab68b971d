//! The service: the router, and the middleware every request goes through: the query count and metrics (`observe`), the
//! deadline, and the compression policy (`compress`).

use std::time::Instant;

use axum::Router;
use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use reference::compression::{self, Compress};

use crate::api;
use crate::error::ApiError;
use crate::queries;
use crate::state::AppState;

/// The whole service.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/users", post(api::users::create))
        .route("/v1/projects", post(api::projects::create))
        .route("/v1/projects/{id}", get(api::projects::get).patch(api::projects::update))
        .route("/v1/projects/{id}/dashboard", get(api::projects::dashboard))
        .route("/v1/projects/{id}/invitations", post(api::projects::invitations::create))
        .route("/v1/invitations", get(api::projects::invitations::list))
        .route("/v1/invitations/{project}/accept", post(api::projects::invitations::accept))
        .route("/v1/invitations/{project}/decline", post(api::projects::invitations::decline))
        .route("/v1/videos", post(api::videos::import).get(api::videos::list))
        .route("/v1/videos/{id}", get(api::videos::get))
        .route("/v1/videos/{id}/status", get(api::videos::status).patch(api::videos::merge_status))
        .route("/v1/publish", post(api::limits::publish))
        .route("/v1/quota", get(api::limits::quota))
        .route("/v1/usage", get(api::limits::usage))
        .route("/v1/uploads/{id}", get(api::uploads::get))
        .route_layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(axum::extract::DefaultBodyLimit::max(api::JSON_BODY_LIMIT));
    // Bodies streamed in and sockets held open: no deadline.
    let streams = Router::new()
        .route("/v1/uploads", post(api::uploads::create))
        .route("/v1/uploads/{id}/content", get(api::uploads::content))
        .route("/v1/projects/{id}/chat", get(api::chat::connect));
    let router = Router::new()
        .merge(api)
        .merge(streams)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/settings", get(settings))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        // Observed too, so that unknown routes carry `X-DB-Queries` and show in the metrics.
        .fallback(not_found.layer(middleware::from_fn_with_state(state.clone(), observe)))
        .layer(middleware::from_fn_with_state(state.clone(), compress))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit_headers));
    router.with_state(state)
}

/// The rate-limit fields restated in the convention the stack was started with.
async fn rate_limit_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    crate::error::restate(
        state.settings.rate_limit_headers,
        response.headers_mut(),
        std::time::SystemTime::now(),
    );
    response
}

/// #16: every response whose size is known, encoded as the compression policy says (gzip
/// above 1 KiB when asked for and worth it, `Vary: Accept-Encoding` on every compressible
/// response); a body of unknown size (a stream) passes as it is, never buffered.
pub(crate) async fn compress(State(state): State<AppState>, request: Request, next: Next) -> Response {
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
pub(crate) async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = match state.settings.mutant {
        // The field's stack labelled every method as the client wrote it.
        Some(crate::Mutant::UnboundedLabels) => request.method().as_str().to_owned(),
        _ => crate::metrics::method_label(request.method().as_str()).to_owned(),
    };
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
pub(crate) async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
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

/// The settings the checks depend on ([`crate::Settings::published`]): what `stampede check
/// --target` compares with its checks' needs before it runs them.
pub(crate) async fn settings(State(state): State<AppState>) -> Response {
    axum::Json(state.settings.published()).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.backends.ping().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    state.sample().await;
    let mut response = (StatusCode::OK, state.metrics.encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
