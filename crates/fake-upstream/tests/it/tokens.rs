//! The token lifecycle: refresh, rotation, reuse, expiry, revocation.

use std::time::Duration;

use fake_upstream::{Config, Fault, NewAccount, RefreshOutcome};
use serde_json::json;

use crate::rig::{self, account, bounded, client, refresh, refresh_form, tiktok, youtube};

#[tokio::test]
async fn refresh_issues_new_tokens_and_rotates_the_refresh_token() {
    let fake =
        rig::start_with(Config { access_token_lifetime: Duration::from_secs(90), ..Config::default() }).await;
    let http = client();
    let alice = account(&fake, "alice");
    assert_eq!(alice.expires_in, 90);
    assert_eq!(alice.token_type, "Bearer");

    let (status, body) = refresh(&http, &fake, &alice.refresh_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 90);
    let access = body["access_token"].as_str().unwrap();
    let rotated = body["refresh_token"].as_str().unwrap();
    assert_ne!(access, alice.access_token);
    assert_ne!(rotated, alice.refresh_token);

    // The new access token works, and so does the old one until it expires.
    assert_eq!(youtube(&http, &fake, Some(access), "abc").await.0, 200);
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);

    let stats = fake.stats();
    assert_eq!(stats.refreshes, 1);
    assert_eq!(stats.accounts["alice"].refreshes, 1);
    assert_eq!(stats.accounts["alice"].api_calls, 2);
    assert_eq!(stats.refresh_tokens[&alice.refresh_token], 1);
    assert_eq!(stats.refresh_log.len(), 1);
    assert_eq!(stats.refresh_log[0].account, "alice");
    assert_eq!(stats.refresh_log[0].outcome, RefreshOutcome::Refreshed);
}

#[tokio::test]
async fn reused_rotated_refresh_token_is_invalid_grant() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");

    let (status, first) = refresh(&http, &fake, &alice.refresh_token).await;
    assert_eq!(status, 200);
    let (status, reused) = refresh(&http, &fake, &alice.refresh_token).await;
    assert_eq!(status, 400);
    assert_eq!(reused["error"], "invalid_grant");
    // No family revocation: the current token still refreshes.
    let (status, _) = refresh(&http, &fake, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);

    let stats = fake.stats();
    assert_eq!((stats.refreshes, stats.rejected_refreshes), (2, 1));
    assert_eq!(stats.accounts["alice"].reused_refresh_tokens, 1);
    assert_eq!(stats.refresh_tokens[&alice.refresh_token], 2);
    let outcomes: Vec<_> = stats.refresh_log.iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, [RefreshOutcome::Refreshed, RefreshOutcome::Reused, RefreshOutcome::Refreshed]);
}

/// Two scheduler instances refreshing one credential at once: exactly one wins, the others see
/// `invalid_grant`, and the stats show the double refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_one_token_let_exactly_one_through() {
    let fake = rig::start().await;
    let alice = account(&fake, "alice");
    let url = fake.url();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, token) = (client(), url.clone(), alice.refresh_token.clone());
            tokio::spawn(async move {
                let form = format!("grant_type=refresh_token&refresh_token={token}&client_id=c");
                let response = http
                    .post(format!("{url}/oauth2/token"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .expect("the fake answers");
                response.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(bounded("a refresh", task).await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400, 400, 400]);
    let stats = fake.stats();
    assert_eq!(stats.accounts["alice"].refreshes, 1);
    assert_eq!(stats.accounts["alice"].reused_refresh_tokens, 7);
}

#[tokio::test]
async fn without_rotation_the_same_refresh_token_is_handed_back() {
    let fake = rig::start_with(Config { rotate_refresh_tokens: false, ..Config::default() }).await;
    let http = client();
    let alice = account(&fake, "alice");
    for _ in 0..2 {
        let (status, body) = refresh(&http, &fake, &alice.refresh_token).await;
        assert_eq!(status, 200);
        assert_eq!(body["refresh_token"], alice.refresh_token.as_str());
    }
    let stats = fake.stats();
    assert_eq!(stats.accounts["alice"].refreshes, 2);
    assert_eq!(stats.refresh_tokens[&alice.refresh_token], 2);
}

#[tokio::test]
async fn unknown_and_revoked_refresh_tokens_are_invalid_grant() {
    let fake = rig::start().await;
    let http = client();
    let (status, body) = refresh(&http, &fake, "never-issued").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let alice = account(&fake, "alice");
    fake.revoke_account("alice").unwrap();
    let (status, body) = refresh(&http, &fake, &alice.refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // A revoked access token is unknown, not expired.
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 401);

    let stats = fake.stats();
    assert_eq!(stats.rejected_refreshes, 2);
    assert_eq!(stats.accounts["alice"].revoked_refresh_tokens, 1);
    assert_eq!(stats.unauthorized_calls, 1);
    assert_eq!(stats.expired_token_calls, 0);
    // Unknown tokens are counted but not listed per token.
    assert!(!stats.refresh_tokens.contains_key("never-issued"));
}

/// A token request's form fields.
type Form<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn malformed_refreshes_are_refused_with_the_oauth_error() {
    let fake = rig::start().await;
    let http = client();
    let bob = fake
        .register_account(NewAccount { client_id: Some("app".into()), ..NewAccount::named("bob") })
        .unwrap();
    let rt = bob.refresh_token.as_str();
    let cases: [(Form, u16, &str); 5] = [
        (&[("refresh_token", rt), ("client_id", "app")], 400, "invalid_request"),
        (&[("grant_type", "authorization_code"), ("code", "x")], 400, "unsupported_grant_type"),
        (&[("grant_type", "refresh_token"), ("client_id", "app")], 400, "invalid_request"),
        (
            &[("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", "other")],
            401,
            "invalid_client",
        ),
        (&[("grant_type", "refresh_token"), ("refresh_token", rt), ("client_key", "app")], 200, ""),
    ];
    for (form, status, error) in cases {
        let (got, body) = refresh_form(&http, &fake, form).await;
        assert_eq!(got, status, "{form:?}: {body}");
        if !error.is_empty() {
            assert_eq!(body["error"], error, "{form:?}");
        }
    }
    let stats = fake.stats();
    assert_eq!((stats.refreshes, stats.rejected_refreshes), (1, 4));
    assert_eq!(stats.accounts["bob"].wrong_client, 1);
}

#[tokio::test]
async fn expired_access_token_is_401_and_counted() {
    let lifetime = Duration::from_secs(1);
    let fake = rig::start_with(Config { access_token_lifetime: lifetime, ..Config::default() }).await;
    let http = client();
    let alice = account(&fake, "alice");
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 200);

    tokio::time::sleep(lifetime + Duration::from_millis(100)).await;
    let (status, body) = youtube(&http, &fake, Some(&alice.access_token), "abc").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "expired", "{body}");
    let (status, body) =
        tiktok(&http, &fake, Some(&alice.access_token), &json!({"filters": {"video_ids": ["a"]}})).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "access_token_expired", "{body}");

    let stats = fake.stats();
    assert_eq!(stats.expired_token_calls, 2);
    assert_eq!(stats.accounts["alice"].expired_token_calls, 2);
    assert_eq!(stats.accounts["alice"].api_calls, 1);
    assert_eq!(stats.unauthorized_calls, 0);

    // A refresh brings a token that works again.
    let (_, body) = refresh(&http, &fake, &alice.refresh_token).await;
    assert_eq!(youtube(&http, &fake, body["access_token"].as_str(), "abc").await.0, 200);
}

#[tokio::test]
async fn expired_token_header_names_the_expiry() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    fake.expire_access_tokens("alice").unwrap();
    let response = http
        .get(format!("{}/youtube/v3/videos?id=abc", fake.url()))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token") && challenge.contains("expired"), "{challenge}");
    assert_eq!(fake.stats().expired_token_calls, 1);
}

#[tokio::test]
async fn missing_and_unknown_tokens_are_401_and_not_counted_as_expired() {
    let fake = rig::start().await;
    let http = client();
    assert_eq!(youtube(&http, &fake, None, "abc").await.0, 401);
    let (status, body) = youtube(&http, &fake, Some("made-up"), "abc").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    let (status, body) = tiktok(&http, &fake, None, &json!({"filters": {"video_ids": ["a"]}})).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "access_token_invalid");
    let stats = fake.stats();
    assert_eq!((stats.unauthorized_calls, stats.expired_token_calls), (3, 0));
}

/// The stack made the call with an expired token even if the upstream then failed it.
#[tokio::test]
async fn expired_token_is_counted_even_when_a_fault_answers() {
    let fake = rig::start().await;
    let http = client();
    let alice = account(&fake, "alice");
    fake.expire_access_tokens("alice").unwrap();
    fake.add_fault(Fault::fail_next(503, 1)).unwrap();
    assert_eq!(youtube(&http, &fake, Some(&alice.access_token), "abc").await.0, 503);
    assert_eq!(fake.stats().expired_token_calls, 1);
}

#[tokio::test]
async fn registration_refuses_taken_names_and_tokens() {
    let fake = rig::start().await;
    let alice = account(&fake, "alice");
    assert!(fake.register_account(NewAccount::named("alice")).is_err());
    let taken = NewAccount { refresh_token: Some(alice.refresh_token.clone()), ..NewAccount::default() };
    assert!(fake.register_account(taken).is_err());
    assert!(fake.register_account(NewAccount::named("no spaces")).is_err());
    // A refresh token chosen in advance works like a generated one.
    let given = NewAccount { refresh_token: Some("configured-token".into()), ..NewAccount::default() };
    let generated = fake.register_account(given).unwrap();
    assert!(generated.account.starts_with("account-"));
    assert_eq!(refresh(&client(), &fake, "configured-token").await.0, 200);
}
