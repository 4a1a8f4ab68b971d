//! The limited third-party publish endpoint (#1) and the quota and usage read-outs (#3, #4).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reference::daily_quota::Quota as _;
use reference::limit::RateLimiter;
use reference::usage_tracker::UsageTracking;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Json;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, RateLimitInfo};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Publish {
    pub video_id: String,
    pub platform: String,
}

/// `POST /v1/publish`: at most `publish_limit` per user per fixed window. Every answer, 202 or
/// 429, carries the `RateLimit-*` fields of the window it was decided in.
pub(crate) async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Publish>,
) -> ApiResult<Response> {
    if !matches!(body.platform.as_str(), "youtube" | "tiktok") {
        return Err(ApiError::BadRequest(format!("unknown platform {:?}; youtube or tiktok", body.platform)));
    }
    if body.video_id.is_empty() || body.video_id.chars().count() > 64 {
        return Err(ApiError::BadRequest("video_id must be 1 to 64 characters".to_owned()));
    }
    let info = RateLimitInfo::admit(state.publish.check(&caller.key()).await?, "publish")?;
    let body = json!({ "accepted": true, "video_id": body.video_id, "platform": body.platform });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    info.apply(&mut response);
    Ok(response)
}

/// `GET /v1/quota`: today's units in the quota's zone.
pub(crate) async fn quota(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let used = state.quota.used(&caller.key()).await?;
    let policy = state.settings.quota;
    let reset = super::videos::quota_reset(&state)?;
    Ok(Json(json!({
        "used": used,
        "limit": policy.limit,
        "remaining": policy.limit.saturating_sub(used),
        "units_per_import": policy.units_per_import,
        "warn": policy.warns_at(used),
        "zone": state.settings.quota_zone.iana_name(),
        "resets_in_s": reset.as_secs(),
    })))
}

/// `GET /v1/usage`: the upstream API plan's counters (#4), shared by the whole stack.
pub(crate) async fn usage(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Value>> {
    let usage = state.usage.usage().await?;
    let limits = state.settings.usage;
    Ok(Json(json!({
        "day": usage.day,
        "hour": usage.hour,
        "total": usage.total,
        "succeeded": usage.succeeded,
        "failed": usage.failed,
        "limits": { "per_day": limits.per_day, "per_hour": limits.per_hour },
    })))
}
