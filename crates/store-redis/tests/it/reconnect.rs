//! A server that goes away and comes back: a `redis-server` of the test's own on a free port
//! (never the shared one), killed and started again on the same port, and a connection killed
//! with `CLIENT KILL`. The store answers again once the server is back, the bus carries
//! invalidations again, and what a process cached while deaf to the bus is dropped.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reference::clock::ManualClock;
use reference::l1_cache::{Applied, Cache, L1Cache};
use reference::store::{Store, StoreError};
use reference::sync::block_on;
use store_redis::{BusOptions, RedisBus, RedisStore};

/// `redis-server` on `port`, without persistence; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// A free port's server, or `None` (after a notice) when `redis-server` is not installed
    /// outside CI.
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        match Self::on(port) {
            Ok(server) => Some(server),
            Err(e) => {
                crate::common::skip("redis-server", &format_args!("cannot start it: {e}"));
                None
            }
        }
    }

    fn on(port: u16) -> std::io::Result<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server on {port} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { child, port })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, then a new server on the same port after `down`.
    fn restart_after(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        *self = Self::on(self.port).expect("restart redis-server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long after `since` `op` first succeeded, trying every 50 ms for at most 15 s.
fn until_ok<T>(since: Instant, mut op: impl FnMut() -> Result<T, StoreError>) -> Duration {
    let deadline = since + Duration::from_secs(15);
    loop {
        match op() {
            Ok(_) => return since.elapsed(),
            Err(e) if Instant::now() < deadline => {
                assert!(matches!(e, StoreError::Unavailable(_)), "not an outage's error: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("still failing {:?} after the server came back: {e}", since.elapsed()),
        }
    }
}

#[test]
fn redis_store_answers_again_after_the_server_restarts() {
    let Some(mut server) = Server::start() else { return };
    let store = RedisStore::connect(&server.url(), "reconnect").expect("connect");
    block_on(store.set("k", b"v1".to_vec(), None)).unwrap();
    server.restart_after(Duration::from_millis(500));
    // The server lost everything (no persistence); the store answers for the new one.
    let back = Instant::now();
    let recovered = until_ok(back, || block_on(store.set("k", b"v2".to_vec(), None)));
    assert!(recovered < Duration::from_secs(5), "took {recovered:?}");
    assert_eq!(block_on(store.get("k")).unwrap().as_deref(), Some(&b"v2"[..]));
}

#[test]
fn redis_store_answers_again_after_its_connection_is_killed() {
    let Some(server) = Server::start() else { return };
    let store = RedisStore::connect(&server.url(), "killed").expect("connect");
    let admin = RedisStore::connect(&server.url(), "admin").expect("connect");
    block_on(store.set("k", b"v1".to_vec(), None)).unwrap();
    let mut conn = admin.connection();
    let killed: i64 = block_on(admin.runtime().spawn(async move {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut conn)
            .await
    }))
    .unwrap()
    .unwrap();
    assert!(killed >= 1, "killed {killed}");
    let recovered = until_ok(Instant::now(), || block_on(store.get("k")));
    assert!(recovered < Duration::from_secs(5), "took {recovered:?}");
    assert_eq!(block_on(store.get("k")).unwrap().as_deref(), Some(&b"v1"[..]));
}

#[test]
fn redis_bus_carries_invalidations_again_after_the_server_restarts_and_drops_what_it_missed() {
    let Some(mut server) = Server::start() else { return };
    let options =
        BusOptions { connect_timeout: Duration::from_secs(2), ack_timeout: Duration::from_millis(500) };
    let [one, two] =
        [0, 1].map(|_| RedisBus::connect(&server.url(), "bus-restart", &options).expect("connect"));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (a, b) = (L1Cache::new(8, clock.clone(), one), L1Cache::new(8, clock.clone(), two));
    b.set("project:1:stats", b"v1".to_vec(), Duration::from_secs(60));
    server.restart_after(Duration::from_millis(300));
    // Both processes heard again: the invalidation reaches both.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match block_on(a.invalidate("project:9:*")) {
            Ok(applied) if applied.instances == 2 => break,
            other => assert!(Instant::now() < deadline, "the bus did not come back: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // What b held while deaf could predate an invalidation it missed: dropped.
    assert_eq!(b.get("project:1:stats"), None);
    b.set("project:1:stats", b"v2".to_vec(), Duration::from_secs(60));
    assert_eq!(block_on(a.invalidate("project:1:*")).unwrap(), Applied { instances: 2, dropped: 1 });
    assert_eq!(b.get("project:1:stats"), None);
}
