//! The components the stack runs, each either the reference implementation or, with
//! `--mutant NAME`, one of its field mutants — so that the black-box checks can be shown to
//! catch every bug through the network, the way they would catch it in a user's stack.
//!
//! The component traits return `impl Future` and are not object-safe; each slot is an enum
//! over the implementations, dispatching by `match`.

use std::sync::Arc;

use jiff::tz::TimeZone;
use reference::circuit_breaker::{self, Breaker, CallOutcome, CircuitBreaker, Permit, Rejected, State};
use reference::clock::Clock;
use reference::compression::{self, Compress, Encoding, Gzip};
use reference::daily_quota::{self, Consumption, DailyQuota, Quota, QuotaPolicy, QuotaResult};
use reference::fixed_window::{self, FixedWindow};
use reference::l1_cache::multi_layer::{LayerStats, Layered, Lookup, MultiLayer};
use reference::l1_cache::{self, Applied, Stats};
use reference::limit::{Decision, Limit, RateLimiter};
use reference::pagination::{Cursor, PageResult, RowSet};
use reference::query_budget::{self, Listed, Listing, OnePage, RowDetails};
use reference::status_tracker::{self, Fields, StatusResult, StatusTracker, Tracker};
use reference::store::{Delivery, StoreResult};
use reference::task_queue::{self, Consumer, TaskQueue};
use reference::token_refresh::{self, RefreshScheduler, Refresher, Scheduler, TickOutcome};
use reference::upload_sink::{self, Body, Meter, Sink, SinkError, Stored, Streaming, Writer};
use reference::usage_tracker::{self, Admission, Grant, Usage, UsageLimits, UsageTracker, UsageTracking};
use reference::video::{self, GetOrCreate, Registry, Video, VideoRegistry, VideoResult};
use upstream::{Upstream, UpstreamClient, UpstreamConfig};

use crate::backend::{AnyBus, AnyStore};

/// A mutant the stack can run instead of a reference component: every one is caught over the
/// network by a check of `scenarios/reference.toml` (`tests/check.rs` runs each).
///
/// Not here, because no bounded run can see them over the network, are the catalogue's
/// mutants whose bug shows only at a moment the harness cannot bring about in a stack it does
/// not own; the reference crate's tests catch them on a manual clock or in loom models:
/// - `daily_quota::mutants::UtcMidnight` and `TwentyFourHourDay`: a quota day ending at the
///   wrong instant shows only across the zone's midnight (the second only on the two DST days
///   a year), and the stack's clock is the real one;
/// - `l1_cache::mutants::UnfencedPromotion`: an L1 fill racing an invalidation between the
///   instance's fetch and its fill, a window of one store round trip that requests over the
///   network hit too rarely for a check to be reliable (the loom model explores it);
/// - `query_budget::mutants::LostIncrement`: a query count that loses concurrent queries of one
///   request, and the stack's handlers make their queries one after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutant {
    PublishGetThenSet,
    PublishIncrWithoutTtl,
    PublishExpireEveryHit,
    QuotaIncrOrSet,
    UsageCheckThenRecord,
    VideoCheckThenInsert,
    VideoSelectForUpdate,
    VideoUnconditionalUpdate,
    StatusReadModifyWrite,
    StatusMergeWithoutTtl,
    /// A client's status merges take any number of fields of any size.
    StatusUnbounded,
    BreakerHalfOpenAdmitsAll,
    CacheLocalOnlyInvalidate,
    QueueAckOnReceive,
    QueueNotIdempotent,
    RefreshNoLease,
    UpstreamClientPerRequest,
    UpstreamUncapped,
    UploadWholeBodyBuffered,
    MissingVary,
    PerRowQuery,
    /// The Redis connection is never opened again once lost (not a component: how the stack
    /// holds its connections; `OPERATIONS`).
    RedisNoReconnect,
    /// `stampede serve --instances` stops every instance when one crashes.
    StopAllOnCrash,
    /// The import pipeline keeps everything in Redis: no ledger, no redrive.
    BrokerOnly,
    /// Errors name the Redis server with its password.
    CredentialsInErrors,
    /// Connections are served as `axum::serve` serves them: no header-read or idle deadline,
    /// no connection cap, no floor on an upload's rate.
    NoDeadlines,
    /// `/metrics` labels each request by its method as the client wrote it.
    UnboundedLabels,
}

/// The failure modes of how the stack is run rather than of a component: kept as mutants, each
/// caught by the fault profile (`scenarios/faults.toml`).
pub const OPERATIONS: &[(&str, &str)] = &[
    (
        "store_redis::mutants::NoReconnect",
        "the Redis connection opened at start is never opened again once lost: every Redis-backed request fails \
         after a Redis restart or a dropped connection, and readiness never comes back",
    ),
    (
        "supervisor::mutants::StopAllOnCrash",
        "when one instance of `serve --instances` crashes, its supervisor stops the healthy ones too",
    ),
    (
        "task_queue::mutants::BrokerOnly",
        "the import pipeline keeps its tasks, their effects, the statuses and the upstream credential only in \
         Redis: a Redis restarted empty loses every import queued or in flight (never processed), the record of \
         every effect, and the rotated refresh token",
    ),
    (
        "store_redis::mutants::CredentialsInErrors",
        "errors name the Redis server by the URL as given, password included: a 503 body (`/readyz`, any \
         Redis-backed request while Redis is away) tells whoever asks the Redis password",
    ),
    (
        "server::mutants::NoDeadlines",
        "connections are served with no header-read or idle deadline, no cap and no floor on an upload's rate: \
         sockets that send nothing, half a request head or a body a few bytes a minute are held for ever, and \
         enough of them take every descriptor the process has",
    ),
    (
        "metrics::mutants::UnboundedLabels",
        "`/metrics` labels requests by their method as the client wrote it: every invented method adds a \
         histogram series, and the scrape grows without bound (83 KB to 12.3 MB after 5,000 requests)",
    ),
];

impl Mutant {
    /// Every mutant with its catalogue name (`reference::catalog`).
    pub const ALL: &[(Mutant, &str)] = &[
        (Mutant::PublishGetThenSet, "fixed_window::mutants::GetThenSet"),
        (Mutant::PublishIncrWithoutTtl, "fixed_window::mutants::IncrWithoutTtl"),
        (Mutant::PublishExpireEveryHit, "fixed_window::mutants::ExpireEveryHit"),
        (Mutant::QuotaIncrOrSet, "daily_quota::mutants::IncrOrSet"),
        (Mutant::UsageCheckThenRecord, "usage_tracker::mutants::CheckThenRecord"),
        (Mutant::VideoCheckThenInsert, "video::mutants::CheckThenInsert"),
        (Mutant::VideoSelectForUpdate, "video::mutants::SelectForUpdate"),
        (Mutant::VideoUnconditionalUpdate, "video::mutants::UnconditionalUpdate"),
        (Mutant::StatusReadModifyWrite, "status_tracker::mutants::ReadModifyWrite"),
        (Mutant::StatusMergeWithoutTtl, "status_tracker::mutants::MergeWithoutTtl"),
        (Mutant::StatusUnbounded, "status_tracker::mutants::UnboundedStatus"),
        (Mutant::BreakerHalfOpenAdmitsAll, "circuit_breaker::mutants::HalfOpenAdmitsAll"),
        (Mutant::CacheLocalOnlyInvalidate, "l1_cache::mutants::MultiLayerLocalOnly"),
        (Mutant::QueueAckOnReceive, "task_queue::mutants::AckOnReceive"),
        (Mutant::QueueNotIdempotent, "task_queue::mutants::NotIdempotent"),
        (Mutant::RefreshNoLease, "token_refresh::mutants::NoLease"),
        (Mutant::UpstreamClientPerRequest, "upstream::mutants::ClientPerRequest"),
        (Mutant::UpstreamUncapped, "upstream::mutants::Uncapped"),
        (Mutant::UploadWholeBodyBuffered, "upload_sink::mutants::WholeBodyBuffered"),
        (Mutant::MissingVary, "compression::mutants::MissingVary"),
        // The list endpoint reads each row's video.
        (Mutant::PerRowQuery, "query_budget::mutants::PerRowQuery"),
        (Mutant::RedisNoReconnect, "store_redis::mutants::NoReconnect"),
        (Mutant::StopAllOnCrash, "supervisor::mutants::StopAllOnCrash"),
        (Mutant::BrokerOnly, "task_queue::mutants::BrokerOnly"),
        (Mutant::CredentialsInErrors, "store_redis::mutants::CredentialsInErrors"),
        (Mutant::NoDeadlines, "server::mutants::NoDeadlines"),
        (Mutant::UnboundedLabels, "metrics::mutants::UnboundedLabels"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(m, _)| *m == self).map(|(_, n)| *n).unwrap_or("?")
    }

    /// The mutant named `name`: its catalogue name, or its last part (`GetThenSet`) when that
    /// names one mutant only.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::parse_among(Self::ALL, name)
    }

    fn parse_among(all: &[(Mutant, &str)], name: &str) -> Result<Self, String> {
        if let Some((m, _)) = all.iter().find(|(_, n)| *n == name) {
            return Ok(*m);
        }
        let short: Vec<_> = all.iter().filter(|(_, n)| n.rsplit("::").next() == Some(name)).collect();
        match short.as_slice() {
            [(m, _)] => Ok(*m),
            [] => Err(format!(
                "no stack mutant {name:?}; the stack can run: {}",
                all.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
            )),
            many => Err(format!(
                "{name:?} is ambiguous: {}",
                many.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// #1 the publish limiter.
pub enum Publish {
    Reference(FixedWindow<AnyStore>),
    GetThenSet(fixed_window::mutants::GetThenSet<AnyStore>),
    IncrWithoutTtl(fixed_window::mutants::IncrWithoutTtl<AnyStore>),
    ExpireEveryHit(fixed_window::mutants::ExpireEveryHit<AnyStore>),
}

impl Publish {
    pub fn new(store: AnyStore, prefix: &str, limit: Limit, mutant: Option<Mutant>) -> Self {
        let prefix = prefix.to_owned();
        match mutant {
            Some(Mutant::PublishGetThenSet) => {
                Self::GetThenSet(fixed_window::mutants::GetThenSet { store, prefix, limit })
            }
            Some(Mutant::PublishIncrWithoutTtl) => {
                Self::IncrWithoutTtl(fixed_window::mutants::IncrWithoutTtl { store, prefix, limit })
            }
            Some(Mutant::PublishExpireEveryHit) => {
                Self::ExpireEveryHit(fixed_window::mutants::ExpireEveryHit { store, prefix, limit })
            }
            _ => Self::Reference(FixedWindow::new(store, prefix, limit)),
        }
    }
}

impl RateLimiter for Publish {
    async fn check(&self, id: &str) -> StoreResult<Decision> {
        match self {
            Self::Reference(l) => l.check(id).await,
            Self::GetThenSet(l) => l.check(id).await,
            Self::IncrWithoutTtl(l) => l.check(id).await,
            Self::ExpireEveryHit(l) => l.check(id).await,
        }
    }
}

/// #3 the daily import quota.
pub enum DailyQuotaSlot {
    Reference(DailyQuota<AnyStore>),
    IncrOrSet(daily_quota::mutants::IncrOrSet<AnyStore>),
}

impl DailyQuotaSlot {
    pub fn new(
        store: AnyStore,
        clock: Arc<dyn Clock>,
        prefix: &str,
        zone: TimeZone,
        policy: QuotaPolicy,
        mutant: Option<Mutant>,
    ) -> Self {
        let prefix = prefix.to_owned();
        match mutant {
            Some(Mutant::QuotaIncrOrSet) => {
                Self::IncrOrSet(daily_quota::mutants::IncrOrSet { store, clock, prefix, zone, policy })
            }
            _ => Self::Reference(DailyQuota::new(store, clock, prefix, zone, policy)),
        }
    }
}

impl Quota for DailyQuotaSlot {
    async fn consume(&self, user: &str, units: u64) -> QuotaResult<Consumption> {
        match self {
            Self::Reference(q) => q.consume(user, units).await,
            Self::IncrOrSet(q) => q.consume(user, units).await,
        }
    }

    async fn used(&self, user: &str) -> QuotaResult<u64> {
        match self {
            Self::Reference(q) => q.used(user).await,
            Self::IncrOrSet(q) => q.used(user).await,
        }
    }
}

/// #4 the upstream API plan's usage tracker.
pub enum UsageSlot {
    Reference(UsageTracker<AnyStore>),
    CheckThenRecord(usage_tracker::mutants::CheckThenRecord<AnyStore>),
}

impl UsageSlot {
    pub fn new(store: AnyStore, clock: Arc<dyn Clock>, limits: UsageLimits, mutant: Option<Mutant>) -> Self {
        let inner = UsageTracker::new(store, clock, "usage", limits);
        match mutant {
            Some(Mutant::UsageCheckThenRecord) => {
                Self::CheckThenRecord(usage_tracker::mutants::CheckThenRecord { inner })
            }
            _ => Self::Reference(inner),
        }
    }
}

impl UsageTracking for UsageSlot {
    async fn acquire(&self) -> StoreResult<Admission> {
        match self {
            Self::Reference(u) => u.acquire().await,
            Self::CheckThenRecord(u) => u.acquire().await,
        }
    }

    async fn finish(&self, grant: &Grant, success: bool) -> StoreResult<()> {
        match self {
            Self::Reference(u) => u.finish(grant, success).await,
            Self::CheckThenRecord(u) => u.finish(grant, success).await,
        }
    }

    async fn usage(&self) -> StoreResult<Usage> {
        match self {
            Self::Reference(u) => u.usage().await,
            Self::CheckThenRecord(u) => u.usage().await,
        }
    }
}

/// #5 the video registry.
pub enum Videos {
    Reference(Registry<AnyStore>),
    CheckThenInsert(video::mutants::CheckThenInsert<AnyStore>),
    SelectForUpdate(video::mutants::SelectForUpdate<AnyStore>),
    UnconditionalUpdate(video::mutants::UnconditionalUpdate<AnyStore>),
}

impl Videos {
    pub fn new(store: AnyStore, mutant: Option<Mutant>) -> Self {
        match mutant {
            Some(Mutant::VideoCheckThenInsert) => {
                Self::CheckThenInsert(video::mutants::CheckThenInsert { store })
            }
            Some(Mutant::VideoSelectForUpdate) => {
                Self::SelectForUpdate(video::mutants::SelectForUpdate { store })
            }
            Some(Mutant::VideoUnconditionalUpdate) => {
                Self::UnconditionalUpdate(video::mutants::UnconditionalUpdate { store })
            }
            _ => Self::Reference(Registry::new(store)),
        }
    }
}

macro_rules! each_video {
    ($self:ident, $v:ident => $call:expr) => {
        match $self {
            Videos::Reference($v) => $call,
            Videos::CheckThenInsert($v) => $call,
            Videos::SelectForUpdate($v) => $call,
            Videos::UnconditionalUpdate($v) => $call,
        }
    };
}

impl VideoRegistry for Videos {
    type Store = AnyStore;

    fn store(&self) -> &AnyStore {
        each_video!(self, v => v.store())
    }

    async fn get_or_create(&self, user: &str, url: &str) -> VideoResult<GetOrCreate> {
        each_video!(self, v => v.get_or_create(user, url).await)
    }

    async fn start(&self, user: &str, url: &str) -> VideoResult<Video> {
        each_video!(self, v => v.start(user, url).await)
    }

    async fn complete(&self, user: &str, url: &str) -> VideoResult<Video> {
        each_video!(self, v => v.complete(user, url).await)
    }

    async fn fail(&self, user: &str, url: &str) -> VideoResult<Video> {
        each_video!(self, v => v.fail(user, url).await)
    }
}

/// #6 the processing-status tracker.
pub enum Statuses {
    Reference(Tracker<AnyStore>),
    ReadModifyWrite(status_tracker::mutants::ReadModifyWrite<AnyStore>),
    MergeWithoutTtl(status_tracker::mutants::MergeWithoutTtl<AnyStore>),
    Unbounded(status_tracker::mutants::UnboundedStatus<AnyStore>),
}

impl Statuses {
    pub fn new(store: AnyStore, mutant: Option<Mutant>) -> Self {
        match mutant {
            Some(Mutant::StatusReadModifyWrite) => {
                Self::ReadModifyWrite(status_tracker::mutants::ReadModifyWrite { store })
            }
            Some(Mutant::StatusMergeWithoutTtl) => {
                Self::MergeWithoutTtl(status_tracker::mutants::MergeWithoutTtl { store })
            }
            Some(Mutant::StatusUnbounded) => {
                Self::Unbounded(status_tracker::mutants::UnboundedStatus { store })
            }
            _ => Self::Reference(Tracker::new(store)),
        }
    }
}

impl StatusTracker for Statuses {
    type Store = AnyStore;

    fn store(&self) -> &AnyStore {
        match self {
            Self::Reference(t) => t.store(),
            Self::ReadModifyWrite(t) => t.store(),
            Self::MergeWithoutTtl(t) => t.store(),
            Self::Unbounded(t) => t.store(),
        }
    }

    async fn merge(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        match self {
            Self::Reference(t) => t.merge(video_id, fields).await,
            Self::ReadModifyWrite(t) => t.merge(video_id, fields).await,
            Self::MergeWithoutTtl(t) => t.merge(video_id, fields).await,
            Self::Unbounded(t) => t.merge(video_id, fields).await,
        }
    }

    async fn merge_capped(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        match self {
            Self::Reference(t) => t.merge_capped(video_id, fields).await,
            Self::ReadModifyWrite(t) => t.merge_capped(video_id, fields).await,
            Self::MergeWithoutTtl(t) => t.merge_capped(video_id, fields).await,
            Self::Unbounded(t) => t.merge_capped(video_id, fields).await,
        }
    }
}

/// #7 the upstream circuit breaker.
pub enum UpstreamBreaker {
    Reference(CircuitBreaker<AnyStore>),
    HalfOpenAdmitsAll(circuit_breaker::mutants::HalfOpenAdmitsAll<AnyStore>),
}

impl UpstreamBreaker {
    pub fn new(
        store: AnyStore,
        clock: Arc<dyn Clock>,
        policy: circuit_breaker::Policy,
        mutant: Option<Mutant>,
    ) -> Self {
        let breaker = CircuitBreaker::new(store, clock, "breaker:upstream", policy);
        match mutant {
            Some(Mutant::BreakerHalfOpenAdmitsAll) => {
                Self::HalfOpenAdmitsAll(circuit_breaker::mutants::HalfOpenAdmitsAll { breaker })
            }
            _ => Self::Reference(breaker),
        }
    }
}

impl Breaker for UpstreamBreaker {
    async fn acquire(&self) -> StoreResult<Result<Permit, Rejected>> {
        match self {
            Self::Reference(b) => b.acquire().await,
            Self::HalfOpenAdmitsAll(b) => b.acquire().await,
        }
    }

    async fn record(&self, permit: Permit, outcome: CallOutcome) -> StoreResult<()> {
        match self {
            Self::Reference(b) => b.record(permit, outcome).await,
            Self::HalfOpenAdmitsAll(b) => b.record(permit, outcome).await,
        }
    }

    async fn state(&self) -> StoreResult<State> {
        match self {
            Self::Reference(b) => b.state().await,
            Self::HalfOpenAdmitsAll(b) => b.state().await,
        }
    }
}

type Layers = MultiLayer<AnyBus, AnyStore, AnyStore>;

/// #14 the dashboard cache.
pub enum DashboardCache {
    Reference(Layers),
    LocalOnly(l1_cache::mutants::MultiLayerLocalOnly<AnyBus, AnyStore, AnyStore>),
}

impl DashboardCache {
    pub fn new(inner: Layers, mutant: Option<Mutant>) -> Self {
        match mutant {
            Some(Mutant::CacheLocalOnlyInvalidate) => {
                Self::LocalOnly(l1_cache::mutants::MultiLayerLocalOnly { inner })
            }
            _ => Self::Reference(inner),
        }
    }
}

macro_rules! each_cache {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            DashboardCache::Reference($c) => $call,
            DashboardCache::LocalOnly($c) => $call,
        }
    };
}

impl Layered for DashboardCache {
    async fn lookup(&self, key: &str) -> StoreResult<Lookup> {
        each_cache!(self, c => c.lookup(key).await)
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: std::time::Duration) -> StoreResult<()> {
        each_cache!(self, c => c.set(key, value, ttl).await)
    }

    async fn invalidate(&self, pattern: &str) -> StoreResult<Applied> {
        each_cache!(self, c => c.invalidate(pattern).await)
    }

    fn layer_stats(&self) -> LayerStats {
        each_cache!(self, c => c.layer_stats())
    }

    fn l1_stats(&self) -> Stats {
        each_cache!(self, c => c.l1_stats())
    }
}

/// #10 the import queue's consumer side.
pub enum ImportConsumer {
    Reference(TaskQueue<AnyStore>),
    AckOnReceive(task_queue::mutants::AckOnReceive<AnyStore>),
    NotIdempotent(task_queue::mutants::NotIdempotent<AnyStore>),
}

impl ImportConsumer {
    pub fn new(queue: TaskQueue<AnyStore>, mutant: Option<Mutant>) -> Self {
        match mutant {
            Some(Mutant::QueueAckOnReceive) => {
                Self::AckOnReceive(task_queue::mutants::AckOnReceive { queue })
            }
            Some(Mutant::QueueNotIdempotent) => {
                Self::NotIdempotent(task_queue::mutants::NotIdempotent { queue })
            }
            _ => Self::Reference(queue),
        }
    }
}

macro_rules! each_consumer {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            ImportConsumer::Reference($c) => $call,
            ImportConsumer::AckOnReceive($c) => $call,
            ImportConsumer::NotIdempotent($c) => $call,
        }
    };
}

impl Consumer for ImportConsumer {
    async fn take(&self) -> StoreResult<Option<Delivery>> {
        each_consumer!(self, c => c.take().await)
    }

    async fn apply(&self, delivery: &Delivery, effect: Vec<u8>) -> StoreResult<bool> {
        each_consumer!(self, c => c.apply(delivery, effect).await)
    }

    async fn ack(&self, delivery: &Delivery) -> StoreResult<bool> {
        each_consumer!(self, c => c.ack(delivery).await)
    }
}

/// #11 the token-refresh scheduler.
pub enum RefreshSlot<R> {
    Reference(RefreshScheduler<AnyStore, R>),
    NoLease(token_refresh::mutants::NoLease<AnyStore, R>),
}

impl<R: Refresher> RefreshSlot<R> {
    pub fn new(scheduler: RefreshScheduler<AnyStore, R>, mutant: Option<Mutant>) -> Self {
        match mutant {
            Some(Mutant::RefreshNoLease) => Self::NoLease(token_refresh::mutants::NoLease { scheduler }),
            _ => Self::Reference(scheduler),
        }
    }
}

impl<R: Refresher> Scheduler for RefreshSlot<R> {
    async fn tick(&self) -> StoreResult<Vec<(String, TickOutcome)>> {
        match self {
            Self::Reference(s) => s.tick().await,
            Self::NoLease(s) => s.tick().await,
        }
    }
}

/// #8 the pooled client to the upstream.
#[derive(Clone)]
pub enum UpstreamSlot {
    Reference(UpstreamClient),
    ClientPerRequest(upstream::mutants::ClientPerRequest),
    Uncapped(upstream::mutants::Uncapped),
}

impl UpstreamSlot {
    pub fn new(
        base_url: &str,
        config: UpstreamConfig,
        mutant: Option<Mutant>,
    ) -> Result<Self, upstream::Error> {
        Ok(match mutant {
            Some(Mutant::UpstreamClientPerRequest) => {
                Self::ClientPerRequest(upstream::mutants::ClientPerRequest::new(base_url, config)?)
            }
            Some(Mutant::UpstreamUncapped) => {
                Self::Uncapped(upstream::mutants::Uncapped::new(base_url, config)?)
            }
            _ => Self::Reference(UpstreamClient::new(base_url, config)?),
        })
    }
}

impl Upstream for UpstreamSlot {
    async fn send(&self, request: upstream::Request) -> Result<upstream::Reply, upstream::Error> {
        match self {
            Self::Reference(c) => c.send(request).await,
            Self::ClientPerRequest(c) => c.send(request).await,
            Self::Uncapped(c) => c.send(request).await,
        }
    }
}

/// #12 the upload sink.
pub enum UploadSinkSlot {
    Reference(Streaming),
    WholeBodyBuffered(upload_sink::mutants::WholeBodyBuffered),
}

impl UploadSinkSlot {
    pub fn new(mutant: Option<Mutant>) -> Self {
        match mutant {
            Some(Mutant::UploadWholeBodyBuffered) => {
                Self::WholeBodyBuffered(upload_sink::mutants::WholeBodyBuffered)
            }
            _ => Self::Reference(Streaming),
        }
    }
}

impl Sink for UploadSinkSlot {
    async fn store<B: Body, W: Writer>(
        &self,
        body: B,
        writer: &mut W,
        max: u64,
        meter: &Meter,
    ) -> Result<Stored, SinkError> {
        match self {
            Self::Reference(s) => s.store(body, writer, max, meter).await,
            Self::WholeBodyBuffered(s) => s.store(body, writer, max, meter).await,
        }
    }
}

/// #16 the response compression policy.
pub enum CompressionSlot {
    Reference(Gzip),
    MissingVary(compression::mutants::MissingVary),
}

impl CompressionSlot {
    pub fn new(mutant: Option<Mutant>) -> Self {
        match mutant {
            Some(Mutant::MissingVary) => Self::MissingVary(compression::mutants::MissingVary),
            _ => Self::Reference(Gzip),
        }
    }
}

impl Compress for CompressionSlot {
    fn encode(&self, accept_encoding: &[&str], response: compression::Response<'_>, body: &[u8]) -> Encoding {
        match self {
            Self::Reference(c) => c.encode(accept_encoding, response, body),
            Self::MissingVary(c) => c.encode(accept_encoding, response, body),
        }
    }
}

/// #18 the feed's list endpoint.
pub enum ListingSlot {
    Reference(OnePage),
    PerRowQuery(query_budget::mutants::PerRowQuery),
}

impl ListingSlot {
    pub fn new(mutant: Option<Mutant>) -> Self {
        match mutant {
            Some(Mutant::PerRowQuery) => Self::PerRowQuery(query_budget::mutants::PerRowQuery),
            _ => Self::Reference(OnePage),
        }
    }
}

impl Listing for ListingSlot {
    async fn list<R: RowSet, D: RowDetails>(
        &self,
        rows: &R,
        details: &D,
        cursor: Option<Cursor>,
        limit: Option<usize>,
    ) -> PageResult<Listed<D::Detail>> {
        match self {
            Self::Reference(l) => l.list(rows, details, cursor, limit).await,
            Self::PerRowQuery(l) => l.list(rows, details, cursor, limit).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mutant;

    #[test]
    fn a_mutant_is_named_by_its_catalogue_name_or_its_unambiguous_last_part() {
        for (mutant, name) in Mutant::ALL {
            assert_eq!(Mutant::parse(name), Ok(*mutant), "{name}");
            assert_eq!(mutant.name(), *name);
            let short = name.rsplit("::").next().unwrap();
            assert_eq!(Mutant::parse(short), Ok(*mutant), "{short}: every last part is unique in the stack");
        }
        let unknown = Mutant::parse("no_such").unwrap_err();
        assert!(unknown.contains("no stack mutant \"no_such\""), "{unknown}");
        assert!(Mutant::ALL.iter().all(|(_, name)| unknown.contains(name)), "{unknown}");
        // A half-qualified name is neither the catalogue name nor its last part.
        assert!(Mutant::parse("mutants::GetThenSet").is_err());
    }

    #[test]
    fn every_stack_mutant_is_named_by_its_catalogue_name() {
        for (mutant, name) in Mutant::ALL {
            assert_eq!(Mutant::parse(name), Ok(*mutant), "{name}");
            let listed = reference::catalog::COMPONENTS.iter().any(|c| c.mutants.contains(name))
                || super::OPERATIONS.iter().any(|(n, _)| n == name);
            assert!(listed, "{name} is not in the catalogue nor among the operations' mutants");
        }
    }

    #[test]
    fn a_last_part_two_mutants_share_is_refused_naming_both() {
        let all = [
            (Mutant::PublishGetThenSet, "fixed_window::mutants::GetThenSet"),
            (Mutant::QuotaIncrOrSet, "daily_quota::mutants::GetThenSet"),
        ];
        let ambiguous = Mutant::parse_among(&all, "GetThenSet").unwrap_err();
        assert!(ambiguous.contains("ambiguous"), "{ambiguous}");
        assert!(all.iter().all(|(_, name)| ambiguous.contains(name)), "{ambiguous}");
        assert_eq!(Mutant::parse_among(&all, "daily_quota::mutants::GetThenSet"), Ok(Mutant::QuotaIncrOrSet));
    }
}
