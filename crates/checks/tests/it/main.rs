//! The checks crate's own tests: profiles and their errors, the checkers' judges on synthetic
//! histories (the correct behaviour and each rule broken), the report schema, and the checks
//! against the reference stack started in this process: each passes on the correct stack and
//! fails on the mutant it exists to catch (or, where no mutant is observable over HTTP, on
//! instances that share no state).
//!
//! Tests marked "shared backends" run the stack on Redis and PostgreSQL, read from `REDIS_URL`
//! and `DATABASE_URL` (loopback defaults). When either cannot be reached such a test prints a
//! notice and passes (`ci/test` counts it as skipped), unless `CI=true`, where it fails.

mod common;
mod counter;
mod cursor_walk;
mod invalidation;
mod merge;
mod profile;
mod profiles;
mod query_budget;
mod schema;
mod upload;
mod vary;
