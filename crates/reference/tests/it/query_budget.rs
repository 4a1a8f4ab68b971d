//! #18 query budget.

use std::sync::Arc;

use reference::pagination::{MemoryRows, suite as pages};
use reference::query_budget::invariant::{self, PageQueries};
use reference::query_budget::mutants::{LostIncrement, PerRowQuery};
use reference::query_budget::{BUDGET, Counted, Counter, Listing, OnePage, QueryCount, suite};
use reference::sync::block_on;

const SIZES: &[usize] = &[1, 5, 20, 50, 100];

#[test]
fn query_budget_one_page_listing_is_one_query_at_every_size() {
    suite::flat_in_page_size(&OnePage, 150, SIZES).unwrap();
}

#[test]
fn query_budget_mutant_per_row_query_caught_as_growing_with_page_size() {
    let violation = suite::flat_in_page_size(&PerRowQuery, 150, SIZES).unwrap_err();
    assert_eq!(violation.rule, "grows-with-page-size", "{violation}");
    assert!(violation.evidence.contains("2 queries for a page of 1 rows"), "{violation}");
    assert!(violation.evidence.contains("101 for a page of 100 rows"), "{violation}");
}

#[test]
fn query_budget_mutant_per_row_query_caught_over_budget_at_a_single_page_size() {
    // One size only: no growth to see, but ten rows are already eleven queries.
    let violation = suite::flat_in_page_size(&PerRowQuery, 150, &[20]).unwrap_err();
    assert_eq!(violation.rule, "over-budget", "{violation}");
    suite::flat_in_page_size(&PerRowQuery, 150, &[8]).unwrap();
}

#[test]
fn query_budget_listings_serve_the_same_page_and_the_mutant_reads_each_row() {
    let feed = MemoryRows::new();
    pages::seed(&feed, 30, 3);
    let records = suite::Records::new(30);
    let correct = block_on(OnePage.list(&feed, &records, None, Some(10))).unwrap();
    let mutant = block_on(PerRowQuery.list(&feed, &records, None, Some(10))).unwrap();
    assert_eq!(correct.page, mutant.page);
    assert!(correct.details.is_empty());
    let expected: Vec<Option<String>> =
        mutant.page.rows.iter().map(|r| Some(format!("status-{}", r.id))).collect();
    assert_eq!(mutant.details, expected);
}

#[test]
fn query_budget_counted_row_set_counts_each_call() {
    let count: Arc<dyn Counter> = Arc::new(QueryCount::new());
    let feed = Counted::new(MemoryRows::new(), count.clone());
    pages::seed(&feed, 5, 1);
    let walked = pages::walk(&feed, Some(2)).unwrap();
    assert_eq!((walked.len(), count.total()), (3, 5 + 3));
}

#[test]
fn query_budget_query_count_counts_concurrent_queries() {
    suite::concurrent_queries(Arc::new(QueryCount::new()), 8, 500_000).unwrap();
}

#[test]
fn query_budget_mutant_lost_increment_caught_by_concurrent_queries() {
    let violation = suite::concurrent_queries(Arc::new(LostIncrement::default()), 8, 500_000).unwrap_err();
    assert_eq!(violation.rule, "miscounted", "{violation}");
}

#[test]
fn query_budget_checks_judge_synthetic_counts() {
    invariant::within_budget("GET /x", BUDGET - 1).unwrap();
    assert_eq!(invariant::within_budget("GET /x", BUDGET).unwrap_err().rule, "over-budget");
    let page = |size, rows, queries| PageQueries { size, rows, queries };
    invariant::flat_in_page_size("GET /x", &[]).unwrap();
    invariant::flat_in_page_size("GET /x", &[page(1, 1, 3), page(100, 100, 3), page(50, 0, 3)]).unwrap();
    // Fewer queries for more rows is no N + 1.
    invariant::flat_in_page_size("GET /x", &[page(1, 1, 4), page(100, 100, 3)]).unwrap();
    let grows = invariant::flat_in_page_size("GET /x", &[page(1, 1, 3), page(100, 100, 4)]).unwrap_err();
    assert_eq!(grows.rule, "grows-with-page-size");
    invariant::reported_exactly(7, 7).unwrap();
    assert_eq!(invariant::reported_exactly(7, 6).unwrap_err().rule, "miscounted");
}
