//! Counter conservation (#3), Jepsen's counter rule over the network. Each round a fresh user
//! sends C consuming requests (distinct, so each consumes) released together over every
//! instance, then the counter is read back on every instance at once. A read may not show fewer
//! units than the requests that were acknowledged before it began, nor more than those that
//! had begun before it ended and were not refused: with no answer lost, a read after the burst
//! is exactly `accepted × units`. Every instance reads the same value, and neither a read nor
//! the units accepted pass the counter's limit.
//!
//! A counter that loses increments (a get-then-set, an increment that `SET`s a missing key)
//! reads below the accepted units; one counted per process reads differently per instance.

use client::{Target, TargetError};
use profile::Defaults;
use profile::template::{Recognise, RequestTemplate};
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::burst;
use crate::checkers::support::{self, pointer_u64};
use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, at_least_one};

pub const KIND: &str = "counter";

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &CounterCheck) -> Result<Verdict, TargetError> {
    let defaults = &target.profile.defaults;
    let concurrency = check.concurrency.unwrap_or(defaults.concurrency);
    let rounds = check.rounds.unwrap_or(defaults.rounds);
    let mut history = Vec::new();
    for round in 0..rounds {
        let user = target.user(&format!("{}-r{round}", check.name)).await?;
        let consumes = burst::release(concurrency, |i| {
            let target = target.clone();
            let check = check.clone();
            let instance = i % target.instances();
            let token = user.tokens[instance].clone();
            async move {
                let seq = format!("{round}-{i}");
                let answer = target.send(instance, Some(&token), &check.request, &[("seq", &seq)]).await;
                let outcome = support::recognise(&check.accepted, check.refused.as_ref(), &answer);
                answer.op(round, instance, "consume", outcome, json!({ "units": check.units }))
            }
        })
        .await;
        history.extend(consumes);
        let reads = burst::release(target.instances(), |instance| {
            let target = target.clone();
            let check = check.clone();
            let token = user.tokens[instance].clone();
            async move {
                let answer = target.send(instance, Some(&token), &check.read_back, &[]).await;
                let value = pointer_u64(&answer.body, &check.value);
                let limit = check.limit.as_deref().and_then(|p| pointer_u64(&answer.body, p));
                answer.op(
                    round,
                    instance,
                    "read",
                    support::read(&answer),
                    json!({ "value": value, "limit": limit }),
                )
            }
        })
        .await;
        history.extend(reads);
    }
    Ok(judge(&check.name, &history))
}

fn units(op: &Op) -> u64 {
    op.value["units"].as_u64().unwrap_or(0)
}

/// Judges rounds (processes) of `consume` operations and `read`s of the counter.
pub fn judge(name: &str, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let mut rounds: Vec<usize> = history.iter().map(|op| op.process).collect();
    rounds.sort_unstable();
    rounds.dedup();
    let (mut accepted_total, mut unknown_total, mut refused_total, mut reads_judged) = (0, 0, 0, 0);
    let mut per_round = Vec::new();
    for &round in &rounds {
        let consumes: Vec<&Op> =
            history.iter().filter(|op| op.process == round && op.action == "consume").collect();
        let reads: Vec<&Op> =
            history.iter().filter(|op| op.process == round && op.action == "read").collect();
        let accepted: Vec<&Op> = consumes.iter().copied().filter(|op| op.outcome == Outcome::Ok).collect();
        let unknown = consumes.iter().filter(|op| op.outcome == Outcome::Unknown).count();
        let accepted_units: u64 = accepted.iter().map(|op| units(op)).sum();
        accepted_total += accepted.len();
        unknown_total += unknown;
        refused_total += consumes.iter().filter(|op| op.outcome == Outcome::Fail).count();
        let mut values = Vec::new();
        let mut limit = None;
        for read in &reads {
            // A read that found nothing, or no counter in it, judges nothing (`reads-judged`).
            if read.outcome != Outcome::Ok {
                continue;
            }
            let Some(value) = read.value["value"].as_u64() else { continue };
            reads_judged += 1;
            values.push((read.instance, value));
            limit = limit.or(read.value["limit"].as_u64());
            // Acknowledged before the read began: counted. Begun before it ended and not
            // refused: may be counted.
            let lower: u64 = consumes
                .iter()
                .filter(|op| op.outcome == Outcome::Ok && op.complete_us < read.invoke_us)
                .map(|op| units(op))
                .sum();
            let upper: u64 = consumes
                .iter()
                .filter(|op| op.outcome != Outcome::Fail && op.invoke_us < read.complete_us)
                .map(|op| units(op))
                .sum();
            if value < lower {
                verdict.violate(
                    "lost-units",
                    format!(
                        "round {round}: instance {} reads {value}, below the {lower} units acknowledged before the read",
                        read.instance
                    ),
                    std::iter::once((*read).clone()).chain(accepted.iter().map(|op| (*op).clone())),
                );
            } else if value > upper {
                verdict.violate(
                    "phantom-units",
                    format!(
                        "round {round}: instance {} reads {value}, above the {upper} units of every request that may have consumed",
                        read.instance
                    ),
                    [(*read).clone()],
                );
            }
            if let Some(limit) = read.value["limit"].as_u64().filter(|l| value > *l) {
                verdict.violate(
                    "over-limit",
                    format!(
                        "round {round}: instance {} reads {value}, above the limit {limit}",
                        read.instance
                    ),
                    [(*read).clone()],
                );
            }
        }
        if let Some(limit) = limit.filter(|l| accepted_units > *l) {
            verdict.violate(
                "over-limit",
                format!("round {round}: {accepted_units} units accepted, above the limit {limit}"),
                accepted.iter().map(|op| (*op).clone()),
            );
        }
        let mut distinct: Vec<u64> = values.iter().map(|(_, v)| *v).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let quiescent = reads.iter().all(|read| consumes.iter().all(|op| op.complete_us < read.invoke_us));
        if distinct.len() > 1 && quiescent {
            verdict.violate(
                "diverging-reads",
                format!("round {round}: the instances read different values after the burst: {values:?}"),
                reads.iter().map(|op| (*op).clone()),
            );
        }
        per_round.push(json!({
            "round": round,
            "accepted": accepted.len(),
            "unknown": unknown,
            "accepted_units": accepted_units,
            "reads": values.iter().map(|(i, v)| json!({ "instance": i, "value": v })).collect::<Vec<Value>>(),
        }));
    }
    let instances = history.iter().map(|op| op.instance).max().map_or(0, |m| m + 1);
    let mut read_on: Vec<usize> = history
        .iter()
        .filter(|op| op.action == "read" && op.outcome == Outcome::Ok && op.value["value"].is_u64())
        .map(|op| op.instance)
        .collect();
    read_on.sort_unstable();
    read_on.dedup();
    verdict.require(
        "reads-judged",
        reads_judged > 0 && read_on.len() == instances,
        format!("{reads_judged} reads of the counter judged, on {} of {instances} instances", read_on.len()),
        "the read-back must answer 2xx with the counter at `value` on every instance",
    );
    verdict.require(
        "units-accepted",
        accepted_total > 0,
        format!("{accepted_total} consuming requests accepted, {refused_total} refused"),
        "the counter never moved: is its limit already spent? (a fresh user each round, `accepted` recognising the answer)",
    );
    verdict.bound_unknown(history, MAX_UNKNOWN);
    verdict.evidence = json!({
        "rounds": per_round,
        "accepted": accepted_total,
        "refused": refused_total,
        "unknown": unknown_total,
        "reads_judged": reads_judged,
    });
    verdict.summarize(format!(
        "{} rounds: {accepted_total} accepted, every read within its bounds and equal on every instance",
        rounds.len()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkers::support::testing::op;

    fn consume(at: u64, outcome: Outcome) -> Op {
        op(0, 0, "consume", at, outcome, json!({ "units": 3 }))
    }

    fn read(instance: usize, at: u64, value: u64) -> Op {
        op(0, instance, "read", at, Outcome::Ok, json!({ "value": value, "limit": 100 }))
    }

    #[test]
    fn exact_reads_on_every_instance_pass() {
        let history = vec![consume(0, Outcome::Ok), consume(0, Outcome::Ok), read(0, 5, 6), read(1, 5, 6)];
        let verdict = judge("c", &history);
        assert!(verdict.held(), "{:?}", verdict.violations);
    }

    #[test]
    fn an_unknown_answer_widens_the_bounds() {
        // No violation either way; one unknown in four operations is more than may be unknown.
        let history =
            vec![consume(0, Outcome::Ok), consume(0, Outcome::Unknown), read(0, 5, 3), read(0, 6, 3)];
        assert_eq!(judge("c", &history).missing(), ["unknown-within-bound"]);
        let history = vec![consume(0, Outcome::Ok), consume(0, Outcome::Unknown), read(0, 5, 6)];
        let verdict = judge("c", &history);
        assert!(verdict.rules().is_empty() && verdict.inconclusive(), "{verdict:?}");
        assert_eq!(
            (verdict.evidence["unknown"].clone(), verdict.evidence["refused"].clone()),
            (json!(1), json!(0))
        );
        assert_eq!(verdict.evidence["rounds"][0]["unknown"], 1);
        assert!(verdict.summary.contains("1 of 3 operations had no usable answer"), "{}", verdict.summary);
    }

    #[test]
    fn a_read_below_the_accepted_units_is_lost_units() {
        // IncrOrSet: two first consumes both SET the counter.
        let history = vec![consume(0, Outcome::Ok), consume(0, Outcome::Ok), read(0, 5, 3)];
        let verdict = judge("c", &history);
        assert_eq!(verdict.rules(), ["lost-units"]);
    }

    #[test]
    fn a_read_above_every_possible_consume_is_phantom_units() {
        let history = vec![consume(0, Outcome::Ok), consume(0, Outcome::Fail), read(0, 5, 6)];
        assert_eq!(judge("c", &history).rules(), ["phantom-units"]);
    }

    #[test]
    fn a_concurrent_read_is_judged_by_what_had_begun_and_ended() {
        // The read overlaps the second consume: 3 or 6 are both linearizable; 0 is not.
        let history = vec![consume(0, Outcome::Ok), consume(5, Outcome::Ok), read(0, 5, 3)];
        assert!(judge("c", &history).held());
        let history = vec![consume(0, Outcome::Ok), consume(5, Outcome::Ok), read(0, 5, 0)];
        assert_eq!(judge("c", &history).rules(), ["lost-units"]);
    }

    #[test]
    fn instances_reading_different_values_diverge() {
        // Memory state per process: each instance counts only what it was sent.
        let history = vec![
            consume(0, Outcome::Ok),
            op(0, 1, "consume", 0, Outcome::Ok, json!({ "units": 3 })),
            read(0, 5, 6),
            read(1, 5, 6),
            read(2, 5, 0),
        ];
        let verdict = judge("c", &history);
        assert_eq!(verdict.rules(), ["lost-units", "diverging-reads"]);
    }

    #[test]
    fn a_read_above_the_limit_is_over_limit() {
        let history = vec![
            consume(0, Outcome::Ok),
            op(0, 0, "read", 5, Outcome::Ok, json!({ "value": 3, "limit": 2 })),
        ];
        assert_eq!(judge("c", &history).rules(), ["over-limit", "over-limit"]);
    }

    #[test]
    fn a_read_that_found_nothing_leaves_its_instance_unjudged() {
        // A 404 that happens to carry a number is no read of the counter.
        let history = vec![
            consume(0, Outcome::Ok),
            read(0, 5, 3),
            op(0, 1, "read", 5, Outcome::Fail, json!({ "value": 3 })),
        ];
        let verdict = judge("c", &history);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["reads-judged"]);
        assert!(verdict.summary.contains("on 1 of 2 instances"), "{}", verdict.summary);
    }

    #[test]
    fn nothing_accepted_is_nothing_counted() {
        let history = vec![consume(0, Outcome::Fail), consume(0, Outcome::Fail), read(0, 5, 0)];
        let verdict = judge("c", &history);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["units-accepted"]));
        assert_eq!(
            (verdict.evidence["refused"].clone(), verdict.evidence["accepted"].clone()),
            (json!(2), json!(0))
        );
        // Nothing at all: nothing read either.
        assert!(judge("c", &[]).missing().contains(&"reads-judged"));
    }

    #[test]
    fn the_bounds_of_a_read_are_strict_at_its_edges() {
        // A consume that completed the instant the read began may not be in it: 3 is within.
        let history = vec![consume(0, Outcome::Ok), consume(4, Outcome::Ok), read(0, 5, 3)];
        assert!(judge("c", &history).held(), "{:?}", judge("c", &history).violations);
        // One that began the instant the read completed cannot be in it: 6 is too many.
        let history = vec![consume(0, Outcome::Ok), consume(6, Outcome::Ok), read(0, 5, 6)];
        assert_eq!(judge("c", &history).rules(), ["phantom-units"]);
        // Reads that overlap a consume may differ: not quiescent, not diverging.
        let history = vec![consume(0, Outcome::Ok), read(0, 1, 3), read(1, 1, 0)];
        assert!(judge("c", &history).held(), "{:?}", judge("c", &history).violations);
    }

    #[test]
    fn exactly_the_limit_is_within_it() {
        let history = vec![
            consume(0, Outcome::Ok),
            op(0, 0, "read", 5, Outcome::Ok, json!({ "value": 3, "limit": 3 })),
        ];
        assert!(judge("c", &history).held(), "{:?}", judge("c", &history).violations);
    }
}

/// Counter conservation (#3): C consuming requests of one user over every instance, then the
/// counter read back on every instance. Each accepted request adds `units`; the value read lies
/// between the units of the requests known accepted and of those that may have been, is the
/// same on every instance, and never passes the limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterCheck {
    pub name: String,
    /// One consuming request; `{seq}` is its number in the run, so each is distinct.
    pub request: RequestTemplate,
    /// Answers that consumed `units`.
    pub accepted: Recognise,
    /// Answers that consumed nothing (the limit reached); anything else may have consumed.
    #[serde(default)]
    pub refused: Option<Recognise>,
    /// Units one accepted request consumes.
    pub units: u64,
    /// The counter's read-out.
    pub read_back: RequestTemplate,
    /// JSON pointer to the counter in the read-back.
    pub value: String,
    /// JSON pointer to the counter's limit in the read-back, if it has one.
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

impl Kind for CounterCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("request", &self.request), ("read_back", &self.read_back)]
    }

    fn recognisers(&self) -> Vec<(&'static str, &Recognise)> {
        let mut recognisers = vec![("accepted", &self.accepted)];
        recognisers.extend(self.refused.as_ref().map(|refused| ("refused", refused)));
        recognisers
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        let mut pointers = vec![("value", self.value.as_str())];
        pointers.extend(self.limit.as_deref().map(|l| ("limit", l)));
        pointers
    }

    fn validate(&self) -> Result<(), FieldError> {
        at_least_one("units", self.units)
    }

    /// Each consuming request may import.
    fn upstream_calls(&self, defaults: &Defaults) -> u64 {
        (self.concurrency.unwrap_or(defaults.concurrency) * self.rounds.unwrap_or(defaults.rounds)) as u64
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
