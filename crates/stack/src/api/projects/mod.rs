//! Projects, their members, and the dashboard behind the multi-layer cache (#14, #18).
//!
//! A project's members are its owner and the users who accepted an invitation to it (see
//! [`invitations`]); creating a project with `members` invites them, it adds no one.
//!
//! A project is visible to its members only; to anyone else it does not exist (404, never
//! 403, so ids leak nothing). The dashboard is computed from the records (the project, its
//! video count, its ten latest videos: three queries; the project is read on every request,
//! cached or not, as the membership check) and cached in L1/L2/L3 for
//! `dashboard_ttl`; `X-Cache` says which layer answered. Changing a project invalidates its
//! dashboard on every instance before the change is acknowledged.

pub(crate) mod invitations;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reference::l1_cache::multi_layer::Layered;
use reference::pagination::RowSet;
use reference::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{Json, parse_id};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Project {
    pub id: u64,
    pub name: String,
    pub owner: u64,
    /// The owner first, then the users who accepted an invitation, in the order they did.
    pub members: Vec<u64>,
}

impl Project {
    pub(crate) fn is_member(&self, user: u64) -> bool {
        self.members.contains(&user)
    }
}

pub(crate) fn project_key(id: u64) -> String {
    format!("project:{id}")
}

/// The counter of videos imported into project `id`.
pub(crate) fn video_count_key(id: u64) -> String {
    format!("project:{id}:videos")
}

pub(crate) fn feed_name(id: u64) -> String {
    format!("project:{id}")
}

pub(crate) fn dashboard_key(id: u64) -> String {
    format!("dashboard:project:{id}")
}

/// Project `id` if `caller` is a member of it; [`ApiError::NotFound`] otherwise.
pub(crate) async fn load(state: &AppState, caller: Caller, id: u64) -> ApiResult<Project> {
    let bytes = state.backends.records.get(&project_key(id)).await?.ok_or(ApiError::NotFound("project"))?;
    let project: Project = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Internal(format!("project {id} record is corrupt: {e}")))?;
    if project.is_member(caller.id) { Ok(project) } else { Err(ApiError::NotFound("project")) }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewProject {
    pub name: String,
    /// Users to invite (at most [`invitations::MAX_PENDING`]): each becomes a member on
    /// accepting, not before. An id that names no user is invited all the same.
    #[serde(default)]
    pub members: Vec<u64>,
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadRequest("name must be 1 to 200 characters".to_owned()));
    }
    Ok(name.to_owned())
}

/// `POST /v1/projects`: 201 with the project and its `Location`; its members are the caller
/// alone, and `members` are invited.
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewProject>,
) -> ApiResult<(StatusCode, [(HeaderName, String); 1], Json<Project>)> {
    let name = check_name(&body.name)?;
    if body.members.len() > invitations::MAX_PENDING {
        return Err(ApiError::BadRequest(format!("at most {} members to invite", invitations::MAX_PENDING)));
    }
    let id = state.backends.records.incr_by("seq:project", 1).await? as u64;
    let project = Project { id, name, owner: caller.id, members: vec![caller.id] };
    let record = serde_json::to_vec(&project).map_err(|e| ApiError::Internal(e.to_string()))?;
    state.backends.records.set(&project_key(id), record, None).await?;
    let mut invited = Vec::new();
    for user in body.members {
        if !project.is_member(user) && !invited.contains(&user) {
            invitations::invite(&state, &project, caller.id, user).await?;
            invited.push(user);
        }
    }
    let location = [(header::LOCATION, format!("/v1/projects/{id}"))];
    Ok((StatusCode::CREATED, location, Json(project)))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Project>> {
    let id = parse_id(&id, "project")?;
    Ok(Json(load(&state, caller, id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProjectChange {
    pub name: String,
}

/// Renames a project; when it answers, no instance serves the old name on the dashboard.
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ProjectChange>,
) -> ApiResult<Json<Project>> {
    let id = parse_id(&id, "project")?;
    let name = check_name(&body.name)?;
    let mut project = load(&state, caller, id).await?;
    let before = serde_json::to_vec(&project).map_err(|e| ApiError::Internal(e.to_string()))?;
    project.name = name;
    let after = serde_json::to_vec(&project).map_err(|e| ApiError::Internal(e.to_string()))?;
    if !state.backends.records.compare_and_set(&project_key(id), Some(&before), after, None).await? {
        return Err(ApiError::Unavailable("the project changed concurrently; retry".to_owned()));
    }
    state.cache.invalidate(&format!("{}*", dashboard_key(id))).await?;
    Ok(Json(project))
}

/// `GET /v1/projects/{id}/dashboard`.
///
/// Membership is decided by the records on every request, before the cache is asked: one
/// query, the same for a stranger and for a project that does not exist, so neither the
/// answer, `X-DB-Queries` nor the time taken tells a stranger whether the project exists (a
/// stranger answered from a cached copy's member list would cost no query and no records
/// round trip). A member then gets the cached dashboard, or one computed from two more
/// queries and cached.
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "project")?;
    let project = load(&state, caller, id).await?;
    let key = dashboard_key(id);
    let found = state.cache.lookup(&key).await?;
    let bytes = match found.value {
        Some(bytes) => bytes,
        None => {
            let bytes = compute(&state, project).await?;
            state.cache.set(&key, bytes.clone(), state.settings.dashboard_ttl).await?;
            bytes
        }
    };
    Ok(respond(parse_dashboard(&bytes)?, found.layer.as_str()))
}

fn parse_dashboard(bytes: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Internal(format!("cached dashboard is corrupt: {e}")))
}

fn respond(dashboard: Value, layer: &'static str) -> Response {
    let mut response = Json(dashboard).into_response();
    response.headers_mut().insert("x-cache", HeaderValue::from_static(layer));
    response
}

/// The dashboard of `project`, read by a member: two more queries (the video count and the
/// ten latest videos).
async fn compute(state: &AppState, project: Project) -> ApiResult<Vec<u8>> {
    let id = project.id;
    let videos = match state.backends.records.get(&video_count_key(id)).await? {
        Some(n) => String::from_utf8_lossy(&n).parse::<u64>().unwrap_or(0),
        None => 0,
    };
    let recent = state.backends.feeds.feed(&feed_name(id)).page(None, Some(10)).await?;
    let recent: Vec<Value> =
        recent.rows.iter().filter_map(|row| serde_json::from_slice(&row.payload).ok()).collect();
    let dashboard = json!({ "project": project, "videos": videos, "recent": recent });
    serde_json::to_vec(&dashboard).map_err(|e| ApiError::Internal(e.to_string()))
}
