//! `POST /v1/uploads` and `GET /v1/uploads/{id}` (#12).

use std::time::Duration;

use axum::body::Bytes;
use futures_util::stream;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use sha2::{Digest, Sha256};
use stack::Mutant;

use crate::support::{Harness, User, bounded, bytes};

const OCTETS: &str = "application/octet-stream";
const MIB: usize = 1024 * 1024;

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// `data` as a chunked body (no `Content-Length`) of `chunk`-byte pieces.
fn chunked(data: &[u8], chunk: usize) -> reqwest::Body {
    let pieces: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    reqwest::Body::wrap_stream(stream::iter(pieces))
}

async fn upload(h: &Harness, user: &User, body: impl Into<reqwest::Body>) -> reqwest::Response {
    h.http
        .post(h.url("/v1/uploads"))
        .bearer_auth(&user.token)
        .header(CONTENT_TYPE, OCTETS)
        .body(body)
        .send()
        .await
        .expect("the stack answers")
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("a JSON error body");
    body["error"]["code"].as_str().expect("an error code").to_owned()
}

#[tokio::test]
async fn every_chunking_stores_the_bytes_sent_with_their_sha256() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let user = h.user("uploader").await;
        let data = bytes(150_001, 1);
        let expected = sha256(&data);
        for chunk in [1, 7, 4096, 65_537, data.len()] {
            let response = upload(&h, &user, chunked(&data, chunk)).await;
            assert_eq!(response.status(), 201, "{chunk}-byte chunks");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["bytes"], data.len() as u64, "{chunk}-byte chunks");
            assert_eq!(body["sha256"], expected, "{chunk}-byte chunks");
            let id = body["id"].as_str().unwrap();
            assert_eq!(std::fs::read(h.upload_dir.join(id)).unwrap(), data, "{chunk}-byte chunks");
        }
        // One body with a Content-Length.
        let response = upload(&h, &user, data.clone()).await;
        assert_eq!(response.status(), 201);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["sha256"], expected);
        assert_eq!(location, format!("/v1/uploads/{}", body["id"].as_str().unwrap()));
        // Nothing but the six bodies, no partial file left behind.
        let files = h.stored_files();
        assert_eq!(files.len(), 6, "{files:?}");
        assert!(files.iter().all(|f| !f.ends_with(".part")), "{files:?}");
    })
    .await;
}

#[tokio::test]
async fn an_empty_body_is_an_upload_of_zero_bytes() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let user = h.user("uploader").await;
        let response = upload(&h, &user, Vec::new()).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["bytes"], 0);
        assert_eq!(body["sha256"], sha256(b""));
    })
    .await;
}

#[tokio::test]
async fn a_declared_oversize_body_is_refused_before_it_is_read_or_counted() {
    bounded(async {
        let max = 64 * 1024;
        let h = Harness::start(|s| {
            s.max_upload_bytes = max as u64;
            s.upload_limit = reference::limit::Limit::new(1, Duration::from_secs(3600));
        })
        .await;
        let user = h.user("uploader").await;
        let response = upload(&h, &user, bytes(max + 1, 2)).await;
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()["connection"], "close", "refused unread");
        assert_eq!(error_code(response).await, "payload_too_large");
        assert!(h.stored_files().is_empty(), "{:?}", h.stored_files());
        // The refusal did not use the one upload the limit allows.
        let response = upload(&h, &user, bytes(max, 2)).await;
        assert_eq!(response.status(), 201);
        assert_eq!(h.stored_files().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_streamed_body_is_cut_off_once_past_the_cap_and_nothing_is_stored() {
    bounded(async {
        let max = 64 * 1024;
        let h = Harness::start(|s| s.max_upload_bytes = max as u64).await;
        let user = h.user("uploader").await;
        let exactly = bytes(max, 3);
        let response = upload(&h, &user, chunked(&exactly, 8192)).await;
        assert_eq!(response.status(), 201, "a body of exactly the cap fits");
        let stored = h.stored_files();
        let over = bytes(2 * max, 4);
        let response = upload(&h, &user, chunked(&over, 8192)).await;
        assert_eq!(response.status(), 413);
        assert_eq!(error_code(response).await, "payload_too_large");
        assert_eq!(h.stored_files(), stored, "the cut-off body left nothing behind");
        // The upload stored before is intact.
        assert_eq!(std::fs::read(h.upload_dir.join(&stored[0])).unwrap(), exactly);
    })
    .await;
}

#[tokio::test]
async fn the_sixteenth_upload_in_a_day_is_refused_with_rate_limit_headers() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let user = h.user("uploader").await;
        for n in 1..=15u64 {
            let response = upload(&h, &user, vec![n as u8]).await;
            assert_eq!(response.status(), 201, "upload {n}");
            assert_eq!(response.headers()["ratelimit-limit"], "15");
            assert_eq!(response.headers()["ratelimit-remaining"], (15 - n).to_string().as_str());
        }
        let response = upload(&h, &user, vec![16]).await;
        assert_eq!(response.status(), 429);
        let headers = response.headers().clone();
        assert_eq!(headers["ratelimit-limit"], "15");
        assert_eq!(headers["ratelimit-remaining"], "0");
        // Refused unread, the body is still on the connection: the server closes it, and
        // says so, so no client sends its next request into a closing socket.
        assert_eq!(headers["connection"], "close");
        let reset: u64 = headers["ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!(reset > 0 && reset <= 24 * 3600, "reset in {reset} s");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1, "retry after {retry} s");
        assert_eq!(error_code(response).await, "rate_limited");
        assert_eq!(h.stored_files().len(), 15);
        // The limit is per user.
        let other = h.user("other").await;
        assert_eq!(upload(&h, &other, vec![1]).await.status(), 201);
    })
    .await;
}

#[tokio::test]
async fn an_upload_is_visible_to_its_owner_only() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let (owner, other) = (h.user("owner").await, h.user("other").await);
        let data = bytes(1000, 5);
        let body: Value = upload(&h, &owner, data.clone()).await.json().await.unwrap();
        let id = body["id"].as_str().unwrap();
        let get = |user: &User, id: &str| {
            h.http.get(h.url(&format!("/v1/uploads/{id}"))).bearer_auth(&user.token).send()
        };
        let response = get(&owner, id).await.unwrap();
        assert_eq!(response.status(), 200);
        let read: Value = response.json().await.unwrap();
        assert_eq!(read["id"], id);
        assert_eq!(read["bytes"], 1000);
        assert_eq!(read["sha256"], sha256(&data));
        let response = get(&other, id).await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(error_code(response).await, "not_found");
        for unknown in ["0123456789abcdef0123456789abcdef", "..%2F..%2Fetc%2Fpasswd", "ABC"] {
            assert_eq!(get(&owner, unknown).await.unwrap().status(), 404, "{unknown}");
        }
        let anonymous = h.http.get(h.url(&format!("/v1/uploads/{id}"))).send().await.unwrap();
        assert_eq!(anonymous.status(), 401);
    })
    .await;
}

#[tokio::test]
async fn an_upload_needs_a_token_and_an_octet_stream() {
    bounded(async {
        let h = Harness::start(|_| {}).await;
        let user = h.user("uploader").await;
        let anonymous =
            h.http.post(h.url("/v1/uploads")).header(CONTENT_TYPE, OCTETS).body("x").send().await.unwrap();
        assert_eq!(anonymous.status(), 401);
        let json = h
            .http
            .post(h.url("/v1/uploads"))
            .bearer_auth(&user.token)
            .header(CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(json.status(), 400);
        assert!(h.stored_files().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_slow_upload_is_not_cut_by_the_request_deadline() {
    bounded(async {
        let h = Harness::start(|s| s.request_timeout = Duration::from_millis(100)).await;
        let user = h.user("uploader").await;
        let data = bytes(4 * 1024, 6);
        let pieces: Vec<Bytes> = data.chunks(1024).map(Bytes::copy_from_slice).collect();
        // A piece every 150 ms: the body takes several deadlines to arrive.
        let slow = stream::unfold(pieces.into_iter(), |mut pieces| async move {
            let piece = pieces.next()?;
            tokio::time::sleep(Duration::from_millis(150)).await;
            Some((Ok::<_, std::io::Error>(piece), pieces))
        });
        let response = upload(&h, &user, reqwest::Body::wrap_stream(slow)).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["sha256"], sha256(&data));
    })
    .await;
}

/// The body of the memory check: large next to any buffer a streaming server holds.
const BODY: usize = 16 * MIB;

/// What an upload may hold in memory at once, whatever the body's size: one chunk as the HTTP
/// server hands it over (its read buffer, about 400 KiB, up to twice that when a read adds to
/// bytes already buffered), with room to spare; an eighth of [`BODY`].
const MEMORY_BOUND: u64 = 2 * MIB as u64;

/// The memory check: uploading `body_bytes` held at most [`MEMORY_BOUND`] in memory at once.
fn memory_bounded(peak: u64, body_bytes: usize) -> Result<(), String> {
    if peak <= MEMORY_BOUND {
        Ok(())
    } else {
        Err(format!(
            "uploading {body_bytes} bytes held {peak} bytes in memory at once; the bound is {MEMORY_BOUND}"
        ))
    }
}

/// Uploads [`BODY`] in one request with a `Content-Length` and returns the memory high-water
/// mark of the stack's uploads.
async fn peak_for_a_large_body(sink: Option<Mutant>) -> u64 {
    let h = Harness::start(|s| s.mutant = sink).await;
    let user = h.user("uploader").await;
    let data = bytes(BODY, 7);
    let response = upload(&h, &user, data.clone()).await;
    assert_eq!(response.status(), 201, "{sink:?}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["sha256"], sha256(&data), "{sink:?}: same bytes stored either way");
    let meter = h.stack.state().uploads.meter();
    assert_eq!(meter.held(), 0, "{sink:?}: nothing held once answered");
    meter.peak()
}

#[tokio::test]
async fn streaming_upload_holds_one_chunk_at_a_time() {
    bounded(async {
        let peak = peak_for_a_large_body(None).await;
        assert!(peak > 0, "the meter saw the body");
        memory_bounded(peak, BODY).unwrap();
    })
    .await;
}

#[tokio::test]
async fn memory_check_rejects_the_whole_body_buffered_mutant() {
    bounded(async {
        let peak = peak_for_a_large_body(Some(Mutant::UploadWholeBodyBuffered)).await;
        assert!(peak >= BODY as u64, "the mutant held the whole body: {peak}");
        let verdict = memory_bounded(peak, BODY);
        assert!(verdict.is_err(), "the memory check let the mutant through: peak {peak}");
    })
    .await;
}
