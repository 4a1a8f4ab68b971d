//! The API routes by name: what stats are keyed by and what a fault can be limited to.

use serde::{Deserialize, Serialize};

/// Where the control API lives; nothing under it is counted or faulted.
pub const CONTROL_PREFIX: &str = "/_control";

/// One API route of the fake upstream, by path (the method is not part of it: a wrong method
/// is answered `405` and counted under the route it was sent to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `GET /youtube/v3/videos`
    YoutubeVideos,
    /// `POST /v2/video/query/`
    TiktokVideoQuery,
    /// `POST /oauth2/token`
    OauthToken,
    /// Any other path outside the control API (answered `404`).
    Unknown,
}

impl Route {
    pub const ALL: [Route; 4] =
        [Route::YoutubeVideos, Route::TiktokVideoQuery, Route::OauthToken, Route::Unknown];

    /// The route a request path belongs to.
    pub fn of_path(path: &str) -> Self {
        match path {
            "/youtube/v3/videos" => Route::YoutubeVideos,
            "/v2/video/query/" => Route::TiktokVideoQuery,
            "/oauth2/token" => Route::OauthToken,
            _ => Route::Unknown,
        }
    }

    /// The name used in stats and fault filters (`youtube_videos`, …).
    pub fn name(self) -> &'static str {
        match self {
            Route::YoutubeVideos => "youtube_videos",
            Route::TiktokVideoQuery => "tiktok_video_query",
            Route::OauthToken => "oauth_token",
            Route::Unknown => "unknown",
        }
    }

    /// Whether the route wants `Authorization: Bearer <access token>`.
    pub fn needs_access_token(self) -> bool {
        matches!(self, Route::YoutubeVideos | Route::TiktokVideoQuery)
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `path` belongs to the control API.
pub(crate) fn is_control(path: &str) -> bool {
    path.strip_prefix(CONTROL_PREFIX).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
