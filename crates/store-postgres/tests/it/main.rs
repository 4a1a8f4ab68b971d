//! store-postgres's one integration-test binary: the conformance suite on `PgStore` (the
//! primitives' semantics, the `reference` contention suites and their race mutants), the DB
//! pool's invariants (#9) and its mutant, the feed (#15), and the schema's own behaviour.
//!
//! Every test works in a schema of its own, dropped afterwards. Without a reachable server the
//! tests skip with a notice (`ci/test` counts them), unless `CI=true`, where they fail.

mod common;
mod pagination;
mod pool;
mod schema;
mod suites;
