//! One conformance suite for every [`Store`](crate::store::Store): the semantics of each
//! primitive, the contention suites of the correct components and the race mutants they must
//! catch, expanded into `#[test]` functions by [`store_conformance!`](crate::store_conformance)
//! against whichever store the caller names.
//!
//! The memory store (`reference`'s own tests), `RedisStore` and `PgStore` each invoke the macro
//! once, so all three run literally the same tests with the same rounds and thread counts.
//! What is store-specific stays with the store's tests: suites that need long spans of the
//! *store's* time (TTL expiry after a day, midnight resets — a server's clock cannot be moved,
//! only waited on; the tests here that need it wait at most a second: the fixed window's end,
//! expiring keys, leases and visibility timeouts), and suites
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

        #[test]
        fn store_strings_set_get_set_nx_compare_and_set_and_delete() {
            use $crate::store::{Store, Ttl};
            use $crate::sync::block_on;
            let rig = __conformance_open!("store-strings");
            let s: &$store = &rig;
            let minute = ::std::time::Duration::from_secs(60);
            let within_a_minute = |ttl: Ttl| matches!(ttl, Ttl::Remaining(left) if left <= minute && left > minute / 2);
            assert_eq!(block_on(s.get("k")).unwrap(), None);
            block_on(s.set("k", b"v".to_vec(), None)).unwrap();
            assert_eq!(block_on(s.get("k")).unwrap(), Some(b"v".to_vec()));
            assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Persistent);
            assert!(!block_on(s.set_nx("k", b"w".to_vec(), minute)).unwrap());
            assert!(block_on(s.set_nx("n", b"w".to_vec(), minute)).unwrap());
            assert!(within_a_minute(block_on(s.pttl("n")).unwrap()));

            assert!(!block_on(s.compare_and_set("k", Some(b"x"), b"y".to_vec(), None)).unwrap());
            assert!(!block_on(s.compare_and_set("k", None, b"y".to_vec(), None)).unwrap());
            assert!(block_on(s.compare_and_set("k", Some(b"v"), b"y".to_vec(), Some(minute))).unwrap());
            assert_eq!(block_on(s.get("k")).unwrap(), Some(b"y".to_vec()));
            assert!(within_a_minute(block_on(s.pttl("k")).unwrap()));
            assert!(block_on(s.compare_and_set("k", Some(b"y"), b"z".to_vec(), None)).unwrap());
            assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Persistent, "a CAS without TTL makes the key persistent");
            assert!(!block_on(s.compare_and_set("missing", Some(b"v"), b"y".to_vec(), None)).unwrap());
            assert!(block_on(s.compare_and_set("missing", None, b"y".to_vec(), None)).unwrap());
            // Binary values round-trip and compare byte for byte.
            let bytes: Vec<u8> = (0..=255).collect();
            block_on(s.set("bin", bytes.clone(), None)).unwrap();
            assert_eq!(block_on(s.get("bin")).unwrap(), Some(bytes.clone()));
            assert!(block_on(s.compare_and_set("bin", Some(&bytes), b"ok".to_vec(), None)).unwrap());

            assert!(block_on(s.del("k")).unwrap());
            assert!(!block_on(s.del("k")).unwrap());
            assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Missing);
            assert!(!block_on(s.pexpire("k", minute)).unwrap());
            assert!(block_on(s.pexpire("missing", minute)).unwrap());
            assert!(within_a_minute(block_on(s.pttl("missing")).unwrap()));
        }

        #[test]
        fn store_keys_and_del_matching_follow_globs_with_literal_metacharacters() {
            use $crate::store::Store;
            use $crate::sync::block_on;
            let rig = __conformance_open!("store-globs");
            let s: &$store = &rig;
            let minute = ::std::time::Duration::from_secs(60);
            for key in ["project:1:stats", "project:1:list", "project:12:stats", "odd:[a]?:x", "odd:b:x", "p_x%:1"] {
                block_on(s.set(key, b"v".to_vec(), Some(minute))).unwrap();
            }
            let sorted = |mut keys: Vec<String>| {
                keys.sort();
                keys
            };
            assert_eq!(sorted(block_on(s.keys("project:1:*")).unwrap()), ["project:1:list", "project:1:stats"]);
            // Redis's `?` and `[…]` and LIKE's `_` and `%` are literal characters here.
            assert_eq!(block_on(s.keys("odd:[a]?:*")).unwrap(), ["odd:[a]?:x"]);
            assert_eq!(block_on(s.keys("p_x%:*")).unwrap(), ["p_x%:1"]);
            assert!(block_on(s.keys("p?x*")).unwrap().is_empty());
            assert!(block_on(s.keys("odd:?:*")).unwrap().is_empty());
            assert_eq!(block_on(s.del_matching("project:*:stats")).unwrap(), 2);
            assert_eq!(block_on(s.del_matching("project:*")).unwrap(), 1);
            assert_eq!(block_on(s.del_matching("project:*")).unwrap(), 0);
            assert_eq!(sorted(block_on(s.keys("*")).unwrap()), ["odd:[a]?:x", "odd:b:x", "p_x%:1"]);
        }

        #[test]
        fn store_counters_read_as_decimal_text_keep_their_window_and_refuse_other_values() {
            use $crate::store::{Bump, Store, StoreError, Ttl};
            use $crate::sync::block_on;
            let rig = __conformance_open!("store-counters");
            let s: &$store = &rig;
            let minute = ::std::time::Duration::from_secs(60);
            let half = ::std::time::Duration::from_secs(30);
            assert_eq!(block_on(s.incr_by("c", 5)).unwrap(), 5);
            assert_eq!(block_on(s.incr_by("c", -2)).unwrap(), 3);
            assert_eq!(block_on(s.get("c")).unwrap(), Some(b"3".to_vec()));
            assert_eq!(block_on(s.pttl("c")).unwrap(), Ttl::Persistent);
            assert!(block_on(s.compare_and_set("c", Some(b"3"), b"10".to_vec(), None)).unwrap());
            assert_eq!(block_on(s.incr_by("c", 1)).unwrap(), 11);

            let (count, left) = block_on(s.incr_window("w", 1, minute)).unwrap();
            assert_eq!(count, 1);
            assert!(left <= minute && left > minute / 2, "{left:?}");
            // A window is set when the key is created, never extended by later hits.
            block_on(s.pexpire("w", half)).unwrap();
            let (count, left) = block_on(s.incr_window("w", 4, 10 * minute)).unwrap();
            assert_eq!(count, 5);
            assert!(left <= half, "an existing window keeps its TTL: {left:?}");
            // A counter that lost its TTL gets one back rather than living for ever.
            let (count, left) = block_on(s.incr_window("c", 1, minute)).unwrap();
            assert_eq!((count, left <= minute), (12, true), "{left:?}");
            assert!(matches!(block_on(s.pttl("c")).unwrap(), Ttl::Remaining(_)));

            block_on(s.set("text", b"abc".to_vec(), None)).unwrap();
            let not_an_integer =
                |e: StoreError| matches!(e, StoreError::WrongKind { ref key, expected: "an integer" } if key == "text");
            assert!(not_an_integer(block_on(s.incr_by("text", 1)).unwrap_err()));
            assert!(not_an_integer(block_on(s.incr_window("text", 1, minute)).unwrap_err()));
            let bump = Bump { key: "text", delta: 1, limit: 10, ttl: minute };
            assert!(not_an_integer(block_on(s.bounded_incr(&[bump])).unwrap_err()));
            assert_eq!(block_on(s.get("text")).unwrap(), Some(b"abc".to_vec()), "a refused increment changes nothing");
        }

        #[test]
        fn store_bounded_incr_is_all_or_nothing() {
            use $crate::store::{Bump, BumpOutcome, Store, StoreError, Ttl};
            use $crate::sync::block_on;
            let rig = __conformance_open!("store-bounded");
            let s: &$store = &rig;
            let minute = ::std::time::Duration::from_secs(60);
            let half = ::std::time::Duration::from_secs(30);
            let bumps = |delta| {
                [Bump { key: "day", delta, limit: 10, ttl: minute }, Bump { key: "hour", delta, limit: 4, ttl: half }]
            };
            assert_eq!(block_on(s.bounded_incr(&bumps(3))).unwrap(), BumpOutcome::Applied(vec![3, 3]));
            assert!(matches!(block_on(s.pttl("hour")).unwrap(), Ttl::Remaining(left) if left <= half));
            assert_eq!(block_on(s.bounded_incr(&bumps(2))).unwrap(), BumpOutcome::Refused { index: 1, current: 3 });
            assert_eq!(block_on(s.get("day")).unwrap(), Some(b"3".to_vec()), "nothing applied when refused");
            assert_eq!(block_on(s.bounded_incr(&bumps(1))).unwrap(), BumpOutcome::Applied(vec![4, 4]));
            // A refused increment of a missing counter leaves no key behind.
            let lone = [Bump { key: "big", delta: 11, limit: 10, ttl: minute }];
            assert_eq!(block_on(s.bounded_incr(&lone)).unwrap(), BumpOutcome::Refused { index: 0, current: 0 });
            assert_eq!(block_on(s.get("big")).unwrap(), None);
            // An existing counter keeps its TTL (here: none).
            block_on(s.set("kept", b"1".to_vec(), None)).unwrap();
            let kept = [Bump { key: "kept", delta: 1, limit: 5, ttl: minute }];
            assert_eq!(block_on(s.bounded_incr(&kept)).unwrap(), BumpOutcome::Applied(vec![2]));
            assert_eq!(block_on(s.pttl("kept")).unwrap(), Ttl::Persistent);
            // A counter that is not an integer fails the whole increment.
            block_on(s.set("text", b"1e3".to_vec(), None)).unwrap();
            let bad = [
                Bump { key: "day", delta: 1, limit: 100, ttl: minute },
                Bump { key: "text", delta: 1, limit: 9, ttl: minute },
            ];
            let err = block_on(s.bounded_incr(&bad)).unwrap_err();
            assert!(matches!(err, StoreError::WrongKind { expected: "an integer", .. }), "{err}");
            assert_eq!(block_on(s.get("day")).unwrap(), Some(b"4".to_vec()), "a bad counter applies nothing");
        }

        #[test]
        fn store_gcra_admits_the_burst_then_refuses_in_nanoseconds() {
            use $crate::store::{Store, Ttl};
            use $crate::sync::block_on;
            let rig = __conformance_open!("store-gcra");
            let s: &$store = &rig;
            let interval = 10 * 60 * 1_000_000_000u64; // one per 10 minutes
            let first = block_on(s.gcra("g", interval, 3)).unwrap();
            assert!(first.admitted);
            assert_eq!(first.tat, first.now + interval, "an idle key's TAT is now + interval");
            assert!(first.now > 1_600_000_000 * 1_000_000_000, "now is epoch nanoseconds: {}", first.now);
            let second = block_on(s.gcra("g", interval, 3)).unwrap();
            assert!(second.admitted && second.now >= first.now);
            assert_eq!(second.tat, first.tat + interval, "exact ns arithmetic beyond 2^53");
            let third = block_on(s.gcra("g", interval, 3)).unwrap();
            assert!(third.admitted);
            let refused = block_on(s.gcra("g", interval, 3)).unwrap();
            assert!(!refused.admitted);
            assert_eq!(refused.tat, third.tat, "a refusal leaves the TAT");
            let Ttl::Remaining(left) = block_on(s.pttl("g")).unwrap() else { panic!("the TAT lost its TTL") };
            let until_tat = ::std::time::Duration::from_nanos(third.tat - third.now);
            assert!(left <= until_tat + ::std::time::Duration::from_millis(1), "{left:?}");
            assert!(left > ::std::time::Duration::from_secs(29 * 60), "{left:?}");
        }

        #[test]
        fn store_slots_acquire_renew_refuse_release_and_lapse() {
            use $crate::store::{SlotOutcome, Store};
            use $crate::sync::block_on;
            let rig = __conformance_open!("store-slots");
            let s: &$store = &rig;
            let minute = ::std::time::Duration::from_secs(60);
            let short = ::std::time::Duration::from_millis(300);
            assert_eq!(block_on(s.slot_next_expiry("u")).unwrap(), None);
            assert_eq!(block_on(s.slot_acquire("u", "a", minute, 2)).unwrap(), SlotOutcome::Acquired { held: 1 });
            assert_eq!(block_on(s.slot_acquire("u", "a", minute, 2)).unwrap(), SlotOutcome::Renewed { held: 1 });
            assert_eq!(block_on(s.slot_acquire("u", "b", short, 2)).unwrap(), SlotOutcome::Acquired { held: 2 });
            assert_eq!(block_on(s.slot_acquire("u", "c", minute, 2)).unwrap(), SlotOutcome::Full { held: 2 });
            assert_eq!(block_on(s.slot_count("u")).unwrap(), 2);
            assert!(block_on(s.slot_next_expiry("u")).unwrap().is_some_and(|left| left <= short));
            // The store's own time must pass for a lease to lapse.
            ($pass)(&rig, short + ::std::time::Duration::from_millis(50));
            assert_eq!(block_on(s.slot_count("u")).unwrap(), 1);
            assert!(block_on(s.slot_next_expiry("u")).unwrap().is_some_and(|left| left > short));
            assert!(!block_on(s.slot_release("u", "b")).unwrap(), "a lapsed lease is not live");
            assert_eq!(block_on(s.slot_acquire("u", "c", minute, 2)).unwrap(), SlotOutcome::Acquired { held: 2 });
            assert!(block_on(s.slot_release("u", "a")).unwrap());
            assert!(!block_on(s.slot_release("u", "a")).unwrap());
            assert_eq!(block_on(s.slot_count("u")).unwrap(), 1);
            assert_eq!(block_on(s.slot_count("nobody")).unwrap(), 0);
            assert_eq!(block_on(s.slot_next_expiry("nobody")).unwrap(), None);
        }

        #[test]
        fn store_queue_reserves_acks_and_requeues_in_original_order() {
            use $crate::store::{QueueDepth, Store};
            use $crate::sync::block_on;
            let rig = __conformance_open!("store-queue");
            let s: &$store = &rig;
            let minute = ::std::time::Duration::from_secs(60);
            let visible = ::std::time::Duration::from_millis(300);
            let ids: Vec<u64> = (0..4).map(|i| block_on(s.enqueue("q", vec![i])).unwrap()).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
            let a = block_on(s.reserve("q", visible)).unwrap().unwrap();
            let b = block_on(s.reserve("q", visible)).unwrap().unwrap();
            let c = block_on(s.reserve("q", minute)).unwrap().unwrap();
            assert_eq!((a.id, a.payload.clone(), a.attempt), (ids[0], vec![0], 1));
            assert_eq!((b.id, c.id), (ids[1], ids[2]));
            assert_eq!(block_on(s.queue_depth("q")).unwrap(), QueueDepth { ready: 1, in_flight: 3 });
            assert!(block_on(s.ack("q", c.id)).unwrap());
            assert!(!block_on(s.ack("q", c.id)).unwrap());
            assert_eq!(block_on(s.requeue_expired("q")).unwrap(), 0, "nothing has expired yet");
            ($pass)(&rig, visible + ::std::time::Duration::from_millis(50));
            assert_eq!(block_on(s.requeue_expired("q")).unwrap(), 2);
            let order: Vec<(u64, u32)> = (0..3)
                .map(|_| block_on(s.reserve("q", minute)).unwrap().map(|d| (d.id, d.attempt)).unwrap())
                .collect();
            assert_eq!(order, vec![(ids[0], 2), (ids[1], 2), (ids[3], 1)], "redelivered first, oldest first");
            assert_eq!(block_on(s.reserve("q", minute)).unwrap(), None);
            assert_eq!(block_on(s.reserve("other", minute)).unwrap(), None);
            assert!(!block_on(s.ack("other", ids[0])).unwrap());
            assert_eq!(block_on(s.queue_depth("q")).unwrap(), QueueDepth { ready: 0, in_flight: 3 });
            assert!(block_on(s.keys("*")).unwrap().is_empty(), "queues live outside the components' keys");
        }

        #[test]
        fn store_expired_keys_are_missing_to_readers_and_writers() {
            use $crate::store::{Store, Ttl};
            use $crate::sync::block_on;
            let rig = __conformance_open!("store-expiry");
            let s: &$store = &rig;
            let minute = ::std::time::Duration::from_secs(60);
            let short = ::std::time::Duration::from_millis(100);
            let past = short + ::std::time::Duration::from_millis(50);
            block_on(s.set("k", b"v".to_vec(), Some(short))).unwrap();
            block_on(s.incr_window("w", 1, short)).unwrap();
            ($pass)(&rig, past);
            assert_eq!(block_on(s.get("k")).unwrap(), None);
            assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Missing);
            assert!(!block_on(s.pexpire("k", minute)).unwrap());
            assert!(!block_on(s.compare_and_set("k", Some(b"v"), b"w".to_vec(), None)).unwrap());
            assert!(!block_on(s.del("k")).unwrap(), "deleting an expired key deletes nothing live");
            assert!(block_on(s.keys("*")).unwrap().is_empty());
            // An expired key starts over for every writer, with a fresh TTL.
            assert_eq!(block_on(s.incr_window("w", 1, minute)).unwrap().0, 1);
            assert!(block_on(s.set_nx("k", b"again".to_vec(), short)).unwrap());
            ($pass)(&rig, past);
            assert!(block_on(s.compare_and_set("k", None, b"x".to_vec(), None)).unwrap());
            assert_eq!(block_on(s.get("k")).unwrap(), Some(b"x".to_vec()));
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

        #[test]
        fn status_tracker_contention_capped_merges_stay_within_caps() {
            use $crate::status_tracker::{self, Tracker};
            let rig = __conformance_open!("status-caps");
            let store: &$store = &rig;
            let tracker = ::std::sync::Arc::new(Tracker::new(store.clone()));
            status_tracker::suite::capped_merges_stay_within_caps(tracker, $crate::conformance::THREADS, 2, 5)
                .unwrap();
        }

        #[test]
        fn status_tracker_mutant_unbounded_status_caught() {
            use $crate::status_tracker;
            let rig = __conformance_open!("status-unbounded");
            let store: &$store = &rig;
            let mutant =
                ::std::sync::Arc::new(status_tracker::mutants::UnboundedStatus { store: store.clone() });
            let violation =
                status_tracker::suite::capped_merges_stay_within_caps(mutant, $crate::conformance::THREADS, 2, 1)
                    .unwrap_err();
            assert_eq!(violation.rule, "status-over-cap", "{violation}");
        }

        // --- circuit breaker --------------------------------------------------------------

        #[test]
        fn circuit_breaker_contention_half_open_admits_one_trial() {
            use $crate::circuit_breaker::{self, CircuitBreaker, seed};
            let rig = __conformance_open!("cb-half-open");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let make = |key: &str| CircuitBreaker::new(store.clone(), clock.clone(), key, seed::POLICY);
            circuit_breaker::suite::half_open_single_trial(make, &clock, seed::POLICY, $crate::conformance::THREADS, 40)
                .unwrap();
        }

        #[test]
        fn circuit_breaker_mutant_half_open_admits_all_caught_by_contention() {
            use $crate::circuit_breaker::{self, CircuitBreaker, mutants, seed};
            use $crate::conformance::{MUTANT_ROUNDS, THREADS};
            let rig = __conformance_open!("cb-half-open-admits-all");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let make = |key: &str| mutants::HalfOpenAdmitsAll {
                breaker: CircuitBreaker::new(store.clone(), clock.clone(), key, seed::POLICY),
            };
            let violation =
                circuit_breaker::suite::half_open_single_trial(make, &clock, seed::POLICY, THREADS, MUTANT_ROUNDS)
                    .unwrap_err();
            assert_eq!(violation.rule, "multiple-trials", "{violation}");
        }

        #[test]
        fn circuit_breaker_contention_fails_fast_while_open() {
            use $crate::circuit_breaker::{self, CircuitBreaker, seed};
            let rig = __conformance_open!("cb-fails-fast");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let breaker = ::std::sync::Arc::new(CircuitBreaker::new(store.clone(), clock, "cb", seed::POLICY));
            circuit_breaker::suite::fails_fast(breaker, seed::POLICY, 8, 100).unwrap();
        }

        #[test]
        fn circuit_breaker_contention_counts_every_failure() {
            use $crate::circuit_breaker::{self, CircuitBreaker, Policy, seed};
            let rig = __conformance_open!("cb-failures");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let policy = Policy { failure_threshold: 100_000, ..seed::POLICY };
            let breaker = ::std::sync::Arc::new(CircuitBreaker::new(store.clone(), clock, "cb", policy));
            circuit_breaker::suite::failures_counted(breaker, 8, 50).unwrap();
        }

        #[test]
        fn circuit_breaker_lifecycle_follows_the_seed_policy() {
            use $crate::circuit_breaker::{self, CircuitBreaker, seed};
            let rig = __conformance_open!("cb-lifecycle");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let breaker = CircuitBreaker::new(store.clone(), clock.clone(), "cb", seed::POLICY);
            circuit_breaker::suite::lifecycle(&breaker, &clock, seed::POLICY).unwrap();
        }

        #[test]
        fn circuit_breaker_mutant_half_open_admits_all_caught_by_lifecycle() {
            use $crate::circuit_breaker::{self, CircuitBreaker, mutants, seed};
            let rig = __conformance_open!("cb-lifecycle-admits-all");
            let store: &$store = &rig;
            let clock: ::std::sync::Arc<$crate::clock::ManualClock> = ($clock)(&rig);
            let breaker = CircuitBreaker::new(store.clone(), clock.clone(), "cb", seed::POLICY);
            let violation =
                circuit_breaker::suite::lifecycle(&mutants::HalfOpenAdmitsAll { breaker }, &clock, seed::POLICY)
                    .unwrap_err();
            assert_eq!(violation.rule, "multiple-trials", "{violation}");
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
