//! Reference implementations of the components of a video-platform backend, each beside the
//! buggy variant the field shipped (its *mutant*) and the invariant that tells them apart.
//!
//! Every component has the same shape, one folder each:
//!
//! - `mod.rs` — the correct implementation, written against [`store::Store`] and an injected
//!   [`clock::Clock`];
//! - `mutants.rs` — the field's buggy variants, kept in code so the checks can be shown to
//!   catch them;
//! - `invariant.rs` — the invariant as a function that judges what was observed and returns a
//!   [`Violation`] with its evidence;
//! - `suite.rs` — the contention suite: real threads released together, judged by the
//!   invariant, run against any implementation (the correct one must pass, each mutant fail).
//!   Test code: compiled with the `testing` feature only, like the store conformance suite
//!   (`store_conformance!`) and its thread helper (`testing`).
//!
//! No component reads the system clock, and none does network I/O: shared state goes through
//! its store, bytes through the stack's implementations of the component's traits (#12's body
//! and writer).

pub mod catalog;
pub mod clock;
#[cfg(all(feature = "testing", not(loom)))]
pub mod conformance;
pub mod invariant;
pub mod limit;
pub mod store;
pub mod sync;
#[cfg(all(feature = "testing", not(loom)))]
pub mod testing;

pub mod circuit_breaker;
pub mod compression;
pub mod daily_quota;
pub mod fixed_window;
pub mod gcra;
pub mod l1_cache;
pub mod pagination;
pub mod query_budget;
pub mod segments;
pub mod sliding_window;
pub mod status_tracker;
pub mod task_queue;
pub mod token_refresh;
pub mod upload_sink;
pub mod usage_tracker;
pub mod video;
pub mod ws_session;

pub use invariant::Violation;
