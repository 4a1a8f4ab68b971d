//! A WebSocket session of the mix (`websocket = { ... }` on a `[[load.request]]`): upgrade,
//! wait for the server's first message, send the entry's messages in order, read for
//! `hold_ms`, close. The endpoint's latency runs from the session's due time to the first
//! message (handshake and first answer); the session holds its in-flight slot (open model) or
//! its user (closed) until it has closed.

use std::time::{Duration, Instant};

use client::{Target, WsError, WsSocket};
use futures_util::{SinkExt, StreamExt};
use profile::load::{MixEntry, WsSession};
use profile::template::fill_json;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::mix::Account;
use crate::record::{Completion, Recorder};

/// How long the closing handshake may take before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Why an upgraded session failed: the outcome key it is counted under.
const REFUSED: &str = "ws-refused";
const CLOSED: &str = "ws-closed";

/// One session of `entry` (whose `websocket` is `ws`) by `account` on `instance`, counted
/// open in `recorder` from its upgrade to its close: its outcome, and when its first answer
/// came (the refused upgrade, the first message, or the failure).
pub async fn session(
    target: &Target,
    instance: usize,
    account: &Account,
    entry: &MixEntry,
    ws: &WsSession,
    vars: &[(&str, String)],
    recorder: &Recorder,
) -> (Completion, Instant) {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let token = &account.tokens[instance];
    let mut socket =
        match target.ws_connect(instance, token, ws.token_param.as_deref(), &entry.request, &vars).await {
            Ok((socket, _)) => socket,
            Err(WsError::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().clone().unwrap_or_default();
                let ok = crate::mix::accepted(entry, status, &body);
                return (Completion::Answered { status, ok }, Instant::now());
            }
            Err(e) => return (Completion::Failed(failure(&e)), Instant::now()),
        };
    recorder.session(&entry.name, true);
    let first = tokio::time::timeout(target.timeout, read_until(&mut socket, ws, true)).await;
    let answered = Instant::now();
    let outcome = match first {
        Ok(Ok(())) => talk(&mut socket, ws, &vars).await,
        Ok(Err(why)) => Err(why),
        Err(_) => Err("timeout"),
    };
    if outcome != Err(CLOSED) {
        // A close the server does not answer in time is not the chat failing: the session
        // did what it came for.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            let _ = socket.close(None).await;
            while let Some(Ok(_)) = socket.next().await {}
        })
        .await;
    }
    recorder.session(&entry.name, false);
    let outcome = match outcome {
        Ok(()) => Completion::Answered { status: 101, ok: true },
        Err(why) => Completion::Failed(why),
    };
    (outcome, answered)
}

/// Sends the session's messages and reads for `hold_ms`.
async fn talk(socket: &mut WsSocket, ws: &WsSession, vars: &[(&str, &str)]) -> Result<(), &'static str> {
    for message in &ws.send {
        let text = fill_json(message, vars).to_string();
        socket.send(Message::text(text)).await.map_err(|e| broken(&e))?;
    }
    let hold = Duration::from_millis(ws.hold_ms);
    match tokio::time::timeout(hold, read_until(socket, ws, false)).await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

/// Reads frames until the first text message (`first`) or for ever (the caller's timeout
/// ends it): a refused message or the server's close fails the session.
async fn read_until(socket: &mut WsSocket, ws: &WsSession, first: bool) -> Result<(), &'static str> {
    while let Some(frame) = socket.next().await {
        match frame.map_err(|e| broken(&e))? {
            Message::Text(text) => {
                if refused(&text, &ws.accept_errors) {
                    return Err(REFUSED);
                }
                if first {
                    return Ok(());
                }
            }
            Message::Close(_) => return Err(CLOSED),
            _ => {}
        }
    }
    Err(CLOSED)
}

/// Whether `text` carries an `error` message (alone, or inside a `batch`) whose `code` is not
/// one of `accepted`.
pub fn refused(text: &str, accepted: &[String]) -> bool {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let messages = match value.get("type").and_then(Value::as_str) {
        Some("batch") => value.get("messages").and_then(Value::as_array).cloned().unwrap_or_default(),
        _ => vec![value],
    };
    messages.iter().any(|m| {
        m.get("type").and_then(Value::as_str) == Some("error")
            && !m.get("code").and_then(Value::as_str).is_some_and(|c| accepted.iter().any(|a| a == c))
    })
}

/// A handshake that failed without an answer, by kind, as the HTTP requests' are counted.
fn failure(e: &WsError) -> &'static str {
    match e {
        WsError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => "timeout",
        WsError::Io(_) => "connect",
        _ => "other",
    }
}

/// An upgraded session's socket failing: the connection gone (reset, closed without the
/// closing handshake) is the server closing first; anything else breaks the protocol.
fn broken(e: &WsError) -> &'static str {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => "timeout",
        WsError::Io(_)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => CLOSED,
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_lost_after_the_upgrade_is_the_server_closing_first() {
        use std::io::{Error, ErrorKind};
        use tokio_tungstenite::tungstenite::error::ProtocolError;
        let io = |kind| WsError::Io(Error::from(kind));
        assert_eq!(failure(&io(ErrorKind::ConnectionRefused)), "connect", "before the upgrade");
        assert_eq!(broken(&io(ErrorKind::ConnectionReset)), CLOSED, "after it");
        assert_eq!(broken(&io(ErrorKind::BrokenPipe)), CLOSED);
        assert_eq!(broken(&WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)), CLOSED);
        assert_eq!(broken(&io(ErrorKind::TimedOut)), "timeout");
        assert_eq!(broken(&WsError::Protocol(ProtocolError::NonZeroReservedBits)), "other");
    }

    #[test]
    fn an_error_message_refuses_the_session_unless_its_code_is_accepted() {
        let accepted = vec!["rate_limited".to_owned()];
        let error = r#"{"type":"error","code":"bad_request","message":"no"}"#;
        assert!(refused(error, &accepted));
        assert!(!refused(r#"{"type":"error","code":"rate_limited"}"#, &accepted));
        assert!(refused(r#"{"type":"error","code":"rate_limited"}"#, &[]));
        let batch = r#"{"type":"batch","messages":[{"type":"comment_add"},{"type":"error","code":"x"}]}"#;
        assert!(refused(batch, &accepted), "an error inside a batch counts");
        let fine = r#"{"type":"batch","messages":[{"type":"comment_add","from":"u1"}]}"#;
        assert!(!refused(fine, &accepted));
        assert!(!refused(r#"{"type":"initial_state","project_id":"p"}"#, &[]));
        assert!(!refused("not json", &[]), "a text the protocol does not know is not an error message");
    }
}
