//! #11 token refresh: scheduler instances ticking in the same period, every interleaving.

use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use reference::clock::ManualClock;
use reference::store::MemoryStore;
use reference::sync::block_on;
use reference::token_refresh::{
    Grant, RefreshError, RefreshScheduler, Refresher, Scheduler, invariant, mutants, seed,
};

use crate::common::{Found, assert_caught, assert_holds, explore};

/// The upstream token endpoint, counting the refreshes it grants.
#[derive(Default)]
struct Upstream {
    granted: AtomicUsize,
}

impl Refresher for Upstream {
    async fn refresh(&self, token_id: &str, refresh_token: &str) -> Result<Grant, RefreshError> {
        let n = self.granted.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Grant {
            access_token: format!("{token_id}#{n}"),
            refresh_token: refresh_token.to_owned(),
            expires_in: seed::POLICY.lifetime(),
        })
    }
}

type Correct = RefreshScheduler<MemoryStore, Arc<Upstream>>;

fn correct(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    upstream: &Arc<Upstream>,
    instance: usize,
) -> Correct {
    RefreshScheduler::new(
        store.clone(),
        clock.clone(),
        upstream.clone(),
        format!("beat-{instance}"),
        seed::POLICY,
    )
}

fn no_lease(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    upstream: &Arc<Upstream>,
    instance: usize,
) -> mutants::NoLease<MemoryStore, Arc<Upstream>> {
    mutants::NoLease { scheduler: correct(store, clock, upstream, instance) }
}

/// One token connected in period 0; `instances` schedulers (the main thread one of them) tick
/// at once in period 1, when its refresh is due.
fn instances_tick<T, F>(instances: usize, make: F, found: &Found)
where
    T: Scheduler + 'static,
    F: Fn(&MemoryStore, &Arc<ManualClock>, &Arc<Upstream>, usize) -> T,
{
    let clock = Arc::new(ManualClock::new(0));
    let store = MemoryStore::new(clock.clone());
    let upstream = Arc::new(Upstream::default());
    let grant = Grant {
        access_token: "t0#0".into(),
        refresh_token: "t0-refresh".into(),
        expires_in: seed::POLICY.lifetime(),
    };
    block_on(correct(&store, &clock, &upstream, 0).connect("t0", grant)).unwrap();
    clock.advance(seed::POLICY.period());
    let spawned: Vec<_> = (1..instances)
        .map(|i| {
            let scheduler = make(&store, &clock, &upstream, i);
            thread::spawn(move || block_on(scheduler.tick()).unwrap())
        })
        .collect();
    block_on(make(&store, &clock, &upstream, 0).tick()).unwrap();
    for handle in spawned {
        handle.join().unwrap();
    }
    found.record(invariant::one_refresh_per_period("t0", 1, upstream.granted.load(Ordering::SeqCst)));
}

#[test]
fn token_refresh_one_refresh_per_period() {
    assert_holds(&explore(|found| instances_tick(3, correct, found)));
}

#[test]
fn token_refresh_mutant_no_lease_caught_by_loom() {
    let found = explore(|found| instances_tick(3, no_lease, found));
    assert_caught(&found, "duplicate-refresh");
}
