//! The PostgreSQL backend of `reference::store::Store`, over the seed's DB pool (component #9).
//!
//! - [`PgStore`] implements every store primitive as one statement, or one short transaction
//!   that takes its row locks in key order, on tables it creates itself in a schema of the
//!   caller's choosing ([`schema`]: numbered migrations recorded in `<schema>.migrations`).
//!   Time is the server's `now()`, so every instance of a component shares one clock.
//! - [`PgPool`] is the DB pool with the seed's policy ([`PoolPolicy::SEED`]: 10 + 20 overflow
//!   = at most 30 connections, 30 s acquire timeout, 1 h recycle, pre-ping), its connections
//!   named by `application_name` so `pg_stat_activity` can count them; [`audit`] judges the
//!   cap from the server's side, and [`mutants::UnboundedOverflow`] is the uncapped pool it
//!   catches.
//! - [`PgRows`] is the feed of `reference::pagination` (#15) on the `rows` table: keyset pages
//!   `WHERE (created, id) < ($1, $2) ORDER BY created DESC, id DESC LIMIT $3` on a
//!   `(created, id)` index.
//!
//! # How the video get-or-create (component #5) maps onto SQL
//!
//! `reference::video::Registry` keeps one row per (user, external URL) under the key
//! `video:<user>:<url>`:
//!
//! - creation is `compare_and_set(key, None, pending)`, which is
//!   `INSERT INTO kv … ON CONFLICT (key) DO UPDATE … WHERE <the row there expired>
//!   RETURNING 1`: on a live row it is `ON CONFLICT DO NOTHING`. Of C concurrent inserts the
//!   unique index lets exactly one through; the others wait on its index entry, then see the
//!   conflict and return no row, and read the winner's record instead.
//! - every transition (pending → processing, processing → completed/failed, failed →
//!   processing on a retry) is `compare_and_set(key, Some(old), new)`, which is
//!   `UPDATE kv SET value = $new WHERE key = $1 AND value = $old AND <live>`: the row lock
//!   serialises concurrent updates, and PostgreSQL re-evaluates the `WHERE` of a waiting
//!   update on the row the winner committed (READ COMMITTED's re-check), so the loser matches
//!   nothing and exactly one caller gets `should_process`.
//!
//! The field's `SELECT … FOR UPDATE` on a row that does not exist yet locks nothing, which is
//! why the seed's version double-creates; the insert-first form above needs no lock at all.
//!
//! # Dependencies
//!
//! - `tokio-postgres` + `deadpool-postgres` rather than sqlx: a fraction of the build time on
//!   a 2-core machine, no compile-time query checking to set up, and deadpool's `max_size`,
//!   wait timeout, recycle hook and verified recycling map one to one onto SQLAlchemy's
//!   `QueuePool` options the seed uses (see [`pool`]).
//! - `tokio`: the pool owns a small multi-thread runtime that drives the connections, so the
//!   store's futures can be awaited from anywhere, including `reference::sync::block_on` on
//!   plain threads (the contention suites).

pub mod audit;
pub mod mutants;
pub mod pool;
mod rows;
pub mod schema;
mod store;

pub use pool::{PgPool, PoolError, PoolPolicy};
pub use rows::PgRows;
pub use store::{OpenError, PgStore};

/// A database error with the server's message when there is one (`tokio_postgres::Error`'s
/// own `Display` says only "db error").
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            // The cause ("connection refused", …) is in the source chain, not in Display.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}
