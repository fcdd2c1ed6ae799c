//! Connection limits per tenant and per user: a permit per session, given back when the
//! session ends (or moves to another tenant); and how often each limit turned a client away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Limits {
    counts: Mutex<HashMap<String, usize>>,
    refused: [AtomicU64; 4],
}

/// What turned a client away before its session started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `server.max_connections` (ERR 1040).
    Global,
    /// A tenant's `max_connections` (ERR 1040).
    Tenant,
    /// A user's `max_connections` (ERR 1203).
    User,
    /// `server.handshake_timeout`: the client did not finish logging in.
    HandshakeTimeout,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::Global,
        Refusal::Tenant,
        Refusal::User,
        Refusal::HandshakeTimeout,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::Global => "global",
            Refusal::Tenant => "tenant",
            Refusal::User => "user",
            Refusal::HandshakeTimeout => "handshake_timeout",
        }
    }
}

/// One counted connection; dropping it gives the slot back.
pub struct Permit {
    key: String,
    limits: Arc<Limits>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.limits.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = c.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(&self.key);
            }
        }
    }
}

impl Limits {
    /// A permit for `key` if fewer than `max` are held (no limit when `max` is None).
    pub fn acquire(self: &Arc<Self>, key: String, max: Option<u32>) -> Option<Permit> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = c.entry(key.clone()).or_insert(0);
        if max.is_some_and(|m| *n >= m as usize) {
            return None;
        }
        *n += 1;
        Some(Permit {
            key,
            limits: Arc::clone(self),
        })
    }

    pub fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refusal) -> u64 {
        self.refused[why as usize].load(Ordering::Relaxed)
    }

    pub fn held(&self, key: &str) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_bounded_and_returned() {
        let l = Arc::new(Limits::default());
        let a = l.acquire("user:x".into(), Some(2)).unwrap();
        let _b = l.acquire("user:x".into(), Some(2)).unwrap();
        assert!(l.acquire("user:x".into(), Some(2)).is_none());
        assert!(l.acquire("user:y".into(), None).is_some());
        drop(a);
        assert_eq!(l.held("user:x"), 1);
        assert!(l.acquire("user:x".into(), Some(2)).is_some());
    }
}
