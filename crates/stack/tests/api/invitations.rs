//! Project membership by invitation: no one is a member without accepting, an invitation says
//! nothing about which user ids exist, and a project's pending invitations are bounded.

use reqwest::Method;
use serde_json::{Value, json};
use stack::Settings;

use crate::support::{self, Answer, Stack, send};

async fn stack() -> Stack {
    support::start(Settings::default()).await
}

async fn post(stack: &Stack, path: &str, token: &str, body: Option<Value>) -> Answer {
    let request = stack.request(Method::POST, path).bearer_auth(token);
    send(match body {
        Some(body) => request.json(&body),
        None => request,
    })
    .await
}

/// `POST /v1/projects/{project}/invitations {"user"}` as `token`'s user.
async fn invite(stack: &Stack, project: u64, token: &str, user: u64) -> Answer {
    post(stack, &format!("/v1/projects/{project}/invitations"), token, Some(json!({ "user": user }))).await
}

async fn accept(stack: &Stack, project: u64, token: &str) -> Answer {
    post(stack, &format!("/v1/invitations/{project}/accept"), token, None).await
}

async fn decline(stack: &Stack, project: u64, token: &str) -> Answer {
    post(stack, &format!("/v1/invitations/{project}/decline"), token, None).await
}

/// The projects `token`'s user is invited to.
async fn invited_to(stack: &Stack, token: &str) -> Vec<u64> {
    let answer = stack.get("/v1/invitations", token).await;
    assert_eq!(answer.status, 200, "{answer}");
    answer.json()["invitations"].as_array().unwrap().iter().map(|i| i["project"].as_u64().unwrap()).collect()
}

/// A project `token`'s user creates with `members` listed; its id and its member list.
async fn create(stack: &Stack, token: &str, members: &[u64]) -> (u64, Value) {
    let request = stack.request(Method::POST, "/v1/projects").bearer_auth(token);
    let answer = send(request.json(&json!({ "name": "launch", "members": members }))).await;
    assert_eq!(answer.status, 201, "{answer}");
    (answer.json()["id"].as_u64().unwrap(), answer.json()["members"].clone())
}

#[tokio::test]
async fn a_listed_member_is_invited_and_a_member_only_once_they_accept() {
    let stack = stack().await;
    let (alice_id, alice) = stack.user("alice").await;
    let (bob_id, bob) = stack.user("bob").await;
    let (project, members) = create(&stack, &alice, &[bob_id]).await;
    assert_eq!(members, json!([alice_id]), "listed, not added");
    let p = format!("/v1/projects/{project}");
    // Not a member yet: the project, its dashboard and its chat do not exist for bob.
    for path in [p.clone(), format!("{p}/dashboard"), format!("{p}/chat")] {
        assert_eq!(stack.get(&path, &bob).await.status, 404, "{path}");
    }
    let answer = stack.get("/v1/invitations", &bob).await;
    let invitation = &answer.json()["invitations"][0];
    assert_eq!(
        (&invitation["project"], &invitation["name"], &invitation["invited_by"]),
        (&json!(project), &json!("launch"), &json!(alice_id)),
        "{answer}"
    );
    assert!(
        invitation["expires_in_s"].as_u64().is_some_and(|s| s > 6 * 86_400 && s <= 7 * 86_400),
        "{answer}"
    );
    assert_eq!(invited_to(&stack, &alice).await, Vec::<u64>::new());
    // The dashboard alice reads now is cached; bob's accepting must show in it.
    assert_eq!(stack.get(&format!("{p}/dashboard"), &alice).await.status, 200);

    let answer = accept(&stack, project, &bob).await;
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json()["members"], json!([alice_id, bob_id]));
    assert_eq!(stack.get(&p, &bob).await.json()["members"], json!([alice_id, bob_id]));
    let dashboard = stack.get(&format!("{p}/dashboard"), &bob).await;
    assert_eq!(dashboard.json()["project"]["members"], json!([alice_id, bob_id]), "{dashboard}");
    // A member's chat: the handshake is checked (400 for a plain GET), not refused as a stranger's.
    assert_eq!(stack.get(&format!("{p}/chat"), &bob).await.status, 400);
    assert_eq!(invited_to(&stack, &bob).await, Vec::<u64>::new());
    assert_eq!(accept(&stack, project, &bob).await.status, 404, "an invitation is accepted once");
    assert_eq!(decline(&stack, project, &bob).await.status, 404);
}

#[tokio::test]
async fn a_member_invites_and_the_invitee_may_decline() {
    let stack = stack().await;
    let (alice_id, alice) = stack.user("alice").await;
    let (bob_id, bob) = stack.user("bob").await;
    let (carol_id, carol) = stack.user("carol").await;
    let project = stack.project(&alice, "launch", &[(bob_id, &bob)]).await;
    // Any member invites, the owner or not.
    let answer = invite(&stack, project, &bob, carol_id).await;
    assert_eq!(answer.status, 202, "{answer}");
    assert_eq!(answer.json(), json!({ "project": project, "user": carol_id, "state": "invited" }));
    assert_eq!(invited_to(&stack, &carol).await, vec![project]);
    // Invited again: still one invitation.
    assert_eq!(invite(&stack, project, &alice, carol_id).await.status, 202);
    assert_eq!(invited_to(&stack, &carol).await, vec![project]);
    let answer = decline(&stack, project, &carol).await;
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json(), json!({ "project": project, "user": carol_id, "state": "declined" }));
    assert_eq!(invited_to(&stack, &carol).await, Vec::<u64>::new());
    assert_eq!(accept(&stack, project, &carol).await.status, 404, "a declined invitation is gone");
    assert_eq!(stack.get(&format!("/v1/projects/{project}"), &carol).await.status, 404);
    let members = stack.get(&format!("/v1/projects/{project}"), &alice).await.json()["members"].clone();
    assert_eq!(members, json!([alice_id, bob_id]));
    // A stranger cannot invite (the project does not exist for them), nor accept what was not offered.
    assert_eq!(invite(&stack, project, &carol, carol_id).await.status, 404);
    assert_eq!(accept(&stack, project, &carol).await.status, 404);
    assert_eq!(accept(&stack, 999_999, &carol).await.status, 404);
    // A member already: said so, to a member.
    let answer = invite(&stack, project, &alice, bob_id).await;
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json(), json!({ "project": project, "user": bob_id, "state": "member" }));
}

/// The answer to an invitation, as a client compares two: status, body with the id left out,
/// and the queries it cost.
fn shape(answer: &Answer) -> (u16, Value, Option<String>) {
    let mut body = answer.json();
    body["user"] = Value::Null;
    (answer.status, body, answer.header("x-db-queries").map(str::to_owned))
}

#[tokio::test]
async fn inviting_an_id_that_names_no_user_answers_as_inviting_one_who_has_not_accepted() {
    let stack = stack().await;
    let (_, alice) = stack.user("alice").await;
    let (dave_id, _) = stack.user("dave").await;
    let (project, _) = create(&stack, &alice, &[]).await;
    let nobody = 999_999;
    let known = invite(&stack, project, &alice, dave_id).await;
    let unknown = invite(&stack, project, &alice, nobody).await;
    assert_eq!(known.status, 202, "{known}");
    assert_eq!(shape(&known), shape(&unknown), "{known} / {unknown}");
    // Listing one at creation is no different (it was 400 "no user 999999").
    let request = stack.request(Method::POST, "/v1/projects").bearer_auth(&alice);
    let answer = send(request.json(&json!({ "name": "x", "members": [nobody, dave_id] }))).await;
    assert_eq!(answer.status, 201, "{answer}");
}

#[tokio::test]
async fn a_user_registered_under_an_id_invited_before_it_existed_inherits_nothing() {
    let stack = stack().await;
    let (alice_id, alice) = stack.user("alice").await;
    let (project, _) = create(&stack, &alice, &[alice_id + 1, alice_id + 2]).await;
    let (next_id, next) = stack.user("next").await;
    assert!(next_id == alice_id + 1 || next_id == alice_id + 2, "ids are sequential: {next_id}");
    assert_eq!(invited_to(&stack, &next).await, Vec::<u64>::new());
    assert_eq!(accept(&stack, project, &next).await.status, 404);
    assert_eq!(stack.get(&format!("/v1/projects/{project}"), &next).await.status, 404);
}

#[tokio::test]
async fn a_project_holds_at_most_100_pending_invitations() {
    let stack = stack().await;
    let (_, alice) = stack.user("alice").await;
    let (dave_id, dave) = stack.user("dave").await;
    let (erin_id, _) = stack.user("erin").await;
    // 99 ids that name no user and one that does: they count alike.
    let ids: Vec<u64> = (1_000_000..1_000_099).chain([dave_id]).collect();
    let (project, _) = create(&stack, &alice, &ids).await;
    let answer = invite(&stack, project, &alice, erin_id).await;
    assert_eq!(answer.status, 409, "{answer}");
    assert_eq!(answer.error_code(), "conflict");
    assert!(answer.json()["error"]["message"].as_str().unwrap().contains("100 pending"), "{answer}");
    assert_eq!(invite(&stack, project, &alice, 2_000_000).await.status, 409);
    // Inviting someone pending already renews, it takes no place.
    assert_eq!(invite(&stack, project, &alice, 1_000_000).await.status, 202);
    // An answered invitation frees its place.
    assert_eq!(decline(&stack, project, &dave).await.status, 200);
    assert_eq!(invite(&stack, project, &alice, erin_id).await.status, 202);
    assert_eq!(invite(&stack, project, &alice, dave_id).await.status, 409);
    // More than 100 listed at creation is refused before anything is made.
    let request = stack.request(Method::POST, "/v1/projects").bearer_auth(&alice);
    let many: Vec<u64> = (3_000_000..3_000_101).collect();
    let answer = send(request.json(&json!({ "name": "x", "members": many }))).await;
    assert_eq!(answer.status, 400, "{answer}");
}
