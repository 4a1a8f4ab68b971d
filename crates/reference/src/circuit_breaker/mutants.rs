//! The circuit breaker as the field wrote it.

use std::time::Duration;

use crate::store::{Store, StoreResult};

use super::{Breaker, CallOutcome, CircuitBreaker, Permit, Phase, Rejected, State, after};

/// The seed's `CircuitBreaker.call`: once the recovery timeout has passed it *sets* the state
/// to half-open and lets the call through, and every call that *reads* half-open goes through
/// as well. The trial is never claimed, so each caller that arrives after the open period —
/// while the first trial is still in flight — reaches the upstream that is probably still down.
/// Results are recorded like the correct breaker's.
#[derive(Debug, Clone)]
pub struct HalfOpenAdmitsAll<S> {
    pub breaker: CircuitBreaker<S>,
}

impl<S: Store> Breaker for HalfOpenAdmitsAll<S> {
    async fn acquire(&self) -> StoreResult<Result<Permit, Rejected>> {
        let b = &self.breaker;
        let (_, state) = b.load().await?;
        let now = b.clock.now();
        Ok(match state {
            State::Closed { generation, .. } => Ok(Permit { generation, trial: false }),
            State::Open { until, .. } if now < until => {
                Err(Rejected { phase: Phase::Open, retry_after: Duration::from_millis(until - now) })
            }
            State::Open { generation, .. } => {
                let generation = generation + 1;
                let lease_until = after(now, b.policy.trial_timeout);
                b.store.set(&b.key, State::HalfOpen { generation, lease_until }.encode(), None).await?;
                Ok(Permit { generation, trial: true })
            }
            State::HalfOpen { generation, .. } => Ok(Permit { generation, trial: true }),
        })
    }

    async fn record(&self, permit: Permit, outcome: CallOutcome) -> StoreResult<()> {
        self.breaker.record(permit, outcome).await
    }

    async fn state(&self) -> StoreResult<State> {
        self.breaker.state().await
    }
}
