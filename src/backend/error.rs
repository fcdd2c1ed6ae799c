//! Errors of the backend layer: what went wrong talking to one server.

use std::io;

use crate::protocol::scan::ScanError;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("timed out connecting")]
    ConnectTimeout,
    /// The server refused the login; its own code and message are kept.
    #[error("login refused: {message}")]
    Auth { code: u16, message: String },
    #[error("unsupported authentication: {0}")]
    AuthPlugin(String),
    #[error("connection lost: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Protocol(#[from] ScanError),
    /// Replaying session state (schema, SET) on this connection failed.
    #[error("{message}")]
    Replay { code: u16, message: String },
    #[error("bad greeting: {0}")]
    Greeting(String),
    /// TLS was configured for this backend and could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
}

impl BackendError {
    /// Whether the server could not be reached at all (as opposed to answering badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            BackendError::Connect(_) | BackendError::ConnectTimeout
        )
    }
}
