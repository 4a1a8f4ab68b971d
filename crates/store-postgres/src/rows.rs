//! [`PgRows`]: `reference::pagination::RowSet` on PostgreSQL, keyset pages on the `rows`
//! table (migration 2).

use std::sync::Arc;

use reference::pagination::{Cursor, Page, PageError, PageResult, Row, RowSet, clamp_limit};
use reference::store::StoreError;

use crate::pool::PgPool;
use crate::schema::quote;
use crate::store::{PgStore, db};

#[derive(Debug)]
struct Sql {
    insert: String,
    head: String,
    after: String,
}

/// One feed in the `rows` table of a store's schema (the table holds many, told apart by its
/// `feed` column; ids are unique within a feed). Each insert and each page is one statement
/// (autocommitted): a page is a snapshot of the feed's rows committed when it ran.
#[derive(Debug, Clone)]
pub struct PgRows {
    pool: PgPool,
    feed: Arc<str>,
    sql: Arc<Sql>,
}

impl PgRows {
    /// The default feed (named `""`) in `store`'s schema, which [`PgStore::open`] has migrated.
    pub fn new(store: &PgStore) -> Self {
        Self::feed(store, "")
    }

    /// The feed named `feed` in `store`'s schema.
    pub fn feed(store: &PgStore, feed: &str) -> Self {
        let rows = format!("{}.rows", quote(store.schema()));
        let columns = "SELECT id, created, payload FROM";
        let order = "ORDER BY created DESC, id DESC";
        Self {
            pool: store.pool().clone(),
            feed: feed.into(),
            sql: Arc::new(Sql {
                insert: format!(
                    "INSERT INTO {rows} (feed, id, created, payload) VALUES ($1, $2, $3, $4) ON CONFLICT (feed, id) DO NOTHING RETURNING 1"
                ),
                head: format!("{columns} {rows} WHERE feed = $1 {order} LIMIT $2"),
                after: format!(
                    "{columns} {rows} WHERE feed = $1 AND (created, id) < ($2, $3) {order} LIMIT $4"
                ),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.feed
    }
}

/// A row's `id` or `created` as the `bigint` it is stored in.
fn column(what: &str, value: u64) -> PageResult<i64> {
    i64::try_from(value).map_err(|_| {
        PageError::Store(StoreError::Backend(format!("row {what} {value} does not fit postgres bigint")))
    })
}

impl RowSet for PgRows {
    async fn insert(&self, row: Row) -> PageResult<()> {
        let (id, created) = (column("id", row.id)?, column("created", row.created)?);
        let (pool, sql, feed) = (self.pool.clone(), Arc::clone(&self.sql), Arc::clone(&self.feed));
        self.pool
            .spawn(async move {
                let client = pool.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let inserted = client
                    .query_opt(&sql.insert, &[&&*feed, &id, &created, &row.payload])
                    .await
                    .map_err(db)?;
                match inserted {
                    Some(_) => Ok(()),
                    None => Err(PageError::DuplicateId(row.id)),
                }
            })
            .await
    }

    async fn page(&self, cursor: Option<Cursor>, limit: Option<usize>) -> PageResult<Page> {
        let limit = clamp_limit(limit);
        let probe = limit as i64 + 1;
        // A cursor beyond bigint came from no page of this feed: it sorts after every row.
        let bound = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (pool, sql, feed) = (self.pool.clone(), Arc::clone(&self.sql), Arc::clone(&self.feed));
        let found = self
            .pool
            .spawn(async move {
                let client = pool.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let feed = &*feed;
                match cursor {
                    None => client.query(&sql.head, &[&feed, &probe]).await,
                    Some(c) => {
                        client.query(&sql.after, &[&feed, &bound(c.created()), &bound(c.id()), &probe]).await
                    }
                }
                .map_err(db)
            })
            .await?;
        let rows = found
            .iter()
            .map(|r| {
                let (id, created): (i64, i64) = (r.get(0), r.get(1));
                Row::new(id as u64, created as u64, r.get::<_, Vec<u8>>(2))
            })
            .collect();
        Ok(Page::from_probe(rows, limit))
    }
}
