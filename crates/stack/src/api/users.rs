//! `POST /v1/users`: registration. Open: the harness creates the users it drives.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Json;
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    pub name: String,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest("name must be 1 to 100 characters".to_owned()));
    }
    let (user, token) = auth::create(&state, name.to_owned()).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": user.id, "name": user.name, "token": token }))))
}
