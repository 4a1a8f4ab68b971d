//! The middleware in front of every API route: counts the request, judges its access token
//! (an expired one is counted on arrival, whatever happens next), and applies the faults.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Shared;
use crate::faults::Disposition;
use crate::route::Route;
use crate::server::ConnectionHandle;
use crate::stats::Recorder;

pub(crate) async fn gate(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let route = Route::of_path(request.uri().path());
    let call = Call::arrive(&shared.stats, route);
    if route.needs_access_token() {
        let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let auth = shared.tokens().authorize(header, Instant::now());
        shared.stats.authorized(&auth);
        request.extensions_mut().insert(auth);
    }

    let mut changes = shared.faults.subscribe();
    let mut held = false;
    let (delay, fail) = loop {
        changes.borrow_and_update();
        match shared.faults.decide(route, held) {
            Disposition::Go { delay, fail } => break (delay, fail),
            Disposition::Drop => match request.extensions().get::<ConnectionHandle>() {
                Some(connection) => {
                    call.dropped();
                    connection.close();
                    // The connection task drops this future with the connection.
                    let never: std::convert::Infallible = std::future::pending().await;
                    match never {}
                }
                // Served without a connection of ours (not the case in this crate): the nearest
                // thing to a closed connection is a 502 with `Connection: close`.
                None => return call.answer(closing(StatusCode::BAD_GATEWAY, "outage")),
            },
            Disposition::Hold { until } => {
                if !held {
                    held = true;
                    shared.stats.held();
                }
                let outage_over = async {
                    match until {
                        Some(until) => tokio::time::sleep_until(until.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = changes.changed() => {}
                    () = outage_over => {}
                    () = shared.stopping() => return call.answer(shutting_down()),
                }
            }
        }
    };
    if !delay.is_zero() {
        shared.stats.delayed();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.stopping() => return call.answer(shutting_down()),
        }
    }
    if let Some(status) = fail {
        shared.stats.injected_failure();
        return call.answer(injected(status));
    }
    call.answer(next.run(request).await)
}

/// One API request in flight: answered, dropped, or, when its future is dropped first
/// (the client went away), abandoned.
struct Call<'a> {
    stats: &'a Recorder,
    route: Route,
    done: bool,
}

impl<'a> Call<'a> {
    fn arrive(stats: &'a Recorder, route: Route) -> Self {
        stats.arrived(route);
        Self { stats, route, done: false }
    }

    fn answer(mut self, response: Response) -> Response {
        self.done = true;
        self.stats.answered(self.route, response.status().as_u16());
        response
    }

    fn dropped(mut self) {
        self.done = true;
        self.stats.dropped(self.route);
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.stats.abandoned(self.route);
        }
    }
}

/// An injected failure: a JSON error body, and `Retry-After` on 429 and 503.
fn injected(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": format!("injected fault: {status}"),
        "injected": true,
    }});
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn shutting_down() -> Response {
    closing(StatusCode::SERVICE_UNAVAILABLE, "the fake upstream is shutting down")
}

fn closing(status: StatusCode, message: &str) -> Response {
    let mut response =
        (status, Json(json!({"error": {"code": status.as_u16(), "message": message}}))).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
