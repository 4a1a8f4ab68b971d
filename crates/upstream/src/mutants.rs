//! The upstream client as the field wrote it before the pooling fix, and the fix without its cap.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::{Base, Error, Reply, Request, Upstream, UpstreamConfig, build_client, execute, validate};

/// The seed's "before": a new client for every request, so a new connection per request (and in
/// production a new TLS handshake). The cap is kept, so only the reuse is missing: the server
/// sees as many connections as requests.
#[derive(Debug, Clone)]
pub struct ClientPerRequest {
    base: Base,
    config: UpstreamConfig,
    permits: Arc<Semaphore>,
}

impl ClientPerRequest {
    pub fn new(base_url: &str, config: UpstreamConfig) -> Result<Self, Error> {
        validate(&config)?;
        Ok(Self {
            base: Base::parse(base_url)?,
            config,
            permits: Arc::new(Semaphore::new(config.in_flight_limit())),
        })
    }
}

impl Upstream for ClientPerRequest {
    async fn send(&self, request: Request) -> Result<Reply, Error> {
        let client = build_client(&self.config)?;
        execute(&client, &self.base, Some(&self.permits), self.config.timeout, request).await
    }
}

/// One shared pooled client, but no semaphore: `max_connections` is trusted to reqwest, which
/// caps only idle connections, so a burst opens one connection per concurrent request.
#[derive(Debug, Clone)]
pub struct Uncapped {
    base: Base,
    config: UpstreamConfig,
    client: reqwest::Client,
}

impl Uncapped {
    pub fn new(base_url: &str, config: UpstreamConfig) -> Result<Self, Error> {
        Ok(Self { base: Base::parse(base_url)?, config, client: build_client(&config)? })
    }
}

impl Upstream for Uncapped {
    fn send(&self, request: Request) -> impl Future<Output = Result<Reply, Error>> + Send {
        execute(&self.client, &self.base, None, self.config.timeout, request)
    }
}
