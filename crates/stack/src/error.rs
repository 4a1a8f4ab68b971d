//! The one error type of the API: every failure is a status and a JSON body
//! `{"error": {"code": …, "message": …}}`, never a bare text or an empty body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reference::daily_quota::QuotaError;
use reference::pagination::PageError;
use reference::status_tracker::StatusError;
use reference::store::StoreError;
use reference::video::VideoError;
use serde_json::json;

use crate::settings::RateLimitHeaders;

/// What a rate-limited response tells the client (the IETF `RateLimit` header fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimitInfo {
    pub limit: u64,
    pub remaining: u64,
    pub reset_after: Duration,
}

impl RateLimitInfo {
    /// A limiter's decision: its header fields when allowed, a 429 naming `what` when not.
    pub(crate) fn admit(decision: reference::limit::Decision, what: &'static str) -> Result<Self, ApiError> {
        let info =
            Self { limit: decision.limit, remaining: decision.remaining, reset_after: decision.reset_after };
        if decision.allowed { Ok(info) } else { Err(ApiError::RateLimited { what, info }) }
    }

    /// Seconds until the limit resets, rounded up, as the headers carry them.
    pub(crate) fn reset_secs(&self) -> u64 {
        self.reset_after.as_millis().div_ceil(1000) as u64
    }

    /// Adds `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` to `response`.
    pub(crate) fn apply(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs()));
    }
}

/// Restates the `RateLimit-*` fields and `Retry-After` of a response in `style`, `now` being
/// when it is sent.
pub(crate) fn restate(style: RateLimitHeaders, headers: &mut HeaderMap, now: SystemTime) {
    let number = |headers: &HeaderMap, name: &str| {
        headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
    };
    let limit = number(headers, "ratelimit-limit");
    let remaining = number(headers, "ratelimit-remaining");
    let reset = number(headers, "ratelimit-reset");
    if style == RateLimitHeaders::Ietf {
        return;
    }
    for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        headers.remove(name);
    }
    let (Some(limit), Some(remaining), Some(reset)) = (limit, remaining, reset) else {
        return;
    };
    match style {
        RateLimitHeaders::Ietf | RateLimitHeaders::RetryAfter => {}
        RateLimitHeaders::Structured => {
            let value = format!("limit={limit}, remaining={remaining}, reset={reset}");
            headers.insert("ratelimit", HeaderValue::from_str(&value).expect("digits and separators"));
        }
        RateLimitHeaders::XRateLimit => {
            let epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() + reset;
            headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
            headers.insert("x-ratelimit-reset", HeaderValue::from(epoch));
        }
        RateLimitHeaders::RetryAfterDate => {
            if let Some(after) = number(headers, "retry-after") {
                let date = httpdate::fmt_http_date(now + Duration::from_secs(after));
                headers.insert(header::RETRY_AFTER, HeaderValue::from_str(&date).expect("an HTTP date"));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed on this route; the Allow header lists the allowed ones")]
    MethodNotAllowed,
    #[error("{what}: limit of {} reached; retry in {} s", .info.limit, .info.reset_secs())]
    RateLimited { what: &'static str, info: RateLimitInfo },
    #[error("body larger than the limit of {max} bytes")]
    PayloadTooLarge { max: u64 },
    #[error(
        "the body came slower than {floor} bytes/s after a grace of {grace_s} s; the connection is closed"
    )]
    SlowBody { floor: u64, grace_s: u64 },
    /// A request that would take something past one of its caps (a video status's fields or
    /// bytes): 413 like a body too large, the body naming the cap (`cap`) and its value
    /// (`limit`) beside the message, so a client can tell which one without parsing prose.
    #[error("{message}")]
    OverCap { cap: &'static str, limit: u64, message: String },
    /// The request cannot be done in the resource's current state (a project's pending
    /// invitations at their bound, its members at theirs); retrying as is will not help.
    #[error("{0}")]
    Conflict(String),
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge { .. } | ApiError::OverCap { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::SlowBody { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::PayloadTooLarge { .. } | ApiError::OverCap { .. } => "payload_too_large",
            ApiError::Conflict(_) => "conflict",
            ApiError::SlowBody { .. } => "request_timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        if let ApiError::OverCap { cap, limit, .. } = &self {
            body["error"]["cap"] = json!(cap);
            body["error"]["limit"] = json!(limit);
        }
        let mut response = (self.status(), axum::Json(body)).into_response();
        match &self {
            ApiError::Unauthorized => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { info, .. } => {
                info.apply(&mut response);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(info.reset_secs().max(1)));
            }
            ApiError::Unavailable(_) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of the body is still coming: the connection cannot be kept.
            ApiError::SlowBody { .. } => {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            ApiError::Internal(message) => tracing::error!(%message, "internal error"),
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Unacknowledged { .. } => {
                ApiError::Unavailable(e.to_string())
            }
            StoreError::Backend(_) | StoreError::WrongKind { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<VideoError> for ApiError {
    fn from(e: VideoError) -> Self {
        match e {
            VideoError::Store(e) => e.into(),
            VideoError::NotFound { .. } => ApiError::NotFound("video"),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<QuotaError> for ApiError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::Store(e) => e.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StatusError> for ApiError {
    fn from(e: StatusError) -> Self {
        match e {
            StatusError::Store(e) => e.into(),
            StatusError::OverCap { cap, .. } => {
                ApiError::OverCap { cap: cap.name(), limit: cap.limit() as u64, message: e.to_string() }
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Store(e) => e.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
