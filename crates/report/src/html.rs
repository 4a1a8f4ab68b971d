//! `report.html`: the report for people, one self-contained file — inline CSS, charts drawn
//! here as inline SVG ([`chart`]), a few lines of inline script (the latency chart's endpoint
//! selector, expand/collapse of the checks' evidence), and a Content-Security-Policy that
//! forbids fetching anything, so it opens the same from a CI artifact, a mail or a laptop
//! offline. Every string taken from the report passes through [`escape`]: endpoint, target and
//! check names come from user profiles, evidence from the target's answers. The script reads
//! nothing from the report, so no report data is ever placed inside `<script>`.

mod chart;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::capacity::CapacityReport;
use crate::{Comparison, EndpointReport, LoadReport, Report, TargetVerdict, decode_histogram};
use chart::{Axis, Bars, Series};

/// Colours for endpoints (Tableau 10: distinct, and legible to most colour-blind readers).
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac",
    "#e15759",
];
/// p50, p90, p99 and max in one endpoint's latency chart.
const PERCENTILE_COLORS: [&str; 4] = ["#4e79a7", "#f28e2b", "#e15759", "#9a9a9a"];
const ERROR_COLOR: &str = "#d62728";
/// Reads one figure of a second of the timeline.
type Pick = fn(&crate::Second) -> Option<f64>;
/// Space above the highest value, so no line runs along the chart's frame.
const HEADROOM: f64 = 1.06;

/// `text` safe as HTML (and SVG) text and as a quoted attribute value: `&`, `<`, `>`, `"` and
/// `'` become entities; nothing else in HTML5 text can open markup.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The report as one HTML document.
pub fn html(report: &Report) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let verdict = if report.passed { "PASSED" } else { "FAILED" };
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="stampede {version}">
<title>{verdict} — stampede run {id}</title>
<style>{CSS}</style>
</head>
<body>
"#,
        version = escape(&report.run.stampede_version),
        id = escape(&report.run.id),
    );
    summary(&mut s, report);
    targets(&mut s, &report.targets);
    if let Some(c) = &report.comparison {
        comparison(&mut s, c);
    }
    if let Some(c) = &report.capacity {
        capacity(&mut s, c, &report.targets);
    }
    match &report.load {
        Some(load) => load_sections(&mut s, load),
        None => s.push_str(
            r#"<section id="load"><h2>Load</h2><p class="none">No load ran in this run.</p></section>
"#,
        ),
    }
    checks(&mut s, report.checks.as_ref());
    let _ = write!(
        s,
        r#"<footer>stampede {} · schema {} · rendered from report.json, which holds every figure here and each endpoint's full histogram</footer>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        escape(&report.run.stampede_version),
        escape(&report.schema)
    );
    s
}

fn summary(s: &mut String, report: &Report) {
    let run = &report.run;
    let (class, word) = if report.passed { ("pass", "PASSED") } else { ("fail", "FAILED") };
    let checks = report.checks.as_ref().and_then(|c| c.get("verdicts")).and_then(Value::as_array);
    let held = checks.map(|v| v.iter().filter(|v| v["passed"] == true).count());
    let met = report.targets.iter().filter(|t| t.passed).count();
    let _ = write!(
        s,
        r#"<header class="verdict {class}"><h1><span class="badge {class}">{word}</span> stampede run <code>{}</code></h1><p>"#,
        escape(&run.id)
    );
    if let (Some(held), Some(all)) = (held, checks) {
        let _ = write!(s, "{held} of {} checks held · ", all.len());
    }
    let _ = write!(s, "{met} of {} targets met · ", report.targets.len());
    if run.complete {
        s.push_str(r#"<span class="complete">complete</span>"#);
    } else {
        let _ = write!(
            s,
            r#"<span class="interrupted">interrupted: {} — the figures are what was measured before</span>"#,
            escape(run.interrupted.as_deref().unwrap_or("the run did not complete"))
        );
    }
    s.push_str("</p></header>\n<section id=\"run\"><h2>Run</h2><dl>");
    let mut row = |k: &str, v: String| {
        let _ = write!(s, "<dt>{k}</dt><dd>{v}</dd>");
    };
    row("profile", escape(&run.profile));
    row(
        "target",
        run.target.iter().map(|t| format!("<code>{}</code>", escape(t))).collect::<Vec<_>>().join(" "),
    );
    if let Some(embedded) = &run.embedded {
        row("embedded stack", format!("<code>{}</code>", escape(&embedded.to_string())));
    }
    row("started", utc(run.started_at_ms));
    row(
        "finished",
        format!(
            "{} ({} s)",
            utc(run.finished_at_ms),
            num(run.finished_at_ms.saturating_sub(run.started_at_ms) as f64 / 1000.0)
        ),
    );
    row("host", escape(&run.host));
    if !run.sources.is_empty() {
        let sources: Vec<String> = run
            .sources
            .iter()
            .map(|g| {
                format!(
                    "<li><code>{}</code> on {} from <code>{}</code>: {} requests in {} s from {}{}</li>",
                    escape(&g.id),
                    escape(&g.host),
                    escape(&g.file),
                    g.requests,
                    num(g.duration_s),
                    utc(g.started_at_ms),
                    if g.complete { "" } else { " (interrupted)" }
                )
            })
            .collect();
        row(
            "merged from",
            format!(
                "{} generators — histograms added, percentiles read from the sums<ul>{}</ul>",
                run.sources.len(),
                sources.concat()
            ),
        );
    }
    row(
        "stampede",
        format!(
            "{}{}",
            escape(&run.stampede_version),
            run.git_revision.as_deref().map(|r| format!(" (<code>{}</code>)", escape(r))).unwrap_or_default()
        ),
    );
    s.push_str("</dl></section>\n");
}

fn targets(s: &mut String, targets: &[TargetVerdict]) {
    s.push_str(r#"<section id="targets"><h2>Targets</h2>"#);
    if targets.is_empty() {
        s.push_str(r#"<p class="none">No targets were judged in this run.</p></section>"#);
        return;
    }
    s.push_str(
        "<table><thead><tr><th>target</th><th>bound</th><th>measured</th><th></th><th>detail</th></tr></thead><tbody>",
    );
    for t in targets {
        let unit = escape(&t.unit);
        let _ = write!(
            s,
            r#"<tr class="{}"><td>{}</td><td class="n">{} {} {unit}</td><td class="n">{}</td><td>{}</td><td>{}</td></tr>"#,
            if t.passed { "pass" } else { "fail" },
            escape(&t.name),
            escape(&t.comparison),
            num(t.bound),
            t.measured.map_or("—".to_owned(), |m| format!("{} {unit}", num(m))),
            badge(t.passed, "met", "missed"),
            escape(&t.detail)
        );
    }
    s.push_str("</tbody></table></section>\n");
}

fn comparison(s: &mut String, c: &Comparison) {
    let _ = write!(
        s,
        r#"<section id="comparison"><h2>Against the baseline</h2><p>{} regressions · baseline run <code>{}</code>{} from <code>{}</code>, {} · a change regresses beyond +{} % and +{} ms</p>"#,
        c.regressions,
        escape(&c.baseline.id),
        c.baseline
            .git_revision
            .as_deref()
            .map(|r| format!(" (<code>{}</code>)", escape(r)))
            .unwrap_or_default(),
        escape(&c.baseline.file),
        utc(c.baseline.started_at_ms),
        num(c.tolerance * 100.0),
        num(c.min_change_ms),
    );
    s.push_str(
        "<table><thead><tr><th>endpoint</th><th>percentile</th><th>baseline ms</th><th>this run ms</th><th>change</th><th></th><th>detail</th></tr></thead><tbody>",
    );
    for change in &c.changes {
        let ms = |v: Option<f64>| v.map_or("—".to_owned(), num);
        let _ = write!(
            s,
            r#"<tr class="{}"><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td><td>{}</td></tr>"#,
            if change.regressed { "fail" } else { "pass" },
            escape(&change.endpoint),
            escape(&change.percentile),
            ms(change.baseline_ms),
            ms(change.current_ms),
            change.change.map_or("—".to_owned(), |x| format!("{:+.1} %", x * 100.0)),
            badge(!change.regressed, "ok", "regressed"),
            escape(&change.detail)
        );
    }
    s.push_str("</tbody></table></section>\n");
}

fn load_sections(s: &mut String, load: &LoadReport) {
    let offered = match (load.model.as_str(), load.rate, load.users) {
        ("open", Some([a, b]), _) if a == b => format!("open model, {} requests/s offered", num(a)),
        ("open", Some([a, b]), _) => format!("open model, {} → {} requests/s offered", num(a), num(b)),
        ("closed", _, Some(users)) => format!(
            "closed model, {users} users ({} reached)",
            load.users_reached.map_or("?".to_owned(), |u| u.to_string())
        ),
        (model, ..) => format!("{} model", escape(model)),
    };
    let _ = write!(
        s,
        r#"<section id="endpoints"><h2>Endpoints</h2><p>{offered} · {} s · {} requests, {} errors · {} answered/s"#,
        num(load.duration_s),
        load.requests,
        load.errors,
        num(load.throughput)
    );
    if load.unsent > 0 {
        let _ = write!(
            s,
            r#" · <span class="warn">{} requests fell due and were never sent: the generator could not offer the rate asked for</span>"#,
            load.unsent
        );
    }
    s.push_str("</p>");
    s.push_str(
        r#"<table><thead><tr><th>endpoint</th><th>requests</th><th>errors</th><th>req/s</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>outcomes</th></tr></thead><tbody>"#,
    );
    for (i, e) in load.endpoints.iter().enumerate() {
        let l = &e.latency_ms;
        let latencies = if e.requests == 0 {
            r#"<td class="n" colspan="6">no requests</td>"#.to_owned()
        } else {
            [l.p50, l.p90, l.p95, l.p99, l.p99_9, l.max]
                .iter()
                .map(|v| format!(r#"<td class="n">{}</td>"#, num(*v)))
                .collect()
        };
        let mut outcomes = e
            .outcomes
            .iter()
            .map(|(k, n)| {
                // 2xx muted, other statuses plain (the profile may expect them: a 429 from a
                // rate limit), no answer at all (`timeout`, `connect`, …) in red.
                let class = match k.as_bytes().first() {
                    Some(b'2') => "ok",
                    Some(c) if c.is_ascii_digit() => "status",
                    _ => "bad",
                };
                format!(r#"<span class="{class}">{}: {n}</span>"#, escape(k))
            })
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(open) = e.timeline.iter().filter_map(|t| t.open).max() {
            let _ = write!(outcomes, r#" <span class="status">at most {open} open at once</span>"#);
        }
        let _ = write!(
            s,
            r#"<tr><td><span class="sw" style="background:{}"></span>{}</td><td class="n">{}</td><td class="n{}">{}</td><td class="n">{}</td>{latencies}<td>{outcomes}</td></tr>"#,
            color(i),
            escape(&e.name),
            e.requests,
            if e.errors > 0 { " bad" } else { "" },
            e.errors,
            num(e.throughput),
        );
    }
    let _ = write!(
        s,
        r#"<tr class="total"><td>all</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td colspan="7"></td></tr></tbody></table><p class="note">Latencies in milliseconds, each request timed from when it was due to its last byte (a WebSocket session: to the server's first message; its sessions open at once sampled as each second ended).</p>"#,
        load.requests,
        load.errors,
        num(load.throughput)
    );
    if !load.metrics.is_empty() {
        s.push_str(
            r#"<h3>The target's metrics over the run</h3><table class="metrics"><thead><tr><th>metric</th><th>value</th><th>numerator</th><th>denominator</th></tr></thead><tbody>"#,
        );
        for m in &load.metrics {
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                escape(&m.name),
                m.value.map_or("n/a (the denominator did not move)".to_owned(), |v| format!("{v:.3}")),
                num(m.numerator),
                num(m.denominator)
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n");
    latency_over_time(s, load);
    distribution(s, &load.endpoints);
    throughput(s, load);
}

/// The end of the time axis: the end of the last second any endpoint reports, or of the run.
fn capacity(s: &mut String, c: &CapacityReport, targets: &[TargetVerdict]) {
    let _ = write!(
        s,
        r#"<section id="capacity"><h2>Capacity</h2><p>{} model · {} steps of {} s from {} to at most {} {} by {} · on {} instance{} · {}</p><p>Stopped: {}.</p>"#,
        escape(&c.model),
        c.steps.len(),
        num(c.stepping.hold_s),
        num(c.stepping.start),
        num(c.stepping.ceiling),
        escape(&c.unit),
        num(c.stepping.step),
        c.instances,
        if c.instances == 1 { "" } else { "s" },
        match c.sustainable {
            Some(i) => format!(
                r#"{} up to <strong>{} {}</strong> ({} answered/s, p99 {} ms); the sections below are that step's"#,
                badge(true, "SUSTAINABLE", ""),
                num(c.steps[i].offered),
                escape(&c.unit),
                num(c.steps[i].throughput),
                num(c.steps[i].latency_ms.p99)
            ),
            None => format!(
                "{}; the sections below are the first step's",
                badge(false, "", "NO STEP SUSTAINABLE")
            ),
        },
        escape(&c.stopped)
    );
    if c.limited_by_generator {
        s.push_str(r#"<p class="warn">The generator fell behind (requests fell due and were never sent): the stack's capacity is at least the sustainable step, not at most.</p>"#);
    }
    s.push_str(r#"<table class="steps"><thead><tr><th>step</th><th>offered</th><th>answered/s</th><th>concurrency</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>errors</th><th>unsent</th><th>verdict</th></tr></thead><tbody>"#);
    for (i, step) in c.steps.iter().enumerate() {
        let verdict = if c.sustainable == Some(i) {
            badge(true, "SUSTAINABLE", "")
        } else if step.passed {
            badge(true, "MET", "")
        } else if !step.complete {
            r#"<span class="interrupted">interrupted</span>"#.to_owned()
        } else {
            let items: String = step.missed.iter().map(|m| format!("<li>{}</li>", escape(m))).collect();
            format!(
                r#"{} <details class="missed"><summary>{} target{} missed</summary><ul>{items}</ul></details>"#,
                badge(false, "", "BROKE"),
                step.missed.len(),
                if step.missed.len() == 1 { "" } else { "s" }
            )
        };
        let _ = write!(
            s,
            r#"<tr class="{}"><td class="n">{}</td><td class="n">{} {}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{verdict}</td></tr>"#,
            if step.passed { "pass" } else { "fail" },
            i + 1,
            num(step.offered),
            escape(&c.unit),
            num(step.throughput),
            num(step.concurrency),
            num(step.latency_ms.p50),
            num(step.latency_ms.p95),
            num(step.latency_ms.p99),
            step.errors,
            step.unsent,
        );
    }
    s.push_str("</tbody></table>");
    // Throughput against concurrency, the fitted curve over it, the peak marked.
    let measured: Vec<(f64, f64)> =
        c.steps.iter().filter(|st| st.complete).map(|st| (st.concurrency, st.throughput)).collect();
    if !measured.is_empty() {
        let peak_n = c.fit.and_then(|f| f.peak_concurrency);
        // The axis spans the steps that met the targets (all of them when none did): a broken
        // step's queue can hold a hundred times their concurrency and would flatten them into
        // the axis. The peak is drawn when it is within reach of them.
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
        s.push_str("<h3>Throughput against concurrency</h3>");
        s.push_str(&chart::svg(
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
        ));
        s.push_str(&legend(series.iter().map(|l| (l.name.as_str(), l.color, l.dash.map(|_| "dashed")))));
        if !beyond.is_empty() {
            let _ = write!(
                s,
                r#"<p class="note">Beyond the chart (in the fit): {}.</p>"#,
                escape(&beyond.join("; "))
            );
        }
    }
    match (&c.fit, &c.fit_note) {
        (Some(f), _) => {
            let _ = write!(
                s,
                r#"<p>Universal Scalability Law, X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted to {} steps: λ {} answered/s per unit of concurrency, contention σ {}, coherency κ {}, R² {}. {}</p>"#,
                f.points,
                num(f.lambda),
                small(f.sigma),
                small(f.kappa),
                num(f.r_squared),
                match (f.peak_concurrency, f.peak_throughput) {
                    (Some(n), Some(x)) => format!(
                        "Predicted peak: {} answered/s at concurrency {}; beyond it throughput falls.",
                        num(x),
                        num(n)
                    ),
                    _ if f.sigma > 0.0 => format!(
                        "No peak: κ = 0, throughput levels off toward λ/σ = {} answered/s.",
                        num(f.lambda / f.sigma)
                    ),
                    _ => "No peak: σ = κ = 0, throughput grew linearly over the steps measured.".to_owned(),
                }
            );
        }
        (None, Some(note)) => {
            let _ = write!(s, r#"<p class="none">No USL fit: {}.</p>"#, escape(note));
        }
        (None, None) => {}
    }
    // p99 against the offered load, the p99 target, the knee (the last sustainable step).
    let p99: Vec<(f64, f64)> = c.steps.iter().map(|st| (st.offered, st.latency_ms.p99)).collect();
    if !p99.is_empty() {
        let bound = targets
            .iter()
            .filter(|t| t.kind == crate::TargetKind::P99)
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
            series.push(Series {
                name: format!("knee: {} {}, the highest sustainable step", num(c.steps[i].offered), c.unit),
                color: "#222222",
                dash: Some("2 3"),
                width: 1.5,
                points: vec![Some((c.steps[i].offered, 0.0)), Some((c.steps[i].offered, y_top * HEADROOM))],
            });
        }
        s.push_str("<h3>Latency against the offered load</h3>");
        s.push_str(&chart::svg(
            "p99 latency against the offered load",
            300.0,
            &Axis::linear(0.0, if x_max > 0.0 { x_max } else { 1.0 }, &format!("offered: {}", c.unit)),
            &Axis::linear(0.0, y_top * HEADROOM, "p99 ms"),
            &series,
            &[],
        ));
        s.push_str(&legend(series.iter().map(|l| (l.name.as_str(), l.color, l.dash.map(|_| "dashed")))));
    }
    if let Some(p) = &c.plan {
        let _ = write!(
            s,
            r#"<h3>Plan</h3><p><strong>{} instance{}</strong> for {} users at {} requests/s each ({} requests/s in all).</p><p>Assuming:</p><ul class="assumptions">"#,
            p.instances,
            if p.instances == 1 { "" } else { "s" },
            p.users_goal,
            num(p.per_user_rate),
            num(p.required_rate)
        );
        for a in &p.assumptions {
            let _ = write!(s, "<li>{}</li>", escape(a));
        }
        s.push_str("</ul>");
    } else if c.stepping.users_goal.is_some() {
        s.push_str(r#"<h3>Plan</h3><p class="none">None: no step was sustainable to plan from.</p>"#);
    }
    s.push_str("</section>\n");
}

fn seconds(load: &LoadReport) -> f64 {
    let last = load.endpoints.iter().flat_map(|e| e.timeline.iter().map(|t| t.t)).max().unwrap_or(0);
    (last as f64 + 1.0).max(load.duration_s.ceil()).max(1.0)
}

fn latency_over_time(s: &mut String, load: &LoadReport) {
    s.push_str(r#"<section id="latency-over-time"><h2>Latency over time</h2>"#);
    if load.endpoints.iter().all(|e| e.requests == 0) {
        s.push_str(r#"<p class="none">No requests were answered.</p></section>"#);
        return;
    }
    let x = Axis::linear(
        0.0,
        seconds(load),
        "seconds since the load started (each request by the second it was due)",
    );
    s.push_str(
        r#"<p><label>Show <select id="latency-view"><option value="all">p99 of every endpoint</option>"#,
    );
    for (i, e) in load.endpoints.iter().enumerate() {
        let _ = write!(s, r#"<option value="e{i}">{}: p50, p90, p99, max</option>"#, escape(&e.name));
    }
    s.push_str("</select></label></p>");
    // Every endpoint's p99.
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
    let _ = write!(
        s,
        r#"<div class="view" data-view="all">{}{}</div>"#,
        chart::svg(
            "p99 latency per second of every endpoint",
            320.0,
            &x,
            &Axis::linear(0.0, top * HEADROOM, "p99 latency (ms)"),
            &series,
            &[]
        ),
        legend(series.iter().map(|l| (l.name.as_str(), l.color, None)))
    );
    // One endpoint's p50, p90, p99 and max.
    for (i, e) in load.endpoints.iter().enumerate() {
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
        let body = if e.requests == 0 {
            r#"<p class="none">This endpoint had no requests.</p>"#.to_owned()
        } else {
            format!(
                "{}{}",
                chart::svg(
                    &format!("latency percentiles per second of {}", e.name),
                    320.0,
                    &x,
                    &Axis::linear(0.0, top * HEADROOM, "latency (ms)"),
                    &series,
                    &[]
                ),
                legend(
                    pick.iter()
                        .zip(PERCENTILE_COLORS)
                        .map(|((n, _), c)| { (*n, c, (*n == "max").then_some("dashed")) })
                )
            )
        };
        let _ = write!(s, r#"<div class="view" data-view="e{i}" hidden>{body}</div>"#);
    }
    s.push_str("</section>\n");
}

/// Latency by percentile, on HdrHistogram's "nines" axis, from each endpoint's full histogram.
fn distribution(s: &mut String, endpoints: &[EndpointReport]) {
    s.push_str(r#"<section id="distribution"><h2>Latency by percentile</h2>"#);
    let mut notes = Vec::new();
    let mut curves = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        match decode_histogram(&e.histogram) {
            Ok(h) if h.is_empty() => notes.push(format!("{}: no requests", escape(&e.name))),
            Ok(h) => {
                let points: Vec<(f64, f64)> = h
                    .iter_quantiles(5)
                    .map(|v| (v.quantile_iterated_to(), h.highest_equivalent(v.value_iterated_to())))
                    .filter(|(q, _)| *q < 1.0)
                    .map(|(q, v)| (-(1.0 - q).log10(), v as f64 / 1000.0))
                    .collect();
                curves.push((i, e, h.len(), h.max() as f64 / 1000.0, points));
            }
            Err(err) => notes.push(format!("{}: unreadable histogram ({})", escape(&e.name), escape(&err))),
        }
    }
    if curves.is_empty() {
        s.push_str(r#"<p class="none">No latencies were recorded.</p>"#);
    } else {
        // As many nines as the largest sample can support (1 in 10ⁿ), between 2 and 6.
        let most = curves.iter().map(|c| c.2).max().unwrap_or(1).max(1);
        let nines = ((most as f64).log10().ceil() as u32).clamp(2, 6);
        let x = Axis::nines(nines, "percentile");
        let top = curves.iter().map(|c| c.3).fold(0.0, f64::max);
        let series: Vec<Series> = curves
            .into_iter()
            .map(|(i, e, _, max, mut points)| {
                points.retain(|p| p.0 <= f64::from(nines));
                points.push((f64::from(nines), max));
                Series {
                    name: e.name.clone(),
                    color: color(i),
                    dash: None,
                    width: 2.0,
                    points: points.into_iter().map(Some).collect(),
                }
            })
            .collect();
        s.push_str(&chart::svg(
            "latency by percentile of every endpoint",
            360.0,
            &x,
            &Axis::linear(0.0, top * HEADROOM, "latency (ms)"),
            &series,
            &[],
        ));
        s.push_str(&legend(series.iter().map(|l| (l.name.as_str(), l.color, None))));
        s.push_str(r#"<p class="note">Decoded from each endpoint's whole histogram (HdrHistogram, 3 significant figures); the line ends at the maximum.</p>"#);
    }
    if !notes.is_empty() {
        let _ = write!(s, r#"<p class="note">Not drawn: {}.</p>"#, notes.join("; "));
    }
    s.push_str("</section>\n");
}

fn throughput(s: &mut String, load: &LoadReport) {
    s.push_str(r#"<section id="throughput"><h2>Throughput and errors over time</h2>"#);
    let x = Axis::linear(0.0, seconds(load), "seconds since the load started");
    let mut total: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for e in &load.endpoints {
        for t in &e.timeline {
            let slot = total.entry(t.t).or_default();
            slot.0 += t.requests;
            slot.1 += t.errors;
        }
    }
    if total.is_empty() {
        s.push_str(r#"<p class="none">No requests fell due.</p></section>"#);
        return;
    }
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
    s.push_str(&chart::svg(
        "requests per second",
        320.0,
        &x,
        &Axis::count(top * HEADROOM, "requests per second"),
        &series,
        &[],
    ));
    s.push_str(&legend(series.iter().map(|l| (l.name.as_str(), l.color, None))));
    // Errors on their own scale: a few per second must not vanish under hundreds of requests.
    let errors_total: u64 = total.values().map(|v| v.1).sum();
    if errors_total > 0 {
        let errors = Bars {
            name: "errors".to_owned(),
            color: ERROR_COLOR,
            width: 0.8,
            points: total.iter().map(|(t, (_, e))| (*t as f64 + 0.1, *e as f64)).collect(),
        };
        let top = total.values().map(|v| v.1).max().unwrap_or(0) as f64;
        s.push_str(&chart::svg(
            "errors per second",
            220.0,
            &x,
            &Axis::count(top * HEADROOM, "errors per second"),
            &[],
            std::slice::from_ref(&errors),
        ));
    }
    let _ = writeln!(
        s,
        r#"<p class="note">Requests by the second they fell due; {errors_total} errors in all (an answer the profile does not accept, or none){}.</p></section>"#,
        if errors_total > 0 { ", by second in red" } else { "" }
    );
}

fn checks(s: &mut String, checks: Option<&Value>) {
    s.push_str(r#"<section id="checks"><h2>Checks</h2>"#);
    let Some(checks) = checks else {
        s.push_str(r#"<p class="none">No checks ran in this run.</p></section>"#);
        return;
    };
    let verdicts = checks.get("verdicts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let failed = verdicts.iter().filter(|v| v["passed"] != true).count();
    let _ = write!(
        s,
        r#"<p>{} of {} checks held{}. <button type="button" data-details="open">expand all</button> <button type="button" data-details="close">collapse all</button></p>"#,
        verdicts.len() - failed,
        verdicts.len(),
        if checks["complete"] == false { " (the checks were interrupted)" } else { "" }
    );
    for v in verdicts {
        let passed = v["passed"] == true;
        let text = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            s,
            r#"<details class="check {}"{}><summary>{} <b>{}</b> <span class="kind">{}</span> — {}</summary>"#,
            if passed { "pass" } else { "fail" },
            if passed { "" } else { " open" },
            badge(passed, "held", "violated"),
            escape(text("check")),
            escape(text("kind")),
            escape(text("summary"))
        );
        if let Some(violations) = v.get("violations").and_then(Value::as_array).filter(|v| !v.is_empty()) {
            s.push_str(r#"<h4>Violations</h4><ul class="violations">"#);
            for violation in violations {
                let _ =
                    write!(s, "<li>{}</li>", escape(violation.as_str().unwrap_or(&violation.to_string())));
            }
            s.push_str("</ul>");
        }
        if let Some(operations) = v.get("operations").and_then(Value::as_u64) {
            let _ = write!(s, r#"<p class="note">{operations} operations recorded.</p>"#);
        }
        if let Some(evidence) = v.get("evidence") {
            let pretty = serde_json::to_string_pretty(evidence).unwrap_or_default();
            let _ = write!(s, "<h4>Evidence</h4><pre>{}</pre>", escape(&pretty));
        }
        if let Some(ops) = v.get("offending").and_then(Value::as_array).filter(|o| !o.is_empty()) {
            s.push_str(
                r#"<h4>Offending operations</h4><table class="ops"><thead><tr><th>process</th><th>instance</th><th>f</th><th>invoked µs</th><th>completed µs</th><th>status</th><th>outcome</th><th>value</th></tr></thead><tbody>"#,
            );
            for op in ops {
                let cell = |k: &str| match op.get(k) {
                    Some(Value::String(t)) => escape(t),
                    Some(Value::Null) | None => "—".to_owned(),
                    Some(other) => escape(&other.to_string()),
                };
                let _ = write!(
                    s,
                    r#"<tr><td class="n">{}</td><td class="n">{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td><td><code>{}</code></td></tr>"#,
                    cell("process"),
                    cell("instance"),
                    cell("f"),
                    cell("invoke_us"),
                    cell("complete_us"),
                    cell("status"),
                    cell("outcome"),
                    cell("value")
                );
            }
            s.push_str("</tbody></table>");
        }
        s.push_str("</details>");
    }
    s.push_str("</section>\n");
}

/// A legend under a chart: (name, colour, `Some("dashed")` for a dashed line).
fn legend<'a>(items: impl Iterator<Item = (&'a str, &'static str, Option<&'static str>)>) -> String {
    let mut s = String::from(r#"<ul class="legend">"#);
    for (name, color, style) in items {
        let _ = write!(
            s,
            r#"<li><span class="line" style="border-top:3px {} {color}"></span>{}</li>"#,
            style.unwrap_or("solid"),
            escape(name)
        );
    }
    s.push_str("</ul>");
    s
}

fn badge(passed: bool, yes: &str, no: &str) -> String {
    if passed {
        format!(r#"<span class="badge pass">{yes}</span>"#)
    } else {
        format!(r#"<span class="badge fail">{no}</span>"#)
    }
}

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A parameter that may be tiny and not zero (κ is often 10⁻⁶): three significant figures.
fn small(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.001 { format!("{v:.2e}") } else { num(v) }
}

/// A figure with as many decimals as its size needs (three significant figures or more).
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_owned();
    }
    let a = v.abs();
    if a == a.trunc() && a < 1e15 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD hh:mm:ss UTC`.
fn utc(ms: u64) -> String {
    let [y, mo, d, h, mi, s] = crate::civil_utc(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

const CSS: &str = r##"
:root { --pass: #1a7f37; --fail: #c62828; --muted: #666; --line: #ddd; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328; }
body { margin: 0 auto; max-width: 1200px; padding: 0 24px 40px; line-height: 1.45; font-size: 15px; }
h1 { font-size: 24px; margin: 0 0 6px; } h2 { font-size: 19px; margin: 30px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; } h4 { margin: 12px 0 4px; font-size: 14px; }
header.verdict { margin: 20px 0 0; padding: 16px 20px; border-radius: 8px; border-left: 8px solid; }
header.pass { background: #e9f6ec; border-color: var(--pass); } header.fail { background: #fdecec; border-color: var(--fail); }
header p { margin: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8em; font-weight: 700; color: #fff; vertical-align: middle; letter-spacing: 0.03em; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
h1 .badge { font-size: 18px; padding: 3px 12px; }
.interrupted, .warn, .bad { color: var(--fail); font-weight: 600; } .complete { color: var(--pass); font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; } dt { color: var(--muted); } dd { margin: 0; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; font-size: 14px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; } td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td:first-child { border-left: 4px solid var(--fail); } tr.pass td:first-child { border-left: 4px solid var(--pass); }
tr.total td { font-weight: 600; } table.metrics { width: auto; min-width: 50%; }
.ok { color: var(--muted); } span.ok, span.bad, span.status { margin-right: 6px; white-space: nowrap; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.note, .none { color: var(--muted); font-size: 13px; } .none { font-style: italic; }
svg.chart { width: 100%; height: auto; display: block; background: #fff; }
svg.chart .grid line { stroke: #e6e6e6; stroke-width: 1; }
svg.chart .frame { fill: none; stroke: #999; stroke-width: 1; }
svg.chart text { font-family: inherit; fill: #333; } svg.chart .tick { font-size: 12px; } svg.chart .axis-label { font-size: 13px; fill: #555; }
ul.legend { list-style: none; padding: 0; margin: 4px 0 0 70px; display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; }
ul.legend .line { display: inline-block; width: 22px; height: 0; margin-right: 6px; vertical-align: middle; }
select { font: inherit; padding: 2px 4px; } button { font: inherit; font-size: 13px; }
details.check { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 6px 12px; }
details.check.fail { border-left: 5px solid var(--fail); } details.check.pass { border-left: 5px solid var(--pass); }
details.check summary { cursor: pointer; } .kind { color: var(--muted); font-size: 13px; }
pre { background: #f6f8fa; padding: 8px 10px; border-radius: 4px; overflow-x: auto; max-height: 320px; margin: 4px 0; }
ul.violations li { color: var(--fail); }
table.ops { font-size: 12px; } table.ops code { font-size: 12px; word-break: break-all; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
"##;

/// The only script: the latency chart's selector and the checks' expand/collapse buttons. It
/// marks `<body data-script="ran">` when done (the browser test reads that back).
const SCRIPT: &str = r##"
(function () {
  "use strict";
  var select = document.getElementById("latency-view");
  var show = function () {
    var views = document.querySelectorAll("#latency-over-time .view");
    for (var i = 0; i < views.length; i++) {
      views[i].hidden = views[i].getAttribute("data-view") !== select.value;
    }
  };
  if (select) { select.addEventListener("change", show); show(); }
  var buttons = document.querySelectorAll("button[data-details]");
  for (var b = 0; b < buttons.length; b++) {
    buttons[b].addEventListener("click", function (event) {
      var open = event.target.getAttribute("data-details") === "open";
      var all = document.querySelectorAll("details.check");
      for (var d = 0; d < all.length; d++) { all[d].open = open; }
    });
  }
  document.body.setAttribute("data-script", "ran");
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain — ünïcode ✓"), "plain — ünïcode ✓");
        assert_eq!(escape("&amp;"), "&amp;amp;", "escaping is not idempotent, on purpose: once");
    }

    #[test]
    fn utc_reads_epoch_milliseconds_without_a_clock() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_392_245_999), "2026-11-23 00:04:05 UTC");
    }

    #[test]
    fn figures_keep_three_significant_figures() {
        assert_eq!(num(0.1234), "0.123");
        assert_eq!(num(12.345), "12.35");
        assert_eq!(num(123.45), "123.5");
        assert_eq!(num(500.0), "500");
        assert_eq!(num(f64::NAN), "—");
    }
}
