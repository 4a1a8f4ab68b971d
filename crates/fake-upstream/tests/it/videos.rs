//! The video routes: deterministic metadata in each API's shape.

use serde_json::json;

use crate::rig::{self, account, client, tiktok, youtube};

#[tokio::test]
async fn youtube_metadata_is_the_same_in_every_instance() {
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let fake = rig::start().await;
        let alice = account(&fake, "alice");
        let (status, body) = youtube(&client(), &fake, Some(&alice.access_token), "dQw4w9WgXcQ").await;
        assert_eq!(status, 200);
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    let video = &bodies[0]["items"][0];
    assert_eq!(video["id"], "dQw4w9WgXcQ");
    assert_eq!(video["kind"], "youtube#video");
    assert!(video["snippet"]["title"].as_str().unwrap().ends_with("dQw4w9WgXcQ"));
    assert!(video["contentDetails"]["duration"].as_str().unwrap().starts_with("PT"));
    assert!(video["snippet"]["publishedAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn youtube_answers_several_ids_and_leaves_out_missing_ones() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    let (status, body) = youtube(&http, &fake, Some(&alice.access_token), "a,missing-1,b").await;
    assert_eq!(status, 200);
    let ids: Vec<_> = body["items"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(body["pageInfo"]["totalResults"], 2);
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "").await.0, 400);
}

#[tokio::test]
async fn tiktok_query_answers_the_known_ids_in_its_shape() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    let token = Some(alice.access_token.as_str());
    let (status, body) =
        tiktok(&http, &fake, token, &json!({"filters": {"video_ids": ["7", "missing", "8"]}})).await;
    assert_eq!(status, 200);
    assert_eq!(body["error"]["code"], "ok");
    let videos = body["data"]["videos"].as_array().unwrap();
    assert_eq!(videos.len(), 2);
    assert_eq!(videos[0]["id"], "7");
    assert!(videos[0]["duration"].as_u64().unwrap() >= 15);

    let ids: Vec<String> = (0..21).map(|i| i.to_string()).collect();
    for bad in [
        json!({"video_ids": ["7"]}),
        json!({"filters": {"video_ids": []}}),
        json!({"filters": {"video_ids": ids}}),
    ] {
        let (status, body) = tiktok(&http, &fake, token, &bad).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_params")), "{bad}");
    }
}
