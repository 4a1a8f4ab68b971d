//! `[targets]`: the service-level objectives a load run is judged by — percentiles, error
//! rates, throughput, users and sessions at once, ratios of the stack's own metrics — and the
//! Prometheus series selectors those ratios are read with.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Located, Step};

/// `[targets]`: the objectives a load run must meet (the section keeps the name users know;
/// in code, "target" is the stack under test). The latency bounds apply to every endpoint unless
/// `[targets.endpoint.NAME]` says otherwise; the defaults are seed 004's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
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
    /// After each fault (`[[fault]]`) ends, the per-second error rate of all endpoints must be
    /// back under `max_error_rate` within this many seconds and stay there.
    #[serde(default)]
    pub recover_within_s: Option<f64>,
    /// The most failed requests allowed during each fault.
    #[serde(default)]
    pub max_errors_during: Option<u64>,
    #[serde(default)]
    pub endpoint: BTreeMap<String, EndpointObjectives>,
    /// Bounds on ratios of the target's own metrics over the run.
    #[serde(default, rename = "metric")]
    pub metrics: Vec<MetricObjective>,
}

impl Default for Objectives {
    fn default() -> Self {
        Self {
            p50_ms: default_p50(),
            p95_ms: default_p95(),
            p99_ms: default_p99(),
            max_error_rate: default_error_rate(),
            min_throughput: None,
            min_users: None,
            min_ws_sessions: None,
            recover_within_s: None,
            max_errors_during: None,
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
pub struct EndpointObjectives {
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
pub struct MetricObjective {
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

impl Objectives {
    /// Bounds that cannot be met or mean nothing, and metric selectors that do not parse; each
    /// at the field it is about.
    pub fn validate(&self) -> Result<(), Located> {
        let at = |path: Vec<Step<'static>>, message: String| (path, message);
        let targets = |key: &'static str| vec![Step::Key("targets"), Step::Key(key)];
        let positive = |path: Vec<Step<'static>>, what: String, v: f64| {
            if v > 0.0 && v.is_finite() { Ok(()) } else { Err(at(path, format!("{what} must be above 0"))) }
        };
        positive(targets("p50_ms"), "targets.p50_ms".into(), self.p50_ms)?;
        positive(targets("p95_ms"), "targets.p95_ms".into(), self.p95_ms)?;
        positive(targets("p99_ms"), "targets.p99_ms".into(), self.p99_ms)?;
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Err(at(
                targets("max_error_rate"),
                "targets.max_error_rate must be within 0 and 1".to_owned(),
            ));
        }
        if let Some(r) = self.recover_within_s {
            positive(targets("recover_within_s"), "targets.recover_within_s".into(), r)?;
        }
        for (name, e) in &self.endpoint {
            // The endpoint's table; its name is the user's, so the path stops there.
            let endpoint = vec![Step::Key("targets"), Step::Key("endpoint")];
            for (what, v) in [("p50_ms", e.p50_ms), ("p95_ms", e.p95_ms), ("p99_ms", e.p99_ms)] {
                if let Some(v) = v {
                    positive(endpoint.clone(), format!("targets.endpoint.{name}.{what}"), v)?;
                }
            }
            if e.max_error_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return Err(at(
                    endpoint,
                    format!("targets.endpoint.{name}.max_error_rate must be within 0 and 1"),
                ));
            }
        }
        for (i, m) in self.metrics.iter().enumerate() {
            let metric = |key: &'static str| {
                vec![Step::Key("targets"), Step::Key("metric"), Step::Index(i), Step::Key(key)]
            };
            if m.min.is_none() && m.max.is_none() {
                return Err(at(
                    metric("name"),
                    format!("targets.metric {:?}: give min, max or both", m.name),
                ));
            }
            for (key, selectors) in [("numerator", &m.numerator), ("denominator", &m.denominator)] {
                if selectors.is_empty() {
                    return Err(at(
                        metric(key),
                        format!("targets.metric {:?}: numerator and denominator must name series", m.name),
                    ));
                }
                for selector in selectors {
                    crate::prometheus::Series::parse(selector)
                        .map_err(|e| at(metric(key), format!("targets.metric {:?}: {e}", m.name)))?;
                }
            }
        }
        Ok(())
    }
}
