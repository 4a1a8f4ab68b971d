//! A profile that is wrong is refused with its file, line and field; nothing is ignored.

use std::path::Path;

use checks::Check;
use profile::{Profile, ProfileError};

/// The profile and its checks, as `stampede check` reads them.
fn parse(text: &str) -> Result<(Profile, Vec<Check>), String> {
    let profile = Profile::parse(Path::new("scenarios/mine.toml"), text).map_err(|e| e.to_string())?;
    let checks = checks::read(&profile).map_err(|e| e.to_string())?;
    Ok((profile, checks))
}

const USERS: &str = r#"
name = "mine"
[users]
create = { method = "POST", path = "/v1/users", body = { name = "{name}" } }
token = "/token"
"#;

#[test]
fn the_reference_profile_parses_and_names_its_checks() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/reference.toml");
    let profile = Profile::load(&path).unwrap();
    assert_eq!(profile.name, "reference");
    let checks = checks::read(&profile).unwrap();
    assert!(checks.len() >= 2, "{checks:?}");
    let named = |name: &str| checks.iter().find(|c| c.name() == name);
    assert!(matches!(named("publish-rate-limit"), Some(Check::RateLimit(_))));
    assert!(matches!(named("import-unique"), Some(Check::UniqueCreation(_))));
}

#[test]
fn every_profile_shipped_in_scenarios_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut parsed = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            checks::read(&profile).unwrap_or_else(|e| panic!("{e}"));
            parsed.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    parsed.sort();
    assert_eq!(parsed, ["chat-connections.toml", "faults.toml", "partner.toml", "reference.toml"]);
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let text = format!("{USERS}\n[[check]]\nname = \"x\"\nkind = \"rate-limit\n");
    let error = parse(&text).unwrap_err();
    assert!(error.starts_with("scenarios/mine.toml, line 9"), "{error}");
}

#[test]
fn an_unknown_field_is_an_error_naming_it_and_its_line() {
    let text = format!(
        "{USERS}\n[[check]]\nname = \"p\"\nkind = \"rate-limit\"\nrequest = {{ method = \"POST\", path = \"/p\" }}\n\
         allowed = {{ status = [202] }}\nlimited = {{ status = [429] }}\nconcurency = 3\n"
    );
    let error = parse(&text).unwrap_err();
    // The field by name, and its own line.
    assert!(error.contains("unknown field `concurency`"), "{error}");
    assert!(error.contains("line 13"), "{error}");
}

#[test]
fn an_unknown_check_kind_is_an_error_listing_the_known_ones() {
    let text = format!("{USERS}\n[[check]]\nname = \"p\"\nkind = \"exactly-once\"\n");
    let error = parse(&text).unwrap_err();
    assert!(error.contains("exactly-once"), "{error}");
    assert!(error.contains("rate-limit") && error.contains("unique-creation"), "{error}");
}

#[test]
fn a_missing_field_is_named() {
    let text = format!(
        "{USERS}\n[[check]]\nname = \"p\"\nkind = \"rate-limit\"\nrequest = {{ method = \"POST\", path = \"/p\" }}\n\
         allowed = {{ status = [202] }}\n"
    );
    let error = parse(&text).unwrap_err();
    assert!(error.contains("limited"), "{error}");
}

#[test]
fn an_unknown_placeholder_and_a_bad_method_are_refused() {
    let text = format!(
        "{USERS}\n[[check]]\nname = \"p\"\nkind = \"rate-limit\"\nrequest = {{ method = \"POST\", path = \"/p/{{user}}\" }}\n\
         allowed = {{ status = [202] }}\nlimited = {{ status = [429] }}\n"
    );
    let error = parse(&text).unwrap_err();
    assert!(error.contains("{user}") && error.contains("check \"p\": request"), "{error}");
    let text = text.replace("\"POST\", path = \"/p/{user}\"", "\"FETCH\", path = \"/p\"");
    let error = parse(&text).unwrap_err();
    assert!(error.contains("FETCH"), "{error}");
}

#[test]
fn two_checks_of_one_name_are_refused() {
    let check = "\n[[check]]\nname = \"p\"\nkind = \"rate-limit\"\nrequest = { method = \"POST\", path = \"/p\" }\n\
                 allowed = { status = [202] }\nlimited = { status = [429] }\n";
    let error = parse(&format!("{USERS}{check}{check}")).unwrap_err();
    assert!(error.contains("used twice"), "{error}");
}

#[test]
fn a_missing_file_says_which() {
    let error = Profile::load(Path::new("/nonexistent/profile.toml")).unwrap_err();
    assert!(matches!(error, ProfileError::Read { .. }));
    assert!(error.to_string().contains("/nonexistent/profile.toml"), "{error}");
}

/// A load section whose one entry is a chat session with `websocket` and `request`.
fn chat_load(request: &str, websocket: &str) -> String {
    format!(
        "{USERS}\n[load]\nrate = 10.0\nsetup = {{ project = {{ method = \"POST\", path = \"/p\" }} }}\n\
         [[load.request]]\nname = \"chat\"\nweight = 1\nrequest = {request}\nwebsocket = {websocket}\n"
    )
}

#[test]
fn a_websocket_session_in_the_mix_is_parsed_and_its_mistakes_refused() {
    let get = r#"{ method = "GET", path = "/p/{project}/chat" }"#;
    let ok = r#"{ token_param = "token", send = [{ type = "note", text = "{seq}" }], accept_errors = ["rate_limited"] }"#;
    let profile = parse(&chat_load(get, ok)).unwrap();
    let ws = profile.0.load.unwrap().requests[0].websocket.clone().expect("a websocket session");
    assert_eq!(ws.token_param.as_deref(), Some("token"));
    assert_eq!(ws.send.len(), 1);
    assert_eq!(ws.hold_ms, 200, "the default");
    assert_eq!(ws.accept_errors, ["rate_limited"]);

    // An upgrade is a GET without a body.
    let post = r#"{ method = "POST", path = "/p/{project}/chat" }"#;
    let error = parse(&chat_load(post, ok)).unwrap_err();
    assert!(error.contains("\"chat\"") && error.contains("GET and no body"), "{error}");
    // A placeholder the load does not fill, in a message.
    let error = parse(&chat_load(get, r#"{ send = [{ type = "note", text = "{name}" }] }"#)).unwrap_err();
    assert!(error.contains("websocket.send") && error.contains("{name}"), "{error}");
    // A misspelt field, named with its line.
    let error = parse(&chat_load(get, r#"{ hold = 100 }"#)).unwrap_err();
    assert!(error.contains("unknown field `hold`") && error.contains("line 14"), "{error}");
}

#[test]
fn a_floor_on_websocket_sessions_needs_a_websocket_session_in_the_mix() {
    let text = format!(
        "{USERS}\n[load]\nrate = 10.0\n[[load.request]]\nname = \"q\"\nweight = 1\n\
         request = {{ method = \"GET\", path = \"/q\" }}\n[targets]\nmin_ws_sessions = 10\n"
    );
    let error = parse(&text).unwrap_err();
    assert!(error.contains("min_ws_sessions") && error.contains("websocket"), "{error}");
}

#[test]
fn a_mistake_in_a_later_check_names_its_own_line() {
    let check = |name: &str| {
        format!(
            "\n[[check]]\nname = \"{name}\"\nkind = \"rate-limit\"\nrequest = {{ method = \"POST\", path = \"/p\" }}\n\
             allowed = {{ status = [202] }}\nlimited = {{ status = [429] }}\n"
        )
    };
    let checks: String = (1..=4).map(|i| check(&format!("c{i}"))).collect();
    // The fifth check: a misspelt field, a type error, a placeholder no one fills.
    let text = format!("{USERS}{checks}{}rounds = \"three\"\n", check("c5"));
    let line = text.lines().position(|l| l.starts_with("rounds = ")).unwrap() + 1;
    let error = parse(&text).unwrap_err();
    assert!(error.contains(&format!("line {line}")) && error.contains("rounds = \"three\""), "{error}");
    let text = format!("{USERS}{checks}{}limit_heder = \"x\"\n", check("c5"));
    let line = text.lines().position(|l| l.starts_with("limit_heder")).unwrap() + 1;
    let error = parse(&text).unwrap_err();
    assert!(error.contains(&format!("line {line}")) && error.contains("limit_heder"), "{error}");
    let text = format!("{USERS}{checks}{}", check("c5").replace("/p\"", "/p/{nobody}\""));
    let line = text.lines().collect::<Vec<_>>().iter().rposition(|l| l.contains("{nobody}")).unwrap() + 1;
    let error = parse(&text).unwrap_err();
    assert!(error.contains(&format!("line {line}")) && error.contains("check \"c5\": request"), "{error}");
    // A missing field: the fifth check's `[[check]]` line.
    let text = format!("{USERS}{checks}{}", check("c5").replace("limited = { status = [429] }\n", ""));
    let line = text.lines().collect::<Vec<_>>().iter().rposition(|l| *l == "name = \"c5\"").unwrap();
    let error = parse(&text).unwrap_err();
    assert!(error.contains(&format!("line {line}")) && error.contains("limited"), "{error}");
}

#[test]
fn a_value_of_the_wrong_type_names_its_field() {
    let text = format!(
        "{USERS}\n[[check]]\nname = \"p\"\nkind = \"rate-limit\"\nrequest = {{ method = \"POST\", path = \"/p\" }}\n\
         allowed = {{ status = \"202\" }}\nlimited = {{ status = [429] }}\n"
    );
    let error = parse(&text).unwrap_err();
    assert!(error.contains("status: invalid type: the text"), "{error}");
    let text = format!(
        "{USERS}\n[[check]]\nname = \"p\"\nkind = \"rate-limit\"\nrequest = {{ method = \"POST\", path = \"/p\" }}\n\
         allowed = {{ status = [202] }}\nlimited = {{ status = [429] }}\nrounds = {{ n = 3 }}\n"
    );
    let error = parse(&text).unwrap_err();
    assert!(error.contains("rounds: invalid type: a table"), "{error}");
}

/// The fields a kind's table accepts, as its parser lists them when it meets one it does not.
fn fields_of(kind: &str) -> Vec<String> {
    let text = format!("{USERS}\n[[check]]\nname = \"x\"\nkind = \"{kind}\"\nzz_no_such_field = 1\n");
    let error = parse(&text).unwrap_err();
    let (_, expected) = error
        .split_once("expected one of ")
        .or_else(|| error.split_once("expected "))
        .unwrap_or_else(|| panic!("{kind}: the error lists no fields: {error}"));
    let list = expected.lines().next().unwrap();
    list.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn every_field_every_kind_accepts_is_in_docs_profile_md() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/profile.md")).unwrap();
    let mut missing = Vec::new();
    for kind in checks::KINDS {
        let heading = format!("### `{kind}`");
        let Some(start) = docs.find(&heading) else {
            missing.push(format!("{kind}: no section {heading}"));
            continue;
        };
        let rest = &docs[start + heading.len()..];
        let section =
            &rest[..rest.find("\n## ").into_iter().chain(rest.find("\n### ")).min().unwrap_or(rest.len())];
        let fields = fields_of(kind);
        assert!(fields.len() >= 3 && fields.contains(&"name".to_owned()), "{kind}: {fields:?}");
        for field in fields.iter().filter(|f| *f != "name") {
            if !section.contains(&format!("`{field}`")) {
                missing.push(format!("{kind}: `{field}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields the parser accepts that docs/profile.md does not name:\n{}",
        missing.join("\n")
    );
}

/// The fields a table accepts, as the parser lists them when `text` gives it one it does not.
fn fields_listed(text: &str) -> Vec<String> {
    let error = parse(text).unwrap_err();
    let (_, expected) = error
        .split_once("expected one of ")
        .or_else(|| error.split_once("expected "))
        .unwrap_or_else(|| panic!("the error lists no fields: {error}"));
    expected.lines().next().unwrap().split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn every_field_of_users_defaults_and_nested_tables_is_in_docs_profile_md() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/profile.md")).unwrap();
    // The text between a heading (or a line starting with `from`) and the next heading.
    let section = |from: &str| -> &str {
        let start = docs.find(from).unwrap_or_else(|| panic!("docs/profile.md has no {from:?}"));
        let rest = &docs[start + from.len()..];
        &rest[..rest.find("\n## ").into_iter().chain(rest.find("\n### ")).min().unwrap_or(rest.len())]
    };
    let upload = "kind = \"upload\"\nrequest = { method = \"POST\", path = \"/u\" }\nsizes = [1]\nid = \"/id\"\n\
                  read_back = { method = \"GET\", path = \"/u/{id}\" }\n";
    let cases: [(&str, String, &str); 4] = [
        ("[users]", "name = \"m\"\n[users]\nzz_no_such_field = 1\n".to_owned(), "## `[users]`"),
        ("[defaults]", format!("{USERS}\n[defaults]\nzz_no_such_field = 1\n"), "| `[defaults]` |"),
        (
            "upload's multipart",
            format!("{USERS}\n[[check]]\nname = \"u\"\n{upload}multipart = {{ zz_no_such_field = 1 }}\n"),
            "### `upload`",
        ),
        (
            "upload's memory",
            format!("{USERS}\n[[check]]\nname = \"u\"\n{upload}memory = {{ zz_no_such_field = 1 }}\n"),
            "### `upload`",
        ),
    ];
    let mut missing = Vec::new();
    for (table, text, heading) in cases {
        let fields = fields_listed(&text);
        assert!(fields.len() >= 2, "{table}: {fields:?}");
        let section = section(heading);
        missing.extend(
            fields.iter().filter(|f| !section.contains(f.as_str())).map(|f| format!("{table}: `{f}`")),
        );
    }
    assert!(
        missing.is_empty(),
        "fields the parser accepts that docs/profile.md does not name:\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_mistake_in_a_later_fault_names_its_own_line() {
    let load = "\n[load]\nduration_s = 60\nrate = 5\n[[load.request]]\nname = \"h\"\nweight = 1\nrequest = { method = \"GET\", path = \"/healthz\" }\n";
    // Fault i begins at 10 i - 5 s and lasts 5 s: one at a time.
    let fault = |i: u32, extra: &str| {
        format!(
            "\n[[fault]]\nname = \"f{i}\"\nlink = \"redis\"\naction = \"down\"\nat_s = {}\nduration_s = 5\n{extra}",
            10 * i - 5
        )
    };
    let good: String = (1..=3).map(|i| fault(i, "")).collect();
    if let Err(e) = parse(&format!("{USERS}{load}{good}")) {
        panic!("{e}");
    }
    // A field for another action, in the fourth fault: its own line.
    let text = format!("{USERS}{load}{good}{}", fault(4, "latency_ms = 200\n"));
    let line = text.lines().position(|l| l == "latency_ms = 200").unwrap() + 1;
    let error = parse(&text).unwrap_err();
    assert!(
        error.contains(&format!("line {line}")) && error.contains("latency_ms is for action latency"),
        "{error}"
    );
    // One the load does not outlast by its recovery bound: at its `at_s`.
    let text = format!("{USERS}{load}{good}{}", fault(4, "recover_within_s = 20\n"));
    let line = text.lines().position(|l| l == "at_s = 35").unwrap() + 1;
    let error = parse(&text).unwrap_err();
    assert!(error.contains(&format!("line {line}")) && error.contains("past the load's 60 s"), "{error}");
    // One that begins before the one before it has shown its recovery: at the later `at_s`.
    let text = format!("{USERS}{load}{good}{}", fault(4, "").replace("at_s = 35", "at_s = 27"));
    let line = text.lines().position(|l| l == "at_s = 27").unwrap() + 1;
    let error = parse(&text).unwrap_err();
    assert!(error.contains(&format!("line {line}")) && error.contains("space them"), "{error}");
    // A misspelt field.
    let text = format!("{USERS}{load}{good}{}", fault(4, "durtion = 3\n"));
    let error = parse(&text).unwrap_err();
    assert!(error.contains("durtion"), "{error}");
    // Fault targets without a fault.
    let error = parse(&format!("{USERS}{load}\n[targets]\nrecover_within_s = 5\n")).unwrap_err();
    assert!(error.contains("no [[fault]]"), "{error}");
}
