//! Slow clients hold nothing for long. `idle` connections that send nothing, `half_sent` ones
//! that send half a request head and stop, and `stalled` ones that declare a body
//! (`stall`, with `Content-Length: stall_declared_bytes`) and send four bytes of it are opened
//! to the instances (round robin) and held; while they are, `probe` is sent to every instance
//! every `probe_every_ms`, and each must be answered within `probe_within_ms`. The stack must
//! close every held connection within `close_within_ms` of its opening: a stack with no
//! header-read, idle or body deadline holds them for ever, and enough of them take every
//! descriptor it has.
//!
//! A probe answered 503 with `Retry-After` is answered (a stack at its connection cap says so
//! rather than hang); one unanswered in time, or answered 5xx without `Retry-After`, starves.
//!
//! Inconclusive, never held, when stampede could not open nine in ten of the connections (its
//! own descriptor limit, a refused connect: what was asked of the stack was not asked) or sent
//! no probe while they were held.

use std::time::Duration;

use client::{Target, TargetError};
use profile::template::RequestTemplate;
use report::checks::Verdict;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, Need, at_least_one};

pub const KIND: &str = "slow-clients";

/// The connections held, by how they misbehave.
const SHAPES: [&str; 3] = ["idle", "half-sent", "stalled"];

/// The share of the asked connections stampede must open for the check to judge anything.
const HELD_ENOUGH: f64 = 0.9;

/// One held connection's fate: how long the stack kept it, and how it ended.
struct Held {
    shape: &'static str,
    instance: usize,
    opened_us: u64,
    /// Until the stack closed it (EOF or reset); none when still open at the end.
    closed_after_ms: Option<u64>,
    ended: &'static str,
    /// The status line of an answer the stack wrote before closing (a 408), if any.
    answer: Option<String>,
}

/// `instance`'s `host:port`.
fn address(target: &Target, instance: usize) -> Result<String, TargetError> {
    let url = reqwest::Url::parse(&target.urls[instance]).map_err(|e| TargetError::Configuration {
        check: String::new(),
        reason: format!("instance URL {:?}: {e}", target.urls[instance]),
    })?;
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port_or_known_default().unwrap_or(80);
    Ok(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
}

/// The head of `request` as it goes on the wire, its body declared `declared` bytes long.
fn stalled_head(request: &reqwest::Request, declared: u64) -> Vec<u8> {
    let url = request.url();
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path = format!("{path}?{query}");
    }
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let mut head = format!("{} {path} HTTP/1.1\r\nHost: {host}\r\n", request.method());
    for (name, value) in request.headers() {
        if name != reqwest::header::CONTENT_LENGTH {
            head.push_str(&format!("{name}: {}\r\n", String::from_utf8_lossy(value.as_bytes())));
        }
    }
    if !request.headers().contains_key(reqwest::header::CONTENT_TYPE) {
        head.push_str("Content-Type: application/octet-stream\r\n");
    }
    head.push_str(&format!("Content-Length: {declared}\r\n\r\n"));
    head.into_bytes()
}

/// Opens one connection of `shape` and holds it until the stack closes it or `close_within`
/// and a second more have passed since it was opened (connected and its first bytes sent: no
/// connect time, however long a busy backlog made it, is charged to the stack).
async fn hold(
    addr: String,
    shape: &'static str,
    instance: usize,
    first: Vec<u8>,
    start: Instant,
    close_within: Duration,
) -> Option<Held> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr)).await.ok()?.ok()?;
    if !first.is_empty() && stream.write_all(&first).await.is_err() {
        return None;
    }
    let opened = Instant::now();
    let until = opened + close_within + Duration::from_secs(1);
    let opened_us = opened.duration_since(start).as_micros() as u64;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let ended = loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0)) => break Some("closed"),
            Ok(Ok(n)) => {
                if seen.len() < 256 {
                    seen.extend_from_slice(&buf[..n.min(256 - seen.len())]);
                }
            }
            Ok(Err(_)) => break Some("reset"),
        }
    };
    let answer =
        String::from_utf8_lossy(&seen).lines().next().filter(|l| l.starts_with("HTTP/")).map(str::to_owned);
    Some(Held {
        shape,
        instance,
        opened_us,
        closed_after_ms: ended.map(|_| opened.elapsed().as_millis() as u64),
        ended: ended.unwrap_or("open"),
        answer,
    })
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &SlowClientsCheck) -> Result<Verdict, TargetError> {
    let user = target.user(&check.name).await?;
    let instances = target.instances();
    let start = Instant::now();
    let close_within = Duration::from_millis(check.close_within_ms);
    // Each held a second past the bound: a connection still open then is past it on any clock.
    let mut holders = tokio::task::JoinSet::new();
    let mut asked = 0usize;
    for (shape, count) in SHAPES.into_iter().zip([check.idle, check.half_sent, check.stalled]) {
        for i in 0..count {
            let instance = (asked + i) % instances;
            let addr = address(target, instance).map_err(|e| match e {
                TargetError::Configuration { reason, .. } => {
                    TargetError::Configuration { check: check.name.clone(), reason }
                }
                other => other,
            })?;
            let first = match shape {
                "half-sent" => format!(
                    "{} {} HTTP/1.1\r\nHost: {addr}\r\nX-Stampede-Slow: ",
                    check.probe.method.to_ascii_uppercase(),
                    check.probe.path
                )
                .into_bytes(),
                "stalled" => {
                    let Some(stall) = &check.stall else { break };
                    let seq = i.to_string();
                    let request = target
                        .request(
                            instance,
                            Some(user.tokens[instance].as_str()),
                            stall,
                            &[("seq", seq.as_str())],
                        )
                        .build()
                        .map_err(|e| TargetError::Configuration {
                            check: check.name.clone(),
                            reason: format!("stall: {e}"),
                        })?;
                    let mut head = stalled_head(&request, check.stall_declared_bytes);
                    head.extend_from_slice(b"\0\0\0\0");
                    head
                }
                _ => Vec::new(),
            };
            holders.spawn(hold(addr, shape, instance, first, start, close_within));
        }
        asked += count;
    }
    // Probes while the connections are held: after a moment for them to open, until the last
    // is closed or the bound has passed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let within = Duration::from_millis(check.probe_within_ms);
    let mut history = Vec::new();
    let mut round = 0u64;
    while Instant::now() < start + close_within && !holders.is_empty() {
        for instance in 0..instances {
            let request = target.request(instance, Some(user.tokens[instance].as_str()), &check.probe, &[]);
            let answer = match tokio::time::timeout(within, target.execute(request)).await {
                Ok(answer) => answer,
                Err(_) => {
                    history.push(Op {
                        process: 0,
                        instance,
                        action: "probe".to_owned(),
                        invoke_us: 0,
                        complete_us: 0,
                        status: None,
                        outcome: Outcome::Unknown,
                        value: json!({ "round": round, "timed_out": true }),
                    });
                    continue;
                }
            };
            let retry_after = answer.header("retry-after").is_some();
            let outcome = if answer.status.is_some() { Outcome::Ok } else { Outcome::Unknown };
            history.push(answer.op(
                0,
                instance,
                "probe",
                outcome,
                json!({ "round": round, "retry_after": retry_after }),
            ));
        }
        round += 1;
        let pause = tokio::time::sleep(Duration::from_millis(check.probe_every_ms));
        tokio::pin!(pause);
        // Stop probing as soon as every connection has ended.
        loop {
            tokio::select! {
                () = &mut pause => break,
                joined = holders.join_next() => match joined {
                    Some(Ok(held)) => history.extend(held.map(|h| held_op(&h))),
                    Some(Err(_)) => {}
                    None => break,
                },
            }
        }
    }
    while let Some(joined) = holders.join_next().await {
        if let Ok(Some(held)) = joined {
            history.push(held_op(&held));
        }
    }
    let asked = [check.idle, check.half_sent, if check.stall.is_some() { check.stalled } else { 0 }];
    Ok(judge(&check.name, asked, check.close_within_ms, check.probe_within_ms, &history))
}

fn held_op(held: &Held) -> Op {
    Op {
        process: 1,
        instance: held.instance,
        action: "hold".to_owned(),
        invoke_us: held.opened_us,
        complete_us: held.opened_us + held.closed_after_ms.unwrap_or(0) * 1000,
        status: None,
        outcome: Outcome::Ok,
        value: json!({
            "shape": held.shape,
            "closed_after_ms": held.closed_after_ms,
            "ended": held.ended,
            "answer": held.answer,
        }),
    }
}

/// Judges the held connections (`held-open`: one the stack kept past `close_within_ms`) and
/// the probes (`probe-starved`: one unanswered within `probe_within_ms`, or failed without
/// `Retry-After`). `asked` is the connections asked for, by shape.
pub fn judge(
    name: &str,
    asked: [usize; 3],
    close_within_ms: u64,
    probe_within_ms: u64,
    history: &[Op],
) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let all_held: Vec<&Op> = history.iter().filter(|op| op.action == "hold").collect();
    // A stalled request answered before its body stalled (401, 413, 429: refused at once) never
    // tested the body deadline: not evidence, whatever closed it.
    let refused_early = |op: &Op| {
        op.value["shape"] == "stalled"
            && op.value["answer"].as_str().is_some_and(|line| !line.starts_with("HTTP/1.1 408"))
    };
    let held: Vec<&Op> = all_held.iter().copied().filter(|op| !refused_early(op)).collect();
    let probes: Vec<&Op> = history.iter().filter(|op| op.action == "probe").collect();
    let closed_after = |op: &Op| op.value["closed_after_ms"].as_u64();
    let mut kept_open = Vec::new();
    let mut by_shape = Vec::new();
    let mut short = Vec::new();
    let mut observed = Vec::new();
    for (shape, asked) in SHAPES.into_iter().zip(asked) {
        let ops: Vec<&Op> = held.iter().copied().filter(|op| op.value["shape"] == shape).collect();
        let refused = all_held.iter().filter(|op| op.value["shape"] == shape && refused_early(op)).count();
        let late: Vec<&Op> =
            ops.iter().copied().filter(|op| closed_after(op).is_none_or(|ms| ms > close_within_ms)).collect();
        let longest = ops.iter().filter_map(|op| closed_after(op)).max();
        if !late.is_empty() {
            kept_open.push(format!("{} of {} {shape}", late.len(), ops.len()));
        }
        if asked > 0 && (ops.len() as f64) < HELD_ENOUGH * asked as f64 {
            short.push(format!("{} of {asked} {shape}", ops.len()));
        }
        if !ops.is_empty() {
            observed.push(format!("{} {shape}", ops.len()));
        }
        by_shape.push(json!({
            "shape": shape,
            "asked": asked,
            "opened": ops.len() + refused,
            "refused_before_stalling": refused,
            "closed_late_or_never": late.len(),
            "longest_ms": longest,
        }));
    }
    let late_ops: Vec<Op> = held
        .iter()
        .filter(|op| closed_after(op).is_none_or(|ms| ms > close_within_ms))
        .take(5)
        .map(|op| (*op).clone())
        .collect();
    if !kept_open.is_empty() {
        verdict.violate(
            "held-open",
            format!("the stack kept connections open past {close_within_ms} ms: {}", kept_open.join(", ")),
            late_ops,
        );
    }
    let starved: Vec<&Op> = probes
        .iter()
        .copied()
        .filter(|op| match op.status {
            None => true,
            Some(s) => s >= 500 && !op.value["retry_after"].as_bool().unwrap_or(false),
        })
        .collect();
    let slowest_ms = probes
        .iter()
        .filter(|op| op.status.is_some())
        .map(|op| op.complete_us.saturating_sub(op.invoke_us) / 1000)
        .max()
        .unwrap_or(0);
    if !starved.is_empty() {
        verdict.violate(
            "probe-starved",
            format!(
                "{} of {} probes got no answer within {probe_within_ms} ms (or a 5xx without Retry-After) while the connections were held",
                starved.len(),
                probes.len()
            ),
            starved.iter().take(5).map(|op| (*op).clone()),
        );
    }
    let total_asked: usize = asked.iter().sum();
    verdict.require(
        "connections-held",
        total_asked > 0 && short.is_empty(),
        if short.is_empty() {
            format!("{} of {total_asked} connections opened and held", held.len())
        } else {
            format!("opened and held only {}", short.join(", "))
        },
        "raise stampede's descriptor limit (`ulimit -n`) or ask for fewer connections; a stalled upload \
         refused at once (401, 413, 429: e.g. over the user's upload limit) holds nothing",
    );
    verdict.require(
        "probes-sent",
        !probes.is_empty(),
        format!("{} probes sent while the connections were held", probes.len()),
        "the stack closed every connection before a probe could be sent: raise idle/half_sent",
    );
    let refused = probes.iter().filter(|op| op.status == Some(503)).count();
    let longest = held.iter().filter_map(|op| closed_after(op)).max().unwrap_or(0);
    verdict.evidence = json!({
        "connections": by_shape,
        "probes": probes.len(),
        "probes_refused_503": refused,
        "slowest_probe_ms": slowest_ms,
        "close_within_ms": close_within_ms,
        "probe_within_ms": probe_within_ms,
    });
    verdict.summarize(format!(
        "{} held connections ({}) all closed by the stack within {longest} ms (bound {close_within_ms}); \
         {} probes answered, the slowest in {slowest_ms} ms (bound {probe_within_ms}), {refused} of them 503",
        held.len(),
        observed.join(", "),
        probes.len(),
    ))
}

/// Slow clients hold nothing for long (see the module).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowClientsCheck {
    pub name: String,
    /// Connections opened that send nothing.
    #[serde(default = "default_count")]
    pub idle: usize,
    /// Connections that send half a request head (the probe's request line and a header
    /// without its end) and stop.
    #[serde(default = "default_count")]
    pub half_sent: usize,
    /// Connections that send `stall`'s head with a long body declared, four bytes of it, and
    /// stop (needs `stall`).
    #[serde(default)]
    pub stalled: usize,
    /// The request whose body stalls: an upload (`{seq}` is the connection's number).
    #[serde(default)]
    pub stall: Option<RequestTemplate>,
    /// The body length the stalled requests declare.
    #[serde(default = "default_declared")]
    pub stall_declared_bytes: u64,
    /// The request that must still be answered while the connections are held.
    pub probe: RequestTemplate,
    #[serde(default = "default_probe_within_ms")]
    pub probe_within_ms: u64,
    #[serde(default = "default_probe_every_ms")]
    pub probe_every_ms: u64,
    /// Every held connection must be closed by the stack within this long of its opening.
    #[serde(default = "default_close_within_ms")]
    pub close_within_ms: u64,
}

fn default_count() -> usize {
    200
}

fn default_declared() -> u64 {
    10_000_000
}

fn default_probe_within_ms() -> u64 {
    1000
}

fn default_probe_every_ms() -> u64 {
    250
}

fn default_close_within_ms() -> u64 {
    6000
}

/// The most connections one check holds: stampede's own descriptors bound it.
const MAX_HELD: usize = 5000;

impl Kind for SlowClientsCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        let mut requests = vec![("probe", &self.probe)];
        requests.extend(self.stall.iter().map(|stall| ("stall", stall)));
        requests
    }

    fn validate(&self) -> Result<(), FieldError> {
        if self.idle + self.half_sent + self.stalled == 0 {
            return Err(FieldError::new("idle", "hold at least one connection (idle, half_sent or stalled)"));
        }
        if self.idle + self.half_sent + self.stalled > MAX_HELD {
            return Err(FieldError::new("idle", format!("at most {MAX_HELD} connections in all")));
        }
        if self.stalled > 0 && self.stall.is_none() {
            return Err(FieldError::new("stall", "stalled connections need the `stall` request (an upload)"));
        }
        at_least_one("probe_within_ms", self.probe_within_ms)?;
        at_least_one("probe_every_ms", self.probe_every_ms)?;
        at_least_one("close_within_ms", self.close_within_ms)?;
        if self.close_within_ms < 3 * 100 {
            return Err(FieldError::new("close_within_ms", "close_within_ms must be at least 300"));
        }
        Ok(())
    }

    /// A stack stampede starts closes a silent or stalled connection after a third of the
    /// bound: its header-read, idle and body deadlines.
    fn needs(&self) -> Vec<Need> {
        vec![Need::ConnectionDeadline(Duration::from_millis(self.close_within_ms / 3))]
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold_op(shape: &str, closed_after_ms: Option<u64>) -> Op {
        Op {
            process: 1,
            instance: 0,
            action: "hold".to_owned(),
            invoke_us: 0,
            complete_us: 0,
            status: None,
            outcome: Outcome::Ok,
            value: json!({ "shape": shape, "closed_after_ms": closed_after_ms, "ended": "closed" }),
        }
    }

    fn probe(status: Option<u16>, retry_after: bool, ms: u64) -> Op {
        Op {
            process: 0,
            instance: 0,
            action: "probe".to_owned(),
            invoke_us: 0,
            complete_us: ms * 1000,
            status,
            outcome: if status.is_some() { Outcome::Ok } else { Outcome::Unknown },
            value: json!({ "retry_after": retry_after }),
        }
    }

    #[test]
    fn connections_closed_in_time_and_probes_answered_hold() {
        let h =
            vec![hold_op("idle", Some(2010)), hold_op("half-sent", Some(2005)), probe(Some(200), false, 3)];
        let verdict = judge("s", [1, 1, 0], 6000, 1000, &h);
        assert!(verdict.held(), "{:?} {:?}", verdict.violations, verdict.missing());
        assert!(
            verdict
                .summary
                .contains("2 held connections (1 idle, 1 half-sent) all closed by the stack within 2010 ms"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn mutant_no_deadlines_is_caught_keeping_connections_open() {
        // NoDeadlines: nothing closes a silent connection.
        let h = vec![
            hold_op("idle", None),
            hold_op("idle", Some(1500)),
            hold_op("half-sent", None),
            probe(Some(200), false, 2),
        ];
        let verdict = judge("s", [2, 1, 0], 6000, 1000, &h);
        assert_eq!(verdict.rules(), ["held-open"]);
        assert!(
            verdict.violations[0].detail.contains("1 of 2 idle, 1 of 1 half-sent"),
            "{:?}",
            verdict.violations
        );
    }

    #[test]
    fn a_probe_unanswered_or_failed_without_retry_after_starves_and_a_503_with_it_does_not() {
        let h = vec![hold_op("idle", Some(100)), probe(Some(503), true, 1), probe(None, false, 1000)];
        let verdict = judge("s", [1, 0, 0], 6000, 1000, &h);
        assert_eq!(verdict.rules(), ["probe-starved"]);
        assert!(verdict.violations[0].detail.starts_with("1 of 2 probes"), "{:?}", verdict.violations);
        let h = vec![hold_op("idle", Some(100)), probe(Some(503), false, 1)];
        assert_eq!(judge("s", [1, 0, 0], 6000, 1000, &h).rules(), ["probe-starved"]);
    }

    #[test]
    fn connections_not_opened_or_no_probe_is_inconclusive() {
        let h = vec![hold_op("idle", Some(100)), probe(Some(200), false, 1)];
        let verdict = judge("s", [10, 0, 0], 6000, 1000, &h);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["connections-held"]));
        let verdict = judge("s", [1, 0, 0], 6000, 1000, &[hold_op("idle", Some(100))]);
        assert_eq!(verdict.missing(), ["probes-sent"]);
    }

    #[test]
    fn stalled_uploads_refused_at_once_are_no_evidence_and_each_shape_must_be_held() {
        let mut refused = hold_op("stalled", Some(3));
        refused.value["answer"] = json!("HTTP/1.1 429 Too Many Requests");
        let mut timed_out = hold_op("stalled", Some(2004));
        timed_out.value["answer"] = json!("HTTP/1.1 408 Request Timeout");
        let mut h: Vec<Op> = (0..20).map(|_| hold_op("idle", Some(2000))).collect();
        h.extend([refused.clone(), refused, timed_out, probe(Some(200), false, 1)]);
        // 20 of 20 idle, but 1 of 3 stalled: the body deadline was barely asked.
        let verdict = judge("s", [20, 0, 3], 6000, 1000, &h);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["connections-held"]));
        assert!(verdict.summary.contains("1 of 3 stalled"), "{}", verdict.summary);
        assert_eq!(verdict.evidence["connections"][2]["refused_before_stalling"], 2);
    }

    #[test]
    fn a_stalled_request_head_declares_its_body_and_keeps_the_headers() {
        let client = reqwest::Client::new();
        let request = client
            .post("http://127.0.0.1:8080/v1/uploads?x=1")
            .header("authorization", "Bearer t0k")
            .body("ignored")
            .build()
            .unwrap();
        let head = String::from_utf8(stalled_head(&request, 10_000_000)).unwrap();
        assert!(head.starts_with("POST /v1/uploads?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"), "{head}");
        assert!(head.contains("authorization: Bearer t0k\r\n"), "{head}");
        assert!(head.ends_with("Content-Length: 10000000\r\n\r\n"), "{head}");
        assert_eq!(head.matches("Content-Length").count(), 1, "{head}");
    }
}
