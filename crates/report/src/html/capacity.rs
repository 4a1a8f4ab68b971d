//! The capacity section: what was stepped and where it stopped, the steps' table, throughput
//! against concurrency with the Universal Scalability Law's fit, the fit in words, p99
//! against the offered load with the knee, and the instance plan — a function each.

use maud::{Markup, html};

use super::chart::{self, Axis, Series};
use super::{ERROR_COLOR, HEADROOM, PALETTE, badge, legend, num, pass_fail};
use crate::capacity::{CapacityReport, UslFit};
use crate::{ObjectiveKind, ObjectiveVerdict};

pub(super) fn section(c: &CapacityReport, targets: &[ObjectiveVerdict]) -> Markup {
    html! {
        section id="capacity" {
            h2 { "Capacity" }
            (overview(c))
            (steps(c))
            (throughput_chart(c))
            (fit(c))
            (latency_chart(c, targets))
            (plan(c))
        }
        "\n"
    }
}

/// How the load was stepped, the sustainable step (or none) and why stepping stopped.
fn overview(c: &CapacityReport) -> Markup {
    let s = &c.stepping;
    html! {
        p {
            (c.model) " model · " (crate::plural(c.steps.len() as u64, "step", "steps")) " of " (num(s.hold_s)) " s from " (num(s.start))
            " to at most " (num(s.ceiling)) " " (c.unit) " by " (num(s.step)) " · on " (c.instances)
            " instance" @if c.instances != 1 { "s" } " · "
            @match c.sustainable {
                Some(i) => {
                    (badge(true, "SUSTAINABLE", "")) " up to "
                    strong { (num(c.steps[i].offered)) " " (c.unit) }
                    " (" (num(c.steps[i].throughput)) " answered/s, p99 " (num(c.steps[i].latency_ms.p99))
                    " ms); the sections below are that step's"
                }
                None => {
                    (badge(false, "", "NO STEP SUSTAINABLE")) "; the sections below are the first step's"
                }
            }
        }
        p { "Stopped: " (c.stopped) "." }
        @if c.limited_by_generator {
            p.warn {
                "The generator fell behind (requests fell due and were never sent): the stack's capacity \
                is at least the sustainable step, not at most."
            }
        }
    }
}

/// A row per step: offered, answered, concurrency, latencies, errors and its verdict.
fn steps(c: &CapacityReport) -> Markup {
    html! {
        table.steps {
            thead {
                tr {
                    th { "step" } th { "offered" } th { "answered/s" } th { "concurrency" } th { "p50 ms" }
                    th { "p95 ms" } th { "p99 ms" } th { "errors" } th { "unsent" } th { "verdict" }
                }
            }
            tbody {
                @for (i, step) in c.steps.iter().enumerate() {
                    tr class=(pass_fail(step.passed)) {
                        td.n { (i + 1) }
                        td.n { (num(step.offered)) " " (c.unit) }
                        td.n { (num(step.throughput)) }
                        td.n { (num(step.concurrency)) }
                        td.n { (num(step.latency_ms.p50)) }
                        td.n { (num(step.latency_ms.p95)) }
                        td.n { (num(step.latency_ms.p99)) }
                        td.n { (step.errors) }
                        td.n { (step.unsent) }
                        td {
                            @if c.sustainable == Some(i) {
                                (badge(true, "SUSTAINABLE", ""))
                            } @else if step.passed {
                                (badge(true, "MET", ""))
                            } @else if !step.complete {
                                span.interrupted { "interrupted" }
                            } @else {
                                (badge(false, "", "BROKE")) " "
                                details.missed {
                                    summary {
                                        (step.missed.len()) " target" @if step.missed.len() != 1 { "s" }
                                        " missed"
                                    }
                                    ul { @for m in &step.missed { li { (m) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Throughput against concurrency, the fitted curve over it, the peak marked; nothing when
/// no step completed.
fn throughput_chart(c: &CapacityReport) -> Markup {
    let measured: Vec<(f64, f64)> =
        c.steps.iter().filter(|st| st.complete).map(|st| (st.concurrency, st.throughput)).collect();
    if measured.is_empty() {
        return html! {};
    }
    let peak_n = c.fit.and_then(|f| f.peak_concurrency);
    // The axis spans the steps that met the targets (all of them when none did): a broken
    // step's queue can hold a hundred times their concurrency and would flatten them into the
    // axis. The peak is drawn when it is within reach of them.
    let passed_n = c.steps.iter().filter(|st| st.passed).map(|st| st.concurrency).fold(0.0, f64::max);
    let all_n = measured.iter().map(|p| p.0).fold(0.0, f64::max);
    let reach = if passed_n > 0.0 { all_n.min(passed_n * 3.0) } else { all_n };
    let shown_peak = peak_n.filter(|n| *n <= reach * 3.0);
    let x_max = shown_peak.map_or(reach, |n| n.max(reach)) * 1.1;
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let beyond: Vec<String> = c
        .steps
        .iter()
        .filter(|st| st.complete && st.concurrency > x_max)
        .map(|st| {
            format!(
                "{} {} (concurrency {}, {} answered/s)",
                num(st.offered),
                c.unit,
                num(st.concurrency),
                num(st.throughput)
            )
        })
        .collect();
    let mut series = vec![Series {
        name: "measured".to_owned(),
        color: PALETTE[0],
        dash: None,
        width: 2.5,
        points: measured.iter().filter(|p| p.0 <= x_max).map(|p| Some(*p)).collect(),
    }];
    if let Some(f) = &c.fit {
        series.push(Series {
            name: format!("USL fit (R² {})", num(f.r_squared)),
            color: PALETTE[1],
            dash: Some("6 4"),
            width: 2.0,
            points: (0..=100)
                .map(|i| x_max * f64::from(i) / 100.0)
                .map(|n| Some((n, f.throughput(n))))
                .collect(),
        });
    }
    let mut y_top = measured.iter().filter(|p| p.0 <= x_max).map(|p| p.1).fold(0.0, f64::max);
    if let (Some(n), Some(f)) = (shown_peak, &c.fit) {
        y_top = y_top.max(f.throughput(n));
        series.push(Series {
            name: format!("peak: N* {}", num(n)),
            color: ERROR_COLOR,
            dash: Some("2 3"),
            width: 1.5,
            points: vec![Some((n, 0.0)), Some((n, y_top * HEADROOM))],
        });
    }
    html! {
        h3 { "Throughput against concurrency" }
        (chart::svg(
            "answers per second against requests in flight, measured and fitted",
            300.0,
            &Axis::linear(
                0.0,
                x_max,
                "concurrency: requests in flight (users, or throughput × mean latency)",
            ),
            &Axis::count(y_top * HEADROOM, "answered per second"),
            &series,
            &[],
        ))
        (legend(series.iter().map(|l| (l.name.as_str(), l.color, l.dash.map(|_| "dashed")))))
        @if !beyond.is_empty() {
            p.note { "Beyond the chart (in the fit): " (beyond.join("; ")) "." }
        }
    }
}

/// The USL's parameters and what they predict, or why there is no fit.
fn fit(c: &CapacityReport) -> Markup {
    match (&c.fit, &c.fit_note) {
        (Some(f), _) => html! {
            p {
                "Universal Scalability Law, X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted to " (f.points)
                " steps: λ " (num(f.lambda)) " answered/s per unit of concurrency, contention σ "
                (small(f.sigma)) ", coherency κ " (small(f.kappa)) ", R² " (num(f.r_squared)) ". "
                (prediction(f))
            }
        },
        (None, Some(note)) => html! { p.none { "No USL fit: " (note) "." } },
        (None, None) => html! {},
    }
}

/// Where the fitted curve peaks, or where it levels off.
fn prediction(f: &UslFit) -> String {
    match (f.peak_concurrency, f.peak_throughput) {
        (Some(n), Some(x)) => {
            format!(
                "Predicted peak: {} answered/s at concurrency {}; beyond it throughput falls.",
                num(x),
                num(n)
            )
        }
        _ if f.sigma > 0.0 => {
            format!(
                "No peak: κ = 0, throughput levels off toward λ/σ = {} answered/s.",
                num(f.lambda / f.sigma)
            )
        }
        _ => "No peak: σ = κ = 0, throughput grew linearly over the steps measured.".to_owned(),
    }
}

/// p99 against the offered load, the p99 target, the knee (the last sustainable step).
fn latency_chart(c: &CapacityReport, targets: &[ObjectiveVerdict]) -> Markup {
    let p99: Vec<(f64, f64)> = c.steps.iter().map(|st| (st.offered, st.latency_ms.p99)).collect();
    if p99.is_empty() {
        return html! {};
    }
    let bound = targets
        .iter()
        .filter(|t| t.kind == ObjectiveKind::P99)
        .map(|t| t.bound)
        .fold(f64::INFINITY, f64::min);
    let x_max = p99.iter().map(|p| p.0).fold(0.0, f64::max) * 1.1;
    let mut y_top = p99.iter().map(|p| p.1).fold(0.0, f64::max);
    let mut series = vec![Series {
        name: "p99 of every request".to_owned(),
        color: PALETTE[3],
        dash: None,
        width: 2.5,
        points: p99.iter().map(|p| Some(*p)).collect(),
    }];
    if bound.is_finite() && bound <= y_top * 3.0 {
        y_top = y_top.max(bound);
        series.push(Series {
            name: format!("p99 target {} ms", num(bound)),
            color: ERROR_COLOR,
            dash: Some("6 4"),
            width: 1.5,
            points: vec![Some((0.0, bound)), Some((x_max, bound))],
        });
    }
    if let Some(i) = c.sustainable {
        let knee = c.steps[i].offered;
        series.push(Series {
            name: format!("knee: {} {}, the highest sustainable step", num(knee), c.unit),
            color: "#222222",
            dash: Some("2 3"),
            width: 1.5,
            points: vec![Some((knee, 0.0)), Some((knee, y_top * HEADROOM))],
        });
    }
    html! {
        h3 { "Latency against the offered load" }
        (chart::svg(
            "p99 latency against the offered load",
            300.0,
            &Axis::linear(0.0, if x_max > 0.0 { x_max } else { 1.0 }, &format!("offered: {}", c.unit)),
            &Axis::linear(0.0, y_top * HEADROOM, "p99 ms"),
            &series,
            &[],
        ))
        (legend(series.iter().map(|l| (l.name.as_str(), l.color, l.dash.map(|_| "dashed")))))
    }
}

/// The instances the users' goal needs and the assumptions behind the figure; when a goal was
/// set and no step was sustainable, that there is no plan.
fn plan(c: &CapacityReport) -> Markup {
    html! {
        @if let Some(p) = &c.plan {
            h3 { "Plan" }
            p {
                strong { (p.instances) " instance" @if p.instances != 1 { "s" } }
                " for " (p.users_goal) " users at " (num(p.per_user_rate)) " requests/s each ("
                (num(p.required_rate)) " requests/s in all)."
            }
            p { "Assuming:" }
            ul.assumptions { @for a in &p.assumptions { li { (a) } } }
        } @else if c.stepping.users_goal.is_some() {
            h3 { "Plan" }
            p.none { "None: no step was sustainable to plan from." }
        }
    }
}

/// A parameter that may be tiny and not zero (κ is often 10⁻⁶): three significant figures.
fn small(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.001 { format!("{v:.2e}") } else { num(v) }
}
