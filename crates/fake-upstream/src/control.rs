//! The control API under `/_control/`: faults, stats, reset, accounts. Never counted, never
//! faulted.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::Shared;
use crate::error::Error;
use crate::faults::Fault;
use crate::tokens::NewAccount;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_control/health", get(health))
        .route("/_control/stats", get(stats))
        .route("/_control/reset", post(reset))
        .route("/_control/faults", get(list_faults).put(set_faults).post(add_fault).delete(clear_faults))
        .route("/_control/accounts", post(register_account))
        .route("/_control/accounts/{account}/expire", post(expire_access_tokens))
        .route("/_control/accounts/{account}/revoke", post(revoke_account))
        .fallback(unknown)
        .with_state(shared)
}

async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.stats.snapshot()).into_response()
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.faults.list()).into_response()
}

async fn set_faults(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<Vec<Fault>>, JsonRejection>,
) -> Response {
    let faults = match body {
        Ok(Json(faults)) => faults,
        Err(rejection) => return bad_json(&rejection, "a JSON list of faults"),
    };
    done(shared.faults.set(faults))
}

async fn add_fault(State(shared): State<Arc<Shared>>, body: Result<Json<Fault>, JsonRejection>) -> Response {
    let fault = match body {
        Ok(Json(fault)) => fault,
        Err(rejection) => return bad_json(&rejection, "one fault as a JSON object"),
    };
    done(shared.faults.add(fault))
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults.clear();
    StatusCode::NO_CONTENT
}

async fn register_account(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<NewAccount>, JsonRejection>,
) -> Response {
    let new = match body {
        Ok(Json(new)) => new,
        Err(rejection) => {
            return bad_json(&rejection, "a JSON object such as {\"account\": \"alice\"} or {}");
        }
    };
    match shared.tokens().register(new) {
        Ok(credentials) => (StatusCode::CREATED, Json(credentials)).into_response(),
        Err(e) => error(&e),
    }
}

async fn expire_access_tokens(State(shared): State<Arc<Shared>>, Path(account): Path<String>) -> Response {
    done(shared.tokens().expire(&account, Instant::now()))
}

async fn revoke_account(State(shared): State<Arc<Shared>>, Path(account): Path<String>) -> Response {
    done(shared.tokens().revoke(&account))
}

async fn unknown() -> Response {
    let message = "no such control route; see the fake-upstream crate docs for the list";
    (StatusCode::NOT_FOUND, Json(json!({"error": message}))).into_response()
}

fn done(result: Result<(), Error>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

fn error(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

fn bad_json(rejection: &JsonRejection, expected: &str) -> Response {
    let message = format!("expected {expected}: {}", rejection.body_text());
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}
