//! The components' contention suites from `reference::<component>::suite`, on real threads
//! against a real Redis, and the race mutants they catch there.
//!
//! Suites that must move time under the store (`fixed_window::suite::window_ends`,
//! `status_tracker::suite::expires_a_day_after_last_write`, `ws_session::suite::
//! heartbeats_hold_slots` and `lapsed_slots_freed`, `daily_quota::suite::
//! resets_at_local_midnight`) are not run here: Redis's clock is the server's, and a
//! `ManualClock` cannot move it. The suites below move a `ManualClock` only where it names
//! windows and days, never where it stands for TTL expiry.

use std::sync::Arc;
use std::time::Duration;

use jiff::civil::date;
use jiff::tz::TimeZone;
use reference::clock::{ManualClock, Millis};
use reference::limit::{Limit, seed as limits};
use reference::store::Delivery;
use reference::sync::block_on;
use reference::task_queue::suite::Fate;
use reference::token_refresh::suite::FakeOAuth;
use reference::usage_tracker::UsageLimits;
use reference::{
    daily_quota, fixed_window, gcra, status_tracker, task_queue, token_refresh, usage_tracker, video,
    ws_session,
};
use store_redis::RedisStore;

use crate::rig_or_skip;

const THREADS: usize = 16;
/// Ceiling on the rounds a mutant gets; the suites stop at the first violation, which on a
/// real server comes within the first few rounds.
const MUTANT_ROUNDS: usize = 1_000;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

// --- fixed window -------------------------------------------------------------------------

#[test]
fn fixed_window_contention_admits_exactly_the_limit() {
    let rig = rig_or_skip!("fw-contention");
    let limiter = Arc::new(fixed_window::FixedWindow::new(rig.store.clone(), "rl", limits::USER_TOKEN));
    fixed_window::suite::contention(limiter, limits::USER_TOKEN.max, THREADS, 200).unwrap();
}

#[test]
fn fixed_window_keys_isolated_under_contention() {
    let rig = rig_or_skip!("fw-isolated");
    let limiter = Arc::new(fixed_window::FixedWindow::new(rig.store.clone(), "rl", limits::UPLOADS));
    fixed_window::suite::keys_isolated(limiter, limits::UPLOADS.max, 4, 20).unwrap();
}

#[test]
fn fixed_window_mutant_get_then_set_caught_by_contention() {
    let rig = rig_or_skip!("fw-get-then-set");
    let limit = Limit::new(1, Duration::from_secs(60));
    let mutant = fixed_window::mutants::GetThenSet { store: rig.store.clone(), prefix: "rl".into(), limit };
    let violation = fixed_window::suite::contention(Arc::new(mutant), 1, THREADS, MUTANT_ROUNDS).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

#[test]
fn fixed_window_key_always_carries_ttl() {
    let rig = rig_or_skip!("fw-ttl");
    let (store, limit) = (&rig.store, limits::USER_TOKEN);
    let limiter = fixed_window::FixedWindow::new(store.clone(), "rl", limit);
    fixed_window::suite::ttl_always_set(&limiter, store, "rl:u1", "u1", limit).unwrap();
}

#[test]
fn fixed_window_mutant_incr_without_ttl_caught_by_ttl_check() {
    let rig = rig_or_skip!("fw-no-ttl");
    let (store, limit) = (&rig.store, limits::USER_TOKEN);
    let mutant = fixed_window::mutants::IncrWithoutTtl { store: store.clone(), prefix: "rl".into(), limit };
    let violation = fixed_window::suite::ttl_always_set(&mutant, store, "rl:u1", "u1", limit).unwrap_err();
    assert_eq!(violation.rule, "key-without-ttl", "{violation}");
}

// --- daily quota --------------------------------------------------------------------------

fn quota_clock() -> Arc<ManualClock> {
    let zone = TimeZone::get("America/New_York").unwrap();
    let start = date(2026, 6, 15).at(9, 0, 0, 0).to_zoned_datetime(zone).unwrap().timestamp();
    Arc::new(ManualClock::new(Millis::try_from(start.as_millisecond()).unwrap()))
}

const TIGHT: daily_quota::QuotaPolicy =
    daily_quota::QuotaPolicy { limit: 30, units_per_import: 3, warn_percent: 80 };

fn quota(store: &RedisStore, policy: daily_quota::QuotaPolicy) -> daily_quota::DailyQuota<RedisStore> {
    let zone = TimeZone::get("America/New_York").unwrap();
    daily_quota::DailyQuota::new(store.clone(), quota_clock(), "quota", zone, policy)
}

#[test]
fn daily_quota_contention_loses_no_units() {
    let rig = rig_or_skip!("dq-contention");
    let policy = daily_quota::SEED;
    daily_quota::suite::contention(
        Arc::new(quota(&rig.store, policy)),
        policy.limit,
        policy.units_per_import,
        THREADS,
        200,
    )
    .unwrap();
}

#[test]
fn daily_quota_contention_admits_exactly_up_to_the_limit() {
    let rig = rig_or_skip!("dq-tight");
    daily_quota::suite::contention(
        Arc::new(quota(&rig.store, TIGHT)),
        TIGHT.limit,
        TIGHT.units_per_import,
        THREADS,
        200,
    )
    .unwrap();
}

#[test]
fn daily_quota_mutant_incr_or_set_caught_by_contention() {
    let rig = rig_or_skip!("dq-incr-or-set");
    let policy = daily_quota::SEED;
    let mutant = daily_quota::mutants::IncrOrSet {
        store: rig.store.clone(),
        clock: quota_clock(),
        prefix: "quota".into(),
        zone: TimeZone::get("America/New_York").unwrap(),
        policy,
    };
    let violation = daily_quota::suite::contention(
        Arc::new(mutant),
        policy.limit,
        policy.units_per_import,
        THREADS,
        MUTANT_ROUNDS,
    )
    .unwrap_err();
    assert_eq!(violation.rule, "lost-units", "{violation}");
}

// --- video get-or-create --------------------------------------------------------------------

#[test]
fn video_contention_new_url_created_and_claimed_once() {
    let rig = rig_or_skip!("video-new");
    video::suite::new_url(Arc::new(video::Registry::new(rig.store.clone())), THREADS, 200).unwrap();
}

#[test]
fn video_contention_failed_video_reclaimed_once() {
    let rig = rig_or_skip!("video-failed");
    video::suite::failed_retry(Arc::new(video::Registry::new(rig.store.clone())), THREADS, 100).unwrap();
}

#[test]
fn video_contention_settled_videos_never_reprocessed_and_one_transition_wins() {
    let rig = rig_or_skip!("video-transitions");
    let registry = Arc::new(video::Registry::new(rig.store.clone()));
    video::suite::settled(Arc::clone(&registry), THREADS).unwrap();
    video::suite::one_transition_wins(Arc::clone(&registry), THREADS, 50).unwrap();
    video::suite::refuses_illegal_transitions(&*registry).unwrap();
}

#[test]
fn video_mutant_check_then_insert_caught_by_contention() {
    let rig = rig_or_skip!("video-check-then-insert");
    let mutant = video::mutants::CheckThenInsert { store: rig.store.clone() };
    let violation = video::suite::new_url(Arc::new(mutant), THREADS, MUTANT_ROUNDS).unwrap_err();
    assert_eq!(violation.rule, "duplicate-create", "{violation}");
}

// --- status tracker -------------------------------------------------------------------------

#[test]
fn status_tracker_contention_disjoint_merges_all_survive() {
    let rig = rig_or_skip!("status-merges");
    let tracker = Arc::new(status_tracker::Tracker::new(rig.store.clone()));
    status_tracker::suite::disjoint_merges(tracker, THREADS, 4, 30).unwrap();
}

#[test]
fn status_tracker_mutant_read_modify_write_caught_by_contention() {
    let rig = rig_or_skip!("status-rmw");
    let mutant = Arc::new(status_tracker::mutants::ReadModifyWrite { store: rig.store.clone() });
    let violation = status_tracker::suite::disjoint_merges(mutant, THREADS, 4, MUTANT_ROUNDS).unwrap_err();
    assert_eq!(violation.rule, "lost-field", "{violation}");
}

// --- usage tracker --------------------------------------------------------------------------

/// 16 threads making 4 requests each per burst, an hour of the component's clock between
/// bursts (it names the hour and day counters; their TTLs run on Redis's clock).
fn usage_contention<T: usage_tracker::UsageTracking + 'static>(
    tracker: T,
    store: &RedisStore,
    clock: &ManualClock,
    rounds: usize,
) -> reference::invariant::Verdict {
    let load = usage_tracker::suite::Load {
        threads: THREADS,
        calls_per_thread: 4,
        rounds,
        step: Duration::from_secs(60 * 60),
    };
    usage_tracker::suite::contention(Arc::new(tracker), store, clock, UsageLimits::SEED, "api", load)
}

#[test]
fn usage_tracker_contention_grants_exactly_the_remaining_quota() {
    let rig = rig_or_skip!("usage-contention");
    let clock = clock();
    let tracker =
        usage_tracker::UsageTracker::new(rig.store.clone(), clock.clone(), "api", UsageLimits::SEED);
    usage_contention(tracker, &rig.store, &clock, 40).unwrap();
}

#[test]
fn usage_tracker_mutant_check_then_record_caught_by_contention() {
    let rig = rig_or_skip!("usage-check-then-record");
    let clock = clock();
    let inner = usage_tracker::UsageTracker::new(rig.store.clone(), clock.clone(), "api", UsageLimits::SEED);
    let mutant = usage_tracker::mutants::CheckThenRecord { inner };
    let violation = usage_contention(mutant, &rig.store, &clock, MUTANT_ROUNDS).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
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

// --- task queue ---------------------------------------------------------------------------

/// Worker `w` dies before the effect on a share of first deliveries, and after the effect
/// (before the ack) on a share of first and second ones.
fn deaths(w: usize, delivery: &Delivery) -> Fate {
    let (id, w) = (delivery.id, w as u64);
    if delivery.attempt == 1 && (id + w) % 7 == 0 {
        Fate::DieBeforeEffect
    } else if delivery.attempt <= 2 && (id * 3 + w) % 11 == 0 {
        Fate::DieAfterEffect
    } else {
        Fate::Complete
    }
}

/// A visibility of 1 ms of Redis's clock: the suite reaps only between rounds, when every live
/// worker has acknowledged, so only dead workers' tasks are in flight by then, and a round
/// (16 threads started and joined) outlasts a millisecond.
fn queue(store: &RedisStore) -> task_queue::TaskQueue<RedisStore> {
    task_queue::TaskQueue::new(store.clone(), "imports", Duration::from_millis(1))
}

#[test]
fn task_queue_contention_drains_exactly_once_despite_worker_deaths() {
    let rig = rig_or_skip!("queue-drain");
    let consumer = Arc::new(queue(&rig.store));
    task_queue::suite::drain_with_deaths(
        consumer,
        &queue(&rig.store),
        &clock(),
        (2_000, THREADS, 50),
        deaths,
    )
    .unwrap();
}

#[test]
fn task_queue_mutant_ack_on_receive_caught_by_contention() {
    let rig = rig_or_skip!("queue-ack-on-receive");
    let consumer = Arc::new(task_queue::mutants::AckOnReceive { queue: queue(&rig.store) });
    let violation = task_queue::suite::drain_with_deaths(
        consumer,
        &queue(&rig.store),
        &clock(),
        (2_000, THREADS, 50),
        deaths,
    )
    .unwrap_err();
    assert_eq!(violation.rule, "task-lost", "{violation}");
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

// --- WebSocket slots and message limits -----------------------------------------------------

fn slots(store: &RedisStore, max: usize) -> ws_session::ConnectionSlots<RedisStore> {
    ws_session::ConnectionSlots::new(store.clone(), "ws:connections", max, ws_session::seed::LEASE)
}

fn racy_counter(store: &RedisStore, max: usize) -> ws_session::mutants::RacyCounter<RedisStore> {
    ws_session::mutants::RacyCounter {
        store: store.clone(),
        prefix: "ws:connections".into(),
        max,
        ttl: ws_session::seed::LEASE,
    }
}

#[test]
fn ws_session_contention_connects_admit_exactly_the_limit() {
    let rig = rig_or_skip!("ws-connects");
    let max = ws_session::seed::MAX_CONNECTIONS;
    ws_session::suite::concurrent_connects(Arc::new(slots(&rig.store, max)), max, THREADS, 200).unwrap();
}

#[test]
fn ws_session_contention_disconnects_free_every_slot() {
    let rig = rig_or_skip!("ws-disconnects");
    ws_session::suite::concurrent_disconnects(Arc::new(slots(&rig.store, THREADS)), THREADS, 100).unwrap();
}

#[test]
fn ws_session_mutant_racy_counter_caught_by_connect_contention() {
    let rig = rig_or_skip!("ws-racy-connects");
    let max = ws_session::seed::MAX_CONNECTIONS;
    let mutant = Arc::new(racy_counter(&rig.store, max));
    let violation = ws_session::suite::concurrent_connects(mutant, max, THREADS, MUTANT_ROUNDS).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

#[test]
fn ws_session_mutant_racy_counter_caught_by_disconnect_contention() {
    let rig = rig_or_skip!("ws-racy-disconnects");
    let mutant = Arc::new(racy_counter(&rig.store, THREADS));
    let violation = ws_session::suite::concurrent_disconnects(mutant, THREADS, MUTANT_ROUNDS).unwrap_err();
    assert_eq!(violation.rule, "slot-leak", "{violation}");
}

#[test]
fn ws_session_contention_message_limits_admit_exactly_each_budget() {
    let rig = rig_or_skip!("ws-messages");
    let limits = Arc::new(ws_session::MessageLimits::new(rig.store.clone()));
    ws_session::suite::message_limits(limits, THREADS, 8, 10).unwrap();
}
