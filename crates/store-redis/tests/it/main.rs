//! The Redis store against a real server: the conformance suite (primitive semantics, the
//! components' contention suites and their race mutants, on real threads), the suites only
//! Redis runs, the TTL audit, the invalidation bus, a server that restarts, and an unreachable server.
//!
//! Reads `REDIS_URL` (default `redis://127.0.0.1:6379`). When the server cannot be reached a
//! test prints a notice and passes (`ci/test` counts it as skipped), unless `CI=true`, where it
//! fails.

mod bus;
mod common;
mod reconnect;
mod runtime;
mod suites;
mod ttl_audit;
mod unreachable;
