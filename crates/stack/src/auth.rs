//! Users and their bearer tokens. A token is 128 random bits from the thread's CSPRNG, stored
//! as `bearer:{token}` → user id in the records store; a request proves its user with
//! `Authorization: Bearer {token}` (a WebSocket handshake may carry it as `?token=` instead).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use reference::store::Store;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A user record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct User {
    pub id: u64,
    pub name: String,
}

pub(crate) fn user_key(id: u64) -> String {
    format!("user:{id}")
}

fn token_key(token: &str) -> String {
    format!("bearer:{token}")
}

/// Creates a user and its first token.
pub(crate) async fn create(state: &AppState, name: String) -> ApiResult<(User, String)> {
    let id = state.backends.records.incr_by("seq:user", 1).await?;
    let user = User { id: id as u64, name };
    let token = format!("{:032x}", rand::random::<u128>());
    let record = serde_json::to_vec(&user).map_err(|e| ApiError::Internal(e.to_string()))?;
    state.backends.records.set(&user_key(user.id), record, None).await?;
    state.backends.records.set(&token_key(&token), user.id.to_string().into_bytes(), None).await?;
    // Invitations made to this id before it named a user are not theirs.
    state.backends.records.del(&invitations_key(user.id)).await?;
    Ok((user, token))
}

/// The authenticated user of a request: its id, from the bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    pub id: u64,
}

impl Caller {
    /// The user id as the components key it.
    pub(crate) fn key(&self) -> String {
        self.id.to_string()
    }

    /// The user whose token is `token`.
    pub(crate) async fn from_token(state: &AppState, token: &str) -> ApiResult<Self> {
        let token =
            Some(token.trim()).filter(|t| !t.is_empty() && t.len() <= 128).ok_or(ApiError::Unauthorized)?;
        let id = state.backends.records.get(&token_key(token)).await?.ok_or(ApiError::Unauthorized)?;
        let id = std::str::from_utf8(&id)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::Internal(format!("token record for user is corrupt: {id:?}")))?;
        Ok(Caller { id })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized)?;
        let token =
            header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).ok_or(ApiError::Unauthorized)?;
        Caller::from_token(state, token).await
    }
}

/// The caller of a WebSocket handshake: the bearer token from `Authorization`, or, since
/// browsers cannot set headers on a WebSocket, from the `token` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketCaller(pub Caller);

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl FromRequestParts<AppState> for SocketCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Caller::from_request_parts(parts, state).await.map(SocketCaller);
        }
        let query = axum::extract::Query::<TokenQuery>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::Unauthorized)?;
        let token = query.0.token.ok_or(ApiError::Unauthorized)?;
        Caller::from_token(state, &token).await.map(SocketCaller)
    }
}

/// The invitations to projects of user id `user` (`api::projects::invitations`): cleared when
/// the id is registered, so a user never finds an invitation made before they existed.
pub(crate) fn invitations_key(user: u64) -> String {
    format!("user-invitations:{user}")
}
