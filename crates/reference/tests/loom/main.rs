//! Loom models of the reference components: every interleaving of 2–3 threads. Run with
//! `RUSTFLAGS="--cfg loom"` (see `ci/test`); empty otherwise.
#![cfg(loom)]

mod common;
mod loom_fixed_window;
mod loom_gcra;
mod loom_usage_tracker;
