//! What ops see and steer in a session: its entry in the session registry, per-tenant
//! counters, following a reload at a transaction boundary, and waiting while its tenant is
//! paused.

use std::sync::Arc;
use std::time::Instant;

use super::client::Reset;
use super::error::SessionError;
use super::session::Session;
use crate::backend::held::{addr_of, target_at};
use crate::config::{UserConfig, UserTenants};
use crate::protocol::scan::Outcome;
use crate::router::route::{Route, Target};
use crate::state::limits::{Kind, Refusal};
use crate::state::registry::SessionReport;
use crate::state::stats::TenantStats;
use crate::state::RuntimeState;

/// The parts of the session state whose change is worth publishing. Not the connections
/// it holds, which change at almost every statement: [`Session::publish_held`] stores them
/// apart.
pub(super) type PublishKey = (Option<Target>, Option<&'static str>, bool, usize);

impl Session {
    pub(super) fn publish_key(&self) -> PublishKey {
        (
            self.st.open_transaction(),
            self.st.pins.reason(),
            self.st.pins.user_variables,
            self.st.pins.cursor_count(),
        )
    }

    /// Publishes the session's state to the registry (admin's SHOW SESSIONS).
    pub(super) fn publish(&mut self) {
        self.published = self.publish_key();
        let tenant = self.tenant.as_ref();
        let report = SessionReport {
            user: self.who.user.name.clone(),
            tenant: tenant
                .filter(|_| self.tenant_chosen)
                .map(|t| t.name.clone()),
            schema: self.st.schema.as_deref().map(str::to_owned),
            transaction: self
                .st
                .open_transaction()
                .and_then(|t| tenant.map(|tc| addr_of(tc, t).to_owned())),
            pins: self.st.pins.describe(),
        };
        self.registration.entry.publish(report);
    }

    /// Publishes which backend connections the session holds, when that changed: a store
    /// to its own registry entry, made between commands.
    pub(super) fn publish_held(&mut self) {
        let mask = self.held.mask();
        if mask != self.published_held {
            self.published_held = mask;
            self.registration.entry.set_held(mask);
        }
    }

    pub(super) fn publish_if_changed(&mut self) {
        if self.publish_key() != self.published {
            self.publish();
        }
    }

    /// Takes a connection slot for the user and one for the tenant, or says which limit
    /// was hit (ERR 1203 for the user, 1040 for the tenant, as servers answer).
    pub(super) fn take_permits(&mut self, rt: &RuntimeState) -> Result<(), SessionError> {
        if self.user_permit.is_none() {
            let permit = rt.shared.limits.acquire(
                Kind::User,
                &self.who.user.name,
                self.who.user.max_connections,
            );
            self.user_permit = Some(permit.ok_or_else(|| {
                rt.shared.limits.refuse(Refusal::User);
                SessionError::reply(
                    1203,
                    "42000",
                    format!(
                        "User '{}' already has more than {} active connections (max_connections in Switchyard's config)",
                        self.who.user.name,
                        self.who.user.max_connections.unwrap_or(0)
                    ),
                )
            })?);
        }
        self.take_tenant_permit(rt)
    }

    /// The tenant's slot; called again when the session moves to another tenant.
    pub(super) fn take_tenant_permit(&mut self, rt: &RuntimeState) -> Result<(), SessionError> {
        let Some(t) = self.tenant.as_ref().filter(|_| self.tenant_chosen) else {
            self.tenant_permit = None;
            return Ok(());
        };
        self.tenant_permit = None;
        let permit = rt
            .shared
            .limits
            .acquire(Kind::Tenant, &t.name, t.max_connections);
        self.tenant_permit = Some(permit.ok_or_else(|| {
            rt.shared.limits.refuse(Refusal::Tenant);
            SessionError::reply(
                1040,
                "HY000",
                format!(
                    "Too many connections for tenant '{}' (limit {})",
                    t.name,
                    t.max_connections.unwrap_or(0)
                ),
            )
        })?);
        Ok(())
    }

    /// Points the per-tenant counters at the session's current tenant.
    pub(super) fn track_tenant_stats(&mut self, rt: &RuntimeState) {
        self.stats = self.tenant.as_ref().map(|t| {
            rt.shared
                .stats
                .tenant(&t.name, |n| rt.directory.is_named(n))
        });
        self.mark = self
            .tenant
            .as_ref()
            .map(|t| rt.shared.consistency.tenant(&t.name));
    }

    /// Counts where a statement ran and whether it failed.
    pub(super) fn count(&mut self, route: &Route, t: Target, o: Option<&Outcome>, read: bool) {
        self.ran_statement = true;
        if let (Some(conn), Some(_)) = (self.held.get(t), o) {
            TenantStats::bump(if read {
                &conn.served.reads
            } else {
                &conn.served.writes
            });
        }
        let Some(s) = &self.stats else {
            return;
        };
        let counter = match t {
            Target::Primary => &s.to_primary,
            Target::Replica(_) => &s.to_replica,
        };
        TenantStats::bump(counter);
        if route.dest == crate::router::route::Destination::AnyReplica && t == Target::Primary {
            TenantStats::bump(&s.fallbacks);
        }
        if route.hint_refused {
            TenantStats::bump(&s.hints_refused);
        }
        match o {
            None => TenantStats::bump(&s.backend_errors),
            Some(o) if o.err.is_some() => TenantStats::bump(&s.errors),
            Some(_) => {}
        }
    }

    /// Records a finished statement: latency per tenant and route, its digest, and the
    /// slow-statement log. `sql` gives the digest text the first time it is seen. Returns
    /// when it was answered (for [`Session::answered`]).
    pub(super) fn observe(
        &self,
        rt: &RuntimeState,
        t: Target,
        started: Instant,
        digest: u64,
        sql: &[u8],
    ) -> Instant {
        let now = Instant::now();
        let took = now.saturating_duration_since(started);
        let replica = matches!(t, Target::Replica(_));
        if let Some(s) = &self.stats {
            let hist = if replica {
                &s.latency_replica
            } else {
                &s.latency_primary
            };
            hist.observe(took);
        }
        rt.shared
            .digests
            .record(digest, || self.fingerprint_text(sql), replica, took);
        let slow = rt.config.server.slow_statement;
        if !slow.is_zero() && took >= slow {
            let tenant = self.tenant.as_ref();
            tracing::warn!(
                target: "switchyard::slow",
                session = self.id,
                user = %self.who.user.name,
                tenant = tenant.map_or("", |t| t.name.as_str()),
                route = if replica { "replica" } else { "primary" },
                backend = tenant.map_or("", |tc| addr_of(tc, t)),
                millis = took.as_millis() as u64,
                statement = %self.fingerprint_text(sql),
                "slow statement"
            );
        }
        now
    }

    /// Runs before each statement: follows a reload and finds whether the statement must
    /// wait out its tenant's pause (then [`wait_out_pause`](Self::wait_out_pause) with the
    /// name returned), both only at a transaction boundary (a statement inside a
    /// transaction always proceeds). Not async: the common case, no pause, costs no future.
    pub(super) fn before_statement(
        &mut self,
        rt: &RuntimeState,
    ) -> Result<Option<String>, SessionError> {
        self.notice_reload(rt)?;
        if self.st.in_transaction() {
            return Ok(None);
        }
        let Some(tenant) = self.tenant.as_ref().filter(|_| self.tenant_chosen) else {
            return Ok(None);
        };
        // Busy before looking at the gate, so a PAUSE that closes it in between still
        // sees this statement and waits for it (cleared once the answer is flushed).
        self.registration.entry.set_busy(true);
        // The common case: no allocation, one load of a flag no statement writes.
        let paused = rt.shared.pauses.is_paused(&tenant.name);
        Ok(paused.then(|| tenant.name.clone()))
    }

    /// Holds the statement while tenant `name` is paused, up to `pause_max_hold`; ends with
    /// [`SessionError::Rerun`] if the config was reloaded meanwhile.
    pub(super) async fn wait_out_pause(
        &mut self,
        rt: &RuntimeState,
        name: String,
    ) -> Result<(), SessionError> {
        let entry = &self.registration.entry;
        let mut held = false;
        // Looked at again after each wait: a new PAUSE may close the gate between the
        // resume and this statement marking itself busy.
        while rt.shared.pauses.is_paused(&name) {
            entry.set_busy(false);
            // KILL QUERY ends the wait, as the server's interrupts a statement waiting on
            // a lock (a driver's query timeout cancels so).
            let mut armed = None;
            let waited = tokio::select! {
                w = rt.shared.pauses.wait(&name, rt.pause_max_hold) => w,
                () = entry.signals.query_raised() => {
                    return Err(super::error::query_interrupted());
                }
                // Shutting down, the statement is not run: the client is told so at once,
                // not cut off without a word when the grace ends.
                _ = entry.signals.raised(true, &mut armed) => {
                    return Err(super::error::shutting_down());
                }
            };
            if waited.is_err() {
                if let Some(s) = &self.stats {
                    TenantStats::bump(&s.held_too_long);
                }
                return Err(SessionError::reply(
                    1205,
                    "HY000",
                    format!(
                        "Tenant '{name}' is paused for maintenance: statement held longer than {}",
                        crate::config::format_duration(rt.pause_max_hold)
                    ),
                ));
            }
            held = true;
            entry.set_busy(true);
        }
        if let (true, Some(s)) = (held, &self.stats) {
            TenantStats::bump(&s.held);
        }
        // A reload while it was held (the usual maintenance: pause, move the tenant, reload,
        // resume): what the command was checked and would be routed by is the old config's,
        // which would send a held write to the tenant's old primary.
        if held && !std::ptr::eq(Arc::as_ptr(&self.state.load()), rt) {
            return Err(SessionError::Rerun(None));
        }
        Ok(())
    }

    /// If a reload changed the config (one pointer compare otherwise): the user's settings
    /// are the reloaded ones at once (the tenants it may reach next, inside a transaction
    /// too), the rest is followed at a transaction boundary.
    #[inline]
    pub(super) fn notice_reload(&mut self, rt: &RuntimeState) -> Result<(), SessionError> {
        if Arc::ptr_eq(&rt.config, &self.seen_config) {
            return Ok(());
        }
        self.refresh_user(rt);
        if self.st.in_transaction() {
            return Ok(());
        }
        self.follow_reload(rt)
    }

    /// The session has followed the reloaded config: statements prepared before (inside a
    /// transaction that spanned the reload too, in the schema it then had) are checked again
    /// at their next execute.
    fn followed(&mut self, rt: &RuntimeState) {
        self.seen_config = Arc::clone(&rt.config);
        self.config_gen = self.config_gen.wrapping_add(1);
    }

    /// The user's settings as the reloaded config says them, once per reload.
    pub(super) fn refresh_user(&mut self, rt: &RuntimeState) {
        if Arc::ptr_eq(&rt.config, &self.user_config) {
            return;
        }
        self.user_config = Arc::clone(&rt.config);
        self.config_gen = self.config_gen.wrapping_add(1);
        let user = rt.user(&self.who.user.name).unwrap_or_else(|| {
            // Removed: it may reach no tenant (its statements get ERR 1044 at the
            // transaction boundary, `still_allowed`).
            let mut gone = UserConfig::clone(&self.who.user);
            gone.tenants = UserTenants::List(Vec::new());
            Arc::new(gone)
        });
        if *user != *self.who.user {
            self.tenants_narrowed |= narrows(&self.who.user.tenants, &user.tenants);
            self.who.user = user;
        }
    }

    /// The session's user still exists and may still use its tenant, as the reloaded
    /// config says: else ERR 1044 at every statement, as a removed tenant's session gets
    /// 1049 (a user removed or bound elsewhere went on with the tenant it logged in to).
    fn still_allowed(&self, rt: &RuntimeState) -> Result<(), SessionError> {
        let name = &self.who.user.name;
        let user = rt.user(name);
        let tenant = self.tenant.as_ref().map(|t| t.name.as_str());
        let allowed = user
            .as_ref()
            .is_some_and(|u| tenant.is_none_or(|t| u.tenants.allows(t)));
        if allowed {
            return Ok(());
        }
        let what = match (user.is_some(), tenant) {
            (false, _) => "was removed from Switchyard's configuration".to_string(),
            (true, t) => format!("may no longer use tenant '{}'", t.unwrap_or_default()),
        };
        Err(SessionError::reply(
            1044,
            "42000",
            format!("Access denied for user '{name}': it {what}"),
        ))
    }

    /// A reload changed the config: a removed tenant's session gets an ERR at every
    /// statement; a changed tenant's session moves to the new servers now (it is at a
    /// transaction boundary). A pinned one takes the new settings where its servers stay,
    /// and ends where they moved: its state (a named lock, a temporary table) cannot go
    /// with it, and staying would go on writing to a server that is no longer the tenant's.
    fn follow_reload(&mut self, rt: &RuntimeState) -> Result<(), SessionError> {
        let pinned = self.st.pins.holds_server_state();
        if std::mem::take(&mut self.tenants_narrowed) && self.st.pins.may_hold_sql() {
            // What it keeps on the server (a statement prepared by name, a procedure's
            // state) may name what the user can no longer reach, and no check sees it run.
            self.state_lost = true;
            return Err(SessionError::reply(
                1044,
                "42000",
                format!(
                    "Access denied for user '{}': a reload narrowed the tenants it may use, and this session's {} may reach beyond them",
                    self.who.user.name,
                    self.st.pins.reason().unwrap_or("session state")
                ),
            ));
        }
        if !self.tenant_chosen && !pinned {
            return self.follow_reload_in_lobby(rt);
        }
        let Some(current) = self.tenant.clone() else {
            self.still_allowed(rt)?;
            self.followed(rt);
            return Ok(());
        };
        let next = match rt.tenant(&current.name) {
            Some(next) => self.still_allowed(rt).map(|()| next),
            None => Err(SessionError::reply(
                1049,
                "42000",
                format!(
                    "Tenant '{}' was removed from Switchyard's configuration",
                    current.name
                ),
            )),
        };
        let next = next.inspect_err(|_| {
            // What it holds (a named lock) would stay held while every statement, the one
            // that frees it included, gets this ERR: the session ends after it instead.
            if self.st.pins.holds_server_state() {
                self.state_lost = true;
            }
        })?;
        // A tenant an open cluster made is built anew for each lookup: equal is unchanged.
        if Arc::ptr_eq(&current, &next) || *current == *next {
            self.followed(rt);
            return Ok(());
        }
        if self.st.pins.holds_server_state() {
            return self.follow_reload_pinned(rt, next);
        }
        tracing::info!(parent: &self.span(), tenant = %next.name, "session moves to the reloaded tenant settings");
        self.release_backends(rt);
        // A schema the reload gave another tenant is left, as after a DROP DATABASE: the
        // session's next unqualified statement gets ERR 1046, not the other tenant's data.
        if self.schema_given_away(rt, &next) {
            self.st.schema = None;
        }
        if current.primary != next.primary {
            self.st.causal.primary_moved();
        }
        // The tenant's mark is a new one if the reload moved its primary.
        self.mark = Some(rt.shared.consistency.tenant(&next.name));
        self.tenant = Some(next);
        self.st.reset(Reset::Reload);
        self.followed(rt);
        self.publish();
        Ok(())
    }

    /// The reloaded config gives the session's schema to a tenant other than `next`.
    fn schema_given_away(&self, rt: &RuntimeState, next: &crate::config::TenantConfig) -> bool {
        let owner = self
            .st
            .schema
            .as_deref()
            .and_then(|s| rt.tenant_of_schema(s));
        owner.is_some_and(|t| t.name != next.name)
    }

    /// A lobby (a server the user may reach, before any schema chose its tenant) is chosen
    /// again from the reloaded config: the one it had may be gone, and one an open cluster
    /// made is named after the cluster, no tenant a lookup finds.
    fn follow_reload_in_lobby(&mut self, rt: &RuntimeState) -> Result<(), SessionError> {
        let lobby = super::tenant::lobby_tenant(rt, &self.who.user);
        let same = match (&self.tenant, &lobby) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || **a == **b,
            (a, b) => a.is_none() && b.is_none(),
        };
        if !same {
            self.release_backends(rt);
            self.tenant = lobby;
            self.st.reset(Reset::Reload);
        }
        self.still_allowed(rt)?;
        self.followed(rt);
        Ok(())
    }

    fn follow_reload_pinned(
        &mut self,
        rt: &RuntimeState,
        next: Arc<crate::config::TenantConfig>,
    ) -> Result<(), SessionError> {
        let current = self.tenant.as_deref().expect("a tenant to follow");
        let schema_moved = self.schema_given_away(rt, &next);
        let stays = (0..self.held.slots())
            .map(target_at)
            .filter(|&t| self.st.lives_on(t))
            .all(|t| addr_of(current, t) == addr_of(&next, t));
        if stays && same_login(current, &next) && !schema_moved {
            // What holds no state goes back (it may be on a server the tenant left).
            for t in (0..self.held.slots()).map(target_at) {
                if !self.st.lives_on(t) {
                    self.release_backend(rt, t);
                }
            }
            self.tenant = Some(next);
            self.st.reset(Reset::Reload);
            self.followed(rt);
            self.publish();
            return Ok(());
        }
        let pin = self.st.pins.reason().unwrap_or("session state");
        tracing::warn!(parent: &self.span(), tenant = %next.name, pin, "tenant moved by a reload: the pinned session ends");
        // Closed after this ERR, its connections reset (a named lock freed), as a killed
        // connection's: the client reconnects to the tenant's new servers.
        self.state_lost = true;
        Err(SessionError::reply(
            1927,
            "70100",
            format!(
                "Connection was killed: a reload moved tenant '{}' to other servers, and this session's {pin} cannot move with it",
                next.name
            ),
        ))
    }
}

/// Whether a reload left a tenant's servers logged in to as before: a connection kept across
/// it is still one the tenant's pool would give.
fn same_login(a: &crate::config::TenantConfig, b: &crate::config::TenantConfig) -> bool {
    a.backend_user == b.backend_user
        && a.backend_password == b.backend_password
        && a.backend_tls_ca == b.backend_tls_ca
}

/// Whether a reload's tenants for a user leave out some tenant it could use before.
fn narrows(before: &UserTenants, after: &UserTenants) -> bool {
    match (before, after) {
        (_, UserTenants::All) => false,
        (UserTenants::All, _) => true,
        (UserTenants::One(t), _) => !after.allows(t),
        (UserTenants::List(ts), _) => ts.iter().any(|t| !after.allows(t)),
    }
}
