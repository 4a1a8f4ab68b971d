//! #7 circuit breaker: callers arriving after the open period, every interleaving.

use std::sync::Arc;

use loom::thread;
use reference::circuit_breaker::{Breaker, CallOutcome, CircuitBreaker, invariant, mutants, seed};
use reference::clock::ManualClock;
use reference::store::MemoryStore;
use reference::sync::block_on;

use crate::common::{Found, assert_caught, assert_holds, explore};

/// The breaker opened by the seed's five failures, its open period just over.
fn opened() -> (MemoryStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(0));
    let store = MemoryStore::new(clock.clone());
    let breaker = CircuitBreaker::new(store.clone(), clock.clone(), "cb", seed::POLICY);
    for _ in 0..seed::POLICY.failure_threshold {
        let permit = block_on(breaker.acquire()).unwrap().unwrap();
        block_on(breaker.record(permit, CallOutcome::Failure)).unwrap();
    }
    clock.advance(seed::POLICY.open_for);
    (store, clock)
}

/// `callers` instances of the breaker (the main thread one of them) ask for a permit at once.
fn callers_after_open<B: Breaker + 'static>(
    callers: usize,
    make: impl Fn(&MemoryStore, &Arc<ManualClock>) -> B,
    found: &Found,
) {
    let (store, clock) = opened();
    let spawned: Vec<_> = (1..callers)
        .map(|_| {
            let breaker = make(&store, &clock);
            thread::spawn(move || block_on(breaker.acquire()).unwrap().is_ok())
        })
        .collect();
    let mut admitted = vec![block_on(make(&store, &clock).acquire()).unwrap().is_ok()];
    admitted.extend(spawned.into_iter().map(|h| h.join().unwrap()));
    found.record(invariant::one_trial(callers, admitted.iter().filter(|a| **a).count()));
}

fn correct(store: &MemoryStore, clock: &Arc<ManualClock>) -> CircuitBreaker<MemoryStore> {
    CircuitBreaker::new(store.clone(), clock.clone(), "cb", seed::POLICY)
}

fn half_open_admits_all(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
) -> mutants::HalfOpenAdmitsAll<MemoryStore> {
    mutants::HalfOpenAdmitsAll { breaker: correct(store, clock) }
}

/// Three callers admitted while closed report their failures at once, on top of one earlier
/// failure: the compare-and-set loop counts every one.
fn concurrent_failures(found: &Found) {
    let clock = Arc::new(ManualClock::new(0));
    let store = MemoryStore::new(clock.clone());
    let breaker = Arc::new(correct(&store, &clock));
    let permits: Vec<_> = (0..4).map(|_| block_on(breaker.acquire()).unwrap().unwrap()).collect();
    let mut permits = permits.into_iter();
    block_on(breaker.record(permits.next().unwrap(), CallOutcome::Failure)).unwrap();
    let spawned: Vec<_> = permits
        .by_ref()
        .take(2)
        .map(|permit| {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || block_on(breaker.record(permit, CallOutcome::Failure)).unwrap())
        })
        .collect();
    block_on(breaker.record(permits.next().unwrap(), CallOutcome::Failure)).unwrap();
    for handle in spawned {
        handle.join().unwrap();
    }
    found.record(invariant::failures_counted(4, &block_on(breaker.state()).unwrap()));
}

#[test]
fn circuit_breaker_concurrent_failures_all_counted() {
    assert_holds(&explore(concurrent_failures));
}

#[test]
fn circuit_breaker_half_open_admits_one_trial() {
    assert_holds(&explore(|found| callers_after_open(3, correct, found)));
}

#[test]
fn circuit_breaker_mutant_half_open_admits_all_caught_by_loom() {
    let found = explore(|found| callers_after_open(3, half_open_admits_all, found));
    assert_caught(&found, "multiple-trials");
}
