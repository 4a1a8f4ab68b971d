//! The stats are exact: requests in flight and connections under concurrency, keep-alive
//! against new connections, counts by route and status, reset.

use std::time::Duration;

use fake_upstream::{Config, ControlClient, Fault, OutageMode, Route};
use serde_json::json;

use crate::rig::{self, account, bounded, client, refresh, tiktok, until, youtube};

/// 50 concurrent requests, held by a `hang` outage until all 50 have arrived (a latency fault
/// would do the same only if the client sent all 50 within the delay, which a loaded machine
/// does not promise): peak in flight is exactly 50, and so are the connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_in_flight_and_open_connections_equal_the_concurrent_requests() {
    let fake = rig::start().await;
    let alice = account(&fake, "alice");
    fake.add_fault(Fault::outage(OutageMode::Hang)).unwrap();
    let requests = tokio::spawn({
        let token = alice.access_token.clone();
        let fake_url = fake.url();
        async move {
            let http = client();
            let tasks: Vec<_> = (0..50)
                .map(|_| {
                    let request =
                        http.get(format!("{fake_url}/youtube/v3/videos?id=abc")).bearer_auth(&token);
                    tokio::spawn(async move { request.send().await.expect("answered").status().as_u16() })
                })
                .collect();
            let mut statuses = Vec::new();
            for task in tasks {
                statuses.push(task.await.unwrap());
            }
            statuses
        }
    });
    until(&fake, "50 requests in flight", |s| s.in_flight == 50).await;
    fake.clear_faults();
    let statuses = bounded("50 requests", requests).await.unwrap();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");

    let stats = fake.stats();
    assert_eq!((stats.requests, stats.in_flight, stats.peak_in_flight), (50, 0, 50));
    assert_eq!(stats.injected.held, 50);
    assert_eq!((stats.connections.accepted, stats.connections.peak_open), (50, 50));
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    for _ in 0..20 {
        assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
    }
    let stats = fake.stats();
    assert_eq!((stats.connections.accepted, stats.connections.open, stats.connections.peak_open), (1, 1, 1));
    drop(http);
    until(&fake, "the client's connection to close", |s| s.connections.open == 0).await;
}

#[tokio::test]
async fn without_keep_alive_every_request_opens_a_connection() {
    let fake = rig::start().await;
    let http = reqwest::Client::builder().http1_only().no_proxy().pool_max_idle_per_host(0).build().unwrap();
    let alice = account(&fake, "alice");
    for _ in 0..20 {
        assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
    }
    let stats = until(&fake, "every connection to close", |s| s.connections.open == 0).await;
    assert_eq!(stats.connections.accepted, 20);
    assert_eq!(stats.requests, 20);
}

#[tokio::test]
async fn requests_add_up_by_route_and_status() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    for _ in 0..3 {
        assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
    }
    for _ in 0..2 {
        assert_eq!(tiktok(&http, &fake, None, &json!({"filters": {"video_ids": ["a"]}})).await.0, 401);
    }
    assert_eq!(refresh(&http, &fake, "unknown").await.0, 400);
    assert_eq!(http.get(format!("{}/elsewhere", fake.url())).send().await.unwrap().status(), 404);
    assert_eq!(http.delete(format!("{}/oauth2/token", fake.url())).send().await.unwrap().status(), 405);
    fake.add_fault(Fault::fail_next(503, 2).on(Route::YoutubeVideos)).unwrap();
    for _ in 0..2 {
        assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 503);
    }

    let stats = fake.stats();
    assert_eq!(stats.requests, 10);
    let statuses: Vec<_> = stats.statuses.iter().map(|(s, n)| (*s, *n)).collect();
    assert_eq!(statuses, [(200, 3), (400, 1), (401, 2), (404, 1), (405, 1), (503, 2)]);
    let routes: Vec<_> = stats.routes.iter().map(|(r, s)| (*r, s.requests)).collect();
    assert_eq!(
        routes,
        [
            (Route::YoutubeVideos, 5),
            (Route::TiktokVideoQuery, 2),
            (Route::OauthToken, 2),
            (Route::Unknown, 1)
        ]
    );
    let answered: u64 = stats.statuses.values().sum();
    let dropped: u64 = stats.routes.values().map(|r| r.dropped).sum();
    assert_eq!(stats.requests, answered + dropped + stats.abandoned + stats.in_flight);
}

#[tokio::test]
async fn a_client_giving_up_leaves_an_abandoned_request() {
    let fake = rig::start().await;
    let alice = account(&fake, "alice");
    fake.add_fault(Fault::outage(OutageMode::Hang)).unwrap();
    let impatient =
        reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(200)).build().unwrap();
    let error = youtube_err(&impatient, &fake, &alice.access_token).await;
    assert!(error.is_timeout(), "{error:?}");
    let stats = until(&fake, "the server to see the client leave", |s| s.in_flight == 0).await;
    assert_eq!((stats.requests, stats.abandoned), (1, 1));
    assert_eq!(stats.routes[&Route::YoutubeVideos].abandoned, 1);
}

async fn youtube_err(
    http: &reqwest::Client,
    fake: &fake_upstream::RunningUpstream,
    token: &str,
) -> reqwest::Error {
    http.get(format!("{}/youtube/v3/videos?id=abc", fake.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect_err("no answer in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_zeroes_the_counts_and_keeps_gauges_and_accounts() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    assert_eq!(refresh(&http, &fake, &alice.refresh_token).await.0, 200);
    // One request delayed past the reset: the latency was decided on arrival and outlives it.
    fake.add_fault(Fault::latency(Duration::from_millis(500))).unwrap();
    let slow = tokio::spawn({
        let request =
            http.get(format!("{}/youtube/v3/videos?id=abc", fake.url())).bearer_auth(&alice.access_token);
        async move { request.send().await.expect("answered").status().as_u16() }
    });
    until(&fake, "the slow request to arrive", |s| s.in_flight == 1).await;
    fake.reset();

    let stats = fake.stats();
    assert_eq!((stats.requests, stats.refreshes, stats.injected.delayed), (0, 0, 0));
    assert!(stats.accounts.is_empty() && stats.refresh_log.is_empty());
    assert_eq!((stats.in_flight, stats.peak_in_flight), (1, 1));
    assert_eq!(stats.connections.accepted, 0);
    assert_eq!(stats.connections.open, stats.connections.peak_open);
    assert!(fake.faults().is_empty());

    assert_eq!(bounded("the slow request", slow).await.unwrap(), 200);
    // Accounts and tokens survive a reset.
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
    let stats = fake.stats();
    assert_eq!((stats.in_flight, stats.statuses[&200]), (0, 2));
}

/// With the control API on its own listener, the API's connection counts hold the stack's
/// connections alone, however the control API is used.
#[tokio::test]
async fn a_separate_control_listener_keeps_control_connections_out_of_the_counts() {
    let config = Config { control_listen: Some(([127, 0, 0, 1], 0).into()), ..Config::default() };
    let fake = rig::start_with(config).await;
    assert_ne!(fake.addr(), fake.control_addr());
    let http = client();
    let alice = account(&fake, "alice");
    for _ in 0..5 {
        // Each control call on a fresh client: five control connections.
        let control = ControlClient::new(&fake.control_url()).unwrap();
        control.stats().await.unwrap();
        assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
    }
    // The control API is not on the API listener, and the API is not on the control listener.
    let wrong = http.get(format!("{}/_control/stats", fake.url())).send().await.unwrap();
    assert_eq!(wrong.status(), 404);
    let wrong = http.get(format!("{}/youtube/v3/videos?id=a", fake.control_url())).send().await.unwrap();
    assert_eq!(wrong.status(), 404);

    let stats = ControlClient::new(&fake.control_url()).unwrap().stats().await.unwrap();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.connections.accepted, 1);
}

#[tokio::test]
async fn on_a_shared_listener_control_connections_are_counted_but_not_their_requests() {
    let fake = rig::start().await;
    for _ in 0..3 {
        ControlClient::new(&fake.control_url()).unwrap().stats().await.unwrap();
    }
    let stats = fake.stats();
    assert_eq!((stats.requests, stats.connections.accepted), (0, 3));
}
