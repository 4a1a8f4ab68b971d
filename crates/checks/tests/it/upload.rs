//! `upload-integrity` (#12): streamed uploads stored whole, and never held whole in memory. The
//! buffering mutant stores the same bytes (see the checker's docs): only the stack's gauge of
//! the upload bytes it held shows it.

use crate::common::{Setup, assert_broke, assert_passed, run};

const CHECK: &str = "upload-integrity";

#[tokio::test(flavor = "multi_thread")]
async fn upload_passes_on_the_reference_stack() {
    assert_passed(&run(CHECK, Setup::memory()).await.unwrap());
}

/// Shared backends.
#[tokio::test(flavor = "multi_thread")]
async fn upload_passes_on_redis_and_postgres_instances() {
    let Some(verdict) = run(CHECK, Setup::shared()).await else { return };
    assert_passed(&verdict);
}

/// The whole-body-buffered sink answers the same sizes and digests; the memory probe catches
/// it, and nothing else does.
#[tokio::test(flavor = "multi_thread")]
async fn upload_mutant_whole_body_buffered_caught_by_the_memory_bound_alone() {
    let verdict =
        run(CHECK, Setup::memory().mutant("upload_sink::mutants::WholeBodyBuffered")).await.unwrap();
    assert_broke(&verdict, "body-held-in-memory");
    assert!(verdict.violations.iter().all(|v| v.rule == "body-held-in-memory"), "{:?}", verdict.violations);
}

/// Shared backends: each instance's gauge is its own.
#[tokio::test(flavor = "multi_thread")]
async fn upload_mutant_whole_body_buffered_caught_on_every_redis_and_postgres_instance() {
    let setup = Setup::shared().mutant("upload_sink::mutants::WholeBodyBuffered");
    let Some(verdict) = run(CHECK, setup).await else { return };
    let held = verdict.violations.iter().filter(|v| v.rule == "body-held-in-memory").count();
    assert_eq!(held, 3, "{:?}", verdict.violations);
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_fails_on_memory_instances() {
    let verdict = run(CHECK, Setup::memory().instances(3)).await.unwrap();
    assert_broke(&verdict, "not-visible");
}
