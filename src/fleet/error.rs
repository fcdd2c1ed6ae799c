//! What can go wrong between an instance and its fleet.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The instance has no working link to etcd now.
    #[error("etcd unreachable for {for_secs:.1}s ({reason})")]
    Unreachable { for_secs: f64, reason: String },
    #[error("etcd request failed: {0}")]
    Etcd(String),
    #[error("etcd did not answer {what} within {within:?}")]
    Timeout {
        what: &'static str,
        within: Duration,
    },
    #[error("etcd's watch ended: {0}")]
    WatchEnded(String),
    #[error("the registration lease expired")]
    LeaseExpired,
    #[error("instance name {0} is registered under another lease: another instance has the same fleet.instance (or this one's previous run, until its lease_ttl runs out)")]
    NameTaken(String),
    #[error("{0}")]
    Document(String),
}

impl From<etcd_client::Error> for FleetError {
    fn from(e: etcd_client::Error) -> Self {
        FleetError::Etcd(short(&e))
    }
}

/// gRPC's status and the innermost cause ("connection refused"), not the whole chain of
/// wrapped transport errors each repeating the last.
fn short(e: &etcd_client::Error) -> String {
    let etcd_client::Error::GRpcStatus(status) = e else {
        return e.to_string();
    };
    let mut text = format!("{}: {}", status.code().description(), status.message());
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    let mut innermost = None;
    while let Some(c) = cause {
        innermost = Some(c);
        cause = c.source();
    }
    if let Some(c) = innermost {
        text.push_str(&format!(" ({c})"));
    }
    text
}
