//! The slot a connection holds under the stack's connection cap (`server.rs`), as its
//! requests carry it: a WebSocket session keeps its connection's slot after the upgrade.

use std::convert::Infallible;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

/// The slot under the cap of the connection a request came on, in its extensions: a
/// WebSocket session keeps it (`api/chat.rs`), so an upgraded socket stays counted after the
/// HTTP connection has handed it over.
#[derive(Clone)]
pub(crate) struct ConnectionSlot {
    /// Released when the last holder (the connection, a session) lets go.
    _permit: Arc<OwnedSemaphorePermit>,
}

impl ConnectionSlot {
    pub(crate) fn new(permit: OwnedSemaphorePermit) -> Self {
        Self { _permit: Arc::new(permit) }
    }
}

/// The request's [`ConnectionSlot`], when it came over the accept loop (none for a router
/// called in process).
pub(crate) struct HeldSlot(pub Option<ConnectionSlot>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for HeldSlot {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Infallible> {
        Ok(HeldSlot(parts.extensions.get::<ConnectionSlot>().cloned()))
    }
}
