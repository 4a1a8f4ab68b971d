//! The store's futures are driven from plain threads (`block_on`) and from a foreign runtime.

use std::sync::Arc;
use std::time::Instant;

use reference::store::Store;
use reference::sync::block_on;
use reference::testing::burst;

use crate::rig_or_skip;

#[test]
fn runtime_block_on_from_plain_threads_drives_the_store() {
    let rig = rig_or_skip!("plain-threads");
    let store = Arc::new(rig.store.clone());
    let (threads, calls) = (32, 200);
    let started = Instant::now();
    let shared = Arc::clone(&store);
    burst(threads, move |_| {
        for _ in 0..calls {
            block_on(shared.incr_by("hits", 1)).unwrap();
        }
    });
    let elapsed = started.elapsed();
    let total = (threads * calls) as i64;
    assert_eq!(block_on(store.get("hits")).unwrap(), Some(total.to_string().into_bytes()));
    eprintln!(
        "{total} calls from {threads} plain threads in {elapsed:?}: {:.0} calls/s",
        total as f64 / elapsed.as_secs_f64()
    );
}

#[test]
fn runtime_futures_run_inside_another_tokio_runtime() {
    let rig = rig_or_skip!("foreign-runtime");
    let store = rig.store.clone();
    let foreign = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let n = foreign.block_on(async move {
        store.incr_by("n", 5).await.unwrap();
        store.incr_by("n", 1).await.unwrap()
    });
    assert_eq!(n, 6);
}
