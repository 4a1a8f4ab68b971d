//! The faults injected during a load, judged from the load's per-second timelines: the failed
//! requests while each fault lasted (`errors during NAME`), how soon after it ended the error
//! rate was back under its bound and stayed there (`recovery after NAME`), and a failed
//! `fault NAME applied` when the fault could not be applied or removed (or a killed instance
//! did not come back).
//!
//! Pure: it reads the load's figures and the windows it carries, so `load` judges a run with
//! it and `merge` judges a merged report again from the merged timelines.
//!
//! Seconds. The timelines count whole wall-clock seconds: second `t` is the wall-clock second
//! `t` after the one `LoadReport::started_at_ms` falls in, and a request counts in the second
//! it was due. A moment `m` (milliseconds since the epoch) falls in second
//! `m / 1000 - started_at_ms / 1000` (0 when before the load). The resolution of everything
//! here is one second:
//! - *errors during* a fault are the failed requests of every endpoint in the seconds from the
//!   one it began in to the one it ended in, both included (to the load's last second when it
//!   never ended); errors just before it began or just after it ended, in those two seconds,
//!   count too.
//! - *recovery* is read from the per-second error rate of all endpoints (errors / requests; a
//!   second without requests shows nothing and counts as not recovered). Second `r` is the
//!   recovery when it is the first second, from the one the fault ended in, from which every
//!   second up to the last full second of the load (its last, partial second left out) is at or
//!   under `max_error_rate`. The time measured is from `ended_at_ms` to the start of second
//!   `r`, 0 when `r` is the second the fault ended in (that second's rate counts the errors
//!   before the end too, and it was under the bound all the same). The error rate went back
//!   under the bound at some moment in the second before `r` at the earliest, so the figure is
//!   an upper bound on the true recovery time, less than one second above it: a verdict that
//!   passes on it never passes a recovery that took longer than the bound.
//!
//! Never a pass without evidence: a fault that never ended, carries an error, or ended less
//! than its bound before the load did (it was not seen staying recovered) fails its recovery
//! with nothing measured and says why; so does a fault that began after the load's last second
//! for its errors during.

use std::collections::BTreeMap;

use crate::{FaultWindow, LoadReport, ObjectiveKind, ObjectiveVerdict};

/// Every fault window of `load` judged: for each, in order, `fault NAME applied` (only when it
/// carries an error), `errors during NAME` (when it sets `max_errors_during`) and `recovery
/// after NAME` (when it sets `recover_within_s`).
pub fn judge(load: &LoadReport) -> Vec<ObjectiveVerdict> {
    let seconds = Seconds::of(load);
    load.faults.iter().flat_map(|w| seconds.judge(w)).collect()
}

/// The verdicts on one window `w` of `load` (see [`judge`]).
pub fn judge_window(load: &LoadReport, w: &FaultWindow) -> Vec<ObjectiveVerdict> {
    Seconds::of(load).judge(w)
}

/// The failed and all requests of every endpoint in the seconds `w` overlaps (see the module's
/// docs); none when it began after the load's last second.
pub fn errors_during(load: &LoadReport, w: &FaultWindow) -> Option<(u64, u64)> {
    Seconds::of(load).during(w).map(|(_, _, errors, requests)| (errors, requests))
}

/// `ms` (milliseconds since the epoch) in seconds on the timelines' axis: 0 is the start of the
/// wall-clock second the load began in. Negative before it.
pub fn axis_s(load: &LoadReport, ms: u64) -> f64 {
    (ms as f64 - (load.started_at_ms / 1000 * 1000) as f64) / 1000.0
}

/// `ms` in seconds after the load began (negative before it).
pub fn into_load_s(load: &LoadReport, ms: u64) -> f64 {
    (ms as f64 - load.started_at_ms as f64) / 1000.0
}

/// Seconds in words: at most two decimals, none when whole (`2.1`, `5`).
fn secs(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The load's per-second totals over every endpoint.
struct Seconds {
    /// Whole seconds since the epoch of second 0.
    base: u64,
    /// `t` → (requests, errors), every endpoint summed.
    totals: BTreeMap<u64, (u64, u64)>,
    /// When the load ended (milliseconds since the epoch).
    end_ms: u64,
    /// The load's last second, partial or not: the last of the timelines and of the run.
    last: u64,
    /// The last second that ended before the load did; none when none did.
    last_full: Option<u64>,
    /// When each fault began (milliseconds since the epoch): a fault's recovery is judged up
    /// to the next one's beginning, whose errors are its own.
    starts: Vec<u64>,
}

impl Seconds {
    fn of(load: &LoadReport) -> Self {
        let base = load.started_at_ms / 1000;
        let mut totals: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for s in load.endpoints.iter().flat_map(|e| &e.timeline) {
            let slot = totals.entry(s.t).or_default();
            slot.0 += s.requests;
            slot.1 += s.errors;
        }
        let end_ms = load.started_at_ms + (load.duration_s.max(0.0) * 1000.0).round() as u64;
        // Second `t` ends at (base + t + 1) s; the full ones end by `end_ms`.
        let last_full = (end_ms / 1000).checked_sub(base + 1);
        let ran = (end_ms.saturating_sub(1) / 1000).saturating_sub(base);
        let last = totals.keys().next_back().copied().unwrap_or(0).max(ran);
        let starts = load.faults.iter().map(|w| w.started_at_ms).collect();
        Self { base, totals, end_ms, last, last_full, starts }
    }

    /// The second `ms` falls in; 0 before the load.
    fn second(&self, ms: u64) -> u64 {
        (ms / 1000).saturating_sub(self.base)
    }

    /// (requests, errors) of second `t`.
    fn at(&self, t: u64) -> (u64, u64) {
        self.totals.get(&t).copied().unwrap_or((0, 0))
    }

    /// The seconds `w` overlaps (first, last) and the errors and requests in them.
    fn during(&self, w: &FaultWindow) -> Option<(u64, u64, u64, u64)> {
        let from = self.second(w.started_at_ms);
        let to = w.ended_at_ms.map_or(self.last, |e| self.second(e)).min(self.last);
        if from > to || w.started_at_ms >= self.end_ms {
            return None;
        }
        let (requests, errors) =
            self.totals.range(from..=to).fold((0, 0), |(r, e), (_, (rq, er))| (r + rq, e + er));
        Some((from, to, errors, requests))
    }

    fn judge(&self, w: &FaultWindow) -> Vec<ObjectiveVerdict> {
        let mut verdicts = Vec::new();
        if let Some(error) = &w.error {
            let mut v = ObjectiveVerdict::judged(
                ObjectiveKind::FaultApplied,
                format!("fault {} applied", w.name),
                None,
                "<=",
                0.0,
                None,
                "errors",
            );
            // The error says what went wrong: applying it, removing it, or what it acted on not
            // coming back.
            v.detail = format!("{} on {}: {error}; the fault did not go as planned", w.action, w.target);
            verdicts.push(v);
        }
        if let Some(bound) = w.max_errors_during {
            verdicts.push(self.errors_during(w, bound));
        }
        if let Some(bound) = w.recover_within_s {
            verdicts.push(self.recovery(w, bound));
        }
        verdicts
    }

    fn errors_during(&self, w: &FaultWindow, bound: u64) -> ObjectiveVerdict {
        let during = self.during(w);
        let measured = during.filter(|_| w.error.is_none()).map(|(.., errors, _)| errors as f64);
        let mut v = ObjectiveVerdict::judged(
            ObjectiveKind::ErrorsDuring,
            format!("errors during {}", w.name),
            None,
            "<=",
            bound as f64,
            measured,
            "errors",
        );
        v.detail = match (during, &w.error) {
            (_, Some(error)) => {
                format!("the fault did not happen as planned ({error}): its errors during judge nothing")
            }
            (None, None) => {
                "the fault began after the load's last second: no request ran during it".to_owned()
            }
            (Some((from, to, errors, requests)), None) => format!(
                "{errors} of {requests} requests failed in seconds {from}–{to}{}, {} {bound}",
                if w.ended_at_ms.is_none() {
                    " (the fault never ended: to the load's last second)"
                } else {
                    ""
                },
                if v.passed { "at most" } else { "more than" },
            ),
        };
        v
    }

    fn recovery(&self, w: &FaultWindow, bound: f64) -> ObjectiveVerdict {
        let (measured, detail) = match self.recovered(w, bound) {
            Ok((r, measured)) => {
                let rate = w.max_error_rate;
                (
                    Some(measured),
                    format!(
                        "the error rate was at or under {rate} from second {r} on, {} s after the fault ended \
                         (to one second)",
                        secs(measured)
                    ),
                )
            }
            Err(why) => (None, why),
        };
        let mut v = ObjectiveVerdict::judged(
            ObjectiveKind::Recovery,
            format!("recovery after {}", w.name),
            None,
            "<=",
            bound,
            measured,
            "s",
        );
        if measured.is_some() {
            v.detail = format!("{detail}; {}", v.detail);
        } else {
            v.detail = detail;
        }
        v
    }

    /// The recovery second and the seconds from the fault's end to its start, or why there is
    /// none.
    fn recovered(&self, w: &FaultWindow, bound: f64) -> Result<(u64, f64), String> {
        let shown = format!("recovery within {} s cannot be shown", secs(bound));
        if let Some(error) = &w.error {
            return Err(format!("the fault did not happen as planned ({error}); {shown}"));
        }
        let Some(ended) = w.ended_at_ms else {
            return Err(format!("the fault never ended before the load did; {shown}"));
        };
        let next = self.starts.iter().copied().filter(|s| *s > ended).min();
        let horizon = next.map_or(self.end_ms, |n| n.min(self.end_ms));
        let after = (horizon as f64 - ended as f64) / 1000.0;
        if after < bound {
            return Err(if after < 0.0 {
                format!("the fault ended {} s after the load did; {shown}", secs(-after))
            } else if horizon < self.end_ms {
                format!("the next fault began {} s after this one ended; {shown}", secs(after))
            } else {
                format!("the load ended {} s after the fault ended; {shown}", secs(after))
            });
        }
        let from = self.second(ended);
        // The last full second before the next fault's, if one follows.
        let before_next = next.and_then(|n| self.second(n).checked_sub(1));
        let last_full = match (self.last_full, before_next) {
            (Some(l), Some(b)) => Some(l.min(b)),
            (l, _) => l,
        };
        let Some(last) = last_full.filter(|l| *l >= from) else {
            return Err(format!(
                "no full second of the load after the one the fault ended in (second {from}); {shown}"
            ));
        };
        let good = |t: u64| {
            let (requests, errors) = self.at(t);
            requests > 0 && errors as f64 / requests as f64 <= w.max_error_rate
        };
        // The first second of the last unbroken run of good seconds that reaches `last`.
        let mut r = None;
        for t in (from..=last).rev() {
            if !good(t) {
                break;
            }
            r = Some(t);
        }
        let Some(r) = r else {
            let (requests, errors) = self.at(last);
            return Err(if requests == 0 {
                format!(
                    "never recovered: no request fell due in the last full second ({last}), so none showed it"
                )
            } else {
                format!(
                    "never recovered: still failing {errors} of {requests} requests/s in the last full second \
                     ({last}), over {}",
                    w.max_error_rate
                )
            });
        };
        let start_ms = (self.base + r) * 1000;
        Ok((r, start_ms.saturating_sub(ended) as f64 / 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EndpointReport, Latency, Second};

    /// An endpoint whose second `t` had `seconds[t]` = (requests, errors).
    fn endpoint(name: &str, seconds: &[(u64, u64)]) -> EndpointReport {
        EndpointReport {
            name: name.to_owned(),
            requests: seconds.iter().map(|s| s.0).sum(),
            errors: seconds.iter().map(|s| s.1).sum(),
            outcomes: BTreeMap::new(),
            throughput: 0.0,
            latency_ms: Latency::ZERO,
            histogram: String::new(),
            timeline: seconds
                .iter()
                .enumerate()
                .map(|(t, &(requests, errors))| Second::counted(t as u64, requests, errors))
                .collect(),
        }
    }

    /// The load began 0.5 s into wall-clock second 1000 (so second `t` is wall-clock
    /// 1000 + t) and ran `duration_s`.
    const START: u64 = 1_000_500;

    fn load(duration_s: f64, endpoints: Vec<EndpointReport>, faults: Vec<FaultWindow>) -> LoadReport {
        LoadReport {
            model: "open".into(),
            rate: Some([10.0, 10.0]),
            users: None,
            users_reached: None,
            started_at_ms: START,
            duration_s,
            requests: endpoints.iter().map(|e| e.requests).sum(),
            errors: endpoints.iter().map(|e| e.errors).sum(),
            unsent: 0,
            throughput: 0.0,
            endpoints,
            metrics: Vec::new(),
            faults,
        }
    }

    /// Milliseconds since the epoch of `s` seconds on the timelines' axis.
    fn at(s: f64) -> u64 {
        1_000_000 + (s * 1000.0).round() as u64
    }

    fn window(name: &str, from: f64, to: Option<f64>) -> FaultWindow {
        FaultWindow {
            name: name.into(),
            target: "link redis".into(),
            action: "down".into(),
            started_at_ms: at(from),
            ended_at_ms: to.map(at),
            error: None,
            recover_within_s: Some(3.0),
            max_errors_during: None,
            max_error_rate: 0.01,
        }
    }

    /// 10 requests a second for `n` seconds, `bad` seconds failing `errors` of them.
    fn timeline(n: usize, bad: &[(usize, u64)]) -> Vec<(u64, u64)> {
        let mut s = vec![(10, 0); n];
        for &(t, errors) in bad {
            s[t].1 = errors;
        }
        s
    }

    fn one(load: &LoadReport, kind: ObjectiveKind) -> ObjectiveVerdict {
        let v = judge(load);
        v.into_iter().find(|v| v.kind == kind).expect("the verdict")
    }

    #[test]
    fn a_fault_recovered_from_in_time_passes_with_the_seconds_to_the_first_good_second() {
        // Down in seconds 3.2–5.4; second 5 still fails, 6 on are clean.
        let l = load(
            12.0,
            vec![endpoint("e", &timeline(13, &[(3, 8), (4, 10), (5, 4)]))],
            vec![window("redis-down", 3.2, Some(5.4))],
        );
        let v = one(&l, ObjectiveKind::Recovery);
        assert!(v.passed, "{v:?}");
        assert_eq!(v.name, "recovery after redis-down");
        assert!((v.measured.unwrap() - 0.6).abs() < 1e-9, "{v:?}");
        assert_eq!((v.unit.as_str(), v.comparison.as_str(), v.bound), ("s", "<=", 3.0));
        assert!(v.detail.contains("from second 6 on"), "{}", v.detail);
    }

    #[test]
    fn a_fault_recovered_from_too_late_fails_with_the_time_it_took() {
        // Errors go on to second 9: recovered at second 10, 4.6 s after the end at 5.4.
        let l = load(
            14.0,
            vec![endpoint("e", &timeline(15, &[(4, 10), (5, 10), (7, 2), (9, 1)]))],
            vec![window("redis-down", 3.2, Some(5.4))],
        );
        let v = one(&l, ObjectiveKind::Recovery);
        assert!(!v.passed, "{v:?}");
        assert!((v.measured.unwrap() - 4.6).abs() < 1e-9, "{v:?}");
        assert!(v.detail.contains("misses"), "{}", v.detail);
    }

    #[test]
    fn a_later_faults_errors_are_not_an_earlier_ones_slow_recovery() {
        // Fault one 3.2–5.4, recovered at second 6; fault two 10.1–11.5 fails seconds 10 and
        // 11: fault one is judged up to second 9.
        let l = load(
            17.0,
            vec![endpoint("e", &timeline(18, &[(4, 10), (5, 10), (10, 10), (11, 10)]))],
            vec![window("redis-down", 3.2, Some(5.4)), window("pg-down", 10.1, Some(11.5))],
        );
        let v = judge(&l);
        let first = v.iter().find(|v| v.name == "recovery after redis-down").unwrap();
        assert!(first.passed, "{first:?}");
        assert!((first.measured.unwrap() - 0.6).abs() < 1e-9, "{first:?}");
        let second = v.iter().find(|v| v.name == "recovery after pg-down").unwrap();
        assert!(second.passed, "{second:?}");
        // A next fault too soon to see the recovery: nothing shown, never a pass.
        let l = load(
            17.0,
            vec![endpoint("e", &timeline(18, &[(4, 10), (5, 10)]))],
            vec![window("redis-down", 3.2, Some(5.4)), window("pg-down", 7.0, Some(8.0))],
        );
        let first = one(&l, ObjectiveKind::Recovery);
        assert!(!first.passed && first.measured.is_none(), "{first:?}");
        assert!(first.detail.contains("the next fault began 1.6 s after this one ended"), "{}", first.detail);
    }

    #[test]
    fn a_fault_never_recovered_from_fails_with_the_last_full_second() {
        // Second 12 is the last partial one (the load ends at 12.5 on the axis): its clean
        // requests show nothing; second 11 still fails 5 of 10.
        let mut seconds = timeline(13, &[(4, 10), (10, 3), (11, 5)]);
        seconds[12] = (4, 0);
        let l = load(12.0, vec![endpoint("e", &seconds)], vec![window("redis-down", 3.2, Some(5.4))]);
        let v = one(&l, ObjectiveKind::Recovery);
        assert!(!v.passed && v.measured.is_none(), "{v:?}");
        assert!(
            v.detail.contains("still failing 5 of 10 requests/s in the last full second (11)"),
            "{}",
            v.detail
        );
        // A last full second without requests is no evidence either.
        let mut quiet = timeline(13, &[(4, 10)]);
        quiet[11] = (0, 0);
        let l = load(12.0, vec![endpoint("e", &quiet)], vec![window("redis-down", 3.2, Some(5.4))]);
        let v = one(&l, ObjectiveKind::Recovery);
        assert!(!v.passed && v.measured.is_none(), "{v:?}");
        assert!(v.detail.contains("no request fell due in the last full second (11)"), "{}", v.detail);
    }

    #[test]
    fn a_load_that_ends_too_soon_after_the_fault_shows_no_recovery() {
        // The load ends at 7.5 on the axis, 2.1 s after the fault; every second after is clean.
        let l = load(
            7.0,
            vec![endpoint("e", &timeline(8, &[(4, 10)]))],
            vec![window("redis-down", 3.2, Some(5.4))],
        );
        let mut w = l.faults[0].clone();
        w.recover_within_s = Some(5.0);
        let v = judge_window(&l, &w).pop().unwrap();
        assert!(!v.passed && v.measured.is_none(), "{v:?}");
        assert_eq!(
            v.detail,
            "the load ended 2.1 s after the fault ended; recovery within 5 s cannot be shown"
        );
        // Ended after the load did.
        w.ended_at_ms = Some(at(9.0));
        let v = judge_window(&l, &w).pop().unwrap();
        assert!(!v.passed && v.detail.contains("the fault ended 1.5 s after the load did"), "{v:?}");
    }

    #[test]
    fn a_fault_that_never_ended_or_failed_passes_nothing() {
        let clean = vec![endpoint("e", &timeline(13, &[]))];
        let mut w = window("redis-down", 3.2, None);
        w.max_errors_during = Some(100);
        let l = load(12.0, clean.clone(), vec![w.clone()]);
        let v = judge(&l);
        assert_eq!(v.len(), 2);
        // Its errors during count to the load's end; its recovery cannot be shown.
        assert!(v[0].passed && v[0].measured == Some(0.0), "{:?}", v[0]);
        assert!(v[0].detail.contains("never ended"), "{}", v[0].detail);
        assert!(!v[1].passed && v[1].measured.is_none(), "{:?}", v[1]);
        assert!(v[1].detail.contains("never ended before the load did"), "{}", v[1].detail);
        // An error applying it: a failed verdict of its own, and neither bound passes.
        w.ended_at_ms = Some(at(5.4));
        w.error = Some("toxiproxy: connection refused".into());
        let v = judge(&load(12.0, clean, vec![w]));
        let names: Vec<(&str, bool)> = v.iter().map(|v| (v.name.as_str(), v.passed)).collect();
        assert_eq!(
            names,
            [
                ("fault redis-down applied", false),
                ("errors during redis-down", false),
                ("recovery after redis-down", false)
            ]
        );
        assert_eq!(v[0].kind, ObjectiveKind::FaultApplied);
        assert!(v[0].detail.contains("toxiproxy: connection refused"), "{}", v[0].detail);
        assert!(v.iter().all(|v| v.measured.is_none()), "{v:?}");
    }

    #[test]
    fn errors_during_count_every_endpoint_in_the_seconds_the_fault_overlaps() {
        // Seconds 3 to 5 inclusive: 8 + 10 + 4 on a, 1 + 1 on b; second 2 and 6 are outside.
        let a = endpoint("a", &timeline(13, &[(2, 9), (3, 8), (4, 10), (5, 4), (6, 9)]));
        let b = endpoint("b", &timeline(13, &[(3, 1), (5, 1)]));
        let mut w = window("redis-down", 3.2, Some(5.4));
        w.recover_within_s = None;
        w.max_errors_during = Some(24);
        let l = load(12.0, vec![a.clone(), b.clone()], vec![w.clone()]);
        let v = judge(&l);
        assert_eq!(v.len(), 1);
        assert!(v[0].passed, "{:?}", v[0]);
        assert_eq!((v[0].measured, v[0].kind), (Some(24.0), ObjectiveKind::ErrorsDuring));
        assert!(v[0].detail.starts_with("24 of 60 requests failed in seconds 3–5"), "{}", v[0].detail);
        assert_eq!(errors_during(&l, &w), Some((24, 60)));
        w.max_errors_during = Some(23);
        let v = judge(&load(12.0, vec![a, b], vec![w]));
        assert!(!v[0].passed && v[0].measured == Some(24.0), "{:?}", v[0]);
        assert!(v[0].detail.contains("more than 23"), "{}", v[0].detail);
    }

    #[test]
    fn second_boundaries_fall_in_the_second_they_begin() {
        // Began exactly at the start of second 3 and ended exactly at the start of second 5:
        // seconds 3, 4 and 5 are its own.
        let mut w = window("redis-down", 3.0, Some(5.0));
        w.max_errors_during = Some(0);
        let l = load(12.0, vec![endpoint("e", &timeline(13, &[(2, 1), (5, 1), (6, 1)]))], vec![w.clone()]);
        assert_eq!(errors_during(&l, &w), Some((1, 30)));
        // Second 5 failed once: recovery is second 7, 2 s after the end at the start of 5.
        let v = one(&l, ObjectiveKind::Recovery);
        assert!(v.passed && v.measured == Some(2.0), "{v:?}");
        // An ending second under the rate is a recovery of 0 s, though its errors came before
        // the end; one over it is not.
        let mut x = window("x", 3.5, Some(4.6));
        x.max_error_rate = 0.2;
        let l = load(12.0, vec![endpoint("e", &timeline(13, &[(3, 10), (4, 2)]))], vec![x.clone()]);
        let v = one(&l, ObjectiveKind::Recovery);
        assert!(v.passed && v.measured == Some(0.0), "{v:?}");
        let l = load(12.0, vec![endpoint("e", &timeline(13, &[(3, 10), (4, 3)]))], vec![x]);
        let v = one(&l, ObjectiveKind::Recovery);
        assert!(v.passed && (v.measured.unwrap() - 0.4).abs() < 1e-9, "{v:?}");
        // A fault that began before the load counts from its first second; one after its last
        // second shows nothing.
        let early = FaultWindow { started_at_ms: 10, ..w.clone() };
        assert_eq!(errors_during(&l, &early), Some((13, 60)));
        let late = FaultWindow { started_at_ms: at(12.6), ended_at_ms: Some(at(13.0)), ..w };
        let l = load(12.0, vec![endpoint("e", &timeline(13, &[]))], vec![late]);
        let v = one(&l, ObjectiveKind::ErrorsDuring);
        assert!(!v.passed && v.measured.is_none(), "{v:?}");
    }

    #[test]
    fn the_last_partial_second_is_left_out_of_recovery() {
        // The load ends at 12.5 on the axis: second 12 is partial. It alone is clean, which
        // is no recovery.
        let l = load(
            12.0,
            vec![endpoint("e", &timeline(13, &[(4, 10), (11, 10)]))],
            vec![window("redis-down", 3.2, Some(5.4))],
        );
        let v = one(&l, ObjectiveKind::Recovery);
        assert!(!v.passed && v.measured.is_none(), "{v:?}");
        // Ending on a boundary, the second before it is full: 13.0 on the axis ends second 12.
        let mut l = load(
            12.5,
            vec![endpoint("e", &timeline(13, &[(4, 10), (11, 10)]))],
            vec![window("redis-down", 3.2, Some(5.4))],
        );
        l.faults[0].recover_within_s = Some(7.0);
        let v = one(&l, ObjectiveKind::Recovery);
        assert!(v.passed && (v.measured.unwrap() - 6.6).abs() < 1e-9, "{v:?}");
    }
}
