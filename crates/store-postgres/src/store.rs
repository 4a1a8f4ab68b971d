//! [`PgStore`]: every [`Store`] primitive as one statement, or one short transaction whose row
//! locks are taken in key order.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::Object;
use reference::store::{
    Bump, BumpOutcome, Delivery, GcraOutcome, QueueDepth, SlotOutcome, Store, StoreError, StoreResult, Ttl,
};
use tokio_postgres::error::SqlState;

use crate::pool::{PgPool, PoolError};
use crate::schema::{migrate, quote};

/// Live rows of `kv` (aliased `kv`): no expiry, or one still ahead of the server's now.
const LIVE: &str = "(kv.expires_at IS NULL OR kv.expires_at > now())";

/// Milliseconds (floored) in an interval expression, as `PTTL` counts them.
fn ms(interval: &str) -> String {
    format!("floor(extract(epoch FROM ({interval})) * 1000)::bigint")
}

/// A counter's value as a number (values are decimal text, like Redis strings).
fn int(value: &str) -> String {
    format!("convert_from({value}, 'UTF8')::bigint")
}

/// A number as a counter's value.
fn txt(number: &str) -> String {
    format!("convert_to(({number})::text, 'UTF8')")
}

/// The deadline `$n` milliseconds from now (`NULL` stays `NULL`: no expiry).
fn deadline(n: u8) -> String {
    format!("now() + ${n}::bigint * interval '1 millisecond'")
}

/// Every statement, with the schema's name in it, written once at construction.
#[derive(Debug)]
struct Sql {
    get: String,
    set: String,
    create: String,
    replace: String,
    set_guarded: String,
    del: String,
    del_matching: String,
    keys: String,
    pttl: String,
    pexpire: String,
    incr_by: String,
    incr_window: String,
    lock_counters: String,
    apply_bumps: String,
    lock_tat: String,
    store_tat: String,
    lock_slots: String,
    sweep_slots: String,
    slot_state: String,
    slot_renew: String,
    slot_insert: String,
    slot_release: String,
    slot_count: String,
    slot_next_expiry: String,
    enqueue: String,
    reserve: String,
    ack: String,
    requeue: String,
    depth: String,
    sweep: String,
}

impl Sql {
    fn new(schema: &str) -> Self {
        let s = quote(schema);
        let kv = format!("{s}.kv AS kv");
        let value = int("kv.value");
        Self {
            get: format!("SELECT value FROM {kv} WHERE key = $1 AND {LIVE}"),
            set: format!(
                "INSERT INTO {kv} (key, value, expires_at) VALUES ($1, $2, {}) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                deadline(3)
            ),
            // SET NX, and compare-and-set from "missing": an insert that yields to a live row
            // (ON CONFLICT DO NOTHING) but takes over an expired one.
            create: format!(
                "INSERT INTO {kv} (key, value, expires_at) VALUES ($1, $2, {}) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
                 WHERE NOT {LIVE} RETURNING 1",
                deadline(3)
            ),
            replace: format!(
                "UPDATE {kv} SET value = $3, expires_at = {} WHERE key = $1 AND value = $2 AND {LIVE}",
                deadline(4)
            ),
            // The guard row is read FOR SHARE: a concurrent write or delete of it either
            // committed before the lock was taken (and READ COMMITTED re-checks the row's
            // newest version against the WHERE clause) or waits for this statement. A missing
            // or expired guard yields no row, so nothing is written.
            set_guarded: format!(
                "WITH guard AS ( \
                   SELECT 1 FROM {s}.kv AS g WHERE g.key = $1 AND g.value = $2 \
                     AND (g.expires_at IS NULL OR g.expires_at > now()) FOR SHARE) \
                 INSERT INTO {kv} (key, value, expires_at) SELECT $3, $4, {} FROM guard \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                deadline(5)
            ),
            del: format!("DELETE FROM {kv} WHERE key = $1 RETURNING {LIVE}"),
            del_matching: format!(
                "WITH gone AS (DELETE FROM {kv} WHERE key LIKE $1 RETURNING {LIVE} AS live) \
                 SELECT count(*) FILTER (WHERE live) FROM gone"
            ),
            keys: format!("SELECT key FROM {kv} WHERE key LIKE $1 AND {LIVE}"),
            pttl: format!(
                "SELECT kv.expires_at IS NULL, {} FROM {kv} WHERE key = $1 AND {LIVE}",
                ms("kv.expires_at - now()")
            ),
            pexpire: format!("UPDATE {kv} SET expires_at = {} WHERE key = $1 AND {LIVE}", deadline(2)),
            incr_by: format!(
                "INSERT INTO {kv} (key, value, expires_at) VALUES ($1, {}, NULL) \
                 ON CONFLICT (key) DO UPDATE SET \
                   value = CASE WHEN {LIVE} THEN {} ELSE excluded.value END, \
                   expires_at = CASE WHEN {LIVE} THEN kv.expires_at END \
                 RETURNING {value}",
                txt("$2::bigint"),
                txt(&format!("{value} + $2::bigint")),
            ),
            // The TTL is set only when the key is created (or comes back after expiring).
            incr_window: format!(
                "INSERT INTO {kv} (key, value, expires_at) VALUES ($1, {}, {}) \
                 ON CONFLICT (key) DO UPDATE SET \
                   value = CASE WHEN {LIVE} THEN {} ELSE excluded.value END, \
                   expires_at = CASE WHEN {LIVE} THEN coalesce(kv.expires_at, excluded.expires_at) \
                                ELSE excluded.expires_at END \
                 RETURNING {value}, {}",
                txt("$2::bigint"),
                deadline(3),
                txt(&format!("{value} + $2::bigint")),
                ms("kv.expires_at - now()"),
            ),
            // Locks every counter of a bounded increment in key order, creating missing (and
            // resetting expired) ones at 0 with their TTL: concurrent callers queue on the row
            // locks, or on the unique index for a key one of them is creating.
            lock_counters: format!(
                "INSERT INTO {kv} (key, value, expires_at) \
                 SELECT t.k, {}, now() + t.ttl * interval '1 millisecond' \
                 FROM unnest($1::text[], $2::bigint[]) AS t(k, ttl) ORDER BY t.k \
                 ON CONFLICT (key) DO UPDATE SET \
                   value = CASE WHEN {LIVE} THEN kv.value ELSE excluded.value END, \
                   expires_at = CASE WHEN {LIVE} THEN kv.expires_at ELSE excluded.expires_at END \
                 RETURNING kv.key, {value}",
                txt("0"),
            ),
            apply_bumps: format!(
                "UPDATE {kv} SET value = {} FROM unnest($1::text[], $2::bigint[]) AS t(k, d) \
                 WHERE kv.key = t.k RETURNING kv.key, {value}",
                txt(&format!("{value} + t.d"))
            ),
            // The TAT's row, locked (created idle when missing or expired), and now in ns.
            lock_tat: format!(
                "INSERT INTO {kv} (key, value, expires_at) VALUES ($1, NULL, now()) \
                 ON CONFLICT (key) DO UPDATE SET \
                   value = CASE WHEN {LIVE} THEN kv.value END, \
                   expires_at = CASE WHEN {LIVE} THEN kv.expires_at ELSE now() END \
                 RETURNING {value}, (extract(epoch FROM now()) * 1000000)::bigint * 1000"
            ),
            store_tat: format!(
                "UPDATE {kv} SET value = {}, expires_at = {} WHERE key = $1",
                txt("$2::bigint"),
                deadline(3)
            ),
            lock_slots: "SELECT pg_advisory_xact_lock(hashtextextended('stampede-slots:' || $1, 0))".into(),
            sweep_slots: format!("DELETE FROM {s}.slots WHERE key = $1 AND lease_end <= now()"),
            slot_state: format!(
                "SELECT count(*), coalesce(bool_or(member = $2), false) FROM {s}.slots WHERE key = $1"
            ),
            slot_renew: format!(
                "UPDATE {s}.slots SET lease_end = {} WHERE key = $1 AND member = $2",
                deadline(3)
            ),
            slot_insert: format!(
                "INSERT INTO {s}.slots (key, member, lease_end) VALUES ($1, $2, {})",
                deadline(3)
            ),
            slot_release: format!(
                "DELETE FROM {s}.slots WHERE key = $1 AND member = $2 RETURNING lease_end > now()"
            ),
            slot_count: format!("SELECT count(*) FROM {s}.slots WHERE key = $1 AND lease_end > now()"),
            slot_next_expiry: format!(
                "SELECT {} FROM {s}.slots WHERE key = $1 AND lease_end > now()",
                ms("min(lease_end) - now()")
            ),
            enqueue: format!("INSERT INTO {s}.tasks (queue, payload) VALUES ($1, $2) RETURNING id"),
            reserve: format!(
                "UPDATE {s}.tasks SET in_flight_until = {}, attempt = attempt + 1 \
                 WHERE id = (SELECT id FROM {s}.tasks WHERE queue = $1 AND in_flight_until IS NULL \
                             ORDER BY head DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, payload, attempt",
                deadline(2)
            ),
            ack: format!(
                "DELETE FROM {s}.tasks WHERE queue = $1 AND id = $2 AND in_flight_until IS NOT NULL"
            ),
            requeue: format!(
                "UPDATE {s}.tasks SET in_flight_until = NULL, \
                   head = (SELECT nextval('{}'))
                 WHERE queue = $1 AND in_flight_until <= now()",
                format!("{s}.requeue_pass").replace('\'', "''")
            ),
            depth: format!(
                "SELECT count(*) FILTER (WHERE in_flight_until IS NULL), \
                        count(*) FILTER (WHERE in_flight_until IS NOT NULL) \
                 FROM {s}.tasks WHERE queue = $1"
            ),
            sweep: format!(
                "DELETE FROM {s}.kv WHERE ctid = ANY(ARRAY( \
                   SELECT ctid FROM {s}.kv WHERE expires_at <= now() LIMIT 1000))"
            ),
        }
    }
}

/// How often (in primitives) a call also sweeps up to 1,000 expired rows, so that keys written
/// once and never read again do not pile up (Redis's active expiry, amortised).
const SWEEP_EVERY: u64 = 4_096;

/// [`Store`] on PostgreSQL. Cloning shares the pool.
///
/// Time is the server's (`now()`), so every instance of a component shares one clock, as with
/// Redis. Slot sets live in their own table: a slot key is invisible to `get`, `keys` and
/// `del_matching` (on the memory store it is a kind of value that `get` refuses).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    schema: String,
    sql: Arc<Sql>,
    calls: Arc<AtomicU64>,
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(
        "cannot create the store's tables in schema {schema}: {reason}; may the database user create schemas?"
    )]
    Migrate { schema: String, reason: String },
}

impl PgStore {
    /// The store in `schema` (created, and migrated to the latest version, if need be), over
    /// `pool`.
    pub async fn open(pool: PgPool, schema: &str) -> Result<Self, OpenError> {
        let (on_runtime, name) = (pool.clone(), schema.to_owned());
        pool.spawn(async move {
            let mut client = on_runtime.get().await?;
            migrate(&mut client, &name)
                .await
                .map_err(|e| OpenError::Migrate { schema: name, reason: crate::describe(&e) })
        })
        .await?;
        Ok(Self { pool, schema: schema.to_owned(), sql: Arc::new(Sql::new(schema)), calls: Arc::default() })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Deletes up to 1,000 expired rows; how many.
    pub async fn sweep_expired(&self) -> StoreResult<u64> {
        self.run(|sql, client| async move { client.execute(&sql.sweep, &[]).await.map_err(db) }).await
    }

    /// Drops the store's schema and everything in it (tests and throwaway runs).
    pub async fn drop_schema(&self) -> StoreResult<()> {
        let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&self.schema));
        self.run(move |_, client| async move { client.batch_execute(&statement).await.map_err(db) }).await
    }

    /// Runs `op` on a pooled connection, on the pool's runtime.
    fn run<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(Arc<Sql>, Object) -> Fut + Send + 'static,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
    {
        let (pool, sql) = (self.pool.clone(), Arc::clone(&self.sql));
        let sweep = self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1;
        self.pool.spawn(async move {
            let client = pool.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let sweep_sql = sweep.then(|| sql.sweep.clone());
            // The op consumes the connection (and so returns it to the pool); a sweep takes
            // one of its own, best effort: a failed sweep is retried SWEEP_EVERY calls later.
            let out = op(sql, client).await;
            if let Some(statement) = sweep_sql {
                if let Ok(client) = pool.get().await {
                    let _ = client.execute(&statement, &[]).await;
                }
            }
            out
        })
    }
}

/// A duration as the whole milliseconds a TTL is counted in (at most ~30 years, so that the
/// server's interval arithmetic cannot overflow).
fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).min(1_000_000_000_000)
}

fn remaining(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A database error as a store error: a lost connection is `Unavailable`, anything else a
/// backend failure.
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    if e.is_closed() {
        StoreError::Unavailable(crate::describe(&e))
    } else {
        StoreError::Backend(crate::describe(&e))
    }
}

/// Like [`db`], but a value that is not a decimal integer is the caller's `WrongKind`.
fn counter_err(key: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| match e.code() {
        Some(code)
            if [
                SqlState::INVALID_TEXT_REPRESENTATION,
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                SqlState::UNTRANSLATABLE_CHARACTER,
            ]
            .contains(code) =>
        {
            StoreError::WrongKind { key: key.to_owned(), expected: "an integer" }
        }
        _ => db(e),
    }
}

/// A glob (`*` any run of characters) as a `LIKE` pattern with `\` escapes.
fn like(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

impl Store for PgStore {
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let key = key.to_owned();
        self.run(|sql, c| async move {
            let st = c.prepare_cached(&sql.get).await.map_err(db)?;
            let row = c.query_opt(&st, &[&key]).await.map_err(db)?;
            Ok(row.map(|r| r.get::<_, Option<Vec<u8>>>(0).unwrap_or_default()))
        })
        .await
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> StoreResult<()> {
        let key = key.to_owned();
        let ttl = ttl.map(ttl_ms);
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.set).await.map_err(db)?;
            c.execute(&st, &[&key, &value, &ttl]).await.map_err(db).map(drop)
        })
        .await
    }

    async fn set_nx(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<bool> {
        let key = key.to_owned();
        let ttl = Some(ttl_ms(ttl));
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.create).await.map_err(db)?;
            Ok(c.execute(&st, &[&key, &value, &ttl]).await.map_err(db)? == 1)
        })
        .await
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        let key = key.to_owned();
        let expected = expected.map(<[u8]>::to_vec);
        let ttl = ttl.map(ttl_ms);
        self.run(move |sql, c| async move {
            let n = match expected {
                // Creation: INSERT … ON CONFLICT DO NOTHING (unless the row there expired).
                None => {
                    let st = c.prepare_cached(&sql.create).await.map_err(db)?;
                    c.execute(&st, &[&key, &new, &ttl]).await.map_err(db)?
                }
                // A transition: UPDATE … WHERE value = $expected; the row lock serialises
                // concurrent ones, and the loser re-reads the new value and matches nothing.
                Some(expected) => {
                    let st = c.prepare_cached(&sql.replace).await.map_err(db)?;
                    c.execute(&st, &[&key, &expected, &new, &ttl]).await.map_err(db)?
                }
            };
            Ok(n == 1)
        })
        .await
    }

    async fn set_guarded(
        &self,
        guard_key: &str,
        expected_guard: &[u8],
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        let (guard_key, expected, key) = (guard_key.to_owned(), expected_guard.to_vec(), key.to_owned());
        let ttl = ttl.map(ttl_ms);
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.set_guarded).await.map_err(db)?;
            Ok(c.execute(&st, &[&guard_key, &expected, &key, &value, &ttl]).await.map_err(db)? == 1)
        })
        .await
    }

    async fn del(&self, key: &str) -> StoreResult<bool> {
        let key = key.to_owned();
        self.run(|sql, c| async move {
            let st = c.prepare_cached(&sql.del).await.map_err(db)?;
            Ok(c.query_opt(&st, &[&key]).await.map_err(db)?.is_some_and(|r| r.get::<_, bool>(0)))
        })
        .await
    }

    async fn del_matching(&self, pattern: &str) -> StoreResult<u64> {
        let pattern = like(pattern);
        self.run(|sql, c| async move {
            let st = c.prepare_cached(&sql.del_matching).await.map_err(db)?;
            let n: i64 = c.query_one(&st, &[&pattern]).await.map_err(db)?.get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn keys(&self, pattern: &str) -> StoreResult<Vec<String>> {
        let pattern = like(pattern);
        self.run(|sql, c| async move {
            let st = c.prepare_cached(&sql.keys).await.map_err(db)?;
            Ok(c.query(&st, &[&pattern]).await.map_err(db)?.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    async fn pttl(&self, key: &str) -> StoreResult<Ttl> {
        let key = key.to_owned();
        self.run(|sql, c| async move {
            let st = c.prepare_cached(&sql.pttl).await.map_err(db)?;
            Ok(match c.query_opt(&st, &[&key]).await.map_err(db)? {
                None => Ttl::Missing,
                Some(row) if row.get::<_, bool>(0) => Ttl::Persistent,
                Some(row) => Ttl::Remaining(remaining(row.get(1))),
            })
        })
        .await
    }

    async fn pexpire(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let key = key.to_owned();
        let ttl = ttl_ms(ttl);
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.pexpire).await.map_err(db)?;
            Ok(c.execute(&st, &[&key, &ttl]).await.map_err(db)? == 1)
        })
        .await
    }

    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        let key = key.to_owned();
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.incr_by).await.map_err(db)?;
            Ok(c.query_one(&st, &[&key, &delta]).await.map_err(counter_err(&key))?.get(0))
        })
        .await
    }

    async fn incr_window(&self, key: &str, delta: i64, window: Duration) -> StoreResult<(i64, Duration)> {
        let key = key.to_owned();
        let window = ttl_ms(window);
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.incr_window).await.map_err(db)?;
            let row = c.query_one(&st, &[&key, &delta, &window]).await.map_err(counter_err(&key))?;
            Ok((row.get(0), remaining(row.get(1))))
        })
        .await
    }

    async fn bounded_incr(&self, bumps: &[Bump<'_>]) -> StoreResult<BumpOutcome> {
        // One row per key (a key named twice is locked once and gets the sum of its deltas),
        // locked in key order by the statement's ORDER BY so two callers cannot deadlock.
        let mut unique: Vec<(String, i64, i64)> = Vec::new();
        for bump in bumps {
            match unique.iter_mut().find(|(k, ..)| k == bump.key) {
                Some((_, delta, _)) => *delta += bump.delta,
                None => unique.push((bump.key.to_owned(), bump.delta, ttl_ms(bump.ttl))),
            }
        }
        let plan: Vec<(String, i64, i64)> =
            bumps.iter().map(|b| (b.key.to_owned(), b.delta, b.limit)).collect();
        if plan.is_empty() {
            return Ok(BumpOutcome::Applied(Vec::new()));
        }
        self.run(move |sql, mut c| async move {
            let keys: Vec<&str> = unique.iter().map(|(k, ..)| k.as_str()).collect();
            let deltas: Vec<i64> = unique.iter().map(|(_, d, _)| *d).collect();
            let ttls: Vec<i64> = unique.iter().map(|(.., t)| *t).collect();
            let first = keys[0].to_owned();
            let tx = c.transaction().await.map_err(db)?;
            let lock = tx.prepare_cached(&sql.lock_counters).await.map_err(db)?;
            let current: Vec<(String, i64)> = tx
                .query(&lock, &[&keys, &ttls])
                .await
                .map_err(counter_err(&first))?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let value_of = |key: &str| current.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v);
            for (index, (key, delta, limit)) in plan.iter().enumerate() {
                let now = value_of(key);
                if now + delta > *limit {
                    tx.rollback().await.map_err(db)?;
                    return Ok(BumpOutcome::Refused { index, current: now });
                }
            }
            let apply = tx.prepare_cached(&sql.apply_bumps).await.map_err(db)?;
            let after: Vec<(String, i64)> = tx
                .query(&apply, &[&keys, &deltas])
                .await
                .map_err(counter_err(&first))?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            tx.commit().await.map_err(db)?;
            let value_after = |key: &str| after.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v);
            Ok(BumpOutcome::Applied(plan.iter().map(|(k, ..)| value_after(k)).collect()))
        })
        .await
    }

    async fn gcra(&self, key: &str, interval_ns: u64, burst: u64) -> StoreResult<GcraOutcome> {
        let key = key.to_owned();
        self.run(move |sql, mut c| async move {
            let tx = c.transaction().await.map_err(db)?;
            let lock = tx.prepare_cached(&sql.lock_tat).await.map_err(db)?;
            let row = tx.query_one(&lock, &[&key]).await.map_err(counter_err(&key))?;
            let stored: Option<i64> = row.get(0);
            let now = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
            let tat = stored.map(|t| u64::try_from(t).unwrap_or(0));
            // Admitted iff max(TAT, now) + T - now <= burst * T (see `Store::gcra`).
            let next = tat.map_or(now, |t| t.max(now)).saturating_add(interval_ns);
            if next - now > interval_ns.saturating_mul(burst) {
                tx.rollback().await.map_err(db)?;
                return Ok(GcraOutcome { admitted: false, tat: tat.unwrap_or(now), now });
            }
            let ttl = i64::try_from((next - now).div_ceil(1_000_000)).unwrap_or(i64::MAX);
            let value = i64::try_from(next).unwrap_or(i64::MAX);
            let store = tx.prepare_cached(&sql.store_tat).await.map_err(db)?;
            tx.execute(&store, &[&key, &value, &ttl]).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(GcraOutcome { admitted: true, tat: next, now })
        })
        .await
    }

    async fn slot_acquire(
        &self,
        key: &str,
        member: &str,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<SlotOutcome> {
        let (key, member, lease) = (key.to_owned(), member.to_owned(), ttl_ms(lease));
        self.run(move |sql, mut c| async move {
            let tx = c.transaction().await.map_err(db)?;
            // The set's members are rows; one advisory lock per set serialises its writers.
            tx.execute(&sql.lock_slots, &[&key]).await.map_err(db)?;
            let sweep = tx.prepare_cached(&sql.sweep_slots).await.map_err(db)?;
            tx.execute(&sweep, &[&key]).await.map_err(db)?;
            let state = tx.prepare_cached(&sql.slot_state).await.map_err(db)?;
            let row = tx.query_one(&state, &[&key, &member]).await.map_err(db)?;
            let held = usize::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            let outcome = if row.get::<_, bool>(1) {
                let renew = tx.prepare_cached(&sql.slot_renew).await.map_err(db)?;
                tx.execute(&renew, &[&key, &member, &lease]).await.map_err(db)?;
                SlotOutcome::Renewed { held }
            } else if held < limit {
                let insert = tx.prepare_cached(&sql.slot_insert).await.map_err(db)?;
                tx.execute(&insert, &[&key, &member, &lease]).await.map_err(db)?;
                SlotOutcome::Acquired { held: held + 1 }
            } else {
                SlotOutcome::Full { held }
            };
            tx.commit().await.map_err(db)?;
            Ok(outcome)
        })
        .await
    }

    async fn slot_release(&self, key: &str, member: &str) -> StoreResult<bool> {
        let (key, member) = (key.to_owned(), member.to_owned());
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.slot_release).await.map_err(db)?;
            Ok(c.query_opt(&st, &[&key, &member]).await.map_err(db)?.is_some_and(|r| r.get::<_, bool>(0)))
        })
        .await
    }

    async fn slot_count(&self, key: &str) -> StoreResult<usize> {
        let key = key.to_owned();
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.slot_count).await.map_err(db)?;
            let n: i64 = c.query_one(&st, &[&key]).await.map_err(db)?.get(0);
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn slot_next_expiry(&self, key: &str) -> StoreResult<Option<Duration>> {
        let key = key.to_owned();
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.slot_next_expiry).await.map_err(db)?;
            let ms: Option<i64> = c.query_one(&st, &[&key]).await.map_err(db)?.get(0);
            Ok(ms.map(remaining))
        })
        .await
    }

    async fn enqueue(&self, queue: &str, payload: Vec<u8>) -> StoreResult<u64> {
        let queue = queue.to_owned();
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.enqueue).await.map_err(db)?;
            let id: i64 = c.query_one(&st, &[&queue, &payload]).await.map_err(db)?.get(0);
            Ok(u64::try_from(id).unwrap_or(0))
        })
        .await
    }

    async fn reserve(&self, queue: &str, visibility: Duration) -> StoreResult<Option<Delivery>> {
        let (queue, visibility) = (queue.to_owned(), ttl_ms(visibility));
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.reserve).await.map_err(db)?;
            Ok(c.query_opt(&st, &[&queue, &visibility]).await.map_err(db)?.map(|r| Delivery {
                id: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                payload: r.get(1),
                attempt: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
            }))
        })
        .await
    }

    async fn ack(&self, queue: &str, id: u64) -> StoreResult<bool> {
        let queue = queue.to_owned();
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.ack).await.map_err(db)?;
            Ok(c.execute(&st, &[&queue, &id]).await.map_err(db)? == 1)
        })
        .await
    }

    async fn requeue_expired(&self, queue: &str) -> StoreResult<usize> {
        let queue = queue.to_owned();
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.requeue).await.map_err(db)?;
            Ok(usize::try_from(c.execute(&st, &[&queue]).await.map_err(db)?).unwrap_or(0))
        })
        .await
    }

    async fn queue_depth(&self, queue: &str) -> StoreResult<QueueDepth> {
        let queue = queue.to_owned();
        self.run(move |sql, c| async move {
            let st = c.prepare_cached(&sql.depth).await.map_err(db)?;
            let row = c.query_one(&st, &[&queue]).await.map_err(db)?;
            let count = |i| usize::try_from(row.get::<_, i64>(i)).unwrap_or(0);
            Ok(QueueDepth { ready: count(0), in_flight: count(1) })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn globs_become_escaped_like_patterns() {
        assert_eq!(like("project:1:*"), "project:1:%");
        assert_eq!(like("a_b%c\\*"), "a\\_b\\%c\\\\%");
    }
}
