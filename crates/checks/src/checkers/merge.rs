//! No lost merge (#6). Each round creates a resource, then C merges into it released together
//! over every instance, each setting a field of its own; afterwards the resource is read back on
//! every instance and must hold every field whose merge was acknowledged. A read-modify-write
//! merge (get, merge in the process, set) lets concurrent merges overwrite each other's fields.
//!
//! With `expires`, every read-back must also show the resource's remaining lifetime within
//! `max_ttl_s`: a merge that writes the value back without its TTL (a plain `SET` inside the
//! transaction) leaves a status that is never forgotten, which only its lifetime shows.

use client::{Target, TargetError};
use profile::Defaults;
use profile::template::fill;
use profile::template::validate_text;
use profile::template::{Recognise, RequestTemplate};
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::burst;
use crate::checkers::support::{self, pointer_string};
use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, PLACEHOLDERS, at_least_one};

pub const KIND: &str = "merge";

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &MergeCheck) -> Result<Verdict, TargetError> {
    let defaults = &target.profile.defaults;
    let concurrency = check.concurrency.unwrap_or(defaults.concurrency);
    let rounds = check.rounds.unwrap_or(defaults.rounds);
    let user = target.user(&check.name).await?;
    let mut history = Vec::new();
    for round in 0..rounds {
        let unique = format!("{}-{}-{round}", check.name, target.run);
        let creator = round % target.instances();
        let answer =
            target.send(creator, Some(&user.tokens[creator]), &check.create, &[("unique", &unique)]).await;
        let id = pointer_string(&answer.body, &check.id);
        let outcome = if id.is_some() { support::by_status(&answer) } else { Outcome::Fail };
        history.push(answer.op(round, creator, "create", outcome, json!({ "id": id })));
        let Some(id) = id.filter(|_| outcome == Outcome::Ok) else { continue };
        let merges = burst::release(concurrency, |i| {
            let target = target.clone();
            let check = check.clone();
            let id = id.clone();
            let instance = i % target.instances();
            let token = user.tokens[instance].clone();
            async move {
                let seq = i.to_string();
                let vars = [("id", id.as_str()), ("seq", seq.as_str())];
                let answer = target.send(instance, Some(&token), &check.request, &vars).await;
                let outcome = support::recognise(&check.merged, None, &answer);
                let field = fill(&check.field, &vars);
                answer.op(round, instance, "merge", outcome, json!({ "field": field }))
            }
        })
        .await;
        history.extend(merges);
        let reads = burst::release(target.instances(), |instance| {
            let target = target.clone();
            let check = check.clone();
            let id = id.clone();
            let token = user.tokens[instance].clone();
            async move {
                let answer = target.send(instance, Some(&token), &check.read_back, &[("id", &id)]).await;
                let fields: Option<Vec<&String>> =
                    answer.body.pointer(&check.fields).and_then(Value::as_object).map(|m| m.keys().collect());
                let mut value = json!({ "fields": fields });
                if let Some(expires) = &check.expires {
                    // Absent and null differ: null is "never expires", absent "not said".
                    value["expires_s"] = answer.body.pointer(expires).cloned().unwrap_or(json!("absent"));
                }
                answer.op(round, instance, "read", support::read(&answer), value)
            }
        })
        .await;
        history.extend(reads);
    }
    Ok(judge(&check.name, check.max_ttl_s, &history))
}

/// Judges rounds (processes) of a `create`, its `merge`s and the `read`s after them; with
/// `max_ttl_s`, each read's `expires_s` too.
pub fn judge(name: &str, max_ttl_s: Option<u64>, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let mut rounds: Vec<usize> = history.iter().map(|op| op.process).collect();
    rounds.sort_unstable();
    rounds.dedup();
    let (mut acknowledged, mut lost_total, mut reads_judged) = (0, 0, 0);
    let (mut unreadable, mut unstated, mut most_merged) = (0, 0, 0);
    for &round in &rounds {
        let ops: Vec<&Op> = history.iter().filter(|op| op.process == round).collect();
        if ops.iter().any(|op| op.action == "create" && op.outcome != Outcome::Ok) {
            // Nothing to merge into: the round gathers no evidence (the requirement below).
            continue;
        }
        let merges: Vec<&Op> = ops.iter().copied().filter(|op| op.action == "merge").collect();
        let merged: Vec<&Op> = merges.iter().copied().filter(|op| op.outcome == Outcome::Ok).collect();
        acknowledged += merged.len();
        most_merged = most_merged.max(merged.len());
        let refused: Vec<&Op> = merges.iter().copied().filter(|op| op.outcome == Outcome::Fail).collect();
        if !refused.is_empty() {
            verdict.violate(
                "merge-refused",
                format!("round {round}: {} of {} merges were refused", refused.len(), merges.len()),
                refused.iter().map(|op| (*op).clone()),
            );
        }
        for read in ops.iter().filter(|op| op.action == "read") {
            match read.outcome {
                Outcome::Ok => {}
                Outcome::Fail => {
                    verdict.violate(
                        "not-visible",
                        format!(
                            "round {round}: the read-back on instance {} answered {}",
                            read.instance,
                            read.status.map_or("nothing".to_owned(), |s| s.to_string())
                        ),
                        [(*read).clone()],
                    );
                    continue;
                }
                Outcome::Unknown => continue,
            }
            // A read-back without the fields object cannot show which merges survived.
            if !read.value["fields"].is_array() {
                unreadable += 1;
                continue;
            }
            reads_judged += 1;
            if read.value["expires_s"] == "absent" {
                unstated += 1;
            } else if let Some(max) = max_ttl_s {
                let expires = &read.value["expires_s"];
                let within = expires.as_u64().is_some_and(|s| s <= max);
                if !within {
                    let said = match expires {
                        Value::Null => "never expires".to_owned(),
                        Value::Number(n) => format!("expires in {n} s"),
                        _ => "shows no lifetime".to_owned(),
                    };
                    let rule = if expires.is_number() { "lifetime-over-bound" } else { "never-expires" };
                    verdict.violate(
                        rule,
                        format!(
                            "round {round}: the read-back on instance {} {said}; merged resources must \
                             expire within {max} s",
                            read.instance
                        ),
                        [(*read).clone()],
                    );
                }
            }
            let present: Vec<&str> = read.value["fields"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let lost: Vec<&Op> = merged
                .iter()
                .copied()
                .filter(|op| op.value["field"].as_str().is_none_or(|f| !present.contains(&f)))
                .collect();
            if !lost.is_empty() {
                lost_total += lost.len();
                let names: Vec<&str> =
                    lost.iter().filter_map(|op| op.value["field"].as_str()).take(5).collect();
                verdict.violate(
                    "lost-field",
                    format!(
                        "round {round}: instance {} reads {} of {} acknowledged fields; lost {names:?}{}",
                        read.instance,
                        merged.len() - lost.len(),
                        merged.len(),
                        if lost.len() > names.len() { ", …" } else { "" }
                    ),
                    std::iter::once((*read).clone()).chain(lost.iter().map(|op| (*op).clone())),
                );
            }
        }
    }
    let creates: Vec<&Op> = history.iter().filter(|op| op.action == "create").collect();
    let failed: Vec<String> = creates
        .iter()
        .filter(|op| op.outcome != Outcome::Ok)
        .map(|op| op.status.map_or("no answer".to_owned(), |s| s.to_string()))
        .collect();
    verdict.require(
        "resources-created",
        failed.is_empty(),
        format!(
            "{} of {} creations answered: {}",
            creates.len() - failed.len(),
            creates.len(),
            failed.join(", ")
        ),
        "the create request must answer 2xx with the id at `id`",
    );
    verdict.require(
        "reads-judged",
        reads_judged > 0 && unreadable == 0,
        format!("{reads_judged} read-backs judged, {unreadable} without the fields object at `fields`"),
        "the read-back must answer 2xx with the merged fields at `fields`",
    );
    verdict.require(
        "merges-concurrent",
        most_merged >= 2,
        format!("{acknowledged} merges acknowledged, at most {most_merged} into one resource"),
        "at least two concurrent merges must be acknowledged (recognised by `merged`) for one to be lost",
    );
    if max_ttl_s.is_some() {
        verdict.require(
            "lifetimes-stated",
            unstated == 0,
            format!("{unstated} read-backs stated no lifetime at `expires`"),
            "the read-back must carry the seconds left (or null for never) at `expires`",
        );
    }
    verdict.bound_unknown(history, MAX_UNKNOWN);
    verdict.evidence = json!({
        "rounds": rounds.len(),
        "acknowledged_merges": acknowledged,
        "reads_judged": reads_judged,
        "lost_fields": lost_total,
    });
    verdict.summarize(format!(
        "{} rounds: all {acknowledged} acknowledged fields read back on every instance",
        rounds.len()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkers::support::testing::op;

    fn history(read_fields: &[&str]) -> Vec<Op> {
        vec![
            op(0, 0, "create", 0, Outcome::Ok, json!({ "id": "v" })),
            op(0, 0, "merge", 1, Outcome::Ok, json!({ "field": "f0" })),
            op(0, 1, "merge", 1, Outcome::Ok, json!({ "field": "f1" })),
            op(0, 0, "read", 5, Outcome::Ok, json!({ "fields": read_fields })),
        ]
    }

    #[test]
    fn every_field_read_back_passes() {
        let verdict = judge("m", None, &history(&["state", "f0", "f1"]));
        assert!(verdict.held(), "{:?}", verdict.violations);
    }

    #[test]
    fn a_missing_field_is_lost() {
        // ReadModifyWrite: the second merge's set overwrote the first's field.
        let verdict = judge("m", None, &history(&["state", "f1"]));
        assert_eq!(verdict.rules(), ["lost-field"]);
        assert!(verdict.violations[0].detail.contains("f0"), "{:?}", verdict.violations);
    }

    #[test]
    fn an_unacknowledged_merge_may_be_missing() {
        let mut h = history(&["f0"]);
        h[2].outcome = Outcome::Unknown;
        let verdict = judge("m", None, &h);
        assert!(verdict.rules().is_empty(), "{:?}", verdict.violations);
        assert_eq!(
            verdict.missing(),
            ["merges-concurrent", "unknown-within-bound"],
            "one of a handful of operations unknown, and one merge acknowledged: none could be lost"
        );
    }

    #[test]
    fn a_read_back_that_finds_nothing_is_not_visible() {
        let mut h = history(&["f0", "f1"]);
        h.push(op(0, 2, "read", 5, Outcome::Fail, json!({ "fields": null })));
        assert_eq!(judge("m", None, &h).rules(), ["not-visible"]);
    }

    #[test]
    fn a_read_back_without_a_lifetime_never_expires() {
        let mut h = history(&["f0", "f1"]);
        h[3].value["expires_s"] = json!(86_400);
        assert!(judge("m", Some(86_400), &h).held());
        // MergeWithoutTtl: the merge's SET dropped the TTL.
        h[3].value["expires_s"] = json!(null);
        let verdict = judge("m", Some(86_400), &h);
        assert_eq!(verdict.rules(), ["never-expires"]);
        assert!(verdict.violations[0].detail.contains("never expires"), "{:?}", verdict.violations);
        // A lifetime not stated at all is not "never": nothing to judge it by.
        h[3].value["expires_s"] = json!("absent");
        let verdict = judge("m", Some(86_400), &h);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["lifetimes-stated"]));
        h[3].value["expires_s"] = json!(86_401);
        assert_eq!(judge("m", Some(86_400), &h).rules(), ["lifetime-over-bound"]);
        // Without the bound the lifetime is not judged.
        assert!(judge("m", None, &h).held());
    }

    #[test]
    fn a_refused_merge_and_a_failed_create_are_reported() {
        let mut h = history(&["f0"]);
        h[2].outcome = Outcome::Fail;
        assert_eq!(judge("m", None, &h).rules(), ["merge-refused"]);
        let h = vec![op(0, 0, "create", 0, Outcome::Fail, json!({ "id": null }))];
        let verdict = judge("m", None, &h);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["resources-created", "reads-judged", "merges-concurrent"]);
    }

    #[test]
    fn the_evidence_counts_merges_reads_and_lost_fields() {
        assert_eq!(
            judge("m", None, &history(&["f0", "f1"])).evidence,
            json!({ "acknowledged_merges": 2, "lost_fields": 0, "reads_judged": 1, "rounds": 1 })
        );
        assert_eq!(judge("m", None, &history(&["f1"])).evidence["lost_fields"], 1);
        // A read-back without the fields object: counted apart, judged for nothing.
        let mut h = history(&["f0", "f1"]);
        h.push(op(0, 2, "read", 5, Outcome::Ok, json!({ "fields": null })));
        let verdict = judge("m", None, &h);
        assert!(
            verdict.summary.contains("1 read-backs judged, 1 without the fields object"),
            "{}",
            verdict.summary
        );
        // A lifetime over the bound says it.
        let mut h = history(&["f0", "f1"]);
        h[3].value["expires_s"] = json!(86_401);
        let verdict = judge("m", Some(86_400), &h);
        assert!(verdict.violations[0].detail.contains("expires in 86401 s"), "{:?}", verdict.violations);
        h[3].value["expires_s"] = json!("absent");
        assert!(judge("m", Some(86_400), &h).summary.contains("1 read-backs stated no lifetime"));
    }
}

/// No lost merge (#6): C concurrent merges into one resource, each setting a field of its own,
/// then the resource read back on every instance holds every acknowledged field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeCheck {
    pub name: String,
    /// Creates the resource merged into; `{unique}` is new for each round.
    pub create: RequestTemplate,
    /// JSON pointer to the created resource's id.
    pub id: String,
    /// One merge: `{id}` is the resource, `{seq}` the request's number in its round.
    pub request: RequestTemplate,
    /// Answers that acknowledge the merge.
    pub merged: Recognise,
    /// The name of the field a merge sets, `{seq}` filled as in its request.
    pub field: String,
    /// Reads the resource back; `{id}`.
    pub read_back: RequestTemplate,
    /// JSON pointer to the object holding the fields in the read-back.
    pub fields: String,
    /// JSON pointer, in the read-back, to the seconds the resource has left (a number; null
    /// when it never expires). With it, every read-back must show a lifetime within `max_ttl_s`.
    #[serde(default)]
    pub expires: Option<String>,
    /// The longest lifetime a merged resource may have, in seconds (with `expires`).
    #[serde(default)]
    pub max_ttl_s: Option<u64>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

impl Kind for MergeCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("create", &self.create), ("request", &self.request), ("read_back", &self.read_back)]
    }

    fn recognisers(&self) -> Vec<(&'static str, &Recognise)> {
        vec![("merged", &self.merged)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        let mut pointers = vec![("id", self.id.as_str()), ("fields", self.fields.as_str())];
        pointers.extend(self.expires.as_deref().map(|e| ("expires", e)));
        pointers
    }

    fn validate(&self) -> Result<(), FieldError> {
        validate_text(&self.field, PLACEHOLDERS)
            .map_err(|e| FieldError::new("field", format!("field: {e}")))?;
        if !self.field.contains("{seq}") {
            return Err(FieldError::new(
                "field",
                format!("field {:?} must contain {{seq}}: each merge sets its own field", self.field),
            ));
        }
        match (&self.expires, self.max_ttl_s) {
            (Some(_), None) => Err(FieldError::new("expires", "expires and max_ttl_s go together")),
            (None, Some(_)) => Err(FieldError::new("max_ttl_s", "expires and max_ttl_s go together")),
            (_, Some(ttl)) => at_least_one("max_ttl_s", ttl),
            (None, None) => Ok(()),
        }
    }

    /// One resource created a round.
    fn upstream_calls(&self, defaults: &Defaults) -> u64 {
        self.rounds.unwrap_or(defaults.rounds) as u64
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
