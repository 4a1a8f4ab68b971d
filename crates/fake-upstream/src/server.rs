//! The accept loop: one tokio task per TCP connection, each driving hyper's HTTP/1 server.
//!
//! Owning the loop (rather than `axum::serve`) gives three things the checks need: connections
//! are counted exactly where they are accepted and where their task ends; a request can have
//! its own connection closed without a response (outage `reset`), through the
//! [`ConnectionHandle`] put into its extensions; and shutdown is graceful per connection.
//! There is no idle or header-read timeout: a keep-alive connection stays open until its
//! client closes it, so "connections accepted" depends on the client alone.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::Shared;
use crate::route::is_control;

/// Lets a request close the connection it arrived on, with no response.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionHandle(Arc<Notify>);

impl ConnectionHandle {
    pub(crate) fn close(&self) {
        // `notify_one` keeps the permit if the connection task is not waiting yet.
        self.0.notify_one();
    }
}

/// Which router serves a request: the control API by path prefix, the API otherwise.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    pub(crate) api: Router,
    pub(crate) control: Router,
}

/// What one listener does with its connections.
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    pub(crate) dispatch: Dispatch,
    /// Whether this listener's connections go into the stats.
    pub(crate) counted: bool,
}

/// Accepts until shutdown, then waits for every connection to finish (each shuts down
/// gracefully on the same signal).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    serving: Listener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let for_connections = shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if serving.counted {
                        shared.stats.connection_opened();
                    }
                    let open = Open { shared: Arc::clone(&shared), counted: serving.counted };
                    connections.spawn(serve(stream, serving.dispatch.clone(), open, for_connections.clone()));
                }
                // A connection that failed before it was accepted (reset by the peer), or no
                // descriptor left: nothing to count; back off briefly so the loop cannot spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// An accepted connection, counted closed when its task ends (or is aborted).
struct Open {
    shared: Arc<Shared>,
    counted: bool,
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.counted {
            self.shared.stats.connection_closed();
        }
    }
}

async fn serve(stream: TcpStream, dispatch: Dispatch, _open: Open, mut shutdown: watch::Receiver<bool>) {
    // Small responses go out at once.
    let _ = stream.set_nodelay(true);
    let close = Arc::new(Notify::new());
    let handle = ConnectionHandle(Arc::clone(&close));
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(handle.clone());
        let router = if is_control(request.uri().path()) { &dispatch.control } else { &dispatch.api };
        router.clone().oneshot(request.map(Body::new))
    });
    let connection = http1::Builder::new()
        .header_read_timeout(None)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        // Errors are the client's doing (a reset, a malformed request): the connection ends.
        _ = connection.as_mut() => return,
        () = close.notified() => return,
        () = stopped(&mut shutdown) => {}
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection => {}
        () = close.notified() => {}
    }
}

/// Resolves once shutdown has begun (or the handle that would signal it is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The `Ref` the wait returns must not live across an await: it holds a lock.
    let _ = shutdown.wait_for(|stop| *stop).await;
}
