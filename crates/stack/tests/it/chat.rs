//! `GET /v1/projects/{id}/chat` (#17): admission, limits, fan-out, batching, slow consumers.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

use crate::support::{Harness, User, bounded, eventually};

type Ws = WebSocketStream<TcpStream>;

/// How a test authenticates its handshake.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Header(&'a str),
    Query(&'a str),
    None,
}

async fn handshake(h: &Harness, project: u64, auth: Auth<'_>, stream: TcpStream) -> Result<Ws, WsError> {
    let path = match auth {
        Auth::Query(token) => format!("/v1/projects/{project}/chat?token={token}"),
        _ => format!("/v1/projects/{project}/chat"),
    };
    let mut request = h.ws_url(&path).into_client_request()?;
    if let Auth::Header(token) = auth {
        request
            .headers_mut()
            .insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    }
    client_async(request, stream).await.map(|(ws, _)| ws)
}

async fn try_connect(h: &Harness, project: u64, auth: Auth<'_>) -> Result<Ws, WsError> {
    let stream = TcpStream::connect(h.stack.addr()).await.unwrap();
    handshake(h, project, auth, stream).await
}

/// Connects `user` to `project`'s chat and reads the initial state.
async fn connect(h: &Harness, project: u64, user: &User) -> (Ws, Value) {
    let mut ws = try_connect(h, project, Auth::Query(&user.token)).await.expect("a member connects");
    let initial = next_frame(&mut ws).await.expect("an initial state frame");
    assert_eq!(initial["type"], "initial_state");
    (ws, initial)
}

/// The status and JSON body of a refused handshake.
fn refusal(result: Result<Ws, WsError>) -> (u16, Value) {
    match result {
        Err(WsError::Http(response)) => {
            let body = response.body().as_deref().expect("a body with the refusal");
            (response.status().as_u16(), serde_json::from_slice(body).expect("a JSON error body"))
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the handshake succeeded"),
    }
}

/// The next text frame as JSON; `None` once the connection is over.
async fn next_frame(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).expect("JSON frames")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The messages of the next batch frame.
async fn next_batch(ws: &mut Ws) -> Vec<Value> {
    let frame = next_frame(ws).await.expect("a batch frame");
    assert_eq!(frame["type"], "batch", "{frame}");
    frame["messages"].as_array().expect("batch messages").clone()
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.expect("the stack reads");
}

async fn close(mut ws: Ws) {
    ws.close(None).await.expect("close frame sent");
    while ws.next().await.is_some_and(|m| m.is_ok()) {}
}

#[tokio::test]
async fn members_connect_by_header_or_query_token_and_get_the_initial_state() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let (owner, member) = (h.user("owner").await, h.user("member").await);
        let project = h.project(&owner, &[&member]).await;
        let mut by_header = try_connect(&h, project, Auth::Header(&owner.token)).await.expect("header auth");
        let initial = next_frame(&mut by_header).await.unwrap();
        assert_eq!(initial["type"], "initial_state");
        assert_eq!(initial["project_id"], project);
        assert_eq!(initial["members_online"], 1);
        let (second, initial) = connect(&h, project, &member).await;
        assert_eq!(initial["members_online"], 2);
        // A second connection of a member online already does not count twice.
        let (third, initial) = connect(&h, project, &member).await;
        assert_eq!(initial["members_online"], 2);
        let gauge = &h.stack.state().metrics.ws_connections;
        assert_eq!(gauge.get(), 3);
        for ws in [by_header, second, third] {
            close(ws).await;
        }
        eventually("the gauge is back to 0", || async { gauge.get() == 0 }).await;
    })
    .await;
}

#[tokio::test]
async fn strangers_get_404_and_missing_tokens_401_before_any_upgrade() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let (owner, stranger) = (h.user("owner").await, h.user("stranger").await);
        let project = h.project(&owner, &[]).await;
        let (status, body) = refusal(try_connect(&h, project, Auth::Query(&stranger.token)).await);
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
        let (status, _) = refusal(try_connect(&h, project, Auth::Header(&stranger.token)).await);
        assert_eq!(status, 404);
        let (status, _) = refusal(try_connect(&h, project + 1000, Auth::Query(&owner.token)).await);
        assert_eq!(status, 404);
        let (status, body) = refusal(try_connect(&h, project, Auth::None).await);
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
        let (status, _) = refusal(try_connect(&h, project, Auth::Query("not-a-token")).await);
        assert_eq!(status, 401);
        // Not a handshake at all.
        let plain = h
            .http
            .get(h.url(&format!("/v1/projects/{project}/chat")))
            .bearer_auth(&owner.token)
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 400);
        assert_eq!(h.stack.state().metrics.ws_connections.get(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_sixth_connection_is_refused_and_a_closed_one_frees_its_slot() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let user = h.user("busy").await;
        let project = h.project(&user, &[]).await;
        let mut open = Vec::new();
        for _ in 0..5 {
            open.push(connect(&h, project, &user).await.0);
        }
        let (status, body) = refusal(try_connect(&h, project, Auth::Query(&user.token)).await);
        assert_eq!(status, 429);
        assert_eq!(body["error"]["code"], "rate_limited");
        let chat = &h.stack.state().chat;
        assert_eq!(chat.live(user.id).await.unwrap(), 5);
        assert_eq!(h.stack.state().metrics.ws_connections.get(), 5);
        close(open.pop().unwrap()).await;
        eventually("the closed connection's slot is free", || async {
            chat.live(user.id).await.unwrap() == 4
        })
        .await;
        open.push(connect(&h, project, &user).await.0);
        let (status, _) = refusal(try_connect(&h, project, Auth::Query(&user.token)).await);
        assert_eq!(status, 429, "still five live");
        // A dropped TCP connection, no close handshake, frees its slot too.
        drop(open.pop());
        eventually("the dropped connection's slot is free", || async {
            chat.live(user.id).await.unwrap() == 4
        })
        .await;
        for ws in open {
            close(ws).await;
        }
        eventually("every slot is free", || async { chat.live(user.id).await.unwrap() == 0 }).await;
    })
    .await;
}

#[tokio::test]
async fn heartbeats_keep_an_open_connections_slot_past_its_lease() {
    bounded(async {
        let lease = Duration::from_millis(1500);
        let h = Harness::start(|s| {
            s.chat.max_connections = 1;
            s.chat.lease = lease;
        })
        .await;
        let user = h.user("steady").await;
        let project = h.project(&user, &[]).await;
        let (ws, _) = connect(&h, project, &user).await;
        // Without its heartbeats the slot would have lapsed twice over.
        tokio::time::sleep(lease * 3).await;
        let (status, _) = refusal(try_connect(&h, project, Auth::Query(&user.token)).await);
        assert_eq!(status, 429);
        close(ws).await;
        let chat = &h.stack.state().chat;
        eventually("the slot is free", || async { chat.live(user.id).await.unwrap() == 0 }).await;
        close(connect(&h, project, &user).await.0).await;
    })
    .await;
}

#[tokio::test]
async fn over_its_type_limit_a_message_gets_an_error_back_and_is_not_broadcast() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let (typist, reader) = (h.user("typist").await, h.user("reader").await);
        let project = h.project(&typist, &[&reader]).await;
        let (mut a, _) = connect(&h, project, &typist).await;
        let (mut b, _) = connect(&h, project, &reader).await;
        let limit = reference::ws_session::message_limit("typing_indicator").max;
        for i in 0..=limit {
            send(&mut a, json!({ "type": "typing_indicator", "is_typing": true, "n": i })).await;
        }
        send(&mut a, json!({ "type": "note", "text": "done" })).await;
        let mut typing = Vec::new();
        'read: loop {
            for message in next_batch(&mut b).await {
                assert_ne!(message["type"], "error", "errors go to their sender only: {message}");
                if message["type"] == "note" {
                    break 'read;
                }
                assert_eq!(message["from"], typist.id);
                typing.push(message["n"].as_u64().unwrap());
            }
        }
        assert_eq!(typing, (0..limit).collect::<Vec<_>>(), "exactly the messages within the limit, in order");
        let errors: Vec<Value> = next_batch(&mut a).await;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0]["type"], "error");
        assert_eq!(errors[0]["code"], "rate_limited");
        assert_eq!(errors[0]["message_type"], "typing_indicator");
        assert_eq!(errors[0]["limit"], limit);
        // Malformed messages are answered too, and the connection stays up.
        a.send(Message::text("not json")).await.unwrap();
        send(&mut a, json!({ "type": "batch" })).await;
        send(&mut a, json!({ "kind": "no type" })).await;
        let mut codes = Vec::new();
        while codes.len() < 3 {
            codes.extend(next_batch(&mut a).await.iter().map(|m| m["code"].as_str().unwrap().to_owned()));
        }
        assert_eq!(codes, ["bad_request"; 3]);
        close(a).await;
        close(b).await;
    })
    .await;
}

#[tokio::test]
async fn a_senders_messages_arrive_in_order_none_lost_batched_by_up_to_ten() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let (sender, reader) = (h.user("sender").await, h.user("reader").await);
        let project = h.project(&sender, &[&reader]).await;
        let (mut a, _) = connect(&h, project, &sender).await;
        let (mut b, _) = connect(&h, project, &reader).await;
        let count = 60;
        for seq in 0..count {
            // `from` is the stack's to say.
            send(&mut a, json!({ "type": "note", "seq": seq, "from": 999_999 })).await;
        }
        let mut seen = Vec::new();
        let mut frames = Vec::new();
        while seen.len() < count {
            let batch = next_batch(&mut b).await;
            frames.push(batch.len());
            for message in batch {
                assert_eq!(message["from"], sender.id);
                seen.push(message["seq"].as_u64().unwrap() as usize);
            }
        }
        assert_eq!(seen, (0..count).collect::<Vec<_>>(), "in order, none lost, none twice");
        assert!(frames.iter().all(|&n| (1..=10).contains(&n)), "frame sizes {frames:?}");
        assert!(frames.iter().any(|&n| n > 1), "messages sent back to back share frames: {frames:?}");
        close(a).await;
        close(b).await;
    })
    .await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_1008_and_frees_its_slot() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let owner = h.user("owner").await;
        let slow = h.user("slow").await;
        let mut senders = Vec::new();
        for i in 0..8 {
            senders.push(h.user(&format!("sender-{i}")).await);
        }
        let members: Vec<&User> = std::iter::once(&slow).chain(&senders).collect();
        let project = h.project(&owner, &members).await;
        // A receive window of a few KiB, so the stack's writes back up quickly.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(h.stack.addr()).await.unwrap();
        let mut reader = handshake(&h, project, Auth::Query(&slow.token), stream).await.expect("connects");
        assert_eq!(next_frame(&mut reader).await.unwrap()["type"], "initial_state");

        let chat = &h.stack.state().chat;
        let text = "x".repeat(60 * 1024);
        let mut seq = 0u64;
        let mut kinds = Vec::new();
        kinds.extend(std::iter::repeat_n("note", 100));
        kinds.extend(std::iter::repeat_n("typing_indicator", 30));
        kinds.extend(std::iter::repeat_n("reaction_add", 20));
        kinds.extend(std::iter::repeat_n("comment_add", 10));
        'send: for sender in &senders {
            let (mut ws, _) = connect(&h, project, sender).await;
            for kind in &kinds {
                if chat.live(slow.id).await.unwrap() == 0 {
                    close(ws).await;
                    break 'send;
                }
                send(&mut ws, json!({ "type": kind, "seq": seq, "text": text })).await;
                seq += 1;
            }
            close(ws).await;
        }
        eventually("the slow reader's slot is freed", || async { chat.live(slow.id).await.unwrap() == 0 })
            .await;
        assert_eq!(h.stack.state().metrics.ws_connections.get(), 0);

        // What was on its way arrives, in order, then the close frame.
        let mut next = 0;
        let code = loop {
            match reader.next().await {
                Some(Ok(Message::Text(frame))) => {
                    let frame: Value = serde_json::from_str(&frame).unwrap();
                    for message in frame["messages"].as_array().unwrap() {
                        assert_eq!(message["seq"], next);
                        next += 1;
                    }
                }
                Some(Ok(Message::Close(frame))) => break frame.map(|f| f.code),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("the connection failed instead of closing: {e}"),
                None => panic!("the connection ended without a close frame"),
            }
        };
        assert_eq!(code, Some(CloseCode::Policy));
        assert!(next < seq, "the slow reader was cut off before everything reached it ({next} of {seq})");
    })
    .await;
}

/// The close frame that ends `ws`, skipping what comes before it; panics if the connection
/// fails or ends without one.
async fn close_code(ws: &mut Ws) -> (Option<CloseCode>, String) {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => {
                return (
                    frame.as_ref().map(|f| f.code),
                    frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                );
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("the connection failed instead of closing: {e}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_closed_with_1009_and_frees_its_slot() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let owner = h.user("owner").await;
        let project = h.project(&owner, &[]).await;
        let chat = &h.stack.state().chat;
        let limit = chat.settings().max_message_bytes;
        // At the limit a message is read: not JSON, it gets an error back on an open socket.
        let (mut ws, _) = connect(&h, project, &owner).await;
        ws.send(Message::text("x".repeat(limit))).await.expect("the stack reads");
        let reply = next_batch(&mut ws).await;
        assert_eq!(reply[0]["code"], "bad_request", "{reply:?}");
        close(ws).await;
        // One byte over, and far over: closed with 1009 and a reason.
        for size in [limit + 1, 4 * limit] {
            let (mut ws, _) = connect(&h, project, &owner).await;
            assert_eq!(chat.live(owner.id).await.unwrap(), 1);
            ws.send(Message::text("x".repeat(size))).await.expect("the frame is sent");
            let (code, reason) = close_code(&mut ws).await;
            assert_eq!(code, Some(CloseCode::Size), "{size} bytes: closed with {code:?} {reason:?}");
            assert_eq!(reason, "message too big");
            eventually("the slot is freed", || async { chat.live(owner.id).await.unwrap() == 0 }).await;
        }
        eventually("the gauge is back to 0", || async { h.stack.state().metrics.ws_connections.get() == 0 })
            .await;
    })
    .await;
}

/// A WebSocket session keeps its connection's slot under the cap after the upgrade: with a cap
/// of one, a session open leaves no room for another connection (503), and its end frees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_session_holds_its_connection_slot_under_the_cap() {
    bounded(async {
        let h = Harness::start(|s| s.connections.max_connections = Some(1)).await;
        let owner = h.user("owner").await;
        let project = h.project(&owner, &[]).await;
        // The harness client's kept-alive connection, quiet past 100 ms, is idle: the session's
        // evicts it.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (ws, _) = connect(&h, project, &owner).await;
        let answer = reqwest::Client::new().get(h.url("/healthz")).send().await.unwrap();
        assert_eq!(answer.status(), 503, "a connection while the session holds the only slot");
        drop(ws);
        eventually("the session's slot is free", || async {
            reqwest::Client::new().get(h.url("/healthz")).send().await.is_ok_and(|a| a.status() == 200)
        })
        .await;
    })
    .await;
}
