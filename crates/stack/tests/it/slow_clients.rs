//! What a slow or silent client can hold of the stack: a connection that sends no request
//! head (new, half-sent, or kept alive between requests) is closed after the header timeout,
//! a stalled upload after its grace, connections over the cap are answered 503 with
//! `Retry-After`, and registrations are limited per client address. The `NoDeadlines` mutant
//! (the stack as `axum::serve` served it) holds them all.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stack::Mutant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Harness, bounded};

/// Past the time a connection must have received nothing to count as idle (100 ms).
const QUIET: Duration = Duration::from_millis(150);

fn deadlines(settings: &mut stack::Settings) {
    settings.connections.header_timeout = Duration::from_millis(300);
    settings.connections.body_grace = Duration::from_millis(300);
}

/// Reads until the stack closes the connection or `within`; what was read, and when it
/// closed (none: still open).
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (String, Option<Duration>) {
    until_closed_since(stream, Instant::now(), within).await
}

/// [`until_closed`], timed from `start`.
async fn until_closed_since(
    stream: &mut TcpStream,
    start: Instant,
    within: Duration,
) -> (String, Option<Duration>) {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + within).into(), stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&read).into_owned(), None),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&read).into_owned(), Some(start.elapsed()));
            }
            Ok(Ok(n)) => read.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_half_sent_and_idle_kept_alive_connections_are_closed_after_the_header_timeout() {
    bounded(async {
        let harness = Harness::start(deadlines).await;
        let addr = harness.stack.addr();
        let start = Instant::now();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        let mut kept = TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        for (what, stream) in [("silent", &mut silent), ("half-sent", &mut half), ("kept alive", &mut kept)] {
            let (read, closed) = until_closed_since(stream, start, Duration::from_secs(3)).await;
            let closed = closed.unwrap_or_else(|| panic!("the {what} connection is still open after 3 s"));
            println!("{what} connection closed after {} ms", closed.as_millis());
            assert!(
                closed >= Duration::from_millis(250),
                "{what} closed after {closed:?}, before the timeout"
            );
            if what == "kept alive" {
                assert!(read.starts_with("HTTP/1.1 200"), "the request on it was answered first: {read:?}");
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_cut_off_with_408_after_its_grace() {
    bounded(async {
        let harness = Harness::start(deadlines).await;
        let user = harness.user("stall").await;
        let mut stream = TcpStream::connect(harness.stack.addr()).await.unwrap();
        let head = format!(
            "POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\nabcd",
            user.token
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let (read, closed) = until_closed(&mut stream, Duration::from_secs(3)).await;
        assert!(closed.is_some(), "the stalled upload's connection is still open after 3 s: {read:?}");
        assert!(read.starts_with("HTTP/1.1 408"), "{read:?}");
        assert!(read.to_ascii_lowercase().contains("connection: close"), "{read:?}");
        assert!(read.contains("\"request_timeout\""), "{read:?}");
        // Nothing of it was kept.
        let files: Vec<_> =
            std::fs::read_dir(&harness.upload_dir).map(|d| d.flatten().collect()).unwrap_or_default();
        assert!(files.is_empty(), "{files:?}");
    })
    .await;
}

/// A connection whose request is being handled: an upload that declared 10 MB and sent 4 bytes.
async fn busy(harness: &Harness, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(harness.stack.addr()).await.unwrap();
    let head = format!(
        "POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\nabcd"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_with_every_connection_busy_a_client_is_answered_503_with_retry_after() {
    bounded(async {
        let harness = Harness::start(|s| s.connections.max_connections = Some(4)).await;
        let user = harness.user("busy").await;
        // The harness client's connection quiet long enough to be idle: the fourth upload's room.
        tokio::time::sleep(QUIET).await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(busy(&harness, &user.token).await);
        }
        tokio::time::sleep(QUIET).await;
        let started = Instant::now();
        let answer = harness.http.get(harness.url("/healthz")).send().await.unwrap();
        assert_eq!(answer.status(), 503, "a fifth connection");
        assert_eq!(answer.headers()["retry-after"], "1");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
        assert!(started.elapsed() < Duration::from_secs(1), "answered in {:?}", started.elapsed());
        drop(held);
        crate::support::eventually("a slot is free again", || async {
            harness.http.get(harness.url("/healthz")).send().await.is_ok_and(|a| a.status() == 200)
        })
        .await;
        let metrics = harness.http.get(harness.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let refused = metrics
            .lines()
            .find_map(|l| l.strip_prefix("stampede_http_connections_refused_total "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        assert!(refused.is_some_and(|n| n >= 1.0), "{refused:?}");
    })
    .await;
}

/// `GET /healthz` on a new connection, kept open: its status line and the connection.
async fn healthz(addr: std::net::SocketAddr) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).await.unwrap();
    (String::from_utf8_lossy(&buf).into_owned(), stream)
}

/// At the cap, a new client closes the oldest idle connection (silent, or kept alive between
/// requests) rather than wait for the header timeout: idle sockets cannot lock clients out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_new_connection_evicts_the_oldest_idle_one() {
    bounded(async {
        let harness = Harness::start(|s| s.connections.max_connections = Some(4)).await;
        let user = harness.user("busy").await;
        let addr = harness.stack.addr();
        let open = || harness.stack.state().metrics.connections_open.get();
        // The harness's client keeps the connection it registered with: closed first.
        let mut oldest = TcpStream::connect(addr).await.unwrap();
        let (status, mut kept) = healthz(addr).await;
        assert_eq!(status, "HTTP/1.1 200");
        tokio::time::sleep(QUIET).await;
        let _busy = [busy(&harness, &user.token).await, busy(&harness, &user.token).await];
        crate::support::eventually("four connections open", || async { open() == 4 }).await;
        tokio::time::sleep(QUIET).await;
        // Each new connection takes an idle one's slot: the oldest first, then the kept-alive
        // one (the new ones stay open, idle and newer).
        let mut probes = Vec::new();
        for (victim, stream) in [("oldest", &mut oldest), ("kept alive", &mut kept)] {
            let (status, probe) = healthz(addr).await;
            assert_eq!(status, "HTTP/1.1 200", "a new connection at the cap, evicting the {victim}");
            probes.push(probe);
            tokio::time::sleep(QUIET).await;
            let (_, closed) = until_closed(stream, Duration::from_secs(1)).await;
            assert!(closed.is_some(), "the {victim} idle connection was not closed");
            assert_eq!(open(), 4);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_client_address() {
    bounded(async {
        let harness = Harness::start(|s| {
            s.registration_limit = reference::limit::Limit::new(3, Duration::from_secs(60))
        })
        .await;
        for i in 0..3 {
            let answer = harness
                .http
                .post(harness.url("/v1/users"))
                .json(&json!({ "name": format!("u{i}") }))
                .send()
                .await;
            let answer = answer.unwrap();
            assert_eq!(answer.status(), 201);
            assert_eq!(answer.headers()["ratelimit-remaining"], (2 - i).to_string().as_str());
        }
        let answer =
            harness.http.post(harness.url("/v1/users")).json(&json!({ "name": "u3" })).send().await.unwrap();
        assert_eq!(answer.status(), 429);
        assert!(answer.headers().contains_key("retry-after"));
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_deadlines_mutant_holds_silent_connections_and_serves_past_the_cap() {
    bounded(async {
        let harness = Harness::start(|s| {
            deadlines(s);
            s.connections.max_connections = Some(2);
            s.mutant = Some(Mutant::NoDeadlines);
        })
        .await;
        let addr = harness.stack.addr();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let _other = TcpStream::connect(addr).await.unwrap();
        let (_, closed) = until_closed(&mut silent, Duration::from_millis(1500)).await;
        assert_eq!(closed, None, "the mutant closed a silent connection");
        let answer = harness.http.get(harness.url("/healthz")).send().await.unwrap();
        assert_eq!(answer.status(), 200, "the mutant keeps no cap");
    })
    .await;
}

/// Stores a 32 MiB upload for `user`: more than loopback's socket buffers hold, so a client
/// that does not read its download keeps the stack's writes blocked. Its id.
async fn large_upload(harness: &Harness, user: &crate::support::User) -> String {
    let body = crate::support::bytes(32 << 20, 7);
    let answer = harness
        .http
        .post(harness.url("/v1/uploads"))
        .bearer_auth(&user.token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    answer.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// A download's request on a new connection, nothing of its answer read yet.
async fn download(addr: std::net::SocketAddr, id: &str, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head =
        format!("GET /v1/uploads/{id}/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// At the cap, a connection whose answer is still being written is not idle: a new client is
/// answered 503 rather than cutting the download short, and the download completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_download_still_being_written_is_not_evicted() {
    bounded(async {
        let harness = Harness::start(|s| s.connections.max_connections = Some(2)).await;
        let user = harness.user("reader").await;
        let id = large_upload(&harness, &user).await;
        let addr = harness.stack.addr();
        let mut slow = download(addr, &id, &user.token).await;
        let open = || harness.stack.state().metrics.connections_open.get();
        // The harness client's idle connection is evicted by a stalled upload; the download's
        // writes are blocked on its unread socket by then.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _uploading = busy(&harness, &user.token).await;
        crate::support::eventually("the upload took the idle connection's slot", || async { open() == 2 })
            .await;
        // Its request head read and its handler waiting on the body.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _third) = healthz(addr).await;
        assert_eq!(status, "HTTP/1.1 503", "the download and the upload are open, neither idle");
        let mut received = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match slow.read(&mut buf).await.unwrap() {
                0 => break,
                n => received += n,
            }
            if received >= 32 << 20 {
                break;
            }
        }
        assert!(received >= 32 << 20, "the download was cut after {received} bytes");
    })
    .await;
}

/// A client that stops reading its answer is closed once the stack's writes have waited on it
/// for the write-stall bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_answer_is_closed_after_the_write_stall() {
    bounded(async {
        let harness = Harness::start(|s| s.connections.write_stall = Duration::from_millis(500)).await;
        let user = harness.user("stalled-reader").await;
        let id = large_upload(&harness, &user).await;
        let mut stream = download(harness.stack.addr(), &id, &user.token).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut received = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let ended = loop {
            match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Err(_) => break false,
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(n)) => received += n,
            }
        };
        assert!(ended, "the connection is still open");
        assert!(received < 32 << 20, "the whole answer was written: {received} bytes");
        println!("a client that stopped reading got {received} bytes before the stack closed it");
    })
    .await;
}
