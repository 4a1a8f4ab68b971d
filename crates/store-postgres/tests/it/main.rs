//! store-postgres's one integration-test binary: the store's primitives on a real server, the
//! DB pool's invariants (#9), and the `reference` contention suites on `PgStore`.
//!
//! Every test works in a schema of its own, dropped afterwards. Without a reachable server the
//! tests skip with a notice, unless `CI=true`, where they fail.

mod common;
mod pagination;
mod pool;
mod primitives;
mod suites;
