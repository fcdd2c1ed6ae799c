//! Idle backend connections, kept per server, login and client capabilities, so a new
//! session skips the TCP connect and login.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::conn::BackendConn;
use crate::protocol::command::COM_RESET_CONNECTION;
use crate::protocol::scan::Expect;
use crate::protocol::{CapabilityFlags, MariadbCapabilities};

/// How long a released connection's COM_RESET_CONNECTION may take.
const RESET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What makes two backend connections interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub addr: Arc<str>,
    pub user: Arc<str>,
    /// The client's response-shaping capabilities (see `handshake::response_shaping`).
    pub capabilities: CapabilityFlags,
    /// The client's MariaDB extended capabilities (bulk execute, progress reports, extended
    /// type info): they change commands and answers as much as the ones above.
    pub ext_capabilities: MariadbCapabilities,
    pub collation: u8,
    /// The CA a TLS connection was verified with (`None`: plaintext).
    pub tls_ca: Option<Arc<str>>,
}

#[derive(Default)]
pub struct Pools {
    idle: Mutex<HashMap<PoolKey, Vec<BackendConn>>>,
}

impl Pools {
    /// An idle connection for `key` that is still open and can be brought to `schema`, if
    /// there is one. A connection keeps the schema of its last session (COM_RESET_CONNECTION
    /// leaves it), and no command un-selects a schema: a session without one only takes a
    /// connection that never had one.
    pub fn take(&self, key: &PoolKey, schema: Option<&str>) -> Option<BackendConn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        // The most recently used first: its server-side caches are warmest. Closed ones met
        // on the way are dropped.
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            if schema.is_none() && list[i].schema.is_some() {
                continue;
            }
            let conn = list.remove(i);
            if conn.io.is_open() {
                return Some(conn);
            }
        }
        None
    }

    /// Resets a connection a session no longer needs and keeps it, up to `max_idle` per key.
    /// Runs in the background so the client is not kept waiting.
    pub fn release(self: &Arc<Self>, mut conn: BackendConn, max_idle: usize) {
        if conn.set_option.is_some() || !conn.io.rbuf.is_empty() {
            return;
        }
        let pools = Arc::clone(self);
        tokio::spawn(async move {
            // A server that does not answer the reset in time is dropped, not waited for:
            // a stuck reset task would hold its socket for ever.
            let reset = tokio::time::timeout(
                RESET_TIMEOUT,
                conn.exec_silent(&[COM_RESET_CONNECTION], Expect::Single),
            )
            .await;
            if !matches!(reset, Ok(Ok(ref o)) if o.ok.is_some()) {
                return;
            }
            conn.set_seq = 0;
            conn.forget_statements();
            let mut idle = pools.idle.lock().unwrap_or_else(|p| p.into_inner());
            let list = idle.entry(conn.key.clone()).or_default();
            if list.len() < max_idle {
                list.push(conn);
            }
        });
    }

    /// Number of idle connections per server address.
    pub fn idle_counts(&self) -> HashMap<Arc<str>, usize> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = HashMap::new();
        for (k, v) in idle.iter() {
            *out.entry(Arc::clone(&k.addr)).or_default() += v.len();
        }
        out
    }
}
