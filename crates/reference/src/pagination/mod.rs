//! #15 Pagination (seed 004): page size 20 by default, at most 100; cursor (keyset) pagination
//! for feeds.
//!
//! Rows are ordered newest first, by `(created DESC, id DESC)`: `id` breaks the ties between
//! rows created in the same millisecond, so the order is total. A page's cursor is the last
//! row's `(created, id)`, and the next page is the rows strictly below it in that order
//! (`WHERE (created, id) < ($c, $i)` in SQL). A row inserted while a client walks the feed
//! cannot move any row across the cursor, so a walk sees every row that existed when it
//! started exactly once, whatever is inserted meanwhile.
//!
//! The field's variants break this two ways ([`mutants`]): a cursor on `created` alone skips
//! the rows that share the boundary's timestamp, and `OFFSET` pagination repeats a row each
//! time one is inserted at the head between two pages.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use crate::clock::Millis;
use crate::store::StoreError;
use crate::sync::{Mutex, lock};

pub const COMPONENT: &str = "pagination";

/// Rows per page when the client names no size (seed 004: `page_size = 20`).
pub const DEFAULT_LIMIT: usize = 20;
/// The largest page a client may ask for (seed 004: `max_page_size = 100`).
pub const MAX_LIMIT: usize = 100;

/// The page size actually served for a requested one: the default when none is named,
/// otherwise clamped to `1..=MAX_LIMIT`.
pub fn clamp_limit(requested: Option<usize>) -> usize {
    requested.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// One row of a feed: `id` is unique, `created` need not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: u64,
    pub created: Millis,
    pub payload: Vec<u8>,
}

impl Row {
    pub fn new(id: u64, created: Millis, payload: impl Into<Vec<u8>>) -> Self {
        Self { id, created, payload: payload.into() }
    }

    /// The row's place in the feed's order (largest first).
    pub fn key(&self) -> (Millis, u64) {
        (self.created, self.id)
    }
}

/// Where the next page starts: the `(created, id)` of the last row served. Opaque to clients,
/// who see it as 32 lowercase hex digits (its [`Display`](fmt::Display)) and hand it back
/// ([`FromStr`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    created: Millis,
    id: u64,
}

impl Cursor {
    pub const fn new(created: Millis, id: u64) -> Self {
        Self { created, id }
    }

    /// The cursor just after `row`.
    pub fn after(row: &Row) -> Self {
        Self::new(row.created, row.id)
    }

    pub fn created(&self) -> Millis {
        self.created
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn key(&self) -> (Millis, u64) {
        (self.created, self.id)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.created, self.id)
    }
}

/// A cursor string that no page of this feed produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor {shown:?}: expected the 32 hex digits of a previous page's next cursor")]
pub struct CursorError {
    /// The start of what was given, at most 40 characters.
    pub shown: String,
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, CursorError> {
        let malformed = || CursorError { shown: text.chars().take(40).collect() };
        if text.len() != 32 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(malformed());
        }
        let half =
            |range: std::ops::Range<usize>| u64::from_str_radix(&text[range], 16).map_err(|_| malformed());
        Ok(Self::new(half(0..16)?, half(16..32)?))
    }
}

/// One page: its rows, newest first, and the cursor of the next page if there are more rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub rows: Vec<Row>,
    pub next: Option<Cursor>,
}

impl Page {
    /// The page of `limit` rows from `below` (newest first, one extra row fetched to learn
    /// whether there is a next page).
    pub fn from_probe(mut below: Vec<Row>, limit: usize) -> Self {
        let more = below.len() > limit;
        below.truncate(limit);
        let next = if more { below.last().map(Cursor::after) } else { None };
        Self { rows: below, next }
    }
}

/// Why a row set refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("row {0} already exists; row ids are unique")]
    DuplicateId(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type PageResult<T> = Result<T, PageError>;

/// An ordered set of rows served a page at a time, newest first.
pub trait RowSet: Send + Sync {
    /// Adds `row`; [`PageError::DuplicateId`] if its id is taken.
    fn insert(&self, row: Row) -> impl Future<Output = PageResult<()>> + Send;

    /// Up to [`clamp_limit(limit)`](clamp_limit) rows strictly after `cursor` (from the
    /// newest row without one), and the cursor of the page after if more rows remain.
    fn page(
        &self,
        cursor: Option<Cursor>,
        limit: Option<usize>,
    ) -> impl Future<Output = PageResult<Page>> + Send;
}

impl<R: RowSet> RowSet for Arc<R> {
    fn insert(&self, row: Row) -> impl Future<Output = PageResult<()>> + Send {
        (**self).insert(row)
    }

    fn page(
        &self,
        cursor: Option<Cursor>,
        limit: Option<usize>,
    ) -> impl Future<Output = PageResult<Page>> + Send {
        (**self).page(cursor, limit)
    }
}

#[derive(Debug, Default)]
struct Rows {
    by_key: BTreeMap<(Millis, u64), Row>,
    ids: HashSet<u64>,
}

/// The in-memory row set: a `BTreeMap` keyed by `(created, id)` behind one mutex, so each
/// insert and each page is one critical section (and a page is a consistent snapshot).
#[derive(Debug, Clone, Default)]
pub struct MemoryRows {
    inner: Arc<Mutex<Rows>>,
}

impl MemoryRows {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert_now(&self, row: Row) -> PageResult<()> {
        let mut rows = lock(&self.inner);
        if !rows.ids.insert(row.id) {
            return Err(PageError::DuplicateId(row.id));
        }
        rows.by_key.insert(row.key(), row);
        Ok(())
    }

    fn page_now(&self, cursor: Option<Cursor>, limit: Option<usize>) -> Page {
        let limit = clamp_limit(limit);
        let rows = lock(&self.inner);
        let below: Vec<Row> = match cursor {
            Some(cursor) => {
                rows.by_key.range(..cursor.key()).rev().take(limit + 1).map(|(_, r)| r.clone()).collect()
            }
            None => rows.by_key.values().rev().take(limit + 1).cloned().collect(),
        };
        Page::from_probe(below, limit)
    }
}

impl RowSet for MemoryRows {
    async fn insert(&self, row: Row) -> PageResult<()> {
        self.insert_now(row)
    }

    async fn page(&self, cursor: Option<Cursor>, limit: Option<usize>) -> PageResult<Page> {
        Ok(self.page_now(cursor, limit))
    }
}
