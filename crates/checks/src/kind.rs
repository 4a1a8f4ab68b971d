//! What a check kind is: a `[[check]]` table's configuration that knows how to validate
//! itself, which requests and pointers it holds, what it needs of a reference stack stampede
//! starts, and how to run against a target. Each kind is one file of `checkers/` and one line
//! of the list there ([`crate::checkers`]); nothing else names it.

use std::future::Future;
use std::time::Duration;

use client::{Target, TargetError};
use profile::template::{Recognise, RequestTemplate};
use profile::{CheckTable, Defaults, ProfileError};
use report::checks::Verdict;
use serde::de::DeserializeOwned;

/// The placeholders a check's requests may use; each kind fills those it documents.
pub(crate) const PLACEHOLDERS: &[&str] = &["name", "seq", "unique", "id", "run", "value", "limit"];

/// A setting that no type refuses: the field (a dotted path in the check's table) and why.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// `Err` naming `field` when `value` is 0.
pub(crate) fn at_least_one(field: &'static str, value: u64) -> Result<(), FieldError> {
    if value == 0 { Err(FieldError::new(field, format!("{field} must be at least 1"))) } else { Ok(()) }
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

    /// Its recognisers of answers, by field (what the dry run shows matching or not).
    fn recognisers(&self) -> Vec<(&'static str, &Recognise)> {
        Vec::new()
    }

    /// What no type refuses: zeros, bounds that contradict each other, ….
    fn validate(&self) -> Result<(), FieldError> {
        Ok(())
    }

    /// About how many upstream calls it makes at `defaults`' burst sizes: a reference stack
    /// stampede starts sizes its upstream plan from the calls of the checks before the one
    /// that spends it.
    fn upstream_calls(&self, _defaults: &Defaults) -> u64 {
        0
    }

    /// What it needs of a reference stack stampede starts (its windows, timeouts, pool).
    fn needs(&self) -> Vec<Need> {
        Vec::new()
    }

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
    check.validate().map_err(|FieldError { field, message }| {
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
    /// The header-read, idle and body-grace deadline of a connection; none: the stack's own.
    pub connection_deadline: Option<Duration>,
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
            connection_deadline: None,
        }
    }
}

/// One thing a check needs of a reference stack stampede starts. A setting is needed at one
/// value (two checks that need it at two values cannot both be judged on one stack), or at
/// least at one (the largest need wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The breaker stays open this long.
    BreakerOpen(Duration),
    /// A half-open trial may take at least this long.
    BreakerTrialTimeout(Duration),
    /// A taken task is visible again after this long.
    TaskVisibility(Duration),
    /// A task's processing is abandoned after this long.
    TaskTimeLimit(Duration),
    /// The upstream pool per instance: connections open at most, idle ones kept.
    UpstreamPool { connections: usize, idle: usize },
    /// The credential is refreshed this often.
    RefreshPeriod(Duration),
    /// The fake upstream's access tokens live at least this long.
    TokenLifetime(Duration),
    /// The check holds an upstream call this long while its task must stay with its worker:
    /// the tasks' visibility timeout must outlast it.
    UpstreamHold(Duration),
    /// A connection that sends no request head, or a body that stalls, is closed after this.
    ConnectionDeadline(Duration),
}

impl Need {
    /// The setting it is about, for conflicts.
    fn setting(self) -> &'static str {
        match self {
            Need::BreakerOpen(_) => "breaker open period",
            Need::BreakerTrialTimeout(_) => "breaker trial timeout",
            Need::TaskVisibility(_) => "tasks' visibility timeout",
            Need::TaskTimeLimit(_) => "tasks' hard time limit",
            Need::UpstreamPool { .. } => "upstream pool",
            Need::RefreshPeriod(_) => "refresh period",
            Need::TokenLifetime(_) => "access token lifetime",
            Need::UpstreamHold(_) => "longest held upstream call",
            Need::ConnectionDeadline(_) => "connection deadline",
        }
    }
}

impl Tuning {
    /// The defaults with `needs` (each with the check that has it) applied: exact needs that
    /// disagree, and a held upstream call that outlasts the tasks' visibility timeout, are
    /// errors naming the checks.
    pub(crate) fn with(needs: &[(&str, Need)]) -> Result<Self, String> {
        let mut stack = Tuning::default();
        let mut exact: Vec<(&'static str, Need, &str)> = Vec::new();
        let mut hold: Option<(Duration, &str)> = None;
        for &(check, need) in needs {
            match need {
                Need::BreakerTrialTimeout(d) => {
                    stack.breaker_trial_timeout = stack.breaker_trial_timeout.max(d)
                }
                Need::TokenLifetime(d) => stack.token_lifetime = stack.token_lifetime.max(d),
                Need::UpstreamHold(d) => {
                    if hold.is_none_or(|(longest, _)| d > longest) {
                        hold = Some((d, check));
                    }
                }
                _ => {
                    if let Some((_, other, by)) =
                        exact.iter().find(|(s, n, _)| *s == need.setting() && *n != need)
                    {
                        return Err(format!(
                            "checks {by:?} and {check:?} need the embedded stack's {} at different values \
                             ({other:?} and {need:?}); give them the same, or run them apart with --only",
                            need.setting()
                        ));
                    }
                    exact.push((need.setting(), need, check));
                    match need {
                        Need::BreakerOpen(d) => stack.breaker_open = d,
                        Need::TaskVisibility(d) => stack.task_visibility = d,
                        Need::TaskTimeLimit(d) => stack.task_time_limit = d,
                        Need::UpstreamPool { connections, idle } => {
                            stack.upstream_connections = connections;
                            stack.upstream_idle = idle;
                        }
                        Need::RefreshPeriod(d) => stack.refresh_period = d,
                        Need::ConnectionDeadline(d) => stack.connection_deadline = Some(d),
                        _ => {}
                    }
                }
            }
        }
        if let Some((held, check)) = hold
            && held >= stack.task_visibility
        {
            let by = exact
                .iter()
                .find(|(s, _, _)| *s == Need::TaskVisibility(Duration::ZERO).setting())
                .map_or("the default", |(_, _, by)| by);
            return Err(format!(
                "check {check:?} holds upstream calls {held:?}, as long as or longer than the tasks' \
                 visibility timeout ({:?}, set by {by:?}): the held calls' tasks would be delivered \
                 again mid-check",
                stack.task_visibility
            ));
        }
        Ok(stack)
    }
}
