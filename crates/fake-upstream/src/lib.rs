//! A fake upstream: a small HTTP server standing in for the YouTube and TikTok APIs, for any
//! stack that calls them (ours or the user's). Faults are injected and observations read back
//! through a control API, so black-box checks can make the upstream fail and then judge what
//! the stack did to it: calls made with an expired token (#11), refreshes per credential
//! (#11, a double refresh by two schedulers), requests during an open circuit (#7),
//! connections opened and held (#8).
//!
//! [`FakeUpstream::start`] binds it (127.0.0.1, port 0 by default) on the current tokio runtime
//! and returns a [`RunningUpstream`]: its address, and the same operations as the control API,
//! in process. [`ControlClient`] is the control API over HTTP, for a fake upstream in another
//! process. Both speak the types below, serialized as the control API's JSON.
//!
//! # API routes
//!
//! Simplified shapes of the real APIs. The video routes want `Authorization: Bearer
//! <access token>`. No token, or one never issued here or revoked: `401`, counted in
//! [`Stats::unauthorized_calls`]. An access token past its lifetime: `401` with an error that
//! says it expired (`errors[0].reason: "expired"` on YouTube, `code: "access_token_expired"` on
//! TikTok, and `WWW-Authenticate: Bearer error="invalid_token", error_description="the access
//! token expired"` on both), counted in [`Stats::expired_token_calls`] and per account, on
//! arrival, before any fault is applied.
//!
//! - `GET /youtube/v3/videos?id=<id>[,<id>…]` (up to 50 ids; `part` and other parameters are
//!   ignored) → `{"kind": "youtube#videoListResponse", "items": [{"kind", "etag", "id",
//!   "snippet": {"publishedAt", "channelId", "title", "description", "channelTitle",
//!   "thumbnails"}, "contentDetails": {"duration": "PT4M13S", …}, "statistics": {"viewCount",
//!   …}}], "pageInfo": {…}}`. No id: `400`.
//! - `POST /v2/video/query/` with `{"filters": {"video_ids": [<id>, …]}}` (1 to 20 ids) →
//!   `{"data": {"videos": [{"id", "title", "video_description", "duration", "create_time",
//!   "cover_image_url", "embed_link", "view_count", …}], "cursor": 0, "has_more": false},
//!   "error": {"code": "ok", …}}`. A malformed body: `400` `invalid_params`.
//! - `POST /oauth2/token`, form-encoded `grant_type=refresh_token&refresh_token=…&client_id=…`
//!   (`client_key` is accepted for `client_id`; `client_secret` and `scope` are ignored) →
//!   `{"access_token", "expires_in", "token_type": "Bearer", "refresh_token"}`. Unknown,
//!   revoked or already rotated refresh token: `400 {"error": "invalid_grant"}`; a `client_id`
//!   other than the one the account was registered with: `401 invalid_client`; another grant
//!   type: `400 unsupported_grant_type`; a missing field: `400 invalid_request`.
//!
//! Video metadata is derived from the id alone ([`Video::of`]), the same in every run and
//! instance; ids starting with `missing` are unknown videos and left out of the answer. Every
//! other path outside `/_control/` is `404`, counted under the route `unknown`.
//!
//! # Tokens
//!
//! Accounts are registered through the control API; there is no pattern of refresh tokens
//! accepted without registration, so every token the stack holds is one the checks handed it
//! and every refresh is attributed to an account. Access tokens live
//! [`Config::access_token_lifetime`] (`expires_in` is its whole seconds, rounded down) and stay
//! valid until then after a refresh. Refresh tokens rotate by default
//! ([`Config::rotate_refresh_tokens`]): each refresh issues a new one and retires the one
//! presented; presenting a retired one again is `invalid_grant`, counted in
//! [`AccountStats::reused_refresh_tokens`], and the account's current token stays valid (no
//! family revocation, so one double refresh does not lock the stack out). A registration may
//! bring its own refresh token ([`NewAccount::refresh_token`]) for a stack whose credentials are
//! configured in advance.
//!
//! # Control API
//!
//! JSON in and out; errors are `{"error": "<message>"}` with a 4xx status.
//!
//! - `GET /_control/health` → `{"status": "ok"}`
//! - `GET /_control/stats` → [`Stats`]
//! - `POST /_control/reset` → `204`: zeroes the stats and clears the faults. Accounts and
//!   tokens stay, so a stack keeps working across phases of a check. Gauges (in flight, open
//!   connections) stay and their peaks drop to them.
//! - `GET /_control/faults` → a list of [`FaultStatus`]
//! - `PUT /_control/faults` with a list of [`Fault`] → `204`: replaces every fault
//! - `POST /_control/faults` with a [`Fault`] → `204`: adds one after the others
//! - `DELETE /_control/faults` → `204`: clears them (held requests are released)
//! - `POST /_control/accounts` with a [`NewAccount`] (`{}` for all defaults) → `201`
//!   [`Credentials`]; `409` if the name or refresh token is taken
//! - `POST /_control/accounts/{account}/expire` → `204`: its access tokens expire now
//! - `POST /_control/accounts/{account}/revoke` → `204`: its refresh and access tokens are
//!   revoked (`invalid_grant`, `401`)
//!
//! Faults apply to the API routes only, never to `/_control/`, and control requests are not
//! counted. The control API shares the API's listener unless [`Config::control_listen`] gives it
//! its own; then the API listener's connection counts hold the stack's connections alone.
//!
//! # Faults
//!
//! `fail_next` (the next N requests answer a status), `fail_fraction` (a fraction of them,
//! spread evenly and exactly, or at random from a seed), `latency` (fixed milliseconds, summed
//! over matching faults) and `outage`, each optionally limited to one [`Route`]. An outage in
//! `reset` mode closes the request's connection without a response: the client sees a
//! connection error at once, which is what a circuit-breaker check needs (failures that come
//! fast, and requests that are observably received while the breaker should be open). In
//! `hang` mode requests are held until the outage ends, for checks of a client's timeout. An
//! outage ends when cleared or, with `duration_ms`, by itself.
//!
//! Each API request is decided once, on arrival, under one lock, so "the next N" are the next N
//! to arrive and counts are exact under any concurrency. In order: a matching active outage
//! takes the request (`reset`: closed; `hang`: held, then decided afresh when the outage ends);
//! otherwise every matching `latency` adds its delay, then the first matching `fail_next` with
//! failures left, or else the first `fail_fraction` that fires, answers its status after the
//! delay; otherwise the request is served after the delay.
//!
//! # Stats
//!
//! [`Stats`]: requests per route and per status, calls with expired tokens, refreshes per
//! account and per refresh token (and a log of them with times), requests in flight now and at
//! peak, and TCP connections accepted, open now and open at peak, counted in the accept loop
//! itself. With no request straddling a reset, `requests == Σ statuses + Σ dropped + abandoned
//! + in_flight`.
//!
//! # Shutdown
//!
//! [`RunningUpstream::shutdown`] stops accepting, answers held and delayed requests `503`,
//! lets requests being served finish, closes idle keep-alive connections and waits for every
//! connection to end. Dropping the [`RunningUpstream`] instead aborts everything at once.
//!
//! # Dependencies
//!
//! - `axum` — the routes and their extractors (query, form, JSON, path) and the middleware in
//!   front of the API. Without its `tokio`/`http1` features: it never runs a server here.
//! - `hyper` (`server`, `http1`) — drives each accepted connection. Our own accept loop, not
//!   `axum::serve`, so connections are counted exactly at accept and close, one connection can
//!   be closed without a response (outage `reset`), and shutdown is graceful per connection.
//! - `hyper-util` (`tokio`) — `TokioIo`, the adapter between tokio's sockets and hyper.
//! - `tower` (`util`) — `ServiceExt::oneshot`, to call an axum `Router` from hyper's service;
//!   axum already depends on it with that feature.
//! - `tokio` — the listener, timers (latency, outage durations), and `watch`/`Notify` for
//!   fault changes, shutdown and connection closes.
//! - `serde`, `serde_json` — the control API's types and every JSON body.
//! - `reqwest` (`json`) — [`ControlClient`]; the workspace's plain-HTTP/1.1 client.
//! - `thiserror` — [`Error`].

mod client;
mod control;
mod error;
mod faults;
mod gate;
mod oauth;
mod route;
mod server;
mod stats;
mod tokens;
mod videos;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use client::ControlClient;
pub use error::Error;
pub use faults::{Fault, FaultStatus, OutageMode};
pub use route::{CONTROL_PREFIX, Route};
pub use stats::{
    AccountStats, ConnectionStats, InjectedStats, REFRESH_LOG_CAPACITY, RefreshEvent, RouteStats, Stats,
};
pub use tokens::{Credentials, NewAccount, RefreshOutcome};
pub use videos::{MISSING_PREFIX, TIKTOK_MAX_IDS, Video, YOUTUBE_MAX_IDS};

use faults::FaultBook;
use server::{Dispatch, Listener};
use stats::Recorder;
use tokens::Tokens;

/// How a fake upstream runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the API (and, without `control_listen`, the control API) listens. Default
    /// 127.0.0.1:0, a free port.
    pub listen: SocketAddr,
    /// A separate address for the control API, so the API listener's connection counts hold
    /// the stack's connections alone. Default: none, one listener for both.
    pub control_listen: Option<SocketAddr>,
    /// How long an access token lives from its issue. Default one hour, as Google's; short in
    /// tests. `expires_in` reports its whole seconds.
    pub access_token_lifetime: Duration,
    /// Whether each refresh issues a new refresh token and retires the old one. Default true.
    pub rotate_refresh_tokens: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            control_listen: None,
            access_token_lifetime: Duration::from_secs(3600),
            rotate_refresh_tokens: true,
        }
    }
}

/// Starts fake upstreams; see [`FakeUpstream::start`]. Never constructed.
#[derive(Debug)]
pub enum FakeUpstream {}

impl FakeUpstream {
    /// Binds the listener(s) of `config` and serves on the current tokio runtime until the
    /// returned handle is shut down or dropped.
    pub async fn start(config: Config) -> Result<RunningUpstream, Error> {
        let listener = bind(config.listen).await?;
        let addr = local_addr(&listener, config.listen)?;
        let control_listener = match config.control_listen {
            Some(at) => {
                let listener = bind(at).await?;
                let bound = local_addr(&listener, at)?;
                Some((listener, bound))
            }
            None => None,
        };
        let (stop, stopping) = watch::channel(false);
        let shared = Arc::new(Shared {
            tokens: Mutex::new(Tokens::new(config.access_token_lifetime, config.rotate_refresh_tokens)),
            stats: Recorder::new(),
            faults: FaultBook::new(),
            stopping: stopping.clone(),
        });
        let api = api_router(Arc::clone(&shared));
        let control = control::router(Arc::clone(&shared));
        let spawn = |listener, serving| {
            tokio::spawn(server::accept_loop(listener, serving, Arc::clone(&shared), stopping.clone()))
        };
        let (control_addr, tasks) = match control_listener {
            None => {
                let serving = Listener { dispatch: Dispatch { api, control }, counted: true };
                (addr, vec![spawn(listener, serving)])
            }
            Some((control_listener, control_addr)) => {
                let elsewhere = Router::new().fallback(move || not_here(control_addr));
                let api_side = Listener { dispatch: Dispatch { api, control: elsewhere }, counted: true };
                let no_api = Router::new().fallback(|| async { StatusCode::NOT_FOUND });
                let control_side = Listener { dispatch: Dispatch { api: no_api, control }, counted: false };
                (control_addr, vec![spawn(listener, api_side), spawn(control_listener, control_side)])
            }
        };
        Ok(RunningUpstream { addr, control_addr, shared, stop, tasks })
    }
}

/// A fake upstream serving on its own tasks. Dropping it aborts every connection at once;
/// [`Self::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct RunningUpstream {
    addr: SocketAddr,
    control_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningUpstream {
    /// The API listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the base URL to give the stack.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The control API's address (the API's unless [`Config::control_listen`] was set).
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }

    /// What `GET /_control/stats` answers.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// What `POST /_control/reset` does.
    pub fn reset(&self) {
        self.shared.reset();
    }

    pub fn faults(&self) -> Vec<FaultStatus> {
        self.shared.faults.list()
    }

    /// Replaces every fault with `faults`.
    pub fn set_faults(&self, faults: Vec<Fault>) -> Result<(), Error> {
        self.shared.faults.set(faults)
    }

    /// Adds `fault` after the ones in force.
    pub fn add_fault(&self, fault: Fault) -> Result<(), Error> {
        self.shared.faults.add(fault)
    }

    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    pub fn register_account(&self, new: NewAccount) -> Result<Credentials, Error> {
        self.shared.tokens().register(new)
    }

    /// Makes every access token of `account` expired now.
    pub fn expire_access_tokens(&self, account: &str) -> Result<(), Error> {
        self.shared.tokens().expire(account, std::time::Instant::now())
    }

    /// Revokes every refresh and access token of `account`.
    pub fn revoke_account(&self, account: &str) -> Result<(), Error> {
        self.shared.tokens().revoke(account)
    }

    /// Stops accepting, answers held and delayed requests `503`, lets the others finish,
    /// closes idle connections, and returns once every connection has ended.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for task in &mut self.tasks {
            // A task that panicked has nothing left to wait for.
            let _ = task.await;
        }
    }
}

impl Drop for RunningUpstream {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for task in &self.tasks {
            // Aborting an accept loop drops its `JoinSet`, which aborts every connection task.
            task.abort();
        }
    }
}

/// The state every route and the gate share.
#[derive(Debug)]
pub(crate) struct Shared {
    tokens: Mutex<Tokens>,
    pub(crate) stats: Recorder,
    pub(crate) faults: FaultBook,
    stopping: watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn tokens(&self) -> MutexGuard<'_, Tokens> {
        // The token maps stay consistent between statements; keep serving after a panic.
        self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn reset(&self) {
        self.faults.clear();
        self.stats.reset();
    }

    /// Resolves once shutdown has begun.
    pub(crate) async fn stopping(&self) {
        let mut stopping = self.stopping.clone();
        // An error means the handle is gone, which is a shutdown too.
        let _ = stopping.wait_for(|stop| *stop).await;
    }
}

fn api_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/youtube/v3/videos", get(videos::youtube_videos))
        .route("/v2/video/query/", post(videos::tiktok_video_query))
        .route("/oauth2/token", post(oauth::token))
        .fallback(|| async {
            (StatusCode::NOT_FOUND, axum::Json(json!({"error": {"code": 404, "message": "not found"}})))
        })
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&shared), gate::gate))
        .with_state(shared)
}

async fn not_here(control: SocketAddr) -> Response {
    let message = format!("the control API listens on {control}");
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": message}))).into_response()
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, Error> {
    listener.local_addr().map_err(|source| Error::Bind { addr, source })
}
