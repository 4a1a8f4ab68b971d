//! The store abstraction: the few atomic primitives the components are built from.
//!
//! Each primitive is one atomic step on the server that backs it — one Lua script or command in
//! Redis, one statement in PostgreSQL, one critical section in memory — so a component that is
//! correct on one backend is correct on all of them. The non-atomic primitives (`get`, `set`,
//! `incr_by`, `pexpire`) exist because the mutants are built from them, exactly as the field
//! code was.
//!
//! The store owns expiry time: TTLs are durations, measured by the backend's own clock (the
//! injected [`Clock`](crate::clock::Clock) for the memory store, the server's for Redis).

mod memory;

use std::future::Future;
use std::time::Duration;

pub use memory::MemoryStore;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}; is the backing service running?")]
    Unavailable(String),
    #[error("key {key} holds a value of another kind than {expected}")]
    WrongKind { key: String, expected: &'static str },
    #[error("store backend error: {0}")]
    Backend(String),
    /// An invalidation bus published `pattern` to `expected` processes and heard back from
    /// only `acked` of them in time: the others may still serve what it was meant to drop.
    #[error(
        "invalidation of {pattern} acknowledged by {acked} of {expected} processes within {waited_ms} ms; is every subscribed process alive?"
    )]
    Unacknowledged { pattern: String, acked: usize, expected: usize, waited_ms: u64 },
}

/// How long a key has left, as Redis `PTTL` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this long.
    Remaining(Duration),
}

/// One counter increment inside an all-or-nothing [`Store::bounded_incr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bump<'a> {
    pub key: &'a str,
    pub delta: i64,
    /// The increment is refused when the counter would go above this.
    pub limit: i64,
    /// Set when the increment creates the key; an existing key keeps its TTL.
    pub ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BumpOutcome {
    /// Every counter was incremented; their new values, in order.
    Applied(Vec<i64>),
    /// Nothing was incremented: bump `index` would have taken its counter from `current` over
    /// its limit.
    Refused { index: usize, current: i64 },
}

/// The result of asking for a slot in a bounded set of expiring members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotOutcome {
    /// The member was added; `held` members (it included) are live now.
    Acquired { held: usize },
    /// The member was already live; its lease was extended.
    Renewed { held: usize },
    /// The set already holds its limit of live members; nothing changed.
    Full { held: usize },
}

/// What one [`Store::gcra`] step did, in nanoseconds of the store's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraOutcome {
    pub admitted: bool,
    /// The theoretical arrival time after the step (unchanged when refused; `now` when idle).
    pub tat: u64,
    /// The store's now, at which the step was decided.
    pub now: u64,
}

/// A task handed to a consumer by [`Store::reserve`]; it stays invisible to other consumers
/// until acknowledged or until its visibility timeout passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: u64,
    pub payload: Vec<u8>,
    /// 1 on first delivery, one more on each redelivery.
    pub attempt: u32,
}

/// Depth of a reliable queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub ready: usize,
    pub in_flight: usize,
}

/// A key-value store with TTLs and the atomic primitives the components need.
///
/// Keys are plain strings; `pattern` arguments are globs where `*` matches any run of
/// characters (the subset of Redis `MATCH` syntax the components use).
pub trait Store: Send + Sync + 'static {
    /// The value at `key`; counters read as their decimal text, like Redis.
    fn get(&self, key: &str) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send;

    /// Overwrites `key`; `ttl: None` makes it persistent.
    fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Sets `key` only if it does not exist (`SET NX PX`); true if it was set.
    fn set_nx(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Replaces the value at `key` with `new` only if it currently equals `expected`
    /// (`None`: only if the key is missing); true if it was replaced.
    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Overwrites `key` with `value` (`ttl: None` makes it persistent) only if `guard_key`
    /// currently exists, live, and holds exactly `expected_guard`; a missing or expired guard
    /// refuses. True if `key` was written. One atomic step: a Lua script on Redis (`GET` the
    /// guard, compare, `SET … PX`, both keys under the store's prefix and so in one cluster
    /// slot); on PostgreSQL one statement that reads the guard row `FOR SHARE` and writes the
    /// key only when it matched, so a concurrent write of the guard either commits first and
    /// is seen, or waits for this statement; in memory one critical section.
    ///
    /// A write fenced by a token another writer replaces: the multi-layer cache promotes into
    /// its L2 only under the invalidation epoch it read before reading L3.
    fn set_guarded(
        &self,
        guard_key: &str,
        expected_guard: &[u8],
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Deletes `key`; true if it existed.
    fn del(&self, key: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Deletes every key matching `pattern`; how many there were.
    fn del_matching(&self, pattern: &str) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Every live key matching `pattern`, in no particular order.
    fn keys(&self, pattern: &str) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    fn pttl(&self, key: &str) -> impl Future<Output = StoreResult<Ttl>> + Send;

    /// Sets the TTL of an existing key; false if the key is missing.
    fn pexpire(&self, key: &str, ttl: Duration) -> impl Future<Output = StoreResult<bool>> + Send;

    /// `INCRBY`: creates a missing key at 0 with no TTL.
    fn incr_by(&self, key: &str, delta: i64) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Increments `key` and, when this creates it, gives it `window` to live — one atomic step.
    /// Returns the new count and the time left before the key (the window) expires.
    fn incr_window(
        &self,
        key: &str,
        delta: i64,
        window: Duration,
    ) -> impl Future<Output = StoreResult<(i64, Duration)>> + Send;

    /// Increments every counter in `bumps` if none would pass its limit, else none of them.
    fn bounded_incr(&self, bumps: &[Bump<'_>]) -> impl Future<Output = StoreResult<BumpOutcome>> + Send;

    /// One step of the generic cell rate algorithm on the theoretical arrival time (TAT) at
    /// `key`, at the store's now: admitted iff `max(TAT, now) + interval - now <= burst *
    /// interval`, and then the TAT becomes `max(TAT, now) + interval`, with a TTL until it passes
    /// (rounded up to the ms) so idle keys vanish. A missing key is an idle one. Times in
    /// nanoseconds. One Lua script on Redis (`TIME`, `GET`, `SET PX`), so callers on several
    /// instances share the server's clock.
    fn gcra(
        &self,
        key: &str,
        interval_ns: u64,
        burst: u64,
    ) -> impl Future<Output = StoreResult<GcraOutcome>> + Send;

    /// Adds `member` to the bounded set at `key` with a lease of `lease` if fewer than `limit`
    /// members are live; a live member's lease is renewed instead. Expired members do not count.
    fn slot_acquire(
        &self,
        key: &str,
        member: &str,
        lease: Duration,
        limit: usize,
    ) -> impl Future<Output = StoreResult<SlotOutcome>> + Send;

    /// Removes `member` from the set at `key`; true if it was live.
    fn slot_release(&self, key: &str, member: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// How many members of the set at `key` are live.
    fn slot_count(&self, key: &str) -> impl Future<Output = StoreResult<usize>> + Send;

    /// How long until the earliest lease among the live members of the set at `key` ends;
    /// `None` when no member is live. One read: on Redis, where the set is a sorted set scored
    /// by lease deadline, a Lua script that drops the expired members and returns the first
    /// score (`ZRANGE key 0 0 WITHSCORES`) minus the server's `TIME`; on PostgreSQL,
    /// `SELECT min(lease_end) - now() FROM slots WHERE key = $1 AND lease_end > now()`.
    fn slot_next_expiry(&self, key: &str) -> impl Future<Output = StoreResult<Option<Duration>>> + Send;

    /// Appends a task to `queue`; its id.
    fn enqueue(&self, queue: &str, payload: Vec<u8>) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Takes the oldest ready task of `queue` and hides it for `visibility`.
    fn reserve(
        &self,
        queue: &str,
        visibility: Duration,
    ) -> impl Future<Output = StoreResult<Option<Delivery>>> + Send;

    /// Removes a reserved task for good; false if it was not in flight (already acknowledged,
    /// or redelivered after its visibility timeout and so owned by another delivery).
    fn ack(&self, queue: &str, id: u64) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Puts every in-flight task whose visibility timeout has passed back at the head of the
    /// queue; how many.
    fn requeue_expired(&self, queue: &str) -> impl Future<Output = StoreResult<usize>> + Send;

    fn queue_depth(&self, queue: &str) -> impl Future<Output = StoreResult<QueueDepth>> + Send;
}

/// Whether `key` matches the glob `pattern` (`*` matches any run of characters).
pub fn glob_match(pattern: &str, key: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == key;
    }
    let (first, rest) = parts.split_first().expect("split yields at least one part");
    let (last, middle) = rest.split_last().expect("pattern has a '*'");
    if !key.starts_with(first) || key.len() < first.len() + last.len() || !key.ends_with(last) {
        return false;
    }
    let mut haystack = &key[first.len()..key.len() - last.len()];
    for part in middle {
        match haystack.find(part) {
            Some(at) => haystack = &haystack[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// A backend's address as it may be shown — in an error, a log line, an answer: without its
/// user name and password. `scheme://user:password@host:port/db` reads `scheme://host:port/db`:
/// everything up to the last `@` goes (a host holds none; a password may hold `/`, `?`, `#` or
/// `@`, which some clients accept unescaped), and so does the query string, which may carry a
/// password too. Anything that is not `scheme://…` (a key=value connection string) is shown as a
/// fixed phrase: too many spellings to redact safely.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a connection string, not shown)".to_owned();
    };
    let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    let rest = rest.split_once(['?', '#']).map_or(rest, |(before, _)| before);
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::{glob_match, shown_url};

    #[test]
    fn shown_urls_carry_no_user_name_or_password() {
        assert_eq!(shown_url("redis://:s3cr@t@10.0.0.5:6379/2"), "redis://10.0.0.5:6379/2");
        assert_eq!(shown_url("redis://default:pw@host"), "redis://host");
        assert_eq!(
            shown_url("postgres://app:pw@db:5432/videos?sslmode=disable"),
            "postgres://db:5432/videos"
        );
        assert_eq!(shown_url("redis://h:1/0?password=pw"), "redis://h:1/0");
        assert_eq!(shown_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        // Passwords some clients take unescaped: with `/`, `?`, `#` or `@` in them.
        assert_eq!(shown_url("postgres://app:pa/ss@db/v"), "postgres://db/v");
        assert_eq!(shown_url("postgres://app:pa?ss@db/v"), "postgres://db/v");
        assert_eq!(shown_url("redis://:p#w@h:1"), "redis://h:1");
        assert_eq!(shown_url("redis://:p@w@h:1/0"), "redis://h:1/0");
        assert_eq!(
            shown_url("host=db user=app password = 'a b' dbname=v"),
            "(a connection string, not shown)"
        );
        assert_eq!(shown_url("pw-only"), "(a connection string, not shown)");
    }

    #[test]
    fn glob_matches_like_redis_star() {
        assert!(glob_match("project:1:*", "project:1:stats"));
        assert!(glob_match("dashboard:*:projects", "dashboard:7:projects"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*b*c", "acb"));
        assert!(!glob_match("project:1:*", "project:12:stats"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exact2"));
    }
}
