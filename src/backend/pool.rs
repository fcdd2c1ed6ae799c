//! Idle backend connections, kept per server, login and client capabilities, each still in
//! the state its last session left (see `restore`). A tenant's sessions take its own
//! connections first; one another tenant left is taken only under the taker's cap, and is
//! reset before use. With none of its backend user's, a session takes another user's idle
//! connection to the same server (same client capabilities, collation and TLS) and logs it
//! in again with COM_CHANGE_USER rather than opening one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::auth::Credentials;
use super::conn::{Applied, BackendConn};
use super::error::BackendError;
use super::held::LeaseKey;
use super::lease::{Group, GroupStats};
use super::stmt_cache::{ServerCount, MAX_CACHED_PER_SERVER};
use crate::protocol::{CapabilityFlags, MariadbCapabilities};
use crate::state::lock::Unpoisoned;
use crate::state::per_worker::{self, PerWorker};

/// How long a released connection's COM_RESET_CONNECTION may take.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a COM_CHANGE_USER may take before a new connection is opened instead.
const CHANGE_USER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long another login's connection must have sat idle before a login under its cap logs
/// it in again instead of opening its own.
const RECYCLE_AFTER: Duration = Duration::from_secs(1);

/// Idle connections unused this long are closed (when their list is next touched, and by
/// [`Pools::sweep`]): a tenant whose load went away gives its server connections back.
const IDLE_CLOSE: Duration = Duration::from_secs(60);

/// What makes two backend connections interchangeable, numbered by [`Pools::key`]: equal
/// fields get equal numbers, so a statement's pool lookups hash and compare one number, not
/// two strings and four flags (callgrind: 6 string comparisons per statement).
#[derive(Debug, Clone)]
pub struct PoolKey {
    fields: KeyFields,
    id: u64,
}

impl std::ops::Deref for PoolKey {
    type Target = KeyFields;
    fn deref(&self) -> &KeyFields {
        &self.fields
    }
}

impl PartialEq for PoolKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for PoolKey {}

impl std::hash::Hash for PoolKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(self.id);
    }
}

/// A [`PoolKey`]'s fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyFields {
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

impl KeyFields {
    /// The same server, client capabilities, collation and TLS: a connection of `other`'s
    /// can serve this key's sessions once logged in as this key's user.
    fn differs_only_in_user(&self, other: &KeyFields) -> bool {
        self.user != other.user
            && self.addr == other.addr
            && self.capabilities == other.capabilities
            && self.ext_capabilities == other.ext_capabilities
            && self.collation == other.collation
            && self.tls_ca == other.tls_ca
    }
}

/// The numbers [`Pools::key`] gave out. Cleared when it holds more than [`KEY_IDS_MAX`]
/// (client-chosen capabilities make keys): a key numbered again gets a new number, and the
/// idle connections under its old one are closed by the idle timeout.
#[derive(Default)]
struct KeyIds {
    ids: HashMap<KeyFields, u64>,
    next: u64,
}

const KEY_IDS_MAX: usize = 100_000;

/// (tenant, server address).
type GroupKey = (Arc<str>, Arc<str>);

/// Idle connections are kept per worker thread, each in the pool of the worker whose IO
/// driver its socket is registered with (`BackendConn::home`). A session takes its own
/// worker's connections first: one registered with another worker would have every answer
/// noticed there and handed over with a wake-up across threads (measured with 2 workers
/// and one shared pool: 0.41 eventfd writes per statement). With none idle here, another
/// worker's is taken and registered with this one (TLS ones stay where they are). The cap
/// itself (`Group`) is shared.
#[derive(Default)]
pub struct Pools {
    idle: PerWorker<Mutex<Idle>>,
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
    keys: PerWorker<Mutex<KeyCache>>,
    /// Per-worker copies each new group keeps of its lease counts (see `Group::new`).
    group_slots: AtomicUsize,
    key_ids: Mutex<KeyIds>,
    /// Statements kept prepared per server address, over every connection there.
    stmt_counts: Mutex<FxHashMap<Arc<str>, ServerCount>>,
}

/// Lease keys of one worker's sessions, shared by those that log in alike: a
/// connect-per-request client would otherwise build its keys anew at every login (the
/// key's strings, credentials, and its group and counters looked up under shared locks).
/// Emptied when the config changes, and when it holds more than [`KEY_CACHE_MAX`].
#[derive(Default)]
struct KeyCache {
    config: Option<Arc<crate::config::Config>>,
    keys: FxHashMap<u64, Vec<Arc<LeaseKey>>>,
}

const KEY_CACHE_MAX: usize = 10_000;

/// The idle connections, by key, and how many each server has whatever their key: a
/// session walks the other keys' lists only when its server has idle connections outside
/// its own list.
#[derive(Default)]
struct Idle {
    lists: FxHashMap<PoolKey, IdleList>,
    /// Each server address's place in `per_addr`.
    addrs: FxHashMap<Arc<str>, usize>,
    /// Idle connections per server address, whatever their key. A list knows its
    /// address's place: a statement's take and return look no address up.
    per_addr: Vec<usize>,
}

impl Idle {
    /// The list for `key`, made (and its address given a place) the first time.
    fn list(&mut self, key: &PoolKey) -> &mut IdleList {
        // Looked up before inserting: the key's clone costs atomic increments, and the
        // list almost always exists.
        if !self.lists.contains_key(key) {
            let next = self.per_addr.len();
            let addr = *self.addrs.entry(Arc::clone(&key.addr)).or_insert(next);
            if addr == next {
                self.per_addr.push(0);
            }
            let list = IdleList {
                conns: Vec::new(),
                next_prune: None,
                addr,
            };
            self.lists.insert(key.clone(), list);
        }
        self.lists.get_mut(key).expect("inserted above")
    }
}

/// One key's idle connections, and when they are next looked over for [`IDLE_CLOSE`].
struct IdleList {
    conns: Vec<BackendConn>,
    next_prune: Option<Instant>,
    /// Its address's place in `Idle::per_addr`.
    addr: usize,
}

/// How often a list is looked over for connections idle past [`IDLE_CLOSE`]: at every
/// return, that cost a clock subtraction per idle connection per statement.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Takes the connections unused for [`IDLE_CLOSE`] at `now` out of `conns` (the others
/// keep their order: the most recently used are taken first), for the caller to close. A
/// list holds the connections of every tenant that logs in alike: each leaves its own
/// group's idle count.
fn take_expired(conns: &mut Vec<BackendConn>, now: Instant) -> Vec<BackendConn> {
    let expired: Vec<BackendConn> = conns
        .extract_if(.., |c| {
            now.saturating_duration_since(c.last_used) >= IDLE_CLOSE
        })
        .collect();
    leave_idle_counts(&expired);
    expired
}

/// `conns`, taken out of the idle lists, no longer count as their groups' idle ones.
fn leave_idle_counts(conns: &[BackendConn]) {
    for c in conns {
        if let Some(s) = &c.slot {
            s.group().idle_changed(-1);
        }
    }
}

/// `n` idle connections at address place `addr` were taken, closed or pruned.
fn forget_idle(per_addr: &mut [usize], addr: usize, n: usize) {
    if let Some(count) = per_addr.get_mut(addr) {
        *count = count.saturating_sub(n);
    }
}

/// What a session asks of the pool for one lease.
pub struct Ask<'a> {
    pub key: &'a PoolKey,
    pub group: &'a Arc<Group>,
    pub schema: Option<&'a str>,
    /// The session's state fingerprint: a connection already in it is preferred.
    pub fp: u64,
    /// The session (and generation) asking: the connection it used last is preferred, so
    /// an uncontended session keeps talking to the same server thread.
    pub owner: u64,
    pub timeout: Duration,
    /// What the session's connections log in with: another user's connection is logged in
    /// again with these (COM_CHANGE_USER).
    pub creds: &'a Credentials,
}

impl Pools {
    /// A new connection, counted in its tenant's cap (`slot`) and in its server's count
    /// of prepared statements.
    fn admitted(
        &self,
        conn: Result<BackendConn, BackendError>,
        slot: super::lease::Slot,
    ) -> Result<BackendConn, BackendError> {
        let mut conn = conn?;
        conn.slot = Some(slot);
        let count = (self.stmt_counts.locked())
            .entry(Arc::clone(&conn.key.addr))
            .or_insert_with(|| ServerCount::new(MAX_CACHED_PER_SERVER))
            .clone();
        conn.stmts.count_in(count);
        Ok(conn)
    }

    /// Statements this process keeps prepared on the server at `addr`.
    pub fn stmts_cached_on(&self, addr: &str) -> usize {
        self.stmt_counts
            .locked()
            .get(addr)
            .map_or(0, ServerCount::get)
    }

    /// The pool key of `fields`, numbered (once per lease key, not per statement).
    pub fn key(&self, fields: KeyFields) -> PoolKey {
        let mut k = self.key_ids.locked();
        if k.ids.len() >= KEY_IDS_MAX {
            k.ids.clear();
        }
        let next = k.next;
        let id = *k.ids.entry(fields.clone()).or_insert(next);
        if id == next {
            k.next += 1;
        }
        PoolKey { fields, id }
    }

    /// The lease key of this worker's cache that `hash` and `same` find for `config`, else
    /// the one `make` builds (and the cache keeps).
    pub fn lease_key(
        &self,
        config: &Arc<crate::config::Config>,
        hash: u64,
        same: impl Fn(&LeaseKey) -> bool,
        make: impl FnOnce() -> LeaseKey,
    ) -> Arc<LeaseKey> {
        let cache = self.keys.local();
        let mut cache = cache.locked();
        let current = cache
            .config
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, config));
        if !current || cache.keys.len() >= KEY_CACHE_MAX {
            cache.keys.clear();
            cache.config = Some(Arc::clone(config));
        }
        let found = cache
            .keys
            .get(&hash)
            .and_then(|v| v.iter().find(|k| same(k)));
        if let Some(k) = found {
            return Arc::clone(k);
        }
        let k = Arc::new(make());
        cache.keys.entry(hash).or_default().push(Arc::clone(&k));
        k
    }

    /// Sessions run on `n` worker threads: each group keeps a copy of its lease counts per
    /// worker (and one for other threads). Set before the workers start.
    pub fn set_workers(&self, n: usize) {
        let slots = (n + 1).min(per_worker::SLOTS);
        self.group_slots.store(slots, Ordering::Relaxed);
    }

    /// The group of `tenant`'s connections to `addr`, made on first use; `cap` is the
    /// tenant's `pool_max` (a reload's new value applies).
    pub fn group(&self, tenant: &str, addr: &str, cap: usize) -> Arc<Group> {
        let mut groups = self.groups.locked();
        let g = groups
            .entry((tenant.into(), addr.into()))
            .or_insert_with(|| {
                let slots = self.group_slots.load(Ordering::Relaxed);
                Arc::new(Group::new(tenant, addr, cap, slots))
            });
        if g.cap() != cap.max(1) {
            g.set_cap(cap);
        }
        Arc::clone(g)
    }

    /// An idle connection of `ask.key` from this worker's pool, taken without a wait: the
    /// common case, outside the futures of [`lease`](Self::lease) (building them cost more
    /// than the take). None: lease.
    pub fn take_own(&self, ask: &Ask<'_>) -> Option<BackendConn> {
        let idle = self
            .idle
            .slot_or(per_worker::current_slot(), Default::default);
        let mut guard = idle.locked();
        take_own_in(&mut guard, ask).0
    }

    /// A connection for `ask`: an idle one, else a new one from `connect` while the group is
    /// under its cap, else the first one returned within `ask.timeout`.
    pub async fn lease<F, Fut>(
        &self,
        ask: &Ask<'_>,
        connect: F,
    ) -> Result<BackendConn, BackendError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<BackendConn, BackendError>>,
    {
        if let Some(c) = self.take_logged_in(ask).await {
            return Ok(c);
        }
        if let Some(slot) = ask.group.try_slot() {
            return self.admitted(connect().await, slot);
        }
        let started = Instant::now();
        loop {
            let mut waiter = ask.group.waiter();
            waiter.enable();
            if let Some(c) = self.take_logged_in(ask).await {
                ask.group.waited(started.elapsed(), false);
                return Ok(c);
            }
            if let Some(slot) = ask.group.try_slot() {
                drop(waiter);
                ask.group.waited(started.elapsed(), false);
                return self.admitted(connect().await, slot);
            }
            if self.close_idle_of_others(ask) {
                continue;
            }
            ask.group.ask_back();
            let left = ask.timeout.saturating_sub(started.elapsed());
            if tokio::time::timeout(left, waiter.wait()).await.is_err() {
                ask.group.waited(started.elapsed(), true);
                return Err(BackendError::PoolTimeout {
                    waited: started.elapsed(),
                    cap: ask.group.cap(),
                });
            }
        }
    }

    /// An idle connection for `ask`, logged in as its user: [`take`](Self::take), then
    /// COM_CHANGE_USER when it was another user's. None when there is none, or the change
    /// failed (the connection is dropped, and the caller opens one).
    async fn take_logged_in(&self, ask: &Ask<'_>) -> Option<BackendConn> {
        let mut conn = self.take(ask)?;
        if conn.key.user == ask.key.user {
            return Some(conn);
        }
        let change = super::change_user::change_user(&mut conn, ask.key, ask.creds, ask.schema);
        let err = match tokio::time::timeout(CHANGE_USER_TIMEOUT, change).await {
            Ok(Ok(())) => return Some(conn),
            Ok(Err(e)) => e,
            Err(_) => BackendError::ConnectTimeout,
        };
        tracing::info!(
            server = &*ask.key.addr,
            from = &*conn.key.user,
            to = &*ask.key.user,
            error = %err,
            "COM_CHANGE_USER failed: opening a connection instead"
        );
        // A login the server refuses (its password, plugin, a locked account, its
        // `max_user_connections`) would fail the same way on the next idle connection,
        // and cost that one too.
        if matches!(err, BackendError::AuthPlugin(_) | BackendError::Auth { .. }) {
            ask.group.change_user_failed();
        }
        None
    }

    /// An idle connection for `ask.key` that is still open and can be brought to
    /// `ask.schema` (see [`take_from`]); without one, another backend user's that differs
    /// in nothing else, to be logged in again.
    fn take(&self, ask: &Ask<'_>) -> Option<BackendConn> {
        let here = per_worker::current_slot();
        if let Some(conn) = take_in(self.idle.slot_or(here, Default::default), ask) {
            return Some(conn);
        }
        let mut conn = (self.idle.iter_slots())
            .filter(|(i, _)| *i != here)
            .find_map(|(_, idle)| take_in(idle, ask))?;
        // Moved to this worker: its answers are noticed here from now on, and it idles in
        // this worker's pool (two epoll_ctl calls, once, against a wake-up per statement).
        match conn.io.rehome() {
            Ok(true) => conn.home = here,
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(server = &*ask.key.addr, error = %e, "idle connection could not move to this worker: dropped");
                return None;
            }
        }
        Some(conn)
    }

    /// Makes room under the cap by closing an idle connection of the same group kept for
    /// other clients (another login or capabilities), or one the asker cannot take (it has
    /// a schema, the session none), on any worker. True if one was closed.
    fn close_idle_of_others(&self, ask: &Ask<'_>) -> bool {
        if ask.group.idle() == 0 {
            return false;
        }
        let victim = self
            .idle
            .iter()
            .find_map(|idle| idle_of_others_in(idle, ask));
        // Closed once the worker's lock is let go: its statements take it.
        victim.map(BackendConn::quit).is_some()
    }

    /// Closes the idle connections unused for [`IDLE_CLOSE`] in every list, also in lists
    /// no connection comes back to (where a connection's return prunes): an old primary's
    /// after a promotion or a reload, a removed tenant's, a login no client uses any more.
    /// Called every few seconds off the workers (`crate::sweep_idle_connections`).
    /// Closes connections idle too long, and lets go of what nothing uses: idle lists with
    /// no connection, and the groups of tenants `named` does not take (the config's keep
    /// theirs: a group's counters are cumulative series, which a new group would restart).
    pub fn sweep(&self, now: Instant, named: impl Fn(&str) -> bool) {
        for idle in self.idle.iter() {
            // Closed once the worker's lock is let go: its statements take it.
            let mut expired = Vec::new();
            let mut guard = idle.locked();
            let Idle {
                lists, per_addr, ..
            } = &mut *guard;
            for list in lists.values_mut() {
                let before = expired.len();
                expired.extend(take_expired(&mut list.conns, now));
                forget_idle(per_addr, list.addr, expired.len() - before);
            }
            // A list per login profile ever seen (collation, capabilities) would pile up,
            // and every walk over the lists with them.
            lists.retain(|_, list| !list.conns.is_empty());
            drop(guard);
            expired.into_iter().for_each(BackendConn::quit);
        }
        // A group no connection, lease key or waiter holds: a schema `USE` tried of an open
        // cluster's pattern left one per name for the process's life.
        self.groups
            .locked()
            .retain(|(tenant, _), group| Arc::strong_count(group) > 1 || named(tenant));
    }

    /// Takes back a connection whose session state is described by its fingerprint (a
    /// lease ends); the next session restores from there.
    pub fn put_back(&self, conn: BackendConn) {
        self.put_back_at(conn, Instant::now());
    }

    /// [`put_back`](Self::put_back) at `now`, read by the caller: the connection's idle
    /// time starts then, and the list's pruning reads it (a session that ends a statement
    /// reads the clock once for this and its own idle time).
    pub fn put_back_at(&self, mut conn: BackendConn, now: Instant) {
        // Bytes nobody asked for (a server's ERR before it hangs up) would be read as the
        // next session's answer: dropped, and no COM_QUIT after them.
        if !conn.io.rbuf.is_empty() {
            return;
        }
        let Some(slot) = &conn.slot else {
            return conn.quit();
        };
        if conn.set_option.is_some() || conn.outlives_reset || slot.group().over_cap() {
            return conn.quit();
        }
        if conn.reset_before_reuse {
            conn.reset_before_reuse = false;
            conn.applied = Applied::FOREIGN;
        }
        conn.last_used = now;
        let home = self.idle.slot_or(conn.home, Default::default);
        let mut guard = home.locked();
        let idle = &mut *guard;
        let list = idle.list(&conn.key);
        let mut pruned = 0;
        let mut expired = Vec::new();
        if list.next_prune.is_none_or(|at| now >= at) {
            list.next_prune = Some(now + PRUNE_EVERY);
            expired = take_expired(&mut list.conns, now);
            pruned = expired.len();
        }
        let addr = list.addr;
        let list = &mut list.conns;
        list.push(conn);
        // The group is reached through the connection now in the list, not a clone of its
        // Arc: a clone and drop per statement would write the group's reference count from
        // every worker. A waiter woken under this lock takes it once the lock is let go.
        if let Some(s) = list.last().and_then(|c| c.slot.as_ref()) {
            s.group().idle_changed(1);
            s.group().wake();
        }
        if let Some(n) = idle.per_addr.get_mut(addr) {
            *n = (*n + 1).saturating_sub(pruned);
        }
        // Tested first: an empty vector's iterator, built and dropped at every return, cost
        // 18 instructions per statement.
        if !expired.is_empty() {
            drop(guard);
            expired.into_iter().for_each(BackendConn::quit);
        }
    }

    /// Takes back a connection that holds what no other session may see: state the
    /// server's reset clears (a transaction, locks, temporary tables, user variables:
    /// `reset`) or a multi-statement option other than its login's, which the reset keeps
    /// (mysqlnd's `multi_query` leaves the option on for the rest of the connection when
    /// the query succeeds). Both are undone in the background, so the client is not kept
    /// waiting, and the connection is kept.
    pub fn release(self: &Arc<Self>, mut conn: BackendConn, reset: bool) {
        if !conn.io.rbuf.is_empty() {
            return;
        }
        if conn.outlives_reset {
            return conn.quit();
        }
        let pools = Arc::clone(self);
        tokio::spawn(async move {
            let settle = async {
                if reset {
                    super::restore::reset(&mut conn).await?;
                }
                super::restore::option(&mut conn, None).await
            };
            // A server that does not answer in time is dropped, not waited for: a stuck
            // task would hold its socket for ever.
            if matches!(
                tokio::time::timeout(RESET_TIMEOUT, settle).await,
                Ok(Ok(()))
            ) {
                pools.put_back(conn);
            }
        });
    }

    /// Closes every idle connection (with COM_QUIT), on every worker: Switchyard stops.
    pub fn close_idle(&self) {
        for idle in self.idle.iter() {
            let mut guard = idle.locked();
            let Idle {
                lists, per_addr, ..
            } = &mut *guard;
            let closing: Vec<BackendConn> =
                lists.drain().flat_map(|(_, list)| list.conns).collect();
            per_addr.iter_mut().for_each(|n| *n = 0);
            drop(guard);
            leave_idle_counts(&closing);
            closing.into_iter().for_each(BackendConn::quit);
        }
    }

    /// Number of idle connections per server address.
    pub fn idle_counts(&self) -> HashMap<Arc<str>, usize> {
        let mut counts = HashMap::new();
        for idle in self.idle.iter() {
            let idle = idle.locked();
            for (a, &i) in &idle.addrs {
                if let Some(&n) = idle.per_addr.get(i).filter(|n| **n > 0) {
                    *counts.entry(Arc::clone(a)).or_insert(0) += n;
                }
            }
        }
        counts
    }

    /// Every group's figures, by tenant then server.
    pub fn stats(&self) -> Vec<GroupStats> {
        let groups = self.groups.locked();
        let mut out: Vec<GroupStats> = groups.values().map(|g| g.stats()).collect();
        out.sort_by(|a, b| (&a.tenant, &a.addr).cmp(&(&b.tenant, &b.addr)));
        out
    }
}

/// [`Pools::take`] in one worker's pool.
fn take_in(idle: &Mutex<Idle>, ask: &Ask<'_>) -> Option<BackendConn> {
    let mut guard = idle.locked();
    let idle = &mut *guard;
    let (conn, own) = take_own_in(idle, ask);
    if conn.is_some() {
        return conn;
    }
    let &addr = idle.addrs.get(&*ask.key.addr)?;
    let elsewhere = idle.per_addr[addr].saturating_sub(own);
    // Nothing there could be taken without a slot or one of the group's own idle
    // connections (the wait loop comes here on every wake-up: no walk over every key).
    let room = ask.group.idle() > 0 || ask.group.has_room();
    if elsewhere == 0 || !room || !ask.group.may_change_user() {
        return None;
    }
    // Lists differing only in the user are the same server's: they count at `addr` too.
    let mut gone = 0;
    let conn = idle
        .lists
        .iter_mut()
        .filter(|(k, _)| k.differs_only_in_user(&ask.key.fields))
        .find_map(|(_, list)| {
            let list = &mut list.conns;
            let before = list.len();
            let conn = take_recyclable(list, ask);
            gone += before - list.len();
            conn
        });
    forget_idle(&mut idle.per_addr, addr, gone);
    conn
}

/// A connection from `ask.key`'s own list (see [`take_from`]), and how many are left there.
fn take_own_in(idle: &mut Idle, ask: &Ask<'_>) -> (Option<BackendConn>, usize) {
    let Some(list) = idle.lists.get_mut(ask.key) else {
        return (None, 0);
    };
    let addr = list.addr;
    let list = &mut list.conns;
    let before = list.len();
    let conn = take_from(list, ask);
    let own = list.len();
    forget_idle(&mut idle.per_addr, addr, before - own);
    (conn, own)
}

/// [`Pools::close_idle_of_others`] in one worker's pool: the connection taken out to close.
fn idle_of_others_in(idle: &Mutex<Idle>, ask: &Ask<'_>) -> Option<BackendConn> {
    let mut guard = idle.locked();
    let idle = &mut *guard;
    let mine = |c: &BackendConn| {
        c.slot
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s.group(), ask.group))
    };
    let victim = idle
        .lists
        .iter_mut()
        .filter(|(k, _)| k.addr == ask.key.addr)
        .find_map(|(k, v)| {
            // In the asker's own list, one it cannot take: a connection that has a schema,
            // for a session without one (no command un-selects a schema).
            let own = k == ask.key;
            if own && ask.schema.is_some() {
                return None;
            }
            let i = v
                .conns
                .iter()
                .position(|c| mine(c) && (!own || c.schema.is_some()))?;
            Some((v.addr, v.conns.swap_remove(i)))
        });
    let (addr, c) = victim?;
    forget_idle(&mut idle.per_addr, addr, 1);
    ask.group.idle_changed(-1);
    Some(c)
}

/// The best connection of `list` for `ask` that is still open: one already in the
/// session's state first, then one without session state, then any. A connection keeps its
/// last schema (COM_RESET_CONNECTION leaves it) and no command un-selects one: a session
/// without a schema only takes a connection that never had one.
fn take_from(list: &mut Vec<BackendConn>, ask: &Ask<'_>) -> Option<BackendConn> {
    loop {
        let (i, own) = best(list, ask)?;
        if let Some(conn) = claim(list, i, own, ask)? {
            return Some(conn);
        }
    }
}

/// Takes `list[i]` for `ask`. Another tenant's connection moves under the taker's cap, or
/// is not taken (None); one the server closed while idle is dropped (`Some(None)`: look
/// again).
fn claim(
    list: &mut Vec<BackendConn>,
    i: usize,
    own: bool,
    ask: &Ask<'_>,
) -> Option<Option<BackendConn>> {
    let slot = if own {
        None
    } else {
        Some(ask.group.try_slot()?)
    };
    let mut conn = list.swap_remove(i);
    if let Some(s) = &conn.slot {
        s.group().idle_changed(-1);
    }
    // A peek, usually without a syscall: tokio knows whether the socket became readable (a
    // FIN, say, from the server's wait_timeout or a KILL).
    if !conn.io.is_open() {
        return Some(None);
    }
    if let Some(slot) = slot {
        conn.slot = Some(slot);
        conn.applied = Applied::FOREIGN;
        conn.from_other_tenant = true;
    }
    Some(Some(conn))
}

/// Another backend login's idle connection worth logging in again (COM_CHANGE_USER) rather
/// than opening one: while the group is at its cap, one of the group's own (the wait would
/// otherwise close it and open another); under the cap, only one idle for
/// [`RECYCLE_AFTER`]: logins that take turns keep their own warm connections instead of
/// changing one back and forth.
fn take_recyclable(list: &mut Vec<BackendConn>, ask: &Ask<'_>) -> Option<BackendConn> {
    let at_cap = !ask.group.has_room();
    let ours = |c: &BackendConn| {
        c.slot
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s.group(), ask.group))
    };
    loop {
        let i = list.iter().rposition(|c| {
            (ask.schema.is_some() || c.schema.is_none())
                && if at_cap {
                    ours(c)
                } else {
                    c.last_used.elapsed() >= RECYCLE_AFTER
                }
        })?;
        let own = ours(&list[i]);
        if let Some(conn) = claim(list, i, own, ask)? {
            return Some(conn);
        }
    }
}

/// The index of the connection to lease, and whether it is the asking tenant's own: the
/// one the session used last if it is in the wanted state, else its tenant's own in the
/// wanted state (most recently used first: warmest server caches), then its own without
/// session state, then any of its own, then another tenant's.
fn best(list: &[BackendConn], ask: &Ask<'_>) -> Option<(usize, bool)> {
    let mine = list
        .iter()
        .rposition(|c| c.applied.owner == ask.owner && c.applied.fp == ask.fp);
    if let Some(i) = mine.filter(|&i| {
        let c = &list[i];
        (ask.schema.is_some() || c.schema.is_none())
            && c.slot
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(s.group(), ask.group))
    }) {
        return Some((i, true));
    }
    let mut clean = None;
    let mut own = None;
    let mut other = None;
    for (i, c) in list.iter().enumerate().rev() {
        if ask.schema.is_none() && c.schema.is_some() {
            continue;
        }
        if !c
            .slot
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s.group(), ask.group))
        {
            other.get_or_insert(i);
            continue;
        }
        if c.applied.fp == ask.fp {
            return Some((i, true));
        }
        if c.applied.fp == 0 && clean.is_none() {
            clean = Some(i);
        }
        own.get_or_insert(i);
    }
    clean
        .or(own)
        .map(|i| (i, true))
        .or(other.map(|i| (i, false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(user: &str, collation: u8) -> KeyFields {
        KeyFields {
            addr: "127.0.0.1:3306".into(),
            user: user.into(),
            capabilities: CapabilityFlags::CLIENT_PROTOCOL_41,
            ext_capabilities: MariadbCapabilities::empty(),
            collation,
            tls_ca: None,
        }
    }

    #[test]
    fn keys_are_equal_exactly_when_their_fields_are() {
        let pools = Pools::default();
        let a = pools.key(fields("app", 45));
        assert_eq!(
            a,
            pools.key(fields("app", 45)),
            "made apart, numbered alike"
        );
        assert_ne!(a, pools.key(fields("other", 45)));
        assert_ne!(a, pools.key(fields("app", 33)));
        let mut lists = FxHashMap::default();
        lists.insert(a.clone(), 1);
        assert_eq!(lists.get(&pools.key(fields("app", 45))), Some(&1));
        assert!(a.differs_only_in_user(&pools.key(fields("other", 45))));
    }
}
