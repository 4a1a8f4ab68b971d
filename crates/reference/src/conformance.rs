//! One conformance suite for every [`Store`](crate::store::Store): the contention suites of the
//! correct components and the race mutants they must catch, expanded into `#[test]` functions
//! by [`store_conformance!`](crate::store_conformance) against whichever store the caller names.
//!
//! The memory store (`reference`'s own tests), `RedisStore` and `PgStore` each invoke the macro
//! once, so all three run literally the same tests with the same rounds and thread counts.
//! What is store-specific stays with the store's tests: suites that need long spans of the
//! *store's* time (TTL expiry after a day, midnight resets — a server's clock cannot be moved,
//! only waited on; the one such test here, the fixed window's end, waits one second), and suites
//! of components only one backend runs (GCRA, token refresh, message limits on Redis).
//!
//! The helpers below are what the expanded tests share; they are public only so the macro can
//! name them from another crate.

use std::sync::Arc;
use std::time::Duration;

use jiff::civil::date;
use jiff::tz::TimeZone;

use crate::clock::{ManualClock, Millis};
use crate::daily_quota::QuotaPolicy;
use crate::store::Delivery;
use crate::task_queue::suite::Fate;

/// Threads each contention suite releases together.
pub const THREADS: usize = 16;

/// Ceiling on the rounds a mutant gets. The suites stop at the first violation, which on a
/// network store comes within the first few rounds; the memory store, whose primitives are
/// much shorter critical sections, can need hundreds.
pub const MUTANT_ROUNDS: usize = 2_000;

/// Where a fresh clock starts (Nov 2023).
pub const START: Millis = 1_700_000_000_000;

/// A fresh clock at [`START`]: what network stores pass as the clock the suites move, since
/// their own time is the server's.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(START))
}

/// The daily quota's zone.
pub fn new_york() -> TimeZone {
    TimeZone::get("America/New_York").expect("tz database has America/New_York")
}

/// The daily quota's clock: 09:00 in New York on 15 June 2026. It only names the day.
pub fn quota_clock() -> Arc<ManualClock> {
    let start = date(2026, 6, 15).at(9, 0, 0, 0).to_zoned_datetime(new_york()).expect("valid time");
    let ms = Millis::try_from(start.timestamp().as_millisecond()).expect("after the epoch");
    Arc::new(ManualClock::new(ms))
}

/// A daily limit a burst of 16 imports passes: 10 fit.
pub const TIGHT: QuotaPolicy = QuotaPolicy { limit: 30, units_per_import: 3, warn_percent: 80 };

/// 16 threads making 4 requests each per burst, an hour of the clock between bursts.
pub fn usage_load(rounds: usize) -> crate::usage_tracker::suite::Load {
    crate::usage_tracker::suite::Load {
        threads: THREADS,
        calls_per_thread: 4,
        rounds,
        step: Duration::from_secs(60 * 60),
    }
}

/// The fixed window whose end the suite waits for: one second, so a server's clock passes it
/// quickly, and long enough that no scheduling delay on loopback hides the mutant (its hit
/// half-way through pushes the end half a second past the last call).
pub const WINDOW_END_LIMIT: crate::limit::Limit = crate::limit::Limit::new(3, Duration::from_secs(1));

/// The task queue's drain: (tasks, workers, ceiling on rounds).
pub const QUEUE_LOAD: (usize, usize, usize) = (400, 8, 500);

/// Worker `w` dies before the effect on a share of first deliveries, and after the effect
/// (before the ack) on a share of first and second ones.
pub fn deaths(w: usize, delivery: &Delivery) -> Fate {
    let (id, w) = (delivery.id, w as u64);
    if delivery.attempt == 1 && (id + w) % 7 == 0 {
        Fate::DieBeforeEffect
    } else if delivery.attempt <= 2 && (id * 3 + w) % 11 == 0 {
        Fate::DieAfterEffect
    } else {
        Fate::Complete
    }
}

/// Expands to the conformance `#[test]` functions for one store.
///
/// ```text
/// reference::store_conformance! {
///     store = store_redis::RedisStore,
///     // `Fn(&str) -> Option<R>` where `&R` coerces to `&store` (R is the store, or derefs
///     // to it). `None` skips the test (the service is absent outside CI); the function is
///     // expected to panic instead under `CI=true`. The value lives for the whole test, so a
///     // rig that cleans up on drop does so after it.
///     fresh = crate::common::rig,
///     // `Fn(&R) -> Arc<ManualClock>`: the clock the suites move to pass an hour or a
///     // visibility timeout. The store's own clock for the memory store; any fresh clock
///     // (`reference::conformance::clock()`) for a server whose clock cannot be moved.
///     clock = |_| reference::conformance::clock(),
///     // `Fn(&R, Duration)`: lets the store's own time pass — the memory store's clock moves
///     // by hand; a server's only by waiting (`|_, by| std::thread::sleep(by)`).
///     pass = |_, by| std::thread::sleep(by),
///     // The task queue's visibility timeout: one the suite's clock passes (the memory
///     // store), or one the server's clock passes by itself between rounds.
///     visibility = std::time::Duration::from_millis(2),
/// }
/// ```
///
/// Every test is named after its component; race-mutant tests carry `mutant` in their name
/// (`fixed_window_mutant_get_then_set_caught`). Tests open their store as
/// `fresh("<component>-<case>")`, one isolated store per test.
#[macro_export]
macro_rules! store_conformance {
    (
        store = $store:ty,
        fresh = $fresh:expr,
        clock = $clock:expr,
        pass = $pass:expr,
        visibility = $visibility:expr $(,)?
    ) => {
        /// Opens this test's store, or returns from the test when it skips.
        macro_rules! __conformance_open {
            ($name:expr) => {
                match ($fresh)($name) {
                    ::std::option::Option::Some(rig) => rig,
                    ::std::option::Option::None => return,
                }
            };
        }

        // --- store primitives -------------------------------------------------------------

        #[test]
        fn store_set_guarded_writes_under_the_expected_guard() {
            use $crate::store::{Store, Ttl};
            use $crate::sync::block_on;
            let rig = __conformance_open!("guarded-equal");
            let store: &$store = &rig;
            let minute = ::std::time::Duration::from_secs(60);
            block_on(store.set("epoch", b"t1".to_vec(), Some(minute))).unwrap();
            assert!(block_on(store.set_guarded("epoch", b"t1", "k", b"v1".to_vec(), Some(minute))).unwrap());
            assert_eq!(block_on(store.get("k")).unwrap().as_deref(), Some(&b"v1"[..]));
            match block_on(store.pttl("k")).unwrap() {
                Ttl::Remaining(left) => assert!(left > minute / 2 && left <= minute, "{left:?}"),
                other => panic!("the guarded write lost its ttl: {other:?}"),
            }
            // Over an existing value, and persistent when no TTL is given; the guard is kept.
            assert!(block_on(store.set_guarded("epoch", b"t1", "k", b"v2".to_vec(), None)).unwrap());
            assert_eq!(block_on(store.get("k")).unwrap().as_deref(), Some(&b"v2"[..]));
            assert_eq!(block_on(store.pttl("k")).unwrap(), Ttl::Persistent);
            assert_eq!(block_on(store.get("epoch")).unwrap().as_deref(), Some(&b"t1"[..]));
        }

        #[test]
        fn store_set_guarded_refused_under_another_guard() {
            use $crate::store::{Store, Ttl};
            use $crate::sync::block_on;
            let rig = __conformance_open!("guarded-other");
            let store: &$store = &rig;
            let minute = ::std::time::Duration::from_secs(60);
            block_on(store.set("epoch", b"t2".to_vec(), Some(minute))).unwrap();
            block_on(store.set("k", b"old".to_vec(), Some(minute))).unwrap();
            assert!(!block_on(store.set_guarded("epoch", b"t1", "k", b"new".to_vec(), None)).unwrap());
            assert!(!block_on(store.set_guarded("epoch", b"t", "k", b"new".to_vec(), None)).unwrap());
            assert!(!block_on(store.set_guarded("epoch", b"t22", "fresh", b"new".to_vec(), None)).unwrap());
            assert_eq!(block_on(store.get("k")).unwrap().as_deref(), Some(&b"old"[..]));
            assert!(matches!(block_on(store.pttl("k")).unwrap(), Ttl::Remaining(_)));
            assert_eq!(block_on(store.get("fresh")).unwrap(), None);
        }

        #[test]
        fn store_set_guarded_refused_when_the_guard_is_missing_or_expired() {
            use $crate::store::Store;
            use $crate::sync::block_on;
            let rig = __conformance_open!("guarded-missing");
            let store: &$store = &rig;
            let short = ::std::time::Duration::from_millis(100);
            assert!(!block_on(store.set_guarded("epoch", b"t1", "k", b"v".to_vec(), None)).unwrap());
            assert!(!block_on(store.set_guarded("epoch", b"", "k", b"v".to_vec(), None)).unwrap());
            assert_eq!(block_on(store.get("k")).unwrap(), None);
            block_on(store.set("epoch", b"t1".to_vec(), Some(short))).unwrap();
            ($pass)(&rig, short + ::std::time::Duration::from_millis(50));
            assert!(!block_on(store.set_guarded("epoch", b"t1", "k", b"v".to_vec(), None)).unwrap());
            assert_eq!(block_on(store.get("k")).unwrap(), None);
            // Deleted, then recreated with another value: still refused.
            block_on(store.set("epoch", b"t1".to_vec(), None)).unwrap();
            block_on(store.del("epoch")).unwrap();
            assert!(!block_on(store.set_guarded("epoch", b"t1", "k", b"v".to_vec(), None)).unwrap());
            block_on(store.set("epoch", b"t3".to_vec(), None)).unwrap();
            assert!(!block_on(store.set_guarded("epoch", b"t1", "k", b"v".to_vec(), None)).unwrap());
            assert_eq!(block_on(store.get("k")).unwrap(), None);
        }

        // --- fixed window -----------------------------------------------------------------

        #[test]
        fn fixed_window_contention_admits_exactly_the_limit() {
            use $crate::fixed_window::{self, FixedWindow};
            use $crate::limit::seed;
            let rig = __conformance_open!("fw-contention");
            let store: &$store = &rig;
            let limiter = ::std::sync::Arc::new(FixedWindow::new(store.clone(), "rl", seed::USER_TOKEN));
            fixed_window::suite::contention(limiter, seed::USER_TOKEN.max, $crate::conformance::THREADS, 60)
                .unwrap();
        }

        #[test]
        fn fixed_window_keys_isolated_under_contention() {
            use $crate::fixed_window::{self, FixedWindow};
            use $crate::limit::seed;
            let rig = __conformance_open!("fw-isolated");
            let store: &$store = &rig;
            let limiter = ::std::sync::Arc::new(FixedWindow::new(store.clone(), "rl", seed::UPLOADS));
            fixed_window::suite::keys_isolated(limiter, seed::UPLOADS.max, 4, 20).unwrap();
        }

        #[test]
        fn fixed_window_window_ends_under_steady_traffic() {
            use $crate::fixed_window::{self, FixedWindow};
            let rig = __conformance_open!("fw-window-ends");
            let store: &$store = &rig;
            let limit = $crate::conformance::WINDOW_END_LIMIT;
            let limiter = FixedWindow::new(store.clone(), "rl", limit);
            fixed_window::suite::window_ends_with(&limiter, limit, |by| ($pass)(&rig, by)).unwrap();
        }

        #[test]
        fn fixed_window_mutant_expire_every_hit_caught() {
            use $crate::fixed_window;
            let rig = __conformance_open!("fw-expire-every-hit");
            let store: &$store = &rig;
            let limit = $crate::conformance::WINDOW_END_LIMIT;
            let mutant =
                fixed_window::mutants::ExpireEveryHit { store: store.clone(), prefix: "rl".into(), limit };
            let violation =
                fixed_window::suite::window_ends_with(&mutant, limit, |by| ($pass)(&rig, by)).unwrap_err();
            assert_eq!(violation.rule, "window-never-ends", "{violation}");
        }

        #[test]
        fn fixed_window_mutant_get_then_set_caught() {
            use $crate::fixed_window;
            let rig = __conformance_open!("fw-get-then-set");
            let store: &$store = &rig;
            let limit = $crate::limit::Limit::new(1, ::std::time::Duration::from_secs(60));
            let mutant =
                fixed_window::mutants::GetThenSet { store: store.clone(), prefix: "rl".into(), limit };
            let violation = fixed_window::suite::contention(
                ::std::sync::Arc::new(mutant),
                1,
                $crate::conformance::THREADS,
                $crate::conformance::MUTANT_ROUNDS,
            )
            .unwrap_err();
            assert_eq!(violation.rule, "over-admission", "{violation}");
        }

        #[test]
        fn fixed_window_key_always_carries_ttl() {
            use $crate::fixed_window::{self, FixedWindow};
            let rig = __conformance_open!("fw-ttl");
            let store: &$store = &rig;
            let limit = $crate::limit::seed::USER_TOKEN;
            let limiter = FixedWindow::new(store.clone(), "rl", limit);
            fixed_window::suite::ttl_always_set(&limiter, store, "rl:u1", "u1", limit).unwrap();
        }

        #[test]
        fn fixed_window_mutant_incr_without_ttl_caught() {
            use $crate::fixed_window;
            let rig = __conformance_open!("fw-no-ttl");
            let store: &$store = &rig;
            let limit = $crate::limit::seed::USER_TOKEN;
            let mutant =
                fixed_window::mutants::IncrWithoutTtl { store: store.clone(), prefix: "rl".into(), limit };
            let violation =
                fixed_window::suite::ttl_always_set(&mutant, store, "rl:u1", "u1", limit).unwrap_err();
            assert_eq!(violation.rule, "key-without-ttl", "{violation}");
        }

        // --- daily quota ------------------------------------------------------------------

        #[test]
        fn daily_quota_contention_loses_no_units() {
            use $crate::conformance::{THREADS, new_york, quota_clock};
            use $crate::daily_quota::{self, DailyQuota};
            let rig = __conformance_open!("dq-contention");
            let store: &$store = &rig;
            let policy = daily_quota::SEED;
            let quota = DailyQuota::new(store.clone(), quota_clock(), "quota", new_york(), policy);
            daily_quota::suite::contention(
                ::std::sync::Arc::new(quota),
                policy.limit,
                policy.units_per_import,
                THREADS,
                60,
            )
            .unwrap();
        }

        #[test]
        fn daily_quota_contention_admits_exactly_up_to_the_limit() {
            use $crate::conformance::{THREADS, TIGHT, new_york, quota_clock};
            use $crate::daily_quota::{self, DailyQuota};
            let rig = __conformance_open!("dq-tight");
            let store: &$store = &rig;
            let quota = DailyQuota::new(store.clone(), quota_clock(), "quota", new_york(), TIGHT);
            daily_quota::suite::contention(
                ::std::sync::Arc::new(quota),
                TIGHT.limit,
                TIGHT.units_per_import,
                THREADS,
                60,
            )
            .unwrap();
        }

        #[test]
        fn daily_quota_mutant_incr_or_set_caught() {
            use $crate::conformance::{MUTANT_ROUNDS, THREADS, new_york, quota_clock};
            use $crate::daily_quota;
            let rig = __conformance_open!("dq-incr-or-set");
            let store: &$store = &rig;
            let policy = daily_quota::SEED;
            let mutant = daily_quota::mutants::IncrOrSet {
                store: store.clone(),
                clock: quota_clock(),
                prefix: "quota".into(),
                zone: new_york(),
                policy,
            };
            let violation = daily_quota::suite::contention(
                ::std::sync::Arc::new(mutant),
                policy.limit,
                policy.units_per_import,
                THREADS,
                MUTANT_ROUNDS,
            )
            .unwrap_err();
            assert_eq!(violation.rule, "lost-units", "{violation}");
        }

        // --- usage tracker ----------------------------------------------------------------

        #[test]
        fn usage_tracker_contention_grants_exactly_the_remaining_quota() {
            use $crate::usage_tracker::{self, UsageLimits, UsageTracker};
            let rig = __conformance_open!("usage-contention");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let limits = UsageLimits::SEED;
            let tracker =
                ::std::sync::Arc::new(UsageTracker::new(store.clone(), clock.clone(), "api", limits));
            let load = $crate::conformance::usage_load(12);
            usage_tracker::suite::contention(tracker, store, &clock, limits, "api", load).unwrap();
        }

        #[test]
        fn usage_tracker_mutant_check_then_record_caught() {
            use $crate::usage_tracker::{self, UsageLimits, UsageTracker};
            let rig = __conformance_open!("usage-check-then-record");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let limits = UsageLimits::SEED;
            let inner = UsageTracker::new(store.clone(), clock.clone(), "api", limits);
            let mutant = ::std::sync::Arc::new(usage_tracker::mutants::CheckThenRecord { inner });
            let load = $crate::conformance::usage_load($crate::conformance::MUTANT_ROUNDS);
            let violation =
                usage_tracker::suite::contention(mutant, store, &clock, limits, "api", load).unwrap_err();
            assert_eq!(violation.rule, "over-admission", "{violation}");
        }

        // --- video get-or-create ----------------------------------------------------------

        #[test]
        fn video_contention_new_url_created_and_claimed_once() {
            use $crate::video::{self, Registry};
            let rig = __conformance_open!("video-new");
            let store: &$store = &rig;
            let registry = ::std::sync::Arc::new(Registry::new(store.clone()));
            video::suite::new_url(registry, $crate::conformance::THREADS, 60).unwrap();
        }

        #[test]
        fn video_contention_failed_video_reclaimed_once() {
            use $crate::video::{self, Registry};
            let rig = __conformance_open!("video-failed");
            let store: &$store = &rig;
            let registry = ::std::sync::Arc::new(Registry::new(store.clone()));
            video::suite::failed_retry(registry, $crate::conformance::THREADS, 40).unwrap();
        }

        #[test]
        fn video_contention_settled_videos_never_reprocessed() {
            use $crate::video::{self, Registry};
            let rig = __conformance_open!("video-settled");
            let store: &$store = &rig;
            let registry = ::std::sync::Arc::new(Registry::new(store.clone()));
            video::suite::settled(registry, $crate::conformance::THREADS).unwrap();
        }

        #[test]
        fn video_contention_one_transition_wins() {
            use $crate::video::{self, Registry};
            let rig = __conformance_open!("video-transition");
            let store: &$store = &rig;
            let registry = ::std::sync::Arc::new(Registry::new(store.clone()));
            video::suite::one_transition_wins(registry, $crate::conformance::THREADS, 40).unwrap();
        }

        #[test]
        fn video_refuses_illegal_transitions() {
            use $crate::video::{self, Registry};
            let rig = __conformance_open!("video-edges");
            let store: &$store = &rig;
            video::suite::refuses_illegal_transitions(&Registry::new(store.clone())).unwrap();
        }

        #[test]
        fn video_mutant_check_then_insert_caught() {
            use $crate::video;
            let rig = __conformance_open!("video-check-then-insert");
            let store: &$store = &rig;
            let mutant = ::std::sync::Arc::new(video::mutants::CheckThenInsert { store: store.clone() });
            let violation = video::suite::new_url(
                mutant,
                $crate::conformance::THREADS,
                $crate::conformance::MUTANT_ROUNDS,
            )
            .unwrap_err();
            assert_eq!(violation.rule, "duplicate-create", "{violation}");
        }

        #[test]
        fn video_mutant_unconditional_update_caught() {
            use $crate::video;
            let rig = __conformance_open!("video-unconditional");
            let store: &$store = &rig;
            let mutant = ::std::sync::Arc::new(video::mutants::UnconditionalUpdate { store: store.clone() });
            let violation = video::suite::one_transition_wins(
                mutant,
                $crate::conformance::THREADS,
                $crate::conformance::MUTANT_ROUNDS,
            )
            .unwrap_err();
            assert_eq!(violation.rule, "duplicate-transition", "{violation}");
        }

        #[test]
        fn video_mutant_select_for_update_caught() {
            use $crate::video;
            let rig = __conformance_open!("video-select-for-update");
            let store: &$store = &rig;
            let mutant = ::std::sync::Arc::new(video::mutants::SelectForUpdate { store: store.clone() });
            let violation = video::suite::failed_retry(
                mutant,
                $crate::conformance::THREADS,
                $crate::conformance::MUTANT_ROUNDS,
            )
            .unwrap_err();
            assert_eq!(violation.rule, "duplicate-processing", "{violation}");
        }

        // --- status tracker ---------------------------------------------------------------

        #[test]
        fn status_tracker_contention_disjoint_merges_all_survive() {
            use $crate::status_tracker::{self, Tracker};
            let rig = __conformance_open!("status-merges");
            let store: &$store = &rig;
            let tracker = ::std::sync::Arc::new(Tracker::new(store.clone()));
            status_tracker::suite::disjoint_merges(tracker, $crate::conformance::THREADS, 4, 10).unwrap();
        }

        #[test]
        fn status_tracker_mutant_read_modify_write_caught() {
            use $crate::status_tracker;
            let rig = __conformance_open!("status-rmw");
            let store: &$store = &rig;
            let mutant =
                ::std::sync::Arc::new(status_tracker::mutants::ReadModifyWrite { store: store.clone() });
            let violation = status_tracker::suite::disjoint_merges(
                mutant,
                $crate::conformance::THREADS,
                4,
                $crate::conformance::MUTANT_ROUNDS,
            )
            .unwrap_err();
            assert_eq!(violation.rule, "lost-field", "{violation}");
        }

        // --- task queue -------------------------------------------------------------------

        #[test]
        fn task_queue_contention_drains_exactly_once_despite_worker_deaths() {
            use $crate::conformance::{QUEUE_LOAD, deaths};
            use $crate::task_queue::{self, TaskQueue};
            let rig = __conformance_open!("queue-drain");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let queue = || TaskQueue::new(store.clone(), "imports", $visibility);
            let consumer = ::std::sync::Arc::new(queue());
            task_queue::suite::drain_with_deaths(consumer, &queue(), &clock, QUEUE_LOAD, deaths).unwrap();
        }

        #[test]
        fn task_queue_mutant_ack_on_receive_caught() {
            use $crate::conformance::{QUEUE_LOAD, deaths};
            use $crate::task_queue::{self, TaskQueue};
            let rig = __conformance_open!("queue-ack-on-receive");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let queue = || TaskQueue::new(store.clone(), "imports", $visibility);
            let consumer = ::std::sync::Arc::new(task_queue::mutants::AckOnReceive { queue: queue() });
            let violation =
                task_queue::suite::drain_with_deaths(consumer, &queue(), &clock, QUEUE_LOAD, deaths)
                    .unwrap_err();
            assert_eq!(violation.rule, "task-lost", "{violation}");
        }

        // --- WebSocket connection slots ---------------------------------------------------

        #[test]
        fn ws_session_contention_connects_admit_exactly_the_limit() {
            use $crate::ws_session::{self, ConnectionSlots, seed};
            let rig = __conformance_open!("ws-connects");
            let store: &$store = &rig;
            let max = seed::MAX_CONNECTIONS;
            let slots = ConnectionSlots::new(store.clone(), "ws:connections", max, seed::LEASE);
            ws_session::suite::concurrent_connects(
                ::std::sync::Arc::new(slots),
                max,
                $crate::conformance::THREADS,
                40,
            )
            .unwrap();
        }

        #[test]
        fn ws_session_contention_disconnects_free_every_slot() {
            use $crate::conformance::THREADS;
            use $crate::ws_session::{self, ConnectionSlots, seed};
            let rig = __conformance_open!("ws-disconnects");
            let store: &$store = &rig;
            let slots = ConnectionSlots::new(store.clone(), "ws:connections", THREADS, seed::LEASE);
            ws_session::suite::concurrent_disconnects(::std::sync::Arc::new(slots), THREADS, 20).unwrap();
        }

        #[test]
        fn ws_session_mutant_racy_counter_caught_by_connect_contention() {
            use $crate::conformance::{MUTANT_ROUNDS, THREADS};
            use $crate::ws_session::{self, seed};
            let rig = __conformance_open!("ws-racy-connects");
            let store: &$store = &rig;
            let max = seed::MAX_CONNECTIONS;
            let mutant = ws_session::mutants::RacyCounter {
                store: store.clone(),
                prefix: "ws:connections".into(),
                max,
                ttl: seed::LEASE,
            };
            let violation = ws_session::suite::concurrent_connects(
                ::std::sync::Arc::new(mutant),
                max,
                THREADS,
                MUTANT_ROUNDS,
            )
            .unwrap_err();
            assert_eq!(violation.rule, "over-admission", "{violation}");
        }

        #[test]
        fn ws_session_mutant_racy_counter_caught_by_disconnect_contention() {
            use $crate::conformance::{MUTANT_ROUNDS, THREADS};
            use $crate::ws_session::{self, seed};
            let rig = __conformance_open!("ws-racy-disconnects");
            let store: &$store = &rig;
            let mutant = ws_session::mutants::RacyCounter {
                store: store.clone(),
                prefix: "ws:connections".into(),
                max: THREADS,
                ttl: seed::LEASE,
            };
            let violation = ws_session::suite::concurrent_disconnects(
                ::std::sync::Arc::new(mutant),
                THREADS,
                MUTANT_ROUNDS,
            )
            .unwrap_err();
            assert_eq!(violation.rule, "slot-leak", "{violation}");
        }
    };
}
