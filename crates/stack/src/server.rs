//! Binding, serving and graceful shutdown of one stack process.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::router;
use crate::backend::{BackendConfig, Backends, OpenError};
use crate::settings::Settings;
use crate::state::AppState;
use crate::workers::Workers;

/// One stack process's configuration.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub listen: SocketAddr,
    /// Listen with `SO_REUSEPORT`, so that several processes share one port and the kernel
    /// spreads connections over them (as gunicorn's or uvicorn's workers share a socket).
    pub reuse_port: bool,
    pub backends: BackendConfig,
    pub settings: Settings,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            reuse_port: false,
            backends: BackendConfig {
                namespace: "stampede".to_owned(),
                application_name: "stampede-stack".to_owned(),
                ..BackendConfig::default()
            },
            settings: Settings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Backend(#[from] OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot reach the upstream: {0}")]
    Upstream(#[from] upstream::Error),
}

/// A stack serving in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningStack {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    workers: Option<Workers>,
}

impl RunningStack {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting, lets the requests in flight finish, and returns.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = (&mut self.task).await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Some(workers) = self.workers.take() {
            workers.stop().await;
        }
        served
    }

    /// Serves until `signal` resolves, then shuts down gracefully.
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        signal.await;
        self.shutdown().await
    }
}

/// Connections the kernel may hold completed for the stack before it accepts them. The
/// standard library's (and tokio's) 128 overflows when clients open connections in bursts
/// while the server is busy — each new WebSocket session is a new connection — and a dropped
/// SYN costs its client a one-second retransmission. The kernel caps it at `somaxconn`.
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`].
fn bind(addr: std::net::SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    if reuse_port {
        return Err(std::io::Error::other("sharing a port between processes needs SO_REUSEPORT (unix)"));
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Opens the backends, binds, and serves in the background.
pub async fn start(mut config: StackConfig) -> Result<RunningStack, StartError> {
    config.backends.redis_never_reconnect |= config.settings.mutant == Some(crate::Mutant::RedisNoReconnect);
    config.backends.redis_credentials_in_errors |=
        config.settings.mutant == Some(crate::Mutant::CredentialsInErrors);
    let backends = Backends::open(&config.backends).await?;
    let state = AppState::new(config.settings, backends);
    let workers = match &state.settings.upstream {
        Some(link) => Some(crate::workers::start(&state, link, state.settings.workers).await?),
        None => None,
    };
    let listener = bind(config.listen, config.reuse_port)
        .map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = match state.settings.shape {
        crate::settings::Shape::Reference => router(state.clone()),
        crate::settings::Shape::Partner => crate::partner::router(state.clone()),
    };
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, backends = ?state.backends, "stack serving");
    Ok(RunningStack { addr, state, stop: Some(stop), task, workers })
}
