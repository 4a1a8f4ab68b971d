//! A stack on port 0 with a client, answers read whole, and a throwaway `redis-server` to
//! take away.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use stack::{RunningStack, Settings, StackConfig};

/// Every request a test makes is bounded by this: a hang fails the test instead of stalling it.
/// A hang detector, not a performance target.
pub(crate) const HANG: Duration = Duration::from_secs(15);

/// A stack serving in the test's runtime, and a client for it.
pub(crate) struct Stack {
    pub running: RunningStack,
    pub client: reqwest::Client,
}

/// The memory backend with `settings`.
pub(crate) async fn start(settings: Settings) -> Stack {
    start_with(StackConfig { settings, ..StackConfig::default() }).await
}

pub(crate) async fn start_with(config: StackConfig) -> Stack {
    let running = stack::start(config).await.expect("start the stack");
    // No pooling: a test that kills a backend must not see a stale keep-alive connection fail.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(HANG).build().unwrap();
    Stack { running, client }
}

impl Stack {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Registers a user; its id and token.
    pub(crate) async fn user(&self, name: &str) -> (u64, String) {
        let answer = send(self.request(Method::POST, "/v1/users").json(&json!({ "name": name }))).await;
        assert_eq!(answer.status, 201, "register {name}: {answer}");
        let body = answer.json();
        (body["id"].as_u64().unwrap(), body["token"].as_str().unwrap().to_owned())
    }

    /// Creates a project owned by `token`'s user with `members` (id and token each) invited at
    /// its creation and each accepting; its id.
    pub(crate) async fn project(&self, token: &str, name: &str, members: &[(u64, &str)]) -> u64 {
        let ids: Vec<u64> = members.iter().map(|(id, _)| *id).collect();
        let request = self.request(Method::POST, "/v1/projects").bearer_auth(token);
        let answer = send(request.json(&json!({ "name": name, "members": ids }))).await;
        assert_eq!(answer.status, 201, "create project {name}: {answer}");
        let project = answer.json()["id"].as_u64().unwrap();
        for (id, member) in members {
            let path = format!("/v1/invitations/{project}/accept");
            let answer = send(self.request(Method::POST, &path).bearer_auth(member)).await;
            assert_eq!(answer.status, 200, "user {id} accepts project {project}: {answer}");
        }
        project
    }

    /// Imports `url` for `token`'s user; the video's id.
    pub(crate) async fn video(&self, token: &str, url: &str, project: Option<u64>) -> String {
        let request = self.request(Method::POST, "/v1/videos").bearer_auth(token);
        let answer = send(request.json(&json!({ "url": url, "project_id": project }))).await;
        assert!(matches!(answer.status, 200 | 201), "import {url}: {answer}");
        answer.json()["id"].as_str().unwrap().to_owned()
    }

    /// `GET path` as `token`'s user.
    pub(crate) async fn get(&self, path: &str, token: &str) -> Answer {
        send(self.request(Method::GET, path).bearer_auth(token)).await
    }
}

/// A response read whole.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON; panics with the body when it is not.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self}"))
    }

    /// The essence of `Content-Type` (`application/json`), lowercase.
    pub(crate) fn media_type(&self) -> Option<String> {
        let value = self.header("content-type")?;
        Some(value.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    /// The API's error body `{"error": {"code", "message"}}`: its code; panics on anything else.
    pub(crate) fn error_code(&self) -> String {
        assert_eq!(self.media_type().as_deref(), Some("application/json"), "{self}");
        let body = self.json();
        let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {self}"));
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{self}");
        code.to_owned()
    }

    /// Whether this is the router's answer to a route it does not know.
    pub(crate) fn is_unknown_route(&self) -> bool {
        self.status == 404
            && serde_json::from_slice::<Value>(&self.body)
                .is_ok_and(|b| b["error"]["message"].as_str() == Some("route not found"))
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

/// Sends `request` and reads the whole answer, within [`HANG`].
pub(crate) async fn send(request: RequestBuilder) -> Answer {
    let read = async {
        let response = request.send().await.expect("send the request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("read the body").to_vec();
        Answer { status, headers, body }
    };
    tokio::time::timeout(HANG, read).await.expect("no answer within the hang bound")
}

/// A `redis-server` of the test's own on a free port, killed on drop. Never the shared one.
pub(crate) struct OwnRedis {
    child: std::process::Child,
    pub port: u16,
}

impl OwnRedis {
    /// Starts one and waits for its "ready" line; `None` when `redis-server` is not installed
    /// (a failure with `CI=true`).
    pub(crate) fn start() -> Option<Self> {
        use std::io::{BufRead, BufReader};
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                skip("redis-server", &format_args!("cannot start it: {e}"));
                return None;
            }
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let server = OwnRedis { child, port };
        for line in BufReader::new(stdout).lines() {
            if line.expect("redis-server output").contains("Ready to accept connections") {
                return Some(server);
            }
        }
        panic!("redis-server on port {port} exited before it was ready");
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown) and waits for it to be gone.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A stack whose state lives in `redis` (records included), with a short request deadline.
/// Started inside the test's runtime, as `stampede serve --redis` starts it (which once
/// panicked: the Redis clients block on runtimes of their own while connecting).
pub(crate) async fn start_on_redis(redis: &OwnRedis, request_timeout: Duration) -> Stack {
    let mut config = StackConfig::default();
    config.backends.redis = Some(redis.url());
    config.settings.request_timeout = request_timeout;
    start_with(config).await
}

/// A test that cannot run for want of `service`: under `CI=true`, a failure; otherwise a notice
/// and a line in the file `STAMPEDE_SKIPPED` names, which `ci/test` counts (and fails on).
pub(crate) fn skip(service: &str, why: &dyn std::fmt::Display) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let why = why.to_string().replace('\n', " ");
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{test}: {service}: {why} (CI=true: {service} is required; run ci/services)");
    }
    eprintln!("skipping {test}: {service}: {why} (run ci/services; CI=true fails instead)");
    if let Some(path) = std::env::var_os("STAMPEDE_SKIPPED") {
        use std::io::Write;
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open $STAMPEDE_SKIPPED");
        file.write_all(format!("{test}\t{service}: {why}\n").as_bytes())
            .expect("append to $STAMPEDE_SKIPPED");
    }
}
