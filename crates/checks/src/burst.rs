//! Bursts: C requests released together by a barrier, spread over the target's instances.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Barrier;

/// Runs `make(i)` for `i` in `0..count` as concurrent tasks that all start once every one of
/// them is ready; their results in index order.
pub async fn release<T, F, Fut>(count: usize, make: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let fut = make(i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    for task in tasks {
        // A task panics only if a checker has a bug; surface it.
        out.push(task.await.expect("a burst request task panicked"));
    }
    out
}
