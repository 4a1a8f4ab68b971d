//! Black-box invariant checks over the network: what load tools that judge requests one at a
//! time cannot see. Each check releases bursts of concurrent requests (a barrier, spread over
//! every instance of the target), records every operation as invocation and completion with
//! monotonic timestamps, and judges the whole history afterwards (Jepsen's approach): exactly
//! N per window, one creation among C, counters conserved, …
//!
//! - [`kind`] — what a check kind is ([`kind::Kind`]) and what it may ask of a reference
//!   stack stampede starts ([`kind::Tuning`]);
//! - [`checkers`] — the kinds, one file each, and the one list ([`checkers::Check`]) every
//!   dispatch comes from;
//! - [`dry`] — the dry run: each request sent once, the answers shown, nothing judged;
//! - [`burst`] — barrier-released bursts; [`history`] — answers recorded as operations;
//! - [`window`] — a rate-limit window as answers state it, in each convention stacks send;
//! - [`settings`] — a served stack's published settings against what the checks need, and an
//!   upstream plan an earlier run spent, found before any check runs;
//! - [`upstream`] — the fake upstream the target calls, driven through its control API by the
//!   checks that need upstream faults and counts.
//!
//! The profile format is the `profile` crate's, the target's client the `client` crate's, and
//! the verdicts the `report` crate's types (`report::checks`).
//!
//! Why these dependencies: reqwest builds the requests a checker streams or extends (upload
//! bodies chunk by chunk); futures-util joins request futures; sha2 digests the bodies an
//! upload check sends and the responses the compression check compares; flate2 decodes gzip
//! bodies as they came off the wire, which reqwest's own decompression would hide;
//! fake-upstream's control client and stats types are the control API's own;
//! tokio-tungstenite reads and closes the WebSocket connections the `ws-connections` check
//! opens; httpdate reads a `Retry-After` date (hyper's own reader, already built).

pub mod burst;
pub mod checkers;
pub mod dry;
pub mod history;
pub mod kind;
pub mod settings;
pub mod upstream;
pub mod window;

pub use checkers::{Check, KINDS, read, tuning};
pub use kind::{Kind, Need, Tuning};
pub use report::checks::Verdict;
