//! TCP fault proxies with a Toxiproxy-compatible HTTP API, and a client for that API.
//!
//! stampede injects faults on the links between a stack under test and its dependencies
//! (Redis, PostgreSQL, an upstream HTTP API): each link is a TCP proxy in front of the
//! dependency, and faults are Toxiproxy's *toxics* on it. The same code drives either the
//! embedded server of this crate ([`ProxyServer`]) or a real Shopify Toxiproxy a user already
//! runs, by URL ([`Toxiproxy`]), so the API is Toxiproxy's: routes, JSON field names, status
//! codes and error bodies.
//!
//! # Why our own proxy, not `noxious`
//!
//! `noxious`, the Rust port of Toxiproxy, last released 1.0.4 on 2021-04-02 (crates.io). Its
//! library crate is the proxy core only and pulls tokio-util 0.6, rand 0.8, async-trait,
//! futures, bmrng and mockall_double, none of which the workspace builds; its HTTP API is the
//! `noxious-server` binary, not a library we could embed in a test. The proxy needed here is a
//! few hundred lines on tokio alone, and keeping it ours lets the tests pin exact behaviour.
//!
//! # What matches Toxiproxy
//!
//! - Routes: `GET /version`, `GET|POST /proxies`, `POST /populate`, `GET|POST|PATCH|DELETE
//!   /proxies/{proxy}`, `GET|POST /proxies/{proxy}/toxics`, `GET|POST|PATCH|DELETE
//!   /proxies/{proxy}/toxics/{toxic}`, `POST /reset`; their status codes (proxy create 201,
//!   toxic create 200, deletes and reset 204, 404/409/400 errors) and error bodies
//!   (`{"error":"proxy not found","status":404}`, as `text/plain` with a newline, as Go's
//!   `http.Error` writes them). Bodies are read as Go reads them (first JSON value, unknown
//!   fields ignored, defaults: proxy enabled, toxic downstream, toxicity 1, name
//!   `<type>_<stream>`). Browsers (`User-Agent: Mozilla/…`) are refused with 403.
//! - Proxies: port 0 reports the actual address; disabling stops listening and closes every
//!   connection; enabling listens on the same address; a new `listen` or `upstream` restarts
//!   the proxy. A close in either direction closes both sockets (no half-close). Nagle off.
//! - Toxics: `latency`, `bandwidth`, `slow_close`, `timeout`, `reset_peer`, `slicer`,
//!   `limit_data` (and `noop`) with Toxiproxy's attributes and units; toxicity rolled per
//!   connection (and again on update); adding, updating or removing a toxic acts on open
//!   connections. Removing a `timeout` toxic closes the connections it held, as Toxiproxy's
//!   cleanup does (the data it swallowed is gone, so the stream could not be trusted).
//!
//! # What does not
//!
//! - No `/metrics`, no config file, no logging. `GET /version` reports this crate's version.
//! - Error texts match for the API's own errors; for malformed JSON the status and the
//!   `bad request body: ` prefix match, the detail after it is ours, not Go's.
//! - `stream` is echoed lowercase (Toxiproxy echoes the case it was sent).
//! - `reset_peer` sets SO_LINGER 0 when it fires, on both sockets, even if it was added after
//!   the connection opened (Toxiproxy only does so for toxics present when the link started,
//!   so a late `reset_peer` there closes with FIN).
//! - Bandwidth does not carry oversleep credit from one chunk to the next; the slicer keeps
//!   every piece non-empty where Toxiproxy's arithmetic could split at the edge.
//!
//! # Dependencies
//!
//! All already built by the workspace: `tokio` (sockets, timers, channels), `axum` (routing,
//! path parameters) served by `hyper` and `hyper-util` from our own accept loop (so shutdown
//! closes every API connection), `tower` (`oneshot` to call the router), `serde`/`serde_json`
//! (the wire format), `reqwest` (`json`; the client), `thiserror` (the client's error).

mod api;
mod client;
mod proxy;
mod toxic;

pub use api::{ProxyServer, RunningProxyServer, VERSION};
pub use client::{ClientError, Toxiproxy, is_not_found};
pub use proxy::{ProxySpec, ProxyState};
pub use toxic::{Stream, Toxic};
