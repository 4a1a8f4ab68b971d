//! What the end-to-end tests of `stampede check` share.
#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The reference profile as the tests run it. The changes: the bound on the latency of the
/// calls the open breaker refuses (5 ms, a figure for a release build on a quiet machine) and
/// the load's latency targets are lifted, because a debug build on a shared machine is no
/// latency benchmark and a test must not hang on timing; the `slow-rejection` rule and the
/// target verdicts are covered by the judges' own tests.
pub fn test_profile() -> &'static Path {
    static PROFILE: OnceLock<PathBuf> = OnceLock::new();
    PROFILE.get_or_init(|| {
        let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/reference.toml");
        let text = std::fs::read_to_string(&reference).expect("read the reference profile");
        assert!(text.contains("max_rejection_ms = 5.0"), "the reference profile's latency bound moved");
        let text = text.replace("max_rejection_ms = 5.0", "max_rejection_ms = 1000.0");
        // Likewise the load's latency targets: tests judge what a run measured and reported,
        // not how fast a debug build is on a busy machine (the stall test bounds its own
        // figures from the stall it made).
        let targets = "p50_ms = 100\np95_ms = 200\np99_ms = 500\n";
        assert!(text.contains(targets), "the reference profile's latency targets moved");
        let text = text.replace(targets, "p50_ms = 10000\np95_ms = 20000\np99_ms = 30000\n");
        let path = std::env::temp_dir().join(format!("stampede-test-profile-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write the test profile");
        path
    })
}

/// `stampede serve` in another process; killed on drop.
pub struct Served {
    pub child: std::process::Child,
    pub url: String,
    pub upstream: String,
}

impl Served {
    pub fn start(args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn stampede serve");
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut url, mut upstream) = (None, None);
        while url.is_none() {
            let line =
                rx.recv_timeout(std::time::Duration::from_secs(10)).expect("serve printed its address");
            if let Some(u) = line.strip_prefix("stampede serve: listening on ") {
                url = Some(u.to_owned());
            }
            if let Some(u) = line.strip_prefix("stampede serve: fake upstream control API on ") {
                upstream = Some(u.to_owned());
            }
        }
        Served { child, url: url.unwrap(), upstream: upstream.unwrap_or_default() }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `stampede fake-upstream` in another process, on free ports; killed on drop.
pub struct StandaloneUpstream {
    child: std::process::Child,
    /// The API's base URL, for the stack.
    pub url: String,
    /// The control API's, for `stampede check --upstream-control`.
    pub control: String,
    /// The registered `platform` account's refresh token.
    pub refresh_token: String,
}

impl StandaloneUpstream {
    pub fn start(args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .arg("fake-upstream")
            .args(["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn stampede fake-upstream");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
        let (mut url, mut control, mut refresh_token) = (None, None, None);
        while refresh_token.is_none() {
            let line = lines.next().expect("fake-upstream printed its addresses and account");
            if let Some(u) = line.strip_prefix("stampede fake-upstream: API on ") {
                url = Some(u.to_owned());
            } else if let Some(u) = line.strip_prefix("stampede fake-upstream: control API on ") {
                control = Some(u.to_owned());
            } else if let Some(rest) =
                line.strip_prefix("stampede fake-upstream: account platform refresh token ")
            {
                refresh_token = rest.split_whitespace().next().map(str::to_owned);
            }
        }
        Self { child, url: url.unwrap(), control: control.unwrap(), refresh_token: refresh_token.unwrap() }
    }
}

impl Drop for StandaloneUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dir`'s report.json matches its committed schema (and, through it, checks.schema.json), and
/// the two renderings were written beside it, titled by `command` (`load`, `report merge`, …);
/// the report names the revision the binary was built from (`build.rs`).
pub fn assert_written(dir: &std::path::Path, command: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = |path: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(root.join(path)).unwrap()).unwrap()
    };
    let base = "https://stampede.invalid/schemas/";
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler
        .add_resource(&format!("{base}report.schema.json"), schema("crates/report/report.schema.json"))
        .unwrap();
    compiler
        .add_resource(&format!("{base}checks.schema.json"), schema("crates/report/checks.schema.json"))
        .unwrap();
    let index = compiler.compile(&format!("{base}report.schema.json"), &mut schemas).unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    if let Err(e) = schemas.validate(&report, index) {
        panic!("report.json does not match its schema: {e:#}");
    }
    assert_eq!(report["run"]["command"], command);
    match option_env!("STAMPEDE_GIT_REVISION").filter(|r| !r.is_empty()) {
        Some(built) => assert_eq!(report["run"]["git_revision"], built),
        None => assert!(report["run"]["git_revision"].is_null()),
    }
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html beside report.json");
    let id = report["run"]["id"].as_str().unwrap();
    let title = report::escape_html(&format!("stampede {command} {id}"));
    assert!(html.contains(&format!(" — {title}</title>")), "{title} is not the page's title");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml beside report.json");
    assert!(junit.contains(&format!(r#"<testsuites name="{title}""#)), "{junit}");
    let targets = report["targets"].as_array().unwrap().len();
    assert_eq!(junit.matches(r#"classname="targets""#).count(), targets, "{junit}");
}

/// A `redis-server` of the test's own on a free port, without persistence, stopped on drop
/// (never the shared one); none (the test skipped) when redis-server is not installed, unless
/// `CI=true`.
pub struct OwnRedis {
    child: std::process::Child,
    pub port: u16,
    pub url: String,
}

impl OwnRedis {
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// [`OwnRedis::start`] with `args` added to redis-server's (`--requirepass PW`); the URL
    /// stays without a password.
    pub fn start_with(args: &[&str]) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = match redis_server(port).args(args).spawn() {
            Ok(child) => child,
            Err(e) => {
                skip("redis-server", &format_args!("cannot start it: {e}"));
                return None;
            }
        };
        wait_for_redis(port);
        Some(Self { child, port, url: format!("redis://127.0.0.1:{port}") })
    }

    /// SIGKILL: every request that needs it fails.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, and a new server on the same port a moment later (without persistence: empty).
    pub fn restart(&mut self) {
        self.kill();
        std::thread::sleep(std::time::Duration::from_millis(500));
        self.child = redis_server(self.port).spawn().expect("restart redis-server");
        wait_for_redis(self.port);
    }
}

fn redis_server(port: u16) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null());
    command
}

fn wait_for_redis(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("redis-server on {port} did not start");
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
        // A server a test's fault command started in its place.
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A test that cannot run for want of `service`: under `CI=true`, a failure; otherwise a notice
/// and a line in the file `STAMPEDE_SKIPPED` names, which `ci/test` counts (and fails on).
pub fn skip(service: &str, why: &dyn std::fmt::Display) {
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
