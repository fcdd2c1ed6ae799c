//! The monitor's one error type: what can go wrong probing a backend or reading its answers.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("no answer within {0:?}")]
    CheckTimeout(Duration),
    #[error("{0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("invalid GTID position \"{text}\": {reason}")]
    BadGtid { text: String, reason: String },
    #[error("invalid backend address \"{0}\" (expected host:port)")]
    BadAddress(String),
}

impl MonitorError {
    /// Whether the server answered at all. A server that answers with an error (bad
    /// credentials, a missing privilege) is reachable, and gets `fall` chances; one that
    /// refuses, resets or stays silent is down at once.
    pub fn server_answered(&self) -> bool {
        matches!(self, MonitorError::Mysql(mysql_async::Error::Server(_)))
    }
}
