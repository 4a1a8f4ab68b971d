//! The test rig: a store in a fresh schema on the server at `DATABASE_URL`.

use std::sync::atomic::{AtomicUsize, Ordering};

use reference::sync::block_on;
use store_postgres::{PgPool, PgStore, PoolError, PoolPolicy};

pub(crate) fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A name unique to this test in this run: schemas and application names never collide
/// between tests running in parallel, nor with another run's leftovers.
pub(crate) fn unique(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("stampede_t_{}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), test)
}

/// A store in its own schema; the schema is dropped when the rig is.
pub(crate) struct Rig {
    pub store: PgStore,
    pub name: String,
}

impl Rig {
    pub(crate) fn pool(&self) -> &PgPool {
        self.store.pool()
    }
}

impl std::ops::Deref for Rig {
    type Target = PgStore;

    fn deref(&self) -> &PgStore {
        &self.store
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = block_on(self.store.drop_schema());
    }
}

/// A rig for `test` with `policy`, or `None` (after the notice) when the server is unreachable.
pub(crate) fn rig_with(test: &str, policy: PoolPolicy) -> Option<Rig> {
    rig_on(test, |url, name| PgPool::new(url, name, policy))
}

/// A rig for `test` on the pool `pool(url, application_name)` makes.
pub(crate) fn rig_on(test: &str, pool: impl FnOnce(&str, &str) -> Result<PgPool, PoolError>) -> Option<Rig> {
    let name = unique(test);
    let pool = match pool(&database_url(), &name) {
        Ok(pool) => pool,
        Err(e) => panic!("{e}"),
    };
    match block_on(PgStore::open(pool, &name)) {
        Ok(store) => Some(Rig { store, name }),
        Err(e) => {
            skip("postgres", &format_args!("unreachable at {}: {e}", database_url()));
            None
        }
    }
}

/// The pool the contention suites run on: enough connections for 16 threads to contend on
/// the server, few enough that tests running in parallel stay well within max_connections.
pub(crate) const SUITE_POOL: PoolPolicy = PoolPolicy {
    pool_size: 8,
    max_overflow: 4,
    acquire_timeout: std::time::Duration::from_secs(10),
    ..PoolPolicy::SEED
};

pub(crate) fn rig(test: &str) -> Option<Rig> {
    rig_with(test, SUITE_POOL)
}

/// `let rig = rig!("name");` returns from the test when it skips.
#[macro_export]
macro_rules! rig {
    ($test:expr) => {
        match $crate::common::rig($test) {
            Some(rig) => rig,
            None => return,
        }
    };
    ($test:expr, $policy:expr) => {
        match $crate::common::rig_with($test, $policy) {
            Some(rig) => rig,
            None => return,
        }
    };
}

/// A test that cannot run for want of `service`: under `CI=true`, a failure; otherwise a notice
/// and a line in the file `STAMPEDE_SKIPPED` names, which `ci/test` counts (and fails on).
pub(crate) fn skip(service: &str, why: &dyn std::fmt::Display) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let why = why.to_string().replace('\n', " ");
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{test}: {service}: {why} (CI=true: {service} is required; run ci/services)");
    }
    eprintln!("skipping {test}: {service}: {why} (run ci/services; CI=true fails instead)");
    if let Some(path) = std::env::var_os("STAMPEDE_SKIPPED") {
        use std::io::Write;
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open $STAMPEDE_SKIPPED");
        file.write_all(format!("{test}\t{service}: {why}\n").as_bytes())
            .expect("append to $STAMPEDE_SKIPPED");
    }
}
