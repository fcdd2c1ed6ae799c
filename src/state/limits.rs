//! Connection limits per tenant and per user: a permit per session, given back when the
//! session ends (or moves to another tenant); and how often each limit turned a client away.

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::lock::Unpoisoned;

#[derive(Default)]
pub struct Limits {
    counts: Mutex<Counts>,
    refused: [AtomicU64; Refusal::ALL.len()],
}

/// Sessions per user and per tenant name, kept while non-zero. A permit holds its name's
/// `Arc`: a connect-per-request client's permits allocate nothing while its name has
/// sessions (a formatted key per permit cost more than the rest of counting it).
#[derive(Default)]
struct Counts {
    users: FxHashMap<Arc<str>, usize>,
    tenants: FxHashMap<Arc<str>, usize>,
}

impl Counts {
    fn of(&mut self, kind: Kind) -> &mut FxHashMap<Arc<str>, usize> {
        match kind {
            Kind::User => &mut self.users,
            Kind::Tenant => &mut self.tenants,
        }
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Tenant,
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
    /// A load balancer's connection (`server.proxy_protocol`) without a valid PROXY header.
    ProxyHeader,
}

impl Refusal {
    pub const ALL: [Refusal; 5] = [
        Refusal::Global,
        Refusal::Tenant,
        Refusal::User,
        Refusal::HandshakeTimeout,
        Refusal::ProxyHeader,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::Global => "global",
            Refusal::Tenant => "tenant",
            Refusal::User => "user",
            Refusal::HandshakeTimeout => "handshake_timeout",
            Refusal::ProxyHeader => "proxy_header",
        }
    }
}

/// One counted connection; dropping it gives the slot back.
pub struct Permit {
    kind: Kind,
    name: Arc<str>,
    limits: Arc<Limits>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.limits.counts.locked();
        let map = c.of(self.kind);
        if let Some(n) = map.get_mut(&*self.name) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&*self.name);
            }
        }
    }
}

impl Limits {
    /// A permit for `name` if fewer than `max` are held (no limit when `max` is None).
    pub fn acquire(self: &Arc<Self>, kind: Kind, name: &str, max: Option<u32>) -> Option<Permit> {
        let mut c = self.counts.locked();
        let map = c.of(kind);
        // The name's `Arc` is the map's while it has sessions, made once otherwise.
        let (name, held) = match map.get_key_value(name) {
            Some((k, &n)) => (Arc::clone(k), n),
            None => (Arc::from(name), 0),
        };
        if max.is_some_and(|m| held >= m as usize) {
            return None;
        }
        *map.entry(Arc::clone(&name)).or_insert(0) += 1;
        Some(Permit {
            kind,
            name,
            limits: Arc::clone(self),
        })
    }

    pub fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refusal) -> u64 {
        self.refused[why as usize].load(Ordering::Relaxed)
    }

    pub fn held(&self, kind: Kind, name: &str) -> usize {
        let mut c = self.counts.locked();
        c.of(kind).get(name).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_bounded_and_returned() {
        let l = Arc::new(Limits::default());
        let a = l.acquire(Kind::User, "x", Some(2)).unwrap();
        let _b = l.acquire(Kind::User, "x", Some(2)).unwrap();
        assert!(l.acquire(Kind::User, "x", Some(2)).is_none());
        assert!(l.acquire(Kind::User, "y", None).is_some());
        let _t = l.acquire(Kind::Tenant, "x", Some(1)).unwrap();
        assert!(
            l.acquire(Kind::Tenant, "x", Some(1)).is_none(),
            "tenants count apart"
        );
        assert!(l.acquire(Kind::Tenant, "z", Some(0)).is_none());
        drop(a);
        assert_eq!(l.held(Kind::User, "x"), 1);
        assert!(l.acquire(Kind::User, "x", Some(2)).is_some());
        drop(_b);
        assert_eq!(l.held(Kind::User, "x"), 0);
        assert!(
            l.counts.lock().unwrap().users.is_empty(),
            "a name without sessions is forgotten"
        );
    }
}
