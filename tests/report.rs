//! End-to-end tests of `stampede report merge | compare | html` on reports real load runs
//! wrote: two generators in parallel against one stack, merged exactly; a deliberately slowed
//! stack (`stampede serve --added-latency`) flagged against a baseline; bad input refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod support;

fn reports() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stampede-report-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stampede(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stampede"));
    command.args(args);
    command
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `stampede load` of the test profile against `url` for `seconds` at `rate`/s into
/// `dir/id`, started (not waited for).
fn load(url: &str, dir: &Path, id: &str, rate: &str, seconds: &str) -> Command {
    let mut command =
        stampede(&["load", "--target", url, "--run-id", id, "--rate", rate, "--duration", seconds]);
    command.arg("--reports").arg(dir).arg("--profile").arg(support::test_profile());
    command
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn histogram(encoded: &Value) -> hdrhistogram::Histogram<u64> {
    report::decode_histogram(encoded.as_str().unwrap()).unwrap()
}

fn empty() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap()
}

fn endpoint<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["load"]["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == name)
}

#[test]
fn two_generators_in_parallel_merge_into_the_sums_of_their_histograms_and_counters() {
    let served = support::Served::start(&[]);
    let dir = reports();
    let mut a = load(&served.url, &dir, "gen-a", "40", "4")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start generator a");
    let b = load(&served.url, &dir, "gen-b", "40", "4").output().expect("run generator b");
    let a_status = a.wait().expect("wait for generator a");
    assert!(a_status.code().is_some() && b.status.code().is_some(), "{}", text(&b));
    let (ra, rb) = (json(&dir.join("gen-a/report.json")), json(&dir.join("gen-b/report.json")));

    let out = stampede(&["report", "merge", "--out"])
        .arg(dir.join("merged"))
        .arg(dir.join("gen-a/report.json"))
        .arg(dir.join("gen-b/report.json"))
        .output()
        .unwrap();
    let said = text(&out);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{said}");
    assert!(said.contains("stampede report merge: 2 reports"), "{said}");
    let merged = json(&dir.join("merged/report.json"));
    support::assert_written(&dir.join("merged"), "report merge");

    let count = |r: &Value, key: &str| r["load"][key].as_u64().unwrap();
    for key in ["requests", "errors", "unsent"] {
        assert_eq!(count(&merged, key), count(&ra, key) + count(&rb, key), "{key}");
    }
    assert!(count(&merged, "requests") >= 300, "two generators at 40/s for 4 s: {said}");
    let (start_a, start_b) = (count(&ra, "started_at_ms"), count(&rb, "started_at_ms"));
    assert_eq!(count(&merged, "started_at_ms"), start_a.min(start_b));
    let mut all_merged = empty();
    let mut all_fed = empty();
    for e in merged["load"]["endpoints"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let (ea, eb) = (endpoint(&ra, name).unwrap(), endpoint(&rb, name).unwrap());
        for key in ["requests", "errors"] {
            assert_eq!(e[key], ea[key].as_u64().unwrap() + eb[key].as_u64().unwrap(), "{name} {key}");
        }
        for (status, n) in e["outcomes"].as_object().unwrap() {
            let of = |r: &Value| r["outcomes"][status].as_u64().unwrap_or(0);
            assert_eq!(n.as_u64().unwrap(), of(ea) + of(eb), "{name} answers {status}");
        }
        // One histogram fed with both generators' samples: its percentiles are the merged ones.
        let mut fed = empty();
        fed.add(histogram(&ea["histogram"])).unwrap();
        fed.add(histogram(&eb["histogram"])).unwrap();
        let expected = serde_json::to_value(if fed.is_empty() {
            report::Latency::ZERO
        } else {
            report::Latency::of(&fed)
        })
        .unwrap();
        // Percentiles are histogram values and match exactly; the mean is a float that went
        // through JSON, equal to the last bits.
        for (key, want) in expected.as_object().unwrap() {
            let (got, want) = (e["latency_ms"][key].as_f64().unwrap(), want.as_f64().unwrap());
            if key == "mean" {
                assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{name} mean {got} vs {want}");
            } else {
                assert_eq!(got, want, "{name} {key}");
            }
        }
        assert_eq!(histogram(&e["histogram"]).len(), fed.len());
        // Second by second too: each generator's seconds land on the wall-clock second they
        // were counted in.
        let mut by_second = std::collections::BTreeMap::<u64, u64>::new();
        for (r, start) in [(ea, start_a), (eb, start_b)] {
            let shift = start / 1000 - start_a.min(start_b) / 1000;
            for s in r["timeline"].as_array().unwrap() {
                *by_second.entry(s["t"].as_u64().unwrap() + shift).or_default() +=
                    s["requests"].as_u64().unwrap();
            }
        }
        for s in e["timeline"].as_array().unwrap() {
            let t = s["t"].as_u64().unwrap();
            assert_eq!(
                s["requests"].as_u64().unwrap(),
                by_second.get(&t).copied().unwrap_or(0),
                "{name} t={t}"
            );
            assert_eq!(histogram(&s["histogram"]).len(), s["requests"].as_u64().unwrap());
        }
        all_merged.add(histogram(&e["histogram"])).unwrap();
        all_fed.add(&fed).unwrap();
    }
    assert_eq!(all_merged.len(), count(&merged, "requests"));
    assert_eq!(all_merged.value_at_quantile(0.99), all_fed.value_at_quantile(0.99));
    let sources: Vec<&str> =
        merged["run"]["sources"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(sources, ["gen-a", "gen-b"]);
    // The targets are judged again on the merged figures: throughput over the merged window.
    let throughput =
        merged["targets"].as_array().unwrap().iter().find(|t| t["kind"] == "throughput").unwrap();
    let window = merged["load"]["duration_s"].as_f64().unwrap();
    let expected = count(&merged, "requests") as f64 / window;
    assert!((throughput["measured"].as_f64().unwrap() - expected).abs() < 1e-6, "{throughput}");
    assert_eq!(out.status.code() == Some(0), merged["passed"] == true, "the exit code follows the verdict");
}

#[test]
fn compare_flags_a_deliberately_slowed_stack_and_not_a_faster_one() {
    let dir = reports();
    {
        let fast = support::Served::start(&[]);
        let out = load(&fast.url, &dir, "fast", "30", "3").output().unwrap();
        assert!(dir.join("fast/report.json").exists(), "{}", text(&out));
    }
    {
        let slow = support::Served::start(&["--added-latency", "60ms"]);
        let out = load(&slow.url, &dir, "slow", "30", "3").output().unwrap();
        assert!(dir.join("slow/report.json").exists(), "{}", text(&out));
    }
    let slow_report = dir.join("slow/report.json");
    let fast_report = dir.join("fast/report.json");
    // The slowed run against the baseline: regressions, exit 1, in the JSON, HTML and JUnit.
    let out = stampede(&["report", "compare", "--baseline"])
        .arg(&fast_report)
        .arg(&slow_report)
        .arg("--profile")
        .arg(support::test_profile())
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("REGRESSED"), "{said}");
    let compared = json(&slow_report);
    let comparison = &compared["comparison"];
    assert_eq!(comparison["baseline"]["id"], "fast");
    assert_eq!(comparison["tolerance"], 0.2, "the profile's [compare]");
    let regressed: Vec<String> = comparison["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["regressed"] == true)
        .map(|c| format!("{} {}", c["endpoint"].as_str().unwrap(), c["percentile"].as_str().unwrap()))
        .collect();
    // Every API endpoint waits 60 ms more; the median of each moved well past 20 % and 5 ms.
    for name in ["dashboard", "list-videos", "video-status"] {
        assert!(regressed.contains(&format!("{name} p50")), "{name}: {regressed:?}\n{said}");
    }
    assert_eq!(comparison["regressions"].as_u64().unwrap() as usize, regressed.len());
    assert_eq!(compared["passed"], false);
    support::assert_written(&dir.join("slow"), "report compare");
    let junit = std::fs::read_to_string(dir.join("slow/junit.xml")).unwrap();
    assert!(junit.contains(r#"<testsuite name="comparison""#), "{junit}");
    assert!(
        junit.contains(r#"<testcase classname="comparison" name="dashboard p50" time="0"><failure"#),
        "{junit}"
    );
    let html = std::fs::read_to_string(dir.join("slow/report.html")).unwrap();
    assert!(
        html.contains("Against the baseline") && html.contains("regressed"),
        "the HTML shows the comparison"
    );

    // The fast run against the slow one as its baseline: every endpoint the added latency
    // slowed is faster, none regressed. (Uploads and chat sessions run outside the API
    // deadline and are not delayed: theirs is the two runs' noise, a few samples on a busy
    // machine, and may go either way; the exit code follows whatever the comparison found.)
    let out = stampede(&["report", "compare", "--baseline"])
        .arg(&slow_report)
        .arg(&fast_report)
        .args(["--tolerance", "0.2", "--min-change-ms", "5"])
        .arg("--out")
        .arg(dir.join("fast-vs-slow"))
        .output()
        .unwrap();
    let compared = json(&dir.join("fast-vs-slow/report.json"));
    let changes = compared["comparison"]["changes"].as_array().unwrap();
    let slowed: Vec<&Value> =
        changes.iter().filter(|c| !["upload", "chat"].contains(&c["endpoint"].as_str().unwrap())).collect();
    assert!(slowed.len() >= 15, "{}", text(&out));
    for c in slowed {
        assert_eq!(c["regressed"], false, "{c}\n{}", text(&out));
    }
    let regressions = compared["comparison"]["regressions"].as_u64().unwrap();
    assert_eq!(out.status.code(), Some(if regressions == 0 { 0 } else { 1 }), "{}", text(&out));
    // A tolerance lifted out of reach passes the slowed run too: the flags are what decide.
    let out = stampede(&["report", "compare", "--baseline"])
        .arg(&fast_report)
        .arg(&slow_report)
        .args(["--min-change-ms", "100000", "--out"])
        .arg(dir.join("lenient"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn report_commands_refuse_what_they_cannot_read_naming_the_file() {
    let dir = reports().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.json");
    let out = stampede(&["report", "merge", "--out"]).arg(dir.join("m")).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("missing.json"), "{}", text(&out));

    let old = dir.join("old.json");
    std::fs::write(&old, r#"{"schema": "stampede.report/1", "run": {}}"#).unwrap();
    let out = stampede(&["report", "compare", "--baseline"]).arg(&old).arg(&old).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("old.json: schema \"stampede.report/1\""), "{}", text(&out));

    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();
    let out = stampede(&["report", "html"]).arg(&garbage).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("garbage.json: not JSON"), "{}", text(&out));

    let out = stampede(&["report", "compare", "--percentiles", "p42", "--baseline"])
        .arg(&old)
        .arg(&old)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("percentile \"p42\""), "{}", text(&out));

    // A profile whose [compare] is malformed: the file, the line and the field.
    let profile = dir.join("bad-compare.toml");
    let reference = std::fs::read_to_string(support::test_profile()).unwrap();
    std::fs::write(&profile, reference.replace("min_change_ms = 5.0", "min_change_ms = \"five\"")).unwrap();
    let out = stampede(&["report", "compare", "--baseline"])
        .arg(&old)
        .arg(&old)
        .arg("--profile")
        .arg(&profile)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("bad-compare.toml") && said.contains("min_change_ms") && said.contains("line"),
        "{said}"
    );
}
