//! The HTTP API driven with the raw bodies Toxiproxy's Go client sends (`client/*.go`: a
//! proxy marshalled whole, `toxics` included; a toxic with an empty name and no stream), its
//! status codes and JSON shapes asserted as Toxiproxy's `api.go` writes them.

use faults::{ProxyServer, RunningProxyServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::rig::{echo_server, within};

struct Api {
    server: RunningProxyServer,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let server = ProxyServer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        Api { server, http: reqwest::Client::new() }
    }

    /// Sends `body` verbatim; the status, the content type and the body as JSON (`Null` when
    /// empty).
    async fn send(&self, method: Method, path: &str, body: &str) -> (StatusCode, String, Value) {
        let url = format!("{}{path}", self.server.api_url());
        let response = self.http.request(method, url).body(body.to_owned()).send().await.unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        (status, kind, value)
    }
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn error(message: &str, status: u16) -> Value {
    json!({"error": message, "status": status})
}

#[tokio::test]
async fn version_is_json() {
    within(async {
        let api = Api::start().await;
        let (status, kind, body) = api.send(Method::GET, "/version", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kind, "application/json;charset=utf-8");
        assert_eq!(body["version"], faults::VERSION);
    })
    .await;
}

#[tokio::test]
async fn proxies_are_created_shown_listed_updated_and_deleted_as_toxiproxy_does() {
    within(async {
        let api = Api::start().await;
        let upstream = echo_server().await;
        let create = format!(
            r#"{{"name":"redis","listen":"127.0.0.1:0","upstream":"{upstream}","enabled":true,"toxics":null}}"#
        );
        let (status, kind, proxy) = api.send(Method::POST, "/proxies", &create).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(kind, "application/json");
        assert_eq!(keys(&proxy), ["enabled", "listen", "name", "toxics", "upstream"]);
        assert_eq!(proxy["toxics"], json!([]));
        assert_eq!(proxy["enabled"], true);
        assert_eq!(proxy["upstream"], upstream.to_string());
        let listen = proxy["listen"].as_str().unwrap().to_owned();
        assert!(listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"), "{listen}");

        let (status, _, body) = api.send(Method::POST, "/proxies", &create).await;
        assert_eq!((status, body), (StatusCode::CONFLICT, error("proxy already exists", 409)));

        let (status, _, list) = api.send(Method::GET, "/proxies", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list, json!({"redis": proxy}));
        let (status, _, shown) = api.send(Method::GET, "/proxies/redis", "").await;
        assert_eq!((status, &shown), (StatusCode::OK, &proxy));

        // The Go client's `Save` marshals the whole proxy.
        let save = format!(
            r#"{{"name":"redis","listen":"{listen}","upstream":"{upstream}","enabled":false,"toxics":[]}}"#
        );
        let (status, _, disabled) = api.send(Method::POST, "/proxies/redis", &save).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(disabled["enabled"], false);
        assert_eq!(disabled["listen"], listen.as_str());
        let (status, _, enabled) = api.send(Method::PATCH, "/proxies/redis", r#"{"enabled":true}"#).await;
        assert_eq!((status, &enabled["enabled"], &enabled["listen"]), (StatusCode::OK, &json!(true), &json!(listen)));

        let (status, _, body) = api.send(Method::DELETE, "/proxies/redis", "").await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let (status, kind, body) = api.send(Method::DELETE, "/proxies/redis", "").await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, error("proxy not found", 404)));
        assert_eq!(kind, "text/plain; charset=utf-8");
        let (status, _, body) = api.send(Method::GET, "/proxies/redis", "").await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, error("proxy not found", 404)));
        let (status, _, list) = api.send(Method::GET, "/proxies", "").await;
        assert_eq!((status, list), (StatusCode::OK, json!({})));
    })
    .await;
}

#[tokio::test]
async fn bad_proxy_bodies_get_toxiproxys_errors() {
    within(async {
        let api = Api::start().await;
        let (status, _, body) =
            api.send(Method::POST, "/proxies", r#"{"name":"x","listen":"127.0.0.1:0"}"#).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, error("missing required field: upstream", 400)));
        let (status, _, body) = api.send(Method::POST, "/proxies", r#"{"upstream":"127.0.0.1:1"}"#).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, error("missing required field: name", 400)));
        let (status, _, body) = api.send(Method::POST, "/proxies", "").await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, error("bad request body: EOF", 400)));
        let (status, _, body) = api.send(Method::POST, "/proxies", r#"{"name":1}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].as_str().unwrap().starts_with("bad request body: "), "{body}");
        assert_eq!(body["status"], 400);
    })
    .await;
}

#[tokio::test]
async fn toxics_are_added_shown_updated_and_removed_as_toxiproxy_does() {
    within(async {
        let api = Api::start().await;
        let upstream = echo_server().await;
        let create =
            format!(r#"{{"name":"db","listen":"127.0.0.1:0","upstream":"{upstream}","enabled":true}}"#);
        api.send(Method::POST, "/proxies", &create).await;

        // As the Go client's `AddToxic` sends it: empty name, no stream.
        let add = r#"{"name":"","type":"latency","toxicity":1,"attributes":{"latency":100}}"#;
        let (status, kind, toxic) = api.send(Method::POST, "/proxies/db/toxics", add).await;
        assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/json"));
        assert_eq!(
            toxic,
            json!({"name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0,
                   "attributes": {"latency": 100, "jitter": 0}})
        );
        let (status, _, body) = api.send(Method::POST, "/proxies/db/toxics", add).await;
        assert_eq!((status, body), (StatusCode::CONFLICT, error("toxic already exists", 409)));

        let upstream_toxic =
            r#"{"name":"cut","type":"limit_data","stream":"upstream","attributes":{"bytes":10}}"#;
        let (status, _, cut) = api.send(Method::POST, "/proxies/db/toxics", upstream_toxic).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!((&cut["stream"], &cut["toxicity"]), (&json!("upstream"), &json!(1.0)));

        // Upstream toxics are listed first, in the proxy and in its toxic list.
        let (_, _, proxy) = api.send(Method::GET, "/proxies/db", "").await;
        assert_eq!(proxy["toxics"], json!([cut, toxic]));
        let (status, _, list) = api.send(Method::GET, "/proxies/db/toxics", "").await;
        assert_eq!((status, list), (StatusCode::OK, json!([cut, toxic])));
        let (status, _, shown) = api.send(Method::GET, "/proxies/db/toxics/latency_downstream", "").await;
        assert_eq!((status, &shown), (StatusCode::OK, &toxic));

        let update = r#"{"toxicity":0.5,"attributes":{"jitter":10}}"#;
        let (status, _, updated) =
            api.send(Method::POST, "/proxies/db/toxics/latency_downstream", update).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(updated["attributes"], json!({"latency": 100, "jitter": 10}));
        assert_eq!(updated["toxicity"], json!(0.5));

        let bad = [
            (
                r#"{"type":"latency","stream":"sideways"}"#,
                "stream was invalid, can be either upstream or downstream",
                400,
            ),
            (r#"{"type":"fire"}"#, "invalid toxic type", 400),
        ];
        for (body, message, code) in bad {
            let (status, _, answer) = api.send(Method::POST, "/proxies/db/toxics", body).await;
            assert_eq!((status.as_u16(), answer), (code, error(message, code)), "{body}");
        }
        let (status, _, answer) = api.send(Method::POST, "/proxies/nope/toxics", add).await;
        assert_eq!((status, answer), (StatusCode::NOT_FOUND, error("proxy not found", 404)));
        let (status, _, answer) = api.send(Method::GET, "/proxies/db/toxics/nope", "").await;
        assert_eq!((status, answer), (StatusCode::NOT_FOUND, error("toxic not found", 404)));

        let (status, _, body) = api.send(Method::DELETE, "/proxies/db/toxics/latency_downstream", "").await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let (status, _, body) = api.send(Method::DELETE, "/proxies/db/toxics/latency_downstream", "").await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, error("toxic not found", 404)));
    })
    .await;
}

#[tokio::test]
async fn reset_enables_every_proxy_and_removes_every_toxic() {
    within(async {
        let api = Api::start().await;
        let upstream = echo_server().await;
        let create =
            format!(r#"{{"name":"a","listen":"127.0.0.1:0","upstream":"{upstream}","enabled":false}}"#);
        let (status, _, created) = api.send(Method::POST, "/proxies", &create).await;
        assert_eq!((status, &created["enabled"]), (StatusCode::CREATED, &json!(false)));
        api.send(Method::POST, "/proxies/a/toxics", r#"{"type":"timeout","attributes":{"timeout":0}}"#).await;
        let (status, _, body) = api.send(Method::POST, "/reset", "").await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let (_, _, proxy) = api.send(Method::GET, "/proxies/a", "").await;
        assert_eq!((&proxy["enabled"], &proxy["toxics"]), (&json!(true), &json!([])));
    })
    .await;
}

#[tokio::test]
async fn populate_creates_or_keeps_proxies_and_reports_errors_with_the_list() {
    within(async {
        let api = Api::start().await;
        let upstream = echo_server().await;
        let body = format!(r#"[{{"name":"one","listen":"127.0.0.1:0","upstream":"{upstream}"}}]"#);
        let (status, _, answer) = api.send(Method::POST, "/populate", &body).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(keys(&answer), ["proxies"]);
        let first = answer["proxies"][0].clone();
        assert_eq!((&first["name"], &first["enabled"]), (&json!("one"), &json!(true)));
        // The same proxy again, at its actual address: kept as it is.
        let listen = first["listen"].as_str().unwrap();
        let again = format!(r#"[{{"name":"one","listen":"{listen}","upstream":"{upstream}"}}]"#);
        let (status, _, answer) = api.send(Method::POST, "/populate", &again).await;
        assert_eq!((status, &answer["proxies"][0]), (StatusCode::CREATED, &first));

        let (status, _, answer) = api.send(Method::POST, "/populate", r#"[{"name":"two"}]"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            answer,
            json!({"error": "missing required field: upstream at proxy 1", "status": 400, "proxies": null})
        );
    })
    .await;
}

#[tokio::test]
async fn browsers_and_unknown_routes_are_refused() {
    within(async {
        let api = Api::start().await;
        let url = format!("{}/proxies", api.server.api_url());
        let browser = api.http.get(url).header("user-agent", "Mozilla/5.0").send().await.unwrap();
        assert_eq!(browser.status(), StatusCode::FORBIDDEN);
        let url = format!("{}/nowhere", api.server.api_url());
        assert_eq!(api.http.get(url).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    })
    .await;
}
