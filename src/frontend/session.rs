//! One client session: the command loop and the state that routing reads and updates.

use std::sync::Arc;
use std::time::Instant;

use super::client::{ClientState, Identity};
use super::deadline::Deadline;
use super::error::SessionError;
use super::login::Login;
use super::ops::PublishKey;
use super::prepared::{Run, Statements};
use crate::backend::held::{target_at, Held};
use crate::config::{Config, TenantConfig};
use crate::protocol::command::*;
use crate::protocol::packets::{self, STATUS_AUTOCOMMIT, STATUS_IN_TRANS};
use crate::protocol::scan::{Expect, Outcome};
use crate::protocol::{CapabilityFlags, PacketStream};
use crate::router::route::{SessionView, Target};
use crate::router::{Class, Classification, PrimaryReason};
use crate::state::consistency::{TenantMark, WriteGuard};
use crate::state::limits::Permit;
use crate::state::registry::{Registration, SessionReport};
use crate::state::signals::Signal;
use crate::state::stats::TenantStats;
use crate::state::{RuntimeState, SharedState};

pub(super) enum Flow {
    Continue,
    Quit,
}

/// How a session's command loop ended.
pub(super) enum Ran {
    Closed,
    /// Between commands, holding no server connection: it goes on on worker `.0`.
    Moving(usize),
}

pub struct Session {
    pub id: u32,
    pub(super) client: PacketStream,
    pub(super) state: SharedState,
    /// Who the client is.
    pub(super) who: Identity,
    pub(super) tenant: Option<Arc<TenantConfig>>,
    /// False while a multi-tenant user has named no schema (a lobby tenant may serve it).
    pub(super) tenant_chosen: bool,
    /// The session's state, whichever connection serves it.
    pub(super) st: ClientState,
    /// The client's prepared statements (ids, text, where each is prepared).
    pub(super) stmts: Statements,
    /// The server connections leased now.
    pub(super) held: Held,
    /// The tenant's write mark (consistency = "tenant").
    pub(super) mark: Option<Arc<TenantMark>>,
    /// The session's entry in the registry (removed when the session ends).
    pub(super) registration: Registration,
    pub(super) published: PublishKey,
    /// The `Held::mask` last published.
    pub(super) published_held: u64,
    pub(super) stats: Option<Arc<TenantStats>>,
    /// The config the session last adjusted to (a reload makes it differ).
    pub(super) seen_config: Arc<Config>,
    /// The config the user's settings were last taken from (at once after a reload, where
    /// `seen_config` waits for a transaction boundary), how many such configs the session
    /// has seen (a prepared statement is checked again for each), and whether the last of
    /// them narrowed the tenants the user may reach.
    pub(super) user_config: Arc<Config>,
    pub(super) config_gen: u32,
    pub(super) tenants_narrowed: bool,
    /// Connection slots held for the user and the tenant.
    pub(super) user_permit: Option<Permit>,
    pub(super) tenant_permit: Option<Permit>,
    /// A backend connection that held state the session cannot restore was lost: the
    /// client connection ends after the current answer.
    pub(super) state_lost: bool,
    /// The sql_mode flags of the global modes of the tenant's own server, as learned at
    /// login (see `modes_of_login_backend`): what a session starts with there.
    pub(super) login_modes: u16,
    /// A COMMIT or ROLLBACK ... RELEASE succeeded: the server ended the session (and closed
    /// the connection it ran on), so the client's connection ends after the answer.
    pub(super) released: bool,
    /// How long the client may stay silent: `server.idle_timeout`, or less once the session
    /// set its own `wait_timeout` (as the server would close it).
    pub(super) idle_limit: std::time::Duration,
    pub(super) idle_changed: bool,
    /// The next answer's last bytes wait in the client's buffer until the session has
    /// acted on it (see [`Session::write_guard`]).
    pub(super) hold_end: bool,
    /// The sequence id Switchyard's own answer to the current command starts at (2 and up
    /// after a command of 16 MB or more: the client numbered each of its packets).
    pub(super) answer_seq: u8,
    /// A replica the statement being retried must not go to (it just failed it).
    pub(super) avoid: Option<usize>,
    /// Whether the replica it reads from may take reads, as the monitor last said.
    pub(super) eligible: crate::monitor::EligibleMemo,
    /// When the statement's answer was timed (`observe`): the end of the command too, so
    /// a statement reads the clock twice, not three times.
    pub(super) answered: Option<Instant>,
    /// The session counted on the replica it reads from, for the choices of others.
    pub(super) seat: Option<crate::state::readers::Seat>,
    /// The command ran a statement: SHOW SESSIONS counts it once the session has given
    /// back what it no longer holds and published that (`end_leases`), so a reader that
    /// sees the count also sees what the session holds after the statement.
    pub(super) ran_statement: bool,
    /// The worker running the session, and the last of its balancer's calls it answered.
    worker: usize,
    answered_call: u32,
}

impl Session {
    pub fn new(
        id: u32,
        client: PacketStream,
        state: SharedState,
        host: String,
        nonce: [u8; 20],
        login: Login,
        worker: usize,
    ) -> Self {
        let rt = state.load_full();
        let report = SessionReport {
            user: login.user.name.clone(),
            ..SessionReport::default()
        };
        let registration = rt.shared.registry.register(id, &host, report);
        if *rt.shared.shutdown.borrow() {
            // Shutdown began before this session was registered: `shut_down_all` missed it.
            registration.entry.signals.raise(Signal::Shutdown);
        }
        let seen_config = Arc::clone(&login.config);
        let mut s = Session {
            id,
            client,
            state,
            who: Identity {
                host,
                nonce,
                user: login.user,
                proof: login.proof,
                caps: login.caps,
                ext_caps: login.ext_caps,
                collation: login.collation,
                failed_changes: 0,
            },
            tenant_chosen: login.tenant.is_some(),
            tenant: login.tenant,
            st: ClientState {
                schema: login.database.map(Into::into),
                server_modes: login_modes(&rt),
                ..ClientState::default()
            },
            held: Held::default(),
            mark: None,
            stmts: Statements::default(),
            registration,
            published: (None, None, false, 0),
            published_held: 0,
            stats: None,
            user_config: Arc::clone(&seen_config),
            config_gen: 0,
            tenants_narrowed: false,
            seen_config,
            user_permit: None,
            tenant_permit: None,
            state_lost: false,
            login_modes: login_modes(&rt),
            released: false,
            idle_limit: rt.config.server.idle_timeout,
            idle_changed: false,
            answered: None,
            hold_end: false,
            answer_seq: 1,
            avoid: None,
            eligible: Default::default(),
            seat: None,
            worker,
            ran_statement: false,
            answered_call: 0,
        };
        s.charset_of_login();
        s.track_tenant_stats(&rt);
        s
    }

    /// Completes the login: takes the user's and tenant's connection permits, connects to
    /// the tenant's primary (so a bad schema or backend login fails now, as it would
    /// directly) and answers OK.
    pub async fn start(&mut self, seq: u8) -> Result<(), SessionError> {
        let rt = self.state.load_full();
        if let Err(e) = self.notice_reload(&rt) {
            self.refuse_login(&e, seq).await?;
            return Err(e);
        }
        if let Err(e) = self.take_permits(&rt) {
            self.refuse_login(&e, seq).await?;
            return Err(e);
        }
        if self.tenant.is_some() {
            if let Err(e) = self.check_login_backend(&rt).await {
                self.refuse_login(&e, seq).await?;
                return Err(e);
            }
            self.modes_of_login_backend();
        }
        self.publish();
        let now = Instant::now();
        self.st.last_end = Some(now);
        self.end_leases(&rt, now);
        // Draining: refused as a server shutting down refuses it. An OK followed by the close
        // had a client's pool take the connection for sound until its first statement.
        if self.registration.entry.signals.shutting_down() {
            let e = super::error::shutting_down();
            self.refuse_login(&e, seq).await?;
            return Err(e);
        }
        let track = self
            .who
            .caps
            .contains(CapabilityFlags::CLIENT_SESSION_TRACK);
        let ok = packets::login_ok_payload(self.own_status(), self.st.schema.as_deref(), track);
        self.client
            .send(seq, &ok)
            .await
            .map_err(SessionError::ClientGone)?;
        // The login's OK is the last uncompressed packet, as from the server.
        if self.who.caps.contains(CapabilityFlags::CLIENT_COMPRESS) {
            self.client.start_compression();
        }
        Ok(())
    }

    /// Logs in to the primary so a bad schema or backend login fails now, as it would
    /// directly. With the primary unreachable, a replica checks the login instead (one out
    /// of rotation if need be) and the session starts read-only (degraded): its writes get
    /// an ERR until the primary is back.
    async fn check_login_backend(&mut self, rt: &RuntimeState) -> Result<(), SessionError> {
        match self.ready(rt, Target::Primary).await {
            Err(SessionError::Backend {
                err,
                tenant,
                role,
                addr,
            }) if err.is_unreachable() => {
                let e = SessionError::Backend {
                    err,
                    tenant,
                    role,
                    addr,
                };
                let mut asked = super::causal::Asked::default();
                let mut checked = false;
                for c in self.replica_order(rt, None) {
                    asked.add(c.index);
                    if self.ready(rt, Target::Replica(c.index)).await.is_ok() {
                        checked = true;
                        break;
                    }
                }
                // Any replica that answers checks a login as well as one in rotation.
                if !checked && (self.replica_out_of_rotation(rt, None, &mut asked).await).is_none()
                {
                    return Err(e);
                }
                tracing::warn!(parent: &self.span(), error = %e, "primary unreachable: session starts read-only");
                Ok(())
            }
            other => other,
        }
    }

    /// The sql_mode flags of the tenant's own server, from the connection that checked the
    /// login: the greeting's are those of the server Switchyard learned its greeting from
    /// (the first tenant's), and tenants' servers may run other global modes.
    fn modes_of_login_backend(&mut self) {
        let checked = (0..self.held.slots()).find_map(|i| self.held.get(target_at(i)));
        if let Some(conn) = checked {
            let modes = conn.info.status & packets::STATUS_SQL_MODES;
            self.st.server_modes = (self.st.server_modes & !packets::STATUS_SQL_MODES) | modes;
            self.login_modes = modes;
        }
    }

    /// The command loop, until the client quits, goes idle too long or breaks, or the
    /// session leaves for another worker.
    pub(super) async fn run(&mut self) -> Ran {
        // One idle timer per session, re-armed only when it fires: arming a timer for every
        // command would cost more than the rest of routing.
        // From the last command's end when there was one: a session that moved to this
        // worker has been idle since then, not since it arrived.
        let mut last_active = self.st.last_end.unwrap_or_else(Instant::now);
        let mut timer = Deadline::at(last_active + self.idle_limit);
        // Made at the first write whose connection the session keeps for its answer: a
        // connect-per-request client that only reads never pays for a timer.
        let mut hold: Option<Deadline> = None;
        let entry = Arc::clone(&self.registration.entry);
        let mut shutting_down = entry.signals.shutting_down();
        let mut signals_armed = None;
        // The runtime snapshot, taken again only when a reload or the monitor replaced it:
        // `load_full` per command would write the snapshot's shared reference count, and
        // even `load` writes and clears a debt slot; the cache's check is one plain read of
        // the shared pointer.
        let mut current = arc_swap::Cache::new(Arc::clone(&self.state));
        let mut rt = Arc::clone(current.load());
        loop {
            if shutting_down && !self.st.in_transaction() {
                tracing::debug!(parent: &self.span(), "closing for shutdown");
                break;
            }
            // A client slow to read its answer can still be killed meanwhile (its writes
            // are bounded by `server.client_write_timeout`).
            if self.client.pending() > 0 {
                let flushed = tokio::select! {
                    biased;
                    r = self.client.flush() => r.is_ok(),
                    _ = entry.signals.raised(false, &mut signals_armed) => false,
                };
                if !flushed {
                    break;
                }
            }
            // The last answer reached the client: nothing of this session is under way.
            self.registration.entry.set_busy(false);
            if !shutting_down {
                if let Some(to) = self.leaving(&rt) {
                    return Ran::Moving(to);
                }
            }
            let holding = self.st.stateful_target();
            let expiring = self.st.holds_expiring_answer();
            // Kept until the next statement, however long (warnings, an error): under
            // pressure it is held a second, as a write's answer is.
            let unbounded = self.kept_for_answer().filter(|_| !expiring);
            // Biased: the client's command is looked at first, and no random draw picks the
            // order (two per statement).
            let read = tokio::select! {
                biased;
                r = self.client.read_packet() => r,
                // The server closed the connection that holds the session's state (its
                // wait_timeout, a KILL, a restart): the client hears of it as it would
                // directly, by its own connection ending.
                () = held_closed(&self.held, holding) => {
                    tracing::info!(parent: &self.span(), target = ?holding, "the server closed the connection holding the session's state: closing the client's");
                    break;
                }
                // Shutting down: an idle session outside a transaction closes now; one in a
                // transaction gets to finish it (checked after each statement).
                s = entry.signals.raised(!shutting_down, &mut signals_armed) => match s {
                    Signal::Killed => {
                        tracing::debug!(parent: &self.span(), "killed");
                        break;
                    }
                    Signal::Shutdown => {
                        shutting_down = true;
                        continue;
                    }
                },
                () = hold_over(&mut hold), if expiring => {
                    self.let_answer_go(&rt).await;
                    continue;
                }
                // Another session waits for the connection this one keeps for its previous
                // statement's answer: an idle session's answer must not starve it.
                () = asked_back(&self.held, unbounded), if unbounded.is_some() => {
                    self.st.look_back_expires = true;
                    rearm(&mut hold, last_active + super::lease::LOOK_BACK_HOLD);
                    continue;
                }
                () = timer.elapsed() => {
                    if last_active.elapsed() >= self.idle_limit {
                        tracing::debug!(parent: &self.span(), "idle timeout");
                        break;
                    }
                    timer.reset(last_active + self.idle_limit);
                    continue;
                }
            };
            let pkt = match read {
                Ok(p) => p,
                Err(e) => {
                    if let Some((err, seq)) = super::error::packet_too_large(&e) {
                        let _ = self.send_err(&err, seq).await;
                    } else if e.kind() == std::io::ErrorKind::InvalidData {
                        let err = SessionError::ClientProtocol(e.to_string());
                        let _ = self.send_err(&err, 1).await;
                    }
                    break;
                }
            };
            // Commands a client wrote ahead come from the read buffer, and many are answered
            // without a backend (an unknown command, a refused statement) by writes that
            // seldom wait: each counts against the task's budget, so a flood of them yields
            // to the worker's other sessions rather than hold it for the whole flood.
            tokio::task::consume_budget().await;
            // Killed meanwhile (its own KILL among them): a command read with the kill, as
            // one pipelined behind a KILL, is not run, as the server runs none after one.
            if entry.signals.killed() {
                break;
            }
            if !Arc::ptr_eq(current.load(), &rt) {
                rt = Arc::clone(current.load());
            }
            self.hold_end = false;
            self.answer_seq = pkt.answer_seq();
            entry.signals.lower_query();
            let mut payload = pkt.payload;
            let mut flow = tokio::select! {
                biased;
                f = self.dispatch(&rt, &mut payload) => f,
                // Killed mid-command (a statement, a paused tenant, a slow connect): the
                // connection ends now, as directly; its backend connections are dropped.
                _ = entry.signals.raised(false, &mut signals_armed) => break,
            };
            if matches!(flow, Err(SessionError::Rerun(_))) {
                let armed = &mut signals_armed;
                match self.rerun(&mut rt, &mut payload, flow, &entry, armed).await {
                    Some(f) => flow = f,
                    None => break,
                }
            }
            self.client.recycle(payload);
            last_active = self.answered.take().unwrap_or_else(Instant::now);
            self.st.last_end = Some(last_active);
            self.end_leases(&rt, last_active);
            if std::mem::take(&mut self.ran_statement) {
                self.registration.entry.count_statement();
            }
            if self.st.holds_expiring_answer() {
                rearm(&mut hold, last_active + super::lease::LOOK_BACK_HOLD);
            }
            if std::mem::take(&mut self.idle_changed) {
                timer.reset(last_active + self.idle_limit);
            }
            if self.released {
                tracing::debug!(parent: &self.span(), "released by COMMIT or ROLLBACK");
                break;
            }
            if self.state_lost {
                // What the session kept on a lost connection is gone: end after the answer.
                match &flow {
                    Err(e) => {
                        let _ = self.send_last_err(e, self.answer_seq).await;
                    }
                    Ok(_) => {
                        let _ = self.client.flush().await;
                    }
                }
                tracing::info!(
                    parent: &self.span(),
                    "a connection holding the session's state was lost: closing the client's"
                );
                break;
            }
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) => {
                    self.client.end_after_quit();
                    break;
                }
                // Killed while a statement ran: the connection just ends, as directly.
                Err(_) if entry.signals.killed() => break,
                Err(e) => {
                    tracing::debug!(parent: &self.span(), error = %e, "statement failed");
                    let recoverable = e.is_recoverable();
                    if self.send_err(&e, self.answer_seq).await.is_err() || !recoverable {
                        break;
                    }
                }
            }
        }
        self.close().await;
        Ran::Closed
    }

    /// Where the session goes, if its worker's balancer asks it to leave and it can: it
    /// holds no server connection (a transaction, pin or look-back keeps one), its client
    /// connection is plain TCP (TLS state stays with the worker it began on) with nothing
    /// left to send. One load and compare per command while there is no new call.
    #[inline]
    fn leaving(&mut self, rt: &RuntimeState) -> Option<usize> {
        let call = rt.shared.workers.call(self.worker);
        if call.generation == self.answered_call {
            return None;
        }
        self.answer_call(call)
    }

    #[cold]
    fn answer_call(&mut self, call: crate::state::workers::Call) -> Option<usize> {
        let to = usize::from(call.to);
        if to == self.worker || !call.picks(self.id) {
            self.answered_call = call.generation;
            return None;
        }
        let movable = self.held.is_empty()
            && !self.client.is_tls()
            && self.client.pending() == 0
            && !self.state_lost;
        if !movable {
            // Asked again after the next command.
            return None;
        }
        self.answered_call = call.generation;
        Some(to)
    }

    /// On the worker `here` the session moved to: its client connection joins this
    /// worker's I/O driver.
    pub(super) fn arrive(&mut self, here: usize) -> std::io::Result<()> {
        self.client.rehome()?;
        self.worker = here;
        let rt = self.state.load_full();
        rt.shared.workers.moved();
        // What its statements write goes to this worker's copies from now on: its tenant's
        // counters, and its servers' (held by the lease keys, which are made again here).
        // Kept from the old worker, they were written from two cores at every statement.
        self.track_tenant_stats(&rt);
        self.held.forget_lease_keys();
        // Counted among this worker's readers now, so its choices see the session.
        if let (Some(_), Some(i)) = (&self.seat, self.st.sticky) {
            self.seat_on(&rt, i);
        }
        Ok(())
    }

    /// Who the session is (id, user, tenant), as the parent of each event it logs:
    /// `tracing::warn!(parent: &self.span(), ...)`, made only when the event is enabled.
    /// The session's future is not instrumented with it: entering a span at every poll
    /// cost about 490 instructions per statement (the registry's span stack and reference
    /// count, and `EnvFilter`'s lock, taken on enter and on exit).
    pub(super) fn span(&self) -> tracing::Span {
        let tenant = self.tenant.as_ref().map_or("", |t| t.name.as_str());
        tracing::info_span!("session", id = self.id, user = %self.who.user.name, tenant)
    }

    /// Runs a command again from its start under the reloaded config, as long as a pause
    /// holds it across reloads ([`SessionError::Rerun`]); `rt` becomes the reloaded one.
    /// None: killed meanwhile. Apart from the command's first run: the loop around
    /// `dispatch`'s future cost every statement about 50 instructions (callgrind).
    async fn rerun(
        &mut self,
        rt: &mut Arc<RuntimeState>,
        payload: &mut Vec<u8>,
        mut flow: Result<Flow, SessionError>,
        entry: &crate::state::registry::SessionEntry,
        armed: &mut Option<std::task::Waker>,
    ) -> Option<Result<Flow, SessionError>> {
        while let Err(SessionError::Rerun(taken)) = flow {
            // Killed while it was held: not run (see the command loop's same check).
            if entry.signals.killed() {
                return None;
            }
            if let Some(p) = taken {
                *payload = p;
            }
            *rt = self.state.load_full();
            flow = tokio::select! {
                biased;
                f = self.dispatch(rt, payload) => f,
                _ = entry.signals.raised(false, armed) => return None,
            };
        }
        Some(flow)
    }

    /// Runs one command. `payload` is left to be reused for the next one, unless a command
    /// keeps it (an execute, long data).
    async fn dispatch(
        &mut self,
        rt: &RuntimeState,
        payload: &mut Vec<u8>,
    ) -> Result<Flow, SessionError> {
        // An empty packet is no command the server knows either.
        let Some(&cmd) = payload.first() else {
            return Err(super::error::unknown_command());
        };
        // Before any check of what the command may reach: the user's tenants are the
        // reloaded config's from its first command on (one pointer compare).
        self.refresh_user(rt);
        match cmd {
            COM_QUERY => self.com_query(rt, payload).await?,
            COM_STMT_EXECUTE => {
                let taken = std::mem::take(payload);
                *payload = self.com_stmt_execute(rt, taken, Run::Execute).await?;
            }
            COM_STMT_BULK_EXECUTE => {
                let taken = std::mem::take(payload);
                *payload = self.com_stmt_execute(rt, taken, Run::Bulk).await?;
            }
            COM_STMT_FETCH => self.com_stmt_fetch(payload).await?,
            COM_STMT_PREPARE => self.com_stmt_prepare(rt, payload).await?,
            COM_STMT_CLOSE => self.com_stmt_close(payload).await?,
            COM_STMT_SEND_LONG_DATA => self.com_stmt_send_long_data(rt, std::mem::take(payload)),
            COM_STMT_RESET => self.com_stmt_reset(rt, payload).await?,
            COM_INIT_DB => self.com_init_db(rt, payload).await?,
            COM_PING => self.com_ping(rt, payload).await?,
            COM_FIELD_LIST => self.com_on_held(rt, payload, Expect::FieldList).await?,
            COM_STATISTICS => self.com_on_held(rt, payload, Expect::Single).await?,
            // Rare commands, boxed: inlined, their futures' states made every statement's
            // dispatch future larger.
            COM_REFRESH => Box::pin(self.com_refresh(rt, payload)).await?,
            COM_SET_OPTION => Box::pin(self.com_set_option(rt, payload)).await?,
            COM_RESET_CONNECTION => Box::pin(self.com_reset_connection(rt, payload)).await?,
            COM_CHANGE_USER => return Box::pin(self.com_change_user(rt, payload)).await,
            COM_PROCESS_KILL => Box::pin(self.com_process_kill(rt, payload)).await?,
            COM_QUIT => return Ok(Flow::Quit),
            // Commands the server does not know either get its words; those it knows but
            // Switchyard does not relay (replication, COM_SHUTDOWN...) say so.
            other if !server_implements(other) => return Err(super::error::unknown_command()),
            other => {
                return Err(SessionError::reply(
                    1047,
                    "08S01",
                    format!(
                        "Unknown command: Switchyard does not support {} (0x{other:02x})",
                        name(other)
                    ),
                ))
            }
        }
        Ok(Flow::Continue)
    }

    /// What routing needs to know about this session.
    pub(super) fn view(&self) -> SessionView {
        let consistency = self.tenant.as_ref().map(|t| t.consistency);
        SessionView {
            txn: self.st.txn,
            autocommit_off: self.st.autocommit_off,
            pin: self.st.pins.reason(),
            cursor: self.st.pins.cursor_target(),
            last: self.st.last,
            wrote: self.st.wrote,
            has_replicas: self.tenant.as_ref().is_some_and(|t| !t.replicas.is_empty()),
            consistency,
        }
    }

    /// A guard over a statement that may commit a write of a tenant whose reads must see
    /// every write of the tenant. The statement's answer is held back (`hold_end`) until
    /// the guard has recorded the write's GTID (or that it is unknown): no client learns
    /// of a write before every later read is bound to see it.
    pub(super) fn write_guard(&self, c: &Classification) -> Option<WriteGuard> {
        let tenant = self.tenant.as_ref()?;
        if tenant.consistency != crate::config::Consistency::Tenant {
            return None;
        }
        if !(writes_in(c) || self.st.txn_has_writes) {
            return None;
        }
        self.mark.as_ref().map(|m| m.write_started())
    }

    /// Whether a read-only transaction is open on a replica: checked before
    /// [`in_read_only_txn`](Self::in_read_only_txn), so a statement outside one builds no
    /// future for it.
    pub(super) fn in_replica_txn(&self) -> bool {
        matches!(self.st.txn, Some(Target::Replica(_)))
    }

    /// A statement inside a read-only transaction, which lives on a replica, before it is
    /// routed, answered as the server answers it:
    /// - one that commits implicitly (BEGIN, DDL, LOCK TABLES): the server would commit the
    ///   transaction and run the statement outside it, so the replica commits it and the
    ///   statement is routed as any outside a transaction (BEGIN and DDL to the primary);
    ///   UNLOCK TABLES commits nothing there and runs in the transaction;
    /// - a write, or CREATE/DROP TEMPORARY TABLE (DDL that commits nothing, and that MariaDB
    ///   refuses in a read-only transaction): refused with the primary's answer (1792), not
    ///   sent to get the replica's `read_only` refusal (1290). The replica raises the error
    ///   too, so SHOW WARNINGS and `@@error_count` after it show it; the transaction goes
    ///   on.
    ///
    /// `recorded_as`: the text a SET would be recorded as for replay (None: it would not be,
    /// a prepared one).
    pub(super) async fn in_read_only_txn(
        &mut self,
        rt: &RuntimeState,
        c: &Classification,
        recorded_as: Option<&[u8]>,
    ) -> Result<(), SessionError> {
        const CODE: u16 = 1792;
        const STATE: &str = "25006";
        const MESSAGE: &str = "Cannot execute statement in a READ ONLY transaction";
        let Some(t @ Target::Replica(_)) = self.st.txn else {
            return Ok(());
        };
        // Also: a user variable only the primary's connection has (`SELECT ... INTO @x`
        // before the transaction; the replica's is NULL), and several statements or one
        // Switchyard cannot read (`COMMIT; INSERT ...`: what follows a COMMIT runs outside
        // the transaction, a write on the replica).
        // And a read of what only the primary's answer is right for (its threads, its
        // `read_only`), as SHOW PROCESSLIST.
        let unknown = matches!(
            c.class,
            Class::Primary(
                PrimaryReason::MultiStatement
                    | PrimaryReason::ServerState
                    | PrimaryReason::Unknown
                    | PrimaryReason::Unparsed
                    | PrimaryReason::TooLong
                    | PrimaryReason::TooDeep
            )
        );
        // A SET kept but not recorded (prepared, or past the replay list's limits) would
        // live on the replica's connection alone, which goes back to the pool labelled as
        // it was: the next session given it would run in this one's time zone, say.
        let unrecorded = c.class == Class::SetSession
            && recorded_as.is_none_or(|p| !self.st.vars.would_record(p));
        if needs_primary_session(c) || self.reads_primary_only_variable(c) || unknown || unrecorded
        {
            return self.move_read_only_txn_to_primary(rt, t).await;
        }
        let commits = match c.class {
            // UNLOCK TABLES commits only when LOCK TABLES holds tables, and none can be
            // locked in a transaction (START TRANSACTION unlocked them): it runs in it.
            Class::Primary(PrimaryReason::LockTables) if c.effects.unlock_tables => return Ok(()),
            Class::Begin { read_only: false } | Class::Primary(PrimaryReason::LockTables) => true,
            Class::Primary(PrimaryReason::Ddl) => !c.effects.temporary_ddl,
            Class::Primary(PrimaryReason::Write) => false,
            _ => return Ok(()),
        };
        if commits {
            return self.commit_replica_txn(t).await;
        }
        self.st.last = Some(t);
        Err(SessionError::reply(CODE, STATE, MESSAGE))
    }

    /// Commits the session's read-only transaction on replica `t`, as the server commits one
    /// implicitly.
    async fn commit_replica_txn(&mut self, t: Target) -> Result<(), SessionError> {
        if let Some(conn) = self.held.get_mut(t) {
            if let Err(e) = crate::backend::restore::commit(conn).await {
                // The transaction is gone with its connection: the client's ends too.
                return Err(self.connection_failed(t, e));
            }
        }
        self.st.txn = None;
        Ok(())
    }

    /// Whether the server ends the session after `c`'s OK: a COMMIT or ROLLBACK that says
    /// RELEASE, or one that says nothing once `completion_type` is RELEASE.
    fn releases_session(&self, c: &Classification) -> bool {
        c.effects.releases
            || (self.st.release_at_commit
                && c.effects.ends_transaction
                && !c.effects.no_release
                && c.class == Class::Primary(PrimaryReason::TransactionControl))
    }

    /// Moves the session's read-only transaction from replica `t` to the primary: what the
    /// statement about to run leaves in the session (see [`needs_primary_session`]) must
    /// live on the primary's connection, where the session's other statements find it after
    /// the transaction; on the replica it was lost when the transaction ended, and a lock
    /// taken there excluded no one taking it on the primary. The transaction goes on there, read-only as before (its
    /// reads from then on see the primary's data: a later snapshot than the replica's).
    async fn move_read_only_txn_to_primary(
        &mut self,
        rt: &RuntimeState,
        t: Target,
    ) -> Result<(), SessionError> {
        self.commit_replica_txn(t).await?;
        let begun = self.begin_read_only_on_primary(rt).await;
        if begun.is_err() {
            // The transaction the client holds open is gone (committed on the replica) and
            // none began on the primary: the session ends after the error, as one whose
            // transaction's connection was lost (it went on outside any transaction, and
            // the client's COMMIT committed nothing it thought it held).
            self.state_lost = true;
        }
        begun
    }

    async fn begin_read_only_on_primary(&mut self, rt: &RuntimeState) -> Result<(), SessionError> {
        self.ready(rt, Target::Primary).await?;
        let Some(conn) = self.held.get_mut(Target::Primary) else {
            return Err(super::backends::internal("no primary connection"));
        };
        if let Err(e) = crate::backend::restore::begin_read_only(conn).await {
            return Err(self.connection_failed(Target::Primary, e));
        }
        self.st.txn = Some(Target::Primary);
        Ok(())
    }

    /// Updates the session from a statement's answer: transaction state from the status
    /// flags, pins and replayed SETs from what the statement did. Ends `guard` with the
    /// write's GTID if the statement committed one.
    pub(super) fn after_statement(
        &mut self,
        t: Target,
        c: &Classification,
        o: &Outcome,
        payload: &[u8],
        guard: Option<WriteGuard>,
    ) {
        self.st.last = Some(t);
        let txn_before = self.st.txn;
        // A COMMIT of writes looks back too (`@@last_gtid` is its GTID).
        let commits_writes = t == Target::Primary && self.st.txn_has_writes;
        self.st.look_back = (looks_back(t, c, o) || commits_writes).then_some(t);
        self.st.look_back_expires = self.st.look_back.is_some() && !asked_about(c, o);
        self.st.answer_gone = false;
        self.st.own_error = None;
        // Whatever a profiling session runs, on whichever connection (a replacement too,
        // its SET replayed there), lands in that connection's SHOW PROFILES.
        let outlives_reset = c.effects.profiling
            || c.effects.sets_role
            || self.st.pins.profiling()
            || (c.effects.prepares_xa && o.err.is_none());
        let id = self.id;
        let wrote = t == Target::Primary && writes_in(c);
        // The server runs a multi-statement's parts (a procedure's statements) up to the
        // one that fails and keeps what they did.
        let ran_partly = o.err.is_some()
            && (c.effects.calls_procedure
                || c.class == Class::Primary(PrimaryReason::MultiStatement));
        if let Some(conn) = self.held.get_mut(t) {
            conn.answer_of = id;
            conn.outlives_reset |= outlives_reset;
            if wrote {
                conn.writers = conn.writers.with(id);
            }
        }
        if o.last_insert_id != 0 {
            self.st.last_insert_id = o.last_insert_id;
        }
        if let Some(status) = o.status {
            let in_trans = status & STATUS_IN_TRANS != 0;
            self.st.txn = in_trans.then_some(t);
            if t == Target::Primary {
                self.st.autocommit_off = status & STATUS_AUTOCOMMIT == 0;
            }
        }
        // By the status of its answer (an error's too: `status_after_error`).
        let txn_ended = txn_before.is_some() && self.st.txn.is_none();
        // A SET, or a read of no table (`SELECT @@autocommit`), begins no transaction; a lone
        // COMMIT or ROLLBACK that succeeded ends one (in a multi-statement, a statement after
        // it may begin the next).
        let ended = c.class == Class::Primary(PrimaryReason::TransactionControl)
            && c.effects.ends_transaction
            && o.err.is_none();
        let begins = c.class != Class::SetSession && !c.effects.reads_no_data;
        self.st.unflagged_txn =
            self.st.autocommit_off && !ended && (self.st.unflagged_txn || begins);
        // A write answered with an error may have changed data all the same: `DROP TABLE
        // a, missing` drops `a`, a multi-row write into a table without transactions keeps
        // the rows before the failing one. Not one refused before it ran.
        let changed_data =
            wrote && (ran_partly || o.err.as_ref().is_none_or(|e| !ran_nothing(e.code)));
        let pending = self.st.txn_has_writes || changed_data;
        // COMMIT AND CHAIN (or a COMMIT under completion_type CHAIN), or a BEGIN inside a
        // transaction, commits it and opens the next: its writes are committed though a
        // transaction goes on. A multi-statement with a COMMIT in it (`COMMIT; BEGIN;
        // INSERT ...`) may also have written in the transaction it left open: its writes
        // count as committed and as still pending both.
        let ends_one = txn_before.is_some()
            && o.err.is_none()
            && (c.effects.ends_transaction || matches!(c.class, Class::Begin { .. }));
        let lone = matches!(
            c.class,
            Class::Begin { .. } | Class::Primary(PrimaryReason::TransactionControl)
        );
        let chained = ends_one && lone && self.st.txn.is_some();
        self.st.txn_has_writes = self.st.txn.is_some() && pending && !chained;
        let committed = pending && (self.st.txn.is_none() || ends_one);
        if let Some(g) = guard {
            g.finish(committed, o.gtid.as_deref());
        }
        if c.effects.calls_procedure {
            self.st.pins.set_procedure();
        }
        if o.err.is_none() {
            if let Some(release) = c.effects.completion_release {
                self.st.release_at_commit = release;
            }
            if self.releases_session(c) {
                // The server closed this connection after its OK: never pooled again.
                self.held.take(t);
                self.released = true;
            }
        }
        if let Some(e) = &o.err {
            if is_fatal_for_connection(e.code) {
                // The server ended this connection: drop it, and what lived on it.
                self.held.take(t);
                self.lost_backend(t);
            }
            if txn_ended {
                self.st.pins.transaction_ended();
                if let (Target::Primary, Some(gtid)) = (t, &o.gtid) {
                    self.st.causal.wrote_at(gtid);
                }
            }
            if ran_partly {
                self.after_partial_run(t, c, o, wrote);
            } else if changed_data {
                self.record_write();
            }
            return;
        }
        self.st.pins.apply(&c.effects, self.st.schema.as_deref());
        // (A prepared statement's text is not the payload: `prepared` follows its locks.)
        if c.effects.named_lock != crate::router::LockEffect::None {
            if let Some(sql) = payload.get(1..) {
                self.follow_named_locks(t, c, sql, true);
            }
        }
        // The value LAST_INSERT_ID(expr) set stays on the connection: an OK that reports it
        // (an INSERT's, an UPDATE's) lets the session carry it, and anything else keeps the
        // session there, as a `SET last_insert_id` does.
        if c.effects.sets_insert_id && o.ok.is_none_or(|ok| ok.last_insert_id == 0) {
            self.st.pins.set_unreplayable();
        }
        if c.effects.ends_transaction || txn_ended {
            self.st.pins.transaction_ended();
        }
        // A write, or the commit of a transaction's writes: the position the session's reads
        // must see is the one this answer leaves (a position asked for inside the
        // transaction, after an idle second, was the connection's previous commit's).
        if (t == Target::Primary && writes_in(c)) || (commits_writes && committed) {
            self.record_write();
        }
        // Whatever the statement (a COMMIT too), a GTID the primary reported is the
        // position the session's reads must see.
        if let (Target::Primary, Some(gtid)) = (t, &o.gtid) {
            self.st.causal.wrote_at(gtid);
        }
        if c.class == Class::SetSession && self.reads_primary_only_variable(c) {
            // `SET sql_mode = @saved` after `SELECT @@sql_mode INTO @saved`: the variable
            // lives on this connection only, so a replay elsewhere would read NULL.
            self.st.pins.set_unreplayable();
        }
        if payload.len() > 4 && payload[1..4].eq_ignore_ascii_case(b"SET") && names_log_bin(payload)
        {
            self.st.unlogged_writes = true;
        }
        if c.class == Class::SetSession && !payload.is_empty() {
            match self.st.vars.record(payload) {
                Some(_) => {
                    let applied = self.st.vars.applied(self.id);
                    if let Some(conn) = self.held.get_mut(t) {
                        conn.applied = applied;
                    }
                }
                None => self.st.pins.set_too_many_sets(),
            }
        }
        if let Some(db) = &c.effects.dropped_database {
            self.dropped_database(t, db);
        }
        if let Some(db) = c.effects.use_dbs.last() {
            self.st.schema = Some(db.as_str().into());
            if let Some(conn) = self.held.get_mut(t) {
                conn.schema = self.st.schema.clone();
            }
            self.publish();
        }
        self.publish_if_changed();
    }

    /// A statement whose answer was lost with its connection may have committed: a write,
    /// or the commit of one, counts as written (the tenant's mark counts it by the guard
    /// dropped unfinished).
    pub(super) fn answer_lost(&mut self, t: Target, c: &Classification) {
        let commits = c.effects.ends_transaction || matches!(c.class, Class::Begin { .. });
        if t == Target::Primary && (writes_in(c) || (self.st.txn_has_writes && commits)) {
            self.record_write();
        }
    }

    /// The session wrote on its primary connection: its reads must see that from now on.
    fn record_write(&mut self) {
        self.st.wrote = true;
        let on = self.held.get(Target::Primary).map(|c| c.connection_id);
        self.st.causal.wrote(on);
    }

    /// Whether `c` reads a user variable that only the session's primary connection has
    /// (assigned anything but a literal, so not replayed elsewhere).
    fn reads_primary_only_variable(&self, c: &Classification) -> bool {
        c.effects.reads_user_var && self.st.pins.user_variables
    }

    /// The server leaves the connection whose default database was dropped with none: so
    /// does the session, and the connection's next session is put in its own (it was
    /// taken for one in `db` already, and its statements got ERR 1046).
    fn dropped_database(&mut self, t: Target, db: &str) {
        if self.st.schema.as_deref() == Some(db) {
            self.st.schema = None;
            self.publish();
        }
        if let Some(conn) = self.held.get_mut(t) {
            if conn.schema.as_deref() == Some(db) {
                conn.schema = None;
            }
        }
    }

    /// Follows the named locks a statement that succeeded took or released, by name, as
    /// its own text (`sql`) has them: its classification is shared with statements that
    /// differ only in their literals. `once`: it ran once (not a bulk execute of rows).
    pub(super) fn follow_named_locks(
        &mut self,
        t: Target,
        c: &Classification,
        sql: &[u8],
        once: bool,
    ) {
        let mut calls = crate::router::lock_calls(sql);
        if let Some(found) = calls.as_mut() {
            found.plain &= once;
        }
        self.st
            .pins
            .apply_locks(c.effects.named_lock, calls.as_ref());
        if self.st.pins.take_locks_lifted() {
            // Perhaps holding a lock a release did not free: reset before it serves anyone
            // once the session lets it go.
            if let Some(conn) = self.held.get_mut(t) {
                conn.reset_before_reuse = true;
            }
        }
    }

    /// A multi-statement or CALL that failed part-way: which of its statements ran is not
    /// known here, and the server kept what they did. A session change among them keeps the
    /// session on the connection (reset before another session takes it) rather than
    /// leaving a time zone, a named lock or a temporary table to the pool; a write among
    /// them is one the session's next read must see.
    fn after_partial_run(&mut self, t: Target, c: &Classification, o: &Outcome, wrote: bool) {
        if c.effects.changes_session() || c.effects.parts_change_session {
            self.st.pins.set_unreplayable();
        }
        if !c.effects.use_dbs.is_empty() || c.effects.dropped_database.is_some() {
            // Its schema is not known (a reset keeps it): closed, never pooled under the
            // schema it was in before.
            if let Some(conn) = self.held.get_mut(t) {
                conn.outlives_reset = true;
            }
        }
        if wrote {
            self.record_write();
            if let Some(gtid) = &o.gtid {
                self.st.causal.wrote_at(gtid);
            }
        }
    }

    /// An ERR carries no status flags, yet the statement that failed may have ended the
    /// session's transaction first: one that commits implicitly (DDL, FLUSH, LOCK TABLES,
    /// BEGIN) commits before its checks, a deadlock rolls back. Inside a transaction the
    /// server is asked with COM_PING, which leaves the statement's diagnostics for SHOW
    /// WARNINGS, so `o` gets the status the server would report next: OKs Switchyard
    /// answers itself and the transaction's hold on the connection follow what it did.
    /// (The ping's OK takes the session-tracking changes the server held for the next OK:
    /// with the defaults none the client tracks, `last_gtid` with
    /// `session_track_system_variables = '*'`.) Callers test `o.err` first: the future
    /// built and polled for an answer without an error, at every statement, cost more
    /// than the test (its 600 bytes are cold at 64 sessions on a worker).
    pub(super) async fn status_after_error(
        &mut self,
        t: Target,
        c: &Classification,
        o: &mut Outcome,
    ) -> Result<(), SessionError> {
        let Some(e) = &o.err else {
            return Ok(());
        };
        // A procedure's own OKs never reach the client: one that failed after its START
        // TRANSACTION left a transaction open that no answer reported.
        // (Not a stored function's: it may not begin or end one.)
        let may_have_begun = self.st.txn.is_none()
            && c.effects.calls_procedure
            && c.class != Class::Primary(PrimaryReason::StoredFunction);
        let may_have_ended = self.st.txn.is_some() && may_end_txn(c, e.code);
        if is_fatal_for_connection(e.code) || !(may_have_begun || may_have_ended) {
            return Ok(());
        }
        let Some(conn) = self.held.get_mut(t) else {
            return Ok(());
        };
        match conn.exec_silent(&[COM_PING], Expect::Single).await {
            Ok(ping) => {
                o.status = ping.status.or(o.status);
                // The commit's GTID, when it wrote: the answer that would have reported it.
                o.gtid = ping.gtid.or(o.gtid.take());
                Ok(())
            }
            // The client has its answer (the server's ERR, relayed): the session ends after
            // it (`state_lost`), with no second ERR the client would read as the answer to
            // its next command.
            Err(err) => {
                let _ = self.connection_failed(t, err);
                Ok(())
            }
        }
    }

    pub(super) async fn send_err(&mut self, e: &SessionError, seq: u8) -> Result<(), SessionError> {
        self.send_spec(e.to_err(), seq).await
    }

    /// [`send_err`](Self::send_err) for the error the session ends after.
    async fn send_last_err(&mut self, e: &SessionError, seq: u8) -> Result<(), SessionError> {
        self.send_spec(e.to_last_err(), seq).await
    }

    /// [`send_err`](Self::send_err) for a login refused.
    async fn refuse_login(&mut self, e: &SessionError, seq: u8) -> Result<(), SessionError> {
        self.send_spec(e.to_login_err(), seq).await
    }

    async fn send_spec(
        &mut self,
        spec: Option<crate::protocol::packets::ErrSpec>,
        seq: u8,
    ) -> Result<(), SessionError> {
        let Some(spec) = spec else {
            return Ok(());
        };
        self.st.own_error = Some(spec.clone());
        self.client
            .send(seq, &packets::err_payload(&spec))
            .await
            .map(|_| ())
            .map_err(SessionError::ClientGone)
    }

    pub(super) async fn send_ok(&mut self, seq: u8) -> Result<(), SessionError> {
        let status = self.own_status();
        self.client
            .send(seq, &packets::ok_payload(status, 0))
            .await
            .map(|_| ())
            .map_err(SessionError::ClientGone)
    }

    /// The status flags of an OK or EOF Switchyard answers itself: the session's
    /// autocommit and transaction, and the modes the server last reported.
    pub(super) fn own_status(&self) -> u16 {
        let mut status = self.st.server_modes & packets::STATUS_SQL_MODES;
        if !self.st.autocommit_off {
            status |= STATUS_AUTOCOMMIT;
        }
        if self.st.txn.is_some() {
            status |= STATUS_IN_TRANS | (self.st.server_modes & packets::STATUS_IN_TRANS_READONLY);
        }
        status
    }

    /// Gives the session's backend connections back to the pool: as they are when their
    /// state is described by the fingerprint, reset when something else lived there, with
    /// the login's multi-statement option when the session's was another.
    pub(super) fn release_backends(&mut self, rt: &RuntimeState) {
        for i in 0..self.held.slots() {
            self.release_backend(rt, target_at(i));
        }
    }

    /// Gives the connection to `t` back to its pool, reset if something lives on it.
    pub(super) fn release_backend(&mut self, rt: &RuntimeState, t: Target) {
        let stateful = self.st.lives_on(t);
        let Some(conn) = self.held.take(t) else {
            return;
        };
        if self.st.txn == Some(t) {
            // A transaction left open: closed, as the server ends it when a client leaves
            // (with COM_QUIT: dropped, a client's clean exit mid-transaction was logged as
            // an aborted connection). It may be a prepared XA one (from a CALL or dynamic
            // SQL, which the `prepares_xa` effect cannot see), which MariaDB's reset turns
            // into a connection where every table fails (1031) for the next session.
            return conn.quit();
        }
        if stateful || conn.set_option.is_some() {
            rt.shared.pools.release(conn, stateful);
        } else {
            rt.shared.pools.put_back(conn);
        }
    }

    async fn close(&mut self) {
        let rt = self.state.load_full();
        if self.registration.entry.signals.killed() {
            // Killed: its connections close with it rather than serve another session. Not
            // with COM_QUIT: the kill may have cut a command's packet short, and the
            // server would read the rest with a COM_QUIT as a command.
            drop(self.held.drain());
        } else {
            self.release_backends(&rt);
        }
        self.client.shutdown().await;
    }
}

/// The sql_mode flags a server session starts with: the global sql_mode's, as the greeting
/// gave them, until a server answers (at login, and after COM_CHANGE_USER).
pub(super) fn login_modes(rt: &RuntimeState) -> u16 {
    rt.shared.server_info.load().status & packets::STATUS_SQL_MODES
}

/// Whether a statement needs the session as it lives on the primary's connection: it
/// leaves state there the session's later statements must find (a named lock, a statement
/// prepared by name, an open HANDLER, whatever else Switchyard cannot replay, a user
/// variable a SELECT assigns, LAST_INSERT_ID(n), a procedure's state), asks about what only
/// the primary knows (IS_FREE_LOCK: other sessions take locks there), as any function bound
/// to the primary may, or locks rows (a locking read: against writers on the primary; on a
/// replica it would hold up replication of writes to those rows until the transaction
/// ends).
fn needs_primary_session(c: &Classification) -> bool {
    c.effects.named_lock != crate::router::LockEffect::None
        || c.effects.sets_insert_id
        || c.effects.unreplayable
        // A literal SET of one is replayed wherever the session goes (`Class::SetSession`).
        || (c.effects.user_var_assign && matches!(c.class, Class::Primary(_)))
        || matches!(
            c.class,
            Class::Primary(
                PrimaryReason::SessionSet
                    | PrimaryReason::Call
                    | PrimaryReason::SideEffectFunction
                    | PrimaryReason::StoredFunction
                    | PrimaryReason::LockingRead
            )
        )
}

/// Sets the write's hold (see `run`) to end at `until`, making it the first time.
fn rearm(hold: &mut Option<Deadline>, until: Instant) {
    match hold {
        Some(h) => h.reset(until),
        None => *hold = Some(Deadline::at(until)),
    }
}

/// Completes when the write's hold (see `run`) is over; never without one.
async fn hold_over(hold: &mut Option<Deadline>) {
    match hold {
        Some(h) => h.elapsed().await,
        None => std::future::pending().await,
    }
}

/// Completes when another session waits for the connection to `t` (see
/// `Group::asked_back`); never without one.
async fn asked_back(backends: &Held, t: Option<Target>) {
    match t
        .and_then(|t| backends.get(t))
        .and_then(|c| c.slot.as_ref())
    {
        Some(slot) => slot.group().asked_back().await,
        None => std::future::pending().await,
    }
}

/// Completes when the backend connection for `t` closes; never without one.
async fn held_closed(backends: &Held, t: Option<Target>) {
    match t.and_then(|t| backends.get(t)) {
        Some(conn) => conn.io.closed().await,
        None => std::future::pending().await,
    }
}

/// Whether the next statement may ask about this one's answer on the same connection:
/// its warnings or error (SHOW WARNINGS), the rows it changed (ROW_COUNT()), its GTID
/// (@@last_gtid), FOUND_ROWS() after SQL_CALC_FOUND_ROWS.
fn looks_back(t: Target, c: &Classification, o: &Outcome) -> bool {
    asked_about(c, o) || (t == Target::Primary && writes_in(c))
}

/// What a client asks about later too (an interactive user's SHOW WARNINGS after reading
/// "1 warning"; FOUND_ROWS() for a page's total): warnings, an error, a row count that
/// SQL_CALC_FOUND_ROWS kept. Their connection stays until the next statement.
fn asked_about(c: &Classification, o: &Outcome) -> bool {
    o.err.is_some() || o.ok.is_some_and(|ok| ok.warnings > 0) || c.effects.calc_found_rows
}

/// Whether a statement that failed with `code` may have ended the transaction it ran in
/// (ER_LOCK_DEADLOCK rolls back; ER_LOCK_WAIT_TIMEOUT does with
/// `innodb_rollback_on_timeout`; ER_LOCK_TABLE_FULL and the XA branch's rollbacks,
/// ER_XA_RBROLLBACK, _RBTIMEOUT and _RBDEADLOCK, do; the others commit before they fail,
/// a procedure's statements among them).
fn may_end_txn(c: &Classification, code: u16) -> bool {
    matches!(code, 1213 | 1205 | 1206 | 1402 | 1613 | 1614)
        || matches!(
            c.class,
            Class::Begin { .. }
                | Class::Primary(
                    PrimaryReason::Ddl
                        | PrimaryReason::LockTables
                        | PrimaryReason::MultiStatement
                        | PrimaryReason::Call
                )
        )
}

/// Errors after which the server closes the connection (ER_CONNECTION_KILLED,
/// ER_CLIENT_INTERACTION_TIMEOUT, ER_SERVER_SHUTDOWN).
fn is_fatal_for_connection(code: u16) -> bool {
    matches!(code, 1927 | 4031 | 1053)
}

/// An error the server gives before a statement changes anything: its syntax, privileges,
/// a name that does not exist, a read-only server, or a transaction rolled back whole.
fn ran_nothing(code: u16) -> bool {
    matches!(
        code,
        1044 | 1045
            | 1046
            | 1049
            | 1054
            | 1064
            | 1142
            | 1143
            | 1146
            | 1149
            | 1205
            | 1213
            | 1227
            | 1290
            | 1370
            | 1792
    )
}

/// Whether a SET's text names `sql_log_bin` (in any case, `SET STATEMENT ... FOR` too).
fn names_log_bin(payload: &[u8]) -> bool {
    const NAME: &[u8] = b"sql_log_bin";
    payload
        .windows(NAME.len())
        .any(|w| w.eq_ignore_ascii_case(NAME))
}

/// [`writes`], an `XA COMMIT` (see `Effects::commits_xa`), or what an `EXECUTE` runs.
fn writes_in(c: &Classification) -> bool {
    writes(&c.class) || c.effects.commits_xa || c.effects.runs_unread
}

/// Statements after which a read must see the session's own changes. Side-effect built-ins
/// (GET_LOCK, LAST_INSERT_ID), locking reads and user variables change no table data; a
/// stored function may.
fn writes(class: &Class) -> bool {
    matches!(
        class,
        Class::Primary(
            PrimaryReason::Write
                | PrimaryReason::Ddl
                | PrimaryReason::Call
                | PrimaryReason::StoredFunction
                | PrimaryReason::MultiStatement
                | PrimaryReason::Unknown
                | PrimaryReason::Unparsed
                | PrimaryReason::TooLong
                | PrimaryReason::TooDeep
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(class: Class) -> Classification {
        Classification {
            class,
            hints: Default::default(),
            effects: Default::default(),
        }
    }

    #[test]
    fn errors_that_may_end_a_transaction_are_checked() {
        let write = of(Class::Primary(PrimaryReason::Write));
        for code in [1213, 1205, 1206, 1402, 1613, 1614] {
            assert!(may_end_txn(&write, code), "{code}");
        }
        assert!(!may_end_txn(&write, 1062), "a duplicate key ends nothing");
        assert!(may_end_txn(&of(Class::Primary(PrimaryReason::Call)), 1146));
        assert!(may_end_txn(&of(Class::Primary(PrimaryReason::Ddl)), 1050));
    }
}
