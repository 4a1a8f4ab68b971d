//! `feed-cursor-walk` (#15): every row served once while rows are inserted. The pagination
//! mutants are not wired into the stack; the judge's unit tests feed it their histories.

use crate::common::{Setup, assert_broke, assert_passed, run};

const CHECK: &str = "feed-cursor-walk";

#[tokio::test(flavor = "multi_thread")]
async fn cursor_walk_passes_on_the_reference_stack() {
    assert_passed(&run(CHECK, Setup::memory()).await.unwrap());
}

/// Shared backends.
#[tokio::test(flavor = "multi_thread")]
async fn cursor_walk_passes_on_redis_and_postgres_instances() {
    let Some(verdict) = run(CHECK, Setup::shared()).await else { return };
    assert_passed(&verdict);
}

/// Each memory instance holds only the rows inserted through it: a walk across instances
/// skips the others'.
#[tokio::test(flavor = "multi_thread")]
async fn cursor_walk_fails_on_memory_instances() {
    let verdict = run(CHECK, Setup::memory().instances(3)).await.unwrap();
    assert_broke(&verdict, "skipped-row");
}
