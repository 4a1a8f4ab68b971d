//! The error cases, one test each: every failure is a status with a JSON error body, no
//! failure leaks whether another user's resource exists, a backend outage is a quick 503, and
//! none of them loses or corrupts stored data.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use stack::Settings;

use crate::support::{self, Answer, OwnRedis, Stack, send};

const URL: &str = "https://www.youtube.com/watch?v=errors";

async fn stack() -> Stack {
    support::start(Settings::default()).await
}

/// Sends a raw body with `content_type` (none when `None`) as `token`'s user.
async fn raw(
    stack: &Stack,
    method: Method,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: &str,
) -> Answer {
    let mut request = stack.request(method, path).bearer_auth(token).body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    send(request).await
}

async fn json_as(stack: &Stack, method: Method, path: &str, token: &str, body: Value) -> Answer {
    send(stack.request(method, path).bearer_auth(token).json(&body)).await
}

#[tokio::test]
async fn malformed_json_is_400_with_a_json_error() {
    let stack = stack().await;
    let (_, token) = stack.user("alice").await;
    for body in ["{", "{\"url\": ", "[1, 2]", "{\"url\": 5}", "", "{\"url\": \"https://a.b\", \"extra\": 1}"]
    {
        let answer = raw(&stack, Method::POST, "/v1/videos", &token, Some("application/json"), body).await;
        assert_eq!(answer.status, 400, "{body:?}: {answer}");
        assert_eq!(answer.error_code(), "bad_request", "{body:?}");
    }
    let answer = raw(&stack, Method::POST, "/v1/users", "", Some("application/json"), "{\"name\":").await;
    assert_eq!((answer.status, answer.error_code().as_str()), (400, "bad_request"), "{answer}");
    assert!(
        answer.json()["error"]["message"].as_str().unwrap().starts_with("malformed JSON body"),
        "{answer}"
    );
}

#[tokio::test]
async fn wrong_content_type_is_400() {
    let stack = stack().await;
    let (_, token) = stack.user("alice").await;
    let body = json!({ "url": URL }).to_string();
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let answer = raw(&stack, Method::POST, "/v1/videos", &token, content_type, &body).await;
        assert_eq!(answer.status, 400, "{content_type:?}: {answer}");
        assert_eq!(answer.error_code(), "bad_request");
        let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("Content-Type: application/json"), "{message}");
    }
    // The same body with the right type is accepted.
    let answer = raw(&stack, Method::POST, "/v1/videos", &token, Some("application/json"), &body).await;
    assert_eq!(answer.status, 201, "{answer}");
}

fn assert_unauthorized(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {answer}");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{what}");
    assert_eq!(answer.error_code(), "unauthorized", "{what}");
}

#[tokio::test]
async fn missing_token_is_401_with_www_authenticate_bearer() {
    let stack = stack().await;
    for (method, path) in
        [(Method::GET, "/v1/videos"), (Method::GET, "/v1/quota"), (Method::POST, "/v1/publish")]
    {
        let answer = send(stack.request(method.clone(), path)).await;
        assert_unauthorized(&answer, &format!("{method} {path}"));
    }
    // Another scheme is no bearer token either.
    let answer = send(stack.request(Method::GET, "/v1/quota").basic_auth("alice", Some("secret"))).await;
    assert_unauthorized(&answer, "basic auth");
}

#[tokio::test]
async fn invalid_token_is_401() {
    let stack = stack().await;
    let (_, token) = stack.user("alice").await;
    let long = "a".repeat(200);
    // The real token with its last digit changed.
    let near = format!("{}{}", &token[..31], if token.ends_with('0') { '1' } else { '0' });
    for bad in ["0123456789abcdef0123456789abcdef", near.as_str(), long.as_str(), "x y"] {
        let answer = stack.get("/v1/quota", bad).await;
        assert_unauthorized(&answer, bad);
    }
    let answer = send(stack.request(Method::GET, "/v1/quota").header("authorization", "Bearer ")).await;
    assert_unauthorized(&answer, "empty bearer");
    assert_eq!(stack.get("/v1/quota", &token).await.status, 200, "the real token still works");
}

/// `a` and `b` are the same answer: status, error body, and what the headers tell.
fn assert_indistinguishable(a: &Answer, b: &Answer, what: &str) {
    assert_eq!(a.status, 404, "{what}: {a}");
    assert_eq!((a.status, &a.body), (b.status, &b.body), "{what}: {a} vs {b}");
    assert_eq!(a.media_type(), b.media_type(), "{what}");
    assert_eq!(a.header("x-db-queries"), b.header("x-db-queries"), "{what}: the query count tells");
}

#[tokio::test]
async fn another_users_video_is_404_exactly_like_a_missing_one() {
    let stack = stack().await;
    let (_, alice) = stack.user("alice").await;
    let (_, bob) = stack.user("bob").await;
    let video = stack.video(&alice, URL, None).await;
    let missing = "0123456789abcdef";
    assert_ne!(video, missing);
    for suffix in ["", "/status"] {
        let theirs = stack.get(&format!("/v1/videos/{video}{suffix}"), &bob).await;
        let nobodys = stack.get(&format!("/v1/videos/{missing}{suffix}"), &bob).await;
        assert_indistinguishable(&theirs, &nobodys, &format!("GET /v1/videos/{{id}}{suffix}"));
    }
    let patch = json!({ "fields": { "owner": "bob" } });
    let theirs =
        json_as(&stack, Method::PATCH, &format!("/v1/videos/{video}/status"), &bob, patch.clone()).await;
    let nobodys = json_as(&stack, Method::PATCH, &format!("/v1/videos/{missing}/status"), &bob, patch).await;
    assert_indistinguishable(&theirs, &nobodys, "PATCH status");
    // Bob importing the same URL gets his own video, with another id.
    assert_ne!(stack.video(&bob, URL, None).await, video);
    assert_eq!(stack.get(&format!("/v1/videos/{video}"), &alice).await.status, 200);
}

#[tokio::test]
async fn another_users_project_is_404_exactly_like_a_missing_one() {
    let stack = stack().await;
    let (_, alice) = stack.user("alice").await;
    let (_, carol) = stack.user("carol").await;
    let project = stack.project(&alice, "secret plans", &[]).await;
    let missing = project + 1000;
    for suffix in ["", "/dashboard"] {
        let theirs = stack.get(&format!("/v1/projects/{project}{suffix}"), &carol).await;
        let nobodys = stack.get(&format!("/v1/projects/{missing}{suffix}"), &carol).await;
        assert_indistinguishable(&theirs, &nobodys, &format!("GET /v1/projects/{{id}}{suffix}"));
    }
    let rename = json!({ "name": "ours now" });
    let theirs =
        json_as(&stack, Method::PATCH, &format!("/v1/projects/{project}"), &carol, rename.clone()).await;
    let nobodys = json_as(&stack, Method::PATCH, &format!("/v1/projects/{missing}"), &carol, rename).await;
    assert_indistinguishable(&theirs, &nobodys, "PATCH project");
    let import = |id: u64| json!({ "url": URL, "project_id": id });
    let theirs = json_as(&stack, Method::POST, "/v1/videos", &carol, import(project)).await;
    let nobodys = json_as(&stack, Method::POST, "/v1/videos", &carol, import(missing)).await;
    assert_indistinguishable(&theirs, &nobodys, "import into a project");
}

/// Regression: once a member's request had cached the dashboard, a stranger's 404 was decided
/// from the cached member list with no query, while a missing project's cost one, so
/// `X-DB-Queries` told the stranger the project exists.
#[tokio::test]
async fn a_strangers_dashboard_404_is_exactly_a_missing_projects_once_cached() {
    let stack = stack().await;
    let (_, alice) = stack.user("alice").await;
    let (_, carol) = stack.user("carol").await;
    let project = stack.project(&alice, "secret plans", &[]).await;
    let missing = project + 1000;
    let dashboard = format!("/v1/projects/{project}/dashboard");
    for layer in ["MISS", "L1"] {
        let answer = stack.get(&dashboard, &alice).await;
        assert_eq!((answer.status, answer.header("x-cache")), (200, Some(layer)), "{answer}");
    }
    let theirs = stack.get(&dashboard, &carol).await;
    let nobodys = stack.get(&format!("/v1/projects/{missing}/dashboard"), &carol).await;
    assert_indistinguishable(&theirs, &nobodys, "GET a cached dashboard");
    assert_eq!(theirs.header("x-cache"), None, "{theirs}");
    // The member is still answered from the cache.
    assert_eq!(stack.get(&dashboard, &alice).await.header("x-cache"), Some("L1"));
}

#[tokio::test]
async fn over_the_publish_limit_is_429_with_ratelimit_headers_and_retry_after() {
    let settings = Settings {
        publish_limit: reference::limit::Limit::new(3, Duration::from_secs(60)),
        ..Settings::default()
    };
    let stack = support::start(settings).await;
    let (_, alice) = stack.user("alice").await;
    let (_, bob) = stack.user("bob").await;
    let publish = json!({ "video_id": "v1", "platform": "tiktok" });
    for remaining in ["2", "1", "0"] {
        let answer = json_as(&stack, Method::POST, "/v1/publish", &alice, publish.clone()).await;
        assert_eq!(answer.status, 202, "{answer}");
        assert_eq!(answer.header("ratelimit-limit"), Some("3"));
        assert_eq!(answer.header("ratelimit-remaining"), Some(remaining));
    }
    let answer = json_as(&stack, Method::POST, "/v1/publish", &alice, publish.clone()).await;
    assert_eq!(answer.status, 429, "{answer}");
    assert_eq!(answer.error_code(), "rate_limited");
    assert_eq!(answer.header("ratelimit-limit"), Some("3"));
    assert_eq!(answer.header("ratelimit-remaining"), Some("0"));
    let seconds = |name: &str| -> u64 {
        answer
            .header(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .parse()
            .unwrap_or_else(|_| panic!("{name}"))
    };
    assert!((1..=60).contains(&seconds("ratelimit-reset")), "{:?}", answer.headers);
    assert!((1..=60).contains(&seconds("retry-after")), "{:?}", answer.headers);
    // Keys are isolated: bob still has his whole window.
    let answer = json_as(&stack, Method::POST, "/v1/publish", &bob, publish).await;
    assert_eq!((answer.status, answer.header("ratelimit-remaining")), (202, Some("2")), "{answer}");
}

#[tokio::test]
async fn unknown_route_is_404_json() {
    let stack = stack().await;
    for (method, path) in
        [(Method::GET, "/v1/nope"), (Method::POST, "/nope"), (Method::GET, "/v1/videos/a/b/c")]
    {
        let answer = send(stack.request(method.clone(), path)).await;
        assert!(answer.is_unknown_route(), "{method} {path}: {answer}");
        assert_eq!(answer.error_code(), "not_found");
        assert_eq!(answer.header("x-db-queries"), Some("0"), "every response carries the query count");
    }
}

#[tokio::test]
async fn known_route_with_another_method_is_405_json_with_allow() {
    let stack = stack().await;
    let answer = send(stack.request(Method::DELETE, "/v1/videos")).await;
    assert_eq!(answer.status, 405, "{answer}");
    assert_eq!(answer.error_code(), "method_not_allowed");
    let mut allow: Vec<&str> = answer.header("allow").unwrap().split(',').map(str::trim).collect();
    allow.sort_unstable();
    assert_eq!(allow, ["GET", "HEAD", "POST"]);
    assert!(answer.header("x-db-queries").is_some());
}

#[tokio::test]
async fn invalid_cursor_is_400() {
    let stack = stack().await;
    let (_, token) = stack.user("alice").await;
    let upper = "0123456789ABCDEF0123456789ABCDEF";
    let short = "0123456789abcdef";
    for cursor in ["nope", "", upper, short, "0123456789abcdef0123456789abcdeg"] {
        let answer = stack.get(&format!("/v1/videos?cursor={cursor}"), &token).await;
        assert_eq!(answer.status, 400, "{cursor:?}: {answer}");
        assert_eq!(answer.error_code(), "bad_request");
        assert!(answer.json()["error"]["message"].as_str().unwrap().contains("cursor"), "{answer}");
    }
    let valid = "0000000000000000ffffffffffffffff";
    assert_eq!(stack.get(&format!("/v1/videos?cursor={valid}"), &token).await.status, 200);
}

#[tokio::test]
async fn limit_outside_1_to_100_is_400() {
    let stack = stack().await;
    let (_, token) = stack.user("alice").await;
    for limit in ["0", "101", "-1", "1000000000000000000000", "ten", ""] {
        let answer = stack.get(&format!("/v1/videos?limit={limit}"), &token).await;
        assert_eq!(answer.status, 400, "limit={limit}: {answer}");
        assert_eq!(answer.error_code(), "bad_request");
    }
    for limit in ["1", "100"] {
        let answer = stack.get(&format!("/v1/videos?limit={limit}"), &token).await;
        assert_eq!(answer.status, 200, "limit={limit}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_outage_is_a_quick_503_never_a_hang() {
    let Some(mut redis) = OwnRedis::start() else { return };
    // The default request deadline: the outage must be answered within it.
    let deadline = Settings::default().request_timeout;
    let stack = support::start_on_redis(&redis, deadline).await;
    let (_, token) = stack.user("alice").await;
    let video = stack.video(&token, URL, None).await;
    assert_eq!(stack.get("/readyz", "").await.status, 200);
    redis.kill();
    let requests = [
        stack.request(Method::GET, &format!("/v1/videos/{video}")).bearer_auth(&token),
        stack.request(Method::POST, "/v1/videos").bearer_auth(&token).json(&json!({ "url": URL })),
        stack
            .request(Method::POST, "/v1/publish")
            .bearer_auth(&token)
            .json(&json!({ "video_id": "v", "platform": "youtube" })),
        stack.request(Method::POST, "/v1/users").json(&json!({ "name": "bob" })),
        stack.request(Method::GET, "/readyz"),
    ];
    for request in requests {
        let what = format!("{request:?}");
        let started = Instant::now();
        let answer = send(request).await;
        let took = started.elapsed();
        println!("outage: {} in {took:?}", answer.status);
        assert_eq!(answer.status, 503, "{what}: {answer}");
        assert_eq!(answer.error_code(), "unavailable");
        assert!(
            answer.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)),
            "{answer}"
        );
        assert!(
            took <= deadline + Duration::from_secs(1),
            "{what}: answered after {took:?}, past the deadline"
        );
    }
    assert_eq!(stack.get("/healthz", "").await.status, 200, "liveness needs no backend");
}

/// What a user can read back about their data.
async fn snapshot(stack: &Stack, token: &str, project: u64, video: &str) -> Vec<(String, Value)> {
    let mut reads = Vec::new();
    for path in [
        format!("/v1/projects/{project}"),
        format!("/v1/projects/{project}/dashboard"),
        format!("/v1/videos/{video}"),
        format!("/v1/videos/{video}/status"),
        "/v1/videos".to_owned(),
        "/v1/quota".to_owned(),
    ] {
        let answer = stack.get(&path, token).await;
        assert_eq!(answer.status, 200, "{path}: {answer}");
        let mut body = answer.json();
        if path == "/v1/quota" {
            body["resets_in_s"] = Value::Null;
        }
        reads.push((path, body));
    }
    reads
}

#[tokio::test]
async fn error_cases_leave_stored_data_unchanged() {
    let settings = Settings {
        publish_limit: reference::limit::Limit::new(1, Duration::from_secs(60)),
        ..Settings::default()
    };
    let stack = support::start(settings).await;
    let (_, alice) = stack.user("alice").await;
    let (bob_id, bob) = stack.user("bob").await;
    let (_, carol) = stack.user("carol").await;
    let project = stack.project(&alice, "launch", &[(bob_id, &bob)]).await;
    let video = stack.video(&alice, URL, Some(project)).await;
    let status = format!("/v1/videos/{video}/status");
    let answer =
        json_as(&stack, Method::PATCH, &status, &alice, json!({ "fields": { "progress": 40 } })).await;
    assert_eq!(answer.status, 200, "{answer}");
    let carols = stack.project(&carol, "elsewhere", &[]).await;
    let before = snapshot(&stack, &alice, project, &video).await;

    let p = format!("/v1/projects/{project}");
    let attempts: Vec<(Answer, u16)> = vec![
        (raw(&stack, Method::PATCH, &p, &alice, Some("application/json"), "{\"name\":").await, 400),
        (raw(&stack, Method::PATCH, &p, &alice, Some("text/plain"), "{\"name\":\"x\"}").await, 400),
        (json_as(&stack, Method::PATCH, &p, &alice, json!({ "name": "" })).await, 400),
        (json_as(&stack, Method::PATCH, &p, &alice, json!({ "name": "x", "owner": 3 })).await, 400),
        (send(stack.request(Method::PATCH, &p).json(&json!({ "name": "x" }))).await, 401),
        (
            json_as(&stack, Method::PATCH, &p, "0123456789abcdef0123456789abcdef", json!({ "name": "x" }))
                .await,
            401,
        ),
        (json_as(&stack, Method::PATCH, &p, &carol, json!({ "name": "x" })).await, 404),
        (json_as(&stack, Method::PATCH, &status, &bob, json!({ "fields": { "progress": 0 } })).await, 404),
        (json_as(&stack, Method::PATCH, &status, &alice, json!({ "fields": {} })).await, 400),
        (
            json_as(
                &stack,
                Method::PATCH,
                &status,
                &alice,
                json!({ "fields": { "big": "x".repeat(16 * 1024) } }),
            )
            .await,
            413,
        ),
        (json_as(&stack, Method::PATCH, &status, &alice, json!({ "fields": { "a": 1 }, "b": 2 })).await, 400),
        (
            raw(
                &stack,
                Method::PATCH,
                &status,
                &alice,
                Some("application/json"),
                "{\"fields\": {\"progress\": ",
            )
            .await,
            400,
        ),
        (json_as(&stack, Method::POST, "/v1/videos", &alice, json!({ "url": "not a url" })).await, 400),
        (
            json_as(
                &stack,
                Method::POST,
                "/v1/videos",
                &alice,
                json!({ "url": "https://e.com/n", "project_id": carols }),
            )
            .await,
            404,
        ),
        (
            json_as(&stack, Method::POST, "/v1/videos", &alice, json!({ "url": URL, "project_id": "x" }))
                .await,
            400,
        ),
        (stack.get("/v1/videos?cursor=zzz", &alice).await, 400),
        (stack.get("/v1/videos?limit=0", &alice).await, 400),
        (
            json_as(
                &stack,
                Method::POST,
                "/v1/publish",
                &alice,
                json!({ "video_id": video, "platform": "youtube" }),
            )
            .await,
            202,
        ),
        (
            json_as(
                &stack,
                Method::POST,
                "/v1/publish",
                &alice,
                json!({ "video_id": video, "platform": "youtube" }),
            )
            .await,
            429,
        ),
        (send(stack.request(Method::DELETE, &p).bearer_auth(&alice)).await, 405),
        (send(stack.request(Method::POST, "/v1/videos/x/delete").bearer_auth(&alice)).await, 404),
    ];
    for (i, (answer, expected)) in attempts.iter().enumerate() {
        assert_eq!(answer.status, *expected, "attempt {i}: {answer}");
    }
    let after = snapshot(&stack, &alice, project, &video).await;
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(was, is, "{path} changed");
    }
}

/// The caps of a video status, as the API states them.
const MAX_FIELDS: usize = 64;
const MAX_FIELD_BYTES: usize = 16 * 1024;
const MAX_STATUS_BYTES: usize = 64 * 1024;

#[test]
fn the_status_caps_are_the_documented_ones() {
    use reference::status_tracker as caps;
    assert_eq!(
        (caps::MAX_FIELDS, caps::MAX_FIELD_BYTES, caps::MAX_STATUS_BYTES),
        (MAX_FIELDS, MAX_FIELD_BYTES, MAX_STATUS_BYTES)
    );
}

/// `PATCH {"fields": fields}` on `path` as `token`'s user.
async fn patch_status(stack: &Stack, path: &str, token: &str, fields: Value) -> Answer {
    json_as(stack, Method::PATCH, path, token, json!({ "fields": fields })).await
}

/// `count` fields named `{prefix}{n}`, each a string of `chars` characters (`chars + 2` bytes
/// of JSON).
fn string_fields(prefix: &str, count: usize, chars: usize) -> Value {
    Value::Object((0..count).map(|n| (format!("{prefix}{n}"), json!("x".repeat(chars)))).collect())
}

/// The status's fields as `GET` answers them.
async fn status_fields(stack: &Stack, path: &str, token: &str) -> serde_json::Map<String, Value> {
    let answer = stack.get(path, token).await;
    assert_eq!(answer.status, 200, "{answer}");
    answer.json()["fields"].as_object().expect("fields").clone()
}

/// A 413 naming `cap` and `limit`, in the body's fields and its message.
fn assert_over_cap(answer: &Answer, cap: &str, limit: usize) {
    assert_eq!(answer.status, 413, "{answer}");
    assert_eq!(answer.error_code(), "payload_too_large");
    let error = &answer.json()["error"];
    assert_eq!(error["cap"], cap, "{answer}");
    assert_eq!(error["limit"], limit, "{answer}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(cap) && message.contains(&limit.to_string()), "{answer}");
}

#[tokio::test]
async fn a_status_patch_over_a_cap_is_413_naming_it_and_changes_nothing() {
    let stack = stack().await;
    let (_, alice) = stack.user("alice").await;
    let video = stack.video(&alice, URL, None).await;
    let path = format!("/v1/videos/{video}/status");
    // One value: exactly the cap is taken, a byte more is not.
    let answer = patch_status(&stack, &path, &alice, string_fields("big", 1, MAX_FIELD_BYTES - 1)).await;
    assert_over_cap(&answer, "max_field_bytes", MAX_FIELD_BYTES);
    assert!(answer.json()["error"]["message"].as_str().unwrap().contains("\"big0\""), "{answer}");
    for n in 0..3 {
        let fields = string_fields(&format!("f{n}-"), 1, MAX_FIELD_BYTES - 2);
        let answer = patch_status(&stack, &path, &alice, fields).await;
        assert_eq!(answer.status, 200, "{answer}");
    }
    // A fourth such field takes the status past its bytes.
    let before = status_fields(&stack, &path, &alice).await;
    let answer = patch_status(&stack, &path, &alice, string_fields("f3-", 1, MAX_FIELD_BYTES - 2)).await;
    assert_over_cap(&answer, "max_status_bytes", MAX_STATUS_BYTES);
    let after = status_fields(&stack, &path, &alice).await;
    assert_eq!(after, before, "a refused merge changes nothing");
    assert!(serde_json::to_vec(&after).unwrap().len() <= MAX_STATUS_BYTES);

    // Fields: filled to the cap in requests of at most 50, then not one more.
    let video = stack.video(&alice, "https://example.com/many-fields", None).await;
    let path = format!("/v1/videos/{video}/status");
    let mut room = MAX_FIELDS - status_fields(&stack, &path, &alice).await.len();
    let mut batch = 0;
    while room > 0 {
        let count = room.min(50);
        let answer =
            patch_status(&stack, &path, &alice, string_fields(&format!("b{batch}-"), count, 1)).await;
        assert_eq!(answer.status, 200, "{answer}");
        (room, batch) = (room - count, batch + 1);
    }
    assert_eq!(status_fields(&stack, &path, &alice).await.len(), MAX_FIELDS);
    let answer = patch_status(&stack, &path, &alice, json!({ "one-more": 1 })).await;
    assert_over_cap(&answer, "max_fields", MAX_FIELDS);
    // Changing fields it holds is not growing it.
    let answer = patch_status(&stack, &path, &alice, json!({ "b0-0": "changed" })).await;
    assert_eq!(answer.status, 200, "{answer}");
    let fields = status_fields(&stack, &path, &alice).await;
    assert_eq!((fields.len(), &fields["b0-0"]), (MAX_FIELDS, &json!("changed")));
}

/// Under `status_tracker::mutants::UnboundedStatus` the status takes what the correct stack
/// refuses and grows past every cap: the 413s above are the caps at work, not an accident.
#[tokio::test]
async fn unbounded_status_mutant_lets_a_status_grow_past_the_caps() {
    let settings = Settings { mutant: Some(stack::Mutant::StatusUnbounded), ..Settings::default() };
    let stack = support::start(settings).await;
    let (_, alice) = stack.user("alice").await;
    let video = stack.video(&alice, URL, None).await;
    let path = format!("/v1/videos/{video}/status");
    for n in 0..4 {
        let fields = string_fields(&format!("f{n}-"), 50, MAX_FIELD_BYTES);
        let answer = patch_status(&stack, &path, &alice, fields).await;
        assert_eq!(answer.status, 200, "{answer}");
    }
    let fields = status_fields(&stack, &path, &alice).await;
    assert!(fields.len() > MAX_FIELDS, "{} fields", fields.len());
    let bytes = serde_json::to_vec(&fields).unwrap().len();
    assert!(bytes > 40 * MAX_STATUS_BYTES, "{bytes} bytes");
}
