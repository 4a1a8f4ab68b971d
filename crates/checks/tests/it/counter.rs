//! `quota-counter` (#3): the daily quota's units conserved.

use crate::common::{Setup, assert_broke, assert_passed, run};

const CHECK: &str = "quota-counter";
const MUTANT: &str = "daily_quota::mutants::IncrOrSet";

#[tokio::test(flavor = "multi_thread")]
async fn counter_passes_on_the_reference_stack() {
    assert_passed(&run(CHECK, Setup::memory()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_catches_the_incr_or_set_mutant_in_memory() {
    // Only a fresh day's first consumes race; each round is a fresh user. On a busy machine
    // the race is missed in some rounds: ten of them.
    let verdict = run(CHECK, Setup::memory().mutant(MUTANT).bursts(32, 10)).await.unwrap();
    assert_broke(&verdict, "lost-units");
}

/// Shared backends.
#[tokio::test(flavor = "multi_thread")]
async fn counter_passes_on_redis_and_postgres_instances() {
    let Some(verdict) = run(CHECK, Setup::shared()).await else { return };
    assert_passed(&verdict);
}

/// Shared backends. The imports' own database writes spread the first consumes out, so the
/// lost update shows in about half the rounds: ten rounds.
#[tokio::test(flavor = "multi_thread")]
async fn counter_catches_the_incr_or_set_mutant_on_redis() {
    let Some(verdict) = run(CHECK, Setup::shared().mutant(MUTANT).bursts(32, 10)).await else { return };
    assert_broke(&verdict, "lost-units");
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_shows_memory_instances_each_count_their_own() {
    let verdict = run(CHECK, Setup::memory().instances(3)).await.unwrap();
    assert_broke(&verdict, "diverging-reads");
}
