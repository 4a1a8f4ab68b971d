//! `POST /oauth2/token`: the refresh-token grant, form-encoded, as RFC 6749 §6 has it.

use std::sync::Arc;

use axum::Form;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::Shared;
use crate::tokens::RefreshOutcome;

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    /// TikTok calls it `client_key`.
    #[serde(alias = "client_key")]
    client_id: Option<String>,
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            shared.stats.refresh(None, Err(RefreshOutcome::Unknown));
            let description = format!("expected a form-encoded body: {}", rejection.body_text());
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &description);
        }
    };
    match form.grant_type.as_deref() {
        Some("refresh_token") => {}
        Some(other) => {
            shared.stats.refresh(None, Err(RefreshOutcome::Unknown));
            let description = format!("grant_type {other} is not supported here; use refresh_token");
            return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &description);
        }
        None => {
            shared.stats.refresh(None, Err(RefreshOutcome::Unknown));
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is missing");
        }
    }
    let Some(presented) = form.refresh_token.filter(|t| !t.is_empty()) else {
        shared.stats.refresh(None, Err(RefreshOutcome::Unknown));
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "refresh_token is missing");
    };
    let (account, result) = shared.tokens().refresh(&presented, form.client_id.as_deref());
    let known = account.as_deref().map(|account| (presented.as_str(), account));
    shared.stats.refresh(known, result.as_ref().map(|_| ()).map_err(|outcome| *outcome));
    match result {
        Ok(issued) => {
            let mut response = Json(json!({
                "access_token": issued.access_token,
                "expires_in": issued.expires_in,
                "token_type": "Bearer",
                "refresh_token": issued.refresh_token,
            }))
            .into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(RefreshOutcome::WrongClient) => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id does not match the refresh token's client",
        ),
        Err(RefreshOutcome::Reused) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token already used: it was rotated by an earlier refresh",
        ),
        Err(RefreshOutcome::Revoked) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "refresh token has been revoked")
        }
        Err(RefreshOutcome::Unknown | RefreshOutcome::Refreshed) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "refresh token is unknown")
        }
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}
