//! `stampede report merge`: one report from the reports of several load generators that
//! offered the same profile to the same stack, side by side. Histograms are added and
//! counters summed; every percentile is read again from the added histograms — never an
//! average of the generators' percentiles, which is no percentile of anything.
//!
//! What is exact and what is not:
//! - per endpoint: requests, errors, answers by status and the whole latency distribution are
//!   exact (the endpoint histograms are added);
//! - per second: each generator counts whole wall-clock seconds from the one it started in
//!   (`LoadReport::started_at_ms`), so its timeline is shifted by a whole number of seconds and
//!   the seconds' histograms added: exact too;
//! - throughput is the merged requests over the merged window (first start to last end);
//! - the offered rate (open model) and the users (closed) are the generators' sums; the users
//!   reached are the sum of each generator's most, an upper bound on the most that ran at once;
//! - the target's metrics are the stack's own counters, which every generator read over its
//!   own window: adding them would count the stack twice, so the merged report keeps the
//!   reading of the generator with the longest window;
//! - the targets are judged again from the merged figures, with the bounds the first report
//!   was judged by;
//! - the fault windows are the union of the generators' (one window per name and start: the
//!   first report's, with an error any copy carries, so a fault one generator failed to apply
//!   never merges into one that happened), and the verdicts around them are judged again by
//!   [`crate::faults::judge`] from the merged timelines and the windows' own bounds, in place of
//!   the generators' fault verdicts.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::{
    EndpointReport, FaultWindow, Latency, LoadReport, ObjectiveKind, ObjectiveVerdict, Report, RunMeta,
    SCHEMA, Second, Source, decode_histogram, encode_histogram,
};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("nothing to merge: name at least one report")]
    Empty,
    #[error("{file}: {reason}")]
    Unmergeable { file: String, reason: String },
}

/// The report of `inputs` (each with the file it came from) merged, as run `id` on `host` at
/// `now_ms`.
pub fn merge(inputs: &[(String, Report)], id: &str, host: &str, now_ms: u64) -> Result<Report, MergeError> {
    let (first_file, first) = inputs.first().ok_or(MergeError::Empty)?;
    let refuse = |file: &str, reason: String| MergeError::Unmergeable { file: file.to_owned(), reason };
    let first_load = first.load.as_ref().ok_or_else(|| refuse(first_file, "it holds no load".into()))?;
    let mut loads = Vec::new();
    for (file, report) in inputs {
        if report.schema != SCHEMA {
            return Err(refuse(file, format!("schema {:?}, this stampede merges {SCHEMA:?}", report.schema)));
        }
        let load = report.load.as_ref().ok_or_else(|| refuse(file, "it holds no load".into()))?;
        if report.capacity.is_some() {
            return Err(refuse(
                file,
                "a capacity run: its load is one step of many, and steps do not line up across generators"
                    .into(),
            ));
        }
        if report.run.profile != first.run.profile {
            return Err(refuse(
                file,
                format!(
                    "profile {:?}, {first_file} ran {:?}: merged figures would mix two request mixes",
                    report.run.profile, first.run.profile
                ),
            ));
        }
        if load.model != first_load.model {
            return Err(refuse(
                file,
                format!("the {} model, {first_file} ran the {}", load.model, first_load.model),
            ));
        }
        loads.push((file.as_str(), report, load));
    }
    let start_ms = loads.iter().map(|(_, _, l)| l.started_at_ms).min().unwrap_or(0);
    let end_ms = loads
        .iter()
        .map(|(_, _, l)| l.started_at_ms + (l.duration_s * 1000.0).round() as u64)
        .max()
        .unwrap_or(start_ms);
    let duration_s = (end_ms - start_ms) as f64 / 1000.0;

    let mut endpoints: BTreeMap<String, Merging> = BTreeMap::new();
    for (file, _, load) in &loads {
        let shift = load.started_at_ms / 1000 - start_ms / 1000;
        for e in &load.endpoints {
            let m = endpoints.entry(e.name.clone()).or_insert_with(Merging::new);
            m.add(e, shift).map_err(|reason| refuse(file, format!("endpoint {:?}: {reason}", e.name)))?;
        }
    }
    let endpoints: Vec<EndpointReport> = endpoints
        .into_iter()
        .map(|(name, m)| m.finish(name, duration_s))
        .collect::<Result<_, _>>()
        .map_err(|reason| refuse(first_file, reason))?;
    let requests = endpoints.iter().map(|e| e.requests).sum();
    let errors = endpoints.iter().map(|e| e.errors).sum();
    let sum_rate = |i: usize| loads.iter().filter_map(|(_, _, l)| l.rate.map(|r| r[i])).sum::<f64>();
    let sum_users = |f: fn(&LoadReport) -> Option<usize>| -> Option<usize> {
        loads.iter().map(|(_, _, l)| f(l)).sum::<Option<usize>>()
    };
    let longest = loads
        .iter()
        .max_by(|a, b| a.2.duration_s.total_cmp(&b.2.duration_s))
        .map(|(_, _, l)| l.metrics.clone())
        .unwrap_or_default();
    let mut faults: Vec<FaultWindow> = Vec::new();
    for w in loads.iter().flat_map(|(_, _, l)| &l.faults) {
        // One fault, by name, however many generators recorded it (each at its own moment):
        // from the earliest start to the latest end, open if any copy never ended.
        match faults.iter_mut().find(|f| f.name == w.name) {
            Some(kept) => {
                if kept.error.is_none() {
                    kept.error.clone_from(&w.error);
                }
                kept.started_at_ms = kept.started_at_ms.min(w.started_at_ms);
                kept.ended_at_ms = match (kept.ended_at_ms, w.ended_at_ms) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            None => faults.push(w.clone()),
        }
    }
    faults.sort_by_key(|w| w.started_at_ms);
    let load = LoadReport {
        model: first_load.model.clone(),
        rate: first_load.rate.map(|_| [sum_rate(0), sum_rate(1)]),
        users: sum_users(|l| l.users),
        users_reached: sum_users(|l| l.users_reached),
        started_at_ms: start_ms,
        duration_s,
        requests,
        errors,
        unsent: loads.iter().map(|(_, _, l)| l.unsent).sum(),
        throughput: if duration_s > 0.0 { requests as f64 / duration_s } else { 0.0 },
        endpoints,
        metrics: longest,
        faults,
    };
    let targets = first
        .targets
        .iter()
        .filter(|t| !t.kind.is_fault())
        .map(|t| rejudge(t, &load))
        .chain(crate::faults::judge(&load))
        .collect();
    let interrupted: Vec<&str> =
        loads.iter().filter(|(_, r, _)| !r.run.complete).map(|(f, _, _)| *f).collect();
    let mut targets_of_runs: Vec<String> = Vec::new();
    for (_, r, _) in &loads {
        for t in &r.run.target {
            if !targets_of_runs.contains(t) {
                targets_of_runs.push(t.clone());
            }
        }
    }
    let revision = first
        .run
        .git_revision
        .clone()
        .filter(|rev| loads.iter().all(|(_, r, _)| r.run.git_revision.as_deref() == Some(rev.as_str())));
    let mut report = Report {
        schema: SCHEMA.to_owned(),
        run: RunMeta {
            id: id.to_owned(),
            command: Some("report merge".to_owned()),
            stampede_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_revision: revision,
            profile: first.run.profile.clone(),
            target: targets_of_runs,
            embedded: None,
            host: host.to_owned(),
            started_at_ms: loads.iter().map(|(_, r, _)| r.run.started_at_ms).min().unwrap_or(now_ms),
            finished_at_ms: loads.iter().map(|(_, r, _)| r.run.finished_at_ms).max().unwrap_or(now_ms),
            complete: interrupted.is_empty(),
            interrupted: (!interrupted.is_empty())
                .then(|| format!("merged from interrupted generator runs: {}", interrupted.join(", "))),
            sources: loads
                .iter()
                .map(|(file, r, l)| Source {
                    id: r.run.id.clone(),
                    host: r.run.host.clone(),
                    file: (*file).to_owned(),
                    started_at_ms: l.started_at_ms,
                    duration_s: l.duration_s,
                    requests: l.requests,
                    complete: r.run.complete,
                })
                .collect(),
        },
        checks: None,
        load: Some(load),
        targets,
        comparison: None,
        capacity: None,
        passed: false,
    };
    report.passed = report.verdict();
    Ok(report)
}

/// `previous` judged again against `load`, with its bound and comparison.
fn rejudge(previous: &ObjectiveVerdict, load: &LoadReport) -> ObjectiveVerdict {
    let endpoint =
        previous.endpoint.as_deref().and_then(|name| load.endpoints.iter().find(|e| e.name == name));
    let measured_endpoint = |f: fn(&EndpointReport) -> f64| endpoint.filter(|e| e.requests > 0).map(f);
    let measured = match previous.kind {
        ObjectiveKind::P50 => measured_endpoint(|e| e.latency_ms.p50),
        ObjectiveKind::P95 => measured_endpoint(|e| e.latency_ms.p95),
        ObjectiveKind::P99 => measured_endpoint(|e| e.latency_ms.p99),
        ObjectiveKind::ErrorRate => measured_endpoint(|e| e.errors as f64 / e.requests as f64),
        ObjectiveKind::Unsent => Some(load.unsent as f64),
        ObjectiveKind::Throughput => Some(load.throughput),
        ObjectiveKind::Users => load.users_reached.map(|u| u as f64),
        ObjectiveKind::Sessions => load.open_sessions_peak().map(|n| n as f64),
        ObjectiveKind::Metric => load.metrics.iter().find(|m| m.name == previous.name).and_then(|m| m.value),
        // Judged by the window's own bounds, which travel with it.
        ObjectiveKind::Recovery | ObjectiveKind::ErrorsDuring | ObjectiveKind::FaultApplied => {
            if let Some(v) = crate::faults::judge(load)
                .into_iter()
                .find(|v| v.kind == previous.kind && v.name == previous.name)
            {
                return v;
            }
            None
        }
    };
    ObjectiveVerdict::judged(
        previous.kind,
        previous.name.clone(),
        previous.endpoint.clone(),
        &previous.comparison,
        previous.bound,
        measured,
        &previous.unit,
    )
}

/// One endpoint being merged.
struct Merging {
    all: Histogram<u64>,
    errors: u64,
    outcomes: BTreeMap<String, u64>,
    /// Per second: its histogram, errors, and WebSocket sessions open at its end.
    seconds: BTreeMap<u64, (Histogram<u64>, u64, Option<u64>)>,
}

impl Merging {
    fn new() -> Self {
        Self { all: empty(), errors: 0, outcomes: BTreeMap::new(), seconds: BTreeMap::new() }
    }

    fn add(&mut self, e: &EndpointReport, shift: u64) -> Result<(), String> {
        let all = decode_histogram(&e.histogram).map_err(|err| format!("its histogram: {err}"))?;
        if all.len() != e.requests {
            return Err(format!("its histogram holds {} requests, it reports {}", all.len(), e.requests));
        }
        self.all.add(&all).map_err(|err| format!("adding its histogram: {err:?}"))?;
        self.errors += e.errors;
        for (k, n) in &e.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += n;
        }
        for s in &e.timeline {
            let h = decode_histogram(&s.histogram).map_err(|err| format!("second {}: {err}", s.t))?;
            let (merged, errors, open) =
                self.seconds.entry(s.t + shift).or_insert_with(|| (empty(), 0, None));
            merged.add(&h).map_err(|err| format!("second {}: {err:?}", s.t))?;
            *errors += s.errors;
            // Samples taken at the same wall-clock boundary add up.
            if let Some(n) = s.open {
                *open = Some(open.unwrap_or(0) + n);
            }
        }
        Ok(())
    }

    fn finish(self, name: String, duration_s: f64) -> Result<EndpointReport, String> {
        let last = self.seconds.keys().next_back().copied();
        let ms = |us: u64| us as f64 / 1000.0;
        let mut timeline = Vec::new();
        for t in 0..last.map_or(0, |l| l + 1) {
            let (h, errors, open) =
                self.seconds.get(&t).map_or_else(|| (empty(), 0, None), |(h, e, o)| (h.clone(), *e, *o));
            let some = |q: f64| (!h.is_empty()).then(|| ms(h.value_at_quantile(q)));
            timeline.push(Second {
                t,
                requests: h.len(),
                errors,
                p50: some(0.5),
                p90: some(0.9),
                p99: some(0.99),
                max: (!h.is_empty()).then(|| ms(h.max())),
                histogram: encode_histogram(&h)?,
                open,
            });
        }
        let requests = self.all.len();
        Ok(EndpointReport {
            name,
            requests,
            errors: self.errors,
            outcomes: self.outcomes,
            throughput: if duration_s > 0.0 { requests as f64 / duration_s } else { 0.0 },
            latency_ms: if self.all.is_empty() { Latency::ZERO } else { Latency::of(&self.all) },
            histogram: encode_histogram(&self.all)?,
            timeline,
        })
    }
}

/// The recorder's histogram shape: µs up to an hour, 3 significant figures. Adding a
/// histogram of another shape auto-resizes where needed and fails where it cannot.
fn empty() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    h.auto(true);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunMeta;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = empty();
        for v in values {
            h.record(*v).unwrap();
        }
        h
    }

    /// A generator's report: one endpoint `e`, one request per latency in `seconds[t]`.
    fn generator(id: &str, started_at_ms: u64, seconds: &[&[u64]], errors: u64) -> Report {
        let all: Vec<u64> = seconds.iter().flat_map(|s| s.iter().copied()).collect();
        let h = histogram(&all);
        let timeline = seconds
            .iter()
            .enumerate()
            .map(|(t, s)| {
                let h = histogram(s);
                Second {
                    t: t as u64,
                    requests: h.len(),
                    errors: u64::from(t == 0) * errors,
                    p50: None,
                    p90: None,
                    p99: None,
                    max: None,
                    histogram: encode_histogram(&h).unwrap(),
                    open: None,
                }
            })
            .collect();
        let endpoint = EndpointReport {
            name: "e".into(),
            requests: h.len(),
            errors,
            outcomes: BTreeMap::from([("200".into(), h.len() - errors), ("503".into(), errors)]),
            throughput: 0.0,
            latency_ms: Latency::of(&h),
            histogram: encode_histogram(&h).unwrap(),
            timeline,
        };
        let load = LoadReport {
            model: "open".into(),
            rate: Some([10.0, 20.0]),
            users: None,
            users_reached: None,
            started_at_ms,
            duration_s: seconds.len() as f64,
            requests: h.len(),
            errors,
            unsent: 1,
            throughput: 0.0,
            endpoints: vec![endpoint],
            metrics: Vec::new(),
            faults: Vec::new(),
        };
        let target = |kind, name: &str, cmp: &str, bound, unit: &str| {
            rejudge(
                &ObjectiveVerdict::judged(kind, name.into(), Some("e".into()), cmp, bound, None, unit),
                &load,
            )
        };
        let targets = vec![
            target(ObjectiveKind::P99, "p99 of e", "<", 500.0, "ms"),
            target(ObjectiveKind::ErrorRate, "error rate of e", "<=", 0.1, "ratio"),
        ];
        Report {
            schema: SCHEMA.into(),
            run: RunMeta {
                id: id.into(),
                command: None,
                stampede_version: "0".into(),
                git_revision: Some("abc".into()),
                profile: "p".into(),
                target: vec!["http://127.0.0.1:1".into()],
                embedded: None,
                host: id.into(),
                started_at_ms,
                finished_at_ms: started_at_ms + 3000,
                complete: true,
                interrupted: None,
                sources: Vec::new(),
            },
            checks: None,
            load: Some(load),
            targets,
            comparison: None,
            capacity: None,
            passed: true,
        }
    }

    #[test]
    fn histograms_are_added_and_percentiles_read_from_the_sum() {
        // A fast generator and a slow one: averaging their p99s would say ~250 ms; the p99 of
        // all the requests is the slow one's.
        let fast: Vec<u64> = (1..=99).map(|i| 1_000 + i).collect();
        let slow: Vec<u64> = (1..=99).map(|i| 450_000 + i * 1_000).collect();
        let a = generator("a", 10_000, &[&fast[..50], &fast[50..]], 2);
        let b = generator("b", 10_000, &[&slow[..49], &slow[49..]], 0);
        let merged = merge(&[("a.json".into(), a), ("b.json".into(), b)], "m", "h", 0).unwrap();
        let load = merged.load.as_ref().unwrap();
        let e = &load.endpoints[0];
        assert_eq!((e.requests, e.errors, load.requests, load.unsent), (198, 2, 198, 2));
        assert_eq!((e.outcomes["200"], e.outcomes["503"]), (196, 2));
        let expected = Latency::of(&histogram(&[fast.clone(), slow.clone()].concat()));
        assert_eq!(e.latency_ms, expected);
        assert!(e.latency_ms.p99 > 480.0, "{:?}", e.latency_ms);
        assert_eq!(load.rate, Some([20.0, 40.0]));
        assert_eq!(merged.run.sources.len(), 2);
        assert_eq!(e.timeline.iter().map(|s| s.requests).collect::<Vec<_>>(), [99, 99]);
        // The slow requests miss the p99 target now; each generator's own verdict said nothing
        // about the other's.
        assert!(!merged.targets[0].passed, "{:?}", merged.targets[0]);
        assert_eq!(merged.targets[0].measured, Some(expected.p99));
        assert!(merged.targets[1].passed);
        assert!(!merged.passed);
    }

    #[test]
    fn timelines_line_up_by_wall_clock_second() {
        // b starts in the wall-clock second after a's (1.9 s and 2.1 s after the epoch).
        let a = generator("a", 1_900, &[&[1_000], &[1_000, 1_000]], 0);
        let b = generator("b", 2_100, &[&[5_000, 5_000, 5_000], &[5_000]], 0);
        let merged = merge(&[("a".into(), a), ("b".into(), b)], "m", "h", 0).unwrap();
        let load = merged.load.unwrap();
        let t = &load.endpoints[0].timeline;
        assert_eq!(t.iter().map(|s| s.requests).collect::<Vec<_>>(), [1, 5, 1]);
        assert!(t[1].max.is_some_and(|m| (5.0..5.01).contains(&m)), "{:?}", t[1].max);
        assert_eq!(load.started_at_ms, 1_900);
        assert!((load.duration_s - 2.2).abs() < 1e-9, "{}", load.duration_s);
        assert!((load.throughput - 7.0 / 2.2).abs() < 1e-9);
    }

    #[test]
    fn open_sessions_sampled_at_one_wall_clock_boundary_add_up() {
        // b starts in the second after a's: a's second 1 and b's second 0 end together.
        let mut a = generator("a", 1_900, &[&[1_000], &[1_000]], 0);
        let mut b = generator("b", 2_100, &[&[5_000], &[5_000]], 0);
        let open = |report: &mut Report, samples: [Option<u64>; 2]| {
            let timeline = &mut report.load.as_mut().unwrap().endpoints[0].timeline;
            timeline.iter_mut().zip(samples).for_each(|(s, n)| s.open = n);
        };
        open(&mut a, [Some(3), Some(4)]);
        open(&mut b, [Some(10), None]);
        let merged = merge(&[("a".into(), a), ("b".into(), b)], "m", "h", 0).unwrap();
        let load = merged.load.unwrap();
        let t = &load.endpoints[0].timeline;
        assert_eq!(t.iter().map(|s| s.open).collect::<Vec<_>>(), [Some(3), Some(14), None]);
        assert_eq!(load.open_sessions_peak(), Some(14), "the peak of the sums, not the sum of the peaks");
    }

    #[test]
    fn reports_that_do_not_add_up_are_refused() {
        let a = generator("a", 0, &[&[1_000]], 0);
        let mut other_profile = generator("b", 0, &[&[1_000]], 0);
        other_profile.run.profile = "q".into();
        let err =
            merge(&[("a".into(), a.clone()), ("b.json".into(), other_profile)], "m", "h", 0).unwrap_err();
        assert!(err.to_string().starts_with("b.json: profile \"q\""), "{err}");
        let mut lying = generator("c", 0, &[&[1_000]], 0);
        lying.load.as_mut().unwrap().endpoints[0].requests = 7;
        let err = merge(&[("a".into(), a.clone()), ("c.json".into(), lying)], "m", "h", 0).unwrap_err();
        assert!(err.to_string().contains("holds 1 requests, it reports 7"), "{err}");
        let mut closed = generator("d", 0, &[&[1_000]], 0);
        closed.load.as_mut().unwrap().model = "closed".into();
        assert!(merge(&[("a".into(), a), ("d".into(), closed)], "m", "h", 0).is_err());
        assert_eq!(merge(&[], "m", "h", 0).unwrap_err(), MergeError::Empty);
    }

    #[test]
    fn fault_windows_are_united_and_judged_again_from_the_merged_timelines() {
        use crate::FaultWindow;
        let window = |name: &str, error: Option<&str>| FaultWindow {
            name: name.into(),
            target: "link redis".into(),
            action: "down".into(),
            started_at_ms: 10_000,
            ended_at_ms: Some(10_500),
            error: error.map(Into::into),
            recover_within_s: None,
            max_errors_during: Some(1),
            max_error_rate: 0.0,
        };
        // Each generator failed one request in second 0, the fault's: within the bound alone,
        // over it together.
        let mut a = generator("a", 10_000, &[&[1_000, 1_000], &[1_000]], 1);
        let mut b = generator("b", 10_000, &[&[1_000, 1_000], &[1_000]], 1);
        a.load.as_mut().unwrap().faults = vec![window("redis-down", None)];
        b.load.as_mut().unwrap().faults =
            vec![window("redis-down", Some("could not remove it")), window("upstream-slow", None)];
        for r in [&mut a, &mut b] {
            let own = crate::faults::judge(r.load.as_ref().unwrap());
            let counted =
                own.iter().filter(|v| v.kind == ObjectiveKind::ErrorsDuring && v.measured.is_some());
            assert!(counted.clone().count() >= 1 && counted.clone().all(|v| v.passed), "{own:?}");
            r.targets.extend(own);
        }
        let merged = merge(&[("a".into(), a), ("b".into(), b)], "m", "h", 0).unwrap();
        let faults = &merged.load.as_ref().unwrap().faults;
        assert_eq!(
            faults.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["redis-down", "upstream-slow"]
        );
        assert_eq!(
            faults[0].error.as_deref(),
            Some("could not remove it"),
            "an error any copy carries stays"
        );
        let judged: Vec<(&str, Option<f64>, bool)> = merged
            .targets
            .iter()
            .filter(|t| t.kind.is_fault())
            .map(|t| (t.name.as_str(), t.measured, t.passed))
            .collect();
        assert_eq!(
            judged,
            [
                ("fault redis-down applied", None, false),
                ("errors during redis-down", None, false),
                ("errors during upstream-slow", Some(2.0), false),
            ]
        );
        assert_eq!(merged.targets.len(), 2 + 3, "the other targets stay, the fault verdicts are not doubled");
    }

    #[test]
    fn an_interrupted_generator_makes_the_merge_incomplete() {
        let a = generator("a", 0, &[&[1_000]], 0);
        let mut b = generator("b", 0, &[&[1_000]], 0);
        b.run.complete = false;
        b.run.interrupted = Some("interrupted (Ctrl-C)".into());
        let merged = merge(&[("a".into(), a), ("b.json".into(), b)], "m", "h", 0).unwrap();
        assert!(!merged.run.complete);
        assert!(merged.run.interrupted.as_deref().unwrap().contains("b.json"));
        assert!(!merged.passed);
    }
}
