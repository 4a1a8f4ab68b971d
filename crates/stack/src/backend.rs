//! The backends the stack runs on, chosen at start: every store the components use is an
//! [`AnyStore`], which dispatches to the memory, Redis or PostgreSQL store.
//!
//! Where each kind of state lives (the first backend configured wins):
//!
//! | state | backends, in order of preference |
//! |---|---|
//! | counters, limiters, quota, usage, status, breaker, queue, credentials, WebSocket slots | Redis, PostgreSQL, memory |
//! | records: users, tokens, projects, videos (#5) and their feeds (#15) | PostgreSQL, Redis, memory |
//! | cache L2 (#14) | Redis, memory |
//! | cache L3 (#14) | PostgreSQL, memory |
//! | L1 invalidation bus (#14) | Redis pub/sub, in-process |
//!
//! With the memory backend every process has its own state: several instances of it do not
//! share limits, records or caches. That is the contrast the black-box checks show.
//! Feeds live in PostgreSQL or in process memory; with Redis alone they are per process.

use std::sync::Arc;
use std::time::Duration;

use reference::clock::{Clock, SystemClock};
use reference::l1_cache::{Applied, InvalidationBus, LocalBus, Subscriber};
use reference::pagination::{Cursor, MemoryRows, Page, PageResult, Row, RowSet};
use reference::store::{
    Bump, BumpOutcome, Delivery, GcraOutcome, MemoryStore, QueueDepth, SlotOutcome, Store, StoreError,
    StoreResult, Ttl, shown_url,
};
use reference::sync::{Mutex, lock};
use store_postgres::{PgPool, PgRows, PgStore, PoolPolicy};
use store_redis::{BusOptions, RedisBus, RedisStore};

use crate::queries;

#[derive(Clone)]
enum Backend {
    Memory(MemoryStore),
    Redis(RedisStore),
    Postgres(PgStore),
}

/// A store on whichever backend was configured. Operations on a store made with
/// `AnyStore::records` count as database queries of the current request (#18).
#[derive(Clone)]
pub struct AnyStore {
    backend: Backend,
    counted: bool,
}

impl std::fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnyStore").field("backend", &self.kind()).field("counted", &self.counted).finish()
    }
}

impl AnyStore {
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The same store, its operations counted as database queries.
    fn records(mut self) -> Self {
        self.counted = true;
        self
    }

    fn memory(clock: Arc<dyn Clock>) -> Self {
        Self { backend: Backend::Memory(MemoryStore::new(clock)), counted: false }
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {{
        if $self.counted {
            queries::count();
        }
        match &$self.backend {
            // A network store's round trip lets other requests run between two operations;
            // the memory store yields once to keep that true, so a read-then-write race in a
            // component shows on the embedded stack as it would against a server.
            Backend::Memory($s) => {
                tokio::task::yield_now().await;
                $call.await
            }
            Backend::Redis($s) => $call.await,
            Backend::Postgres($s) => $call.await,
        }
    }};
}

impl Store for AnyStore {
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        dispatch!(self, s => s.get(key))
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> StoreResult<()> {
        dispatch!(self, s => s.set(key, value, ttl))
    }

    async fn set_nx(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<bool> {
        dispatch!(self, s => s.set_nx(key, value, ttl))
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.compare_and_set(key, expected, new, ttl))
    }

    async fn set_guarded(
        &self,
        guard_key: &str,
        expected_guard: &[u8],
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.set_guarded(guard_key, expected_guard, key, value, ttl))
    }

    async fn del(&self, key: &str) -> StoreResult<bool> {
        dispatch!(self, s => s.del(key))
    }

    async fn del_matching(&self, pattern: &str) -> StoreResult<u64> {
        dispatch!(self, s => s.del_matching(pattern))
    }

    async fn keys(&self, pattern: &str) -> StoreResult<Vec<String>> {
        dispatch!(self, s => s.keys(pattern))
    }

    async fn pttl(&self, key: &str) -> StoreResult<Ttl> {
        dispatch!(self, s => s.pttl(key))
    }

    async fn pexpire(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        dispatch!(self, s => s.pexpire(key, ttl))
    }

    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        dispatch!(self, s => s.incr_by(key, delta))
    }

    async fn incr_window(&self, key: &str, delta: i64, window: Duration) -> StoreResult<(i64, Duration)> {
        dispatch!(self, s => s.incr_window(key, delta, window))
    }

    async fn bounded_incr(&self, bumps: &[Bump<'_>]) -> StoreResult<BumpOutcome> {
        dispatch!(self, s => s.bounded_incr(bumps))
    }

    async fn gcra(&self, key: &str, interval_ns: u64, burst: u64) -> StoreResult<GcraOutcome> {
        dispatch!(self, s => s.gcra(key, interval_ns, burst))
    }

    async fn slot_acquire(
        &self,
        key: &str,
        member: &str,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<SlotOutcome> {
        dispatch!(self, s => s.slot_acquire(key, member, lease, limit))
    }

    async fn slot_release(&self, key: &str, member: &str) -> StoreResult<bool> {
        dispatch!(self, s => s.slot_release(key, member))
    }

    async fn slot_count(&self, key: &str) -> StoreResult<usize> {
        dispatch!(self, s => s.slot_count(key))
    }

    async fn slot_next_expiry(&self, key: &str) -> StoreResult<Option<Duration>> {
        dispatch!(self, s => s.slot_next_expiry(key))
    }

    async fn enqueue(&self, queue: &str, payload: Vec<u8>) -> StoreResult<u64> {
        dispatch!(self, s => s.enqueue(queue, payload))
    }

    async fn reserve(&self, queue: &str, visibility: Duration) -> StoreResult<Option<Delivery>> {
        dispatch!(self, s => s.reserve(queue, visibility))
    }

    async fn ack(&self, queue: &str, id: u64) -> StoreResult<bool> {
        dispatch!(self, s => s.ack(queue, id))
    }

    async fn requeue_expired(&self, queue: &str) -> StoreResult<usize> {
        dispatch!(self, s => s.requeue_expired(queue))
    }

    async fn queue_depth(&self, queue: &str) -> StoreResult<QueueDepth> {
        dispatch!(self, s => s.queue_depth(queue))
    }
}

/// The invalidation bus between the stack's processes.
#[derive(Clone)]
pub enum AnyBus {
    Local(Arc<LocalBus>),
    Redis(RedisBus),
}

impl InvalidationBus for AnyBus {
    fn subscribe(&self, subscriber: std::sync::Weak<dyn Subscriber>) {
        match self {
            AnyBus::Local(bus) => bus.subscribe(subscriber),
            AnyBus::Redis(bus) => bus.subscribe(subscriber),
        }
    }

    async fn publish(&self, pattern: &str) -> StoreResult<Applied> {
        match self {
            AnyBus::Local(bus) => bus.publish(pattern).await,
            AnyBus::Redis(bus) => bus.publish(pattern).await,
        }
    }
}

/// Named feeds of rows (#15): one per user and one per project.
#[derive(Clone)]
pub enum Feeds {
    Memory(Arc<Mutex<std::collections::HashMap<String, MemoryRows>>>),
    Postgres(PgStore),
}

impl std::fmt::Debug for Feeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Feeds::Memory(_) => "Feeds::Memory",
            Feeds::Postgres(_) => "Feeds::Postgres",
        })
    }
}

/// One feed; its operations count as database queries.
#[derive(Clone, Debug)]
pub enum Feed {
    Memory(MemoryRows),
    Postgres(PgRows),
}

impl Feeds {
    pub fn feed(&self, name: &str) -> Feed {
        match self {
            Feeds::Memory(map) => Feed::Memory(lock(map).entry(name.to_owned()).or_default().clone()),
            Feeds::Postgres(store) => Feed::Postgres(PgRows::feed(store, name)),
        }
    }
}

impl RowSet for Feed {
    async fn insert(&self, row: Row) -> PageResult<()> {
        queries::count();
        match self {
            Feed::Memory(rows) => rows.insert(row).await,
            Feed::Postgres(rows) => rows.insert(row).await,
        }
    }

    async fn page(&self, cursor: Option<Cursor>, limit: Option<usize>) -> PageResult<Page> {
        queries::count();
        match self {
            Feed::Memory(rows) => rows.page(cursor, limit).await,
            Feed::Postgres(rows) => rows.page(cursor, limit).await,
        }
    }
}

/// Where the stack keeps its state. `{:?}` shows the servers' URLs without their user,
/// password or parameters.
#[derive(Clone, Default)]
pub struct BackendConfig {
    /// `redis://…`; none: no Redis.
    pub redis: Option<String>,
    /// `postgres://…`; none: no PostgreSQL.
    pub database: Option<String>,
    /// Redis key prefix and PostgreSQL schema, so several stacks can share one server.
    pub namespace: String,
    /// PostgreSQL `application_name` of this process's pool.
    pub application_name: String,
    /// The Redis stores keep the one connection they opened and never open another when it is
    /// lost (the mutant `store_redis::mutants::NoReconnect`).
    pub redis_never_reconnect: bool,
    /// The Redis stores name the server in errors with its password (the mutant
    /// `store_redis::mutants::CredentialsInErrors`).
    pub redis_credentials_in_errors: bool,
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |url: &Option<String>| url.as_deref().map(reference::store::shown_url);
        f.debug_struct("BackendConfig")
            .field("redis", &shown(&self.redis))
            .field("database", &shown(&self.database))
            .field("namespace", &self.namespace)
            .field("application_name", &self.application_name)
            .field("redis_never_reconnect", &self.redis_never_reconnect)
            .field("redis_credentials_in_errors", &self.redis_credentials_in_errors)
            .finish()
    }
}

/// Why a backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot connect to Redis at {url}: {reason}")]
    Redis { url: String, reason: String },
    #[error("cannot open PostgreSQL at {url}: {reason}")]
    Postgres { url: String, reason: String },
}

/// Every store of one stack process.
#[derive(Clone)]
pub struct Backends {
    pub clock: Arc<dyn Clock>,
    /// Counters, limiters, queue and the rest of the hot shared state.
    pub kv: AnyStore,
    /// Users, tokens, projects, videos; counted as database queries.
    pub records: AnyStore,
    pub feeds: Feeds,
    pub l2: AnyStore,
    pub l3: AnyStore,
    pub bus: AnyBus,
    pub pool: Option<PgPool>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("kv", &self.kv.kind())
            .field("records", &self.records.kind())
            .field("l2", &self.l2.kind())
            .field("l3", &self.l3.kind())
            .finish_non_exhaustive()
    }
}

impl Backends {
    /// Connects to what `config` names; the memory backend for the rest.
    pub async fn open(config: &BackendConfig) -> Result<Self, OpenError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ns = &config.namespace;
        let redis = match &config.redis {
            Some(url) => {
                let shown = if config.redis_credentials_in_errors { url.clone() } else { shown_url(url) };
                let fail = |e: &dyn std::fmt::Display| OpenError::Redis {
                    url: shown.clone(),
                    reason: e.to_string(),
                };
                // The Redis clients connect synchronously, each on a runtime of its own, which
                // cannot be entered from this async context: connect on a blocking thread.
                let (at, prefix) = (url.clone(), ns.clone());
                let options = store_redis::RedisOptions {
                    reconnect: !config.redis_never_reconnect,
                    credentials_in_errors: config.redis_credentials_in_errors,
                    ..Default::default()
                };
                let (kv, cache, bus) = tokio::task::spawn_blocking(move || {
                    let kv = RedisStore::connect_with(&at, &prefix, &options)?;
                    let cache = RedisStore::connect_with(&at, &format!("{prefix}:cache"), &options)?;
                    let bus = RedisBus::connect(&at, &prefix, &BusOptions::default())?;
                    Ok::<_, store_redis::RedisStoreError>((kv, cache, bus))
                })
                .await
                .map_err(|e| fail(&e))?
                .map_err(|e| fail(&e))?;
                // Connecting is lazy: ask once so an unreachable server fails the start.
                let probe = Store::get(&kv, "stampede:probe").await;
                probe.map_err(|e| fail(&e))?;
                Some((kv, cache, bus))
            }
            None => None,
        };
        let postgres = match &config.database {
            Some(url) => {
                let fail = |e: &dyn std::fmt::Display| OpenError::Postgres {
                    url: shown_url(url),
                    reason: e.to_string(),
                };
                let pool = PgPool::new(url, &config.application_name, PoolPolicy::default())
                    .map_err(|e| fail(&e))?;
                let schema = ns.replace([':', '-', '.'], "_");
                let store = PgStore::open(pool.clone(), &schema).await.map_err(|e| fail(&e))?;
                Some((pool, store))
            }
            None => None,
        };
        let memory = || AnyStore::memory(Arc::clone(&clock));
        let redis_store = |s: &RedisStore| AnyStore { backend: Backend::Redis(s.clone()), counted: false };
        let pg_store = |s: &PgStore| AnyStore { backend: Backend::Postgres(s.clone()), counted: false };
        let kv = match (&redis, &postgres) {
            (Some((kv, _, _)), _) => redis_store(kv),
            (None, Some((_, pg))) => pg_store(pg),
            (None, None) => memory(),
        };
        let records = match (&postgres, &redis) {
            (Some((_, pg)), _) => pg_store(pg),
            (None, Some((kv, _, _))) => redis_store(kv),
            (None, None) => kv.clone(),
        }
        .records();
        let feeds = match &postgres {
            Some((_, pg)) => Feeds::Postgres(pg.clone()),
            None => Feeds::Memory(Arc::default()),
        };
        let l2 = match &redis {
            Some((_, cache, _)) => redis_store(cache),
            None => memory(),
        };
        let l3 = match &postgres {
            Some((_, pg)) => pg_store(pg),
            None => memory(),
        };
        let bus = match &redis {
            Some((_, _, bus)) => AnyBus::Redis(bus.clone()),
            None => AnyBus::Local(Arc::new(LocalBus::new())),
        };
        Ok(Self { clock, kv, records, feeds, l2, l3, bus, pool: postgres.map(|(pool, _)| pool) })
    }

    /// Deletes everything this stack's namespace holds on the servers (its Redis keys, its
    /// PostgreSQL schema); the memory backend needs nothing. For runs that made a namespace of
    /// their own and must leave nothing behind.
    pub async fn purge(&self) -> Result<(), StoreError> {
        for store in [&self.kv, &self.records, &self.l2, &self.l3] {
            match &store.backend {
                Backend::Memory(_) => {}
                Backend::Redis(s) => {
                    s.purge().await?;
                }
                Backend::Postgres(s) => s.drop_schema().await?,
            }
        }
        Ok(())
    }

    /// Where the stack keeps what a Redis restarted empty must not take with it — the import
    /// ledger, the imports' effects, the processing statuses and the upstream credential: the
    /// records when they are in PostgreSQL and the hot state in Redis; none otherwise (the memory
    /// backend, or one server holding both, which lose them together).
    pub fn durable(&self) -> Option<&AnyStore> {
        match (&self.kv.backend, &self.records.backend) {
            (Backend::Redis(_), Backend::Postgres(_)) => Some(&self.records),
            _ => None,
        }
    }

    /// One cheap round trip to every configured server: what `/readyz` asks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.kv.get("stampede:ping").await?;
        self.records.get("stampede:ping").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::BackendConfig;

    #[test]
    fn debug_shows_the_servers_not_their_passwords() {
        let config = BackendConfig {
            redis: Some("redis://:hunter2@127.0.0.1:6379/0".into()),
            database: Some("postgres://app:s3cret@db:5432/test?sslpassword=x".into()),
            ..BackendConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(
            shown.contains("redis://127.0.0.1:6379/0") && shown.contains("postgres://db:5432/test"),
            "{shown}"
        );
        for secret in ["hunter2", "s3cret", "sslpassword"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
