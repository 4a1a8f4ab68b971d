//! What strangers send does not grow the stack without bound. The `watch` requests (the
//! metrics scrape, a resource) are read on every instance; then `noise` requests with invented
//! methods (on invented paths and on the watched routes, with invented JSON fields) and
//! `grow_requests` of `grow` (one resource enlarged again and again: a new field of
//! `value_bytes` each time) are sent; then the watches are read again. Each watched answer must
//! stay within its `max_bytes`, and be answered within `max_latency_ms`; the growth is reported
//! per 1,000 requests.
//!
//! A stack that labels metrics by whatever method a client writes, or keeps every field a
//! client merges into a status, grows by megabytes; one with bounded label sets and capped
//! resources refuses (413) or folds what is over.
//!
//! Inconclusive, never held, when a watch was not answered 2xx before and after on every
//! instance, the resource `grow` enlarges could not be created, or fewer than nine in ten of
//! the requests were answered at all: what was to be measured was not.

use std::time::Duration;

use client::{Target, TargetError};
use profile::template::RequestTemplate;
use report::checks::Verdict;
use serde::Deserialize;
use serde_json::json;

use crate::checkers::support::pointer_string;
use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, at_least_one};

pub const KIND: &str = "growth";

/// The share of requests that must be answered for the check to judge anything.
const ANSWERED_ENOUGH: f64 = 0.9;

/// A request whose answer must stay bounded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    pub name: String,
    /// `{id}` is the resource `create` made.
    pub request: RequestTemplate,
    /// The largest body it may answer after the requests, bytes.
    pub max_bytes: u64,
}

/// A pseudo-random 64-bit value for `seq` (splitmix64): invented names reproducible per run.
fn mix(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An invented method: uppercase letters, 4 to 11 of them, never one HTTP defines.
fn method(seq: u64) -> reqwest::Method {
    let mut bits = mix(seq);
    let len = 4 + (bits % 8) as usize;
    let name: String = (0..len)
        .map(|_| {
            bits = mix(bits);
            (b'A' + (bits % 26) as u8) as char
        })
        .collect();
    reqwest::Method::from_bytes(format!("X{name}").as_bytes()).unwrap_or(reqwest::Method::GET)
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &GrowthCheck) -> Result<Verdict, TargetError> {
    let user = target.user(&check.name).await?;
    let instances = target.instances();
    let mut history = Vec::new();
    let mut id = String::new();
    if let Some(create) = &check.create {
        let unique = format!("{}-growth", target.run);
        let answer = target.send(0, Some(&user.tokens[0]), create, &[("unique", &unique)]).await;
        let created = answer.status.is_some_and(|s| (200..300).contains(&s));
        id = pointer_string(&answer.body, &check.id).unwrap_or_default();
        let outcome = if created && !id.is_empty() { Outcome::Ok } else { Outcome::Fail };
        history.push(answer.op(0, 0, "create", outcome, json!({ "id": id })));
    }
    let watch = |phase: &'static str| {
        let id = id.clone();
        let user = &user;
        async move {
            let mut ops = Vec::new();
            for (w, watched) in check.watch.iter().enumerate() {
                for instance in 0..instances {
                    let request = target.request(
                        instance,
                        Some(&user.tokens[instance]),
                        &watched.request,
                        &[("id", &id)],
                    );
                    let (answer, body) = target.execute_raw(request).await;
                    let ok = answer.status.is_some_and(|s| (200..300).contains(&s));
                    let outcome = if ok { Outcome::Ok } else { Outcome::Fail };
                    ops.push(answer.op(
                        0,
                        instance,
                        phase,
                        outcome,
                        json!({ "watch": w, "name": watched.name, "bytes": body.len() }),
                    ));
                }
            }
            ops
        }
    };
    history.extend(watch("before").await);
    // The noise: invented methods, half on invented paths, half on the watched routes.
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(check.concurrency));
    let mut sent = tokio::task::JoinSet::new();
    for seq in 0..check.noise as u64 {
        let permit = std::sync::Arc::clone(&semaphore).acquire_owned().await.expect("never closed");
        let instance = seq as usize % instances;
        let path = if seq % 2 == 0 || check.watch.is_empty() {
            format!("/stampede-{:x}/{:x}", mix(seq ^ 0x5eed), mix(seq ^ 0xfeed) % 1000)
        } else {
            profile::template::fill(
                &check.watch[seq as usize / 2 % check.watch.len()].request.path,
                &[("id", &id)],
            )
        };
        let field = format!("f{:x}", mix(seq ^ 0xf1e1d));
        let request = target
            .http
            .request(method(seq), format!("{}{path}", target.urls[instance]))
            .json(&json!({ field: seq }));
        let target = target.clone();
        sent.spawn(async move {
            let answer = target.execute(request).await;
            drop(permit);
            let outcome = if answer.status.is_some() { Outcome::Ok } else { Outcome::Unknown };
            answer.op(1, instance, "noise", outcome, json!({ "seq": seq }))
        });
    }
    while let Some(op) = sent.join_next().await {
        history.extend(op.ok());
    }
    if let Some(grow) = &check.grow {
        let value = "x".repeat(check.value_bytes);
        for seq in 0..check.grow_requests {
            let seq = seq.to_string();
            let vars = [("id", id.as_str()), ("seq", seq.as_str()), ("value", value.as_str())];
            let answer = target.send(0, Some(&user.tokens[0]), grow, &vars).await;
            let outcome = if answer.status.is_some() { Outcome::Ok } else { Outcome::Unknown };
            history.push(answer.op(2, 0, "grow", outcome, json!({ "seq": seq })));
        }
    }
    // A moment for what the requests left behind (a buffered metric, a flushed write).
    tokio::time::sleep(Duration::from_millis(100)).await;
    history.extend(watch("after").await);
    let bounds: Vec<(String, u64)> = check.watch.iter().map(|w| (w.name.clone(), w.max_bytes)).collect();
    Ok(judge(&check.name, &bounds, check.max_latency_ms, &history))
}

/// Judges the watches' answers before and after the requests: `grew-past-bound` (a watched
/// answer over its `max_bytes` after), `slowed-past-bound` (a watched answer after slower
/// than `max_latency_ms`). `bounds` is each watch's name and `max_bytes`, in order.
pub fn judge(name: &str, bounds: &[(String, u64)], max_latency_ms: u64, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let sent: Vec<&Op> = history.iter().filter(|op| op.action == "noise" || op.action == "grow").collect();
    let answered = sent.iter().filter(|op| op.status.is_some()).count();
    let grows: Vec<&Op> = history.iter().filter(|op| op.action == "grow").collect();
    let refused = grows.iter().filter(|op| op.status.is_some_and(|s| (400..500).contains(&s))).count();
    let per_thousand = |grown: i64| if sent.is_empty() { 0 } else { grown * 1000 / sent.len() as i64 };
    let latency_ms = |op: &Op| op.complete_us.saturating_sub(op.invoke_us) / 1000;
    let mut lines = Vec::new();
    let mut watches = Vec::new();
    let mut all_answered = true;
    let mut slowest = 0;
    for (w, (watch, max_bytes)) in bounds.iter().enumerate() {
        let of = |phase: &str| -> Vec<&Op> {
            history.iter().filter(|op| op.action == phase && op.value["watch"] == w).collect()
        };
        let (before, after) = (of("before"), of("after"));
        all_answered &= !before.is_empty()
            && !after.is_empty()
            && before.iter().chain(&after).all(|op| op.outcome == Outcome::Ok);
        let size = |ops: &[&Op]| ops.iter().filter_map(|op| op.value["bytes"].as_u64()).max().unwrap_or(0);
        let (from, to) = (size(&before), size(&after));
        let grown = per_thousand(to as i64 - from as i64);
        let late = after.iter().map(|op| latency_ms(op)).max().unwrap_or(0);
        slowest = slowest.max(late);
        if to > *max_bytes {
            verdict.violate(
                "grew-past-bound",
                format!(
                    "{watch} grew from {from} to {to} bytes ({grown:+} per 1,000 requests), over its bound of {max_bytes}"
                ),
                after.iter().filter(|op| op.value["bytes"].as_u64() == Some(to)).take(1).map(|op| (*op).clone()),
            );
        }
        if late > max_latency_ms {
            verdict.violate(
                "slowed-past-bound",
                format!("{watch} took {late} ms after the requests (bound {max_latency_ms})"),
                after.iter().filter(|op| latency_ms(op) == late).take(1).map(|op| (*op).clone()),
            );
        }
        lines.push(format!("{watch} {from} → {to} bytes ({grown:+} per 1,000 requests, bound {max_bytes})"));
        watches.push(json!({
            "name": watch,
            "bytes_before": from,
            "bytes_after": to,
            "growth_per_1000_requests": grown,
            "max_bytes": max_bytes,
            "slowest_after_ms": late,
        }));
    }
    let created = history.iter().filter(|op| op.action == "create").all(|op| op.outcome == Outcome::Ok);
    // A grow request never accepted (a wrong template: 400, 404) enlarged nothing, so no cap
    // was reached either: the resource's bound was not tested.
    let grown = grows.iter().filter(|op| op.status.is_some_and(|s| (200..300).contains(&s))).count();
    verdict.require(
        "resource-grown",
        grows.is_empty() || grown > 0,
        format!("{grown} of {} growing requests accepted", grows.len()),
        "the grow request must be accepted (2xx) at least once: check its path and body against the API",
    );
    verdict.require(
        "resource-created",
        created,
        if created { "the resource was created".to_owned() } else { "the create request failed".to_owned() },
        "the create request must answer 2xx with the id at `id`",
    );
    verdict.require(
        "watches-answered",
        !bounds.is_empty() && all_answered,
        format!(
            "{} watches, each answered 2xx before and after on every instance: {all_answered}",
            bounds.len()
        ),
        "every watch must answer 2xx on every instance (a metrics path, the grown resource's read)",
    );
    verdict.require(
        "requests-answered",
        !sent.is_empty() && answered as f64 >= ANSWERED_ENOUGH * sent.len() as f64,
        format!("{answered} of {} requests answered", sent.len()),
        "the stack must answer (any status) nine in ten of the invented and growing requests",
    );
    verdict.evidence = json!({
        "watches": watches,
        "requests": sent.len(),
        "answered": answered,
        "grow_requests": grows.len(),
        "grow_refused_4xx": refused,
        "slowest_watch_after_ms": slowest,
    });
    verdict.summarize(format!(
        "{} after {} requests ({} growing, {refused} of them refused); the slowest watched answer {slowest} ms (bound {max_latency_ms})",
        lines.join("; "),
        sent.len(),
        grows.len(),
    ))
}

/// What strangers send does not grow the stack without bound (see the module).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrowthCheck {
    pub name: String,
    /// Requests with invented methods, paths and fields.
    #[serde(default = "default_noise")]
    pub noise: usize,
    /// Creates the resource `grow` enlarges; `{unique}`.
    #[serde(default)]
    pub create: Option<RequestTemplate>,
    /// JSON pointer to the created resource's id.
    #[serde(default = "default_id")]
    pub id: String,
    /// Enlarges the resource: `{id}`, `{seq}` (the request's number), `{value}` (`value_bytes`
    /// of filler).
    #[serde(default)]
    pub grow: Option<RequestTemplate>,
    #[serde(default = "default_grow_requests")]
    pub grow_requests: usize,
    #[serde(default = "default_value_bytes")]
    pub value_bytes: usize,
    /// The answers that must stay bounded.
    pub watch: Vec<Watch>,
    /// Every watched answer after the requests within this long, ms.
    #[serde(default = "default_max_latency_ms")]
    pub max_latency_ms: u64,
    /// Invented requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_noise() -> usize {
    2000
}

fn default_id() -> String {
    "/id".to_owned()
}

fn default_grow_requests() -> usize {
    100
}

fn default_value_bytes() -> usize {
    8000
}

fn default_max_latency_ms() -> u64 {
    500
}

fn default_concurrency() -> usize {
    16
}

impl Kind for GrowthCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        let mut requests: Vec<(&'static str, &RequestTemplate)> =
            self.watch.iter().map(|w| ("watch.request", &w.request)).collect();
        requests.extend(self.create.iter().map(|r| ("create", r)));
        requests.extend(self.grow.iter().map(|r| ("grow", r)));
        requests
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        vec![("id", &self.id)]
    }

    fn validate(&self) -> Result<(), FieldError> {
        if self.watch.is_empty() {
            return Err(FieldError::new("watch", "watch must list at least one request"));
        }
        if self.grow.is_some() != self.create.is_some() {
            return Err(FieldError::new(
                "grow",
                "grow and create go together: grow enlarges what create made",
            ));
        }
        let growing = if self.grow.is_some() { self.grow_requests } else { 0 };
        if self.noise + growing == 0 {
            return Err(FieldError::new(
                "noise",
                "send at least one request (noise, or grow with grow_requests)",
            ));
        }
        if self.value_bytes > 16 * 1024 * 1024 {
            return Err(FieldError::new("value_bytes", "value_bytes is at most 16 MiB"));
        }
        at_least_one("max_latency_ms", self.max_latency_ms)?;
        at_least_one("concurrency", self.concurrency as u64)
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(phase: &'static str, w: usize, bytes: u64, ms: u64) -> Op {
        Op {
            process: 0,
            instance: 0,
            action: phase.to_owned(),
            invoke_us: 0,
            complete_us: ms * 1000,
            status: Some(200),
            outcome: Outcome::Ok,
            value: json!({ "watch": w, "bytes": bytes }),
        }
    }

    fn sent(action: &'static str, status: Option<u16>, n: usize) -> Vec<Op> {
        (0..n)
            .map(|_| Op {
                process: 1,
                instance: 0,
                action: action.to_owned(),
                invoke_us: 0,
                complete_us: 1000,
                status,
                outcome: if status.is_some() { Outcome::Ok } else { Outcome::Unknown },
                value: json!({}),
            })
            .collect()
    }

    fn bounds() -> Vec<(String, u64)> {
        vec![("metrics".to_owned(), 1_000_000), ("status".to_owned(), 100_000)]
    }

    #[test]
    fn answers_within_their_bounds_hold_and_the_growth_is_reported_per_1000_requests() {
        let mut h = vec![watched("before", 0, 14_000, 2), watched("before", 1, 100, 1)];
        h.extend(sent("noise", Some(405), 1900));
        h.extend(sent("grow", Some(200), 8));
        h.extend(sent("grow", Some(413), 92));
        h.extend([watched("after", 0, 16_000, 3), watched("after", 1, 64_100, 2)]);
        let verdict = judge("g", &bounds(), 500, &h);
        assert!(verdict.held(), "{:?} {:?}", verdict.violations, verdict.missing());
        assert!(
            verdict.summary.contains("metrics 14000 → 16000 bytes (+1000 per 1,000 requests"),
            "{}",
            verdict.summary
        );
        assert!(verdict.summary.contains("100 growing, 92 of them refused"), "{}", verdict.summary);
    }

    #[test]
    fn mutant_unbounded_labels_is_caught_growing_metrics_past_its_bound() {
        // UnboundedLabels: every invented method a histogram series of its own.
        let mut h = vec![watched("before", 0, 14_000, 2), watched("before", 1, 100, 1)];
        h.extend(sent("noise", Some(405), 2000));
        h.extend([watched("after", 0, 4_800_000, 40), watched("after", 1, 100, 1)]);
        let verdict = judge("g", &bounds(), 500, &h);
        assert_eq!(verdict.rules(), ["grew-past-bound"]);
        assert!(
            verdict.violations[0]
                .detail
                .contains("metrics grew from 14000 to 4800000 bytes (+2393000 per 1,000"),
            "{:?}",
            verdict.violations
        );
    }

    #[test]
    fn mutant_unbounded_status_is_caught_growing_and_slowing_the_resource() {
        // A status that keeps every merged field: 100 × 8 KB.
        let mut h = vec![watched("before", 0, 14_000, 2), watched("before", 1, 100, 1)];
        h.extend(sent("grow", Some(200), 100));
        h.extend([watched("after", 0, 15_000, 2), watched("after", 1, 800_100, 700)]);
        let verdict = judge("g", &bounds(), 500, &h);
        assert_eq!(verdict.rules(), ["grew-past-bound", "slowed-past-bound"]);
    }

    #[test]
    fn an_unanswered_watch_a_failed_create_or_unanswered_requests_are_inconclusive() {
        let mut h = vec![watched("before", 0, 14_000, 2)];
        h.extend(sent("noise", Some(405), 10));
        h.push(watched("after", 0, 14_000, 2));
        let verdict = judge("g", &bounds(), 500, &h);
        assert_eq!(verdict.missing(), ["watches-answered"]);
        let mut h = vec![watched("before", 0, 1, 1), watched("before", 1, 1, 1)];
        h.extend(sent("noise", None, 10));
        h.extend([watched("after", 0, 1, 1), watched("after", 1, 1, 1)]);
        assert_eq!(judge("g", &bounds(), 500, &h).missing(), ["requests-answered"]);
        let mut failed = sent("create", None, 1);
        failed[0].outcome = Outcome::Fail;
        h.extend(failed);
        assert!(judge("g", &bounds(), 500, &h).missing().contains(&"resource-created"));
        // Every growing request refused as malformed: the resource never grew.
        let mut h = vec![watched("before", 0, 1, 1), watched("before", 1, 1, 1)];
        h.extend(sent("grow", Some(400), 10));
        h.extend([watched("after", 0, 1, 1), watched("after", 1, 1, 1)]);
        assert_eq!(judge("g", &bounds(), 500, &h).missing(), ["resource-grown"]);
    }

    #[test]
    fn a_check_that_would_send_nothing_is_refused() {
        let watch = Watch {
            name: "metrics".to_owned(),
            request: serde_json::from_value(json!({ "method": "GET", "path": "/metrics" })).unwrap(),
            max_bytes: 1,
        };
        let check = GrowthCheck {
            name: "g".to_owned(),
            noise: 0,
            create: None,
            id: default_id(),
            grow: None,
            grow_requests: default_grow_requests(),
            value_bytes: default_value_bytes(),
            watch: vec![watch],
            max_latency_ms: 500,
            concurrency: 16,
        };
        // grow_requests without grow sends nothing.
        assert_eq!(check.validate().unwrap_err().field, "noise");
    }

    #[test]
    fn invented_methods_are_tokens_http_does_not_define() {
        let methods: std::collections::BTreeSet<String> = (0..1000).map(|s| method(s).to_string()).collect();
        assert!(methods.len() > 990, "{}", methods.len());
        assert!(
            methods
                .iter()
                .all(|m| m.starts_with('X') && m.len() >= 5 && m.chars().all(|c| c.is_ascii_uppercase()))
        );
    }
}
