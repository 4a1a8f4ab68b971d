//! The query-budget suite: a list endpoint's queries counted at several page sizes, and one
//! request's queries made from real threads at once; run against any listing and counter.

use std::collections::HashMap;
use std::sync::Arc;

use crate::invariant::Judgement;
use crate::pagination::{MemoryRows, PageResult, Row};
use crate::sync::block_on;
use crate::testing::burst;

use super::invariant::{self, PageQueries};
use super::{Counted, Counter, Listing, QueryCount, RowDetails};

/// The endpoint the suite names in its verdicts.
pub const ENDPOINT: &str = "GET /v1/videos";

/// Each row's record, as the field's list endpoint read it: a status by row id.
#[derive(Debug, Clone, Default)]
pub struct Records {
    status: Arc<HashMap<u64, String>>,
}

impl Records {
    /// A record for each of the rows `1..=count`.
    pub fn new(count: u64) -> Self {
        Self { status: Arc::new((1..=count).map(|id| (id, format!("status-{id}"))).collect()) }
    }
}

impl RowDetails for Records {
    type Detail = String;

    async fn detail(&self, row: &Row) -> PageResult<Option<String>> {
        Ok(self.status.get(&row.id).cloned())
    }
}

/// A feed of `rows` rows, listed from its head once per size in `sizes`, each listing one
/// request with a counter of its own: the count stays within the budget and does not grow with
/// the rows served.
pub fn flat_in_page_size<L: Listing>(imp: &L, rows: u64, sizes: &[usize]) -> Judgement {
    let feed = MemoryRows::new();
    crate::pagination::suite::seed(&feed, rows, 1);
    let records = Records::new(rows);
    let mut observed = Vec::new();
    for &size in sizes {
        let count: Arc<dyn Counter> = Arc::new(QueryCount::new());
        let (feed, records) =
            (Counted::new(feed.clone(), count.clone()), Counted::new(records.clone(), count.clone()));
        let listed = block_on(imp.list(&feed, &records, None, Some(size))).expect("in-memory listing");
        observed.push(PageQueries { size, rows: listed.page.rows.len(), queries: count.total() });
    }
    invariant::flat_in_page_size(ENDPOINT, &observed)?;
    observed.iter().try_for_each(|o| invariant::within_budget(ENDPOINT, o.queries))
}

/// `threads` threads released together each count `per_thread` queries of one request on
/// `counter`: every one is reported.
pub fn concurrent_queries<C: Counter + 'static>(
    counter: Arc<C>,
    threads: usize,
    per_thread: u64,
) -> Judgement {
    let shared = Arc::clone(&counter);
    burst(threads, move |_| (0..per_thread).for_each(|_| shared.record()));
    invariant::reported_exactly(threads as u64 * per_thread, counter.total())
}
