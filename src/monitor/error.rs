//! The monitor's one error type: what can go wrong probing a backend or reading its answers.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("no answer within {0:?}")]
    CheckTimeout(Duration),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Mysql(mysql_async::Error),
    #[error("invalid GTID position \"{text}\": {reason}")]
    BadGtid { text: String, reason: String },
    #[error("invalid backend address \"{0}\" (expected host:port)")]
    BadAddress(String),
    /// No login tried: the last ones were refused in the handshake (see
    /// [`handshake_refused`](MonitorError::handshake_refused)).
    #[error("login refused in its handshake; next try in {0:?}")]
    LoginBackoff(Duration),
}

/// mysql_async wraps socket errors twice ("Input/output error: Input/output error: ...");
/// keep the socket error itself, which is what an operator needs to read.
impl From<mysql_async::Error> for MonitorError {
    fn from(e: mysql_async::Error) -> Self {
        match e {
            mysql_async::Error::Io(mysql_async::IoError::Io(io)) => MonitorError::Io(io),
            other => MonitorError::Mysql(other),
        }
    }
}

impl MonitorError {
    /// Whether the server answered at all. A server that answers with an error (bad
    /// credentials, a missing privilege) is reachable, and gets `fall` chances; one that
    /// refuses, resets or stays silent is down at once.
    pub fn server_answered(&self) -> bool {
        matches!(self, MonitorError::Mysql(mysql_async::Error::Server(_)))
    }

    /// A login refused in its handshake for a reason trying again will not change: the
    /// server's TLS certificate, an authentication plugin mysql_async cannot answer. The
    /// server counts each such login against the host (`max_connect_errors`, 100 by
    /// default, blocks the host for every user until FLUSH HOSTS), so they are retried
    /// ever less often.
    pub fn handshake_refused(&self) -> bool {
        use mysql_async::DriverError as D;
        match self {
            // rustls' refusal, as tokio-rustls reports it.
            MonitorError::Io(e) => e
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
            MonitorError::Mysql(mysql_async::Error::Io(mysql_async::IoError::Tls(_))) => true,
            MonitorError::Mysql(mysql_async::Error::Driver(d)) => matches!(
                d,
                D::UnknownAuthPlugin { .. }
                    | D::MysqlOldPasswordDisabled
                    | D::CleartextPluginDisabled
                    | D::NoClientSslFlagFromServer
            ),
            _ => false,
        }
    }

    /// This process could not even make the connection (see `backend::local_shortage`).
    pub fn local_shortage(&self) -> bool {
        matches!(self, MonitorError::Io(e) if crate::backend::local_shortage(e))
    }
}
