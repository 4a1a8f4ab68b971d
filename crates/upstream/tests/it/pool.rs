use std::time::{Duration, Instant};

use upstream::invariant::{Observed, connections_reused, within_connection_cap};
use upstream::mutants::{ClientPerRequest, Uncapped};
use upstream::testing::{Behaviour, TestServer};
use upstream::{Error, Upstream, UpstreamClient, UpstreamConfig, suite};

/// Long enough that well over 100 of a burst of 300 would be in flight together without the
/// cap (the uncapped client reaches 130-280 open connections with it).
const HOLD: Duration = Duration::from_millis(50);

/// For the uncapped mutant: starting 300 requests on a loaded two-core machine can take longer
/// than 50 ms, letting early connections be reused, so hold longer to keep the catch certain.
const LONG_HOLD: Duration = Duration::from_millis(250);

async fn server(delay: Duration) -> TestServer {
    TestServer::start(Behaviour::Answer { delay }).await.expect("bind a loopback port for the test server")
}

/// 300 requests at once to a server that holds each one: without a cap all 300 are in flight.
async fn burst_of_300<U: Upstream>(client: &U, server: &TestServer) -> Observed {
    let replies = suite::run(client, "/burst", 300, 300).await.expect("every request of the burst succeeds");
    assert_eq!(replies.len(), 300);
    assert!(replies.iter().all(|r| r.status == 200));
    let observed = server.observed();
    assert_eq!(observed.requests_served, 300, "{observed:?}");
    observed
}

/// 100 requests one at a time, then 1,000 from 8 tasks.
async fn sequential_then_concurrent<U: Upstream>(client: &U, server: &TestServer) -> (Observed, Observed) {
    suite::run(client, "/one-by-one", 100, 1).await.expect("sequential requests succeed");
    let sequential = server.observed();
    suite::run(client, "/eight-tasks", 1_000, 8).await.expect("concurrent requests succeed");
    let all = server.observed();
    assert_eq!(all.requests_served, 1_100, "{all:?}");
    (sequential, all)
}

#[test]
fn seed_policy_is_the_default() {
    let config = UpstreamConfig::default();
    assert_eq!(config.max_connections, 100);
    assert_eq!(config.max_idle_per_host, 20);
    assert_eq!(config.timeout, Duration::from_secs(10));
    assert_eq!(config.in_flight_limit(), 80, "the idle allowance is held back from the cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_client_stays_within_100_connections_under_300_concurrent_requests() {
    let server = server(HOLD).await;
    let config = UpstreamConfig::SEED;
    let client = UpstreamClient::new(server.url(), config).unwrap();
    let observed = burst_of_300(&client, &server).await;
    within_connection_cap(observed, config.max_connections).unwrap();
    // At most 80 in flight, so at most 80 + 20 connections, far fewer than the 300 requests.
    connections_reused(observed, 300, config.in_flight_limit(), config.max_idle_per_host).unwrap();
    assert_eq!(client.available_permits(), config.in_flight_limit(), "every permit is returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_client_reuses_connections_sequentially_then_from_8_tasks() {
    let server = server(Duration::ZERO).await;
    let config = UpstreamConfig::SEED;
    let client = UpstreamClient::new(server.url(), config).unwrap();
    let (sequential, all) = sequential_then_concurrent(&client, &server).await;
    connections_reused(sequential, 100, 1, config.max_idle_per_host).unwrap();
    connections_reused(all, 1_100, 8, config.max_idle_per_host).unwrap();
    within_connection_cap(all, 8 + config.max_idle_per_host).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_per_request_mutant_is_caught_by_no_connection_reuse() {
    let server = server(Duration::ZERO).await;
    let config = UpstreamConfig::SEED;
    let mutant = ClientPerRequest::new(server.url(), config).unwrap();
    let (_, all) = sequential_then_concurrent(&mutant, &server).await;
    assert_eq!(all.connections_opened, all.requests_served, "one connection per request: {all:?}");
    let violation = connections_reused(all, 1_100, 8, config.max_idle_per_host).unwrap_err();
    assert_eq!(violation.rule, "no-connection-reuse");
    // It keeps the cap: only the reuse is missing.
    within_connection_cap(all, config.max_connections).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_per_request_mutant_opens_one_connection_per_request_in_a_burst() {
    let server = server(HOLD).await;
    let config = UpstreamConfig::SEED;
    let mutant = ClientPerRequest::new(server.url(), config).unwrap();
    let observed = burst_of_300(&mutant, &server).await;
    assert_eq!(observed.connections_opened, 300, "{observed:?}");
    let violation =
        connections_reused(observed, 300, config.in_flight_limit(), config.max_idle_per_host).unwrap_err();
    assert_eq!(violation.rule, "no-connection-reuse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncapped_mutant_is_caught_by_too_many_connections() {
    let server = server(LONG_HOLD).await;
    let config = UpstreamConfig::SEED;
    let mutant = Uncapped::new(server.url(), config).unwrap();
    let observed = burst_of_300(&mutant, &server).await;
    let violation = within_connection_cap(observed, config.max_connections).unwrap_err();
    assert_eq!(violation.rule, "too-many-connections");
    assert!(violation.evidence.contains("cap 100"), "{violation}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_never_answers_yields_a_typed_timeout() {
    let server = TestServer::start(Behaviour::Never).await.unwrap();
    let timeout = Duration::from_millis(200);
    let client =
        UpstreamClient::new(server.url(), UpstreamConfig { timeout, ..UpstreamConfig::SEED }).unwrap();
    let started = Instant::now();
    let error = client.get_json::<serde_json::Value>("/stuck").await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(error, Error::Timeout { ref path, after } if path == "/stuck" && after == timeout),
        "{error}"
    );
    assert!(waited >= timeout, "gave up after {waited:?}, before the {timeout:?} timeout");
    // Generous slack for a loaded machine: the point is that it ends, not how fast.
    assert!(waited < timeout + Duration::from_secs(5), "timed out only after {waited:?}");
    assert_eq!(server.observed().connections_opened, 1);
    assert_eq!(client.available_permits(), UpstreamConfig::SEED.in_flight_limit(), "the permit is returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_json_parses_the_upstream_body() {
    let server = server(Duration::ZERO).await;
    let client = UpstreamClient::new(&format!("{}/", server.url()), UpstreamConfig::SEED).unwrap();
    for n in 1..=3 {
        let body: serde_json::Value = client.get_json("/video/1").await.unwrap();
        assert_eq!(body, serde_json::json!({ "served": n }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_is_a_request_error() {
    // A port that was just free: bound, then closed before the request, so connecting is refused.
    let url = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let client = UpstreamClient::new(&url, UpstreamConfig::SEED).unwrap();
    let error = client.get_json::<serde_json::Value>("/x?key=k").await.unwrap_err();
    assert!(matches!(error, Error::Request { .. } | Error::Timeout { .. }), "{error}");
    // The path says which call; the upstream's address, which an import's status shows its
    // user, is not in it.
    let address = url.trim_start_matches("http://");
    assert!(error.to_string().contains("/x") && !error.to_string().contains(address), "{error}");
}

#[test]
fn bad_base_urls_and_paths_are_refused_with_what_to_do() {
    let error = UpstreamClient::new("not a url", UpstreamConfig::SEED).unwrap_err();
    assert!(matches!(error, Error::BaseUrl { .. }));
    assert!(error.to_string().contains("such as http://"), "{error}");
    let error = UpstreamClient::new("https://127.0.0.1:1", UpstreamConfig::SEED).unwrap_err();
    assert!(matches!(error, Error::BaseUrl { .. }), "{error}");
    let error = UpstreamClient::new(
        "http://127.0.0.1:1",
        UpstreamConfig { max_connections: 20, ..UpstreamConfig::SEED },
    )
    .unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
}

#[tokio::test(flavor = "current_thread")]
async fn path_without_leading_slash_is_refused() {
    let client = UpstreamClient::new("http://127.0.0.1:1", UpstreamConfig::SEED).unwrap();
    let error = client.get_json::<serde_json::Value>("video/1").await.unwrap_err();
    assert!(matches!(error, Error::Path { .. }), "{error}");
}
