//! `feed-query-budget` (#18): the feed's queries per request stay bounded.

use crate::common::{Setup, assert_broke, assert_passed, run};

const CHECK: &str = "feed-query-budget";

#[tokio::test(flavor = "multi_thread")]
async fn query_budget_passes_on_the_reference_stack() {
    assert_passed(&run(CHECK, Setup::memory()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn query_budget_catches_the_per_row_query_mutant() {
    let verdict = run(CHECK, Setup::memory().mutant("query_budget::mutants::PerRowQuery")).await.unwrap();
    assert_broke(&verdict, "over-budget");
    assert_broke(&verdict, "grows-with-page-size");
}

/// Shared backends: the queries are PostgreSQL's.
#[tokio::test(flavor = "multi_thread")]
async fn query_budget_passes_on_redis_and_postgres_instances() {
    let Some(verdict) = run(CHECK, Setup::shared()).await else { return };
    assert_passed(&verdict);
}
