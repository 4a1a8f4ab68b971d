//! The DB pool (#9): never more server connections than the cap, a clear timeout when
//! exhausted, dead connections replaced before use, old ones recycled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reference::store::{Store, StoreError};
use reference::sync::block_on;
use store_postgres::audit::{Sampler, within_cap};
use store_postgres::mutants::UnboundedOverflow;
use store_postgres::{PgPool, PoolError, PoolPolicy};

use crate::common::{Rig, database_url, rig_on};
use crate::rig;

fn policy(pool_size: usize, max_overflow: usize) -> PoolPolicy {
    PoolPolicy { pool_size, max_overflow, acquire_timeout: Duration::from_secs(10), ..PoolPolicy::SEED }
}

/// `tasks` concurrent tasks, 10 store calls each, while a sampler counts the rig's server
/// connections; the counts seen.
fn hammer(rig: &Rig, tasks: usize) -> Vec<usize> {
    let sampler = Sampler::start(&database_url(), &rig.name, Duration::from_millis(2)).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let store = Arc::new(rig.store.clone());
    runtime.block_on(async {
        let tasks: Vec<_> = (0..tasks)
            .map(|task| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for call in 0..10 {
                        store.incr_by(&format!("hits:{}", (task + call) % 7), 1).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    // Nothing lost on the way: every increment landed.
    let expected =
        (0..tasks).flat_map(|task| (0..10).map(move |call| (task + call) % 7)).filter(|k| *k == 0).count();
    assert_eq!(block_on(rig.store.get("hits:0")).unwrap(), Some(expected.to_string().into_bytes()));
    sampler.finish().unwrap()
}

#[test]
fn seed_policy_caps_at_thirty_connections() {
    let seed = PoolPolicy::SEED;
    assert_eq!((seed.pool_size, seed.max_overflow, seed.max_connections()), (10, 20, 30));
    assert_eq!(seed.acquire_timeout, Duration::from_secs(30));
    assert_eq!(seed.recycle, Duration::from_secs(3_600));
    assert!(seed.pre_ping);
    assert_eq!(PoolPolicy::default(), seed);
}

#[test]
fn pool_never_exceeds_its_cap_under_200_concurrent_tasks() {
    let rig = rig!("cap", policy(3, 2));
    let samples = hammer(&rig, 200);
    within_cap(&rig.name, 5, &samples).unwrap();
    let peak = samples.iter().max().copied().unwrap_or(0);
    assert!(peak >= 2, "the load never used the pool: peak {peak} connections in {} samples", samples.len());
}

#[test]
fn pool_mutant_unbounded_overflow_caught_by_connection_cap_check() {
    // The same policy as the capped pool above, its overflow uncapped; 24 tasks (the server
    // allows 100 connections in all, and other tests share it).
    let Some(rig) = rig_on("unbounded", |url, name| UnboundedOverflow.pool(url, name, policy(3, 2))) else {
        return;
    };
    let samples = hammer(&rig, 24);
    let violation = within_cap(&rig.name, 5, &samples).unwrap_err();
    assert_eq!(violation.rule, "over-cap", "{violation}");
}

#[test]
fn exhausted_pool_times_out_with_a_typed_error() {
    let exhausted = PoolPolicy { acquire_timeout: Duration::from_millis(200), ..policy(1, 0) };
    let rig = rig!("exhausted", exhausted);
    let held = block_on(rig.pool().acquire()).unwrap();
    let start = Instant::now();
    let err = block_on(rig.pool().acquire()).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, PoolError::Timeout { cap: 1, .. }), "{err}");
    assert!(err.to_string().starts_with("no database connection free after 200ms"), "{err}");
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(3), "{waited:?}");
    // A store call on the exhausted pool fails the same way instead of hanging.
    match block_on(rig.store.get("k")) {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("no database connection free")),
        other => panic!("expected a pool timeout, got {other:?}"),
    }
    drop(held);
    assert_eq!(block_on(rig.store.get("k")).unwrap(), None);
}

/// The server process behind one pooled connection.
fn backend_pid(pool: &PgPool) -> i32 {
    let on_runtime = pool.clone();
    block_on(pool.spawn(async move {
        let client = on_runtime.get().await.unwrap();
        client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get::<_, i32>(0)
    }))
}

/// Runs `sql` on a connection of its own, outside every pool. (`pg_terminate_backend` with a
/// timeout returns once the backend is gone, so the kill has happened when this returns.)
fn admin(sql: &str, pid: i32) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.execute(sql, &[&pid]).await.unwrap();
    });
}

#[test]
fn connection_killed_server_side_is_replaced_before_use() {
    let rig = rig!("killed", policy(1, 0));
    let pool = rig.pool().clone();
    let killed = backend_pid(&pool);
    // Kill it while a caller holds it: that caller's next statement fails, so the kill is real.
    let held = block_on(pool.acquire()).unwrap();
    admin("SELECT pg_terminate_backend($1, 5000)", killed);
    let on_runtime = pool.clone();
    let broken = block_on(pool.spawn(async move {
        let _ = &on_runtime;
        held.query_one("SELECT 1", &[]).await.map(drop)
    }));
    assert!(broken.is_err(), "a terminated backend still answered");
    // The next caller gets a fresh connection: the dead one is pinged and dropped first.
    block_on(rig.store.set("k", b"v".to_vec(), None)).unwrap();
    let replacement = backend_pid(&pool);
    assert_ne!(replacement, killed);
    assert_eq!(block_on(rig.store.get("k")).unwrap(), Some(b"v".to_vec()));
}

#[test]
fn idle_connection_killed_server_side_does_not_fail_the_next_call() {
    let rig = rig!("killed_idle", policy(1, 0));
    let killed = backend_pid(rig.pool());
    admin("SELECT pg_terminate_backend($1, 5000)", killed);
    block_on(rig.store.set("k", b"v".to_vec(), None)).unwrap();
    assert_ne!(backend_pid(rig.pool()), killed);
}

#[test]
fn connections_older_than_the_recycle_age_are_replaced() {
    let rig = rig!("recycle", PoolPolicy { recycle: Duration::ZERO, ..policy(1, 0) });
    assert_ne!(backend_pid(rig.pool()), backend_pid(rig.pool()), "a connection past its age was reused");
    let rig = rig!("no_recycle", policy(1, 0));
    assert_eq!(backend_pid(rig.pool()), backend_pid(rig.pool()), "a young connection was not reused");
}

#[test]
fn trim_closes_the_idle_overflow() {
    let rig = rig!("trim", policy(1, 2));
    let held: Vec<_> = (0..3).map(|_| block_on(rig.pool().acquire()).unwrap()).collect();
    assert_eq!(rig.pool().open_connections(), 3);
    drop(held);
    assert_eq!(rig.pool().trim(), 2);
    assert_eq!(rig.pool().open_connections(), 1);
}
