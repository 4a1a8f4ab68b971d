//! #15 cursor pagination.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use reference::pagination::{
    Cursor, CursorError, DEFAULT_LIMIT, MAX_LIMIT, MemoryRows, Page, PageError, Row, RowSet, invariant,
    mutants, suite,
};
use reference::sync::block_on;

use crate::common::model_rejects;

fn correct() -> MemoryRows {
    MemoryRows::new()
}

fn created_only() -> mutants::CreatedOnlyCursor<MemoryRows> {
    mutants::CreatedOnlyCursor { inner: MemoryRows::new() }
}

fn offset() -> mutants::Offset<MemoryRows> {
    mutants::Offset { inner: MemoryRows::new() }
}

// --- page size and cursor -------------------------------------------------------------------

#[test]
fn pagination_page_size_defaults_to_20_and_is_clamped_to_1_through_100() {
    let rows = correct();
    suite::seed(&rows, 250, 1);
    for (requested, served) in [
        (None, DEFAULT_LIMIT),
        (Some(0), 1),
        (Some(1), 1),
        (Some(37), 37),
        (Some(100), MAX_LIMIT),
        (Some(10_000), MAX_LIMIT),
    ] {
        let page = block_on(rows.page(None, requested)).unwrap();
        assert_eq!(page.rows.len(), served, "requested {requested:?}");
        invariant::page_size(requested, &page).unwrap();
    }
}

#[test]
fn pagination_last_page_has_no_next_cursor() {
    let rows = correct();
    suite::seed(&rows, 40, 1);
    let first = block_on(rows.page(None, None)).unwrap();
    let second = block_on(rows.page(first.next, None)).unwrap();
    assert_eq!((first.rows.len(), second.rows.len()), (20, 20));
    assert_eq!(second.next, None, "exactly 40 rows: the second page is the last");
    assert_eq!(block_on(correct().page(None, None)).unwrap(), Page { rows: vec![], next: None });
}

#[test]
fn pagination_malformed_cursor_is_a_typed_error() {
    for bad in ["", "zz", "0123", &"g".repeat(32), &"0".repeat(33), &"A".repeat(32), "ü".repeat(16).as_str()]
    {
        let err: CursorError = bad.parse::<Cursor>().unwrap_err();
        assert!(err.to_string().starts_with("malformed cursor"), "{err}");
    }
}

#[test]
fn pagination_duplicate_id_refused() {
    let rows = correct();
    block_on(rows.insert(Row::new(7, 1, "a"))).unwrap();
    assert_eq!(block_on(rows.insert(Row::new(7, 2, "b"))), Err(PageError::DuplicateId(7)));
    assert_eq!(rows.len(), 1);
}

proptest! {
    #[test]
    fn pagination_cursor_round_trips(created: u64, id: u64) {
        let cursor = Cursor::new(created, id);
        let text = cursor.to_string();
        prop_assert_eq!(text.len(), 32);
        prop_assert_eq!(text.parse::<Cursor>(), Ok(cursor));
    }

    #[test]
    fn pagination_any_text_parses_or_errs_without_panicking(text in ".{0,40}") {
        let _ = text.parse::<Cursor>();
    }
}

// --- the invariant has teeth ------------------------------------------------------------------

#[test]
fn pagination_invariant_rejects_out_of_order_pages() {
    let page = |keys: &[(u64, u64)]| Page {
        rows: keys.iter().map(|&(c, i)| Row::new(i, c, "")).collect(),
        next: None,
    };
    let pages = [page(&[(5, 1), (4, 2)]), page(&[(4, 3)])];
    let violation = invariant::each_row_once(&[(5, 1), (4, 2), (4, 3)], &pages).unwrap_err();
    assert_eq!(violation.rule, "out-of-order", "{violation}");
}

// --- scenarios ---------------------------------------------------------------------------------

#[test]
fn pagination_ties_at_page_boundaries_served_once() {
    suite::ties_at_page_boundaries(&correct()).unwrap();
}

#[test]
fn pagination_mutant_created_only_cursor_caught_by_ties() {
    let violation = suite::ties_at_page_boundaries(&created_only()).unwrap_err();
    assert_eq!(violation.rule, "skipped-row", "{violation}");
}

#[test]
fn pagination_inserts_between_pages_neither_repeat_nor_skip() {
    suite::inserts_between_pages(&correct()).unwrap();
}

#[test]
fn pagination_mutant_offset_caught_by_inserts_between_pages() {
    let violation = suite::inserts_between_pages(&offset()).unwrap_err();
    assert_eq!(violation.rule, "repeated-row", "{violation}");
}

#[test]
fn pagination_mutant_created_only_cursor_caught_by_inserts_between_pages() {
    let violation = suite::inserts_between_pages(&created_only()).unwrap_err();
    assert_eq!(violation.rule, "skipped-row", "{violation}");
}

// --- real threads: 8 writers insert while readers walk -----------------------------------------

#[test]
fn pagination_concurrent_walks_serve_every_existing_row_once() {
    suite::concurrent_walks(Arc::new(correct()), (8, 4, 3), 600, 1_000, None).unwrap();
}

#[test]
fn pagination_concurrent_walks_with_large_pages() {
    suite::concurrent_walks(Arc::new(correct()), (8, 2, 3), 600, 1_000, Some(MAX_LIMIT)).unwrap();
}

#[test]
fn pagination_mutant_offset_caught_by_concurrent_walks() {
    let violation = suite::concurrent_walks(Arc::new(offset()), (8, 2, 2), 300, 400, None).unwrap_err();
    assert_eq!(violation.rule, "repeated-row", "{violation}");
}

#[test]
fn pagination_mutant_created_only_cursor_caught_by_concurrent_walks() {
    let violation =
        suite::concurrent_walks(Arc::new(created_only()), (8, 2, 2), 600, 1_000, None).unwrap_err();
    assert_eq!(violation.rule, "skipped-row", "{violation}");
}

// --- model-based ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    /// A row with this `created` (few values, so many ties).
    Insert(u64),
    /// The next page of the current walk, this many rows.
    Fetch(usize),
}

fn history() -> impl Strategy<Value = (Vec<u64>, Vec<Op>)> {
    let op = prop_oneof![1 => (0u64..6).prop_map(Op::Insert), 2 => (1usize..=5).prop_map(Op::Fetch)];
    (proptest::collection::vec(0u64..4, 0..40), proptest::collection::vec(op, 1..80))
}

/// Runs a history on a row set and on a `BTreeMap` model: every page must equal the model's
/// keyset page, and every finished walk must pass the invariant.
fn against_model<R: RowSet>(rows: R, (initial, ops): &(Vec<u64>, Vec<Op>)) -> Result<(), String> {
    let mut model: BTreeMap<(u64, u64), ()> = BTreeMap::new();
    let mut next_id = 0;
    let mut insert = |created: u64, model: &mut BTreeMap<_, _>| -> Result<(), String> {
        next_id += 1;
        model.insert((created, next_id), ());
        block_on(rows.insert(Row::new(next_id, created, ""))).map_err(|e| e.to_string())
    };
    for &created in initial {
        insert(created, &mut model)?;
    }
    let mut existing: Vec<(u64, u64)> = model.keys().copied().collect();
    let (mut cursor, mut pages): (Option<Cursor>, Vec<Page>) = (None, Vec::new());
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Insert(created) => insert(created, &mut model)?,
            Op::Fetch(limit) => {
                let got = block_on(rows.page(cursor, Some(limit))).map_err(|e| e.to_string())?;
                let upper = cursor.map_or((u64::MAX, u64::MAX), |c| c.key());
                let mut want: Vec<_> = model.range(..upper).rev().take(limit + 1).map(|(k, _)| *k).collect();
                let want_next = (want.len() > limit).then(|| want[limit - 1]);
                want.truncate(limit);
                let got_keys: Vec<_> = got.rows.iter().map(Row::key).collect();
                let got_next = got.next.map(|c| c.key());
                if (&got_keys, got_next) != (&want, want_next) {
                    return Err(format!(
                        "step {step} {op:?} after {upper:?}: got {got_keys:?} next {got_next:?}, \
                         model says {want:?} next {want_next:?}"
                    ));
                }
                cursor = got.next;
                pages.push(got);
                if cursor.is_none() {
                    invariant::each_row_once(&existing, &pages).map_err(|v| format!("step {step}: {v}"))?;
                    existing = model.keys().copied().collect();
                    pages.clear();
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pagination_matches_model(history in history()) {
        prop_assert_eq!(against_model(correct(), &history), Ok(()));
    }
}

#[test]
fn pagination_mutant_created_only_cursor_rejected_by_model() {
    assert!(model_rejects(history(), |h| against_model(created_only(), h)));
}

#[test]
fn pagination_mutant_offset_rejected_by_model() {
    assert!(model_rejects(history(), |h| against_model(offset(), h)));
}
