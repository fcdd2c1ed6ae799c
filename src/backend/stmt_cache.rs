//! The statements prepared on one backend connection, by statement text and session state,
//! shared by every session that leases the connection, and bounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

/// An execute's parameter types (two bytes per parameter), kept inline up to eight
/// parameters: compared at every execute, a vector of their own on the heap was a cache
/// line more to miss each time, on the session's side and on the connection's.
pub type ParamTypes = SmallVec<[u8; 16]>;

/// Statements kept prepared per connection; past it the least recently used is closed.
pub const MAX_CACHED_STMTS: usize = 256;

/// Statements kept prepared on one server over all of this process's connections there
/// (every tenant's), shared out: each connection keeps at most its share of it (between
/// [`MIN_CACHED_STMTS`] and [`MAX_CACHED_STMTS`]), closing its least recently used
/// statement past that. The server's `max_prepared_stmt_count` (16,382 by default) counts
/// every client's statements, and a server at it refuses a prepare (ER 1461) to all of
/// them: a tenant's `pool_max` of 64 connections at 256 each could take it alone. A quarter
/// leaves room for other instances of a fleet and for clients that connect directly. A
/// share, not a first-come bound: a connection that came late (a tenant that became busy)
/// keeps as many as the others, and none closes and prepares again at every statement. A
/// server that refuses all the same gets half of the asking connection's statements closed
/// before the prepare is tried again.
pub const MAX_CACHED_PER_SERVER: usize = 4096;

/// The least a connection keeps, however many share the server (past 256 connections to
/// one server the bound above is exceeded rather than every statement prepared again).
pub const MIN_CACHED_STMTS: usize = 16;

/// This process's connections to one server and the statements they keep prepared there.
#[derive(Debug, Clone)]
pub struct ServerCount {
    counts: Arc<Counts>,
    max: usize,
}

#[derive(Debug, Default)]
struct Counts {
    stmts: AtomicUsize,
    conns: AtomicUsize,
}

impl ServerCount {
    pub fn new(max: usize) -> ServerCount {
        ServerCount {
            counts: Arc::default(),
            max,
        }
    }

    /// Statements kept prepared on the server.
    pub fn get(&self) -> usize {
        self.counts.stmts.load(Ordering::Relaxed)
    }

    /// A connection's share of the bound.
    fn share(&self) -> usize {
        let conns = self.counts.conns.load(Ordering::Relaxed).max(1);
        (self.max / conns).clamp(MIN_CACHED_STMTS, MAX_CACHED_STMTS)
    }

    fn add(&self, n: usize) {
        self.counts.stmts.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.counts.stmts.fetch_sub(n, Ordering::Relaxed);
    }
}

/// A statement the server holds on this connection.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The server's statement id.
    pub id: u32,
    /// Parameter types the server last received for it (an execute without types reuses
    /// them, so one session's must not be used for another's).
    pub types: Option<ParamTypes>,
    /// With the metadata cache: digest of the column definitions the server last sent.
    pub meta: Option<u64>,
    used: u64,
}

#[derive(Debug, Default)]
pub struct StmtCache {
    /// FxHash: the keys are SipHash values already (`prepared::cache_key`).
    map: FxHashMap<u64, Cached>,
    tick: u64,
    /// The server's count this cache's statements are in, once the pool has counted the
    /// connection (see `Pools::admitted`).
    server: Option<ServerCount>,
}

impl Drop for StmtCache {
    fn drop(&mut self) {
        self.clear();
        if let Some(s) = &self.server {
            s.counts.conns.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl StmtCache {
    /// Counts this cache (a connection) and its statements in `server`'s counts from now
    /// on, keeping to its share.
    pub fn count_in(&mut self, server: ServerCount) {
        server.add(self.map.len());
        server.counts.conns.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = self.server.replace(server) {
            old.sub(self.map.len());
            old.counts.conns.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The most this connection keeps: its share of its server's bound.
    fn cap(&self) -> usize {
        self.server
            .as_ref()
            .map_or(MAX_CACHED_STMTS, ServerCount::share)
    }

    pub fn get(&mut self, key: u64) -> Option<&mut Cached> {
        self.tick += 1;
        let tick = self.tick;
        let c = self.map.get_mut(&key)?;
        c.used = tick;
        Some(c)
    }

    pub fn peek(&self, key: u64) -> Option<&Cached> {
        self.map.get(&key)
    }

    /// Records a statement the server prepared; returns the server ids to close (the one
    /// it replaces, and the least recently used beyond the connection's share), never one of
    /// `open` (server statements with an open cursor: closed, the cursor's next fetch
    /// would fail).
    pub fn insert(&mut self, key: u64, id: u32, meta: Option<u64>, open: &[u32]) -> Vec<u32> {
        self.tick += 1;
        let entry = Cached {
            id,
            types: None,
            meta,
            used: self.tick,
        };
        let replaced = self.map.insert(key, entry).map(|c| c.id);
        if replaced.is_none() {
            if let Some(s) = &self.server {
                s.add(1);
            }
        }
        let mut closed: Vec<u32> = replaced.into_iter().collect();
        let over = self.map.len().saturating_sub(self.cap());
        if over > 0 {
            closed.extend(self.evict(over, key, open));
        }
        closed
    }

    pub fn remove(&mut self, key: u64) -> Option<u32> {
        let removed = self.map.remove(&key).map(|c| c.id);
        if let (Some(s), Some(_)) = (&self.server, removed) {
            s.sub(1);
        }
        removed
    }

    /// Closes half of the statements (the server refused another one), but `keep` and
    /// those with an open cursor (`open`); returns their ids.
    pub fn shed_half(&mut self, keep: u64, open: &[u32]) -> Vec<u32> {
        self.evict(self.map.len().div_ceil(2), keep, open)
    }

    fn evict(&mut self, n: usize, keep: u64, open: &[u32]) -> Vec<u32> {
        let mut by_age: Vec<(u64, u64)> = self
            .map
            .iter()
            .filter(|(k, c)| **k != keep && !open.contains(&c.id))
            .map(|(k, c)| (c.used, *k))
            .collect();
        by_age.sort_unstable();
        let closed: Vec<u32> = by_age
            .into_iter()
            .take(n)
            .filter_map(|(_, k)| self.map.remove(&k).map(|c| c.id))
            .collect();
        if let Some(s) = &self.server {
            s.sub(closed.len());
        }
        closed
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        if let Some(s) = &self.server {
            s.sub(self.map.len());
        }
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_least_recent_use() {
        let mut c = StmtCache::default();
        for k in 0..MAX_CACHED_STMTS as u64 {
            assert!(c.insert(k, k as u32 + 1, None, &[]).is_empty());
        }
        c.get(0).expect("cached");
        let closed = c.insert(9999, 9999, None, &[]);
        assert_eq!(
            closed,
            vec![2],
            "key 1 (server id 2) was the least recently used"
        );
        assert!(c.peek(0).is_some() && c.peek(9999).is_some());
        assert_eq!(c.len(), MAX_CACHED_STMTS);
    }

    #[test]
    fn connections_to_one_server_share_its_bound() {
        let server = ServerCount::new(64);
        let (mut a, mut b) = (StmtCache::default(), StmtCache::default());
        a.count_in(server.clone());
        b.count_in(server.clone());
        let mut closed = Vec::new();
        for k in 0..40 {
            closed.extend(a.insert(k, k as u32 + 1, None, &[]));
        }
        assert_eq!(a.len(), 32, "half of 64 each");
        assert_eq!(closed, (1..=8).collect::<Vec<u32>>(), "the oldest went");
        for k in 100..105 {
            assert!(b.insert(k, k as u32, None, &[]).is_empty());
        }
        assert_eq!(server.get(), 37);
        // A third connection: a third each, which `a` keeps to at its next statement, but
        // for the one with a cursor open (server id 9, its oldest).
        let mut c = StmtCache::default();
        c.count_in(server.clone());
        let closed = a.insert(40, 41, None, &[9]);
        assert_eq!(a.len(), 21);
        assert!(!closed.contains(&9) && a.peek(8).is_some(), "{closed:?}");
        assert_eq!(closed.len(), 12);
        assert_eq!(server.get(), 26);
        // However many share it, each keeps a few.
        let many: Vec<StmtCache> = (0..20)
            .map(|_| {
                let mut m = StmtCache::default();
                m.count_in(server.clone());
                m
            })
            .collect();
        for k in 200..220 {
            c.insert(k, k as u32, None, &[]);
        }
        assert_eq!(c.len(), MIN_CACHED_STMTS);
        drop(many);
        assert_eq!(a.remove(8), Some(9));
        drop(c);
        b.clear();
        assert_eq!(server.get(), a.len());
        drop(a);
        assert_eq!(
            server.get(),
            0,
            "a dropped connection's statements are gone"
        );
        assert_eq!(server.share(), 64, "one connection left (b)");
    }

    #[test]
    fn replacing_closes_the_old_statement() {
        let mut c = StmtCache::default();
        c.insert(7, 1, None, &[]);
        assert_eq!(c.insert(7, 2, None, &[]), vec![1]);
        assert_eq!(c.peek(7).map(|s| s.id), Some(2));
    }

    #[test]
    fn shedding_keeps_the_one_asked_for() {
        let mut c = StmtCache::default();
        for k in 0..10 {
            c.insert(k, k as u32, None, &[]);
        }
        let closed = c.shed_half(0, &[]);
        assert_eq!(closed.len(), 5);
        assert!(c.peek(0).is_some());
    }
}
