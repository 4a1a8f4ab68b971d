//! Target profiles (`scenarios/*.toml`): how to get users and tokens from a stack, and for
//! each check the request to burst, how its answer is recognised (status, header, JSON
//! pointer) and where to read back what was stored. `docs/scenarios.md` documents the format.
//!
//! A malformed file is refused with its path, the line and column, and the field: the TOML
//! parser's error names them, and every table refuses fields it does not know, so a typo is
//! an error, never a silently ignored setting. An unknown check `kind` is an error that lists
//! the known ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A whole profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub users: UserSetup,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(rename = "check", default)]
    pub checks: Vec<Check>,
    /// What `stampede load` offers the stack (`[load]`).
    #[serde(default)]
    pub load: Option<crate::scenario::LoadScenario>,
    /// What a load run must meet (`[targets]`; seed 004's defaults without it).
    #[serde(default)]
    pub targets: crate::scenario::Targets,
    /// What `stampede report compare` counts as a regression against a baseline (`[compare]`).
    #[serde(default)]
    pub compare: Option<report::Tolerance>,
    /// How `stampede capacity` steps the load, and the users it plans for (`[capacity]`).
    #[serde(default)]
    pub capacity: Option<report::capacity::Stepping>,
}

/// How a check obtains a user and its token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSetup {
    /// The request that creates a user; `{name}` is a fresh name.
    pub create: RequestTemplate,
    /// JSON pointer to the token in its answer.
    pub token: String,
    /// A request that succeeds (2xx) only with a valid token. When given, a token is checked
    /// on every instance, and where it is unknown (instances that share no state) a user of
    /// the same name is created there: the logical user is then one account per instance.
    #[serde(default)]
    pub verify: Option<RequestTemplate>,
    /// The header the token goes in, and what precedes it there.
    #[serde(default = "default_auth_header")]
    pub header: String,
    #[serde(default = "default_auth_prefix")]
    pub prefix: String,
}

fn default_auth_header() -> String {
    "authorization".to_owned()
}

fn default_auth_prefix() -> String {
    "Bearer ".to_owned()
}

/// Burst sizes and timeouts, unless a check says otherwise.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Requests released together per burst.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Bursts per check.
    #[serde(default = "default_rounds")]
    pub rounds: usize,
    /// A request unanswered after this long is recorded as `unknown`.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            rounds: default_rounds(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

fn default_concurrency() -> usize {
    32
}

fn default_rounds() -> usize {
    3
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// One request, with `{placeholders}` in its path, header values and body strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestTemplate {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as JSON.
    #[serde(default, deserialize_with = "json_body")]
    pub body: Option<Value>,
}

fn json_body<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    let value = Option::<toml::Value>::deserialize(d)?;
    value.map(|v| serde_json::to_value(v).map_err(serde::de::Error::custom)).transpose()
}

/// How an answer is recognised: any of `status`, and, when given, the JSON value at `pointer`
/// equal to `equals`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Recognise {
    #[serde(default)]
    pub status: Vec<u16>,
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default, deserialize_with = "json_body")]
    pub equals: Option<Value>,
}

impl Recognise {
    pub fn matches(&self, status: u16, body: &Value) -> bool {
        if !self.status.is_empty() && !self.status.contains(&status) {
            return false;
        }
        match (&self.pointer, &self.equals) {
            (Some(pointer), Some(expected)) => body.pointer(pointer) == Some(expected),
            (Some(pointer), None) => body.pointer(pointer).is_some_and(|v| !v.is_null()),
            _ => true,
        }
    }
}

/// One check, by kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Check {
    RateLimit(RateLimitCheck),
    UniqueCreation(UniqueCreationCheck),
    Counter(CounterCheck),
    Merge(MergeCheck),
    Invalidation(InvalidationCheck),
    CursorWalk(CursorWalkCheck),
    QueryBudget(QueryBudgetCheck),
    Vary(VaryCheck),
    Upload(UploadCheck),
    Breaker(BreakerCheck),
    TokenRefresh(TokenRefreshCheck),
    WsConnections(WsConnectionsCheck),
    UpstreamPool(UpstreamPoolCheck),
    UsagePlan(UsagePlanCheck),
    ImportLifecycle(ImportLifecycleCheck),
}

impl Check {
    pub fn name(&self) -> &str {
        match self {
            Check::RateLimit(c) => &c.name,
            Check::UniqueCreation(c) => &c.name,
            Check::Counter(c) => &c.name,
            Check::Merge(c) => &c.name,
            Check::Invalidation(c) => &c.name,
            Check::CursorWalk(c) => &c.name,
            Check::QueryBudget(c) => &c.name,
            Check::Vary(c) => &c.name,
            Check::Upload(c) => &c.name,
            Check::Breaker(c) => &c.name,
            Check::TokenRefresh(c) => &c.name,
            Check::UpstreamPool(c) => &c.name,
            Check::UsagePlan(c) => &c.name,
            Check::WsConnections(c) => &c.name,
            Check::ImportLifecycle(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Check::RateLimit(_) => "rate-limit",
            Check::UniqueCreation(_) => "unique-creation",
            Check::Counter(_) => "counter",
            Check::Merge(_) => "merge",
            Check::Invalidation(_) => "invalidation",
            Check::CursorWalk(_) => "cursor-walk",
            Check::QueryBudget(_) => "query-budget",
            Check::Vary(_) => "vary",
            Check::Upload(_) => "upload",
            Check::Breaker(_) => "breaker",
            Check::TokenRefresh(_) => "token-refresh",
            Check::WsConnections(_) => "ws-connections",
            Check::ImportLifecycle(_) => "import-lifecycle",
            Check::UpstreamPool(_) => "upstream-pool",
            Check::UsagePlan(_) => "usage-plan",
        }
    }

    /// Whether the check drives the fake upstream through its control API.
    pub fn needs_upstream_control(&self) -> bool {
        matches!(
            self,
            Check::Breaker(_)
                | Check::TokenRefresh(_)
                | Check::ImportLifecycle(_)
                | Check::UpstreamPool(_)
                | Check::UsagePlan(_)
        )
    }

    /// Numbers a check cannot run with.
    fn validate(&self) -> Result<(), String> {
        let positive = |what: &str, value: u64| {
            if value == 0 { Err(format!("{what} must be at least 1")) } else { Ok(()) }
        };
        match self {
            Check::Breaker(c) => {
                positive("open_ms", c.open_ms)?;
                positive("trial_hold_ms", c.trial_hold_ms)?;
                positive("step_ms", c.step_ms)?;
                // NaN too.
                if c.max_rejection_ms.is_nan() || c.max_rejection_ms <= 0.0 {
                    return Err("max_rejection_ms must be above 0".to_owned());
                }
                Ok(())
            }
            Check::TokenRefresh(c) => {
                positive("period_ms", c.period_ms)?;
                positive("periods", c.periods as u64)?;
                positive("import_every_ms", c.import_every_ms)
            }
            Check::UpstreamPool(c) => {
                positive("max_connections", c.max_connections)?;
                positive("max_in_flight", c.max_in_flight)?;
                if c.max_in_flight > c.max_connections {
                    return Err(format!(
                        "max_in_flight {} must not exceed max_connections {}",
                        c.max_in_flight, c.max_connections
                    ));
                }
                if c.imports == Some(0) {
                    return Err("imports must be at least 1".to_owned());
                }
                // NaN too.
                if c.min_requests_per_connection.is_nan() || c.min_requests_per_connection <= 1.0 {
                    return Err("min_requests_per_connection must be above 1".to_owned());
                }
                Ok(())
            }
            Check::UsagePlan(c) => {
                positive("max_calls", c.max_calls)?;
                if c.used.is_empty() || c.used.len() != c.limits.len() {
                    return Err(format!(
                        "used and limits must name the same number of periods, at least one ({} and {})",
                        c.used.len(),
                        c.limits.len()
                    ));
                }
                positive("probe", c.probe as u64)
            }
            Check::WsConnections(c) => positive("limit", c.limit as u64),
            Check::ImportLifecycle(c) => {
                positive("held", c.held as u64)?;
                positive("step_ms", c.step_ms)?;
                if !(c.visibility_ms < c.hold_ms && c.hold_ms < c.time_limit_ms) {
                    return Err(format!(
                        "hold_ms {} must lie between visibility_ms {} and time_limit_ms {}: a held task \
                         must outlive its lease without reaching the hard time limit",
                        c.hold_ms, c.visibility_ms, c.time_limit_ms
                    ));
                }
                Ok(())
            }
            Check::Merge(c) => match (&c.expires, c.max_ttl_s) {
                (Some(_), None) | (None, Some(_)) => Err("expires and max_ttl_s go together".to_owned()),
                (_, Some(ttl)) => positive("max_ttl_s", ttl),
                (None, None) => Ok(()),
            },
            Check::Upload(c) => {
                let Some(memory) = &c.memory else { return Ok(()) };
                positive("memory.max_bytes", memory.max_bytes)?;
                if memory.size <= memory.max_bytes.saturating_mul(2) {
                    return Err(format!(
                        "memory.max_bytes {} must be under half of memory.size ({}), or a stack holding \
                         whole bodies could pass",
                        memory.max_bytes, memory.size
                    ));
                }
                Ok(())
            }
            Check::RateLimit(_)
            | Check::UniqueCreation(_)
            | Check::Counter(_)
            | Check::Invalidation(_)
            | Check::CursorWalk(_)
            | Check::QueryBudget(_)
            | Check::Vary(_) => Ok(()),
        }
    }
}

/// Exactly N admitted per window: C requests of one user released together, R rounds, the
/// window's limit and reset read from the answers' headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitCheck {
    pub name: String,
    /// `{seq}` is the request's number in the run.
    pub request: RequestTemplate,
    pub allowed: Recognise,
    pub limited: Recognise,
    /// Response headers with the window's limit and the seconds until it resets.
    #[serde(default = "default_limit_header")]
    pub limit_header: String,
    #[serde(default = "default_reset_header")]
    pub reset_header: String,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

fn default_limit_header() -> String {
    "ratelimit-limit".to_owned()
}

fn default_reset_header() -> String {
    "ratelimit-reset".to_owned()
}

/// Exactly one `created` and one `should_process` among C concurrent creations of one
/// resource, and the read-back finds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniqueCreationCheck {
    pub name: String,
    /// `{unique}` is the same for every request of a burst and new for each burst.
    pub request: RequestTemplate,
    pub created: Recognise,
    pub should_process: Recognise,
    /// JSON pointer to the created resource's id in the answer.
    pub id: String,
    /// `{id}` is the id read from the answers.
    pub read_back: RequestTemplate,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

/// Counter conservation (#3): C consuming requests of one user over every instance, then the
/// counter read back on every instance. Each accepted request adds `units`; the value read lies
/// between the units of the requests known accepted and of those that may have been, is the
/// same on every instance, and never passes the limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterCheck {
    pub name: String,
    /// One consuming request; `{seq}` is its number in the run, so each is distinct.
    pub request: RequestTemplate,
    /// Answers that consumed `units`.
    pub accepted: Recognise,
    /// Answers that consumed nothing (the limit reached); anything else may have consumed.
    #[serde(default)]
    pub refused: Option<Recognise>,
    /// Units one accepted request consumes.
    pub units: u64,
    /// The counter's read-out.
    pub read_back: RequestTemplate,
    /// JSON pointer to the counter in the read-back.
    pub value: String,
    /// JSON pointer to the counter's limit in the read-back, if it has one.
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

/// No lost merge (#6): C concurrent merges into one resource, each setting a field of its own,
/// then the resource read back on every instance holds every acknowledged field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeCheck {
    pub name: String,
    /// Creates the resource merged into; `{unique}` is new for each round.
    pub create: RequestTemplate,
    /// JSON pointer to the created resource's id.
    pub id: String,
    /// One merge: `{id}` is the resource, `{seq}` the request's number in its round.
    pub request: RequestTemplate,
    /// Answers that acknowledge the merge.
    pub merged: Recognise,
    /// The name of the field a merge sets, `{seq}` filled as in its request.
    pub field: String,
    /// Reads the resource back; `{id}`.
    pub read_back: RequestTemplate,
    /// JSON pointer to the object holding the fields in the read-back.
    pub fields: String,
    /// JSON pointer, in the read-back, to the seconds the resource has left (a number; null
    /// when it never expires). With it, every read-back must show a lifetime within `max_ttl_s`.
    #[serde(default)]
    pub expires: Option<String>,
    /// The longest lifetime a merged resource may have, in seconds (with `expires`).
    #[serde(default)]
    pub max_ttl_s: Option<u64>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

/// Cache invalidation seen by every instance (#14): a cached read warmed on every instance,
/// the value written, and, once the write has answered, no instance serves an older value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidationCheck {
    pub name: String,
    /// Creates the resource; `{value}` is its first value.
    pub create: RequestTemplate,
    /// JSON pointer to the created resource's id.
    pub id: String,
    /// The cached read; `{id}`.
    pub read: RequestTemplate,
    /// JSON pointer to the value in the read's answer.
    pub value: String,
    /// Changes the value to `{value}`; `{id}`.
    pub write: RequestTemplate,
    /// Answers that acknowledge the write.
    pub written: Recognise,
    /// The response header naming the cache layer that answered the read.
    #[serde(default = "default_cache_header")]
    pub cache_header: String,
    /// Its values that mean the read was not served from a cache.
    #[serde(default = "default_cache_miss")]
    pub miss: Vec<String>,
    #[serde(default)]
    pub rounds: Option<usize>,
}

fn default_cache_header() -> String {
    "x-cache".to_owned()
}

fn default_cache_miss() -> Vec<String> {
    vec!["MISS".to_owned()]
}

/// A cursor walk serves every row exactly once (#15): rows inserted, then the list walked page
/// by page while new rows are inserted; every row that existed when the walk began is served
/// once, none twice.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorWalkCheck {
    pub name: String,
    /// Inserts one row; `{unique}` is new for each row.
    pub insert: RequestTemplate,
    /// JSON pointer to the inserted row's id.
    pub id: String,
    /// The first page, its page size in the query.
    pub page: RequestTemplate,
    /// The query parameter a next page's cursor goes in.
    #[serde(default = "default_cursor_param")]
    pub cursor_param: String,
    /// JSON pointers: the page's rows, a row's id within a row, the next cursor (absent or
    /// null on the last page).
    pub items: String,
    pub item_id: String,
    pub next: String,
    /// Rows inserted before the walk.
    #[serde(default = "default_walk_rows")]
    pub rows: usize,
    #[serde(default)]
    pub rounds: Option<usize>,
}

fn default_cursor_param() -> String {
    "cursor".to_owned()
}

fn default_walk_rows() -> usize {
    30
}

/// A query budget (#18): the database queries a list request makes, as the response reports
/// them, stay within the budget and do not grow with the page size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBudgetCheck {
    pub name: String,
    /// Inserts one row; `{unique}` is new for each row.
    pub insert: RequestTemplate,
    /// The list request; `{limit}` is the page size.
    pub request: RequestTemplate,
    /// JSON pointer to the page's rows.
    pub items: String,
    #[serde(default = "default_page_sizes")]
    pub sizes: Vec<usize>,
    /// Most queries a request may make.
    #[serde(default = "default_query_budget")]
    pub budget: u64,
    /// The response header with the request's query count.
    #[serde(default = "default_queries_header")]
    pub header: String,
    /// Rows inserted first (default: the largest page size).
    #[serde(default)]
    pub rows: Option<usize>,
}

fn default_page_sizes() -> Vec<usize> {
    vec![5, 20, 100]
}

fn default_query_budget() -> u64 {
    10
}

fn default_queries_header() -> String {
    "x-db-queries".to_owned()
}

/// Compression and `Vary` (#16): a response over `min_bytes` asked for with `Accept-Encoding:
/// gzip` comes gzip-encoded, decodes to the uncompressed response's bytes and carries `Vary:
/// Accept-Encoding`; asked for without it, it comes uncompressed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaryCheck {
    pub name: String,
    /// Run `rows` times first (`{unique}` new each time) so the response is large enough.
    #[serde(default)]
    pub insert: Option<RequestTemplate>,
    #[serde(default)]
    pub rows: usize,
    /// The request whose response is compared.
    pub request: RequestTemplate,
    /// The size above which the response must be compressed.
    #[serde(default = "default_min_bytes")]
    pub min_bytes: usize,
}

fn default_min_bytes() -> usize {
    1024
}

/// Streamed uploads arrive whole (#12): bodies of several sizes, each streamed in several
/// chunkings; the answered size and SHA-256 are those of what was sent, and the metadata read
/// back on every instance agrees.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadCheck {
    pub name: String,
    /// The upload; its body is streamed by the checker.
    pub request: RequestTemplate,
    /// Body sizes in bytes.
    #[serde(default = "default_upload_sizes")]
    pub sizes: Vec<u64>,
    /// Chunk sizes the bodies are streamed in; 0 sends the body as one chunk.
    #[serde(default = "default_chunk_sizes")]
    pub chunk_sizes: Vec<usize>,
    /// JSON pointers to the upload's id, size and lowercase hex SHA-256, in the upload's answer
    /// and in the read-back.
    pub id: String,
    pub bytes: String,
    pub sha256: String,
    /// Reads the upload's metadata back; `{id}`.
    pub read_back: RequestTemplate,
    /// The memory the stack holds per upload, read from its metrics after the uploads: a
    /// streaming stack holds a chunk at a time, one that buffers holds the body.
    #[serde(default)]
    pub memory: Option<UploadMemory>,
}

/// Where a stack reports the most upload body bytes it held at once, and the bound.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadMemory {
    /// The metrics endpoint (Prometheus text), read on every instance.
    pub metrics: String,
    /// The gauge: the most upload body bytes the process has held in memory at once.
    pub metric: String,
    /// The bound: above what a streaming stack holds for the check's concurrent uploads (a
    /// socket read or two each), below half of `size`.
    pub max_bytes: u64,
    /// One more upload of this many bytes, sent alone to each instance in 64 KiB chunks before
    /// the gauge is read, so that a stack holding a whole body goes past the bound.
    #[serde(default = "default_memory_upload")]
    pub size: u64,
}

fn default_memory_upload() -> u64 {
    8 * 1024 * 1024
}

fn default_upload_sizes() -> Vec<u64> {
    vec![0, 1_000, 70_001, 1_048_583]
}

fn default_chunk_sizes() -> Vec<usize> {
    vec![0, 65_536, 997]
}

/// The upstream circuit breaker (#7), judged from the fake upstream's counts: with the
/// upstream failing, the breaker opens and calls fail fast without reaching it; after each
/// open period exactly one trial reaches it while imports keep coming; once the upstream is
/// healthy again imports complete. Needs the fake upstream's control API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerCheck {
    pub name: String,
    /// An import that makes the stack call the upstream; `{unique}` is new for every import.
    pub import: RequestTemplate,
    /// JSON pointer to the imported video's id in the import's answer.
    pub id: String,
    /// Reads the import's processing status; `{id}` is the id read from the import.
    pub status: RequestTemplate,
    /// JSON pointers to the processing state and the failure reason in the status.
    pub state: String,
    pub error: String,
    /// The states that end an import.
    #[serde(default = "default_completed")]
    pub completed: String,
    #[serde(default = "default_failed")]
    pub failed: String,
    /// Text of the failure reason when the open breaker refused the call, and when the
    /// half-open breaker refused it because the trial was in flight.
    pub open_reason: String,
    pub half_open_reason: String,
    /// The fake upstream's route the imports call (`youtube_videos`, `tiktok_video_query`).
    pub route: fake_upstream::Route,
    /// The target's breaker policy: how long it stays open.
    pub open_ms: u64,
    /// How long the upstream holds each call while the breaker is probed, so a trial is in
    /// flight long enough for other imports to arrive; below the target's trial timeout.
    #[serde(default = "default_trial_hold_ms")]
    pub trial_hold_ms: u64,
    /// One import is submitted every `step_ms`.
    #[serde(default = "default_step_ms")]
    pub step_ms: u64,
    /// The target's Prometheus endpoint, for the breaker state per instance and the rejected
    /// calls' latency; without it those are not judged.
    #[serde(default)]
    pub metrics: Option<String>,
    /// The most a rejected call may take at the 99th percentile.
    #[serde(default = "default_max_rejection_ms")]
    pub max_rejection_ms: f64,
    /// Half-open trials to observe (default: the profile's rounds).
    #[serde(default)]
    pub rounds: Option<usize>,
}

fn default_completed() -> String {
    "completed".to_owned()
}

fn default_failed() -> String {
    "failed".to_owned()
}

fn default_trial_hold_ms() -> u64 {
    1_000
}

fn default_step_ms() -> u64 {
    50
}

fn default_max_rejection_ms() -> f64 {
    5.0
}

/// Single-flight token refresh (#11), judged from the fake upstream's refresh log: one
/// refresh of the account per refresh period across every instance, no rotated refresh token
/// presented again, and no call with an expired access token while imports run. Needs the
/// fake upstream's control API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRefreshCheck {
    pub name: String,
    /// The fake upstream account whose credential the stack refreshes.
    pub account: String,
    /// The target's refresh period.
    pub period_ms: u64,
    /// Refresh periods observed.
    #[serde(default = "default_periods")]
    pub periods: usize,
    /// An import that makes the stack call the upstream; `{unique}` is new for every import.
    pub import: RequestTemplate,
    /// One import is submitted every `import_every_ms` while observing.
    #[serde(default = "default_import_every_ms")]
    pub import_every_ms: u64,
}

fn default_periods() -> usize {
    5
}

fn default_import_every_ms() -> u64 {
    250
}

/// WebSocket connections per user (#17): C connections of one user opened together over
/// every instance, at most `limit` accepted and the rest refused; once the accepted ones are
/// closed, `limit` are accepted again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsConnectionsCheck {
    pub name: String,
    /// Creates the project whose chat is joined; `{name}` is a fresh name.
    pub project: RequestTemplate,
    /// JSON pointer to the project's id in its creation's answer.
    pub project_id: String,
    /// Reads the project; `{id}` is its id. A project unknown on an instance (instances that
    /// share no state) is created there.
    pub read_project: RequestTemplate,
    /// The WebSocket handshake; `{id}` is the project's id. Sent as `ws://` to each instance.
    pub connect: RequestTemplate,
    /// The query parameter that carries the token; without it, the users' header does.
    #[serde(default)]
    pub token_param: Option<String>,
    /// Live connections allowed per user, across instances.
    pub limit: usize,
    /// The answer of a refused handshake.
    #[serde(default = "default_refused")]
    pub refused: Vec<u16>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Rounds of connect-then-close; at least two, so the second shows the slots were freed.
    #[serde(default)]
    pub rounds: Option<usize>,
}

fn default_refused() -> Vec<u16> {
    vec![429]
}

/// The import pipeline's workers (#10) and retry claims (#5), judged from the imports'
/// statuses while the fake upstream holds the calls: a task that outlives its lease has its
/// effect applied once; two deliveries of one task racing record one outcome; a task
/// abandoned at the hard time limit is redelivered and ends once the upstream answers; of C
/// concurrent re-imports of a failed video exactly one claims it. Needs the fake upstream's
/// control API, and the target's visibility timeout below its hard time limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportLifecycleCheck {
    pub name: String,
    /// An import that makes the stack call the upstream; `{unique}` is new for every video.
    pub import: RequestTemplate,
    /// JSON pointer to the imported video's id in the import's answer.
    pub id: String,
    /// How the answer that holds the claim to process the video is recognised.
    pub should_process: Recognise,
    /// Reads the import's status; `{id}` is the id read from the import.
    pub status: RequestTemplate,
    /// JSON pointer to the video's state in the status, and the states that end an import.
    pub state: String,
    #[serde(default = "default_completed")]
    pub completed: String,
    #[serde(default = "default_failed")]
    pub failed: String,
    /// JSON pointer to how many times the import's effect was applied.
    pub times_processed: String,
    /// JSON pointers to what a completion records (the upstream's metadata) and what a
    /// failure records (its reason): one attempt records one or the other.
    pub result: String,
    pub error: String,
    /// The fake upstream's route the imports call.
    pub route: fake_upstream::Route,
    /// The target's visibility timeout of a taken task, and its hard time limit per task.
    pub visibility_ms: u64,
    pub time_limit_ms: u64,
    /// Until how long after the `outlive` phase began the upstream holds its calls: between
    /// the two.
    pub hold_ms: u64,
    /// Imports per instance held together in the `outlive` phase: at least the target's
    /// workers per instance, so that none is idle when the leases expire.
    #[serde(default = "default_held")]
    pub held: usize,
    /// Concurrent re-imports of the failed video (default: the profile's concurrency).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// How often statuses and the upstream's counts are read.
    #[serde(default = "default_step_ms")]
    pub step_ms: u64,
}

fn default_held() -> usize {
    2
}

/// The pooled upstream client (#8), judged from the fake upstream's connection counts: a burst
/// of imports while the upstream holds every call, so each worker that can call is in flight at
/// once; the calls in flight and the connections open stay within the instances' caps, and the
/// connections are reused. Needs the fake upstream's control API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamPoolCheck {
    pub name: String,
    /// An import that makes the stack call the upstream; `{unique}` is new for every import.
    pub import: RequestTemplate,
    /// JSON pointer to the import's id in its answer.
    pub id: String,
    /// Reads an import's processing status; `{id}`.
    pub status: RequestTemplate,
    /// JSON pointer to the processing state in the status.
    pub state: String,
    /// The states that end an import.
    #[serde(default = "default_completed")]
    pub completed: String,
    #[serde(default = "default_failed")]
    pub failed: String,
    /// The fake upstream's route the imports call.
    pub route: fake_upstream::Route,
    /// Per instance of the target: connections open to the upstream at once, busy or idle.
    pub max_connections: u64,
    /// Per instance of the target: upstream calls in flight at once. A burst that never reaches
    /// it cannot be judged (a configuration error).
    pub max_in_flight: u64,
    /// Upstream requests per new connection, at least, over the burst.
    #[serde(default = "default_min_requests_per_connection")]
    pub min_requests_per_connection: f64,
    /// Imports in the burst (default: the profile's concurrency).
    #[serde(default)]
    pub imports: Option<usize>,
}

fn default_min_requests_per_connection() -> f64 {
    2.0
}

/// The upstream API plan (#4), Jepsen counter-style: the plan driven to its limit by
/// concurrent imports, calls granted (as `usage` reads them and as the fake upstream counts
/// them on `route`) never above the limit, and the usage read back once quiescent equal to the
/// calls the upstream saw. It exhausts the plan for the rest of the period: it must come after
/// every other check that needs the upstream, and the plan's remainder must be at most
/// `max_calls` (a configuration error otherwise). Needs the fake upstream's control API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePlanCheck {
    pub name: String,
    /// An import that makes the stack call the upstream; `{unique}` is new for every import.
    pub import: RequestTemplate,
    /// JSON pointer to the import's id in its answer.
    pub id: String,
    /// Reads an import's processing status; `{id}`.
    pub status: RequestTemplate,
    /// JSON pointer to the processing state in the status.
    pub state: String,
    #[serde(default = "default_completed")]
    pub completed: String,
    #[serde(default = "default_failed")]
    pub failed: String,
    /// Reads the plan's counters.
    pub usage: RequestTemplate,
    /// JSON pointers, in `usage`'s answer, to the calls counted in each period (`/day`,
    /// `/hour`) and, in the same order, to each period's limit.
    pub used: Vec<String>,
    pub limits: Vec<String>,
    /// The fake upstream's route the imports call.
    pub route: fake_upstream::Route,
    /// The most calls the plan may have left when the check starts: the check spends them all.
    pub max_calls: u64,
    /// Imports of the first held burst, which measures how many calls the stack grants at once;
    /// more than its import workers.
    #[serde(default = "default_probe")]
    pub probe: usize,
}

fn default_probe() -> usize {
    48
}

const PLACEHOLDERS: &[&str] = &["name", "seq", "unique", "id", "run", "value", "limit"];

impl Profile {
    /// Reads and checks the profile at `path`.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ProfileError::Read { path: path.to_owned(), source })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the profile at `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ProfileError> {
        let invalid = |message: String| ProfileError::Invalid { path: path.to_owned(), message };
        let profile: Profile =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;
        let mut names = std::collections::HashSet::new();
        for check in &profile.checks {
            if !names.insert(check.name()) {
                return Err(invalid(format!(
                    "check name {:?} is used twice; names must be unique",
                    check.name()
                )));
            }
        }
        plan_last(&profile.checks).map_err(invalid)?;
        for check in &profile.checks {
            check.validate().map_err(|e| invalid(format!("check {:?}: {e}", check.name())))?;
        }
        for (what, template) in profile.templates() {
            validate(template).map_err(|e| invalid(format!("{what}: {e}")))?;
        }
        for check in &profile.checks {
            check_parameters(check).map_err(|e| invalid(format!("check {:?}: {e}", check.name())))?;
        }
        profile.targets.validate().map_err(invalid)?;
        if let Some(compare) = &profile.compare {
            compare.validate().map_err(|e| invalid(format!("[compare] {e}")))?;
        }
        if let Some(capacity) = &profile.capacity {
            capacity.validate().map_err(|e| invalid(format!("[capacity] {e}")))?;
        }
        if let Some(load) = &profile.load {
            load.validate(&profile.targets).map_err(invalid)?;
            for (what, template) in load.templates() {
                validate_with(template, crate::scenario::LOAD_PLACEHOLDERS)
                    .map_err(|e| invalid(format!("{what}: {e}")))?;
            }
            for entry in &load.requests {
                let mut texts = Vec::new();
                entry.websocket.iter().flat_map(|ws| &ws.send).for_each(|m| collect_strings(m, &mut texts));
                texts
                    .iter()
                    .try_for_each(|text| validate_text_with(text, crate::scenario::LOAD_PLACEHOLDERS))
                    .map_err(|e| invalid(format!("load.request {:?}: websocket.send: {e}", entry.name)))?;
            }
            for (what, pointer) in [
                ("load.setup.project_id", &load.setup.project_id),
                ("load.setup.video_id", &load.setup.video_id),
            ] {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(invalid(format!("{what} {pointer:?} is not a JSON pointer")));
                }
            }
        }
        Ok(profile)
    }

    fn templates(&self) -> Vec<(String, &RequestTemplate)> {
        let mut all = vec![("users.create".to_owned(), &self.users.create)];
        if let Some(verify) = &self.users.verify {
            all.push(("users.verify".to_owned(), verify));
        }
        for check in &self.checks {
            match check {
                Check::RateLimit(c) => all.push((format!("check {:?}: request", c.name), &c.request)),
                Check::UniqueCreation(c) => {
                    all.push((format!("check {:?}: request", c.name), &c.request));
                    all.push((format!("check {:?}: read_back", c.name), &c.read_back));
                }
                Check::Counter(c) => {
                    all.push((format!("check {:?}: request", c.name), &c.request));
                    all.push((format!("check {:?}: read_back", c.name), &c.read_back));
                }
                Check::Merge(c) => {
                    all.push((format!("check {:?}: create", c.name), &c.create));
                    all.push((format!("check {:?}: request", c.name), &c.request));
                    all.push((format!("check {:?}: read_back", c.name), &c.read_back));
                }
                Check::Invalidation(c) => {
                    all.push((format!("check {:?}: create", c.name), &c.create));
                    all.push((format!("check {:?}: read", c.name), &c.read));
                    all.push((format!("check {:?}: write", c.name), &c.write));
                }
                Check::CursorWalk(c) => {
                    all.push((format!("check {:?}: insert", c.name), &c.insert));
                    all.push((format!("check {:?}: page", c.name), &c.page));
                }
                Check::QueryBudget(c) => {
                    all.push((format!("check {:?}: insert", c.name), &c.insert));
                    all.push((format!("check {:?}: request", c.name), &c.request));
                }
                Check::Vary(c) => {
                    if let Some(insert) = &c.insert {
                        all.push((format!("check {:?}: insert", c.name), insert));
                    }
                    all.push((format!("check {:?}: request", c.name), &c.request));
                }
                Check::Upload(c) => {
                    all.push((format!("check {:?}: request", c.name), &c.request));
                    all.push((format!("check {:?}: read_back", c.name), &c.read_back));
                }
                Check::Breaker(c) => {
                    all.push((format!("check {:?}: import", c.name), &c.import));
                    all.push((format!("check {:?}: status", c.name), &c.status));
                }
                Check::TokenRefresh(c) => all.push((format!("check {:?}: import", c.name), &c.import)),
                Check::UpstreamPool(c) => {
                    all.push((format!("check {:?}: import", c.name), &c.import));
                    all.push((format!("check {:?}: status", c.name), &c.status));
                }
                Check::UsagePlan(c) => {
                    all.push((format!("check {:?}: import", c.name), &c.import));
                    all.push((format!("check {:?}: status", c.name), &c.status));
                    all.push((format!("check {:?}: usage", c.name), &c.usage));
                }
                Check::ImportLifecycle(c) => {
                    all.push((format!("check {:?}: import", c.name), &c.import));
                    all.push((format!("check {:?}: status", c.name), &c.status));
                }
                Check::WsConnections(c) => {
                    all.push((format!("check {:?}: project", c.name), &c.project));
                    all.push((format!("check {:?}: read_project", c.name), &c.read_project));
                    all.push((format!("check {:?}: connect", c.name), &c.connect));
                }
            }
        }
        all
    }

    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name() == name)
    }
}

/// A `usage-plan` check exhausts the upstream plan for the rest of its period, so no check
/// that needs upstream calls may run after it, and there is at most one.
fn plan_last(checks: &[Check]) -> Result<(), String> {
    let plans: Vec<&Check> = checks.iter().filter(|c| matches!(c, Check::UsagePlan(_))).collect();
    if let [first, second, ..] = plans[..] {
        return Err(format!(
            "checks {:?} and {:?} both exhaust the upstream plan; keep one",
            first.name(),
            second.name()
        ));
    }
    let Some(plan) = checks.iter().position(|c| matches!(c, Check::UsagePlan(_))) else { return Ok(()) };
    match checks[plan + 1..].iter().find(|c| c.needs_upstream_control()) {
        Some(after) => Err(format!(
            "check {:?} exhausts the upstream plan, and {:?} after it needs upstream calls: move {:?} \
             to the end of the profile",
            checks[plan].name(),
            after.name(),
            checks[plan].name()
        )),
        None => Ok(()),
    }
}

/// Every `{placeholder}` in `template` is one the runner fills, and the method is HTTP's.
fn validate(template: &RequestTemplate) -> Result<(), String> {
    validate_with(template, PLACEHOLDERS)
}

fn validate_with(template: &RequestTemplate, known: &[&str]) -> Result<(), String> {
    let method = template.method.to_ascii_uppercase();
    if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
        return Err(format!("method {:?} is not GET, POST, PUT, PATCH or DELETE", template.method));
    }
    if !template.path.starts_with('/') {
        return Err(format!("path {:?} must start with /", template.path));
    }
    let mut texts = vec![template.path.clone()];
    texts.extend(template.headers.values().cloned());
    if let Some(body) = &template.body {
        collect_strings(body, &mut texts);
    }
    texts.iter().try_for_each(|text| validate_text_with(text, known))
}

/// Every `{placeholder}` in `text` is one the runner fills.
fn validate_text(text: &str) -> Result<(), String> {
    validate_text_with(text, PLACEHOLDERS)
}

fn validate_text_with(text: &str, known: &[&str]) -> Result<(), String> {
    for name in placeholders(text) {
        if !known.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}} in {text:?}; known: {}",
                known.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(())
}

/// The parameters of a check that no type can refuse: empty lists, zero units, pointers that
/// are not JSON pointers.
fn check_parameters(check: &Check) -> Result<(), String> {
    let pointers: Vec<(&str, &str)> = match check {
        Check::Counter(c) => {
            if c.units == 0 {
                return Err("units must be at least 1".to_owned());
            }
            let mut p = vec![("value", c.value.as_str())];
            p.extend(c.limit.as_deref().map(|l| ("limit", l)));
            p
        }
        Check::Merge(c) => {
            validate_text(&c.field).map_err(|e| format!("field: {e}"))?;
            if !c.field.contains("{seq}") {
                return Err(format!(
                    "field {:?} must contain {{seq}}: each merge sets its own field",
                    c.field
                ));
            }
            vec![("id", c.id.as_str()), ("fields", c.fields.as_str())]
        }
        Check::Invalidation(c) => vec![("id", c.id.as_str()), ("value", c.value.as_str())],
        Check::CursorWalk(c) => {
            if c.rows == 0 {
                return Err("rows must be at least 1".to_owned());
            }
            vec![("id", c.id.as_str()), ("items", &c.items), ("item_id", &c.item_id), ("next", &c.next)]
        }
        Check::QueryBudget(c) => {
            if c.sizes.len() < 2 || c.sizes.contains(&0) {
                return Err("sizes must list at least two page sizes, none 0".to_owned());
            }
            vec![("items", c.items.as_str())]
        }
        Check::Upload(c) => {
            if c.sizes.is_empty() || c.chunk_sizes.is_empty() {
                return Err("sizes and chunk_sizes must not be empty".to_owned());
            }
            vec![("id", c.id.as_str()), ("bytes", &c.bytes), ("sha256", &c.sha256)]
        }
        Check::UpstreamPool(c) => vec![("id", c.id.as_str()), ("state", &c.state)],
        Check::UsagePlan(c) => {
            let mut p = vec![("id", c.id.as_str()), ("state", &c.state)];
            p.extend(c.used.iter().map(|u| ("used", u.as_str())));
            p.extend(c.limits.iter().map(|l| ("limits", l.as_str())));
            p
        }
        Check::ImportLifecycle(c) => vec![
            ("id", c.id.as_str()),
            ("state", &c.state),
            ("times_processed", &c.times_processed),
            ("result", &c.result),
            ("error", &c.error),
        ],
        Check::RateLimit(_)
        | Check::UniqueCreation(_)
        | Check::Vary(_)
        | Check::Breaker(_)
        | Check::TokenRefresh(_)
        | Check::WsConnections(_) => Vec::new(),
    };
    for (field, pointer) in pointers {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(format!(
                "{field} {pointer:?} is not a JSON pointer: it must be empty or start with /"
            ));
        }
    }
    Ok(())
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            collect_strings(v, out)
        }),
        _ => {}
    }
}

fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// Fills `{name}` placeholders from `vars`.
pub fn fill(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// Fills every string in a JSON body, object keys included.
pub fn fill_json(value: &Value, vars: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_json(v, vars)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (fill(k, vars), fill_json(v, vars))).collect())
        }
        other => other.clone(),
    }
}
