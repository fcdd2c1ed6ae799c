//! Sessions reading from each replica server, counted per worker: what the replica choice
//! balances.
//!
//! A session is counted on the server it reads from (its sticky replica) from its choice
//! until it chooses another or ends, by a [`Seat`] it holds. Counts are per worker, and per
//! server address rather than per tenant: tenants sharing a replica server share its load.
//! Only a choice writes them (once a second per reading session at most), never a
//! statement that keeps its replica.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::{FxHashMap, FxHasher};

use super::lock::Unpoisoned;
use super::per_worker::PerWorker;

/// Servers by a hash of their address: no string kept or allocated per seat. Two addresses
/// with one hash would only be balanced as one server.
type Counts = Arc<Mutex<FxHashMap<u64, u32>>>;

/// The per-worker counts.
#[derive(Default)]
pub struct Readers {
    workers: PerWorker<Counts>,
}

impl Readers {
    /// The calling worker's counts, locked while the guard lives (a choice reads a few).
    pub fn local(&self) -> Local<'_> {
        Local {
            counts: self.workers.local().locked(),
        }
    }

    /// Counts one session of the calling worker on `addr` until the seat is dropped.
    pub fn seat(&self, addr: &str) -> Seat {
        let counts = Arc::clone(self.workers.local());
        let server = server_key(addr);
        *counts.locked().entry(server).or_insert(0) += 1;
        Seat { counts, server }
    }
}

/// One worker's counts, locked.
pub struct Local<'a> {
    counts: MutexGuard<'a, FxHashMap<u64, u32>>,
}

impl Local<'_> {
    /// Sessions counted on `addr`.
    pub fn count(&self, addr: &str) -> u32 {
        self.counts.get(&server_key(addr)).copied().unwrap_or(0)
    }
}

/// One session counted as reading from one server, on the worker that made it.
pub struct Seat {
    counts: Counts,
    server: u64,
}

impl Seat {
    /// Whether it counts the session on `addr`.
    pub fn is_on(&self, addr: &str) -> bool {
        self.server == server_key(addr)
    }

    /// Whether it is counted on the calling worker (a session that moved is counted on
    /// the worker it left until it is seated again).
    pub fn is_local(&self, readers: &Readers) -> bool {
        Arc::ptr_eq(&self.counts, readers.workers.local())
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut counts = self.counts.locked();
        if let Some(n) = counts.get_mut(&self.server) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.server);
            }
        }
    }
}

fn server_key(addr: &str) -> u64 {
    let mut h = FxHasher::default();
    addr.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_count_until_dropped() {
        let readers = Readers::default();
        let a = readers.seat("127.0.0.1:1");
        let b = readers.seat("127.0.0.1:1");
        let c = readers.seat("127.0.0.1:2");
        assert_eq!(readers.local().count("127.0.0.1:1"), 2);
        assert!(a.is_local(&readers) && a.is_on("127.0.0.1:1") && !c.is_on("127.0.0.1:1"));
        drop(a);
        assert_eq!(readers.local().count("127.0.0.1:1"), 1);
        drop((b, c));
        assert_eq!(readers.local().count("127.0.0.1:1"), 0);
        assert!(
            readers.local().counts.is_empty(),
            "emptied counts are removed"
        );
    }
}
