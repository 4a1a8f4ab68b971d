//! `[load]`: the request mix `stampede load` offers a stack, and how (open or closed model).

use serde::Deserialize;

use crate::error::{Located, Step};
use crate::objectives::Objectives;
use crate::template::{Recognise, RequestTemplate};

/// How the load is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// Requests arrive at a rate whatever the stack does (wrk2's model); each is timed from
    /// the moment it was due, so a stall cannot hide behind requests that were never sent.
    Open,
    /// A fixed population of users (goose), each sending its next request when the last one
    /// answered (plus think time): the stack's slowness slows the load down.
    Closed,
}

/// `[load]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default = "default_model")]
    pub model: Model,
    /// How long requests are offered, in seconds.
    #[serde(default = "default_duration_s")]
    pub duration_s: f64,
    /// Open model: requests per second at the start.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Open model: requests per second at the end; the rate ramps linearly (constant without).
    #[serde(default)]
    pub ramp_to: Option<f64>,
    /// Open model: requests in flight at most; a due request waits for a slot, its wait
    /// counted in its latency.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Closed model: concurrent users.
    #[serde(default)]
    pub users: Option<usize>,
    /// Closed model: users started per second (all at once without).
    #[serde(default)]
    pub users_per_s: Option<f64>,
    /// Closed model: each user's pause between requests, `[min, max]` milliseconds.
    #[serde(default)]
    pub think_ms: Option<[u64; 2]>,
    /// Accounts the requests are spread over (each with its own token, project and videos).
    #[serde(default = "default_accounts")]
    pub accounts: usize,
    /// What each account owns before the load starts.
    #[serde(default)]
    pub setup: Setup,
    /// The mix.
    #[serde(rename = "request")]
    pub requests: Vec<MixEntry>,
}

fn default_model() -> Model {
    Model::Open
}

fn default_duration_s() -> f64 {
    60.0
}

fn default_max_in_flight() -> usize {
    1024
}

fn default_accounts() -> usize {
    8
}

/// `[load.setup]`: a project and some videos per account, whose ids the mix's requests use as
/// `{project}` and `{video}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    #[serde(default)]
    pub project: Option<RequestTemplate>,
    /// JSON pointer to the project's id in its answer.
    #[serde(default = "default_id")]
    pub project_id: String,
    /// Creates one video; `{unique}` is new each time.
    #[serde(default)]
    pub video: Option<RequestTemplate>,
    #[serde(default = "default_id")]
    pub video_id: String,
    /// Videos per account.
    #[serde(default)]
    pub videos: usize,
}

fn default_id() -> String {
    "/id".to_owned()
}

/// `[[load.request]]`: one endpoint of the mix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// The endpoint's name in reports and targets.
    pub name: String,
    /// Its share of the mix, relative to the others'.
    pub weight: u32,
    /// `{project}`, `{video}`, `{unique}`, `{seq}` are filled.
    pub request: RequestTemplate,
    /// Answers that count as success (default: any 2xx). Anything else is an error.
    #[serde(default)]
    pub ok: Option<Recognise>,
    /// A raw body of this many bytes instead of the template's JSON (an upload); its
    /// content type is the template's `headers`'.
    #[serde(default)]
    pub body_bytes: Option<usize>,
    /// A WebSocket session instead of a request: `request` is the upgrade (a GET).
    #[serde(default)]
    pub websocket: Option<WsSession>,
}

/// `websocket = { ... }` of a `[[load.request]]`: one session of a chat client. It upgrades,
/// waits for the server's first message (the endpoint's latency runs from the due time to
/// that message: handshake and first answer), sends `send` in order, reads for `hold_ms`,
/// and closes. It fails when the upgrade is refused with a status `ok` does not accept, when
/// an `error` message comes back (alone or inside a `batch`, the seed's protocol) whose `code`
/// is not in `accept_errors`, or when the server closes first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsSession {
    /// The token in this query parameter (browsers cannot set headers on an upgrade); without
    /// it, in the profile's auth header.
    #[serde(default)]
    pub token_param: Option<String>,
    /// JSON messages sent as text frames, `{project}`, `{video}`, `{unique}`, `{seq}` filled.
    #[serde(default)]
    pub send: Vec<serde_json::Value>,
    /// How long the session stays open after sending, reading what the server sends. A
    /// refusal that comes later is not seen: hold longer than the server batches its answers
    /// (seed 004: 100 ms).
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    /// Error codes that still count the session a success (a limit doing its job).
    #[serde(default)]
    pub accept_errors: Vec<String>,
}

fn default_hold_ms() -> u64 {
    200
}

/// The placeholders a mix request may use.
pub(crate) const PLACEHOLDERS: &[&str] = &["project", "video", "unique", "seq"];

/// The placeholders `[load.setup]`'s requests may use: a new value each, and the same as a name.
pub(crate) const SETUP_PLACEHOLDERS: &[&str] = &["unique", "name", "value"];

fn at(path: &[Step<'static>], message: impl Into<String>) -> Located {
    (path.to_vec(), message.into())
}

const LOAD: Step<'static> = Step::Key("load");

impl Load {
    /// What no type can refuse: a model without its numbers, weights that sum to 0, a
    /// placeholder no setup fills, …; `objectives` are checked against the mix.
    pub fn validate(&self, objectives: &Objectives) -> Result<(), Located> {
        let field = |key: &'static str| [LOAD, Step::Key(key)];
        if !(self.duration_s > 0.0 && self.duration_s.is_finite()) {
            return Err(at(&field("duration_s"), "load.duration_s must be above 0"));
        }
        match self.model {
            Model::Open => {
                let rate =
                    self.rate.ok_or_else(|| at(&[LOAD], "load.rate is required for the open model"))?;
                for (key, r) in [("rate", Some(rate)), ("ramp_to", self.ramp_to)] {
                    if let Some(r) = r
                        && !(r > 0.0 && r.is_finite())
                    {
                        return Err(at(&field(key), format!("load.{key} must be above 0")));
                    }
                }
                if self.max_in_flight == 0 {
                    return Err(at(&field("max_in_flight"), "load.max_in_flight must be at least 1"));
                }
                if self.users.is_some() || self.users_per_s.is_some() || self.think_ms.is_some() {
                    return Err(at(
                        &field("model"),
                        "load.users, users_per_s and think_ms are for the closed model",
                    ));
                }
            }
            Model::Closed => {
                let users =
                    self.users.ok_or_else(|| at(&[LOAD], "load.users is required for the closed model"))?;
                if users == 0 {
                    return Err(at(&field("users"), "load.users must be at least 1"));
                }
                if self.rate.is_some() || self.ramp_to.is_some() {
                    return Err(at(&field("model"), "load.rate and ramp_to are for the open model"));
                }
                if let Some([min, max]) = self.think_ms
                    && min > max
                {
                    return Err(at(
                        &field("think_ms"),
                        format!("load.think_ms [{min}, {max}]: the minimum is above the maximum"),
                    ));
                }
                if self.users_per_s.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                    return Err(at(&field("users_per_s"), "load.users_per_s must be above 0"));
                }
            }
        }
        if self.accounts == 0 {
            return Err(at(&field("accounts"), "load.accounts must be at least 1"));
        }
        if self.requests.is_empty() {
            return Err(at(&[LOAD], "load has no [[load.request]]"));
        }
        let entry_at =
            |i: usize, key: &'static str| [LOAD, Step::Key("request"), Step::Index(i), Step::Key(key)];
        for (i, entry) in self.requests.iter().enumerate() {
            let what = format!("load.request {:?}", entry.name);
            entry
                .request
                .validate(PLACEHOLDERS)
                .map_err(|e| at(&entry_at(i, "request"), format!("{what}: {e}")))?;
            if entry.body_bytes.is_some() && entry.request.body.is_some() {
                return Err(at(
                    &entry_at(i, "body_bytes"),
                    format!("{what}: body and body_bytes exclude each other"),
                ));
            }
            if let Some(ws) = &entry.websocket {
                if !entry.request.method.eq_ignore_ascii_case("GET")
                    || entry.request.body.is_some()
                    || entry.body_bytes.is_some()
                {
                    return Err(at(
                        &entry_at(i, "websocket"),
                        format!("{what}: a websocket session upgrades with a GET and no body"),
                    ));
                }
                for message in &ws.send {
                    crate::template::validate_json(message, PLACEHOLDERS)
                        .map_err(|e| at(&entry_at(i, "websocket"), format!("{what}: websocket.send: {e}")))?;
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, entry) in self.requests.iter().enumerate() {
            if !names.insert(entry.name.as_str()) {
                return Err(at(
                    &entry_at(i, "name"),
                    format!("load.request {:?} is named twice", entry.name),
                ));
            }
        }
        if self.requests.iter().all(|e| e.weight == 0) {
            return Err(at(&[LOAD, Step::Key("request")], "load.request weights are all 0"));
        }
        // The first mix entry that uses `{what}`.
        let uses = |what: &str| {
            self.requests.iter().position(|e| {
                e.request.uses(what)
                    || e.websocket
                        .iter()
                        .flat_map(|ws| &ws.send)
                        .any(|m| m.to_string().contains(&format!("{{{what}}}")))
            })
        };
        let setup = |key: &'static str| [LOAD, Step::Key("setup"), Step::Key(key)];
        if let Some(project) = &self.setup.project {
            project
                .validate(SETUP_PLACEHOLDERS)
                .map_err(|e| at(&setup("project"), format!("load.setup.project: {e}")))?;
        }
        if let Some(video) = &self.setup.video {
            video
                .validate(SETUP_PLACEHOLDERS)
                .map_err(|e| at(&setup("video"), format!("load.setup.video: {e}")))?;
        }
        for (key, pointer) in [("project_id", &self.setup.project_id), ("video_id", &self.setup.video_id)] {
            crate::template::validate_pointer(pointer)
                .map_err(|e| at(&setup(key), format!("load.setup.{key}: {e}")))?;
        }
        if let Some(i) = uses("project")
            && self.setup.project.is_none()
        {
            return Err(at(
                &entry_at(i, "request"),
                "a load.request uses {project}, and load.setup has no project",
            ));
        }
        if let Some(i) = uses("video")
            && (self.setup.video.is_none() || self.setup.videos == 0)
        {
            return Err(at(
                &entry_at(i, "request"),
                "a load.request uses {video}, and load.setup makes no videos",
            ));
        }
        if objectives.min_ws_sessions.is_some() && !self.requests.iter().any(|e| e.websocket.is_some()) {
            return Err(at(
                &[Step::Key("targets"), Step::Key("min_ws_sessions")],
                "targets.min_ws_sessions: no load.request is a websocket session",
            ));
        }
        for name in objectives.endpoint.keys() {
            if !names.contains(name.as_str()) {
                return Err(at(
                    &[Step::Key("targets"), Step::Key("endpoint")],
                    format!(
                        "targets.endpoint.{name}: no load.request has that name; the mix has {}",
                        self.requests.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}
