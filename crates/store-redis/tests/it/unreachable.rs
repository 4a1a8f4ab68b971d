//! A server that is not there: a typed error with a clear message, quickly.

use std::time::{Duration, Instant};

use reference::store::StoreError;
use store_redis::{RedisStore, RedisStoreError};

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn unreachable_redis_is_a_typed_error_quickly() {
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let err = RedisStore::connect(&url, "unreachable").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(matches!(err, RedisStoreError::Unreachable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with(&format!("cannot reach redis at {url}: ")), "{message}");
    assert!(message.ends_with("; is redis-server running?"), "{message}");
    assert!(matches!(StoreError::from(err), StoreError::Unavailable(_)));
}

#[test]
fn unreachable_bad_url_and_prefix_are_typed_errors() {
    let err = RedisStore::connect("http://nowhere", "p").unwrap_err();
    assert!(matches!(err, RedisStoreError::InvalidUrl { .. }), "{err:?}");
    let err = RedisStore::connect("redis://127.0.0.1:6379", "a{b}").unwrap_err();
    assert!(matches!(err, RedisStoreError::InvalidPrefix { .. }), "{err:?}");
}

/// A `redis-server` of the test's own on a free port, killed on drop.
struct OwnServer(std::process::Child);

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a throwaway server and waits for its "ready" line; `None` without `redis-server`.
fn own_server(port: u16) -> Option<OwnServer> {
    use std::io::{BufRead, BufReader};
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            crate::common::skip("redis-server", &format_args!("cannot start it: {e}"));
            return None;
        }
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let server = OwnServer(child);
    for line in BufReader::new(stdout).lines() {
        if line.expect("server output").contains("Ready to accept connections") {
            return Some(server);
        }
    }
    panic!("redis-server on port {port} exited before it was ready");
}

#[test]
fn unreachable_after_the_server_dies_calls_fail_as_unavailable_quickly() {
    use reference::store::Store;
    use reference::sync::block_on;

    let port = closed_port();
    let Some(server) = own_server(port) else { return };
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{port}"), "dies").unwrap();
    assert_eq!(block_on(store.incr_by("n", 1)).unwrap(), 1);
    drop(server);
    let started = Instant::now();
    let err = block_on(store.incr_by("n", 1)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("is the backing service running?"), "{err}");
}
