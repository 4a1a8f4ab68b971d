//! The token refresh as the field deployed it.

use crate::clock::millis;
use crate::store::{Store, StoreResult};

use super::{Credential, RefreshScheduler, Refresher, Scheduler, TickOutcome, connected, load, token_key};

/// No lease: the seed's development command (`celery worker --beat`) run on every instance, so
/// every instance's beat fires the refresh task, and the task refreshes unconditionally. K
/// instances make K refreshes per token per period, each spending the upstream's quota, and
/// each overwriting the credential the others just stored.
#[derive(Debug)]
pub struct NoLease<S, R> {
    pub scheduler: RefreshScheduler<S, R>,
}

impl<S: Store, R: Refresher> Scheduler for NoLease<S, R> {
    async fn tick(&self) -> StoreResult<Vec<(String, TickOutcome)>> {
        let s = &self.scheduler;
        let mut outcomes = Vec::new();
        for id in connected(&s.store).await? {
            let now = s.clock.now();
            let outcome = match load(&s.store, &id).await? {
                None => TickOutcome::Disconnected,
                Some((_, current)) => match s.refresher.refresh(&id, &current.refresh_token).await {
                    Err(e) => TickOutcome::Failed(e),
                    Ok(grant) => {
                        let expires_at = now.saturating_add(millis(grant.expires_in));
                        let next = Credential {
                            access_token: grant.access_token,
                            refresh_token: grant.refresh_token,
                            expires_at,
                        };
                        s.store.set(&token_key(&id), next.encode(), None).await?;
                        TickOutcome::Refreshed { expires_at }
                    }
                },
            };
            outcomes.push((id, outcome));
        }
        Ok(outcomes)
    }
}
