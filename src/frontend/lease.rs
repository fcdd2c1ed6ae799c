//! When a session borrows a backend connection and when it gives it back: leased for a
//! statement, kept while something lives on it (a transaction, a pin) or while the next
//! statement may look back at this one's answer, returned to the tenant's pool otherwise.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::client::{ClientState, Identity};
use super::error::SessionError;
use super::session::Session;
use crate::backend::held::{target_at, Held, LeaseKey};
use crate::backend::pool::Ask;
use crate::backend::{BackendConn, BackendError, Credentials, KeyFields, Proof};
use crate::config::{Secret, TenantConfig};
use crate::protocol::handshake::response_shaping;
use crate::router::route::Target;
use crate::router::{Class, Classification};
use crate::state::RuntimeState;

/// What a lease needs of the session, borrowed field by field: its held connections (they
/// cache the lease keys), its login and its state. So the session's tenant stays borrowed
/// across the wait instead of its `Arc` being cloned, a write per statement to a cache line
/// that every session of the tenant, on every worker, shares.
pub(super) struct Lessee<'s> {
    pub held: &'s mut Held,
    pub who: &'s Identity,
    pub st: &'s ClientState,
    pub id: u32,
}

impl<'s> Lessee<'s> {
    /// A connection to `t` at `addr` from the tenant's pool (a new one while under
    /// `pool_max`, over `tls` when given), not yet in the session's state. The caller has
    /// tried [`take_own`](Self::take_own) first.
    pub(super) async fn lease(
        self,
        rt: &RuntimeState,
        (tenant, t, addr): (&TenantConfig, Target, &str),
        tls: Option<&tokio_rustls::TlsConnector>,
    ) -> Result<BackendConn, BackendError> {
        let (id, st) = (self.id, self.st);
        let lk = self.lease_key(rt, tenant, t, addr);
        let ask = ask(rt, lk, st, id);
        let db = st.schema.as_deref();
        let connect =
            || BackendConn::connect(lk.key.clone(), &lk.creds, db, rt.connect_timeout, tls);
        let mut conn = rt.shared.pools.lease(&ask, connect).await?;
        serves(&mut conn, lk);
        Ok(conn)
    }

    /// [`lease`](Self::lease)'s common case without its future: an idle connection of the
    /// session's own login on this worker. None: lease.
    pub(super) fn take_own(
        self,
        rt: &RuntimeState,
        (tenant, t, addr): (&TenantConfig, Target, &str),
    ) -> Option<BackendConn> {
        let (id, st) = (self.id, self.st);
        let lk = self.lease_key(rt, tenant, t, addr);
        let mut conn = rt.shared.pools.take_own(&ask(rt, lk, st, id))?;
        serves(&mut conn, lk);
        Some(conn)
    }

    /// The pool key, credentials, group and counters for `t`, cached in `held` while the
    /// config and the server's address are the ones they were made for (and until the
    /// client's login changes), and shared with the worker's other sessions of that login.
    fn lease_key(
        self,
        rt: &RuntimeState,
        tenant: &TenantConfig,
        t: Target,
        addr: &str,
    ) -> &'s LeaseKey {
        let who = self.who;
        self.held.lease_key(t, &rt.config, &tenant.name, addr, || {
            let hash = login_hash(tenant, addr, who);
            let same = |k: &LeaseKey| same_login(k, tenant, addr, who);
            rt.shared.pools.lease_key(&rt.config, hash, same, || {
                new_lease_key(rt, tenant, addr, who)
            })
        })
    }
}

/// What the pool is asked for: a connection of `lk`, best in the session's state.
fn ask<'a>(rt: &RuntimeState, lk: &'a LeaseKey, st: &'a ClientState, id: u32) -> Ask<'a> {
    Ask {
        key: &lk.key,
        group: &lk.group,
        schema: st.schema.as_deref(),
        fp: st.vars.fp(),
        owner: st.vars.applied(id).owner,
        timeout: rt.pool_timeout,
        creds: &lk.creds,
    }
}

/// A leased connection counts its statements for the lease key's tenant and server.
fn serves(conn: &mut BackendConn, lk: &LeaseKey) {
    if !Arc::ptr_eq(&conn.served, &lk.served) {
        conn.served = Arc::clone(&lk.served);
    }
}

/// How long a session idle after a write keeps the write's connection for its answer
/// (ROW_COUNT(), `@@last_gtid`): an application asks within milliseconds if at all, and
/// while the connection is kept no other session can have it.
pub(super) const LOOK_BACK_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

impl Session {
    /// The connection the session keeps only so that its next statement may ask about the
    /// previous one's answer, if any: idle, it gives way to a session waiting for it.
    pub(super) fn kept_for_answer(&self) -> Option<Target> {
        self.st.look_back.filter(|&t| !self.bound_to(t))
    }

    /// The connection kept for the previous statement's answer goes back to the pool after
    /// [`LOOK_BACK_HOLD`] idle: when only a write's answer is kept, or when another session
    /// waits for the connection (warnings, an error). The write's GTID, if a read of the
    /// session must wait for it and it is not known yet, is asked first (`@@last_gtid`
    /// belongs to that connection).
    pub(super) async fn let_answer_go(&mut self, rt: &RuntimeState) {
        let Some(t) = self.st.look_back else {
            return;
        };
        if self.gtid_pending(t) {
            // A primary that does not answer: the read that needs the position finds out.
            let _ = self.causal_position(rt).await;
        }
        self.st.look_back = None;
        self.st.answer_gone = true;
        self.end_leases(rt, std::time::Instant::now());
        self.publish_if_changed();
    }

    /// A statement asking about a write's answer (ROW_COUNT(), `@@last_gtid`, SHOW
    /// WARNINGS) after [`let_answer_go`](Self::let_answer_go): an error saying
    /// so, not the answer of whatever ran last on another connection. Not a statement that
    /// also reports on the previous one among much else (SHOW VARIABLES, listing
    /// `last_gtid`): it runs.
    fn check_answer_kept(&self, c: &Classification) -> Result<(), SessionError> {
        if !self.st.answer_gone || c.class != Class::LastBackend {
            return Ok(());
        }
        Err(SessionError::reply(
            1105,
            "HY000",
            format!(
                "Switchyard gave the server connection of the previous statement back to the pool after the session was idle for {} s (after a write, or while another session waited for the connection): what that statement answered (rows changed, GTID, warnings, its error) is no longer there to ask about; ask right after the statement",
                LOOK_BACK_HOLD.as_secs()
            ),
        ))
    }

    /// Gives back, at the end of a command (`now`), every connection the session no longer
    /// needs.
    pub(super) fn end_leases(&mut self, rt: &RuntimeState, now: std::time::Instant) {
        // By index, not by a list of targets: this runs after every command.
        for i in 0..self.held.slots() {
            let t = target_at(i);
            if self.held.get(t).is_some() && !self.keeps(t) {
                if let Some(conn) = self.held.take(t) {
                    rt.shared.pools.put_back_at(conn, now);
                }
            }
        }
        self.publish_held();
    }

    /// Whether the connection to `t` answers LAST_INSERT_ID() other than the session would.
    pub(super) fn insert_id_differs(&self, t: Target) -> bool {
        self.held
            .get(t)
            .is_some_and(|c| c.last_insert_id != self.st.last_insert_id)
    }

    /// Before `sql` runs on `t`: a statement that reads LAST_INSERT_ID() sees the session's
    /// own value, not what the connection's previous session left (`DO LAST_INSERT_ID(n)`
    /// sets it without a result or a warning).
    pub(super) async fn restore_insert_id(
        &mut self,
        t: Target,
        sql: &[u8],
    ) -> Result<(), SessionError> {
        let want = self.st.last_insert_id;
        let Some(conn) = self.held.get_mut(t) else {
            return Ok(());
        };
        if conn.last_insert_id == want || !mentions_last_insert_id(sql) {
            // Nothing to do: the common case costs one comparison.
            return Ok(());
        }
        crate::backend::restore::insert_id(conn, want)
            .await
            .map_err(|e| self.step_failed(t, e))
    }

    /// A command Switchyard runs on `t` before the session's statement failed: the server's
    /// refusal is the statement's answer; anything else lost the connection.
    fn step_failed(&mut self, t: Target, e: BackendError) -> SessionError {
        match e {
            BackendError::Server(e) => SessionError::Reply(e),
            e => self.connection_failed(t, e),
        }
    }

    /// Before a statement that asks about the session's previous one (SHOW WARNINGS,
    /// ROW_COUNT(), FOUND_ROWS()) runs on `t`, the connection is made to hold that
    /// statement's answer:
    /// - one Switchyard answered with an error of its own is raised there (SIGNAL), as the
    ///   server would hold it had it refused the statement;
    /// - a connection that did not run the statement last (it went back to the pool,
    ///   nothing there being expected to be asked about, and came back or another came)
    ///   answers about another session's statement, or Switchyard's own command: that is
    ///   cleared. The session's own answer had no warnings, or its connection would have
    ///   stayed.
    pub(super) async fn put_back_own_answer(&mut self, t: Target) -> Result<(), SessionError> {
        use crate::backend::restore;
        let id = self.id;
        let own_error = self.st.own_error.take();
        let Some(conn) = self.held.get_mut(t) else {
            return Ok(());
        };
        let done = match own_error {
            Some(e) => restore::raise(conn, e.code, e.state.as_ref(), &e.message).await,
            None if conn.answer_of == id => return Ok(()),
            None => restore::forget_answer(conn).await,
        };
        match done {
            Ok(()) => {
                conn.answer_of = id;
                Ok(())
            }
            Err(e) => Err(self.step_failed(t, e)),
        }
    }

    /// Before a statement that reads what a write can leave on its connection unnamed (a
    /// sequence's last value, moved by a column's `DEFAULT NEXTVAL(s)`; a user variable a
    /// trigger set) runs on `t`: a connection another session wrote on since its last reset
    /// may hold that session's values, and nothing pinned for them, so it is reset and
    /// brought back to the session's state first (its own user variables are replayed), and
    /// answers as a lone session's would (NULL) rather than with another session's value.
    /// Not when the session moved a sequence itself (its values are on its connection) or
    /// keeps state there (a transaction, a pin), which a reset would take.
    pub(super) async fn clear_what_others_left(
        &mut self,
        rt: &RuntimeState,
        t: Target,
    ) -> Result<(), SessionError> {
        use crate::backend::restore;
        if self.st.pins.moved_sequence() || self.st.lives_on(t) {
            return Ok(());
        }
        let id = self.id;
        let Some(conn) = self.held.get_mut(t) else {
            return Ok(());
        };
        if !conn.writers.other_than(id) {
            return Ok(());
        }
        let wanted = self.st.wanted(id);
        let cleared = async {
            restore::reset(conn).await?;
            restore::restore(conn, &wanted).await
        };
        let done = tokio::time::timeout(rt.connect_timeout, cleared)
            .await
            .unwrap_or(Err(BackendError::StateTimeout));
        match done {
            Ok(_) => {
                conn.count_restore(crate::backend::lease::Restore::Reset);
                Ok(())
            }
            Err(e) => {
                // Reset, then restored only partly: marked clean, it would go back to the
                // pool with some of this session's SETs for the next session to inherit.
                self.held.take(t);
                Err(self.step_failed(t, e))
            }
        }
    }

    /// A statement that does not ask about the previous one lets that one's connection go
    /// before it is routed: a session must not hold a connection while it waits for another
    /// (a lease, a shared position lookup), or sessions could wait on each other. The
    /// primary connection of a write whose GTID is unknown stays until the session's next
    /// read has asked it for `@@last_gtid` (consistency `session`; the wider scopes ask the
    /// primary's position on any connection). A statement asking about a write's answer
    /// already let go gets an error ([`check_answer_kept`](Self::check_answer_kept)).
    pub(super) fn forget_look_back(
        &mut self,
        rt: &RuntimeState,
        c: &Classification,
    ) -> Result<(), SessionError> {
        self.check_answer_kept(c)?;
        let Some(t) = self.st.look_back else {
            return Ok(());
        };
        let asks_last_gtid = t == Target::Primary
            && self.st.causal.is_stale()
            && (c.hints.consistency.is_some()
                || self
                    .tenant
                    .as_ref()
                    .is_some_and(|t| t.consistency == crate::config::Consistency::Session));
        if c.class == Class::LastBackend || c.effects.looks_back || asks_last_gtid {
            return Ok(());
        }
        self.st.look_back = None;
        if !self.keeps(t) {
            if let Some(conn) = self.held.take(t) {
                rt.shared.pools.put_back(conn);
            }
        }
        Ok(())
    }

    /// Before the session waits for a lease on `t`: lets go of the connections it holds on
    /// other targets that nothing still needs. A session must not hold a connection while it
    /// waits for another, or sessions wait on each other until the pool gives up: one whose
    /// read left a warning on a replica and then waits for the primary (USE, a prepare, a
    /// ping: commands that route without [`Session::forget_look_back`]), while the session
    /// holding the primary waits for that replica; or one that, trying replicas in turn for
    /// its write's GTID, holds the first while it waits for the second.
    pub(super) fn let_others_go(&mut self, rt: &RuntimeState, t: Target) {
        for i in 0..self.held.slots() {
            let other = target_at(i);
            if other == t || self.held.get(other).is_none() || self.needs_while_waiting(other) {
                continue;
            }
            if self.st.look_back == Some(other) {
                self.st.look_back = None;
            }
            if let Some(conn) = self.held.take(other) {
                rt.shared.pools.put_back(conn);
            }
        }
    }

    /// When a lease of `t` may wait (no idle connection at hand): lets go of the
    /// connections the session keeps only for its multi-statement option, which its next
    /// lease there replays. Kept, a session with multi-statements on that waited for a
    /// replica and one with a cursor open there that waited for the primary waited on each
    /// other until the pool gave up. Not sooner: while connections are at hand, keeping
    /// them saves setting the option back and again, a round trip each.
    pub(super) fn let_option_go(&mut self, rt: &RuntimeState, t: Target) {
        if self.st.vars.set_option.is_none() || self.state_lost {
            return;
        }
        for i in 0..self.held.slots() {
            let other = target_at(i);
            if other == t
                || self.held.get(other).is_none()
                || self.st.lives_on(other)
                || self.gtid_pending(other)
            {
                continue;
            }
            if self.st.look_back == Some(other) {
                self.st.look_back = None;
            }
            if let Some(conn) = self.held.take(other) {
                // The login's option back before another session gets it.
                rt.shared.pools.release(conn, false);
            }
        }
    }

    /// What keeps a connection while the session waits for another: what it cannot give
    /// up, and the primary's connection of a write whose GTID its read has yet to ask for.
    /// A previous statement's answer (warnings, FOUND_ROWS()) is given up: the command
    /// that waits for another connection does not ask about it.
    fn needs_while_waiting(&self, t: Target) -> bool {
        self.bound_to(t) || self.gtid_pending(t)
    }

    /// Whether `t` is the primary's connection of a write whose GTID a read has yet to ask
    /// for (`@@last_gtid` belongs to that connection).
    fn gtid_pending(&self, t: Target) -> bool {
        // Inside a transaction the write has no GTID yet: `@@last_gtid` would answer the
        // connection's previous commit (the COMMIT marks the position unknown again).
        t == Target::Primary
            && self.st.look_back == Some(t)
            && self.st.causal.is_stale()
            && self.st.txn.is_none()
    }

    /// Whether the session keeps the connection to `t` between statements: what lives there
    /// would be lost, it is not known what would be (lost state), or its COM_SET_OPTION
    /// would cost a round trip each way on every lease.
    fn bound_to(&self, t: Target) -> bool {
        self.st.lives_on(t) || self.st.vars.set_option.is_some() || self.state_lost
    }

    /// Whether the connection to `t` must stay with the session after this command: what
    /// lives there would be lost, or the next statement may ask about this one's answer
    /// (its warnings, error, ROW_COUNT(), FOUND_ROWS(), @@last_gtid).
    fn keeps(&self, t: Target) -> bool {
        self.bound_to(t) || self.st.look_back == Some(t)
    }
}

/// Where a worker's sessions look for a lease key their login shares (see
/// [`same_login`]).
fn login_hash(tenant: &TenantConfig, addr: &str, who: &Identity) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    (&tenant.name, addr, &who.user.name).hash(&mut h);
    (who.caps, who.ext_caps, who.collation).hash(&mut h);
    h.finish()
}

/// The login of this client's backend connections to a tenant: the tenant's own when it
/// has one, else the client's. Borrowed, so a cached key is checked without a copy.
struct BackendLogin<'a> {
    user: &'a str,
    proof: LoginProof<'a>,
}

enum LoginProof<'a> {
    /// The tenant's `backend_password`.
    Password(&'a Secret),
    /// What the client's own login proved.
    Client(&'a Proof),
}

impl<'a> BackendLogin<'a> {
    fn of(tenant: &'a TenantConfig, who: &'a Identity) -> Self {
        match (&tenant.backend_user, &tenant.backend_password) {
            (Some(user), Some(password)) => BackendLogin {
                user,
                proof: LoginProof::Password(password),
            },
            _ => BackendLogin {
                user: &who.user.name,
                proof: LoginProof::Client(&who.proof),
            },
        }
    }

    fn credentials(&self) -> Credentials {
        Credentials {
            user: self.user.to_owned(),
            proof: match self.proof {
                LoginProof::Password(p) => Proof::Password(p.clone()),
                LoginProof::Client(p) => p.clone(),
            },
        }
    }

    /// Whether `c` is [`credentials`](Self::credentials), compared in place.
    fn is(&self, c: &Credentials) -> bool {
        c.user == self.user
            && match self.proof {
                LoginProof::Password(p) => matches!(&c.proof, Proof::Password(q) if q == p),
                LoginProof::Client(p) => c.proof == *p,
            }
    }
}

/// Whether `k` is what [`new_lease_key`] would build for this login: the same server,
/// tenant, backend login and client capabilities.
fn same_login(k: &LeaseKey, tenant: &TenantConfig, addr: &str, who: &Identity) -> bool {
    BackendLogin::of(tenant, who).is(&k.creds)
        && *k.key.addr == *addr
        && *k.group.tenant == *tenant.name
        && k.key.capabilities == response_shaping(who.caps)
        && k.key.ext_capabilities == who.ext_caps
        && k.key.collation == who.collation
        && k.key.tls_ca.as_deref() == tenant.backend_tls_ca.as_deref()
}

/// The pool key, credentials, group and counters of this login's connections to `addr`.
fn new_lease_key(rt: &RuntimeState, tenant: &TenantConfig, addr: &str, who: &Identity) -> LeaseKey {
    let creds = BackendLogin::of(tenant, who).credentials();
    LeaseKey {
        key: rt.shared.pools.key(KeyFields {
            addr: addr.into(),
            user: creds.user.as_str().into(),
            capabilities: response_shaping(who.caps),
            ext_capabilities: who.ext_caps,
            collation: who.collation,
            tls_ca: tenant.backend_tls_ca.as_deref().map(Into::into),
        }),
        creds: Arc::new(creds),
        group: rt
            .shared
            .pools
            .group(&tenant.name, addr, tenant.pool_max as usize),
        served: rt
            .shared
            .stats
            .served(&tenant.name, addr, |n| rt.directory.is_named(n)),
    }
}

/// LAST_INSERT_ID() or `@@last_insert_id`, or its synonym `@@identity` (`@@session.`
/// too; a column named `identity_id` is not it).
fn mentions_last_insert_id(sql: &[u8]) -> bool {
    let at = |name: &'static [u8]| {
        sql.windows(name.len())
            .enumerate()
            .filter(move |(_, w)| w.eq_ignore_ascii_case(name))
            .map(|(i, _)| i)
    };
    if at(b"last_insert_id").next().is_some() {
        return true;
    }
    at(b"identity").any(|i| {
        let before = &sql[..i];
        let var = before.ends_with(b"@@")
            || before
                .len()
                .checked_sub(10)
                .is_some_and(|s| before[s..].eq_ignore_ascii_case(b"@@session."));
        var && !sql
            .get(i + b"identity".len())
            .is_some_and(|b| crate::router::is_ident_byte(*b))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_insert_id_is_found_in_any_case() {
        assert!(super::mentions_last_insert_id(b"select Last_Insert_Id()"));
        assert!(super::mentions_last_insert_id(b"SELECT @@IDENTITY"));
        assert!(super::mentions_last_insert_id(b"SELECT @@Session.identity"));
        assert!(!super::mentions_last_insert_id(
            b"SELECT identity_id FROM t"
        ));
        assert!(!super::mentions_last_insert_id(b"SELECT @@identity_x"));
        assert!(!super::mentions_last_insert_id(b"select 1"));
    }
}
