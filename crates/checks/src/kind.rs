//! What a check kind is: a `[[check]]` table's configuration that knows how to validate
//! itself, which requests and pointers it holds, what it needs of a reference stack stampede
//! starts, and how to run against a target. Each kind is one file of `checkers/` and one line
//! of the list there ([`crate::checkers`]); nothing else names it.

use std::future::Future;
use std::time::Duration;

use client::{Target, TargetError};
use profile::template::RequestTemplate;
use profile::{CheckTable, Defaults, ProfileError};
use report::checks::Verdict;
use serde::de::DeserializeOwned;

/// The placeholders a check's requests may use; each kind fills those it documents.
pub const PLACEHOLDERS: &[&str] = &["name", "seq", "unique", "id", "run", "value", "limit"];

/// A setting that no type refuses: the field (a dotted path in the check's table) and why.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// `Err` naming `field` when `value` is 0.
pub(crate) fn at_least_one(field: &'static str, value: u64) -> Result<(), Invalid> {
    if value == 0 { Err(Invalid::new(field, format!("{field} must be at least 1"))) } else { Ok(()) }
}

/// A check kind: the configuration one `[[check]]` table holds, and its behaviour.
pub trait Kind: DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// `kind = "…"` in the profile.
    const KIND: &'static str;
    /// Whether it drives the fake upstream the target calls, through its control API.
    const DRIVES_UPSTREAM: bool = false;
    /// Whether it spends the upstream's plan for the rest of its period: there is at most one
    /// such check, and no check that drives the upstream comes after it.
    const SPENDS_PLAN: bool = false;

    /// Its name in the profile.
    fn name(&self) -> &str;

    /// Its request templates, by field; each is checked against [`PLACEHOLDERS`].
    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)>;

    /// Its JSON pointers, by field; each must be empty or start with `/`.
    fn pointers(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }

    /// What no type refuses: zeros, bounds that contradict each other, ….
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }

    /// About how many upstream calls it makes at `defaults`' burst sizes: a reference stack
    /// stampede starts sizes its upstream plan from the calls of the checks before the one
    /// that spends it.
    fn upstream_calls(&self, _defaults: &Defaults) -> u64 {
        0
    }

    /// What it needs of a reference stack stampede starts (its windows, timeouts, pool).
    fn tune(&self, _stack: &mut Tuning) {}

    /// Drives the target and judges what it recorded.
    fn run(&self, target: &Target) -> impl Future<Output = Result<Verdict, TargetError>> + Send;
}

/// Reads `table` as kind `K` and checks what its type cannot: the requests' placeholders, the
/// pointers, the kind's own rules; every error at the line of its field.
pub fn read<K: Kind>(table: &CheckTable) -> Result<K, ProfileError> {
    let check: K = table.parse()?;
    for (field, template) in check.requests() {
        template.validate(PLACEHOLDERS).map_err(|e| table.invalid_at(&[field], format!("{field}: {e}")))?;
    }
    for (field, pointer) in check.pointers() {
        profile::template::validate_pointer(pointer)
            .map_err(|e| table.invalid_at(&[field], format!("{field} {e}")))?;
    }
    check.validate().map_err(|Invalid { field, message }| {
        let path: Vec<&str> = field.split('.').collect();
        table.invalid_at(&path, message)
    })?;
    Ok(check)
}

/// The settings of a reference stack stampede starts in process that the checks depend on:
/// short windows and timeouts, so every phase a check waits for comes within seconds. The
/// defaults suit the reference profile; each kind adjusts what its configuration names.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// The publish limit (#1): admissions per window.
    pub publish_limit: u64,
    pub publish_window: Duration,
    /// The breaker (#7): consecutive failures that open it, how long it stays open, how long a
    /// half-open trial may take.
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    pub breaker_trial_timeout: Duration,
    /// Import tasks (#10): visible again after, abandoned after.
    pub task_visibility: Duration,
    pub task_time_limit: Duration,
    /// Import workers per instance.
    pub workers: usize,
    /// The upstream pool (#8) per instance: connections open at most, idle kept.
    pub upstream_connections: usize,
    pub upstream_idle: usize,
    /// Token refresh (#11): the period, and how long the fake upstream's access tokens live.
    pub refresh_period: Duration,
    pub token_lifetime: Duration,
    /// The upstream plan (#4), per day and per hour alike; none for one no check exhausts.
    pub upstream_plan: Option<u64>,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            publish_limit: 5,
            publish_window: Duration::from_secs(3),
            breaker_failures: 5,
            breaker_open: Duration::from_secs(2),
            breaker_trial_timeout: Duration::from_secs(2),
            task_visibility: Duration::from_millis(1500),
            task_time_limit: Duration::from_secs(3),
            // More import workers than the upstream pool lets call at once: a burst of imports
            // reaches the pool's cap, so a pool without one shows.
            workers: 32,
            // 12 requests in flight, 12 idle kept, 24 open at most: a third of the workers, so
            // a burst fills the pool, and the workers its hold releases together are many.
            upstream_connections: 24,
            upstream_idle: 12,
            refresh_period: Duration::from_secs(2),
            token_lifetime: Duration::from_secs(8),
            upstream_plan: None,
        }
    }
}
