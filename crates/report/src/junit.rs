//! `junit.xml`: the run's verdicts in the JUnit XML most CI servers read (GitLab, Jenkins,
//! GitHub actions that publish test results). A `<testsuites>` root with the counts, then the
//! suites: `run` (one test case, `complete`, failed when the run was interrupted — so an
//! interrupted run never looks green), `targets` (one test case per target, the verdicts
//! around the load's faults among them: `errors during NAME` and `recovery after NAME` fail
//! like any target, a `fault NAME applied` that could not be is an `<error>`, as the run did
//! not undergo the fault it planned), `checks` (one per
//! check verdict; the suite is absent when no checks ran), `comparison` when the run was
//! compared with a baseline (one test case per endpoint and percentile, `<endpoint>
//! <percentile>`, failed when it regressed beyond the tolerance) and `capacity` for a capacity
//! run (a case per step that met every target, and `sustainable step`, failed when none was).
//! A failure's `message` is the target's detail or the check's summary, its body the detail or
//! every violation, one a line.
//!
//! The XML is written here, with its own escaping ([`escape_text`], [`escape_attr`]), and not
//! with the quick-junit crate (0.8), which was tried and cannot produce what the tests require
//! (`junit_escapes_names_messages_and_illegal_characters`: a target named with markup, a tab, a
//! line feed, a carriage return, NUL, ESC and U+FFFE comes back from a parser exactly, each
//! character XML 1.0 cannot hold as U+FFFD):
//! - every string passes through its `XmlString::new`, which runs `strip-ansi-escapes` (that
//!   deletes the tab and the carriage return too) and then deletes the other C0 controls: NUL
//!   is deleted rather than marked, and an ESC starts an escape sequence that swallows what
//!   follows it — in the test's name `\u{1b}\u{fffe}é✓` vanished whole, visible characters
//!   included. Evidence quotes what a target answered, so a stray ESC would cut the violations
//!   it explains.
//! - U+FFFE and U+FFFF pass through unfiltered and make the file one a parser rejects
//!   (roxmltree: `NonXmlChar('\u{fffe}')`).
//! - attribute values are escaped by quick-xml's `escape` (`<`, `>`, `&`, `'`, `"`), so a line
//!   feed stays raw and every parser normalises it to a space: a name or a failure's message
//!   with a line break does not survive. Its API takes values unescaped, so the character
//!   reference that would keep one (`&#10;`) cannot be passed through it.
//!
//! Besides the five markup characters, the text can carry what a target answered (checks'
//! evidence and violations quote it), including control characters XML 1.0 cannot represent at
//! all, not even as character references. [`escape_text`] and [`escape_attr`] replace those with
//! U+FFFD, and in attributes also encode tab, line feed and carriage return (in text, the
//! carriage return), which a parser would otherwise normalise. This is the report crate's only
//! hand-written escaping: XML, not HTML, and characters no XML library here filters the way a
//! CI server's parser needs.
//!
//! The checks' cases are read from the checks' document (`checks.json`'s JSON) in one function,
//! [`check_cases`], the only place this file looks into it.

use std::fmt::Write as _;

use crate::checks::{ChecksReport, Status};
use crate::{ObjectiveKind, Report};

/// One test case: its class, name, and the failure (message, body) when it failed.
struct Case {
    classname: &'static str,
    name: String,
    failure: Option<(String, String)>,
    /// What `failure` is written as.
    tag: Tag,
}

/// How a case that did not pass is written: a `<failure>` (a finding: a rule broken, a target
/// missed), an `<error>` (no finding could be made: a check inconclusive or misconfigured), or
/// `<skipped>` (inconclusive, and the run was told it may be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Failure,
    Error,
    Skipped,
}

/// The report as JUnit XML.
pub fn junit(report: &Report) -> String {
    let run = vec![Case {
        classname: "run",
        tag: Tag::Failure,
        name: "complete".to_owned(),
        failure: (!report.run.complete).then(|| {
            let why = report.run.interrupted.clone().unwrap_or_else(|| "the run did not complete".to_owned());
            (why.clone(), format!("{why}: the verdicts are those reached before"))
        }),
    }];
    let targets: Vec<Case> = report
        .targets
        .iter()
        .map(|t| Case {
            classname: "targets",
            tag: if t.kind == ObjectiveKind::FaultApplied { Tag::Error } else { Tag::Failure },
            name: t.name.clone(),
            failure: (!t.passed).then(|| (t.detail.clone(), t.detail.clone())),
        })
        .collect();
    let checks: Option<Vec<Case>> = report.checks.as_ref().map(check_cases);
    let comparison: Option<Vec<Case>> = report.comparison.as_ref().map(|c| {
        c.changes
            .iter()
            .map(|change| Case {
                classname: "comparison",
                tag: Tag::Failure,
                name: format!("{} {}", change.endpoint, change.percentile),
                failure: change.regressed.then(|| {
                    (
                        format!("{} {}: {}", change.endpoint, change.percentile, change.detail),
                        format!("against baseline {} ({})", c.baseline.id, c.baseline.file),
                    )
                }),
            })
            .collect()
    });
    // A capacity run: a case per step that met every target, and one for the verdict — a
    // step that breaks a target is where stepping ends, a finding and not a failure, unless
    // it was the first.
    let capacity: Option<Vec<Case>> = report.capacity.as_ref().map(|c| {
        let mut cases: Vec<Case> = c
            .steps
            .iter()
            .enumerate()
            .filter(|(_, step)| step.passed)
            .map(|(i, step)| Case {
                classname: "capacity",
                tag: Tag::Failure,
                name: format!("step {}: {} {}", i + 1, step.offered, c.unit),
                failure: None,
            })
            .collect();
        cases.push(Case {
            classname: "capacity",
            tag: Tag::Failure,
            name: "sustainable step".to_owned(),
            failure: c.sustainable.is_none().then(|| {
                let misses = c.steps.first().map(|s| s.missed.join("\n")).unwrap_or_default();
                (format!("no step was sustainable: {}", c.stopped), misses)
            }),
        });
        cases
    });
    let duration_s = report.run.finished_at_ms.saturating_sub(report.run.started_at_ms) as f64 / 1000.0;
    let mut suites =
        vec![("run", run, 0.0), ("targets", targets, report.load.as_ref().map_or(0.0, |l| l.duration_s))];
    if let Some(checks) = checks {
        suites.push(("checks", checks, 0.0));
    }
    if let Some(comparison) = comparison {
        suites.push(("comparison", comparison, 0.0));
    }
    if let Some(capacity) = capacity {
        let held = report.capacity.as_ref().map_or(0.0, |c| c.steps.iter().map(|s| s.duration_s).sum());
        suites.push(("capacity", capacity, held));
    }
    let tests: usize = suites.iter().map(|s| s.1.len()).sum();
    let count =
        |cases: &[Case], tag: Tag| cases.iter().filter(|c| c.failure.is_some() && c.tag == tag).count();
    let failures: usize = suites.iter().map(|s| count(&s.1, Tag::Failure)).sum();
    let errors: usize = suites.iter().map(|s| count(&s.1, Tag::Error)).sum();
    let skipped: usize = suites.iter().map(|s| count(&s.1, Tag::Skipped)).sum();

    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        r#"<testsuites name="{}" tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{duration_s:.3}">"#,
        escape_attr(&format!("stampede {} {}", report.command(), report.run.id))
    );
    for (name, cases, time) in &suites {
        let _ = writeln!(
            s,
            r#"  <testsuite name="{name}" tests="{}" failures="{}" errors="{}" skipped="{}" time="{time:.3}" timestamp="{}" hostname="{}">"#,
            cases.len(),
            count(cases, Tag::Failure),
            count(cases, Tag::Error),
            count(cases, Tag::Skipped),
            timestamp(report.run.started_at_ms),
            escape_attr(&report.run.host)
        );
        s.push_str("    <properties>\n");
        let mut property = |k: &str, v: &str| {
            let _ = writeln!(s, r#"      <property name="{k}" value="{}"/>"#, escape_attr(v));
        };
        property("run", &report.run.id);
        property("profile", &report.run.profile);
        property("target", &report.run.target.join(" "));
        property("stampede_version", &report.run.stampede_version);
        if let Some(revision) = &report.run.git_revision {
            property("git_revision", revision);
        }
        s.push_str("    </properties>\n");
        for case in cases {
            let _ = write!(
                s,
                r#"    <testcase classname="{}" name="{}" time="0""#,
                case.classname,
                escape_attr(&case.name)
            );
            match &case.failure {
                None => s.push_str("/>\n"),
                Some((message, _)) if case.tag == Tag::Skipped => {
                    let _ = writeln!(s, r#"><skipped message="{}"/></testcase>"#, escape_attr(message));
                }
                Some((message, body)) => {
                    let tag = if case.tag == Tag::Error { "error" } else { "failure" };
                    let _ = writeln!(
                        s,
                        r#"><{tag} message="{}" type="{}">{}</{tag}></testcase>"#,
                        escape_attr(message),
                        case.classname,
                        escape_text(body)
                    );
                }
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

/// A case per check verdict of `checks` (`checks.json`'s document): a violated check fails
/// (its summary the message, its violations, one a line, the body); an inconclusive one is an
/// error (the evidence it missed, one a line), skipped when the run allowed it.
fn check_cases(checks: &ChecksReport) -> Vec<Case> {
    checks
        .verdicts
        .iter()
        .map(|v| {
            let (tag, body) = match v.status {
                Status::Violated => (
                    Tag::Failure,
                    v.violations
                        .iter()
                        .map(|x| format!("{}: {}", x.rule, x.detail))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                Status::Inconclusive if v.allowed => (Tag::Skipped, String::new()),
                _ => (Tag::Error, v.missing_line().replace("; ", "\n")),
            };
            let body = if body.is_empty() { v.summary.clone() } else { body };
            Case {
                classname: "checks",
                name: v.check.clone(),
                failure: (!v.held()).then(|| (v.summary.clone(), body)),
                tag,
            }
        })
        .collect()
}

/// `c` when XML 1.0 can hold it, else U+FFFD: control characters but tab, line feed and
/// carriage return, and the non-characters U+FFFE and U+FFFF (Rust `char`s are never
/// surrogates).
fn legal(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
        c => c,
    }
}

/// `text` as XML character data.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().map(legal) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as a double-quoted XML attribute value, white space kept.
fn escape_attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().map(legal) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// ISO 8601 without a zone (what JUnit's schema wants), from epoch milliseconds.
fn timestamp(ms: u64) -> String {
    let [y, mo, d, h, mi, s] = crate::civil_utc(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LoadReport, ObjectiveVerdict, RunMeta};
    use serde_json::json;

    const NASTY: &str = "a<b>&\"c'\td\ne\r\u{0}\u{1b}\u{fffe}é✓";

    fn report(complete: bool, checks: Option<ChecksReport>) -> Report {
        let target = |name: &str, passed: bool| ObjectiveVerdict {
            name: name.to_owned(),
            kind: crate::ObjectiveKind::P99,
            endpoint: None,
            comparison: "<".to_owned(),
            bound: 500.0,
            measured: Some(if passed { 12.0 } else { 900.0 }),
            unit: "ms".to_owned(),
            passed,
            detail: format!("measured for {name}"),
        };
        Report {
            schema: crate::SCHEMA.to_owned(),
            run: RunMeta {
                id: "r<1>".to_owned(),
                command: None,
                stampede_version: "0.1.0".to_owned(),
                git_revision: Some("abc".to_owned()),
                profile: NASTY.to_owned(),
                target: vec!["http://127.0.0.1:1".to_owned()],
                embedded: None,
                host: "h".to_owned(),
                started_at_ms: 1_000,
                finished_at_ms: 4_500,
                complete,
                interrupted: (!complete).then(|| "interrupted (Ctrl-C)".to_owned()),
                sources: Vec::new(),
            },
            checks,
            load: Some(LoadReport {
                model: "open".to_owned(),
                rate: Some([10.0, 10.0]),
                users: None,
                users_reached: None,
                started_at_ms: 1_000,
                duration_s: 3.0,
                requests: 0,
                errors: 0,
                unsent: 0,
                throughput: 0.0,
                endpoints: Vec::new(),
                metrics: Vec::new(),
                faults: Vec::new(),
            }),
            targets: vec![target("p99 of import", true), target(NASTY, false), target("throughput", false)],
            comparison: None,
            capacity: None,
            passed: false,
        }
    }

    fn checks() -> ChecksReport {
        let held =
            crate::checks::Verdict::new("publish-rate-limit", "rate-limit", 10, json!({})).summarize("ok");
        let mut violated = crate::checks::Verdict::new("import-unique", "unique-creation", 10, json!({}));
        violated.violate("unique", "key k1 has 2 records", []);
        violated.violate("quoted", NASTY, []);
        ChecksReport {
            schema: crate::checks::SCHEMA.to_owned(),
            stampede_version: "0.1.0".to_owned(),
            run_id: "r".to_owned(),
            started_at_ms: 0,
            finished_at_ms: 1,
            complete: true,
            profile: "reference".to_owned(),
            target: vec!["http://127.0.0.1:1".to_owned()],
            embedded: None,
            passed: false,
            // A summary of the judge's own words, which the case's message carries.
            verdicts: vec![
                held,
                crate::checks::Verdict { summary: "2 records for 1 key".to_owned(), ..violated },
            ],
        }
    }

    fn parse(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"))
    }

    #[test]
    fn an_inconclusive_check_is_an_error_and_an_allowed_one_skipped() {
        let mut report = checks();
        let mut unknown = crate::checks::Verdict::new("dead-stack", "counter", 97, json!({}));
        unknown.bound_unknown(&[], 0.05);
        let mut allowed = crate::checks::Verdict::new("long-window", "rate-limit", 3, json!({}));
        allowed.require(
            "recovery-observed",
            false,
            "the 60 s window was not waited out",
            "pass --max-wait 70s",
        );
        allowed.allowed = true;
        report.verdicts.push(unknown.summarize("never"));
        report.verdicts.push(allowed.summarize("never"));
        let xml = junit(&self::report(true, Some(report)));
        let doc = parse(&xml);
        let suite = doc.descendants().find(|n| n.attribute("name") == Some("checks")).unwrap();
        let counts =
            ["tests", "failures", "errors", "skipped"].map(|a| suite.attribute(a).unwrap().to_owned());
        assert_eq!(counts, ["4", "1", "1", "1"], "{xml}");
        let case = |name: &str| suite.children().find(|n| n.attribute("name") == Some(name)).unwrap();
        let error = case("dead-stack").children().find(|n| n.has_tag_name("error")).expect("an error");
        assert!(error.attribute("message").unwrap().contains("no operation was recorded"), "{xml}");
        assert!(case("long-window").children().any(|n| n.has_tag_name("skipped")), "{xml}");
        assert!(
            !case("long-window").children().any(|n| n.has_tag_name("failure") || n.has_tag_name("error"))
        );
        assert_eq!(doc.root_element().attribute("errors"), Some("1"));
    }

    #[test]
    fn junit_has_one_case_per_target_and_check_and_counts_them() {
        let xml = junit(&report(true, Some(checks())));
        let doc = parse(&xml);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("tests"), Some("6"), "1 run + 3 targets + 2 checks");
        assert_eq!(root.attribute("failures"), Some("3"));
        let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
        let by_class = |c: &str| cases.iter().filter(|n| n.attribute("classname") == Some(c)).count();
        assert_eq!((by_class("run"), by_class("targets"), by_class("checks")), (1, 3, 2));
        let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
        assert_eq!(suites.len(), 3);
        for suite in &suites {
            let cases = suite.children().filter(|n| n.has_tag_name("testcase")).count();
            let failures = suite.descendants().filter(|n| n.has_tag_name("failure")).count();
            assert_eq!(suite.attribute("tests"), Some(cases.to_string().as_str()));
            assert_eq!(suite.attribute("failures"), Some(failures.to_string().as_str()));
        }
        // The failed check carries every violation in its body, its summary as the message.
        let failed = cases.iter().find(|n| n.attribute("name") == Some("import-unique")).unwrap();
        let failure = failed.children().find(|n| n.has_tag_name("failure")).unwrap();
        assert_eq!(failure.attribute("message"), Some("2 records for 1 key"));
        let body = failure.text().unwrap();
        assert!(body.starts_with("unique: key k1 has 2 records\nquoted: a<b>&"), "{body:?}");
        let passed = cases.iter().find(|n| n.attribute("name") == Some("publish-rate-limit")).unwrap();
        assert!(passed.children().all(|n| !n.has_tag_name("failure")));
    }

    #[test]
    fn the_verdicts_around_faults_are_target_cases_and_a_fault_not_applied_an_error() {
        let mut report = report(true, None);
        let second = |t: u64, errors: u64| crate::Second::counted(t, 10, errors);
        let load = report.load.as_mut().unwrap();
        load.duration_s = 9.0;
        load.endpoints.push(crate::EndpointReport {
            name: "e".to_owned(),
            requests: 100,
            errors: 10,
            outcomes: Default::default(),
            throughput: 10.0,
            latency_ms: crate::Latency::ZERO,
            histogram: String::new(),
            timeline: (0..10).map(|t| second(t, if t == 2 { 10 } else { 0 })).collect(),
        });
        let window = |name: &str, error: Option<&str>| crate::FaultWindow {
            name: name.to_owned(),
            target: "link redis".to_owned(),
            action: "down".to_owned(),
            started_at_ms: 3_100,
            ended_at_ms: Some(3_900),
            error: error.map(str::to_owned),
            recover_within_s: Some(2.0),
            max_errors_during: Some(5),
            max_error_rate: 0.0,
        };
        load.faults = vec![window("redis-down", None), window("pg-down", Some("no such link"))];
        report.targets = crate::faults::judge(load);
        let xml = junit(&report);
        let doc = parse(&xml);
        let suite = doc.descendants().find(|n| n.attribute("name") == Some("targets")).unwrap();
        let case = |name: &str| {
            let case = suite.children().find(|n| n.attribute("name") == Some(name));
            let case = case.unwrap_or_else(|| panic!("no case {name:?} in {xml}"));
            case.children().find(|n| n.is_element()).map(|n| n.tag_name().name().to_owned())
        };
        assert_eq!(case("recovery after redis-down"), None, "{xml}");
        assert_eq!(case("errors during redis-down").as_deref(), Some("failure"), "{xml}");
        assert_eq!(case("fault pg-down applied").as_deref(), Some("error"), "{xml}");
        assert_eq!(case("recovery after pg-down").as_deref(), Some("failure"), "{xml}");
        let counts = ["tests", "failures", "errors"].map(|a| suite.attribute(a).unwrap().to_owned());
        assert_eq!(counts, ["5", "3", "1"], "{xml}");
    }

    #[test]
    fn a_regression_against_the_baseline_is_a_failed_case() {
        let mut r = report(true, None);
        let change = |endpoint: &str, regressed: bool| crate::Change {
            endpoint: endpoint.to_owned(),
            percentile: "p99".to_owned(),
            baseline_ms: Some(10.0),
            current_ms: Some(if regressed { 60.0 } else { 10.5 }),
            change: Some(if regressed { 5.0 } else { 0.05 }),
            regressed,
            detail: "10 → 60 ms".to_owned(),
        };
        r.comparison = Some(crate::Comparison {
            baseline: crate::BaselineRef {
                id: "base-1".into(),
                file: "reports/baseline/report.json".into(),
                started_at_ms: 0,
                git_revision: None,
            },
            tolerance: 0.1,
            min_change_ms: 1.0,
            percentiles: vec!["p99".into()],
            changes: vec![change("import", true), change("list", false)],
            regressions: 1,
        });
        let xml = junit(&r);
        let doc = parse(&xml);
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("comparison"))
            .expect("a comparison suite");
        assert_eq!((suite.attribute("tests"), suite.attribute("failures")), (Some("2"), Some("1")));
        let failed = suite.descendants().find(|n| n.attribute("name") == Some("import p99")).unwrap();
        let failure = failed.children().find(|n| n.has_tag_name("failure")).unwrap();
        assert!(failure.attribute("message").unwrap().contains("10 → 60 ms"));
        assert!(failure.text().unwrap().contains("base-1"));
    }

    #[test]
    fn junit_escapes_names_messages_and_illegal_characters() {
        let xml = junit(&report(true, Some(checks())));
        let doc = parse(&xml);
        let cleaned = "a<b>&\"c'\td\ne\r\u{fffd}\u{fffd}\u{fffd}é✓";
        let nasty = doc
            .descendants()
            .find(|n| n.attribute("classname") == Some("targets") && n.attribute("name") == Some(cleaned));
        assert!(nasty.is_some(), "the name survives exactly, tab and newlines included:\n{xml}");
        let profile = doc.descendants().find(|n| n.attribute("name") == Some("profile")).unwrap();
        assert_eq!(profile.attribute("value"), Some(cleaned));
        assert_eq!(doc.root_element().attribute("name"), Some("stampede run r<1>"));
    }

    #[test]
    fn an_interrupted_run_fails_its_complete_case_and_no_checks_means_no_checks_suite() {
        let xml = junit(&report(false, None));
        let doc = parse(&xml);
        assert_eq!(doc.root_element().attribute("tests"), Some("4"));
        assert_eq!(doc.root_element().attribute("failures"), Some("3"));
        let complete = doc.descendants().find(|n| n.attribute("classname") == Some("run")).unwrap();
        let failure = complete.children().find(|n| n.has_tag_name("failure")).unwrap();
        assert_eq!(failure.attribute("message"), Some("interrupted (Ctrl-C)"));
        assert!(
            !doc.descendants().any(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("checks"))
        );
    }

    #[test]
    fn xml_escaping_covers_markup_whitespace_and_characters_xml_cannot_hold() {
        assert_eq!(escape_text("a<b>&c\"'"), "a&lt;b&gt;&amp;c\"'");
        assert_eq!(escape_text("x\u{0}y\u{7}\u{ffff}\n\t"), "x\u{fffd}y\u{fffd}\u{fffd}\n\t");
        assert_eq!(escape_attr("a\"b'c\td\ne\rf"), "a&quot;b&apos;c&#9;d&#10;e&#13;f");
        assert_eq!(escape_attr("\u{1f}é\u{10ffff}"), "\u{fffd}é\u{10ffff}");
    }
}
