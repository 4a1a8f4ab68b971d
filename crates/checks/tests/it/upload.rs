//! `upload-integrity` (#12): streamed uploads stored whole. The buffering mutant stores the
//! same bytes (see the checker's docs); what fails here is instances that share no records.

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

/// The whole-body-buffered sink answers the same sizes and digests: not observable by content.
#[tokio::test(flavor = "multi_thread")]
async fn upload_cannot_tell_whole_body_buffering_by_content() {
    assert_passed(&run(CHECK, Setup::memory().mutant("stack::uploads::WholeBodyBuffered")).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_fails_on_memory_instances() {
    let verdict = run(CHECK, Setup::memory().instances(3)).await.unwrap();
    assert_broke(&verdict, "not-visible");
}
