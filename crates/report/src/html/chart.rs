//! Line charts as inline SVG, drawn here so `report.html` needs no charting library and
//! fetches nothing: axes with round ticks, lines that break where a value is missing, and
//! optional bars (errors per second). Built with maud like the rest of the page, so every
//! string that reaches the SVG (titles, labels, tick texts) is escaped by the template.
//!
//! Every SVG element is written with a body (`line … {}`, giving `<line …></line>`): maud
//! writes an element without one as an HTML void element (`<line …>`, no `/>`), which in
//! SVG inside HTML would open an element and swallow what follows.

use maud::{Markup, html};

/// The drawing's width in SVG user units; it scales to the page's width. A small chart, one of
/// several side by side, is [`SMALL_WIDTH`] wide, so its text stays legible at its size.
const WIDTH: f64 = 960.0;
pub(super) const SMALL_WIDTH: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 46.0;

/// One axis: its range, the ticks to draw (position in axis units, label) and its title.
pub(super) struct Axis {
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) ticks: Vec<(f64, String)>,
    pub(super) label: String,
}

impl Axis {
    /// A linear axis from `min` to a round value at or above `max`, with about six ticks.
    pub(super) fn linear(min: f64, max: f64, label: &str) -> Self {
        Self::stepped(min, max, 0.0, label)
    }

    /// A linear axis of counts: whole-number ticks.
    pub(super) fn count(max: f64, label: &str) -> Self {
        Self::stepped(0.0, max, 1.0, label)
    }

    fn stepped(min: f64, max: f64, least_step: f64, label: &str) -> Self {
        let max = if max.is_finite() && max > min { max } else { min + 1.0 };
        let step = nice_step(max - min, 6).max(least_step);
        let top = min + ((max - min) / step).ceil() * step;
        let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
        let count = ((top - min) / step).round() as usize;
        let ticks = (0..=count)
            .map(|i| {
                let v = min + i as f64 * step;
                (v, format!("{v:.decimals$}"))
            })
            .collect();
        Self { min, max: top, ticks, label: label.to_owned() }
    }

    /// A time axis from 0 ending at `end` exactly (the data's last second, not the round tick
    /// after it): ticks at round steps up to `end`.
    pub(super) fn time(end: f64, label: &str) -> Self {
        let end = if end.is_finite() && end > 0.0 { end } else { 1.0 };
        let step = nice_step(end, 6).max(1.0);
        let count = (end / step + 1e-9).floor() as usize;
        let ticks = (0..=count).map(|i| (i as f64 * step, format!("{:.0}", i as f64 * step))).collect();
        Self { min: 0.0, max: end, ticks, label: label.to_owned() }
    }

    /// HdrHistogram's percentile axis: position `-log10(1 - q)`, so 90 %, 99 %, 99.9 % … are
    /// evenly spaced, up to `nines` nines.
    pub(super) fn nines(nines: u32, label: &str) -> Self {
        let mut ticks = vec![(0.0, "0%".to_owned()), (2f64.log10(), "50%".to_owned())];
        for n in 1..=nines {
            let percent = 100.0 - 100.0 / 10f64.powi(n as i32);
            let decimals = n.saturating_sub(2) as usize;
            ticks.push((f64::from(n), format!("{percent:.decimals$}%")));
        }
        Self { min: 0.0, max: f64::from(nines), ticks, label: label.to_owned() }
    }
}

/// The step among 1, 2, 5 × 10ⁿ that cuts `range` into about `ticks` parts.
fn nice_step(range: f64, ticks: usize) -> f64 {
    let raw = range / ticks.max(1) as f64;
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let m = match raw / magnitude {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    };
    m * magnitude
}

/// A line; `None` points break it.
pub(super) struct Series {
    pub(super) name: String,
    pub(super) color: &'static str,
    pub(super) dash: Option<&'static str>,
    pub(super) width: f64,
    pub(super) points: Vec<Option<(f64, f64)>>,
}

/// Bars from the x axis, each covering `x ..= x + width` (axis units).
pub(super) struct Bars {
    pub(super) name: String,
    pub(super) color: &'static str,
    pub(super) width: f64,
    pub(super) points: Vec<(f64, f64)>,
}

/// A span of the x axis shaded behind the data and labelled (a fault while it lasted), from
/// `from` to `to` (axis units), or to the axis's end when `to` is none. Each band carries its
/// span in axis units as `data-from` and `data-to`.
pub(super) struct Band {
    pub(super) name: String,
    pub(super) from: f64,
    pub(super) to: Option<f64>,
}

/// A horizontal line across the plot at `value` (a target's bound), labelled at its right end.
pub(super) struct Rule {
    pub(super) name: String,
    pub(super) value: f64,
    pub(super) color: &'static str,
}

/// A coordinate in user units, to a tenth.
fn at(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart as an `<svg>` element, `height` user units tall, labelled `label` for screen
/// readers.
pub(super) fn svg(label: &str, height: f64, x: &Axis, y: &Axis, series: &[Series], bars: &[Bars]) -> Markup {
    banded(label, height, x, y, series, bars, &[])
}

/// What a chart draws besides its lines: bars, bands and rules.
#[derive(Clone, Copy, Default)]
pub(super) struct Extras<'a> {
    pub(super) bars: &'a [Bars],
    pub(super) bands: &'a [Band],
    pub(super) rules: &'a [Rule],
}

/// [`svg`] with `bands` shaded under the data, each labelled at its top (left, or right in the
/// plot's right half; labels of consecutive bands on three rows, so bands that begin close
/// together stay legible).
pub(super) fn banded(
    label: &str,
    height: f64,
    x: &Axis,
    y: &Axis,
    series: &[Series],
    bars: &[Bars],
    bands: &[Band],
) -> Markup {
    draw(label, WIDTH, height, x, y, series, &Extras { bars, bands, rules: &[] })
}

/// A chart `width` × `height` user units: [`banded`] with `extras`' rules drawn over the data.
pub(super) fn draw(
    label: &str,
    width: f64,
    height: f64,
    x: &Axis,
    y: &Axis,
    series: &[Series],
    extras: &Extras,
) -> Markup {
    let Extras { bars, bands, rules } = *extras;
    let plot_w = width - LEFT - RIGHT;
    let plot_h = height - TOP - BOTTOM;
    let sx = |v: f64| LEFT + (v.clamp(x.min, x.max) - x.min) / (x.max - x.min) * plot_w;
    let sy = |v: f64| TOP + plot_h - (v.clamp(y.min, y.max) - y.min) / (y.max - y.min) * plot_h;
    html! {
        svg class="chart" viewBox={"0 0 " (width) " " (height)} role="img" aria-label=(label)
            xmlns="http://www.w3.org/2000/svg" {
            g class="grid" {
                @for (v, text) in &y.ticks {
                    line x1=(LEFT) x2=(at(LEFT + plot_w)) y1=(at(sy(*v))) y2=(at(sy(*v))) {}
                    text class="tick" x=(at(LEFT - 8.0)) y=(at(sy(*v) + 4.0)) text-anchor="end" { (text) }
                }
                @for (v, text) in &x.ticks {
                    line x1=(at(sx(*v))) x2=(at(sx(*v))) y1=(TOP) y2=(at(TOP + plot_h)) {}
                    text class="tick" x=(at(sx(*v))) y=(at(TOP + plot_h + 17.0)) text-anchor="middle" {
                        (text)
                    }
                }
            }
            rect class="frame" x=(LEFT) y=(TOP) width=(at(plot_w)) height=(at(plot_h)) {}
            text class="axis-label" x=(at(LEFT + plot_w / 2.0)) y=(at(height - 6.0)) text-anchor="middle" {
                (x.label)
            }
            text class="axis-label" transform={"translate(16 " (at(TOP + plot_h / 2.0)) ") rotate(-90)"}
                text-anchor="middle" { (y.label) }
            @for (i, band) in bands.iter().enumerate() {
                @let to = band.to.unwrap_or(x.max).max(band.from);
                @let (left, right) = (sx(band.from), sx(to));
                g class="band" {
                    rect class="band" x=(at(left)) y=(TOP) width=(at((right - left).max(1.0))) height=(at(plot_h))
                        data-from=(band.from) data-to=(to) {
                        title { (band.name) }
                    }
                    // In the plot's right half, the label ends at the band's right edge, so it
                    // stays inside the chart.
                    @let (anchor, label_x) =
                        if left > LEFT + plot_w / 2.0 { ("end", right - 4.0) } else { ("start", left + 4.0) };
                    text class="band-label" x=(at(label_x)) y=(at(TOP + 14.0 + 14.0 * (i % 3) as f64))
                        text-anchor=(anchor) {
                        (band.name)
                    }
                }
            }
            // Bars under the lines.
            @for b in bars {
                g fill=(b.color) {
                    title { (b.name) }
                    @for &(vx, vy) in b.points.iter().filter(|p| p.1 > 0.0) {
                        rect x=(at(sx(vx))) y=(at(sy(vy))) width=(at((sx(vx + b.width) - sx(vx)).max(1.0)))
                            height=(at(TOP + plot_h - sy(vy))) {}
                    }
                }
            }
            @for line in series {
                @let d = path(&line.points, sx, sy);
                @if !d.is_empty() {
                    path d=(d) fill="none" stroke=(line.color) stroke-width=(line.width)
                        stroke-linejoin="round" stroke-linecap="round" stroke-dasharray=[line.dash] {
                        title { (line.name) }
                    }
                }
            }
            @for rule in rules.iter().filter(|r| r.value >= y.min && r.value <= y.max) {
                g class="rule" data-value=(rule.value) {
                    line x1=(LEFT) x2=(at(LEFT + plot_w)) y1=(at(sy(rule.value))) y2=(at(sy(rule.value)))
                        stroke=(rule.color) stroke-width="1.5" stroke-dasharray="6 4" {
                        title { (rule.name) }
                    }
                    text class="rule-label" x=(at(LEFT + plot_w - 4.0)) y=(at(sy(rule.value) - 4.0))
                        text-anchor="end" fill=(rule.color) { (rule.name) }
                }
            }
        }
    }
}

/// The SVG path through `points` in user units: a subpath per unbroken run, and every
/// single-point subpath drawn as a dot (a zero-length segment, which round caps make
/// visible), so a value between two gaps still shows. Empty when there is no point.
fn path(points: &[Option<(f64, f64)>], sx: impl Fn(f64) -> f64, sy: impl Fn(f64) -> f64) -> String {
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut open = false;
    for p in points {
        match p {
            Some((vx, vy)) => {
                let xy = format!("{:.1} {:.1}", sx(*vx), sy(*vy));
                match runs.last_mut() {
                    Some(run) if open => run.push(xy),
                    _ => runs.push(vec![xy]),
                }
                open = true;
            }
            None => open = false,
        }
    }
    runs.iter()
        .map(|run| match run.as_slice() {
            [only] => format!("M{only} h0"),
            _ => format!("M{}", run.join(" L")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_axes_end_on_round_ticks_above_the_data() {
        let a = Axis::linear(0.0, 7.3, "ms");
        assert_eq!(a.max, 8.0);
        assert_eq!(a.ticks.first().unwrap().1, "0");
        assert_eq!(a.ticks.last().unwrap().1, "8");
        let a = Axis::linear(0.0, 0.23, "ms");
        assert!((a.max - 0.25).abs() < 1e-9, "{}", a.max);
        assert_eq!(a.ticks[1].1, "0.05");
        assert_eq!(
            Axis::count(1.06, "errors").ticks.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
            ["0", "1", "2"]
        );
        // Nothing to scale (no requests): still a drawable axis.
        let a = Axis::linear(0.0, 0.0, "ms");
        assert!(a.max > 0.0 && a.ticks.len() >= 2);
    }

    #[test]
    fn time_axes_end_with_the_data_not_at_the_next_round_tick() {
        // A 60 s load's timeline reaches second 60 (its first second is partial): the axis ends
        // at 61, where a linear axis would run on to 80.
        assert_eq!(Axis::linear(0.0, 61.0, "s").max, 80.0);
        let a = Axis::time(61.0, "s");
        assert_eq!(a.max, 61.0);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "20", "40", "60"]);
        let a = Axis::time(12.0, "s");
        assert_eq!((a.max, a.ticks.last().unwrap().0), (12.0, 12.0));
        let a = Axis::time(3.0, "s");
        assert_eq!(a.ticks.len(), 4, "whole seconds at least: {:?}", a.ticks);
        for end in [1.0, 5.5, 11.0, 61.0, 299.0, 3601.0] {
            let a = Axis::time(end, "s");
            let step = a.ticks[1].0 - a.ticks[0].0;
            let last = a.ticks.last().unwrap().0;
            assert!(last <= end && end - last < step, "{end}: {:?}", a.ticks);
            assert!(a.ticks.len() >= 2 && a.ticks.len() <= 8, "{end}: {:?}", a.ticks);
        }
    }

    #[test]
    fn rules_are_drawn_where_the_axis_reaches_them() {
        let x = Axis::time(10.0, "s");
        let y = Axis::linear(0.0, 100.0, "ms");
        let rules = [
            Rule { name: "p99 < 50 ms".to_owned(), value: 50.0, color: "#c00" },
            Rule { name: "p50 < 500 ms".to_owned(), value: 500.0, color: "#c00" },
        ];
        let svg = draw("t", SMALL_WIDTH, 200.0, &x, &y, &[], &Extras { rules: &rules, ..Extras::default() })
            .into_string();
        assert_eq!(svg.matches(r#"<g class="rule""#).count(), 1, "{svg}");
        // 140 units of plot from y = 14: 50 of 100 ms is at 84.
        assert!(svg.contains(r#"y1="84.0" y2="84.0""#), "{svg}");
        assert!(svg.contains("p99 &lt; 50 ms</text>"), "{svg}");
        assert!(svg.contains(r#"viewBox="0 0 480 200""#), "{svg}");
    }

    #[test]
    fn the_nines_axis_spaces_90_99_999_evenly() {
        let a = Axis::nines(3, "percentile");
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0%", "50%", "90%", "99%", "99.9%"]);
        assert_eq!(a.ticks[4].0, 3.0);
    }

    #[test]
    fn bands_span_their_seconds_and_run_to_the_axis_end_when_open() {
        let x = Axis::linear(0.0, 10.0, "s");
        let y = Axis::linear(0.0, 10.0, "ms");
        let bands = [
            Band { name: "down <x>".to_owned(), from: 2.0, to: Some(4.5) },
            Band { name: "slow".to_owned(), from: 8.0, to: None },
        ];
        let svg = banded("test", 300.0, &x, &y, &[], &[], &bands).into_string();
        // 870 units of plot from x = 70: second 2 at 244, 4.5 at 461.5, 8 at 766, 10 at 940.
        assert!(svg.contains(r#"<rect class="band" x="244.0" y="14" width="217.5""#), "{svg}");
        assert!(
            svg.contains(r#"x="766.0" y="14" width="174.0" height="240.0" data-from="8" data-to="10""#),
            "{svg}"
        );
        assert!(svg.contains("down &lt;x&gt;</text>"), "{svg}");
        assert_eq!(svg.matches(r#"<rect class="band""#).count(), 2);
        assert!(!super::svg("test", 300.0, &x, &y, &[], &[]).into_string().contains("band"));
    }

    #[test]
    fn missing_values_break_the_line_and_lone_points_stay_visible() {
        let x = Axis::linear(0.0, 4.0, "s");
        let y = Axis::linear(0.0, 10.0, "ms");
        let line = Series {
            name: "a<b".to_owned(),
            color: "#000",
            dash: None,
            width: 2.0,
            points: vec![Some((0.0, 1.0)), Some((1.0, 2.0)), None, Some((3.0, 3.0)), None],
        };
        let svg = svg("test", 300.0, &x, &y, &[line], &[]).into_string();
        let d = svg.split(r#"<path d=""#).nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(d.ends_with("h0"), "{d}");
        assert!(svg.contains("<title>a&lt;b</title>"), "{svg}");
    }
}
