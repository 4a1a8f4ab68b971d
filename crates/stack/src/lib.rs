//! The reference stack ("the deployed stack" stampede drives by default): an HTTP service over
//! the reference components, on the memory, Redis or PostgreSQL backends.
//!
//! - [`backend`] — the stores, chosen at start ([`backend::AnyStore`] dispatches to one);
//! - [`app`] — the state, the router, the middleware (query count, deadline, metrics, gzip);
//! - [`api`] — the handlers;
//! - [`server`] — binding, serving and graceful shutdown;
//! - `openapi.json` — the API's contract (OpenAPI 3.1), served at `/openapi.json`; the
//!   `tests/api` suite checks the running server against it.
//!
//! Why these dependencies: axum (with hyper and tower) is the field's Rust HTTP server;
//! tower-http's compression layer does #16's gzip and its `Vary`; prometheus-client is the
//! Prometheus project's own client for `/metrics`; sha2 derives video ids and hashes uploads;
//! rand's thread CSPRNG makes bearer tokens; tracing is the structured log.

pub mod api;
pub mod app;
pub mod auth;
pub mod backend;
pub mod error;
pub mod metrics;
pub mod queries;
pub mod server;

pub use app::{AppState, Settings, router};
pub use backend::{BackendConfig, Backends};
pub use server::{RunningStack, StackConfig, start};
