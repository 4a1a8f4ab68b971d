//! Connecting per test under its own key prefix, cleaning up, and reading raw keys.

use std::future::Future;

use redis::AsyncCommands;
use reference::sync::block_on;
use store_redis::RedisStore;

pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A store under a prefix of its own; every key under the prefix is deleted on drop.
pub(crate) struct Rig {
    pub store: RedisStore,
}

/// Opens a store for `test`, or `None` (after a notice) when Redis is unreachable outside CI.
pub(crate) fn rig(test: &str) -> Option<Rig> {
    let prefix = format!("stampede-test:{test}:{}", std::process::id());
    match RedisStore::connect(&redis_url(), &prefix) {
        Ok(store) => {
            let rig = Rig { store };
            rig.clear();
            Some(rig)
        }
        Err(e) => {
            skip("redis", &e);
            None
        }
    }
}

/// Runs `op` on the store's runtime, where the raw connection's futures must run.
pub(crate) fn on_runtime<T, F>(store: &RedisStore, op: F) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    block_on(store.runtime().spawn(op)).expect("task on the store's runtime")
}

impl Rig {
    /// Every raw Redis key of this store (the queues' own keys included) with its PTTL.
    pub(crate) fn raw_keys(&self) -> Vec<(String, i64)> {
        self.try_raw_keys().expect("scan the store's keys")
    }

    fn try_raw_keys(&self) -> redis::RedisResult<Vec<(String, i64)>> {
        let (mut conn, pattern) = (self.store.connection(), self.store.all_keys_pattern());
        on_runtime(&self.store, async move {
            let mut keys: Vec<String> = Vec::new();
            let options = redis::ScanOptions::default().with_pattern(pattern).with_count(1_000);
            let mut found = conn.scan_options::<String>(options).await?;
            while let Some(key) = found.next_item().await {
                keys.push(key?);
            }
            drop(found);
            keys.sort();
            keys.dedup();
            let mut out = Vec::new();
            for key in keys {
                let ttl: i64 = conn.pttl(&key).await?;
                out.push((key, ttl));
            }
            Ok(out)
        })
    }

    /// Deletes every key of this store; errors are ignored (it also runs while unwinding).
    pub(crate) fn clear(&self) {
        let Ok(keys) = self.try_raw_keys() else { return };
        let mut conn = self.store.connection();
        on_runtime(&self.store, async move {
            for chunk in keys.chunks(500) {
                let names: Vec<&String> = chunk.iter().map(|(k, _)| k).collect();
                let _: redis::RedisResult<()> = conn.del(names).await;
            }
        });
    }
}

impl std::ops::Deref for Rig {
    type Target = RedisStore;

    fn deref(&self) -> &RedisStore {
        &self.store
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Opens the test's rig or returns from the test (outside CI, when Redis is unreachable).
#[macro_export]
macro_rules! rig_or_skip {
    ($name:expr) => {
        match $crate::common::rig($name) {
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
