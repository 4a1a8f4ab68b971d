//! #8 The pooled HTTP client to the upstream (seed 002, "Fix #2: HTTP Connection Pooling").
//!
//! The seed's policy: one client per process, at most 100 upstream connections, 20 idle
//! keep-alive connections kept, a 10 s timeout. [`UpstreamClient`] is that client over reqwest,
//! speaking plain HTTP/1.1 with keep-alive.
//!
//! reqwest (hyper's pool) caps only the *idle* connections per host; it has no cap on the total.
//! The cap is a [`tokio::sync::Semaphore`] shared by every clone of the client and held around
//! each request until its body has been read. It has `max_connections - max_idle_per_host`
//! permits (80 of the seed's 100), not `max_connections`: idle keep-alive connections are open
//! sockets to the upstream too (httpx's `max_connections` counts them), and hyper hands a
//! finished request's connection back to its pool a task-hop *after* the body is read, so a
//! request that takes the freed permit in that gap opens a new connection while the old one is
//! still open. With 100 permits the loopback server saw 101 open connections under load. With
//! the idle allowance held back, busy plus idle connections fit in `max_connections`, and the
//! connections still on their way back to the pool use those 20 spare places. This is a
//! margin, not a proof: reqwest exposes no hook on a connection's lifetime that could hold a
//! permit for exactly as long as the socket is open.
//!
//! The same shape as the components in `reference`: the correct client here, the field's
//! variants in [`mutants`], the invariant as checks over what a server observed in
//! [`invariant`], the workloads that feed them in `suite`, and the loopback server that does
//! the observing in `testing` (those two with the `testing` feature only: test code).

pub mod invariant;
pub mod mutants;
#[cfg(feature = "testing")]
pub mod suite;
#[cfg(feature = "testing")]
pub mod testing;

mod error;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

pub use error::Error;

pub const COMPONENT: &str = "upstream-pool";

/// The pool policy, with the seed's numbers as defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Connections open to the upstream at once, busy or idle, across every clone of the client.
    /// Requests in flight are capped at [`Self::in_flight_limit`] to keep it.
    pub max_connections: usize,
    /// Idle keep-alive connections kept per host for reuse (reqwest's `pool_max_idle_per_host`).
    pub max_idle_per_host: usize,
    /// The whole deadline of one call: waiting for a permit, connecting, sending, and reading
    /// the body. A slow upstream yields [`Error::Timeout`], never a hang.
    pub timeout: Duration,
}

impl UpstreamConfig {
    pub const SEED: Self =
        Self { max_connections: 100, max_idle_per_host: 20, timeout: Duration::from_secs(10) };
}

impl UpstreamConfig {
    /// Requests in flight at once: `max_connections` less the idle connections the pool may keep,
    /// so busy plus idle connections never exceed `max_connections`.
    pub fn in_flight_limit(&self) -> usize {
        self.max_connections.saturating_sub(self.max_idle_per_host)
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self::SEED
    }
}

/// One request to the upstream, relative to the client's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// Starts with `/`; appended to the base URL.
    pub path: String,
    /// Extra request headers (`Authorization`, `Content-Type`, …).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Self {
        Self { method: Method::GET, path: path.into(), headers: Vec::new(), body: Vec::new() }
    }

    pub fn post(path: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self { method: Method::POST, path: path.into(), headers: Vec::new(), body: body.into() }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer {token}`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
}

/// The upstream's answer, body read in full (the connection is free again once it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A client to the upstream: the correct [`UpstreamClient`] and each mutant, so the same
/// workloads and checks run against all of them.
pub trait Upstream: Clone + Send + Sync + 'static {
    /// Sends `request` and reads the whole reply, any status.
    fn send(&self, request: Request) -> impl Future<Output = Result<Reply, Error>> + Send;

    /// `GET path`, expecting a 2xx JSON body.
    fn get_json<T: DeserializeOwned>(&self, path: &str) -> impl Future<Output = Result<T, Error>> + Send {
        let request = Request::get(path);
        async move {
            let path = request.path.clone();
            let reply = self.send(request).await?;
            if !(200..300).contains(&reply.status) {
                return Err(Error::Status { path, status: reply.status });
            }
            serde_json::from_slice(&reply.body).map_err(|source| Error::Json { path, source })
        }
    }
}

/// The pooled client: build one per process at start-up and clone it into every worker; the
/// clones share one connection pool and one connection cap.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    base: Base,
    config: UpstreamConfig,
    client: reqwest::Client,
    permits: Semaphore,
}

impl UpstreamClient {
    /// A client to `base_url` (`http://host:port`, optionally with a path prefix).
    pub fn new(base_url: &str, config: UpstreamConfig) -> Result<Self, Error> {
        let base = Base::parse(base_url)?;
        validate(&config)?;
        let client = build_client(&config)?;
        let permits = Semaphore::new(config.in_flight_limit());
        Ok(Self { inner: Arc::new(Shared { base, config, client, permits }) })
    }

    pub fn config(&self) -> UpstreamConfig {
        self.inner.config
    }

    /// Permits not held right now: [`UpstreamConfig::in_flight_limit`] minus the requests in flight.
    pub fn available_permits(&self) -> usize {
        self.inner.permits.available_permits()
    }
}

impl Upstream for UpstreamClient {
    fn send(&self, request: Request) -> impl Future<Output = Result<Reply, Error>> + Send {
        let shared = &self.inner;
        execute(&shared.client, &shared.base, Some(&shared.permits), shared.config.timeout, request)
    }
}

pub(crate) fn validate(config: &UpstreamConfig) -> Result<(), Error> {
    if config.in_flight_limit() == 0 {
        return Err(Error::Config(
            "max_connections must exceed max_idle_per_host, or no request could ever be in flight; \
             raise max_connections or lower max_idle_per_host",
        ));
    }
    Ok(())
}

/// The reqwest client of the policy: HTTP/1.1 only, keep-alive, `max_idle_per_host` idle
/// connections kept, no proxy (the upstream is addressed directly).
pub(crate) fn build_client(config: &UpstreamConfig) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(config.max_idle_per_host)
        .timeout(config.timeout)
        .no_proxy()
        .build()
        .map_err(Error::Build)
}

/// The base URL, checked once, without a trailing `/`.
#[derive(Debug, Clone)]
pub(crate) struct Base(String);

impl Base {
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| Error::BaseUrl { url: url.to_owned(), reason: e.to_string() })?;
        if parsed.scheme() != "http" {
            return Err(Error::BaseUrl {
                url: url.to_owned(),
                reason: format!("scheme {} is not supported, only plain http", parsed.scheme()),
            });
        }
        Ok(Self(url.trim_end_matches('/').to_owned()))
    }

    fn join(&self, path: &str) -> Result<String, Error> {
        if !path.starts_with('/') {
            return Err(Error::Path { path: path.to_owned() });
        }
        Ok(format!("{}{path}", self.0))
    }
}

/// One call: a permit (when capped), then the request and its whole body, all inside one
/// deadline. The permit is dropped only once the body is read, when the connection is free.
pub(crate) async fn execute(
    client: &reqwest::Client,
    base: &Base,
    permits: Option<&Semaphore>,
    timeout: Duration,
    request: Request,
) -> Result<Reply, Error> {
    let url = base.join(&request.path)?;
    let call = async {
        let _permit = match permits {
            // The semaphore lives as long as the client and is never closed.
            Some(permits) => Some(permits.acquire().await.expect("the connection semaphore is never closed")),
            None => None,
        };
        let mut builder = client.request(request.method.clone(), &url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body);
        }
        let response = builder.send().await.map_err(|e| classify(&request.path, timeout, e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| classify(&request.path, timeout, e))?;
        Ok(Reply { status, body: body.to_vec() })
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout { path: request.path, after: timeout }),
    }
}

fn classify(path: &str, timeout: Duration, error: reqwest::Error) -> Error {
    if error.is_timeout() {
        Error::Timeout { path: path.to_owned(), after: timeout }
    } else {
        // The path is in the message; the URL (the upstream's internal address) is not.
        Error::Request { path: path.to_owned(), source: error.without_url() }
    }
}
