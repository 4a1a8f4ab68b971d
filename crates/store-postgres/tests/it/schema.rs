//! What only PostgreSQL has: the migrations, and the sweep of expired rows. (Each primitive's
//! semantics are in the conformance suite, `suites.rs`, the same for every store.)

use std::time::Duration;

use reference::store::Store;
use reference::sync::block_on;

use crate::rig;

#[test]
fn migrations_are_idempotent_and_versioned() {
    let rig = rig!("migrations");
    let url = crate::common::database_url();
    let pool = store_postgres::PgPool::new(&url, &rig.name, store_postgres::PoolPolicy::SEED).unwrap();
    // Opening the same schema again, from several stores at once, applies nothing twice.
    let opened = reference::testing::burst(4, move |_| {
        block_on(store_postgres::PgStore::open(pool.clone(), pool.application_name())).is_ok()
    });
    assert!(opened.into_iter().all(|ok| ok));
    block_on(rig.store.set("k", b"v".to_vec(), None)).unwrap();
    assert_eq!(block_on(rig.store.get("k")).unwrap(), Some(b"v".to_vec()));
    assert_eq!(store_postgres::schema::VERSION, 3);
}

#[test]
fn expired_rows_are_swept_and_their_keys_taken_over() {
    let rig = rig!("sweep");
    let s = &rig.store;
    block_on(s.set("k", b"v".to_vec(), Some(Duration::from_millis(30)))).unwrap();
    block_on(s.set("kept", b"v".to_vec(), None)).unwrap();
    // The server's clock must pass the TTL: the one kind of wait these tests allow.
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(block_on(s.sweep_expired()).unwrap(), 1);
    assert_eq!(block_on(s.sweep_expired()).unwrap(), 0);
    assert_eq!(block_on(s.get("kept")).unwrap(), Some(b"v".to_vec()));
    assert!(block_on(s.compare_and_set("k", None, b"x".to_vec(), None)).unwrap());
}
