//! Project membership by invitation: no one is made a member of a project without their
//! consent.
//!
//! A member of a project invites a user (`POST /v1/projects/{id}/invitations {"user"}`, or
//! `members` when creating the project); the user sees their invitations (`GET
//! /v1/invitations`) and accepts (`POST /v1/invitations/{project}/accept`) or declines (`…/decline`)
//! each; only an accepted invitation makes a member. Any member may invite: a member can already
//! read and change the project, and bringing in someone who agrees is no more than that.
//!
//! An invitation tells nothing about which user ids exist (they are sequential): inviting an id
//! that names no user answers exactly as inviting a user who has not accepted (202, `{"project",
//! "user", "state": "invited"}`), takes a pending place all the same (so the bound on pending
//! invitations cannot tell them apart either) and makes the same store calls (so
//! `X-DB-Queries` cannot). Only a member of the project learns that a user is a member already
//! (200, `"state": "member"`), which the project's member list tells them anyway.
//!
//! Bounds: at most [`MAX_PENDING`] pending invitations a project (409 above), each lapsing
//! after [`INVITATION_TTL`] unanswered; at most [`MAX_MEMBERS`] members (an accept above is 409);
//! a user's list keeps their [`MAX_LISTED`] most recent invitations (an older one drops off it and
//! can no longer be accepted).
//!
//! Storage, on the records backend: a project's pending invitations are a bounded set of
//! expiring members (`Store::slot_acquire`, one atomic step against the bound) at
//! `project-invitations:{id}`, which an accept or a decline consumes (`slot_release`, true
//! once). Each invited id also has the list of its invitations at `user-invitations:{id}` (a
//! JSON array written by compare-and-set, with the TTL of its newest invitation), which `GET
//! /v1/invitations` reads and which an accept or a decline must find. Registering a user clears
//! its id's list, so a user registered under an id invited before it existed inherits nothing.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use reference::l1_cache::multi_layer::Layered;
use reference::store::{SlotOutcome, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{self as projects, Project};
use crate::api::{Json, parse_id};
use crate::auth::{Caller, invitations_key as list_key};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The most invitations a project may have pending at once: what one member can make others
/// hold, and what a project's set of pending invitations can grow to.
pub(crate) const MAX_PENDING: usize = 100;

/// The most members a project has, its owner included: the owner and 100 others.
pub(crate) const MAX_MEMBERS: usize = 101;

/// How long an invitation waits for an answer.
pub(crate) const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The most invitations a user's list keeps, the most recent: however many projects invite a
/// user, what they are shown stays bounded.
pub(crate) const MAX_LISTED: usize = 100;

/// A project's pending invitations.
fn pending_key(project: u64) -> String {
    format!("project-invitations:{project}")
}

/// One invitation on a user's list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Invitation {
    project: u64,
    /// The project's name when the invitation was made.
    name: String,
    invited_by: u64,
    /// When it lapses, on the store's clock (ms since the epoch).
    expires_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewInvitation {
    pub user: u64,
}

/// `POST /v1/projects/{id}/invitations {"user"}`, by a member: 202 `"invited"` (whether or not
/// the id names a user), 200 `"member"` for a member already, 409 at [`MAX_PENDING`].
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<NewInvitation>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = parse_id(&id, "project")?;
    let project = projects::load(&state, caller, id).await?;
    invite(&state, &project, caller.id, body.user).await
}

/// Invites `user` to `project` on behalf of `by`, a member.
pub(crate) async fn invite(
    state: &AppState,
    project: &Project,
    by: u64,
    user: u64,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let answer = |state: &str| json!({ "project": project.id, "user": user, "state": state });
    if project.is_member(user) {
        return Ok((StatusCode::OK, Json(answer("member"))));
    }
    let records = &state.backends.records;
    let outcome = records
        .slot_acquire(&pending_key(project.id), &user.to_string(), INVITATION_TTL, MAX_PENDING)
        .await?;
    if let SlotOutcome::Full { .. } = outcome {
        return Err(ApiError::Conflict(format!(
            "project {} has {MAX_PENDING} pending invitations, the most it may; invite again once some are \
             answered or lapse ({} days unanswered)",
            project.id,
            INVITATION_TTL.as_secs() / 86_400
        )));
    }
    let now = state.backends.clock.now();
    let invitation = Invitation {
        project: project.id,
        name: project.name.clone(),
        invited_by: by,
        expires_ms: now + INVITATION_TTL.as_millis() as u64,
    };
    change_list(state, user, |list| {
        list.retain(|i| i.project != project.id);
        list.push(invitation.clone());
        if list.len() > MAX_LISTED {
            list.drain(..list.len() - MAX_LISTED);
        }
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(answer("invited"))))
}

/// The live invitations of `user`, oldest first.
async fn read_list(state: &AppState, user: u64) -> ApiResult<(Option<Vec<u8>>, Vec<Invitation>)> {
    let bytes = state.backends.records.get(&list_key(user)).await?;
    let mut list: Vec<Invitation> = match &bytes {
        Some(bytes) => serde_json::from_slice(bytes)
            .map_err(|e| ApiError::Internal(format!("invitations of user {user} are corrupt: {e}")))?,
        None => Vec::new(),
    };
    let now = state.backends.clock.now();
    list.retain(|i| i.expires_ms > now);
    Ok((bytes, list))
}

/// Applies `change` to `user`'s list by compare-and-set, again until no other change got in
/// between; the list before the change.
async fn change_list(
    state: &AppState,
    user: u64,
    change: impl Fn(&mut Vec<Invitation>),
) -> ApiResult<Vec<Invitation>> {
    let records = &state.backends.records;
    loop {
        let (current, before) = read_list(state, user).await?;
        let mut after = before.clone();
        change(&mut after);
        if current.is_none() && after.is_empty() {
            return Ok(before);
        }
        let bytes = serde_json::to_vec(&after).map_err(|e| ApiError::Internal(e.to_string()))?;
        // The list lives as long as its newest invitation; an emptied one a moment.
        let now = state.backends.clock.now();
        let newest = after.iter().map(|i| i.expires_ms).max().unwrap_or(now);
        let ttl = Duration::from_millis(newest.saturating_sub(now).max(1000));
        let written = records.compare_and_set(&list_key(user), current.as_deref(), bytes, Some(ttl)).await?;
        if written {
            return Ok(before);
        }
    }
}

/// Takes `project`'s invitation off `caller`'s list; 404 if it was not on it.
async fn take(state: &AppState, caller: Caller, project: u64) -> ApiResult<()> {
    let before = change_list(state, caller.id, |list| list.retain(|i| i.project != project)).await?;
    if before.iter().any(|i| i.project == project) { Ok(()) } else { Err(ApiError::NotFound("invitation")) }
}

/// `GET /v1/invitations`: the caller's pending invitations, oldest first.
pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let (_, list) = read_list(&state, caller.id).await?;
    let now = state.backends.clock.now();
    let items: Vec<Value> = list
        .iter()
        .map(|i| {
            json!({
                "project": i.project,
                "name": i.name,
                "invited_by": i.invited_by,
                "expires_in_s": i.expires_ms.saturating_sub(now).div_ceil(1000),
            })
        })
        .collect();
    Ok(Json(json!({ "invitations": items })))
}

/// `POST /v1/invitations/{project}/accept`: 200 with the project, the caller now a member; 404
/// when the caller has no pending invitation to it (never made, answered, or lapsed); 409 when
/// the project has [`MAX_MEMBERS`] already (the invitation stays, unless the last place went
/// to a member accepting at the same moment).
pub(crate) async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Project>> {
    let id = parse_id(&project, "invitation")?;
    let (_, list) = read_list(&state, caller.id).await?;
    if !list.iter().any(|i| i.project == id) {
        return Err(ApiError::NotFound("invitation"));
    }
    let records = &state.backends.records;
    let mut consumed = false;
    let project = loop {
        let Some(before) = records.get(&projects::project_key(id)).await? else {
            return Err(ApiError::NotFound("invitation"));
        };
        let mut project: Project = serde_json::from_slice(&before)
            .map_err(|e| ApiError::Internal(format!("project {id} record is corrupt: {e}")))?;
        if project.is_member(caller.id) {
            break project;
        }
        if project.members.len() >= MAX_MEMBERS {
            return Err(ApiError::Conflict(format!(
                "project {id} has {MAX_MEMBERS} members, the most it may; ask a member to make room"
            )));
        }
        if !consumed {
            if !records.slot_release(&pending_key(id), &caller.id.to_string()).await? {
                take(&state, caller, id).await?;
                return Err(ApiError::NotFound("invitation"));
            }
            consumed = true;
        }
        project.members.push(caller.id);
        let after = serde_json::to_vec(&project).map_err(|e| ApiError::Internal(e.to_string()))?;
        if records.compare_and_set(&projects::project_key(id), Some(&before), after, None).await? {
            state.cache.invalidate(&format!("{}*", projects::dashboard_key(id))).await?;
            break project;
        }
    };
    // Already off the list if an accept beside this one took it.
    let _ = take(&state, caller, id).await;
    Ok(Json(project))
}

/// `POST /v1/invitations/{project}/decline`: 200 `"declined"`, the invitation gone; 404 when
/// the caller has no pending invitation to it.
pub(crate) async fn decline(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&project, "invitation")?;
    take(&state, caller, id).await?;
    state.backends.records.slot_release(&pending_key(id), &caller.id.to_string()).await?;
    Ok(Json(json!({ "project": id, "user": caller.id, "state": "declined" })))
}
