//! The JSON values stored under the fleet's keys.

use serde::{Deserialize, Serialize};

/// One instance, as it reports itself at each heartbeat (`live/` and `seen/`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InstanceRecord {
    pub name: String,
    /// Where clients reach it.
    pub address: String,
    pub started_unix: u64,
    pub heartbeat_unix_ms: u64,
    /// The config document version it runs, the etcd revision that wrote it (0: its local
    /// file).
    pub config_version: i64,
    /// Why it refused the newest document, if it did (and that document's version).
    pub config_error: Option<String>,
    pub config_refused_version: i64,
    pub sessions: usize,
    pub pauses_held: Vec<String>,
    pub offline: Vec<String>,
    pub build: String,
}

/// A fleet-wide pause (`state/pause/<tenant>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PauseRecord {
    /// How long each instance waits for the tenant's open transactions before it acks.
    pub timeout_ms: u64,
    pub by: String,
    pub at_unix_ms: u64,
}

/// An instance's ack of a pause (`ack/<tenant>/<instance>`): it holds the tenant's new
/// statements and its running ones finished, bar the sessions in `in_transaction` (still in
/// a transaction, or a statement that outlasted the PAUSE's TIMEOUT).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AckRecord {
    /// The pause's etcd revision: a later PAUSE of the same tenant needs a new ack.
    pub revision: i64,
    pub in_transaction: Vec<u32>,
    pub waited_ms: u64,
}

/// A backend set OFFLINE fleet-wide (`state/offline/<addr>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfflineRecord {
    pub by: String,
    pub at_unix_ms: u64,
}

/// A KILL passed on to the fleet (`state/kill/<request>`): session `session` of `user`, on
/// whichever instance has it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KillRecord {
    pub session: u32,
    pub user: String,
    /// KILL QUERY; otherwise the connection.
    pub query: bool,
    /// MariaDB's HARD or SOFT, as the client wrote it.
    pub mode: Option<String>,
    pub by: String,
    pub at_unix_ms: u64,
}

/// An instance's answer to a KILL request (`killack/<request>/<instance>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KillAck {
    /// It has the session (of that user) and acted on it.
    pub found: bool,
    /// What failed when it did.
    pub error: Option<String>,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
