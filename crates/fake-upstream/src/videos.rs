//! The video-info routes, YouTube-like and TikTok-like, with metadata derived from the id alone
//! (FNV-1a of its bytes), so every run and every instance answers the same.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Extension, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::tokens::Auth;

/// Ids starting with this are unknown videos: left out of the answer, as both APIs do.
pub const MISSING_PREFIX: &str = "missing";
/// Most ids one YouTube request may name.
pub const YOUTUBE_MAX_IDS: usize = 50;
/// Most ids one TikTok query may name.
pub const TIKTOK_MAX_IDS: usize = 20;

/// A video's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    pub id: String,
    pub title: String,
    pub description: String,
    pub channel_id: String,
    pub channel_title: String,
    pub duration_secs: u64,
    /// Unix seconds, between 2015 and 2025.
    pub published: u64,
    pub view_count: u64,
    pub like_count: u64,
    pub comment_count: u64,
}

const ADJECTIVES: [&str; 8] = ["Quick", "Lazy", "Bright", "Quiet", "Bold", "Tiny", "Grand", "Odd"];
const TOPICS: [&str; 8] =
    ["Recipe", "Tutorial", "Vlog", "Review", "Unboxing", "Speedrun", "Interview", "Timelapse"];

impl Video {
    /// The metadata of `id`, or `None` for an id starting with [`MISSING_PREFIX`].
    pub fn of(id: &str) -> Option<Self> {
        if id.starts_with(MISSING_PREFIX) {
            return None;
        }
        let h = fnv1a(id.as_bytes());
        let channel = h % 97;
        let views = (h >> 16) % 10_000_000;
        Some(Self {
            id: id.to_owned(),
            title: format!("{} {} {}", ADJECTIVES[(h % 8) as usize], TOPICS[((h >> 3) % 8) as usize], id),
            description: format!("A fake video with id {id}."),
            channel_id: format!("UC{:022x}", fnv1a(format!("channel-{channel}").as_bytes()) as u128),
            channel_title: format!("Channel {channel}"),
            duration_secs: 15 + (h >> 8) % 3_600,
            published: 1_420_070_400 + (h >> 24) % 315_360_000,
            view_count: views,
            like_count: views / (20 + (h >> 40) % 30),
            comment_count: views / (200 + (h >> 48) % 300),
        })
    }

    fn youtube(&self) -> Value {
        let thumb = |name: &str, width: u32, height: u32| {
            // `.invalid` never resolves: a stack that fetches thumbnails gets no traffic out.
            json!({"url": format!("https://thumbnails.invalid/vi/{}/{name}.jpg", self.id), "width": width, "height": height})
        };
        json!({
            "kind": "youtube#video",
            "etag": format!("{:016x}", fnv1a(format!("etag-{}", self.id).as_bytes())),
            "id": self.id,
            "snippet": {
                "publishedAt": rfc3339(self.published),
                "channelId": self.channel_id,
                "title": self.title,
                "description": self.description,
                "channelTitle": self.channel_title,
                "categoryId": "22",
                "thumbnails": {
                    "default": thumb("default", 120, 90),
                    "medium": thumb("mqdefault", 320, 180),
                    "high": thumb("hqdefault", 480, 360),
                },
            },
            "contentDetails": {"duration": iso8601_duration(self.duration_secs), "dimension": "2d", "definition": "hd"},
            "statistics": {
                "viewCount": self.view_count.to_string(),
                "likeCount": self.like_count.to_string(),
                "commentCount": self.comment_count.to_string(),
            },
        })
    }

    fn tiktok(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "video_description": self.description,
            "duration": self.duration_secs,
            "create_time": self.published,
            "cover_image_url": format!("https://covers.invalid/{}.jpg", self.id),
            "embed_link": format!("https://embed.invalid/v2/{}", self.id),
            "width": 1080,
            "height": 1920,
            "view_count": self.view_count,
            "like_count": self.like_count,
            "comment_count": self.comment_count,
            "share_count": self.comment_count / 2,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct YoutubeQuery {
    id: Option<String>,
}

/// `GET /youtube/v3/videos?id=<id>[,<id>…]`
pub(crate) async fn youtube_videos(
    auth: Option<Extension<Auth>>,
    query: Result<Query<YoutubeQuery>, QueryRejection>,
) -> Response {
    match auth.map(|Extension(auth)| auth).unwrap_or(Auth::Missing) {
        Auth::Valid { .. } => {}
        Auth::Expired { .. } => {
            return youtube_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "expired",
                "access token expired",
            );
        }
        Auth::Missing | Auth::Unknown => {
            return youtube_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "authError",
                "request had invalid authentication credentials: expected a valid OAuth 2 access token",
            );
        }
    }
    let ids: Vec<&str> = match query.as_ref().ok().and_then(|q| q.id.as_deref()) {
        Some(ids) => ids.split(',').map(str::trim).filter(|id| !id.is_empty()).collect(),
        None => Vec::new(),
    };
    if ids.is_empty() {
        return youtube_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "missingRequiredParameter",
            "no filter selected: expected id",
        );
    }
    if ids.len() > YOUTUBE_MAX_IDS {
        return youtube_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "tooManyIds",
            "at most 50 ids per request",
        );
    }
    let items: Vec<Value> = ids.iter().filter_map(|id| Video::of(id)).map(|v| v.youtube()).collect();
    let count = items.len();
    Json(json!({
        "kind": "youtube#videoListResponse",
        "items": items,
        "pageInfo": {"totalResults": count, "resultsPerPage": count},
    }))
    .into_response()
}

fn youtube_error(status: StatusCode, kind: &str, reason: &str, message: &str) -> Response {
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": kind,
        "errors": [{"reason": reason, "message": message}],
    }});
    with_auth_challenge(status, reason, (status, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct TiktokQuery {
    filters: TiktokFilters,
}

#[derive(Debug, Deserialize)]
struct TiktokFilters {
    video_ids: Vec<String>,
}

/// `POST /v2/video/query/` with `{"filters": {"video_ids": [...]}}`
pub(crate) async fn tiktok_video_query(
    auth: Option<Extension<Auth>>,
    body: Result<Json<TiktokQuery>, JsonRejection>,
) -> Response {
    match auth.map(|Extension(auth)| auth).unwrap_or(Auth::Missing) {
        Auth::Valid { .. } => {}
        Auth::Expired { .. } => {
            return tiktok_error(StatusCode::UNAUTHORIZED, "access_token_expired", "access token expired");
        }
        Auth::Missing | Auth::Unknown => {
            return tiktok_error(
                StatusCode::UNAUTHORIZED,
                "access_token_invalid",
                "the access token is invalid or not found in the request",
            );
        }
    }
    let ids = match body {
        Ok(Json(query)) => query.filters.video_ids,
        Err(rejection) => {
            let message =
                format!("expected {{\"filters\": {{\"video_ids\": [...]}}}}: {}", rejection.body_text());
            return tiktok_error(StatusCode::BAD_REQUEST, "invalid_params", &message);
        }
    };
    if ids.is_empty() || ids.len() > TIKTOK_MAX_IDS {
        return tiktok_error(StatusCode::BAD_REQUEST, "invalid_params", "video_ids must name 1 to 20 videos");
    }
    let videos: Vec<Value> = ids.iter().filter_map(|id| Video::of(id)).map(|v| v.tiktok()).collect();
    Json(json!({
        "data": {"videos": videos, "cursor": 0, "has_more": false},
        "error": {"code": "ok", "message": "", "log_id": ""},
    }))
    .into_response()
}

fn tiktok_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "log_id": ""}});
    let reason = if code == "access_token_expired" { "expired" } else { code };
    with_auth_challenge(status, reason, (status, Json(body)).into_response())
}

/// RFC 6750's `WWW-Authenticate` on a 401, saying whether the token expired.
fn with_auth_challenge(status: StatusCode, reason: &str, mut response: Response) -> Response {
    if status == StatusCode::UNAUTHORIZED {
        let value = if reason == "expired" {
            r#"Bearer error="invalid_token", error_description="the access token expired""#
        } else {
            r#"Bearer error="invalid_token""#
        };
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    }
    response
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// `PT#H#M#S`, zero parts left out (`PT0S` for zero).
pub(crate) fn iso8601_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out += &format!("{h}H");
    }
    if m > 0 {
        out += &format!("{m}M");
    }
    if s > 0 || (h == 0 && m == 0) {
        out += &format!("{s}S");
    }
    out
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's civil-from-days).
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let rem = unix % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn iso8601_duration_leaves_out_zero_parts() {
        assert_eq!(iso8601_duration(0), "PT0S");
        assert_eq!(iso8601_duration(253), "PT4M13S");
        assert_eq!(iso8601_duration(3600), "PT1H");
        assert_eq!(iso8601_duration(3723), "PT1H2M3S");
    }
}
