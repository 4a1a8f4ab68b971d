//! What strangers can make the stack hold: requests with invented methods and paths add no
//! series to `/metrics`, and a JSON body over the limit is refused as too large (413), not
//! read as malformed.

use std::time::Instant;

use serde_json::{Value, json};

use crate::support::{Harness, bounded};

/// The scrape's size in bytes and its series (sample lines, values left out).
async fn scrape(harness: &Harness) -> (usize, std::collections::BTreeSet<String>) {
    let text = harness.http.get(harness.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let series = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect();
    (text.len(), series)
}

/// 5,000 requests, each with a method of its own (`X0` … `X4999`) on a known route and on an
/// unknown path: every one folds into the method `other` and the route `unmatched`, so the
/// scrape grows by a few series, not by one per request (the field's stack grew from 83 KB to
/// 12.3 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_and_paths_add_no_series_to_metrics() {
    bounded(async {
        let harness = Harness::start(|_| {}).await;
        // Every series the requests below (and the scrape itself) can reach, once, before the
        // baseline.
        for (method, path) in [("GET", "/healthz"), ("X", "/healthz"), ("X", "/nowhere"), ("GET", "/metrics")]
        {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            harness.http.request(method, harness.url(path)).send().await.unwrap();
        }
        let (before, series_before) = scrape(&harness).await;
        let started = Instant::now();
        for i in 0..5_000 {
            let method = reqwest::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
            let path = if i % 2 == 0 { "/healthz".to_owned() } else { format!("/nowhere/{i}") };
            let answer = harness.http.request(method, harness.url(&path)).send().await.unwrap();
            assert!(answer.status().is_client_error(), "{path}: {}", answer.status());
        }
        let (after, series_after) = scrape(&harness).await;
        println!(
            "/metrics: {before} bytes before, {after} after 5,000 invented methods ({} ms)",
            started.elapsed().as_millis()
        );
        let added: Vec<&String> = series_after.difference(&series_before).collect();
        assert!(added.is_empty(), "new series after the invented methods: {added:#?}");
        // The counts' digits may grow; the series may not.
        assert!(after <= before + 8_192, "/metrics grew from {before} to {after} bytes");
        let text = harness.http.get(harness.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(text.contains("method=\"other\""), "no `other` method series:\n{text}");
        assert!(!text.contains("method=\"X1\""), "an invented method is a label value");
    })
    .await;
}

/// A JSON body over the 2 MiB limit: 413 with the API's error, as the upload route answers.
#[tokio::test]
async fn a_json_body_over_the_limit_is_too_large_not_malformed() {
    bounded(async {
        let harness = Harness::start(|_| {}).await;
        let name = "n".repeat(3 * 1024 * 1024);
        let answer =
            harness.http.post(harness.url("/v1/users")).json(&json!({ "name": name })).send().await.unwrap();
        assert_eq!(answer.status(), 413);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    })
    .await;
}

/// The `UnboundedLabels` mutant labels each request by its method as written: every invented
/// method is a series of its own, and the scrape grows with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_labels_mutant_adds_a_series_per_invented_method() {
    bounded(async {
        let harness = Harness::start(|s| s.mutant = Some(stack::Mutant::UnboundedLabels)).await;
        let (before, series_before) = scrape(&harness).await;
        for i in 0..200 {
            let method = reqwest::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
            harness.http.request(method, harness.url("/healthz")).send().await.unwrap();
        }
        let (after, series_after) = scrape(&harness).await;
        let added = series_after.difference(&series_before).count();
        assert!(added >= 200, "{added} series added by 200 invented methods");
        assert!(after > before + 200 * 1_000, "/metrics grew from {before} to {after} bytes only");
    })
    .await;
}
