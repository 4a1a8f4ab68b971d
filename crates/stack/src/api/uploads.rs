//! Uploads (#12): `POST /v1/uploads` streams a body to storage through the upload sink, `GET /v1/uploads/{id}` reads
//! its metadata back.
//!
//! The order of the checks keeps refusals cheap: the caller (401), the content type (400), a
//! declared `Content-Length` over the cap (413, before a byte is read and before the limit is
//! counted), then the per-user limit (429), then the body, cut off with 413 as soon as the
//! streamed bytes pass the cap. An upload admitted by the limit counts against it whether or
//! not its body turns out to fit: the limit counts admitted attempts, as the seed's counter did.
//!
//! The metadata is a record `upload:{id}` in the records store (so any instance answers the
//! `GET`); the bytes are a file in this process's `upload_dir`. The record is written after the
//! file is in place, so a record never names a missing or partial file.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reference::limit::RateLimiter;
use reference::store::Store;
use reference::upload_sink::SinkError;
use serde::{Deserialize, Serialize};

use super::Json;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, RateLimitInfo};
use crate::state::AppState;

/// What the API says about an upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Upload {
    pub id: String,
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the stored bytes.
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    owner: u64,
    #[serde(flatten)]
    upload: Upload,
}

fn record_key(id: &str) -> String {
    format!("upload:{id}")
}

/// Upload ids are 128 random bits in lowercase hex; anything else names no upload (and never
/// a path outside the upload directory).
fn check_id(id: &str) -> ApiResult<&str> {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(id)
    } else {
        Err(ApiError::NotFound("upload"))
    }
}

fn content_length(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else { return Ok(None) };
    let length = value.to_str().ok().and_then(|v| v.trim().parse().ok());
    length.map(Some).ok_or_else(|| ApiError::BadRequest("malformed Content-Length".to_owned()))
}

/// How the body comes: raw, or as the file part of a multipart/form-data form.
enum Encoding {
    Raw,
    /// The form's boundary.
    Multipart(String),
}

fn check_content_type(headers: &HeaderMap) -> ApiResult<Encoding> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/octet-stream") {
        Ok(Encoding::Raw)
    } else if essence.eq_ignore_ascii_case("multipart/form-data") {
        multer::parse_boundary(content_type)
            .map(Encoding::Multipart)
            .map_err(|e| ApiError::BadRequest(format!("multipart/form-data without a usable boundary: {e}")))
    } else {
        Err(ApiError::BadRequest(
            "expected a body with Content-Type: application/octet-stream or multipart/form-data".to_owned(),
        ))
    }
}

/// `POST /v1/uploads`: 201 `{id, bytes, sha256}` with `Location` and the limit's
/// `RateLimit-*` fields. The body is the upload, or a multipart/form-data form whose first
/// part with a file name is (streamed as it comes, like a raw body).
///
/// A refusal before the body is read (400, 413, 429) says `Connection: close`: the unread
/// body is still on the connection, so the server closes it after answering, and a client
/// that took the connection for reusable would send its next request into a closing socket.
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (info, encoding) = match admit(&state, &caller, &headers).await {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let mut response = refusal.into_response();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(response);
        }
    };
    let id = format!("{:032x}", rand::random::<u128>());
    let limits = state.settings.connections;
    let floor = (state.settings.mutant != Some(crate::Mutant::NoDeadlines))
        .then(|| crate::uploads::Floor::new(limits.body_floor_bytes_per_s, limits.body_grace));
    let slow =
        || ApiError::SlowBody { floor: limits.body_floor_bytes_per_s, grace_s: limits.body_grace.as_secs() };
    let data = crate::uploads::with_floor(body.into_data_stream(), floor.clone());
    let stored = match encoding {
        Encoding::Raw => state.uploads.store(&id, data).await,
        Encoding::Multipart(boundary) => {
            let mut form = multer::Multipart::new(data, boundary);
            let file = loop {
                match form.next_field().await {
                    Ok(Some(field)) if field.file_name().is_some() => break field,
                    Ok(Some(_)) => continue,
                    Ok(None) => return Err(ApiError::BadRequest("the form has no file part".to_owned())),
                    Err(_) if floor.as_ref().is_some_and(|f| f.tripped()) => return Err(slow()),
                    Err(e) => {
                        return Err(ApiError::BadRequest(format!("malformed multipart/form-data: {e}")));
                    }
                }
            };
            state.uploads.store(&id, Box::pin(file)).await
        }
    };
    let stored = stored.map_err(|e| match e {
        _ if floor.as_ref().is_some_and(|f| f.tripped()) => slow(),
        SinkError::TooLarge { max } => ApiError::PayloadTooLarge { max },
        SinkError::Body(message) => ApiError::BadRequest(message),
        SinkError::Write(e) => ApiError::Internal(format!("cannot store upload {id}: {e}")),
    })?;
    let upload = Upload { id: id.clone(), bytes: stored.bytes, sha256: stored.sha256_hex() };
    let record = Record { owner: caller.id, upload };
    let bytes = serde_json::to_vec(&record).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Err(e) = state.backends.records.set(&record_key(&id), bytes, None).await {
        state.uploads.remove(&id).await;
        return Err(e.into());
    }
    let mut response = (StatusCode::CREATED, Json(record.upload)).into_response();
    info.apply(&mut response);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/uploads/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The checks before the body: content type, declared length, the per-user limit.
async fn admit(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
) -> ApiResult<(RateLimitInfo, Encoding)> {
    let encoding = check_content_type(headers)?;
    let max = state.uploads.max_bytes();
    if content_length(headers)?.is_some_and(|length| length > max) {
        return Err(ApiError::PayloadTooLarge { max });
    }
    Ok((RateLimitInfo::admit(state.uploads.limiter().check(&caller.key()).await?, "uploads")?, encoding))
}

/// `GET /v1/uploads/{id}/content`: the upload's bytes, streamed from the file, for its owner;
/// 404 for everyone else, and on a process that did not store it (each keeps its own files).
pub(crate) async fn content(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let record = owned(&state, &caller, &id).await?;
    let file = state.uploads.open(&record.id).await.ok_or(ApiError::NotFound("upload content"))?;
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(record.bytes));
    Ok(response)
}

/// Upload `id` when `caller` owns it; not found otherwise.
async fn owned(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Upload> {
    let id = check_id(id)?;
    let bytes = state.backends.records.get(&record_key(id)).await?.ok_or(ApiError::NotFound("upload"))?;
    let record: Record = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Internal(format!("upload {id} record is corrupt: {e}")))?;
    if record.owner != caller.id {
        return Err(ApiError::NotFound("upload"));
    }
    Ok(record.upload)
}

/// `GET /v1/uploads/{id}`: the upload's metadata for its owner; 404 for everyone else.
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Upload>> {
    owned(&state, &caller, &id).await.map(Json)
}
