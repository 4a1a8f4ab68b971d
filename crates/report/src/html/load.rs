//! The load's sections: the endpoints' table (with the target's metrics), the faults injected
//! during it, latency over time, latency by percentile, and throughput and errors over time;
//! every chart over time shades the faults' windows.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::chart::{self, Axis, Band, Bars, Series};
use super::faults;
use super::{ERROR_COLOR, HEADROOM, color, legend, num};
use crate::{EndpointReport, LoadReport, Second, decode_histogram};

/// p50, p90, p99 and max in one endpoint's latency chart.
const PERCENTILE_COLORS: [&str; 4] = ["#4e79a7", "#f28e2b", "#e15759", "#9a9a9a"];
/// Reads one figure of a second of the timeline.
type Pick = fn(&Second) -> Option<f64>;

pub(super) fn sections(load: &LoadReport) -> Markup {
    html! {
        (endpoints(load))
        (faults::section(load))
        (latency_over_time(load))
        (distribution(&load.endpoints))
        (throughput(load))
    }
}

/// How the load was offered, in words.
fn offered(load: &LoadReport) -> String {
    match (load.model.as_str(), load.rate, load.users) {
        ("open", Some([a, b]), _) if a == b => format!("open model, {} requests/s offered", num(a)),
        ("open", Some([a, b]), _) => format!("open model, {} → {} requests/s offered", num(a), num(b)),
        ("closed", _, Some(users)) => format!(
            "closed model, {users} users ({} reached)",
            load.users_reached.map_or("?".to_owned(), |u| u.to_string())
        ),
        (model, ..) => format!("{model} model"),
    }
}

/// The endpoints' table, a row each and one for all, then the target's metrics.
fn endpoints(load: &LoadReport) -> Markup {
    html! {
        section id="endpoints" {
            h2 { "Endpoints" }
            p {
                (offered(load)) " · " (num(load.duration_s)) " s · "
                (crate::plural(load.requests, "request", "requests")) ", "
                (crate::plural(load.errors, "error", "errors")) " · " (num(load.throughput)) " answered/s"
                @if load.unsent > 0 {
                    " · "
                    span.warn {
                        (crate::plural(load.unsent, "request", "requests")) " fell due and "
                        @if load.unsent == 1 { "was" } @else { "were" }
                        " never sent: the generator could not offer the rate asked for"
                    }
                }
            }
            table {
                thead {
                    tr {
                        th { "endpoint" } th { "requests" } th { "errors" } th { "req/s" } th { "p50" }
                        th { "p90" } th { "p95" } th { "p99" } th { "p99.9" } th { "max" } th { "outcomes" }
                    }
                }
                tbody {
                    @for (i, e) in load.endpoints.iter().enumerate() {
                        (endpoint_row(i, e))
                    }
                    tr.total {
                        td { "all" }
                        td.n { (load.requests) }
                        td.n { (load.errors) }
                        td.n { (num(load.throughput)) }
                        td colspan="7" {}
                    }
                }
            }
            p.note {
                "Latencies in milliseconds, each request timed from when it was due to its last byte (a \
                WebSocket session: to the server's first message; its sessions open at once sampled as \
                each second ended)."
            }
            @if !load.metrics.is_empty() {
                h3 { "The target's metrics over the run" }
                table.metrics {
                    thead { tr { th { "metric" } th { "value" } th { "numerator" } th { "denominator" } } }
                    tbody {
                        @for m in &load.metrics {
                            tr {
                                td { (m.name) }
                                td.n {
                                    @match m.value {
                                        Some(v) => { (format!("{v:.3}")) }
                                        None => { "n/a (the denominator did not move)" }
                                    }
                                }
                                td.n { (num(m.numerator)) }
                                td.n { (num(m.denominator)) }
                            }
                        }
                    }
                }
            }
        }
        "\n"
    }
}

fn endpoint_row(i: usize, e: &EndpointReport) -> Markup {
    let l = &e.latency_ms;
    html! {
        tr {
            td { span.sw style={ "background:" (color(i)) } {} (e.name) }
            td.n { (e.requests) }
            td.n.bad[e.errors > 0] { (e.errors) }
            td.n { (num(e.throughput)) }
            @if e.requests == 0 {
                td.n colspan="6" { "no requests" }
            } @else {
                @for v in [l.p50, l.p90, l.p95, l.p99, l.p99_9, l.max] {
                    td.n { (num(v)) }
                }
            }
            td {
                @for (j, (outcome, n)) in e.outcomes.iter().enumerate() {
                    @if j > 0 { " " }
                    // 2xx muted, other statuses plain (the profile may expect them: a 429 from
                    // a rate limit), no answer at all (`timeout`, `connect`, …) in red.
                    @let class = match outcome.as_bytes().first() {
                        Some(b'2') => "ok",
                        Some(c) if c.is_ascii_digit() => "status",
                        _ => "bad",
                    };
                    span class=(class) { (outcome) ": " (n) }
                }
                @if let Some(open) = e.timeline.iter().filter_map(|t| t.open).max() {
                    " " span.status { "at most " (open) " open at once" }
                }
            }
        }
    }
}

/// The end of the time axis: the end of the last second any endpoint reports, or of the run.
fn seconds(load: &LoadReport) -> f64 {
    let last = load.endpoints.iter().flat_map(|e| e.timeline.iter().map(|t| t.t)).max().unwrap_or(0);
    (last as f64 + 1.0).max(load.duration_s.ceil()).max(1.0)
}

/// Every endpoint's p99 per second, and a view per endpoint of its p50, p90, p99 and max, one
/// shown at a time by the selector (the page's script).
fn latency_over_time(load: &LoadReport) -> Markup {
    let x = Axis::linear(
        0.0,
        seconds(load),
        "seconds since the load started (each request by the second it was due)",
    );
    let bands = faults::bands(load);
    html! {
        section id="latency-over-time" {
            h2 { "Latency over time" }
            @if load.endpoints.iter().all(|e| e.requests == 0) {
                p.none { "No requests were answered." }
            } @else {
                p {
                    label {
                        "Show "
                        select id="latency-view" {
                            option value="all" { "p99 of every endpoint" }
                            @for (i, e) in load.endpoints.iter().enumerate() {
                                option value={ "e" (i) } { (e.name) ": p50, p90, p99, max" }
                            }
                        }
                    }
                }
                div.view data-view="all" { (every_p99(load, &x, &bands)) }
                @for (i, e) in load.endpoints.iter().enumerate() {
                    div.view data-view={ "e" (i) } hidden {
                        @if e.requests == 0 {
                            p.none { "This endpoint had no requests." }
                        } @else {
                            (percentiles(e, &x, &bands))
                        }
                    }
                }
            }
        }
        "\n"
    }
}

/// Every endpoint's p99 per second, one line each.
fn every_p99(load: &LoadReport, x: &Axis, bands: &[Band]) -> Markup {
    let top = load.endpoints.iter().flat_map(|e| e.timeline.iter().filter_map(|t| t.p99)).fold(0.0, f64::max);
    let series: Vec<Series> = load
        .endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| e.requests > 0)
        .map(|(i, e)| Series {
            name: format!("{} p99", e.name),
            color: color(i),
            dash: None,
            width: 2.0,
            points: e.timeline.iter().map(|t| t.p99.map(|v| (t.t as f64, v))).collect(),
        })
        .collect();
    html! {
        (chart::banded(
            "p99 latency per second of every endpoint",
            320.0,
            x,
            &Axis::linear(0.0, top * HEADROOM, "p99 latency (ms)"),
            &series,
            &[],
            bands,
        ))
        (legend(series.iter().map(|l| (l.name.as_str(), l.color, None))))
    }
}

/// One endpoint's p50, p90, p99 and max per second.
fn percentiles(e: &EndpointReport, x: &Axis, bands: &[Band]) -> Markup {
    let pick: [(&str, Pick); 4] =
        [("p50", |t| t.p50), ("p90", |t| t.p90), ("p99", |t| t.p99), ("max", |t| t.max)];
    let top = e.timeline.iter().filter_map(|t| t.max).fold(0.0, f64::max);
    let series: Vec<Series> = pick
        .iter()
        .zip(PERCENTILE_COLORS)
        .map(|((name, f), color)| Series {
            name: format!("{} {name}", e.name),
            color,
            dash: (*name == "max").then_some("4 4"),
            width: if *name == "max" { 1.5 } else { 2.0 },
            points: e.timeline.iter().map(|t| f(t).map(|v| (t.t as f64, v))).collect(),
        })
        .collect();
    html! {
        (chart::banded(
            &format!("latency percentiles per second of {}", e.name),
            320.0,
            x,
            &Axis::linear(0.0, top * HEADROOM, "latency (ms)"),
            &series,
            &[],
            bands,
        ))
        (legend(
            pick.iter().zip(PERCENTILE_COLORS).map(|((n, _), c)| (*n, c, (*n == "max").then_some("dashed")))
        ))
    }
}

/// Latency by percentile, on HdrHistogram's "nines" axis, from each endpoint's full histogram.
fn distribution(endpoints: &[EndpointReport]) -> Markup {
    let mut notes = Vec::new();
    let mut curves = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        match decode_histogram(&e.histogram) {
            Ok(h) if h.is_empty() => notes.push(format!("{}: no requests", e.name)),
            Ok(h) => {
                let points: Vec<(f64, f64)> = h
                    .iter_quantiles(5)
                    .map(|v| (v.quantile_iterated_to(), h.highest_equivalent(v.value_iterated_to())))
                    .filter(|(q, _)| *q < 1.0)
                    .map(|(q, v)| (-(1.0 - q).log10(), v as f64 / 1000.0))
                    .collect();
                curves.push((i, h.len(), h.max() as f64 / 1000.0, points));
            }
            Err(err) => notes.push(format!("{}: unreadable histogram ({err})", e.name)),
        }
    }
    // As many nines as the largest sample can support (1 in 10ⁿ), between 2 and 6.
    let most = curves.iter().map(|c| c.1).max().unwrap_or(1).max(1);
    let nines = ((most as f64).log10().ceil() as u32).clamp(2, 6);
    let top = curves.iter().map(|c| c.2).fold(0.0, f64::max);
    let series: Vec<Series> = curves
        .into_iter()
        .map(|(i, _, max, mut points)| {
            points.retain(|p| p.0 <= f64::from(nines));
            points.push((f64::from(nines), max));
            Series {
                name: endpoints[i].name.clone(),
                color: color(i),
                dash: None,
                width: 2.0,
                points: points.into_iter().map(Some).collect(),
            }
        })
        .collect();
    html! {
        section id="distribution" {
            h2 { "Latency by percentile" }
            @if series.is_empty() {
                p.none { "No latencies were recorded." }
            } @else {
                (chart::svg(
                    "latency by percentile of every endpoint",
                    360.0,
                    &Axis::nines(nines, "percentile"),
                    &Axis::linear(0.0, top * HEADROOM, "latency (ms)"),
                    &series,
                    &[],
                ))
                (legend(series.iter().map(|l| (l.name.as_str(), l.color, None))))
                p.note {
                    "Decoded from each endpoint's whole histogram (HdrHistogram, 3 significant figures); \
                    the line ends at the maximum."
                }
            }
            @if !notes.is_empty() {
                p.note { "Not drawn: " (notes.join("; ")) "." }
            }
        }
        "\n"
    }
}

/// Requests per second, every endpoint's and their sum, and errors per second on a chart of
/// their own.
fn throughput(load: &LoadReport) -> Markup {
    let x = Axis::linear(0.0, seconds(load), "seconds since the load started");
    let mut total: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for e in &load.endpoints {
        for t in &e.timeline {
            let slot = total.entry(t.t).or_default();
            slot.0 += t.requests;
            slot.1 += t.errors;
        }
    }
    let errors_total: u64 = total.values().map(|v| v.1).sum();
    let bands = faults::bands(load);
    html! {
        section id="throughput" {
            h2 { "Throughput and errors over time" }
            @if total.is_empty() {
                p.none { "No requests fell due." }
            } @else {
                (requests_chart(load, &total, &x, &bands))
                // Errors on their own scale: a few per second must not vanish under hundreds of
                // requests.
                @if errors_total > 0 {
                    (errors_chart(&total, &x, &bands))
                }
                p.note {
                    "Requests by the second they fell due; " (crate::plural(errors_total, "error", "errors"))
                    " in all (an answer the profile does not accept, or none)"
                    @if errors_total > 0 { ", by second in red" }
                    "."
                }
            }
        }
        "\n"
    }
}

/// Requests per second of every endpoint and of all of them, `total` by second.
fn requests_chart(load: &LoadReport, total: &BTreeMap<u64, (u64, u64)>, x: &Axis, bands: &[Band]) -> Markup {
    let mut series: Vec<Series> = load
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| Series {
            name: e.name.clone(),
            color: color(i),
            dash: None,
            width: 1.5,
            points: e.timeline.iter().map(|t| Some((t.t as f64, t.requests as f64))).collect(),
        })
        .collect();
    series.push(Series {
        name: "all endpoints".to_owned(),
        color: "#222222",
        dash: None,
        width: 2.5,
        points: total.iter().map(|(t, (n, _))| Some((*t as f64, *n as f64))).collect(),
    });
    let top = total.values().map(|v| v.0).max().unwrap_or(0) as f64;
    html! {
        (chart::banded(
            "requests per second",
            320.0,
            x,
            &Axis::count(top * HEADROOM, "requests per second"),
            &series,
            &[],
            bands,
        ))
        (legend(series.iter().map(|l| (l.name.as_str(), l.color, None))))
    }
}

/// Errors per second as bars, `total` by second.
fn errors_chart(total: &BTreeMap<u64, (u64, u64)>, x: &Axis, bands: &[Band]) -> Markup {
    let errors = Bars {
        name: "errors".to_owned(),
        color: ERROR_COLOR,
        width: 0.8,
        points: total.iter().map(|(t, (_, e))| (*t as f64 + 0.1, *e as f64)).collect(),
    };
    let top = total.values().map(|v| v.1).max().unwrap_or(0) as f64;
    chart::banded(
        "errors per second",
        220.0,
        x,
        &Axis::count(top * HEADROOM, "errors per second"),
        &[],
        std::slice::from_ref(&errors),
        bands,
    )
}
