//! The conformance suite (`reference::store_conformance!`: the primitives' semantics, the
//! components' contention suites and the race mutants they catch) on real threads against a
//! real Redis, plus the suites only Redis runs: GCRA, token refresh and WebSocket message
//! limits.
//!
//! Suites that must move time under the store (`status_tracker::suite::
//! expires_a_day_after_last_write`, `ws_session::suite::
//! heartbeats_hold_slots` and `lapsed_slots_freed`, `daily_quota::suite::
//! resets_at_local_midnight`) are not run here: Redis's clock is the server's, and a
//! `ManualClock` cannot move it. The suites below move a `ManualClock` only where it names
//! windows and days, never where it stands for TTL expiry. The fixed window's end is waited for
//! in real time (a one-second window).

use std::sync::Arc;
use std::time::Duration;

use reference::clock::ManualClock;
use reference::conformance::{MUTANT_ROUNDS, THREADS, clock};
use reference::limit::Limit;
use reference::sync::block_on;
use reference::token_refresh::suite::FakeOAuth;
use reference::{gcra, token_refresh, ws_session};
use store_redis::RedisStore;

use crate::rig_or_skip;

// A visibility of 1 ms of Redis's clock: the queue suite reaps only between rounds, when every
// live worker has acknowledged, so only dead workers' tasks are in flight by then, and a round
// (its threads started and joined) outlasts a millisecond.
reference::store_conformance! {
    store = RedisStore,
    fresh = crate::common::rig,
    clock = |_| clock(),
    pass = |_, by| std::thread::sleep(by),
    visibility = Duration::from_millis(1),
}

// --- GCRA ---------------------------------------------------------------------------------

/// GCRA decides on Redis's `TIME`, which a `ManualClock` cannot move, so each round is one
/// burst on a fresh limiter with a long interval (10 per hour): the burst must admit exactly
/// `min(threads, burst)`, as the sequential GCRA would.
#[test]
fn gcra_contention_admits_exactly_the_burst() {
    let rig = rig_or_skip!("gcra-contention");
    let limit = Limit::new(10, Duration::from_secs(60 * 60));
    for round in 0..50 {
        let limiter = Arc::new(gcra::Gcra::new(rig.store.clone(), format!("gcra-{round}"), limit));
        gcra::suite::contention(limiter, &clock(), limit, THREADS, 1, &[Duration::ZERO]).unwrap();
    }
}

#[test]
fn gcra_mutant_get_then_set_caught_by_contention() {
    let rig = rig_or_skip!("gcra-get-then-set");
    let limit = Limit::new(1, Duration::from_secs(60 * 60));
    let caught = (0..MUTANT_ROUNDS).find_map(|round| {
        let clock = clock();
        let (store, prefix) = (rig.store.clone(), format!("gcra-{round}"));
        let mutant = gcra::mutants::GetThenSet { store, clock: clock.clone(), prefix, limit };
        gcra::suite::contention(Arc::new(mutant), &clock, limit, THREADS, 1, &[Duration::ZERO]).err()
    });
    let violation = caught.expect("the get-then-set GCRA over-admits some burst");
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

// --- token refresh ------------------------------------------------------------------------

fn schedulers(
    store: &RedisStore,
    clock: &Arc<ManualClock>,
    oauth: &Arc<FakeOAuth>,
    count: usize,
) -> Vec<token_refresh::RefreshScheduler<RedisStore, Arc<FakeOAuth>>> {
    (0..count)
        .map(|i| {
            token_refresh::RefreshScheduler::new(
                store.clone(),
                clock.clone(),
                oauth.clone(),
                format!("beat-{i}"),
                token_refresh::seed::POLICY,
            )
        })
        .collect()
}

/// The lease keys are named by period and live two periods of Redis's clock, so moving the
/// component's clock from period to period needs no expiry.
fn token_rig(store: &RedisStore) -> (Arc<ManualClock>, Arc<FakeOAuth>, Vec<String>) {
    let clock = clock();
    let oauth = Arc::new(FakeOAuth::new(clock.clone(), token_refresh::seed::POLICY.lifetime()));
    let connector = schedulers(store, &clock, &oauth, 1).remove(0);
    let tokens = (0..THREADS)
        .map(|i| {
            let id = format!("t{i}");
            block_on(connector.connect(&id, oauth.authorize(&id))).unwrap();
            id
        })
        .collect();
    (clock, oauth, tokens)
}

#[test]
fn token_refresh_contention_one_refresh_per_period() {
    let rig = rig_or_skip!("token-refresh");
    let (clock, oauth, tokens) = token_rig(&rig.store);
    let instances = schedulers(&rig.store, &clock, &oauth, THREADS);
    let policy = token_refresh::seed::POLICY;
    token_refresh::suite::contention(instances, &rig.store, &oauth, &clock, policy, &tokens, (20, 2))
        .unwrap();
}

#[test]
fn token_refresh_mutant_no_lease_caught_by_contention() {
    let rig = rig_or_skip!("token-no-lease");
    let (clock, oauth, tokens) = token_rig(&rig.store);
    let instances: Vec<_> = schedulers(&rig.store, &clock, &oauth, THREADS)
        .into_iter()
        .map(|scheduler| token_refresh::mutants::NoLease { scheduler })
        .collect();
    let policy = token_refresh::seed::POLICY;
    let violation =
        token_refresh::suite::contention(instances, &rig.store, &oauth, &clock, policy, &tokens, (20, 2))
            .unwrap_err();
    assert_eq!(violation.rule, "duplicate-refresh", "{violation}");
}

// --- WebSocket message limits ---------------------------------------------------------------

#[test]
fn ws_session_contention_message_limits_admit_exactly_each_budget() {
    let rig = rig_or_skip!("ws-messages");
    let limits = Arc::new(ws_session::MessageLimits::new(rig.store.clone()));
    ws_session::suite::message_limits(limits, THREADS, 8, 10).unwrap();
}
