//! A served stack's settings against what the checks need. A check's judgement leans on some
//! of the stack's settings — the breaker's open period it waits out, the pool it fills, the
//! refresh period it counts refreshes over — which the embedded stack takes from the checks
//! ([`crate::tuning`]). A stack served apart publishes its own at `/settings` (schema
//! [`SCHEMA`], `crates/stack/openapi.json`); [`unmet`] names each setting that leaves a check
//! unable to judge, so that the check is reported inconclusive for that cause before it runs,
//! never misjudged. [`plan_left`] reads the upstream plan an earlier run may have spent.

use std::time::Duration;

use client::{Target, TargetError};
use serde_json::Value;

use crate::checkers::Check;
use crate::kind::Need;

/// The schema name of a stack's settings document.
pub const SCHEMA: &str = "stampede-settings/1";

/// A setting a check needs that the stack does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The check it leaves unable to judge.
    pub check: String,
    /// The setting, in words.
    pub setting: &'static str,
    /// What the check needs, in words (`2 s`, `at least 8 s`).
    pub needed: String,
    /// What the stack has, in words.
    pub served: String,
    /// The `stampede serve` flag that gives it (`--breaker-open 2000ms`).
    pub flag: String,
}

impl Unmet {
    /// One line: the check, the setting, what it has and needs.
    pub fn line(&self) -> String {
        format!(
            "check {:?} cannot judge: the stack's {} is {}, it needs {} ({})",
            self.check, self.setting, self.served, self.needed, self.flag
        )
    }
}

/// Every need of `checks` that `served` (a settings document) does not meet, in the checks'
/// order. A need the document does not state counts as unmet ("not published"). The
/// connection deadline is not compared: the `slow-clients` check judges the stack's own
/// deadlines against the bound its profile states.
pub fn unmet(checks: &[Check], served: &Value) -> Vec<Unmet> {
    let ms = |pointer: &str| served.pointer(pointer).and_then(Value::as_u64);
    let count = |pointer: &str| ms(pointer);
    let mut found = Vec::new();
    for check in checks {
        for need in check.needs() {
            let mut miss = |setting: &'static str, needed: String, served: String, flag: String| {
                found.push(Unmet { check: check.name().to_owned(), setting, needed, served, flag });
            };
            let shown = |value: Option<u64>, words: fn(u64) -> String| {
                value.map_or("not published".to_owned(), words)
            };
            match need {
                Need::BreakerOpen(d) => {
                    let has = ms("/breaker/open_ms");
                    if has != Some(millis(d)) {
                        miss(
                            "breaker open period",
                            human(millis(d)),
                            shown(has, human),
                            flag("breaker-open", d),
                        );
                    }
                }
                Need::BreakerTrialTimeout(d) => {
                    let has = ms("/breaker/trial_timeout_ms");
                    if has.is_none_or(|has| has < millis(d)) {
                        miss(
                            "breaker trial timeout",
                            format!("at least {}", human(millis(d))),
                            shown(has, human),
                            flag("breaker-trial-timeout", d),
                        );
                    }
                }
                Need::TaskVisibility(d) => {
                    let has = ms("/task_visibility_ms");
                    if has != Some(millis(d)) {
                        miss(
                            "tasks' visibility timeout",
                            human(millis(d)),
                            shown(has, human),
                            flag("task-visibility", d),
                        );
                    }
                }
                Need::TaskTimeLimit(d) => {
                    let has = ms("/task_time_limit_ms");
                    if has != Some(millis(d)) {
                        miss(
                            "tasks' hard time limit",
                            human(millis(d)),
                            shown(has, human),
                            flag("task-time-limit", d),
                        );
                    }
                }
                Need::UpstreamHold(d) => {
                    let has = ms("/task_visibility_ms");
                    if has.is_none_or(|has| has <= millis(d)) {
                        miss(
                            "tasks' visibility timeout",
                            format!("above {} (it holds upstream calls that long)", human(millis(d))),
                            shown(has, human),
                            format!("--task-visibility above {}ms", millis(d)),
                        );
                    }
                }
                Need::UpstreamPool { connections, idle } => {
                    let (has_connections, has_idle) =
                        (count("/upstream_pool/connections"), count("/upstream_pool/idle"));
                    if has_connections != Some(connections as u64) || has_idle != Some(idle as u64) {
                        miss(
                            "upstream pool",
                            format!("{connections} connections, {idle} idle"),
                            match (has_connections, has_idle) {
                                (Some(c), Some(i)) => format!("{c} connections, {i} idle"),
                                _ => "not published".to_owned(),
                            },
                            format!("--upstream-connections {connections} --upstream-idle {idle}"),
                        );
                    }
                    // A burst of imports fills the pool only with more workers than it lets call.
                    let in_flight = connections.saturating_sub(idle) as u64;
                    let workers = count("/workers");
                    if workers.is_none_or(|w| w <= in_flight) {
                        miss(
                            "number of import workers",
                            format!("more than {in_flight}, the calls the pool lets through at once"),
                            shown(workers, |n| n.to_string()),
                            format!(
                                "--workers {}",
                                crate::kind::Tuning::default().workers.max(in_flight as usize + 1)
                            ),
                        );
                    }
                }
                Need::RefreshPeriod(d) => {
                    let has = ms("/refresh_period_ms");
                    if has != Some(millis(d)) {
                        miss(
                            "refresh period",
                            human(millis(d)),
                            shown(has, human),
                            flag("refresh-period", d),
                        );
                    }
                }
                Need::TokenLifetime(d) => {
                    let has = ms("/token_lifetime_ms");
                    if has.is_none_or(|has| has < millis(d)) {
                        miss(
                            "access token lifetime",
                            format!("at least {}", human(millis(d))),
                            shown(has, human),
                            flag("token-lifetime", d),
                        );
                    }
                }
                Need::ConnectionDeadline(_) => {}
            }
        }
    }
    found
}

/// The upstream plan as the profile's spending check (`usage-plan`) reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLeft {
    /// Calls left in the period with fewest left.
    pub left: u64,
    /// The counters as read: `used [..] of [..]`.
    pub read: String,
}

/// The upstream plan's calls left, read before any check runs with the request of the
/// profile's check that spends it (`checks` is the whole profile: the reading needs that check,
/// run or not). None when the profile has no such check, or the answer holds no counters (the
/// check says so when it runs).
pub async fn plan_left(target: &Target, checks: &[Check]) -> Result<Option<PlanLeft>, TargetError> {
    let Some(Check::UsagePlan(check)) = checks.iter().find(|c| c.spends_plan()) else { return Ok(None) };
    Ok(crate::checkers::usage_plan::read_plan(target, check)
        .await?
        .map(|(left, used, limits)| PlanLeft { left, read: format!("used {used:?} of {limits:?}") }))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `--name 2000ms`.
fn flag(name: &str, d: Duration) -> String {
    format!("--{name} {}ms", millis(d))
}

/// Milliseconds in words: `2 s`, `1.5 s`, `250 ms`.
fn human(ms: u64) -> String {
    match ms {
        _ if ms >= 3_600_000 && ms % 3_600_000 == 0 => format!("{} h", ms / 3_600_000),
        _ if ms >= 60_000 && ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        _ if ms >= 1000 && ms % 1000 == 0 => format!("{} s", ms / 1000),
        _ if ms >= 1000 && ms % 100 == 0 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile_checks() -> Vec<Check> {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/reference.toml"))
                .expect("the reference profile");
        let profile =
            profile::Profile::parse(std::path::Path::new("reference.toml"), &text).expect("it parses");
        crate::read(&profile).expect("its checks read")
    }

    /// The settings the embedded stack would run the reference profile's checks with, as a
    /// served stack publishes them.
    fn served_as_tuned(checks: &[Check]) -> Value {
        let t = crate::tuning(checks, &profile::Defaults::default()).unwrap();
        json!({
            "schema": SCHEMA,
            "breaker": { "failures": t.breaker_failures, "open_ms": millis(t.breaker_open),
                         "trial_timeout_ms": millis(t.breaker_trial_timeout) },
            "task_visibility_ms": millis(t.task_visibility),
            "task_time_limit_ms": millis(t.task_time_limit),
            "workers": t.workers,
            "upstream_pool": { "connections": t.upstream_connections, "idle": t.upstream_idle },
            "refresh_period_ms": millis(t.refresh_period),
            "token_lifetime_ms": millis(t.token_lifetime),
        })
    }

    #[test]
    fn a_stack_with_what_the_checks_are_tuned_for_meets_every_need() {
        let checks = profile_checks();
        assert_eq!(unmet(&checks, &served_as_tuned(&checks)), Vec::new());
    }

    #[test]
    fn a_stack_served_with_the_seed_settings_leaves_the_timed_checks_unable_to_judge() {
        let checks = profile_checks();
        // `stampede serve` without a profile: the seed's settings.
        let seed = json!({
            "schema": SCHEMA,
            "breaker": { "failures": 5, "open_ms": 60_000, "trial_timeout_ms": 10_000 },
            "task_visibility_ms": 360_000, "task_time_limit_ms": 300_000, "workers": 2,
            "upstream_pool": { "connections": 100, "idle": 20 },
            "refresh_period_ms": 1_800_000, "token_lifetime_ms": 3_600_000,
        });
        let found = unmet(&checks, &seed);
        let named: Vec<(&str, &str)> = found.iter().map(|u| (u.check.as_str(), u.setting)).collect();
        for (check, setting) in [
            ("upstream-breaker", "breaker open period"),
            ("platform-token-refresh", "refresh period"),
            ("upstream-pool", "upstream pool"),
            ("upstream-pool", "number of import workers"),
            ("import-lifecycle", "tasks' visibility timeout"),
        ] {
            assert!(named.contains(&(check, setting)), "{check} / {setting} not named: {named:?}");
        }
        let breaker = found.iter().find(|u| u.setting == "breaker open period").unwrap();
        assert_eq!(breaker.served, "1 min");
        assert_eq!(breaker.flag, "--breaker-open 2000ms");
        assert!(
            breaker.line().contains("the stack's breaker open period is 1 min, it needs 2 s"),
            "{}",
            breaker.line()
        );
    }

    #[test]
    fn a_setting_the_stack_does_not_publish_is_unmet_and_said_so() {
        let checks = profile_checks();
        let mut served = served_as_tuned(&checks);
        served.as_object_mut().unwrap().remove("refresh_period_ms");
        let found = unmet(&checks, &served);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].setting, found[0].served.as_str()), ("refresh period", "not published"));
    }

    #[test]
    fn at_least_needs_accept_more_and_refuse_less() {
        let checks = profile_checks();
        let mut served = served_as_tuned(&checks);
        served["token_lifetime_ms"] = json!(3_600_000);
        served["breaker"]["trial_timeout_ms"] = json!(60_000);
        assert_eq!(unmet(&checks, &served), Vec::new());
        served["token_lifetime_ms"] = json!(1);
        assert_eq!(
            unmet(&checks, &served).iter().map(|u| u.setting).collect::<Vec<_>>(),
            ["access token lifetime"]
        );
    }
}
