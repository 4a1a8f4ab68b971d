//! The reference profile's checks of the kinds judged here, and the errors a profile of them
//! gets for its mistakes.

use std::path::Path;

use checks::profile::{Check, Profile};

use crate::common::reference_profile;

#[test]
fn the_reference_profile_has_a_check_of_every_kind() {
    let profile = reference_profile();
    let kinds: Vec<&str> = profile.checks.iter().map(Check::kind).collect();
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

fn parse(check: &str) -> Result<Profile, String> {
    Profile::parse(Path::new("t.toml"), &format!("{USERS}\n[[check]]\n{check}")).map_err(|e| e.to_string())
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
    let profile = parse(&format!("{COUNTER}units = 3")).unwrap();
    assert!(matches!(profile.checks[0], Check::Counter(ref c) if c.units == 3 && c.limit.is_none()));
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
fn body_keys_are_filled_like_values() {
    let body = serde_json::json!({ "fields": { "f-{seq}": "{seq}" } });
    let filled = checks::profile::fill_json(&body, &[("seq", "7")]);
    assert_eq!(filled, serde_json::json!({ "fields": { "f-7": "7" } }));
}

#[test]
fn defaults_fill_what_a_check_leaves_out() {
    let profile = parse(
        r#"
name = "q"
kind = "query-budget"
insert = { method = "POST", path = "/v1/videos", body = { url = "https://x/{unique}" } }
request = { method = "GET", path = "/v1/videos?limit={limit}" }
items = "/items"
"#,
    )
    .unwrap();
    let Check::QueryBudget(q) = &profile.checks[0] else { panic!("not a query-budget check") };
    assert_eq!(
        (q.sizes.as_slice(), q.budget, q.header.as_str()),
        ([5, 20, 100].as_slice(), 10, "x-db-queries")
    );
}
