//! #5 video get-or-create: three concurrent requests, every interleaving.

use std::sync::Arc;

use loom::thread;
use reference::clock::ManualClock;
use reference::store::MemoryStore;
use reference::sync::block_on;
use reference::video::{GetOrCreate, Registry, Status, Video, VideoRegistry, invariant, mutants};

use crate::common::{Found, assert_caught, assert_holds, explore};

const USER: &str = "42";
const URL: &str = "https://youtu.be/dQw4w9WgXcQ";

fn store() -> MemoryStore {
    MemoryStore::new(Arc::new(ManualClock::new(0)))
}

/// Three concurrent `get_or_create` calls on a video that was `before`.
fn three_requests<R: VideoRegistry + 'static>(registry: R, before: Option<Status>, found: &Found) {
    if let Some(status) = before {
        assert_eq!(status, Status::Failed, "the models start from missing or failed");
        block_on(registry.get_or_create(USER, URL)).unwrap();
        block_on(registry.start(USER, URL)).unwrap();
        block_on(registry.fail(USER, URL)).unwrap();
    }
    let registry = Arc::new(registry);
    let spawned: Vec<_> = (0..2)
        .map(|_| {
            let registry = Arc::clone(&registry);
            thread::spawn(move || block_on(registry.get_or_create(USER, URL)).unwrap())
        })
        .collect();
    let mut outcomes: Vec<GetOrCreate> = vec![block_on(registry.get_or_create(USER, URL)).unwrap()];
    outcomes.extend(spawned.into_iter().map(|h| h.join().unwrap()));
    found.record(invariant::claims(before, &outcomes));
}

/// Two concurrent starts of a pending video.
fn two_starts<R: VideoRegistry + 'static>(registry: R, found: &Found) {
    block_on(registry.get_or_create(USER, URL)).unwrap();
    let registry = Arc::new(registry);
    let other = {
        let registry = Arc::clone(&registry);
        thread::spawn(move || block_on(registry.start(USER, URL)).ok())
    };
    let applied: Vec<Option<Video>> = vec![block_on(registry.start(USER, URL)).ok(), other.join().unwrap()];
    found.record(invariant::one_transition("processing", &applied));
}

#[test]
fn video_new_url_created_and_claimed_once() {
    assert_holds(&explore(|found| three_requests(Registry::new(store()), None, found)));
}

#[test]
fn video_failed_video_reclaimed_once() {
    assert_holds(&explore(|found| three_requests(Registry::new(store()), Some(Status::Failed), found)));
}

#[test]
fn video_one_start_wins() {
    assert_holds(&explore(|found| two_starts(Registry::new(store()), found)));
}

#[test]
fn video_mutant_check_then_insert_is_caught() {
    let found = explore(|found| three_requests(mutants::CheckThenInsert { store: store() }, None, found));
    assert_caught(&found, "duplicate-create");
}

#[test]
fn video_mutant_select_for_update_is_caught() {
    let found = explore(|found| {
        three_requests(mutants::SelectForUpdate { store: store() }, Some(Status::Failed), found)
    });
    assert_caught(&found, "duplicate-processing");
}

#[test]
fn video_mutant_unconditional_update_is_caught() {
    let found = explore(|found| two_starts(mutants::UnconditionalUpdate { store: store() }, found));
    assert_caught(&found, "duplicate-transition");
}
