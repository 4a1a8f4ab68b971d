//! The reference components against the memory store: model-based property tests, real-thread
//! contention tests, and the tests that show each invariant rejecting its mutants.
#![cfg(not(loom))]

mod circuit_breaker;
mod common;
mod daily_quota;
mod fixed_window;
mod l1_cache;
mod segments;
mod status_tracker;
mod task_queue;
mod token_refresh;
mod video;
mod ws_session;
