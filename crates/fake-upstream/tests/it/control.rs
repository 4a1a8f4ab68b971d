//! The control API over HTTP, through the typed client, as a check in another process drives it.

use fake_upstream::{ControlClient, Error, Fault, NewAccount, OutageMode, Route, Stats};

use crate::rig::{self, client, youtube};

#[tokio::test]
async fn the_control_client_drives_a_fake_upstream_over_http() {
    let fake = rig::start().await;
    let control = ControlClient::new(&fake.control_url()).unwrap();
    let http = client();
    control.health().await.unwrap();

    let new = NewAccount { client_id: Some("app".into()), ..NewAccount::named("alice") };
    let alice = control.register_account(&new).await.unwrap();
    assert_eq!((alice.account.as_str(), alice.client_id.as_deref()), ("alice", Some("app")));

    control.set_faults(&[Fault::fail_next(503, 1).on(Route::YoutubeVideos)]).await.unwrap();
    let faults = control.faults().await.unwrap();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].fault, Fault::fail_next(503, 1).on(Route::YoutubeVideos));
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 503);
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);

    // Over HTTP and in process, the same stats (but the clock).
    let remote = control.stats().await.unwrap();
    let local = fake.stats();
    assert_eq!(Stats { elapsed_ms: 0, ..remote.clone() }, Stats { elapsed_ms: 0, ..local });
    assert_eq!(remote.routes[&Route::YoutubeVideos].statuses[&503], 1);

    control.expire_access_tokens("alice").await.unwrap();
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 401);
    control.revoke_account("alice").await.unwrap();
    control.add_fault(&Fault::outage(OutageMode::Reset)).await.unwrap();
    control.clear_faults().await.unwrap();
    assert!(control.faults().await.unwrap().is_empty());
    control.reset().await.unwrap();
    assert_eq!(control.stats().await.unwrap().requests, 0);
}

#[tokio::test]
async fn the_control_client_reports_refusals_with_their_status() {
    let fake = rig::start().await;
    let control = ControlClient::new(&fake.control_url()).unwrap();
    control.register_account(&NewAccount::named("alice")).await.unwrap();
    let status = |e: Error| match e {
        Error::ControlStatus { status, message, .. } => {
            assert!(!message.is_empty());
            status
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(status(control.register_account(&NewAccount::named("alice")).await.unwrap_err()), 409);
    assert_eq!(status(control.expire_access_tokens("nobody").await.unwrap_err()), 404);
    assert_eq!(status(control.add_fault(&Fault::fail_next(204, 1)).await.unwrap_err()), 400);
}

#[tokio::test]
async fn the_control_client_says_when_nothing_listens() {
    // A port that was free a moment ago: bind, note, release.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let control = ControlClient::new(&format!("http://{addr}")).unwrap();
    assert!(matches!(control.health().await, Err(Error::ControlRequest { .. })));
    assert!(matches!(ControlClient::new("https://example.invalid"), Err(Error::ControlUrl { .. })));
}

#[test]
fn stats_and_faults_round_trip_through_json() {
    let mut stats = Stats::default();
    stats.routes.entry(Route::TiktokVideoQuery).or_default().statuses.insert(503, 2);
    stats.statuses.insert(200, 7);
    let json = serde_json::to_string(&stats).unwrap();
    assert!(json.contains(r#""tiktok_video_query""#) && json.contains(r#""503":2"#), "{json}");
    assert_eq!(serde_json::from_str::<Stats>(&json).unwrap(), stats);

    let faults = vec![
        Fault::fail_next(503, 5),
        Fault::FailFraction { status: 500, fraction: 0.25, route: Some(Route::OauthToken), seed: Some(3) },
        Fault::latency(std::time::Duration::from_millis(200)).on(Route::YoutubeVideos),
        Fault::Outage { mode: OutageMode::Hang, duration_ms: Some(2000), route: None },
    ];
    let json = serde_json::to_value(&faults).unwrap();
    assert_eq!(json[0], serde_json::json!({"kind": "fail_next", "status": 503, "count": 5}));
    assert_eq!(serde_json::from_value::<Vec<Fault>>(json).unwrap(), faults);
}
