//! Single-flight token refresh (#11), judged from the fake upstream's refresh log. The fake's
//! counts are zeroed, then for [`TokenRefreshCheck::periods`] refresh periods imports are
//! submitted (spread over every instance) so the stack keeps calling the upstream with its
//! credential; then the refresh log and the counts are read.
//!
//! The checker cannot see where the target's periods begin, but it can see where the refreshes
//! fall: each one comes within a beat of its period's start, so consecutive ones are a period
//! apart. Windows one period wide are laid out centred on the first refresh and every later
//! multiple of the period; each window that lies wholly within the observation must hold
//! exactly one granted refresh (`duplicate-refresh`, `missed-refresh`), and the total must
//! equal the periods elapsed give or take one for the edges (`refresh-count`). Two instances
//! that refresh in the same period also show as a rotated refresh token presented again
//! (`reused-refresh-token`), and a refresh that comes too late as a call with an expired
//! access token (`expired-token-used`).

use std::time::Duration;

use client::{Target, TargetError};
use profile::Defaults;
use profile::template::RequestTemplate;
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, Need, at_least_one};
use crate::upstream::{Control, Snapshot};

pub const KIND: &str = "token-refresh";

/// What the judge needs of the check's settings.
#[derive(Debug, Clone)]
pub struct Params {
    pub account: String,
    pub period_ms: u64,
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &TokenRefreshCheck) -> Result<Verdict, TargetError> {
    let control = Control::of(target, &check.name)?;
    let user = target.user(&check.name).await?;
    control.reset().await?;
    let start = control.snapshot(target).await?;
    let observe = Duration::from_millis(check.period_ms) * check.periods as u32;
    let every = Duration::from_millis(check.import_every_ms);
    let deadline = Instant::now() + observe;
    let mut next = Instant::now();
    let mut history = Vec::new();
    let mut seq = 0;
    while Instant::now() < deadline {
        let instance = seq % target.instances();
        let unique = format!("{}-{}-{seq}", check.name, target.run);
        let answer =
            target.send(instance, Some(&user.tokens[instance]), &check.import, &[("unique", &unique)]).await;
        let outcome = if answer.status.is_some_and(|s| (200..300).contains(&s)) {
            Outcome::Ok
        } else {
            Outcome::Unknown
        };
        history.push(answer.op(seq, instance, "import", outcome, json!({ "unique": unique })));
        seq += 1;
        next += every;
        tokio::time::sleep_until(next.min(deadline).max(Instant::now())).await;
    }
    let end = control.snapshot(target).await?;
    history.extend(observation(&check.account, &start, &end));
    let params = Params { account: check.account.clone(), period_ms: check.period_ms };
    Ok(judge(&check.name, &params, &history))
}

/// The refresh log as operations on the run's clock, and the counts over the observation.
fn observation(account: &str, start: &Snapshot, end: &Snapshot) -> Vec<Op> {
    let offset = end.offset_us();
    let at = |ms: u64| (ms as i64 * 1_000 + offset).max(0) as u64;
    let stats = &end.stats;
    let mut ops: Vec<Op> = stats
        .refresh_log
        .iter()
        .map(|event| Op {
            process: 0,
            instance: 0,
            action: "refresh".into(),
            invoke_us: at(event.at_ms),
            complete_us: at(event.at_ms),
            status: None,
            outcome: if event.outcome == fake_upstream::RefreshOutcome::Refreshed {
                Outcome::Ok
            } else {
                Outcome::Fail
            },
            value: json!({ "at_ms": event.at_ms, "account": event.account, "outcome": event.outcome }),
        })
        .collect();
    let of_account = stats.accounts.get(account).cloned().unwrap_or_default();
    ops.push(Op {
        process: 0,
        instance: 0,
        action: "observe".into(),
        invoke_us: start.complete_us,
        complete_us: end.invoke_us,
        status: None,
        outcome: Outcome::Ok,
        value: json!({
            "start_ms": start.stats.elapsed_ms,
            "end_ms": stats.elapsed_ms,
            "expired_token_calls": stats.expired_token_calls,
            "unauthorized_calls": stats.unauthorized_calls,
            "refresh_log_overflow": stats.refresh_log_overflow,
            "account": of_account,
        }),
    });
    ops
}

/// Judges the refresh log and counts of one observation.
pub fn judge(name: &str, params: &Params, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let Some(observed) = history.iter().find(|op| op.action == "observe") else {
        verdict.require(
            "observed",
            false,
            "the fake upstream's counts were not read",
            "the fake upstream's control API must answer",
        );
        return verdict.summarize("never");
    };
    let (start, end) = (ms(&observed.value["start_ms"]), ms(&observed.value["end_ms"]));
    let period = params.period_ms.max(1);
    let mut events: Vec<&Op> = history
        .iter()
        .filter(|op| op.action == "refresh" && op.value["account"] == params.account.as_str())
        .collect();
    events.sort_by_key(|op| ms(&op.value["at_ms"]));
    let granted: Vec<&Op> = events.iter().copied().filter(|op| op.value["outcome"] == "refreshed").collect();
    let elapsed = end.saturating_sub(start) as f64 / period as f64;

    // Windows a period wide centred on the first refresh and each multiple of the period.
    let mut windows = Vec::new();
    if let Some(first) = granted.first() {
        let anchor = ms(&first.value["at_ms"]) as i64;
        let (period, half) = (period as i64, period as i64 / 2);
        // The first window is the one the observation starts in.
        let mut k = (start as i64 - anchor + half).div_euclid(period);
        loop {
            let (from, to) = (anchor + k * period - half, anchor + (k + 1) * period - half);
            if from > end as i64 {
                break;
            }
            let whole = from >= start as i64 && to <= end as i64;
            let inside: Vec<&Op> = granted
                .iter()
                .copied()
                .filter(|op| (from..to).contains(&(ms(&op.value["at_ms"]) as i64)))
                .collect();
            windows.push((from, to, whole, inside));
            k += 1;
        }
    }
    let crowded: Vec<&(i64, i64, bool, Vec<&Op>)> = windows.iter().filter(|w| w.3.len() > 1).collect();
    if let Some(most) = crowded.iter().max_by_key(|w| w.3.len()) {
        verdict.violate(
            "duplicate-refresh",
            format!(
                "{} of {} refresh periods had more than one refresh of {}, up to {} in one",
                crowded.len(),
                windows.len(),
                params.account,
                most.3.len()
            ),
            most.3.iter().map(|op| (*op).clone()),
        );
    }
    let empty = windows.iter().filter(|w| w.2 && w.3.is_empty()).count();
    if granted.is_empty() && elapsed >= 2.0 {
        verdict.violate(
            "missed-refresh",
            format!("{} was not refreshed in {elapsed:.1} periods", params.account),
            [],
        );
    } else if empty > 0 {
        verdict.violate(
            "missed-refresh",
            format!("{empty} whole refresh periods passed without a refresh of {}", params.account),
            [],
        );
    }
    let (low, high) = ((elapsed.floor() as usize).saturating_sub(1), elapsed.ceil() as usize + 1);
    if !(low..=high).contains(&granted.len()) {
        verdict.violate(
            "refresh-count",
            format!(
                "{} refreshes of {} in {elapsed:.1} periods, expected {low} to {high}",
                granted.len(),
                params.account
            ),
            [],
        );
    }
    let account = &observed.value["account"];
    let reused = account["reused_refresh_tokens"].as_u64().unwrap_or(0);
    if reused > 0 {
        let shown = events.iter().filter(|op| op.value["outcome"] == "reused").map(|op| (*op).clone());
        verdict.violate(
            "reused-refresh-token",
            format!("{reused} refreshes presented a refresh token an earlier refresh had already rotated"),
            shown,
        );
    }
    let expired = observed.value["expired_token_calls"].as_u64().unwrap_or(0);
    if expired > 0 {
        verdict.violate(
            "expired-token-used",
            format!("{expired} upstream calls carried an expired access token"),
            [observed.clone()],
        );
    }
    let calls = account["api_calls"].as_u64().unwrap_or(0);
    verdict.require(
        "upstream-calls",
        calls > 0 || expired > 0,
        format!("{calls} upstream calls with {}'s credential while observed", params.account),
        "imports must make the stack call the upstream (is its plan spent, or its workers stopped?)",
    );
    verdict.require(
        "periods-observed",
        elapsed >= 2.0,
        format!("{elapsed:.1} refresh periods observed"),
        "observe at least two periods (`periods`), the stack's refresh period being `period_ms`",
    );
    let imports = history.iter().filter(|op| op.action == "import").count();
    verdict.bound_unknown(history.iter().filter(|op| op.action == "import"), MAX_UNKNOWN);
    verdict.evidence = json!({
        "observed_ms": end.saturating_sub(start),
        "periods_elapsed": (elapsed * 10.0).round() / 10.0,
        "refreshes": granted.len(),
        "refresh_attempts": events.len(),
        // When each refresh came, from the observation's start (the first 50).
        "refreshed_at_ms": granted.iter().take(50).map(|op| ms(&op.value["at_ms"]).saturating_sub(start)).collect::<Vec<_>>(),
        "windows": windows.len(),
        "windows_with_several": crowded.len(),
        "whole_windows_without": empty,
        "reused_refresh_tokens": reused,
        "expired_token_calls": expired,
        "upstream_calls": calls,
        "imports": imports,
    });
    verdict.summarize(
    format!(
        "{} refreshes in {elapsed:.1} periods, one per period; no token reused; {calls} upstream calls, none expired",
        granted.len()
    )
    )
}

fn ms(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params() -> Params {
        Params { account: "platform".to_owned(), period_ms: 2_000 }
    }

    fn refresh(at_ms: u64, outcome: &str) -> Op {
        Op {
            process: 0,
            instance: 0,
            action: "refresh".into(),
            invoke_us: at_ms * 1_000,
            complete_us: at_ms * 1_000,
            status: None,
            outcome: Outcome::Ok,
            value: json!({ "at_ms": at_ms, "account": "platform", "outcome": outcome }),
        }
    }

    fn observe(start: u64, end: u64, reused: u64, expired: u64, calls: u64) -> Op {
        Op {
            process: 0,
            instance: 0,
            action: "observe".into(),
            invoke_us: start * 1_000,
            complete_us: end * 1_000,
            status: None,
            outcome: Outcome::Ok,
            value: json!({
                "start_ms": start,
                "end_ms": end,
                "expired_token_calls": expired,
                "account": { "api_calls": calls, "reused_refresh_tokens": reused },
            }),
        }
    }

    /// Ten seconds from 10 300 ms; the periods start at every multiple of 2 s and each is
    /// refreshed within 200 ms of its start.
    fn correct() -> Vec<Op> {
        let mut history: Vec<Op> =
            [12_050, 14_180, 16_020, 18_110, 20_090].iter().map(|at| refresh(*at, "refreshed")).collect();
        history.push(observe(10_300, 20_300, 0, 0, 40));
        // The imports that made the calls, every one answered.
        history.extend((0..40).map(|i| Op {
            action: "import".into(),
            status: Some(201),
            ..refresh(10_300 + i * 250, "n/a")
        }));
        history
    }

    fn rules(history: &[Op]) -> Vec<String> {
        judge("token-refresh", &params(), history).rules().into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn one_refresh_per_period_passes() {
        let verdict = judge("token-refresh", &params(), &correct());
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["refreshes"], 5);
    }

    #[test]
    fn two_instances_refreshing_in_one_period() {
        // Every instance of a stack without a shared lease refreshes each period: the
        // second presents the token the first just rotated.
        let mut history = correct();
        history.push(refresh(14_185, "reused"));
        history.push(refresh(16_030, "refreshed"));
        history.retain(|op| op.action != "observe");
        history.push(observe(10_300, 20_300, 1, 0, 40));
        assert_eq!(rules(&history), ["duplicate-refresh", "reused-refresh-token"]);
    }

    #[test]
    fn a_refresh_every_beat_is_duplicate_and_over_count() {
        let mut history: Vec<Op> = (0..50).map(|i| refresh(10_400 + i * 200, "refreshed")).collect();
        history.push(observe(10_300, 20_300, 0, 0, 40));
        assert_eq!(rules(&history), ["duplicate-refresh", "refresh-count"]);
    }

    #[test]
    fn a_skipped_period_is_missed() {
        let mut history = correct();
        history.retain(|op| op.value["at_ms"] != 16_020);
        assert_eq!(rules(&history), ["missed-refresh"]);
        let history = vec![observe(10_300, 20_300, 0, 0, 40)];
        assert_eq!(rules(&history), ["missed-refresh", "refresh-count"]);
    }

    #[test]
    fn expired_calls_and_no_calls() {
        let mut history = correct();
        history.retain(|op| op.action != "observe");
        history.push(observe(10_300, 20_300, 0, 3, 40));
        assert_eq!(rules(&history), ["expired-token-used"]);
        let mut history = correct();
        history.retain(|op| op.action != "observe");
        history.push(observe(10_300, 20_300, 0, 0, 0));
        // No call: whether an expired token would have been used is not known.
        let verdict = judge("token-refresh", &params(), &history);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["upstream-calls"]);
        // Imports the stack did not answer: nothing said of the calls they should have made.
        let mut history = correct();
        history
            .iter_mut()
            .filter(|op| op.action == "import")
            .take(10)
            .for_each(|op| op.outcome = Outcome::Unknown);
        assert_eq!(judge("token-refresh", &params(), &history).missing(), ["unknown-within-bound"]);
    }

    #[test]
    fn other_accounts_do_not_count() {
        let mut history = correct();
        let mut other = refresh(14_190, "refreshed");
        other.value["account"] = json!("someone-else");
        history.push(other);
        assert!(judge("token-refresh", &params(), &history).held());
    }

    #[test]
    fn the_evidence_and_summary_say_what_was_seen() {
        let v = judge("token-refresh", &params(), &correct());
        assert_eq!(
            v.evidence,
            json!({ "expired_token_calls": 0, "imports": 40, "observed_ms": 10000, "periods_elapsed": 5.0,
                    "refresh_attempts": 5, "refreshed_at_ms": [1750, 3880, 5720, 7810, 9790], "refreshes": 5,
                    "reused_refresh_tokens": 0, "upstream_calls": 40, "whole_windows_without": 0, "windows": 6,
                    "windows_with_several": 0 })
        );
        assert_eq!(
            v.summary,
            "5 refreshes in 5.0 periods, one per period; no token reused; 40 upstream calls, none expired"
        );
    }
}

/// Single-flight token refresh (#11), judged from the fake upstream's refresh log: one
/// refresh of the account per refresh period across every instance, no rotated refresh token
/// presented again, and no call with an expired access token while imports run. Needs the
/// fake upstream's control API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRefreshCheck {
    pub name: String,
    /// The fake upstream account whose credential the stack refreshes.
    pub account: String,
    /// The target's refresh period.
    pub period_ms: u64,
    /// Refresh periods observed.
    #[serde(default = "default_periods")]
    pub periods: usize,
    /// An import that makes the stack call the upstream; `{unique}` is new for every import.
    pub import: RequestTemplate,
    /// One import is submitted every `import_every_ms` while observing.
    #[serde(default = "default_import_every_ms")]
    pub import_every_ms: u64,
}

fn default_periods() -> usize {
    5
}

fn default_import_every_ms() -> u64 {
    250
}

impl Kind for TokenRefreshCheck {
    const KIND: &'static str = KIND;
    const DRIVES_UPSTREAM: bool = true;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("import", &self.import)]
    }

    fn validate(&self) -> Result<(), FieldError> {
        at_least_one("period_ms", self.period_ms)?;
        at_least_one("periods", self.periods as u64)?;
        at_least_one("import_every_ms", self.import_every_ms)
    }

    fn upstream_calls(&self, _defaults: &Defaults) -> u64 {
        self.periods as u64 * self.period_ms / self.import_every_ms.max(1)
    }

    /// The refresh period the check observes; access tokens that outlive several of them.
    fn needs(&self) -> Vec<Need> {
        let period = Duration::from_millis(self.period_ms);
        vec![Need::RefreshPeriod(period), Need::TokenLifetime(4 * period)]
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
