//! `/metrics` in the Prometheus text format: request durations and queries per request per
//! route, cache gets per layer, pool usage, breaker state and how long it takes to refuse a
//! call, and queue depth.
//!
//! prometheus-client (the Prometheus project's Rust client) does the encoding; the gauges
//! that mirror state held elsewhere (cache counters, breaker, queue, pool) are read when
//! `/metrics` is scraped, so they are never stale.

use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LayerLabels {
    pub layer: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
    pub state: &'static str,
}

/// The stack's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Histogram>,
    pub queries: Family<RouteLabels, Histogram>,
    pub cache_gets: Family<LayerLabels, Counter>,
    pub pool_connections: Gauge,
    pub pool_max: Gauge,
    pub breaker_state: Gauge,
    pub breaker_rejections: Histogram,
    pub queue_depth: Family<QueueLabels, Gauge>,
    pub ws_connections: Gauge,
    pub upload_held_bytes: Gauge,
    pub upload_held_bytes_peak: Gauge,
    pub upstream_calls: Family<RouteLabels, Counter>,
    pub connections_open: Gauge,
    pub connections_refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("stampede");
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 100 µs to ~6.5 s.
            Histogram::new(exponential_buckets(0.0001, 2.0, 17))
        });
        registry.register("http_request_duration_seconds", "Full time to answer a request", requests.clone());
        let queries = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 50.0, 100.0])
        });
        registry.register(
            "db_queries_per_request",
            "Records-store queries made by one request",
            queries.clone(),
        );
        let cache_gets = Family::<LayerLabels, Counter>::default();
        registry.register(
            "cache_gets",
            "Dashboard cache gets by the layer that answered",
            cache_gets.clone(),
        );
        let pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open PostgreSQL connections of this process",
            pool_connections.clone(),
        );
        let pool_max = Gauge::default();
        registry.register("db_pool_max_connections", "The pool's hard cap", pool_max.clone());
        let breaker_state = Gauge::default();
        registry.register(
            "circuit_breaker_state",
            "Upstream circuit breaker: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        // A refused call must fail fast: bounds around the 5 ms the checks hold it to.
        let breaker_rejections =
            Histogram::new([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25]);
        registry.register(
            "breaker_rejection_seconds",
            "Time the upstream circuit breaker took to refuse a call",
            breaker_rejections.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register("queue_depth", "Tasks by state", queue_depth.clone());
        let ws_connections = Gauge::default();
        registry.register(
            "ws_connections",
            "Open WebSocket connections of this process",
            ws_connections.clone(),
        );
        let upload_held_bytes = Gauge::default();
        registry.register(
            "upload_held_bytes",
            "Upload body bytes this process holds in memory now",
            upload_held_bytes.clone(),
        );
        let upload_held_bytes_peak = Gauge::default();
        registry.register(
            "upload_held_bytes_peak",
            "The most upload body bytes this process has held in memory at once",
            upload_held_bytes_peak.clone(),
        );
        let upstream_calls = Family::<RouteLabels, Counter>::default();
        registry.register("upstream_calls", "Calls to the upstream by outcome", upstream_calls.clone());
        let connections_open = Gauge::default();
        registry.register(
            "http_connections_open",
            "HTTP connections this process serves now (under its connection cap)",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "http_connections_refused",
            "Connections answered 503 or closed because the connection cap was reached",
            connections_refused.clone(),
        );
        Self {
            registry,
            requests,
            queries,
            cache_gets,
            pool_connections,
            pool_max,
            breaker_state,
            breaker_rejections,
            queue_depth,
            ws_connections,
            upload_held_bytes,
            upload_held_bytes_peak,
            upstream_calls,
            connections_open,
            connections_refused,
        }
    }

    /// Records one request. `route` is the matched route (or one value for every unmatched
    /// path), and `method` one of [`method_label`]'s: no client can add a series, so the label
    /// set — and `/metrics` — stays bounded whatever strangers send.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration, queries: u64) {
        let labels = RequestLabels { method: method.to_owned(), route: route.to_owned(), status };
        self.requests.get_or_create(&labels).observe(elapsed.as_secs_f64());
        self.queries.get_or_create(&RouteLabels { route: route.to_owned() }).observe(queries as f64);
    }

    /// Sets a counter that mirrors a count kept elsewhere.
    pub fn mirror(counter: &Counter, value: u64) {
        counter.inner().store(value, Ordering::Relaxed);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A request's method as a label value: the nine HTTP defines, and `other` for every method a
/// client invents.
pub fn method_label(method: &str) -> &str {
    match method {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" | "CONNECT" | "TRACE" => method,
        _ => "other",
    }
}
