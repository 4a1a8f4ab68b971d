//! A stack's settings as the profile's checks need them ([`checks::Tuning`]), stated as
//! `stampede serve` flags: how the embedded stack's processes are started, and what `stampede
//! serve --profile` applies beneath the profile's `[stack]` and the command line.

use checks::Tuning;
use reference::limit::Limit;
use reference::usage_tracker::UsageLimits;

/// The upstream plan (#4) when no check spends it: one nothing exhausts.
pub(crate) const UNBOUNDED_PLAN: u64 = 1_000_000;

/// Registrations per client address on a stack stampede starts: every user of the checks and
/// of the load comes from this one address, so the limit is sized for a load of that many.
pub(crate) const HARNESS_REGISTRATIONS: Limit = Limit::new(100_000, std::time::Duration::from_secs(60));

/// The `stampede serve` flags that give a stack `tuning`'s settings, `plan` and the harness's
/// registration limit: how the embedded stack's processes are started, and what `serve
/// --profile` applies.
pub(crate) fn serve_flags(tuning: &Tuning, plan: UsageLimits) -> Vec<String> {
    let ms = |d: std::time::Duration| format!("{}ms", d.as_millis());
    let mut flags: Vec<String> = vec![
        "--refresh-period".into(),
        ms(tuning.refresh_period),
        "--token-lifetime".into(),
        ms(tuning.token_lifetime),
        "--publish-limit".into(),
        format!("{}/{}", tuning.publish_limit, ms(tuning.publish_window)),
        "--breaker-open".into(),
        ms(tuning.breaker_open),
        "--breaker-failures".into(),
        tuning.breaker_failures.to_string(),
        "--breaker-trial-timeout".into(),
        ms(tuning.breaker_trial_timeout),
        "--task-visibility".into(),
        ms(tuning.task_visibility),
        "--task-time-limit".into(),
        ms(tuning.task_time_limit),
        "--workers".into(),
        tuning.workers.to_string(),
        "--upstream-connections".into(),
        tuning.upstream_connections.to_string(),
        "--upstream-idle".into(),
        tuning.upstream_idle.to_string(),
        "--upstream-plan".into(),
        format!("{}/{}", plan.per_day, plan.per_hour),
        "--registration-limit".into(),
        format!("{}/{}", HARNESS_REGISTRATIONS.max, ms(HARNESS_REGISTRATIONS.window)),
    ];
    if let Some(deadline) = tuning.connection_deadline {
        flags.extend(["--header-timeout".to_owned(), ms(deadline), "--body-grace".to_owned(), ms(deadline)]);
    }
    flags
}
