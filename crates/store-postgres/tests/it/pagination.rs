//! #15 cursor pagination on PostgreSQL: `reference::pagination::suite` on [`PgRows`], 8 writer
//! threads inserting while readers walk the feed, and the field's mutants caught on the server.

use std::sync::Arc;

use reference::pagination::{Cursor, PageError, Row, RowSet, mutants, suite};
use reference::sync::block_on;
use store_postgres::PgRows;

use crate::rig;

#[test]
fn pagination_ties_at_page_boundaries_served_once() {
    let rig = rig!("pg_ties");
    suite::ties_at_page_boundaries(&PgRows::new(&rig.store)).unwrap();
}

#[test]
fn pagination_inserts_between_pages_neither_repeat_nor_skip() {
    let rig = rig!("pg_between");
    suite::inserts_between_pages(&PgRows::new(&rig.store)).unwrap();
}

#[test]
fn pagination_concurrent_walks_serve_every_existing_row_once() {
    let rig = rig!("pg_walks");
    suite::concurrent_walks(Arc::new(PgRows::new(&rig.store)), (8, 3, 2), 300, 150, None).unwrap();
}

#[test]
fn pagination_mutant_created_only_cursor_caught_by_ties() {
    let rig = rig!("pg_created_only");
    let violation =
        suite::ties_at_page_boundaries(&mutants::CreatedOnlyCursor { inner: PgRows::new(&rig.store) })
            .unwrap_err();
    assert_eq!(violation.rule, "skipped-row", "{violation}");
}

#[test]
fn pagination_mutant_created_only_cursor_caught_by_concurrent_walks() {
    let rig = rig!("pg_created_only_walks");
    let rows = Arc::new(mutants::CreatedOnlyCursor { inner: PgRows::new(&rig.store) });
    let violation = suite::concurrent_walks(rows, (8, 3, 2), 300, 150, None).unwrap_err();
    assert_eq!(violation.rule, "skipped-row", "{violation}");
}

#[test]
fn pagination_mutant_offset_caught_by_inserts_between_pages() {
    let rig = rig!("pg_offset");
    let violation =
        suite::inserts_between_pages(&mutants::Offset { inner: PgRows::new(&rig.store) }).unwrap_err();
    assert_eq!(violation.rule, "repeated-row", "{violation}");
}

#[test]
fn pagination_duplicate_and_out_of_range_rows_refused() {
    let rig = rig!("pg_refused");
    let rows = PgRows::new(&rig.store);
    block_on(rows.insert(Row::new(7, 1, "a"))).unwrap();
    assert_eq!(block_on(rows.insert(Row::new(7, 2, "b"))), Err(PageError::DuplicateId(7)));
    let err = block_on(rows.insert(Row::new(u64::MAX, 1, "c"))).unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    // A cursor no page produced, beyond bigint, sorts after every row.
    let page = block_on(rows.page(Some(Cursor::new(u64::MAX, u64::MAX)), None)).unwrap();
    assert_eq!(page.rows, vec![Row::new(7, 1, "a")]);
}

#[test]
fn pagination_mutant_offset_caught_by_concurrent_walks() {
    let rig = rig!("pg_offset_walks");
    let rows = Arc::new(mutants::Offset { inner: PgRows::new(&rig.store) });
    let violation = suite::concurrent_walks(rows, (8, 2, 1), 200, 100, None).unwrap_err();
    assert_eq!(violation.rule, "repeated-row", "{violation}");
}

#[test]
fn pagination_feeds_are_isolated_and_ids_unique_per_feed() {
    let rig = rig!("pg_feeds");
    let (a, b) = (PgRows::feed(&rig.store, "user:1"), PgRows::feed(&rig.store, "user:2"));
    block_on(a.insert(Row::new(1, 10, "a1"))).unwrap();
    block_on(a.insert(Row::new(2, 20, "a2"))).unwrap();
    // The same id in another feed is another row.
    block_on(b.insert(Row::new(1, 15, "b1"))).unwrap();
    assert_eq!(block_on(a.insert(Row::new(2, 30, "again"))), Err(PageError::DuplicateId(2)));
    let page = block_on(a.page(None, None)).unwrap();
    assert_eq!(page.rows, vec![Row::new(2, 20, "a2"), Row::new(1, 10, "a1")]);
    let page = block_on(b.page(None, None)).unwrap();
    assert_eq!(page.rows, vec![Row::new(1, 15, "b1")]);
    let after = block_on(a.page(Some(Cursor::after(&Row::new(2, 20, "a2"))), None)).unwrap();
    assert_eq!(after.rows, vec![Row::new(1, 10, "a1")]);
    assert!(block_on(PgRows::new(&rig.store).page(None, None)).unwrap().rows.is_empty());
}
