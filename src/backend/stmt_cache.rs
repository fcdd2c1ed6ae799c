//! The statements prepared on one backend connection, by statement text and session state,
//! shared by every session that leases the connection, and bounded.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

/// An execute's parameter types (two bytes per parameter), kept inline up to eight
/// parameters: compared at every execute, a vector of their own on the heap was a cache
/// line more to miss each time, on the session's side and on the connection's.
pub type ParamTypes = SmallVec<[u8; 16]>;

/// Statements kept prepared per connection; past it the least recently used is closed.
/// Not bounded per server: a tenant's `pool_max` of 64 connections may hold 16,384 there,
/// past the server's default `max_prepared_stmt_count` (16,382), which counts every
/// client's statements. A server that refuses more (ER 1461) gets half of the asking
/// connection's statements closed before the prepare is tried again; its other clients
/// meanwhile get the 1461 as they would directly.
pub const MAX_CACHED_STMTS: usize = 256;

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
}

impl StmtCache {
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
    /// it replaces, and the least recently used beyond the bound).
    pub fn insert(&mut self, key: u64, id: u32, meta: Option<u64>) -> Vec<u32> {
        self.tick += 1;
        let entry = Cached {
            id,
            types: None,
            meta,
            used: self.tick,
        };
        let mut closed: Vec<u32> = self
            .map
            .insert(key, entry)
            .map(|c| c.id)
            .into_iter()
            .collect();
        if self.map.len() > MAX_CACHED_STMTS {
            closed.extend(self.evict(self.map.len() - MAX_CACHED_STMTS, key));
        }
        closed
    }

    pub fn remove(&mut self, key: u64) -> Option<u32> {
        self.map.remove(&key).map(|c| c.id)
    }

    /// Closes half of the statements (the server refused another one); returns their ids.
    pub fn shed_half(&mut self, keep: u64) -> Vec<u32> {
        self.evict(self.map.len().div_ceil(2), keep)
    }

    fn evict(&mut self, n: usize, keep: u64) -> Vec<u32> {
        let mut by_age: Vec<(u64, u64)> = self
            .map
            .iter()
            .filter(|(k, _)| **k != keep)
            .map(|(k, c)| (c.used, *k))
            .collect();
        by_age.sort_unstable();
        by_age
            .into_iter()
            .take(n)
            .filter_map(|(_, k)| self.map.remove(&k).map(|c| c.id))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
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
            assert!(c.insert(k, k as u32 + 1, None).is_empty());
        }
        c.get(0).expect("cached");
        let closed = c.insert(9999, 9999, None);
        assert_eq!(
            closed,
            vec![2],
            "key 1 (server id 2) was the least recently used"
        );
        assert!(c.peek(0).is_some() && c.peek(9999).is_some());
        assert_eq!(c.len(), MAX_CACHED_STMTS);
    }

    #[test]
    fn replacing_closes_the_old_statement() {
        let mut c = StmtCache::default();
        c.insert(7, 1, None);
        assert_eq!(c.insert(7, 2, None), vec![1]);
        assert_eq!(c.peek(7).map(|s| s.id), Some(2));
    }

    #[test]
    fn shedding_keeps_the_one_asked_for() {
        let mut c = StmtCache::default();
        for k in 0..10 {
            c.insert(k, k as u32, None);
        }
        let closed = c.shed_half(0);
        assert_eq!(closed.len(), 5);
        assert!(c.peek(0).is_some());
    }
}
