//! Compression and `Vary` (#16). On every instance one response, large enough to be compressed,
//! is requested twice: without `Accept-Encoding`, it must come uncompressed; with
//! `Accept-Encoding: gzip`, it must come gzip-encoded, decode to the same bytes, and carry
//! `Vary: Accept-Encoding` — without it a shared cache may hand the gzip bytes to a client that
//! never asked for them.

use std::io::Read;

use client::{Answer, Target, TargetError};
use profile::Defaults;
use profile::template::RequestTemplate;
use report::checks::{MAX_UNKNOWN, Verdict};
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, VARY};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::checkers::support::{self, Through, hex};
use crate::history::{Op, Outcome, Record};
use crate::kind::Kind;

pub const KIND: &str = "vary";

/// What a response says about its encoding, and the digest of its body once decoded.
fn record(answer: &Answer, raw: &[u8], instance: usize, f: &'static str) -> Op {
    let encoding = answer.header(CONTENT_ENCODING.as_str()).map(str::to_owned);
    let vary = answer.header(VARY.as_str()).map(str::to_owned);
    let decoded = match encoding.as_deref().map(str::trim) {
        None | Some("") => Ok(raw.to_vec()),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(raw.to_vec()),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw).read_to_end(&mut out).map(|_| out).map_err(|e| e.to_string())
        }
        Some(e) => Err(format!("cannot decode content-encoding {e:?}")),
    };
    let (decoded_bytes, decoded_sha256, decode_error) = match decoded {
        Ok(body) => (Some(body.len()), Some(hex(&Sha256::digest(&body))), None),
        Err(e) => (None, None, Some(e)),
    };
    let value = json!({
        "bytes": raw.len(),
        "encoding": encoding,
        "vary": vary,
        "decoded_bytes": decoded_bytes,
        "decoded_sha256": decoded_sha256,
        "decode_error": decode_error,
    });
    answer.op(0, instance, f, support::read(answer), value)
}

/// Pairs of requests per instance until one pair's bodies agree: a response that changed
/// between the two requests (a status moving on) is asked for again.
const ATTEMPTS: usize = 3;

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &VaryCheck) -> Result<Verdict, TargetError> {
    let user = target.user(&check.name).await?;
    let mut history = Vec::new();
    if let Some(insert) = &check.insert {
        // Through each instance, so that each has the rows even where instances share nothing.
        let concurrency = target.profile.defaults.concurrency;
        for instance in 0..target.instances() {
            let label = format!("{}-{}-{instance}", check.name, target.run);
            let through = Through::One(instance);
            history.extend(
                support::insert_rows(
                    target,
                    &user,
                    insert,
                    None,
                    check.rows,
                    concurrency,
                    through,
                    &label,
                    0,
                    "insert",
                )
                .await,
            );
        }
    }
    for instance in 0..target.instances() {
        let token = Some(user.tokens[instance].as_str());
        for _ in 0..ATTEMPTS {
            let (answer, raw) =
                target.execute_raw(target.request(instance, token, &check.request, &[])).await;
            let identity = record(&answer, &raw, instance, "identity");
            let request =
                target.request(instance, token, &check.request, &[]).header(ACCEPT_ENCODING, "gzip");
            let (answer, raw) = target.execute_raw(request).await;
            let gzip = record(&answer, &raw, instance, "gzip");
            let agree = gzip.value["decoded_sha256"] == identity.value["decoded_sha256"];
            history.extend([identity, gzip]);
            if agree {
                break;
            }
        }
    }
    Ok(judge(&check.name, check.min_bytes, &history))
}

fn varies_on_encoding(vary: &Value) -> bool {
    vary.as_str().is_some_and(|v| {
        v.split(',').map(str::trim).any(|t| t == "*" || t.eq_ignore_ascii_case("accept-encoding"))
    })
}

/// Judges per instance an `identity` request (no `Accept-Encoding`) and a `gzip` one.
pub fn judge(name: &str, min_bytes: usize, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let mut instances: Vec<usize> = history
        .iter()
        .filter(|op| op.action == "identity" || op.action == "gzip")
        .map(|op| op.instance)
        .collect();
    instances.sort_unstable();
    instances.dedup();
    let mut judged = 0;
    let mut sizes = Vec::new();
    let (mut unanswered, mut small) = (Vec::new(), Vec::new());
    for instance in instances {
        // The last attempt: earlier ones were retried because their bodies differed.
        let find = |f: &str| history.iter().rev().find(|op| op.instance == instance && op.action == f);
        let (Some(identity), Some(gzip)) = (find("identity"), find("gzip")) else { continue };
        // A failed request is evidence missing (the requirement below).
        if identity.outcome != Outcome::Ok || gzip.outcome != Outcome::Ok {
            unanswered.push(instance);
            continue;
        }
        let plain = identity.value["decoded_bytes"].as_u64().unwrap_or(0) as usize;
        sizes.push(json!({ "instance": instance, "plain": plain, "gzip": gzip.value["bytes"] }));
        if identity.value["encoding"].as_str().is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity")) {
            verdict.violate(
                "compressed-unasked",
                format!(
                    "instance {instance}: a request without Accept-Encoding got content-encoding {}",
                    identity.value["encoding"]
                ),
                [identity.clone()],
            );
            continue;
        }
        if plain <= min_bytes {
            small.push(plain);
            continue;
        }
        judged += 1;
        if !gzip.value["encoding"].as_str().is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip")) {
            verdict.violate(
                "not-compressed",
                format!(
                    "instance {instance}: {plain} bytes asked for with Accept-Encoding: gzip came with content-encoding {}",
                    gzip.value["encoding"]
                ),
                [gzip.clone()],
            );
        } else if let Some(error) = gzip.value["decode_error"].as_str() {
            verdict.violate("undecodable", format!("instance {instance}: {error}"), [gzip.clone()]);
        } else if gzip.value["decoded_sha256"] != identity.value["decoded_sha256"] {
            verdict.violate(
                "body-differs",
                format!(
                    "instance {instance}: the gzip body decodes to {} bytes unlike the {plain} uncompressed ones",
                    gzip.value["decoded_bytes"]
                ),
                [identity.clone(), gzip.clone()],
            );
        }
        if gzip.value["encoding"].is_string() && !varies_on_encoding(&gzip.value["vary"]) {
            verdict.violate(
                "missing-vary",
                match gzip.value["vary"].as_str() {
                    Some(vary) => format!(
                        "instance {instance}: the gzip response varies on {vary:?}, not accept-encoding"
                    ),
                    None => format!("instance {instance}: the gzip response carries no Vary header"),
                },
                [gzip.clone()],
            );
        }
    }
    verdict.require(
        "responses-answered",
        unanswered.is_empty() && (judged > 0 || !small.is_empty()),
        format!("the request answered 2xx with and without gzip on all but instances {unanswered:?}"),
        "the request must answer 2xx",
    );
    verdict.require(
        "large-enough",
        small.is_empty() && judged > 0,
        format!("{judged} responses over {min_bytes} bytes; {} not ({small:?} bytes)", small.len()),
        "insert more rows first (`insert`, `rows`) so the response is over min_bytes",
    );
    verdict.bound_unknown(history, MAX_UNKNOWN);
    verdict.evidence = json!({ "min_bytes": min_bytes, "responses": sizes });
    verdict.summarize(format!(
        "{}: gzip on request only, same bytes decoded, Vary: Accept-Encoding",
        report::plural(judged as u64, "instance", "instances")
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkers::support::testing::op;

    fn identity(bytes: u64, encoding: Option<&str>) -> Op {
        op(
            0,
            0,
            "identity",
            0,
            Outcome::Ok,
            json!({ "bytes": bytes, "encoding": encoding, "vary": "accept-encoding", "decoded_bytes": bytes, "decoded_sha256": "aa" }),
        )
    }

    fn gzip(encoding: Option<&str>, vary: Option<&str>, sha: &str) -> Op {
        op(
            0,
            0,
            "gzip",
            1,
            Outcome::Ok,
            json!({ "bytes": 400, "encoding": encoding, "vary": vary, "decoded_bytes": 2000, "decoded_sha256": sha }),
        )
    }

    #[test]
    fn gzip_on_request_with_vary_passes() {
        let h = vec![identity(2000, None), gzip(Some("gzip"), Some("accept-encoding"), "aa")];
        let verdict = judge("v", 1024, &h);
        assert!(verdict.held(), "{:?}", verdict.violations);
    }

    #[test]
    fn a_gzip_response_without_vary_is_missing_vary() {
        // MissingVary: the compression layer's Vary stripped.
        let h = vec![identity(2000, None), gzip(Some("gzip"), None, "aa")];
        assert_eq!(judge("v", 1024, &h).rules(), ["missing-vary"]);
        let h = vec![identity(2000, None), gzip(Some("gzip"), Some("origin"), "aa")];
        assert_eq!(judge("v", 1024, &h).rules(), ["missing-vary"]);
    }

    #[test]
    fn a_body_that_changed_between_requests_is_judged_by_the_last_attempt() {
        let h = vec![
            identity(2000, None),
            gzip(Some("gzip"), Some("accept-encoding"), "bb"),
            identity(2000, None),
            gzip(Some("gzip"), Some("accept-encoding"), "aa"),
        ];
        assert!(judge("v", 1024, &h).held());
    }

    #[test]
    fn each_other_rule_fails_alone() {
        let h = vec![identity(2000, None), gzip(None, None, "aa")];
        assert_eq!(judge("v", 1024, &h).rules(), ["not-compressed"]);
        let h = vec![identity(2000, None), gzip(Some("gzip"), Some("Accept-Encoding"), "bb")];
        assert_eq!(judge("v", 1024, &h).rules(), ["body-differs"]);
        let h = vec![identity(2000, Some("gzip")), gzip(Some("gzip"), Some("accept-encoding"), "aa")];
        assert_eq!(judge("v", 1024, &h).rules(), ["compressed-unasked"]);
        // Too small to judge, or failed: nothing said either way.
        let h = vec![identity(500, None), gzip(None, None, "aa")];
        let verdict = judge("v", 1024, &h);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["large-enough"]));
        let mut bad = gzip(Some("gzip"), Some("accept-encoding"), "aa");
        bad.value["decode_error"] = json!("invalid gzip header");
        assert_eq!(judge("v", 1024, &[identity(2000, None), bad]).rules(), ["undecodable"]);
        let failed = op(0, 0, "gzip", 1, Outcome::Fail, json!({}));
        let verdict = judge("v", 1024, &[identity(2000, None), failed]);
        assert_eq!(
            (verdict.inconclusive(), verdict.missing()),
            (true, vec!["responses-answered", "large-enough"])
        );
    }

    #[test]
    fn the_evidence_and_requirements_say_what_was_seen() {
        let h = vec![identity(2000, None), gzip(Some("gzip"), Some("accept-encoding"), "aa")];
        let v = judge("v", 1024, &h);
        assert_eq!(
            v.evidence,
            json!({ "min_bytes": 1024, "responses": [{ "gzip": 400, "instance": 0, "plain": 2000 }] })
        );
        assert_eq!(v.summary, "1 instance: gzip on request only, same bytes decoded, Vary: Accept-Encoding");
        // Nothing asked for at all: nothing answered.
        assert!(judge("v", 1024, &[]).missing().contains(&"responses-answered"));
        // Only small responses: answered, too small.
        let h = vec![identity(500, None), gzip(None, None, "aa")];
        assert_eq!(judge("v", 1024, &h).missing(), ["large-enough"]);
    }
}

/// Compression and `Vary` (#16): a response over `min_bytes` asked for with `Accept-Encoding:
/// gzip` comes gzip-encoded, decodes to the uncompressed response's bytes and carries `Vary:
/// Accept-Encoding`; asked for without it, it comes uncompressed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaryCheck {
    pub name: String,
    /// Run `rows` times first (`{unique}` new each time) so the response is large enough.
    #[serde(default)]
    pub insert: Option<RequestTemplate>,
    #[serde(default)]
    pub rows: usize,
    /// The request whose response is compared.
    pub request: RequestTemplate,
    /// The size above which the response must be compressed.
    #[serde(default = "default_min_bytes")]
    pub min_bytes: usize,
}

fn default_min_bytes() -> usize {
    1024
}

impl Kind for VaryCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        let mut requests = vec![("request", &self.request)];
        requests.extend(self.insert.as_ref().map(|insert| ("insert", insert)));
        requests
    }

    /// The rows it inserts, at most.
    fn upstream_calls(&self, _defaults: &Defaults) -> u64 {
        50
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
