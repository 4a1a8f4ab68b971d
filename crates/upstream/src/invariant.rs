//! The pooling invariants as checks over what the upstream observed.

use reference::invariant::{Judgement, Violation};

use crate::COMPONENT;

/// What the upstream saw of one workload (the `testing` feature's loopback `TestServer` counts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// TCP connections accepted over the whole workload.
    pub connections_opened: u64,
    /// Most connections open at one moment, busy or idle in the client's pool.
    pub peak_open: u64,
    /// Requests answered.
    pub requests_served: u64,
}

/// Never more than `max_connections` connections open to the upstream at once.
pub fn within_connection_cap(observed: Observed, max_connections: usize) -> Judgement {
    if observed.peak_open <= max_connections as u64 {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "too-many-connections",
        format!(
            "{} connections open at once, cap {max_connections} ({} opened for {} requests)",
            observed.peak_open, observed.connections_opened, observed.requests_served
        ),
    ))
}

/// Connections are reused: a workload with at most `concurrency` requests in flight opens at
/// most `concurrency + max_idle_per_host` connections, however many requests it sends.
///
/// The bound: a request opens a connection only when no idle one is in the pool. Up to
/// `concurrency` connections can be busy at once; beyond those, a connection is opened only in
/// the short race where a finished request's connection is not back in the pool yet, and such
/// a connection then stays in the pool, which keeps up to `max_idle_per_host` idle ones. So the
/// pool never holds more than `concurrency + max_idle_per_host` connections, never has to close
/// one, and never opens more. A client without reuse opens one per request.
pub fn connections_reused(
    observed: Observed,
    requests: u64,
    concurrency: usize,
    max_idle_per_host: usize,
) -> Judgement {
    let bound = (concurrency + max_idle_per_host) as u64;
    if observed.connections_opened <= bound {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "no-connection-reuse",
        format!(
            "{} connections opened for {requests} requests ({} served) at most {concurrency} in flight; \
             a pool keeping {max_idle_per_host} idle opens at most {bound}",
            observed.connections_opened, observed.requests_served
        ),
    ))
}
