//! The checkers: each drives its operations against the target, records the history, and
//! judges it with a pure function — the same function the tests feed with histories of the
//! correct stack and of its mutants.

pub mod breaker;
pub mod counter;
pub mod cursor_walk;
pub mod invalidation;
pub mod lifecycle;
pub mod merge;
pub mod query_budget;
pub mod rate_limit;
pub mod support;
pub mod token_refresh;
pub mod unique;
pub mod upload;
pub mod upstream_pool;
pub mod usage_plan;
pub mod vary;
pub mod ws_connections;
