//! WebSocket connections per user (#17). Each round, one user's C WebSocket handshakes to a
//! project's chat are released together, spread over every instance; every accepted
//! connection is held until all have been answered, then all are closed. Of C, exactly
//! `min(limit, C)` must be accepted and the rest refused (`over-admission`,
//! `under-admission`); a later round must again be accepted up to the limit, which shows that
//! closing gave the slots back (`slots-not-freed`). There are always at least two rounds.
//! Unknown answers (timeouts, unexpected statuses) count either way.

use std::time::Duration;

use client::{Target, TargetError, User, WsError, WsSocket as Socket};
use futures_util::StreamExt;
use profile::template::RequestTemplate;
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::burst;
use crate::history::{Op, Outcome};
use crate::kind::{FieldError, Kind, at_least_one};

pub const KIND: &str = "ws-connections";

/// How long a closing handshake may take.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// A pause between rounds, past the slots' release.
const BETWEEN_ROUNDS: Duration = Duration::from_millis(250);

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &WsConnectionsCheck) -> Result<Verdict, TargetError> {
    let defaults = &target.profile.defaults;
    let concurrency = check.concurrency.unwrap_or(defaults.concurrency);
    let rounds = check.rounds.unwrap_or(defaults.rounds).max(2);
    let user = target.user(&check.name).await?;
    let projects = projects(target, check, &user).await?;
    let mut history = Vec::new();
    for round in 0..rounds {
        let answers = burst::release(concurrency, |i| {
            let instance = i % target.instances();
            let target = target.clone();
            let check = check.clone();
            let token = user.tokens[instance].clone();
            let project = projects[instance].clone();
            async move { connect(&target, &check, round, instance, &token, &project).await }
        })
        .await;
        let mut sockets = Vec::new();
        for (op, socket) in answers {
            if let Some(socket) = socket {
                sockets.push((op.instance, socket));
            }
            history.push(op);
        }
        let closes = sockets.into_iter().map(|(instance, socket)| close(target, round, instance, socket));
        history.extend(futures_util::future::join_all(closes).await);
        tokio::time::sleep(BETWEEN_ROUNDS).await;
    }
    Ok(judge(&check.name, check.limit, &history))
}

/// The project on each instance: created on the first, and on any other that does not know it.
async fn projects(
    target: &Target,
    check: &WsConnectionsCheck,
    user: &User,
) -> Result<Vec<String>, TargetError> {
    let name = format!("{}-{}", check.name, target.run);
    let create = |instance: usize| {
        let name = name.clone();
        async move {
            let answer =
                target.send(instance, Some(&user.tokens[instance]), &check.project, &[("name", &name)]).await;
            let id = match answer.body.pointer(&check.project_id) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            match (answer.status, id) {
                (Some(s), Some(id)) if (200..300).contains(&s) => Ok(id),
                (status, _) => Err(TargetError::Setup {
                    url: target.urls[instance].clone(),
                    reason: format!(
                        "creating a project answered {}: {}",
                        status.map_or("nothing".to_owned(), |s| s.to_string()),
                        answer.error.unwrap_or_else(|| answer.body.to_string())
                    ),
                }),
            }
        }
    };
    let first = create(0).await?;
    let mut ids = vec![first.clone()];
    for instance in 1..target.instances() {
        let answer =
            target.send(instance, Some(&user.tokens[instance]), &check.read_project, &[("id", &first)]).await;
        ids.push(if answer.status.is_some_and(|s| (200..300).contains(&s)) {
            first.clone()
        } else {
            create(instance).await?
        });
    }
    Ok(ids)
}

/// One handshake: its operation, and the socket if it was accepted.
async fn connect(
    target: &Target,
    check: &WsConnectionsCheck,
    round: usize,
    instance: usize,
    token: &str,
    project: &str,
) -> (Op, Option<Socket>) {
    let invoke_us = target.clock.now_us();
    let result = target
        .ws_connect(instance, token, check.token_param.as_deref(), &check.connect, &[("id", project)])
        .await;
    let complete_us = target.clock.now_us();
    let op = |status: Option<u16>, outcome: Outcome, value: Value| Op {
        process: round,
        instance,
        action: "connect".into(),
        invoke_us,
        complete_us,
        status,
        outcome,
        value,
    };
    match result {
        Ok((socket, status)) if check.refused_close.is_empty() => {
            (op(Some(status), Outcome::Ok, json!({})), Some(socket))
        }
        Ok((mut socket, status)) => {
            // A stack that refuses by closing right after the upgrade: a close frame within
            // `close_within_ms` is the refusal when its code is one the profile names (an
            // error text sent before it changes nothing); the connection lives on otherwise.
            let deadline = tokio::time::Instant::now() + Duration::from_millis(check.close_within_ms);
            let verdict = loop {
                match tokio::time::timeout_at(deadline, socket.next()).await {
                    Err(_) => break None,
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        let code = frame.as_ref().map(|f| u16::from(f.code));
                        let reason = frame.as_ref().map(|f| f.reason.to_string());
                        let outcome = match code {
                            Some(code) if check.refused_close.contains(&code) => Outcome::Fail,
                            _ => Outcome::Unknown,
                        };
                        break Some((outcome, json!({ "close_code": code, "close_reason": reason })));
                    }
                    Ok(Some(Ok(_))) => continue,
                    Ok(Some(Err(e))) => break Some((Outcome::Unknown, json!({ "error": e.to_string() }))),
                    Ok(None) => {
                        break Some((Outcome::Unknown, json!({ "error": "closed without a close frame" })));
                    }
                }
            };
            let complete_us = target.clock.now_us();
            let op = |outcome: Outcome, value: Value| Op { complete_us, ..op(Some(status), outcome, value) };
            match verdict {
                None => (op(Outcome::Ok, json!({})), Some(socket)),
                Some((outcome, value)) => (op(outcome, value), None),
            }
        }
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            let outcome = if check.refused.contains(&status) { Outcome::Fail } else { Outcome::Unknown };
            (op(Some(status), outcome, json!({ "body": body })), None)
        }
        Err(e) => (op(None, Outcome::Unknown, json!({ "error": e.to_string() })), None),
    }
}

/// Closes `socket` and reads until the server has closed too.
async fn close(target: &Target, round: usize, instance: usize, mut socket: Socket) -> Op {
    let invoke_us = target.clock.now_us();
    let closed = tokio::time::timeout(CLOSE_WAIT, async {
        let _ = socket.close(None).await;
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await
    .is_ok();
    Op {
        process: round,
        instance,
        action: "close".into(),
        invoke_us,
        complete_us: target.clock.now_us(),
        status: None,
        outcome: if closed { Outcome::Ok } else { Outcome::Unknown },
        value: json!({}),
    }
}

/// Judges rounds of handshakes against `limit` connections per user.
pub fn judge(name: &str, limit: usize, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let mut rounds: Vec<usize> =
        history.iter().filter(|op| op.action == "connect").map(|op| op.process).collect();
    rounds.sort_unstable();
    rounds.dedup();
    let mut over = Vec::new();
    let mut under = Vec::new();
    let mut not_freed = Vec::new();
    let mut per_round = Vec::new();
    for &round in &rounds {
        let ops: Vec<&Op> =
            history.iter().filter(|op| op.action == "connect" && op.process == round).collect();
        let count = |outcome| ops.iter().filter(|op| op.outcome == outcome).count();
        let (accepted, refused, unknown) =
            (count(Outcome::Ok), count(Outcome::Fail), count(Outcome::Unknown));
        let expected = limit.min(ops.len());
        per_round
            .push(json!({ "round": round, "accepted": accepted, "refused": refused, "unknown": unknown }));
        if accepted > limit {
            over.push((round, accepted, ops));
        } else if accepted + unknown < expected {
            let refusals: Vec<&Op> = ops.into_iter().filter(|op| op.outcome == Outcome::Fail).collect();
            if round == rounds[0] {
                under.push((round, accepted, refusals))
            } else {
                not_freed.push((round, accepted, refusals))
            }
        }
    }
    let shown = |ops: &[&Op]| ops.iter().map(|op| (*op).clone()).collect::<Vec<_>>();
    if let Some((round, accepted, ops)) = over.iter().max_by_key(|(_, accepted, _)| *accepted) {
        verdict.violate(
            "over-admission",
            format!(
                "{} rounds accepted more than {limit} connections of one user; round {round} accepted {accepted}",
                over.len()
            ),
            shown(&ops.iter().copied().filter(|op| op.outcome == Outcome::Ok).collect::<Vec<_>>()),
        );
    }
    if let Some((round, accepted, refusals)) = under.first() {
        verdict.violate(
            "under-admission",
            format!("round {round}: only {accepted} of the {limit} allowed connections were accepted"),
            shown(refusals),
        );
    }
    if let Some((round, accepted, refusals)) = not_freed.first() {
        verdict.violate(
            "slots-not-freed",
            format!(
                "after every connection was closed, round {round} got only {accepted} of {limit}: closed connections still hold their slots"
            ),
            shown(refusals),
        );
    }
    let closes = history.iter().filter(|op| op.action == "close").count();
    let unclosed = history.iter().filter(|op| op.action == "close" && op.outcome != Outcome::Ok).count();
    verdict.evidence = json!({
        "limit": limit,
        "rounds": per_round,
        "closed": closes,
        "close_timeouts": unclosed,
    });
    let connects: Vec<&Op> = history.iter().filter(|op| op.action == "connect").collect();
    let refused = connects.iter().filter(|op| op.outcome == Outcome::Fail).count();
    let attempted = rounds.first().map_or(0, |r| connects.iter().filter(|op| op.process == *r).count());
    verdict.require(
        "limit-reached",
        attempted > limit,
        format!("{attempted} connections opened together, against a limit of {limit}"),
        "open more connections at once than the limit (concurrency)",
    );
    verdict.require(
        "rounds-after-close",
        rounds.len() >= 2,
        format!("{} rounds; a second shows whether closed connections freed their slots", rounds.len()),
        "run at least two rounds",
    );
    // A refusal in a status the profile does not name is unknown, not refused: few may be.
    verdict.bound_unknown(connects.iter().copied(), MAX_UNKNOWN);
    verdict.summarize(format!(
        "{} rounds of {attempted} connections: at most {limit} accepted, {refused} refused as declared; slots freed on close",
        rounds.len()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn connect(round: usize, instance: usize, outcome: Outcome) -> Op {
        Op {
            process: round,
            instance,
            action: "connect".into(),
            invoke_us: 0,
            complete_us: 1_000,
            status: Some(match outcome {
                Outcome::Ok => 101,
                Outcome::Fail => 429,
                Outcome::Unknown => 500,
            }),
            outcome,
            value: json!({}),
        }
    }

    /// Rounds of 12 connections of which `accepted[r]` were accepted (and `unknown` failed
    /// without an answer).
    fn history(accepted: &[usize], unknown: usize) -> Vec<Op> {
        let mut ops = Vec::new();
        for (round, &n) in accepted.iter().enumerate() {
            for i in 0..12 {
                let outcome = if i < n {
                    Outcome::Ok
                } else if i < n + unknown {
                    Outcome::Unknown
                } else {
                    Outcome::Fail
                };
                ops.push(connect(round, i % 3, outcome));
            }
        }
        ops
    }

    fn rules(history: &[Op]) -> Vec<String> {
        judge("ws", 5, history).rules().into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn five_accepted_each_round_passes() {
        let verdict = judge("ws", 5, &history(&[5, 5], 0));
        assert!(verdict.held(), "{:?}", verdict.violations);
        assert_eq!(verdict.evidence["rounds"][1]["refused"], 7);
    }

    #[test]
    fn a_slot_counter_per_instance_over_admits() {
        // Three instances that share no state: five each.
        assert_eq!(rules(&history(&[12, 12], 0)), ["over-admission"]);
    }

    #[test]
    fn refusing_below_the_limit_is_under_admission() {
        assert_eq!(rules(&history(&[3, 5], 0)), ["under-admission"]);
    }

    #[test]
    fn slots_kept_after_close_are_not_freed() {
        assert_eq!(rules(&history(&[5, 0], 0)), ["slots-not-freed"]);
    }

    #[test]
    fn unknown_answers_count_either_way() {
        // Two handshakes a round answered in a status the profile does not declare: no
        // violation, but too many unknown to hold.
        let verdict = judge("ws", 5, &history(&[3, 4], 2));
        assert!(verdict.rules().is_empty(), "{:?}", verdict.violations);
        assert_eq!(verdict.missing(), ["unknown-within-bound"]);
        assert_eq!(rules(&history(&[6, 5], 2)), ["over-admission"]);
    }

    #[test]
    fn refusals_in_an_undeclared_status_leave_the_check_inconclusive() {
        // A stack that refuses with 403 where the profile says 429: 7 of 12 a round unknown.
        let verdict = judge("ws", 5, &history(&[5, 5], 7));
        assert!(verdict.inconclusive(), "{verdict:?}");
        assert!(verdict.summary.contains("14 of 24 operations"), "{}", verdict.summary);
        assert!(!verdict.summary.contains("refused as declared"), "{}", verdict.summary);
    }

    #[test]
    fn the_evidence_and_summary_say_what_was_seen() {
        let v = judge("ws", 5, &history(&[5, 5], 0));
        assert_eq!(
            v.evidence,
            json!({ "close_timeouts": 0, "closed": 0, "limit": 5, "rounds": [
                { "accepted": 5, "refused": 7, "round": 0, "unknown": 0 },
                { "accepted": 5, "refused": 7, "round": 1, "unknown": 0 }] })
        );
        assert_eq!(
            v.summary,
            "2 rounds of 12 connections: at most 5 accepted, 14 refused as declared; slots freed on close"
        );
        // Exactly the limit opened together never tests it.
        let v = judge("ws", 12, &history(&[12, 12], 0));
        assert_eq!(v.missing(), ["limit-reached"]);
        // One round only: no second shows the slots freed.
        assert_eq!(judge("ws", 5, &history(&[5], 0)).missing(), ["rounds-after-close"]);
        // The over-admitted connections are shown, not the refused ones.
        let v = judge("ws", 5, &history(&[7, 5], 0));
        assert!(v.offending.iter().all(|op| op.outcome == Outcome::Ok) && v.offending.len() == 7);
        // The refusals below the limit are shown.
        let v = judge("ws", 5, &history(&[3, 5], 0));
        assert!(v.offending.iter().all(|op| op.outcome == Outcome::Fail) && v.offending.len() == 9);
    }

    #[test]
    fn closes_that_time_out_are_counted() {
        let mut h = history(&[5, 5], 0);
        h.push(Op { action: "close".into(), outcome: Outcome::Unknown, ..connect(0, 0, Outcome::Ok) });
        h.push(Op { action: "close".into(), ..connect(0, 1, Outcome::Ok) });
        let v = judge("ws", 5, &h);
        assert_eq!(
            (v.evidence["closed"].clone(), v.evidence["close_timeouts"].clone()),
            (json!(2), json!(1))
        );
    }
}

/// WebSocket connections per user (#17): C connections of one user opened together over
/// every instance, at most `limit` accepted and the rest refused; once the accepted ones are
/// closed, `limit` are accepted again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsConnectionsCheck {
    pub name: String,
    /// Creates the project whose chat is joined; `{name}` is a fresh name.
    pub project: RequestTemplate,
    /// JSON pointer to the project's id in its creation's answer.
    pub project_id: String,
    /// Reads the project; `{id}` is its id. A project unknown on an instance (instances that
    /// share no state) is created there.
    pub read_project: RequestTemplate,
    /// The WebSocket handshake; `{id}` is the project's id. Sent as `ws://` to each instance.
    pub connect: RequestTemplate,
    /// The query parameter that carries the token; without it, the users' header does.
    #[serde(default)]
    pub token_param: Option<String>,
    /// Live connections allowed per user, across instances.
    pub limit: usize,
    /// The statuses of a refused handshake.
    #[serde(default = "default_refused")]
    pub refused: Vec<u16>,
    /// Close codes of a refusal by accepting the upgrade and closing at once (`4429`, `1008`,
    /// `1013`): with them, a connection closed with one of these within `close_within_ms` is
    /// refused, not accepted.
    #[serde(default)]
    pub refused_close: Vec<u16>,
    /// How long after the upgrade a close still counts as a refusal.
    #[serde(default = "default_close_within_ms")]
    pub close_within_ms: u64,
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Rounds of connect-then-close; at least two, so the second shows the slots were freed.
    #[serde(default)]
    pub rounds: Option<usize>,
}

fn default_refused() -> Vec<u16> {
    vec![429]
}

fn default_close_within_ms() -> u64 {
    500
}

impl Kind for WsConnectionsCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("project", &self.project), ("read_project", &self.read_project), ("connect", &self.connect)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        vec![("project_id", &self.project_id)]
    }

    fn validate(&self) -> Result<(), FieldError> {
        at_least_one("limit", self.limit as u64)
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
