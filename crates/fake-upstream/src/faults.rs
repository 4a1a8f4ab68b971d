//! Faults: what the control API sets, and the book that decides, request by request, which of
//! them fires.
//!
//! Every API request is decided once on arrival, under one lock, so "the next N requests" are
//! the next N to arrive, counts are exact under any concurrency, and a fault set between two
//! requests applies to the second one. The order is fixed:
//!
//! 1. an active `outage` matching the route takes the request: `reset` closes its connection,
//!    `hang` holds it until no outage matches any more (the fault is cleared or its duration
//!    has passed), then the request is decided afresh;
//! 2. every matching `latency` adds its delay (they sum);
//! 3. the first matching `fail_next` with failures left answers its status; when none does,
//!    the `fail_fraction` faults are tried in order and the first that fires answers its status;
//! 4. otherwise the request is served normally, after the delay.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::Error;
use crate::route::Route;

/// One fault. JSON: `{"kind": "fail_next", "status": 503, "count": 5}`,
/// `{"kind": "fail_fraction", "status": 500, "fraction": 0.25}`, `{"kind": "latency", "ms": 200,
/// "route": "youtube_videos"}`, `{"kind": "outage", "mode": "reset", "duration_ms": 2000}`.
/// `route` is optional on every kind; without it the fault applies to every API route
/// (never to the control API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The next `count` matching requests are answered `status` (400–599).
    FailNext {
        status: u16,
        count: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<Route>,
    },
    /// A `fraction` (0.0–1.0) of the matching requests that no `fail_next` took are answered
    /// `status`. Without `seed` the failures are spread evenly and their number is exact: of
    /// the first n requests, exactly ⌊n·fraction⌋ fail. With `seed` each request fails
    /// independently with probability `fraction`, from a PRNG seeded with it.
    FailFraction {
        status: u16,
        fraction: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<Route>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// Every matching request is held `ms` milliseconds before it is answered (injected
    /// failures included).
    Latency {
        ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<Route>,
    },
    /// The upstream is down for the matching routes, until the fault is cleared or, with
    /// `duration_ms`, until that long after it was set.
    Outage {
        mode: OutageMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<Route>,
    },
}

/// How an outage looks to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// The request is read and its connection closed without a response: the client sees a
    /// connection error at once (what a circuit breaker counts as a failure, fast). The
    /// default for circuit-breaker checks.
    Reset,
    /// The request is held, unanswered, until the outage ends; then it is served as usual. A
    /// client sees its own timeout. Held requests count as in flight.
    Hang,
}

impl Fault {
    pub fn fail_next(status: u16, count: u64) -> Self {
        Fault::FailNext { status, count, route: None }
    }

    pub fn fail_fraction(status: u16, fraction: f64) -> Self {
        Fault::FailFraction { status, fraction, route: None, seed: None }
    }

    pub fn latency(delay: Duration) -> Self {
        Fault::Latency { ms: millis(delay), route: None }
    }

    pub fn outage(mode: OutageMode) -> Self {
        Fault::Outage { mode, duration_ms: None, route: None }
    }

    /// The same fault limited to `route`.
    pub fn on(mut self, only: Route) -> Self {
        match &mut self {
            Fault::FailNext { route, .. }
            | Fault::FailFraction { route, .. }
            | Fault::Latency { route, .. }
            | Fault::Outage { route, .. } => *route = Some(only),
        }
        self
    }

    pub fn route(&self) -> Option<Route> {
        match self {
            Fault::FailNext { route, .. }
            | Fault::FailFraction { route, .. }
            | Fault::Latency { route, .. }
            | Fault::Outage { route, .. } => *route,
        }
    }

    fn matches(&self, route: Route) -> bool {
        self.route().is_none_or(|only| only == route)
    }

    /// Checks the numbers a fault carries.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::InvalidFault { reason });
        match *self {
            Fault::FailNext { status, .. } | Fault::FailFraction { status, .. }
                if !(400..=599).contains(&status) =>
            {
                invalid(format!("status {status} is not an error status; use one in 400..=599"))
            }
            Fault::FailFraction { fraction, .. } if !(0.0..=1.0).contains(&fraction) => {
                invalid(format!("fraction {fraction} is outside 0.0..=1.0"))
            }
            _ => Ok(()),
        }
    }
}

/// A fault as it stands: how many requests it has affected so far and whether it still applies
/// (a `fail_next` with no failures left, or an outage past its duration, does not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultStatus {
    pub fault: Fault,
    pub fired: u64,
    pub active: bool,
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Close the connection without a response.
    Drop,
    /// Hold the request until the faults change or `until` passes, then decide again.
    Hold { until: Option<Instant> },
    /// Wait `delay`, then answer `fail` if set, or serve the request.
    Go { delay: Duration, fail: Option<u16> },
}

/// The faults in force, and a generation counter that wakes held requests on every change.
#[derive(Debug)]
pub(crate) struct FaultBook {
    faults: Mutex<Vec<Active>>,
    changed: watch::Sender<u64>,
}

#[derive(Debug)]
struct Active {
    fault: Fault,
    set_at: Instant,
    fired: u64,
    /// `fail_fraction`: the requests it has judged.
    seen: u64,
    /// `fail_fraction` with a seed: the PRNG state.
    rng: u64,
}

impl Active {
    fn new(fault: Fault, now: Instant) -> Self {
        let rng = match fault {
            Fault::FailFraction { seed: Some(seed), .. } => seed,
            _ => 0,
        };
        Self { fault, set_at: now, fired: 0, seen: 0, rng }
    }

    fn outage_end(&self) -> Option<Instant> {
        match self.fault {
            Fault::Outage { duration_ms: Some(ms), .. } => Some(self.set_at + Duration::from_millis(ms)),
            _ => None,
        }
    }

    fn active(&self, now: Instant) -> bool {
        match self.fault {
            Fault::FailNext { count, .. } => self.fired < count,
            Fault::Outage { .. } => self.outage_end().is_none_or(|end| now < end),
            Fault::FailFraction { .. } | Fault::Latency { .. } => true,
        }
    }

    /// Judges one request for a `fail_fraction`.
    fn roll(&mut self, fraction: f64, seeded: bool) -> bool {
        self.seen += 1;
        if seeded {
            unit_interval(splitmix64(&mut self.rng)) < fraction
        } else {
            // ⌊n·f⌋ − ⌊(n−1)·f⌋ is 1 exactly ⌊n·f⌋ times over the first n requests.
            let n = self.seen as f64;
            (n * fraction).floor() > ((n - 1.0) * fraction).floor()
        }
    }
}

impl FaultBook {
    pub(crate) fn new() -> Self {
        Self { faults: Mutex::new(Vec::new()), changed: watch::Sender::new(0) }
    }

    /// A receiver that sees every later change; subscribe before deciding, so a change made
    /// between the decision and the wait is not missed.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub(crate) fn set(&self, faults: Vec<Fault>) -> Result<(), Error> {
        faults.iter().try_for_each(Fault::validate)?;
        let now = Instant::now();
        *self.lock() = faults.into_iter().map(|f| Active::new(f, now)).collect();
        self.bump();
        Ok(())
    }

    pub(crate) fn add(&self, fault: Fault) -> Result<(), Error> {
        fault.validate()?;
        self.lock().push(Active::new(fault, Instant::now()));
        self.bump();
        Ok(())
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
        self.bump();
    }

    pub(crate) fn list(&self) -> Vec<FaultStatus> {
        let now = Instant::now();
        self.lock()
            .iter()
            .map(|a| FaultStatus { fault: a.fault.clone(), fired: a.fired, active: a.active(now) })
            .collect()
    }

    /// Decides one request to `route` (see the module docs for the order). `held` says the
    /// request was held before, so the outage holding it again is not counted twice.
    pub(crate) fn decide(&self, route: Route, held: bool) -> Disposition {
        let now = Instant::now();
        let mut faults = self.lock();
        for active in faults.iter_mut() {
            if !active.fault.matches(route) {
                continue;
            }
            if let Fault::Outage { mode, .. } = active.fault {
                if active.active(now) {
                    return match mode {
                        OutageMode::Reset => {
                            active.fired += 1;
                            Disposition::Drop
                        }
                        OutageMode::Hang => {
                            active.fired += u64::from(!held);
                            Disposition::Hold { until: active.outage_end() }
                        }
                    };
                }
            }
        }
        let mut delay = Duration::ZERO;
        for active in faults.iter_mut().filter(|a| a.fault.matches(route)) {
            if let Fault::Latency { ms, .. } = active.fault {
                active.fired += 1;
                delay += Duration::from_millis(ms);
            }
        }
        let mut fail = None;
        for active in faults.iter_mut().filter(|a| a.fault.matches(route)) {
            match active.fault {
                Fault::FailNext { status, count, .. } if active.fired < count => {
                    active.fired += 1;
                    fail = Some(status);
                    break;
                }
                _ => {}
            }
        }
        if fail.is_none() {
            for active in faults.iter_mut().filter(|a| a.fault.matches(route)) {
                if let Fault::FailFraction { status, fraction, seed, .. } = active.fault {
                    if active.roll(fraction, seed.is_some()) {
                        active.fired += 1;
                        fail = Some(status);
                        break;
                    }
                }
            }
        }
        Disposition::Go { delay, fail }
    }

    fn bump(&self) {
        self.changed.send_modify(|generation| *generation += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Active>> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in [0, 1) from 53 random bits.
fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}
