//! No secret in any answer. The `provoke` requests — the stack's error paths, asked for on
//! purpose: a readiness probe while a dependency is away, malformed bodies, unknown routes — are
//! sent to every instance again and again for `duration_ms`, and every answer's headers and body
//! are searched for each secret: the strings the profile lists (literally, or `$NAME` for
//! stampede's environment variable `NAME`) and those stampede knows the target holds (the
//! passwords in the `--redis` and `--database` URLs of a stack it started, the upstream refresh
//! token it handed that stack). A fault around the check (`check = "NAME"`) is how a
//! dependency's outage meets the requests.
//!
//! Nothing recorded names a secret: an answer that holds one keeps which (its place in the list),
//! where (the body, or a header's name), and the text around it with the secret replaced.
//!
//! Inconclusive, never held, when there was no secret to look for or no provoking request was
//! answered with a failure (5xx): the paths where a stack's secrets leak — a dependency away —
//! were not reached.

use std::time::Duration;

use client::{Answer, Target, TargetError};
use profile::template::RequestTemplate;
use report::checks::Verdict;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, at_least_one};

pub const KIND: &str = "secrets";

/// The shortest secret searched for: shorter strings appear in answers by chance.
const MIN_SECRET: usize = 6;
/// Characters of context kept each side of a secret found.
const CONTEXT: usize = 40;

/// A secret to search for and how the report names it (never by its value).
struct Secret {
    value: String,
    label: String,
}

/// The secrets of `check` and of `target`, each with its label; `$NAME` unset is an error.
fn secrets(check: &SecretsCheck, target: &Target) -> Result<Vec<Secret>, TargetError> {
    let mut found = Vec::new();
    for (i, entry) in check.secrets.iter().enumerate() {
        let (value, label) = match entry.strip_prefix('$') {
            Some(name) => match std::env::var(name) {
                Ok(value) => (value, format!("${name}")),
                Err(_) => {
                    return Err(TargetError::Configuration {
                        check: check.name.clone(),
                        reason: format!(
                            "secrets[{i}] is ${name}, and the environment variable {name} is not set"
                        ),
                    });
                }
            },
            None => (entry.clone(), format!("secrets[{i}]")),
        };
        if value.chars().count() < MIN_SECRET {
            return Err(TargetError::Configuration {
                check: check.name.clone(),
                reason: format!(
                    "{label} is shorter than {MIN_SECRET} characters: it would be found in answers by chance"
                ),
            });
        }
        found.push(Secret { value, label });
    }
    for (label, value) in &target.secrets.0 {
        if value.chars().count() >= MIN_SECRET && !found.iter().any(|s| s.value == *value) {
            found.push(Secret { value: value.clone(), label: label.clone() });
        }
    }
    Ok(found)
}

/// Where in `answer` (headers, then `body`) each secret shows, with the text around it.
fn search(answer: &Answer, body: &[u8], secrets: &[Secret]) -> Vec<Value> {
    let mut places: Vec<(String, String)> = answer
        .headers
        .iter()
        .map(|(name, value)| {
            (format!("header {name}"), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect();
    places.push(("body".to_owned(), String::from_utf8_lossy(body).into_owned()));
    if let Some(error) = &answer.error {
        places.push(("error".to_owned(), error.clone()));
    }
    let mut found = Vec::new();
    for (where_, text) in &places {
        if !secrets.iter().any(|s| text.contains(&s.value)) {
            continue;
        }
        // Every secret replaced first, then the text around each one cut: no cut can leave part
        // of a secret behind.
        let redacted = secrets
            .iter()
            .enumerate()
            .fold(text.clone(), |text, (j, other)| text.replace(&other.value, &format!("«secret {j}»")));
        for (i, secret) in secrets.iter().enumerate() {
            if !text.contains(&secret.value) {
                continue;
            }
            let mark = format!("«secret {i}»");
            let Some(at) = redacted.find(&mark) else { continue };
            let start = redacted[..at].char_indices().rev().nth(CONTEXT - 1).map_or(0, |(i, _)| i);
            let end = at + mark.len();
            let end = redacted[end..].char_indices().nth(CONTEXT).map_or(redacted.len(), |(i, _)| end + i);
            found.push(json!({
                "secret": i,
                "label": secret.label,
                "where": where_,
                "around": &redacted[start..end],
            }));
        }
    }
    found
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &SecretsCheck) -> Result<Verdict, TargetError> {
    let secrets = secrets(check, target)?;
    let user = target.user(&check.name).await?;
    let mut history = Vec::new();
    let until = Instant::now() + Duration::from_millis(check.duration_ms);
    let mut round = 0u64;
    loop {
        for (index, template) in check.provoke.iter().enumerate() {
            for instance in 0..target.instances() {
                let seq = round.to_string();
                let request = target.request(
                    instance,
                    Some(user.tokens[instance].as_str()),
                    template,
                    &[("seq", seq.as_str())],
                );
                let (answer, body) = target.execute_raw(request).await;
                let found = search(&answer, &body, &secrets);
                let outcome = match answer.status {
                    Some(_) => Outcome::Ok,
                    None => Outcome::Unknown,
                };
                history.push(answer.op(
                    0,
                    instance,
                    "provoke",
                    outcome,
                    json!({ "request": index, "round": round, "found": found }),
                ));
            }
        }
        round += 1;
        if Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(check.every_ms)).await;
    }
    let labels: Vec<String> = secrets.iter().map(|s| s.label.clone()).collect();
    Ok(judge(&check.name, &labels, &history))
}

/// Judges the `provoke` answers: none may hold a secret (`secret-in-answer`).
pub fn judge(name: &str, secrets: &[String], history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let answered: Vec<&Op> = history.iter().filter(|op| op.status.is_some()).collect();
    let errors = answered.iter().filter(|op| op.status.is_some_and(|s| s >= 400)).count();
    // A stack's failures (a dependency away) are where its secrets leak: a 4xx alone is not them.
    let failures = answered.iter().filter(|op| op.status.is_some_and(|s| s >= 500)).count();
    let leaking: Vec<&Op> =
        history.iter().filter(|op| op.value["found"].as_array().is_some_and(|f| !f.is_empty())).collect();
    if !leaking.is_empty() {
        let mut which: Vec<String> = leaking
            .iter()
            .flat_map(|op| op.value["found"].as_array().into_iter().flatten())
            .map(|f| {
                format!(
                    "{} in the {}",
                    f["label"].as_str().unwrap_or("?"),
                    f["where"].as_str().unwrap_or("?")
                )
            })
            .collect();
        which.sort();
        which.dedup();
        verdict.violate(
            "secret-in-answer",
            format!("{} of {} answers showed a secret: {}", leaking.len(), answered.len(), which.join("; ")),
            leaking.iter().take(5).map(|op| (*op).clone()),
        );
    }
    verdict.require(
        "secrets-known",
        !secrets.is_empty(),
        format!("{} secrets looked for", secrets.len()),
        "list the secrets (`secrets = [\"$REDIS_PASSWORD\"]`), or run against a stack stampede starts with a password in --redis or --database",
    );
    verdict.require(
        "failures-reached",
        failures > 0,
        format!("{failures} of {} answers were failures (5xx), {errors} errors in all", answered.len()),
        "put a fault around the check (`check = \"NAME\"`, e.g. `link = \"redis\", action = \"down\"`) so /readyz and the routes that need the dependency fail while it runs",
    );
    verdict.evidence = json!({
        "secrets": secrets,
        "answers": answered.len(),
        "error_answers": errors,
        "failure_answers": failures,
        "unanswered": history.len() - answered.len(),
        "leaking_answers": leaking.len(),
    });
    verdict.summarize(format!(
        "{} answers ({errors} errors, {failures} of them 5xx) held none of {} secrets",
        answered.len(),
        secrets.len()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkers::support::testing::op;

    fn answer(status: u16, found: Value) -> Op {
        let mut op = op(0, 0, "provoke", 0, Outcome::Ok, json!({ "request": 0, "round": 0, "found": found }));
        op.status = Some(status);
        op
    }

    fn labels() -> Vec<String> {
        vec!["the password in --redis".to_owned()]
    }

    #[test]
    fn error_answers_without_secrets_hold() {
        let h = vec![answer(503, json!([])), answer(400, json!([])), answer(200, json!([]))];
        let verdict = judge("s", &labels(), &h);
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.summary, "3 answers (2 errors, 1 of them 5xx) held none of 1 secrets");
    }

    #[test]
    fn mutant_credentials_in_errors_is_caught_as_a_secret_in_an_answer() {
        // CredentialsInErrors: /readyz while Redis is away names it by its URL, password included.
        let found = json!([{ "secret": 0, "label": "the password in --redis", "where": "body",
            "around": "cannot reach redis at redis://:«secret 0»@127.0.0.1:6390" }]);
        let h = vec![answer(503, found), answer(400, json!([]))];
        let verdict = judge("s", &labels(), &h);
        assert_eq!(verdict.rules(), ["secret-in-answer"]);
        assert!(
            verdict.violations[0].detail.contains("the password in --redis in the body"),
            "{:?}",
            verdict.violations
        );
        assert!(!serde_json::to_string(&verdict).unwrap().contains("s3cret"));
    }

    #[test]
    fn no_secret_or_no_error_answer_is_inconclusive() {
        let verdict = judge("s", &[], &[answer(503, json!([]))]);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["secrets-known"]));
        // Only 4xx: the stack's failure paths were never reached.
        let verdict = judge("s", &labels(), &[answer(200, json!([])), answer(404, json!([]))]);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["failures-reached"]));
        let unanswered = op(0, 0, "provoke", 0, Outcome::Unknown, json!({ "found": [] }));
        let verdict = judge("s", &labels(), &[unanswered]);
        assert_eq!(verdict.missing(), ["failures-reached"]);
    }

    #[test]
    fn a_secret_is_found_in_headers_and_bodies_and_never_recorded() {
        let secrets = vec![
            Secret { value: "s3cret-pw".to_owned(), label: "secrets[0]".to_owned() },
            Secret { value: "refresh-tok".to_owned(), label: "the upstream refresh token".to_owned() },
        ];
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-debug", "token=refresh-tok".parse().unwrap());
        let answer = Answer {
            status: Some(503),
            headers,
            body: Value::Null,
            invoke_us: 0,
            complete_us: 1,
            error: None,
        };
        let found = search(&answer, b"{\"error\":\"redis://:s3cret-pw@db:6379 is down\"}", &secrets);
        // A second occurrence at the edge of the context leaves no part of the secret behind.
        let long = format!("{}s3cret-pw{}s3cret-pw", "x".repeat(10), "y".repeat(36));
        let edge = search(&answer, long.as_bytes(), &secrets);
        assert!(!edge.iter().any(|f| f.to_string().contains("s3cr")), "{edge:?}");
        let text = found.iter().map(|f| f.to_string()).collect::<String>();
        assert_eq!(found.len(), 2, "{text}");
        assert_eq!(found[0]["where"], "header x-debug");
        assert_eq!(found[0]["label"], "the upstream refresh token");
        assert_eq!(found[1]["where"], "body");
        assert_eq!(found[1]["around"], "{\"error\":\"redis://:«secret 0»@db:6379 is down\"}");
        assert!(!text.contains("s3cret-pw") && !text.contains("refresh-tok"), "{text}");
    }
}

/// No secret in any answer, error paths provoked on purpose (a `provoke` list of requests sent
/// to every instance for `duration_ms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsCheck {
    pub name: String,
    /// Strings no answer may hold: literally, or `$NAME` for the environment variable `NAME`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The requests sent to reach the stack's error paths (`{seq}` is the round).
    pub provoke: Vec<RequestTemplate>,
    /// How long the requests are sent again and again, ms.
    #[serde(default = "default_duration_ms")]
    pub duration_ms: u64,
    /// The pause between rounds, ms.
    #[serde(default = "default_every_ms")]
    pub every_ms: u64,
}

fn default_duration_ms() -> u64 {
    3000
}

fn default_every_ms() -> u64 {
    200
}

impl Kind for SecretsCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        self.provoke.iter().map(|request| ("provoke", request)).collect()
    }

    fn validate(&self) -> Result<(), FieldError> {
        if self.provoke.is_empty() {
            return Err(FieldError::new("provoke", "provoke must list at least one request"));
        }
        for secret in &self.secrets {
            if secret.is_empty() || secret == "$" {
                return Err(FieldError::new("secrets", "a secret may not be empty"));
            }
            if !secret.starts_with('$') && secret.chars().count() < MIN_SECRET {
                return Err(FieldError::new(
                    "secrets",
                    format!(
                        "a secret must be at least {MIN_SECRET} characters: shorter ones appear by chance"
                    ),
                ));
            }
        }
        at_least_one("duration_ms", self.duration_ms)?;
        at_least_one("every_ms", self.every_ms)
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
