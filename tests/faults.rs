//! Faults during the load, end to end: the embedded stack on a Redis of the test's own, a fault
//! on its Redis link (or on the Redis process itself), and the run judged by how the stack came
//! back — the reference recovers, `store_redis::mutants::NoReconnect` does not and is named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod support;

use support::OwnRedis;

fn reports() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("faults-reports");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// scenarios/faults.toml with its latency targets lifted: these tests judge recovery, not how
/// fast a debug build is on a busy machine.
fn profile() -> PathBuf {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/faults.toml")).unwrap();
    let targets = "p50_ms = 100\np95_ms = 6000\np99_ms = 12000\n";
    assert!(text.contains(targets), "the fault profile's latency targets moved");
    let text = text.replace(targets, "p50_ms = 10000\np95_ms = 20000\np99_ms = 30000\n");
    let path = reports().join(format!("faults-{}-{}.toml", std::process::id(), unique()));
    std::fs::write(&path, text).unwrap();
    path
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `stampede run` of the fault profile's mix for 14 s at 20 requests/s, its own faults
/// replaced by `faults`, one check before; the exit and report.json.
fn run_with(stack: &[&str], faults: &[&str], extra: &[&str]) -> (Output, Value) {
    let run_id = format!("faults-{}-{}", std::process::id(), unique());
    let profile = profile();
    let mut command = Command::new(env!("CARGO_BIN_EXE_stampede"));
    command
        .args(["run", "--profile"])
        .arg(&profile)
        .args(stack)
        .args(["--only", "quota-counter", "--duration", "14", "--rate", "20", "--no-faults"])
        .args(["--reports"])
        .arg(reports())
        .args(["--run-id", &run_id]);
    for fault in faults {
        command.args(["--fault", fault]);
    }
    let out = command.args(extra).output().unwrap();
    let path = reports().join(&run_id).join("report.json");
    let report =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), text(&out)));
    (out, serde_json::from_str(&report).unwrap())
}

fn target<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target {name:?} in {:#}", report["targets"]))
}

/// `stampede run` of the fault profile's check `check` alone (a 2 s load), `fault` around it in
/// place of the profile's faults, with `args` (the stack, a mutant); the exit, the check's
/// verdict and the run's report directory.
fn run_check(check: &str, fault: &str, args: &[&str]) -> (Output, Value, PathBuf) {
    let run_id = format!("faults-{check}-{}-{}", std::process::id(), unique());
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", "--profile"])
        .arg(profile())
        .args(["--only", check, "--duration", "2", "--no-faults", "--fault", fault])
        .args(args)
        .arg("--reports")
        .arg(reports())
        .args(["--run-id", &run_id])
        .output()
        .unwrap();
    let dir = reports().join(&run_id);
    let path = dir.join("checks.json");
    let checks =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), text(&out)));
    let checks: Value = serde_json::from_str(&checks).unwrap();
    (out, checks["verdicts"][0].clone(), dir)
}

const REDIS_DOWN: &str =
    r#"name = "redis-down", link = "redis", action = "down", at_s = 3, duration_s = 3, recover_within_s = 4"#;

#[test]
fn a_redis_outage_is_recovered_from_and_the_no_reconnect_mutant_is_named_by_its_recovery_target() {
    let Some(redis) = OwnRedis::start() else { return };
    let (out, report) = run_with(&["--redis", &redis.url], &[REDIS_DOWN], &[]);
    let window = &report["load"]["faults"][0];
    assert_eq!(window["name"], "redis-down", "{}", text(&out));
    assert_eq!(window["target"], "link redis");
    assert!(window["error"].is_null(), "{window:#}");
    let lasted = window["ended_at_ms"].as_u64().unwrap() - window["started_at_ms"].as_u64().unwrap();
    // Held 3 s on the monotonic clock; stamped on the wall clock, which a time daemon may slew
    // by a few milliseconds (one run measured 2,998 ms).
    assert!((2_990..4_000).contains(&lasted), "the fault lasted {lasted} ms, not its 3 s");
    // The outage showed: requests failed while Redis was away.
    assert!(
        report["load"]["errors"].as_u64().unwrap() > 0,
        "no request failed while Redis was down: {}",
        text(&out)
    );
    let recovery = target(&report, "recovery after redis-down");
    assert_eq!(recovery["passed"], true, "{recovery:#}\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The mutant keeps failing once Redis is back: the recovery target names it.
    let (out, report) = run_with(&["--redis", &redis.url], &[REDIS_DOWN], &["--mutant", "NoReconnect"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let recovery = target(&report, "recovery after redis-down");
    assert_eq!(recovery["passed"], false, "{recovery:#}");
    assert!(recovery["measured"].is_null(), "{recovery:#}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("recovery after redis-down"), "{}", text(&out));
}

/// Records (users, their tokens, videos) in PostgreSQL, as the reference stack keeps them with
/// `--database`; Redis's counters, caches and queue are lost with it.
#[test]
fn a_redis_killed_and_started_again_empty_is_recovered_from() {
    let Some(redis) = OwnRedis::start() else { return };
    let database = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let port = redis.port.to_string();
    // The process itself: shut down without saving, started again (daemonized) 3 s later,
    // empty — what a crash without persistence does.
    let fault = format!(
        r#"name = "redis-restart", command = ["redis-cli", "-p", "{port}", "shutdown", "nosave"], end_command = ["redis-server", "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "yes"], at_s = 3, duration_s = 3, recover_within_s = 4"#
    );
    let (out, report) = run_with(&["--redis", &redis.url], &[&fault], &["--database", &database]);
    let window = &report["load"]["faults"][0];
    assert!(window["error"].is_null(), "{window:#}\n{}", text(&out));
    assert_eq!(window["target"], "command");
    let recovery = target(&report, "recovery after redis-restart");
    assert_eq!(recovery["passed"], true, "{recovery:#}\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_fault_the_stack_cannot_take_is_refused_before_anything_runs() {
    // The memory backend has no Redis link.
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "run",
            "--profile",
            "scenarios/faults.toml",
            "--no-faults",
            "--fault",
            REDIS_DOWN,
            "--duration",
            "14",
        ])
        .args(["--only", "quota-counter", "--reports"])
        .arg(reports())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("link \"redis\", which this stack does not have"),
        "{}",
        text(&out)
    );
    // A fault the load does not outlast, and a misspelt field, name themselves.
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", "--profile", "scenarios/faults.toml", "--duration", "20"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("past the load's 20 s"), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", "--fault", r#"name = "x", link = "redis", acton = "down", at_s = 1, duration_s = 1"#])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `acton`"), "{}", text(&out));
}

/// One instance of three killed (SIGKILL) mid-load: the supervisor starts it again and the
/// run passes; the field's supervisor (`supervisor::mutants::StopAllOnCrash`) stops the other
/// two, and the fault's verdict names the instance that never came back — the report
/// written though no instance answers `/metrics` at the end.
#[test]
fn an_instance_killed_is_started_again_and_the_stop_all_mutant_is_named() {
    let Some(redis) = OwnRedis::start() else { return };
    let database = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let kill = r#"name = "instance-killed", instance = 1, action = "kill", at_s = 3, duration_s = 3, recover_within_s = 4"#;
    let shared = ["--database", &database, "--instances", "3"];
    let (out, report) = run_with(&["--redis", &redis.url], &[kill], &shared);
    let window = &report["load"]["faults"][0];
    assert_eq!(window["target"], "instance 1", "{}", text(&out));
    assert!(window["error"].is_null(), "{window:#}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("instance 1 stopped on its own"), "{}", text(&out));
    assert_eq!(target(&report, "recovery after instance-killed")["passed"], true, "{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let mut mutant = shared.to_vec();
    mutant.extend(["--mutant", "StopAllOnCrash"]);
    let (out, report) = run_with(&["--redis", &redis.url], &[kill], &mutant);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let recovery = target(&report, "recovery after instance-killed");
    assert_eq!(recovery["passed"], false, "{recovery:#}");
    assert!(recovery["measured"].is_null(), "{recovery:#}");
    // The instance never answered again: the fault says so.
    let back = target(&report, "fault instance-killed applied");
    assert_eq!(back["passed"], false, "{back:#}");
    assert!(back["detail"].as_str().unwrap().contains("did not come back"), "{back:#}");
    let metric = target(&report, "queries-per-request");
    assert_eq!(metric["passed"], false, "{metric:#}");
    assert!(metric["detail"].as_str().unwrap().contains("not measured"), "{metric:#}");
}

/// A child process killed when the test ends, and the lines it printed.
struct Child(std::process::Child, std::io::Lines<std::io::BufReader<std::process::ChildStdout>>);

impl Child {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        Self(child, lines)
    }

    /// The part after `marker` of the next line holding it.
    fn after(&mut self, marker: &str) -> String {
        for line in self.1.by_ref() {
            let line = line.unwrap();
            if let Some((_, rest)) = line.split_once(marker) {
                return rest.trim().to_owned();
            }
        }
        panic!("the process ended before printing {marker:?}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stack stampede did not start, its Redis behind `stampede proxy` (Toxiproxy's API):
/// `run --target … --toxiproxy URL` applies the link fault through that API, and a link the
/// Toxiproxy has no proxy for is refused before anything runs.
#[test]
fn a_stack_you_run_is_faulted_through_its_toxiproxy() {
    let Some(redis) = OwnRedis::start() else { return };
    let mut proxy = Child::spawn(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--proxy",
        &format!("redis=127.0.0.1:0=127.0.0.1:{}", redis.port),
    ]);
    let api = proxy.after("Toxiproxy API on ");
    let listen = proxy.after("redis on ");
    let listen = listen.split_whitespace().next().unwrap().to_owned();
    let namespace = format!("faults-{}", unique());
    let mut serve = Child::spawn(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--redis",
        &format!("redis://{listen}"),
        "--namespace",
        &namespace,
    ]);
    let url = serve.after("listening on ");
    let (out, report) = run_with(&["--target", &url, "--toxiproxy", &api], &[REDIS_DOWN], &[]);
    let window = &report["load"]["faults"][0];
    assert_eq!(window["target"], "link redis", "{}", text(&out));
    assert!(window["error"].is_null(), "{window:#}");
    assert!(
        report["load"]["errors"].as_u64().unwrap() > 0,
        "no request failed while Redis was down: {}",
        text(&out)
    );
    assert_eq!(target(&report, "recovery after redis-down")["passed"], true, "{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", "--target", &url, "--toxiproxy", &api, "--profile"])
        .arg(profile())
        .args([
            "--no-faults",
            "--fault",
            r#"name = "x", link = "cache", action = "down", at_s = 1, duration_s = 1"#,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the Toxiproxy has no proxy \"cache\""),
        "{}",
        text(&out)
    );
}

/// A fault around a check: the check judges its invariant across it (a requirement of its
/// verdict); a fault the check ended before is no evidence, and the check is inconclusive.
#[test]
fn a_check_judges_its_invariant_across_its_fault_and_is_inconclusive_when_the_fault_missed_it() {
    let Some(redis) = OwnRedis::start() else { return };
    let run = |check: &str, fault: &str| {
        let (out, verdict, _) = run_check(check, fault, &["--redis", &redis.url]);
        (out, verdict)
    };
    // Redis refused for 2 s while the import workers run: every acknowledged import still ends
    // with its effect applied once.
    let (out, verdict) = run(
        "import-lifecycle",
        r#"name = "blip", check = "import-lifecycle", link = "redis", action = "down", at_s = 1, duration_s = 2"#,
    );
    let requirement =
        verdict["requirements"].as_array().unwrap().iter().find(|r| r["name"] == "fault blip").cloned();
    let requirement =
        requirement.unwrap_or_else(|| panic!("no fault requirement: {verdict:#}\n{}", text(&out)));
    assert_eq!(requirement["met"], true, "{verdict:#}");
    assert_eq!(verdict["status"], "held", "{verdict:#}\n{}", text(&out));
    assert!(verdict["summary"].as_str().unwrap().contains("(across fault blip)"), "{verdict:#}");
    // Due long after the check ends: nothing was judged across it.
    let (out, verdict) = run(
        "quota-counter",
        r#"name = "late", check = "quota-counter", link = "redis", action = "down", at_s = 60, duration_s = 1"#,
    );
    assert_eq!(verdict["status"], "inconclusive", "{verdict:#}");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(verdict["summary"].as_str().unwrap().contains("fault late"), "{verdict:#}");
}

/// Redis shut down without saving and started again empty around `import-lifecycle`, while
/// every import worker is held and 8 acknowledged imports wait in the queue: the reference
/// enqueues them again from its ledger in PostgreSQL and each ends with its effect applied
/// once; `task_queue::mutants::BrokerOnly`, which keeps them only in Redis, loses them and
/// `lost-task` names them.
#[test]
fn a_redis_restarted_empty_loses_no_acknowledged_import_and_the_broker_only_mutant_is_named() {
    let Some(redis) = OwnRedis::start() else { return };
    let database = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let port = redis.port.to_string();
    let fault = format!(
        r#"name = "restart", check = "import-lifecycle", command = ["redis-cli", "-p", "{port}", "shutdown", "nosave"], end_command = ["redis-server", "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "yes"], at_s = 1, duration_s = 1"#
    );
    let run = |mutant: &[&str]| {
        let stack = ["--redis", redis.url.as_str(), "--database", database.as_str()];
        let (out, verdict, _) = run_check("import-lifecycle", &fault, &[&stack[..], mutant].concat());
        (out, verdict)
    };
    let (out, verdict) = run(&[]);
    assert_eq!(verdict["status"], "held", "{verdict:#}\n{}", text(&out));
    let requirement =
        verdict["requirements"].as_array().unwrap().iter().find(|r| r["name"] == "fault restart");
    assert_eq!(requirement.map(|r| r["met"].clone()), Some(Value::Bool(true)), "{verdict:#}");
    // More imports than workers: some waited in the queue the restart emptied.
    assert_eq!(verdict["evidence"]["imports"]["outlive"], 40, "{verdict:#}");
    assert_eq!(verdict["evidence"]["lost"], 0, "{verdict:#}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let (out, verdict) = run(&["--mutant", "BrokerOnly"]);
    assert_eq!(verdict["status"], "violated", "{verdict:#}\n{}", text(&out));
    let rules: Vec<&str> =
        verdict["violations"].as_array().unwrap().iter().filter_map(|v| v["rule"].as_str()).collect();
    assert!(rules.contains(&"lost-task"), "{rules:?}\n{verdict:#}");
    assert!(verdict["evidence"]["lost"].as_u64().unwrap() >= 1, "{verdict:#}");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// The abuse check `secrets` across a fault: Redis (with a password) refused for 1 s while the
/// check provokes the stack's error paths. The reference names Redis by host and port only;
/// `store_redis::mutants::CredentialsInErrors` shows the password in its 503 bodies, and the
/// check names the secret by its place, never by its value.
#[test]
fn no_secret_shows_while_redis_is_away_and_the_credentials_in_errors_mutant_is_named() {
    const PASSWORD: &str = "s3cret-for-the-secrets-check";
    let Some(redis) = OwnRedis::start_with(&["--requirepass", PASSWORD]) else { return };
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let fault =
        r#"name = "away", check = "no-secrets", link = "redis", action = "down", at_s = 1, duration_s = 2"#;
    let run = |mutant: &[&str]| {
        let (out, verdict, dir) =
            run_check("no-secrets", fault, &[&["--redis", url.as_str()][..], mutant].concat());
        // No report names the password, whatever the stack showed.
        for file in ["checks.json", "report.json", "report.html", "junit.xml"] {
            let written = std::fs::read_to_string(dir.join(file))
                .unwrap_or_else(|e| panic!("{file}: {e}\n{}", text(&out)));
            assert!(!written.contains(PASSWORD), "{file} shows the password");
        }
        (out, verdict)
    };
    let (out, verdict) = run(&[]);
    assert_eq!(verdict["status"], "held", "{verdict:#}\n{}", text(&out));
    // Nor does anything the reference stack logged.
    assert!(!text(&out).contains(PASSWORD), "the output shows the password:\n{}", text(&out));
    let evidence = &verdict["evidence"];
    assert!(evidence["error_answers"].as_u64().unwrap() > 0, "{verdict:#}");
    let secrets: Vec<&str> =
        evidence["secrets"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(secrets.contains(&"the password in --redis"), "{secrets:?}");
    let requirement = verdict["requirements"].as_array().unwrap().iter().find(|r| r["name"] == "fault away");
    assert_eq!(requirement.map(|r| r["met"].clone()), Some(Value::Bool(true)), "{verdict:#}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let (out, verdict) = run(&["--mutant", "CredentialsInErrors"]);
    assert_eq!(verdict["status"], "violated", "{verdict:#}\n{}", text(&out));
    assert_eq!(verdict["violations"][0]["rule"], "secret-in-answer", "{verdict:#}");
    let detail = verdict["violations"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("the password in --redis in the body"), "{detail}");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
