//! Shutting down: graceful with `shutdown().await`, at once with drop.

use std::time::Duration;

use fake_upstream::{Fault, OutageMode};

use crate::rig::{self, account, bounded, client, until, youtube};

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_and_returns() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);
    assert_eq!(fake.stats().connections.open, 1);
    let url = fake.url();
    bounded("shutdown", fake.shutdown()).await;
    let after = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
    assert!(after.get(format!("{url}/youtube/v3/videos?id=a")).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_held_requests() {
    let fake = rig::start().await;
    let alice = account(&fake, "alice");
    fake.add_fault(Fault::outage(OutageMode::Hang)).unwrap();
    let held = tokio::spawn({
        let request =
            client().get(format!("{}/youtube/v3/videos?id=abc", fake.url())).bearer_auth(&alice.access_token);
        async move { request.send().await.expect("answered at shutdown").status().as_u16() }
    });
    until(&fake, "the request to be held", |s| s.injected.held == 1).await;
    bounded("shutdown", fake.shutdown()).await;
    assert_eq!(bounded("the held request", held).await.unwrap(), 503);
}

#[tokio::test]
async fn drop_stops_serving() {
    let fake = rig::start().await;
    let url = fake.url();
    drop(fake);
    let after = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
    assert!(after.get(format!("{url}/youtube/v3/videos?id=a")).send().await.is_err());
}
