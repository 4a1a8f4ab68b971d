//! The Redis store against a real server: primitive semantics, the TTL audit, the components'
//! contention suites (and their race mutants) on real threads, and an unreachable server.
//!
//! Reads `REDIS_URL` (default `redis://127.0.0.1:6379`). When the server cannot be reached a
//! test prints a notice and passes, unless `CI=true`, where it fails.

mod bus;
mod common;
mod multi_layer;
mod primitives;
mod runtime;
mod suites;
mod ttl_audit;
mod unreachable;
