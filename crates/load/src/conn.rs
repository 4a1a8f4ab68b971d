//! The load's HTTP/1.1 client (both models): hyper's connection API, each connection driven
//! inside the task that sends on it (no task per connection, no hand-off between tasks for a
//! request), kept between requests in a last-in-first-out pool per instance, so a slow rate
//! reuses the few connections it needs and a fast one holds as many as requests in flight.
//!
//! A request is built from its mix entry as [`client::Target::request`] builds it, to the byte
//! (the same method, path, auth header, headers, JSON body; `host` and `accept: */*` unless the
//! entry sets them), and timed to the last byte of its body. A target URL this client does not
//! speak (not `http://`, a query or user in it) and a request it would not send as reqwest does
//! (a filled path that reqwest's URL parser would encode or normalise, a header value with a
//! line break) go through reqwest instead. Neither follows a redirect: a 3xx is the answer, as
//! wrk counts it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use client::Target;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use profile::load::MixEntry;
use profile::template::{fill, fill_json};
use tokio::net::TcpStream;

use crate::mix::{self, Account};
use crate::record::Completion;

/// One connection: the handle requests are sent on, and the connection itself, polled only by
/// the task using it.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    /// None once it has ended: dropped then, so that a request it still held comes back.
    driver: Option<Pin<Box<Driver>>>,
}

/// The connection future hyper hands back with the handle.
type Driver = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// Where an instance is, for this client: its address, `host` header and path prefix.
struct Origin {
    /// Its host's addresses, tried in order for a new connection.
    addrs: Vec<SocketAddr>,
    host: HeaderValue,
    prefix: String,
    idle: Mutex<Vec<Conn>>,
}

/// A mix entry's parts that do not change from request to request.
struct Entry {
    method: Method,
    headers: Vec<(HeaderName, String)>,
    /// `body_bytes`' body, made once.
    upload: Option<Bytes>,
    json_type: bool,
    /// Whether the entry's headers set `host`, `accept` (then they replace the defaults).
    sets_host: bool,
    sets_accept: bool,
}

/// The client of one load (either model).
pub struct Client {
    /// Per instance; none where this client does not speak the URL.
    origins: Vec<Option<Origin>>,
    entries: Vec<Option<Entry>>,
    auth: Option<HeaderName>,
    /// What comes before the token in the auth header (`Bearer `).
    auth_prefix: String,
    timeout: Duration,
    /// What this client does not speak is sent with: reqwest, following no redirect either.
    fallback: reqwest::Client,
}

impl Client {
    /// The client for `target`'s instances and `entries`, names resolved now.
    pub async fn new(target: &Target, entries: &[MixEntry]) -> Self {
        let mut origins = Vec::with_capacity(target.urls.len());
        for url in &target.urls {
            origins.push(origin(url).await);
        }
        let users = &target.profile.users;
        let auth = if users.header.eq_ignore_ascii_case("authorization") {
            Some(AUTHORIZATION)
        } else {
            HeaderName::from_bytes(users.header.as_bytes()).ok()
        };
        let entries = entries
            .iter()
            .map(|e| {
                let method = Method::from_bytes(e.request.method.to_ascii_uppercase().as_bytes()).ok()?;
                let headers = e
                    .request
                    .headers
                    .iter()
                    .map(|(name, value)| Some((HeaderName::from_bytes(name.as_bytes()).ok()?, value.clone())))
                    .collect::<Option<Vec<_>>>()?;
                let sets = |name: &HeaderName| headers.iter().any(|(n, _)| n == name);
                Some(Entry {
                    method,
                    upload: e.body_bytes.map(|n| Bytes::from(crate::body(n))),
                    json_type: e.request.body.is_some() && !sets(&CONTENT_TYPE),
                    sets_host: sets(&HOST),
                    sets_accept: sets(&ACCEPT),
                    headers,
                })
            })
            .collect();
        let fallback = client::no_redirect_client(target.timeout).unwrap_or_else(|_| target.http.clone());
        Self { origins, entries, auth, auth_prefix: users.prefix.clone(), timeout: target.timeout, fallback }
    }

    /// Sends mix entry `index` (`entry`) for `account` to `instance` and reads its answer whole.
    pub async fn send(
        &self,
        target: &Target,
        instance: usize,
        account: &Account,
        index: usize,
        entry: &MixEntry,
        vars: &[(&str, String)],
    ) -> Completion {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let token = &account.tokens[instance];
        let built = match (&self.origins[instance], &self.entries[index]) {
            (Some(origin), Some(prepared)) => {
                self.build(origin, prepared, entry, token, &vars).map(|r| (origin, r))
            }
            _ => None,
        };
        let Some((origin, request)) = built else {
            let vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            return match crate::request(target, instance, account, entry, &vars).build() {
                Ok(request) => crate::answered(self.fallback.execute(request).await, entry).await,
                Err(e) => Completion::Failed(crate::failure(&e.to_string(), e.is_timeout(), e.is_connect())),
            };
        };
        match tokio::time::timeout(self.timeout, exchange(origin, request)).await {
            Err(_) => Completion::Failed("timeout"),
            Ok(Err(why)) => Completion::Failed(why),
            Ok(Ok((status, body))) => {
                Completion::Answered { status, ok: mix::accepted(entry, status, &body) }
            }
        }
    }

    fn build(
        &self,
        origin: &Origin,
        prepared: &Entry,
        entry: &MixEntry,
        token: &str,
        vars: &[(&str, &str)],
    ) -> Option<Request<Full<Bytes>>> {
        let mut path = origin.prefix.clone();
        path.push_str(&fill(&entry.request.path, vars));
        if !plain(&path) {
            return None;
        }
        let uri = Uri::try_from(path).ok()?;
        let mut request = Request::builder().method(prepared.method.clone()).uri(uri);
        let headers = request.headers_mut()?;
        if !prepared.sets_host {
            headers.insert(HOST, origin.host.clone());
        }
        if !prepared.sets_accept {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        if let Some(auth) = &self.auth {
            let value = HeaderValue::try_from(format!("{}{token}", self.auth_prefix)).ok()?;
            headers.insert(auth.clone(), value);
        }
        for (name, value) in &prepared.headers {
            headers.append(name.clone(), HeaderValue::try_from(fill(value, vars)).ok()?);
        }
        let body = match (&entry.request.body, &prepared.upload) {
            (Some(json), _) => {
                if prepared.json_type {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                Bytes::from(serde_json::to_vec(&fill_json(json, vars)).ok()?)
            }
            (None, Some(upload)) => upload.clone(),
            (None, None) => Bytes::new(),
        };
        request.body(Full::new(body)).ok()
    }
}

/// Whether `path` (and its query) is sent by reqwest exactly as it is: only characters its URL
/// parser leaves alone in a path and a query of an `http` URL (unreserved, sub-delimiters but
/// `'`, which it encodes in a query, `:`, `@`, `/`, `?`, `%`), and no dot segment, written out or
/// percent-encoded, which it would resolve.
fn plain(path: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&()*+,;=:@/?%".contains(&b);
    if !path.bytes().all(allowed) {
        return false;
    }
    let path = path.split('?').next().unwrap_or_default();
    !path.to_ascii_lowercase().contains("%2e")
        && !path.split('/').any(|segment| segment == "." || segment == "..")
}

/// `url`'s origin when it is plain `http://` with no user, query or fragment, its host resolved.
async fn origin(url: &str) -> Option<Origin> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if parsed.scheme() != "http"
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return None;
    }
    let host = parsed.host_str()?;
    let port = parsed.port_or_known_default()?;
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await
            .ok()?
            .collect();
    if addrs.is_empty() {
        return None;
    }
    let authority = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Some(Origin {
        addrs,
        host: HeaderValue::try_from(authority).ok()?,
        prefix: parsed.path().trim_end_matches('/').to_owned(),
        idle: Mutex::new(Vec::new()),
    })
}

/// Sends `request` on an idle connection to `origin` (a new one when none is idle or the idle
/// one has closed), reads the answer whole, and gives the connection back when it can carry
/// another request. A request a reused connection could not even start to send (the server
/// closed it just then) is sent once more on a new one, as a pooled client does.
async fn exchange(origin: &Origin, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), &'static str> {
    let idle = || origin.idle.lock().unwrap_or_else(|p| p.into_inner());
    let (mut conn, mut reused) = loop {
        let popped = idle().pop();
        match popped {
            Some(mut conn) => {
                if ready(&mut conn) {
                    break (conn, true);
                }
            }
            None => break (connect(&origin.addrs).await?, false),
        }
    };
    let mut request = request;
    loop {
        match once(&mut conn, request).await {
            Sent::Answered(answer, open) => {
                if open {
                    idle().push(conn);
                }
                return Ok(answer);
            }
            Sent::Failed(why) => return Err(why),
            // Once, and only after a reused connection: a new one that closes at once is no race.
            Sent::Unsent(unsent) if reused => {
                (request, reused) = (*unsent, false);
                conn = connect(&origin.addrs).await?;
            }
            Sent::Unsent(_) => return Err("other"),
        }
    }
}

/// How one attempt on a connection ended.
enum Sent {
    /// The status and body, and whether the connection can carry another request.
    Answered((u16, Bytes), bool),
    /// No answer, by kind (`other` before the answer began, `body` when it broke off).
    Failed(&'static str),
    /// The request, never written: the connection had closed.
    Unsent(Box<Request<Full<Bytes>>>),
}

/// `request` on `conn`, its driver polled in this task until the body is read whole.
async fn once(conn: &mut Conn, request: Request<Full<Bytes>>) -> Sent {
    let Conn { sender, driver: slot } = conn;
    let Some(driver) = slot else { return Sent::Failed("other") };
    let answer = async {
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut e) => {
                return e.take_message().map_or(Sent::Failed("other"), |r| Sent::Unsent(Box::new(r)));
            }
        };
        let status = response.status().as_u16();
        match response.into_body().collect().await {
            Ok(body) => Sent::Answered((status, body.to_bytes()), true),
            Err(_) => Sent::Failed("body"),
        }
    };
    let mut answer = std::pin::pin!(answer);
    let first = tokio::select! {
        biased;
        sent = &mut answer => Some(sent),
        _ = driver.as_mut() => None,
    };
    match first {
        Some(sent) => sent,
        // The connection ended first (the server closed it, after the answer or before): it is
        // dropped, which hands back a request it never wrote (a clean close of an idle
        // connection fails none), and the answer is what it delivered before it ended.
        None => {
            *slot = None;
            match answer.await {
                Sent::Answered(answer, _) => Sent::Answered(answer, false),
                other => other,
            }
        }
    }
}

/// Whether an idle connection can take a request now: its driver polled once (it ends when the
/// server closed the connection while it was idle), then its handle asked, without waiting. A
/// connection still busy (writing the rest of a body the server answered early) is not ready,
/// and is closed rather than waited for.
fn ready(conn: &mut Conn) -> bool {
    let Conn { sender, driver } = conn;
    let Some(live) = driver else { return false };
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    if live.as_mut().poll(&mut cx).is_ready() {
        *driver = None;
        return false;
    }
    matches!(sender.poll_ready(&mut cx), std::task::Poll::Ready(Ok(())))
}

/// A new connection to the first of `addrs` that accepts one.
async fn connect(addrs: &[SocketAddr]) -> Result<Conn, &'static str> {
    let stream = TcpStream::connect(addrs).await.map_err(|_| "connect")?;
    let _ = stream.set_nodelay(true);
    let (sender, driver) = http1::handshake(TokioIo::new(stream)).await.map_err(|_| "connect")?;
    Ok(Conn { sender, driver: Some(Box::pin(driver)) })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// How the test server answers each request.
    #[derive(Clone, Copy)]
    enum Answer {
        /// 200 with a small JSON body, the connection kept open.
        Ok,
        /// 200, then the connection closed (no `connection: close` said).
        OkThenClose,
        /// A redirect elsewhere.
        Redirect,
        /// Nothing, ever.
        Silence,
        /// A body over 64 KiB answered 401 at once, then read 1 KiB every 50 ms; others as `Ok`.
        Early,
        /// 200, then the connection closed 30 ms later.
        OkThenLateClose,
    }

    /// A server on a free loopback port that records every request's head and body as text
    /// and the connections it accepted.
    async fn server(answer: Answer) -> (String, Arc<Mutex<Vec<String>>>, Arc<Mutex<usize>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (seen, accepted) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(0)));
        let (seen2, accepted2) = (Arc::clone(&seen), Arc::clone(&accepted));
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                *accepted2.lock().unwrap() += 1;
                let seen = Arc::clone(&seen2);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    loop {
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                            let mut chunk = [0u8; 4096];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned)
                            })
                            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                        if matches!(answer, Answer::Early) && length > 65536 {
                            seen.lock().unwrap().push(head);
                            socket
                                .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                                .await
                                .unwrap();
                            let mut chunk = [0u8; 1024];
                            while matches!(socket.read(&mut chunk).await, Ok(n) if n > 0) {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            return;
                        }
                        while buffer.len() < end + 4 + length {
                            let mut chunk = [0u8; 4096];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).to_string();
                        buffer.drain(..end + 4 + length);
                        seen.lock().unwrap().push(format!("{head}\n\n{body}"));
                        let reply: &[u8] = match answer {
                            Answer::Ok | Answer::OkThenClose | Answer::Early | Answer::OkThenLateClose => {
                                b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"id\":\"v1\"}"
                            }
                            Answer::Redirect => {
                                b"HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n"
                            }
                            Answer::Silence => {
                                tokio::time::sleep(Duration::from_secs(30)).await;
                                return;
                            }
                        };
                        socket.write_all(reply).await.unwrap();
                        if matches!(answer, Answer::OkThenClose) {
                            return;
                        }
                        if matches!(answer, Answer::OkThenLateClose) {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            return;
                        }
                    }
                });
            }
        });
        (url, seen, accepted)
    }

    const PROFILE: &str = r#"
name = "conn"
[users]
create = { method = "POST", path = "/v1/users" }
token = "/token"
[defaults]
timeout_ms = 300
[load]
rate = 1.0
[load.setup]
project = { method = "POST", path = "/v1/projects" }
video = { method = "POST", path = "/v1/videos" }
videos = 1
[[load.request]]
name = "create"
weight = 1
request = { method = "post", path = "/v1/projects/{project}/videos?seq={seq}", headers = { "x-trace" = "t-{seq}" }, body = { name = "{unique}", n = 3 } }
[[load.request]]
name = "upload"
weight = 1
body_bytes = 64
request = { method = "PUT", path = "/v1/uploads/{video}", headers = { "content-type" = "application/octet-stream", host = "example.com" } }
[[load.request]]
name = "read"
weight = 1
request = { method = "GET", path = "/v1/videos/{video}", headers = { accept = "application/json" } }
[[load.request]]
name = "large"
weight = 1
body_bytes = 8388608
request = { method = "PUT", path = "/v1/uploads/{video}" }
"#;

    fn stack(url: &str) -> (Target, Vec<MixEntry>, Account) {
        let profile = profile::Profile::parse(Path::new("conn.toml"), PROFILE).unwrap();
        let entries = profile.load.as_ref().unwrap().requests.clone();
        let target = Target::new(vec![url.to_owned()], profile, "r1".to_owned()).unwrap();
        let account =
            Account { tokens: vec!["tok".into()], project: Some("p1".into()), videos: vec!["v9".into()] };
        (target, entries, account)
    }

    const OK: Completion = Completion::Answered { status: 200, ok: true };

    fn vars() -> Vec<(&'static str, String)> {
        vec![
            ("seq", "7".into()),
            ("unique", "load-r1-7".into()),
            ("project", "p1".into()),
            ("video", "v9".into()),
        ]
    }

    /// Each entry's request as this client sends it and as the target's reqwest client does: the
    /// same request line, the same headers (in any order), the same body.
    #[tokio::test]
    async fn every_request_is_sent_as_the_targets_reqwest_client_sends_it() {
        let (url, seen, _) = server(Answer::Ok).await;
        let (target, entries, account) = stack(&url);
        let client = Client::new(&target, &entries).await;
        for (i, entry) in entries.iter().enumerate().take(3) {
            let ours = client.send(&target, 0, &account, i, entry, &vars()).await;
            let theirs =
                crate::answered(crate::request(&target, 0, &account, entry, &vars()).send().await, entry)
                    .await;
            assert_eq!(ours, Completion::Answered { status: 200, ok: true });
            assert_eq!(theirs, ours);
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 6);
        let normal = |text: &str| {
            let (head, body) = text.split_once("\n\n").unwrap();
            let mut lines = head.lines();
            let line = lines.next().unwrap().to_owned();
            let mut headers: Vec<String> = lines.map(|l| l.to_ascii_lowercase()).collect();
            headers.sort();
            (line, headers, body.to_owned())
        };
        for pair in seen.chunks(2) {
            assert_eq!(normal(&pair[0]), normal(&pair[1]), "ours:\n{}\nreqwest's:\n{}", pair[0], pair[1]);
        }
        assert!(seen[0].starts_with("POST /v1/projects/p1/videos?seq=7 HTTP/1.1"), "{}", seen[0]);
        assert!(seen[0].to_ascii_lowercase().contains("authorization: bearer tok"), "{}", seen[0]);
        assert!(seen[0].contains("\"load-r1-7\""), "{}", seen[0]);
        assert!(seen[2].ends_with(&String::from_utf8_lossy(&crate::body(64)).to_string()), "{}", seen[2]);
    }

    #[tokio::test]
    async fn connections_are_reused_and_one_the_server_closed_is_replaced() {
        let (url, seen, accepted) = server(Answer::Ok).await;
        let (target, entries, account) = stack(&url);
        let client = Client::new(&target, &entries).await;
        for _ in 0..20 {
            assert_eq!(client.send(&target, 0, &account, 2, &entries[2], &vars()).await, OK);
        }
        assert_eq!(
            (seen.lock().unwrap().len(), *accepted.lock().unwrap()),
            (20, 1),
            "one connection, reused"
        );

        let (url, seen, accepted) = server(Answer::OkThenClose).await;
        let (target, entries, account) = stack(&url);
        let client = Client::new(&target, &entries).await;
        for _ in 0..5 {
            assert_eq!(client.send(&target, 0, &account, 2, &entries[2], &vars()).await, OK);
            // The server's close reaches the idle connection before the next request.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!((seen.lock().unwrap().len(), *accepted.lock().unwrap()), (5, 5));
    }

    #[tokio::test]
    async fn a_redirect_is_the_answer_a_silent_server_times_out_and_a_closed_port_refuses() {
        let (url, seen, _) = server(Answer::Redirect).await;
        let (target, entries, account) = stack(&url);
        let client = Client::new(&target, &entries).await;
        let got = client.send(&target, 0, &account, 2, &entries[2], &vars()).await;
        assert_eq!(got, Completion::Answered { status: 302, ok: false });
        assert_eq!(seen.lock().unwrap().len(), 1, "the redirect is not followed");

        let (url, _, _) = server(Answer::Silence).await;
        let (target, entries, account) = stack(&url);
        let client = Client::new(&target, &entries).await;
        let started = std::time::Instant::now();
        let got = client.send(&target, 0, &account, 2, &entries[2], &vars()).await;
        assert_eq!(got, Completion::Failed("timeout"));
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (target, entries, account) = stack(&format!("http://127.0.0.1:{port}"));
        let client = Client::new(&target, &entries).await;
        assert_eq!(
            client.send(&target, 0, &account, 2, &entries[2], &vars()).await,
            Completion::Failed("connect")
        );
    }

    #[tokio::test]
    async fn a_url_this_client_does_not_speak_goes_through_reqwest() {
        let (url, seen, _) = server(Answer::Ok).await;
        let (target, entries, account) = stack(&format!("{url}/base"));
        let client = Client::new(&target, &entries).await;
        assert!(client.origins[0].is_some(), "a path prefix is spoken");
        assert_eq!(client.send(&target, 0, &account, 2, &entries[2], &vars()).await, OK);
        assert!(seen.lock().unwrap()[0].starts_with("GET /base/v1/videos/v9 HTTP/1.1"));
        let (target, entries, _) = stack(&format!("https://{}", url.trim_start_matches("http://")));
        assert!(Client::new(&target, &entries).await.origins[0].is_none());
    }

    #[tokio::test]
    async fn a_request_the_server_closed_the_connection_under_comes_back_unsent() {
        let (url, _, _) = server(Answer::OkThenLateClose).await;
        let (target, entries, account) = stack(&url);
        let client = Client::new(&target, &entries).await;
        let origin = client.origins[0].as_ref().unwrap();
        let request = || {
            client.build(origin, client.entries[2].as_ref().unwrap(), &entries[2], "tok", &[("video", "v9")])
        };
        let mut conn = connect(&origin.addrs).await.unwrap();
        assert!(matches!(once(&mut conn, request().unwrap()).await, Sent::Answered((200, _), true)));
        // The server closes the idle connection; the next request on it, never written, is
        // handed back at once (not held until a timeout).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        let sent = tokio::time::timeout(Duration::from_secs(3), once(&mut conn, request().unwrap())).await;
        assert!(matches!(sent, Ok(Sent::Unsent(_))), "{:?}", started.elapsed());
        // Through the pool, the closed connection is noticed and replaced.
        assert_eq!(client.send(&target, 0, &account, 2, &entries[2], &vars()).await, OK);
    }

    #[tokio::test]
    async fn an_upload_answered_before_its_body_was_read_holds_up_no_later_request() {
        let (url, seen, accepted) = server(Answer::Early).await;
        let (target, entries, account) = stack(&url);
        let client = Client::new(&target, &entries).await;
        let refused = client.send(&target, 0, &account, 3, &entries[3], &vars()).await;
        assert_eq!(refused, Completion::Answered { status: 401, ok: false });
        // The connection is still writing the 8 MiB body the server reads slowly: the next
        // request goes on another.
        assert_eq!(client.send(&target, 0, &account, 2, &entries[2], &vars()).await, OK);
        assert_eq!((seen.lock().unwrap().len(), *accepted.lock().unwrap()), (2, 2));
    }

    #[test]
    fn a_path_reqwest_would_encode_or_resolve_is_not_plain() {
        for path in
            ["/v1/videos/v9", "/v1/videos?limit=20&cursor=a%2Fb", "/p/a:b@c/(x)*+,;=~!$", "/.well-known/x"]
        {
            assert!(plain(path), "{path}");
        }
        for path in [
            "/a\"b",
            "/a{b}",
            "/é",
            "/a\\b",
            "/v1/videos/../../x",
            "/v1/videos/./x",
            "/v1/%2e%2e/y",
            "/v1/%2E/y",
            "/a b",
            "/a<b>",
            "/a`b",
            "/a#b",
            "/q?name='x'",
            "/a|b",
            "/a^b",
            "/a[0]",
        ] {
            assert!(!plain(path), "{path}");
        }
    }
}
