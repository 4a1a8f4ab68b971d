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
    Breaker(BreakerCheck),
    TokenRefresh(TokenRefreshCheck),
    WsConnections(WsConnectionsCheck),
}

impl Check {
    pub fn name(&self) -> &str {
        match self {
            Check::RateLimit(c) => &c.name,
            Check::UniqueCreation(c) => &c.name,
            Check::Breaker(c) => &c.name,
            Check::TokenRefresh(c) => &c.name,
            Check::WsConnections(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Check::RateLimit(_) => "rate-limit",
            Check::UniqueCreation(_) => "unique-creation",
            Check::Breaker(_) => "breaker",
            Check::TokenRefresh(_) => "token-refresh",
            Check::WsConnections(_) => "ws-connections",
        }
    }

    /// Whether the check drives the fake upstream through its control API.
    pub fn needs_upstream_control(&self) -> bool {
        matches!(self, Check::Breaker(_) | Check::TokenRefresh(_))
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
            Check::WsConnections(c) => positive("limit", c.limit as u64),
            Check::RateLimit(_) | Check::UniqueCreation(_) => Ok(()),
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

const PLACEHOLDERS: &[&str] = &["name", "seq", "unique", "id", "run"];

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
        for check in &profile.checks {
            check.validate().map_err(|e| invalid(format!("check {:?}: {e}", check.name())))?;
        }
        for (what, template) in profile.templates() {
            validate(template).map_err(|e| invalid(format!("{what}: {e}")))?;
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
                Check::Breaker(c) => {
                    all.push((format!("check {:?}: import", c.name), &c.import));
                    all.push((format!("check {:?}: status", c.name), &c.status));
                }
                Check::TokenRefresh(c) => all.push((format!("check {:?}: import", c.name), &c.import)),
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

/// Every `{placeholder}` in `template` is one the runner fills, and the method is HTTP's.
fn validate(template: &RequestTemplate) -> Result<(), String> {
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
    for text in texts {
        for name in placeholders(&text) {
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "unknown placeholder {{{name}}} in {text:?}; known: {}",
                    PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    Ok(())
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
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

/// Fills every string in a JSON body.
pub fn fill_json(value: &Value, vars: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_json(v, vars)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), fill_json(v, vars))).collect())
        }
        other => other.clone(),
    }
}
