//! Cache invalidation seen by every instance (#14). A resource is created, then each round:
//! its cached read is warmed on every instance (read until the cache header names a layer, at
//! most twice), the value is written on one instance (a different one each round), and as soon
//! as the write has answered the read is sent to every instance at once. None may serve a value
//! older than the one written: an instance that keeps its own copy without hearing of the
//! write (a local-only invalidation, a per-process cache) serves the old one.
//!
//! With `[defaults] instance_header` (an answer header naming the process that gave it), the
//! reads are known to have reached every process: the warming reads go on until every process
//! has served from its cache, the reads after a write until every process has answered, each
//! within a bound; a process never reached leaves the check inconclusive.
//!
//! An instance that cannot find the resource at all (records kept per process) breaks a rule
//! of its own, `not-visible`: a stack whose instances do not share the resource cannot be said
//! to invalidate it everywhere.

use client::{Answer, Target, TargetError};
use profile::template::{Recognise, RequestTemplate};
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

use crate::burst;
use crate::checkers::support::{self, pointer_string};
use crate::history::{Op, Outcome, Record};
use crate::kind::Kind;

pub const KIND: &str = "invalidation";

/// Reads per instance to warm its cache: a miss fills the cache of the process that answered
/// it, so with `processes` behind a URL at most `processes` misses come before every process
/// is warm — as long as each read reaches a process, which fresh connections do at random;
/// the instances (each URL repeated as often as reaches every process) warm the rest.
fn warm_reads(processes: usize) -> usize {
    processes + 1
}

/// How the reads know which process answered: the header naming it, and the processes behind
/// each target URL.
#[derive(Debug, Clone)]
struct Reach {
    header: String,
    processes: usize,
    /// The target's distinct URLs.
    urls: Vec<String>,
}

impl Reach {
    /// Reads beyond the planned ones, at most, spent finding a process not yet reached: enough
    /// that a process the connections reach at random is missed with probability below 10⁻⁶.
    fn extra_reads(&self) -> usize {
        3 * client::reads_to_reach(self.processes)
    }

    /// Whether every URL's every process is among `seen`.
    fn covered(&self, seen: &Reached<'_>) -> bool {
        self.urls.iter().all(|url| seen.get(url.as_str()).is_some_and(|names| names.len() >= self.processes))
    }
}

/// The processes named behind each URL.
type Reached<'a> = BTreeMap<&'a str, BTreeSet<&'a str>>;

/// The read as an operation: what it should serve, what it must not, what it served, and —
/// with an instance header — which process served it.
#[allow(clippy::too_many_arguments)]
fn record(
    check: &InvalidationCheck,
    reach: Option<&Reach>,
    url: &str,
    answer: &Answer,
    round: usize,
    instance: usize,
    f: &'static str,
    expected: &str,
    older: &[String],
) -> Op {
    let served = answer.body.pointer(&check.value).cloned().unwrap_or(Value::Null);
    let cache = answer.header(&check.cache_header).map(str::to_owned);
    let cached =
        cache.as_deref().is_some_and(|layer| !check.miss.iter().any(|miss| miss.eq_ignore_ascii_case(layer)));
    let mut value =
        json!({ "expected": expected, "older": older, "served": served, "cache": cache, "cached": cached });
    if let Some(reach) = reach {
        value["served_by"] = json!(answer.header(&reach.header));
        value["processes"] = json!(reach.processes);
        value["url"] = json!(url);
    }
    answer.op(round, instance, f, support::read(answer), value)
}

/// The processes named behind each URL by the reads `pick` selects that answered (and, with
/// `cached`, served from a cache).
fn reached<'a>(history: &'a [Op], pick: impl Fn(&Op) -> bool, cached: bool) -> Reached<'a> {
    let mut seen = Reached::new();
    for op in history.iter().filter(|op| pick(op) && op.outcome == Outcome::Ok) {
        if cached && op.value["cached"] != true {
            continue;
        }
        if let (Some(url), Some(name)) = (op.value["url"].as_str(), op.value["served_by"].as_str()) {
            seen.entry(url).or_default().insert(name);
        }
    }
    seen
}

/// `round`'s reads of `action`.
fn of(round: usize, action: &'static str) -> impl Fn(&Op) -> bool {
    move |op| op.process == round && op.action == action
}

/// The reads beyond the planned ones that an instance header asks for.
struct Reads<'a> {
    target: &'a Target,
    check: &'a InvalidationCheck,
    reach: &'a Reach,
    tokens: &'a [String],
    id: &'a str,
}

impl Reads<'_> {
    /// Reads round robin over the instances, recorded as `action` of `round`, until every
    /// process behind every URL has answered one (a warming read: from its cache), at most
    /// [`Reach::extra_reads`]; none when no answer of the round names a process.
    async fn until_covered(
        &self,
        history: &mut Vec<Op>,
        round: usize,
        action: &'static str,
        expected: &str,
        older: &[String],
    ) {
        let cached = action == "warm";
        for extra in 0..self.reach.extra_reads() {
            if reached(history, of(round, action), false).is_empty()
                || self.reach.covered(&reached(history, of(round, action), cached))
            {
                return;
            }
            let instance = extra % self.target.instances();
            let vars = [("id", self.id)];
            let answer =
                self.target.send(instance, Some(&self.tokens[instance]), &self.check.read, &vars).await;
            let url = &self.target.urls[instance];
            let op =
                record(self.check, Some(self.reach), url, &answer, round, instance, action, expected, older);
            history.push(op);
        }
    }
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &InvalidationCheck) -> Result<Verdict, TargetError> {
    let rounds = check.rounds.unwrap_or(target.profile.defaults.rounds);
    let reach =
        target.profile.defaults.instance_header.clone().filter(|header| !header.is_empty()).map(|header| {
            let mut urls = target.urls.clone();
            urls.sort();
            urls.dedup();
            Reach { header, processes: target.processes(), urls }
        });
    let user = target.user(&check.name).await?;
    let value_of = |k: usize| format!("{}-{}-v{k}", check.name, target.run);
    let mut history = Vec::new();
    let first = value_of(0);
    let answer = target.send(0, Some(&user.tokens[0]), &check.create, &[("value", &first)]).await;
    let id = pointer_string(&answer.body, &check.id);
    let outcome = if id.is_some() { support::by_status(&answer) } else { Outcome::Fail };
    history.push(answer.op(0, 0, "create", outcome, json!({ "id": id, "value": first })));
    let Some(id) = id.filter(|_| outcome == Outcome::Ok) else {
        return Ok(judge(&check.name, &history));
    };
    let mut current = first;
    let mut older: Vec<String> = Vec::new();
    for round in 0..rounds {
        for instance in 0..target.instances() {
            for _ in 0..warm_reads(target.processes()) {
                let answer =
                    target.send(instance, Some(&user.tokens[instance]), &check.read, &[("id", &id)]).await;
                let op = record(
                    check,
                    reach.as_ref(),
                    &target.urls[instance],
                    &answer,
                    round,
                    instance,
                    "warm",
                    &current,
                    &older,
                );
                let done = op.value["cached"] == true || op.outcome != Outcome::Ok;
                history.push(op);
                if done {
                    break;
                }
            }
        }
        // Until every process has served from its cache (when the answers name them at all).
        if let Some(reach) = &reach {
            let reads = Reads { target, check, reach, tokens: &user.tokens, id: &id };
            reads.until_covered(&mut history, round, "warm", &current, &older).await;
        }
        let writer = round % target.instances();
        let next = value_of(round + 1);
        let vars = [("id", id.as_str()), ("value", next.as_str())];
        let answer = target.send(writer, Some(&user.tokens[writer]), &check.write, &vars).await;
        let outcome = support::recognise(&check.written, None, &answer);
        history.push(answer.op(round, writer, "write", outcome, json!({ "value": next })));
        match outcome {
            Outcome::Ok => older.push(std::mem::replace(&mut current, next)),
            Outcome::Fail => {}
            // Whether the value changed is unknown: nothing after it can be judged.
            Outcome::Unknown => break,
        }
        let reads = burst::release(target.instances(), |instance| {
            let target = target.clone();
            let check = check.clone();
            let id = id.clone();
            let token = user.tokens[instance].clone();
            let current = current.clone();
            let older = older.clone();
            let reach = reach.clone();
            async move {
                let answer = target.send(instance, Some(&token), &check.read, &[("id", &id)]).await;
                record(
                    &check,
                    reach.as_ref(),
                    &target.urls[instance],
                    &answer,
                    round,
                    instance,
                    "read",
                    &current,
                    &older,
                )
            }
        })
        .await;
        history.extend(reads);
        // Until every process has answered a read after the write (a stale entry stays stale:
        // a later read is judged alike).
        if let Some(reach) = &reach {
            let reads = Reads { target, check, reach, tokens: &user.tokens, id: &id };
            reads.until_covered(&mut history, round, "read", &current, &older).await;
        }
    }
    Ok(judge(&check.name, &history))
}

/// Judges a `create`, then rounds of `warm` reads, a `write` and `read`s after it; each read
/// carries the value it should serve and the older ones it must not.
pub fn judge(name: &str, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    if let Some(create) = history.iter().find(|op| op.action == "create" && op.outcome != Outcome::Ok) {
        verdict.require(
            "resource-created",
            false,
            format!(
                "creating the resource answered {}",
                create.status.map_or("nothing".to_owned(), |s| s.to_string())
            ),
            "the create request must answer 2xx with the id at `id`",
        );
        return verdict.summarize("never");
    }
    let (mut judged_after_write, mut stale, mut writes) = (0, 0, 0);
    for op in history {
        match (op.action.as_str(), op.outcome) {
            ("write", Outcome::Ok) => writes += 1,
            ("write", Outcome::Fail) => verdict.violate(
                "write-refused",
                format!(
                    "round {}: the write on instance {} answered {}",
                    op.process,
                    op.instance,
                    op.status.map_or("nothing".to_owned(), |s| s.to_string())
                ),
                [op.clone()],
            ),
            ("warm" | "read", Outcome::Fail) => verdict.violate(
                "not-visible",
                format!(
                    "round {}: the {} on instance {} answered {}",
                    op.process,
                    if op.action == "warm" { "warming read" } else { "read after the write" },
                    op.instance,
                    op.status.map_or("nothing".to_owned(), |s| s.to_string())
                ),
                [op.clone()],
            ),
            ("warm" | "read", Outcome::Ok) => {
                if op.action == "read" {
                    judged_after_write += 1;
                }
                let served = &op.value["served"];
                let expected = &op.value["expected"];
                if served == expected {
                    continue;
                }
                let older = op.value["older"].as_array().is_some_and(|o| o.contains(served));
                let when =
                    if op.action == "warm" { "before the round's write" } else { "after the write answered" };
                if older {
                    stale += 1;
                    verdict.violate(
                        "stale-read",
                        format!(
                            "round {}: instance {} served {served} {when}, not {expected} (cache: {})",
                            op.process, op.instance, op.value["cache"]
                        ),
                        [op.clone()],
                    );
                } else {
                    verdict.violate(
                        "unexpected-value",
                        format!(
                            "round {}: instance {} served {served} {when}, a value never written (expected {expected})",
                            op.process, op.instance
                        ),
                        [op.clone()],
                    );
                }
            }
            _ => {}
        }
    }
    // Every instance's cache warmed at least once: an instance never served from its cache
    // cannot show a stale entry surviving the write.
    let instances = |cached: bool| {
        let mut seen: Vec<usize> = history
            .iter()
            .filter(|op| op.action == "warm" && (!cached || op.value["cached"] == true))
            .map(|op| op.instance)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen
    };
    let (warmed, cached) = (instances(false), instances(true));
    verdict.require(
        "cache-warmed",
        !cached.is_empty() && cached.len() == warmed.len(),
        format!("{} of {} instances served a warming read from a cache", cached.len(), warmed.len()),
        "the read must be cached (its cache header naming a layer that is not a miss) for an invalidation to be tested",
    );
    verdict.require(
        "reads-after-write",
        judged_after_write > 0,
        format!("{writes} writes acknowledged, {judged_after_write} reads after them judged"),
        "the write must be acknowledged (recognised by `written`) and the read answer 2xx",
    );
    // With an instance header: every process warmed, and read after every acknowledged write;
    // and no more processes named than declared (the rest would go unread).
    let declared = history.iter().find_map(|op| op.value["processes"].as_u64());
    let mut processes_reached = None;
    if let Some(processes) = declared {
        let processes = processes as usize;
        let everywhere = reached(history, |op| matches!(op.action.as_str(), "warm" | "read"), false);
        let urls: BTreeSet<&str> = history.iter().filter_map(|op| op.value["url"].as_str()).collect();
        let behind = |url: &str| if urls.len() > 1 { format!(" behind {url}") } else { String::new() };
        let mut short: Vec<String> = everywhere
            .iter()
            .filter(|(_, names)| names.len() > processes)
            .map(|(url, names)| {
                format!(
                    "{} processes named{} ({}), {processes} declared: set processes = {}",
                    names.len(),
                    behind(url),
                    names.iter().copied().collect::<Vec<_>>().join(", "),
                    names.len()
                )
            })
            .collect();
        let rounds: BTreeSet<usize> = history
            .iter()
            .filter(|op| op.action == "write" && op.outcome == Outcome::Ok)
            .map(|op| op.process)
            .collect();
        for &round in &rounds {
            let warmed = reached(history, of(round, "warm"), true);
            let read = reached(history, of(round, "read"), false);
            for (what, seen) in
                [("served a warming read from a cache", warmed), ("answered a read after the write", read)]
            {
                for url in &urls {
                    let names: Vec<&str> =
                        seen.get(url).map(|n| n.iter().copied().collect()).unwrap_or_default();
                    if names.len() < processes {
                        short.push(format!(
                            "round {round}: {} of {processes} processes{} {what} ({})",
                            names.len(),
                            behind(url),
                            names.join(", ")
                        ));
                    }
                }
            }
        }
        processes_reached = Some(short.is_empty());
        let named = !everywhere.is_empty();
        verdict.require(
            "processes-reached",
            named && short.is_empty() && !rounds.is_empty(),
            if !named {
                "no answer named the process that gave it in `instance_header`".to_owned()
            } else if rounds.is_empty() {
                "no write was acknowledged, so no read after one could reach the processes".to_owned()
            } else if short.is_empty() {
                format!("every one of {processes} processes warmed and read after each write")
            } else {
                short.join("; ")
            },
            if named {
                "every process must answer, and no more than `processes` may: are `processes` and the URLs right?"
            } else {
                "set `instance_header` to the header the stack names its process in, or leave it out"
            },
        );
    }
    verdict.bound_unknown(history, MAX_UNKNOWN);
    verdict.evidence = json!({
        "writes": writes,
        "reads_after_write": judged_after_write,
        "stale_reads": stale,
    });
    if let Some(reached) = processes_reached {
        verdict.evidence["processes_reached"] = json!(reached);
    }
    verdict.summarize(format!("{writes} writes: every instance served the new value right after each"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkers::support::testing::op;

    fn read(f: &'static str, instance: usize, at: u64, served: &str, expected: &str, older: &[&str]) -> Op {
        op(
            0,
            instance,
            f,
            at,
            Outcome::Ok,
            json!({ "expected": expected, "older": older, "served": served, "cache": "L1", "cached": true }),
        )
    }

    fn history(after: [&str; 2]) -> Vec<Op> {
        vec![
            op(0, 0, "create", 0, Outcome::Ok, json!({ "id": "1", "value": "a" })),
            read("warm", 0, 1, "a", "a", &[]),
            read("warm", 1, 2, "a", "a", &[]),
            op(0, 0, "write", 3, Outcome::Ok, json!({ "value": "b" })),
            read("read", 0, 5, after[0], "b", &["a"]),
            read("read", 1, 5, after[1], "b", &["a"]),
        ]
    }

    /// `history(["b", "b"])` with each read naming its process (of `processes`) as `by` says.
    fn named(by: [Option<&str>; 4], processes: u64) -> Vec<Op> {
        let mut history = history(["b", "b"]);
        for (op, name) in
            history.iter_mut().filter(|op| op.action != "create" && op.action != "write").zip(by)
        {
            op.value["served_by"] = json!(name);
            op.value["processes"] = json!(processes);
            op.value["url"] = json!("http://a");
        }
        history
    }

    #[test]
    fn with_an_instance_header_every_process_must_be_reached() {
        let verdict = judge("i", &named([Some("p0"), Some("p1"), Some("p1"), Some("p0")], 2));
        assert!(verdict.held(), "{:?}", verdict.requirements);
        assert_eq!(verdict.evidence["processes_reached"], true);
        // p1 never served a warming read from its cache: its invalidation went untested.
        let verdict = judge("i", &named([Some("p0"), Some("p0"), Some("p1"), Some("p0")], 2));
        assert!(verdict.inconclusive() && !verdict.violated(), "{:?}", verdict.requirements);
        let unmet = verdict.requirements.iter().find(|r| !r.met).unwrap();
        assert_eq!(unmet.name, "processes-reached");
        assert_eq!(unmet.observed, "round 0: 1 of 2 processes served a warming read from a cache (p0)");
        // Three declared, two answered the reads after the write.
        let verdict = judge("i", &named([Some("p0"), Some("p1"), Some("p2"), Some("p0")], 3));
        let unmet = verdict.requirements.iter().find(|r| !r.met).unwrap();
        assert_eq!(
            unmet.observed,
            "round 0: 2 of 3 processes served a warming read from a cache (p0, p1); \
             round 0: 2 of 3 processes answered a read after the write (p0, p2)"
        );
        // A header no answer carries.
        let verdict = judge("i", &named([None; 4], 2));
        let unmet = verdict.requirements.iter().find(|r| !r.met).unwrap();
        assert_eq!(unmet.observed, "no answer named the process that gave it in `instance_header`");
        // Fewer declared than answer: the others would go unread.
        let verdict = judge("i", &named([Some("p0"), Some("p1"), Some("p1"), Some("p0")], 1));
        let unmet = verdict.requirements.iter().find(|r| !r.met).unwrap();
        assert_eq!(unmet.observed, "2 processes named (p0, p1), 1 declared: set processes = 2");
        // Two URLs whose processes have the same names are counted apart.
        let mut two = named([Some("p0"), Some("p0"), Some("p0"), Some("p0")], 1);
        for op in two.iter_mut().filter(|op| op.instance == 1) {
            op.value["url"] = json!("http://b");
        }
        assert!(judge("i", &two).held(), "{:?}", judge("i", &two).requirements);
        // No write acknowledged: nothing reached after one.
        let mut unknown = named([Some("p0"), Some("p1"), Some("p1"), Some("p0")], 2);
        unknown.retain(|op| op.action != "read");
        unknown.iter_mut().filter(|op| op.action == "write").for_each(|op| op.outcome = Outcome::Unknown);
        let verdict = judge("i", &unknown);
        assert!(!verdict.held());
        let unmet = verdict.requirements.iter().find(|r| r.name == "processes-reached").unwrap();
        assert_eq!(
            unmet.observed,
            "no write was acknowledged, so no read after one could reach the processes"
        );
        // Without the header nothing is asked of the processes.
        assert!(judge("i", &history(["b", "b"])).requirements.iter().all(|r| r.name != "processes-reached"));
    }

    #[test]
    fn the_new_value_everywhere_passes() {
        let verdict = judge("i", &history(["b", "b"]));
        assert!(verdict.held(), "{:?}", verdict.violations);
    }

    #[test]
    fn the_old_value_after_the_write_is_stale() {
        // MultiLayerLocalOnly: the other instance's L1 still holds the old dashboard.
        let verdict = judge("i", &history(["b", "a"]));
        assert_eq!(verdict.rules(), ["stale-read"]);
    }

    #[test]
    fn a_value_never_written_is_unexpected() {
        assert_eq!(judge("i", &history(["b", "z"])).rules(), ["unexpected-value"]);
    }

    #[test]
    fn an_instance_without_the_resource_is_not_visible() {
        // Records per process: the resource exists only where it was created.
        let mut h = history(["b", "b"]);
        h[5] = op(0, 1, "read", 5, Outcome::Fail, json!({ "served": null }));
        assert_eq!(judge("i", &h).rules(), ["not-visible"]);
    }

    #[test]
    fn a_refused_write_and_a_failed_create_are_reported() {
        let mut h = history(["a", "a"]);
        h[3].outcome = Outcome::Fail;
        h[4].value["expected"] = json!("a");
        h[5].value["expected"] = json!("a");
        assert_eq!(judge("i", &h).rules(), ["write-refused"]);
        // A resource never created: nothing is judged, nothing is violated.
        let h = vec![op(0, 0, "create", 0, Outcome::Fail, json!({ "id": null }))];
        let verdict = judge("i", &h);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["resource-created"]);
        assert!(verdict.summary.contains("answered 404"), "{}", verdict.summary);
    }

    #[test]
    fn no_read_after_a_write_judges_nothing() {
        let h = history(["b", "b"])[..4].to_vec();
        let verdict = judge("i", &h);
        assert!(verdict.inconclusive(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["reads-after-write"]);
    }

    #[test]
    fn reads_never_served_from_a_cache_test_no_invalidation() {
        let mut h = history(["b", "b"]);
        for op in h.iter_mut().filter(|op| op.action == "warm") {
            op.value["cached"] = json!(false);
        }
        let verdict = judge("i", &h);
        assert!(verdict.inconclusive(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["cache-warmed"]);
        assert!(verdict.summary.contains("0 of 2 instances"), "{}", verdict.summary);
        // One instance's cache never warmed: its invalidation was not tested.
        let mut h = history(["b", "b"]);
        h[2].value["cached"] = json!(false);
        assert_eq!(judge("i", &h).missing(), ["cache-warmed"]);
        // A stale read is a violation whatever is missing.
        let mut h = history(["b", "a"]);
        h[1].value["cached"] = json!(false);
        h[2].value["cached"] = json!(false);
        assert!(judge("i", &h).violated());
    }

    #[test]
    fn the_evidence_counts_writes_reads_and_stale_ones() {
        assert_eq!(
            judge("i", &history(["b", "b"])).evidence,
            json!({ "reads_after_write": 2, "stale_reads": 0, "writes": 1 })
        );
        let stale = judge("i", &history(["b", "a"]));
        assert_eq!(stale.evidence["stale_reads"], 1);
        assert!(stale.violations[0].detail.contains("after the write answered"), "{:?}", stale.violations);
        // A warming read older than the round's value: stale before the write.
        let mut h = history(["b", "b"]);
        h[2] = read("warm", 1, 2, "z", "a", &["z"]);
        let verdict = judge("i", &h);
        assert!(
            verdict.violations[0].detail.contains("before the round's write"),
            "{:?}",
            verdict.violations
        );
    }
}

/// Cache invalidation seen by every instance (#14): a cached read warmed on every instance,
/// the value written, and, once the write has answered, no instance serves an older value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidationCheck {
    pub name: String,
    /// Creates the resource; `{value}` is its first value.
    pub create: RequestTemplate,
    /// JSON pointer to the created resource's id.
    pub id: String,
    /// The cached read; `{id}`.
    pub read: RequestTemplate,
    /// JSON pointer to the value in the read's answer.
    pub value: String,
    /// Changes the value to `{value}`; `{id}`.
    pub write: RequestTemplate,
    /// Answers that acknowledge the write.
    pub written: Recognise,
    /// The response header naming the cache layer that answered the read.
    #[serde(default = "default_cache_header")]
    pub cache_header: String,
    /// Its values that mean the read was not served from a cache.
    #[serde(default = "default_cache_miss")]
    pub miss: Vec<String>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

fn default_cache_header() -> String {
    "x-cache".to_owned()
}

fn default_cache_miss() -> Vec<String> {
    vec!["MISS".to_owned()]
}

impl Kind for InvalidationCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("create", &self.create), ("read", &self.read), ("write", &self.write)]
    }

    fn recognisers(&self) -> Vec<(&'static str, &Recognise)> {
        vec![("written", &self.written)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        vec![("id", &self.id), ("value", &self.value)]
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
