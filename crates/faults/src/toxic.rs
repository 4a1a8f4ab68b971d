//! Toxics: their wire shape (Toxiproxy's JSON), their typed attributes, and what each does to
//! the data of one direction of one connection.
//!
//! A toxic turns each piece of data it is given (or the end of the stream) into a few
//! [`Step`]s: wait, pass data on, close, reset. The proxy's link runs the steps; this file
//! never touches a socket or a clock it was not handed.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::Instant;

/// Which way through the proxy a toxic acts, as Toxiproxy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client to upstream: requests.
    Upstream,
    /// Upstream to client: responses. Toxiproxy's default.
    #[default]
    Downstream,
}

impl Stream {
    /// The name Toxiproxy uses, `upstream` or `downstream`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// Reads a stream name as Toxiproxy does (any letter case).
    pub fn parse(text: &str) -> Option<Stream> {
        match text.to_ascii_lowercase().as_str() {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }
}

/// A toxic as Toxiproxy's HTTP API reads and writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toxic {
    /// Unique within its proxy; Toxiproxy names an unnamed toxic `<type>_<stream>`.
    pub name: String,
    /// The toxic's type: `latency`, `bandwidth`, `slow_close`, `timeout`, `reset_peer`,
    /// `slicer`, `limit_data` (or `noop`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The direction it acts on.
    #[serde(default)]
    pub stream: Stream,
    /// The chance, from 0 to 1, that a connection gets this toxic; decided once per
    /// connection (and again when the toxic is updated).
    #[serde(default = "one")]
    pub toxicity: f32,
    /// The type's own attributes, as Toxiproxy's README lists them.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

fn one() -> f32 {
    1.0
}

impl Toxic {
    fn new(name: impl Into<String>, kind: &str, attributes: &[(&str, u64)]) -> Toxic {
        Toxic {
            name: name.into(),
            kind: kind.to_owned(),
            stream: Stream::Downstream,
            toxicity: 1.0,
            attributes: attributes.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect(),
        }
    }

    /// Delays all data by `latency_ms`, plus or minus up to `jitter_ms`.
    pub fn latency(name: impl Into<String>, latency_ms: u64, jitter_ms: u64) -> Toxic {
        Toxic::new(name, "latency", &[("latency", latency_ms), ("jitter", jitter_ms)])
    }

    /// Limits the connection to `rate_kb_per_s` kilobytes (1000 bytes) a second.
    pub fn bandwidth(name: impl Into<String>, rate_kb_per_s: u64) -> Toxic {
        Toxic::new(name, "bandwidth", &[("rate", rate_kb_per_s)])
    }

    /// Stops all data and closes the connection after `timeout_ms`; 0 never closes it (a
    /// blackhole). Removing the toxic closes the connections it held, as Toxiproxy does.
    pub fn timeout(name: impl Into<String>, timeout_ms: u64) -> Toxic {
        Toxic::new(name, "timeout", &[("timeout", timeout_ms)])
    }

    /// Resets the connection (TCP RST) `timeout_ms` after the first data arrives.
    pub fn reset_peer(name: impl Into<String>, timeout_ms: u64) -> Toxic {
        Toxic::new(name, "reset_peer", &[("timeout", timeout_ms)])
    }

    /// Cuts data into pieces of about `average_size` bytes (± `size_variation`), waiting
    /// `delay_us` microseconds after each.
    pub fn slicer(name: impl Into<String>, average_size: u64, size_variation: u64, delay_us: u64) -> Toxic {
        Toxic::new(
            name,
            "slicer",
            &[("average_size", average_size), ("size_variation", size_variation), ("delay", delay_us)],
        )
    }

    /// Closes the connection once `bytes` bytes have gone through.
    pub fn limit_data(name: impl Into<String>, bytes: u64) -> Toxic {
        Toxic::new(name, "limit_data", &[("bytes", bytes)])
    }

    /// Holds the close of the connection back for `delay_ms`.
    pub fn slow_close(name: impl Into<String>, delay_ms: u64) -> Toxic {
        Toxic::new(name, "slow_close", &[("delay", delay_ms)])
    }

    /// The same toxic on another stream.
    pub fn on(mut self, stream: Stream) -> Toxic {
        self.stream = stream;
        self
    }

    /// The same toxic with another toxicity.
    pub fn with_toxicity(mut self, toxicity: f32) -> Toxic {
        self.toxicity = toxicity;
        self
    }
}

/// A toxic's type with its attributes read, Toxiproxy's defaults (zero) where one is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Noop,
    Latency { latency: i64, jitter: i64 },
    Bandwidth { rate: i64 },
    SlowClose { delay: i64 },
    Timeout { timeout: i64 },
    ResetPeer { timeout: i64 },
    Slicer { average_size: i64, size_variation: i64, delay: i64 },
    LimitData { bytes: i64 },
}

impl Kind {
    /// The type named `kind` with every attribute zero, or `None` for an unknown type.
    pub(crate) fn named(kind: &str) -> Option<Kind> {
        Some(match kind {
            "noop" => Kind::Noop,
            "latency" => Kind::Latency { latency: 0, jitter: 0 },
            "bandwidth" => Kind::Bandwidth { rate: 0 },
            "slow_close" => Kind::SlowClose { delay: 0 },
            "timeout" => Kind::Timeout { timeout: 0 },
            "reset_peer" => Kind::ResetPeer { timeout: 0 },
            "slicer" => Kind::Slicer { average_size: 0, size_variation: 0, delay: 0 },
            "limit_data" => Kind::LimitData { bytes: 0 },
            _ => return None,
        })
    }

    fn fields(&mut self) -> Vec<(&'static str, &mut i64)> {
        match self {
            Kind::Noop => vec![],
            Kind::Latency { latency, jitter } => vec![("latency", latency), ("jitter", jitter)],
            Kind::Bandwidth { rate } => vec![("rate", rate)],
            Kind::SlowClose { delay } => vec![("delay", delay)],
            Kind::Timeout { timeout } | Kind::ResetPeer { timeout } => vec![("timeout", timeout)],
            Kind::Slicer { average_size, size_variation, delay } => {
                vec![("average_size", average_size), ("size_variation", size_variation), ("delay", delay)]
            }
            Kind::LimitData { bytes } => vec![("bytes", bytes)],
        }
    }

    /// Reads `attributes` over `self` as Go's JSON decoder reads them into Toxiproxy's
    /// structs: unknown keys ignored, missing keys and `null` keep the value already there, a
    /// value that is not an integer is an error.
    pub(crate) fn read(mut self, attributes: Option<&Value>) -> Result<Kind, String> {
        let object = match attributes {
            None | Some(Value::Null) => return Ok(self),
            Some(Value::Object(object)) => object,
            Some(other) => {
                return Err(format!("json: cannot unmarshal {} into toxic attributes", json_kind(other)));
            }
        };
        for (key, slot) in self.fields() {
            match object.get(key) {
                None | Some(Value::Null) => {}
                Some(value) => {
                    *slot = value.as_i64().ok_or_else(|| {
                        format!(
                            "json: cannot unmarshal {} into attribute {key} of type int64",
                            json_kind(value)
                        )
                    })?;
                }
            }
        }
        Ok(self)
    }

    /// The attributes as Toxiproxy writes them back: every field of the type.
    pub(crate) fn attributes(mut self) -> Map<String, Value> {
        self.fields().into_iter().map(|(k, v)| (k.to_owned(), Value::from(*v))).collect()
    }
}

/// How Go's decoder names a JSON value's kind in its errors.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What travels through a link: data read at an instant, or the end of the stream.
#[derive(Debug)]
pub(crate) enum Item {
    Data(Instant, Vec<u8>),
    End,
}

/// One thing a toxic asks the link to do, in order.
#[derive(Debug)]
pub(crate) enum Step {
    /// Wait this long.
    Sleep(Duration),
    /// Wait until then.
    SleepUntil(Instant),
    /// Hand this on to the next toxic (or the socket).
    Emit(Item),
    /// Close the connection.
    Close,
    /// Reset the connection (SO_LINGER 0, then close).
    Reset,
}

/// A toxic's state on one direction of one connection.
#[derive(Debug)]
pub(crate) struct OnLink {
    /// Whether the toxicity roll chose the toxic (else the link passes data untouched).
    pub(crate) active: bool,
    /// When the link started running the toxic (the `timeout` toxic counts from here).
    pub(crate) since: Instant,
    /// Bytes passed so far (`limit_data`).
    transmitted: i64,
}

impl OnLink {
    /// A toxic starting now on a link, with its toxicity rolled.
    pub(crate) fn new(toxicity: f32, rng: &mut Rng) -> OnLink {
        OnLink { active: rng.unit() < toxicity, since: Instant::now(), transmitted: 0 }
    }

    /// The toxic was updated: roll its toxicity and start it again, keeping what it counted.
    pub(crate) fn restart(&mut self, toxicity: f32, rng: &mut Rng) {
        self.active = rng.unit() < toxicity;
        self.since = Instant::now();
    }
}

impl Kind {
    /// When this toxic closes the link on its own (a `timeout` above zero), if it does.
    pub(crate) fn deadline(self, state: &OnLink) -> Option<Instant> {
        match self {
            Kind::Timeout { timeout } if timeout > 0 && state.active => {
                Some(state.since + Duration::from_millis(timeout as u64))
            }
            _ => None,
        }
    }

    /// What this toxic does with `item`.
    pub(crate) fn apply(self, state: &mut OnLink, item: Item, rng: &mut Rng) -> Vec<Step> {
        let (at, data) = match item {
            Item::End => {
                return match self {
                    Kind::Timeout { .. } => vec![Step::Close],
                    Kind::ResetPeer { timeout } => vec![Step::Sleep(millis(timeout)), Step::Reset],
                    Kind::SlowClose { delay } => vec![Step::Sleep(millis(delay)), Step::Emit(Item::End)],
                    _ => vec![Step::Emit(Item::End)],
                };
            }
            Item::Data(at, data) => (at, data),
        };
        match self {
            Kind::Noop | Kind::SlowClose { .. } => vec![Step::Emit(Item::Data(at, data))],
            Kind::Latency { latency, jitter } => {
                let mut delay = latency;
                if jitter > 0 {
                    delay += rng.below(jitter as u64 * 2) as i64 - jitter;
                }
                vec![Step::SleepUntil(at + millis(delay)), Step::Emit(Item::Data(at, data))]
            }
            Kind::Bandwidth { rate } if rate <= 0 => vec![Step::Emit(Item::Data(at, data))],
            Kind::Bandwidth { rate } => {
                // At most 100 ms worth of data at a time, each after its share of the time.
                let slice = (rate * 100) as usize;
                let mut steps = Vec::new();
                let mut rest = data.as_slice();
                while rest.len() > slice {
                    steps.push(Step::Sleep(Duration::from_millis(100)));
                    steps.push(Step::Emit(Item::Data(at, rest[..slice].to_vec())));
                    rest = &rest[slice..];
                }
                steps.push(Step::Sleep(Duration::from_micros(rest.len() as u64 * 1000 / rate as u64)));
                steps.push(Step::Emit(Item::Data(at, rest.to_vec())));
                steps
            }
            Kind::Timeout { .. } => vec![],
            Kind::ResetPeer { timeout } => vec![Step::Sleep(millis(timeout)), Step::Reset],
            Kind::Slicer { average_size, size_variation, delay } => {
                let mut bounds = Vec::new();
                slice(0, data.len(), average_size, size_variation, rng, &mut bounds);
                let mut steps = Vec::new();
                for (start, end) in bounds {
                    steps.push(Step::Emit(Item::Data(at, data[start..end].to_vec())));
                    steps.push(Step::Sleep(Duration::from_micros(delay.max(0) as u64)));
                }
                steps
            }
            Kind::LimitData { bytes } => {
                let remaining = (bytes - state.transmitted).max(0) as usize;
                let mut data = data;
                data.truncate(remaining);
                let mut steps = Vec::new();
                if !data.is_empty() {
                    state.transmitted += data.len() as i64;
                    steps.push(Step::Emit(Item::Data(at, data)));
                }
                if bytes - state.transmitted <= 0 {
                    steps.push(Step::Close);
                }
                steps
            }
        }
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// Toxiproxy's slicer: halves `start..end` around a varied middle until each piece is within
/// `variation` of `average`. The middle is kept strictly inside, so every piece is non-empty
/// and the recursion ends.
fn slice(
    start: usize,
    end: usize,
    average: i64,
    variation: i64,
    rng: &mut Rng,
    out: &mut Vec<(usize, usize)>,
) {
    let len = end - start;
    if len as i64 - average <= variation || len <= 1 {
        if len > 0 {
            out.push((start, end));
        }
        return;
    }
    let mut mid = (start + len / 2) as i64;
    if variation > 0 {
        mid += rng.below(variation as u64 * 2) as i64 - variation;
    }
    let mid = mid.clamp(start as i64 + 1, end as i64 - 1) as usize;
    slice(start, mid, average, variation, rng, out);
    slice(mid, end, average, variation, rng, out);
}

/// A small xorshift generator, seeded from the process's random hasher keys: toxicity rolls,
/// jitter and slice sizes need no more.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Rng {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x9e37_79b9_7f4a_7c15);
        Rng(hasher.finish() | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[0, n)` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slicer_pieces_cover_the_data_in_order() {
        let mut rng = Rng::new();
        for (average, variation) in [(0, 0), (1, 10), (10, 5), (100, 0), (3, 2)] {
            let mut bounds = Vec::new();
            slice(0, 1000, average, variation, &mut rng, &mut bounds);
            let mut at = 0;
            for (start, end) in bounds {
                assert_eq!(start, at);
                assert!(end > start);
                at = end;
            }
            assert_eq!(at, 1000);
        }
    }

    #[test]
    fn toxicity_zero_never_and_one_always_chooses() {
        let mut rng = Rng::new();
        assert!((0..1000).all(|_| OnLink::new(1.0, &mut rng).active));
        assert!((0..1000).all(|_| !OnLink::new(0.0, &mut rng).active));
    }

    #[test]
    fn attributes_read_like_go() {
        let kind = Kind::named("latency").unwrap();
        let read = kind.read(Some(&serde_json::json!({"latency": 100, "other": "x"}))).unwrap();
        assert_eq!(read, Kind::Latency { latency: 100, jitter: 0 });
        assert!(kind.read(Some(&serde_json::json!({"latency": "100"}))).is_err());
        assert!(kind.read(Some(&serde_json::json!({"latency": 1.5}))).is_err());
    }
}
