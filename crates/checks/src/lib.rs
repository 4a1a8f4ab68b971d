//! Black-box invariant checks over the network: what load tools that judge requests one at a
//! time cannot see. Each check releases bursts of concurrent requests (a barrier, spread over
//! every instance of the target), records every operation as invocation and completion with
//! monotonic timestamps, and judges the whole history afterwards (Jepsen's approach): exactly
//! N per window, one creation among C, counters conserved, …
//!
//! - [`profile`] — the target profile (`scenarios/*.toml`): users, and per check its requests
//!   and how their answers are recognised;
//! - [`client`] — the target's instances, logical users, templated requests;
//! - [`burst`] — barrier-released bursts;
//! - [`history`] — operations and outcomes; [`verdict`] — what a checker concludes;
//! - [`checkers`] — one module per check kind: `run` drives it, `judge` is the pure checker;
//! - [`report`] — `checks.json`, written atomically;
//! - [`scenario`] — the profile's load mix (`[load]`) and targets (`[targets]`), which
//!   `stampede load` runs and judges;
//! - [`upstream`] — the fake upstream the target calls, driven through its control API by the
//!   checks that need upstream faults and counts (`--upstream-control`).
//!
//! Why these dependencies: reqwest is the HTTP client of the card (its `stream` feature sends
//! upload bodies chunk by chunk); toml parses the profiles (its errors carry line and column);
//! futures-util joins request futures; sha2 digests the bodies an upload check sends and the
//! responses the compression check compares; flate2 decodes gzip bodies as they came off the
//! wire, which reqwest's own decompression would hide; fake-upstream's control client and
//! stats types are the control API's own; tokio-tungstenite is the WebSocket client (the one
//! the stack's server side is built on, plain `ws://` only).

pub mod burst;
pub mod checkers;
pub mod client;
pub mod history;
pub mod profile;
pub mod report;
pub mod scenario;
pub mod upstream;
pub mod verdict;

use client::{Target, TargetError};
use profile::Check;
use verdict::Verdict;

/// Runs one check of the profile against the target.
pub async fn run_check(target: &Target, check: &Check) -> Result<Verdict, TargetError> {
    match check {
        Check::RateLimit(c) => checkers::rate_limit::run(target, c).await,
        Check::UniqueCreation(c) => checkers::unique::run(target, c).await,
        Check::Counter(c) => checkers::counter::run(target, c).await,
        Check::Merge(c) => checkers::merge::run(target, c).await,
        Check::Invalidation(c) => checkers::invalidation::run(target, c).await,
        Check::CursorWalk(c) => checkers::cursor_walk::run(target, c).await,
        Check::QueryBudget(c) => checkers::query_budget::run(target, c).await,
        Check::Vary(c) => checkers::vary::run(target, c).await,
        Check::Upload(c) => checkers::upload::run(target, c).await,
        Check::Breaker(c) => checkers::breaker::run(target, c).await,
        Check::TokenRefresh(c) => checkers::token_refresh::run(target, c).await,
        Check::WsConnections(c) => checkers::ws_connections::run(target, c).await,
        Check::ImportLifecycle(c) => checkers::lifecycle::run(target, c).await,
        Check::UpstreamPool(c) => checkers::upstream_pool::run(target, c).await,
        Check::UsagePlan(c) => checkers::usage_plan::run(target, c).await,
    }
}
