//! Pagination as the field wrote it. Both wrap any correct [`RowSet`], so the same mutant runs
//! on the memory rows and on PostgreSQL.

use super::{Cursor, MAX_LIMIT, Page, PageResult, Row, RowSet, clamp_limit};

/// The cursor keeps only the last row's `created` and the next page is `WHERE created < $c`:
/// the rows sharing the boundary row's timestamp that did not fit on the page are skipped.
#[derive(Debug, Clone)]
pub struct CreatedOnlyCursor<R> {
    pub inner: R,
}

impl<R: RowSet> RowSet for CreatedOnlyCursor<R> {
    async fn insert(&self, row: Row) -> PageResult<()> {
        self.inner.insert(row).await
    }

    async fn page(&self, cursor: Option<Cursor>, limit: Option<usize>) -> PageResult<Page> {
        // `(created, id) < (c, 0)` is `created < c`: ids are unsigned.
        self.inner.page(cursor.map(|c| Cursor::new(c.created(), 0)), limit).await
    }
}

/// `OFFSET n LIMIT k` behind an opaque token (the offset rides in the cursor's id): a row
/// inserted at the head between two pages shifts every later row down by one, so the next
/// page starts with a row the previous one already served.
#[derive(Debug, Clone)]
pub struct Offset<R> {
    pub inner: R,
}

impl<R: RowSet> RowSet for Offset<R> {
    async fn insert(&self, row: Row) -> PageResult<()> {
        self.inner.insert(row).await
    }

    async fn page(&self, cursor: Option<Cursor>, limit: Option<usize>) -> PageResult<Page> {
        let limit = clamp_limit(limit);
        let offset = cursor.map_or(0, |c| c.id()) as usize;
        // What `OFFSET` does on the server: read from the head and throw the first rows away.
        let mut head = Vec::new();
        let mut at = None;
        while head.len() <= offset + limit {
            let page = self.inner.page(at, Some(MAX_LIMIT)).await?;
            head.extend(page.rows);
            match page.next {
                Some(next) => at = Some(next),
                None => break,
            }
        }
        let below: Vec<Row> = head.into_iter().skip(offset).collect();
        let mut page = Page::from_probe(below, limit);
        page.next = page.next.map(|_| Cursor::new(0, (offset + limit) as u64));
        Ok(page)
    }
}
