//! The conformance suite (`reference::store_conformance!`: the components' contention suites
//! and the race mutants they catch) on `PgStore`, 16 real threads against the real server.
//!
//! Not run here, because they move a `ManualClock` to make the *store's* time pass and the
//! server's clock cannot be moved: `daily_quota::suite::{resets_at_local_midnight, keys_expire_at_local_midnight}`,
//! `status_tracker::suite::expires_a_day_after_last_write`,
//! `ws_session::suite::{heartbeats_hold_slots, lapsed_slots_freed}`, and the suites of
//! `sliding_window`, `gcra`, `circuit_breaker` and `token_refresh`. (The daily quota and usage
//! tracker take the clock only to name the day and hour, so their contention suites run.)
//! The task queue's suite moves the clock only to pass the visibility timeout, so it runs with
//! a 2 ms visibility that the server's clock passes by itself between rounds. The fixed
//! window's end is checked in real time, below, with a one-second window.

use std::time::Duration;

use store_postgres::PgStore;

reference::store_conformance! {
    store = PgStore,
    fresh = crate::common::rig,
    clock = |_| reference::conformance::clock(),
    visibility = Duration::from_millis(2),
}

/// A fixed window on the server's clock: its end is only observable by waiting, so the window
/// is one second. Under any load the correct limiter's window ends (it expires a second after
/// the first hit); the mutant's hit half-way through pushes the end half a second past the
/// last call, a margin no scheduling delay on loopback reaches.
const REAL_TIME_WINDOW: reference::limit::Limit = reference::limit::Limit::new(3, Duration::from_secs(1));

#[test]
fn fixed_window_window_ends_in_real_time() {
    let Some(rig) = crate::common::rig("fw-window-ends") else { return };
    let store: &PgStore = &rig;
    let limiter = reference::fixed_window::FixedWindow::new(store.clone(), "rl", REAL_TIME_WINDOW);
    reference::fixed_window::suite::window_ends_with(&limiter, REAL_TIME_WINDOW, std::thread::sleep).unwrap();
}

#[test]
fn fixed_window_mutant_expire_every_hit_caught_in_real_time() {
    let Some(rig) = crate::common::rig("fw-expire-every-hit") else { return };
    let store: &PgStore = &rig;
    let mutant = reference::fixed_window::mutants::ExpireEveryHit {
        store: store.clone(),
        prefix: "rl".into(),
        limit: REAL_TIME_WINDOW,
    };
    let violation =
        reference::fixed_window::suite::window_ends_with(&mutant, REAL_TIME_WINDOW, std::thread::sleep)
            .unwrap_err();
    assert_eq!(violation.rule, "window-never-ends", "{violation}");
}
