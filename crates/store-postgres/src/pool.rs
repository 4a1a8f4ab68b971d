//! The DB pool (component #9, seed 003): `pool_size` 10 + `max_overflow` 20, a 30 s wait for a
//! connection, connections recycled after an hour, and each one pinged before it is handed out.
//!
//! SQLAlchemy's `QueuePool` is the model. Its semantics map onto `deadpool-postgres` like this:
//!
//! - `pool_size + max_overflow` is deadpool's `max_size`: the hard cap on live server
//!   connections held by one pool. deadpool keeps returned connections instead of closing the
//!   overflow ones; [`PgPool::trim`] closes idle connections beyond `pool_size`, which is what
//!   `QueuePool` does when an overflow connection is returned.
//! - `pool_timeout` is deadpool's `wait_timeout` (and bounds `create_timeout` too, so a server
//!   that does not answer cannot hang a caller either); when it passes, [`PoolError::Timeout`].
//! - `pool_recycle` is a `pre_recycle` hook that refuses a connection older than the limit, so
//!   deadpool drops it and opens a fresh one.
//! - `pool_pre_ping` is `RecyclingMethod::Verified`: deadpool recycles an idle connection when
//!   it is taken (not when it is returned), so an empty query runs on it right before use, and a
//!   connection the server killed is replaced instead of failing the caller's statement.
//!
//! The pool owns a small tokio runtime: every connection's I/O and every statement runs on its
//! worker threads, so callers may wait on the results from any executor, or from a plain
//! thread through `reference::sync::block_on`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Timeouts,
};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

/// The pool's policy, named like SQLAlchemy's `create_engine` arguments the seed sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolPolicy {
    /// Connections kept open when idle.
    pub pool_size: usize,
    /// Connections opened beyond `pool_size` under load, closed again by [`PgPool::trim`].
    pub max_overflow: usize,
    /// How long a caller waits for a connection before [`PoolError::Timeout`].
    pub acquire_timeout: Duration,
    /// Connections older than this are closed and replaced when next taken.
    pub recycle: Duration,
    /// Test each connection with an empty query before handing it out.
    pub pre_ping: bool,
}

impl PoolPolicy {
    /// Seed 003: `pool_size=10, max_overflow=20, pool_timeout=30, pool_recycle=3600,
    /// pool_pre_ping=True`.
    pub const SEED: Self = Self {
        pool_size: 10,
        max_overflow: 20,
        acquire_timeout: Duration::from_secs(30),
        recycle: Duration::from_secs(60 * 60),
        pre_ping: true,
    };

    /// The hard cap on server connections one pool holds: `pool_size + max_overflow`.
    pub fn max_connections(&self) -> usize {
        self.pool_size + self.max_overflow
    }
}

impl Default for PoolPolicy {
    fn default() -> Self {
        Self::SEED
    }
}

/// Why a connection could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(
        "no database connection free after {waited:?}: all {cap} are in use; raise the pool's max_overflow or the acquire timeout, or find the caller holding connections"
    )]
    Timeout { waited: Duration, cap: usize },
    #[error("cannot connect to postgres: {0}; is the server running and DATABASE_URL right?")]
    Connect(String),
    #[error("invalid database url {url}: {reason}; expected postgres://user@host:port/database")]
    Url { url: String, reason: String },
    #[error("cannot start the pool's runtime: {0}")]
    Runtime(String),
    #[error("the database pool is closed; build a new store")]
    Closed,
}

/// A runtime that shuts down without blocking, so a pool may be dropped anywhere, even inside
/// another tokio runtime.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A bounded pool of PostgreSQL connections with the seed's semantics. Cloning shares it.
#[derive(Clone)]
pub struct PgPool {
    pool: Pool,
    policy: PoolPolicy,
    application_name: String,
    runtime: Arc<OwnedRuntime>,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool")
            .field("policy", &self.policy)
            .field("application_name", &self.application_name)
            .finish_non_exhaustive()
    }
}

impl PgPool {
    /// A pool of connections to `url`, each announcing itself as `application_name` (so
    /// `pg_stat_activity` can count them). Opens no connection yet.
    pub fn new(url: &str, application_name: &str, policy: PoolPolicy) -> Result<Self, PoolError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            PoolError::Url { url: reference::store::shown_url(url), reason: e.to_string() }
        })?;
        config.application_name(application_name);
        config.connect_timeout(policy.acquire_timeout);
        let recycling_method =
            if policy.pre_ping { RecyclingMethod::Verified } else { RecyclingMethod::Fast };
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method });
        let recycle = policy.recycle;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("store-postgres")
            .enable_all()
            .build()
            .map_err(|e| PoolError::Runtime(e.to_string()))?;
        let pool = Pool::builder(manager)
            .max_size(policy.max_connections())
            .timeouts(Timeouts {
                wait: Some(policy.acquire_timeout),
                create: Some(policy.acquire_timeout),
                recycle: Some(policy.acquire_timeout),
            })
            .runtime(Runtime::Tokio1)
            .pre_recycle(Hook::sync_fn(move |_, metrics| {
                if metrics.age() > recycle {
                    Err(HookError::message("connection older than the pool's recycle age"))
                } else {
                    Ok(())
                }
            }))
            .build()
            .map_err(|e| PoolError::Runtime(e.to_string()))?;
        Ok(Self {
            pool,
            policy,
            application_name: application_name.to_owned(),
            runtime: Arc::new(OwnedRuntime(Some(runtime))),
        })
    }

    pub fn policy(&self) -> PoolPolicy {
        self.policy
    }

    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// Runs `future` on the pool's runtime, where connections can be taken.
    pub fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        let runtime = self.runtime.0.as_ref().expect("the runtime lives as long as the pool");
        let handle: JoinHandle<T> = runtime.spawn(future);
        async move {
            match handle.await {
                Ok(out) => out,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("the pool's runtime dropped a task: {e}"),
            }
        }
    }

    /// A connection, tested first when the policy says so; waits at most the acquire timeout.
    /// Must run on the pool's runtime (inside [`PgPool::spawn`]).
    pub async fn get(&self) -> Result<Object, PoolError> {
        use deadpool_postgres::PoolError as Dp;
        self.pool.get().await.map_err(|e| match e {
            Dp::Timeout(_) => {
                PoolError::Timeout { waited: self.policy.acquire_timeout, cap: self.policy.max_connections() }
            }
            Dp::Backend(e) => PoolError::Connect(crate::describe(&e)),
            Dp::Closed => PoolError::Closed,
            other => PoolError::Connect(other.to_string()),
        })
    }

    /// Takes a connection from any thread or executor: [`PgPool::get`] on the pool's runtime.
    pub fn acquire(&self) -> impl Future<Output = Result<Object, PoolError>> + Send + 'static {
        let pool = self.clone();
        self.spawn(async move { pool.get().await })
    }

    /// Closes idle connections beyond `pool_size` (the overflow), as `QueuePool` does when an
    /// overflow connection comes back; how many it closed.
    pub fn trim(&self) -> usize {
        let keep = self.policy.pool_size;
        let mut kept = 0;
        let before = self.pool.status().size;
        self.pool.retain(|_, _| {
            kept += 1;
            kept <= keep
        });
        before.saturating_sub(self.pool.status().size)
    }

    /// Connections open now (idle and in use), as the pool counts them.
    pub fn open_connections(&self) -> usize {
        self.pool.status().size
    }
}
