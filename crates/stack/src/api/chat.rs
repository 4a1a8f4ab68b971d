//! `GET /v1/projects/{id}/chat`: the project's chat over WebSocket (#17; see [`crate::chat`]).
//!
//! Everything that can refuse a connection is decided before the upgrade, as a JSON error:
//! no or a bad token (401), a project the caller is not a member of (404), not a WebSocket
//! handshake (400), the user's connections at the limit (429 with `RateLimit-*` and
//! `Retry-After`; or, with `refuse_with_close`, the upgrade accepted and closed at once with
//! that close code, as stacks that decide after the upgrade do).

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, State};
use axum::response::Response;

use super::{parse_id, projects};
use crate::auth::SocketCaller;
use crate::chat;
use crate::error::{ApiError, ApiResult, RateLimitInfo};
use crate::slot::HeldSlot;
use crate::state::AppState;

pub(crate) async fn connect(
    State(state): State<AppState>,
    SocketCaller(caller): SocketCaller,
    Path(id): Path<String>,
    HeldSlot(slot): HeldSlot,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "project")?;
    projects::load(&state, caller, id).await?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::BadRequest(format!("expected a WebSocket handshake: {}", rejection.body_text()))
    })?;
    let settings = *state.chat.settings();
    let ticket = match state.chat.admit(caller.id, id).await? {
        Ok(ticket) => ticket,
        Err(reset_after) => {
            if let Some(code) = settings.refuse_with_close {
                return Ok(refuse_with_close(upgrade, code));
            }
            let limit = settings.max_connections as u64;
            let info = RateLimitInfo { limit, remaining: 0, reset_after };
            return Err(ApiError::RateLimited { what: "WebSocket connections", info });
        }
    };
    Ok(upgrade
        // tungstenite reserves its read buffer whole for each socket (128 KiB by default): at
        // 10,000 sessions that alone is 1.25 GB. A frame larger than it is read in several
        // reads, up to the message limit.
        .read_buffer_size(crate::chat::READ_BUFFER_BYTES)
        .max_message_size(settings.max_message_bytes)
        .max_frame_size(settings.max_message_bytes)
        .on_upgrade(move |socket| async move {
            // The session holds its connection's slot under the cap until it ends.
            let _slot = slot;
            chat::run(&state.chat, &state.metrics, socket, ticket).await
        }))
}

/// A connection over the limit accepted and closed at once with `code`.
fn refuse_with_close(upgrade: WebSocketUpgrade, code: u16) -> Response {
    upgrade.on_upgrade(move |mut socket| async move {
        let frame = CloseFrame { code, reason: "too many connections".into() };
        let _ = socket.send(Message::Close(Some(frame))).await;
    })
}
