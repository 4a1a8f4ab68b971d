//! Each primitive's semantics on the real server, as `MemoryStore` (the executable spec)
//! defines them.

use std::time::Duration;

use reference::store::{Bump, BumpOutcome, QueueDepth, SlotOutcome, Store, StoreError, Ttl};
use reference::sync::block_on;

use crate::rig;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn strings_set_get_cas_and_delete() {
    let rig = rig!("strings");
    let s = &rig.store;
    assert_eq!(block_on(s.get("k")).unwrap(), None);
    block_on(s.set("k", b"v".to_vec(), None)).unwrap();
    assert_eq!(block_on(s.get("k")).unwrap(), Some(b"v".to_vec()));
    assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Persistent);
    assert!(!block_on(s.set_nx("k", b"w".to_vec(), MINUTE)).unwrap());
    assert!(block_on(s.set_nx("n", b"w".to_vec(), MINUTE)).unwrap());
    assert!(matches!(block_on(s.pttl("n")).unwrap(), Ttl::Remaining(d) if d <= MINUTE && d > MINUTE / 2));

    assert!(!block_on(s.compare_and_set("k", None, b"x".to_vec(), None)).unwrap());
    assert!(!block_on(s.compare_and_set("k", Some(b"nope"), b"x".to_vec(), None)).unwrap());
    assert!(block_on(s.compare_and_set("k", Some(b"v"), b"x".to_vec(), Some(MINUTE))).unwrap());
    assert_eq!(block_on(s.get("k")).unwrap(), Some(b"x".to_vec()));
    assert!(matches!(block_on(s.pttl("k")).unwrap(), Ttl::Remaining(_)));
    // A compare-and-set without a TTL makes the key persistent, as on the memory store.
    assert!(block_on(s.compare_and_set("k", Some(b"x"), b"y".to_vec(), None)).unwrap());
    assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Persistent);
    assert!(block_on(s.compare_and_set("fresh", None, b"1".to_vec(), None)).unwrap());
    assert!(!block_on(s.compare_and_set("missing", Some(b"1"), b"2".to_vec(), None)).unwrap());

    assert!(block_on(s.pexpire("k", MINUTE)).unwrap());
    assert!(!block_on(s.pexpire("missing", MINUTE)).unwrap());
    assert!(block_on(s.del("k")).unwrap());
    assert!(!block_on(s.del("k")).unwrap());
    assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Missing);
}

#[test]
fn keys_and_del_matching_follow_globs() {
    let rig = rig!("globs");
    let s = &rig.store;
    for key in ["project:1:stats", "project:1:list", "project:12:stats", "p_x%:1"] {
        block_on(s.set(key, b"v".to_vec(), None)).unwrap();
    }
    let mut keys = block_on(s.keys("project:1:*")).unwrap();
    keys.sort();
    assert_eq!(keys, ["project:1:list", "project:1:stats"]);
    // LIKE's own wildcards in a key or pattern are literal characters.
    assert_eq!(block_on(s.keys("p_x%:*")).unwrap(), ["p_x%:1"]);
    assert!(block_on(s.keys("p?x*")).unwrap().is_empty());
    assert_eq!(block_on(s.del_matching("project:*:stats")).unwrap(), 2);
    assert_eq!(block_on(s.keys("*")).unwrap().len(), 2);
}

#[test]
fn counters_read_as_decimal_text_and_refuse_other_values() {
    let rig = rig!("counters");
    let s = &rig.store;
    assert_eq!(block_on(s.incr_by("c", 5)).unwrap(), 5);
    assert_eq!(block_on(s.incr_by("c", -2)).unwrap(), 3);
    assert_eq!(block_on(s.get("c")).unwrap(), Some(b"3".to_vec()));
    assert_eq!(block_on(s.pttl("c")).unwrap(), Ttl::Persistent);
    assert!(block_on(s.compare_and_set("c", Some(b"3"), b"10".to_vec(), None)).unwrap());
    assert_eq!(block_on(s.incr_by("c", 1)).unwrap(), 11);

    let (count, left) = block_on(s.incr_window("w", 1, MINUTE)).unwrap();
    assert_eq!(count, 1);
    assert!(left <= MINUTE && left > MINUTE / 2, "{left:?}");
    // The window is set when the key is created, never extended by later hits.
    let (count, again) = block_on(s.incr_window("w", 2, 10 * MINUTE)).unwrap();
    assert_eq!(count, 3);
    assert!(again <= left, "{again:?} > {left:?}");

    block_on(s.set("text", b"abc".to_vec(), None)).unwrap();
    let wrong = StoreError::WrongKind { key: "text".into(), expected: "an integer" };
    assert_eq!(block_on(s.incr_by("text", 1)), Err(wrong.clone()));
    assert_eq!(block_on(s.incr_window("text", 1, MINUTE)), Err(wrong.clone()));
    let bump = Bump { key: "text", delta: 1, limit: 10, ttl: MINUTE };
    assert_eq!(block_on(s.bounded_incr(&[bump])), Err(wrong));
}

#[test]
fn bounded_incr_is_all_or_nothing() {
    let rig = rig!("bounded");
    let s = &rig.store;
    let bumps = |delta| {
        [
            Bump { key: "day", delta, limit: 10, ttl: MINUTE },
            Bump { key: "hour", delta, limit: 4, ttl: MINUTE },
        ]
    };
    assert_eq!(block_on(s.bounded_incr(&bumps(3))).unwrap(), BumpOutcome::Applied(vec![3, 3]));
    assert_eq!(block_on(s.bounded_incr(&bumps(2))).unwrap(), BumpOutcome::Refused { index: 1, current: 3 });
    // Nothing moved, and a refused call on a missing key leaves no key behind.
    assert_eq!(block_on(s.get("day")).unwrap(), Some(b"3".to_vec()));
    let lone = [Bump { key: "big", delta: 11, limit: 10, ttl: MINUTE }];
    assert_eq!(block_on(s.bounded_incr(&lone)).unwrap(), BumpOutcome::Refused { index: 0, current: 0 });
    assert_eq!(block_on(s.get("big")).unwrap(), None);
    assert!(matches!(block_on(s.pttl("hour")).unwrap(), Ttl::Remaining(_)));
}

#[test]
fn gcra_admits_the_burst_then_refuses() {
    let rig = rig!("gcra");
    let s = &rig.store;
    let interval = 60_000_000_000; // one a minute
    let admitted: Vec<bool> = (0..5).map(|_| block_on(s.gcra("g", interval, 3)).unwrap().admitted).collect();
    assert_eq!(admitted, [true, true, true, false, false]);
    assert!(matches!(block_on(s.pttl("g")).unwrap(), Ttl::Remaining(d) if d > 2 * MINUTE));
}

#[test]
fn slots_are_bounded_and_renewable() {
    let rig = rig!("slots");
    let s = &rig.store;
    assert_eq!(block_on(s.slot_acquire("u", "a", MINUTE, 2)).unwrap(), SlotOutcome::Acquired { held: 1 });
    assert_eq!(block_on(s.slot_acquire("u", "b", MINUTE, 2)).unwrap(), SlotOutcome::Acquired { held: 2 });
    assert_eq!(block_on(s.slot_acquire("u", "c", MINUTE, 2)).unwrap(), SlotOutcome::Full { held: 2 });
    assert_eq!(block_on(s.slot_acquire("u", "a", MINUTE, 2)).unwrap(), SlotOutcome::Renewed { held: 2 });
    assert_eq!(block_on(s.slot_count("u")).unwrap(), 2);
    assert!(matches!(block_on(s.slot_next_expiry("u")).unwrap(), Some(d) if d <= MINUTE));
    assert!(block_on(s.slot_release("u", "a")).unwrap());
    assert!(!block_on(s.slot_release("u", "a")).unwrap());
    assert_eq!(block_on(s.slot_count("u")).unwrap(), 1);
    assert_eq!(block_on(s.slot_next_expiry("nobody")).unwrap(), None);
}

#[test]
fn queue_reserves_acks_and_requeues_in_order() {
    let rig = rig!("queue");
    let s = &rig.store;
    let ids: Vec<u64> = (0..3).map(|i| block_on(s.enqueue("q", vec![i])).unwrap()).collect();
    let first = block_on(s.reserve("q", Duration::ZERO)).unwrap().unwrap();
    let second = block_on(s.reserve("q", Duration::ZERO)).unwrap().unwrap();
    assert_eq!((first.id, first.payload.clone(), first.attempt), (ids[0], vec![0], 1));
    assert_eq!(second.id, ids[1]);
    assert_eq!(block_on(s.queue_depth("q")).unwrap(), QueueDepth { ready: 1, in_flight: 2 });
    // Zero visibility: both are past their timeout at once; back at the head, oldest first.
    assert_eq!(block_on(s.requeue_expired("q")).unwrap(), 2);
    let again = block_on(s.reserve("q", MINUTE)).unwrap().unwrap();
    assert_eq!((again.id, again.attempt), (ids[0], 2));
    assert!(block_on(s.ack("q", again.id)).unwrap());
    assert!(!block_on(s.ack("q", again.id)).unwrap());
    assert_eq!(block_on(s.reserve("q", MINUTE)).unwrap().unwrap().id, ids[1]);
    assert_eq!(block_on(s.reserve("q", MINUTE)).unwrap().unwrap().id, ids[2]);
    assert_eq!(block_on(s.reserve("q", MINUTE)).unwrap(), None);
    assert_eq!(block_on(s.reserve("other", MINUTE)).unwrap(), None);
}

#[test]
fn expired_rows_are_invisible_and_swept() {
    let rig = rig!("expiry");
    let s = &rig.store;
    let short = Duration::from_millis(30);
    block_on(s.set("k", b"v".to_vec(), Some(short))).unwrap();
    block_on(s.incr_window("w", 1, short)).unwrap();
    // The server's clock must pass the TTL: the one kind of wait these tests allow.
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(block_on(s.get("k")).unwrap(), None);
    assert_eq!(block_on(s.pttl("k")).unwrap(), Ttl::Missing);
    assert!(!block_on(s.pexpire("k", MINUTE)).unwrap());
    assert!(!block_on(s.compare_and_set("k", Some(b"v"), b"w".to_vec(), None)).unwrap());
    assert!(block_on(s.keys("*")).unwrap().is_empty());
    // An expired key is a missing one to every writer: it starts over, with a fresh TTL.
    assert_eq!(block_on(s.incr_window("w", 1, MINUTE)).unwrap().0, 1);
    assert!(block_on(s.set_nx("k", b"again".to_vec(), short)).unwrap());
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(block_on(s.sweep_expired()).unwrap(), 1);
    assert!(block_on(s.compare_and_set("k", None, b"x".to_vec(), None)).unwrap());
}

#[test]
fn migrations_are_idempotent_and_versioned() {
    let rig = rig!("migrations");
    let url = crate::common::database_url();
    let pool = store_postgres::PgPool::new(&url, &rig.name, store_postgres::PoolPolicy::SEED).unwrap();
    // Opening the same schema again, from several stores at once, applies nothing twice.
    let opened = reference::testing::burst(4, move |_| {
        block_on(store_postgres::PgStore::open(pool.clone(), pool.application_name())).is_ok()
    });
    assert!(opened.into_iter().all(|ok| ok));
    block_on(rig.store.set("k", b"v".to_vec(), None)).unwrap();
    assert_eq!(block_on(rig.store.get("k")).unwrap(), Some(b"v".to_vec()));
    assert_eq!(store_postgres::schema::VERSION, 3);
}
