//! The reference components against the memory store: model-based property tests, real-thread
//! contention tests, and the tests that show each invariant rejecting its mutants.
#![cfg(not(loom))]

mod circuit_breaker;
mod common;
mod compression;
mod conformance;
mod daily_quota;
mod fixed_window;
mod gcra;
mod l1_cache;
mod multi_layer;
mod pagination;
mod query_budget;
mod segments;
mod sliding_window;
mod status_tracker;
mod task_queue;
mod token_refresh;
mod upload_sink;
mod usage_tracker;
mod video;
mod ws_session;
