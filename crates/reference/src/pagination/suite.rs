//! The pagination suite, run against any [`RowSet`]: walks over feeds full of equal
//! timestamps, with rows inserted between pages and by writer threads during the walks.

use crate::sync::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::clock::Millis;
use crate::invariant::Judgement;
use crate::sync::block_on;
use crate::testing::burst;

use super::{Cursor, Page, Row, RowSet, invariant};

/// The `created` of the oldest seeded row; writers' rows go above and among them.
pub const BASE: Millis = 1_700_000_000_000;

/// A walk stops after this many pages even if the feed keeps saying there is more: only a
/// broken implementation gets there, and the invariant then reports it.
const MAX_PAGES: usize = 100_000;

/// Walks the feed from its head, `limit` rows a page, until a page has no next cursor; each
/// page is checked against the requested size.
pub fn walk<R: RowSet>(rows: &R, limit: Option<usize>) -> Result<Vec<Page>, crate::Violation> {
    walk_with(rows, limit, || ())
}

/// [`walk`], calling `between` after each page but the last.
fn walk_with<R: RowSet>(
    rows: &R,
    limit: Option<usize>,
    mut between: impl FnMut(),
) -> Result<Vec<Page>, crate::Violation> {
    let mut pages = Vec::new();
    let mut cursor: Option<Cursor> = None;
    while pages.len() < MAX_PAGES {
        let page = block_on(rows.page(cursor, limit)).expect("row set call");
        invariant::page_size(limit, &page)?;
        cursor = page.next;
        pages.push(page);
        if cursor.is_none() {
            break;
        }
        between();
    }
    Ok(pages)
}

/// Inserts rows `1..=count`, `ties` to a timestamp (`created = BASE + (id - 1) / ties`); their
/// `(created, id)`.
pub fn seed<R: RowSet>(rows: &R, count: u64, ties: u64) -> Vec<(Millis, u64)> {
    (1..=count)
        .map(|id| {
            let row = Row::new(id, BASE + (id - 1) / ties, format!("row-{id}"));
            let key = row.key();
            block_on(rows.insert(row)).expect("row set call");
            key
        })
        .collect()
}

/// Walks of a feed of 100 rows, 7 to a timestamp, with page sizes that put ties across every
/// page boundary: each row served once, newest first.
pub fn ties_at_page_boundaries<R: RowSet>(rows: &R) -> Judgement {
    let existing = seed(rows, 100, 7);
    for limit in [None, Some(1), Some(3), Some(6), Some(100), Some(500)] {
        invariant::each_row_once(&existing, &walk(rows, limit)?)?;
    }
    Ok(())
}

/// One walk of 60 rows (4 to a timestamp), 10 a page, with rows inserted after every page: one
/// at the head, one tying with the page's last row, one older than every row. Every row that
/// existed when the walk started is served once.
pub fn inserts_between_pages<R: RowSet>(rows: &R) -> Judgement {
    let existing = seed(rows, 60, 4);
    let limit = Some(10);
    let mut pages = Vec::new();
    let mut cursor = None;
    let mut next_id = 1_000;
    let mut fresh = |created: Millis| {
        next_id += 1;
        block_on(rows.insert(Row::new(next_id, created, "inserted"))).expect("row set call");
    };
    for round in 0..MAX_PAGES as u64 {
        let page = block_on(rows.page(cursor, limit)).expect("row set call");
        invariant::page_size(limit, &page)?;
        cursor = page.next;
        let boundary = page.rows.last().map_or(BASE, |r| r.created);
        pages.push(page);
        if cursor.is_none() {
            break;
        }
        fresh(BASE + 1_000 + round);
        fresh(boundary);
        fresh(BASE - 1 - round);
    }
    invariant::each_row_once(&existing, &pages)
}

/// The `k`-th row of writer `w`: even rows at the head (all writers tying on the same
/// timestamps), odd rows among the seeded timestamps.
fn writer_row(w: usize, k: u64, seeded_span: Millis) -> Row {
    let id = 1_000_000 * (w as u64 + 1) + k;
    let created = if k % 2 == 0 { BASE + seeded_span + k / 2 } else { BASE + k % seeded_span.max(1) };
    Row::new(id, created, format!("w{w}-{k}"))
}

/// Spins (no sleep) until `counter` moves off `from` or `others_left` reaches zero.
fn wait_for_move(counter: &AtomicU64, from: u64, others_left: &AtomicU64) {
    while counter.load(Ordering::SeqCst) == from && others_left.load(Ordering::SeqCst) > 0 {
        std::thread::yield_now();
    }
}

/// `readers` threads walk the feed `walks` times each, `limit` a page, while `writers` threads
/// insert up to `per_writer` rows each. The two sides pace each other (spinning, no sleep):
/// after each insert a writer waits for some reader to fetch a page, and between two pages a
/// reader waits for some writer to insert a row, so inserts land between the pages of every
/// walk on any scheduler. Each walk is judged against the `seeded` rows (3 to a timestamp)
/// plus every writer's row whose insert had returned before the walk began.
pub fn concurrent_walks<R: RowSet + 'static>(
    rows: Arc<R>,
    (writers, readers, walks): (usize, usize, usize),
    seeded: u64,
    per_writer: u64,
    limit: Option<usize>,
) -> Judgement {
    let ties = 3;
    let base_rows = seed(&*rows, seeded, ties);
    let span = seeded.div_ceil(ties);
    let done: Arc<Vec<AtomicU64>> = Arc::new((0..writers).map(|_| AtomicU64::new(0)).collect());
    let (fetched, inserted) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let readers_left = Arc::new(AtomicU64::new(readers as u64));
    let writers_left = Arc::new(AtomicU64::new(writers as u64));
    let verdicts = burst(writers + readers, move |i| -> Judgement {
        if i < writers {
            for k in 0..per_writer {
                let before = fetched.load(Ordering::SeqCst);
                block_on(rows.insert(writer_row(i, k, span))).expect("row set call");
                done[i].store(k + 1, Ordering::SeqCst);
                inserted.fetch_add(1, Ordering::SeqCst);
                wait_for_move(&fetched, before, &readers_left);
            }
            writers_left.fetch_sub(1, Ordering::SeqCst);
            return Ok(());
        }
        let mut verdict = Ok(());
        for _ in 0..walks {
            let mut existing = base_rows.clone();
            for (w, count) in done.iter().enumerate() {
                existing.extend((0..count.load(Ordering::SeqCst)).map(|k| writer_row(w, k, span).key()));
            }
            let mut seen = inserted.load(Ordering::SeqCst);
            let pages = walk_with(&*rows, limit, || {
                fetched.fetch_add(1, Ordering::SeqCst);
                wait_for_move(&inserted, seen, &writers_left);
                seen = inserted.load(Ordering::SeqCst);
            });
            verdict = pages.and_then(|pages| invariant::each_row_once(&existing, &pages));
            if verdict.is_err() {
                break;
            }
        }
        readers_left.fetch_sub(1, Ordering::SeqCst);
        verdict
    });
    verdicts.into_iter().collect()
}
