//! #15 cursor pagination: a walk of the feed racing an insert at its head, every interleaving.

use std::sync::Arc;

use loom::thread;
use reference::pagination::{Cursor, MemoryRows, Page, Row, RowSet, invariant, mutants};
use reference::sync::block_on;

use crate::common::{Found, assert_caught, assert_holds, explore};

/// Rows 1 to 3, one a millisecond, oldest first.
fn seeded<R: RowSet>(rows: &R) -> Vec<(u64, u64)> {
    (1..=3)
        .map(|id| {
            block_on(rows.insert(Row::new(id, id, "seeded"))).unwrap();
            (id, id)
        })
        .collect()
}

/// A walk of the three seeded rows, a row a page, while another thread inserts a newer row:
/// every row that existed when the walk started is served once.
fn walk_racing_insert<R: RowSet + 'static>(rows: R, found: &Found) {
    let existing = seeded(&rows);
    let rows = Arc::new(rows);
    let writer = {
        let rows = Arc::clone(&rows);
        thread::spawn(move || block_on(rows.insert(Row::new(100, 100, "inserted"))).unwrap())
    };
    let mut pages: Vec<Page> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..5 {
        let page = block_on(rows.page(cursor, Some(1))).unwrap();
        cursor = page.next;
        pages.push(page);
        if cursor.is_none() {
            break;
        }
    }
    writer.join().unwrap();
    found.record(invariant::each_row_once(&existing, &pages));
}

#[test]
fn pagination_walk_serves_each_row_once_whatever_is_inserted() {
    assert_holds(&explore(|found| walk_racing_insert(MemoryRows::new(), found)));
}

#[test]
fn pagination_mutant_offset_caught_by_loom() {
    let found = explore(|found| walk_racing_insert(mutants::Offset { inner: MemoryRows::new() }, found));
    assert_caught(&found, "repeated-row");
}
