//! Binding, serving and graceful shutdown of one stack process.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::app::router;
use crate::backend::{BackendConfig, Backends, OpenError};
use crate::error::ApiError;
use crate::settings::ConnectionLimits;
use crate::settings::Settings;
use crate::slot::ConnectionSlot;
use crate::state::AppState;
use crate::workers::Workers;

/// One stack process's configuration.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub listen: SocketAddr,
    /// Listen with `SO_REUSEPORT`, so that several processes share one port and the kernel
    /// spreads connections over them (as gunicorn's or uvicorn's workers share a socket).
    pub reuse_port: bool,
    pub backends: BackendConfig,
    pub settings: Settings,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            reuse_port: false,
            backends: BackendConfig {
                namespace: "stampede".to_owned(),
                application_name: "stampede-stack".to_owned(),
                ..BackendConfig::default()
            },
            settings: Settings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Backend(#[from] OpenError),
    /// The reason is in the message, not a `source` as well: a chain printed whole (`{:#}`)
    /// would say it twice.
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: std::io::Error },
    #[error("cannot reach the upstream: {0}")]
    Upstream(#[from] upstream::Error),
}

/// A stack serving in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningStack {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    workers: Option<Workers>,
}

impl RunningStack {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting, lets the requests in flight finish, and returns.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = (&mut self.task).await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Some(workers) = self.workers.take() {
            workers.stop().await;
        }
        served
    }

    /// Serves until `signal` resolves, then shuts down gracefully.
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        signal.await;
        self.shutdown().await
    }
}

/// Connections the kernel may hold completed for the stack before it accepts them. The
/// standard library's (and tokio's) 128 overflows when clients open connections in bursts
/// while the server is busy — each new WebSocket session is a new connection — and a dropped
/// SYN costs its client a one-second retransmission. The kernel caps it at `somaxconn`.
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`].
fn bind(addr: std::net::SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    if reuse_port {
        return Err(std::io::Error::other("sharing a port between processes needs SO_REUSEPORT (unix)"));
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Opens the backends, binds, and serves in the background.
pub async fn start(mut config: StackConfig) -> Result<RunningStack, StartError> {
    config.backends.redis_never_reconnect |= config.settings.mutant == Some(crate::Mutant::RedisNoReconnect);
    config.backends.redis_credentials_in_errors |=
        config.settings.mutant == Some(crate::Mutant::CredentialsInErrors);
    let backends = Backends::open(&config.backends).await?;
    let state = AppState::new(config.settings, backends);
    let workers = match &state.settings.upstream {
        Some(link) => Some(crate::workers::start(&state, link, state.settings.workers).await?),
        None => None,
    };
    let listener = bind(config.listen, config.reuse_port)
        .map_err(|reason| StartError::Bind { addr: config.listen, reason })?;
    let addr = listener.local_addr().map_err(|reason| StartError::Bind { addr: config.listen, reason })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = match state.settings.shape {
        crate::settings::Shape::Reference => router(state.clone()),
        crate::settings::Shape::Partner => crate::partner::router(state.clone()),
    };
    let limits = state.settings.connections;
    let bounded = state.settings.mutant != Some(crate::Mutant::NoDeadlines);
    let task = tokio::spawn(serve(listener, app, limits, bounded, state.clone(), stopped));
    tracing::info!(%addr, backends = ?state.backends, "stack serving");
    Ok(RunningStack { addr, state, stop: Some(stop), task, workers })
}

/// Connections over the cap that are answered 503 at once; past these, one is closed unanswered.
const REFUSALS: usize = 64;

/// How long a connection over the cap has to send its request head before it is closed.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a new connection at the cap waits for the slot of the idle connection it evicted.
const EVICTION_WAIT: Duration = Duration::from_millis(50);

/// The cap on connections when none is kept (the `NoDeadlines` mutant).
const UNCAPPED: usize = 1 << 20;

/// How long shutdown waits for the answers in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// How long a connection must have received nothing to count as idle: a request that has just
/// arrived, its head not parsed yet, is never taken for an idle connection and closed.
const QUIET_MS: u64 = 100;

/// How often a connection looks at its own write stall.
const STALL_TICK: Duration = Duration::from_millis(500);

/// The connections served, oldest first, each with what says whether it is idle.
#[derive(Default)]
struct Live {
    next: u64,
    connections: BTreeMap<u64, Arc<Tracked>>,
}

/// One connection as the accept loop sees it.
struct Tracked {
    since: std::time::Instant,
    /// Requests being handled or their answers' bodies being produced.
    in_flight: AtomicUsize,
    /// When (ms after `since`, plus one) a write of the connection's last began to wait on a
    /// client that does not read; 0 while its writes go through.
    blocked_at: AtomicU64,
    /// When (ms after `since`) bytes last came in: a request that has just arrived and is not
    /// parsed yet is not idle.
    active_at: AtomicU64,
    evict: Notify,
    evicted: AtomicBool,
}

impl Tracked {
    fn new() -> Self {
        Self {
            since: std::time::Instant::now(),
            in_flight: AtomicUsize::new(0),
            blocked_at: AtomicU64::new(0),
            active_at: AtomicU64::new(0),
            evict: Notify::new(),
            evicted: AtomicBool::new(false),
        }
    }

    /// No request in flight and nothing waiting to be written: closing it loses nothing.
    fn idle(&self) -> bool {
        let now = self.since.elapsed().as_millis() as u64;
        let quiet = now >= self.active_at.load(Ordering::Acquire) + QUIET_MS;
        self.in_flight.load(Ordering::Acquire) == 0 && self.blocked_at.load(Ordering::Acquire) == 0 && quiet
    }

    /// Bytes came in: the connection is active now.
    fn received(&self) {
        self.active_at.store(self.since.elapsed().as_millis() as u64, Ordering::Release);
    }

    fn wrote(&self, blocked: bool) {
        if blocked {
            let now = self.since.elapsed().as_millis() as u64 + 1;
            let _ = self.blocked_at.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        } else {
            self.blocked_at.store(0, Ordering::Release);
        }
    }

    /// How long its writes have waited on the client.
    fn stalled_for(&self) -> Duration {
        match self.blocked_at.load(Ordering::Acquire) {
            0 => Duration::ZERO,
            at => self.since.elapsed().saturating_sub(Duration::from_millis(at - 1)),
        }
    }
}

impl Live {
    fn add(&mut self) -> (u64, Arc<Tracked>) {
        self.next += 1;
        let tracked = Arc::new(Tracked::new());
        self.connections.insert(self.next, Arc::clone(&tracked));
        (self.next, tracked)
    }

    /// Asks the oldest idle connection not yet asked to close; whether there was one.
    fn evict_idle(&self) -> bool {
        let idle = self.connections.values().find(|c| c.idle() && !c.evicted.load(Ordering::Acquire));
        match idle {
            Some(connection) => {
                connection.evicted.store(true, Ordering::Release);
                connection.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A connection's socket, watched: whether a write waits on a client that does not read.
struct Watched {
    stream: TcpStream,
    tracked: Arc<Tracked>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.tracked.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.tracked.wrote(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.tracked.wrote(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The accept loop: every connection served by hyper's HTTP/1 with the header-read (and idle)
/// deadline, at most the cap at once (WebSocket sessions included). At the cap, the oldest
/// idle connection (no request being handled, no answer waiting on its client: a kept-alive
/// one between requests, a silent or half-sent one) is closed to make room, as a server short
/// of connections reuses its idle ones; with none idle, the new one is answered 503 with
/// `Retry-After`. A connection whose answer its client does not read for
/// `limits.write_stall` is closed. `bounded` false is the `NoDeadlines` mutant: no deadline and no cap, as
/// `axum::serve` serves. On `stopped`: no more accepts, every connection asked to close once
/// its request in flight is answered, and waited for up to [`DRAIN`].
async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    bounded: bool,
    state: AppState,
    mut stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let cap = if bounded { limits.connection_cap() } else { UNCAPPED };
    let slots = Arc::new(Semaphore::new(cap));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let live = Arc::new(Mutex::new(Live::default()));
    let (closing, closed) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tracing::debug!(cap, header_timeout_ms = limits.header_timeout.as_millis() as u64, "accepting");
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => break,
            // Ended connections' tasks, reaped so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (or a connection reset before it was accepted): the
                    // cap should keep the first from happening; wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let mut slot = Arc::clone(&slots).try_acquire_owned().ok();
        if slot.is_none() && live.lock().expect("never poisoned").evict_idle() {
            slot = tokio::time::timeout(EVICTION_WAIT, Arc::clone(&slots).acquire_owned())
                .await
                .ok()
                .and_then(Result::ok);
        }
        match slot {
            Some(slot) => {
                let (id, tracked) = live.lock().expect("never poisoned").add();
                let connection = Connection {
                    app: app.clone(),
                    header_timeout: bounded.then_some(limits.header_timeout),
                    write_stall: bounded.then_some(limits.write_stall),
                    closed: closed.clone(),
                    live: Arc::clone(&live),
                    id,
                    tracked,
                    slot: ConnectionSlot::new(slot),
                    _open: Open::new(&state),
                };
                connections.spawn(connection.serve(stream, peer));
            }
            None => {
                state.metrics.connections_refused.inc();
                match Arc::clone(&refusals).try_acquire_owned() {
                    Ok(refusal) => {
                        tokio::spawn(refuse(stream, cap, refusal));
                    }
                    Err(_) => drop(stream),
                }
            }
        }
    }
    drop(listener);
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A connection counted open in the metrics, until it is dropped however its task ends.
struct Open(AppState);

impl Open {
    fn new(state: &AppState) -> Self {
        state.metrics.connections_open.inc();
        Self(state.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.metrics.connections_open.dec();
    }
}

/// One accepted connection and what it holds: its slot under the cap, its place among the
/// live ones (left when it is dropped, however its task ends).
struct Connection {
    app: Router,
    header_timeout: Option<Duration>,
    write_stall: Option<Duration>,
    closed: watch::Receiver<bool>,
    live: Arc<Mutex<Live>>,
    id: u64,
    tracked: Arc<Tracked>,
    slot: ConnectionSlot,
    _open: Open,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Ok(mut live) = self.live.lock() {
            live.connections.remove(&self.id);
        }
    }
}

/// A request in flight on a connection, until its answer's body is produced or dropped.
struct InFlight(Arc<Tracked>);

impl InFlight {
    fn new(tracked: &Arc<Tracked>) -> Self {
        tracked.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(tracked))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its request in flight until hyper has taken all of it; what it
/// has taken and not yet written shows as a blocked write ([`Watched`]).
struct Answering {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl http_body::Body for Answering {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Connection {
    async fn serve(self, stream: TcpStream, peer: SocketAddr) {
        let app = self.app.clone();
        let tracked = Arc::clone(&self.tracked);
        let slot = self.slot.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(slot.clone());
            let in_flight = InFlight::new(&tracked);
            let answer = app.clone().oneshot(request);
            async move {
                let response = answer.await?;
                Ok::<_, Infallible>(
                    response.map(|body| axum::body::Body::new(Answering { body, _in_flight: in_flight })),
                )
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(self.header_timeout);
        let io = TokioIo::new(Watched { stream, tracked: Arc::clone(&self.tracked) });
        let connection = http.serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        let mut closed = self.closed.clone();
        let closing = async move {
            let _ = closed.wait_for(|closing| *closing).await;
        };
        tokio::pin!(closing);
        let mut tick = tokio::time::interval(STALL_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut asked_to_close = false;
        let served = loop {
            tokio::select! {
                served = connection.as_mut() => break served,
                () = &mut closing => {
                    connection.as_mut().graceful_shutdown();
                    break tokio::time::timeout(DRAIN, connection.as_mut()).await.unwrap_or(Ok(()));
                }
                () = self.tracked.evict.notified() => {
                    // Evicted while idle: closed at once (dropped). A request that began since,
                    // or an answer still being written, is finished first.
                    if self.tracked.idle() {
                        break Ok(());
                    }
                    if !asked_to_close {
                        asked_to_close = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
                _ = tick.tick(), if self.write_stall.is_some() => {
                    if self.write_stall.is_some_and(|bound| self.tracked.stalled_for() > bound) {
                        tracing::debug!(%peer, "closing a connection whose client does not read its answer");
                        break Ok(());
                    }
                }
            }
        };
        if let Err(e) = served {
            tracing::debug!(%peer, error = %e, "connection ended");
        }
    }
}

/// Answers a connection over the cap 503 with `Retry-After` (after reading its request head,
/// so the client reads the answer rather than a reset) and closes it.
async fn refuse(stream: TcpStream, cap: usize, _refusal: OwnedSemaphorePermit) {
    let service = hyper::service::service_fn(move |_request: hyper::Request<Incoming>| async move {
        let refusal = ApiError::Unavailable(format!("the stack serves {cap} connections at once; retry"));
        Ok::<_, Infallible>(refusal.into_response())
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(REFUSAL_TIMEOUT).keep_alive(false);
    let _ =
        tokio::time::timeout(2 * REFUSAL_TIMEOUT, http.serve_connection(TokioIo::new(stream), service)).await;
}
