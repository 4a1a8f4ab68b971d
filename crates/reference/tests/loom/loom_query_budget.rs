//! #18 query budget: three store calls of one request made at once, each counted on the
//! request's counter, every interleaving. A count that loses one under-reports exactly the
//! concurrent work.

use std::sync::Arc;

use loom::thread;
use reference::pagination::{MemoryRows, Row, RowSet};
use reference::query_budget::mutants::LostIncrement;
use reference::query_budget::{Counted, Counter, QueryCount, invariant};
use reference::sync::block_on;

use crate::common::{Found, assert_caught, assert_holds, explore};

/// Two pages read on spawned threads and an insert on the model's own, all through one
/// counted feed: three queries reported.
fn three_queries(count: Arc<dyn Counter>, found: &Found) {
    let feed = Arc::new(Counted::new(MemoryRows::new(), count.clone()));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let feed = Arc::clone(&feed);
            thread::spawn(move || block_on(feed.page(None, Some(1))).map(drop).unwrap())
        })
        .collect();
    block_on(feed.insert(Row::new(1, 1, "row"))).unwrap();
    for reader in readers {
        reader.join().unwrap();
    }
    found.record(invariant::reported_exactly(3, count.total()));
}

#[test]
fn query_budget_concurrent_queries_all_counted() {
    assert_holds(&explore(|found| three_queries(Arc::new(QueryCount::new()), found)));
}

#[test]
fn query_budget_mutant_lost_increment_caught_by_loom() {
    assert_caught(&explore(|found| three_queries(Arc::new(LostIncrement::default()), found)), "miscounted");
}
