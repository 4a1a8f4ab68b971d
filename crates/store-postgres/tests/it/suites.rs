//! The conformance suite (`reference::store_conformance!`: the primitives' semantics, the
//! components' contention suites and the race mutants they catch) on `PgStore`, 16 real
//! threads against the real server.
//!
//! Not run here, because they move a `ManualClock` to make the *store's* time pass and the
//! server's clock cannot be moved: `daily_quota::suite::{resets_at_local_midnight, keys_expire_at_local_midnight}`,
//! `status_tracker::suite::expires_a_day_after_last_write`,
//! `ws_session::suite::{heartbeats_hold_slots, lapsed_slots_freed}`, and the suites of
//! `sliding_window`, `gcra` and `token_refresh`. (The daily quota and usage
//! tracker take the clock only to name the day and hour, so their contention suites run.)
//! The task queue's suite moves the clock only to pass the visibility timeout, so it runs with
//! a 2 ms visibility that the server's clock passes by itself between rounds. The fixed
//! window's end is waited for in real time (a one-second window).

use std::time::Duration;

use store_postgres::PgStore;

reference::store_conformance! {
    store = PgStore,
    fresh = crate::common::rig,
    clock = |_| reference::conformance::clock(),
    pass = |_, by| std::thread::sleep(by),
    visibility = Duration::from_millis(2),
}
