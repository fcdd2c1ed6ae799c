//! The server connections one session holds now, by target (its tenant's primary and
//! replicas by index), and what it needs to lease more: pool keys cached per config.

use std::sync::Arc;

use super::lease::Group;
use super::{BackendConn, Credentials, PoolKey};
use crate::config::{Config, TenantConfig};
use crate::router::route::Target;
use crate::state::stats::Served;

/// Connections by target, held from a lease until the next safe boundary
/// (`frontend/lease.rs`), and the keys to lease them.
#[derive(Default)]
pub struct Held {
    primary: Option<BackendConn>,
    replicas: Vec<Option<BackendConn>>,
    keys: Vec<Option<CachedKey>>,
}

/// What leasing a connection to one target needs: found once per config and server, not
/// per statement.
pub struct LeaseKey {
    pub key: PoolKey,
    /// What a new connection logs in with (and what COM_CHANGE_USER logs another in as).
    pub creds: Arc<Credentials>,
    pub group: Arc<Group>,
    pub served: Arc<Served>,
}

struct CachedKey {
    config: Arc<Config>,
    /// Shared with each lease, so a lease copies no key and no credentials.
    lease: Arc<LeaseKey>,
}

fn index(t: Target) -> usize {
    match t {
        Target::Primary => 0,
        Target::Replica(i) => i + 1,
    }
}

/// The target in slot `i` (the primary's is 0).
pub fn target_at(i: usize) -> Target {
    match i {
        0 => Target::Primary,
        i => Target::Replica(i - 1),
    }
}

impl Held {
    pub fn get(&self, t: Target) -> Option<&BackendConn> {
        match t {
            Target::Primary => self.primary.as_ref(),
            Target::Replica(i) => self.replicas.get(i).and_then(|c| c.as_ref()),
        }
    }

    pub fn get_mut(&mut self, t: Target) -> Option<&mut BackendConn> {
        self.slot(t).as_mut()
    }

    #[inline]
    fn slot(&mut self, t: Target) -> &mut Option<BackendConn> {
        match t {
            Target::Primary => &mut self.primary,
            Target::Replica(i) => {
                if self.replicas.len() <= i {
                    self.grow(i);
                }
                &mut self.replicas[i]
            }
        }
    }

    /// Out of line: a session's first connection to a replica grows the list once, and
    /// with the growth inlined every statement paid for its saved registers (two calls
    /// per statement, about 110 instructions together).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, i: usize) {
        self.replicas.resize_with(i + 1, || None);
    }

    /// Slots a target may be in: the primary's and one per replica index seen (walk them
    /// with [`target_at`]: no list of targets is built per statement).
    pub fn slots(&self) -> usize {
        1 + self.replicas.len()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.primary.is_none() && self.replicas.iter().all(Option::is_none)
    }

    /// Which slots hold a connection, a bit each in [`target_at`]'s order (slots past the
    /// 64th are left out): what SHOW SESSIONS lists, kept as one word so that a session
    /// can publish it at every change for the cost of a store.
    pub fn mask(&self) -> u64 {
        let replicas = self
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_some());
        replicas.fold(u64::from(self.primary.is_some()), |m, (i, _)| {
            m | 1u64.checked_shl(i as u32 + 1).unwrap_or(0)
        })
    }

    pub fn put(&mut self, t: Target, conn: BackendConn) {
        *self.slot(t) = Some(conn);
    }

    pub fn take(&mut self, t: Target) -> Option<BackendConn> {
        self.slot(t).take()
    }

    /// Every connection, leaving none held.
    pub fn drain(&mut self) -> Vec<BackendConn> {
        let mut out: Vec<BackendConn> = self.primary.take().into_iter().collect();
        out.extend(self.replicas.drain(..).flatten());
        out
    }

    /// Forgets the cached lease keys: what they were made from besides the config (the
    /// client's login, capabilities, collation) changed.
    pub fn forget_lease_keys(&mut self) {
        self.keys.clear();
    }

    /// The lease key for `t`, from the cache while the config, the tenant and the server's
    /// address are the ones it was made for; else from `make`. Borrowed: a clone per
    /// statement would write the key's reference count, which the worker's other sessions
    /// of the login share.
    pub fn lease_key(
        &mut self,
        t: Target,
        config: &Arc<Config>,
        tenant: &str,
        addr: &str,
        make: impl FnOnce() -> Arc<LeaseKey>,
    ) -> &LeaseKey {
        let i = index(t);
        let cached = self.keys.get(i).and_then(Option::as_ref).is_some_and(|k| {
            Arc::ptr_eq(&k.config, config)
                && &*k.lease.key.addr == addr
                && &*k.lease.group.tenant == tenant
        });
        if self.keys.len() <= i {
            self.keys.resize_with(i + 1, || None);
        }
        let slot = &mut self.keys[i];
        if !cached {
            *slot = None;
        }
        let k = slot.get_or_insert_with(|| CachedKey {
            config: Arc::clone(config),
            lease: make(),
        });
        &k.lease
    }
}

/// The addresses of `tenant`'s servers whose slots [`Held::mask`] marks.
pub fn addrs_of_mask(tenant: &TenantConfig, mask: u64) -> Vec<String> {
    (0..64)
        .filter(|i| mask & (1u64 << i) != 0)
        .map(|i| addr_of(tenant, target_at(i)).to_owned())
        .collect()
}

/// The configured address of `t` in `tenant` (the primary's as configured: a promotion's
/// new address comes from the runtime state).
pub fn addr_of(tenant: &TenantConfig, t: Target) -> &str {
    match t {
        Target::Primary => &tenant.primary,
        Target::Replica(i) => tenant.replicas.get(i).map_or("", |r| r.addr.as_str()),
    }
}
