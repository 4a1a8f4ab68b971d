//! The fake upstream's side of the checks that drive it: its control API (failures as target
//! errors, snapshots timed on the run's clock), the counts of one route, and imports that make
//! the stack call it.

use std::time::Duration;

use fake_upstream::{ControlClient, Fault, Route, Stats};
use serde_json::Value;

use client::{Answer, Target, TargetError};
use profile::template::RequestTemplate;

use crate::history::Record;

/// The fake upstream's control API, for one check.
#[derive(Debug, Clone)]
pub struct Control {
    client: ControlClient,
    url: String,
}

/// What the fake upstream had counted at an instant between `invoke_us` and `complete_us`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub stats: Stats,
    pub invoke_us: u64,
    pub complete_us: u64,
}

impl Snapshot {
    /// Requests to `route` that arrived, and those that have been answered or dropped.
    pub fn route(&self, route: Route) -> (u64, u64) {
        self.stats
            .routes
            .get(&route)
            .map_or((0, 0), |r| (r.requests, r.statuses.values().sum::<u64>() + r.dropped + r.abandoned))
    }

    /// The offset from the fake upstream's clock (ms since it started) to the run's (µs).
    pub fn offset_us(&self) -> i64 {
        let mid = (self.invoke_us + self.complete_us) / 2;
        mid as i64 - (self.stats.elapsed_ms as i64) * 1_000
    }
}

impl Control {
    /// The target's fake upstream, for check `check`.
    pub fn of(target: &Target, check: &str) -> Result<Self, TargetError> {
        let configuration = |reason: String| TargetError::Configuration { check: check.to_owned(), reason };
        let Some(url) = &target.upstream_control else {
            return Err(configuration(
                "this check drives the fake upstream the target calls; give its control URL with \
                 --upstream-control URL"
                    .to_owned(),
            ));
        };
        let client = ControlClient::new(url).map_err(|e| configuration(e.to_string()))?;
        Ok(Self { url: client.base_url().to_owned(), client })
    }

    fn failed(&self, e: fake_upstream::Error) -> TargetError {
        TargetError::Control { url: self.url.clone(), reason: e.to_string() }
    }

    /// Zeroes the counts and clears the faults.
    pub async fn reset(&self) -> Result<(), TargetError> {
        self.client.reset().await.map_err(|e| self.failed(e))
    }

    pub async fn set_faults(&self, faults: &[Fault]) -> Result<(), TargetError> {
        self.client.set_faults(faults).await.map_err(|e| self.failed(e))
    }

    pub async fn clear_faults(&self) -> Result<(), TargetError> {
        self.client.clear_faults().await.map_err(|e| self.failed(e))
    }

    pub async fn snapshot(&self, target: &Target) -> Result<Snapshot, TargetError> {
        let invoke_us = target.clock.now_us();
        let stats = self.client.stats().await.map_err(|e| self.failed(e))?;
        Ok(Snapshot { stats, invoke_us, complete_us: target.clock.now_us() })
    }
}

/// Submits an import of `unique` to `instance`: the answer and the id at `id` in it.
pub async fn import(
    target: &Target,
    instance: usize,
    token: &str,
    template: &RequestTemplate,
    unique: &str,
    id: &str,
) -> (Answer, Option<String>) {
    let answer = target.send(instance, Some(token), template, &[("unique", unique)]).await;
    let ok = answer.status.is_some_and(|s| (200..300).contains(&s));
    // A numeric id as its text, like every id a check reads.
    let id = if ok { crate::checkers::support::pointer_string(&answer.body, id) } else { None };
    (answer, id)
}

/// How each of a check's imports ended, as its status read back says: `(index, state)` ops.
#[derive(Debug, Clone)]
pub struct Ending<'a> {
    /// Reads an import's status; `{id}`.
    pub status: &'a RequestTemplate,
    /// JSON pointer to the processing state in the status.
    pub state: &'a str,
    /// The states that end an import.
    pub completed: &'a str,
    pub failed: &'a str,
}

/// Reads the status of every import in `imports` (`(instance, id)`) until each has ended or
/// `limit` has passed, at most 32 reads at a time; a `status` op per import, its value the
/// last state read (`ended` false for those still running, `completed` true for those that
/// ended completed).
pub async fn await_ended(
    target: &Target,
    tokens: &[String],
    ending: &Ending<'_>,
    imports: &[(usize, String)],
    limit: Duration,
) -> Vec<crate::history::Op> {
    use crate::history::Outcome;
    let deadline = tokio::time::Instant::now() + limit;
    let mut last: Vec<Option<Answer>> = vec![None; imports.len()];
    let mut ended = vec![false; imports.len()];
    loop {
        let pending: Vec<usize> = (0..imports.len()).filter(|i| !ended[*i]).collect();
        for chunk in pending.chunks(32) {
            let reads = chunk.iter().map(|&i| {
                let (instance, id) = &imports[i];
                let token = tokens[*instance].clone();
                async move { (i, target.send(*instance, Some(&token), ending.status, &[("id", id)]).await) }
            });
            for (i, answer) in futures_util::future::join_all(reads).await {
                let state = answer.body.pointer(ending.state).and_then(Value::as_str);
                ended[i] = state.is_some_and(|s| s == ending.completed || s == ending.failed);
                last[i] = Some(answer);
            }
        }
        if ended.iter().all(|e| *e) || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last.into_iter()
        .zip(imports)
        .zip(ended)
        .map(|((answer, (instance, id)), ended)| {
            let answer = answer.expect("every import's status was read at least once");
            let state = answer.body.pointer(ending.state).cloned().unwrap_or(Value::Null);
            let completed = state.as_str() == Some(ending.completed);
            // Ended; read and not ended (the import pending still); or not read at all.
            let outcome = match () {
                _ if ended => Outcome::Ok,
                _ if answer.status.is_some_and(|s| (200..300).contains(&s)) && state.is_string() => {
                    Outcome::Fail
                }
                _ => Outcome::Unknown,
            };
            answer.op(
                0,
                *instance,
                "status",
                outcome,
                serde_json::json!({ "id": id, "state": state, "ended": ended, "completed": completed }),
            )
        })
        .collect()
}

impl Control {
    /// Samples the counts every 50 ms until `of(stats)` has not changed for `settle` (and
    /// `busy(stats)` holds), or `limit` has passed; the last snapshot, and whether it settled.
    pub async fn plateau<T: PartialEq>(
        &self,
        target: &Target,
        settle: Duration,
        limit: Duration,
        of: impl Fn(&Stats) -> T,
        busy: impl Fn(&Stats) -> bool,
    ) -> Result<(Snapshot, bool), TargetError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut snapshot = self.snapshot(target).await?;
        let mut since = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let next = self.snapshot(target).await?;
            let now = tokio::time::Instant::now();
            if of(&next.stats) != of(&snapshot.stats) || !busy(&next.stats) {
                since = now;
            }
            snapshot = next;
            if now.duration_since(since) >= settle {
                return Ok((snapshot, true));
            }
            if now >= deadline {
                return Ok((snapshot, false));
            }
        }
    }
}
