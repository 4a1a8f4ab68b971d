//! What starting, controlling or reaching a fake upstream can fail with.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot listen on {addr}: {source}; is another process using the port? pass port 0 for a free one"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid fault: {reason}")]
    InvalidFault { reason: String },
    #[error("invalid account name {account:?}: use 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'")]
    InvalidAccountName { account: String },
    #[error("account {account} is already registered; pick another name or omit it for a generated one")]
    AccountExists { account: String },
    #[error("refresh token {token:?} is already in use; omit it for a generated one")]
    RefreshTokenTaken { token: String },
    #[error("no account named {account}; register it first with POST /_control/accounts")]
    UnknownAccount { account: String },
    #[error(
        "invalid control url {url}: {reason}; pass the fake upstream's base url such as http://127.0.0.1:8080"
    )]
    ControlUrl { url: String, reason: String },
    #[error("control request {path} failed: {source}; is the fake upstream running at that address?")]
    ControlRequest {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("control request {path} answered {status}: {message}")]
    ControlStatus { path: String, status: u16, message: String },
}

impl Error {
    /// The HTTP status the control API answers this error with.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Error::InvalidFault { .. } | Error::InvalidAccountName { .. } => 400,
            Error::UnknownAccount { .. } => 404,
            Error::AccountExists { .. } | Error::RefreshTokenTaken { .. } => 409,
            Error::Bind { .. }
            | Error::ControlUrl { .. }
            | Error::ControlRequest { .. }
            | Error::ControlStatus { .. } => 500,
        }
    }
}
