//! The faults injected during the load: a band for each on the load's time charts, and the
//! "Faults" table — what, on what, when, the errors while it lasted and the recovery after it,
//! judged as `report.json`'s targets are ([`crate::faults`]).

use maud::{Markup, html};

use super::chart::Band;
use super::{badge, num, pass_fail};
use crate::faults::{axis_s, errors_during, into_load_s, judge_window};
use crate::{FaultWindow, LoadReport, ObjectiveKind};

/// A band per fault, in the time charts' seconds (the timelines' axis); one that never ended
/// runs to the chart's end.
pub(super) fn bands(load: &LoadReport) -> Vec<Band> {
    load.faults
        .iter()
        .map(|w| Band {
            name: w.name.clone(),
            from: axis_s(load, w.started_at_ms).max(0.0),
            to: w.ended_at_ms.map(|e| axis_s(load, e).max(0.0)),
        })
        .collect()
}

/// The faults' table; nothing when the load carried none.
pub(super) fn section(load: &LoadReport) -> Markup {
    if load.faults.is_empty() {
        return html! {};
    }
    html! {
        section id="faults" {
            h2 { "Faults" }
            table.faults {
                thead {
                    tr {
                        th { "fault" } th { "target" } th { "action" } th { "start s" } th { "end s" }
                        th { "errors during" } th { "recovery" } th { "error" }
                    }
                }
                tbody {
                    @for w in &load.faults {
                        (row(load, w))
                    }
                }
            }
            p.note {
                "Start and end in seconds after the load began; shaded on the charts over time. Errors \
                during: failed requests of every endpoint in the seconds the fault overlapped. Recovery: \
                from the fault's end to the first second from which every full second to the load's end \
                had an error rate under the bound, to one second."
            }
        }
        "\n"
    }
}

fn row(load: &LoadReport, w: &FaultWindow) -> Markup {
    let verdicts = judge_window(load, w);
    let passed = verdicts.iter().all(|v| v.passed);
    let recovery = verdicts.iter().find(|v| v.kind == ObjectiveKind::Recovery);
    let during = verdicts.iter().find(|v| v.kind == ObjectiveKind::ErrorsDuring);
    html! {
        tr class=(pass_fail(passed)) data-fault=(w.name) {
            td { (w.name) }
            td { (w.target) }
            td { (w.action) }
            td.n { (num(into_load_s(load, w.started_at_ms))) }
            td.n {
                @match w.ended_at_ms {
                    Some(e) => { (num(into_load_s(load, e))) }
                    None => { span.bad { "never ended" } }
                }
            }
            td.n {
                @match errors_during(load, w) {
                    Some((errors, requests)) => { (errors) " of " (requests) }
                    None => { "—" }
                }
                @if let Some(v) = during {
                    " " span.note { "≤ " (num(v.bound)) } " " (badge(v.passed, "met", "missed"))
                }
            }
            td {
                @match recovery {
                    Some(v) => {
                        @match v.measured {
                            Some(m) => { (num(m)) " s" }
                            None => { "—" }
                        }
                        " " span.note { "≤ " (num(v.bound)) " s" } " " (badge(v.passed, "met", "missed"))
                        @if v.measured.is_none() {
                            br; span.note { (v.detail) }
                        }
                    }
                    None => { span.note { "no bound" } }
                }
            }
            td {
                @if let Some(error) = &w.error {
                    span.fault-error { (error) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A load of 12 s from 0.5 s into wall-clock second 100, 10 requests a second, seconds 3
    /// and 4 failing, with `faults`.
    fn load(faults: serde_json::Value) -> LoadReport {
        let timeline: Vec<serde_json::Value> = (0..13)
            .map(|t| {
                serde_json::json!({
                    "t": t, "requests": 10, "errors": if t == 3 || t == 4 { 10 } else { 0 },
                    "p50": null, "p90": null, "p99": null, "max": null, "histogram": ""
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "model": "open", "rate": [10.0, 10.0], "users": null, "users_reached": null,
            "started_at_ms": 100_500, "duration_s": 12.0, "requests": 130, "errors": 20, "unsent": 0,
            "throughput": 10.0, "metrics": [], "faults": faults,
            "endpoints": [{
                "name": "e", "requests": 130, "errors": 20, "outcomes": {}, "throughput": 10.0,
                "latency_ms": { "min": 0, "mean": 0, "p50": 0, "p90": 0, "p95": 0, "p99": 0, "p99_9": 0, "max": 0 },
                "histogram": "", "timeline": timeline
            }]
        }))
        .unwrap()
    }

    #[test]
    fn the_faults_table_shows_each_window_judged_and_its_band_in_timeline_seconds() {
        let l = load(serde_json::json!([
            { "name": "down <b>", "target": "link redis", "action": "down", "started_at_ms": 103_200,
              "ended_at_ms": 104_800, "error": null, "recover_within_s": 2.0, "max_errors_during": 15,
              "max_error_rate": 0.0 },
            { "name": "slow", "target": "link upstream", "action": "latency 200 ms", "started_at_ms": 108_000,
              "ended_at_ms": null, "error": "removing it failed", "recover_within_s": 1.0,
              "max_errors_during": null, "max_error_rate": 0.0 }
        ]));
        let page = section(&l).into_string();
        assert!(page.contains(r#"<tr class="fail" data-fault="down &lt;b&gt;">"#), "{page}");
        // 2.7 s and 4.3 s after the load began; 20 of 20 failed in seconds 3–4, over 15; the
        // recovery at second 5, 0.2 s after the end.
        assert!(page.contains(r#"<td class="n">2.70</td><td class="n">4.30</td>"#), "{page}");
        assert!(
            page.contains("20 of 20 <span class=\"note\">≤ 15</span> <span class=\"badge fail\">missed"),
            "{page}"
        );
        assert!(page.contains("0.200 s"), "{page}");
        assert!(page.contains(r#"<span class="bad">never ended</span>"#), "{page}");
        assert!(page.contains(r#"<span class="fault-error">removing it failed</span>"#), "{page}");
        assert!(page.contains("the fault did not happen as planned"), "{page}");
        let bands = bands(&l);
        assert_eq!((bands[0].from, bands[0].to), (3.2, Some(4.8)));
        assert_eq!((bands[1].from, bands[1].to), (8.0, None));
        assert_eq!(section(&load(serde_json::json!([]))).into_string(), "");
    }
}
