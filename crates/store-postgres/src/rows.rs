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

/// A feed in the `rows` table of a store's schema. Each insert and each page is one statement
/// (autocommitted): a page is a snapshot of the rows committed when it ran.
#[derive(Debug, Clone)]
pub struct PgRows {
    pool: PgPool,
    sql: Arc<Sql>,
}

impl PgRows {
    /// The feed in `store`'s schema, which [`PgStore::open`] has migrated.
    pub fn new(store: &PgStore) -> Self {
        let rows = format!("{}.rows", quote(store.schema()));
        let columns = "SELECT id, created, payload FROM";
        let order = "ORDER BY created DESC, id DESC";
        Self {
            pool: store.pool().clone(),
            sql: Arc::new(Sql {
                insert: format!(
                    "INSERT INTO {rows} (id, created, payload) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING 1"
                ),
                head: format!("{columns} {rows} {order} LIMIT $1"),
                after: format!("{columns} {rows} WHERE (created, id) < ($1, $2) {order} LIMIT $3"),
            }),
        }
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
        let (pool, sql) = (self.pool.clone(), Arc::clone(&self.sql));
        self.pool
            .spawn(async move {
                let client = pool.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let inserted =
                    client.query_opt(&sql.insert, &[&id, &created, &row.payload]).await.map_err(db)?;
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
        let (pool, sql) = (self.pool.clone(), Arc::clone(&self.sql));
        let found = self
            .pool
            .spawn(async move {
                let client = pool.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
                match cursor {
                    None => client.query(&sql.head, &[&probe]).await,
                    Some(c) => client.query(&sql.after, &[&bound(c.created()), &bound(c.id()), &probe]).await,
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
