//! `dashboard-invalidation` (#14): after a rename, no instance serves the old name.

use crate::common::{Setup, assert_broke, assert_passed, run};

const CHECK: &str = "dashboard-invalidation";

#[tokio::test(flavor = "multi_thread")]
async fn invalidation_passes_on_one_instance() {
    assert_passed(&run(CHECK, Setup::memory()).await.unwrap());
}

/// Each memory instance has its own records and cache: the project is not even visible on
/// the others.
#[tokio::test(flavor = "multi_thread")]
async fn invalidation_fails_on_memory_instances() {
    let verdict = run(CHECK, Setup::memory().instances(3)).await.unwrap();
    assert_broke(&verdict, "not-visible");
}

/// Shared backends.
#[tokio::test(flavor = "multi_thread")]
async fn invalidation_passes_on_redis_and_postgres_instances() {
    let Some(verdict) = run(CHECK, Setup::shared()).await else { return };
    assert_passed(&verdict);
}

/// Shared backends: the other instances' L1 copies outlive a local-only invalidation.
#[tokio::test(flavor = "multi_thread")]
async fn invalidation_catches_the_local_only_mutant_on_redis_and_postgres() {
    let Some(verdict) = run(CHECK, Setup::shared().mutant("l1_cache::mutants::MultiLayerLocalOnly")).await
    else {
        return;
    };
    assert_broke(&verdict, "stale-read");
}
