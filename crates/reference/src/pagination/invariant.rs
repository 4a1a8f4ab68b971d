//! The pagination invariants as checks over one walk of a feed.

use std::collections::{HashMap, HashSet};

use crate::clock::Millis;
use crate::invariant::{Judgement, Violation};

use super::{COMPONENT, Page, clamp_limit};

/// A walk's pages, in the order they were fetched (the first without a cursor, each next one
/// from the previous page's `next`), judged against `existing`, the `(created, id)` of every
/// row that existed when the walk started: no row is served twice ("repeated-row"), the rows
/// come newest first by `(created, id)` across page boundaries ("out-of-order"), and every
/// row of `existing` is served ("skipped-row").
pub fn each_row_once(existing: &[(Millis, u64)], pages: &[Page]) -> Judgement {
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (number, page) in pages.iter().enumerate() {
        for row in &page.rows {
            if let Some(first) = seen.insert(row.id, number) {
                return Err(Violation::new(
                    COMPONENT,
                    "repeated-row",
                    format!(
                        "row {} (created {}) served on page {first} and again on page {number} of {}",
                        row.id,
                        row.created,
                        pages.len()
                    ),
                ));
            }
        }
    }
    let served = pages.iter().flat_map(|p| p.rows.iter().map(|r| (r.key(), r.id)));
    let mut previous: Option<(Millis, u64)> = None;
    for (key, id) in served {
        if let Some(before) = previous
            && key >= before
        {
            return Err(Violation::new(
                COMPONENT,
                "out-of-order",
                format!(
                    "row {id} at (created, id) {key:?} served after {before:?}; the feed is newest first"
                ),
            ));
        }
        previous = Some(key);
    }
    let seen: HashSet<u64> = seen.into_keys().collect();
    let missing: Vec<_> = existing.iter().filter(|(_, id)| !seen.contains(id)).collect();
    if let Some((created, id)) = missing.first() {
        return Err(Violation::new(
            COMPONENT,
            "skipped-row",
            format!(
                "{} of {} rows that existed when the walk started never served, first row {id} (created {created}), \
                 over {} pages",
                missing.len(),
                existing.len(),
                pages.len()
            ),
        ));
    }
    Ok(())
}

/// A page for a `requested` size holds at most [`clamp_limit`] rows, and exactly that many
/// when it says there is a next page ("wrong-page-size").
pub fn page_size(requested: Option<usize>, page: &Page) -> Judgement {
    let limit = clamp_limit(requested);
    let len = page.rows.len();
    if len > limit || (page.next.is_some() && len != limit) {
        return Err(Violation::new(
            COMPONENT,
            "wrong-page-size",
            format!(
                "{len} rows for a requested size {requested:?} (served size {limit}), next page {}",
                if page.next.is_some() { "present" } else { "absent" }
            ),
        ));
    }
    Ok(())
}
