//! The load's sections: the endpoints' table (with the target's metrics), the faults injected
//! during it, latency over time (a small chart per endpoint with its latency targets), latency
//! by percentile, and throughput and errors over time; every chart over time shares one time
//! axis that ends with the load's last second, and shades the faults' windows.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::chart::{self, Axis, Band, Bars, Extras, Rule, Series};
use super::faults;
use super::{ERROR_COLOR, HEADROOM, color, legend, num};
use crate::{EndpointReport, LoadReport, ObjectiveKind, ObjectiveVerdict, Second, decode_histogram};

/// Reads one figure of a second of the timeline.
type Pick = fn(&Second) -> Option<f64>;

pub(super) fn sections(load: &LoadReport, targets: &[ObjectiveVerdict]) -> Markup {
    html! {
        (endpoints(load))
        (faults::section(load))
        (latency_over_time(load, targets))
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

/// The end of the time axis: the end of the last second any endpoint reports, or of the run;
/// the axis ends there ([`Axis::time`]), not at a round tick past it.
fn seconds(load: &LoadReport) -> f64 {
    let last = load.endpoints.iter().flat_map(|e| e.timeline.iter().map(|t| t.t)).max().unwrap_or(0);
    (last as f64 + 1.0).max(load.duration_s.ceil()).max(1.0)
}

/// One small chart per endpoint, on one time axis: its p50, p99 and max per second, its
/// latency targets as dashed lines (green met, red missed), each on its own latency scale.
/// Eight endpoints' lines on one chart tangle into something nobody can read.
fn latency_over_time(load: &LoadReport, targets: &[ObjectiveVerdict]) -> Markup {
    let x = Axis::time(seconds(load), "seconds since the load started");
    let bands = faults::bands(load);
    let any_target = load.endpoints.iter().any(|e| !scaled(e, targets).drawn.is_empty());
    let mut key: Vec<(&str, &'static str, Option<&'static str>)> =
        LINES.iter().map(|(name, _, color, dash)| (*name, *color, dash.map(|_| "dashed"))).collect();
    if any_target {
        key.extend([
            ("target met", MET_COLOR, Some("dashed")),
            ("target missed", MISSED_COLOR, Some("dashed")),
        ]);
    }
    html! {
        section id="latency-over-time" {
            h2 { "Latency over time" }
            @if load.endpoints.iter().all(|e| e.requests == 0) {
                p.none { "No requests were answered." }
            } @else {
                p.note {
                    "Each endpoint on its own latency scale (milliseconds), every chart on the same seconds \
                    since the load started; each request by the second it was due, each second's figure \
                    at its middle."
                }
                (legend(key.into_iter()))
                div.multiples {
                    @for (i, e) in load.endpoints.iter().enumerate() {
                        (small_multiple(i, e, targets, &x, &bands))
                    }
                }
            }
        }
        "\n"
    }
}

/// The lines of an endpoint's chart: name, figure, colour, dash.
const LINES: [(&str, Pick, &str, Option<&str>); 3] = [
    ("p50", |t| t.p50, "#4e79a7", None),
    ("p99", |t| t.p99, "#f28e2b", None),
    ("max", |t| t.max, "#9a9a9a", Some("4 4")),
];
const MET_COLOR: &str = "#1a7f37";
const MISSED_COLOR: &str = "#c62828";

/// The latency targets of endpoint `name`: its percentiles' bounds.
fn latency_targets<'a>(
    targets: &'a [ObjectiveVerdict],
    name: &'a str,
) -> impl Iterator<Item = &'a ObjectiveVerdict> {
    targets.iter().filter(move |t| {
        t.endpoint.as_deref() == Some(name)
            && matches!(t.kind, ObjectiveKind::P50 | ObjectiveKind::P95 | ObjectiveKind::P99)
    })
}

/// An endpoint's latency targets against its chart's scale: a bound up to twice the data's top
/// stretches the scale and is drawn; one further off would flatten the lines into the axis, and
/// is named above the chart instead.
struct Scaled<'a> {
    /// The top of the latency scale before headroom.
    top: f64,
    drawn: Vec<&'a ObjectiveVerdict>,
    above: Vec<&'a ObjectiveVerdict>,
}

fn scaled<'a>(e: &'a EndpointReport, targets: &'a [ObjectiveVerdict]) -> Scaled<'a> {
    let data = e.timeline.iter().flat_map(|t| [t.p50, t.p99, t.max]).flatten().fold(0.0, f64::max);
    let (drawn, above): (Vec<_>, Vec<_>) =
        latency_targets(targets, &e.name).partition(|t| e.requests > 0 && t.bound <= 2.0 * data);
    let top = drawn.iter().map(|t| t.bound).fold(data, f64::max);
    Scaled { top, drawn, above }
}

/// A latency target as a chart names it: `p99 < 250 ms`.
fn bound_name(t: &ObjectiveVerdict) -> String {
    format!("{} {} {} {}", percentile(t.kind), t.comparison, num(t.bound), t.unit)
}

/// Where a second's figure is drawn: the middle of the second it sums up.
fn mid(t: u64) -> f64 {
    t as f64 + 0.5
}

/// Endpoint `e`'s chart (`i` its colour), titled by its name, or a note when it had no requests.
fn small_multiple(
    i: usize,
    e: &EndpointReport,
    targets: &[ObjectiveVerdict],
    x: &Axis,
    bands: &[Band],
) -> Markup {
    let Scaled { top, drawn, above } = scaled(e, targets);
    let rules: Vec<Rule> = drawn
        .iter()
        .map(|t| Rule {
            name: bound_name(t),
            value: t.bound,
            color: if t.passed { MET_COLOR } else { MISSED_COLOR },
        })
        .collect();
    let series: Vec<Series> = LINES
        .iter()
        .map(|(name, f, color, dash)| Series {
            name: format!("{} {name}", e.name),
            color,
            dash: *dash,
            width: if dash.is_some() { 1.2 } else { 1.8 },
            points: e.timeline.iter().map(|t| f(t).map(|v| (mid(t.t), v))).collect(),
        })
        .collect();
    let above: Vec<String> = above.iter().filter(|_| e.requests > 0).map(|t| bound_name(t)).collect();
    html! {
        figure.small data-endpoint=(e.name) {
            figcaption {
                span.sw style={ "background:" (color(i)) } {} (e.name)
                @if !above.is_empty() {
                    " " span.note { "· targets above the scale: " (above.join(", ")) }
                }
            }
            @if e.requests == 0 {
                p.none { "This endpoint had no requests." }
            } @else {
                (chart::draw(
                    &format!("latency per second of {}: p50, p99, max", e.name),
                    chart::SMALL_WIDTH,
                    220.0,
                    x,
                    &Axis::linear(0.0, top * HEADROOM, "ms"),
                    &series,
                    &Extras { bands, rules: &rules, ..Extras::default() },
                ))
            }
        }
    }
}

/// The percentile a latency target bounds, as the page writes it.
fn percentile(kind: ObjectiveKind) -> &'static str {
    match kind {
        ObjectiveKind::P50 => "p50",
        ObjectiveKind::P95 => "p95",
        _ => "p99",
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
    let x = Axis::time(seconds(load), "seconds since the load started");
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
                    "Requests by the second they fell due (drawn at its middle); " (crate::plural(errors_total, "error", "errors"))
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
            points: e.timeline.iter().map(|t| Some((mid(t.t), t.requests as f64))).collect(),
        })
        .collect();
    series.push(Series {
        name: "all endpoints".to_owned(),
        color: "#222222",
        dash: None,
        width: 2.5,
        points: total.iter().map(|(t, (n, _))| Some((mid(*t), *n as f64))).collect(),
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
