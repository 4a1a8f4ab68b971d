//! The running stack against its OpenAPI document (`crates/stack/openapi.json`).
//!
//! Every documented operation (those marked `x-stampede-pending` aside) is driven to each of
//! its documented statuses that can be produced in-process, and every answer is checked: the
//! status is documented for the operation, the documented required headers are present and
//! match their schemas, and the body matches the response's schema. The chat's 101 and its
//! refusals come from real WebSocket handshakes (tokio-tungstenite). Routes the server answers
//! must all be documented, documented ones must all be served, and a served one must not be
//! marked pending.
//!
//! The document is JSON rather than YAML so that neither the stack (which serves it) nor this
//! test needs a YAML parser. Its schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect),
//! checked with `boon`: a full 2020-12 validator that adds a third of the crates the
//! `jsonschema` crate would to this workspace's tree (no `fancy-regex`, `num`, `strum`, …).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stack::Settings;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{self, Answer, OwnRedis, Stack, send};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const BASE: &str = "urn:stampede:openapi";

/// One documented operation.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub id: String,
    pub method: Method,
    /// The path template, `/v1/videos/{id}`.
    pub path: String,
    pub pending: bool,
    /// JSON pointer to the operation in the document.
    pointer: String,
}

/// The document, its schemas compiled.
pub(crate) struct Contract {
    pub doc: Value,
    pub operations: Vec<Operation>,
    schemas: boon::Schemas,
    compiled: BTreeMap<String, boon::SchemaIndex>,
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

impl Contract {
    /// The committed document.
    pub(crate) fn committed() -> Self {
        Self::new(serde_json::from_str(stack::app::OPENAPI).expect("openapi.json is JSON"))
    }

    /// Compiles every schema a response can be checked against; panics on a document whose
    /// references do not resolve or whose schemas are not valid 2020-12.
    pub(crate) fn new(doc: Value) -> Self {
        let mut operations = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                let Some(operation) = item.get(method) else { continue };
                operations.push(Operation {
                    id: operation["operationId"]
                        .as_str()
                        .expect("every operation has an operationId")
                        .to_owned(),
                    method: method.to_uppercase().parse().unwrap(),
                    path: path.clone(),
                    pending: operation.get("x-stampede-pending") == Some(&Value::Bool(true)),
                    pointer: format!("/paths/{}/{method}", escape(path)),
                });
            }
        }
        let ids: BTreeSet<&str> = operations.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids.len(), operations.len(), "operationIds are unique");
        let mut contract =
            Contract { doc, operations, schemas: boon::Schemas::new(), compiled: BTreeMap::new() };
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.add_resource(BASE, contract.doc.clone()).expect("add the document");
        let mut pointers = Vec::new();
        for operation in &contract.operations {
            for status in contract.statuses(operation) {
                let (response, at) = contract.response(operation, &status).unwrap();
                for (name, _) in response.get("headers").and_then(Value::as_object).into_iter().flatten() {
                    let (_, header_at) = contract.resolve(&format!("{at}/headers/{}", escape(name)));
                    pointers.push(format!("{header_at}/schema"));
                }
                for (media, _) in response.get("content").and_then(Value::as_object).into_iter().flatten() {
                    pointers.push(format!("{at}/content/{}/schema", escape(media)));
                }
            }
        }
        for pointer in pointers {
            let location = format!("{BASE}#{}", pointer.replace('{', "%7B").replace('}', "%7D"));
            let index = compiler
                .compile(&location, &mut contract.schemas)
                .unwrap_or_else(|e| panic!("schema at {pointer} does not compile: {e:#}"));
            contract.compiled.insert(pointer, index);
        }
        contract
    }

    /// Follows `$ref`s from `pointer`: the value and where it really is.
    fn resolve(&self, pointer: &str) -> (&Value, String) {
        let mut at = pointer.to_owned();
        loop {
            let value = self.doc.pointer(&at).unwrap_or_else(|| panic!("{at} is not in the document"));
            match value.get("$ref").and_then(Value::as_str) {
                Some(target) => at = target.strip_prefix('#').expect("local reference").to_owned(),
                None => return (value, at),
            }
        }
    }

    /// The statuses documented for `operation`, as written (`"200"`).
    pub(crate) fn statuses(&self, operation: &Operation) -> Vec<String> {
        let responses = &self.doc.pointer(&operation.pointer).unwrap()["responses"];
        responses.as_object().expect("responses").keys().cloned().collect()
    }

    fn response(&self, operation: &Operation, status: &str) -> Option<(&Value, String)> {
        let at = format!("{}/responses/{status}", operation.pointer);
        self.doc.pointer(&at)?;
        Some(self.resolve(&at))
    }

    pub(crate) fn operation(&self, id: &str) -> &Operation {
        self.operations.iter().find(|o| o.id == id).unwrap_or_else(|| panic!("no operation {id}"))
    }

    /// The operation a request for `method path` (no query) is documented as.
    pub(crate) fn operation_for(&self, method: &Method, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.split('/').collect();
        self.operations.iter().find(|o| {
            let template: Vec<&str> = o.path.split('/').collect();
            o.method == *method
                && template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s)
        })
    }

    fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let index = self.compiled[pointer];
        self.schemas.validate(instance, index).map_err(|e| format!("{e:#}"))
    }

    /// Everything wrong with `answer` as an answer of `operation`; empty when it conforms.
    pub(crate) fn check(&self, operation: &Operation, answer: &Answer) -> Vec<String> {
        let name = format!("{} {} ({})", operation.method, operation.path, operation.id);
        let Some((response, at)) = self.response(operation, &answer.status.to_string()) else {
            return vec![format!("{name}: undocumented status {}: {answer}", answer.status)];
        };
        let mut problems = Vec::new();
        for (header, _) in response.get("headers").and_then(Value::as_object).into_iter().flatten() {
            let (definition, header_at) = self.resolve(&format!("{at}/headers/{}", escape(header)));
            let schema_at = format!("{header_at}/schema");
            match answer.header(header) {
                None if definition["required"] == json!(true) => {
                    problems.push(format!("{name}: {} without the required header {header}", answer.status));
                }
                None => {}
                Some(text) => {
                    let schema = self.doc.pointer(&schema_at).unwrap();
                    let value = if schema["type"] == json!("integer") {
                        text.parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::String(text.to_owned()))
                    } else {
                        Value::String(text.to_owned())
                    };
                    if let Err(e) = self.validate(&schema_at, &value) {
                        problems.push(format!("{name}: {} header {header}: {text:?}: {e}", answer.status));
                    }
                }
            }
        }
        match response.get("content").and_then(Value::as_object) {
            None if answer.body.is_empty() => {}
            None => problems.push(format!("{name}: {} has an undocumented body: {answer}", answer.status)),
            Some(content) => {
                let media = answer.media_type().unwrap_or_default();
                if !content.contains_key(&media) {
                    problems.push(format!(
                        "{name}: {} is {media:?}, documented as {:?}",
                        answer.status,
                        content.keys()
                    ));
                    return problems;
                }
                let schema_at = format!("{at}/content/{}/schema", escape(&media));
                let instance = if media == "application/json" {
                    match serde_json::from_slice(&answer.body) {
                        Ok(value) => value,
                        Err(e) => {
                            problems
                                .push(format!("{name}: {} body is not JSON ({e}): {answer}", answer.status));
                            return problems;
                        }
                    }
                } else {
                    Value::String(String::from_utf8_lossy(&answer.body).into_owned())
                };
                if let Err(e) = self.validate(&schema_at, &instance) {
                    problems.push(format!(
                        "{name}: {} body does not match its schema: {e}\nbody: {answer}",
                        answer.status
                    ));
                }
            }
        }
        problems
    }
}

/// What a request sends.
pub(crate) enum Body {
    None,
    Json(Value),
    /// A body with this content type.
    Raw(&'static str, &'static str),
    /// `application/octet-stream` bytes with their `Content-Length`.
    Octets(Vec<u8>),
    /// `application/octet-stream` bytes sent chunked: no `Content-Length`, so the server only
    /// learns the size by reading.
    Streamed(Vec<u8>),
}

const OCTETS: &str = "application/octet-stream";

/// A conformance run: requests, what they were expected to answer, and what went wrong.
struct Run<'a> {
    contract: &'a Contract,
    stack: &'a Stack,
    seen: BTreeSet<(String, String)>,
    problems: Vec<String>,
}

impl<'a> Run<'a> {
    fn new(contract: &'a Contract, stack: &'a Stack) -> Self {
        Self { contract, stack, seen: BTreeSet::new(), problems: Vec::new() }
    }

    /// Sends `method path` and checks the answer is `expect` and conforms to the document.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
        expect: u16,
    ) -> Answer {
        let mut request = self.stack.request(method.clone(), path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Raw(content_type, text) => request.header("content-type", content_type).body(text),
            Body::Octets(bytes) => request.header("content-type", OCTETS).body(bytes),
            Body::Streamed(bytes) => {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    bytes.chunks(256).map(|c| Ok(c.to_vec())).collect();
                request
                    .header("content-type", OCTETS)
                    .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
            }
        };
        let answer = send(request).await;
        self.judge(method, path, expect, &answer);
        answer
    }

    /// Checks that `answer` to `method path` is `expect` and conforms, and records it.
    fn judge(&mut self, method: Method, path: &str, expect: u16, answer: &Answer) {
        let route = path.split('?').next().unwrap();
        let Some(operation) = self.contract.operation_for(&method, route) else {
            self.problems.push(format!("{method} {path}: undocumented route answered {answer}"));
            return;
        };
        if answer.status != expect {
            self.problems.push(format!("{method} {path}: expected {expect}, got {answer}"));
        }
        self.problems.extend(self.contract.check(operation, answer));
        self.seen.insert((operation.id.clone(), answer.status.to_string()));
    }

    /// A real WebSocket handshake on `path` (tokio-tungstenite) as `token`'s user, checked like
    /// [`Run::call`]: the 101 with its headers, or the refusal with its body. The open socket,
    /// if the handshake succeeded.
    async fn handshake(&mut self, path: &str, token: Option<&str>, expect: u16) -> Option<Socket> {
        let url = format!("ws://{}{path}", self.stack.running.addr());
        let mut request = url.into_client_request().expect("a WebSocket request");
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().expect("a header value");
            request.headers_mut().insert("authorization", value);
        }
        let attempt = tokio::time::timeout(support::HANG, tokio_tungstenite::connect_async(request));
        let (answer, socket) = match attempt.await.expect("no handshake answer within the hang bound") {
            Ok((socket, response)) => {
                let status = response.status().as_u16();
                let body = response.body().clone().unwrap_or_default();
                (Answer { status, headers: response.headers().clone(), body }, Some(socket))
            }
            Err(WsError::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().clone().unwrap_or_default();
                (Answer { status, headers: response.headers().clone(), body }, None)
            }
            Err(e) => {
                self.problems.push(format!("WebSocket {path}: the handshake failed: {e}"));
                return None;
            }
        };
        self.judge(Method::GET, path, expect, &answer);
        socket
    }

    /// Documented statuses of served operations that no request produced, less `excused`.
    fn undriven(&self, excused: &[(&str, &str)]) -> Vec<String> {
        let mut missing = Vec::new();
        for operation in self.contract.operations.iter().filter(|o| !o.pending) {
            for status in self.contract.statuses(operation) {
                let excused =
                    excused.iter().any(|(id, s)| (*id == "*" || *id == operation.id) && *s == status);
                if !excused && !self.seen.contains(&(operation.id.clone(), status.clone())) {
                    missing.push(format!("{} {status}", operation.id));
                }
            }
        }
        missing
    }
}

/// Statuses no in-process request can produce: a 500 needs a bug or corrupt stored data.
const NOT_DRIVABLE: &[(&str, &str)] = &[("*", "500")];

/// The upload cap of the conformance stack: small, so that 413s are cheap to produce.
const MAX_UPLOAD: usize = 1024;

fn settings() -> Settings {
    Settings {
        publish_limit: reference::limit::Limit::new(2, Duration::from_secs(60)),
        quota: reference::daily_quota::QuotaPolicy { limit: 9, units_per_import: 3, warn_percent: 80 },
        upload_limit: reference::limit::Limit::new(3, Duration::from_secs(24 * 60 * 60)),
        max_upload_bytes: MAX_UPLOAD as u64,
        upload_dir: std::env::temp_dir().join(format!("stampede-contract-{}", std::process::id())),
        ..Settings::default()
    }
}

/// Drives every served operation to its documented statuses on a healthy stack.
async fn drive_healthy(run: &mut Run<'_>) {
    use Body::{Json, None as Empty, Octets, Raw, Streamed};
    use Method as M;
    let (_, alice) = run.stack.user("alice").await;
    let (bob_id, bob) = run.stack.user("bob").await;
    let (carol_id, carol) = run.stack.user("carol").await;
    let (alice, bob, carol) = (Some(alice.as_str()), Some(bob.as_str()), Some(carol.as_str()));
    let bad = Some("0123456789abcdef0123456789abcdef");

    // Users.
    run.call(M::POST, "/v1/users", None, Json(json!({ "name": "dave" })), 201).await;
    run.call(M::POST, "/v1/users", None, Raw("application/json", "{"), 400).await;
    run.call(M::POST, "/v1/users", None, Json(json!({ "name": "  " })), 400).await;
    run.call(M::POST, "/v1/users", None, Json(json!({ "name": "x", "admin": true })), 400).await;

    // Projects.
    let answer = run
        .call(M::POST, "/v1/projects", alice, Json(json!({ "name": "launch", "members": [bob_id] })), 201)
        .await;
    let project = answer.json()["id"].as_u64().unwrap_or(0);
    let p = format!("/v1/projects/{project}");
    run.call(M::POST, "/v1/projects", alice, Raw("text/plain", "{}"), 400).await;
    // An id that names no user is invited like any other: nothing tells which ids exist.
    run.call(M::POST, "/v1/projects", alice, Json(json!({ "name": "x", "members": [999_999] })), 201).await;
    run.call(M::POST, "/v1/projects", None, Json(json!({ "name": "x" })), 401).await;

    // Invitations: bob was invited, and is a member once he accepts.
    run.call(M::GET, &p, bob, Empty, 404).await;
    run.call(M::GET, "/v1/invitations", bob, Empty, 200).await;
    run.call(M::GET, "/v1/invitations", None, Empty, 401).await;
    let accept = |project: u64| format!("/v1/invitations/{project}/accept");
    let decline = |project: u64| format!("/v1/invitations/{project}/decline");
    run.call(M::POST, &accept(project), carol, Empty, 404).await;
    run.call(M::POST, &accept(project), None, Empty, 401).await;
    run.call(M::POST, &accept(project), bob, Empty, 200).await;
    let invitations = format!("{p}/invitations");
    run.call(M::POST, &invitations, bob, Json(json!({ "user": carol_id })), 202).await;
    run.call(M::POST, &invitations, alice, Json(json!({ "user": 999_999 })), 202).await;
    run.call(M::POST, &invitations, alice, Json(json!({ "user": bob_id })), 200).await;
    run.call(M::POST, &invitations, alice, Json(json!({ "user": "bob" })), 400).await;
    run.call(M::POST, &invitations, None, Json(json!({ "user": carol_id })), 401).await;
    run.call(M::POST, "/v1/projects/999999/invitations", alice, Json(json!({ "user": carol_id })), 404).await;
    run.call(M::POST, &decline(project), carol, Empty, 200).await;
    run.call(M::POST, &decline(project), carol, Empty, 404).await;
    run.call(M::POST, &decline(project), None, Empty, 401).await;
    // A project's pending invitations are bounded: 100.
    let crowd: Vec<u64> = (1_000_000..1_000_100).collect();
    let answer = run
        .call(M::POST, "/v1/projects", carol, Json(json!({ "name": "crowd", "members": crowd })), 201)
        .await;
    let crowded = answer.json()["id"].as_u64().unwrap_or(0);
    let c_inv = format!("/v1/projects/{crowded}/invitations");
    run.call(M::POST, &c_inv, carol, Json(json!({ "user": bob_id })), 409).await;
    // And its members: 101, the owner and 100 who accepted; the next to accept is refused.
    let (_, owner) = run.stack.user("full-owner").await;
    let mut joined = Vec::new();
    for n in 0..100 {
        joined.push(run.stack.user(&format!("joiner-{n}")).await);
    }
    let full = run
        .stack
        .project(&owner, "full", &joined.iter().map(|(id, t)| (*id, t.as_str())).collect::<Vec<_>>())
        .await;
    let (late_id, late) = run.stack.user("late").await;
    let f_inv = format!("/v1/projects/{full}/invitations");
    run.call(M::POST, &f_inv, Some(owner.as_str()), Json(json!({ "user": late_id })), 202).await;
    run.call(M::POST, &accept(full), Some(late.as_str()), Empty, 409).await;
    run.call(M::GET, &p, alice, Empty, 200).await;
    run.call(M::GET, &p, bob, Empty, 200).await;
    run.call(M::GET, &p, carol, Empty, 404).await;
    run.call(M::GET, &p, bad, Empty, 401).await;
    run.call(M::GET, "/v1/projects/999999", alice, Empty, 404).await;
    run.call(M::PATCH, &p, bob, Json(json!({ "name": "launch day" })), 200).await;
    run.call(M::PATCH, &p, alice, Json(json!({ "name": "" })), 400).await;
    run.call(M::PATCH, &p, None, Json(json!({ "name": "x" })), 401).await;
    run.call(M::PATCH, &p, carol, Json(json!({ "name": "mine now" })), 404).await;

    // Videos.
    let url = "https://www.youtube.com/watch?v=contract";
    let answer =
        run.call(M::POST, "/v1/videos", alice, Json(json!({ "url": url, "project_id": project })), 201).await;
    let video = answer.json()["id"].as_str().unwrap_or("").to_owned();
    if answer.header("location") != Some(&format!("/v1/videos/{video}")) {
        run.problems
            .push(format!("import: Location {:?} does not name video {video}", answer.header("location")));
    }
    let v = format!("/v1/videos/{video}");
    run.call(M::POST, "/v1/videos", alice, Json(json!({ "url": url })), 200).await;
    run.call(
        M::POST,
        "/v1/videos",
        alice,
        Json(json!({ "url": "https://example.com/2", "project_id": null })),
        201,
    )
    .await;
    run.call(M::POST, "/v1/videos", alice, Json(json!({ "url": "ftp://example.com/x" })), 400).await;
    run.call(M::POST, "/v1/videos", None, Json(json!({ "url": url })), 401).await;
    run.call(M::POST, "/v1/videos", carol, Json(json!({ "url": url, "project_id": project })), 404).await;
    // Quota 9 units, 3 an import: the fourth import is refused.
    let (_, dave) = run.stack.user("dave").await;
    for n in 0..3 {
        let body = Json(json!({ "url": format!("https://example.com/q{n}") }));
        run.call(M::POST, "/v1/videos", Some(dave.as_str()), body, 201).await;
    }
    run.call(
        M::POST,
        "/v1/videos",
        Some(dave.as_str()),
        Json(json!({ "url": "https://example.com/q3" })),
        429,
    )
    .await;

    let answer = run.call(M::GET, "/v1/videos?limit=1", alice, Empty, 200).await;
    let cursor = answer.json()["next_cursor"].as_str().unwrap_or("").to_owned();
    let answer = run.call(M::GET, &format!("/v1/videos?limit=1&cursor={cursor}"), alice, Empty, 200).await;
    if answer.json()["next_cursor"] != Value::Null {
        run.problems.push(format!("the last page has a next cursor: {answer}"));
    }
    run.call(M::GET, "/v1/videos?cursor=nope", alice, Empty, 400).await;
    run.call(M::GET, "/v1/videos?limit=0", alice, Empty, 400).await;
    run.call(M::GET, "/v1/videos?limit=101", alice, Empty, 400).await;
    run.call(M::GET, "/v1/videos", None, Empty, 401).await;
    run.call(M::GET, &v, alice, Empty, 200).await;
    run.call(M::GET, &v, bob, Empty, 404).await;
    run.call(M::GET, &v, None, Empty, 401).await;
    run.call(M::GET, "/v1/videos/not-a-video", alice, Empty, 404).await;
    let s = format!("{v}/status");
    run.call(M::GET, &s, alice, Empty, 200).await;
    run.call(M::GET, &s, bob, Empty, 404).await;
    run.call(M::GET, &s, bad, Empty, 401).await;
    run.call(M::PATCH, &s, alice, Json(json!({ "fields": { "progress": 40 } })), 200).await;
    run.call(M::PATCH, &s, alice, Json(json!({ "fields": {} })), 400).await;
    let over = "x".repeat(16 * 1024);
    run.call(M::PATCH, &s, alice, Json(json!({ "fields": { "big": over } })), 413).await;
    run.call(M::PATCH, &s, None, Json(json!({ "fields": { "progress": 1 } })), 401).await;
    run.call(M::PATCH, &s, bob, Json(json!({ "fields": { "progress": 1 } })), 404).await;

    // The dashboard, computed then cached.
    let d = format!("{p}/dashboard");
    run.call(M::GET, &d, alice, Empty, 200).await;
    run.call(M::GET, &d, bob, Empty, 200).await;
    run.call(M::GET, &d, carol, Empty, 404).await;
    run.call(M::GET, &d, None, Empty, 401).await;

    // Limits: two publishes a window.
    let publish = || Json(json!({ "video_id": video, "platform": "youtube" }));
    run.call(M::POST, "/v1/publish", alice, publish(), 202).await;
    run.call(M::POST, "/v1/publish", alice, publish(), 202).await;
    run.call(M::POST, "/v1/publish", alice, publish(), 429).await;
    run.call(M::POST, "/v1/publish", bob, Json(json!({ "video_id": video, "platform": "myspace" })), 400)
        .await;
    run.call(M::POST, "/v1/publish", None, publish(), 401).await;
    run.call(M::GET, "/v1/quota", alice, Empty, 200).await;
    run.call(M::GET, "/v1/quota", None, Empty, 401).await;
    run.call(M::GET, "/v1/usage", alice, Empty, 200).await;
    run.call(M::GET, "/v1/usage", bad, Empty, 401).await;

    // Uploads: at most 3 a day of at most MAX_UPLOAD bytes.
    let answer = run.call(M::POST, "/v1/uploads", alice, Octets(b"hello".to_vec()), 201).await;
    let upload = answer.json()["id"].as_str().unwrap_or("").to_owned();
    if answer.header("location") != Some(&format!("/v1/uploads/{upload}")) {
        run.problems
            .push(format!("upload: Location {:?} does not name upload {upload}", answer.header("location")));
    }
    run.call(M::POST, "/v1/uploads", alice, Raw("text/plain", "hello"), 400).await;
    run.call(M::POST, "/v1/uploads", alice, Json(json!({ "file": "hello" })), 400).await;
    run.call(M::POST, "/v1/uploads", None, Octets(b"hello".to_vec()), 401).await;
    run.call(M::POST, "/v1/uploads", bad, Octets(b"hello".to_vec()), 401).await;
    // Over the cap: declared (refused before the body is read), then only found by reading.
    run.call(M::POST, "/v1/uploads", alice, Octets(vec![7; MAX_UPLOAD + 1]), 413).await;
    run.call(M::POST, "/v1/uploads", alice, Streamed(vec![7; 2 * MAX_UPLOAD]), 413).await;
    run.call(M::POST, "/v1/uploads", alice, Streamed(vec![7; MAX_UPLOAD]), 201).await;
    // A JSON body over the 2 MiB limit: 413 on every route that reads one, before its handler.
    let big = || Json(json!({ "name": "n".repeat(2 * 1024 * 1024 + 1) }));
    for (method, path) in [
        (M::POST, "/v1/users"),
        (M::POST, "/v1/projects"),
        (M::PATCH, p.as_str()),
        (M::POST, "/v1/videos"),
        (M::PATCH, s.as_str()),
        (M::POST, "/v1/publish"),
        (M::POST, invitations.as_str()),
    ] {
        run.call(method, path, alice, big(), 413).await;
    }
    run.call(M::POST, "/v1/uploads", alice, Octets(b"fourth".to_vec()), 429).await;
    let u = format!("/v1/uploads/{upload}");
    run.call(M::GET, &u, alice, Empty, 200).await;
    run.call(M::GET, &u, bob, Empty, 404).await;
    run.call(M::GET, &u, None, Empty, 401).await;
    run.call(M::GET, "/v1/uploads/0123456789abcdef0123456789abcdef", alice, Empty, 404).await;
    run.call(M::GET, "/v1/uploads/not-an-upload", alice, Empty, 404).await;
    // The bytes read back, for the owner only; a form's file part is an upload too.
    let content = run.call(M::GET, &format!("{u}/content"), alice, Empty, 200).await;
    if content.body != b"hello" {
        run.problems.push(format!("upload content: {:?}, not the bytes sent", content.body));
    }
    run.call(M::GET, &format!("{u}/content"), bob, Empty, 404).await;
    run.call(M::GET, &format!("{u}/content"), None, Empty, 401).await;
    let form = "--b0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n--b0undary\r\n\
                Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n\
                from a form\r\n--b0undary--\r\n";
    let answer =
        run.call(M::POST, "/v1/uploads", bob, Raw("multipart/form-data; boundary=b0undary", form), 201).await;
    if answer.json()["bytes"] != 11 {
        run.problems.push(format!("multipart upload: {} is not the file part's 11 bytes", answer.json()));
    }
    let no_file = "--b0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nx\r\n--b0undary--\r\n";
    run.call(M::POST, "/v1/uploads", bob, Raw("multipart/form-data; boundary=b0undary", no_file), 400).await;

    // Chat: real handshakes; at most 5 connections a user.
    let c = format!("{p}/chat");
    let mut open = Vec::new();
    for _ in 0..5 {
        open.extend(run.handshake(&c, bob, 101).await);
    }
    run.handshake(&c, bob, 429).await;
    drop(open);
    run.handshake(&c, None, 401).await;
    run.handshake(&c, bad, 401).await;
    run.handshake(&c, carol, 404).await;
    run.handshake("/v1/projects/999999/chat", alice, 404).await;
    run.call(M::GET, &c, alice, Empty, 400).await;
    run.call(M::GET, &format!("{c}?token={}", alice.unwrap_or("")), None, Empty, 400).await;

    // Operations.
    run.call(M::GET, "/healthz", None, Empty, 200).await;
    run.call(M::GET, "/readyz", None, Empty, 200).await;
    run.call(M::GET, "/metrics", None, Empty, 200).await;
    run.call(M::GET, "/openapi.json", None, Empty, 200).await;
    run.call(M::GET, "/settings", None, Empty, 200).await;
}

/// Drives every operation that touches a backend into 503 by killing the stack's Redis.
async fn drive_outage(run: &mut Run<'_>, redis: &mut OwnRedis) {
    use Body::{Json, None as Empty};
    use Method as M;
    let (_, token) = run.stack.user("olga").await;
    let project = run.stack.project(&token, "dark", &[]).await;
    let video = run.stack.video(&token, "https://example.com/outage", Some(project)).await;
    redis.kill();
    let t = Some(token.as_str());
    let (p, v) = (format!("/v1/projects/{project}"), format!("/v1/videos/{video}"));
    run.call(M::POST, "/v1/users", None, Json(json!({ "name": "x" })), 503).await;
    run.call(M::POST, "/v1/projects", t, Json(json!({ "name": "x" })), 503).await;
    run.call(M::GET, &p, t, Empty, 503).await;
    run.call(M::PATCH, &p, t, Json(json!({ "name": "y" })), 503).await;
    run.call(M::GET, &format!("{p}/dashboard"), t, Empty, 503).await;
    run.call(M::POST, "/v1/videos", t, Json(json!({ "url": "https://example.com/o2" })), 503).await;
    run.call(M::GET, "/v1/videos", t, Empty, 503).await;
    run.call(M::GET, &v, t, Empty, 503).await;
    run.call(M::GET, &format!("{v}/status"), t, Empty, 503).await;
    run.call(M::PATCH, &format!("{v}/status"), t, Json(json!({ "fields": { "a": 1 } })), 503).await;
    run.call(M::POST, "/v1/publish", t, Json(json!({ "video_id": video, "platform": "tiktok" })), 503).await;
    run.call(M::GET, "/v1/quota", t, Empty, 503).await;
    run.call(M::GET, "/v1/usage", t, Empty, 503).await;
    run.call(M::GET, "/readyz", None, Empty, 503).await;
    run.call(M::POST, "/v1/uploads", t, Body::Octets(b"dark".to_vec()), 503).await;
    run.call(M::GET, "/v1/uploads/0123456789abcdef0123456789abcdef", t, Empty, 503).await;
    run.call(M::GET, "/v1/uploads/0123456789abcdef0123456789abcdef/content", t, Empty, 503).await;
    run.call(M::GET, &format!("{p}/chat"), t, Empty, 503).await;
    run.call(M::POST, &format!("{p}/invitations"), t, Json(json!({ "user": 1 })), 503).await;
    run.call(M::GET, "/v1/invitations", t, Empty, 503).await;
    run.call(M::POST, &format!("/v1/invitations/{project}/accept"), t, Empty, 503).await;
    run.call(M::POST, &format!("/v1/invitations/{project}/decline"), t, Empty, 503).await;
    // What needs no backend still answers.
    run.call(M::GET, "/healthz", None, Empty, 200).await;
    run.call(M::GET, "/openapi.json", None, Empty, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_documented() {
    let contract = Contract::committed();
    let healthy = support::start(settings()).await;
    let mut run = Run::new(&contract, &healthy);
    drive_healthy(&mut run).await;
    let _ = std::fs::remove_dir_all(&settings().upload_dir);
    let mut excused = NOT_DRIVABLE.to_vec();
    match &mut OwnRedis::start() {
        Some(redis) => {
            let outage = support::start_on_redis(redis, Duration::from_secs(2)).await;
            let mut dark = Run::new(&contract, &outage);
            drive_outage(&mut dark, redis).await;
            run.problems.append(&mut dark.problems);
            run.seen.append(&mut dark.seen);
        }
        None => excused.push(("*", "503")),
    }
    let mut problems = run.problems.clone();
    problems.extend(run.undriven(&excused).into_iter().map(|s| format!("documented but never driven: {s}")));
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    println!("checked {} (operation, status) pairs against openapi.json", run.seen.len());
}

/// What the import workers write into a video's status (`state`, `title`, `duration`,
/// `times_processed`, `error`) is what the document allows: one import completed by the
/// upstream and one it does not know, both read back through `GET /v1/videos/{id}/status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_written_statuses_answer_as_documented() {
    let contract = Contract::committed();
    let fake = fake_upstream::FakeUpstream::start(fake_upstream::Config::default()).await.unwrap();
    let account = fake
        .register_account(fake_upstream::NewAccount {
            client_id: Some("stampede".to_owned()),
            ..fake_upstream::NewAccount::named("platform")
        })
        .unwrap();
    let refresh =
        reference::token_refresh::Policy::new(Duration::from_secs(10), Duration::from_secs(60)).unwrap();
    let link = stack::UpstreamLink {
        url: fake.url(),
        client_id: "stampede".to_owned(),
        refresh_token: account.refresh_token,
        refresh,
    };
    let stack = support::start(Settings { upstream: Some(link), ..Settings::default() }).await;
    // A task processed before the first refresh fails for want of a credential: wait for it.
    let backends = &stack.running.state().backends;
    let deadline = tokio::time::Instant::now() + support::HANG;
    loop {
        let credential = reference::token_refresh::credential(&backends.kv, stack::workers::PLATFORM_TOKEN);
        let now = backends.clock.now();
        if credential.await.unwrap().is_some_and(|c| !c.is_expired(now + 1_000)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the platform credential was never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, token) = stack.user("worker-watcher").await;
    let status = contract.operation("getVideoStatus");
    let missing = format!("https://www.youtube.com/watch?v={}-1", fake_upstream::MISSING_PREFIX);
    for (url, end, written) in [
        ("https://www.youtube.com/watch?v=abc123", "completed", ["title", "duration", "times_processed"]),
        (missing.as_str(), "failed", ["error", "times_processed", "attempt"]),
    ] {
        let video = stack.video(&token, url, None).await;
        let path = format!("/v1/videos/{video}/status");
        let deadline = tokio::time::Instant::now() + support::HANG;
        let answer = loop {
            let answer = stack.get(&path, &token).await;
            let fields = &answer.json()["fields"];
            if fields["state"] == json!(end) && written.iter().all(|f| fields.get(f).is_some()) {
                break answer;
            }
            assert!(tokio::time::Instant::now() < deadline, "{url} never {end} with {written:?}: {answer}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let problems = contract.check(status, &answer);
        assert!(problems.is_empty(), "{url}: {}", problems.join("\n"));
        assert_eq!(answer.json()["video_status"], json!(end), "{answer}");
    }
    stack.running.shutdown().await.unwrap();
    fake.shutdown().await;
}

/// Sample values for a path template's parameters.
fn sample(template: &str) -> String {
    template
        .replace("/v1/projects/{id}", "/v1/projects/1")
        .replace("/v1/videos/{id}", "/v1/videos/0123456789abcdef")
        .replace("/v1/uploads/{id}", "/v1/uploads/0123456789abcdef0123456789abcdef")
        .replace("/v1/invitations/{project}", "/v1/invitations/1")
}

/// The routes the stack is known to serve, and others it could plausibly answer.
const PROBES: &[&str] = &[
    "/v1/users",
    "/v1/projects",
    "/v1/projects/1",
    "/v1/projects/1/dashboard",
    "/v1/projects/1/chat",
    "/v1/projects/1/invitations",
    "/v1/invitations",
    "/v1/invitations/1/accept",
    "/v1/invitations/1/decline",
    "/v1/videos",
    "/v1/videos/0123456789abcdef",
    "/v1/videos/0123456789abcdef/status",
    "/v1/publish",
    "/v1/quota",
    "/v1/usage",
    "/v1/uploads",
    "/v1/uploads/0123456789abcdef0123456789abcdef",
    "/v1/uploads/0123456789abcdef0123456789abcdef/content",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/settings",
    "/",
    "/v1",
    "/v1/users/1",
    "/v1/users/me",
    "/v1/projects/1/members",
    "/v1/projects/1/invitations/2",
    "/v1/invitations/1",
    "/v1/projects/1/videos",
    "/v1/videos/0123456789abcdef/process",
    "/v1/videos/0123456789abcdef/publish",
    "/v1/tasks",
    "/v1/queue",
    "/v1/limits",
    "/v1/status",
    "/v1/openapi.json",
    "/openapi.yaml",
    "/docs",
    "/health",
    "/ready",
    "/admin",
    "/debug",
];

/// Every documented operation is served (not the fallback 404), and everything the server
/// answers is documented: other methods on documented paths must be 405 with an `Allow` that
/// names documented methods only, and other paths the fallback 404.
async fn route_problems(contract: &Contract, stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    for operation in &contract.operations {
        let answer = send(stack.request(operation.method.clone(), &sample(&operation.path))).await;
        let served = !(answer.is_unknown_route() || answer.status == 405);
        let what = format!("{} {} ({})", operation.method, operation.path, operation.id);
        match (served, operation.pending) {
            (false, false) => problems.push(format!("{what} is documented but not served: {answer}")),
            (true, true) => problems.push(format!("{what} is served but still marked x-stampede-pending")),
            _ => {}
        }
    }
    let documented = contract.operations.iter().map(|o| sample(&o.path));
    let paths: BTreeSet<String> = documented.chain(PROBES.iter().map(|p| (*p).to_owned())).collect();
    for path in &paths {
        for method in METHODS.iter().map(|m| m.to_uppercase().parse::<Method>().unwrap()) {
            if contract.operation_for(&method, path).is_some() {
                continue;
            }
            let answer = send(stack.request(method.clone(), path)).await;
            if answer.is_unknown_route() {
                continue;
            }
            if answer.status != 405 {
                problems.push(format!("{method} {path} is not documented but answers {answer}"));
                continue;
            }
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            if body["error"]["code"] != json!("method_not_allowed") {
                problems.push(format!("{method} {path}: 405 without the JSON error: {answer}"));
            }
            let allow = answer.header("allow").unwrap_or_default().to_owned();
            for allowed in allow.split(',').map(str::trim).filter(|m| !m.is_empty() && *m != "HEAD") {
                let allowed: Method = allowed.parse().unwrap();
                if contract.operation_for(&allowed, path).is_none() {
                    problems.push(format!("{allowed} {path} is served (Allow: {allow}) but not documented"));
                }
            }
        }
    }
    problems
}

#[tokio::test]
async fn every_served_route_is_documented_and_every_documented_one_served() {
    let contract = Contract::committed();
    let stack = support::start(Settings::default()).await;
    let problems = route_problems(&contract, &stack).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn the_route_check_reports_a_missing_and_an_undocumented_route() {
    let mut doc: Value = serde_json::from_str(stack::app::OPENAPI).unwrap();
    let paths = doc["paths"].as_object_mut().unwrap();
    // A documented operation the server lacks, and a served one the document lacks.
    let mut ghost = paths["/v1/usage"].clone();
    ghost["get"]["operationId"] = json!("getGhost");
    paths.insert("/v1/ghost".to_owned(), ghost);
    paths["/v1/projects/{id}"].as_object_mut().unwrap().remove("patch");
    paths.remove("/v1/quota");
    // A served operation still marked as specified only.
    paths["/v1/usage"]["get"]["x-stampede-pending"] = json!(true);
    let contract = Contract::new(doc);
    let stack = support::start(Settings::default()).await;
    let problems = route_problems(&contract, &stack).await.join("\n");
    assert!(problems.contains("GET /v1/ghost (getGhost) is documented but not served"), "{problems}");
    assert!(problems.contains("PATCH /v1/projects/1 is served (Allow: "), "{problems}");
    assert!(problems.contains("GET /v1/quota is not documented but answers 401"), "{problems}");
    assert!(
        problems.contains("GET /v1/usage (getUsage) is served but still marked x-stampede-pending"),
        "{problems}"
    );
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let stack = support::start(Settings::default()).await;
    let answer = send(stack.request(Method::GET, "/openapi.json")).await;
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.media_type().as_deref(), Some("application/json"));
    assert_eq!(answer.json(), serde_json::from_str::<Value>(stack::app::OPENAPI).unwrap());
}

fn answer(status: u16, headers: &[(&'static str, &str)], body: Value) -> Answer {
    let mut map = reqwest::header::HeaderMap::new();
    map.insert("content-type", "application/json".parse().unwrap());
    map.insert("x-db-queries", "2".parse().unwrap());
    for (name, value) in headers {
        map.insert(*name, value.parse().unwrap());
    }
    Answer { status, headers: map, body: serde_json::to_vec(&body).unwrap() }
}

fn a_video() -> Value {
    json!({ "id": "0123456789abcdef", "url": "https://example.com/v", "status": "pending", "attempt": 1 })
}

#[test]
fn the_check_accepts_a_conforming_video() {
    let contract = Contract::committed();
    let problems = contract.check(contract.operation("getVideo"), &answer(200, &[], a_video()));
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn the_check_rejects_a_video_without_id() {
    let contract = Contract::committed();
    let mut video = a_video();
    video.as_object_mut().unwrap().remove("id");
    let problems = contract.check(contract.operation("getVideo"), &answer(200, &[], video));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("body does not match its schema") && problems[0].contains("'id'"),
        "{problems:?}"
    );
}

#[test]
fn the_check_rejects_undocumented_fields_wrong_types_and_bad_enums() {
    let contract = Contract::committed();
    let op = contract.operation("getVideo");
    for (field, value) in
        [("owner", json!(1)), ("attempt", json!("1")), ("status", json!("done")), ("id", json!("ABC"))]
    {
        let mut video = a_video();
        video[field] = value;
        assert_eq!(contract.check(op, &answer(200, &[], video)).len(), 1, "{field}");
    }
    let page = json!({ "items": [] });
    assert_eq!(contract.check(contract.operation("listVideos"), &answer(200, &[], page)).len(), 1);
}

#[test]
fn the_check_reports_an_undocumented_status() {
    let contract = Contract::committed();
    let error = json!({ "error": { "code": "forbidden", "message": "no" } });
    let problems = contract.check(contract.operation("getVideo"), &answer(403, &[], error));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("undocumented status 403"), "{problems:?}");
    // 429 is documented for publishing, not for reading a video.
    let limited = json!({ "error": { "code": "rate_limited", "message": "slow down" } });
    let problems = contract.check(contract.operation("getVideo"), &answer(429, &[], limited));
    assert!(problems[0].contains("undocumented status 429"), "{problems:?}");
}

#[test]
fn the_check_reports_missing_and_malformed_headers() {
    let contract = Contract::committed();
    let op = contract.operation("publish");
    let limited = json!({ "error": { "code": "rate_limited", "message": "publish: limit of 2 reached" } });
    let full = [
        ("ratelimit-limit", "2"),
        ("ratelimit-remaining", "0"),
        ("ratelimit-reset", "30"),
        ("retry-after", "30"),
    ];
    assert!(contract.check(op, &answer(429, &full, limited.clone())).is_empty());
    let problems = contract.check(op, &answer(429, &full[..3], limited.clone()));
    assert!(problems.len() == 1 && problems[0].contains("required header Retry-After"), "{problems:?}");
    let mut wrong = full;
    wrong[1] = ("ratelimit-remaining", "lots");
    let problems = contract.check(op, &answer(429, &wrong, limited));
    assert!(problems.len() == 1 && problems[0].contains("RateLimit-Remaining"), "{problems:?}");
    let mut bare = answer(200, &[], a_video());
    bare.headers.remove("x-db-queries");
    let problems = contract.check(contract.operation("getVideo"), &bare);
    assert!(problems.len() == 1 && problems[0].contains("X-DB-Queries"), "{problems:?}");
}

#[test]
fn the_check_rejects_an_error_body_of_the_wrong_shape() {
    let contract = Contract::committed();
    let op = contract.operation("getVideo");
    for body in [
        json!({ "error": "video not found" }),
        json!({ "message": "not found" }),
        json!({ "error": { "code": "gone", "message": "x" } }),
    ] {
        assert_eq!(contract.check(op, &answer(404, &[], body.clone())).len(), 1, "{body}");
    }
    let mut text = answer(404, &[], json!(null));
    text.headers.insert("content-type", "text/plain".parse().unwrap());
    text.body = b"not found".to_vec();
    assert_eq!(contract.check(op, &text).len(), 1);
}
