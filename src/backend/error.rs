//! Errors of the backend layer: what went wrong talking to one server.

use std::io;

use crate::protocol::packets::ErrSpec;
use crate::protocol::scan::ScanError;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("timed out connecting")]
    ConnectTimeout,
    /// Bringing a connection to the session's state (schema, SETs) took too long.
    #[error("timed out restoring the session's state")]
    StateTimeout,
    /// The server refused the login; its own code, SQLSTATE and message are kept.
    #[error("login refused: {message}")]
    Auth {
        code: u16,
        state: String,
        message: String,
    },
    #[error("unsupported authentication: {0}")]
    AuthPlugin(String),
    #[error("connection lost: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Protocol(#[from] ScanError),
    /// The server answered ERR where Switchyard needed OK (replaying session state, a
    /// query of its own); its code, SQLSTATE and message are kept for the client.
    #[error("{}", .0.message)]
    Server(ErrSpec),
    #[error("bad greeting: {0}")]
    Greeting(String),
    /// Every connection the tenant may open to this server (`pool_max`) stayed busy.
    #[error("all {cap} connections (pool_max) stayed busy for {:.1} s", .waited.as_secs_f64())]
    PoolTimeout {
        waited: std::time::Duration,
        cap: usize,
    },
    /// TLS was configured for this backend and could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
}

impl BackendError {
    /// Whether the server could not be reached at all (as opposed to answering badly), for
    /// all we know: a connect this process could not even make is no news of the server.
    pub fn is_unreachable(&self) -> bool {
        match self {
            BackendError::Connect(e) => !local_shortage(e),
            BackendError::ConnectTimeout => true,
            _ => false,
        }
    }
}

/// This process or host ran out of what a connect needs (file descriptors, local ports,
/// buffers): marked down, the server would be skipped by every tenant's sessions, each of
/// them then opening connections elsewhere with the same shortage.
pub fn local_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EADDRNOTAVAIL | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortage_of_our_own_is_no_news_of_the_server() {
        let connect = |code| BackendError::Connect(io::Error::from_raw_os_error(code));
        for local in [
            libc::EMFILE,
            libc::ENFILE,
            libc::EADDRNOTAVAIL,
            libc::ENOBUFS,
            libc::ENOMEM,
        ] {
            assert!(!connect(local).is_unreachable(), "{local}");
        }
        for remote in [libc::ECONNREFUSED, libc::ECONNRESET, libc::EHOSTUNREACH] {
            assert!(connect(remote).is_unreachable(), "{remote}");
        }
        assert!(BackendError::ConnectTimeout.is_unreachable());
    }
}
