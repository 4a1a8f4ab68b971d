//! The query budget as the field broke it.

use crate::pagination::{Cursor, PageResult, RowSet};
use crate::sync::{AtomicU64, Ordering};

use super::{Counter, Listed, Listing, RowDetails};

/// The list endpoint that reads the page, then each row's record on its own to show a field
/// of it (an ORM's lazy relation touched in a loop): N + 1 queries, growing with the page size
/// and over the budget from ten rows on.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerRowQuery;

impl Listing for PerRowQuery {
    async fn list<R: RowSet, D: RowDetails>(
        &self,
        rows: &R,
        details: &D,
        cursor: Option<Cursor>,
        limit: Option<usize>,
    ) -> PageResult<Listed<D::Detail>> {
        let page = rows.page(cursor, limit).await?;
        let mut found = Vec::with_capacity(page.rows.len());
        for row in &page.rows {
            found.push(details.detail(row).await?);
        }
        Ok(Listed { page, details: found })
    }
}

/// A counter that reads the count and writes it back plus one (`request.queries += 1` on a
/// shared object): two queries of one request made at once can both read the same count, and
/// one of them goes unreported — the report under-counts exactly the concurrent work.
#[derive(Debug, Default)]
pub struct LostIncrement {
    made: AtomicU64,
}

impl Counter for LostIncrement {
    fn record(&self) {
        let seen = self.made.load(Ordering::SeqCst);
        self.made.store(seen + 1, Ordering::SeqCst);
    }

    fn total(&self) -> u64 {
        self.made.load(Ordering::SeqCst)
    }
}
