//! `report.html`: the report for people, one self-contained file — inline CSS, charts drawn
//! here as inline SVG ([`chart`]), a few lines of inline script (expand/collapse of the
//! checks' evidence), and a Content-Security-Policy that
//! forbids fetching anything, so it opens the same from a CI artifact, a mail or a laptop
//! offline.
//!
//! The page is written with maud's `html!`, which escapes every value spliced into it, text
//! and attribute alike: endpoint, target and check names come from user profiles, evidence
//! from the target's answers, and none of it is escaped by hand. The only markup not built by
//! the template is the page's own CSS and script ([`CSS`], [`SCRIPT`], constants), spliced
//! unescaped because they are code, not text; the script reads nothing from the report, so
//! no report data is ever placed inside `<script>` or `<style>`.
//!
//! Sections, in the page's order: the verdict and the run ([`summary`]: titled by the command
//! that wrote the report, the embedded stack's [`settings`] as a table), [`targets`] (missed
//! first), the [`comparison`] with a baseline, the [`capacity`] run, the load ([`load`]: the
//! endpoints' table, the [`faults`] injected during it, a latency chart per endpoint and the
//! charts of all, the faults shaded on those over time) and the [`checks`].

mod capacity;
mod chart;
mod checks;
mod faults;
mod load;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::{Comparison, ObjectiveVerdict, Report};

/// Colours for endpoints (Tableau 10: distinct, and legible to most colour-blind readers).
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac",
    "#e15759",
];
const ERROR_COLOR: &str = "#d62728";
/// Space above the highest value, so no line runs along the chart's frame.
const HEADROOM: f64 = 1.06;
/// Nothing is fetched: inline style and script only, images only as `data:` URLs.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

/// `text` as the page writes it: escaped by the template exactly as every report string is
/// (`&`, `<`, `>` and `"` become entities). For tests that look for a report's string in the
/// written page.
pub fn escape(text: &str) -> String {
    html! { (text) }.into_string()
}

/// The report as one HTML document.
pub fn html(report: &Report) -> String {
    let verdict = if report.passed { "PASSED" } else { "FAILED" };
    let page = html! {
        (DOCTYPE) "\n"
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                meta name="generator" content={ "stampede " (report.run.stampede_version) };
                title { (verdict) " — stampede " (report.command()) " " (report.run.id) }
                style { (PreEscaped(CSS)) }
            }
            "\n"
            body {
                "\n"
                (summary(report))
                (targets(&report.targets))
                @if let Some(c) = &report.comparison {
                    (comparison(c))
                }
                @if let Some(c) = &report.capacity {
                    (capacity::section(c, &report.targets))
                }
                @match &report.load {
                    Some(l) => { (load::sections(l, &report.targets)) }
                    None => {
                        section id="load" { h2 { "Load" } p.none { "No load ran in this run." } } "\n"
                    }
                }
                (checks::section(report.checks.as_ref()))
                footer {
                    "stampede " (report.run.stampede_version) " · schema " (report.schema)
                    " · rendered from report.json, which holds every figure here and each endpoint's \
                    full histogram"
                }
                "\n"
                script { (PreEscaped(SCRIPT)) }
                "\n"
            }
            "\n"
        }
        "\n"
    };
    page.into_string()
}

/// The verdict in a coloured header, then the run's metadata.
fn summary(report: &Report) -> Markup {
    let run = &report.run;
    let (class, word) = if report.passed { ("pass", "PASSED") } else { ("fail", "FAILED") };
    let met = report.targets.iter().filter(|t| t.passed).count();
    html! {
        header class={ "verdict " (class) } {
            h1 {
                span class={ "badge " (class) } { (word) } " stampede " (report.command()) " " code { (run.id) }
            }
            p {
                @if let Some(tally) = report.checks.as_ref().map(checks::tally) {
                    (tally) " · "
                }
                (met) " of " (report.targets.len()) " targets met · "
                @if run.complete {
                    span.complete { "complete" }
                } @else {
                    span.interrupted {
                        "interrupted: " (run.interrupted.as_deref().unwrap_or("the run did not complete"))
                        " — the figures are what was measured before"
                    }
                }
            }
        }
        "\n"
        section id="run" {
            h2 { "Run" }
            dl {
                dt { "profile" } dd { (run.profile) }
                dt { "target" }
                dd {
                    @for (i, t) in run.target.iter().enumerate() {
                        @if i > 0 { " " }
                        code { (t) }
                    }
                }
                dt { "started" } dd { (utc(run.started_at_ms)) }
                dt { "finished" }
                dd {
                    (utc(run.finished_at_ms)) " ("
                    (num(run.finished_at_ms.saturating_sub(run.started_at_ms) as f64 / 1000.0)) " s)"
                }
                dt { "host" } dd { (run.host) }
                @if !run.sources.is_empty() {
                    dt { "merged from" }
                    dd {
                        (crate::plural(run.sources.len() as u64, "generator", "generators"))
                        " — histograms added, percentiles read from the sums"
                        ul {
                            @for g in &run.sources {
                                li {
                                    code { (g.id) } " on " (g.host) " from " code { (g.file) } ": "
                                    (crate::plural(g.requests, "request", "requests")) " in "
                                    (num(g.duration_s)) " s from "
                                    (utc(g.started_at_ms))
                                    @if !g.complete { " (interrupted)" }
                                }
                            }
                        }
                    }
                }
                dt { "stampede" }
                dd {
                    (run.stampede_version)
                    @if let Some(r) = &run.git_revision { " (" code { (r) } ")" }
                }
            }
            @if let Some(embedded) = &run.embedded {
                h3 { "The embedded stack stampede started" }
                table.settings {
                    thead { tr { th { "setting" } th { "value" } } }
                    tbody {
                        @for (setting, value) in settings(embedded) {
                            tr { td { (setting) } td { (value) } }
                        }
                    }
                }
            }
        }
        "\n"
    }
}

/// The targets' table, the missed ones first (each group in the report's order), so a failure
/// is the first thing read.
fn targets(targets: &[ObjectiveVerdict]) -> Markup {
    let mut ordered: Vec<&ObjectiveVerdict> = targets.iter().collect();
    ordered.sort_by_key(|t| t.passed);
    html! {
        section id="targets" {
            h2 { "Targets" }
            @if targets.is_empty() {
                p.none { "No targets were judged in this run." }
            } @else {
                table {
                    thead { tr { th { "target" } th { "bound" } th { "measured" } th {} th { "detail" } } }
                    tbody {
                        @for t in ordered {
                            tr class=(pass_fail(t.passed)) {
                                td { (t.name) }
                                td.n { (t.comparison) " " (num(t.bound)) " " (t.unit) }
                                td.n {
                                    @match t.measured {
                                        Some(m) => { (num(m)) " " (t.unit) }
                                        None => { "—" }
                                    }
                                }
                                td { (badge(t.passed, "met", "missed")) }
                                td { (t.detail) }
                            }
                        }
                    }
                }
            }
        }
        "\n"
    }
}

fn comparison(c: &Comparison) -> Markup {
    let ms = |v: Option<f64>| v.map_or("—".to_owned(), num);
    html! {
        section id="comparison" {
            h2 { "Against the baseline" }
            p {
                (crate::plural(c.regressions as u64, "regression", "regressions")) " · baseline run "
                code { (c.baseline.id) }
                @if let Some(r) = &c.baseline.git_revision { " (" code { (r) } ")" }
                " from " code { (c.baseline.file) } ", " (utc(c.baseline.started_at_ms))
                " · a change regresses beyond +" (num(c.tolerance * 100.0)) " % and +" (num(c.min_change_ms))
                " ms"
            }
            table {
                thead {
                    tr {
                        th { "endpoint" } th { "percentile" } th { "baseline ms" } th { "this run ms" }
                        th { "change" } th {} th { "detail" }
                    }
                }
                tbody {
                    @for change in &c.changes {
                        tr class=(pass_fail(!change.regressed)) {
                            td { (change.endpoint) }
                            td { (change.percentile) }
                            td.n { (ms(change.baseline_ms)) }
                            td.n { (ms(change.current_ms)) }
                            td.n {
                                @match change.change {
                                    Some(x) => { (format!("{:+.1} %", x * 100.0)) }
                                    None => { "—" }
                                }
                            }
                            td { (badge(!change.regressed, "ok", "regressed")) }
                            td { (change.detail) }
                        }
                    }
                }
            }
        }
        "\n"
    }
}

/// The embedded stack's settings as (setting, value) rows: nested objects flattened into
/// dotted keys, underscores read as spaces, values made readable ([`readable`]); a list of
/// plain values on one row.
fn settings(value: &serde_json::Value) -> Vec<(String, String)> {
    use serde_json::Value;
    fn walk(key: String, value: &Value, rows: &mut Vec<(String, String)>) {
        let join = |k: &str| {
            if key.is_empty() { k.replace('_', " ") } else { format!("{key}.{}", k.replace('_', " ")) }
        };
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    walk(join(k), v, rows);
                }
            }
            Value::Array(items) if items.iter().any(|v| v.is_object() || v.is_array()) => {
                for (i, v) in items.iter().enumerate() {
                    walk(join(&i.to_string()), v, rows);
                }
            }
            Value::Array(items) => {
                let text: Vec<String> = items.iter().map(scalar).collect();
                rows.push((key, if text.is_empty() { "none".to_owned() } else { text.join(", ") }));
            }
            other => rows.push((key, scalar(other))),
        }
    }
    fn scalar(value: &Value) -> String {
        match value {
            Value::Null => "none".to_owned(),
            Value::String(s) => readable(s),
            Value::Object(_) | Value::Array(_) => "none".to_owned(),
            other => other.to_string(),
        }
    }
    let mut rows = Vec::new();
    walk(String::new(), value, &mut rows);
    for row in &mut rows {
        if row.0.is_empty() {
            row.0 = "setting".to_owned();
        }
    }
    rows
}

/// A setting's text with its durations and rates spaced as people write them: `2s` → `2 s`,
/// `250ms` → `250 ms`, `5/3s` → `5 per 3 s`. Only whole words are read so (a URL, a name or a
/// namespace keeps its spelling).
fn readable(text: &str) -> String {
    /// `2s`, `1.5s`, `250ms`, `10m`, `1h` as (number, unit).
    fn duration(word: &str) -> Option<(&str, &str)> {
        let unit_at = word.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (n, unit) = word.split_at(unit_at);
        let number = !n.is_empty() && !n.starts_with('.') && !n.ends_with('.') && n.matches('.').count() <= 1;
        (number && matches!(unit, "ms" | "s" | "m" | "h")).then_some((n, unit))
    }
    let words: Vec<String> = text
        .split(' ')
        .map(|word| {
            // Punctuation around a word stays where it is.
            let after_lead = word.trim_start_matches('(');
            let core = after_lead.trim_end_matches([',', ';', ')']);
            let lead = &word[..word.len() - after_lead.len()];
            let trail = &after_lead[core.len()..];
            let spaced = match core.split_once('/') {
                Some((count, per)) if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) => {
                    duration(per).map(|(n, unit)| format!("{count} per {n} {unit}"))
                }
                _ => duration(core).map(|(n, unit)| format!("{n} {unit}")),
            };
            match spaced {
                Some(s) => format!("{lead}{s}{trail}"),
                None => word.to_owned(),
            }
        })
        .collect();
    words.join(" ")
}

/// A legend under a chart: (name, colour, `Some("dashed")` for a dashed line).
fn legend<'a>(items: impl Iterator<Item = (&'a str, &'static str, Option<&'static str>)>) -> Markup {
    html! {
        ul.legend {
            @for (name, color, style) in items {
                li {
                    span.line style={ "border-top:3px " (style.unwrap_or("solid")) " " (color) } {}
                    (name)
                }
            }
        }
    }
}

/// `yes` on green when `passed`, else `no` on red.
fn badge(passed: bool, yes: &str, no: &str) -> Markup {
    html! { span class={ "badge " (pass_fail(passed)) } { @if passed { (yes) } @else { (no) } } }
}

/// The class of a row, a badge or a check by its verdict.
fn pass_fail(passed: bool) -> &'static str {
    if passed { "pass" } else { "fail" }
}

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
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
:root { --pass: #1a7f37; --fail: #c62828; --unknown: #b26a00; --muted: #666; --line: #ddd; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328; }
body { margin: 0 auto; max-width: 1200px; padding: 0 24px 40px; line-height: 1.45; font-size: 15px; }
h1 { font-size: 24px; margin: 0 0 6px; } h2 { font-size: 19px; margin: 30px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; } h4 { margin: 12px 0 4px; font-size: 14px; }
header.verdict { margin: 20px 0 0; padding: 16px 20px; border-radius: 8px; border-left: 8px solid; }
header.pass { background: #e9f6ec; border-color: var(--pass); } header.fail { background: #fdecec; border-color: var(--fail); }
header p { margin: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8em; font-weight: 700; color: #fff; vertical-align: middle; letter-spacing: 0.03em; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); } .badge.unknown { background: var(--unknown); }
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
svg.chart rect.band { fill: #f2a900; fill-opacity: 0.16; stroke: #c88a00; stroke-opacity: 0.45; stroke-width: 1; }
svg.chart .band-label { font-size: 12px; fill: #7a5200; }
.fault-error { color: var(--fail); font-weight: 600; overflow-wrap: anywhere; }
table.settings { width: auto; min-width: 40%; margin-top: 4px; } table.settings td:first-child { color: var(--muted); white-space: nowrap; }
div.multiples { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 10px 24px; margin-top: 8px; }
figure.small { margin: 0; } figure.small figcaption { font-weight: 600; font-size: 14px; margin: 0 0 2px; }
figure.small figcaption .note { font-weight: 400; }
svg.chart .rule-label { font-size: 11px; font-weight: 600; }
ul.legend { list-style: none; padding: 0; margin: 4px 0 0 70px; display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; }
ul.legend .line { display: inline-block; width: 22px; height: 0; margin-right: 6px; vertical-align: middle; }
button { font: inherit; font-size: 13px; }
details.check { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 6px 12px; }
details.check.fail { border-left: 5px solid var(--fail); } details.check.pass { border-left: 5px solid var(--pass); } details.check.unknown { border-left: 5px solid var(--unknown); }
ul.requirements li.unmet { color: #8a5a00; }
details.check summary { cursor: pointer; } .kind { color: var(--muted); font-size: 13px; }
pre { background: #f6f8fa; padding: 8px 10px; border-radius: 4px; overflow-x: auto; max-height: 320px; margin: 4px 0; }
ul.violations li { color: var(--fail); }
table.ops { font-size: 12px; } table.ops code { font-size: 12px; word-break: break-all; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
"##;

/// The only script: the checks' expand/collapse buttons. It
/// marks `<body data-script="ran">` when done (the browser test reads that back).
const SCRIPT: &str = r##"
(function () {
  "use strict";
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
    fn escape_neutralises_markup_and_double_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; 'y')&lt;/script&gt;"
        );
        assert_eq!(escape("plain — ünïcode ✓"), "plain — ünïcode ✓");
        assert_eq!(escape("&amp;"), "&amp;amp;", "escaping is not idempotent, on purpose: once");
    }

    #[test]
    fn report_strings_are_text_in_elements_and_attributes() {
        let hostile = r#""><script>alert(1)</script>"#;
        let mut report: Report = serde_json::from_value(serde_json::json!({
            "schema": crate::SCHEMA,
            "run": {
                "id": hostile, "stampede_version": hostile, "git_revision": null, "profile": hostile,
                "target": [hostile], "embedded": null, "host": "h", "started_at_ms": 0,
                "finished_at_ms": 0, "complete": false, "interrupted": hostile, "sources": []
            },
            "checks": null, "load": null, "targets": [], "comparison": null, "capacity": null,
            "passed": false
        }))
        .unwrap();
        report.schema = hostile.to_owned();
        let page = html(&report);
        // The page's own script is the only one; the hostile string shows escaped wherever it
        // lands (the title, a meta tag's attribute, the header, the run's table, the footer).
        assert_eq!(page.matches("<script>").count(), 1, "{page}");
        let escaped = escape(hostile);
        assert_eq!(escaped, "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
        assert!(page.matches(&escaped).count() >= 7, "{page}");
        assert!(page.contains(&format!(r#"<meta name="generator" content="stampede {escaped}">"#)), "{page}");
    }

    #[test]
    fn the_page_is_titled_by_the_command_that_wrote_the_report() {
        let page = html(&crate::tests::titled(Some("load"), true, false));
        assert!(page.contains("<title>PASSED — stampede load r1</title>"), "{page}");
        assert!(page.contains("</span> stampede load <code>r1</code></h1>"), "{page}");
        assert!(!page.contains("stampede run"), "{page}");
        let page = html(&crate::tests::titled(Some("report compare"), true, false));
        assert!(page.contains("<title>PASSED — stampede report compare r1</title>"), "{page}");
    }

    #[test]
    fn counts_of_one_are_singular() {
        let mut report = crate::tests::titled(Some("load"), true, false);
        let load = report.load.as_mut().unwrap();
        (load.requests, load.errors, load.unsent) = (1, 1, 1);
        let page = html(&report);
        assert!(page.contains(" s · 1 request, 1 error · "), "{page}");
        assert!(page.contains("1 request fell due and was never sent"), "{page}");
        load_mut(&mut report).requests = 2;
        assert!(html(&report).contains(" s · 2 requests, 1 error · "));
    }

    fn load_mut(report: &mut Report) -> &mut crate::LoadReport {
        report.load.as_mut().unwrap()
    }

    #[test]
    fn settings_are_rows_with_durations_and_rates_spaced() {
        let embedded = serde_json::json!({
            "instances": 2,
            "mutant": null,
            "publish_limit": "5/3s",
            "breaker": "5 failures, 2s open, 1.5s trial timeout",
            "connection_deadline": "250ms",
            "upstream_plan": "1207/1207",
            "upstream_control": "http://127.0.0.1:45481/v1s",
            "namespace": "stampede-run-10s",
            "pool": { "max": 24, "idle": { "per_host": 12 } },
            "links": ["redis", "postgres"],
            "processes": [],
        });
        let rows = settings(&embedded);
        let row = |k: &str| rows.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(rows.len(), 12, "{rows:?}");
        assert_eq!(row("instances"), Some("2"));
        assert_eq!(row("mutant"), Some("none"));
        assert_eq!(row("publish limit"), Some("5 per 3 s"));
        assert_eq!(row("breaker"), Some("5 failures, 2 s open, 1.5 s trial timeout"));
        assert_eq!(row("connection deadline"), Some("250 ms"));
        assert_eq!(row("upstream plan"), Some("1207/1207"));
        assert_eq!(row("upstream control"), Some("http://127.0.0.1:45481/v1s"));
        assert_eq!(row("namespace"), Some("stampede-run-10s"));
        assert_eq!(row("pool.max"), Some("24"));
        assert_eq!(row("pool.idle.per host"), Some("12"));
        assert_eq!(row("links"), Some("redis, postgres"));
        assert_eq!(row("processes"), Some("none"));
        assert_eq!(readable("(every 2s)"), "(every 2 s)");
        assert_eq!(readable("1.s .5s 2x 10/s 3/4"), "1.s .5s 2x 10/s 3/4");
        assert_eq!(settings(&serde_json::json!("memory")), [("setting".to_owned(), "memory".to_owned())]);
    }

    #[test]
    fn the_embedded_stack_is_a_table_of_settings_not_a_json_line() {
        let mut report = crate::tests::titled(Some("run"), false, true);
        report.run.embedded = Some(serde_json::json!({ "backend": "memory", "publish_limit": "5/3s" }));
        let page = html(&report);
        assert!(page.contains("<tr><td>publish limit</td><td>5 per 3 s</td></tr>"), "{page}");
        assert!(page.contains("<tr><td>backend</td><td>memory</td></tr>"), "{page}");
        assert!(!page.contains("&quot;backend&quot;"), "{page}");
    }

    #[test]
    fn missed_targets_come_first_in_their_order() {
        let mut report = crate::tests::titled(Some("load"), true, false);
        let judged = |name: &str, measured: f64| {
            ObjectiveVerdict::judged(
                crate::ObjectiveKind::P99,
                name.to_owned(),
                None,
                "<",
                10.0,
                Some(measured),
                "ms",
            )
        };
        report.targets = vec![judged("a", 1.0), judged("b", 20.0), judged("c", 2.0), judged("d", 30.0)];
        let page = html(&report);
        let at = |name: &str| page.find(&format!("<td>{name}</td>")).unwrap();
        assert!(at("b") < at("d") && at("d") < at("a") && at("a") < at("c"), "{page}");
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
