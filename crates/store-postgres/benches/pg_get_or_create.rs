//! Video get-or-create per second: `reference::video::Registry` on `PgStore` (16 threads, a
//! pool of 16 connections) beside `pgbench` running the same SQL statements (`-c 16`,
//! `-M prepared`) against the same throwaway schema in the same run, printed as a ratio.
//!
//! Two cases, each one call of the component and the statements it sends:
//! - `new`: a URL never seen: one `INSERT … ON CONFLICT` that creates the row;
//! - `existing`: a URL already imported: the `INSERT … ON CONFLICT` that yields to the live
//!   row, then the `SELECT` that reads it.
//!
//! Each case runs twice. With the pool's pre-ping off (`/`), against pgbench's plain script:
//! what the client stack costs. With the seed's policy (`/ping`: every connection taken from
//! the pool is pinged first, an empty query and its round trip — one per statement here),
//! against pgbench sending a `SELECT 1` before each statement: the same round trips.
//!
//! `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test) names the server;
//! `BENCH_SECONDS` (default 3) the length of each timed run; `PGBENCH` the pgbench binary.

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reference::sync::block_on;
use reference::video::{Registry, Video, VideoRegistry, key};
use store_postgres::{PgPool, PgStore, PoolPolicy};

const CLIENTS: usize = 16;
const USER: &str = "42";
const EXISTING: usize = 1_000;

fn url(n: u64) -> String {
    format!("https://www.youtube.com/watch?v={n}")
}

/// Calls per second of `call(thread, i)` on `CLIENTS` threads for `seconds`.
fn run(seconds: u64, call: impl Fn(usize, u64) + Send + Sync + 'static) -> f64 {
    let (stop, done, call) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(call));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (stop, done, call) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&call));
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    call(t, i);
                    i += 1;
                }
                done.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("bench thread panicked");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Transactions per second `pgbench` reports for `script`.
fn pgbench(url: &str, script: &str, seconds: u64) -> f64 {
    let mut file = tempfile(script);
    file.flush().expect("write the pgbench script");
    let binary = std::env::var("PGBENCH").unwrap_or_else(|_| "pgbench".into());
    let out = Command::new(&binary)
        .args(["-n", "-M", "prepared", "-c", &CLIENTS.to_string(), "-j", "2", "-T", &seconds.to_string()])
        .arg("-f")
        .arg(file.path())
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}; install postgresql-client or set PGBENCH"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pgbench failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .unwrap_or_else(|| panic!("no tps line in pgbench's output: {stdout}"))
}

/// A script file that lives as long as the value.
struct Script {
    path: std::path::PathBuf,
    file: std::fs::File,
}

impl Script {
    fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile(contents: &str) -> Script {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "pg_get_or_create-{}-{}.sql",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::File::create(&path).expect("create the pgbench script");
    file.write_all(contents.as_bytes()).expect("write the pgbench script");
    Script { path, file }
}

/// The SQL literal of `text`, with `:` escaped (`\x3a`) so that pgbench does not take the
/// `:42` in a key for one of its variables.
fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''").replace(':', "\\x3a"))
}

fn main() {
    let url_env =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let seconds = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let schema = format!("stampede_bench_{}", std::process::id());
    let policy = PoolPolicy { pool_size: CLIENTS, max_overflow: 0, ..PoolPolicy::SEED };
    let pool = PgPool::new(&url_env, "stampede-bench", policy).expect("pool");
    let store = block_on(PgStore::open(pool, &schema)).expect("cannot open the store; is postgres running?");
    let _drop = DropSchema(store.clone());
    let registry = Arc::new(Registry::new(store.clone()));
    let unpinged = PoolPolicy { pre_ping: false, ..policy };
    let unpinged = PgPool::new(&url_env, "stampede-bench", unpinged).expect("pool");
    let unpinged = Arc::new(Registry::new(block_on(PgStore::open(unpinged, &schema)).expect("store")));
    let s = format!("\"{schema}\"");

    // The statements PgStore sends for the component's calls (see src/store.rs), with the key
    // and value built as the component builds them.
    let prefix = key(USER, &url(0));
    let prefix = literal(prefix.strip_suffix('0').expect("url ends in its number"));
    let value = literal(std::str::from_utf8(&Video::new(USER, &url(0)).encode()).expect("json"));
    let live = "(kv.expires_at IS NULL OR kv.expires_at > now())";
    let insert = |n: &str| {
        format!(
            "INSERT INTO {s}.kv AS kv (key, value, expires_at) VALUES ({prefix} || {n}, convert_to({value}, 'UTF8'), \
             now() + NULL::bigint * interval '1 millisecond') ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             expires_at = excluded.expires_at WHERE NOT {live} RETURNING 1;\n"
        )
    };
    let new_script = format!(
        "\\set n random(1000000, 9000000000000)\n{}",
        insert("CAST(:client_id AS text) || '-' || CAST(:n AS text)")
    );
    let existing_script = format!(
        "\\set n random(0, {})\n{}SELECT value FROM {s}.kv AS kv WHERE key = {prefix} || CAST(:n AS text) AND {live};\n",
        EXISTING - 1,
        insert("CAST(:n AS text)")
    );

    for n in 0..EXISTING as u64 {
        block_on(registry.get_or_create(USER, &url(n))).expect("seed a video");
    }

    println!("video get-or-create on PostgreSQL, {CLIENTS} clients, {seconds} s per run");
    println!("{:<14} {:>14} {:>14} {:>7}", "case", "PgStore/s", "pgbench tps", "ratio");
    let pinged = |script: &str| {
        script
            .replace("INSERT INTO", "SELECT 1;\nINSERT INTO")
            .replace("SELECT value", "SELECT 1;\nSELECT value")
    };
    for (case, registry, new_script, existing_script) in [
        ("", &unpinged, new_script.clone(), existing_script.clone()),
        ("/ping", &registry, pinged(&new_script), pinged(&existing_script)),
    ] {
        let registry_new = Arc::clone(registry);
        let round = case.len() as u64;
        let ours_new = run(seconds, move |t, i| {
            let n = 1_000_000 + (t as u64) * 1_000_000_000 + round * 100_000_000 + i;
            assert!(block_on(registry_new.get_or_create(USER, &url(n))).expect("get_or_create").created);
        });
        let theirs_new = pgbench(&url_env, &new_script, seconds);
        report(&format!("new{case}"), ours_new, theirs_new);

        let registry_existing = Arc::clone(registry);
        let ours_existing = run(seconds, move |t, i| {
            let n = (t as u64 * 7_919 + i * 104_729) % EXISTING as u64;
            let got = block_on(registry_existing.get_or_create(USER, &url(n)));
            assert!(!got.expect("get_or_create").created);
        });
        let theirs_existing = pgbench(&url_env, &existing_script, seconds);
        report(&format!("existing{case}"), ours_existing, theirs_existing);
    }
}

/// Drops the throwaway schema however the run ends.
struct DropSchema(PgStore);

impl Drop for DropSchema {
    fn drop(&mut self) {
        if let Err(e) = block_on(self.0.drop_schema()) {
            eprintln!("cannot drop the bench schema {}: {e}", self.0.schema());
        }
    }
}

fn report(case: &str, ours: f64, theirs: f64) {
    let ratio = ours / theirs;
    let verdict = if ratio >= 0.7 { "" } else { "  (below the 70 % target)" };
    println!("{case:<14} {ours:>14.0} {theirs:>14.0} {:>6.0}%{verdict}", ratio * 100.0);
}
