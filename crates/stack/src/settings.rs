//! How the stack behaves: every limit, timeout and policy a process runs with, in one place the
//! components, workers and handlers read (nothing here reads them back).

use std::path::PathBuf;
use std::time::Duration;

use jiff::tz::TimeZone;
use reference::daily_quota::QuotaPolicy;
use reference::limit::Limit;
use reference::token_refresh;
use reference::usage_tracker::UsageLimits;
use reference::ws_session::batcher::BatchConfig;
use reference::ws_session::seed;

use crate::components::Mutant;

/// How the stack behaves; every limit the checks need to shorten is here.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This process's name in logs, leases and metrics.
    pub instance: String,
    /// The API the components are served behind.
    pub shape: Shape,
    /// #1 the third-party publish limit per user (seed: 6 a minute).
    pub publish_limit: Limit,
    /// How rate-limited answers state their window (the IETF draft's fields by default).
    pub rate_limit_headers: RateLimitHeaders,
    /// #3 the daily quota; days are local days in `quota_zone`.
    pub quota: QuotaPolicy,
    pub quota_zone: TimeZone,
    /// #4 the upstream API plan.
    pub usage: UsageLimits,
    /// #12 uploads per user per window (seed: 15 a day) and the size cap.
    pub upload_limit: Limit,
    /// Registrations per client address (an IPv6 address by its /64), across instances.
    pub registration_limit: Limit,
    pub max_upload_bytes: u64,
    /// Where upload bodies are stored.
    pub upload_dir: PathBuf,
    /// #17 the project chat over WebSocket.
    pub chat: ChatSettings,
    /// #14 how long a computed dashboard is cached; the L1's capacity.
    pub dashboard_ttl: Duration,
    pub l1_capacity: usize,
    /// #10 how long a reserved task stays invisible to other workers.
    pub task_visibility: Duration,
    /// #10 the hard time limit of one task's processing (Celery's `task_time_limit`): a task
    /// still running after it is abandoned unacknowledged, as if its worker had died, and is
    /// redelivered once its visibility timeout has passed. The seed keeps the visibility
    /// timeout above it, so that no task still running is handed to a second worker.
    pub task_time_limit: Duration,
    /// #7 the upstream breaker policy.
    pub breaker: reference::circuit_breaker::Policy,
    /// Any request not answered in this long gets 503 (uploads and WebSockets excepted).
    pub request_timeout: Duration,
    /// What a connection may hold of the stack: its deadlines and how many are served at once.
    pub connections: ConnectionLimits,
    /// Added before every API request is handled (inside its deadline): a deliberately slowed
    /// stack, for seeing a baseline comparison flag a regression. Zero by default.
    pub added_latency: Duration,
    /// Run this mutant instead of the reference component it replaces.
    pub mutant: Option<Mutant>,
    /// The upstream the import workers call; none: no worker runs, imports stay pending.
    pub upstream: Option<UpstreamLink>,
    /// Import processors per process.
    pub workers: usize,
    /// #8 the pooled client's policy: connections open to the upstream at once, idle ones kept
    /// (requests in flight are capped at the difference), and the call deadline.
    pub upstream_pool: upstream::UpstreamConfig,
    /// The control API of the fake upstream started beside the stack (`stampede serve`
    /// without `--upstream`), published at `/settings` so that a check finds it.
    pub upstream_control: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            instance: "stack-0".to_owned(),
            shape: Shape::Reference,
            publish_limit: Limit::new(6, Duration::from_secs(60)),
            rate_limit_headers: RateLimitHeaders::Ietf,
            quota: reference::daily_quota::SEED,
            quota_zone: TimeZone::UTC,
            usage: UsageLimits::SEED,
            upload_limit: Limit::new(15, Duration::from_secs(24 * 60 * 60)),
            registration_limit: Limit::new(300, Duration::from_secs(60)),
            max_upload_bytes: 64 * 1024 * 1024,
            upload_dir: default_upload_dir(),
            chat: ChatSettings::default(),
            dashboard_ttl: Duration::from_secs(60),
            l1_capacity: 10_000,
            task_visibility: reference::task_queue::seed::VISIBILITY,
            task_time_limit: reference::task_queue::seed::HARD_LIMIT,
            breaker: reference::circuit_breaker::seed::POLICY,
            request_timeout: Duration::from_secs(5),
            connections: ConnectionLimits::default(),
            added_latency: Duration::ZERO,
            mutant: None,
            upstream: None,
            workers: 2,
            upstream_pool: upstream::UpstreamConfig::SEED,
            upstream_control: None,
        }
    }
}

/// The schema name of the settings document served at `/settings`.
pub const SETTINGS_SCHEMA: &str = "stampede-settings/1";

impl Settings {
    /// What `/settings` answers: the settings a check's judgement depends on, durations in
    /// milliseconds, and nothing secret (no backend URL, no token). `stampede check --target`
    /// compares them with what its checks need before it runs any.
    pub fn published(&self) -> serde_json::Value {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let limit = |l: Limit| serde_json::json!({ "max": l.max, "window_ms": ms(l.window) });
        let refresh = self.upstream.as_ref().map(|u| u.refresh);
        serde_json::json!({
            "schema": SETTINGS_SCHEMA,
            "instance": self.instance,
            "shape": self.shape.name(),
            "mutant": self.mutant.map(|m| m.name()),
            "publish_limit": limit(self.publish_limit),
            "upload_limit": limit(self.upload_limit),
            "registration_limit": limit(self.registration_limit),
            "upstream_plan": { "per_day": self.usage.per_day, "per_hour": self.usage.per_hour },
            "breaker": {
                "failures": self.breaker.failure_threshold,
                "open_ms": ms(self.breaker.open_for),
                "trial_timeout_ms": ms(self.breaker.trial_timeout),
            },
            "task_visibility_ms": ms(self.task_visibility),
            "task_time_limit_ms": ms(self.task_time_limit),
            "workers": if self.upstream.is_some() { self.workers } else { 0 },
            "upstream_pool": {
                "connections": self.upstream_pool.max_connections,
                "idle": self.upstream_pool.max_idle_per_host,
            },
            "refresh_period_ms": refresh.map(|r| ms(r.period())),
            "token_lifetime_ms": refresh.map(|r| ms(r.lifetime())),
            "connections": {
                "header_timeout_ms": ms(self.connections.header_timeout),
                "body_grace_ms": ms(self.connections.body_grace),
                "body_floor_bytes_per_s": self.connections.body_floor_bytes_per_s,
                "max_connections": self.connections.connection_cap(),
            },
            "upstream_control": self.upstream_control,
        })
    }
}

/// The API the stack serves its components behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// The reference API (`crates/stack/openapi.json`), which `scenarios/reference.toml` maps.
    #[default]
    Reference,
    /// An API written the way another team writes one (`crate::partner`), which
    /// `scenarios/partner.toml` maps.
    Partner,
}

impl Shape {
    pub const ALL: [(&str, Shape); 2] = [("reference", Shape::Reference), ("partner", Shape::Partner)];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, s)| *s == self).map_or("?", |(n, _)| n)
    }
}

/// How answers state a rate-limit window: each convention stacks in the field send, so that a
/// check's reading of every one is tested against a real limiter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RateLimitHeaders {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds to go), and
    /// `Retry-After` on a refusal.
    #[default]
    Ietf,
    /// One structured field, `RateLimit: limit=6, remaining=3, reset=41`, and `Retry-After`
    /// on a refusal.
    Structured,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` as epoch seconds
    /// (GitHub's), and `Retry-After` on a refusal.
    XRateLimit,
    /// Only `Retry-After` (seconds), only on a refusal.
    RetryAfter,
    /// Only `Retry-After` as an HTTP date, only on a refusal.
    RetryAfterDate,
}

impl RateLimitHeaders {
    pub const ALL: [(&str, RateLimitHeaders); 5] = [
        ("ietf", RateLimitHeaders::Ietf),
        ("structured", RateLimitHeaders::Structured),
        ("x-ratelimit", RateLimitHeaders::XRateLimit),
        ("retry-after", RateLimitHeaders::RetryAfter),
        ("retry-after-date", RateLimitHeaders::RetryAfterDate),
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, style)| *style == self).map_or("ietf", |(name, _)| name)
    }
}

impl std::str::FromStr for RateLimitHeaders {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL.iter().find(|(name, _)| *name == text).map(|(_, style)| *style).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|(name, _)| *name).collect();
            format!("{text:?} is none of {}", names.join(", "))
        })
    }
}

/// The queue import tasks go through.
pub const IMPORT_QUEUE: &str = "imports";

/// What a stranger's connection may hold of the stack: a client that opens sockets and sends
/// nothing, half a request head, or a body a few bytes a minute is cut off within stated times,
/// and no number of such clients takes the descriptors every other client needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A connection that has not sent a whole request head this long after the stack began
    /// waiting for one — a new connection, or a kept-alive one between requests — is closed:
    /// the header-read and the idle deadline in one (hyper times both from the same point).
    pub header_timeout: Duration,
    /// Connections served at once; `None`: the process's descriptor limit less
    /// [`DESCRIPTOR_RESERVE`]. At the cap a new connection closes the oldest idle one (no
    /// request being handled or answered); with none idle it is answered 503 with
    /// `Retry-After` and closed, never left waiting in the backlog.
    pub max_connections: Option<usize>,
    /// An upload's body must keep up this average rate once `body_grace` has passed (bytes
    /// received ≥ floor × (elapsed − grace)); a slower one is cut off with 408.
    pub body_floor_bytes_per_s: u64,
    pub body_grace: Duration,
    /// A connection whose client has not read its answer for this long (the stack's writes
    /// blocked) is closed: a client that stops reading holds no connection for ever.
    pub write_stall: Duration,
}

/// Descriptors kept out of the connection cap: the backends' connections, the listener,
/// upload files, the children's pipes, and the refusals answered over the cap.
pub const DESCRIPTOR_RESERVE: usize = 128;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            max_connections: None,
            body_floor_bytes_per_s: 8 * 1024,
            body_grace: Duration::from_secs(5),
            write_stall: Duration::from_secs(30),
        }
    }
}

impl ConnectionLimits {
    /// The cap on connections served at once: the configured one, else the descriptor limit
    /// less the reserve (at least 16).
    pub fn connection_cap(&self) -> usize {
        self.max_connections.unwrap_or_else(|| {
            let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
            let soft = soft.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
            soft.saturating_sub(DESCRIPTOR_RESERVE).clamp(16, 65_536)
        })
    }
}

/// How the chat behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatSettings {
    /// Live connections per user, across instances (seed: 5).
    pub max_connections: usize,
    /// How long a slot outlives its last heartbeat (seed: 60 s); heartbeats every third of it.
    pub lease: Duration,
    /// Outgoing frames and the per-connection queue bound (seed: 10 messages or 100 ms, 100
    /// pending).
    pub batch: BatchConfig,
    /// The largest incoming message accepted; a larger one closes the connection.
    pub max_message_bytes: usize,
    /// How long a closed session's socket may take to deliver its close frame.
    pub close_grace: Duration,
    /// Refuse a connection over the limit by accepting the upgrade and closing at once with
    /// this close code (as stacks that decide after the upgrade do), instead of answering 429.
    pub refuse_with_close: Option<u16>,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            max_connections: seed::MAX_CONNECTIONS,
            lease: seed::LEASE,
            batch: BatchConfig::SEED,
            max_message_bytes: 64 * 1024,
            close_grace: Duration::from_secs(5),
            refuse_with_close: None,
        }
    }
}

/// How the stack reaches the upstream and proves itself to it. `{:?}` does not show the
/// refresh token.
#[derive(Clone)]
pub struct UpstreamLink {
    /// `http://host:port` of the upstream (a `fake-upstream` or the real thing's gateway).
    pub url: String,
    pub client_id: String,
    /// The platform account's refresh token, used once to bootstrap the credential.
    pub refresh_token: String,
    /// How often the credential is refreshed, and how long the upstream's access tokens live.
    pub refresh: token_refresh::Policy,
}

impl std::fmt::Debug for UpstreamLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLink")
            .field("url", &reference::store::shown_url(&self.url))
            .field("client_id", &self.client_id)
            .field("refresh_token", &"(not shown)")
            .field("refresh", &self.refresh)
            .finish()
    }
}

/// This process's own directory under the system's temporary directory.
pub(crate) fn default_upload_dir() -> PathBuf {
    std::env::temp_dir().join(format!("stampede-uploads-{}", std::process::id()))
}

#[cfg(test)]
mod debug_tests {
    use super::UpstreamLink;

    #[test]
    fn debug_does_not_show_the_refresh_token() {
        let link = UpstreamLink {
            url: "http://127.0.0.1:9000".into(),
            client_id: "stack".into(),
            refresh_token: "rt-hunter2".into(),
            refresh: reference::token_refresh::seed::POLICY,
        };
        let shown = format!("{link:?}");
        assert!(shown.contains("http://127.0.0.1:9000") && !shown.contains("hunter2"), "{shown}");
    }
}
