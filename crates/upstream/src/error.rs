//! What a call to the upstream can fail with.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid upstream base url {url}: {reason}; pass an absolute url such as http://127.0.0.1:8080")]
    BaseUrl { url: String, reason: String },
    #[error("invalid upstream configuration: {0}")]
    Config(&'static str),
    #[error("upstream path {path} does not start with /; pass a path such as /videos/1")]
    Path { path: String },
    #[error("cannot build the upstream http client: {0}; check the pool configuration")]
    Build(#[source] reqwest::Error),
    #[error(
        "upstream request {path} timed out after {after:?}; the upstream is slow or down, check its health before raising the timeout"
    )]
    Timeout { path: String, after: Duration },
    #[error("upstream request {path} failed: {source}; is the upstream running and reachable?")]
    Request {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("upstream answered {status} to {path}; check the path and the upstream's logs")]
    Status { path: String, status: u16 },
    #[error(
        "upstream body for {path} is not the expected json: {source}; check that the path is a json endpoint"
    )]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}
