//! Line charts as inline SVG, drawn here so `report.html` needs no charting library and
//! fetches nothing: axes with round ticks, lines that break where a value is missing, and
//! optional bars (errors per second). Every string that reaches the SVG is escaped.

use std::fmt::Write as _;

use super::escape;

/// The drawing's size in SVG user units; it scales to the page's width.
const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 46.0;

/// One axis: its range, the ticks to draw (position in axis units, label) and its title.
pub struct Axis {
    pub min: f64,
    pub max: f64,
    pub ticks: Vec<(f64, String)>,
    pub label: String,
}

impl Axis {
    /// A linear axis from `min` to a round value at or above `max`, with about six ticks.
    pub fn linear(min: f64, max: f64, label: &str) -> Self {
        Self::stepped(min, max, 0.0, label)
    }

    /// A linear axis of counts: whole-number ticks.
    pub fn count(max: f64, label: &str) -> Self {
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

    /// HdrHistogram's percentile axis: position `-log10(1 - q)`, so 90 %, 99 %, 99.9 % … are
    /// evenly spaced, up to `nines` nines.
    pub fn nines(nines: u32, label: &str) -> Self {
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
pub fn nice_step(range: f64, ticks: usize) -> f64 {
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
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub dash: Option<&'static str>,
    pub width: f64,
    pub points: Vec<Option<(f64, f64)>>,
}

/// Bars from the x axis, each covering `x ..= x + width` (axis units).
pub struct Bars {
    pub name: String,
    pub color: &'static str,
    pub width: f64,
    pub points: Vec<(f64, f64)>,
}

/// The chart as an `<svg>` element, `height` user units tall, labelled `label` for screen
/// readers.
pub fn svg(label: &str, height: f64, x: &Axis, y: &Axis, series: &[Series], bars: &[Bars]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = height - TOP - BOTTOM;
    let sx = |v: f64| LEFT + (v.clamp(x.min, x.max) - x.min) / (x.max - x.min) * plot_w;
    let sy = |v: f64| TOP + plot_h - (v.clamp(y.min, y.max) - y.min) / (y.max - y.min) * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(label)
    );
    // Grid and ticks.
    s.push_str(r#"<g class="grid">"#);
    for (v, text) in &y.ticks {
        let py = sy(*v);
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT + plot_w,
            LEFT - 8.0,
            py + 4.0,
            escape(text)
        );
    }
    for (v, text) in &x.ticks {
        let px = sx(*v);
        let _ = write!(
            s,
            r#"<line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{:.1}"/><text class="tick" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h,
            TOP + plot_h + 17.0,
            escape(text)
        );
    }
    s.push_str("</g>");
    let _ =
        write!(s, r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_w:.1}" height="{plot_h:.1}"/>"#);
    let _ = write!(
        s,
        r#"<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        height - 6.0,
        escape(&x.label)
    );
    let _ = write!(
        s,
        r#"<text class="axis-label" transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        escape(&y.label)
    );
    // Bars under the lines.
    for b in bars {
        let _ = write!(s, r#"<g fill="{}"><title>{}</title>"#, b.color, escape(&b.name));
        for &(vx, vy) in b.points.iter().filter(|p| p.1 > 0.0) {
            let w = (sx(vx + b.width) - sx(vx)).max(1.0);
            let top = sy(vy);
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{top:.1}" width="{w:.1}" height="{:.1}"/>"#,
                sx(vx),
                TOP + plot_h - top
            );
        }
        s.push_str("</g>");
    }
    for line in series {
        let mut d = String::new();
        let mut open = false;
        for p in &line.points {
            match p {
                Some((vx, vy)) => {
                    let _ = write!(d, "{}{:.1} {:.1}", if open { " L" } else { " M" }, sx(*vx), sy(*vy));
                    open = true;
                }
                None => open = false,
            }
        }
        if d.is_empty() {
            continue;
        }
        let dash = line.dash.map(|a| format!(r#" stroke-dasharray="{a}""#)).unwrap_or_default();
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round" stroke-linecap="round"{dash}><title>{}</title></path>"#,
            dots(d.trim()),
            line.color,
            line.width,
            escape(&line.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// `d` with every single-point subpath drawn as a dot (a zero-length segment, which round caps
/// make visible), so a value between two gaps still shows.
fn dots(d: &str) -> String {
    d.split(" M")
        .map(|sub| {
            let sub = sub.trim_start_matches('M');
            if sub.contains(" L") || sub.ends_with("h0") { sub.to_owned() } else { format!("{sub} h0") }
        })
        .map(|sub| format!("M{sub}"))
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
    fn the_nines_axis_spaces_90_99_999_evenly() {
        let a = Axis::nines(3, "percentile");
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0%", "50%", "90%", "99%", "99.9%"]);
        assert_eq!(a.ticks[4].0, 3.0);
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
        let svg = svg("test", 300.0, &x, &y, &[line], &[]);
        let d = svg.split(r#"<path d=""#).nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(d.ends_with("h0"), "{d}");
        assert!(svg.contains("<title>a&lt;b</title>"), "{svg}");
    }
}
