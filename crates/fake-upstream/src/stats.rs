//! What the fake upstream saw: exact counts under one lock, and the JSON the control API serves.
//!
//! Counted: API requests only (everything outside `/_control/`), by route and by status; in
//! flight means the request head has arrived and the response head has not been handed back
//! (held and delayed requests are in flight). Between two resets, with no request straddling
//! either, `requests == Σ statuses + Σ dropped + abandoned + in_flight`. Connections are counted
//! at accept and at close on the API listener (which also carries the control API unless
//! [`crate::Config::control_listen`] moves it to its own).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::route::Route;
use crate::tokens::{Auth, RefreshOutcome};

/// Entries kept in [`Stats::refresh_log`]; later refreshes are only counted.
pub const REFRESH_LOG_CAPACITY: usize = 10_000;

/// A snapshot of everything counted since the start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Milliseconds since the fake upstream started (the clock of [`RefreshEvent::at_ms`]).
    pub elapsed_ms: u64,
    /// API requests that arrived.
    pub requests: u64,
    /// Responses by status, over every API route (injected failures included).
    pub statuses: BTreeMap<u16, u64>,
    pub routes: BTreeMap<Route, RouteStats>,
    /// Requests whose client went away before they were answered.
    pub abandoned: u64,
    /// API requests being handled now (a gauge: a reset keeps it).
    pub in_flight: u64,
    /// The most API requests in flight at once (a reset lowers it to `in_flight`).
    pub peak_in_flight: u64,
    /// Video requests with no bearer token, or one this fake never issued or has revoked.
    pub unauthorized_calls: u64,
    /// Video requests with an access token past its lifetime: each is a call the stack should
    /// never have made. Counted on arrival, whatever faults then do to the request.
    pub expired_token_calls: u64,
    /// Successful refreshes.
    pub refreshes: u64,
    /// Refreshes refused (`invalid_grant`, `invalid_client`, `invalid_request`, …).
    pub rejected_refreshes: u64,
    pub accounts: BTreeMap<String, AccountStats>,
    /// How often each refresh token issued here was presented to the token endpoint, refused
    /// or not; with rotation, any count above 1 is a reuse.
    pub refresh_tokens: BTreeMap<String, u64>,
    /// Refresh attempts that named a known token, in arrival order (the first
    /// [`REFRESH_LOG_CAPACITY`]).
    pub refresh_log: Vec<RefreshEvent>,
    /// Refresh attempts left out of `refresh_log` because it was full.
    pub refresh_log_overflow: u64,
    pub injected: InjectedStats,
    pub connections: ConnectionStats,
}

/// One API route's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStats {
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Requests whose connection was closed without a response (outage `reset`).
    pub dropped: u64,
    /// Requests whose client went away before the answer.
    pub abandoned: u64,
}

/// One account's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStats {
    /// Video requests with one of its valid access tokens.
    pub api_calls: u64,
    /// Video requests with one of its expired access tokens.
    pub expired_token_calls: u64,
    pub refreshes: u64,
    /// Refreshes with a refresh token already retired by rotation.
    pub reused_refresh_tokens: u64,
    /// Refreshes with a revoked refresh token.
    pub revoked_refresh_tokens: u64,
    /// Refreshes with the account's refresh token and another `client_id`.
    pub wrong_client: u64,
}

/// One refresh attempt with a token this fake issued (or was given at registration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshEvent {
    /// Milliseconds since the fake upstream started.
    pub at_ms: u64,
    pub account: String,
    pub outcome: RefreshOutcome,
}

/// What the faults did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedStats {
    /// Requests answered with an injected status (`fail_next`, `fail_fraction`).
    pub failures: u64,
    /// Requests held by a `latency` fault.
    pub delayed: u64,
    /// Requests held by an outage in `hang` mode.
    pub held: u64,
    /// Requests whose connection an outage in `reset` mode closed.
    pub dropped: u64,
}

/// TCP connections on the API listener, counted at accept and close.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStats {
    pub accepted: u64,
    /// Open now, busy or idle (a gauge: a reset keeps it).
    pub open: u64,
    /// The most open at once (a reset lowers it to `open`).
    pub peak_open: u64,
}

/// The counters behind [`Stats`].
#[derive(Debug)]
pub(crate) struct Recorder {
    started: Instant,
    stats: Mutex<Stats>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self { started: Instant::now(), stats: Mutex::new(Stats::default()) }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let mut stats = self.lock().clone();
        stats.elapsed_ms = self.elapsed_ms();
        stats
    }

    /// Zeroes every count; the gauges stay, and their peaks drop to them.
    pub(crate) fn reset(&self) {
        let mut stats = self.lock();
        let in_flight = stats.in_flight;
        let open = stats.connections.open;
        *stats = Stats {
            in_flight,
            peak_in_flight: in_flight,
            connections: ConnectionStats { accepted: 0, open, peak_open: open },
            ..Stats::default()
        };
    }

    pub(crate) fn arrived(&self, route: Route) {
        let mut stats = self.lock();
        stats.requests += 1;
        stats.routes.entry(route).or_default().requests += 1;
        stats.in_flight += 1;
        stats.peak_in_flight = stats.peak_in_flight.max(stats.in_flight);
    }

    pub(crate) fn answered(&self, route: Route, status: u16) {
        let mut stats = self.lock();
        stats.in_flight = stats.in_flight.saturating_sub(1);
        *stats.statuses.entry(status).or_default() += 1;
        *stats.routes.entry(route).or_default().statuses.entry(status).or_default() += 1;
    }

    pub(crate) fn dropped(&self, route: Route) {
        let mut stats = self.lock();
        stats.in_flight = stats.in_flight.saturating_sub(1);
        stats.routes.entry(route).or_default().dropped += 1;
        stats.injected.dropped += 1;
    }

    pub(crate) fn abandoned(&self, route: Route) {
        let mut stats = self.lock();
        stats.in_flight = stats.in_flight.saturating_sub(1);
        stats.abandoned += 1;
        stats.routes.entry(route).or_default().abandoned += 1;
    }

    pub(crate) fn authorized(&self, auth: &Auth) {
        let mut stats = self.lock();
        match auth {
            Auth::Missing | Auth::Unknown => stats.unauthorized_calls += 1,
            Auth::Expired { account } => {
                stats.expired_token_calls += 1;
                stats.accounts.entry(account.clone()).or_default().expired_token_calls += 1;
            }
            Auth::Valid { account } => stats.accounts.entry(account.clone()).or_default().api_calls += 1,
        }
    }

    /// A refresh attempt: `token` and `account` when the token was one issued here.
    pub(crate) fn refresh(&self, known: Option<(&str, &str)>, outcome: Result<(), RefreshOutcome>) {
        let at_ms = self.elapsed_ms();
        let mut stats = self.lock();
        match outcome {
            Ok(()) => stats.refreshes += 1,
            Err(_) => stats.rejected_refreshes += 1,
        }
        let Some((token, account)) = known else { return };
        *stats.refresh_tokens.entry(token.to_owned()).or_default() += 1;
        let per_account = stats.accounts.entry(account.to_owned()).or_default();
        let outcome = match outcome {
            Ok(()) => {
                per_account.refreshes += 1;
                RefreshOutcome::Refreshed
            }
            Err(outcome) => {
                match outcome {
                    RefreshOutcome::Reused => per_account.reused_refresh_tokens += 1,
                    RefreshOutcome::Revoked => per_account.revoked_refresh_tokens += 1,
                    RefreshOutcome::WrongClient => per_account.wrong_client += 1,
                    RefreshOutcome::Refreshed | RefreshOutcome::Unknown => {}
                }
                outcome
            }
        };
        if stats.refresh_log.len() < REFRESH_LOG_CAPACITY {
            stats.refresh_log.push(RefreshEvent { at_ms, account: account.to_owned(), outcome });
        } else {
            stats.refresh_log_overflow += 1;
        }
    }

    pub(crate) fn injected_failure(&self) {
        self.lock().injected.failures += 1;
    }

    pub(crate) fn delayed(&self) {
        self.lock().injected.delayed += 1;
    }

    pub(crate) fn held(&self) {
        self.lock().injected.held += 1;
    }

    pub(crate) fn connection_opened(&self) {
        let mut stats = self.lock();
        let connections = &mut stats.connections;
        connections.accepted += 1;
        connections.open += 1;
        connections.peak_open = connections.peak_open.max(connections.open);
    }

    pub(crate) fn connection_closed(&self) {
        let mut stats = self.lock();
        stats.connections.open = stats.connections.open.saturating_sub(1);
    }

    pub(crate) fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stats> {
        // Counters stay meaningful after a panic elsewhere; keep counting.
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
