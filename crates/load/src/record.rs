//! Every request's full response time — from the moment it was due (open model) or sent
//! (closed model) to the last byte of its body — in HdrHistogram (µs, 3 significant figures),
//! per endpoint and per wall-clock second of the run (seconds counted from the one the run
//! started in, so the timelines of generators started apart line up by whole seconds).
//!
//! A second's histogram is live (its full counts array, ~188 KB) only while records may still
//! land in it: once the newest second is [`LIVE_S`] past it, it is *sealed* into what the report
//! keeps of it (its count, percentiles and V2 encoding, a few hundred bytes), so memory grows by
//! those bytes a second, not by a histogram a second. A late record (a slow or timed-out request
//! is recorded in the second it was due, when it ends) opens a sealed second again — decoded,
//! recorded into, sealed again at the next sweep — so every second stays exact.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;
use report::{EndpointReport, Latency, Second};

/// The largest latency recorded exactly: one hour, in µs. Longer ones are clamped to it.
pub const HIGHEST_US: u64 = 3_600_000_000;

/// How many seconds behind the newest (by completion time) a second's histogram stays live
/// before it is sealed.
pub const LIVE_S: u64 = 4;

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

/// What the report keeps of a second's histogram: its count, percentiles (ms), maximum (ms)
/// and V2 encoding.
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    requests: u64,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
    histogram: String,
}

impl Summary {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        let some = |q: f64| (!h.is_empty()).then(|| ms(h.value_at_quantile(q)));
        Self {
            requests: h.len(),
            p50: some(0.5),
            p90: some(0.9),
            p99: some(0.99),
            max: (!h.is_empty()).then(|| ms(h.max())),
            histogram: report::encode_histogram(h).unwrap_or_default(),
        }
    }

    /// The histogram it was made of (an empty one when it cannot be read, which
    /// [`Summary::of`] never writes).
    fn histogram(&self) -> Histogram<u64> {
        report::decode_histogram(&self.histogram).unwrap_or_else(|_| histogram())
    }
}

/// One second's latencies.
#[derive(Debug)]
enum Latencies {
    /// Nothing recorded.
    None,
    /// Still recorded into.
    Live(Box<Histogram<u64>>),
    /// Past [`LIVE_S`]: only what the report keeps.
    Sealed(Summary),
}

#[derive(Debug)]
struct Tick {
    latencies: Latencies,
    errors: u64,
    /// A WebSocket endpoint's sessions open at the second's end.
    open: Option<u64>,
}

#[derive(Debug)]
struct Endpoint {
    all: Histogram<u64>,
    errors: u64,
    outcomes: BTreeMap<String, u64>,
    seconds: Vec<Tick>,
    /// The seconds whose latencies are live (a handful).
    live: Vec<usize>,
    /// A WebSocket endpoint's sessions open now.
    open: Option<u64>,
}

impl Endpoint {
    fn new() -> Self {
        Self {
            all: histogram(),
            errors: 0,
            outcomes: BTreeMap::new(),
            seconds: Vec::new(),
            live: Vec::new(),
            open: None,
        }
    }

    fn second(&mut self, t: usize) -> &mut Tick {
        if self.seconds.len() <= t {
            self.seconds.resize_with(t + 1, || Tick { latencies: Latencies::None, errors: 0, open: None });
        }
        &mut self.seconds[t]
    }

    /// Second `t`'s histogram, to record into: made, or opened again when sealed.
    fn live(&mut self, t: usize) -> &mut Histogram<u64> {
        let tick = self.second(t);
        let h = match &tick.latencies {
            Latencies::Live(_) => None,
            Latencies::None => Some(histogram()),
            Latencies::Sealed(summary) => Some(summary.histogram()),
        };
        if let Some(h) = h {
            self.seconds[t].latencies = Latencies::Live(Box::new(h));
            self.live.push(t);
        }
        match &mut self.seconds[t].latencies {
            Latencies::Live(h) => h,
            _ => unreachable!("made live above"),
        }
    }

    /// Seals every live second before `before`.
    fn seal(&mut self, before: usize) {
        let seconds = &mut self.seconds;
        self.live.retain(|&t| {
            if t >= before {
                return true;
            }
            if let Latencies::Live(h) = &seconds[t].latencies {
                seconds[t].latencies = Latencies::Sealed(Summary::of(h));
            }
            false
        });
    }
}

/// The endpoints, and the newest second (by completion) the live seconds were sealed for.
#[derive(Debug)]
struct State {
    endpoints: BTreeMap<String, Endpoint>,
    swept: usize,
}

impl State {
    fn endpoint(&mut self, name: &str) -> &mut Endpoint {
        if !self.endpoints.contains_key(name) {
            self.endpoints.insert(name.to_owned(), Endpoint::new());
        }
        self.endpoints.get_mut(name).expect("inserted above")
    }
}

/// The recorder shared by every request of a run.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    /// Milliseconds since the Unix epoch at `start`.
    start_ms: u64,
    /// Seconds a second stays live: [`LIVE_S`] (unbounded in tests, to compare with).
    live_s: usize,
    state: Mutex<State>,
}

impl Recorder {
    /// A recorder that starts at `start`, `start_ms` milliseconds after the Unix epoch (its
    /// second 0 is the wall-clock second `start_ms` falls in), with an empty entry for each
    /// endpoint (an endpoint that never ran still shows, with 0 requests).
    pub fn new(start: Instant, start_ms: u64, endpoints: impl IntoIterator<Item = String>) -> Self {
        let endpoints = endpoints.into_iter().map(|name| (name, Endpoint::new())).collect();
        Self { start, start_ms, live_s: LIVE_S as usize, state: Mutex::new(State { endpoints, swept: 0 }) }
    }

    /// A recorder that never seals a second: what sealing must not change.
    #[cfg(test)]
    fn unsealed(start: Instant, start_ms: u64, endpoints: impl IntoIterator<Item = String>) -> Self {
        Self { live_s: usize::MAX, ..Self::new(start, start_ms, endpoints) }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// The second of the run `at` falls in.
    fn second_of(&self, at: Instant) -> usize {
        let since = at.saturating_duration_since(self.start).as_millis() as u64;
        ((self.start_ms % 1000 + since) / 1000) as usize
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One request of `endpoint`, due (or sent) at `due`, finished at `done`.
    pub fn record(&self, endpoint: &str, due: Instant, done: Instant, outcome: Completion) {
        let us = (done.saturating_duration_since(due).as_micros() as u64).clamp(1, HIGHEST_US);
        let second = self.second_of(due);
        let now = self.second_of(done);
        let mut state = self.state();
        // Once a second: what no record is expected in any more is sealed.
        if now > state.swept {
            state.swept = now;
            let before = now.saturating_sub(self.live_s);
            state.endpoints.values_mut().for_each(|e| e.seal(before));
        }
        let e = state.endpoint(endpoint);
        e.all.saturating_record(us);
        *e.outcomes.entry(outcome.key()).or_default() += 1;
        e.live(second).saturating_record(us);
        if !outcome.ok() {
            e.errors += 1;
            e.second(second).errors += 1;
        }
    }

    /// Counts `endpoint`'s WebSocket sessions open from now on (0 so far), so its seconds
    /// carry samples even when no session was ever upgraded.
    pub fn track_sessions(&self, endpoint: &str) {
        self.state().endpoint(endpoint).open.get_or_insert(0);
    }

    /// One more (`opened`) or one fewer WebSocket session of `endpoint` is open.
    pub fn session(&self, endpoint: &str, opened: bool) {
        let mut state = self.state();
        let open = state.endpoint(endpoint).open.get_or_insert(0);
        *open = if opened { *open + 1 } else { open.saturating_sub(1) };
    }

    /// The instant the wall-clock second `t` of the run ends (second 0 is the one the run
    /// started in, and partial).
    pub fn end_of_second(&self, t: u64) -> Instant {
        self.start + std::time::Duration::from_millis((t + 1) * 1000 - self.start_ms % 1000)
    }

    /// Samples the sessions open as second `t` ends, for every endpoint that tracks them.
    pub fn sample_sessions(&self, t: u64) {
        let mut state = self.state();
        for e in state.endpoints.values_mut() {
            if let Some(open) = e.open {
                e.second(t as usize).open = Some(open);
            }
        }
    }

    /// Requests recorded so far, all endpoints.
    pub fn count(&self) -> u64 {
        self.state().endpoints.values().map(|e| e.all.len()).sum()
    }

    /// The endpoints' reports over a run of `duration_s` seconds, with their histograms.
    pub fn finish(&self, duration_s: f64) -> Vec<(EndpointReport, Histogram<u64>)> {
        let state = self.state();
        let mut nothing = None;
        state
            .endpoints
            .iter()
            .map(|(name, e)| {
                let timeline = e
                    .seconds
                    .iter()
                    .enumerate()
                    .map(|(t, tick)| {
                        let summary = match &tick.latencies {
                            Latencies::None => {
                                nothing.get_or_insert_with(|| Summary::of(&histogram())).clone()
                            }
                            Latencies::Live(h) => Summary::of(h),
                            Latencies::Sealed(summary) => summary.clone(),
                        };
                        let Summary { requests, p50, p90, p99, max, histogram } = summary;
                        Second {
                            t: t as u64,
                            requests,
                            errors: tick.errors,
                            p50,
                            p90,
                            p99,
                            max,
                            histogram,
                            open: tick.open,
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

    /// How many seconds' histograms are live, all endpoints (the rest are sealed).
    #[cfg(test)]
    fn live_seconds(&self) -> usize {
        self.state().endpoints.values().map(|e| e.live.len()).sum()
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

    /// The same records into a recorder that seals and one that never does, in the order they
    /// complete: `(endpoint, due ms, latency ms, ok)`.
    fn both(records: &[(&str, u64, u64, bool)]) -> (Recorder, Recorder) {
        let start = Instant::now();
        let names = || ["a".to_owned(), "b".to_owned()];
        let (sealing, unsealed) = (
            Recorder::new(start, 1_700_000_000_250, names()),
            Recorder::unsealed(start, 1_700_000_000_250, names()),
        );
        let mut order: Vec<_> = records.to_vec();
        order.sort_by_key(|&(_, due, latency, _)| due + latency);
        for (endpoint, due, latency, ok) in order {
            let outcome =
                if ok { Completion::Answered { status: 200, ok } } else { Completion::Failed("timeout") };
            let due = start + Duration::from_millis(due);
            for r in [&sealing, &unsealed] {
                r.record(endpoint, due, due + Duration::from_millis(latency), outcome);
            }
        }
        (sealing, unsealed)
    }

    fn json(r: &Recorder) -> serde_json::Value {
        let reports: Vec<_> = r.finish(30.0).into_iter().map(|(e, _)| e).collect();
        serde_json::to_value(reports).unwrap()
    }

    /// 30 seconds at 200 a second over two endpoints, latencies spread from 1 ms to ~2 s, one
    /// in 17 failed; and late ones: due in seconds 2 and 3, ended 12–25 s later.
    fn run_with_late_records() -> Vec<(&'static str, u64, u64, bool)> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut records: Vec<(&str, u64, u64, bool)> = (0..6000u64)
            .map(|i| {
                let endpoint = if next() % 3 == 0 { "b" } else { "a" };
                (endpoint, i * 5, 1 + (next() % 1000) * (next() % 2000) / 1000, i % 17 != 0)
            })
            .collect();
        // A stall: requests due in seconds 2 and 3 answered (or timed out) long after both
        // were sealed, one of them twice over.
        records.extend([
            ("a", 2_100, 12_000, true),
            ("a", 2_200, 12_500, false),
            ("b", 2_900, 20_000, true),
            ("a", 2_300, 25_000, true),
            ("a", 3_400, 15_000, false),
        ]);
        records
    }

    #[test]
    fn a_sealed_second_reports_what_it_would_unsealed_late_records_included() {
        let records = run_with_late_records();
        let (sealing, unsealed) = both(&records);
        assert!(
            sealing.live_seconds() <= 2 * (LIVE_S as usize + 2),
            "only the last seconds stay live: {}",
            sealing.live_seconds()
        );
        assert!(unsealed.live_seconds() > 50);
        // Counts, errors, percentiles, maximum and every second's encoded histogram alike.
        assert_eq!(json(&sealing), json(&unsealed));
        let (sealed, whole) = (sealing.finish(30.0), unsealed.finish(30.0));
        for ((s, sh), (u, uh)) in sealed.iter().zip(&whole) {
            assert_eq!(sh, uh);
            assert_eq!(s.timeline.len(), u.timeline.len());
            for (a, b) in s.timeline.iter().zip(&u.timeline) {
                let (a_h, b_h) = (
                    report::decode_histogram(&a.histogram).unwrap(),
                    report::decode_histogram(&b.histogram).unwrap(),
                );
                assert_eq!(a_h, b_h, "second {}", a.t);
                assert_eq!(
                    (a.requests, a.errors, a.p50, a.p90, a.p99, a.max),
                    (b.requests, b.errors, b.p50, b.p90, b.p99, b.max)
                );
            }
        }
        // The late records are in the seconds they were due in.
        let a = &sealed[0].0;
        let second = |ms: u64| ((250 + ms) / 1000) as usize;
        let late = report::decode_histogram(&a.timeline[second(2_300)].histogram).unwrap();
        assert!(late.max() >= 24_000_000, "the 25 s answer is in its due second: {}", late.max());
        assert!(a.timeline[second(2_200)].errors >= 1);
    }

    #[test]
    fn sealed_seconds_add_up_to_the_whole_run_exactly() {
        let (sealing, _) = both(&run_with_late_records());
        for (e, all) in sealing.finish(30.0) {
            let mut sum = histogram();
            for s in &e.timeline {
                sum.add(report::decode_histogram(&s.histogram).unwrap()).unwrap();
            }
            assert_eq!(sum, all, "{}", e.name);
            assert_eq!(sum.len(), e.timeline.iter().map(|s| s.requests).sum::<u64>());
            assert_eq!(e.errors, e.timeline.iter().map(|s| s.errors).sum::<u64>());
        }
    }

    #[test]
    fn a_late_record_opens_a_sealed_second_until_the_next_sweep() {
        let start = Instant::now();
        let r = Recorder::new(start, 1_700_000_000_000, ["a".to_owned()]);
        let ok = Completion::Answered { status: 200, ok: true };
        let at = |ms: u64| start + Duration::from_millis(ms);
        for t in 0..20 {
            r.record("a", at(t * 1000), at(t * 1000 + 3), ok);
        }
        assert_eq!(r.live_seconds(), LIVE_S as usize + 1, "seconds 15 to 19");
        r.record("a", at(1_500), at(19_600), ok);
        assert_eq!(r.live_seconds(), LIVE_S as usize + 2, "second 1 open again");
        r.record("a", at(20_000), at(20_001), ok);
        assert_eq!(r.live_seconds(), LIVE_S as usize + 1, "and sealed at the next second");
        let a = &r.finish(21.0)[0].0;
        assert_eq!(a.timeline[1].requests, 2);
        let max = a.timeline[1].max.unwrap();
        assert!((18_100.0..18_120.0).contains(&max), "{:?}", a.timeline[1]);
    }
}
