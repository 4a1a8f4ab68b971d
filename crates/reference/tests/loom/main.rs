//! Loom models of the reference components: every interleaving of 2–3 threads. Run with
//! `RUSTFLAGS="--cfg loom"` (see `ci/test`); empty otherwise.
#![cfg(loom)]

mod common;
mod loom_circuit_breaker;
mod loom_daily_quota;
mod loom_fixed_window;
mod loom_gcra;
mod loom_l1_cache;
mod loom_multi_layer;
mod loom_pagination;
mod loom_query_budget;
mod loom_segments;
mod loom_sliding_window;
mod loom_status_tracker;
mod loom_task_queue;
mod loom_token_refresh;
mod loom_upload_sink;
mod loom_usage_tracker;
mod loom_video;
mod loom_ws_session;
