//! Each primitive's semantics on a real server, as the memory store defines them.

use std::time::Duration;

use reference::store::{Bump, BumpOutcome, SlotOutcome, Store, StoreError, Ttl};
use reference::sync::block_on;

use crate::rig_or_skip;

const MINUTE: Duration = Duration::from_secs(60);

fn remaining(ttl: Ttl) -> Duration {
    match ttl {
        Ttl::Remaining(left) => left,
        other => panic!("expected a TTL, got {other:?}"),
    }
}

#[test]
fn strings_set_get_set_nx_and_compare_and_set() {
    let rig = rig_or_skip!("strings");
    let s = &rig.store;
    assert_eq!(block_on(s.get("k")).unwrap(), None);
    block_on(s.set("k", b"v".to_vec(), None)).unwrap();
    assert_eq!(block_on(s.get("k")).unwrap(), Some(b"v".to_vec()));
    assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Persistent);
    assert!(!block_on(s.set_nx("k", b"w".to_vec(), MINUTE)).unwrap());
    assert!(block_on(s.set_nx("n", b"w".to_vec(), MINUTE)).unwrap());
    assert!(remaining(block_on(s.pttl("n")).unwrap()) <= MINUTE);

    assert!(!block_on(s.compare_and_set("k", Some(b"x"), b"y".to_vec(), None)).unwrap());
    assert!(!block_on(s.compare_and_set("k", None, b"y".to_vec(), None)).unwrap());
    assert!(block_on(s.compare_and_set("k", Some(b"v"), b"y".to_vec(), Some(MINUTE))).unwrap());
    assert_eq!(block_on(s.get("k")).unwrap(), Some(b"y".to_vec()));
    assert!(remaining(block_on(s.pttl("k")).unwrap()) <= MINUTE);
    assert!(block_on(s.compare_and_set("k", Some(b"y"), b"z".to_vec(), None)).unwrap());
    assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Persistent, "a CAS without TTL makes the key persistent");
    assert!(!block_on(s.compare_and_set("missing", Some(b"v"), b"y".to_vec(), None)).unwrap());
    assert!(block_on(s.compare_and_set("missing", None, b"y".to_vec(), None)).unwrap());
    // Binary values round-trip.
    let bytes: Vec<u8> = (0..=255).collect();
    block_on(s.set("bin", bytes.clone(), None)).unwrap();
    assert!(block_on(s.compare_and_set("bin", Some(&bytes), b"ok".to_vec(), None)).unwrap());

    assert!(block_on(s.del("k")).unwrap());
    assert!(!block_on(s.del("k")).unwrap());
    assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Missing);
    assert!(!block_on(s.pexpire("k", MINUTE)).unwrap());
    assert!(block_on(s.pexpire("missing", MINUTE)).unwrap());
}

#[test]
fn counters_incr_window_keeps_the_ttl_of_the_first_hit() {
    let rig = rig_or_skip!("counters");
    let s = &rig.store;
    assert_eq!(block_on(s.incr_by("c", 2)).unwrap(), 2);
    assert_eq!(block_on(s.pttl("c")).unwrap(), Ttl::Persistent);
    assert_eq!(block_on(s.get("c")).unwrap(), Some(b"2".to_vec()));

    let (count, left) = block_on(s.incr_window("w", 1, MINUTE)).unwrap();
    assert_eq!(count, 1);
    assert!(left <= MINUTE && left > MINUTE - Duration::from_secs(5), "{left:?}");
    block_on(s.pexpire("w", Duration::from_secs(30))).unwrap();
    let (count, left) = block_on(s.incr_window("w", 4, MINUTE)).unwrap();
    assert_eq!(count, 5);
    assert!(left <= Duration::from_secs(30), "an existing window keeps its TTL: {left:?}");
    // A counter that lost its TTL gets one back rather than living forever.
    let (count, left) = block_on(s.incr_window("c", 1, MINUTE)).unwrap();
    assert_eq!((count, left <= MINUTE), (3, true));
    assert!(matches!(block_on(s.pttl("c")).unwrap(), Ttl::Remaining(_)));

    block_on(s.set("text", b"abc".to_vec(), None)).unwrap();
    let err = block_on(s.incr_window("text", 1, MINUTE)).unwrap_err();
    assert!(matches!(err, StoreError::WrongKind { ref key, .. } if key == "text"), "{err}");
}

#[test]
fn counters_bounded_incr_is_all_or_nothing() {
    let rig = rig_or_skip!("bounded");
    let s = &rig.store;
    let bumps = |delta| {
        [
            Bump { key: "day", delta, limit: 10, ttl: MINUTE },
            Bump { key: "hour", delta, limit: 4, ttl: Duration::from_secs(30) },
        ]
    };
    assert_eq!(block_on(s.bounded_incr(&bumps(3))).unwrap(), BumpOutcome::Applied(vec![3, 3]));
    assert!(remaining(block_on(s.pttl("hour")).unwrap()) <= Duration::from_secs(30));
    assert_eq!(block_on(s.bounded_incr(&bumps(2))).unwrap(), BumpOutcome::Refused { index: 1, current: 3 });
    assert_eq!(block_on(s.get("day")).unwrap(), Some(b"3".to_vec()), "nothing applied when refused");
    assert_eq!(block_on(s.bounded_incr(&bumps(1))).unwrap(), BumpOutcome::Applied(vec![4, 4]));
    // An existing counter keeps its TTL (here: none).
    block_on(s.set("kept", b"1".to_vec(), None)).unwrap();
    let kept = [Bump { key: "kept", delta: 1, limit: 5, ttl: MINUTE }];
    assert_eq!(block_on(s.bounded_incr(&kept)).unwrap(), BumpOutcome::Applied(vec![2]));
    assert_eq!(block_on(s.pttl("kept")).unwrap(), Ttl::Persistent);

    block_on(s.set("text", b"1e3".to_vec(), None)).unwrap();
    let bad = [
        Bump { key: "day", delta: 1, limit: 100, ttl: MINUTE },
        Bump { key: "text", delta: 1, limit: 9, ttl: MINUTE },
    ];
    let err = block_on(s.bounded_incr(&bad)).unwrap_err();
    assert!(matches!(err, StoreError::WrongKind { expected: "an integer", .. }), "{err}");
    assert_eq!(block_on(s.get("day")).unwrap(), Some(b"4".to_vec()), "a bad counter applies nothing");
}

#[test]
fn gcra_admits_the_burst_then_refuses_in_server_nanoseconds() {
    let rig = rig_or_skip!("gcra");
    let s = &rig.store;
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
    let left = remaining(block_on(s.pttl("g")).unwrap());
    assert!(left <= Duration::from_nanos(third.tat - third.now) + Duration::from_millis(1));
    assert!(left > Duration::from_secs(29 * 60), "{left:?}");
}

#[test]
fn slots_acquire_renew_refuse_release_and_lapse() {
    let rig = rig_or_skip!("slots");
    let s = &rig.store;
    assert_eq!(block_on(s.slot_next_expiry("u")).unwrap(), None);
    assert_eq!(block_on(s.slot_acquire("u", "a", MINUTE, 2)).unwrap(), SlotOutcome::Acquired { held: 1 });
    assert_eq!(block_on(s.slot_acquire("u", "a", MINUTE, 2)).unwrap(), SlotOutcome::Renewed { held: 1 });
    let short = Duration::from_millis(150);
    assert_eq!(block_on(s.slot_acquire("u", "b", short, 2)).unwrap(), SlotOutcome::Acquired { held: 2 });
    assert_eq!(block_on(s.slot_acquire("u", "c", MINUTE, 2)).unwrap(), SlotOutcome::Full { held: 2 });
    assert_eq!(block_on(s.slot_count("u")).unwrap(), 2);
    assert!(block_on(s.slot_next_expiry("u")).unwrap().unwrap() <= short);
    assert!(remaining(block_on(s.pttl("u")).unwrap()) > short, "the set lives as long as its longest lease");
    // Redis's own clock must pass for a lease to lapse.
    std::thread::sleep(short + Duration::from_millis(50));
    assert_eq!(block_on(s.slot_count("u")).unwrap(), 1);
    assert!(!block_on(s.slot_release("u", "b")).unwrap(), "a lapsed lease is not live");
    assert_eq!(block_on(s.slot_acquire("u", "c", MINUTE, 2)).unwrap(), SlotOutcome::Acquired { held: 2 });
    assert!(block_on(s.slot_release("u", "a")).unwrap());
    assert!(!block_on(s.slot_release("u", "a")).unwrap());
    assert_eq!(block_on(s.slot_count("u")).unwrap(), 1);

    block_on(s.set("text", b"x".to_vec(), None)).unwrap();
    let err = block_on(s.slot_acquire("text", "a", MINUTE, 2)).unwrap_err();
    assert!(matches!(err, StoreError::WrongKind { expected: "a slot set", .. }), "{err}");
    let err = block_on(s.get("u")).unwrap_err();
    assert!(matches!(err, StoreError::WrongKind { expected: "a string", .. }), "{err}");
}

#[test]
fn queue_reserve_ack_and_requeue_in_original_order() {
    let rig = rig_or_skip!("queue");
    let s = &rig.store;
    let ids: Vec<u64> = (0..4).map(|i| block_on(s.enqueue("q", vec![i])).unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let visible = Duration::from_millis(100);
    let a = block_on(s.reserve("q", visible)).unwrap().unwrap();
    let b = block_on(s.reserve("q", visible)).unwrap().unwrap();
    let c = block_on(s.reserve("q", MINUTE)).unwrap().unwrap();
    assert_eq!((a.id, a.payload.clone(), a.attempt), (ids[0], vec![0], 1));
    assert_eq!((b.id, c.id), (ids[1], ids[2]));
    assert_eq!(block_on(s.queue_depth("q")).unwrap().ready, 1);
    assert_eq!(block_on(s.queue_depth("q")).unwrap().in_flight, 3);
    assert!(block_on(s.ack("q", c.id)).unwrap());
    assert!(!block_on(s.ack("q", c.id)).unwrap());
    assert_eq!(block_on(s.requeue_expired("q")).unwrap(), 0, "nothing has expired yet");
    // Redis's own clock must pass the visibility timeout.
    std::thread::sleep(visible + Duration::from_millis(50));
    assert_eq!(block_on(s.requeue_expired("q")).unwrap(), 2);
    let order: Vec<(u64, u32)> = (0..3)
        .map(|_| block_on(s.reserve("q", MINUTE)).unwrap().map(|d| (d.id, d.attempt)).unwrap())
        .collect();
    assert_eq!(order, vec![(ids[0], 2), (ids[1], 2), (ids[3], 1)], "redelivered first, oldest first");
    assert_eq!(block_on(s.reserve("q", MINUTE)).unwrap(), None);
    assert!(!block_on(s.ack("other", ids[0])).unwrap());
    assert!(block_on(s.keys("*")).unwrap().is_empty(), "queues live outside the components' keys");
}

#[test]
fn keys_and_del_matching_scan_with_literal_metacharacters() {
    let rig = rig_or_skip!("keys");
    let s = &rig.store;
    for key in ["project:1:stats", "project:1:list", "project:12:stats", "odd:[a]?:x", "odd:b:x"] {
        block_on(s.set(key, b"v".to_vec(), Some(MINUTE))).unwrap();
    }
    let mut found = block_on(s.keys("project:1:*")).unwrap();
    found.sort();
    assert_eq!(found, ["project:1:list", "project:1:stats"]);
    assert_eq!(block_on(s.keys("odd:[a]?:*")).unwrap(), ["odd:[a]?:x"]);
    assert_eq!(block_on(s.del_matching("project:*")).unwrap(), 3);
    assert_eq!(block_on(s.del_matching("project:*")).unwrap(), 0);
    assert_eq!(block_on(s.keys("*")).unwrap().len(), 2);
}
