//! Videos: import (get-or-create #5, quota #3, a processing task #10), read, the user's feed
//! with cursor pagination (#15), and the processing status with merges (#6).
//!
//! A video's id is derived from `(user, url)` (the first 64 bits of their SHA-256), so every
//! concurrent import of one URL names the same video without a round trip, and one user's id
//! says nothing about another's videos.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reference::daily_quota::Quota as _;
use reference::pagination::{Cursor, PageResult, Row, RowSet};
use reference::query_budget::{Listed, Listing, RowDetails};
use reference::status_tracker::{self, Fields, StatusTracker};
use reference::store::{Store, Ttl};
use reference::video::{Video, VideoRegistry};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Json, Query, projects};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, RateLimitInfo};
use crate::ledger::ImportTask;
use crate::state::AppState;

/// The id of user `user`'s video of `url`.
pub(crate) fn video_id(user: u64, url: &str) -> u64 {
    let digest = Sha256::new().chain_update(user.to_string()).chain_update([0]).chain_update(url).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Keep ids within PostgreSQL's bigint.
    u64::from_be_bytes(first) >> 1
}

fn format_id(id: u64) -> String {
    format!("{id:016x}")
}

/// A video id as [`format_id`] spells it (16 lowercase hex digits); anything else names no video.
fn parse_video_id(text: &str) -> ApiResult<u64> {
    if text.len() != 16 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ApiError::NotFound("video"));
    }
    u64::from_str_radix(text, 16).map_err(|_| ApiError::NotFound("video"))
}

/// Where the URL of a user's video id is recorded.
fn url_key(user: u64, id: u64) -> String {
    format!("video-url:{user}:{}", format_id(id))
}

pub(crate) fn user_feed(user: u64) -> String {
    format!("user:{user}")
}

fn status_id(user: u64, id: u64) -> String {
    format!("{user}:{}", format_id(id))
}

fn video_json(id: u64, video: &Video) -> Value {
    json!({
        "id": format_id(id),
        "url": video.url,
        "status": video.status.as_str(),
        "attempt": video.attempt,
    })
}

fn check_url(url: &str) -> ApiResult<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.chars().count() <= 2048
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !url.chars().any(char::is_whitespace);
    if ok { Ok(()) } else { Err(ApiError::BadRequest(format!("not an absolute http(s) URL: {url:?}"))) }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Import {
    pub url: String,
    /// The project the video is imported into; the caller must be a member.
    pub project_id: Option<u64>,
}

/// `POST /v1/videos`: 201 with `created: true` for the request that created the video, 200
/// for the others; `should_process` is true for exactly one request per attempt (it spent
/// the quota and enqueued the processing task).
pub(crate) async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Import>,
) -> ApiResult<Response> {
    check_url(&body.url)?;
    let project = match body.project_id {
        Some(id) => Some(projects::load(&state, caller, id).await?),
        None => None,
    };
    let user = caller.key();
    let id = video_id(caller.id, &body.url);
    state.backends.records.set(&url_key(caller.id, id), body.url.clone().into_bytes(), None).await?;
    let outcome = state.videos.get_or_create(&user, &body.url).await?;
    let mut quota = None;
    if outcome.should_process {
        let consumption = state.quota.consume(&user, state.settings.quota.units_per_import).await?;
        quota = Some(consumption);
        if !consumption.accepted {
            // Give the claim back: a later import after the reset retries the video.
            state.videos.start(&user, &body.url).await?;
            state.videos.fail(&user, &body.url).await?;
            let info = RateLimitInfo {
                limit: consumption.limit,
                remaining: consumption.limit.saturating_sub(consumption.used),
                reset_after: quota_reset(&state)?,
            };
            return Err(ApiError::RateLimited { what: "daily import quota", info });
        }
        let mut status = Fields::new();
        status.insert("state".to_owned(), json!("pending"));
        status.insert("attempt".to_owned(), json!(outcome.video.attempt));
        state.statuses.merge(&status_id(caller.id, id), status).await?;
        if outcome.created {
            let payload = serde_json::to_vec(&json!({ "id": format_id(id), "url": body.url }))
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let now = state.backends.clock.now();
            insert_once(&state, &user_feed(caller.id), Row::new(id, now, payload.clone())).await?;
            if let Some(project) = &project {
                insert_once(&state, &projects::feed_name(project.id), Row::new(id, now, payload)).await?;
                state.backends.records.incr_by(&projects::video_count_key(project.id), 1).await?;
            }
        }
        let task = ImportTask {
            user: caller.id,
            video: format_id(id),
            url: body.url.clone(),
            attempt: outcome.video.attempt,
        };
        let payload = serde_json::to_vec(&task).map_err(|e| ApiError::Internal(e.to_string()))?;
        crate::ledger::record(&state, &task, &payload).await?;
        state.queue.enqueue(payload).await?;
    }
    let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    let mut body = video_json(id, &outcome.video);
    body["created"] = json!(outcome.created);
    body["should_process"] = json!(outcome.should_process);
    if let Some(q) = quota {
        body["quota"] = json!({ "used": q.used, "limit": q.limit, "warn": q.warn });
    }
    let mut response = (status, Json(body)).into_response();
    if outcome.created {
        let location = format!("/v1/videos/{}", format_id(id));
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    Ok(response)
}

async fn insert_once(state: &AppState, feed: &str, row: Row) -> ApiResult<()> {
    match state.backends.feeds.feed(feed).insert(row).await {
        Ok(()) | Err(reference::pagination::PageError::DuplicateId(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Time left until the quota's local midnight.
pub(crate) fn quota_reset(state: &AppState) -> ApiResult<std::time::Duration> {
    let day = reference::daily_quota::LocalDay::at(&state.settings.quota_zone, state.backends.clock.now())?;
    Ok(day.left)
}

async fn load(state: &AppState, caller: Caller, id: &str) -> ApiResult<(u64, Video)> {
    let id = parse_video_id(id)?;
    let url =
        state.backends.records.get(&url_key(caller.id, id)).await?.ok_or(ApiError::NotFound("video"))?;
    let url = String::from_utf8(url).map_err(|e| ApiError::Internal(e.to_string()))?;
    let video = state.videos.get(&caller.key(), &url).await?.ok_or(ApiError::NotFound("video"))?;
    Ok((id, video))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (id, video) = load(&state, caller, &id).await?;
    Ok(Json(video_json(id, &video)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /v1/videos?cursor=&limit=`: the caller's videos, newest first, `limit` 1 to 100
/// (default 20). Two queries whatever the page size (the token's, the page's): the listing is
/// #18's (`reference::query_budget`), each row's payload carrying what the list shows.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let cursor = match &query.cursor {
        Some(text) => Some(
            text.parse::<Cursor>()
                .map_err(|e| ApiError::BadRequest(format!("invalid cursor {text:?}: {e}")))?,
        ),
        None => None,
    };
    if query.limit.is_some_and(|l| !(1..=reference::pagination::MAX_LIMIT).contains(&l)) {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {}", reference::pagination::MAX_LIMIT)));
    }
    let feed = state.backends.feeds.feed(&user_feed(caller.id));
    let statuses = VideoStatuses { state: &state, caller };
    let Listed { page, details } = state.listing.list(&feed, &statuses, cursor, query.limit).await?;
    let mut items: Vec<Value> = page
        .rows
        .iter()
        .map(|row| {
            let mut item: Value = serde_json::from_slice(&row.payload).unwrap_or(Value::Null);
            item["created_ms"] = json!(row.created);
            item
        })
        .collect();
    // Only a listing that looked each row up has details (the N + 1 mutant): it shows them.
    for (item, status) in items.iter_mut().zip(details) {
        if let Some(status) = status {
            item["status"] = json!(status);
        }
    }
    // The next page three ways, as stacks give it: the cursor, a link in the body (JSON:API's
    // `links.next`) and a `Link` header (RFC 8288).
    let cursor = page.next.map(|c| c.to_string());
    let link = cursor.as_ref().map(|cursor| match query.limit {
        Some(limit) => format!("/v1/videos?limit={limit}&cursor={cursor}"),
        None => format!("/v1/videos?cursor={cursor}"),
    });
    let mut headers = HeaderMap::new();
    if let Some(link) = &link {
        headers
            .insert(header::LINK, HeaderValue::from_str(&format!("<{link}>; rel=\"next\"")).expect("a path"));
    }
    Ok((headers, Json(json!({ "items": items, "next_cursor": cursor, "links": { "next": link } }))))
}

/// A row's video's current status, read from its records (two queries a row): what the field's
/// list endpoint showed of each row. A row whose video cannot be read shows none.
struct VideoStatuses<'a> {
    state: &'a AppState,
    caller: Caller,
}

impl RowDetails for VideoStatuses<'_> {
    type Detail = &'static str;

    async fn detail(&self, row: &Row) -> PageResult<Option<&'static str>> {
        Ok(load(self.state, self.caller, &format_id(row.id))
            .await
            .ok()
            .map(|(_, video)| video.status.as_str()))
    }
}

/// `GET /v1/videos/{id}/status`: the processing status fields (#6).
pub(crate) async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (id, video) = load(&state, caller, &id).await?;
    let key = status_id(caller.id, id);
    let fields = state.statuses.get(&key).await?.unwrap_or_default();
    status_body(&state, &key, id, &video, fields).await
}

/// A status as `GET` and `PATCH` answer it, with the time it has left: what shows, over the
/// network, that a status is forgotten after 24 h rather than kept forever.
async fn status_body(
    state: &AppState,
    key: &str,
    id: u64,
    video: &Video,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    let mut body = json!({ "id": format_id(id), "video_status": video.status.as_str(), "fields": fields });
    match state.statuses.store().pttl(&status_tracker::key(key)).await? {
        Ttl::Missing => {}
        Ttl::Persistent => body["expires_in_s"] = Value::Null,
        Ttl::Remaining(left) => body["expires_in_s"] = json!(left.as_millis().div_ceil(1000) as u64),
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusPatch {
    pub fields: Fields,
}

/// `PATCH /v1/videos/{id}/status`: merges `fields` into the status; concurrent merges of
/// disjoint fields all survive. Answers the merged status, shaped like the `GET`'s.
///
/// The merge is capped (`reference::status_tracker::{MAX_FIELDS, MAX_FIELD_BYTES,
/// MAX_STATUS_BYTES}`: 64 fields, 16 KiB of JSON a value, 64 KiB in all): a merge that would
/// break one answers 413 naming the cap and its value, and changes nothing. The caps are
/// checked on the merged status inside the tracker's compare-and-set, so they hold whatever
/// merges run at once. The stack's own writes to a status (the import's `state` and `attempt`,
/// the workers' results) are not capped: a status a client filled still records its
/// processing, and may pass the byte cap by those few fields.
pub(crate) async fn merge_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<StatusPatch>,
) -> ApiResult<Json<Value>> {
    if body.fields.is_empty() || body.fields.len() > 50 {
        return Err(ApiError::BadRequest("fields must hold 1 to 50 entries".to_owned()));
    }
    let (id, video) = load(&state, caller, &id).await?;
    let key = status_id(caller.id, id);
    let merged = state.statuses.merge_capped(&key, body.fields).await?;
    status_body(&state, &key, id, &video, merged).await
}
