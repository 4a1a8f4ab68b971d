//! #18 Query budget (seed 004: fewer than 10 queries per request, no N + 1).
//!
//! Every query a request makes is counted against that request ([`QueryCount`], shared by the
//! request's concurrent store calls, so none is lost), and the count is reported per request
//! (the stack's `X-DB-Queries` and `/metrics`). A request stays under [`BUDGET`], and an
//! endpoint's count does not grow with the rows it serves: a list endpoint reads its page in
//! one query ([`OnePage`]) whatever the page size. The field's list endpoint reads the page,
//! then each row's record on its own ([`mutants::PerRowQuery`]): N + 1 queries, the budget
//! blown at ten rows.
//!
//! [`Counted`] wraps a row set or a record lookup so that each of its calls counts one query,
//! which is how the tests and the loom models meter a listing; the stack counts at its store.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::future::Future;
use std::sync::Arc;

use crate::pagination::{Cursor, Page, PageResult, Row, RowSet};
use crate::sync::{AtomicU64, Ordering};

pub const COMPONENT: &str = "query-budget";

/// A request makes fewer queries than this (seed 004).
pub const BUDGET: u64 = 10;

/// Counts the queries of one request.
pub trait Counter: Send + Sync {
    /// One more query made.
    fn record(&self);

    /// The queries counted so far.
    fn total(&self) -> u64;
}

/// The correct counter: one atomic add a query, so concurrent queries of one request are all
/// counted.
#[derive(Debug, Default)]
pub struct QueryCount {
    made: AtomicU64,
}

impl QueryCount {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Counter for QueryCount {
    fn record(&self) {
        self.made.fetch_add(1, Ordering::SeqCst);
    }

    fn total(&self) -> u64 {
        self.made.load(Ordering::SeqCst)
    }
}

/// `inner`, each of whose calls counts one query in `count`.
#[derive(Clone)]
pub struct Counted<T> {
    pub inner: T,
    pub count: Arc<dyn Counter>,
}

impl<T> Counted<T> {
    pub fn new(inner: T, count: Arc<dyn Counter>) -> Self {
        Self { inner, count }
    }
}

impl<R: RowSet> RowSet for Counted<R> {
    fn insert(&self, row: Row) -> impl Future<Output = PageResult<()>> + Send {
        self.count.record();
        self.inner.insert(row)
    }

    fn page(
        &self,
        cursor: Option<Cursor>,
        limit: Option<usize>,
    ) -> impl Future<Output = PageResult<Page>> + Send {
        self.count.record();
        self.inner.page(cursor, limit)
    }
}

impl<D: RowDetails> RowDetails for Counted<D> {
    type Detail = D::Detail;

    fn detail(&self, row: &Row) -> impl Future<Output = PageResult<Option<D::Detail>>> + Send {
        self.count.record();
        self.inner.detail(row)
    }
}

/// What a listing could show of a row beyond its payload, read from the row's own record: one
/// query a row.
pub trait RowDetails: Send + Sync {
    type Detail: Send;

    fn detail(&self, row: &Row) -> impl Future<Output = PageResult<Option<Self::Detail>>> + Send;
}

/// One listed page: its rows and, when the listing looked rows up one by one, what it found
/// for each (in row order); empty otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<D> {
    pub page: Page,
    pub details: Vec<Option<D>>,
}

/// A list endpoint's reads: the correct one and its mutant.
pub trait Listing: Send + Sync {
    /// The page of `rows` after `cursor` (see [`RowSet::page`]), with whatever the listing
    /// reads through `details`.
    fn list<R: RowSet, D: RowDetails>(
        &self,
        rows: &R,
        details: &D,
        cursor: Option<Cursor>,
        limit: Option<usize>,
    ) -> impl Future<Output = PageResult<Listed<D::Detail>>> + Send;
}

/// The correct listing: the page in one query, whatever its size. What the list shows of a row
/// travels in the row's payload, so no row is looked up on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnePage;

impl Listing for OnePage {
    async fn list<R: RowSet, D: RowDetails>(
        &self,
        rows: &R,
        _details: &D,
        cursor: Option<Cursor>,
        limit: Option<usize>,
    ) -> PageResult<Listed<D::Detail>> {
        Ok(Listed { page: rows.page(cursor, limit).await?, details: Vec::new() })
    }
}
