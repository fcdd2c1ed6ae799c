//! The commands besides queries and prepared statements: COM_PING, COM_FIELD_LIST,
//! COM_STATISTICS, COM_SET_OPTION, COM_RESET_CONNECTION (COM_CHANGE_USER: `change_user.rs`).

use super::client::Reset;
use super::error::SessionError;
use super::session::Session;
use crate::protocol::command;
use crate::protocol::scan::Expect;
use crate::protocol::CapabilityFlags;
use crate::router::route::Target;
use crate::router::{Class, Classification, PrimaryReason};
use crate::state::RuntimeState;

/// COM_SET_OPTION's two options: multi-statements on (0) and off (1).
const MULTI_STATEMENTS_ON: u16 = 0;
const MULTI_STATEMENTS_OFF: u16 = 1;

impl Session {
    /// Where a command that is about the session, not the data, runs: the open transaction's
    /// backend, else the primary.
    fn session_target(&self) -> Target {
        self.st.txn.unwrap_or(Target::Primary)
    }

    /// COM_FIELD_LIST and COM_STATISTICS: on a connection the session holds (see
    /// [`held_target`](Self::held_target)), else the primary.
    pub(super) async fn com_on_held(
        &mut self,
        rt: &RuntimeState,
        payload: &[u8],
        expect: Expect,
    ) -> Result<(), SessionError> {
        // Outside the statements' path, yet about the tenant's data (a table's columns): a
        // user or tenant a reload removed gets its ERR here too.
        self.notice_reload(rt)?;
        // COM_STATISTICS before a schema is chosen is answered by a server the user may
        // reach, as a read of variables is (`mysqladmin status` of a multi-tenant user).
        if !self.tenant_chosen && expect != Expect::FieldList && self.tenant.is_none() {
            self.tenant = super::tenant::lobby_tenant(rt, &self.who.user);
        }
        // COM_FIELD_LIST names a table: it needs a chosen tenant, not the lobby.
        if !self.tenant_chosen && (expect == Expect::FieldList || self.tenant.is_none()) {
            return Err(super::error::no_database(&self.who.user.name));
        }
        let t = self.held_target();
        self.ready(rt, t).await?;
        self.forward(t, payload, expect, None).await?;
        Ok(())
    }

    /// COM_REFRESH (`mariadb-admin flush-logs`, `mariadb-dump --flush-logs`): as a FLUSH
    /// statement, once a tenant is chosen, and held while the tenant is paused. The server
    /// commits the session's transaction first, whatever its privilege check then says: a
    /// read-only one is committed on its replica and the command runs on the primary (never
    /// on a replica others share), and the answer's status ends a primary one.
    pub(super) async fn com_refresh(
        &mut self,
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Result<(), SessionError> {
        if !self.tenant_chosen {
            return Err(super::error::no_database(&self.who.user.name));
        }
        if let Some(paused) = self.before_statement(rt)? {
            self.wait_out_pause(rt, paused).await?;
        }
        let c = Classification {
            class: Class::Primary(PrimaryReason::Ddl),
            hints: Default::default(),
            effects: Default::default(),
        };
        if self.in_replica_txn() {
            self.in_read_only_txn(rt, &c, None).await?;
        }
        let t = self.session_target();
        self.ready(rt, t).await?;
        let guard = self.write_guard(&c);
        self.hold_end = guard.is_some();
        let mut o = match self.forward(t, payload, Expect::Single, None).await {
            Ok(o) => o,
            Err(e) => {
                self.answer_lost(t, &c);
                return Err(e);
            }
        };
        if o.err.is_some() {
            self.status_after_error(t, &c, &mut o).await?;
        }
        self.after_statement(t, &c, &o, payload, guard);
        self.release_answer().await
    }

    /// With a tenant, a ping checks one of its servers; without one, Switchyard itself
    /// answers. Either follows a reload first.
    pub(super) async fn com_ping(
        &mut self,
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Result<(), SessionError> {
        // A pool's health check: a removed user or tenant fails it, as its statements do, so
        // the pool drops the connection rather than keep handing it out; a moved tenant's
        // is answered by its new servers.
        self.notice_reload(rt)?;
        if self.tenant.is_none() {
            return self.send_ok(self.answer_seq).await;
        }
        let mut t = self.held_target();
        if let Err(e) = self.ready(rt, t).await {
            t = self.ping_elsewhere(rt, t, e).await?;
        }
        self.forward(t, payload, Expect::Single, None).await?;
        Ok(())
    }

    /// A ping the primary cannot answer (unreachable), from a session that holds nothing
    /// there, is answered by a replica: the session still reads, as a new one would, so a
    /// pool's health check (JDBC's `isValid`, PDO's) keeps it rather than dropping every
    /// connection for one that logs in degraded. Else `failed`.
    async fn ping_elsewhere(
        &mut self,
        rt: &RuntimeState,
        t: Target,
        failed: SessionError,
    ) -> Result<Target, SessionError> {
        let unreachable =
            matches!(&failed, SessionError::Backend { err, .. } if err.is_unreachable());
        // A session with something on the primary (a transaction, a pin, state it lost)
        // cannot go on without it: the ping says so.
        let bound = self.st.in_transaction() || self.st.pins.holds_server_state();
        if t != Target::Primary || !unreachable || bound || self.state_lost {
            return Err(failed);
        }
        // As a login checks itself on a replica: the session's read routing (its replica,
        // the tenant's fallback state) is left as it was.
        for c in self.replica_order(rt, None) {
            let r = Target::Replica(c.index);
            if self.ready(rt, r).await.is_ok() {
                return Ok(r);
            }
        }
        Err(failed)
    }

    /// Where a command that leaves the previous statement's answer alone on the server (a
    /// ping, a field list, statistics: SHOW WARNINGS still answers after them) runs: a
    /// connection the session holds (its transaction's or the primary's, else the previous
    /// statement's), else the primary. A lease taken for it would give the previous
    /// statement's connection back, and with it those warnings.
    fn held_target(&self) -> Target {
        let first = self.session_target();
        std::iter::once(first)
            .chain(self.st.look_back)
            .find(|t| self.held.get(*t).is_some())
            .unwrap_or(first)
    }

    pub(super) async fn com_set_option(
        &mut self,
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Result<(), SessionError> {
        // Short, it is option 0 to the server too (see `command::padded_field`).
        let opt = command::padded_field(payload, 1, 2) as u16;
        if opt > MULTI_STATEMENTS_OFF {
            // As the server answers an option it does not know; kept, it would be replayed
            // on every connection the session leases, and refused there each time.
            return Err(super::error::unknown_command());
        }
        let logged_in_with = self
            .who
            .caps
            .contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS);
        // Back at what the login asked for is no option to restore, and no reason to keep
        // the session's connections (mysqlnd's `multi_query` turns multi-statements off
        // again after a query that failed).
        let option = ((opt == MULTI_STATEMENTS_ON) != logged_in_with).then_some(opt);
        if self.tenant.is_none() {
            self.st.vars.set_option = option;
            return self.send_eof_like_ok().await;
        }
        let t = self.session_target();
        self.ready(rt, t).await?;
        let o = self.forward(t, payload, Expect::Single, None).await?;
        if o.err.is_none() {
            self.st.vars.set_option = option;
            if let Some(conn) = self.held.get_mut(t) {
                conn.set_option = option;
            }
            self.align_option(option).await;
        }
        Ok(())
    }

    /// Brings the other connections the session holds to its new option now, so they can
    /// go back to the pool as they are once the session no longer needs them: one whose
    /// option is not its login's is never pooled. One that fails is lost, as a failed
    /// statement's would be.
    async fn align_option(&mut self, option: Option<u16>) {
        for i in 0..self.held.slots() {
            let t = crate::backend::held::target_at(i);
            let Some(conn) = self.held.get_mut(t) else {
                continue;
            };
            if crate::backend::restore::option(conn, option).await.is_err() {
                self.held.take(t);
                self.lost_backend(t);
            }
        }
    }

    /// COM_SET_OPTION is answered with an EOF packet by servers: to a client with
    /// CLIENT_DEPRECATE_EOF, an OK packet with the EOF header (which carries the counts
    /// before the status and the warnings).
    async fn send_eof_like_ok(&mut self) -> Result<(), SessionError> {
        use crate::protocol::packets::{ok_payload, EOF_HEADER};
        let status = self.own_status();
        let deprecate_eof = CapabilityFlags::CLIENT_DEPRECATE_EOF;
        let eof = if self.who.caps.contains(deprecate_eof) {
            let mut ok = ok_payload(status, 0);
            ok[0] = EOF_HEADER;
            ok
        } else {
            let [s0, s1] = status.to_le_bytes();
            vec![EOF_HEADER, 0, 0, s0, s1]
        };
        self.client
            .send(self.answer_seq, &eof)
            .await
            .map(|_| ())
            .map_err(SessionError::ClientGone)
    }

    pub(super) async fn com_reset_connection(
        &mut self,
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Result<(), SessionError> {
        if self.tenant.is_none() || self.held.get(Target::Primary).is_none() {
            return self.reset_here(rt).await;
        }
        self.ready(rt, Target::Primary).await?;
        // Reset inside a transaction, the connection may hold a prepared XA one, which
        // MariaDB's reset leaves broken (1031 on every table): it is closed once the reset
        // is answered, never pooled, and the session's next statement gets a clean one.
        let txn_here = self.st.txn == Some(Target::Primary);
        let o = self
            .forward(Target::Primary, payload, Expect::Single, None)
            .await?;
        if let (true, Some(conn)) = (txn_here, self.held.get_mut(Target::Primary)) {
            conn.outlives_reset = true;
        }
        if o.err.is_none() {
            self.reset_state(rt);
        }
        Ok(())
    }

    /// A reset of a session that holds no primary connection: what it set lives in
    /// Switchyard (replayed on the connections it takes) or on replica connections, which
    /// go back to the pool to be reset there. Answered here as the server answers a reset,
    /// with the status a new session starts with, and no lease: a pool's check-in resets
    /// every connection it takes back (mysql-connector-python's), and with the tenant's
    /// primary connections all taken it waited `pool_timeout` for one, then failed.
    async fn reset_here(&mut self, rt: &RuntimeState) -> Result<(), SessionError> {
        self.reset_state(rt);
        // The tenant's server's global modes, not the greeting's (the first tenant's).
        self.st.server_modes = self.login_modes;
        self.send_ok(self.answer_seq).await
    }

    /// The character set the session logged in (or last changed user) with.
    pub(super) fn charset_of_login(&mut self) {
        self.st.multibyte = crate::router::MultiByte::of_collation_id(self.who.collation);
    }

    /// Forgets everything session-scoped, as the server's reset does; the primary connection
    /// was reset by the command itself, the others go back to the pool (which resets them).
    pub(super) fn reset_state(&mut self, rt: &RuntimeState) {
        // The server's reset goes back to the login's character set.
        self.charset_of_login();
        let primary = self.held.take(Target::Primary);
        for conn in self.held.drain() {
            rt.shared.pools.release(conn, true);
        }
        if let Some(mut p) = primary {
            p.session_was_reset();
            // What it answers about now is the session's own command, the reset.
            p.answer_of = self.id;
            self.held = Default::default();
            self.held.put(Target::Primary, p);
        }
        self.st.reset(Reset::Everything);
        self.stmts.clear();
        // A `SET wait_timeout` is reset with the session's other variables.
        self.idle_limit = rt.config.server.idle_timeout;
        self.idle_changed = true;
        self.track_tenant_stats(rt);
        self.publish();
    }
}
