//! `report.html` of the sample reports, read as text: what a reader sees first and how the
//! charts over time are laid out.

use crate::sample;

/// The markup of the element `<tag id="id" …>…</tag>` (its first closing tag: sections hold no
/// section).
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!(r#"<section id="{id}">"#)).unwrap_or_else(|| panic!("no section {id}"));
    let len = page[start..].find("</section>").expect("the section ends");
    &page[start..start + len]
}

/// The x axis's tick labels of each chart in `markup`, in order (the y axis's are anchored at
/// their end, the x axis's at their middle).
fn x_ticks(markup: &str) -> Vec<Vec<f64>> {
    markup
        .split("<svg ")
        .skip(1)
        .map(|svg| {
            svg.split(r#"text-anchor="middle">"#)
                .skip(1)
                .filter_map(|t| t.split('<').next().and_then(|n| n.trim().parse::<f64>().ok()))
                .collect()
        })
        .collect()
}

#[test]
fn the_missed_targets_are_listed_before_the_met_ones_in_the_reports_order() {
    let report = sample::built();
    let page = report::html(&report);
    let targets = section(&page, "targets");
    let rows: Vec<&str> =
        targets.split("<tr class=\"").skip(1).map(|r| r.split('"').next().unwrap()).collect();
    assert_eq!(rows.len(), report.targets.len());
    let first_met = rows.iter().position(|r| *r == "pass").expect("the sample meets some targets");
    assert!(first_met > 0 && rows[first_met..].iter().all(|r| *r == "pass"), "{rows:?}");
    // Within each group, the report's order.
    let names: Vec<String> =
        report.targets.iter().filter(|t| !t.passed).map(|t| report::escape_html(&t.name)).collect();
    let at: Vec<usize> = names.iter().map(|n| targets.find(&format!("<td>{n}</td>")).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{names:?}");
}

#[test]
fn the_embedded_stack_is_a_table_with_a_row_per_setting() {
    let recorded = sample::recorded();
    let settings = recorded["run"]["embedded"].as_object().unwrap();
    let report: report::Report = serde_json::from_value(recorded.clone()).unwrap();
    let page = report::html(&report);
    let table = page
        .split(r#"<table class="settings">"#)
        .nth(1)
        .expect("a settings table")
        .split("</table>")
        .next()
        .unwrap();
    assert_eq!(table.matches("<tr><td>").count(), settings.len(), "{table}");
    assert!(table.contains("<tr><td>publish limit</td><td>5 per 3 s</td></tr>"), "{table}");
    assert!(
        table.contains("<tr><td>breaker</td><td>5 failures, 2 s open, 2 s trial timeout</td></tr>"),
        "{table}"
    );
    assert!(!page.contains("&quot;publish_limit&quot;"), "the settings are not a JSON line any more");
}

#[test]
fn latency_over_time_is_one_chart_per_endpoint_on_an_axis_that_ends_with_the_load() {
    for (name, report) in [
        ("recorded", serde_json::from_value::<report::Report>(sample::recorded()).unwrap()),
        ("built", sample::built()),
    ] {
        let load = report.load.as_ref().unwrap();
        let page = report::html(&report);
        let latency = section(&page, "latency-over-time");
        // A figure per endpoint, in the report's order; a chart in each that had requests.
        let figures: Vec<&str> = latency
            .split(r#"<figure class="small" data-endpoint=""#)
            .skip(1)
            .map(|f| f.split('"').next().unwrap())
            .collect();
        let names: Vec<String> = load.endpoints.iter().map(|e| report::escape_html(&e.name)).collect();
        assert_eq!(figures, names, "{name}");
        let answered = load.endpoints.iter().filter(|e| e.requests > 0).count();
        assert_eq!(latency.matches("<svg ").count(), answered, "{name}");
        // Every chart over time (latency, requests, errors) ends its axis with the load: its
        // last tick at most one step past the load's duration, not at a round number beyond.
        let throughput = section(&page, "throughput");
        let charts: Vec<Vec<f64>> = x_ticks(latency).into_iter().chain(x_ticks(throughput)).collect();
        assert!(charts.len() > answered, "{name}: the throughput charts are there too");
        for ticks in &charts {
            let (last, step) = (ticks[ticks.len() - 1], ticks[1] - ticks[0]);
            assert!(
                last <= load.duration_s.ceil() + 1.0,
                "{name}: ticks {ticks:?} of a {} s load",
                load.duration_s
            );
            assert!(
                last + step > load.duration_s,
                "{name}: ticks {ticks:?} stop short of a {} s load",
                load.duration_s
            );
            assert_eq!(ticks, &charts[0], "{name}: one time axis for every chart");
        }
    }
}
