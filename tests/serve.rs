//! End-to-end tests of `stampede serve`: it starts quickly, answers, and stops cleanly on
//! SIGTERM; `--instances N` runs N processes, each with its own memory state, stopped together,
//! or sharing users, limits, records and cache invalidations through Redis and PostgreSQL;
//! `--mutant` runs a named mutant and says so.
//!
//! The shared-backend test needs Redis at `REDIS_URL` and PostgreSQL at `DATABASE_URL` (the
//! loopback defaults otherwise): without them it skips with a notice, unless `CI=true`, where
//! it fails. It runs under a namespace of its own and deletes it afterwards.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

mod support;

/// Bounds that only detect hangs; they are not performance targets.
const START_BOUND: Duration = Duration::from_secs(5);
const STOP_BOUND: Duration = Duration::from_secs(10);

/// A running `stampede serve`, its standard output read line by line; killed on drop.
struct Serve {
    child: Child,
    lines: Receiver<String>,
    stderr: Receiver<String>,
    started: Instant,
}

impl Serve {
    fn spawn(args: &[&str]) -> Self {
        Self::spawn_with(args, &[])
    }

    /// [`Serve::spawn`] with `env` set for it.
    fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stampede serve");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (tx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        Serve { child, lines, stderr, started }
    }

    /// The URL of the next `listening on` line, and how long after the spawn it came.
    fn listening(&self) -> (String, Duration) {
        self.listening_within(START_BOUND)
    }

    /// [`Serve::listening`], the line due within `bound` of the spawn.
    fn listening_within(&self, bound: Duration) -> (String, Duration) {
        let deadline = self.started + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no listening line within {bound:?}; stderr: {}", self.stderr_so_far())
            });
            if let Some(url) = line.strip_prefix("stampede serve: listening on ") {
                return (url.to_owned(), self.started.elapsed());
            }
        }
    }

    fn stderr_so_far(&self) -> String {
        self.stderr.try_recv().unwrap_or_else(|_| "(still open)".to_owned())
    }

    /// Everything it wrote to standard error, once it has exited.
    fn stderr_after_exit(&self) -> String {
        self.stderr.recv_timeout(STOP_BOUND).expect("standard error closes when the process exits")
    }

    /// SIGTERM, as a service manager stops it.
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Its exit status, within [`STOP_BOUND`].
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STOP_BOUND;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running {STOP_BOUND:?} after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// Whether anything accepts connections at `url`'s address.
fn answers(url: &str) -> bool {
    let addr = url.strip_prefix("http://").unwrap();
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)).is_ok()
}

/// Waits until nothing accepts connections at `url`; false if something still does after the bound.
fn stops_answering(url: &str) -> bool {
    let deadline = Instant::now() + STOP_BOUND;
    while Instant::now() < deadline {
        if !answers(url) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[tokio::test]
async fn serve_starts_quickly_answers_and_exits_0_on_sigterm() {
    let mut serve = Serve::spawn(&["--listen", "127.0.0.1:0"]);
    let (url, after) = serve.listening();
    println!("stampede serve: listening {} ms after spawn (target: under 1 s)", after.as_millis());
    let health = client().get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health, serde_json::json!({ "status": "ok", "instance": "stack-0" }));
    let contract = client().get(format!("{url}/openapi.json")).send().await.unwrap();
    assert_eq!(contract.status(), 200);
    serve.terminate();
    let stopping = Instant::now();
    let status = serve.wait();
    println!("stampede serve: exited {status} {} ms after SIGTERM", stopping.elapsed().as_millis());
    assert!(status.success(), "{status}; stderr: {}", serve.stderr_so_far());
    assert!(!answers(&url), "{url} still answers after exit");
}

/// Regression: the SIGTERM handler was installed only after the listening line was printed, so
/// a SIGTERM sent on seeing the line could kill the process (status 143) instead of stopping it.
/// bash reads the line and signals at once (`kill` is a builtin: no process to start first,
/// which would hide the race); the old code lost about half of these.
#[test]
fn serve_exits_0_on_a_sigterm_sent_right_after_the_listening_line() {
    const SCRIPT: &str = r#"
        coproc SERVE { exec "$1" serve --listen 127.0.0.1:0 2>/dev/null; }
        pid=$SERVE_PID; exec {out}<&"${SERVE[0]}"
        while read -r line <&"$out"; do
            case "$line" in "stampede serve: listening on "*) break ;; esac
        done
        kill -TERM "$pid"; wait "$pid"; echo "exit $?"
    "#;
    for attempt in 0..10 {
        let mut child = Command::new("bash")
            .args(["-c", SCRIPT, "sigterm-race", env!("CARGO_BIN_EXE_stampede")])
            .stdout(Stdio::piped())
            .spawn()
            .expect("bash");
        let deadline = Instant::now() + START_BOUND + STOP_BOUND;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("attempt {attempt}: no exit within {:?}", START_BOUND + STOP_BOUND);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out.trim(), "exit 0", "attempt {attempt}");
    }
}

#[tokio::test]
async fn serve_instances_keep_memory_state_per_process_and_stop_together() {
    let mut serve = Serve::spawn(&["--listen", "127.0.0.1:0", "--instances", "2"]);
    let (first, _) = serve.listening();
    let (second, after) = serve.listening();
    println!("stampede serve --instances 2: both listening {} ms after spawn", after.as_millis());
    assert_ne!(first, second);
    let client = client();
    let created = client.post(format!("{first}/v1/users")).json(&serde_json::json!({ "name": "alice" }));
    let created = created.send().await.unwrap();
    assert_eq!(created.status(), 201);
    let token = created.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let quota = |url: &str| client.get(format!("{url}/v1/quota")).bearer_auth(&token).send();
    assert_eq!(quota(&first).await.unwrap().status(), 200, "known where it was created");
    assert_eq!(quota(&second).await.unwrap().status(), 401, "memory state is per process");
    serve.terminate();
    let status = serve.wait();
    assert!(status.success(), "{status}; stderr: {}", serve.stderr_so_far());
    assert!(stops_answering(&first), "{first} still answers after the parent stopped");
    assert!(stops_answering(&second), "{second} still answers after the parent stopped");
}

#[tokio::test]
async fn serve_runs_the_named_mutant_and_logs_a_warn_naming_it() {
    // The catalogue name, and its last part: `GetThenSet` names one stack mutant only.
    for spelling in ["fixed_window::mutants::GetThenSet", "GetThenSet"] {
        let mut serve = Serve::spawn(&["--listen", "127.0.0.1:0", "--mutant", spelling]);
        let (url, _) = serve.listening();
        assert!(answers(&url), "--mutant {spelling}: {url} does not answer");
        serve.terminate();
        let status = serve.wait();
        let stderr = serve.stderr_after_exit();
        assert!(status.success(), "--mutant {spelling}: {status}; stderr: {stderr}");
        let warned = stderr
            .lines()
            .any(|line| line.contains("WARN") && line.contains("fixed_window::mutants::GetThenSet"));
        assert!(warned, "--mutant {spelling}: no WARN naming the mutant in:\n{stderr}");
    }
}

/// The loopback defaults of the real services, as every test that needs them reads them.
fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A namespace of the stack's on the real Redis and PostgreSQL: its keys and its schema are
/// deleted on drop, whatever the test's outcome.
struct Namespace {
    name: String,
    redis: redis::Client,
    postgres: store_postgres::PgStore,
}

impl Namespace {
    /// A namespace unique to `test` in this run, or `None` (after a notice) when a service is
    /// out of reach; with `CI=true` that is a failure instead.
    async fn open(test: &str) -> Option<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("stampede-serve-{test}-{}-{nanos}", std::process::id());
        match Self::try_open(&name).await {
            Ok(namespace) => Some(namespace),
            Err(e) => {
                support::skip("redis and postgres", &e);
                None
            }
        }
    }

    async fn try_open(name: &str) -> Result<Self, String> {
        let (redis_url, database_url) = (redis_url(), database_url());
        let redis =
            redis::Client::open(redis_url.as_str()).map_err(|e| format!("redis at {redis_url}: {e}"))?;
        let mut connection = redis
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(|e| format!("redis at {redis_url}: {e}"))?;
        redis::cmd("PING")
            .query::<String>(&mut connection)
            .map_err(|e| format!("redis at {redis_url}: {e}"))?;
        let policy = store_postgres::PoolPolicy {
            acquire_timeout: Duration::from_secs(5),
            ..store_postgres::PoolPolicy::default()
        };
        let pool = store_postgres::PgPool::new(&database_url, "stampede-serve-test", policy)
            .map_err(|e| format!("postgres at {database_url}: {e}"))?;
        // The schema the stack derives from the namespace; opening it here creates it.
        let postgres = store_postgres::PgStore::open(pool, &name.replace([':', '-', '.'], "_"))
            .await
            .map_err(|e| format!("postgres at {database_url}: {e}"))?;
        Ok(Self { name: name.to_owned(), redis, postgres })
    }

    /// The Redis keys matching `pattern`.
    fn scan(&self, pattern: &str) -> redis::RedisResult<Vec<String>> {
        let mut connection = self.redis.get_connection_with_timeout(Duration::from_secs(2))?;
        let (mut keys, mut cursor) = (Vec::new(), 0u64);
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Every Redis key naming the namespace: its stores' (`{ns}:…`, `{ns}#…`) and its cache's
    /// (`{ns:cache}:…`). The name holds no glob character.
    fn redis_keys(&self) -> redis::RedisResult<Vec<String>> {
        self.scan(&format!("*{}*", self.name))
    }

    /// Deletes the namespace's Redis keys and drops its PostgreSQL schema.
    fn clean(&self) -> Result<(), String> {
        let keys = self.redis_keys().map_err(|e| format!("cannot list the Redis keys: {e}"))?;
        let mut connection =
            self.redis.get_connection_with_timeout(Duration::from_secs(2)).map_err(|e| e.to_string())?;
        for chunk in keys.chunks(500) {
            redis::cmd("DEL")
                .arg(chunk)
                .query::<u64>(&mut connection)
                .map_err(|e| format!("cannot delete the Redis keys: {e}"))?;
        }
        reference::sync::block_on(self.postgres.drop_schema())
            .map_err(|e| format!("cannot drop the PostgreSQL schema: {e}"))
    }
}

/// Cleans up after a failed test too.
impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = self.clean() {
            eprintln!("namespace {}: {e}", self.name);
        }
    }
}

/// The processes whose parent is `parent`, with their command lines (Linux `/proc`).
fn children(parent: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// What one instance's `/healthz` says its name is.
async fn instance_name(client: &reqwest::Client, url: &str) -> String {
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "{url}/healthz");
    let health: serde_json::Value = health.json().await.unwrap();
    health["instance"]
        .as_str()
        .unwrap_or_else(|| panic!("{url}/healthz names no instance: {health}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_instances_share_users_limits_records_and_cache_invalidations_through_redis_and_postgres() {
    let Some(namespace) = Namespace::open("shared").await else { return };
    let (redis, database) = (redis_url(), database_url());
    let mut serve = Serve::spawn(&[
        "--instances",
        "3",
        "--listen",
        "127.0.0.1:0",
        "--redis",
        &redis,
        "--database",
        &database,
        "--namespace",
        &namespace.name,
        "--publish-limit",
        "5/60s",
    ]);
    // A hang detector: three processes connecting and migrating on two shared cores.
    let bound = Duration::from_secs(30);
    let urls: Vec<String> = (0..3).map(|_| serve.listening_within(bound).0).collect();
    let client = client();

    // Three processes: three ports, three instance names, three children of the parent.
    let mut names = Vec::new();
    for url in &urls {
        names.push(instance_name(&client, url).await);
    }
    let distinct = |items: &[String]| items.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(distinct(&urls), 3, "{urls:?}");
    assert_eq!(distinct(&names), 3, "{names:?}");
    let instances = children(serve.child.id());
    let mut pids = Vec::new();
    for name in &names {
        let holders: Vec<u32> = instances
            .iter()
            .filter(|(_, cmdline)| cmdline.contains(&format!("--instance-name {name} ")))
            .map(|(pid, _)| *pid)
            .collect();
        assert_eq!(holders.len(), 1, "one child process runs {name}: {instances:?}");
        pids.extend(holders);
    }
    println!("stampede serve --instances 3: {names:?} on {urls:?}, pids {pids:?}");
    // Ask each instance in turn, round robin.
    let at = |i: usize| urls[i % urls.len()].as_str();

    // A user created on instance 0 authenticates on 1 and 2.
    let created = client.post(format!("{}/v1/users", at(0))).json(&serde_json::json!({ "name": "alice" }));
    let created = created.send().await.unwrap();
    assert_eq!(created.status(), 201);
    let token = created.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    for i in 1..3 {
        let quota = client.get(format!("{}/v1/quota", at(i))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(quota.status(), 200, "instance {i} knows the user created on instance 0");
    }

    // One user's publish limit (5 a minute) admits exactly 5 of 15 concurrent requests spread
    // over the three instances.
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..15 {
        let request = client
            .post(format!("{}/v1/publish", at(i)))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "video_id": format!("v{i}"), "platform": "youtube" }));
        requests.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = requests.join_all().await;
    let admitted = statuses.iter().filter(|s| **s == 202).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((admitted, refused), (5, 10), "{statuses:?}");

    // A project, its dashboard read twice on every instance: computed once, then each
    // instance's own L1 answers.
    let project = client
        .post(format!("{}/v1/projects", at(0)))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "before" }))
        .send()
        .await
        .unwrap();
    assert_eq!(project.status(), 201);
    let project = project.json::<serde_json::Value>().await.unwrap()["id"].as_u64().unwrap();
    let dashboard = |i: usize| {
        client.get(format!("{}/v1/projects/{project}/dashboard", at(i))).bearer_auth(&token).send()
    };
    for i in 0..3 {
        for _ in 0..2 {
            assert_eq!(dashboard(i).await.unwrap().status(), 200);
        }
        let warm = dashboard(i).await.unwrap();
        assert_eq!(warm.headers()["x-cache"], "L1", "instance {i}'s L1 holds the dashboard");
    }

    // A video imported on instance 1 lists on instance 2.
    let url = "https://www.youtube.com/watch?v=shared";
    let imported = client
        .post(format!("{}/v1/videos", at(1)))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "url": url, "project_id": project }))
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 201);
    let video = imported.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let list = client.get(format!("{}/v1/videos", at(2))).bearer_auth(&token).send().await.unwrap();
    let list: serde_json::Value = list.json().await.unwrap();
    let listed: Vec<&str> =
        list["items"].as_array().unwrap().iter().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(listed, [video.as_str()], "instance 2 lists the video imported on instance 1");

    // Renamed on instance 0: once the rename answers, no instance serves the old name.
    let renamed = client
        .patch(format!("{}/v1/projects/{project}", at(0)))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "after" }))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    for i in [1, 2, 0] {
        let seen: serde_json::Value = dashboard(i).await.unwrap().json().await.unwrap();
        assert_eq!(seen["project"]["name"], "after", "instance {i} right after the rename: {seen}");
    }

    serve.terminate();
    let status = serve.wait();
    assert!(status.success(), "{status}; stderr: {}", serve.stderr_so_far());
    for url in &urls {
        assert!(stops_answering(url), "{url} still answers after the parent stopped");
    }
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "instance process {pid} outlived the parent"
        );
    }
    let kept = namespace.redis_keys().unwrap();
    assert!(kept.iter().any(|k| k.starts_with(&format!("{{{}}}:", namespace.name))), "{kept:?}");
    namespace.clean().unwrap();
    assert_eq!(namespace.redis_keys().unwrap(), Vec::<String>::new(), "keys left behind");
}

/// `stampede check --processes 3` against `url`, only `check`: its exit code and the rules
/// its verdict broke.
fn check_behind_one_url(url: &str, check: &str) -> (Option<i32>, Vec<String>, String) {
    let reports = std::env::temp_dir().join(format!("stampede-oneport-{}", std::process::id()));
    let run_id = format!(
        "oneport-{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["check", "--target", url, "--processes", "3", "--only", check])
        .arg("--profile")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/reference.toml"))
        .args(["--reports", reports.to_str().unwrap(), "--run-id", &run_id])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = std::fs::read(reports.join(&run_id).join("checks.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let rules = report["verdicts"][0]["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["rule"].as_str().map(str::to_owned))
        .collect();
    (out.status.code(), rules, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_one_port_puts_three_processes_behind_one_url_and_check_processes_reaches_every_one() {
    let Some(namespace) = Namespace::open("oneport").await else { return };
    let (redis, database) = (redis_url(), database_url());
    for mutant in [None, Some("l1_cache::mutants::MultiLayerLocalOnly")] {
        let mut args = vec![
            "--instances",
            "3",
            "--one-port",
            "--listen",
            "127.0.0.1:0",
            "--redis",
            &redis,
            "--database",
            &database,
            "--namespace",
            &namespace.name,
        ];
        args.extend(mutant.iter().flat_map(|m| ["--mutant", *m]));
        let serve = Serve::spawn(&args);
        let bound = Duration::from_secs(30);
        let urls: Vec<String> = (0..3).map(|_| serve.listening_within(bound).0).collect();
        assert!(urls.iter().all(|u| *u == urls[0]), "one URL for every process: {urls:?}");
        // Fresh connections reach every process behind it.
        let fresh = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap();
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..client::reads_to_reach(3) * 2 {
            names.insert(instance_name(&fresh, &urls[0]).await);
        }
        assert_eq!(names.len(), 3, "{names:?}");
        // The per-process cache (the mutant) is caught through the one URL, run after run; the
        // shared one holds.
        let runs = if mutant.is_some() { 3 } else { 1 };
        for run in 0..runs {
            let (code, rules, text) = check_behind_one_url(&urls[0], "dashboard-invalidation");
            match mutant {
                None => assert_eq!(code, Some(0), "{text}"),
                Some(_) => {
                    assert_eq!(code, Some(1), "run {run}: {text}");
                    assert!(rules.iter().any(|r| r == "stale-read"), "run {run}: {rules:?}\n{text}");
                }
            }
        }
        drop(serve);
    }
}

/// The pid of `parent`'s child serving instance `name`.
fn instance_pid(parent: u32, name: &str) -> Option<u32> {
    children(parent)
        .into_iter()
        .find(|(_, cmdline)| cmdline.contains(&format!("--instance-name {name} ")))
        .map(|(pid, _)| pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_instances_start_a_killed_instance_again_within_the_restart_budget() {
    let mut serve = Serve::spawn(&["--listen", "127.0.0.1:0", "--instances", "2", "--one-port"]);
    let (url, _) = serve.listening();
    let _ = serve.listening();
    let parent = serve.child.id();
    let killed = instance_pid(parent, "stack-1").expect("stack-1 runs");
    let status = Command::new("kill").args(["-KILL", &killed.to_string()]).status().unwrap();
    assert!(status.success());
    // A fresh connection per request: SO_REUSEPORT spreads them over whichever processes listen.
    let fresh = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let again = instance_pid(parent, "stack-1").filter(|pid| *pid != killed);
        if again.is_some() && instance_name(&fresh, &url).await == "stack-1" {
            break;
        }
        assert!(serve.child.try_wait().unwrap().is_none(), "serve exited: {}", serve.stderr_so_far());
        assert!(Instant::now() < deadline, "stack-1 not answering again 15 s after it was killed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    serve.terminate();
    let status = serve.wait();
    let stderr = serve.stderr_after_exit();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("instance 1 stopped on its own") && stderr.contains("starting it again"),
        "{stderr}"
    );

    // No budget: the first crash stops them all, and says why.
    let mut serve =
        Serve::spawn(&["--listen", "127.0.0.1:0", "--instances", "2", "--one-port", "--restarts", "0"]);
    let (url, _) = serve.listening();
    let _ = serve.listening();
    let killed = instance_pid(serve.child.id(), "stack-1").expect("stack-1 runs");
    Command::new("kill").args(["-KILL", &killed.to_string()]).status().unwrap();
    let status = serve.wait();
    let stderr = serve.stderr_after_exit();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("(--restarts 0); stopped the others"), "{stderr}");
    assert!(stops_answering(&url), "{url} still answers after serve stopped");
}

/// The field's supervisor, kept as a mutant: its budget is none whatever `--restarts` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_the_stop_all_on_crash_mutant_stops_every_instance_on_the_first_crash() {
    let mut serve = Serve::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--instances",
        "2",
        "--one-port",
        "--mutant",
        "supervisor::mutants::StopAllOnCrash",
    ]);
    let (url, _) = serve.listening();
    let _ = serve.listening();
    let killed = instance_pid(serve.child.id(), "stack-1").expect("stack-1 runs");
    Command::new("kill").args(["-KILL", &killed.to_string()]).status().unwrap();
    let status = serve.wait();
    let stderr = serve.stderr_after_exit();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("(supervisor::mutants::StopAllOnCrash); stopped the others"), "{stderr}");
    assert!(stops_answering(&url), "{url} still answers after serve stopped");
}

/// A Redis restarted without persistence forgets the limiter's counters: what still holds is
/// at most N admitted per window *per Redis lifetime* — N before the restart, N after it, so
/// at most N × (restarts + 1) within one window; never more than N from the restart on.
/// (The user and its token live in PostgreSQL and outlive the restart.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_limit_admits_at_most_n_per_window_per_redis_lifetime() {
    let Some(mut redis) = support::OwnRedis::start() else { return };
    let Some(namespace) = Namespace::open("lifetime").await else { return };
    let database = database_url();
    let serve = Serve::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--redis",
        &redis.url,
        "--database",
        &database,
        "--namespace",
        &namespace.name,
        "--publish-limit",
        "5/60s",
    ]);
    let (url, _) = serve.listening_within(Duration::from_secs(30));
    let client = client();
    let created = client.post(format!("{url}/v1/users")).json(&serde_json::json!({ "name": "ann" }));
    let created = created.send().await.unwrap();
    assert_eq!(created.status(), 201);
    let token = created.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let burst = |round: usize| {
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..15 {
            let request = client
                .post(format!("{url}/v1/publish"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "video_id": format!("v{round}-{i}"), "platform": "youtube" }));
            requests.spawn(async move { request.send().await.unwrap().status().as_u16() });
        }
        requests.join_all()
    };
    let counts = |statuses: &[u16]| {
        (statuses.iter().filter(|s| **s == 202).count(), statuses.iter().filter(|s| **s == 429).count())
    };
    let before = burst(0).await;
    assert_eq!(counts(&before), (5, 10), "{before:?}");

    redis.restart();
    let back = Instant::now();
    loop {
        let ready = client.get(format!("{url}/readyz")).send().await.map(|r| r.status().as_u16());
        if matches!(ready, Ok(200)) {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(15), "not ready 15 s after Redis came back: {ready:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same user within the same minute: the counter is gone, N more are admitted — and no
    // more than N.
    let after = burst(1).await;
    assert_eq!(counts(&after), (5, 10), "{after:?}");
}

/// Secrets stay out of what strangers and other users of the machine see: the instances of
/// `--instances` get the Redis URL and the upstream refresh token by environment, not in their
/// command lines (world-readable in `/proc`); with Redis away, `/readyz` and a Redis-backed
/// route answer 503 naming Redis by host and port, without its password — and nothing the
/// processes log shows it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_the_redis_password_and_the_refresh_token_out_of_argv_answers_and_logs() {
    const PASSWORD: &str = "s3cret-serve-password";
    let Some(mut redis) = support::OwnRedis::start_with(&["--requirepass", PASSWORD]) else { return };
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    // The URL by environment to the parent too: no password in any command line.
    let mut serve =
        Serve::spawn_with(&["--listen", "127.0.0.1:0", "--instances", "2"], &[("STAMPEDE_REDIS", &url)]);
    let bound = Duration::from_secs(30);
    let (first, _) = serve.listening_within(bound);
    serve.listening_within(bound);
    let instances = children(serve.child.id());
    assert_eq!(instances.len(), 2, "{instances:?}");
    // The instances call an upstream (the parent's fake one), whose refresh token they hold.
    assert!(instances.iter().all(|(_, cmdline)| cmdline.contains("--upstream ")), "{instances:?}");
    for (pid, cmdline) in &instances {
        assert!(!cmdline.contains(PASSWORD), "instance {pid} has the Redis password in its command line");
        assert!(!cmdline.contains("--upstream-refresh-token"), "instance {pid}: {cmdline}");
        assert!(!cmdline.contains("--redis"), "instance {pid}: {cmdline}");
    }
    let client = client();
    let created = client.post(format!("{first}/v1/users")).json(&serde_json::json!({ "name": "ann" }));
    let created = created.send().await.unwrap();
    assert_eq!(created.status(), 201, "the instances reach the password-protected Redis");
    let token = created.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_owned();

    redis.kill();
    let address = format!("127.0.0.1:{}", redis.port);
    for (path, authorized) in [("/readyz", false), ("/v1/quota", true)] {
        let request = client.get(format!("{first}{path}"));
        let request = if authorized { request.bearer_auth(&token) } else { request };
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap();
        assert_eq!(status, 503, "{path}: {body}");
        assert!(!body.contains(PASSWORD), "{path} shows the Redis password: {body}");
        assert!(body.contains(&address), "{path} names Redis by its address: {body}");
    }
    serve.terminate();
    serve.wait();
    let logged = serve.stderr_after_exit();
    assert!(!logged.contains(PASSWORD), "the logs show the Redis password:\n{logged}");
}

/// The reference profile with `[stack]` as `stack` says (its own `[stack]` replaced), written
/// to a file of the test's.
fn profile_with_stack(stack: &str, name: &str) -> std::path::PathBuf {
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/reference.toml");
    let text = std::fs::read_to_string(reference).unwrap();
    let at = text.find("\n[stack]\n").expect("the reference profile has a [stack]");
    let end = text[at + 1..].find("\n[").map_or(text.len(), |i| at + 1 + i);
    let text = format!("{}\n[stack]\n{stack}\n{}", &text[..at], &text[end..]);
    let path = std::env::temp_dir().join(format!("stampede-serve-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// `serve --profile` with a mistake in `[stack]`: exit 2 before anything starts, the file,
/// the line and the setting named.
#[test]
fn serve_profile_refuses_a_stack_setting_serve_does_not_have_or_cannot_read_naming_its_line() {
    for (stack, says) in [
        ("breaker_opne = \"2s\"", "stack.breaker_opne: `stampede serve` has no option --breaker-opne"),
        ("breaker_open = \"2x\"", "stack.breaker_open = \"2x\""),
        ("instance_name = \"x\"", "has no option --instance-name"),
        ("one_port = \"yes\"", "stack.one_port: true or false"),
        ("database = \"postgres://u:pw@db/x\"", "give it in STAMPEDE_DATABASE"),
    ] {
        let path = profile_with_stack(stack, "bad");
        let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(["serve", "--listen", "127.0.0.1:0", "--profile"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stack}: {stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stack}: no file in {stderr}");
        assert!(stderr.contains(", line "), "{stack}: no line in {stderr}");
        assert!(stderr.contains(says), "{stack}: {says:?} not in {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"), "{stack}: it started");
        let _ = std::fs::remove_file(path);
    }
}

/// `serve --profile` serves what the profile's checks need (as `/settings` publishes), then its
/// `[stack]`, and a flag given on the command line wins over both — said on standard error
/// when it leaves a check unable to judge.
#[tokio::test]
async fn serve_profile_serves_what_the_checks_need_its_stack_table_and_the_flags_given_over_both() {
    let path = profile_with_stack(
        "publish_limit = \"7/3s\"\nregistration_limit = \"500/60s\"\nbody_floor = 0x2000",
        "good",
    );
    let profile = path.to_str().unwrap();
    let mut serve =
        Serve::spawn(&["--listen", "127.0.0.1:0", "--profile", profile, "--registration-limit", "400/60s"]);
    let (url, _) = serve.listening();
    let settings: serde_json::Value =
        client().get(format!("{url}/settings")).send().await.unwrap().json().await.unwrap();
    assert_eq!(settings["schema"], "stampede-settings/1");
    // From the checks: the breaker check's open_ms, the lifecycle check's timeouts, the pool.
    assert_eq!(settings["breaker"]["open_ms"], 2000, "{settings:#}");
    assert_eq!(settings["task_visibility_ms"], 1500);
    assert_eq!(settings["upstream_pool"], serde_json::json!({ "connections": 24, "idle": 12 }));
    assert_eq!(settings["workers"], 32);
    // The usage-plan check's hour, sized from the checks before it.
    let hour = settings["upstream_plan"]["per_hour"].as_u64().unwrap();
    assert!((202..5_000).contains(&hour), "not the seed's 20, nor unbounded: {settings:#}");
    assert_eq!(settings["upstream_plan"]["per_day"], 24 * hour);
    // From [stack]; and the command line over [stack].
    assert_eq!(settings["publish_limit"], serde_json::json!({ "max": 7, "window_ms": 3000 }));
    assert_eq!(settings["registration_limit"]["max"], 400);
    assert_eq!(settings["connections"]["body_floor_bytes_per_s"], 8192, "0x2000 read in its base");
    assert!(settings["upstream_control"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{settings:#}");
    serve.terminate();
    assert!(serve.wait().success());
    assert!(!serve.stderr_after_exit().contains("warning"));

    let mut serve = Serve::spawn(&["--listen", "127.0.0.1:0", "--profile", profile, "--breaker-open", "60s"]);
    let (url, _) = serve.listening();
    let settings: serde_json::Value =
        client().get(format!("{url}/settings")).send().await.unwrap().json().await.unwrap();
    assert_eq!(settings["breaker"]["open_ms"], 60_000);
    serve.terminate();
    assert!(serve.wait().success());
    let stderr = serve.stderr_after_exit();
    assert!(
        stderr.contains("warning: check \"upstream-breaker\" cannot judge: the stack's breaker open period is 1 min, it needs 2 s"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(path);
}
