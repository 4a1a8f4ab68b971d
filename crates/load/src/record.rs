//! Every request's full response time — from the moment it was due (open model) or sent
//! (closed model) to the last byte of its body — in HdrHistogram (µs, 3 significant figures),
//! per endpoint and per wall-clock second of the run (seconds counted from the one the run
//! started in, so the timelines of generators started apart line up by whole seconds).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;
use report::{EndpointReport, Latency, Second};

/// The largest latency recorded exactly: one hour, in µs. Longer ones are clamped to it.
pub const HIGHEST_US: u64 = 3_600_000_000;

/// A histogram of latencies in µs, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid bounds")
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// An answer whose body was read whole; `ok` when the mix entry's recogniser accepts it.
    Answered { status: u16, ok: bool },
    /// No answer: `timeout`, `connect`, `body` (the body broke off), `other`; a WebSocket
    /// session that upgraded and then failed: `ws-refused`, `ws-closed` ([`crate::ws`]).
    Failed(&'static str),
}

impl Completion {
    fn ok(self) -> bool {
        matches!(self, Completion::Answered { ok: true, .. })
    }

    fn key(self) -> String {
        match self {
            Completion::Answered { status, .. } => status.to_string(),
            Completion::Failed(why) => why.to_owned(),
        }
    }
}

#[derive(Debug)]
struct Endpoint {
    all: Histogram<u64>,
    errors: u64,
    outcomes: BTreeMap<String, u64>,
    /// Per second: its histogram, its errors, and (a WebSocket endpoint) the sessions open at
    /// its end.
    seconds: Vec<(Histogram<u64>, u64, Option<u64>)>,
    /// A WebSocket endpoint's sessions open now.
    open: Option<u64>,
}

impl Endpoint {
    fn new() -> Self {
        Self { all: histogram(), errors: 0, outcomes: BTreeMap::new(), seconds: Vec::new(), open: None }
    }

    fn second(&mut self, t: usize) -> &mut (Histogram<u64>, u64, Option<u64>) {
        if self.seconds.len() <= t {
            self.seconds.resize_with(t + 1, || (histogram(), 0, None));
        }
        &mut self.seconds[t]
    }
}

/// The recorder shared by every request of a run.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    /// Milliseconds since the Unix epoch at `start`.
    start_ms: u64,
    endpoints: Mutex<BTreeMap<String, Endpoint>>,
}

impl Recorder {
    /// A recorder that starts at `start`, `start_ms` milliseconds after the Unix epoch (its
    /// second 0 is the wall-clock second `start_ms` falls in), with an empty entry for each
    /// endpoint (an endpoint that never ran still shows, with 0 requests).
    pub fn new(start: Instant, start_ms: u64, endpoints: impl IntoIterator<Item = String>) -> Self {
        let endpoints = endpoints.into_iter().map(|name| (name, Endpoint::new())).collect();
        Self { start, start_ms, endpoints: Mutex::new(endpoints) }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// One request of `endpoint`, due (or sent) at `due`, finished at `done`.
    pub fn record(&self, endpoint: &str, due: Instant, done: Instant, outcome: Completion) {
        let us = (done.saturating_duration_since(due).as_micros() as u64).clamp(1, HIGHEST_US);
        let since = due.saturating_duration_since(self.start).as_millis() as u64;
        let second = ((self.start_ms % 1000 + since) / 1000) as usize;
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let e = endpoints.entry(endpoint.to_owned()).or_insert_with(Endpoint::new);
        e.all.saturating_record(us);
        *e.outcomes.entry(outcome.key()).or_default() += 1;
        e.second(second).0.saturating_record(us);
        if !outcome.ok() {
            e.errors += 1;
            e.second(second).1 += 1;
        }
    }

    /// Counts `endpoint`'s WebSocket sessions open from now on (0 so far), so its seconds
    /// carry samples even when no session was ever upgraded.
    pub fn track_sessions(&self, endpoint: &str) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        endpoints.entry(endpoint.to_owned()).or_insert_with(Endpoint::new).open.get_or_insert(0);
    }

    /// One more (`opened`) or one fewer WebSocket session of `endpoint` is open.
    pub fn session(&self, endpoint: &str, opened: bool) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let open = endpoints.entry(endpoint.to_owned()).or_insert_with(Endpoint::new).open.get_or_insert(0);
        *open = if opened { *open + 1 } else { open.saturating_sub(1) };
    }

    /// The instant the wall-clock second `t` of the run ends (second 0 is the one the run
    /// started in, and partial).
    pub fn end_of_second(&self, t: u64) -> Instant {
        self.start + std::time::Duration::from_millis((t + 1) * 1000 - self.start_ms % 1000)
    }

    /// Samples the sessions open as second `t` ends, for every endpoint that tracks them.
    pub fn sample_sessions(&self, t: u64) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        for e in endpoints.values_mut() {
            if let Some(open) = e.open {
                e.second(t as usize).2 = Some(open);
            }
        }
    }

    /// Requests recorded so far, all endpoints.
    pub fn count(&self) -> u64 {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).values().map(|e| e.all.len()).sum()
    }

    /// The endpoints' reports over a run of `duration_s` seconds, with their histograms.
    pub fn finish(&self, duration_s: f64) -> Vec<(EndpointReport, Histogram<u64>)> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let ms = |us: u64| us as f64 / 1000.0;
        endpoints
            .iter()
            .map(|(name, e)| {
                let timeline = e
                    .seconds
                    .iter()
                    .enumerate()
                    .map(|(t, (h, errors, open))| {
                        let some = |q: f64| (!h.is_empty()).then(|| ms(h.value_at_quantile(q)));
                        Second {
                            t: t as u64,
                            requests: h.len(),
                            errors: *errors,
                            p50: some(0.5),
                            p90: some(0.9),
                            p99: some(0.99),
                            max: (!h.is_empty()).then(|| ms(h.max())),
                            histogram: report::encode_histogram(h).unwrap_or_default(),
                            open: *open,
                        }
                    })
                    .collect();
                let report = EndpointReport {
                    name: name.clone(),
                    requests: e.all.len(),
                    errors: e.errors,
                    outcomes: e.outcomes.clone(),
                    throughput: if duration_s > 0.0 { e.all.len() as f64 / duration_s } else { 0.0 },
                    latency_ms: if e.all.is_empty() { Latency::ZERO } else { Latency::of(&e.all) },
                    histogram: report::encode_histogram(&e.all).unwrap_or_default(),
                    timeline,
                };
                (report, e.all.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn latency_runs_from_due_to_done_and_lands_in_the_due_second() {
        let start = Instant::now();
        let r = Recorder::new(start, 1_700_000_000_000, ["a".to_owned(), "idle".to_owned()]);
        let ok = Completion::Answered { status: 200, ok: true };
        r.record("a", start, start + Duration::from_millis(5), ok);
        r.record("a", start + Duration::from_millis(1500), start + Duration::from_millis(2700), ok);
        r.record(
            "a",
            start + Duration::from_millis(1600),
            start + Duration::from_millis(1610),
            Completion::Failed("timeout"),
        );
        let reports = r.finish(2.0);
        let (a, h) = &reports[0];
        assert_eq!((a.name.as_str(), a.requests, a.errors), ("a", 3, 1));
        assert_eq!(a.outcomes["200"], 2);
        assert_eq!(a.outcomes["timeout"], 1);
        assert_eq!(a.timeline.len(), 2);
        assert_eq!((a.timeline[0].requests, a.timeline[1].requests, a.timeline[1].errors), (1, 2, 1));
        // The 1.2 s answer is timed from its due time, not from when it happened to be sent.
        assert!((a.latency_ms.max - 1200.0).abs() < 2.0, "{:?}", a.latency_ms);
        assert_eq!(h.len(), 3);
        assert_eq!(reports[1].0.requests, 0, "an endpoint that never ran still shows");
        let second = report::decode_histogram(&a.timeline[1].histogram).unwrap();
        assert_eq!(second.len(), 2, "each second carries its own histogram");
    }

    #[test]
    fn open_sessions_are_sampled_as_each_wall_clock_second_ends() {
        let start = Instant::now();
        let r = Recorder::new(start, 1_700_000_000_700, ["chat".to_owned(), "a".to_owned()]);
        r.track_sessions("chat");
        assert_eq!(r.end_of_second(0), start + Duration::from_millis(300), "second 0 is partial");
        assert_eq!(r.end_of_second(1), start + Duration::from_millis(1300));
        r.session("chat", true);
        r.session("chat", true);
        r.sample_sessions(0);
        r.session("chat", false);
        r.sample_sessions(1);
        // A session timed in second 3, which ended before a sample was taken there.
        let ok = Completion::Answered { status: 101, ok: true };
        r.record("chat", start + Duration::from_millis(2400), start + Duration::from_millis(2401), ok);
        r.record("a", start + Duration::from_millis(500), start + Duration::from_millis(501), ok);
        let reports = r.finish(3.0);
        let (a, chat) = (&reports[0].0, &reports[1].0);
        assert_eq!(chat.name, "chat");
        let open: Vec<Option<u64>> = chat.timeline.iter().map(|s| s.open).collect();
        assert_eq!(open, [Some(2), Some(1), None, None]);
        assert_eq!(a.timeline.len(), 2);
        assert!(a.timeline.iter().all(|s| s.open.is_none()), "a request endpoint has no samples");
    }

    #[test]
    fn seconds_are_wall_clock_seconds() {
        let start = Instant::now();
        // The run starts 700 ms into a wall-clock second: that second is 0, and a request due
        // 300 ms later falls in second 1.
        let r = Recorder::new(start, 1_700_000_000_700, ["a".to_owned()]);
        let ok = Completion::Answered { status: 200, ok: true };
        r.record("a", start + Duration::from_millis(299), start + Duration::from_millis(300), ok);
        r.record("a", start + Duration::from_millis(300), start + Duration::from_millis(301), ok);
        r.record("a", start + Duration::from_millis(1299), start + Duration::from_millis(1300), ok);
        r.record("a", start + Duration::from_millis(1300), start + Duration::from_millis(1301), ok);
        let reports = r.finish(2.0);
        let counts: Vec<u64> = reports[0].0.timeline.iter().map(|s| s.requests).collect();
        assert_eq!(counts, [1, 2, 1]);
    }
}
