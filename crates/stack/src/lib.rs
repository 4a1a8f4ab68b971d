//! The reference stack ("the deployed stack" stampede drives by default): an HTTP service over
//! the reference components, on the memory, Redis or PostgreSQL backends.
//!
//! - [`backend`] — the stores, chosen at start ([`backend::AnyStore`] dispatches to one);
//! - [`components`] — each component slot: the reference component or, with `--mutant`, one
//!   of its mutants;
//! - [`settings`] — every limit, timeout and policy a process runs with;
//! - [`state`] — the components over the backends, built from the settings, that every
//!   handler, worker and middleware reaches;
//! - [`app`] — the router and the middleware (query count, deadline, metrics, compression);
//! - [`partner`] — the same components behind an API written the way another team writes
//!   one (`--shape partner`), for testing stampede's mapping of a stack it did not write;
//! - `api` — the handlers;
//! - [`uploads`] — streaming upload bodies to disk through the upload sink (#12);
//! - `queries` — the per-request query count (#18);
//! - [`chat`] — the project chat sessions over WebSocket (#17);
//! - `ledger` — the imports' tasks kept in PostgreSQL beside a Redis broker, enqueued again
//!   when Redis comes back empty;
//! - [`server`] — binding, serving and graceful shutdown;
//! - `openapi.json` — the API's contract (OpenAPI 3.1), served at `/openapi.json`; the
//!   `tests/api` suite checks the running server against it.
//!
//! Why these dependencies: axum (with hyper and tower) is the field's Rust HTTP server, and its
//! `ws` feature the WebSocket server (#16's gzip and `Vary` are `reference::compression`'s
//! policy, applied by a middleware of `app`); prometheus-client is the Prometheus project's own client for `/metrics`; sha2 derives
//! video ids and hashes uploads; rand's thread CSPRNG makes bearer tokens and upload ids; base64 (already built for
//! reqwest) spells the partner shape's opaque page cursors;
//! tracing is the structured log; futures-util's `sink` feature splits a WebSocket into halves
//! so one task writes frames while the session reads; tokio's `fs` and `io-util` write upload
//! bodies. For the tests: tokio-tungstenite is the WebSocket client (the crate axum's server
//! side is built on, so no second implementation is compiled), reqwest's `stream` feature
//! sends chunked bodies, flate2 (already built for `reference`'s gzip) decodes gzip bodies,
//! fake-upstream stands in for the upstream, and `reference`'s `testing` feature brings the
//! suites the multi-layer cache test runs on Redis and PostgreSQL.

pub(crate) mod api;
pub mod app;
pub(crate) mod auth;
pub mod backend;
pub mod chat;
pub mod components;
pub(crate) mod error;
pub(crate) mod ledger;
pub mod metrics;
pub mod partner;
pub(crate) mod queries;
pub mod server;
pub mod settings;
pub(crate) mod slot;
pub mod state;
pub mod uploads;
pub mod workers;

pub use app::router;
pub use backend::{BackendConfig, Backends};
pub use components::Mutant;
pub use server::{RunningStack, StackConfig, start};
pub use settings::{ConnectionLimits, RateLimitHeaders, SETTINGS_SCHEMA, Settings, Shape, UpstreamLink};
pub use state::AppState;
