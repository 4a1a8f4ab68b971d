//! The HTTP API: Toxiproxy's routes, bodies, status codes and error JSON, over the proxies of
//! this process.
//!
//! Bodies are read as Go's `encoding/json` reads them into Toxiproxy's structs (the first JSON
//! value of the body, unknown fields ignored, `null` leaving the default), and the checks run
//! in Toxiproxy's order, so the same request gets the same status. Error bodies are written as
//! Go's `http.Error` writes them: `{"error":"…","status":N}` and a newline, as `text/plain`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::proxy::{Proxy, ProxyState, bindable};
use crate::toxic::{Kind, Stream, Toxic, json_kind};

/// The version `GET /version` reports.
pub const VERSION: &str = concat!("stampede-faults-", env!("CARGO_PKG_VERSION"));

/// The embedded Toxiproxy-compatible server: its HTTP API and the proxies it creates.
#[derive(Debug)]
pub struct ProxyServer;

impl ProxyServer {
    /// Listens for the API on `api_listen` (port 0 picks a free port) and serves it until
    /// [`RunningProxyServer::shutdown`]. It starts with no proxies.
    pub async fn start(api_listen: SocketAddr) -> std::io::Result<RunningProxyServer> {
        let listener = TcpListener::bind(api_listen).await?;
        let addr = listener.local_addr()?;
        let proxies: Proxies = Arc::new(Mutex::new(BTreeMap::new()));
        let router = routes(Arc::clone(&proxies));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, router, stopped));
        Ok(RunningProxyServer { addr, stop: Some(stop), task: Some(task), proxies })
    }
}

/// A started [`ProxyServer`]. Dropping it without [`shutdown`](Self::shutdown) aborts the API
/// and, once its requests are gone, every proxy.
#[derive(Debug)]
pub struct RunningProxyServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    proxies: Proxies,
}

impl RunningProxyServer {
    /// The API's base URL, `http://<ip>:<port>`, for [`crate::Toxiproxy::new`].
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the API listens on.
    pub fn api_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the API (open API connections are closed), then every proxy: their listeners
    /// close and so does every proxied connection. Returns once all are closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let mut proxies = self.proxies.lock().await;
        for proxy in proxies.values_mut() {
            proxy.stop().await;
        }
        proxies.clear();
    }
}

impl Drop for RunningProxyServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

type Proxies = Arc<Mutex<BTreeMap<String, Proxy>>>;

/// Serves each API connection with hyper until stopped; then closes them all.
async fn accept_loop(listener: TcpListener, router: Router, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, router.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve(stream: TcpStream, router: Router) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        async move {
            // Toxiproxy refuses browsers (a page could otherwise drive the API).
            let browser = request
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|agent| agent.starts_with("Mozilla/"));
            if browser {
                return Ok(text(StatusCode::FORBIDDEN, "User agent not allowed\n"));
            }
            router.oneshot(request.map(Body::new)).await
        }
    });
    let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
}

fn routes(proxies: Proxies) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/reset", post(reset))
        .route("/proxies", get(proxy_index).post(proxy_create))
        .route("/populate", post(populate))
        .route(
            "/proxies/{proxy}",
            get(proxy_show).post(proxy_update).patch(proxy_update).delete(proxy_delete),
        )
        .route("/proxies/{proxy}/toxics", get(toxic_index).post(toxic_create))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic_show).post(toxic_update).patch(toxic_update).delete(toxic_delete),
        )
        .fallback(|| async { text(StatusCode::NOT_FOUND, "404 page not found\n") })
        .with_state(proxies)
}

/// An error as Toxiproxy's API writes it.
#[derive(Debug)]
struct ApiError {
    message: String,
    status: StatusCode,
}

impl ApiError {
    fn new(message: impl Into<String>, status: StatusCode) -> ApiError {
        ApiError { message: message.into(), status }
    }
    fn bad_body(cause: impl std::fmt::Display) -> ApiError {
        ApiError::new(format!("bad request body: {cause}"), StatusCode::BAD_REQUEST)
    }
    fn missing(field: &str) -> ApiError {
        ApiError::new(format!("missing required field: {field}"), StatusCode::BAD_REQUEST)
    }
    fn internal(message: String) -> ApiError {
        ApiError::new(message, StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn proxy_not_found() -> ApiError {
        ApiError::new("proxy not found", StatusCode::NOT_FOUND)
    }
    fn toxic_not_found() -> ApiError {
        ApiError::new("toxic not found", StatusCode::NOT_FOUND)
    }
    fn json(&self) -> Value {
        json!({"error": self.message, "status": self.status.as_u16()})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        text(self.status, &format!("{}\n", self.json()))
    }
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut response = (status, body.to_owned()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn ok_json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

type Reply = Result<Response, ApiError>;

/// The first JSON value of a body, as Go's `json.Decoder.Decode` reads it.
fn first_value(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::Deserializer::from_slice(body).into_iter::<Value>().next() {
        None => Err(ApiError::bad_body("EOF")),
        Some(Err(e)) => Err(ApiError::bad_body(e)),
        Some(Ok(value)) => Ok(value),
    }
}

/// The body as a JSON object (`None` for `null`, which Go decodes as "leave everything").
fn object(body: &[u8], what: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    match first_value(body)? {
        Value::Null => Ok(None),
        Value::Object(object) => Ok(Some(object)),
        other => Err(ApiError::bad_body(format!(
            "json: cannot unmarshal {} into Go value of type {what}",
            json_kind(&other)
        ))),
    }
}

fn string_field(object: &Map<String, Value>, key: &str, into: &mut String) -> Result<(), ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            *into = s.clone();
            Ok(())
        }
        Some(other) => Err(ApiError::bad_body(format!(
            "json: cannot unmarshal {} into Go struct field .{key} of type string",
            json_kind(other)
        ))),
    }
}

fn bool_field(object: &Map<String, Value>, key: &str, into: &mut bool) -> Result<(), ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Bool(b)) => {
            *into = *b;
            Ok(())
        }
        Some(other) => Err(ApiError::bad_body(format!(
            "json: cannot unmarshal {} into Go struct field .{key} of type bool",
            json_kind(other)
        ))),
    }
}

fn float_field(object: &Map<String, Value>, key: &str, into: &mut f32) -> Result<(), ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) => {
            *into = n.as_f64().unwrap_or_default() as f32;
            Ok(())
        }
        Some(other) => Err(ApiError::bad_body(format!(
            "json: cannot unmarshal {} into Go struct field .{key} of type float32",
            json_kind(other)
        ))),
    }
}

/// Proxy fields read over defaults (Toxiproxy's `Proxy` struct).
#[derive(Debug, Clone)]
struct ProxyInput {
    name: String,
    listen: String,
    upstream: String,
    enabled: bool,
}

impl ProxyInput {
    fn read(object: Option<&Map<String, Value>>, mut into: ProxyInput) -> Result<ProxyInput, ApiError> {
        if let Some(object) = object {
            string_field(object, "name", &mut into.name)?;
            string_field(object, "listen", &mut into.listen)?;
            string_field(object, "upstream", &mut into.upstream)?;
            bool_field(object, "enabled", &mut into.enabled)?;
        }
        Ok(into)
    }
}

/// The address Go's `net.ResolveTCPAddr` gives for `listen`, to compare with a proxy's.
async fn resolved(listen: &str) -> Result<String, ApiError> {
    let mut addrs = tokio::net::lookup_host(bindable(listen))
        .await
        .map_err(|e| ApiError::internal(format!("lookup {listen}: {e}")))?;
    addrs
        .next()
        .map(|a| a.to_string())
        .ok_or_else(|| ApiError::internal(format!("lookup {listen}: no address")))
}

async fn differs(proxy: &Proxy, input: &ProxyInput) -> Result<bool, ApiError> {
    Ok(proxy.listen != resolved(&input.listen).await? || proxy.upstream != input.upstream)
}

async fn version() -> Response {
    let mut response = format!("{{\"version\": \"{VERSION}\"}}\n").into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf-8"));
    response
}

async fn proxy_index(State(proxies): State<Proxies>) -> Response {
    let proxies = proxies.lock().await;
    let states: BTreeMap<&String, ProxyState> = proxies.iter().map(|(name, p)| (name, p.state())).collect();
    ok_json(StatusCode::OK, &states)
}

async fn reset(State(proxies): State<Proxies>) -> Reply {
    let mut proxies = proxies.lock().await;
    for proxy in proxies.values_mut() {
        proxy.start().await.map_err(ApiError::internal)?;
        proxy.clear_toxics();
    }
    Ok(no_content())
}

async fn proxy_create(State(proxies): State<Proxies>, body: Bytes) -> Reply {
    let object = object(&body, "toxiproxy.Proxy")?;
    let empty =
        ProxyInput { name: String::new(), listen: String::new(), upstream: String::new(), enabled: true };
    let input = ProxyInput::read(object.as_ref(), empty)?;
    if input.name.is_empty() {
        return Err(ApiError::missing("name"));
    }
    if input.upstream.is_empty() {
        return Err(ApiError::missing("upstream"));
    }
    let mut proxies = proxies.lock().await;
    if proxies.contains_key(&input.name) {
        return Err(ApiError::new("proxy already exists", StatusCode::CONFLICT));
    }
    let mut proxy = Proxy::new(input.name.clone(), input.listen, input.upstream);
    if input.enabled {
        proxy.start().await.map_err(ApiError::internal)?;
    }
    let state = proxy.state();
    proxies.insert(input.name, proxy);
    Ok(ok_json(StatusCode::CREATED, &state))
}

async fn populate(State(proxies): State<Proxies>, body: Bytes) -> Response {
    let mut created = Vec::new();
    let outcome = populate_into(&proxies, &body, &mut created).await;
    // Go writes a nil slice, `null`, when nothing was created.
    let list = if created.is_empty() { Value::Null } else { json!(created) };
    match outcome {
        Ok(()) => ok_json(StatusCode::CREATED, &json!({"proxies": list})),
        Err(error) => {
            let mut body = error.json();
            body["proxies"] = list;
            ok_json(error.status, &body)
        }
    }
}

async fn populate_into(
    proxies: &Proxies,
    body: &[u8],
    created: &mut Vec<ProxyState>,
) -> Result<(), ApiError> {
    let items = match first_value(body)? {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => {
            return Err(ApiError::bad_body(format!(
                "json: cannot unmarshal {} into Go value of type []struct {{ toxiproxy.Proxy; Enabled *bool \"json:\\\"enabled\\\"\" }}",
                json_kind(&other)
            )));
        }
    };
    let mut inputs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let object = match item {
            Value::Object(object) => Some(object),
            Value::Null => None,
            other => {
                return Err(ApiError::bad_body(format!(
                    "json: cannot unmarshal {} into proxy",
                    json_kind(other)
                )));
            }
        };
        let empty =
            ProxyInput { name: String::new(), listen: String::new(), upstream: String::new(), enabled: true };
        inputs.push(ProxyInput::read(object, empty)?);
        let input = &inputs[i];
        if input.name.is_empty() {
            return Err(ApiError::missing(&format!("name at proxy {}", i + 1)));
        }
        if input.upstream.is_empty() {
            return Err(ApiError::missing(&format!("upstream at proxy {}", i + 1)));
        }
    }
    let mut proxies = proxies.lock().await;
    for input in inputs {
        if let Some(existing) = proxies.get_mut(&input.name) {
            if !differs(existing, &input).await? {
                created.push(existing.state());
                continue;
            }
            existing.stop().await;
        }
        let mut proxy = Proxy::new(input.name.clone(), input.listen, input.upstream);
        if input.enabled {
            proxy.start().await.map_err(ApiError::internal)?;
        }
        created.push(proxy.state());
        proxies.insert(input.name, proxy);
    }
    Ok(())
}

async fn proxy_show(State(proxies): State<Proxies>, Path(name): Path<String>) -> Reply {
    let proxies = proxies.lock().await;
    let proxy = proxies.get(&name).ok_or_else(ApiError::proxy_not_found)?;
    Ok(ok_json(StatusCode::OK, &proxy.state()))
}

async fn proxy_update(State(proxies): State<Proxies>, Path(name): Path<String>, body: Bytes) -> Reply {
    let mut proxies = proxies.lock().await;
    let proxy = proxies.get_mut(&name).ok_or_else(ApiError::proxy_not_found)?;
    let current = ProxyInput {
        name: proxy.name.clone(),
        listen: proxy.listen.clone(),
        upstream: proxy.upstream.clone(),
        enabled: proxy.enabled(),
    };
    let object = object(&body, "toxiproxy.Proxy")?;
    let input = ProxyInput::read(object.as_ref(), current)?;
    if differs(proxy, &input).await? {
        // A new address or upstream restarts the proxy, dropping its connections.
        proxy.stop().await;
        proxy.listen = input.listen;
        proxy.upstream = input.upstream;
    }
    if input.enabled && !proxy.enabled() {
        proxy.start().await.map_err(ApiError::internal)?;
    } else if !input.enabled {
        proxy.stop().await;
    }
    Ok(ok_json(StatusCode::OK, &proxy.state()))
}

async fn proxy_delete(State(proxies): State<Proxies>, Path(name): Path<String>) -> Reply {
    let mut proxies = proxies.lock().await;
    let mut proxy = proxies.remove(&name).ok_or_else(ApiError::proxy_not_found)?;
    proxy.stop().await;
    Ok(no_content())
}

async fn toxic_index(State(proxies): State<Proxies>, Path(name): Path<String>) -> Reply {
    let proxies = proxies.lock().await;
    let proxy = proxies.get(&name).ok_or_else(ApiError::proxy_not_found)?;
    Ok(ok_json(StatusCode::OK, &proxy.toxics()))
}

async fn toxic_create(State(proxies): State<Proxies>, Path(name): Path<String>, body: Bytes) -> Reply {
    let mut proxies = proxies.lock().await;
    let proxy = proxies.get_mut(&name).ok_or_else(ApiError::proxy_not_found)?;
    let object = object(&body, "toxics.ToxicWrapper")?.unwrap_or_default();
    let (mut toxic_name, mut kind, mut stream, mut toxicity) =
        (String::new(), String::new(), "downstream".to_owned(), 1.0f32);
    string_field(&object, "name", &mut toxic_name)?;
    string_field(&object, "type", &mut kind)?;
    string_field(&object, "stream", &mut stream)?;
    float_field(&object, "toxicity", &mut toxicity)?;
    let Some(stream) = Stream::parse(&stream) else {
        return Err(ApiError::new(
            "stream was invalid, can be either upstream or downstream",
            StatusCode::BAD_REQUEST,
        ));
    };
    if toxic_name.is_empty() {
        toxic_name = format!("{kind}_{}", stream.as_str());
    }
    let typed =
        Kind::named(&kind).ok_or_else(|| ApiError::new("invalid toxic type", StatusCode::BAD_REQUEST))?;
    if proxy.toxic(&toxic_name).is_some() {
        return Err(ApiError::new("toxic already exists", StatusCode::CONFLICT));
    }
    let typed = typed.read(object.get("attributes")).map_err(ApiError::bad_body)?;
    let toxic = Toxic { name: toxic_name, kind, stream, toxicity, attributes: typed.attributes() };
    proxy.add_toxic(toxic.clone(), typed);
    // Toxiproxy answers 200 here, not 201.
    Ok(ok_json(StatusCode::OK, &toxic))
}

async fn toxic_show(State(proxies): State<Proxies>, Path((name, toxic)): Path<(String, String)>) -> Reply {
    let proxies = proxies.lock().await;
    let proxy = proxies.get(&name).ok_or_else(ApiError::proxy_not_found)?;
    let entry = proxy.toxic(&toxic).ok_or_else(ApiError::toxic_not_found)?;
    Ok(ok_json(StatusCode::OK, &entry.toxic))
}

async fn toxic_update(
    State(proxies): State<Proxies>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let mut proxies = proxies.lock().await;
    let proxy = proxies.get_mut(&name).ok_or_else(ApiError::proxy_not_found)?;
    let entry = proxy.toxic(&toxic).ok_or_else(ApiError::toxic_not_found)?;
    let object = object(&body, "struct { Attributes interface {}; Toxicity float32 }")?.unwrap_or_default();
    let kind = entry.kind.read(object.get("attributes")).map_err(ApiError::bad_body)?;
    let mut toxicity = entry.toxic.toxicity;
    float_field(&object, "toxicity", &mut toxicity)?;
    proxy.update_toxic(&toxic, toxicity, kind);
    let entry = proxy.toxic(&toxic).ok_or_else(ApiError::toxic_not_found)?;
    Ok(ok_json(StatusCode::OK, &entry.toxic))
}

async fn toxic_delete(State(proxies): State<Proxies>, Path((name, toxic)): Path<(String, String)>) -> Reply {
    let mut proxies = proxies.lock().await;
    let proxy = proxies.get_mut(&name).ok_or_else(ApiError::proxy_not_found)?;
    if !proxy.remove_toxic(&toxic) {
        return Err(ApiError::toxic_not_found());
    }
    Ok(no_content())
}
