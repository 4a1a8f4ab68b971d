//! The Redis backend of [`reference::store::Store`]: every read-modify-write primitive is one
//! Lua script (EVALSHA) or one atomic command, so the components that are correct on the memory
//! store are correct across any number of processes sharing one Redis.
//!
//! # Keys
//!
//! A store is opened with a *prefix* (one per deployment, tenant or test) and maps every key a
//! component names, `k`, to `{prefix}:k`. The braces make `prefix` the key's Redis Cluster
//! hash tag, so every key of one store lives in one slot and every multi-key script
//! (`bounded_incr` over a day and an hour counter, the queue scripts over a list, a sorted set
//! and a hash) is legal on a cluster. The price is that one store's keys do not spread over
//! the cluster: spread load by opening one store per tenant. The prefix may not contain braces.
//!
//! The reliable queue `q` lives outside the components' namespace, so `keys("*")` and
//! `del_matching("*")` see exactly what they see on the memory store:
//!
//! - `{prefix}#q:q:ready` — a LIST of ready task ids, head first;
//! - `{prefix}#q:q:flight` — a ZSET of in-flight ids scored by visibility deadline (ms);
//! - `{prefix}#q:q:tasks` — a HASH with `p<id>` → payload and `a<id>` → deliveries so far;
//! - `{prefix}#ids` — the INCR counter task ids come from, shared by the store's queues.
//!
//! Queue keys carry no TTL on purpose: a reliable queue keeps a task until it is acknowledged.
//!
//! `keys` and `del_matching` walk the prefix with `SCAN … MATCH` (never `KEYS`, which blocks
//! the server), so unlike the memory store's they are not one atomic step: a key created
//! during the walk may be missed. No component relies on more than that (pattern
//! invalidation of a cache, listing connected tokens).
//!
//! # Time
//!
//! Redis's clock is the clock: TTLs are `PX`/`PEXPIRE`/`PTTL`, and lease deadlines, visibility
//! deadlines and GCRA's now come from `TIME` inside the scripts, so every instance sharing the
//! server shares one clock. A component's injected clock still names its windows and days.
//!
//! # Driving the futures
//!
//! The store owns a small multi-thread tokio runtime; the connection is created on it and its
//! driver task runs there. Every primitive is spawned onto that runtime and its
//! `JoinHandle` awaited, so the returned futures can be polled by anything — a tokio task on
//! another runtime, or `reference::sync::block_on` on a plain thread — without a tokio context.
//!
//! # Dependencies
//!
//! - `redis` (tokio, `script`): the maintained Rust client; `Script` gives EVALSHA with a
//!   SCRIPT LOAD fallback, and its multiplexed connection pipelines many concurrent callers over
//!   one socket, which is what a load harness needs.
//! - `tokio`: the runtime the `redis` client's async connection requires.
//!
//! # Reconnecting
//!
//! The connection is `redis`'s `ConnectionManager` (feature `connection-manager`, which brings
//! `backon` for its backoff and `arc-swap` for the connection it replaces): a multiplexed
//! connection that, when the server drops it (a restart, `CLIENT KILL`, a network reset),
//! is opened again in the background: three attempts at most 200 ms apart, then a new round
//! on the next command. The commands in flight when it drops fail as unavailable, and so do
//! those sent while the server is away (each within well under a second when the server
//! refuses connections; each attempt is bounded by the connect timeout when it does not
//! answer); the first after it is back succeeds. A bare
//! multiplexed connection stays dead once dropped: every later command fails until the
//! process restarts.

mod bus;
mod scripts;

pub use bus::{BusOptions, RedisBus};

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError, ScanOptions};
use reference::clock::millis;
use reference::store::{
    Bump, BumpOutcome, Delivery, GcraOutcome, QueueDepth, SlotOutcome, Store, StoreError, StoreResult, Ttl,
    glob_match, shown_url,
};

/// The Lua sources the store runs, for tools that drive the same scripts directly (the
/// benchmark runs `incr_window`'s under `redis-benchmark`).
pub mod lua {
    /// The `incr_window` script: `KEYS[1]` the counter, `ARGV` = (delta, window ms).
    pub fn incr_window() -> &'static redis::Script {
        &super::scripts::INCR_WINDOW
    }
}

/// Why a [`RedisStore`] could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    #[error("invalid redis url {url}: {reason}; use redis://host:port[/db]")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid key prefix {prefix:?}: it may not contain '{{' or '}}'; pick a plain name")]
    InvalidPrefix { prefix: String },
    #[error("cannot start the redis store's runtime: {0}; is the process out of threads?")]
    Runtime(std::io::Error),
    #[error("cannot reach redis at {url}: {reason}; is redis-server running?")]
    Unreachable { url: String, reason: String },
}

impl From<RedisStoreError> for StoreError {
    fn from(error: RedisStoreError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

/// How a [`RedisStore`] connects.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Worker threads of the store's runtime, which drives the connection.
    pub worker_threads: usize,
    pub connect_timeout: Duration,
    /// How long one command may wait for its reply before it fails as unavailable.
    pub response_timeout: Duration,
    /// Open the connection again when the server drops it (true). False is the field's bug,
    /// kept as the mutant `store_redis::mutants::NoReconnect`: one connection made at start,
    /// and once it is lost every command fails for the rest of the process's life.
    pub reconnect: bool,
    /// Name the server in errors with the URL as given, user name and password included
    /// (false: as [`reference::store::shown_url`] shows it). True is the field's bug, kept as the
    /// mutant `store_redis::mutants::CredentialsInErrors`: a 503 body tells whoever asks the
    /// Redis password.
    pub credentials_in_errors: bool,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            worker_threads: 2,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(10),
            reconnect: true,
            credentials_in_errors: false,
        }
    }
}

/// A connection that is opened again when the server drops it: three attempts at most 200 ms
/// apart (plus jitter), and a fresh round on the next command after that; each attempt
/// bounded by `connect`, each reply by `response`. Commands sent meanwhile wait for the round,
/// so it is short: with the server refusing connections a command fails within well under a
/// second instead of hanging through a long backoff (the stack's requests are answered 503,
/// not held). redis-rs hands `factor` to backon as the growth factor over a 1 s first delay,
/// so the cap is what keeps the delays short.
pub(crate) fn reconnecting(connect: Duration, response: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_factor(2)
        .set_max_delay(200)
        .set_number_of_retries(2)
        .set_connection_timeout(connect)
        .set_response_timeout(response)
}

/// A [`Store`] on one Redis server. Cloning shares the connection and the runtime.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    conn: ConnectionManager,
    /// The server as errors name it.
    url: String,
    /// `{prefix}:`, prepended to every component key.
    data: String,
    /// `{prefix}#`, prepended to the queue's own keys.
    internal: String,
    /// [`RedisOptions::reconnect`].
    reconnect: bool,
    /// Without `reconnect`: the connection was lost once, so it is gone for good.
    lost: std::sync::atomic::AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle may be dropped on one of the runtime's own threads, where a blocking
        // shutdown would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("url", &self.inner.url).field("keys", &self.inner.data).finish()
    }
}

impl RedisStore {
    /// Connects to `url` with default options; every key goes under `{prefix}:`.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, RedisStoreError> {
        Self::connect_with(url, prefix, &RedisOptions::default())
    }

    pub fn connect_with(url: &str, prefix: &str, options: &RedisOptions) -> Result<Self, RedisStoreError> {
        if prefix.contains(['{', '}']) {
            return Err(RedisStoreError::InvalidPrefix { prefix: prefix.to_owned() });
        }
        let shown = if options.credentials_in_errors { url.to_owned() } else { shown_url(url) };
        let client = redis::Client::open(url)
            .map_err(|e| RedisStoreError::InvalidUrl { url: shown.clone(), reason: e.to_string() })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            .thread_name("store-redis")
            .enable_all()
            .build()
            .map_err(RedisStoreError::Runtime)?;
        let config = reconnecting(options.connect_timeout, options.response_timeout);
        let unreachable = |reason: String| RedisStoreError::Unreachable { url: shown.clone(), reason };
        let conn = runtime.block_on(async {
            let mut conn = tokio::time::timeout(
                options.connect_timeout,
                ConnectionManager::new_with_config(client, config),
            )
            .await
            .map_err(|_| unreachable(format!("no connection within {:?}", options.connect_timeout)))?
            .map_err(|e| unreachable(e.to_string()))?;
            redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(|e| unreachable(e.to_string()))?;
            Ok::<_, RedisStoreError>(conn)
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
                conn,
                url: shown.clone(),
                data: format!("{{{prefix}}}:"),
                internal: format!("{{{prefix}}}#"),
                reconnect: options.reconnect,
                lost: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// The runtime that drives the connection, to spawn load onto (benchmarks).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.handle
    }

    /// The Redis key a component's `key` is stored at.
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.data)
    }

    /// The glob that matches every Redis key of this store, the queues' included.
    pub fn all_keys_pattern(&self) -> String {
        format!("{}*", escape_glob(self.inner.data.trim_end_matches(':')))
    }

    /// A connection to the same server, for tests and tools that inspect raw keys.
    pub fn connection(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn queue_key(&self, queue: &str, part: &str) -> String {
        format!("{}q:{queue}:{part}", self.inner.internal)
    }

    fn ids_key(&self) -> String {
        format!("{}ids", self.inner.internal)
    }

    /// Runs `op` on the store's runtime, so callers need no tokio context.
    async fn run<T, F>(&self, op: impl FnOnce(ConnectionManager) -> F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Future<Output = StoreResult<T>> + Send + 'static,
    {
        use std::sync::atomic::Ordering;
        if !self.inner.reconnect && self.inner.lost.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(format!(
                "the connection to redis at {} was lost and this store does not open another",
                self.inner.url
            )));
        }
        let task = op(self.inner.conn.clone());
        let result = match self.inner.handle.spawn(task).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Backend(format!("redis call did not finish: {e}"))),
        };
        if !self.inner.reconnect && matches!(result, Err(StoreError::Unavailable(_))) {
            self.inner.lost.store(true, Ordering::Release);
        }
        result
    }

    /// Maps a Redis error on `key` (a component key) to the store's error kinds.
    fn error(&self, key: &str, expected: &'static str) -> impl Fn(RedisError) -> StoreError + Send + 'static {
        let (key, url) = (key.to_owned(), self.inner.url.clone());
        move |e| map_error(&url, &key, expected, e)
    }

    /// Deletes every Redis key of this store, the queues' included (what
    /// [`Self::all_keys_pattern`] matches); how many. For tearing down a namespace a run made.
    pub async fn purge(&self) -> StoreResult<u64> {
        let glob = self.all_keys_pattern();
        let on_error = self.error(&glob, "a key pattern");
        self.run(move |mut conn| async move {
            let mut deleting = conn.clone();
            let mut keys = conn.scan_options::<String>(scan(glob)).await.map_err(&on_error)?;
            let (mut batch, mut deleted, mut done) = (Vec::new(), 0, false);
            while !done {
                match keys.next_item().await {
                    Some(key) => batch.push(key.map_err(&on_error)?),
                    None => done = true,
                }
                if batch.len() == SCAN_COUNT || (done && !batch.is_empty()) {
                    let n: u64 = deleting.del(std::mem::take(&mut batch)).await.map_err(&on_error)?;
                    deleted += n;
                }
            }
            Ok(deleted)
        })
        .await
    }

    /// The component keys matching `pattern`: `SCAN … MATCH` over the store's prefix, filtered
    /// again by the store's own glob (a key may be returned twice by `SCAN`; each is kept once).
    async fn scan(&self, pattern: &str) -> StoreResult<Vec<String>> {
        let glob = format!("{}{}", escape_glob(&self.inner.data), escape_glob_keep_star(pattern));
        let (data, pattern) = (self.inner.data.clone(), pattern.to_owned());
        let on_error = self.error(&pattern, "a key pattern");
        self.run(move |mut conn| async move {
            let mut keys = conn.scan_options::<String>(scan(glob)).await.map_err(&on_error)?;
            let mut found = HashSet::new();
            while let Some(key) = keys.next_item().await {
                let key = key.map_err(&on_error)?;
                if let Some(key) = key.strip_prefix(&data).filter(|k| glob_match(&pattern, k)) {
                    found.insert(key.to_owned());
                }
            }
            Ok(found.into_iter().collect())
        })
        .await
    }
}

/// Keys a `SCAN` step examines: the client's `scan_match` sends no `COUNT`, and Redis's
/// default of 10 would take a round trip per 10 keys of the whole database.
const SCAN_COUNT: usize = 1_000;

/// `SCAN … MATCH glob COUNT 1000`, walked by the client's cursor iterator.
fn scan(glob: String) -> ScanOptions {
    ScanOptions::default().with_pattern(glob).with_count(SCAN_COUNT)
}

fn map_error(url: &str, key: &str, expected: &'static str, e: RedisError) -> StoreError {
    let wrong = || StoreError::WrongKind { key: key.to_owned(), expected };
    let text = e.to_string();
    if e.code() == Some("WRONGTYPE") || text.contains("WRONGTYPE") {
        return wrong();
    }
    if e.code() == Some("NOTINT") || text.contains("not an integer") || text.contains("NOTINT") {
        return StoreError::WrongKind { key: key.to_owned(), expected: "an integer" };
    }
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return StoreError::Unavailable(format!("cannot reach redis at {url}: {e}"));
    }
    StoreError::Backend(format!("redis at {url}: {e}"))
}

/// Escapes Redis glob metacharacters so `text` matches itself.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes every metacharacter but `*`, the one the store's patterns use.
fn escape_glob_keep_star(pattern: &str) -> String {
    pattern.split('*').map(escape_glob).collect::<Vec<_>>().join("*")
}

/// A TTL as whole milliseconds, at least 1 (Redis refuses `PX 0`).
fn ms(ttl: Duration) -> u64 {
    millis(ttl).max(1)
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

impl Store for RedisStore {
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "a string"));
        self.run(move |mut conn| async move {
            redis::cmd("GET").arg(k).query_async(&mut conn).await.map_err(on_error)
        })
        .await
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> StoreResult<()> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "a string"));
        self.run(move |mut conn| async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(k).arg(value);
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ms(ttl));
            }
            cmd.query_async::<()>(&mut conn).await.map_err(on_error)
        })
        .await
    }

    async fn set_nx(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreResult<bool> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "a string"));
        self.run(move |mut conn| async move {
            let reply: Option<String> = redis::cmd("SET")
                .arg(k)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(ms(ttl))
                .query_async(&mut conn)
                .await
                .map_err(on_error)?;
            Ok(reply.is_some())
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
        let (k, on_error) = (self.redis_key(key), self.error(key, "a string"));
        let (has, expected) = match expected {
            Some(bytes) => ("1", bytes.to_vec()),
            None => ("0", Vec::new()),
        };
        let ttl = ttl.map_or(0, ms);
        self.run(move |mut conn| async move {
            let replaced: i64 = scripts::COMPARE_AND_SET
                .key(k)
                .arg(has)
                .arg(expected)
                .arg(new)
                .arg(ttl)
                .invoke_async(&mut conn)
                .await
                .map_err(on_error)?;
            Ok(replaced == 1)
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
        // Both keys under `{prefix}:`: one hash tag, so the script is legal on a cluster.
        let keys = [self.redis_key(guard_key), self.redis_key(key)];
        let on_error = self.error(guard_key, "a string");
        let (expected, ttl) = (expected_guard.to_vec(), ttl.map_or(0, ms));
        self.run(move |mut conn| async move {
            let written: i64 = scripts::SET_GUARDED
                .key(&keys[..])
                .arg(expected)
                .arg(value)
                .arg(ttl)
                .invoke_async(&mut conn)
                .await
                .map_err(on_error)?;
            Ok(written == 1)
        })
        .await
    }

    async fn del(&self, key: &str) -> StoreResult<bool> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "any"));
        self.run(move |mut conn| async move {
            let n: i64 = redis::cmd("DEL").arg(k).query_async(&mut conn).await.map_err(on_error)?;
            Ok(n > 0)
        })
        .await
    }

    async fn del_matching(&self, pattern: &str) -> StoreResult<u64> {
        let keys: Vec<String> = self.scan(pattern).await?.into_iter().map(|k| self.redis_key(&k)).collect();
        let on_error = self.error(pattern, "any");
        self.run(move |mut conn| async move {
            let mut deleted = 0;
            for chunk in keys.chunks(500) {
                let n: u64 = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await.map_err(&on_error)?;
                deleted += n;
            }
            Ok(deleted)
        })
        .await
    }

    async fn keys(&self, pattern: &str) -> StoreResult<Vec<String>> {
        self.scan(pattern).await
    }

    async fn pttl(&self, key: &str) -> StoreResult<Ttl> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "any"));
        self.run(move |mut conn| async move {
            let ms: i64 = redis::cmd("PTTL").arg(k).query_async(&mut conn).await.map_err(on_error)?;
            Ok(match ms {
                -2 => Ttl::Missing,
                -1 => Ttl::Persistent,
                ms => Ttl::Remaining(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
            })
        })
        .await
    }

    async fn pexpire(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "any"));
        self.run(move |mut conn| async move {
            let set: i64 =
                redis::cmd("PEXPIRE").arg(k).arg(ms(ttl)).query_async(&mut conn).await.map_err(on_error)?;
            Ok(set == 1)
        })
        .await
    }

    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "an integer"));
        self.run(move |mut conn| async move {
            redis::cmd("INCRBY").arg(k).arg(delta).query_async(&mut conn).await.map_err(on_error)
        })
        .await
    }

    async fn incr_window(&self, key: &str, delta: i64, window: Duration) -> StoreResult<(i64, Duration)> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "an integer"));
        self.run(move |mut conn| async move {
            let (count, left): (i64, i64) = scripts::INCR_WINDOW
                .key(k)
                .arg(delta)
                .arg(ms(window))
                .invoke_async(&mut conn)
                .await
                .map_err(on_error)?;
            Ok((count, Duration::from_millis(u64::try_from(left).unwrap_or(0))))
        })
        .await
    }

    async fn bounded_incr(&self, bumps: &[Bump<'_>]) -> StoreResult<BumpOutcome> {
        if bumps.is_empty() {
            return Ok(BumpOutcome::Applied(Vec::new()));
        }
        let keys: Vec<String> = bumps.iter().map(|b| self.redis_key(b.key)).collect();
        let args: Vec<i64> = bumps
            .iter()
            .flat_map(|b| [b.delta, b.limit, i64::try_from(ms(b.ttl)).unwrap_or(i64::MAX)])
            .collect();
        let on_error = self.error(bumps[0].key, "an integer");
        self.run(move |mut conn| async move {
            let mut invocation = scripts::BOUNDED_INCR.prepare_invoke();
            invocation.key(keys).arg(args);
            let reply: Vec<i64> = invocation.invoke_async(&mut conn).await.map_err(on_error)?;
            match reply.as_slice() {
                [1, values @ ..] => Ok(BumpOutcome::Applied(values.to_vec())),
                [0, index, current] => Ok(BumpOutcome::Refused {
                    index: usize::try_from(*index).unwrap_or(0),
                    current: *current,
                }),
                other => Err(StoreError::Backend(format!("unexpected bounded_incr reply {other:?}"))),
            }
        })
        .await
    }

    async fn gcra(&self, key: &str, interval_ns: u64, burst: u64) -> StoreResult<GcraOutcome> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "an integer"));
        let tolerance = interval_ns.saturating_mul(burst);
        self.run(move |mut conn| async move {
            let (admitted, tat, now): (i64, String, String) = scripts::GCRA
                .key(k)
                .arg(interval_ns)
                .arg(tolerance)
                .invoke_async(&mut conn)
                .await
                .map_err(on_error)?;
            let parse = |s: &str| {
                s.parse::<u64>().map_err(|_| StoreError::Backend(format!("gcra script returned {s:?}")))
            };
            Ok(GcraOutcome { admitted: admitted == 1, tat: parse(&tat)?, now: parse(&now)? })
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
        let (k, on_error) = (self.redis_key(key), self.error(key, "a slot set"));
        let member = member.to_owned();
        self.run(move |mut conn| async move {
            let (outcome, held): (i64, i64) = scripts::SLOT_ACQUIRE
                .key(k)
                .arg(member)
                .arg(ms(lease))
                .arg(limit)
                .invoke_async(&mut conn)
                .await
                .map_err(on_error)?;
            let held = count(held);
            Ok(match outcome {
                0 => SlotOutcome::Acquired { held },
                1 => SlotOutcome::Renewed { held },
                _ => SlotOutcome::Full { held },
            })
        })
        .await
    }

    async fn slot_release(&self, key: &str, member: &str) -> StoreResult<bool> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "a slot set"));
        let member = member.to_owned();
        self.run(move |mut conn| async move {
            let live: i64 =
                scripts::SLOT_RELEASE.key(k).arg(member).invoke_async(&mut conn).await.map_err(on_error)?;
            Ok(live == 1)
        })
        .await
    }

    async fn slot_count(&self, key: &str) -> StoreResult<usize> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "a slot set"));
        self.run(move |mut conn| async move {
            let n: i64 = scripts::SLOT_COUNT.key(k).invoke_async(&mut conn).await.map_err(on_error)?;
            Ok(count(n))
        })
        .await
    }

    async fn slot_next_expiry(&self, key: &str) -> StoreResult<Option<Duration>> {
        let (k, on_error) = (self.redis_key(key), self.error(key, "a slot set"));
        self.run(move |mut conn| async move {
            let left: i64 =
                scripts::SLOT_NEXT_EXPIRY.key(k).invoke_async(&mut conn).await.map_err(on_error)?;
            Ok(u64::try_from(left).ok().map(Duration::from_millis))
        })
        .await
    }

    async fn enqueue(&self, queue: &str, payload: Vec<u8>) -> StoreResult<u64> {
        let keys = [self.ids_key(), self.queue_key(queue, "ready"), self.queue_key(queue, "tasks")];
        let on_error = self.error(queue, "a queue");
        self.run(move |mut conn| async move {
            scripts::ENQUEUE.key(&keys[..]).arg(payload).invoke_async(&mut conn).await.map_err(on_error)
        })
        .await
    }

    async fn reserve(&self, queue: &str, visibility: Duration) -> StoreResult<Option<Delivery>> {
        let keys =
            [self.queue_key(queue, "ready"), self.queue_key(queue, "flight"), self.queue_key(queue, "tasks")];
        let on_error = self.error(queue, "a queue");
        self.run(move |mut conn| async move {
            let reply: Option<(u64, Vec<u8>, u32)> = scripts::RESERVE
                .key(&keys[..])
                .arg(ms(visibility))
                .invoke_async(&mut conn)
                .await
                .map_err(on_error)?;
            Ok(reply.map(|(id, payload, attempt)| Delivery { id, payload, attempt }))
        })
        .await
    }

    async fn ack(&self, queue: &str, id: u64) -> StoreResult<bool> {
        let keys = [self.queue_key(queue, "flight"), self.queue_key(queue, "tasks")];
        let on_error = self.error(queue, "a queue");
        self.run(move |mut conn| async move {
            let acked: i64 =
                scripts::ACK.key(&keys[..]).arg(id).invoke_async(&mut conn).await.map_err(on_error)?;
            Ok(acked == 1)
        })
        .await
    }

    async fn requeue_expired(&self, queue: &str) -> StoreResult<usize> {
        let keys = [self.queue_key(queue, "flight"), self.queue_key(queue, "ready")];
        let on_error = self.error(queue, "a queue");
        self.run(move |mut conn| async move {
            let n: i64 =
                scripts::REQUEUE_EXPIRED.key(&keys[..]).invoke_async(&mut conn).await.map_err(on_error)?;
            Ok(count(n))
        })
        .await
    }

    async fn queue_depth(&self, queue: &str) -> StoreResult<QueueDepth> {
        let keys = [self.queue_key(queue, "ready"), self.queue_key(queue, "flight")];
        let on_error = self.error(queue, "a queue");
        self.run(move |mut conn| async move {
            let (ready, in_flight): (i64, i64) =
                scripts::QUEUE_DEPTH.key(&keys[..]).invoke_async(&mut conn).await.map_err(on_error)?;
            Ok(QueueDepth { ready: count(ready), in_flight: count(in_flight) })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::{escape_glob, escape_glob_keep_star};

    #[test]
    fn globs_escape_everything_but_star() {
        assert_eq!(escape_glob("{a?}:[x]\\"), "{a\\?}:\\[x\\]\\\\");
        assert_eq!(escape_glob_keep_star("p:*:[v]*"), "p:*:\\[v\\]*");
    }
}
