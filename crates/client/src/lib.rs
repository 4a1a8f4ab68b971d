//! The client of a stack under test (the *target*): its instances, logical users with a token
//! per instance, requests sent from the profile's templates and timed on one monotonic
//! [`Stopwatch`], WebSocket handshakes, and its Prometheus metrics. The checks and the load
//! generator both drive a target through it.
//!
//! Why these dependencies: reqwest is the HTTP client of the card (plain HTTP/1.1 here; its
//! `stream` feature lets a caller stream an upload body); tokio-tungstenite is the WebSocket
//! client (the one the reference stack's server side is built on, `ws://` only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
pub use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use profile::Profile;
use profile::template::{RequestTemplate, fill, fill_json};

/// A client's WebSocket connection.
pub type WsSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a target could not be used at all (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("target {url}: creating a user failed: {reason}")]
    Users { url: String, reason: String },
    /// The check cannot run as configured (exit code 2): a setting it needs is missing.
    #[error("check {check:?}: {reason}")]
    Configuration { check: String, reason: String },
    /// The target refused what a check needs before it starts (a project, a resource).
    #[error("target {url}: setting the check up failed: {reason}")]
    Setup { url: String, reason: String },
    /// The fake upstream's control API failed.
    #[error("fake upstream control {url}: {reason}")]
    Control { url: String, reason: String },
}

/// What was sent and what came back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: Option<u16>,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub invoke_us: u64,
    pub complete_us: u64,
    /// Why there was no answer.
    pub error: Option<String>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn header_u64(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.trim().parse().ok())
    }
}

/// A logical user: its token on each instance.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub tokens: Vec<String>,
}

/// The stack under check.
#[derive(Debug, Clone)]
pub struct Target {
    pub urls: Vec<String>,
    pub profile: Arc<Profile>,
    pub http: reqwest::Client,
    pub clock: Stopwatch,
    pub timeout: Duration,
    /// Distinguishes this run's users and resources from earlier runs' on a shared stack.
    pub run: String,
    /// The control API of the fake upstream the target calls, when it calls one stampede can
    /// drive (the checks that inject upstream faults and read what the upstream saw use it).
    pub upstream_control: Option<String>,
    /// Strings the target holds and must never show, each with how a report names it (never by
    /// its value): the passwords in the URLs of the stores a stack stampede started uses, the
    /// upstream refresh token it handed that stack. The `secrets` check looks for them.
    pub secrets: Secrets,
}

/// Secrets by label (`the password in --redis`), the values never shown: `{:?}` prints the
/// labels alone.
#[derive(Clone, Default)]
pub struct Secrets(pub Vec<(String, String)>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(label, _)| label)).finish()
    }
}

impl Target {
    pub fn new(urls: Vec<String>, profile: Profile, run: String) -> Result<Self, reqwest::Error> {
        let timeout = Duration::from_millis(profile.defaults.timeout_ms);
        let http = client(timeout, 256)?;
        Ok(Self {
            urls: urls.into_iter().map(|u| u.trim_end_matches('/').to_owned()).collect(),
            profile: Arc::new(profile),
            http,
            clock: Stopwatch::new(),
            timeout,
            run,
            upstream_control: None,
            secrets: Secrets::default(),
        })
    }

    /// The target as the checks reach it: with `processes` above 1 behind each URL (the
    /// profile's `[defaults] processes`), each URL repeated [`reads_to_reach`] times and every
    /// request on a fresh connection, so that a check's "every instance" reaches every process
    /// (a balancer spreads connections, not the requests of a kept-alive one); else itself.
    pub fn spread(&self) -> Target {
        let processes = self.profile.defaults.processes;
        if processes <= 1 {
            return self.clone();
        }
        let mut spread = self.clone();
        let reads = reads_to_reach(processes);
        spread.urls = self.urls.iter().flat_map(|url| std::iter::repeat_n(url.clone(), reads)).collect();
        match client(self.timeout, 0) {
            Ok(http) => spread.http = http,
            Err(e) => eprintln!(
                "stampede: no client without kept-alive connections ({e}): the processes may not all be reached"
            ),
        }
        spread
    }

    /// Processes behind each URL.
    pub fn processes(&self) -> usize {
        self.profile.defaults.processes.max(1)
    }

    /// The stack's processes in all: its distinct URLs times the processes behind each (a
    /// spread target's instances are connections, not processes: per-process caps and work
    /// are counted with this).
    pub fn stack_processes(&self) -> usize {
        let mut urls: Vec<&String> = self.urls.iter().collect();
        urls.sort();
        urls.dedup();
        urls.len() * self.processes()
    }

    /// The same target, its fake upstream controlled at `url`.
    pub fn with_upstream_control(mut self, url: Option<String>) -> Self {
        self.upstream_control = url;
        self
    }

    /// `ws://` (or `wss://`) and `path` on `instance`.
    pub fn ws_url(&self, instance: usize, path: &str) -> String {
        let base = &self.urls[instance];
        let base = match base.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => format!("ws://{base}"),
        };
        format!("{base}{path}")
    }

    pub fn instances(&self) -> usize {
        self.urls.len()
    }

    /// Every instance answers HTTP at all (any status).
    pub async fn probe(&self) -> Result<(), TargetError> {
        for url in &self.urls {
            let answer = self.http.get(format!("{url}/")).timeout(Duration::from_secs(5)).send().await;
            if let Err(e) = answer {
                let reason = if e.is_connect() {
                    format!("connection refused or failed ({e})")
                } else if e.is_timeout() {
                    "no answer within 5 s".to_owned()
                } else {
                    e.to_string()
                };
                return Err(TargetError::Unreachable { url: url.clone(), reason });
            }
        }
        Ok(())
    }

    /// The text of `path` on `instance` (a Prometheus endpoint), or why it could not be read
    /// within the target's timeout; [`profile::prometheus`] reads it.
    pub async fn metrics_text(&self, instance: usize, path: &str) -> Result<String, String> {
        let url = format!("{}{path}", self.urls[instance]);
        let response = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        response.text().await.map_err(|e| e.to_string())
    }

    /// Sends `template` to `instance` with `token` (if any) and `vars` filled in.
    pub async fn send(
        &self,
        instance: usize,
        token: Option<&str>,
        template: &RequestTemplate,
        vars: &[(&str, &str)],
    ) -> Answer {
        self.execute(self.request(instance, token, template, vars)).await
    }

    /// The request `template` makes, not yet sent, for a checker to add to (a streamed body,
    /// a query parameter) before it [`Target::execute`]s it.
    pub fn request(
        &self,
        instance: usize,
        token: Option<&str>,
        template: &RequestTemplate,
        vars: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.urls[instance], fill(&template.path, vars));
        self.request_to(url, token, template, vars)
    }

    /// `template`'s request (method, headers, body; `vars` filled) to `url`.
    fn request_to(
        &self,
        url: String,
        token: Option<&str>,
        template: &RequestTemplate,
        vars: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let method =
            Method::from_bytes(template.method.to_ascii_uppercase().as_bytes()).unwrap_or(Method::GET);
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            let users = &self.profile.users;
            request = request.header(users.header.as_str(), format!("{}{token}", users.prefix));
        }
        for (name, value) in &template.headers {
            request = request.header(name.as_str(), fill(value, vars));
        }
        if let Some(body) = &template.body {
            request = request.json(&fill_json(body, vars));
        }
        request
    }

    /// Where a `link` (a next page's, as a stack gave it: a full URL, an absolute or relative
    /// path, a query) leads when followed from the page at `from`, asked of `instance`: the
    /// link resolved against `from` (RFC 3986), its path and query on the instance's origin —
    /// so a walk keeps going round the instances, and a token never goes to another host.
    /// The link's path and query are taken as they are: an opaque cursor in it is not
    /// re-encoded. None when `from` or the link is no URL.
    pub fn link_url(&self, instance: usize, from: &str, link: &str) -> Option<String> {
        link_on(&self.urls[instance], from, link)
    }

    /// The request `template` makes (its method, headers and body), sent to `url`.
    pub fn request_url(
        &self,
        url: String,
        token: Option<&str>,
        template: &RequestTemplate,
    ) -> reqwest::RequestBuilder {
        self.request_to(url, token, template, &[])
    }

    /// A WebSocket handshake of `template` (its path and headers, `vars` filled) on
    /// `instance`, with `token` in the query parameter `token_param` (browsers cannot set
    /// headers on an upgrade) or else in the profile's auth header; at most the target's
    /// timeout. The socket and the handshake's status; a refused upgrade is
    /// [`WsError::Http`], its status and body inside.
    pub async fn ws_connect(
        &self,
        instance: usize,
        token: &str,
        token_param: Option<&str>,
        template: &RequestTemplate,
        vars: &[(&str, &str)],
    ) -> Result<(WsSocket, u16), WsError> {
        let mut path = fill(&template.path, vars);
        if let Some(param) = token_param {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&format!("{param}={token}"));
        }
        let mut request = self.ws_url(instance, &path).into_client_request()?;
        let mut headers: Vec<(String, String)> =
            template.headers.iter().map(|(k, v)| (k.clone(), fill(v, vars))).collect();
        if token_param.is_none() {
            let users = &self.profile.users;
            headers.push((users.header.clone(), format!("{}{token}", users.prefix)));
        }
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| WsError::HttpFormat(e.into()))?;
            let value = HeaderValue::from_str(&value).map_err(|e| WsError::HttpFormat(e.into()))?;
            request.headers_mut().insert(name, value);
        }
        // tungstenite reserves each socket's read buffer whole (128 KiB by default): what 10,000
        // sessions of a load would hold for nothing. A larger frame takes several reads.
        let config =
            tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4 * 1024);
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), false);
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(result) => result.map(|(socket, response)| (socket, response.status().as_u16())),
            Err(_) => {
                Err(WsError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time")))
            }
        }
    }

    /// Sends `request`; its answer with the body parsed as JSON (null when it is not).
    pub async fn execute(&self, request: reqwest::RequestBuilder) -> Answer {
        self.execute_raw(request).await.0
    }

    /// Sends `request`; its answer and the body's bytes as they came.
    pub async fn execute_raw(&self, request: reqwest::RequestBuilder) -> (Answer, Vec<u8>) {
        let invoke_us = self.clock.now_us();
        let result = request.send().await;
        let (status, headers, body, raw, error) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(bytes) => {
                        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        (Some(status), headers, body, bytes.to_vec(), None)
                    }
                    Err(e) => (None, headers, Value::Null, Vec::new(), Some(e.to_string())),
                }
            }
            Err(e) => (None, Default::default(), Value::Null, Vec::new(), Some(e.to_string())),
        };
        let answer = Answer { status, headers, body, invoke_us, complete_us: self.clock.now_us(), error };
        (answer, raw)
    }

    /// A new logical user, with a token valid on every instance.
    pub async fn user(&self, label: &str) -> Result<User, TargetError> {
        let name = format!("{label}-{}", self.run);
        let first = self.create_user(0, &name).await?;
        let mut tokens = vec![first];
        for instance in 1..self.instances() {
            let shared = tokens[0].clone();
            let valid = match &self.profile.users.verify {
                Some(verify) => {
                    let vars = [("name", name.as_str()), ("run", self.run.as_str())];
                    let answer = self.send(instance, Some(&shared), verify, &vars).await;
                    answer.status.is_some_and(|s| (200..300).contains(&s))
                }
                None => true,
            };
            tokens.push(if valid { shared } else { self.create_user(instance, &name).await? });
        }
        Ok(User { name, tokens })
    }

    async fn create_user(&self, instance: usize, name: &str) -> Result<String, TargetError> {
        let users = &self.profile.users;
        let vars = [("name", name), ("run", self.run.as_str())];
        let (answer, raw) = self.execute_raw(self.request(instance, None, &users.create, &vars)).await;
        let request =
            format!("{} {}", users.create.method.to_ascii_uppercase(), fill(&users.create.path, &vars));
        let fail = |reason: String| TargetError::Users { url: self.urls[instance].clone(), reason };
        match answer.status {
            Some(s) if (200..300).contains(&s) => {}
            Some(s) => return Err(fail(format!("{request} answered {s}: {}", preview(&raw, 200)))),
            None => return Err(fail(format!("{request}: {}", answer.error.unwrap_or_default()))),
        }
        answer
            .body
            .pointer(&users.token)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| fail(format!("{request}: no token at {} in {}", users.token, preview(&raw, 200))))
    }
}

/// `link` followed from the page at `from`, on the origin of `instance_url`.
fn link_on(instance_url: &str, from: &str, link: &str) -> Option<String> {
    let resolved = reqwest::Url::parse(from).ok()?.join(link).ok()?;
    let mut at = reqwest::Url::parse(instance_url).ok()?;
    at.set_path(resolved.path());
    at.set_query(resolved.query());
    Some(at.to_string())
}

/// The HTTP client: no proxy, no transparent decompression (whatever features another crate
/// enables: the checks judge the bytes on the wire), `idle` kept-alive connections per host (0:
/// a fresh connection for every request).
fn client(timeout: Duration, idle: usize) -> Result<reqwest::Client, reqwest::Error> {
    builder(timeout).pool_max_idle_per_host(idle).build()
}

/// The target's client as a load sends with it: no redirect followed (a 3xx is the answer).
pub fn no_redirect_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    builder(timeout).redirect(reqwest::redirect::Policy::none()).build()
}

/// What every client of a target is: straight to it whatever proxy the environment names, no
/// compression asked for, `timeout` a request.
fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder().no_proxy().no_gzip().timeout(timeout)
}

/// Fresh connections to one URL that reach every one of `processes` behind it with probability
/// at least 99 %, connections being spread uniformly at random (the kernel's `SO_REUSEPORT`
/// hash, a random balancer; round robin needs only `processes`): the least k with
/// processes × (1 − 1/processes)^k ≤ 0.01 — 8 for 2, 15 for 3, 21 for 4, 36 for 6.
pub fn reads_to_reach(processes: usize) -> usize {
    if processes <= 1 {
        return 1;
    }
    let n = processes as f64;
    let miss = 1.0 - 1.0 / n;
    (1..).find(|&k| n * miss.powi(k as i32) <= 0.01).unwrap_or(1)
}

/// The first `max` bytes of a body as text (invalid UTF-8 replaced, line breaks as spaces),
/// `…` when cut; `(empty)` for none.
pub fn preview(raw: &[u8], max: usize) -> String {
    if raw.is_empty() {
        return "(empty)".to_owned();
    }
    let text = String::from_utf8_lossy(&raw[..raw.len().min(max)]).replace(['\r', '\n'], " ");
    if raw.len() > max { format!("{text}…") } else { text }
}

/// µs since a run began, on one monotonic clock: every operation's invocation and completion
/// are read from the same one, so they order.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    start: Instant,
}

impl Default for Stopwatch {
    fn default() -> Self {
        Self::new()
    }
}

impl Stopwatch {
    pub fn new() -> Self {
        Self { start: Instant::now() }
    }

    /// µs since the run began.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_resolved_against_its_page_and_asked_of_the_instance() {
        let from = "http://a:1/api/v1/videos?limit=7";
        let on = |link: &str| link_on("http://b:2/api", from, link);
        // A path, a relative path, a query alone, a full URL naming another host.
        assert_eq!(
            on("/api/v1/videos?page[after]=YWJj%3D").as_deref(),
            Some("http://b:2/api/v1/videos?page[after]=YWJj%3D")
        );
        assert_eq!(on("videos?cursor=2").as_deref(), Some("http://b:2/api/v1/videos?cursor=2"));
        assert_eq!(on("?page=2").as_deref(), Some("http://b:2/api/v1/videos?page=2"));
        assert_eq!(
            on("https://elsewhere.example/api/v1/videos?page=3").as_deref(),
            Some("http://b:2/api/v1/videos?page=3")
        );
    }

    #[test]
    fn reads_to_reach_every_process_with_99_percent() {
        assert_eq!(reads_to_reach(1), 1);
        assert_eq!(reads_to_reach(2), 8);
        assert_eq!(reads_to_reach(3), 15);
        assert_eq!(reads_to_reach(4), 21);
        assert_eq!(reads_to_reach(6), 36);
        // The bound holds, and one read fewer misses it.
        for n in 2..=16 {
            let k = reads_to_reach(n) as i32;
            let miss = |k: i32| n as f64 * (1.0 - 1.0 / n as f64).powi(k);
            assert!(miss(k) <= 0.01 && miss(k - 1) > 0.01, "{n}: {k}");
        }
    }
}
