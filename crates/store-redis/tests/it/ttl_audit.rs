//! The TTL audit: after every primitive, and after each component's operations, every key
//! under the test's prefix carries a TTL — except the records a component stores for good on
//! purpose, each named with its reason.

use std::sync::Arc;
use std::time::Duration;

use reference::clock::ManualClock;
use reference::l1_cache::multi_layer::{Layered, MultiLayer};
use reference::l1_cache::{L1Cache, LocalBus};
use reference::limit::{Limit, RateLimiter, seed as limits};
use reference::store::{Bump, Store, glob_match};
use reference::sync::block_on;
use reference::usage_tracker::UsageTracking;
use reference::{
    daily_quota, fixed_window, gcra, status_tracker, task_queue, token_refresh, usage_tracker, video,
    ws_session,
};
use serde_json::json;

use crate::common::Rig;
use crate::rig_or_skip;

/// Keys a component keeps without a TTL by design, as globs over the part after the store's
/// `{prefix}`.
const VIDEO_RECORDS: &str = ":video:*"; // the get-or-create rows: a video is never forgotten
const TOKEN_RECORDS: &str = ":token:*"; // OAuth credentials: dropped only on disconnect
const QUEUES: &str = "#*"; // a reliable queue keeps a task until it is acknowledged

/// The keys without a TTL (PTTL -1) not covered by `persistent`; `Err` lists them.
fn audit(rig: &Rig, persistent: &[&str]) -> Result<(), Vec<String>> {
    let tag = rig.store.redis_key("");
    let tag = tag.trim_end_matches(':');
    let immortal: Vec<String> = rig
        .raw_keys()
        .into_iter()
        .filter(|(_, ttl)| *ttl < 0)
        .map(|(key, _)| key)
        .filter(|key| {
            let rest = key.strip_prefix(tag).unwrap_or(key);
            !persistent.iter().any(|pattern| glob_match(pattern, rest))
        })
        .collect();
    if immortal.is_empty() { Ok(()) } else { Err(immortal) }
}

const MINUTE: Duration = Duration::from_secs(60);

/// One primitive call; its outcome, printed.
type Step<'a> = Box<dyn Fn() -> String + 'a>;

#[test]
fn ttl_audit_holds_after_every_primitive() {
    let rig = rig_or_skip!("audit-primitives");
    let s = &rig.store;
    let steps: Vec<(&str, Step<'_>)> = vec![
        (
            "set with ttl",
            Box::new(|| format!("{:?}", block_on(s.set("a", b"1".to_vec(), Some(MINUTE))).unwrap())),
        ),
        ("set_nx", Box::new(|| format!("{:?}", block_on(s.set_nx("b", b"1".to_vec(), MINUTE)).unwrap()))),
        (
            "compare_and_set with ttl",
            Box::new(|| {
                format!("{:?}", block_on(s.compare_and_set("c", None, b"1".to_vec(), Some(MINUTE))).unwrap())
            }),
        ),
        (
            "set_guarded with ttl",
            Box::new(|| {
                let written = block_on(s.set_guarded("b", b"1", "c2", b"1".to_vec(), Some(MINUTE))).unwrap();
                assert!(written, "the guard b holds 1");
                format!("{written:?}")
            }),
        ),
        ("pexpire", Box::new(|| format!("{:?}", block_on(s.pexpire("a", MINUTE)).unwrap()))),
        ("incr_window", Box::new(|| format!("{:?}", block_on(s.incr_window("d", 1, MINUTE)).unwrap()))),
        (
            "bounded_incr",
            Box::new(|| {
                let bumps = [
                    Bump { key: "e", delta: 1, limit: 5, ttl: MINUTE },
                    Bump { key: "f", delta: 2, limit: 5, ttl: MINUTE },
                ];
                format!("{:?}", block_on(s.bounded_incr(&bumps)).unwrap())
            }),
        ),
        ("gcra", Box::new(|| format!("{:?}", block_on(s.gcra("g", 1_000_000_000, 3)).unwrap()))),
        (
            "slot_acquire",
            Box::new(|| format!("{:?}", block_on(s.slot_acquire("h", "m", MINUTE, 2)).unwrap())),
        ),
        ("slot_release", Box::new(|| format!("{:?}", block_on(s.slot_release("h", "m")).unwrap()))),
        ("slot_next_expiry", Box::new(|| format!("{:?}", block_on(s.slot_next_expiry("h")).unwrap()))),
        ("enqueue", Box::new(|| format!("{:?}", block_on(s.enqueue("q", b"t".to_vec())).unwrap()))),
        ("reserve", Box::new(|| format!("{:?}", block_on(s.reserve("q", MINUTE)).unwrap()))),
        ("requeue_expired", Box::new(|| format!("{:?}", block_on(s.requeue_expired("q")).unwrap()))),
        ("del_matching", Box::new(|| format!("{:?}", block_on(s.del_matching("a*")).unwrap()))),
    ];
    for (name, step) in steps {
        let outcome = step();
        eprintln!("{name}: {outcome}");
        assert_eq!(audit(&rig, &[QUEUES]), Ok(()), "after {name}");
    }
    assert!(!rig.raw_keys().is_empty());
}

#[test]
fn ttl_audit_catches_the_persistent_primitives() {
    let rig = rig_or_skip!("audit-teeth");
    let s = &rig.store;
    block_on(s.incr_by("counter", 1)).unwrap();
    assert_eq!(audit(&rig, &[]).unwrap_err(), [rig.store.redis_key("counter")]);
    block_on(s.del("counter")).unwrap();
    block_on(s.enqueue("q", b"t".to_vec())).unwrap();
    assert!(audit(&rig, &[]).is_err(), "queues are persistent and must be named to pass");
    assert_eq!(audit(&rig, &[QUEUES]), Ok(()));
}

#[test]
fn ttl_audit_holds_after_each_component_runs() {
    let rig = rig_or_skip!("audit-components");
    let store = &rig.store;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));

    let limiter = fixed_window::FixedWindow::new(store.clone(), "rl", limits::USER_TOKEN);
    for _ in 0..10 {
        block_on(limiter.check("u1")).unwrap();
    }
    let gcra = gcra::Gcra::new(store.clone(), "gcra", Limit::new(3, MINUTE));
    for _ in 0..5 {
        block_on(gcra.check("u1")).unwrap();
    }
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let quota = daily_quota::DailyQuota::new(store.clone(), clock.clone(), "quota", zone, daily_quota::SEED);
    block_on(daily_quota::Quota::consume(&quota, "u1", 3)).unwrap();
    let usage = usage_tracker::UsageTracker::new(
        store.clone(),
        clock.clone(),
        "api",
        usage_tracker::UsageLimits::SEED,
    );
    for _ in 0..3 {
        if let usage_tracker::Admission::Granted(grant) = block_on(usage.acquire()).unwrap() {
            block_on(usage.finish(&grant, true)).unwrap();
        }
    }
    let tracker = status_tracker::Tracker::new(store.clone());
    let fields = status_tracker::Fields::from_iter([("stage".into(), json!("downloading"))]);
    block_on(status_tracker::StatusTracker::update(&tracker, "v1", fields.clone())).unwrap();
    block_on(status_tracker::StatusTracker::merge(&tracker, "v1", fields)).unwrap();
    let slots = ws_session::ConnectionSlots::new(store.clone(), "ws", 5, ws_session::seed::LEASE);
    block_on(ws_session::Connections::connect(&slots, "u1", "c1")).unwrap();
    block_on(ws_session::Connections::connect(&slots, "u1", "c2")).unwrap();
    block_on(ws_session::Connections::disconnect(&slots, "u1", "c1")).unwrap();
    let messages = ws_session::MessageLimits::new(store.clone());
    block_on(messages.check("u1", "comment_add")).unwrap();
    assert_eq!(audit(&rig, &[]), Ok(()), "the limiters, quotas, trackers and slots");

    // L2 here, L3 under a prefix of its own; a value evicted from L2 is promoted back into it.
    let l3 = rig_or_skip!("audit-components-l3");
    let bus = LocalBus::new();
    let cache =
        || MultiLayer::new(L1Cache::new(8, clock.clone(), bus.clone()), store.clone(), l3.store.clone());
    let (writer, reader) = (cache(), cache());
    block_on(writer.set("project:1:stats", b"v1".to_vec(), MINUTE)).unwrap();
    block_on(store.del("project:1:stats")).unwrap();
    assert!(block_on(reader.get("project:1:stats")).unwrap().is_some());
    assert!(block_on(store.get("project:1:stats")).unwrap().is_some(), "promoted into l2");
    block_on(writer.invalidate("project:2:*")).unwrap();
    assert_eq!(audit(&rig, &[]), Ok(()), "the multi-layer cache's l2, its epoch included");
    assert_eq!(audit(&l3, &[]), Ok(()), "the multi-layer cache's l3");

    let registry = video::Registry::new(store.clone());
    block_on(video::VideoRegistry::get_or_create(&registry, "42", "https://youtu.be/x")).unwrap();
    block_on(video::VideoRegistry::start(&registry, "42", "https://youtu.be/x")).unwrap();
    assert_eq!(audit(&rig, &[VIDEO_RECORDS]), Ok(()), "video records");

    let oauth =
        Arc::new(token_refresh::suite::FakeOAuth::new(clock.clone(), token_refresh::seed::POLICY.lifetime()));
    let scheduler = token_refresh::RefreshScheduler::new(
        store.clone(),
        clock.clone(),
        oauth.clone(),
        "beat",
        token_refresh::seed::POLICY,
    );
    block_on(scheduler.connect("t1", oauth.authorize("t1"))).unwrap();
    clock.advance(token_refresh::seed::POLICY.period());
    block_on(token_refresh::Scheduler::tick(&scheduler)).unwrap();
    assert_eq!(audit(&rig, &[VIDEO_RECORDS, TOKEN_RECORDS]), Ok(()), "token refresh");

    let queue = task_queue::TaskQueue::new(store.clone(), "imports", MINUTE);
    block_on(queue.enqueue(b"t".to_vec())).unwrap();
    let delivery = block_on(task_queue::Consumer::take(&queue)).unwrap().unwrap();
    block_on(task_queue::Consumer::complete(&queue, &delivery, b"done".to_vec())).unwrap();
    assert_eq!(audit(&rig, &[VIDEO_RECORDS, TOKEN_RECORDS, QUEUES]), Ok(()), "task queue");
}

#[test]
fn ttl_audit_mutant_incr_without_ttl_caught_on_redis() {
    let rig = rig_or_skip!("audit-incr-without-ttl");
    let mutant = fixed_window::mutants::IncrWithoutTtl {
        store: rig.store.clone(),
        prefix: "rl".into(),
        limit: limits::USER_TOKEN,
    };
    block_on(mutant.check("u1")).unwrap();
    let immortal = audit(&rig, &[]).unwrap_err();
    assert_eq!(immortal, [rig.store.redis_key("rl:u1")], "the mutant's counter never expires");
}
