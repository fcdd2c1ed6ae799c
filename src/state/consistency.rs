//! What reads must see beyond their own session: each tenant's high-water GTID position
//! (`consistency = "tenant"`) and its primary's current position, looked up once for the
//! tenant's reads that arrive together (`consistency = "global"`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::bounded::Bounded;
use super::lock::Unpoisoned;
use crate::monitor::GtidPos;

/// A tenant's writes through this Switchyard, as far as reads must see them.
#[derive(Debug, Default)]
pub struct TenantMark {
    inner: Mutex<Mark>,
    /// The tenant's primary position lookups. Per tenant, not per server: the session that
    /// looks up waits for a connection from its tenant's pool first, and another tenant's
    /// reads must not queue behind that (a full pool held them for its `pool_timeout`).
    pub lookups: PositionLookups,
}

/// A write counts from the moment its client could learn of it: the session records it
/// here before it releases the write's OK (`Session::write_guard`), so a write in flight is
/// one no client has seen done, and no read has to wait for it.
#[derive(Debug, Default)]
struct Mark {
    /// Highest GTID per domain of the tenant's writes whose GTID is known.
    pos: GtidPos,
    /// Bumped by each write whose GTID is not known (a client without session tracking, a
    /// MySQL server, a write whose answer was lost); a lookup at the primary made after it
    /// covers it.
    unknown: u64,
    /// The value of `unknown` that the last merged lookup covered.
    covered: u64,
    /// What each replica (by address) was last seen to have applied by any session's
    /// read: a read that needs no more skips the replica round trip.
    applied: HashMap<String, GtidPos>,
}

/// What a tenant-scope read must wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needed {
    /// The tenant's known writes: this position.
    Known(GtidPos),
    /// Some writes' GTIDs are unknown: the primary's current position covers them.
    /// `unknown` is the counter to hand back to [`TenantMark::merge_lookup`].
    Lookup { unknown: u64 },
}

impl TenantMark {
    /// No write was ever recorded: nothing a read could need from it.
    fn untouched(&self) -> bool {
        let m = self.lock();
        m.pos.is_empty() && m.unknown == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mark> {
        self.inner.locked()
    }

    /// A write is about to be sent; the guard ends it (with or without its GTID).
    pub fn write_started(self: &Arc<Self>) -> WriteGuard {
        WriteGuard {
            mark: Arc::clone(self),
            done: false,
        }
    }

    pub fn needed(&self) -> Needed {
        let m = self.lock();
        if m.unknown != m.covered {
            Needed::Lookup { unknown: m.unknown }
        } else {
            Needed::Known(m.pos.clone())
        }
    }

    /// Takes a position read from the primary after the read started (it covers every write
    /// answered before), and forgets the unknown writes it covers.
    pub fn merge_lookup(&self, pos: &GtidPos, unknown: u64) {
        let mut m = self.lock();
        m.pos.merge(pos);
        m.covered = m.covered.max(unknown);
    }

    /// Whether some read already saw replica `addr` apply `pos` (MariaDB positions).
    pub fn replica_has(&self, addr: &str, pos: &str) -> bool {
        let Ok(pos) = GtidPos::parse(pos) else {
            return false;
        };
        self.lock()
            .applied
            .get(addr)
            .is_some_and(|a| a.covers(&pos))
    }

    /// Replica `addr` has applied `pos` (a read waited for it there).
    pub fn replica_reached(&self, addr: &str, pos: &str) {
        let Ok(pos) = GtidPos::parse(pos) else {
            return;
        };
        let mut m = self.lock();
        let applied = m.applied.entry(addr.to_owned()).or_default();
        applied.merge(&pos);
    }

    /// What is known of the tenant's writes without asking the primary.
    pub fn known(&self) -> GtidPos {
        self.lock().pos.clone()
    }

    fn finish(&self, gtid: Option<&GtidPos>) {
        let mut m = self.lock();
        match gtid {
            Some(pos) => {
                m.pos.merge(pos);
            }
            None => m.unknown += 1,
        }
    }
}

/// A write in flight. Dropped without [`WriteGuard::done`] (an error, a lost connection),
/// it counts as a write whose GTID is unknown: it may have committed.
pub struct WriteGuard {
    mark: Arc<TenantMark>,
    done: bool,
}

impl WriteGuard {
    /// The statement was answered. If it `committed` a write, `gtid` is that write's
    /// position when the OK packet reported it (else the write counts as unknown).
    pub fn finish(mut self, committed: bool, gtid: Option<&str>) {
        self.done = true;
        if committed {
            let pos = gtid.and_then(|g| GtidPos::parse(g).ok());
            self.mark.finish(pos.as_ref());
        }
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if !self.done {
            self.mark.finish(None);
        }
    }
}

/// The gate that makes a tenant's reads arriving together share one lookup of its
/// primary's position.
#[derive(Debug, Default)]
pub struct PositionLookups {
    gate: tokio::sync::Mutex<Option<Looked>>,
}

/// One primary's position as last looked up by any tenant's read.
#[derive(Debug, Default)]
pub struct PrimaryPosition {
    /// Readable while a lookup runs.
    last: std::sync::Mutex<Option<String>>,
}

#[derive(Debug, Clone)]
struct Looked {
    started: Instant,
    /// None: the lookup failed.
    pos: Option<String>,
}

impl PrimaryPosition {
    /// The last position looked up, if any (for reads while the primary cannot be asked).
    pub fn last(&self) -> Option<String> {
        self.last.locked().clone()
    }

    pub fn looked_up(&self, pos: &str) {
        *self.last.locked() = Some(pos.to_owned());
    }
}

impl PositionLookups {
    /// The primary's position as of some moment after `since`: a lookup that started after
    /// `since` is reused; otherwise `lookup` runs (one at a time: the reads queued behind it
    /// all started before it, so they share its answer, and the primary's failure too:
    /// each asking again in turn, a primary at its pool cap or not answering held the k-th
    /// read k lookups long). `lookup` fails with `Err(true)` for the primary's failure,
    /// `Err(false)` for the asking session's own (a KILL), which the others do not share.
    /// `None` if the lookup failed.
    pub async fn after<F, Fut>(&self, since: Instant, lookup: F) -> Option<String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<String, bool>>,
    {
        let mut gate = self.gate.lock().await;
        if let Some(l) = gate.as_ref().filter(|l| l.started >= since) {
            return l.pos.clone();
        }
        let started = Instant::now();
        let pos = match lookup().await {
            Ok(pos) => Some(pos),
            Err(false) => return None,
            Err(true) => None,
        };
        *gate = Some(Looked {
            started,
            pos: pos.clone(),
        });
        pos
    }
}

/// Marks per tenant and positions per primary address, kept across reloads.
#[derive(Debug, Default)]
pub struct Consistency {
    /// Marks no session holds are dropped once the map fills up (an open cluster makes a
    /// tenant of every name clients try, and one that wrote was kept for the process's
    /// life).
    tenants: Mutex<Bounded<String, TenantMark>>,
    /// A mark that saw a write was dropped: from then on a new mark counts a write whose
    /// position is not known, so its first read that must see writes asks the primary's
    /// position, which covers the forgotten ones (a read could otherwise miss them).
    forgot_writes: std::sync::atomic::AtomicBool,
    primaries: Mutex<HashMap<String, Arc<PrimaryPosition>>>,
}

impl Consistency {
    pub fn tenant(&self, name: &str) -> Arc<TenantMark> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut m = self.tenants.locked();
        if let Some(mark) = m.get(name) {
            return Arc::clone(mark);
        }
        let mark = m.entry(name.to_owned(), |_, mark| {
            if !mark.untouched() {
                self.forgot_writes.store(true, Relaxed);
            }
            true
        });
        if self.forgot_writes.load(Relaxed) {
            mark.finish(None);
        }
        mark
    }

    /// Tenants a reload moved to another primary start new marks, which need that
    /// primary's position before the first read that must see writes: the old marks hold
    /// positions of the old servers' GTID history, which another cluster's replicas may
    /// never reach (every such read waited, then went to the primary, until a restart).
    /// The new primary's position covers whatever the move brought with it.
    pub fn primaries_moved(&self, moved: impl Fn(&str) -> bool) {
        let mut m = self.tenants.locked();
        let names: Vec<String> = m
            .iter()
            .map(|(k, _)| k)
            .filter(|k| moved(k))
            .cloned()
            .collect();
        for name in names {
            // A mark that saw no write is dropped: a new one is as good.
            let old = m.remove(name.as_str());
            if old.is_some_and(|mark| !mark.untouched()) {
                m.entry(name, |_, _| false).finish(None);
            }
        }
    }

    pub fn primary(&self, addr: &str) -> Arc<PrimaryPosition> {
        let mut m = self.primaries.locked();
        Arc::clone(m.entry(addr.to_owned()).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(s: &str) -> GtidPos {
        GtidPos::parse(s).unwrap()
    }

    #[test]
    fn known_writes_raise_the_mark() {
        let m = Arc::new(TenantMark::default());
        assert_eq!(m.needed(), Needed::Known(GtidPos::default()));
        let w = m.write_started();
        assert_eq!(
            m.needed(),
            Needed::Known(GtidPos::default()),
            "a write no client has seen done binds no read"
        );
        w.finish(true, Some("0-1-7"));
        m.write_started().finish(true, Some("0-1-5"));
        m.write_started().finish(false, None);
        assert_eq!(m.needed(), Needed::Known(pos("0-1-7")));
    }

    /// Marks of tenants that wrote were kept for the process's life, one per name an open
    /// cluster made; they are dropped when no session holds them, and a mark made after
    /// one that wrote was dropped needs the primary's position before its first read.
    #[test]
    fn marks_are_bounded_and_forgotten_writes_are_looked_up() {
        let c = Consistency::default();
        let first = c.tenant("t0");
        first.write_started().finish(true, Some("0-1-5"));
        drop(first);
        assert_eq!(c.tenant("new").needed(), Needed::Known(GtidPos::default()));
        for i in 1..10_000 {
            let m = c.tenant(&format!("t{i}"));
            m.write_started().finish(true, Some("0-1-6"));
        }
        assert!(c.tenants.locked().len() < 10_000, "pruned");
        assert!(
            matches!(c.tenant("t0").needed(), Needed::Lookup { .. }),
            "its write was forgotten: the primary's position covers it"
        );
    }

    #[test]
    fn unknown_writes_need_a_lookup_until_one_covers_them() {
        let m = Arc::new(TenantMark::default());
        m.write_started().finish(true, None);
        let Needed::Lookup { unknown } = m.needed() else {
            panic!("an unknown write needs a lookup");
        };
        // Another unknown write ends while the lookup runs: not covered by it.
        m.write_started().finish(true, None);
        m.merge_lookup(&pos("0-1-9"), unknown);
        assert!(matches!(m.needed(), Needed::Lookup { .. }));
        let Needed::Lookup { unknown } = m.needed() else {
            unreachable!()
        };
        m.merge_lookup(&pos("0-1-10"), unknown);
        assert_eq!(m.needed(), Needed::Known(pos("0-1-10")));
    }

    #[test]
    fn replicas_seen_at_a_position_are_shared_by_every_read() {
        let m = TenantMark::default();
        assert!(!m.replica_has("r:1", "0-1-5"));
        m.replica_reached("r:1", "0-1-5");
        assert!(m.replica_has("r:1", "0-1-5"));
        assert!(m.replica_has("r:1", "0-1-4"));
        assert!(!m.replica_has("r:1", "0-1-6"));
        assert!(!m.replica_has("r:2", "0-1-5"));
    }

    #[test]
    fn a_failed_write_counts_as_unknown() {
        let m = Arc::new(TenantMark::default());
        drop(m.write_started());
        assert!(matches!(m.needed(), Needed::Lookup { .. }));
    }

    /// Eight reads arriving together on `p`, each with a lookup answering `answer`: what
    /// each got, and how many lookups ran.
    async fn eight_reads(
        p: &Arc<PositionLookups>,
        answer: Result<&'static str, bool>,
    ) -> (Vec<Option<String>>, u32) {
        let lookups = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let since = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (p, lookups) = (Arc::clone(p), Arc::clone(&lookups));
            tasks.push(tokio::spawn(async move {
                p.after(since, || async {
                    lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    answer.map(str::to_string)
                })
                .await
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        (got, lookups.load(std::sync::atomic::Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_tenants_reads_arriving_together_share_one_lookup() {
        let p = Arc::new(PositionLookups::default());
        let (got, lookups) = eight_reads(&p, Ok("0-1-3")).await;
        assert_eq!(got, vec![Some("0-1-3".to_string()); 8]);
        assert_eq!(lookups, 1);
        // A read that starts later needs a lookup of its own.
        let later = Instant::now();
        let again = p.after(later, || async { Ok("0-1-4".to_string()) }).await;
        assert_eq!(again.as_deref(), Some("0-1-4"));
    }

    /// Reads queued behind a lookup that failed (the primary at its pool cap, or not
    /// answering) share its failure rather than each waiting out a lookup of its own.
    #[tokio::test]
    async fn a_failed_lookup_is_shared_too() {
        let p = Arc::new(PositionLookups::default());
        let (got, lookups) = eight_reads(&p, Err(true)).await;
        assert_eq!(got, vec![None; 8]);
        assert_eq!(lookups, 1);
        let later = Instant::now();
        let again = p.after(later, || async { Ok("0-1-4".to_string()) }).await;
        assert_eq!(again.as_deref(), Some("0-1-4"), "a later read asks again");
        // A session's own failure (a KILL while it waited) is not the others': the next
        // read of the same moment asks again.
        let since = Instant::now();
        assert_eq!(p.after(since, || async { Err(false) }).await, None);
        let own = p.after(since, || async { Ok("0-1-5".to_string()) }).await;
        assert_eq!(own.as_deref(), Some("0-1-5"));
    }
}
