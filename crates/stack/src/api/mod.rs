//! The handlers, one module per resource.

pub(crate) mod chat;
pub(crate) mod limits;
pub(crate) mod projects;
pub(crate) mod uploads;
pub(crate) mod users;
pub(crate) mod videos;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json` whose rejections are the API's JSON errors (400 with the parser's message).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// The largest JSON body a handler reads (axum's default body limit, stated).
pub(crate) const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::BadRequest("expected a body with Content-Type: application/json".to_owned())
        }
        // Too large is not malformed: 413, as the upload route answers.
        other if other.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge { max: JSON_BODY_LIMIT as u64 }
        }
        other => ApiError::BadRequest(format!("malformed JSON body: {}", other.body_text())),
    }
}

/// `axum::extract::Query` whose rejections are the API's JSON errors.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::BadRequest(format!("malformed query string: {}", rejection.body_text()))
}

/// A numeric path id in its one canonical spelling (no sign, no leading zero); anything else
/// is a 404 (an id that cannot exist names nothing, and no resource has two URLs).
pub(crate) fn parse_id(text: &str, what: &'static str) -> Result<u64, ApiError> {
    match text.parse::<u64>() {
        Ok(id) if id.to_string() == text => Ok(id),
        _ => Err(ApiError::NotFound(what)),
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}
