//! Unique creation (#5): C concurrent creations of one resource (the same `{unique}` value),
//! spread over every instance, must yield exactly one `created` and exactly one
//! `should_process`, every answer must name the same id, and the read-back on every instance
//! must find it. Unknown answers (timeouts) widen the bounds: at most one, at least one minus
//! the unknowns.

use client::{Target, TargetError};
use profile::Defaults;
use profile::template::{Recognise, RequestTemplate};
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::burst;
use crate::checkers::support;
use crate::history::{Op, Outcome, Record};
use crate::kind::Kind;

pub const KIND: &str = "unique-creation";

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &UniqueCreationCheck) -> Result<Verdict, TargetError> {
    let defaults = &target.profile.defaults;
    let concurrency = check.concurrency.unwrap_or(defaults.concurrency);
    let rounds = check.rounds.unwrap_or(defaults.rounds);
    let user = target.user(&check.name).await?;
    let mut history = Vec::new();
    for round in 0..rounds {
        let unique = format!("{}-{}-{round}", check.name, target.run);
        let answers = burst::release(concurrency, |i| {
            let target = target.clone();
            let check = check.clone();
            let unique = unique.clone();
            let instance = i % target.instances();
            let token = user.tokens[instance].clone();
            async move {
                let answer =
                    target.send(instance, Some(&token), &check.request, &[("unique", &unique)]).await;
                let outcome = match answer.status {
                    Some(s) if (200..300).contains(&s) => Outcome::Ok,
                    Some(s) if (400..500).contains(&s) => Outcome::Fail,
                    _ => Outcome::Unknown,
                };
                let created = answer.status.is_some_and(|s| check.created.matches(s, &answer.body));
                let process = answer.status.is_some_and(|s| check.should_process.matches(s, &answer.body));
                // A numeric id (`"pk": 17`) as its text, so numbers and strings compare alike.
                let id = support::pointer_string(&answer.body, &check.id);
                let mut value = json!({ "created": created, "should_process": process, "id": id });
                if let Some(attempt) = &check.attempt {
                    value["attempt"] = json!(support::pointer_string(&answer.body, attempt));
                }
                answer.op(round, instance, "create", outcome, value)
            }
        })
        .await;
        // Read back the id every answer named, on every instance.
        let ids: Vec<String> = {
            let mut ids: Vec<String> =
                answers.iter().filter_map(|op| op.value["id"].as_str().map(str::to_owned)).collect();
            ids.sort();
            ids.dedup();
            ids
        };
        history.extend(answers);
        for id in ids {
            for instance in 0..target.instances() {
                let answer = target
                    .send(instance, Some(&user.tokens[instance]), &check.read_back, &[("id", &id)])
                    .await;
                let outcome = match answer.status {
                    Some(s) if (200..300).contains(&s) => Outcome::Ok,
                    Some(_) => Outcome::Fail,
                    None => Outcome::Unknown,
                };
                history.push(answer.op(round, instance, "read-back", outcome, json!({ "id": id })));
            }
        }
    }
    Ok(judge(&check.name, &history))
}

/// Judges a history of rounds of creations and read-backs.
pub fn judge(name: &str, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let mut rounds: Vec<usize> = history.iter().map(|op| op.process).collect();
    rounds.sort_unstable();
    rounds.dedup();
    let (mut duplicates, mut missing) = (0, 0);
    for round in &rounds {
        let creates: Vec<&Op> =
            history.iter().filter(|op| op.process == *round && op.action == "create").collect();
        let unknown = creates.iter().filter(|op| op.outcome == Outcome::Unknown).count();
        let created: Vec<&Op> = creates.iter().copied().filter(|op| op.value["created"] == true).collect();
        let processing: Vec<&Op> =
            creates.iter().copied().filter(|op| op.value["should_process"] == true).collect();
        let mut ids: Vec<&str> = creates.iter().filter_map(|op| op.value["id"].as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        if created.len() > 1 {
            duplicates += 1;
            verdict.violate(
                "duplicate-creation",
                format!("round {round}: {} requests were told they created the resource", created.len()),
                created.iter().map(|op| (*op).clone()),
            );
        }
        // One processor per attempt: a stack whose processing failed within the burst may
        // rightly hand a retry (the next attempt) to a later request.
        let mut attempts: Vec<&Value> = processing.iter().map(|op| &op.value["attempt"]).collect();
        attempts.sort_by_key(|a| a.to_string());
        attempts.dedup();
        for attempt in attempts {
            let same: Vec<&Op> =
                processing.iter().copied().filter(|op| &op.value["attempt"] == attempt).collect();
            if same.len() > 1 {
                let what = if attempt.is_null() { "it".to_owned() } else { format!("attempt {attempt}") };
                verdict.violate(
                    "duplicate-processing",
                    format!("round {round}: {} requests were told to process {what}", same.len()),
                    same.iter().map(|op| (*op).clone()),
                );
            }
        }
        // Answered and none created: a creation lost. Every one refused (4xx): nothing to
        // judge (`rounds-judged`).
        let refused = creates.iter().filter(|op| op.outcome == Outcome::Fail).count();
        if created.is_empty() && unknown == 0 && refused < creates.len() {
            missing += 1;
            verdict.violate("no-creation", format!("round {round}: no request created the resource"), []);
        }
        if ids.len() > 1 {
            verdict.violate(
                "several-resources",
                format!("round {round}: the answers name {} different ids: {ids:?}", ids.len()),
                creates.iter().map(|op| (*op).clone()),
            );
        }
        let lost: Vec<&Op> = history
            .iter()
            .filter(|op| op.process == *round && op.action == "read-back" && op.outcome == Outcome::Fail)
            .collect();
        if !lost.is_empty() {
            verdict.violate(
                "not-visible",
                format!("round {round}: the created resource is not found by {} read-backs", lost.len()),
                lost.iter().map(|op| (*op).clone()),
            );
        }
    }
    let judged = rounds
        .iter()
        .filter(|round| {
            let creates = history.iter().filter(|op| op.process == **round && op.action == "create");
            creates.clone().any(|op| op.outcome == Outcome::Ok)
        })
        .count();
    let read_back = history.iter().filter(|op| op.action == "read-back" && op.outcome == Outcome::Ok).count();
    verdict.require(
        "read-back",
        read_back > 0,
        format!("{read_back} read-backs found the created resource"),
        "the answers must name the resource's id at `id`, and `read_back` answer 2xx",
    );
    verdict.require(
        "rounds-judged",
        judged > 0,
        format!("{judged} of {} rounds had a recognised answer to the creation", rounds.len()),
        "the create request must answer with `created` and `should_process` recognisable",
    );
    verdict.bound_unknown(history, MAX_UNKNOWN);
    verdict.evidence = json!({
        "rounds": rounds.len(),
        "rounds_judged": judged,
        "duplicate_rounds": duplicates,
        "rounds_without_creation": missing,
    });
    verdict.summarize(format!("{} rounds: one creation, one processor, visible everywhere", rounds.len()))
}

/// Exactly one `created` and one `should_process` among C concurrent creations of one
/// resource, and the read-back finds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniqueCreationCheck {
    pub name: String,
    /// `{unique}` is the same for every request of a burst and new for each burst.
    pub request: RequestTemplate,
    pub created: Recognise,
    pub should_process: Recognise,
    /// JSON pointer to the created resource's id in the answer.
    pub id: String,
    /// JSON pointer to the processing attempt the answer is about: with it, one processor is
    /// required per attempt, so a retry claimed after a failure within the burst is no
    /// duplicate.
    #[serde(default)]
    pub attempt: Option<String>,
    /// `{id}` is the id read from the answers.
    pub read_back: RequestTemplate,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

impl Kind for UniqueCreationCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("request", &self.request), ("read_back", &self.read_back)]
    }

    fn recognisers(&self) -> Vec<(&'static str, &Recognise)> {
        vec![("created", &self.created), ("should_process", &self.should_process)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        let mut pointers = vec![("id", self.id.as_str())];
        pointers.extend(self.attempt.as_deref().map(|a| ("attempt", a)));
        pointers
    }

    /// One import a round.
    fn upstream_calls(&self, defaults: &Defaults) -> u64 {
        self.rounds.unwrap_or(defaults.rounds) as u64
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}

#[cfg(test)]
mod tests {
    //! The judge on synthetic histories: what the correct stack produces holds, each rule is
    //! shown broken on the history its mutant produces, and missing evidence is inconclusive.

    use serde_json::json;

    use super::*;

    fn op(process: usize, f: &'static str, at: u64, outcome: Outcome, value: serde_json::Value) -> Op {
        Op {
            process,
            instance: 0,
            action: f.into(),
            invoke_us: at,
            complete_us: at + 500,
            status: Some(200),
            outcome,
            value,
        }
    }

    fn create(round: usize, created: bool, process: bool, id: &str) -> Op {
        op(
            round,
            "create",
            0,
            Outcome::Ok,
            json!({ "created": created, "should_process": process, "id": id }),
        )
    }

    fn read_back(round: usize, outcome: Outcome) -> Op {
        op(round, "read-back", 1_000, outcome, json!({ "id": "v1" }))
    }

    #[test]
    fn unique_one_creation_one_processor_passes() {
        let mut history = vec![create(0, true, true, "v1")];
        history.extend((0..31).map(|_| create(0, false, false, "v1")));
        history.push(read_back(0, Outcome::Ok));
        let verdict = judge("u", &history);
        assert!(verdict.held(), "{:?}", verdict.violations);
    }

    #[test]
    fn a_retry_claimed_after_a_failure_in_the_burst_is_no_duplicate_when_attempts_are_read() {
        // The first processing failed within the burst; a later request claimed attempt 2.
        let with_attempt = |op: Op, attempt: u32| {
            let mut op = op;
            op.value["attempt"] = json!(attempt.to_string());
            op
        };
        let mut history = vec![with_attempt(create(0, true, true, "v1"), 1)];
        history.extend((0..20).map(|_| with_attempt(create(0, false, false, "v1"), 1)));
        history.push(with_attempt(create(0, false, true, "v1"), 2));
        history.push(read_back(0, Outcome::Ok));
        let verdict = judge("u", &history);
        assert!(verdict.held(), "{:?}", verdict.violations);
        // Two processors of one attempt are a duplicate, named by the attempt.
        history.push(with_attempt(create(0, false, true, "v1"), 2));
        let verdict = judge("u", &history);
        assert_eq!(verdict.rules(), ["duplicate-processing"]);
        assert_eq!(verdict.violations[0].detail, "round 0: 2 requests were told to process attempt \"2\"");
        // Without attempts read, two processors in a round are a duplicate whatever the cause.
        let mut unread = vec![create(0, true, true, "v1"), create(0, false, true, "v1")];
        unread.push(read_back(0, Outcome::Ok));
        let verdict = judge("u", &unread);
        assert_eq!(verdict.violations[0].detail, "round 0: 2 requests were told to process it");
    }

    #[test]
    fn unique_mutant_check_then_insert_history_is_duplicate_creation() {
        let mut history: Vec<Op> = (0..3).map(|_| create(0, true, true, "v1")).collect();
        history.extend((0..29).map(|_| create(0, false, false, "v1")));
        history.push(read_back(0, Outcome::Ok));
        let verdict = judge("u", &history);
        assert_eq!(
            verdict.rules(),
            ["duplicate-creation", "duplicate-processing"],
            "{:?}",
            verdict.violations
        );
    }

    #[test]
    fn unique_a_retry_claimed_twice_is_duplicate_processing() {
        let history =
            vec![create(0, false, true, "v1"), create(0, false, true, "v1"), read_back(0, Outcome::Ok)];
        let verdict = judge("u", &history);
        assert!(verdict.rules().contains(&"duplicate-processing"), "{:?}", verdict.violations);
    }

    #[test]
    fn unique_two_ids_and_an_invisible_resource_are_violations() {
        let history = vec![
            create(0, true, true, "v1"),
            create(0, false, false, "v2"),
            read_back(0, Outcome::Ok),
            read_back(0, Outcome::Fail),
        ];
        let verdict = judge("u", &history);
        assert_eq!(verdict.rules(), ["several-resources", "not-visible"], "{:?}", verdict.violations);
    }

    #[test]
    fn unique_no_creation_without_unknowns_is_a_violation() {
        let history = vec![create(0, false, false, "v1"), read_back(0, Outcome::Ok)];
        let verdict = judge("u", &history);
        assert_eq!(verdict.rules(), ["no-creation"], "{:?}", verdict.violations);
    }

    #[test]
    fn unique_creations_nobody_answered_are_inconclusive() {
        let unanswered =
            |round| Op { status: Some(503), ..op(round, "create", 0, Outcome::Unknown, json!({})) };
        let history: Vec<Op> = (0..3).flat_map(|round| (0..8).map(move |_| unanswered(round))).collect();
        let verdict = judge("u", &history);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["read-back", "rounds-judged", "unknown-within-bound"]);
        assert!(verdict.summary.contains("0 of 3 rounds"), "{}", verdict.summary);
    }

    #[test]
    fn the_evidence_and_summary_say_what_was_seen() {
        let mut history = vec![create(0, true, true, "v1")];
        history.extend((0..31).map(|_| create(0, false, false, "v1")));
        history.push(read_back(0, Outcome::Ok));
        let v = judge("u", &history);
        assert_eq!(
            v.evidence,
            json!({ "duplicate_rounds": 0, "rounds": 1, "rounds_judged": 1, "rounds_without_creation": 0 })
        );
        assert_eq!(v.summary, "1 rounds: one creation, one processor, visible everywhere");
        assert_eq!(
            v.requirements.iter().map(|r| r.observed.as_str()).collect::<Vec<_>>(),
            [
                "1 read-backs found the created resource",
                "1 of 1 rounds had a recognised answer to the creation",
                "every one of 33 operations had a recognised answer"
            ]
        );
        let mut h: Vec<Op> = (0..3).map(|_| create(0, true, true, "v1")).collect();
        h.push(read_back(0, Outcome::Ok));
        assert_eq!(judge("u", &h).evidence["duplicate_rounds"], 1);
        // Rounds are told apart: another round's creation is not this one's.
        let mut h = vec![create(0, true, true, "v1"), create(1, true, true, "v2"), read_back(0, Outcome::Ok)];
        h.push(read_back(1, Outcome::Ok));
        assert!(judge("u", &h).held(), "{:?}", judge("u", &h).violations);
        // Refused to a man (4xx): nothing judged; one answered without creating: a creation lost.
        let refused = |round| op(round, "create", 0, Outcome::Fail, json!({}));
        let verdict = judge("u", &[refused(0), refused(0)]);
        assert!(verdict.rules().is_empty(), "{:?}", verdict.violations);
        let verdict = judge("u", &[refused(0), create(0, false, false, "v1"), read_back(0, Outcome::Ok)]);
        assert_eq!(verdict.rules(), ["no-creation"]);
        assert_eq!(verdict.evidence["rounds_without_creation"], 1);
        // A read-back that found nothing is no evidence of the resource.
        let verdict = judge("u", &[create(0, true, true, "v1"), read_back(0, Outcome::Unknown)]);
        assert!(verdict.missing().contains(&"read-back"), "{:?}", verdict.missing());
    }
}
