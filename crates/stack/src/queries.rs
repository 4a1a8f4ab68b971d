//! #18 The query budget: every store operation a request makes on the records backend is
//! counted against that request, on the reference component's counter
//! (`reference::query_budget::QueryCount`), so the stack can report queries per request in
//! `X-DB-Queries` and in `/metrics`.
//!
//! The request's counter lives in a tokio task-local that the request middleware scopes around
//! the handler; operations outside a request (the workers) are not attributed to any request.

use std::future::Future;
use std::sync::Arc;

use reference::query_budget::{Counter, QueryCount};

tokio::task_local! {
    static QUERIES: Arc<QueryCount>;
}

/// Counts one query against the current request, if there is one.
pub(crate) fn count() {
    let _ = QUERIES.try_with(|n| n.record());
}

/// Runs `fut` as one request; its result and the queries it made.
pub(crate) async fn scope<F: Future>(fut: F) -> (F::Output, u64) {
    let counter = Arc::new(QueryCount::new());
    let output = QUERIES.scope(Arc::clone(&counter), fut).await;
    (output, counter.total())
}
