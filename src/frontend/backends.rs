//! The backend connections a session holds now (its tenant's primary and replicas): getting
//! one ready for a statement (leased and restored), choosing a replica, and sending a command with its answer relayed.

use std::time::Duration;

use super::client::{Reset, REPICK_EVERY};
use super::error::{Role, SessionError};
use super::lease::Lessee;
use super::session::Session;
use crate::backend::held::addr_of;
use crate::backend::lease::Restore;
use crate::backend::relay::{relay, RelayError};
use crate::backend::restore::{restore, restored_in_place};
use crate::backend::BackendError;
use crate::config::{ReplicaFallback, TenantConfig};
use crate::protocol::packets::{STATUS_IN_TRANS_READONLY, STATUS_SQL_MODES};
use crate::protocol::scan::{Expect, Outcome};
use crate::router::replicas::{replica_order, Candidate};
use crate::router::route::{Destination, Route, Target};
use crate::state::RuntimeState;

/// The address of `t` for `tenant`: its primary's where the monitor saw it (a promotion),
/// or the replica's.
fn target_addr<'a>(rt: &'a RuntimeState, tenant: &'a TenantConfig, t: Target) -> &'a str {
    match t {
        Target::Primary => rt.primary_addr(tenant),
        Target::Replica(_) => addr_of(tenant, t),
    }
}

impl Session {
    pub(super) fn tenant_or_err(&self) -> Result<std::sync::Arc<TenantConfig>, SessionError> {
        self.tenant_ref().cloned()
    }

    /// The session's tenant, borrowed: no `Arc` clone, an atomic write to a line every
    /// session of the tenant on every worker shares (see `Lessee`).
    pub(super) fn tenant_ref(&self) -> Result<&std::sync::Arc<TenantConfig>, SessionError> {
        self.tenant
            .as_ref()
            .ok_or_else(|| super::error::no_database(&self.who.user.name))
    }

    pub(super) fn backend_error(&self, t: Target, err: BackendError) -> SessionError {
        let (tenant, addr) = match &self.tenant {
            Some(tc) => (tc.name.clone(), addr_of(tc, t).to_owned()),
            None => (String::new(), String::new()),
        };
        SessionError::Backend {
            tenant,
            role: Role::of(t),
            addr,
            err,
        }
    }

    /// Makes sure there is a connection to `t` in the session's state (schema, SETs).
    pub(super) async fn ready(&mut self, rt: &RuntimeState, t: Target) -> Result<(), SessionError> {
        if self.held.get(t).is_some() {
            self.check_held(rt, t)?;
        }
        if self.held.get(t).is_none() {
            self.let_others_go(rt, t);
        }
        if self.held.get(t).is_none() && !self.take_idle(rt, t) {
            // No idle connection at hand: the lease may wait.
            self.let_option_go(rt, t);
            // The tenant borrowed, not its `Arc` cloned (see `Lessee`), by field rather than
            // through `tenant_ref`: `held` is lent mutably beside it.
            let tenant = self
                .tenant
                .as_deref()
                .ok_or_else(|| super::error::no_database(&self.who.user.name))?;
            let addr = target_addr(rt, tenant, t);
            let tls = tenant
                .backend_tls_ca
                .as_ref()
                .map(|ca| {
                    rt.backend_tls
                        .get(ca)
                        .ok_or_else(|| internal("backend TLS connector missing"))
                })
                .transpose()?;
            let lessee = Lessee {
                held: &mut self.held,
                who: &self.who,
                st: &self.st,
                id: self.id,
            };
            // A wait for a connection (the pool at its cap, a slow connect) ends at KILL
            // QUERY: a driver's query timeout must not see the statement run later.
            let killed = self.registration.entry.signals.query_raised();
            let leased = tokio::select! {
                biased;
                l = lessee.lease(rt, (tenant, t, addr), tls) => l,
                () = killed => return Err(super::error::query_interrupted()),
            };
            match leased {
                Ok(conn) => self.held.put(t, conn),
                Err(e) => {
                    if e.is_unreachable() {
                        rt.report_unreachable(addr);
                    }
                    return Err(self.backend_error(t, e));
                }
            }
        }
        let wanted = self.st.wanted(self.id);
        let conn = self
            .held
            .get_mut(t)
            .ok_or_else(|| internal("lost connection slot"))?;
        let kind = if restored_in_place(conn, &wanted) {
            // No timer for the common case: making one reads the clock and clones the
            // runtime's handle, per statement.
            Restore::None
        } else {
            // Bounded like a connect: a server that stalls on a replayed SET must not hold
            // the session for ever.
            let restored = tokio::time::timeout(rt.connect_timeout, restore(conn, &wanted))
                .await
                .unwrap_or(Err(BackendError::StateTimeout));
            match restored {
                Ok(kind) => kind,
                Err(e) => return Err(self.failed_before_statement(t, e)),
            }
        };
        if let Some(conn) = self.held.get(t) {
            conn.count_restore(kind);
        }
        Ok(())
    }

    /// [`ready`](Self::ready) without a future, when nothing needs waiting for: the
    /// connection the session holds, or an idle one of its own login on this worker, is
    /// sound and in the session's state already. False: call `ready` (which finds again
    /// what this found).
    fn ready_now(&mut self, rt: &RuntimeState, t: Target) -> bool {
        let Some(tenant) = self.tenant.as_deref() else {
            return false;
        };
        let addr = target_addr(rt, tenant, t);
        match self.held.get(t) {
            // What `check_held` would act on: a moved primary, a connection closed idle.
            Some(c) => {
                if !c.serves(addr) || !c.survived_idle() {
                    return false;
                }
            }
            None => {
                if !self.take_idle(rt, t) {
                    return false;
                }
            }
        }
        let wanted = self.st.wanted(self.id);
        let Some(conn) = self.held.get_mut(t) else {
            return false;
        };
        if !restored_in_place(conn, &wanted) {
            return false;
        }
        conn.count_restore(Restore::None);
        true
    }

    /// Puts an idle connection to `t` of the session's own login on this worker in the
    /// session's hands, if there is one: no wait, no new login.
    fn take_idle(&mut self, rt: &RuntimeState, t: Target) -> bool {
        let Some(tenant) = self.tenant.as_deref() else {
            return false;
        };
        let addr = target_addr(rt, tenant, t);
        let lessee = Lessee {
            held: &mut self.held,
            who: &self.who,
            st: &self.st,
            id: self.id,
        };
        match lessee.take_own(rt, (tenant, t, addr)) {
            Some(conn) => {
                self.held.put(t, conn);
                true
            }
            None => false,
        }
    }

    /// [`resolve`](Self::resolve)'s common case without its futures (four nested ones for
    /// a read): the primary, or the replica the session keeps, ready at once (see
    /// `ready_now`). None: resolve.
    pub(super) fn resolve_now(&mut self, rt: &RuntimeState, route: &Route) -> Option<Target> {
        let t = match route.dest {
            Destination::Primary => Target::Primary,
            Destination::Exactly(t) => t,
            Destination::AnyReplica if route.causal.is_none() => {
                Target::Replica(self.current_replica(rt, route.max_lag)?)
            }
            Destination::AnyReplica => return None,
        };
        if !self.ready_now(rt, t) {
            return None;
        }
        if let Target::Replica(i) = t {
            self.chose_replica(rt, i);
            self.note_fallback(rt, false);
        }
        Some(t)
    }

    /// Turns a route into a backend that is ready to use. A replica that cannot be reached
    /// is skipped; with none left the primary serves the read.
    pub(super) async fn resolve(
        &mut self,
        rt: &RuntimeState,
        route: &Route,
    ) -> Result<Target, SessionError> {
        let t = match route.dest {
            Destination::Primary => Target::Primary,
            Destination::Exactly(t) => t,
            Destination::AnyReplica => {
                let t = if let Some(scope) = route.causal {
                    self.causal_replica(rt, scope, route.max_lag).await?
                } else {
                    self.any_replica(rt, route.max_lag).await?
                };
                if t != Target::Primary {
                    // A chosen replica is ready already.
                    return Ok(t);
                }
                t
            }
        };
        match self.ready(rt, t).await {
            Ok(()) => Ok(t),
            Err(e) if route.any_server && !self.query_killed() => {
                let mut asked = super::causal::Asked::default();
                match self.replica_out_of_rotation(rt, None, &mut asked).await {
                    Some(i) => Ok(Target::Replica(i)),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The connection the session holds to `t`, checked before it is used again: dropped
    /// when the primary moved (a promotion) or the server closed it while it sat idle.
    fn check_held(&mut self, rt: &RuntimeState, t: Target) -> Result<(), SessionError> {
        let moved_to = {
            let tenant = self.tenant_ref()?;
            let addr = target_addr(rt, tenant, t);
            let moved = self.held.get(t).is_some_and(|c| !c.serves(addr));
            moved.then(|| addr.to_owned())
        };
        if let Some(to) = moved_to.filter(|_| self.st.txn.is_none()) {
            // The primary moved (a promotion): what lived on the old one is gone. A session
            // that kept something there (a named lock, a user variable) must not run its
            // statement without it: it ends after this ERR, as one a reload moved.
            let pin = self
                .st
                .lives_on(t)
                .then(|| self.st.pins.reason().unwrap_or("session state"));
            tracing::info!(parent: &self.span(), to, pin, "primary moved: reconnecting");
            if let Some(old) = self.held.take(t) {
                old.quit();
            }
            self.lost_backend(t);
            if let Some(pin) = pin {
                return Err(SessionError::reply(
                    1927,
                    "70100",
                    format!(
                        "Connection was killed: the tenant's {} changed, and this session's {pin} was on the old one",
                        if t == Target::Primary { "primary" } else { "replica" }
                    ),
                ));
            }
        }
        if self.held.get(t).is_some_and(|c| !c.survived_idle()) {
            self.held.take(t);
            if self.st.lives_on(t) {
                // What the session kept there (a transaction, a lock, a temporary table)
                // is gone: the client must hear of it, not get a fresh connection instead.
                self.lost_backend(t);
                let gone = std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "the server closed the session's connection while it was idle",
                );
                return Err(self.backend_error(t, BackendError::Io(gone)));
            }
            tracing::debug!(parent: &self.span(), target = ?t, "idle connection closed by the server: replaced");
        }
        Ok(())
    }

    pub(super) async fn any_replica(
        &mut self,
        rt: &RuntimeState,
        max_lag: Option<Duration>,
    ) -> Result<Target, SessionError> {
        // The common case, the replica the session reads from still eligible: no ordering
        // of the others (an allocation, random draws, each one's eligibility looked up).
        let first = self.current_replica(rt, max_lag);
        if let Some(i) = first {
            if self.try_replica(rt, i).await {
                return Ok(Target::Replica(i));
            }
        }
        for Candidate { index: i, .. } in self.replica_order(rt, max_lag) {
            if self.query_killed() {
                return Err(super::error::query_interrupted());
            }
            if Some(i) != first && self.try_replica(rt, i).await {
                return Ok(Target::Replica(i));
            }
        }
        if self.query_killed() {
            return Err(super::error::query_interrupted());
        }
        self.note_fallback(rt, true);
        match &self.tenant {
            Some(t) if t.replica_fallback == ReplicaFallback::Error && !t.replicas.is_empty() => {
                Err(SessionError::reply(
                    1105,
                    "HY000",
                    format!(
                        "No replica of tenant '{}' can serve reads now (down, lagging or offline) and replica_fallback = \"error\"",
                        t.name
                    ),
                ))
            }
            _ => Ok(Target::Primary),
        }
    }

    /// Whether KILL QUERY ended the statement under way while it waited or was readied.
    fn query_killed(&self) -> bool {
        self.registration.entry.signals.query_pending()
    }

    /// Readies replica `i` for the read; false (logged) if it cannot be reached.
    async fn try_replica(&mut self, rt: &RuntimeState, i: usize) -> bool {
        match self.ready(rt, Target::Replica(i)).await {
            Ok(()) => {
                self.chose_replica(rt, i);
                self.note_fallback(rt, false);
                true
            }
            // Killed while it waited: no fault of the replica's.
            Err(_) if self.query_killed() => false,
            Err(e) => {
                tracing::warn!(parent: &self.span(), error = %e, "replica skipped");
                false
            }
        }
    }

    /// Logs when a tenant's reads start or stop falling back to the primary.
    pub(super) fn note_fallback(&self, rt: &RuntimeState, falling_back: bool) {
        let Some(tenant) = &self.tenant else {
            return;
        };
        if tenant.replicas.is_empty() || !rt.shared.health.note_fallback(&tenant.name, falling_back)
        {
            return;
        }
        if falling_back {
            tracing::warn!(tenant = %tenant.name, "no replica available: reads go to the primary");
        } else {
            tracing::info!(tenant = %tenant.name, "a replica is available again: reads go to replicas");
        }
    }

    /// The replica the session reads from, while it is eligible and the session stays there.
    fn current_replica(&mut self, rt: &RuntimeState, max_lag: Option<Duration>) -> Option<usize> {
        let i = self.kept_replica()?;
        let tenant = self.tenant.as_ref()?;
        let r = tenant.replicas.get(i)?;
        let usable = rt.replica_usable_memo(tenant, &r.addr, max_lag, &mut self.eligible);
        (Some(i) != self.avoid && usable).then_some(i)
    }

    /// The replica the next read should stay on: for good with read-your-writes, else until
    /// [`REPICK_EVERY`] has passed.
    fn kept_replica(&self) -> Option<usize> {
        let monotonic = self
            .tenant
            .as_ref()
            .is_some_and(|t| t.consistency >= crate::config::Consistency::Session);
        (self.st.sticky).filter(|_| monotonic || self.st.keeps_replica())
    }

    /// Eligible replicas in the order to try them (see `router::replicas`), each with the
    /// sessions of this worker reading from it, this one not counted.
    pub(super) fn replica_order(
        &self,
        rt: &RuntimeState,
        max_lag: Option<Duration>,
    ) -> Vec<Candidate> {
        let Some(tenant) = &self.tenant else {
            return Vec::new();
        };
        let own = (self.seat.as_ref()).filter(|s| s.is_local(&rt.shared.readers));
        let readers = rt.shared.readers.local();
        let eligible = (tenant.replicas.iter().enumerate())
            .filter(|(i, r)| Some(*i) != self.avoid && rt.replica_usable(tenant, &r.addr, max_lag))
            .map(|(index, r)| {
                let mine = own.is_some_and(|s| s.is_on(&r.addr));
                Candidate {
                    index,
                    weight: r.weight,
                    readers: readers.count(&r.addr).saturating_sub(u32::from(mine)),
                }
            });
        replica_order(eligible, self.kept_replica())
    }

    /// Sessions that promise read-your-writes stay on one replica while it is eligible;
    /// the others for [`REPICK_EVERY`]. The session is counted on the replica it reads
    /// from (see `state::readers`) from the choice on.
    pub(super) fn chose_replica(&mut self, rt: &RuntimeState, i: usize) {
        if self.st.sticky != Some(i) || !self.st.keeps_replica() {
            self.st.sticky = Some(i);
            self.st.sticky_until = (self.st.last_end).and_then(|t| t.checked_add(REPICK_EVERY));
            self.seat_on(rt, i);
        }
    }

    /// Counts the session on replica `i` of its tenant, on this worker.
    pub(super) fn seat_on(&mut self, rt: &RuntimeState, i: usize) {
        let Some(addr) = (self.tenant.as_ref()).and_then(|t| t.replicas.get(i)) else {
            return;
        };
        let readers = &rt.shared.readers;
        let seated =
            (self.seat.as_ref()).is_some_and(|s| s.is_on(&addr.addr) && s.is_local(readers));
        if !seated {
            // The new seat first: the old one's count never reads as free in between.
            self.seat = Some(readers.seat(&addr.addr));
        }
    }

    /// A fetch or reset of a statement whose cursor lives on a connection the session's
    /// later statements may not have run on (a cursor opened by an autocommit read on a
    /// replica, then BEGIN, `SET autocommit = 0` or a SET of `sql_mode` run on the
    /// primary): its answer's status is that connection's. The server answers with the
    /// session's flags: its transaction, autocommit and the modes a driver escapes strings
    /// by.
    fn flags_from_elsewhere(&self, payload: &[u8]) -> Option<u16> {
        use crate::protocol::command::{COM_STMT_FETCH, COM_STMT_RESET};
        let stmt_command = matches!(payload.first(), Some(&(COM_STMT_FETCH | COM_STMT_RESET)));
        stmt_command.then(|| self.own_status())
    }

    /// Sends `payload` to `t` (which must be ready) and relays the answer to the client.
    pub(super) async fn forward(
        &mut self,
        t: Target,
        payload: &[u8],
        expect: Expect,
        rewrite_stmt_id: Option<u32>,
    ) -> Result<Outcome, SessionError> {
        let flags = self.flags_from_elsewhere(payload);
        let conn = self
            .held
            .get_mut(t)
            .ok_or_else(|| internal("no connection"))?;
        let mut scanner = conn.scanner(expect);
        scanner.rewrite_stmt_id = rewrite_stmt_id;
        scanner.session_flags = flags;
        scanner.digest_definitions = payload.first() != Some(&crate::protocol::command::COM_QUERY);
        // Guarded here: a flush future built and polled for nothing, per statement, cost
        // more than the check.
        if self.client.pending() > 0 {
            self.client
                .flush()
                .await
                .map_err(SessionError::ClientGone)?;
        }
        let entry = &self.registration.entry;
        if entry.set_running(Some(conn.identity())) {
            entry.wait_kills().await;
        }
        // A KILL QUERY that came while the statement waited or was being readied (a
        // connection leased, restored, a replica tried after another): it never starts.
        // Looked at after `running` is set, as the KILL looks at `running` after raising
        // it: one of the two sees the other.
        if entry.signals.query_pending() {
            if entry.set_running(None) {
                entry.wait_kills().await;
                if entry.take_stray(conn.identity()) {
                    conn.outlives_reset = true;
                }
            }
            return Err(super::error::query_interrupted());
        }
        // Most commands are small and taken by the socket at once: no send future then.
        let sent = match conn.io.send_now(0, payload) {
            Some(Ok(true)) => Ok(()),
            Some(Ok(false)) => conn.io.flush().await,
            Some(Err(e)) => Err(e),
            None => conn.io.send(0, payload).await.map(drop),
        };
        let relayed = match sent {
            Ok(()) => {
                relay(
                    &mut conn.io,
                    Some(&mut self.client),
                    &mut scanner,
                    self.hold_end,
                )
                .await
            }
            Err(e) => Err(RelayError::Backend {
                err: e.into(),
                forwarded: false,
            }),
        };
        // Waits for a KILL QUERY in progress, so it never reaches the connection after
        // this session has moved on from it; one given up on may still, so that
        // connection is closed when the session lets it go.
        if entry.set_running(None) {
            entry.wait_kills().await;
            if entry.take_stray(conn.identity()) {
                conn.outlives_reset = true;
            }
        }
        match relayed {
            Ok(()) => {
                // Not from a status written over (the session's own, already known).
                if let (Some(s), None) = (scanner.outcome.status, flags) {
                    self.st.server_modes = s & (STATUS_SQL_MODES | STATUS_IN_TRANS_READONLY);
                }
                if scanner.outcome.last_insert_id != 0 {
                    conn.last_insert_id = scanner.outcome.last_insert_id;
                }
                Ok(scanner.outcome)
            }
            Err(RelayError::Client(e)) => {
                self.held.take(t);
                // A file packet of LOAD DATA LOCAL over the limit: told as the server tells
                // it, then closed (the backend's load is dropped with its connection).
                if let Some((err, seq)) = super::error::packet_too_large(&e) {
                    let _ = self.send_err(&err, seq).await;
                }
                Err(SessionError::ClientGone(e))
            }
            Err(RelayError::Backend { err, forwarded }) => {
                let e = self.connection_failed(t, err);
                Err(match (forwarded, e) {
                    (
                        true,
                        SessionError::Backend {
                            tenant,
                            role,
                            addr,
                            err,
                        },
                    ) => SessionError::BrokenResponse {
                        tenant,
                        role,
                        addr,
                        err,
                    },
                    (_, e) => e,
                })
            }
        }
    }

    /// A backend connection died: whatever state lived on it is gone. If the session kept
    /// anything there, its client connection ends after this answer, as a direct connection
    /// would have: the driver learns it and reconnects rather than run on without it.
    pub(super) fn lost_backend(&mut self, t: Target) {
        if self.st.lives_on(t) {
            self.state_lost = true;
        }
        self.st.reset(Reset::Lost(t));
    }

    /// The connection to `t` failed with `err` while it was made ready for a statement (a
    /// restore, a prepare, long data): it is dropped, and what the session kept there (a
    /// transaction, a pin), if anything, is lost with it, so its next statements fail
    /// rather than run outside the transaction the client holds. A connection the session
    /// only just took kept nothing of it.
    pub(super) fn failed_before_statement(&mut self, t: Target, err: BackendError) -> SessionError {
        let conn = self.held.take(t);
        // Refused by its server (a SET a replica rejects, a schema dropped), it is at rest:
        // closed as a client closes one. Any other failure may have left it mid-answer.
        if let (Some(conn), BackendError::Server(_)) = (conn, &err) {
            conn.quit();
        }
        if self.st.lives_on(t) {
            self.lost_backend(t);
        }
        self.backend_error(t, err)
    }

    /// The connection to `t` failed with `err`: it is dropped, what lived on it is lost
    /// (see [`lost_backend`](Self::lost_backend)), and the error names the server.
    pub(super) fn connection_failed(&mut self, t: Target, err: BackendError) -> SessionError {
        self.held.take(t);
        self.lost_backend(t);
        self.backend_error(t, err)
    }
}

pub fn internal(msg: &str) -> SessionError {
    SessionError::reply(1105, "HY000", format!("Switchyard internal error: {msg}"))
}
