//! `report.html` in a real browser: headless Chromium (`CHROMIUM`, else `/usr/bin/chromium`,
//! else `chromium` on the PATH; `apt-get install -y chromium`, which `ci/services` does when it
//! is missing) loads the page, its script runs without a console message (errors, uncaught
//! exceptions and Content-Security-Policy violations all land in the console), the markup in
//! names stays text, and a screenshot is taken that is not blank. Without a browser the tests
//! print a notice and pass (`ci/test` counts them as skipped); under `CI=true` they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sample;

/// A 1280×2400 screenshot of an empty page is about 14 KB; the report's is hundreds.
const NOT_BLANK_BYTES: u64 = 60_000;

fn browser() -> Option<PathBuf> {
    let found = std::env::var_os("CHROMIUM").map(PathBuf::from).filter(|p| p.exists()).or_else(|| {
        let fixed = PathBuf::from("/usr/bin/chromium");
        if fixed.exists() {
            return Some(fixed);
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|p| p.exists())
    });
    if found.is_none() {
        skip("chromium", &"no headless browser for report.html (install chromium, or point CHROMIUM at one)");
    }
    found
}

/// A directory of its own for `name` (pages, screenshots, the browser's profile).
fn workdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the browser printed (standard output, standard error) loading `page` with `args`.
/// `timeout` bounds a browser that hangs; it is not a timed assertion.
fn chromium(browser: &Path, dir: &Path, page: &Path, args: &[String]) -> (String, String) {
    let out = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .args(["--no-default-browser-check", "--disable-extensions", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start the browser");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the browser failed ({}):\n{stderr}", out.status);
    (stdout, stderr)
}

/// The page's console messages, as the browser logs them (`…:CONSOLE(…)] "message", source: …`).
fn console(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

struct Loaded {
    dom: String,
    console: Vec<String>,
    screenshot: PathBuf,
}

fn load(browser: &Path, name: &str, html: &str) -> Loaded {
    let dir = workdir(name);
    let page = dir.join("report.html");
    std::fs::write(&page, html).unwrap();
    let (dom, stderr) = chromium(browser, &dir, &page, &["--dump-dom".to_owned()]);
    let mut messages: Vec<String> = console(&stderr).into_iter().map(str::to_owned).collect();
    let screenshot = dir.join("screenshot.png");
    let (_, stderr) = chromium(
        browser,
        &dir,
        &page,
        &[format!("--screenshot={}", screenshot.display()), "--window-size=1280,2400".to_owned()],
    );
    messages.extend(console(&stderr).into_iter().map(str::to_owned));
    println!("{name}: page {}, screenshot {}", page.display(), screenshot.display());
    Loaded { dom, console: messages, screenshot }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn assert_renders(loaded: &Loaded) {
    assert!(loaded.console.is_empty(), "console messages:\n{}", loaded.console.join("\n"));
    assert!(loaded.dom.contains(r#"data-script="ran""#), "the inline script did not run:\n{}", loaded.dom);
    assert!(loaded.dom.matches("<svg").count() >= 3, "the charts are missing");
    let bytes = size(&loaded.screenshot);
    assert!(bytes > NOT_BLANK_BYTES, "{} is {bytes} bytes: blank?", loaded.screenshot.display());
}

#[test]
fn report_html_of_a_built_report_renders_without_console_errors_and_keeps_names_as_text() {
    let Some(browser) = browser() else { return };
    let loaded = load(&browser, "built", &report::html(&sample::built()));
    assert_renders(&loaded);
    // The hostile endpoint name is text: no element came out of it, its text is there.
    assert!(!loaded.dom.contains("<img"), "markup from a name became an element");
    assert!(loaded.dom.contains("&lt;img src=x onerror=\"alert(1)\"&gt;&amp;'quoted'"), "{}", loaded.dom);
    // Failed checks are open, held ones closed; the idle endpoint is named as such.
    assert!(loaded.dom.contains(r#"<details class="check fail" open="">"#), "{}", loaded.dom);
    // An inconclusive check is open too, apart from the failed one, with what it missed.
    assert!(loaded.dom.contains(r#"<details class="check unknown" open="">"#), "{}", loaded.dom);
    assert!(loaded.dom.contains("pass --max-wait 70s"), "{}", loaded.dom);
    assert!(loaded.dom.contains("1 of 3 checks: 1 held, 1 violated, 1 inconclusive"), "{}", loaded.dom);
    assert!(loaded.dom.contains("This endpoint had no requests."));
    assert!(loaded.dom.contains("at most 110 open at once"), "the sampled WebSocket sessions show");
    assert!(
        loaded.dom.contains("2 regressions · baseline run <code>baseline &lt;7&gt;</code>"),
        "{}",
        loaded.dom
    );
    assert!(loaded.dom.contains("2 generators — histograms added"), "{}", loaded.dom);
    // The capacity section: both charts drawn, the fitted curve and its peak, the knee, the plan.
    for part in [
        r#"<section id="capacity">"#,
        "Throughput against concurrency",
        "Latency against the offered load",
        "USL fit (R²",
        "peak: N*",
        "knee: 400 requests/s",
        "instances</strong> for 100000 users",
    ] {
        assert!(loaded.dom.contains(part), "{part:?} missing from:\n{}", loaded.dom);
    }
}

#[test]
fn report_html_of_a_real_run_renders_without_console_errors() {
    let Some(browser) = browser() else { return };
    let report: report::Report = serde_json::from_value(sample::recorded()).unwrap();
    assert_renders(&load(&browser, "recorded", &report::html(&report)));
}

#[test]
fn report_html_without_load_or_checks_renders() {
    let Some(browser) = browser() else { return };
    let mut report = sample::built();
    report.load = None;
    report.checks = None;
    let html = report::html(&report);
    assert!(html.contains("No load ran in this run.") && html.contains("No checks ran in this run."));
    let dir = workdir("bare");
    let page = dir.join("report.html");
    std::fs::write(&page, html).unwrap();
    let (dom, stderr) = chromium(&browser, &dir, &page, &["--dump-dom".to_owned()]);
    assert!(console(&stderr).is_empty(), "{stderr}");
    assert!(dom.contains(r#"data-script="ran""#));
}

/// The checks above can fail: a script error and a fetch the policy forbids both reach the
/// console, and a blank page's screenshot is under the size a rendered report exceeds.
#[test]
fn the_browser_checks_see_script_errors_blocked_fetches_and_blank_pages() {
    let Some(browser) = browser() else { return };
    let broken = report::html(&sample::built())
        .replace("</body>", r#"<img src="http://127.0.0.1:9/x.png"><script>notDefined();</script></body>"#);
    let loaded = load(&browser, "broken", &broken);
    let all = loaded.console.join("\n");
    assert!(all.contains("Uncaught ReferenceError: notDefined"), "{all}");
    assert!(all.contains("Content Security Policy"), "{all}");
    let blank = load(&browser, "blank", "<!DOCTYPE html><html><body></body></html>");
    assert!(size(&blank.screenshot) > 0 && size(&blank.screenshot) < NOT_BLANK_BYTES);
    assert!(!blank.dom.contains("data-script"));
}

/// Measures, in the rendered page, where each fault band of a visible chart lies across its
/// plot: `data-measured="from to"` as fractions of the frame's width.
const MEASURE_BANDS: &str = r#"<script>
(function () {
  var charts = document.querySelectorAll("svg.chart");
  for (var c = 0; c < charts.length; c++) {
    var frame = charts[c].querySelector("rect.frame").getBoundingClientRect();
    if (frame.width === 0) { continue; }
    var bands = charts[c].querySelectorAll("rect.band");
    for (var b = 0; b < bands.length; b++) {
      var r = bands[b].getBoundingClientRect();
      bands[b].setAttribute("data-measured",
        ((r.left - frame.left) / frame.width).toFixed(4) + " " + ((r.right - frame.left) / frame.width).toFixed(4));
    }
  }
})();
</script>"#;

/// The value of attribute `name` in the start tag `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    tag.split(&format!(" {name}=\"")).nth(1).and_then(|rest| rest.split('"').next())
}

#[test]
fn report_html_shades_each_fault_on_the_charts_over_time_and_lists_it_in_a_table() {
    let Some(browser) = browser() else { return };
    let html = report::html(&sample::built()).replace("</body>", &format!("{MEASURE_BANDS}</body>"));
    let loaded = load(&browser, "faults", &html);
    assert_renders(&loaded);
    // The time axis of the sample's 12 s runs from 0 to 12: each band spans its fault's
    // seconds on it, the one that never ended to the chart's end.
    let expected: Vec<(f64, f64)> =
        sample::FAULT_SECONDS.iter().map(|(from, to)| (from / 12.0, to.unwrap_or(12.0) / 12.0)).collect();
    let mut measured = Vec::new();
    for tag in loaded.dom.split("<rect class=\"band\"").skip(1).map(|t| t.split('>').next().unwrap()) {
        let Some(m) = attr(tag, "data-measured") else { continue };
        let (a, b) = m.split_once(' ').unwrap();
        measured.push((a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap()));
    }
    // Five charts over time (the latency of each of the three endpoints with requests,
    // requests, errors), two bands each.
    assert_eq!(measured.len(), 10, "bands measured: {measured:?}");
    for (i, (from, to)) in measured.iter().enumerate() {
        let (want_from, want_to) = expected[i % 2];
        assert!((from - want_from).abs() < 0.005 && (to - want_to).abs() < 0.005, "band {i}: {measured:?}");
    }
    // Labelled with their names, the hostile one as text. The browser writes text back with
    // `&`, `<` and `>` escaped, attributes as the page escapes them.
    let name = format!("slow upstream {}", sample::HOSTILE);
    let text = |s: &str| report::escape_html(s).replace("&quot;", "\"");
    assert!(loaded.dom.contains(&format!(">{}</text>", text(&name))), "{}", loaded.dom);
    // The table: a row each, the one never ended and the one whose removal failed said so.
    for part in [
        "<section id=\"faults\"><h2>Faults</h2>",
        "<tr class=\"pass\" data-fault=\"redis-down\">",
        &format!("<tr class=\"fail\" data-fault=\"{}\">", report::escape_html(&name)),
        "never ended",
        &format!("removing it failed: {}", text(sample::HOSTILE)),
    ] {
        assert!(loaded.dom.contains(part), "{part:?} missing from:\n{}", loaded.dom);
    }
}

/// A test that cannot run for want of `service`: under `CI=true`, a failure; otherwise a notice
/// and a line in the file `STAMPEDE_SKIPPED` names, which `ci/test` counts (and fails on).
fn skip(service: &str, why: &dyn std::fmt::Display) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let why = why.to_string().replace('\n', " ");
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{test}: {service}: {why} (CI=true: {service} is required; run ci/services)");
    }
    eprintln!("skipping {test}: {service}: {why} (run ci/services; CI=true fails instead)");
    if let Some(path) = std::env::var_os("STAMPEDE_SKIPPED") {
        use std::io::Write;
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open $STAMPEDE_SKIPPED");
        file.write_all(format!("{test}\t{service}: {why}\n").as_bytes())
            .expect("append to $STAMPEDE_SKIPPED");
    }
}
