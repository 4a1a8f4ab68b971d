//! The load half of a profile: `[load]`, the request mix `stampede load` drives and how (open
//! or closed model), and `[targets]`, what a run must meet. They live in the same file as the
//! checks (one file maps one stack) and are parsed with it, so a typo in either is refused
//! with file, line and field. `docs/scenarios.md` documents the format.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::profile::{Recognise, RequestTemplate};

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
pub struct LoadScenario {
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

/// `[targets]`: what the run must meet. The latency bounds apply to every endpoint unless
/// `[targets.endpoint.NAME]` says otherwise; the defaults are seed 004's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default = "default_p50")]
    pub p50_ms: f64,
    #[serde(default = "default_p95")]
    pub p95_ms: f64,
    #[serde(default = "default_p99")]
    pub p99_ms: f64,
    /// Errors over requests, per endpoint.
    #[serde(default = "default_error_rate")]
    pub max_error_rate: f64,
    /// Requests per second over the whole run, all endpoints together.
    #[serde(default)]
    pub min_throughput: Option<f64>,
    /// Closed model: users that must have been running at once.
    #[serde(default)]
    pub min_users: Option<usize>,
    /// WebSocket sessions of the mix that must have been open at once (sampled at the end of
    /// every second, all websocket entries together).
    #[serde(default)]
    pub min_ws_sessions: Option<u64>,
    #[serde(default)]
    pub endpoint: BTreeMap<String, EndpointTargets>,
    /// Bounds on ratios of the target's own metrics over the run.
    #[serde(default, rename = "metric")]
    pub metrics: Vec<MetricTarget>,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            p50_ms: default_p50(),
            p95_ms: default_p95(),
            p99_ms: default_p99(),
            max_error_rate: default_error_rate(),
            min_throughput: None,
            min_users: None,
            min_ws_sessions: None,
            endpoint: BTreeMap::new(),
            metrics: Vec::new(),
        }
    }
}

fn default_p50() -> f64 {
    100.0
}

fn default_p95() -> f64 {
    200.0
}

fn default_p99() -> f64 {
    500.0
}

fn default_error_rate() -> f64 {
    0.01
}

/// `[targets.endpoint.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointTargets {
    #[serde(default)]
    pub p50_ms: Option<f64>,
    #[serde(default)]
    pub p95_ms: Option<f64>,
    #[serde(default)]
    pub p99_ms: Option<f64>,
    #[serde(default)]
    pub max_error_rate: Option<f64>,
}

/// `[[targets.metric]]`: `numerator / denominator`, each the increase over the run of the sum
/// of the Prometheus series it selects (`name` or `name{label="value",…}`; a selector without
/// labels takes every series of the name), read from `metrics` on every instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTarget {
    pub name: String,
    #[serde(default = "default_metrics_path")]
    pub metrics: String,
    pub numerator: Vec<String>,
    pub denominator: Vec<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

fn default_metrics_path() -> String {
    "/metrics".to_owned()
}

/// The placeholders a mix request may use.
pub const LOAD_PLACEHOLDERS: &[&str] = &["project", "video", "unique", "seq"];

impl LoadScenario {
    /// What no type can refuse: a model without its numbers, weights that sum to 0, ….
    pub fn validate(&self, targets: &Targets) -> Result<(), String> {
        if !(self.duration_s > 0.0 && self.duration_s.is_finite()) {
            return Err("load.duration_s must be above 0".to_owned());
        }
        match self.model {
            Model::Open => {
                let rate = self.rate.ok_or("load.rate is required for the open model")?;
                for (what, r) in [("load.rate", Some(rate)), ("load.ramp_to", self.ramp_to)] {
                    if let Some(r) = r
                        && !(r > 0.0 && r.is_finite())
                    {
                        return Err(format!("{what} must be above 0"));
                    }
                }
                if self.max_in_flight == 0 {
                    return Err("load.max_in_flight must be at least 1".to_owned());
                }
                if self.users.is_some() || self.users_per_s.is_some() || self.think_ms.is_some() {
                    return Err("load.users, users_per_s and think_ms are for the closed model".to_owned());
                }
            }
            Model::Closed => {
                let users = self.users.ok_or("load.users is required for the closed model")?;
                if users == 0 {
                    return Err("load.users must be at least 1".to_owned());
                }
                if self.rate.is_some() || self.ramp_to.is_some() {
                    return Err("load.rate and ramp_to are for the open model".to_owned());
                }
                if let Some([min, max]) = self.think_ms
                    && min > max
                {
                    return Err(format!("load.think_ms [{min}, {max}]: the minimum is above the maximum"));
                }
                if self.users_per_s.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                    return Err("load.users_per_s must be above 0".to_owned());
                }
            }
        }
        if self.accounts == 0 {
            return Err("load.accounts must be at least 1".to_owned());
        }
        if self.requests.is_empty() {
            return Err("load has no [[load.request]]".to_owned());
        }
        for entry in self.requests.iter().filter(|e| e.body_bytes.is_some()) {
            if entry.request.body.is_some() {
                return Err(format!("load.request {:?}: body and body_bytes exclude each other", entry.name));
            }
        }
        for entry in self.requests.iter().filter(|e| e.websocket.is_some()) {
            if !entry.request.method.eq_ignore_ascii_case("GET")
                || entry.request.body.is_some()
                || entry.body_bytes.is_some()
            {
                return Err(format!(
                    "load.request {:?}: a websocket session upgrades with a GET and no body",
                    entry.name
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for entry in &self.requests {
            if !names.insert(entry.name.as_str()) {
                return Err(format!("load.request {:?} is named twice", entry.name));
            }
        }
        if self.requests.iter().all(|e| e.weight == 0) {
            return Err("load.request weights are all 0".to_owned());
        }
        let uses = |what: &str| {
            self.requests.iter().any(|e| {
                let mut texts = vec![e.request.path.clone()];
                texts.extend(e.request.headers.values().cloned());
                if let Some(body) = &e.request.body {
                    texts.push(body.to_string());
                }
                if let Some(ws) = &e.websocket {
                    texts.extend(ws.send.iter().map(ToString::to_string));
                }
                texts.iter().any(|t| t.contains(&format!("{{{what}}}")))
            })
        };
        if uses("project") && self.setup.project.is_none() {
            return Err("a load.request uses {project}, and load.setup has no project".to_owned());
        }
        if uses("video") && (self.setup.video.is_none() || self.setup.videos == 0) {
            return Err("a load.request uses {video}, and load.setup makes no videos".to_owned());
        }
        if targets.min_ws_sessions.is_some() && !self.requests.iter().any(|e| e.websocket.is_some()) {
            return Err("targets.min_ws_sessions: no load.request is a websocket session".to_owned());
        }
        for name in targets.endpoint.keys() {
            if !names.contains(name.as_str()) {
                return Err(format!(
                    "targets.endpoint.{name}: no load.request has that name; the mix has {}",
                    self.requests.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Every request template of the section, named for errors.
    pub fn templates(&self) -> Vec<(String, &RequestTemplate)> {
        let mut all = Vec::new();
        if let Some(project) = &self.setup.project {
            all.push(("load.setup.project".to_owned(), project));
        }
        if let Some(video) = &self.setup.video {
            all.push(("load.setup.video".to_owned(), video));
        }
        for entry in &self.requests {
            all.push((format!("load.request {:?}", entry.name), &entry.request));
        }
        all
    }
}

impl Targets {
    /// Bounds that cannot be met or mean nothing, and metric selectors that do not parse.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |what: String, v: f64| {
            if v > 0.0 && v.is_finite() { Ok(()) } else { Err(format!("{what} must be above 0")) }
        };
        positive("targets.p50_ms".into(), self.p50_ms)?;
        positive("targets.p95_ms".into(), self.p95_ms)?;
        positive("targets.p99_ms".into(), self.p99_ms)?;
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Err("targets.max_error_rate must be within 0 and 1".to_owned());
        }
        for (name, e) in &self.endpoint {
            for (what, v) in [("p50_ms", e.p50_ms), ("p95_ms", e.p95_ms), ("p99_ms", e.p99_ms)] {
                if let Some(v) = v {
                    positive(format!("targets.endpoint.{name}.{what}"), v)?;
                }
            }
            if e.max_error_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return Err(format!("targets.endpoint.{name}.max_error_rate must be within 0 and 1"));
            }
        }
        for m in &self.metrics {
            if m.min.is_none() && m.max.is_none() {
                return Err(format!("targets.metric {:?}: give min, max or both", m.name));
            }
            if m.numerator.is_empty() || m.denominator.is_empty() {
                return Err(format!(
                    "targets.metric {:?}: numerator and denominator must name series",
                    m.name
                ));
            }
            for selector in m.numerator.iter().chain(&m.denominator) {
                Selector::parse(selector).map_err(|e| format!("targets.metric {:?}: {e}", m.name))?;
            }
        }
        Ok(())
    }
}

/// A Prometheus series selector: a metric name and labels every selected series carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl Selector {
    /// `name` or `name{label="value",…}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a series selector: name or name{{label=\"value\",…}}");
        let (name, labels) = match text.split_once('{') {
            None => (text, ""),
            Some((name, rest)) => (name, rest.strip_suffix('}').ok_or_else(bad)?),
        };
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            return Err(bad());
        }
        let labels = parse_labels(labels).ok_or_else(bad)?;
        Ok(Self { name: name.to_owned(), labels })
    }

    /// Whether the sample line's series is selected; its value if so.
    pub fn value_in(&self, line: &str) -> Option<f64> {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            return None;
        }
        let (series, value) = match closing_brace(line) {
            Some(end) => (&line[..=end], line[end + 1..].split_whitespace().next()?),
            None => {
                let mut parts = line.split_whitespace();
                (parts.next()?, parts.next()?)
            }
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
        };
        if name != self.name || !self.labels.iter().all(|l| labels.contains(l)) {
            return None;
        }
        value.parse().ok()
    }

    /// The sum of every selected series in Prometheus text; none when no series is selected.
    pub fn sum(&self, text: &str) -> Option<f64> {
        let values: Vec<f64> = text.lines().filter_map(|line| self.value_in(line)).collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }
}

/// The index of the `}` closing a sample's label set, skipping braces inside quoted values
/// (`route="/v1/videos/{id}"`).
fn closing_brace(line: &str) -> Option<usize> {
    let open = line.find('{')?;
    if line[..open].contains(char::is_whitespace) {
        return None;
    }
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line.char_indices().skip(open + 1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `a="x",b="y"` (quotes escaped with `\`); none when malformed.
fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => {
                    let (_, escaped) = chars.next()?;
                    value.push(match escaped {
                        'n' => '\n',
                        other => other,
                    });
                }
                '"' => break i,
                other => value.push(other),
            }
        };
        labels.push((name.trim().to_owned(), value));
        rest = after[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::Selector;

    const TEXT: &str = "# HELP x\n\
        stampede_cache_gets_total{layer=\"l1\"} 30\n\
        stampede_cache_gets_total{layer=\"miss\"} 10\n\
        stampede_cache_gets_total{layer=\"l2\"} 5\n\
        stampede_up 1\n\
        stampede_q_count{route=\"/v1/videos/{id}/status\"} 60\n\
        stampede_q_count{route=\"/v1/videos\"} 5\n";

    #[test]
    fn a_selector_sums_the_series_it_names() {
        let all = Selector::parse("stampede_cache_gets_total").unwrap();
        assert_eq!(all.sum(TEXT), Some(45.0));
        let l1 = Selector::parse("stampede_cache_gets_total{layer=\"l1\"}").unwrap();
        assert_eq!(l1.sum(TEXT), Some(30.0));
        assert_eq!(Selector::parse("stampede_up").unwrap().sum(TEXT), Some(1.0));
        assert_eq!(Selector::parse("stampede_cache_gets_total{layer=\"l9\"}").unwrap().sum(TEXT), None);
        assert_eq!(Selector::parse("stampede_nothing").unwrap().sum(TEXT), None);
        // Braces inside a label's value are the value's.
        assert_eq!(Selector::parse("stampede_q_count").unwrap().sum(TEXT), Some(65.0));
        let status = Selector::parse(r#"stampede_q_count{route="/v1/videos/{id}/status"}"#).unwrap();
        assert_eq!(status.sum(TEXT), Some(60.0));
    }

    #[test]
    fn a_malformed_selector_is_refused() {
        for bad in ["", "9x", "a{b}", "a{b=\"c\"", "a b", "a{b=c}"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        let escaped = Selector::parse(r#"a{b="x\"y",c="z"}"#).unwrap();
        assert_eq!(escaped.labels, [("b".to_owned(), "x\"y".to_owned()), ("c".to_owned(), "z".to_owned())]);
    }
}
