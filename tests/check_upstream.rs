//! End-to-end tests of `stampede check` for the checks that drive the upstream and the chat:
//! the circuit breaker (#7), the token refresh (#11) and the WebSocket connections per user
//! (#17), on the embedded stack. The correct stack passes; each mutant, and the memory backend
//! across instances, is shown failing, by the rule that catches it.
//!
//! The Redis + PostgreSQL runs read `REDIS_URL` and `DATABASE_URL` (loopback defaults); when
//! either is unreachable they are skipped with a notice, except under `CI=true`, where that is
//! a failure. The checks watch the stack over seconds, so these tests run one at a time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

mod support;

static SERIAL: Mutex<()> = Mutex::new(());

/// One `stampede check` run: its exit code, output and `checks.json`.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: Value,
}

impl Run {
    /// The verdict of check `name`.
    fn verdict(&self, name: &str) -> &Value {
        self.report["verdicts"]
            .as_array()
            .and_then(|all| all.iter().find(|v| v["check"] == name))
            .unwrap_or_else(|| panic!("no verdict for {name}:\n{}\n{}", self.stdout, self.stderr))
    }

    /// The rules check `name` broke.
    fn rules(&self, name: &str) -> Vec<String> {
        self.verdict(name)["violations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["rule"].as_str().map(str::to_owned))
            .collect()
    }
}

fn profile() -> &'static Path {
    support::test_profile()
}

fn check(args: &[&str]) -> Run {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let run_id = format!("upstream-{}-{n}-{}", std::process::id(), now_ms());
    let reports = std::env::temp_dir().join(format!("stampede-check-{run_id}"));
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("check")
        .args(args)
        .arg("--profile")
        .arg(profile())
        .arg("--reports")
        .arg(&reports)
        // A run id of its own: the embedded stack's keys on shared backends are named after it.
        .args(["--run-id", &run_id])
        .output()
        .expect("run stampede check");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = std::fs::read(reports.join(&run_id).join("checks.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_dir_all(&reports);
    Run { code: out.status.code(), stdout, stderr, report }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// `--redis URL --database URL` for shared backends, or `None` (after a notice) when either is
/// unreachable outside CI.
fn services() -> Option<Vec<String>> {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let database = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    for (what, url) in [("redis", &redis), ("postgres", &database)] {
        if let Err(e) = reachable(url) {
            support::skip(what, &format_args!("unreachable at {url}: {e}"));
            return None;
        }
    }
    Some(vec!["--redis".to_owned(), redis, "--database".to_owned(), database])
}

/// Whether a TCP connection to the URL's host and port opens.
fn reachable(url: &str) -> std::io::Result<()> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let addr = host_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host_port} resolves to nothing")))?;
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map(drop)
}

fn with(base: &[&str], extra: &[String]) -> Vec<String> {
    base.iter().map(|s| (*s).to_owned()).chain(extra.iter().cloned()).collect()
}

fn run_with(base: &[&str], extra: &[String]) -> Run {
    let args = with(base, extra);
    check(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn assert_passes(run: &Run, name: &str) {
    assert_eq!(run.code, Some(0), "{name} should pass:\n{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.verdict(name)["status"], "held");
}

fn assert_fails(run: &Run, name: &str, rule: &str) {
    assert_eq!(run.code, Some(1), "{name} should fail:\n{}\n{}", run.stdout, run.stderr);
    let rules = run.rules(name);
    assert!(rules.iter().any(|r| r == rule), "{name} should break {rule}, broke {rules:?}:\n{}", run.stdout);
}

const BREAKER: &[&str] = &["--only", "upstream-breaker", "--rounds", "1"];
const TOKEN: &[&str] = &["--only", "platform-token-refresh"];
const CHAT: &[&str] = &["--only", "chat-connections", "--rounds", "2"];

#[test]
fn breaker_passes_on_memory() {
    let run = check(BREAKER);
    assert_passes(&run, "upstream-breaker");
    let evidence = &run.verdict("upstream-breaker")["evidence"];
    assert!(evidence["refused_open"].as_u64().unwrap() > 0, "{evidence}");
    assert!(evidence["refused_half_open"].as_u64().unwrap() > 0, "{evidence}");
}

#[test]
fn breaker_mutant_half_open_admits_all_fails_on_memory() {
    let run = check(&[BREAKER, &["--mutant", "HalfOpenAdmitsAll"][..]].concat());
    assert_fails(&run, "upstream-breaker", "multiple-trials");
}

#[test]
fn breaker_passes_on_redis_postgres_with_3_instances() {
    let Some(backends) = services() else { return };
    let run = run_with(&[BREAKER, &["--instances", "3"][..]].concat(), &backends);
    assert_passes(&run, "upstream-breaker");
}

#[test]
fn breaker_mutant_half_open_admits_all_fails_on_redis_postgres_with_3_instances() {
    let Some(backends) = services() else { return };
    let run =
        run_with(&[BREAKER, &["--instances", "3", "--mutant", "HalfOpenAdmitsAll"][..]].concat(), &backends);
    assert_fails(&run, "upstream-breaker", "multiple-trials");
}

#[test]
fn token_refresh_passes_on_memory() {
    assert_passes(&check(TOKEN), "platform-token-refresh");
}

#[test]
fn token_refresh_passes_on_redis_postgres_with_3_instances() {
    let Some(backends) = services() else { return };
    let run = run_with(&[TOKEN, &["--instances", "3"][..]].concat(), &backends);
    assert_passes(&run, "platform-token-refresh");
}

#[test]
fn token_refresh_mutant_no_lease_fails_on_redis_postgres_with_3_instances() {
    let Some(backends) = services() else { return };
    let run = run_with(&[TOKEN, &["--instances", "3", "--mutant", "NoLease"][..]].concat(), &backends);
    assert_fails(&run, "platform-token-refresh", "duplicate-refresh");
}

#[test]
fn token_refresh_fails_on_memory_with_3_instances() {
    // Each process has its own credential and lease: every one refreshes, and all but the
    // first present a refresh token the first already rotated.
    let run = check(&[TOKEN, &["--instances", "3"][..]].concat());
    assert_fails(&run, "platform-token-refresh", "reused-refresh-token");
}

#[test]
fn chat_connections_pass_on_memory() {
    assert_passes(&check(CHAT), "chat-connections");
}

#[test]
fn chat_connections_pass_on_redis_postgres_with_3_instances() {
    let Some(backends) = services() else { return };
    let run = run_with(&[CHAT, &["--instances", "3"][..]].concat(), &backends);
    assert_passes(&run, "chat-connections");
}

#[test]
fn chat_connections_fail_on_memory_with_3_instances() {
    // A slot counter per process: five per instance.
    let run = check(&[CHAT, &["--instances", "3"][..]].concat());
    assert_fails(&run, "chat-connections", "over-admission");
    let accepted = &run.verdict("chat-connections")["evidence"]["rounds"][0]["accepted"];
    assert_eq!(accepted, 15, "{}", run.stdout);
}

/// A stand-in for a running stack: answers every request `404`.
fn dummy_target() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ =
                stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    url
}

#[test]
fn upstream_checks_without_upstream_control_are_configuration_errors() {
    let target = dummy_target();
    let names = ["upstream-breaker", "platform-token-refresh", "upstream-pool", "upstream-usage-plan"];
    let args: Vec<&str> = names.iter().flat_map(|name| ["--only", name]).collect();
    let run = check(&[&["--target", &target][..], &args].concat());
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    for name in names {
        let verdict = run.verdict(name);
        assert_eq!(verdict["status"], "inconclusive", "{}", run.stdout);
        assert_eq!(verdict["requirements"][0]["name"], "configured", "{}", run.stdout);
    }
    assert!(run.stdout.contains("--upstream-control"), "{}", run.stdout);
}

#[test]
fn an_unreachable_upstream_control_exits_3() {
    let target = dummy_target();
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let control = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let run = check(&["--target", &target, "--upstream-control", &control, "--only", "upstream-breaker"]);
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(&control), "{}", run.stderr);
}
