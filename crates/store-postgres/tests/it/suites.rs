//! The `reference` contention suites on `PgStore`: 16 real threads against the real server,
//! and the race mutants caught by the same suites.
//!
//! Not run here, because they move a `ManualClock` to make the *store's* time pass and the
//! server's clock cannot be moved: `fixed_window::suite::window_ends`,
//! `daily_quota::suite::{resets_at_local_midnight, keys_expire_at_local_midnight}`,
//! `status_tracker::suite::expires_a_day_after_last_write`,
//! `ws_session::suite::{heartbeats_hold_slots, lapsed_slots_freed}`, and the suites of
//! `sliding_window`, `gcra`, `circuit_breaker` and `token_refresh`. (The daily quota and usage
//! tracker take the clock only to name the day and hour, so their contention suites run.)
//! The task queue's suite moves the clock only to pass the visibility timeout, so it runs with
//! a 2 ms visibility that the server's clock passes by itself between rounds.

use std::sync::Arc;
use std::time::Duration;

use jiff::civil::date;
use jiff::tz::TimeZone;
use reference::clock::{ManualClock, Millis};
use reference::daily_quota::{DailyQuota, QuotaPolicy};
use reference::fixed_window::FixedWindow;
use reference::limit::{Limit, seed};
use reference::status_tracker::Tracker;
use reference::store::Delivery;
use reference::task_queue::TaskQueue;
use reference::task_queue::suite::Fate;
use reference::usage_tracker::suite::Load;
use reference::usage_tracker::{UsageLimits, UsageTracker};
use reference::video::Registry;
use reference::{daily_quota, fixed_window, status_tracker, task_queue, usage_tracker, video, ws_session};
use store_postgres::PgStore;

use crate::rig;

fn clock_at(ms: Millis) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(ms))
}

// --- #1 fixed window -----------------------------------------------------------------------

#[test]
fn fixed_window_contention_admits_exactly_the_limit() {
    let rig = rig!("fw");
    let limiter = Arc::new(FixedWindow::new(rig.store.clone(), "rl", seed::USER_TOKEN));
    fixed_window::suite::contention(limiter, seed::USER_TOKEN.max, 16, 60).unwrap();
}

#[test]
fn fixed_window_keys_isolated_under_contention() {
    let rig = rig!("fw_keys");
    let limiter = Arc::new(FixedWindow::new(rig.store.clone(), "rl", seed::UPLOADS));
    fixed_window::suite::keys_isolated(limiter, seed::UPLOADS.max, 4, 20).unwrap();
}

#[test]
fn fixed_window_key_always_carries_ttl() {
    let rig = rig!("fw_ttl");
    let limit = seed::USER_TOKEN;
    let limiter = FixedWindow::new(rig.store.clone(), "rl", limit);
    fixed_window::suite::ttl_always_set(
        &limiter,
        &rig.store,
        &limiter_key("rl", "ttl-user"),
        "ttl-user",
        limit,
    )
    .unwrap();
}

/// The key `FixedWindow` keeps an identifier's count under.
fn limiter_key(prefix: &str, id: &str) -> String {
    format!("{prefix}:{id}")
}

#[test]
fn fixed_window_mutant_get_then_set_caught_on_postgres() {
    let rig = rig!("fw_mutant");
    let limit = Limit::new(1, Duration::from_secs(60));
    let mutant = fixed_window::mutants::GetThenSet { store: rig.store.clone(), prefix: "rl".into(), limit };
    let violation = fixed_window::suite::contention(Arc::new(mutant), 1, 16, 200).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

#[test]
fn fixed_window_mutant_incr_without_ttl_caught_on_postgres() {
    let rig = rig!("fw_no_ttl");
    let limit = seed::USER_TOKEN;
    let mutant =
        fixed_window::mutants::IncrWithoutTtl { store: rig.store.clone(), prefix: "rl".into(), limit };
    let key = limiter_key("rl", "ttl-user");
    let violation =
        fixed_window::suite::ttl_always_set(&mutant, &rig.store, &key, "ttl-user", limit).unwrap_err();
    assert_eq!(violation.rule, "key-without-ttl", "{violation}");
}

// --- #3 daily quota ------------------------------------------------------------------------

fn quota_clock() -> Arc<ManualClock> {
    let start = date(2026, 6, 15).at(9, 0, 0, 0).to_zoned_datetime(new_york()).unwrap();
    clock_at(Millis::try_from(start.timestamp().as_millisecond()).unwrap())
}

fn new_york() -> TimeZone {
    TimeZone::get("America/New_York").unwrap()
}

/// A limit a burst of 16 imports passes: 10 fit.
const TIGHT: QuotaPolicy = QuotaPolicy { limit: 30, units_per_import: 3, warn_percent: 80 };

#[test]
fn daily_quota_contention_loses_no_units() {
    let rig = rig!("quota");
    let policy = daily_quota::SEED;
    let quota = Arc::new(DailyQuota::new(rig.store.clone(), quota_clock(), "quota", new_york(), policy));
    daily_quota::suite::contention(quota, policy.limit, policy.units_per_import, 16, 60).unwrap();
}

#[test]
fn daily_quota_contention_admits_exactly_up_to_the_limit() {
    let rig = rig!("quota_tight");
    let quota = Arc::new(DailyQuota::new(rig.store.clone(), quota_clock(), "quota", new_york(), TIGHT));
    daily_quota::suite::contention(quota, TIGHT.limit, TIGHT.units_per_import, 16, 60).unwrap();
}

#[test]
fn daily_quota_mutant_incr_or_set_caught_on_postgres() {
    let rig = rig!("quota_mutant");
    let policy = daily_quota::SEED;
    let mutant = daily_quota::mutants::IncrOrSet {
        store: rig.store.clone(),
        clock: quota_clock(),
        prefix: "quota".into(),
        zone: new_york(),
        policy,
    };
    let violation =
        daily_quota::suite::contention(Arc::new(mutant), policy.limit, policy.units_per_import, 16, 200)
            .unwrap_err();
    assert_eq!(violation.rule, "lost-units", "{violation}");
}

// --- #4 usage tracker ----------------------------------------------------------------------

fn usage_load(rounds: usize) -> Load {
    Load { threads: 16, calls_per_thread: 4, rounds, step: Duration::from_secs(60 * 60) }
}

#[test]
fn usage_tracker_contention_grants_exactly_the_remaining_quota() {
    let rig = rig!("usage");
    let clock = clock_at(1_700_000_000_000);
    let limits = UsageLimits::SEED;
    let tracker = Arc::new(UsageTracker::new(rig.store.clone(), clock.clone(), "api", limits));
    usage_tracker::suite::contention(tracker, &rig.store, &clock, limits, "api", usage_load(12)).unwrap();
}

#[test]
fn usage_tracker_mutant_check_then_record_caught_on_postgres() {
    let rig = rig!("usage_mutant");
    let clock = clock_at(1_700_000_000_000);
    let limits = UsageLimits::SEED;
    let inner = UsageTracker::new(rig.store.clone(), clock.clone(), "api", limits);
    let mutant = Arc::new(usage_tracker::mutants::CheckThenRecord { inner });
    let violation =
        usage_tracker::suite::contention(mutant, &rig.store, &clock, limits, "api", usage_load(60))
            .unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

// --- #5 video get-or-create ----------------------------------------------------------------

#[test]
fn video_contention_new_url_created_and_claimed_once() {
    let rig = rig!("video_new");
    video::suite::new_url(Arc::new(Registry::new(rig.store.clone())), 16, 60).unwrap();
}

#[test]
fn video_contention_failed_video_reclaimed_once() {
    let rig = rig!("video_failed");
    video::suite::failed_retry(Arc::new(Registry::new(rig.store.clone())), 16, 40).unwrap();
}

#[test]
fn video_contention_settled_videos_never_reprocessed() {
    let rig = rig!("video_settled");
    video::suite::settled(Arc::new(Registry::new(rig.store.clone())), 16).unwrap();
}

#[test]
fn video_contention_one_transition_wins() {
    let rig = rig!("video_transition");
    video::suite::one_transition_wins(Arc::new(Registry::new(rig.store.clone())), 16, 40).unwrap();
}

#[test]
fn video_refuses_illegal_transitions() {
    let rig = rig!("video_edges");
    video::suite::refuses_illegal_transitions(&Registry::new(rig.store.clone())).unwrap();
}

#[test]
fn video_mutant_check_then_insert_caught_on_postgres() {
    let rig = rig!("video_mutant");
    let mutant = video::mutants::CheckThenInsert { store: rig.store.clone() };
    let violation = video::suite::new_url(Arc::new(mutant), 16, 200).unwrap_err();
    assert_eq!(violation.rule, "duplicate-create", "{violation}");
}

#[test]
fn video_mutant_unconditional_update_caught_on_postgres() {
    let rig = rig!("video_unconditional");
    let mutant = video::mutants::UnconditionalUpdate { store: rig.store.clone() };
    let violation = video::suite::one_transition_wins(Arc::new(mutant), 16, 200).unwrap_err();
    assert_eq!(violation.rule, "duplicate-transition", "{violation}");
}

// --- #6 status tracker ---------------------------------------------------------------------

#[test]
fn status_tracker_contention_disjoint_merges_all_survive() {
    let rig = rig!("status");
    status_tracker::suite::disjoint_merges(Arc::new(Tracker::new(rig.store.clone())), 16, 4, 10).unwrap();
}

#[test]
fn status_tracker_mutant_read_modify_write_caught_on_postgres() {
    let rig = rig!("status_mutant");
    let mutant = status_tracker::mutants::ReadModifyWrite { store: rig.store.clone() };
    let violation = status_tracker::suite::disjoint_merges(Arc::new(mutant), 16, 4, 100).unwrap_err();
    assert_eq!(violation.rule, "lost-field", "{violation}");
}

// --- #10 task queue ------------------------------------------------------------------------

/// Short enough that the server's clock passes it between two rounds of the suite.
const VISIBILITY: Duration = Duration::from_millis(2);

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

fn queue(store: &PgStore) -> TaskQueue<PgStore> {
    TaskQueue::new(store.clone(), "imports", VISIBILITY)
}

#[test]
fn task_queue_contention_drains_exactly_once_despite_worker_deaths() {
    let rig = rig!("tasks");
    let (clock, consumer) = (clock_at(0), Arc::new(queue(&rig.store)));
    task_queue::suite::drain_with_deaths(consumer, &queue(&rig.store), &clock, (400, 8, 500), deaths)
        .unwrap();
}

#[test]
fn task_queue_mutant_ack_on_receive_caught_on_postgres() {
    let rig = rig!("tasks_mutant");
    let clock = clock_at(0);
    let consumer = Arc::new(task_queue::mutants::AckOnReceive { queue: queue(&rig.store) });
    let violation =
        task_queue::suite::drain_with_deaths(consumer, &queue(&rig.store), &clock, (400, 8, 500), deaths)
            .unwrap_err();
    assert_eq!(violation.rule, "task-lost", "{violation}");
}

// --- #17 WebSocket connection slots --------------------------------------------------------

fn slots(store: &PgStore, max: usize) -> ws_session::ConnectionSlots<PgStore> {
    ws_session::ConnectionSlots::new(store.clone(), "ws:connections", max, ws_session::seed::LEASE)
}

#[test]
fn ws_session_concurrent_connects_admit_at_most_five() {
    let rig = rig!("ws_connects");
    let max = ws_session::seed::MAX_CONNECTIONS;
    ws_session::suite::concurrent_connects(Arc::new(slots(&rig.store, max)), max, 16, 40).unwrap();
}

#[test]
fn ws_session_concurrent_disconnects_free_every_slot() {
    let rig = rig!("ws_disconnects");
    ws_session::suite::concurrent_disconnects(Arc::new(slots(&rig.store, 16)), 16, 20).unwrap();
}

#[test]
fn ws_session_mutant_racy_counter_caught_on_postgres() {
    let rig = rig!("ws_mutant");
    let max = ws_session::seed::MAX_CONNECTIONS;
    let mutant = ws_session::mutants::RacyCounter {
        store: rig.store.clone(),
        prefix: "ws:connections".into(),
        max,
        ttl: ws_session::seed::LEASE,
    };
    let violation = ws_session::suite::concurrent_connects(Arc::new(mutant), max, 16, 200).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}
