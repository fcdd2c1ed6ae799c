//! COM_QUERY and schema changes (USE, COM_INIT_DB): classify, check tenancy, route, relay,
//! then update the session.

use std::sync::Arc;

use super::client::Reset;
use super::error::SessionError;
use super::session::Session;
use super::tenant;
use crate::config::TenantConfig;
use crate::protocol::command::COM_INIT_DB;
use crate::protocol::scan::{Expect, Outcome};
use crate::router::route::{self, Destination, Target};
use crate::router::{Class, Classification, Refs, SetInteger};
use crate::state::RuntimeState;

impl Session {
    /// Sends what `hold_end` kept back.
    pub(super) async fn release_answer(&mut self) -> Result<(), SessionError> {
        if !std::mem::take(&mut self.hold_end) {
            return Ok(());
        }
        self.client.flush().await.map_err(SessionError::ClientGone)
    }

    /// Takes the session's new `wait_timeout` as its idle limit through Switchyard too
    /// (never above `server.idle_timeout`): a client that asked the server to drop it after
    /// N idle seconds is dropped after N seconds, as directly. Read from the SET itself, not
    /// asked of the server: a query of Switchyard's would clear the SET's warnings and
    /// ROW_COUNT() for the client. A SET the server answered with warnings (the value was
    /// adjusted) is not taken.
    fn learn_wait_timeout(&mut self, rt: &RuntimeState, sql: &[u8], o: &Outcome) {
        if o.ok.as_ref().is_none_or(|ok| ok.warnings > 0) {
            return;
        }
        let idle = rt.config.server.idle_timeout;
        self.idle_limit = match crate::router::session_integer(sql, "wait_timeout") {
            SetInteger::NotSet => return,
            SetInteger::To(secs) => std::time::Duration::from_secs(secs.max(1)).min(idle),
            // `= 10*60`, `= DEFAULT`: not read here, so Switchyard's own limit, the one a
            // client closed too early would notice.
            SetInteger::Unread => idle,
        };
        self.idle_changed = true;
    }

    /// Follows the client's character set through `SET NAMES` and the like, for the
    /// classifier (see `ClientState::multibyte`). A SET the server refused changed nothing.
    fn learn_client_charset(&mut self, sql: &[u8], o: &Outcome) {
        if o.err.is_some() {
            return;
        }
        if let Some(cs) = crate::router::client_charset(sql) {
            self.st.multibyte = crate::router::MultiByte::of_charset(&cs);
        }
    }

    pub(super) async fn com_query(
        &mut self,
        rt: &RuntimeState,
        payload: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        // The digest statistics' key comes from the classifier's pass (one lexing of a
        // SELECT, not two; none for a shape seen before), and so may the schema names.
        let q = match self.classify_now(rt, payload) {
            Some(q) => q,
            None => self.classify_later(rt, payload).await?,
        };
        let payload = &payload[..];
        self.check_schema_refs(rt, &payload[1..], &q.refs)?;
        let (c, digest) = (&*q.c, q.fingerprint);
        if c.effects.sets_password {
            return Err(super::error::password_refused());
        }
        if c.effects.kill {
            return self.kill_statement(rt, &payload[1..]).await;
        }
        if let Class::Use(db) = &c.class {
            return self.change_schema(rt, db, payload).await;
        }
        self.require_tenant(rt, c, &payload[1..], &q.refs)?;
        for db in &c.effects.use_dbs {
            self.check_same_tenant(rt, db)?;
        }
        self.run_classified(rt, c, digest, payload, Expect::ResultSets)
            .await
    }

    /// Routes and runs a statement whose class is known, retrying a read that found its
    /// replica gone before any answer reached the client. `digest`: the statement's
    /// `fingerprint_hash`.
    pub(super) async fn run_classified(
        &mut self,
        rt: &RuntimeState,
        c: &Classification,
        digest: u64,
        payload: &[u8],
        expect: Expect,
    ) -> Result<(), SessionError> {
        if let Some(paused) = self.before_statement(rt)? {
            self.wait_out_pause(rt, paused).await?;
        }
        if let Some(on) = c.hints.pin {
            self.st.pins.set_hint(on);
        }
        self.forget_look_back(rt, c)?;
        let started = std::time::Instant::now();
        if self.in_replica_txn() {
            self.in_read_only_txn(rt, c, Some(payload)).await?;
        }
        let route = route::decide(c, &self.view());
        if route.hint_refused {
            tracing::warn!(parent: &self.span(), reason = route.reason, hints = ?c.hints, "hint not honoured");
        }
        let mut t = match self.resolve_now(rt, &route) {
            Some(t) => t,
            None => self.resolve(rt, &route).await?,
        };
        if c.effects.reads_what_writes_leave() {
            self.clear_what_others_left(rt, t).await?;
        }
        let guard = self.write_guard(c);
        self.hold_end = guard.is_some();
        tracing::trace!(parent: &self.span(), target = ?t, reason = route.reason, "route");
        let mut retried = false;
        let mut outcome = loop {
            if self.insert_id_differs(t) {
                self.restore_insert_id(t, &payload[1..]).await?;
            }
            if c.class == Class::LastBackend {
                self.put_back_own_answer(t).await?;
            }
            match self.forward(t, payload, expect, None).await {
                // A replica that failed before any of its answer reached the client: the
                // read is retried once, on another replica or the primary.
                Err(e @ SessionError::Backend { .. })
                    if !retried
                        && route.dest == Destination::AnyReplica
                        && t != Target::Primary =>
                {
                    // Only this connection failed (a KILL, the server's wait_timeout): the
                    // server stays in rotation for everyone else. A server that is really
                    // down refuses the next connect, and that takes it out.
                    tracing::warn!(parent: &self.span(), error = %e, "read retried elsewhere");
                    retried = true;
                    // Not on that replica again: its other pooled connections may have died
                    // with this one (a crash) before the pool could notice.
                    self.avoid = match t {
                        Target::Replica(i) => Some(i),
                        Target::Primary => None,
                    };
                    let resolved = self.resolve(rt, &route).await;
                    self.avoid = None;
                    t = resolved?;
                }
                Err(e) => {
                    self.count(&route, t, None, c.class == Class::Read);
                    self.answer_lost(t, c);
                    return Err(e);
                }
                Ok(o) => break o,
            }
        };
        if outcome.err.is_some() {
            self.status_after_error(t, c, &mut outcome).await?;
        }
        self.count(&route, t, Some(&outcome), c.class == Class::Read);
        let sql = &payload[1..];
        self.answered = Some(self.observe(rt, t, started, digest, sql));
        self.after_statement(t, c, &outcome, payload, guard);
        if self.hold_end {
            self.release_answer().await?;
        }
        if c.class == Class::SetSession {
            self.learn_wait_timeout(rt, sql, &outcome);
            self.learn_client_charset(sql, &outcome);
        }
        Ok(())
    }

    pub(super) async fn com_init_db(
        &mut self,
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Result<(), SessionError> {
        let db = String::from_utf8_lossy(&payload[1..]).into_owned();
        self.change_schema(rt, &db, payload).await
    }

    /// USE / COM_INIT_DB: the schema must belong to a tenant the user may reach. Moving to
    /// another tenant is allowed only when nothing lives on the current tenant's servers.
    async fn change_schema(
        &mut self,
        rt: &RuntimeState,
        db: &str,
        payload: &[u8],
    ) -> Result<(), SessionError> {
        if db.is_empty() {
            // As the server answers `USE ``` or a COM_INIT_DB without a name.
            return Err(SessionError::reply(1046, "3D000", "No database selected"));
        }
        // The reloaded user (`dispatch` took it) says which tenants it may reach; the
        // session's own tenant is followed only if it stays there (a USE may leave a
        // tenant the reload removed).
        let next = self.tenant_of_schema(rt, db)?;
        let stays = self.tenant_chosen && self.tenant.as_ref().is_some_and(|t| t.name == next.name);
        if !stays {
            self.enter_tenant(rt, next)?;
        } else {
            self.notice_reload(rt)?;
        }
        // In the transaction's connection, whose answer says the transaction goes on (a
        // read-only one lives on a replica); the session's other connections follow when
        // they next serve it.
        let t = self.st.txn.unwrap_or(Target::Primary);
        self.ready(rt, t).await?;
        let expect = if payload[0] == COM_INIT_DB {
            Expect::Single
        } else {
            Expect::ResultSets
        };
        let o = self.forward(t, payload, expect, None).await?;
        self.st.last = Some(t);
        if o.err.is_none() {
            self.st.schema = Some(db.into());
            if let Some(conn) = self.held.get_mut(t) {
                conn.schema = self.st.schema.clone();
            }
        }
        self.publish();
        Ok(())
    }

    /// Makes `next` the session's chosen tenant: from another one, or from a lobby (whose
    /// tenant a reload may have made another), when nothing lives on the current one; a
    /// lobby holding state on the tenant it now chooses stays on its connections. Either
    /// way the tenant's counters and connection permit are taken.
    fn enter_tenant(
        &mut self,
        rt: &RuntimeState,
        next: Arc<TenantConfig>,
    ) -> Result<(), SessionError> {
        // As the reloaded config has it: the lookup by schema gives the session's own
        // tenant as the session holds it, which a pending reload may have changed.
        let next = rt.tenant(&next.name).unwrap_or(next);
        let same = self.tenant.as_ref().is_some_and(|t| t.name == next.name);
        if !same || self.may_switch() {
            return self.switch_tenant(rt, next);
        }
        self.tenant_chosen = true;
        self.track_tenant_stats(rt);
        self.take_permit_or_unchoose(rt)
    }

    /// The tenant's connection permit for a tenant just chosen; refused, the tenant is not
    /// chosen (the next statement that needs it asks again).
    fn take_permit_or_unchoose(&mut self, rt: &RuntimeState) -> Result<(), SessionError> {
        let taken = self.take_tenant_permit(rt);
        if taken.is_err() {
            self.tenant_chosen = false;
        }
        // PAUSE finds the statements it waits for by the tenant published: a session that
        // chose its tenant by a qualified name (`UPDATE wf_acme.t ...`, no `USE`) ran unseen,
        // and PAUSE answered while its statement still ran.
        self.publish();
        taken
    }

    fn may_switch(&self) -> bool {
        self.st.txn.is_none() && !self.st.pins.holds_server_state() && self.stmts.is_empty()
    }

    fn switch_tenant(
        &mut self,
        rt: &RuntimeState,
        next: Arc<TenantConfig>,
    ) -> Result<(), SessionError> {
        if !self.may_switch() {
            return Err(SessionError::reply(
                1179,
                "25000",
                format!(
                    "Cannot switch to tenant '{}' while a transaction, temporary table, lock, user variable or prepared statement lives on tenant '{}'",
                    next.name,
                    self.tenant.as_ref().map_or("", |t| t.name.as_str())
                ),
            ));
        }
        self.release_backends(rt);
        self.st.reset(Reset::Tenant);
        self.tenant = Some(next);
        self.tenant_chosen = true;
        self.track_tenant_stats(rt);
        self.take_permit_or_unchoose(rt)
    }

    /// Statements need a chosen tenant, except those a lobby tenant may answer.
    pub(super) fn require_tenant(
        &mut self,
        rt: &RuntimeState,
        c: &Classification,
        sql: &[u8],
        refs: &Refs,
    ) -> Result<(), SessionError> {
        if self.tenant_chosen {
            return Ok(());
        }
        let harmless = matches!(
            c.class,
            Class::Read | Class::SetSession | Class::LastBackend
        ) && c.effects.use_dbs.is_empty();
        if !harmless {
            return self.choose_tenant_by_name(rt, sql, refs);
        }
        if self.tenant.is_none() {
            self.tenant = tenant::lobby_tenant(rt, &self.who.user);
        }
        self.tenant_ref().map(|_| ())
    }

    /// A statement of a user with several tenants and no schema chosen yet (what migration
    /// tools send: `CREATE DATABASE wf_newco` right after connecting) goes to the tenant of
    /// the schema it names, as a `USE` would choose it. No name, or names of different
    /// tenants: ERR 1046 as before; a name of no tenant the user may reach: ERR 1044, as the
    /// server answers a user without rights there.
    fn choose_tenant_by_name(
        &mut self,
        rt: &RuntimeState,
        sql: &[u8],
        refs: &Refs,
    ) -> Result<(), SessionError> {
        let mut named: Option<String> = None;
        let mut several = false;
        let _ = refs.visit(sql, |name| {
            let name = String::from_utf8_lossy(name).into_owned();
            match &named {
                Some(n) if *n != name => several = true,
                _ => named = Some(name),
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        let (Some(db), false) = (named, several) else {
            return Err(super::error::no_database(&self.who.user.name));
        };
        let next = tenant::tenant_for_schema(rt, &self.who.user, &db, None)?;
        self.enter_tenant(rt, next)
    }

    /// The tenant `db` belongs to, if this client may reach it (the current tenant first).
    fn tenant_of_schema(
        &self,
        rt: &RuntimeState,
        db: &str,
    ) -> Result<Arc<TenantConfig>, SessionError> {
        tenant::tenant_for_schema(rt, &self.who.user, db, self.tenant.as_ref())
    }

    /// A schema named inside a multi-statement must not lead out of the session's tenant.
    fn check_same_tenant(&self, rt: &RuntimeState, db: &str) -> Result<(), SessionError> {
        let t = self.tenant_of_schema(rt, db)?;
        match &self.tenant {
            Some(cur) if cur.name == t.name => Ok(()),
            _ => Err(super::error::db_access_denied(&self.who.user.name, db)),
        }
    }
}
