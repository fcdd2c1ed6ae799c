//! Per-tenant counters, bumped with one atomic add on the data path and read by the admin
//! port and the metrics endpoint.

use super::bounded::Bounded;
use super::lock::UnpoisonedRw;
use super::per_worker::PerWorker;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Upper bounds (microseconds) of the statement latency buckets.
pub const LATENCY_BUCKETS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000, 30_000_000,
];

/// A latency histogram updated with a few atomic adds.
#[derive(Debug, Default)]
pub struct Latency {
    /// Count per bucket (not cumulative); the last slot is +Inf.
    pub buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    pub sum_us: AtomicU64,
    pub count: AtomicU64,
}

impl Latency {
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn observe(&self, took: std::time::Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (sum in seconds, count, (upper bound in seconds, count in that bucket alone) pairs
    /// ending with +Inf; the Prometheus encoder makes them cumulative).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut out = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            let bound = LATENCY_BUCKETS_US
                .get(i)
                .map_or(f64::INFINITY, |us| *us as f64 / 1e6);
            out.push((bound, b.load(Ordering::Relaxed)));
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, self.count.load(Ordering::Relaxed), out)
    }
}

#[derive(Debug, Default)]
pub struct TenantStats {
    /// Statement latency as the proxy saw it (first byte in to last byte out).
    pub latency_primary: Latency,
    pub latency_replica: Latency,
    pub to_primary: AtomicU64,
    pub to_replica: AtomicU64,
    /// Statements the server answered with an error.
    pub errors: AtomicU64,
    /// Statements that failed because a backend could not be reached or was lost.
    pub backend_errors: AtomicU64,
    /// Reads that wanted a replica and got the primary.
    pub fallbacks: AtomicU64,
    pub hints_refused: AtomicU64,
    /// Statements that waited on a paused tenant, and those that gave up.
    pub held: AtomicU64,
    pub held_too_long: AtomicU64,
    /// Reads that had to see writes (consistency session, tenant, global), by outcome: a
    /// replica that had them already, one that applied them within the wait, the primary.
    pub consistent_ready: AtomicU64,
    pub consistent_waited: AtomicU64,
    pub consistent_primary: AtomicU64,
}

/// A copy of one tenant's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantCounts {
    pub to_primary: u64,
    pub to_replica: u64,
    pub errors: u64,
    pub backend_errors: u64,
    pub fallbacks: u64,
    pub hints_refused: u64,
    pub held: u64,
    pub held_too_long: u64,
    pub consistent_ready: u64,
    pub consistent_waited: u64,
    pub consistent_primary: u64,
}

impl TenantCounts {
    /// Adds another worker's counts of the same tenant.
    pub fn add(&mut self, o: &TenantCounts) {
        self.to_primary += o.to_primary;
        self.to_replica += o.to_replica;
        self.errors += o.errors;
        self.backend_errors += o.backend_errors;
        self.fallbacks += o.fallbacks;
        self.hints_refused += o.hints_refused;
        self.held += o.held;
        self.held_too_long += o.held_too_long;
        self.consistent_ready += o.consistent_ready;
        self.consistent_waited += o.consistent_waited;
        self.consistent_primary += o.consistent_primary;
    }
}

impl TenantStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds what `o` counted (a pruned tenant's counts, kept in the worker's retired ones).
    fn absorb(&self, o: &TenantStats) {
        let add = |to: &AtomicU64, from: &AtomicU64| {
            to.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
        };
        for (to, from) in [
            (&self.latency_primary, &o.latency_primary),
            (&self.latency_replica, &o.latency_replica),
        ] {
            for (t, f) in to.buckets.iter().zip(&from.buckets) {
                add(t, f);
            }
            add(&to.sum_us, &from.sum_us);
            add(&to.count, &from.count);
        }
        for (to, from) in [
            (&self.to_primary, &o.to_primary),
            (&self.to_replica, &o.to_replica),
            (&self.errors, &o.errors),
            (&self.backend_errors, &o.backend_errors),
            (&self.fallbacks, &o.fallbacks),
            (&self.hints_refused, &o.hints_refused),
            (&self.held, &o.held),
            (&self.held_too_long, &o.held_too_long),
            (&self.consistent_ready, &o.consistent_ready),
            (&self.consistent_waited, &o.consistent_waited),
            (&self.consistent_primary, &o.consistent_primary),
        ] {
            add(to, from);
        }
    }

    pub fn counts(&self) -> TenantCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TenantCounts {
            to_primary: get(&self.to_primary),
            to_replica: get(&self.to_replica),
            errors: get(&self.errors),
            backend_errors: get(&self.backend_errors),
            fallbacks: get(&self.fallbacks),
            hints_refused: get(&self.hints_refused),
            held: get(&self.held),
            held_too_long: get(&self.held_too_long),
            consistent_ready: get(&self.consistent_ready),
            consistent_waited: get(&self.consistent_waited),
            consistent_primary: get(&self.consistent_primary),
        }
    }
}

/// Statements one server ran for one tenant, split as SHOW BACKENDS shows them.
#[derive(Debug, Default)]
pub struct Served {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
}

impl Served {
    fn counts(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

/// Counters by tenant name. Kept across reloads; a tenant's entry is made on first use.
/// Entries of tenants the config does not name (made by an open cluster's patterns from
/// what clients send) are dropped when no session holds them and the map has filled up.
/// One set of maps per worker (a session counts into its worker's); reads add them up.
#[derive(Default)]
pub struct Stats {
    workers: PerWorker<WorkerStats>,
}

#[derive(Default)]
struct WorkerStats {
    tenants: RwLock<Bounded<String, TenantStats>>,
    /// What the tenants pruned from `tenants` had counted: /metrics adds it to the
    /// tenants past its label bound, whose counters would otherwise go down (a reset to
    /// Prometheus, read as a burst of the whole sum).
    retired: TenantStats,
    /// (tenant, server address) -> statements served.
    served: RwLock<Bounded<(String, String), Served>>,
}

impl Stats {
    /// `named`: whether a tenant is in the config (its counters are never dropped).
    pub fn tenant(&self, name: &str, named: impl Fn(&str) -> bool) -> Arc<TenantStats> {
        let local = self.workers.local();
        if let Some(t) = read(&local.tenants).get(name) {
            return Arc::clone(t);
        }
        let mut w = local.tenants.writing();
        w.entry(name.to_owned(), |k, v| {
            let prune = !named(k);
            if prune {
                local.retired.absorb(v);
            }
            prune
        })
    }

    /// Every worker's counts of pruned tenants (see `WorkerStats::retired`).
    pub fn retired(&self) -> Vec<&TenantStats> {
        self.workers.iter().map(|w| &w.retired).collect()
    }

    /// The counters of `addr` serving `tenant`; a session holds them with its connection so
    /// counting costs one atomic add.
    pub fn served(&self, tenant: &str, addr: &str, named: impl Fn(&str) -> bool) -> Arc<Served> {
        let local = self.workers.local();
        let key = (tenant.to_owned(), addr.to_owned());
        if let Some(s) = read(&local.served).get(&key) {
            return Arc::clone(s);
        }
        let mut w = local.served.writing();
        w.entry(key, |(t, _), _| !named(t))
    }

    /// (reads, writes) `addr` served for `tenant`.
    pub fn served_counts(&self, tenant: &str, addr: &str) -> (u64, u64) {
        let key = (tenant.to_owned(), addr.to_owned());
        self.workers.iter().fold((0, 0), |(reads, writes), w| {
            let (r, wr) = read(&w.served).get(&key).map_or((0, 0), |s| s.counts());
            (reads + r, writes + wr)
        })
    }

    /// (reads, writes) `addr` served for every tenant `of` accepts.
    pub fn served_where(&self, addr: &str, of: impl Fn(&str) -> bool) -> (u64, u64) {
        let mut total = (0, 0);
        for w in self.workers.iter() {
            for ((t, a), s) in read(&w.served).iter() {
                if a == addr && of(t) {
                    let (r, wr) = s.counts();
                    total = (total.0 + r, total.1 + wr);
                }
            }
        }
        total
    }

    /// Every worker's live stats (for histograms, which are not copied into TenantCounts):
    /// a tenant appears once per worker that counted it, and callers add them up.
    pub fn tenants(&self) -> Vec<(String, Arc<TenantStats>)> {
        let mut all: Vec<_> = Vec::new();
        for w in self.workers.iter() {
            all.extend(
                read(&w.tenants)
                    .iter()
                    .map(|(k, v)| (k.clone(), Arc::clone(v))),
            );
        }
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// `name`'s counters as each worker counted them, by worker slot
    /// (`per_worker::current_slot`): which worker's copy a session writes.
    pub fn tenant_by_slot(&self, name: &str) -> Vec<(usize, TenantCounts)> {
        self.workers
            .iter_slots()
            .filter_map(|(i, w)| read(&w.tenants).get(name).map(|t| (i, t.counts())))
            .collect()
    }

    /// Each tenant's counters, every worker's added up, by name.
    pub fn snapshot(&self) -> Vec<(String, TenantCounts)> {
        let mut merged: HashMap<String, TenantCounts> = HashMap::new();
        for w in self.workers.iter() {
            for (k, v) in read(&w.tenants).iter() {
                match merged.get_mut(k.as_str()) {
                    Some(c) => c.add(&v.counts()),
                    None => {
                        merged.insert(k.clone(), v.counts());
                    }
                }
            }
        }
        let mut all: Vec<_> = merged.into_iter().collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.reading()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accumulate_per_tenant() {
        let s = Stats::default();
        TenantStats::bump(&s.tenant("acme", |_| true).to_replica);
        TenantStats::bump(&s.tenant("acme", |_| true).to_replica);
        TenantStats::bump(&s.tenant("globex", |_| true).errors);
        let snap = s.snapshot();
        assert_eq!(snap[0].0, "acme");
        assert_eq!(snap[0].1.to_replica, 2);
        assert_eq!(snap[1].1.errors, 1);
    }

    #[test]
    fn workers_count_apart_and_reads_add_them_up() {
        let s = Stats::default();
        TenantStats::bump(&s.tenant("acme", |_| true).to_replica);
        TenantStats::bump(&s.served("acme", "r1", |_| true).reads);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                super::super::per_worker::enter_worker(0);
                let mine = s.tenant("acme", |_| true);
                assert_eq!(mine.counts().to_replica, 0, "a worker's own counters");
                TenantStats::bump(&mine.to_replica);
                TenantStats::bump(&s.served("acme", "r1", |_| true).reads);
            });
        });
        assert_eq!(s.snapshot()[0].1.to_replica, 2);
        assert_eq!(s.served_counts("acme", "r1"), (2, 0));
        assert_eq!(s.served_where("r1", |_| true), (2, 0));
        assert_eq!(s.tenants().len(), 2, "one entry per worker");
    }
}
