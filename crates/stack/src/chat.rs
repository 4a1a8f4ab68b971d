//! #17 Project chat over WebSocket (seed 004, `OptimizedFeedbackConsumer`) on the reference
//! session components.
//!
//! - **Admission**: each connection holds a leased slot of its user's
//!   [`ConnectionSlots`] on the shared store, taken before the upgrade (a user at the limit is
//!   answered 429 and never upgraded), renewed by a heartbeat every third of the lease while the
//!   socket is open, given back when it closes (or, if this process dies, when the lease lapses).
//! - **Incoming**: JSON objects with a string `type`; each is counted by [`MessageLimits`] under
//!   its type (the seed's `comment_add`, `typing_indicator`, `reaction_add`; every other type
//!   shares one budget). A message over its limit, malformed, or of a type the server itself
//!   sends gets an `error` message back to its sender only and goes no further. An accepted one
//!   is stamped with `from` (the sender's user id; whatever the client put there is replaced)
//!   and broadcast to the project's other connections.
//! - **Fan-out is per process**: a `tokio::sync::broadcast` channel per project reaches the
//!   connections of this process only. Slots and message limits are shared by every instance
//!   through the store, but a message is not relayed to members connected to another instance:
//!   that needs a pub/sub channel per project, and the stack's only cross-process channel is the
//!   cache-invalidation bus, which carries key patterns with acknowledgements, not messages.
//! - **Outgoing**: every message for a client — broadcasts and its own errors — goes through
//!   the reference [`Batcher`]: frames `{"type": "batch", "messages": [...]}` of at most 10,
//!   none waiting more than 100 ms once the socket is free, one frame on the wire at a time.
//!   Messages keep the order the project's channel gave them, so each sender's stay in order.
//! - **A slow consumer is closed, never buffered without bound**: when 100 messages wait (the
//!   batcher refuses the next) or the connection falls behind the project's channel, the
//!   session ends, the slot is freed, and a close frame 1008 (policy violation) is queued
//!   behind what is already on its way; the socket is dropped once the client has taken it or
//!   after `close_grace`. A client that keeps reading loses nothing.
//!
//! - **A message over `max_message_bytes`** (one frame, or the frames of one message together)
//!   is never read whole: the transport refuses it at the limit, and the session ends with a
//!   close frame 1009 (message too big), its slot freed.
//!
//! On connect the client first gets `{"type": "initial_state", "project_id", "members_online",
//! "connection_id"}`, `members_online` counting the distinct members with a connection to
//! this process's chat of the project, the new one included.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures_util::SinkExt;
use futures_util::stream::{SplitSink, StreamExt};
use prometheus_client::metrics::gauge::Gauge;
use reference::clock::{Clock, Millis};
use reference::fixed_window::FixedWindow;
use reference::store::{Store, StoreResult};
use reference::sync::{Mutex, lock};
use reference::ws_session::batcher::{Batch, Batcher, Batching};
use reference::ws_session::{ConnectionSlots, Connections, MessageLimits};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::backend::{AnyStore, Backends};
use crate::metrics::Metrics;
use crate::settings::{ChatSettings, Settings};

/// Messages one project's channel holds for its slowest connection. A connection that falls
/// further behind is closed as a slow consumer; its outgoing queue (100) overflows long before.
const CHANNEL_CAPACITY: usize = 1024;

/// Each chat socket's read buffer: what one read takes in, not a bound on a message (a larger
/// frame takes several reads). tungstenite reserves it whole per socket, 128 KiB by default.
pub(crate) const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Message types only the server sends.
const RESERVED_TYPES: [&str; 3] = ["batch", "error", "initial_state"];

/// One message on a project's channel, serialized once for every receiver.
#[derive(Debug, Clone)]
struct Broadcast {
    /// The connection that sent it, which does not get it back.
    origin: u64,
    text: Arc<str>,
}

#[derive(Debug)]
struct Room {
    channel: broadcast::Sender<Broadcast>,
    /// Connections to this room by user.
    present: HashMap<u64, usize>,
}

type Rooms = Arc<Mutex<HashMap<u64, Room>>>;

/// The chat of one stack process.
pub struct Chat {
    settings: ChatSettings,
    instance: String,
    slots: ConnectionSlots<AnyStore>,
    limits: MessageLimits<FixedWindow<AnyStore>>,
    store: AnyStore,
    clock: Arc<dyn Clock>,
    rooms: Rooms,
    next_connection: AtomicU64,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Chat {
    pub fn new(settings: &Settings, backends: &Backends) -> Self {
        let chat = settings.chat;
        Self {
            settings: chat,
            instance: settings.instance.clone(),
            slots: ConnectionSlots::new(backends.kv.clone(), "ws:conn", chat.max_connections, chat.lease),
            limits: MessageLimits::new(backends.kv.clone()),
            store: backends.kv.clone(),
            clock: Arc::clone(&backends.clock),
            rooms: Arc::default(),
            next_connection: AtomicU64::new(1),
        }
    }

    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Live connections of `user`, on every instance.
    pub async fn live(&self, user: u64) -> StoreResult<usize> {
        self.slots.live(&user.to_string()).await
    }

    /// Takes a connection slot for `user` in `project`; `Ok(Err(retry))` if the user already
    /// has the maximum, with how long until the next slot lapses if none is given back sooner.
    pub async fn admit(&self, user: u64, project: u64) -> StoreResult<Result<Ticket, Duration>> {
        let seq = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let connection = format!("{}-{seq}-{:08x}", self.instance, rand::random::<u32>());
        let key = user.to_string();
        if !self.slots.connect(&key, &connection).await? {
            let retry =
                self.store.slot_next_expiry(&self.slots.key(&key)).await?.unwrap_or(self.settings.lease);
            return Ok(Err(retry));
        }
        let slot = Slot { slots: self.slots.clone(), user: key, connection: connection.clone(), held: true };
        Ok(Ok(Ticket { project, user, seq, connection, slot }))
    }

    /// Joins `ticket`'s project: the channel to listen on and the members online.
    fn join(&self, ticket: &Ticket) -> (Seat, broadcast::Receiver<Broadcast>, usize) {
        let mut rooms = lock(&self.rooms);
        let room = rooms.entry(ticket.project).or_insert_with(|| Room {
            channel: broadcast::channel(CHANNEL_CAPACITY).0,
            present: HashMap::new(),
        });
        *room.present.entry(ticket.user).or_default() += 1;
        let seat = Seat { rooms: Arc::clone(&self.rooms), project: ticket.project, user: ticket.user };
        (seat, room.channel.subscribe(), room.present.len())
    }

    fn publish(&self, project: u64, message: Broadcast) {
        if let Some(room) = lock(&self.rooms).get(&project) {
            // Fails only with no receiver, and the sender is one.
            let _ = room.channel.send(message);
        }
    }

    fn now(&self) -> Millis {
        self.clock.now()
    }
}

/// A connection's place in its room; leaving is dropping it.
struct Seat {
    rooms: Rooms,
    project: u64,
    user: u64,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get_mut(&self.project) {
            if let Some(n) = room.present.get_mut(&self.user) {
                *n -= 1;
                if *n == 0 {
                    room.present.remove(&self.user);
                }
            }
            if room.present.is_empty() {
                rooms.remove(&self.project);
            }
        }
    }
}

/// A held connection slot. Given back by [`Slot::release`]; if dropped still held (an upgrade
/// that never completed, a session that panicked), given back in the background.
struct Slot {
    slots: ConnectionSlots<AnyStore>,
    user: String,
    connection: String,
    held: bool,
}

impl Slot {
    async fn release(mut self) {
        self.held = false;
        if let Err(e) = self.slots.disconnect(&self.user, &self.connection).await {
            tracing::warn!(error = %e, connection = %self.connection, "cannot free a WebSocket slot; it lapses with its lease");
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let (slots, user, connection) =
            (self.slots.clone(), std::mem::take(&mut self.user), std::mem::take(&mut self.connection));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = slots.disconnect(&user, &connection).await;
            });
        }
    }
}

/// An admitted connection, before its upgrade.
pub struct Ticket {
    project: u64,
    user: u64,
    seq: u64,
    connection: String,
    slot: Slot,
}

/// The gauge of open connections, up while this lives.
struct Open(Gauge);

impl Open {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the writer task is asked to do.
enum Out {
    Batch(Batch<Arc<str>>),
    Close(Option<(u16, &'static str)>),
}

/// Why a session ended.
enum End {
    /// The client closed, or the socket failed.
    Gone,
    /// The server closes it with 1008.
    Policy(&'static str),
    /// The client sent a message over the size limit: the server closes it with 1009.
    TooBig,
}

fn frame(messages: &[Arc<str>]) -> String {
    let mut text = String::with_capacity(32 + messages.iter().map(|m| m.len() + 1).sum::<usize>());
    text.push_str(r#"{"type":"batch","messages":["#);
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(message);
    }
    text.push_str("]}");
    text
}

fn error(code: &str, message: impl Into<String>) -> Value {
    json!({ "type": "error", "code": code, "message": message.into() })
}

fn serialize(value: &Value) -> Arc<str> {
    Arc::from(value.to_string())
}

/// Writes frames in order, reporting each batch written; stops at a close or a failed write.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Out>,
    written: mpsc::Sender<()>,
) {
    while let Some(out) = queue.recv().await {
        match out {
            Out::Batch(messages) => {
                if sink.send(Message::Text(Utf8Bytes::from(frame(&messages)))).await.is_err() {
                    return;
                }
                // The session may be over already; a close can still follow.
                let _ = written.send(()).await;
            }
            Out::Close(Some((code, reason))) => {
                let close = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
                let _ = sink.send(Message::Close(Some(close))).await;
                return;
            }
            Out::Close(None) => break,
        }
    }
    let _ = sink.close().await;
}

/// One connection's session, from the upgrade to the end.
pub async fn run(chat: &Chat, metrics: &Metrics, socket: WebSocket, ticket: Ticket) {
    let open = Open::new(&metrics.ws_connections);
    let (seat, mut channel, online) = chat.join(&ticket);
    let (mut sink, mut stream) = socket.split();
    let initial = json!({
        "type": "initial_state",
        "project_id": ticket.project,
        "members_online": online,
        "connection_id": ticket.connection,
    });
    if sink.send(Message::Text(Utf8Bytes::from(initial.to_string()))).await.is_err() {
        ticket.slot.release().await;
        return;
    }
    // One batch on the wire and a close behind it at most: the batcher hands out the next
    // batch only once the writer reported the last one written.
    let (out, queue) = mpsc::channel(2);
    let (written_tx, mut written) = mpsc::channel(1);
    let writer = tokio::spawn(write(sink, queue, written_tx));
    let mut batcher: Batcher<Arc<str>> = Batcher::new(chat.settings.batch);
    let every = (chat.settings.lease / 3).max(Duration::from_millis(10));
    let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
    let user = ticket.user.to_string();

    let end = 'session: loop {
        let deadline = batcher
            .next_deadline()
            .map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(chat.now())));
        let mut outgoing = None;
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    match receive(chat, ticket.user, &user, &text).await {
                        Ok(message) => {
                            chat.publish(ticket.project, Broadcast { origin: ticket.seq, text: message });
                        }
                        Err(reply) => outgoing = Some(reply),
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    outgoing = Some(serialize(&error("bad_request", "send JSON text frames, not binary")));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Err(e)) if too_big(&e) => break 'session End::TooBig,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break 'session End::Gone,
            },
            received = channel.recv() => match received {
                Ok(message) if message.origin == ticket.seq => {}
                Ok(message) => outgoing = Some(message.text),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    break 'session End::Policy("fell behind the project's messages");
                }
                Err(broadcast::error::RecvError::Closed) => break 'session End::Gone,
            },
            done = written.recv() => match done {
                Some(()) => {
                    if !dispatch(&out, batcher.sent(chat.now())) {
                        break 'session End::Gone;
                    }
                }
                None => break 'session End::Gone,
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                if !dispatch(&out, batcher.poll(chat.now())) {
                    break 'session End::Gone;
                }
            }
            _ = heartbeat.tick() => match chat.slots.heartbeat(&user, &ticket.connection).await {
                Ok(true) => {}
                Ok(false) => break 'session End::Policy("connection slot lapsed"),
                // The lease outlives two missed heartbeats.
                Err(e) => tracing::warn!(error = %e, "WebSocket heartbeat failed"),
            },
        }
        if let Some(message) = outgoing {
            match batcher.push(message, chat.now()) {
                Ok(batch) => {
                    if !dispatch(&out, batch) {
                        break 'session End::Gone;
                    }
                }
                Err(_) => break 'session End::Policy("outgoing queue full: the client is not reading"),
            }
        }
    };

    drop(seat);
    // The writer no longer reports to anyone.
    drop(written);
    ticket.slot.release().await;
    drop(open);
    let close = match end {
        End::Gone => Out::Close(None),
        End::Policy(reason) => Out::Close(Some((close_code::POLICY, reason))),
        End::TooBig => Out::Close(Some((close_code::SIZE, "message too big"))),
    };
    let _ = out.try_send(close);
    drop(out);
    let abort = writer.abort_handle();
    if tokio::time::timeout(chat.settings.close_grace, writer).await.is_err() {
        abort.abort();
    }
}

/// Whether a socket's read failed on a message or frame over the size limit (tungstenite's
/// capacity error, which axum passes on wrapped).
fn too_big(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|inner| inner.downcast_ref::<tungstenite::Error>())
        .is_some_and(|inner| matches!(inner, tungstenite::Error::Capacity(_)))
}

/// Hands a due batch to the writer; false if the writer is gone.
fn dispatch(out: &mpsc::Sender<Out>, batch: Option<Batch<Arc<str>>>) -> bool {
    match batch {
        Some(batch) => out.try_send(Out::Batch(batch)).is_ok(),
        None => true,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Checks one incoming message: the text to broadcast, or the error to send back.
async fn receive(chat: &Chat, user: u64, key: &str, text: &str) -> Result<Arc<str>, Arc<str>> {
    let fail = |code: &str, message: String| serialize(&error(code, message));
    let mut message: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| fail("bad_request", format!("expected a JSON object: {e}")))?;
    let kind = match message.get("type") {
        Some(Value::String(kind)) if !kind.is_empty() && kind.len() <= 64 => kind.clone(),
        _ => {
            return Err(fail(
                "bad_request",
                "every message needs a \"type\" string of 1 to 64 characters".into(),
            ));
        }
    };
    if RESERVED_TYPES.contains(&kind.as_str()) {
        return Err(fail("bad_request", format!("type {kind:?} is sent by the server only")));
    }
    let decision = match chat.limits.check(key, &kind).await {
        Ok(decision) => decision,
        Err(e) => return Err(fail("unavailable", format!("cannot check the message limit: {e}; retry"))),
    };
    if !decision.allowed {
        let reset = decision.reset_after.as_millis().div_ceil(1000) as u64;
        let mut reply =
            error("rate_limited", format!("{kind}: limit of {} reached; retry in {reset} s", decision.limit));
        reply["message_type"] = json!(kind);
        reply["limit"] = json!(decision.limit);
        reply["retry_after_s"] = json!(reset);
        return Err(serialize(&reply));
    }
    message.insert("from".to_owned(), json!(user));
    Ok(serialize(&Value::Object(message)))
}
