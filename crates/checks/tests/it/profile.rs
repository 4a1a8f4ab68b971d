//! The reference profile's checks of the kinds judged here, and the errors a profile of them
//! gets for its mistakes.

use std::path::Path;
use std::time::Duration;

use checks::Check;
use profile::Profile;

use crate::common::{reference_checks, reference_profile};

#[test]
fn the_reference_profile_has_a_check_of_every_kind() {
    let checks = reference_checks(&reference_profile());
    let kinds: Vec<&str> = checks.iter().map(Check::kind).collect();
    for kind in ["counter", "merge", "invalidation", "cursor-walk", "query-budget", "vary", "upload"] {
        assert!(kinds.contains(&kind), "no {kind} check in {kinds:?}");
    }
}

const USERS: &str = r#"
name = "t"
[users]
create = { method = "POST", path = "/v1/users", body = { name = "{name}" } }
token = "/token"
"#;

fn parse(check: &str) -> Result<Vec<Check>, String> {
    let profile = Profile::parse(Path::new("t.toml"), &format!("{USERS}\n[[check]]\n{check}"))
        .map_err(|e| e.to_string())?;
    checks::read(&profile).map_err(|e| e.to_string())
}

const COUNTER: &str = r#"
name = "c"
kind = "counter"
request = { method = "POST", path = "/v1/videos", body = { url = "https://x/{seq}" } }
accepted = { status = [201] }
read_back = { method = "GET", path = "/v1/quota" }
value = "/used"
"#;

#[test]
fn a_counter_check_needs_its_units_and_refuses_unknown_fields() {
    let error = parse(COUNTER).unwrap_err();
    assert!(error.contains("units"), "{error}");
    let checks = parse(&format!("{COUNTER}units = 3")).unwrap();
    assert!(matches!(checks[0], Check::Counter(ref c) if c.units == 3 && c.limit.is_none()));
    let error = parse(&format!("{COUNTER}units = 3\nunit = 3")).unwrap_err();
    assert!(error.contains("unit"), "{error}");
    let error = parse(&format!("{COUNTER}units = 0")).unwrap_err();
    assert!(error.contains("units must be at least 1"), "{error}");
    let error = parse(&COUNTER.replace("/used", "used").replace("value", "units = 1\nvalue")).unwrap_err();
    assert!(error.contains("not a JSON pointer"), "{error}");
}

#[test]
fn a_merge_field_names_each_request_and_its_placeholders_are_known() {
    let merge = r#"
name = "m"
kind = "merge"
create = { method = "POST", path = "/v1/videos", body = { url = "https://x/{unique}" } }
id = "/id"
request = { method = "PATCH", path = "/v1/videos/{id}/status", body = { fields = { "f-{seq}" = "{seq}" } } }
merged = { status = [200] }
read_back = { method = "GET", path = "/v1/videos/{id}/status" }
fields = "/fields"
"#;
    parse(&format!("{merge}field = \"f-{{seq}}\"")).unwrap();
    let error = parse(&format!("{merge}field = \"f\"")).unwrap_err();
    assert!(error.contains("must contain {seq}"), "{error}");
    let error = parse(&format!("{merge}field = \"f-{{sequence}}\"")).unwrap_err();
    assert!(error.contains("unknown placeholder {sequence}"), "{error}");
    // Placeholders in a body's keys are checked like those in its values.
    let error = parse(&format!("{}field = \"f-{{seq}}\"", merge.replace("\"f-{seq}\" =", "\"f-{nope}\" =")))
        .unwrap_err();
    assert!(error.contains("unknown placeholder {nope}"), "{error}");
}

#[test]
fn defaults_fill_what_a_check_leaves_out() {
    let checks = parse(
        r#"
name = "q"
kind = "query-budget"
insert = { method = "POST", path = "/v1/videos", body = { url = "https://x/{unique}" } }
request = { method = "GET", path = "/v1/videos?limit={limit}" }
items = "/items"
"#,
    )
    .unwrap();
    let Check::QueryBudget(q) = &checks[0] else { panic!("not a query-budget check") };
    assert_eq!(
        (q.sizes.as_slice(), q.budget, q.header.as_str()),
        ([5, 20, 100].as_slice(), 10, "x-db-queries")
    );
}

const REFERENCE: &str = include_str!("../../../../scenarios/reference.toml");

/// `text` read as a profile at `p.toml` and its checks as their kinds.
fn read_all(text: &str) -> Result<Vec<Check>, String> {
    let profile = Profile::parse(Path::new("p.toml"), text).map_err(|e| e.to_string())?;
    checks::read(&profile).map_err(|e| e.to_string())
}

#[test]
fn the_reference_profile_has_the_upstream_checks() {
    let checks = read_all(REFERENCE).expect("the reference profile");
    let kinds: Vec<&str> = checks.iter().map(Check::kind).collect();
    for kind in
        ["breaker", "token-refresh", "ws-connections", "import-lifecycle", "upstream-pool", "usage-plan"]
    {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let controlled: Vec<&str> = checks.iter().filter(|c| c.drives_upstream()).map(Check::kind).collect();
    assert_eq!(controlled, ["breaker", "token-refresh", "import-lifecycle", "upstream-pool", "usage-plan"]);
    assert_eq!(checks.last().map(Check::kind), Some("usage-plan"), "the plan's check runs last");
}

#[test]
fn the_plan_check_must_come_after_every_check_that_needs_the_upstream() {
    let plan = REFERENCE.find("[[check]]\nname = \"upstream-usage-plan\"").expect("the plan check");
    let end = REFERENCE.find("[load]").expect("the load section");
    let (head, rest) = REFERENCE.split_at(plan);
    let (plan_check, tail) = rest.split_at(end - plan);
    let breaker = head.find("[[check]]\nname = \"upstream-breaker\"").expect("the breaker check");
    let moved = format!("{}{plan_check}{}{tail}", &head[..breaker], &head[breaker..]);
    let err = read_all(&moved).map(drop).unwrap_err();
    assert!(
        err.contains("p.toml")
            && err.contains("\"upstream-usage-plan\": it exhausts the upstream plan")
            && err.contains("\"upstream-breaker\" after it"),
        "{err}"
    );
    let twice = format!("{head}{plan_check}{}{tail}", plan_check.replace("upstream-usage-plan", "again"));
    let err = read_all(&twice).map(drop).unwrap_err();
    assert!(err.contains("both exhaust the upstream plan"), "{err}");
}

#[test]
fn the_pool_and_plan_checks_refuse_what_they_cannot_run_with() {
    let parse = |text: &str| read_all(text).map(drop);
    let err = parse(&REFERENCE.replace("max_in_flight = 12", "max_in_flight = 25")).unwrap_err();
    assert!(err.contains("max_in_flight 25 must not exceed max_connections 24"), "{err}");
    let err =
        parse(&REFERENCE.replace("min_requests_per_connection = 2.0", "min_requests_per_connection = 1.0"))
            .unwrap_err();
    assert!(err.contains("min_requests_per_connection must be above 1"), "{err}");
    let err = parse(&REFERENCE.replace("max_connections = 24", "max_connections = 24\nmax_conections = 6"))
        .unwrap_err();
    assert!(err.contains("line") && err.contains("max_conections"), "{err}");
    let err =
        parse(&REFERENCE.replace(
            "limits = [\"/limits/per_day\", \"/limits/per_hour\"]",
            "limits = [\"/limits/per_day\"]",
        ))
        .unwrap_err();
    assert!(err.contains("used and limits must name the same number of periods"), "{err}");
    let err =
        parse(&REFERENCE.replace("used = [\"/day\", \"/hour\"]", "used = [\"day\", \"/hour\"]")).unwrap_err();
    assert!(err.contains("used \"day\" is not a JSON pointer"), "{err}");
    let err = parse(&REFERENCE.replace("max_calls = 1000", "max_calls = 0")).unwrap_err();
    assert!(err.contains("max_calls must be at least 1"), "{err}");
}

#[test]
fn the_upstream_checks_refuse_what_they_cannot_run_with() {
    let parse = |text: &str| read_all(text).map(drop);
    let err = parse(&REFERENCE.replace("open_ms = 2000", "open_ms = 0")).unwrap_err();
    assert!(err.contains("\"upstream-breaker\": open_ms must be at least 1"), "{err}");
    let err = parse(&REFERENCE.replace("route = \"youtube_videos\"", "route = \"vimeo\"")).unwrap_err();
    assert!(err.contains("vimeo"), "{err}");
    let err = parse(&REFERENCE.replace("period_ms = 2000", "period_ms = 2000\nperiod = 1")).unwrap_err();
    assert!(err.contains("period"), "{err}");
    let err = parse(&REFERENCE.replace("limit = 5\n", "limit = 0\n")).unwrap_err();
    assert!(err.contains("limit must be at least 1"), "{err}");
    let err = parse(&REFERENCE.replace("hold_ms = 2600", "hold_ms = 1200")).unwrap_err();
    assert!(err.contains("\"import-lifecycle\": hold_ms 1200 must lie between visibility_ms 1500"), "{err}");
    let err = parse(&REFERENCE.replace("held = 32\n", "held = 0\n")).unwrap_err();
    assert!(err.contains("held must be at least 1"), "{err}");
}

#[test]
fn the_reference_profile_tunes_the_embedded_stack_as_its_checks_expect() {
    let profile = reference_profile();
    let tuning = checks::tuning(&reference_checks(&profile), &profile.defaults).unwrap();
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    assert_eq!((tuning.publish_limit, tuning.publish_window), (5, s(3)));
    assert_eq!((tuning.breaker_failures, tuning.breaker_open, tuning.breaker_trial_timeout), (5, s(2), s(2)));
    assert_eq!((tuning.task_visibility, tuning.task_time_limit), (ms(1500), s(3)));
    assert_eq!((tuning.workers, tuning.upstream_connections, tuning.upstream_idle), (32, 24, 12));
    assert_eq!((tuning.refresh_period, tuning.token_lifetime), (s(2), s(8)));
    // The plan: the calls of the checks before the plan's, at 32 a burst and 3 rounds —
    // unique-creation 3, counter 96, merge 3, cursor-walk 60, query-budget 50, vary 50,
    // breaker (3 + 1) × 3,000 ms / 50 ms = 240, token-refresh 5 × 2,000 / 250 = 40,
    // upstream-pool 96: 638 — half as many again (957), and the plan check's 2 × 100 + 50.
    assert_eq!(tuning.upstream_plan, Some(1_207));
}

#[test]
fn checks_that_need_one_setting_at_two_values_are_refused_naming_both() {
    let breaker = REFERENCE.find("[[check]]\nname = \"upstream-breaker\"").unwrap();
    let end = breaker + REFERENCE[breaker..].find("\n\n").unwrap();
    let second = REFERENCE[breaker..end]
        .replace("upstream-breaker", "slow-breaker")
        .replace("open_ms = 2000", "open_ms = 5000");
    let text = format!("{}\n{second}\n{}", &REFERENCE[..end], &REFERENCE[end..]);
    let profile = Profile::parse(Path::new("p.toml"), &text).unwrap();
    let error = checks::tuning(&checks::read(&profile).unwrap(), &profile.defaults).unwrap_err();
    assert!(
        error.contains("\"upstream-breaker\"")
            && error.contains("\"slow-breaker\"")
            && error.contains("breaker open period"),
        "{error}"
    );
    // A trial held longer than the tasks stay with their workers.
    let held = REFERENCE.replace("trial_hold_ms = 1000", "trial_hold_ms = 1600");
    let profile = Profile::parse(Path::new("p.toml"), &held).unwrap();
    let error = checks::tuning(&checks::read(&profile).unwrap(), &profile.defaults).unwrap_err();
    assert!(error.contains("\"upstream-breaker\"") && error.contains("visibility timeout"), "{error}");
}
