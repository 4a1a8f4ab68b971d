//! The reference components against the memory store: model-based property tests, real-thread
//! contention tests, and the tests that show each invariant rejecting its mutants.
#![cfg(not(loom))]

mod common;
mod fixed_window;
mod gcra;
mod sliding_window;
mod usage_tracker;
