//! #18 The query budget: every store operation a request makes on the records backend is
//! counted against that request, so the stack can report queries per request in
//! `X-DB-Queries` and in `/metrics`.
//!
//! The count lives in a tokio task-local that the request middleware scopes around the
//! handler; operations outside a request (the workers) are not attributed to any request.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

tokio::task_local! {
    static QUERIES: Arc<AtomicU32>;
}

/// Counts one query against the current request, if there is one.
pub fn count() {
    let _ = QUERIES.try_with(|n| n.fetch_add(1, Ordering::Relaxed));
}

/// Runs `fut` as one request; its result and the queries it made.
pub async fn scope<F: Future>(fut: F) -> (F::Output, u32) {
    let counter = Arc::new(AtomicU32::new(0));
    let output = QUERIES.scope(Arc::clone(&counter), fut).await;
    (output, counter.load(Ordering::Relaxed))
}

/// The queries made so far by the current request.
pub fn so_far() -> u32 {
    QUERIES.try_with(|n| n.load(Ordering::Relaxed)).unwrap_or(0)
}
