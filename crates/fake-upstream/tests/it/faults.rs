//! Each fault as a client sees it, and the control API untouched by all of them.

use std::time::{Duration, Instant};

use fake_upstream::{ControlClient, Fault, NewAccount, OutageMode, Route};

use crate::rig::{self, account, bounded, client, refresh, until, youtube};

#[tokio::test]
async fn fail_next_answers_the_status_for_exactly_n_requests() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    fake.add_fault(Fault::fail_next(503, 3)).unwrap();

    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = http
            .get(format!("{}/youtube/v3/videos?id=abc", fake.url()))
            .bearer_auth(&alice.access_token)
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [503, 503, 503, 200, 200]);

    let stats = fake.stats();
    assert_eq!(stats.injected.failures, 3);
    assert_eq!(stats.routes[&Route::YoutubeVideos].statuses[&503], 3);
    let faults = fake.faults();
    assert_eq!((faults[0].fired, faults[0].active), (3, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_next_is_exact_under_concurrency() {
    let fake = rig::start().await;
    let alice = account(&fake, "alice");
    fake.add_fault(Fault::fail_next(500, 10)).unwrap();
    let statuses = concurrent_youtube(&fake, &alice.access_token, 40).await;
    assert_eq!(statuses.iter().filter(|&&s| s == 500).count(), 10);
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 30);
}

#[tokio::test]
async fn fail_fraction_without_a_seed_fails_exactly_that_fraction() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    fake.add_fault(Fault::fail_fraction(429, 0.25)).unwrap();
    let mut failed = 0;
    for _ in 0..40 {
        if youtube(&http, &fake, Some(&alice.access_token), "abc").await.0 == 429 {
            failed += 1;
        }
    }
    assert_eq!(failed, 10);
    assert_eq!(fake.stats().statuses[&429], 10);
}

#[tokio::test]
async fn fail_fraction_with_a_seed_repeats_its_pattern() {
    let fault = Fault::FailFraction { status: 500, fraction: 0.5, route: None, seed: Some(7) };
    let mut patterns = Vec::new();
    for _ in 0..2 {
        let fake = rig::start().await;
        let http = client();
        let alice = account(&fake, "alice");
        fake.add_fault(fault.clone()).unwrap();
        let mut pattern = Vec::new();
        for _ in 0..64 {
            pattern.push(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0 == 500);
        }
        patterns.push(pattern);
    }
    assert_eq!(patterns[0], patterns[1]);
    let failed = patterns[0].iter().filter(|&&f| f).count();
    assert!(failed > 0 && failed < 64, "a fair coin 64 times: {failed} failures");
}

#[tokio::test]
async fn latency_holds_each_request_at_least_the_injected_delay() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    let delay = Duration::from_millis(200);
    fake.add_fault(Fault::latency(delay)).unwrap();
    for _ in 0..3 {
        let sent = Instant::now();
        assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
        assert!(sent.elapsed() >= delay, "answered after {:?}", sent.elapsed());
    }
    // Latency and a failure together: the failure comes after the delay.
    fake.add_fault(Fault::fail_next(503, 1)).unwrap();
    let sent = Instant::now();
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 503);
    assert!(sent.elapsed() >= delay);
    assert_eq!(fake.stats().injected.delayed, 4);
}

#[tokio::test]
async fn latency_on_one_route_leaves_the_others() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    let delay = Duration::from_millis(150);
    fake.add_fault(Fault::latency(delay).on(Route::OauthToken)).unwrap();
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
    assert_eq!(fake.stats().injected.delayed, 0);
    let sent = Instant::now();
    assert_eq!(refresh(&http, &fake, &alice.refresh_token).await.0, 200);
    assert!(sent.elapsed() >= delay);
    assert_eq!(fake.stats().injected.delayed, 1);
}

#[tokio::test]
async fn outage_reset_closes_the_connection_without_a_response() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    fake.add_fault(Fault::outage(OutageMode::Reset)).unwrap();
    for _ in 0..3 {
        let result = http
            .get(format!("{}/youtube/v3/videos?id=abc", fake.url()))
            .bearer_auth(&alice.access_token)
            .send()
            .await;
        let error = result.expect_err("no response during an outage");
        assert!(error.is_request() || error.is_connect(), "{error:?}");
    }
    let stats = until(&fake, "the dropped connections to close", |s| s.connections.open == 0).await;
    assert_eq!(stats.injected.dropped, 3);
    assert_eq!(stats.routes[&Route::YoutubeVideos].dropped, 3);
    assert_eq!(stats.connections.accepted, 3, "each dropped request took its connection with it");
    assert!(stats.statuses.is_empty());

    fake.clear_faults();
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_hang_holds_requests_until_it_is_cleared() {
    let fake = rig::start().await;
    let alice = account(&fake, "alice");
    fake.add_fault(Fault::outage(OutageMode::Hang)).unwrap();
    let request = tokio::spawn({
        let (http, url, token) = (client(), fake.url(), alice.access_token.clone());
        async move {
            let response =
                http.get(format!("{url}/youtube/v3/videos?id=abc")).bearer_auth(token).send().await;
            response.expect("answered once the outage ends").status().as_u16()
        }
    });
    until(&fake, "the request to be held", |s| s.injected.held == 1).await;
    assert!(!request.is_finished());
    assert_eq!(fake.stats().in_flight, 1);

    fake.clear_faults();
    assert_eq!(bounded("the held request", request).await.unwrap(), 200);
    let stats = fake.stats();
    assert_eq!((stats.in_flight, stats.statuses[&200]), (0, 1));
}

#[tokio::test]
async fn outage_with_a_duration_ends_by_itself() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    let outage = Duration::from_millis(300);
    let set = Instant::now();
    fake.add_fault(Fault::Outage { mode: OutageMode::Hang, duration_ms: Some(300), route: None }).unwrap();
    // Held until the outage ends by itself, then served.
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
    assert!(set.elapsed() >= outage);
    assert!(!fake.faults()[0].active);

    fake.set_faults(vec![Fault::Outage { mode: OutageMode::Reset, duration_ms: Some(300), route: None }])
        .unwrap();
    let ended = Instant::now() + outage;
    assert!(http.get(format!("{}/youtube/v3/videos?id=a", fake.url())).send().await.is_err());
    tokio::time::sleep_until(ended.into()).await;
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
}

#[tokio::test]
async fn outage_on_one_route_leaves_the_others() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    fake.add_fault(Fault::outage(OutageMode::Reset).on(Route::YoutubeVideos)).unwrap();
    assert_eq!(refresh(&http, &fake, &alice.refresh_token).await.0, 200);
    let tiktok = serde_json::json!({"filters": {"video_ids": ["a"]}});
    assert_eq!(rig::tiktok(&http, &fake, Some(&alice.access_token), &tiktok).await.0, 200);
    let stats = fake.stats();
    assert_eq!(stats.injected.dropped, 0);
}

/// Every fault at once, for every route; the control API answers as if there were none, and
/// none of its requests is counted or consumes a fault.
#[tokio::test]
async fn faults_never_touch_the_control_api() {
    for outage in [OutageMode::Reset, OutageMode::Hang] {
        let fake = rig::start().await;
        let control = ControlClient::new(&fake.control_url()).unwrap();
        let faults = vec![
            Fault::outage(outage),
            Fault::latency(Duration::from_secs(60)),
            Fault::fail_next(500, 1_000),
            Fault::fail_fraction(503, 1.0),
        ];
        control.set_faults(&faults).await.expect("set faults");
        bounded("the control calls", async {
            control.health().await.expect("health");
            let account = control.register_account(&NewAccount::named("alice")).await.expect("register");
            control.expire_access_tokens(&account.account).await.expect("expire");
            assert_eq!(control.faults().await.expect("faults").len(), 4);
            control.add_fault(&Fault::fail_next(502, 1)).await.expect("add fault");
            let stats = control.stats().await.expect("stats");
            assert_eq!(stats.requests, 0);
            assert!(stats.routes.is_empty());
        })
        .await;
        assert!(fake.faults().iter().all(|f| f.fired == 0));
        control.reset().await.unwrap();
        assert!(fake.faults().is_empty());
    }
}

#[tokio::test]
async fn invalid_faults_are_refused() {
    let fake = rig::start().await;
    assert!(fake.add_fault(Fault::fail_next(200, 1)).is_err());
    assert!(fake.add_fault(Fault::fail_fraction(500, 1.5)).is_err());

    let http = client();
    let url = format!("{}/_control/faults", fake.url());
    for body in [
        r#"{"kind": "fail_next", "status": 503}"#,
        r#"{"kind": "fail_next", "status": 503, "count": 1, "typo": true}"#,
        r#"{"kind": "meltdown"}"#,
        r#"{"kind": "fail_next", "status": 302, "count": 1}"#,
        r#"{"kind": "latency", "ms": 5, "route": "nowhere"}"#,
    ] {
        let response =
            http.post(&url).header("content-type", "application/json").body(body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert!(error["error"].is_string(), "{error}");
    }
    assert!(fake.faults().is_empty());
}

/// `count` statuses of concurrent YouTube calls, each on its own connection.
pub(crate) async fn concurrent_youtube(
    fake: &fake_upstream::RunningUpstream,
    token: &str,
    count: usize,
) -> Vec<u16> {
    let http = client();
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let request = http.get(format!("{}/youtube/v3/videos?id=abc", fake.url())).bearer_auth(token);
            tokio::spawn(async move { request.send().await.expect("the fake answers").status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(bounded("a concurrent request", task).await.unwrap());
    }
    statuses
}
