//! `feed-gzip-vary` (#16): gzip only on request, the same bytes, `Vary: Accept-Encoding`.

use crate::common::{Setup, assert_broke, assert_passed, run};

const CHECK: &str = "feed-gzip-vary";

#[tokio::test(flavor = "multi_thread")]
async fn vary_passes_on_the_reference_stack() {
    assert_passed(&run(CHECK, Setup::memory().instances(2)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn vary_catches_the_missing_vary_mutant() {
    let verdict = run(CHECK, Setup::memory().mutant("compression::mutants::MissingVary")).await.unwrap();
    assert_broke(&verdict, "missing-vary");
}
