//! `status-merge` (#6): concurrent merges of distinct fields all survive, and the status keeps
//! its lifetime.

use crate::common::{Setup, assert_broke, assert_passed, run};

const CHECK: &str = "status-merge";
const MUTANT: &str = "status_tracker::mutants::ReadModifyWrite";

#[tokio::test(flavor = "multi_thread")]
async fn merge_passes_on_the_reference_stack() {
    assert_passed(&run(CHECK, Setup::memory()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_catches_the_read_modify_write_mutant_in_memory() {
    let verdict = run(CHECK, Setup::memory().mutant(MUTANT)).await.unwrap();
    assert_broke(&verdict, "lost-field");
}

/// Shared backends.
#[tokio::test(flavor = "multi_thread")]
async fn merge_passes_on_redis_and_postgres_instances() {
    let Some(verdict) = run(CHECK, Setup::shared()).await else { return };
    assert_passed(&verdict);
}

/// Shared backends.
#[tokio::test(flavor = "multi_thread")]
async fn merge_catches_the_read_modify_write_mutant_on_redis() {
    let Some(verdict) = run(CHECK, Setup::shared().mutant(MUTANT)).await else { return };
    assert_broke(&verdict, "lost-field");
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_shows_memory_instances_do_not_share_the_resource() {
    let verdict = run(CHECK, Setup::memory().instances(3)).await.unwrap();
    assert_broke(&verdict, "not-visible");
}

/// Shared backends: the merge's `SET` in the transaction drops the key's TTL on Redis; no
/// field is lost, the status is kept forever.
#[tokio::test(flavor = "multi_thread")]
async fn merge_catches_the_merge_without_ttl_mutant_on_redis_by_its_lifetime_alone() {
    let setup = Setup::shared().mutant("status_tracker::mutants::MergeWithoutTtl");
    let Some(verdict) = run(CHECK, setup).await else { return };
    assert_broke(&verdict, "never-expires");
    assert!(verdict.violations.iter().all(|v| v.rule == "never-expires"), "{:?}", verdict.violations);
}
