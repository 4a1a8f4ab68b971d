//! The partner shape: the same components behind an API written the way another team writes
//! one, so that stampede's mapping of a stack it did not write is tested against a real one.
//!
//! What differs from the reference API (`crates/stack/openapi.json`), each a convention the
//! field uses and a profile must be able to state:
//! - its own routes, with trailing slashes (`/api/media/`, `/api/projects/{pk}/summary/`);
//! - an API key in `X-Api-Key` with no prefix (`?api_key=` on a WebSocket handshake);
//! - numeric ids (`pk`), media's included (the reference video id read as a number: most are
//!   above 2^53, as Twitter's and Discord's snowflakes are, which a client that reads JSON
//!   numbers as doubles corrupts; stampede keeps them exact);
//! - rate-limit windows as GitHub states them (`X-RateLimit-*`, the reset in epoch seconds);
//! - the feed paged by a `Link: <…>; rel="next"` header whose `page[after]` is an opaque
//!   base64 cursor;
//! - uploads taken as a multipart/form-data form and read back as the raw bytes;
//! - WebSockets over the connection limit refused with 403;
//! - the dashboard's cache layer in `X-Cache-Status: HIT | MISS`; errors as `{"detail": …}`;
//! - every answer names the process that gave it in `X-Served-By`.
//!
//! Each handler restates a reference handler's request and answer, so every component the
//! routes reach, and its `--mutant`, runs as behind the reference API. Not here: the
//! dashboard's full body, video statuses, the usage read-out, `/readyz`, `/openapi.json`;
//! rate-limit windows are always `X-RateLimit-*` (`--rate-limit-headers` is refused with it).

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{FromRequestParts, Path, RawQuery, Request, State};
use axum::handler::Handler as _;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{self, Json, Query, chat, limits, projects, uploads, users, videos};
use crate::app;
use crate::auth::{Caller, SocketCaller};
use crate::error::{ApiError, restate};
use crate::settings::RateLimitHeaders;
use crate::state::AppState;

/// The whole partner-shaped service.
///
/// The reference API's middleware runs here too: the deadline (and `--added-latency`) on
/// everything but streams, the query count and metrics, the compression policy.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/health/", get(health))
        .route("/api/accounts/", post(register))
        .route("/api/account/quota/", get(quota))
        .route("/api/publish/", post(publish))
        .route("/api/media/", post(import).get(feed))
        .route("/api/media/{pk}/", get(media))
        .route("/api/projects/", post(create_project))
        .route("/api/projects/{pk}/", get(project).put(rename_project))
        .route("/api/projects/{pk}/summary/", get(summary))
        .route_layer(middleware::from_fn_with_state(state.clone(), app::deadline));
    // Bodies streamed in and sockets held open: no deadline.
    let streams = Router::new()
        .route("/api/projects/{pk}/live/", get(live))
        .route("/api/files/", post(upload))
        .route("/api/files/{pk}/raw/", get(download));
    Router::new()
        .merge(api)
        .merge(streams)
        .route("/metrics", get(app::metrics))
        .route("/settings", get(app::settings))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), app::observe))
        .fallback(not_found.layer(middleware::from_fn_with_state(state.clone(), app::observe)))
        .layer(middleware::from_fn_with_state(state.clone(), app::compress))
        .layer(middleware::from_fn_with_state(state.clone(), conventions))
        .with_state(state)
}

/// Every answer: the rate-limit fields as `X-RateLimit-*` with an epoch reset, and the
/// process that answered in `X-Served-By`.
async fn conventions(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    restate(RateLimitHeaders::XRateLimit, headers, std::time::SystemTime::now());
    if let Ok(instance) = HeaderValue::from_str(&state.settings.instance) {
        headers.insert("x-served-by", instance);
    }
    response
}

/// An error as this API states one: the status, and `{"detail": message}`.
fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "detail": message.into() }))).into_response()
}

async fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not found.")
}

/// A known route asked with another method (axum adds `Allow`).
async fn method_not_allowed() -> Response {
    detail(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
}

/// The largest reference answer restated (a feed page of 100 is a few KiB).
const MAX_RESTATED: usize = 1 << 20;

/// A reference handler's answer restated: a success's JSON body through `shape`, an error's
/// as `{"detail": …}`; status and headers kept (`Retry-After`, the rate-limit fields) but
/// `Location`, which names a reference path.
async fn restated(answer: Response, shape: impl FnOnce(Value) -> Value) -> Response {
    let (mut parts, body) = answer.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_RESTATED).await {
        Ok(bytes) => bytes,
        Err(e) => return detail(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the answer: {e}")),
    };
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let body = if parts.status.is_success() {
        shape(value)
    } else {
        let message = value.pointer("/error/message").and_then(Value::as_str).unwrap_or("request failed");
        json!({ "detail": message })
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::WWW_AUTHENTICATE);
    // A reference path: nothing this API serves.
    parts.headers.remove(header::LOCATION);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, Body::from(bytes))
}

/// The caller, from its API key in `X-Api-Key` (no scheme, no prefix).
struct ApiKey(Caller);

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
        let Some(key) = key else {
            return Err(detail(StatusCode::UNAUTHORIZED, "Authentication credentials were not provided."));
        };
        Caller::from_token(state, key).await.map(ApiKey).map_err(|e| match e {
            ApiError::Unauthorized => detail(StatusCode::UNAUTHORIZED, "Invalid API key."),
            other => restate_error(other),
        })
    }
}

/// A reference error as this API states one, its headers (`Retry-After`, the rate-limit
/// fields) kept.
fn restate_error(error: ApiError) -> Response {
    let message = error.to_string();
    let reference = error.into_response();
    let mut response = detail(reference.status(), message);
    for (name, value) in reference.headers() {
        if ![header::CONTENT_TYPE, header::CONTENT_LENGTH, header::WWW_AUTHENTICATE].contains(name) {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// The query string as `T`, or 400 naming what is wrong with it.
fn query<T: serde::de::DeserializeOwned>(text: Option<&str>) -> Result<T, Rejection> {
    serde_urlencoded::from_str(text.unwrap_or(""))
        .map_err(|e| Rejection(StatusCode::BAD_REQUEST, format!("malformed query string: {e}")))
}

/// A JSON body as `T`, or 400.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejection> {
    serde_json::from_slice(bytes)
        .map_err(|e| Rejection(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}")))
}

/// A `pk` in the path: a decimal number in its one spelling; anything else is 404.
fn pk(text: &str) -> Result<u64, Rejection> {
    api::parse_id(text, "object").map_err(|_| Rejection(StatusCode::NOT_FOUND, "Not found.".to_owned()))
}

/// A request refused before any component sees it.
#[derive(Debug)]
struct Rejection(StatusCode, String);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        detail(self.0, self.1)
    }
}

/// A reference video id (16 hex digits) as this API's numeric `pk`.
fn media_pk(id: &Value) -> Value {
    id.as_str().and_then(|hex| u64::from_str_radix(hex, 16).ok()).map_or(Value::Null, |pk| json!(pk))
}

async fn health() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    username: String,
}

/// `POST /api/accounts/ {"username"}` → 201 `{"pk", "username", "api_key"}`.
async fn register(
    State(state): State<AppState>,
    address: users::ClientAddress,
    bytes: axum::body::Bytes,
) -> Response {
    let registration: Registration = match body(&bytes) {
        Ok(r) => r,
        Err(rejection) => return rejection.into_response(),
    };
    let answer =
        users::create(State(state), address, Json(users::NewUser { name: registration.username })).await;
    restated(
        answer.into_response(),
        |user| json!({ "pk": user["id"], "username": user["name"], "api_key": user["token"] }),
    )
    .await
}

/// `GET /api/account/quota/` → `{"quota": {"consumed", "allowance"}}`.
async fn quota(State(state): State<AppState>, ApiKey(caller): ApiKey) -> Response {
    let answer = limits::quota(State(state), caller).await;
    restated(
        answer.into_response(),
        |quota| json!({ "quota": { "consumed": quota["used"], "allowance": quota["limit"] } }),
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Publication {
    media_ref: String,
    network: String,
}

/// `POST /api/publish/ {"media_ref", "network"}` → 202 `{"queued": true}`, at most the
/// publish limit per account and window.
async fn publish(
    State(state): State<AppState>,
    ApiKey(caller): ApiKey,
    bytes: axum::body::Bytes,
) -> Response {
    let publication: Publication = match body(&bytes) {
        Ok(p) => p,
        Err(rejection) => return rejection.into_response(),
    };
    let request = limits::Publish { video_id: publication.media_ref, platform: publication.network };
    let answer = limits::publish(State(state), caller, Json(request)).await;
    restated(answer.into_response(), |_| json!({ "queued": true })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMedia {
    source: String,
}

fn media_json(video: &Value) -> Value {
    json!({
        "pk": media_pk(&video["id"]),
        "source": video["url"],
        "state": video["status"],
        "attempt": video["attempt"],
    })
}

/// `POST /api/media/ {"source"}` → 201 (created) or 200 `{"pk", "source", "state", "created",
/// "enqueued"}`; `enqueued` is true for the one request that spent the quota.
async fn import(State(state): State<AppState>, ApiKey(caller): ApiKey, bytes: axum::body::Bytes) -> Response {
    let media: NewMedia = match body(&bytes) {
        Ok(m) => m,
        Err(rejection) => return rejection.into_response(),
    };
    let request = videos::Import { url: media.source, project_id: None };
    let answer = videos::import(State(state), caller, Json(request)).await.into_response();
    restated(answer, |video| {
        let mut media = media_json(&video);
        media["created"] = video["created"].clone();
        media["enqueued"] = video["should_process"].clone();
        media
    })
    .await
}

/// `GET /api/media/{pk}/`.
async fn media(State(state): State<AppState>, ApiKey(caller): ApiKey, Path(text): Path<String>) -> Response {
    let id = match pk(&text) {
        Ok(id) => id,
        Err(rejection) => return rejection.into_response(),
    };
    let answer = videos::get(State(state), caller, Path(format!("{id:016x}"))).await;
    restated(answer.into_response(), |video| media_json(&video)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    #[serde(rename = "page[size]")]
    size: Option<usize>,
    #[serde(rename = "page[after]")]
    after: Option<String>,
}

/// `GET /api/media/?page[size]=N&page[after]=…` → `{"results": [{"pk", "source"}]}`, the next
/// page in `Link: <…>; rel="next"`, its cursor opaque (the reference cursor in base64).
async fn feed(State(state): State<AppState>, ApiKey(caller): ApiKey, RawQuery(text): RawQuery) -> Response {
    let page: PageQuery = match query(text.as_deref()) {
        Ok(p) => p,
        Err(rejection) => return rejection.into_response(),
    };
    let cursor = match page.after.as_deref().map(|after| URL_SAFE_NO_PAD.decode(after)) {
        None => None,
        Some(Ok(bytes)) => match String::from_utf8(bytes) {
            Ok(cursor) => Some(cursor),
            Err(_) => return detail(StatusCode::BAD_REQUEST, "invalid page[after]"),
        },
        Some(Err(_)) => return detail(StatusCode::BAD_REQUEST, "invalid page[after]"),
    };
    let listed =
        videos::list(State(state), caller, Query(videos::ListQuery { cursor, limit: page.size })).await;
    let (_, Json(listing)) = match listed {
        Ok(listed) => listed,
        Err(e) => return restate_error(e),
    };
    let results: Vec<Value> = listing["items"]
        .as_array()
        .map(|items| {
            items.iter().map(|item| json!({ "pk": media_pk(&item["id"]), "source": item["url"] })).collect()
        })
        .unwrap_or_default();
    let mut response = axum::Json(json!({ "results": results })).into_response();
    if let Some(next) = listing["next_cursor"].as_str() {
        let after = URL_SAFE_NO_PAD.encode(next);
        let link = match page.size {
            Some(size) => format!("</api/media/?page[size]={size}&page[after]={after}>; rel=\"next\""),
            None => format!("</api/media/?page[after]={after}>; rel=\"next\""),
        };
        if let Ok(link) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Titled {
    title: String,
}

fn project_json(project: &Value) -> Value {
    json!({ "pk": project["id"], "title": project["name"] })
}

/// `POST /api/projects/ {"title"}` → 201 `{"pk", "title"}`.
async fn create_project(
    State(state): State<AppState>,
    ApiKey(caller): ApiKey,
    bytes: axum::body::Bytes,
) -> Response {
    let titled: Titled = match body(&bytes) {
        Ok(t) => t,
        Err(rejection) => return rejection.into_response(),
    };
    let request = projects::NewProject { name: titled.title, members: Vec::new() };
    let answer = projects::create(State(state), caller, Json(request)).await.into_response();
    restated(answer, |project| project_json(&project)).await
}

/// `GET /api/projects/{pk}/` → `{"pk", "title"}`, for its members.
async fn project(
    State(state): State<AppState>,
    ApiKey(caller): ApiKey,
    Path(text): Path<String>,
) -> Response {
    let id = match pk(&text) {
        Ok(id) => id,
        Err(rejection) => return rejection.into_response(),
    };
    let answer = projects::get(State(state), caller, Path(id.to_string())).await;
    restated(answer.into_response(), |project| project_json(&project)).await
}

/// `PUT /api/projects/{pk}/ {"title"}` → 200 `{"pk", "title"}`; when it answers, no process
/// serves the old title in the summary.
async fn rename_project(
    State(state): State<AppState>,
    ApiKey(caller): ApiKey,
    Path(text): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let (id, titled) = match (pk(&text), body::<Titled>(&bytes)) {
        (Ok(id), Ok(titled)) => (id, titled),
        (Err(rejection), _) | (_, Err(rejection)) => return rejection.into_response(),
    };
    let change = projects::ProjectChange { name: titled.title };
    let answer = projects::update(State(state), caller, Path(id.to_string()), Json(change)).await;
    restated(answer.into_response(), |project| project_json(&project)).await
}

/// `GET /api/projects/{pk}/summary/` → `{"title", "media_count"}`, `X-Cache-Status: HIT` when
/// a cache layer answered, `MISS` when it was computed.
async fn summary(
    State(state): State<AppState>,
    ApiKey(caller): ApiKey,
    Path(text): Path<String>,
) -> Response {
    let id = match pk(&text) {
        Ok(id) => id,
        Err(rejection) => return rejection.into_response(),
    };
    let answer = projects::dashboard(State(state), caller, Path(id.to_string())).await.into_response();
    let layer = answer.headers().get("x-cache").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut answer = restated(
        answer,
        |dashboard| json!({ "title": dashboard["project"]["name"], "media_count": dashboard["videos"] }),
    )
    .await;
    let headers = answer.headers_mut();
    headers.remove("x-cache");
    if let Some(layer) = layer {
        let status = if layer == "MISS" { "MISS" } else { "HIT" };
        headers.insert("x-cache-status", HeaderValue::from_static(status));
    }
    answer
}

#[derive(Deserialize)]
struct KeyQuery {
    api_key: Option<String>,
}

/// `GET /api/projects/{pk}/live/?api_key=…`: the project's chat over WebSocket; over the
/// account's connection limit, 403.
async fn live(
    State(state): State<AppState>,
    Path(text): Path<String>,
    RawQuery(raw): RawQuery,
    slot: crate::slot::HeldSlot,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let key = match query::<KeyQuery>(raw.as_deref()) {
        Ok(KeyQuery { api_key: Some(key) }) => key,
        Ok(_) => return detail(StatusCode::UNAUTHORIZED, "Authentication credentials were not provided."),
        Err(rejection) => return rejection.into_response(),
    };
    let caller = match Caller::from_token(&state, &key).await {
        Ok(caller) => caller,
        Err(ApiError::Unauthorized) => return detail(StatusCode::UNAUTHORIZED, "Invalid API key."),
        Err(e) => return restate_error(e),
    };
    let id = match pk(&text) {
        Ok(id) => id,
        Err(rejection) => return rejection.into_response(),
    };
    match chat::connect(State(state), SocketCaller(caller), Path(id.to_string()), slot, upgrade).await {
        Ok(response) => response,
        Err(limited @ ApiError::RateLimited { .. }) => {
            // 403, its `Retry-After` and rate-limit fields kept.
            let mut refused = restate_error(limited);
            *refused.status_mut() = StatusCode::FORBIDDEN;
            let body = json!({ "detail": "You have too many live connections open." });
            *refused.body_mut() = Body::from(serde_json::to_vec(&body).unwrap_or_default());
            refused.headers_mut().remove(header::CONTENT_LENGTH);
            refused
        }
        Err(e) => restate_error(e),
    }
}

/// `POST /api/files/` (a multipart/form-data form with a file part, or raw bytes) → 201
/// `{"pk", "size"}`.
async fn upload(
    State(state): State<AppState>,
    ApiKey(caller): ApiKey,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = uploads::create(State(state), caller, headers, body).await.into_response();
    restated(answer, |upload| json!({ "pk": upload["id"], "size": upload["bytes"] })).await
}

/// `GET /api/files/{pk}/raw/`: the stored bytes.
async fn download(
    State(state): State<AppState>,
    ApiKey(caller): ApiKey,
    Path(text): Path<String>,
) -> Response {
    match uploads::content(State(state), caller, Path(text)).await {
        Ok(response) => response,
        Err(e) => restate_error(e),
    }
}

/// The API's answers to the conventions it states, tested without a server.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_media_pk_is_the_reference_id_read_as_a_number() {
        assert_eq!(media_pk(&json!("000000000000002a")), json!(42));
        assert_eq!(media_pk(&json!("7fffffffffffffff")), json!(i64::MAX as u64));
        assert_eq!(media_pk(&json!("not hex")), Value::Null);
    }

    #[test]
    fn a_pk_has_one_spelling() {
        assert_eq!(pk("17").ok(), Some(17));
        for bad in ["017", "+17", "", "x", "18446744073709551616"] {
            assert_eq!(pk(bad).map_err(|r| r.0).err(), Some(StatusCode::NOT_FOUND), "{bad}");
        }
    }
}
