//! #7 Circuit breaker (seed 002, "Fix #3").
//!
//! `failure_threshold` consecutive failures open the breaker; while open, every call fails fast
//! without reaching the upstream. Once `open_for` has passed the breaker is half-open and exactly
//! one caller is admitted as the trial: its success closes the breaker, its failure re-opens it
//! for another `open_for`. A trial that never reports (its caller died) holds the half-open
//! state only for `trial_timeout`; then one new trial may go. A success while closed resets the
//! consecutive-failure count.
//!
//! The state is one record at one key, so every instance holding the same store shares one
//! breaker. Each transition is a compare-and-set from the exact record read, retried on
//! conflict: of several callers that find the open period over, exactly one claims the trial.
//! The record carries a generation, bumped by every transition, and a permit's result counts
//! only in the generation it was issued in, so a late report from before a transition (a call
//! admitted while closed that fails after the breaker opened, a trial whose lease was taken
//! over) cannot corrupt the state that followed.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, Millis, millis};
use crate::store::{Store, StoreError, StoreResult};

pub const COMPONENT: &str = "circuit-breaker";

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before it admits a trial.
    pub open_for: Duration,
    /// How long a trial may stay unreported before another trial may go.
    pub trial_timeout: Duration,
}

/// The seed's breaker around the third-party API client.
pub mod seed {
    use super::Policy;
    use std::time::Duration;

    /// 5 consecutive failures, 60 s open; the trial's lease is the client's 10 s request
    /// timeout, after which the trial call cannot still be running.
    pub const POLICY: Policy = Policy {
        failure_threshold: 5,
        open_for: Duration::from_secs(60),
        trial_timeout: Duration::from_secs(10),
    };
}

/// The shared record. Every transition bumps `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed {
        generation: u64,
        failures: u32,
    },
    /// Open until `until`; from then on half-open with no trial in flight.
    Open {
        generation: u64,
        until: Millis,
    },
    /// A trial is in flight; its lease ends at `lease_until`.
    HalfOpen {
        generation: u64,
        lease_until: Millis,
    },
}

/// What a caller sees of a [`State`] at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Closed,
    Open,
    HalfOpen,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half-open",
        })
    }
}

impl State {
    /// A breaker that has never been used.
    pub const INITIAL: State = State::Closed { generation: 0, failures: 0 };

    pub fn generation(&self) -> u64 {
        match *self {
            State::Closed { generation, .. }
            | State::Open { generation, .. }
            | State::HalfOpen { generation, .. } => generation,
        }
    }

    pub fn phase(&self, now: Millis) -> Phase {
        match *self {
            State::Closed { .. } => Phase::Closed,
            State::Open { until, .. } if now < until => Phase::Open,
            State::Open { .. } | State::HalfOpen { .. } => Phase::HalfOpen,
        }
    }

    /// The record's text, e.g. `open 3 1700000060000`.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            State::Closed { generation, failures } => format!("closed {generation} {failures}"),
            State::Open { generation, until } => format!("open {generation} {until}"),
            State::HalfOpen { generation, lease_until } => format!("half-open {generation} {lease_until}"),
        }
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<State> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split(' ');
        let (tag, generation, value) = (fields.next()?, fields.next()?.parse().ok()?, fields.next()?);
        if fields.next().is_some() {
            return None;
        }
        Some(match tag {
            "closed" => State::Closed { generation, failures: value.parse().ok()? },
            "open" => State::Open { generation, until: value.parse().ok()? },
            "half-open" => State::HalfOpen { generation, lease_until: value.parse().ok()? },
            _ => return None,
        })
    }
}

/// Leave to call the upstream once; report its result with [`Breaker::record`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a permit's result must be recorded"]
pub struct Permit {
    generation: u64,
    trial: bool,
}

impl Permit {
    /// Whether this is the half-open trial.
    pub fn is_trial(&self) -> bool {
        self.trial
    }
}

/// The call was refused without reaching the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker is {phase}; upstream not called; retry in {} ms", retry_after.as_millis())]
pub struct Rejected {
    pub phase: Phase,
    /// When a call could be admitted again: the open period's end, or the trial lease's.
    pub retry_after: Duration,
}

/// How an admitted upstream call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Success,
    Failure,
}

/// Why [`call`] returned without a value.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    #[error(transparent)]
    Rejected(#[from] Rejected),
    #[error("upstream call failed: {0}")]
    Upstream(E),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A circuit breaker: the correct one and its mutants.
pub trait Breaker: Send + Sync {
    /// Admits one upstream call, or refuses it without calling anything.
    fn acquire(&self) -> impl Future<Output = StoreResult<Result<Permit, Rejected>>> + Send;

    /// Reports how the call admitted by `permit` ended.
    fn record(&self, permit: Permit, outcome: CallOutcome) -> impl Future<Output = StoreResult<()>> + Send;

    /// The shared record as it is now.
    fn state(&self) -> impl Future<Output = StoreResult<State>> + Send;
}

/// Calls `upstream` through `breaker`: refused without calling it unless admitted, its result
/// recorded when it is.
pub async fn call<B, F, Fut, T, E>(breaker: &B, upstream: F) -> Result<T, CallError<E>>
where
    B: Breaker,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let permit = breaker.acquire().await??;
    let result = upstream().await;
    let outcome = if result.is_ok() { CallOutcome::Success } else { CallOutcome::Failure };
    breaker.record(permit, outcome).await?;
    result.map_err(CallError::Upstream)
}

/// What one attempt of a compare-and-set loop decided.
enum Step<T> {
    /// Nothing to write; return this.
    Keep(T),
    /// Write this state if the record is still the one read, then return this.
    Write(State, T),
}

/// The correct breaker.
#[derive(Clone)]
pub struct CircuitBreaker<S> {
    store: S,
    clock: Arc<dyn Clock>,
    key: String,
    policy: Policy,
}

impl<S> fmt::Debug for CircuitBreaker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker").field("key", &self.key).field("policy", &self.policy).finish()
    }
}

impl<S: Store> CircuitBreaker<S> {
    /// A breaker whose record lives at `key`; every instance built on the same store and key
    /// shares it.
    pub fn new(store: S, clock: Arc<dyn Clock>, key: impl Into<String>, policy: Policy) -> Self {
        Self { store, clock, key: key.into(), policy }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The raw record and the state it holds.
    async fn load(&self) -> StoreResult<(Option<Vec<u8>>, State)> {
        let raw = self.store.get(&self.key).await?;
        let state = match &raw {
            None => State::INITIAL,
            Some(bytes) => State::decode(bytes).ok_or_else(|| StoreError::WrongKind {
                key: self.key.clone(),
                expected: "a circuit-breaker record",
            })?,
        };
        Ok((raw, state))
    }

    /// Applies `decide` to the current state until its write lands on the record it read.
    async fn update<T>(&self, decide: impl Fn(State, Millis) -> Step<T>) -> StoreResult<T> {
        loop {
            let (raw, state) = self.load().await?;
            match decide(state, self.clock.now()) {
                Step::Keep(value) => return Ok(value),
                Step::Write(next, value) => {
                    if self.store.compare_and_set(&self.key, raw.as_deref(), next.encode(), None).await? {
                        return Ok(value);
                    }
                }
            }
        }
    }
}

/// The instant `duration` after `now`.
fn after(now: Millis, duration: Duration) -> Millis {
    now.saturating_add(millis(duration))
}

impl<S: Store> Breaker for CircuitBreaker<S> {
    async fn acquire(&self) -> StoreResult<Result<Permit, Rejected>> {
        let policy = self.policy;
        self.update(|state, now| match state {
            State::Closed { generation, .. } => Step::Keep(Ok(Permit { generation, trial: false })),
            State::Open { until, .. } if now < until => Step::Keep(Err(Rejected {
                phase: Phase::Open,
                retry_after: Duration::from_millis(until - now),
            })),
            State::HalfOpen { lease_until, .. } if now < lease_until => Step::Keep(Err(Rejected {
                phase: Phase::HalfOpen,
                retry_after: Duration::from_millis(lease_until - now),
            })),
            // The open period is over, or the trial's lease expired: claim the (new) trial.
            State::Open { generation, .. } | State::HalfOpen { generation, .. } => {
                let generation = generation + 1;
                let lease_until = after(now, policy.trial_timeout);
                Step::Write(
                    State::HalfOpen { generation, lease_until },
                    Ok(Permit { generation, trial: true }),
                )
            }
        })
        .await
    }

    async fn record(&self, permit: Permit, outcome: CallOutcome) -> StoreResult<()> {
        let policy = self.policy;
        self.update(|state, now| {
            if state.generation() != permit.generation {
                // Reported after a transition: it belongs to a state that no longer exists.
                return Step::Keep(());
            }
            let reopen =
                State::Open { generation: permit.generation + 1, until: after(now, policy.open_for) };
            match (state, permit.trial, outcome) {
                (State::Closed { failures: 0, .. }, false, CallOutcome::Success) => Step::Keep(()),
                (State::Closed { generation, .. }, false, CallOutcome::Success) => {
                    Step::Write(State::Closed { generation, failures: 0 }, ())
                }
                (State::Closed { failures, .. }, false, CallOutcome::Failure)
                    if failures + 1 >= policy.failure_threshold =>
                {
                    Step::Write(reopen, ())
                }
                (State::Closed { generation, failures }, false, CallOutcome::Failure) => {
                    Step::Write(State::Closed { generation, failures: failures + 1 }, ())
                }
                (State::HalfOpen { generation, .. }, true, CallOutcome::Success) => {
                    Step::Write(State::Closed { generation: generation + 1, failures: 0 }, ())
                }
                (State::HalfOpen { .. }, true, CallOutcome::Failure) => Step::Write(reopen, ()),
                _ => Step::Keep(()),
            }
        })
        .await
    }

    async fn state(&self) -> StoreResult<State> {
        Ok(self.load().await?.1)
    }
}
