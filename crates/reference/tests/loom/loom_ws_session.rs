//! #17 WebSocket connection slots: three connects with a limit of two, and two disconnects
//! racing, every interleaving.

use std::sync::Arc;
use std::time::Duration;

use loom::thread;
use reference::clock::ManualClock;
use reference::store::MemoryStore;
use reference::sync::block_on;
use reference::ws_session::mutants::RacyCounter;
use reference::ws_session::{ConnectionSlots, Connections, invariant};

use crate::common::{Found, assert_caught, assert_holds, explore};

const MAX: usize = 2;
const LEASE: Duration = Duration::from_secs(60);

fn store() -> MemoryStore {
    MemoryStore::new(Arc::new(ManualClock::new(0)))
}

fn correct() -> ConnectionSlots<MemoryStore> {
    ConnectionSlots::new(store(), "ws:connections", MAX, LEASE)
}

fn racy_counter() -> RacyCounter<MemoryStore> {
    RacyCounter { store: store(), prefix: "ws:connections".into(), max: MAX, ttl: LEASE }
}

/// Three connections of one user opened at once: exactly two admitted.
fn three_connects<C: Connections + 'static>(conns: C, found: &Found) {
    let conns = Arc::new(conns);
    let spawned: Vec<_> = (1..3)
        .map(|i| {
            let conns = Arc::clone(&conns);
            thread::spawn(move || block_on(conns.connect("user", &format!("c{i}"))).unwrap())
        })
        .collect();
    let mut admitted = vec![block_on(conns.connect("user", "c0")).unwrap()];
    admitted.extend(spawned.into_iter().map(|h| h.join().unwrap()));
    found.record(invariant::exactly_min_admitted(MAX, &admitted));
}

/// Two open connections close at once; afterwards two new ones are admitted.
fn two_disconnects<C: Connections + 'static>(conns: C, found: &Found) {
    let conns = Arc::new(conns);
    for id in ["a", "b"] {
        assert!(block_on(conns.connect("user", id)).unwrap());
    }
    let other = {
        let conns = Arc::clone(&conns);
        thread::spawn(move || block_on(conns.disconnect("user", "b")).unwrap())
    };
    block_on(conns.disconnect("user", "a")).unwrap();
    other.join().unwrap();
    let again: Vec<bool> = ["c", "d"].iter().map(|id| block_on(conns.connect("user", id)).unwrap()).collect();
    found.record(invariant::slots_freed(MAX, &again));
}

#[test]
fn ws_session_admits_at_most_the_limit() {
    assert_holds(&explore(|found| three_connects(correct(), found)));
}

#[test]
fn ws_session_mutant_racy_counter_is_caught() {
    assert_caught(&explore(|found| three_connects(racy_counter(), found)), "over-admission");
}

#[test]
fn ws_session_disconnects_free_every_slot() {
    assert_holds(&explore(|found| two_disconnects(correct(), found)));
}

#[test]
fn ws_session_mutant_racy_counter_leaks_slots_on_disconnect() {
    assert_caught(&explore(|found| two_disconnects(racy_counter(), found)), "slot-leak");
}
