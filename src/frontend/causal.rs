//! Reads that must see writes: the session's own (its last write's GTID from the OK
//! packet's session tracking, else `@@last_gtid` asked of the primary), the tenant's (the
//! tenant's high-water mark) or the primary's current position; then a replica that has
//! applied that position (`MASTER_GTID_WAIT` for a bounded time), else the primary.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use super::error::SessionError;
use super::session::Session;
use crate::backend::BackendError;
use crate::config::Consistency;
use crate::monitor::{Flavor, GtidPos};
use crate::router::route::Target;
use crate::state::consistency::Needed;
use crate::state::stats::TenantStats;
use crate::state::RuntimeState;

/// How long a read waits for its replica to apply the session's last write before it goes
/// to the primary instead. Replication on a healthy LAN applies a write in well under this.
const CAUSAL_WAIT: Duration = Duration::from_millis(100);

/// The same wait while the primary cannot be asked: it cannot serve the read either, so a
/// replica still applying what it received (a loaded machine, a burst of writes) is worth
/// waiting for rather than answering with the primary's connection error at once.
const CAUSAL_WAIT_PRIMARY_DOWN: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone)]
pub struct Causal {
    /// The session wrote since its write position was last read.
    stale: bool,
    /// The primary connection (its server thread id) that ran that write: `@@last_gtid`
    /// is that connection's, so it is asked there and nowhere else.
    written_on: Option<u32>,
    /// GTID position the session's reads must see.
    position: Option<String>,
    /// Replica index -> the position it was last confirmed to have.
    confirmed: Vec<Option<String>>,
}

impl Causal {
    /// A write's position is still to be asked of its primary connection.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// A reload may have changed the tenant's replicas: what each was confirmed to have
    /// is forgotten (by index, which may now name another server). The position stays
    /// while the primary does (see [`primary_moved`](Self::primary_moved)): without it
    /// every read of a session that wrote before went to the primary until its next write.
    pub fn forget_replicas(&mut self) {
        self.confirmed.clear();
        // A thread id of the old primary's connections may be one of the new primary's.
        self.written_on = None;
    }

    /// A reload moved the tenant to another primary, perhaps of another cluster whose GTID
    /// history the position is not of: the next read that must see the session's writes
    /// asks the new primary's whole position, which covers what the move brought.
    pub fn primary_moved(&mut self) {
        // Not merged with the new primary's: sequence numbers of another history may be
        // ones its replicas never reach.
        if self.position.take().is_some() {
            self.stale = true;
        }
        self.forget_replicas();
    }

    /// The session wrote, on the primary connection `on` (its thread id).
    pub fn wrote(&mut self, on: Option<u32>) {
        self.stale = true;
        self.written_on = on;
    }

    /// The primary reported the GTID of the session's last write (session tracking), so
    /// there is nothing to ask it for.
    pub fn wrote_at(&mut self, gtid: &str) {
        if let Some(pos) = clean_gtid_list(gtid) {
            self.advance(pos);
            self.stale = false;
        }
    }

    /// Takes `pos` into the position the reads must see. A MariaDB position only moves on
    /// per domain: a GTID learned after a write is its connection's last (`@@last_gtid`),
    /// which for a statement that logged nothing (a ROLLBACK, an UPDATE of no rows, a
    /// write under `sql_log_bin = 0`) is an older one, perhaps another session's on a
    /// pooled connection; and a write in another domain (`SET gtid_domain_id`) leaves the
    /// first domain's write to be waited for too. MySQL's are replaced: `gtid_executed`, a
    /// whole set, or the write's own GTID from session tracking (`OWN_GTID`), which a
    /// replica preserving the commit order applies after the session's earlier ones.
    fn advance(&mut self, pos: String) {
        let merged = self.position.as_deref().and_then(|old| {
            let mut p = GtidPos::parse(&pos).ok()?;
            p.merge(&GtidPos::parse(old).ok()?);
            Some(p.to_string())
        });
        self.position = Some(merged.unwrap_or(pos));
    }

    fn is_confirmed(&self, replica: usize, pos: &str) -> bool {
        self.confirmed.get(replica).and_then(|c| c.as_deref()) == Some(pos)
    }

    fn confirm(&mut self, replica: usize, pos: &str) {
        if self.confirmed.len() <= replica {
            self.confirmed.resize(replica + 1, None);
        }
        self.confirmed[replica] = Some(pos.to_owned());
    }
}

/// What to ask the primary for after a write. MySQL has no per-session last GTID, so its
/// whole executed set stands in: it covers the write (and perhaps a little more).
fn position_query(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "SELECT @@last_gtid",
        Flavor::MySql(..) => "SELECT @@GLOBAL.gtid_executed",
    }
}

/// A statement answering 0 once the replica has applied `pos` (waiting `secs` at most).
fn wait_query(flavor: Flavor, pos: &str, secs: f64) -> String {
    match flavor {
        Flavor::MariaDb => format!("SELECT MASTER_GTID_WAIT('{pos}', {secs})"),
        // MySQL's wait takes a timeout of 0 for none at all (MariaDB's, for an answer at
        // once): a replica that is only asked is asked without a wait.
        Flavor::MySql(..) if secs <= 0.0 => {
            format!("SELECT NOT GTID_SUBSET('{pos}', @@GLOBAL.gtid_executed)")
        }
        Flavor::MySql(..) => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{pos}', {secs})"),
    }
}

/// Whose writes a read of `scope` must see, for messages.
fn whose_writes(scope: Consistency) -> &'static str {
    match scope {
        Consistency::Session => "the session's writes",
        Consistency::Tenant => "the tenant's writes",
        _ => "the primary's writes",
    }
}

fn flavor_of(version: &[u8]) -> Flavor {
    Flavor::from_version(&String::from_utf8_lossy(version))
}

/// A GTID position as MariaDB (`0-1-42,1-2-7`) or MySQL (`3e11fa47-...:1-5,...`, tagged
/// since 8.3: `3e11fa47-...:1-5:batch_1:1-3`) prints it, with MySQL's line breaks removed:
/// safe to put in a statement (no quote, no space), or None.
fn clean_gtid_list(s: &str) -> Option<String> {
    let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let ok = !cleaned.is_empty()
        && cleaned
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b',' | b':' | b'_'));
    ok.then_some(cleaned)
}

/// The primary's position as a replica wait takes it: all it has written (MariaDB
/// `gtid_binlog_pos`), or executed (MySQL `gtid_executed`).
fn primary_position_query(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "SELECT @@GLOBAL.gtid_binlog_pos",
        Flavor::MySql(..) => "SELECT @@GLOBAL.gtid_executed",
    }
}

/// A position as the wait statement takes it (empty: nothing written yet). MariaDB's binlog
/// position may list a domain once per server that wrote to it; only the highest counts.
fn normalized(flavor: Flavor, pos: &str) -> Option<String> {
    if pos.trim().is_empty() {
        return Some(String::new());
    }
    let pos = clean_gtid_list(pos)?;
    match flavor {
        Flavor::MariaDb => GtidPos::parse(&pos).ok().map(|p| p.to_string()),
        Flavor::MySql(..) => Some(pos),
    }
}

impl Session {
    /// A replica that has the writes `scope` asks for, else the primary.
    pub(super) async fn causal_replica(
        &mut self,
        rt: &RuntimeState,
        scope: Consistency,
        max_lag: Option<Duration>,
    ) -> Result<Target, SessionError> {
        let since = Instant::now();
        let needed = match scope {
            // A session that set `sql_log_bin` may have written what no replica will ever
            // have.
            Consistency::Session if self.st.unlogged_writes => {
                self.count_consistent(|s| &s.consistent_primary);
                return Ok(Target::Primary);
            }
            Consistency::Session => self.causal_position(rt).await,
            Consistency::Tenant => self.tenant_position(rt).await,
            _ => self
                .primary_position(rt, since)
                .await
                .map(|p| (!p.is_empty()).then_some(p)),
        };
        let lookup_failed = needed.is_err();
        let pos = match needed {
            Ok(Some(pos)) => pos,
            // The primary has logged no GTID at all: only it surely has the session's writes.
            Ok(None) if scope == Consistency::Session => {
                self.count_consistent(|s| &s.consistent_primary);
                return Ok(Target::Primary);
            }
            // Nothing written yet that the read must see.
            Ok(None) => return self.any_replica(rt, max_lag).await,
            // The primary cannot be asked: wait for what is known of the writes (what
            // the session's and tenant's OK packets reported, the last position looked up
            // and the last one the monitor saw); a replica that has it serves the read.
            Err(()) => match self.known_position(rt, scope) {
                Some(pos) => pos,
                None => return self.degraded_read(rt, max_lag).await,
            },
        };
        let tenant = self.tenant_or_err()?;
        let mut asked = Asked::default();
        for (n, c) in self.replica_order(rt, max_lag).into_iter().enumerate() {
            let i = c.index;
            asked.add(i);
            if self.ready(rt, Target::Replica(i)).await.is_err() {
                continue;
            }
            let addr = tenant.replicas.get(i).map_or("", |r| r.addr.as_str());
            let ready = self.st.causal.is_confirmed(i, &pos)
                || self
                    .mark
                    .as_ref()
                    .is_some_and(|m| m.replica_has(addr, &pos));
            if ready
                || self
                    .wait_for(
                        i,
                        &pos,
                        self.patience(rt, n, lookup_failed),
                        rt.connect_timeout,
                    )
                    .await
            {
                tracing::trace!(parent: &self.span(), replica = addr, position = %pos, ready, "replica has the writes");
                self.replica_has_writes(rt, i, addr, &pos);
                self.count_consistent(|s| {
                    if ready {
                        &s.consistent_ready
                    } else {
                        &s.consistent_waited
                    }
                });
                return Ok(Target::Replica(i));
            }
        }
        tracing::debug!(parent: &self.span(), position = %pos, scope = %scope, "no replica has the writes yet");
        let e = match self.ready(rt, Target::Primary).await {
            Ok(()) => {
                self.count_consistent(|s| &s.consistent_primary);
                return Ok(Target::Primary);
            }
            Err(e) => e,
        };
        if let Some(i) = (self.replica_out_of_rotation(rt, Some(&pos), &mut asked)).await {
            self.count_consistent(|s| &s.consistent_waited);
            return Ok(Target::Replica(i));
        }
        self.count_consistent(|s| &s.consistent_primary);
        Err(SessionError::ReadBehind {
            source: Box::new(e),
            whose: whose_writes(scope),
            pos,
            asked: asked.any(),
        })
    }

    /// With the primary unable to serve, a read that must see `pos` (or that every server
    /// answers alike: `None`) asks the replicas routing left out too: the monitor takes a
    /// replica out for a check it missed on a busy machine, for lag or for stopped
    /// replication threads, yet one that has applied `pos` answers the read as truly as the
    /// primary would have (the wait proves it). Not one the data path found refusing
    /// connections or ops took offline, nor one the monitor saw writable (another
    /// primary). Only the first replica asked here waits, and only if none was asked before.
    pub(super) async fn replica_out_of_rotation(
        &mut self,
        rt: &RuntimeState,
        pos: Option<&str>,
        asked: &mut Asked,
    ) -> Option<usize> {
        let tenant = self.tenant.clone()?;
        for (i, r) in tenant.replicas.iter().enumerate() {
            let writable = (rt.monitor.as_ref())
                .is_some_and(|m| m.status_is(&r.addr, |s| s.reachable && !s.observed.read_only));
            let skip = asked.has(i) || Some(i) == self.avoid || writable;
            if skip || !rt.shared.health.is_up(&r.addr) {
                continue;
            }
            let wait = if asked.any() {
                Duration::ZERO
            } else {
                CAUSAL_WAIT_PRIMARY_DOWN
            };
            asked.add(i);
            if self.ready(rt, Target::Replica(i)).await.is_err() {
                continue;
            }
            match pos {
                Some(pos) if !self.wait_for(i, pos, wait, rt.connect_timeout).await => continue,
                Some(pos) => self.replica_has_writes(rt, i, &r.addr, pos),
                None => self.chose_replica(rt, i),
            }
            tracing::debug!(parent: &self.span(), replica = %r.addr, position = ?pos, "primary down: read on a replica out of rotation");
            return Some(i);
        }
        None
    }

    /// Replica `i` (at `addr`) has applied `pos`: remembered for the session and the
    /// tenant's mark, and the read goes there.
    fn replica_has_writes(&mut self, rt: &RuntimeState, i: usize, addr: &str, pos: &str) {
        self.st.causal.confirm(i, pos);
        if let Some(m) = &self.mark {
            m.replica_reached(addr, pos);
        }
        self.chose_replica(rt, i);
    }

    /// How long the `n`th replica tried is waited for: the first one only, longer while the
    /// primary cannot serve the read either (its position lookup failed, it refused a
    /// connection lately or failed the monitor's last check). Asked only when a wait is
    /// about to happen, so a read its replica already has costs no health lookup.
    fn patience(&self, rt: &RuntimeState, n: usize, lookup_failed: bool) -> Duration {
        if n > 0 {
            return Duration::ZERO;
        }
        let primary_down = lookup_failed
            || self.tenant.as_deref().is_some_and(|tenant| {
                let addr = rt.primary_addr(tenant);
                !rt.shared.health.is_up(addr)
                    || (rt.monitor.as_ref()).is_some_and(|m| m.status_is(addr, |s| !s.reachable))
            });
        if primary_down {
            CAUSAL_WAIT_PRIMARY_DOWN
        } else {
            CAUSAL_WAIT
        }
    }

    fn count_consistent(&self, which: impl FnOnce(&TenantStats) -> &AtomicU64) {
        if let Some(s) = &self.stats {
            TenantStats::bump(which(s));
        }
    }

    /// The tenant's writes through this Switchyard: their high-water mark when every one of
    /// them reported its GTID, else the primary's position now. A tenant not configured for
    /// this scope records no writes in its mark (a `consistency=tenant` hint there looks the
    /// position up).
    async fn tenant_position(&mut self, rt: &RuntimeState) -> Result<Option<String>, ()> {
        // Every session has its tenant's mark, but only a tenant configured for this scope
        // records its writes there: in another, an empty mark would say there is nothing
        // to wait for, not even the session's own writes.
        let configured = self
            .tenant
            .as_ref()
            .is_some_and(|t| t.consistency == Consistency::Tenant);
        let unknown = match self
            .mark
            .as_ref()
            .filter(|_| configured)
            .map(|m| m.needed())
        {
            Some(Needed::Known(pos)) => return Ok((!pos.is_empty()).then(|| pos.to_string())),
            Some(Needed::Lookup { unknown }) => Some(unknown),
            None => None,
        };
        // The lookup must start after the unknown writes counted just now ended, not only
        // after the read did: it is merged as covering all of them.
        let pos = self.primary_position(rt, Instant::now()).await?;
        if let (Some(mark), Some(unknown), Ok(p)) = (&self.mark, unknown, GtidPos::parse(&pos)) {
            mark.merge_lookup(&p, unknown);
        }
        Ok((!pos.is_empty()).then_some(pos))
    }

    /// The primary's position as of a moment after `since`, shared with every read of the
    /// tenant that arrived before the lookup started. Err if the primary cannot be asked.
    async fn primary_position(&mut self, rt: &RuntimeState, since: Instant) -> Result<String, ()> {
        let tenant = self.tenant_or_err().map_err(|_| ())?;
        let pos = match self.mark.clone() {
            Some(mark) => {
                mark.lookups
                    .after(since, || self.ask_primary_position(rt))
                    .await
            }
            None => self.ask_primary_position(rt).await.ok(),
        }
        .ok_or(())?;
        rt.shared
            .consistency
            .primary(rt.primary_addr(&tenant))
            .looked_up(&pos);
        Ok(pos)
    }

    /// Err(true) when the primary failed (it refused, timed out, or stayed busy: the reads
    /// queued behind this one would fare alike), Err(false) when only this session did (a
    /// KILL, its SETs refused).
    async fn ask_primary_position(&mut self, rt: &RuntimeState) -> Result<String, bool> {
        if let Err(e) = self.ready(rt, Target::Primary).await {
            let primarys = matches!(&e, SessionError::Backend { err, .. }
                if err.is_unreachable() || matches!(err, BackendError::PoolTimeout { .. }));
            return Err(primarys);
        }
        let conn = self.held.get(Target::Primary).ok_or(false)?;
        let flavor = flavor_of(&conn.info.version);
        let q = primary_position_query(flavor);
        let v = self.ask(Target::Primary, q, rt.connect_timeout).await;
        let v = v.map_err(|()| true)?.unwrap_or_default();
        let text = std::str::from_utf8(&v).map_err(|_| true)?;
        normalized(flavor, text).ok_or(true)
    }

    /// Switchyard's own query `sql` on the session's connection to `t`, answered within
    /// `limit`: a server that took it and never answers (hung, or a network gone quiet)
    /// costs the read that long and the connection, not the session and every read of the
    /// tenant queued behind it. Err if there is no answer; the connection is dropped unless
    /// the server answered with an error.
    async fn ask(&mut self, t: Target, sql: &str, limit: Duration) -> Result<Option<Vec<u8>>, ()> {
        let conn = self.held.get_mut(t).ok_or(())?;
        let e = match tokio::time::timeout(limit, conn.query_scalar(sql)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e @ BackendError::Server(_))) => {
                tracing::debug!(parent: &self.span(), error = %e, query = sql, "own query refused");
                return Err(());
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {limit:?}"),
        };
        tracing::debug!(parent: &self.span(), error = %e, query = sql, "own query failed");
        self.held.take(t);
        self.lost_backend(t);
        Err(())
    }

    /// The session's write position, read from the primary once after each write. Err if
    /// the primary cannot be reached.
    pub(super) async fn causal_position(
        &mut self,
        rt: &RuntimeState,
    ) -> Result<Option<String>, ()> {
        if self.st.causal.stale {
            if self.ready(rt, Target::Primary).await.is_err() {
                return Err(());
            }
            let conn = self.held.get(Target::Primary).ok_or(())?;
            let flavor = flavor_of(&conn.info.version);
            // The write's connection may have gone back to the pool since (a SET or
            // `SELECT LAST_INSERT_ID()` on the primary in between) and this be another,
            // whose `@@last_gtid` is someone else's, perhaps older: a replica that has that
            // one but not the write would then serve the read. Elsewhere the primary's
            // whole position stands in: it covers the write.
            let own = self.st.causal.written_on == Some(conn.connection_id);
            let mut pos = None;
            if own {
                pos = self.scalar_gtid(position_query(flavor), rt).await?;
            }
            // None there: the connection has logged nothing since it began or was reset
            // (COM_RESET_CONNECTION clears `@@last_gtid`), which says nothing of the
            // session's write; the whole position covers it.
            if pos.is_none() {
                pos = self.scalar_gtid(primary_position_query(flavor), rt).await?;
            }
            // A write that logged nothing keeps the position the earlier ones left.
            if let Some(pos) = pos {
                self.st.causal.advance(pos);
            }
            self.st.causal.stale = false;
        }
        Ok(self.st.causal.position.clone())
    }

    /// A GTID list `sql` answers on the session's primary connection, if any.
    async fn scalar_gtid(&mut self, sql: &str, rt: &RuntimeState) -> Result<Option<String>, ()> {
        let v = self.ask(Target::Primary, sql, rt.connect_timeout).await?;
        Ok(v.and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| clean_gtid_list(&s)))
    }

    /// The writes a read must see as far as they are known without the primary; `None`
    /// when nothing is known (MySQL positions are not merged here).
    fn known_position(&self, rt: &RuntimeState, scope: Consistency) -> Option<String> {
        let mut pos = match &self.mark {
            Some(m) if scope != Consistency::Session => m.known(),
            _ => GtidPos::default(),
        };
        let mut merge = |text: Option<String>| {
            if let Some(p) = text.and_then(|t| GtidPos::parse(&t).ok()) {
                pos.merge(&p);
            }
        };
        merge(self.st.causal.position.clone());
        if scope != Consistency::Session {
            let tenant = self.tenant.as_ref()?;
            let primary = rt.primary_addr(tenant);
            merge(rt.shared.consistency.primary(primary).last());
            let seen = rt.monitor.as_ref().and_then(|m| m.status(primary));
            merge(seen.and_then(|s| s.observed.gtid_binlog.clone()));
        }
        (!pos.is_empty()).then(|| pos.to_string())
    }

    async fn degraded_read(
        &mut self,
        rt: &RuntimeState,
        max_lag: Option<Duration>,
    ) -> Result<Target, SessionError> {
        // Per read, so at debug: the monitor and the fallback log the outage once.
        tracing::debug!(
            parent: &self.span(),
            "primary unreachable and no write position known: read not checked"
        );
        self.any_replica(rt, max_lag).await
    }

    /// Whether replica `i` has applied `pos`, waiting up to `wait` (the first choice waits,
    /// the others are only asked) and `answer` more for the answer.
    async fn wait_for(&mut self, i: usize, pos: &str, wait: Duration, answer: Duration) -> bool {
        let t = Target::Replica(i);
        let Some(conn) = self.held.get(t) else {
            return false;
        };
        let sql = wait_query(flavor_of(&conn.info.version), pos, wait.as_secs_f64());
        matches!(self.ask(t, &sql, wait + answer).await, Ok(Some(v)) if v == b"0")
    }
}

/// The replicas a read has asked, by index (beyond 64, never counted as asked: asked again).
#[derive(Default)]
pub(super) struct Asked(u64);

impl Asked {
    pub(super) fn add(&mut self, i: usize) {
        if i < 64 {
            self.0 |= 1 << i;
        }
    }

    fn has(&self, i: usize) -> bool {
        i < 64 && self.0 & (1 << i) != 0
    }

    fn any(&self) -> bool {
        self.0 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_lists_are_validated_before_use_in_sql() {
        assert_eq!(clean_gtid_list("0-1-42").as_deref(), Some("0-1-42"));
        assert_eq!(
            clean_gtid_list("0-1-42,1-2-7").as_deref(),
            Some("0-1-42,1-2-7")
        );
        let mysql =
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4e11fa47-71ca-11e1-9e33-c80aa9429562:1-9";
        assert_eq!(
            clean_gtid_list(mysql).as_deref(),
            Some(
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-9"
            )
        );
        let tagged = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:batch_1:1-3";
        assert_eq!(clean_gtid_list(tagged).as_deref(), Some(tagged));
        assert_eq!(clean_gtid_list(""), None);
        assert_eq!(clean_gtid_list("0-1-1'); DROP TABLE t; --"), None);
    }

    #[test]
    fn each_server_family_gets_its_own_statements() {
        let maria = flavor_of(b"5.5.5-10.11.6-MariaDB-0+deb12u1");
        let mysql = flavor_of(b"8.4.3");
        assert_eq!(maria, Flavor::MariaDb);
        assert_eq!(mysql, Flavor::MySql(8, 4, 3));
        assert_eq!(
            wait_query(maria, "0-1-5", 0.1),
            "SELECT MASTER_GTID_WAIT('0-1-5', 0.1)"
        );
        assert_eq!(
            wait_query(mysql, "u:1-5", 0.1),
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('u:1-5', 0.1)"
        );
        // Not `WAIT_FOR_EXECUTED_GTID_SET(..., 0)`, which waits for ever.
        assert_eq!(
            wait_query(mysql, "u:1-5", 0.0),
            "SELECT NOT GTID_SUBSET('u:1-5', @@GLOBAL.gtid_executed)"
        );
        assert_eq!(
            wait_query(maria, "0-1-5", 0.0),
            "SELECT MASTER_GTID_WAIT('0-1-5', 0)"
        );
        assert_eq!(position_query(mysql), "SELECT @@GLOBAL.gtid_executed");
        assert_eq!(position_query(maria), "SELECT @@last_gtid");
    }

    #[test]
    fn primary_positions_are_normalized_for_the_wait() {
        let maria = Flavor::MariaDb;
        assert_eq!(normalized(maria, "").as_deref(), Some(""));
        assert_eq!(
            normalized(maria, "0-1-5,0-2-9,1-1-3").as_deref(),
            Some("0-2-9,1-1-3")
        );
        assert_eq!(normalized(maria, "0-1-1'; --"), None);
        assert_eq!(
            primary_position_query(Flavor::MySql(8, 4, 0)),
            "SELECT @@GLOBAL.gtid_executed"
        );
    }

    #[test]
    fn a_position_never_moves_back() {
        let mut c = Causal::default();
        c.wrote_at("0-1-100");
        // An older GTID of the connection (the write logged nothing), another domain.
        c.wrote_at("0-1-40");
        c.wrote_at("5-1-3");
        assert_eq!(c.position.as_deref(), Some("0-1-100,5-1-3"));
        c.primary_moved();
        assert!(c.is_stale());
        assert_eq!(c.position, None);
        let mysql = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5";
        c.wrote_at(mysql);
        assert_eq!(c.position.as_deref(), Some(mysql));
    }

    #[test]
    fn confirmation_is_per_replica_and_position() {
        let mut c = Causal::default();
        c.confirm(1, "0-1-5");
        assert!(c.is_confirmed(1, "0-1-5"));
        assert!(!c.is_confirmed(1, "0-1-6"));
        assert!(!c.is_confirmed(0, "0-1-5"));
    }
}
