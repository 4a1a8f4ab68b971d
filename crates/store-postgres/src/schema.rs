//! The store's tables, created by the program itself: numbered migrations, each applied once
//! per schema and recorded in `<schema>.migrations`, under an advisory lock so that several
//! instances starting together do not race each other's `CREATE … IF NOT EXISTS`.

use tokio_postgres::Client;

/// The migrations in order; `{s}` is the quoted schema name. Never edit one that shipped: add
/// the next.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
    -- Strings and counters. A counter is its decimal text, so `get` returns what Redis would.
    -- Expired rows are invisible to every statement and overwritten or swept lazily.
    CREATE TABLE IF NOT EXISTS {s}.kv (
        key        text PRIMARY KEY,
        value      bytea,
        expires_at timestamptz NULL
    );
    CREATE INDEX IF NOT EXISTS kv_expires_at ON {s}.kv (expires_at) WHERE expires_at IS NOT NULL;
    -- Bounded sets of expiring members (WebSocket slots, sliding logs).
    CREATE TABLE IF NOT EXISTS {s}.slots (
        key       text NOT NULL,
        member    text NOT NULL,
        lease_end timestamptz NOT NULL,
        PRIMARY KEY (key, member)
    );
    -- Reliable queues: a task is ready while `in_flight_until` is NULL. Ready tasks are taken
    -- by `head DESC, id`: enqueued ones have head 0, each requeue pass a higher head, so
    -- redelivered tasks go back to the front of the queue in their original order.
    CREATE SEQUENCE IF NOT EXISTS {s}.requeue_pass;
    CREATE TABLE IF NOT EXISTS {s}.tasks (
        id              bigserial PRIMARY KEY,
        queue           text NOT NULL,
        payload         bytea NOT NULL,
        attempt         integer NOT NULL DEFAULT 0,
        head            bigint NOT NULL DEFAULT 0,
        in_flight_until timestamptz NULL
    );
    CREATE INDEX IF NOT EXISTS tasks_ready ON {s}.tasks (queue, head DESC, id) WHERE in_flight_until IS NULL;
    CREATE INDEX IF NOT EXISTS tasks_in_flight ON {s}.tasks (queue, in_flight_until)
        WHERE in_flight_until IS NOT NULL;
    "#,
    ),
    (
        2,
        r#"
    -- Feeds served a page at a time (reference::pagination, #15): newest first by
    -- (created DESC, id DESC), keyset pages `WHERE (created, id) < ($c, $i)`, which the
    -- (created, id) index serves backwards with no sort.
    CREATE TABLE IF NOT EXISTS {s}.rows (
        id      bigint PRIMARY KEY,
        created bigint NOT NULL,
        payload bytea NOT NULL
    );
    CREATE INDEX IF NOT EXISTS rows_created_id ON {s}.rows (created, id);
    "#,
    ),
    (
        3,
        r#"
    -- Several feeds in one table (one per user, one per project in the stack): a row's id is
    -- unique within its feed, and every page reads one feed through (feed, created, id).
    ALTER TABLE {s}.rows ADD COLUMN IF NOT EXISTS feed text NOT NULL DEFAULT '';
    ALTER TABLE {s}.rows DROP CONSTRAINT IF EXISTS rows_pkey;
    ALTER TABLE {s}.rows ADD PRIMARY KEY (feed, id);
    DROP INDEX IF EXISTS {s}.rows_created_id;
    CREATE INDEX IF NOT EXISTS rows_feed_created_id ON {s}.rows (feed, created, id);
    "#,
    ),
];

/// The latest migration's number.
pub const VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// `name` as a quoted SQL identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Brings `schema` up to [`VERSION`]; the migrations it applied.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<Vec<i32>, tokio_postgres::Error> {
    let s = quote(schema);
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('stampede-migrations:' || $1, 0))", &[&schema])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await?;
    let applied: Vec<i32> = tx
        .query(&format!("SELECT version FROM {s}.migrations"), &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut ran = Vec::new();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(&sql.replace("{s}", &s)).await?;
        tx.execute(&format!("INSERT INTO {s}.migrations (version) VALUES ($1)"), &[version]).await?;
        ran.push(*version);
    }
    tx.commit().await?;
    Ok(ran)
}
