//! End-to-end tests of `stampede capacity`: steps up to the ceiling against the embedded
//! stack, with the USL fitted and the instances planned from the report's own figures; a
//! stack that cannot keep up (every request held 100 ms, two in flight at most) breaks a step
//! by queueing arithmetic, not by a timing guess; bad input refused with exit 2 or 3.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod support;

fn reports() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stampede-capacity-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn capacity(dir: &Path, id: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stampede"));
    command.args(["capacity", "--run-id", id, "--cooldown", "0.2", "--reports"]).arg(dir).args(args);
    command
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

#[test]
fn steps_reach_the_ceiling_and_the_plan_follows_from_the_measured_throughput() {
    let dir = reports();
    let out =
        capacity(&dir, "to-ceiling", &["--start", "20", "--step", "20", "--ceiling", "60", "--hold", "2"])
            .args(["--users-goal", "1000", "--per-user-rate", "0.5", "--headroom", "0.5", "--profile"])
            .arg(profile(&dir, "warm.toml", &[]))
            .output()
            .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    support::assert_written(&dir.join("to-ceiling"), "capacity");
    let report = json(&dir.join("to-ceiling/report.json"));
    let c = &report["capacity"];
    let steps = c["steps"].as_array().unwrap();
    let offered: Vec<f64> = steps.iter().map(|s| s["offered"].as_f64().unwrap()).collect();
    assert_eq!(offered, [20.0, 40.0, 60.0], "{said}");
    for s in steps {
        assert_eq!(s["passed"], true, "{s}\n{said}");
        let requests = s["requests"].as_u64().unwrap();
        assert_eq!(report::decode_histogram(s["histogram"].as_str().unwrap()).unwrap().len(), requests);
        // Little's law, from the step's own figures.
        let little = s["throughput"].as_f64().unwrap() * s["latency_ms"]["mean"].as_f64().unwrap() / 1000.0;
        assert!((s["concurrency"].as_f64().unwrap() - little).abs() < 1e-9, "{s}");
    }
    assert_eq!(c["sustainable"], 2);
    assert!(c["stopped"].as_str().unwrap().contains("ceiling"), "{}", c["stopped"]);
    assert_eq!(c["limited_by_generator"], false);
    // The report's load is the sustainable step's: 60 requests/s for 2 s.
    assert_eq!(report["load"]["rate"], serde_json::json!([60.0, 60.0]));
    assert_eq!(report["load"]["requests"], steps[2]["requests"]);
    assert!(
        report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "throughput kept pace with the offered rate")
    );
    // Three points: a fit, with parameters in the model's range.
    let fit = &c["fit"];
    assert_eq!(fit["points"], 3, "{said}");
    assert!(fit["sigma"].as_f64().unwrap() >= 0.0 && fit["kappa"].as_f64().unwrap() >= 0.0, "{fit}");
    // The plan: 1000 users × 0.5/s = 500/s, over half of what one instance sustained.
    let plan = &c["plan"];
    let per_instance = steps[2]["throughput"].as_f64().unwrap();
    assert_eq!(plan["required_rate"], 500.0);
    assert_eq!(plan["per_instance_rate"].as_f64().unwrap(), per_instance);
    assert_eq!(plan["instances"].as_u64().unwrap(), (500.0 / (per_instance * 0.5)).ceil() as u64, "{plan}");
    let instances = plan["instances"].as_u64().unwrap();
    let plural = if instances == 1 { "" } else { "s" };
    assert!(said.contains(&format!("plan: {instances} instance{plural} for 1000 users")), "{said}");
    assert!(said.contains("assuming"), "the assumptions are printed beside the number: {said}");
    let html = std::fs::read_to_string(dir.join("to-ceiling/report.html")).unwrap();
    for part in [
        r#"<section id="capacity">"#,
        "Throughput against concurrency",
        "USL fit",
        "knee: 60",
        "</strong> for 1000 users",
    ] {
        assert!(html.contains(part), "the HTML lacks {part:?}");
    }
    let junit = std::fs::read_to_string(dir.join("to-ceiling/junit.xml")).unwrap();
    assert!(junit.contains(r#"<testsuite name="capacity" tests="4" failures="0""#), "{junit}");
}

/// The cache-hit-rate target of the reference profile, which every capacity test leaves out:
/// two-second steps are too short for a cache to warm, and a slow first step (eight requests)
/// may make no cached read at all, which the target rightly judges a miss ("nothing was
/// measured"). How warm a cache gets is not what these tests are about.
const CACHE_HIT_RATE: &str = "[[targets.metric]]\nname = \"cache-hit-rate\"\n";

/// The test profile without its cache-hit-rate target and with `replacements` made, written
/// into `dir` as `name`.
fn profile(dir: &Path, name: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(support::test_profile()).unwrap();
    let start = text.find(CACHE_HIT_RATE).expect("the test profile's cache-hit-rate target moved");
    let end = start + text[start..].find("\nmin = 0.8\n").expect("the cache-hit-rate bound moved") + 11;
    text.replace_range(start..end, "");
    for (from, to) in replacements {
        assert!(text.contains(from), "the test profile moved: {from:?}");
        text = text.replace(from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The load spread over two accounts of two videos (set up quickly on a slowed stack), at
/// most two requests in flight.
fn two_in_flight_profile(dir: &Path) -> PathBuf {
    profile(
        dir,
        "two-in-flight.toml",
        &[("accounts = 8\n", "accounts = 2\nmax_in_flight = 2\n"), ("videos = 20 }", "videos = 2 }")],
    )
}

#[test]
fn the_step_a_slow_stack_cannot_keep_up_with_ends_stepping() {
    let dir = reports();
    let profile = two_in_flight_profile(&dir);
    // Every API answer takes at least 100 ms and two are in flight at most: 20 answers a
    // second at the very best. At 4/s that is no strain; at 60/s for 2 s, 120 fall due and
    // at most 40 are answered: the stack answers at most a third of the rate offered and the
    // rest are never sent, however fast the machine.
    let slow = support::Served::start(&["--added-latency", "100ms"]);
    let out = capacity(
        &dir,
        "breaks",
        &["--target", &slow.url, "--start", "4", "--step", "56", "--ceiling", "200"],
    )
    .args(["--hold", "2", "--users-goal", "10", "--per-user-rate", "1", "--profile"])
    .arg(&profile)
    .output()
    .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "a sustainable step was found: {said}");
    support::assert_written(&dir.join("breaks"), "capacity");
    let report = json(&dir.join("breaks/report.json"));
    let c = &report["capacity"];
    let steps = c["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "stepping stops at the first step that breaks: {said}");
    assert_eq!(steps[0]["passed"], true, "{}", steps[0]);
    assert_eq!(steps[1]["passed"], false);
    let missed: Vec<&str> =
        steps[1]["missed"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(missed.iter().any(|m| m.starts_with("throughput kept pace")), "{missed:?}");
    let unsent = missed.iter().find(|m| m.starts_with("requests left unsent")).expect("unsent requests");
    assert!(unsent.contains("the stack held all 2 in-flight slots"), "not the generator's doing: {unsent}");
    assert_eq!(c["limited_by_generator"], false);
    assert!(steps[1]["throughput"].as_f64().unwrap() <= 21.0, "{}", steps[1]);
    assert_eq!(c["sustainable"], 0);
    assert!(
        c["stopped"].as_str().unwrap().contains("the step at 60 requests/s broke a target"),
        "{}",
        c["stopped"]
    );
    assert_eq!(c["fit"], Value::Null, "two steps cannot fit three parameters");
    assert!(c["fit_note"].as_str().unwrap().contains("three"), "{}", c["fit_note"]);
    assert_eq!(
        report["load"]["rate"],
        serde_json::json!([4.0, 4.0]),
        "the report's load is the sustainable step's"
    );
    assert_eq!(report["passed"], true);
    let html = std::fs::read_to_string(dir.join("breaks/report.html")).unwrap();
    assert!(
        html.contains("BROKE") && html.contains("No USL fit"),
        "the HTML shows the broken step and why there is no fit"
    );

    // Started where it cannot keep up: nothing sustainable, exit 1, no plan, a failed case.
    let out =
        capacity(&dir, "none", &["--target", &slow.url, "--start", "60", "--step", "60", "--ceiling", "120"])
            .args(["--hold", "2", "--users-goal", "10", "--per-user-rate", "1", "--profile"])
            .arg(&profile)
            .output()
            .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("no step was sustainable"), "{said}");
    let report = json(&dir.join("none/report.json"));
    assert_eq!(report["capacity"]["sustainable"], Value::Null);
    assert_eq!(report["capacity"]["plan"], Value::Null);
    assert_eq!(report["passed"], false);
    assert_eq!(report["load"]["rate"], serde_json::json!([60.0, 60.0]), "the first step's load");
    let junit = std::fs::read_to_string(dir.join("none/junit.xml")).unwrap();
    assert!(
        junit.contains(r#"<testcase classname="capacity" name="sustainable step" time="0"><failure"#),
        "{junit}"
    );
}

#[test]
fn capacity_refuses_bad_stepping_naming_the_flag_or_the_profile_field() {
    let dir = reports().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    for (args, expect) in [
        (vec!["--step", "0"], "step 0"),
        (vec!["--start", "500", "--ceiling", "100"], "ceiling 100 is below start 500"),
        (vec!["--users-goal", "100000", "--per-user-rate", "0.1", "--headroom", "1.5"], "headroom 1.5"),
        (vec!["--start", "1", "--step", "0.001", "--ceiling", "100"], "at most 200"),
    ] {
        let out = capacity(&dir, "bad", &args).arg("--target").arg("http://127.0.0.1:9").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expect), "{args:?}: {}", text(&out));
    }
    // The profile's [capacity]: a bad value and an unknown field, named with the file.
    let reference = std::fs::read_to_string(support::test_profile()).unwrap();
    for (from, to, expect) in [
        ("headroom = 0.7\n", "headroom = 0\n", "[capacity] headroom 0"),
        ("headroom = 0.7\n", "headroom = 0.7\nsteps = 4\n", "unknown field `steps`"),
        ("per_user_rate = 0.02\n", "", "users_goal needs per_user_rate"),
    ] {
        assert!(reference.contains(from), "the reference profile's [capacity] moved");
        let path = dir.join("bad-capacity.toml");
        std::fs::write(&path, reference.replace(from, to)).unwrap();
        let out = capacity(&dir, "bad", &["--target", "http://127.0.0.1:9", "--profile"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{to:?}: {}", text(&out));
        assert!(
            text(&out).contains(expect) && text(&out).contains("bad-capacity.toml"),
            "{to:?}: {}",
            text(&out)
        );
    }
    // Nothing listens there: exit 3, nothing written.
    let out =
        capacity(&dir, "unreachable", &["--target", "http://127.0.0.1:9", "--hold", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(!dir.join("unreachable/report.json").exists());
}

/// Ctrl-C in the middle of a step: the report is written with the steps measured so far,
/// the cut step marked incomplete and left out of the fit, the run marked interrupted.
#[test]
fn capacity_interrupted_with_ctrl_c_keeps_the_steps_measured() {
    use std::io::{BufRead, BufReader};
    let dir = reports();
    let mut child =
        capacity(&dir, "interrupted", &["--start", "20", "--step", "20", "--ceiling", "200", "--hold", "5"])
            .arg("--profile")
            .arg(profile(&dir, "interrupted.toml", &[]))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains("step 2 of at most")));
    std::thread::sleep(std::time::Duration::from_secs(1));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130");
    let report = json(&dir.join("interrupted/report.json"));
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["passed"], false);
    let c = &report["capacity"];
    let steps = c["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{c}");
    assert_eq!(
        (steps[0]["complete"].clone(), steps[0]["passed"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );
    assert_eq!(
        (steps[1]["complete"].clone(), steps[1]["passed"].clone()),
        (Value::Bool(false), Value::Bool(false))
    );
    assert!(steps[1]["requests"].as_u64().unwrap() > 0, "what the cut step measured is kept");
    assert_eq!(c["sustainable"], 0);
    assert!(c["stopped"].as_str().unwrap().contains("interrupted during the step at 40"), "{}", c["stopped"]);
    assert_eq!(c["fit"], Value::Null, "one complete step");
}
