//! A real Redis behind a proxy: PING through it, then down (disabled) and up again. The test
//! starts its own `redis-server` on a free port, without persistence; where `redis-server` is
//! not installed it is skipped, except in CI (`CI=true`), where that is a failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use faults::Toxic;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::rig::{Rig, within};

/// A `redis-server` of the test's own, killed when dropped.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `redis-server` on a free port; `None` if it is not installed (outside CI).
fn start_redis() -> Option<(Redis, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            skip("redis-server", &format_args!("cannot start it: {e}"));
            return None;
        }
    };
    let stdout = child.stdout.take().unwrap();
    let redis = Redis(child);
    // Its log says when it accepts connections.
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("Ready to accept connections") {
            return Some((redis, port));
        }
    }
    panic!("redis-server on port {port} exited before it was ready");
}

async fn ping(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    stream.write_all(b"PING\r\n").await?;
    let mut reply = vec![0; 7];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}

#[tokio::test]
async fn redis_through_the_proxy_goes_down_and_up() {
    let Some((_redis, port)) = tokio::task::spawn_blocking(start_redis).await.unwrap() else { return };
    within(async {
        let rig = Rig::new("redis", format!("127.0.0.1:{port}").parse().unwrap()).await;
        let mut stream = rig.connect().await;
        assert_eq!(ping(&mut stream).await.unwrap(), b"+PONG\r\n");

        rig.client.set_enabled("redis", false).await.unwrap();
        assert!(ping(&mut stream).await.is_err(), "PING answered on a connection the proxy closed");
        assert!(TcpStream::connect(&rig.proxy.listen).await.is_err());

        rig.client.set_enabled("redis", true).await.unwrap();
        let mut stream = rig.connect().await;
        assert_eq!(ping(&mut stream).await.unwrap(), b"+PONG\r\n");

        rig.client.add_toxic("redis", &Toxic::latency("lag", 100, 0)).await.unwrap();
        let start = tokio::time::Instant::now();
        assert_eq!(ping(&mut stream).await.unwrap(), b"+PONG\r\n");
        assert!(start.elapsed() >= std::time::Duration::from_millis(100), "{:?}", start.elapsed());
    })
    .await;
}

/// A test that cannot run for want of `service`: under `CI=true`, a failure; otherwise a notice
/// and a line in the file `STAMPEDE_SKIPPED` names, which `ci/test` counts (and fails on).
fn skip(service: &str, why: &dyn std::fmt::Display) {
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
