//! Prepared statements across backends: client-facing ids, lazy preparation on each backend
//! a statement runs on, parameter types and long data carried to whichever backend executes.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::backends::internal;
use super::error::{self, SessionError};
use super::session::Session;
use crate::backend::restore;
use crate::backend::stmt_cache::ParamTypes;
use crate::backend::BackendConn;
use crate::protocol::command::{self, ExecuteRefusal, COM_STMT_CLOSE, COM_STMT_PREPARE};
use crate::protocol::scan::Expect;
use crate::protocol::MariadbCapabilities;
use crate::router::route::{self, Destination, Target};
use crate::router::{Class, Classification};
use crate::state::RuntimeState;

/// The commands that run a prepared statement. They differ in where parameter types are
/// carried; only COM_STMT_EXECUTE opens cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    Execute,
    /// COM_STMT_BULK_EXECUTE: MariaDB's array binding, one command for many rows.
    Bulk,
}

impl Run {
    fn types(self, payload: &[u8], params: u16) -> Option<&[u8]> {
        match self {
            Run::Execute => command::execute_param_types(payload, params),
            Run::Bulk => command::bulk_param_types(payload, params),
        }
    }

    fn with_types(self, payload: &[u8], params: u16, types: &[u8]) -> Option<Vec<u8>> {
        match self {
            Run::Execute => command::execute_with_types(payload, params, types),
            Run::Bulk => command::bulk_with_types(payload, params, types),
        }
    }
}

pub struct Stmt {
    sql: Vec<u8>,
    /// The session's schema when it was prepared: the server runs a statement in the schema
    /// it was prepared in (switching to it for the execute and back), so one prepared
    /// afresh on another connection is prepared there, not in the session's current one.
    schema: Option<Arc<str>>,
    /// Names the statement in connections' caches: its text and schema, and which of the
    /// session's live statements with that text it is (two must not share a server one).
    key: u64,
    /// Its text and schema alone (`key` of the first of its twins).
    text_key: u64,
    /// Digest of the statement text, computed once at prepare.
    digest: u64,
    /// Shared, so an execute takes it without copying it.
    class: Arc<Classification>,
    params: u16,
    /// Parameter types the client last sent.
    types: Option<ParamTypes>,
    /// COM_STMT_SEND_LONG_DATA packets waiting for the next execute.
    long_data: Vec<Vec<u8>>,
    /// Long data the server would have refused (a parameter past the statement's, or more
    /// than the limit): every execute answers the server's error until COM_STMT_RESET, as
    /// the server's statement stays failed until then (kept here, not on a server
    /// statement, which the next execute may not meet).
    long_data_error: Option<LongDataError>,
    /// Where it last ran.
    last: Option<Target>,
    /// The session's `config_gen` when its schemas were last checked: a reload since may
    /// have taken them from the session's user or tenant.
    checked: u32,
    /// With the metadata cache: digest of the column definitions the client holds for it.
    meta: Option<u64>,
    /// Those came with an execute's answer (not the prepare's): they follow the parameters'
    /// types, and a server prepared afresh sends them again rather than leave them out.
    meta_from_execute: bool,
    /// Its cache key in the connection state it was last worked out for (see
    /// [`Stmt::key_on`]).
    last_key: Option<KeyIn>,
}

/// A statement's cache key on connections in one state: SipHash per execute cost more than
/// the rest of finding the server's statement, and a session's executes mostly find
/// connections in the state the one before did.
struct KeyIn {
    fp: u64,
    key: u64,
}

impl Stmt {
    /// [`cache_key`], remembered for the connection state it was worked out for.
    fn key_on(&mut self, conn: &BackendConn) -> u64 {
        match &self.last_key {
            Some(k) if k.fp == conn.applied.fp => k.key,
            _ => {
                let key = cache_key(self.key, conn);
                self.last_key = Some(KeyIn {
                    fp: conn.applied.fp,
                    key,
                });
                key
            }
        }
    }
}

#[derive(Default)]
pub struct Statements {
    /// FxHash: the ids are Switchyard's own, handed out in order.
    map: FxHashMap<u32, Stmt>,
    /// Per text (and schema) with live statements: how many, and the twin number the next
    /// one gets (FxHash: SipHash values already), so that a new statement is told apart
    /// from its live twins without reading every statement's text.
    twins: FxHashMap<u64, Twins>,
    next_id: u32,
    /// Bytes of long data held for all statements, bounded by the client packet limit.
    long_data_bytes: usize,
    /// Bytes of statement text held, bounded by [`MAX_SESSION_STMT_BYTES`].
    sql_bytes: usize,
    /// The statement the session's last COM_STMT_PREPARE created, if it succeeded.
    last_prepared: Option<u32>,
}

#[derive(Default)]
struct Twins {
    live: u32,
    next: u64,
}

/// The statement id MariaDB clients send right behind a COM_STMT_PREPARE, without waiting
/// for its answer (direct execution): it names the statement that prepare creates.
const LAST_PREPARED: u32 = u32::MAX;

impl Statements {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, id: u32) -> bool {
        self.map.contains_key(&id)
    }

    /// The cache key of statement `id` on `conn` (its text in the connection's state).
    pub fn key_on(&self, id: u32, conn: &BackendConn) -> Option<u64> {
        self.map.get(&id).map(|s| cache_key(s.key, conn))
    }

    /// A key for a new statement with text `sql` prepared in `schema`, distinct from the
    /// session's live ones: the text's own while none of its twins is live, so that
    /// sessions preparing the same text share a connection's server statement, else one
    /// numbered past every twin since (two live statements of a session must not share
    /// one: their cursors and parameter types are their own).
    /// Returns the text's key and the statement's.
    fn new_key(&self, sql: &[u8], schema: Option<&str>) -> (u64, u64) {
        let text = text_hash(sql, schema);
        let twin = self.twins.get(&text).map_or(0, |t| t.next);
        (
            text,
            text.wrapping_add(twin.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        )
    }

    fn insert(&mut self, id: u32, stmt: Stmt) {
        let twins = self.twins.entry(stmt.text_key).or_default();
        twins.live += 1;
        twins.next += 1;
        self.sql_bytes += stmt.sql.len();
        if let Some(old) = self.map.insert(id, stmt) {
            self.sql_bytes = self.sql_bytes.saturating_sub(old.sql.len());
            self.forget_twin(old.text_key);
        }
    }

    fn remove(&mut self, id: u32) -> Option<Stmt> {
        let stmt = self.map.remove(&id)?;
        self.sql_bytes = self.sql_bytes.saturating_sub(stmt.sql.len());
        self.forget_twin(stmt.text_key);
        // The server forgets its last statement with it: a direct execution then names no
        // statement.
        if self.last_prepared == Some(id) {
            self.last_prepared = None;
        }
        Some(stmt)
    }

    /// The last live twin gone, numbering starts over: no live key can repeat.
    fn forget_twin(&mut self, text_key: u64) {
        if let Some(t) = self.twins.get_mut(&text_key) {
            t.live -= 1;
            if t.live == 0 {
                self.twins.remove(&text_key);
            }
        }
    }

    pub fn cached_metadata(&self, id: u32) -> Option<u64> {
        self.map.get(&id).and_then(|s| s.meta)
    }

    pub fn meta_from_execute(&self, id: u32) -> bool {
        self.map.get(&id).is_some_and(|s| s.meta_from_execute)
    }

    /// Definitions an execute's answer carried.
    pub fn set_cached_metadata(&mut self, id: u32, meta: u64) {
        if let Some(s) = self.map.get_mut(&id) {
            s.meta = Some(meta);
            s.meta_from_execute = true;
        }
    }

    /// The statement a command's id names: its own, or for [`LAST_PREPARED`] the one the
    /// last prepare created (none when that prepare failed or the statement was closed, as
    /// the server answers).
    pub fn resolve(&self, id: u32) -> u32 {
        match (id, self.last_prepared) {
            (LAST_PREPARED, Some(last)) => last,
            _ => id,
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.twins.clear();
        self.long_data_bytes = 0;
        self.sql_bytes = 0;
        self.last_prepared = None;
    }

    /// The id the next prepared statement gets: never 0, never [`LAST_PREPARED`] (which
    /// names the last one prepared) and, once the counter wraps, never one a live statement
    /// holds.
    fn free_id(&self) -> u32 {
        let mut id = self.next_id;
        loop {
            id = id.wrapping_add(1);
            if id != 0 && id != LAST_PREPARED && !self.map.contains_key(&id) {
                return id;
            }
        }
    }

    /// Drops the long data held for `stmt`, giving its bytes back to the session's budget.
    fn drop_long_data(&mut self, id: u32) -> Vec<Vec<u8>> {
        let Some(s) = self.map.get_mut(&id) else {
            return Vec::new();
        };
        let chunks = std::mem::take(&mut s.long_data);
        let held: usize = chunks.iter().map(|c| held_cost(long_data_len(c))).sum();
        self.long_data_bytes = self.long_data_bytes.saturating_sub(held);
        chunks
    }

    /// Keeps a COM_STMT_SEND_LONG_DATA chunk until execute, unless the server would refuse
    /// it: a parameter the statement does not have, or long data that would outgrow `limit`
    /// (the session's, as the server refuses a parameter over `max_allowed_packet`). Then
    /// the statement's chunks are dropped and it stays failed until COM_STMT_RESET.
    fn keep_long_data(&mut self, id: u32, mut chunk: Vec<u8>, limit: usize) {
        let Some(s) = self.map.get(&id) else {
            return;
        };
        let Some(param) = command::long_data_param(&chunk) else {
            return;
        };
        if s.long_data_error.is_some() {
            return;
        }
        // A small chunk for the parameter of the one before is added to it; another is held
        // on its own, and costs its bookkeeping too: chunks of no data (which the server
        // takes, as an empty value) or of one byte each were otherwise held without limit.
        // Added up only to what any server takes in one packet (`max_allowed_packet` is
        // 1 KiB at least): a larger packet than the client sent could be refused whole.
        let follows = s.long_data.last().is_some_and(|last| {
            command::long_data_param(last) == Some(param)
                && last.len() + long_data_len(&chunk) <= MERGED_CHUNK_MAX
        });
        let len = if follows {
            long_data_len(&chunk)
        } else {
            held_cost(long_data_len(&chunk))
        };
        let error = if param >= s.params {
            Some(LongDataError::NoSuchParameter)
        } else if self.long_data_bytes + len > limit {
            Some(LongDataError::TooLong)
        } else {
            None
        };
        if let Some(e) = error {
            self.drop_long_data(id);
            if let Some(s) = self.map.get_mut(&id) {
                s.long_data_error = Some(e);
            }
            return;
        }
        self.long_data_bytes += len;
        let Some(s) = self.map.get_mut(&id) else {
            return;
        };
        match s.long_data.last_mut() {
            Some(last) if follows => last.extend_from_slice(&chunk[7..]),
            _ => {
                // A chunk read into a reused buffer would keep all of its room.
                if chunk.capacity() > 2 * chunk.len() + CHUNK_COST {
                    chunk.shrink_to_fit();
                }
                s.long_data.push(chunk);
            }
        }
    }
}

fn text_hash(sql: &[u8], schema: Option<&str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (sql, schema).hash(&mut h);
    h.finish()
}

/// A statement's key in `conn`'s cache: the same text prepared under other session
/// variables may mean something else, so they are part of it (the schema is part of the
/// statement's own key: it runs in the one it was prepared in, whichever the connection is
/// in).
pub(super) fn cache_key(stmt_key: u64, conn: &BackendConn) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (stmt_key, conn.applied.fp).hash(&mut h);
    h.finish()
}

/// ER_MAX_PREPARED_STMT_COUNT_REACHED: the server holds as many statements as it allows.
const MAX_PREPARED_STMT_COUNT_REACHED: u16 = 1461;

/// The largest packet small chunks of long data are added up to: the least
/// `max_allowed_packet` a server may have.
const MERGED_CHUNK_MAX: usize = 1024;

/// What holding a chunk of long data of its own costs beyond its data, counted against the
/// session's limit: its header and its vector.
const CHUNK_COST: usize = 64;

/// What a chunk held on its own with `data` bytes counts against the session's limit: a
/// small one its bookkeeping too (a chunk added to it later stays small, so the same
/// count is given back when it goes); a large one its data only, so that long data sent
/// in large chunks reaches the limit where the server's would.
fn held_cost(data: usize) -> usize {
    if data < MERGED_CHUNK_MAX {
        data + CHUNK_COST
    } else {
        data
    }
}

/// The data bytes of a COM_STMT_SEND_LONG_DATA payload (after command, statement id and
/// parameter number).
fn long_data_len(chunk: &[u8]) -> usize {
    chunk.len().saturating_sub(7)
}

/// Why a statement's long data failed it (see [`Stmt::long_data_error`]).
#[derive(Clone, Copy, Debug, PartialEq)]
enum LongDataError {
    NoSuchParameter,
    TooLong,
}

impl LongDataError {
    /// The server's answer to each execute of the failed statement: ER_WRONG_ARGUMENTS, or
    /// ER_UNKNOWN_ERROR with MySQL's and MariaDB's own text for long data over the limit.
    fn error(self, limit: usize) -> SessionError {
        match self {
            LongDataError::NoSuchParameter => SessionError::reply(
                1210,
                "HY000",
                "Incorrect arguments to mysqld_stmt_send_long_data",
            ),
            LongDataError::TooLong => SessionError::reply(
                1105,
                "HY000",
                format!(
                    "Parameter of prepared statement which is set through mysql_send_long_data() is longer than 'max_allowed_packet' bytes (Switchyard holds at most {limit} bytes of long data per session: server.max_packet)"
                ),
            ),
        }
    }
}

/// Statements a session may hold prepared at once: the server's default
/// `max_prepared_stmt_count` (for all its sessions together), so no session holds more
/// through Switchyard than it could directly, and a client that never closes its statements
/// gets the server's refusal instead of growing the session without bound.
pub const MAX_SESSION_STMTS: usize = 16382;

/// Bytes of statement text a session may hold prepared at once. The server keeps only the
/// statements its connections' caches hold (256 each), Switchyard every statement the
/// session has not closed: 16,382 statements of up to `max_packet` each were bounded by
/// nothing but the machine.
pub const MAX_SESSION_STMT_BYTES: usize = 64 << 20;

/// ER_MAX_PREPARED_STMT_COUNT_REACHED in the server's words.
fn too_many_stmts() -> SessionError {
    SessionError::reply(
        MAX_PREPARED_STMT_COUNT_REACHED,
        "42000",
        format!(
            "Can't create more than max_prepared_stmt_count statements (current value: {MAX_SESSION_STMTS})"
        ),
    )
}

/// The same refusal for statements' text past [`MAX_SESSION_STMT_BYTES`].
fn too_much_stmt_text() -> SessionError {
    SessionError::reply(
        MAX_PREPARED_STMT_COUNT_REACHED,
        "42000",
        format!(
            "Can't create more than max_prepared_stmt_count statements (Switchyard holds at most {} MiB of prepared statements' text per session)",
            MAX_SESSION_STMT_BYTES >> 20
        ),
    )
}

pub(super) fn unknown_stmt(id: u32, cmd: &str) -> SessionError {
    SessionError::reply(
        1243,
        "HY000",
        format!("Unknown prepared statement handler ({id}) given to {cmd}"),
    )
}

impl Session {
    /// Statements are prepared on the primary, whose answer (metadata, errors) is the
    /// authoritative one; replicas prepare them lazily when an execute is routed there.
    pub(super) async fn com_stmt_prepare(
        &mut self,
        rt: &RuntimeState,
        payload: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        // Whatever fails below, a direct execution behind this prepare must not run the
        // statement prepared before it.
        self.stmts.last_prepared = None;
        // The server counts before it reads the statement.
        if self.stmts.map.len() >= MAX_SESSION_STMTS {
            return Err(too_many_stmts());
        }
        if self.stmts.sql_bytes + payload.len() > MAX_SESSION_STMT_BYTES {
            return Err(too_much_stmt_text());
        }
        let q = match self.classify_now(rt, payload) {
            Some(q) => q,
            None => self.classify_later(rt, payload).await?,
        };
        let payload = &payload[..];
        self.check_schema_refs(rt, &payload[1..], &q.refs)?;
        let c = &*q.c;
        if c.effects.sets_password {
            return Err(super::error::password_refused());
        }
        if c.effects.kill {
            return Err(super::error::kill_unsupported(
                "KILL as a prepared statement",
            ));
        }
        self.require_tenant(rt, c, &payload[1..], &q.refs)?;
        if let Some(paused) = self.before_statement(rt)? {
            self.wait_out_pause(rt, paused).await?;
        }
        let t = match self.st.txn {
            Some(t) => t,
            None => self.prepare_target(rt).await?,
        };
        if c.effects.reads_what_writes_leave() {
            // The prepare's column definitions follow the values it finds (a user variable
            // another session's trigger set would lend its type).
            self.clear_what_others_left(rt, t).await?;
        }
        let id = self.stmts.free_id();
        let o = self.forward(t, payload, Expect::Prepare, Some(id)).await?;
        let Some(p) = o.prepared else {
            return Ok(());
        };
        self.stmts.next_id = id;
        self.stmts.last_prepared = Some(id);
        let (text_key, key) = self.stmts.new_key(&payload[1..], self.st.schema.as_deref());
        let open = self.st.pins.cursor_stmts_on(t);
        if let Some(conn) = self.held.get_mut(t) {
            let ck = cache_key(key, conn);
            let closed = conn.stmts.insert(ck, p.backend_id, o.metadata, &open);
            if close_all(conn, &closed).await.is_err() {
                self.held.take(t);
                self.lost_backend(t);
            }
        }
        let stmt = Stmt {
            schema: self.st.schema.clone(),
            key,
            text_key,
            digest: q.fingerprint,
            sql: payload[1..].to_vec(),
            // A copy of the session's own, not the worker's cached decision: every execute
            // clones and drops it, and once the session moves to another worker that would
            // write a reference count the old worker's sessions write too.
            class: Arc::new(Classification::clone(&q.c)),
            params: p.params,
            types: None,
            long_data: Vec::new(),
            long_data_error: None,
            last: Some(t),
            checked: self.config_gen,
            meta: o.metadata,
            meta_from_execute: false,
            last_key: None,
        };
        self.stmts.insert(id, stmt);
        Ok(())
    }

    /// A statement prepared before a reload the session has seen since is checked again as
    /// at its prepare: the schemas it names, and the one it runs in, may now be another
    /// tenant's (or out of the user's reach). It ran there as before the reload.
    fn recheck_after_reload(&mut self, rt: &RuntimeState, id: u32) -> Result<(), SessionError> {
        let Some(stmt) = self.stmts.map.get(&id) else {
            return Ok(());
        };
        self.check_schema_refs(rt, &stmt.sql, &crate::router::Refs::Unknown)?;
        if let Some(schema) = stmt.schema.as_deref() {
            // As a USE of it would find it (a shared schema, information_schema, is the
            // session's tenant's).
            let user = &self.who.user;
            let owner = super::tenant::tenant_for_schema(rt, user, schema, self.tenant.as_ref())?;
            if self.tenant.as_ref().is_none_or(|t| t.name != owner.name) {
                return Err(error::db_access_denied(&user.name, schema));
            }
        }
        if let Some(s) = self.stmts.map.get_mut(&id) {
            s.checked = self.config_gen;
        }
        Ok(())
    }

    /// The primary, or with the primary unreachable a replica (executes that must write
    /// will then fail with an ERR naming the primary, as any write does).
    async fn prepare_target(&mut self, rt: &RuntimeState) -> Result<Target, SessionError> {
        match self.ready(rt, Target::Primary).await {
            Ok(()) => Ok(Target::Primary),
            Err(SessionError::Backend { ref err, .. }) if err.is_unreachable() => {
                let any = route::Route {
                    dest: Destination::AnyReplica,
                    reason: "primary unreachable",
                    hint_refused: false,
                    causal: None,
                    max_lag: None,
                    any_server: false,
                };
                match self.resolve(rt, &any).await? {
                    Target::Primary => self
                        .ready(rt, Target::Primary)
                        .await
                        .map(|_| Target::Primary),
                    t => Ok(t),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// COM_STMT_EXECUTE and COM_STMT_BULK_EXECUTE: routed by the statement's class, prepared
    /// lazily where they run, the statement id mapped to that backend's.
    /// Returns the command's buffer, to read the next one into.
    pub(super) async fn com_stmt_execute(
        &mut self,
        rt: &RuntimeState,
        payload: Vec<u8>,
        run: Run,
    ) -> Result<Vec<u8>, SessionError> {
        let bulk_asked = self
            .who
            .ext_caps
            .contains(MariadbCapabilities::MARIADB_CLIENT_STMT_BULK_OPERATIONS);
        if let Some(refusal) = command::refuse_execute(&payload, run == Run::Bulk, bulk_asked) {
            return Err(match refusal {
                ExecuteRefusal::Malformed => error::malformed_packet(),
                ExecuteRefusal::Unsupported => error::unsupported_ps(),
            });
        }
        let id = self.stmts.resolve(command::padded_stmt_id(&payload));
        let stmt = self
            .stmts
            .map
            .get(&id)
            // The server names both commands so: one routine runs them.
            .ok_or_else(|| unknown_stmt(id, "mysqld_stmt_execute"))?;
        let class = Arc::clone(&stmt.class);
        let params = stmt.params;
        let checked = stmt.checked;
        if let Some(e) = stmt.long_data_error {
            return Err(e.error(rt.max_client_packet));
        }
        if let Some(types) = run.types(&payload, params) {
            // Most clients send the same types at every execute: no copy then.
            if let Some(s) = self.stmts.map.get_mut(&id) {
                if s.types.as_deref() != Some(types) {
                    s.types = Some(ParamTypes::from_slice(types));
                }
            }
        }
        let cursor = run == Run::Execute && command::execute_opens_cursor(&payload);
        if let Some(paused) = self.before_statement(rt)? {
            match self.wait_out_pause(rt, paused).await {
                Err(SessionError::Rerun(None)) => return Err(SessionError::Rerun(Some(payload))),
                r => r?,
            }
        }
        if checked != self.config_gen {
            self.recheck_after_reload(rt, id)?;
        }
        self.forget_look_back(rt, &class)?;
        let started = std::time::Instant::now();
        if self.in_replica_txn() {
            // A prepared SET is never recorded (`set_unreplayable` below): not on a replica.
            self.in_read_only_txn(rt, &class, None).await?;
        }
        let route = route::decide(&class, &self.view());
        let mut t = match self.resolve_now(rt, &route) {
            Some(t) => t,
            None => self.resolve(rt, &route).await?,
        };
        if class.effects.reads_what_writes_leave() {
            // Before the prepare: a reset forgets the connection's prepared statements.
            self.clear_what_others_left(rt, t).await?;
        }
        let step = match self.prepared_in_step(t, id) {
            Some(ready) => Ok(ready),
            None => self.prepare_in_step(t, id).await,
        };
        let step = match step {
            // A replica that cannot prepare it (say, DDL not replicated yet) is no reason
            // to fail a read the primary can serve.
            Err(e) if route.dest == Destination::AnyReplica && t != Target::Primary => {
                tracing::debug!(parent: &self.span(), error = %e, "replica could not prepare");
                t = Target::Primary;
                self.ready(rt, t).await?;
                self.prepare_in_step(t, id).await
            }
            other => other,
        };
        let (backend_id, ck) = match step {
            Ok(prepared) => prepared,
            Err(e) => {
                // The server's own statement would have run (its cursor closed, its long
                // data used up) and failed as this prepare did: under LOCK TABLES without
                // its tables, say.
                self.stmts.drop_long_data(id);
                self.drop_cursor(id).await;
                return Err(e);
            }
        };
        let chunks = self.stmts.drop_long_data(id);
        let long_data = !chunks.is_empty();
        if long_data {
            self.send_long_data(t, backend_id, chunks).await?;
        }
        let guard = self.write_guard(&class);
        self.hold_end = guard.is_some();
        let readied = if self.insert_id_differs(t) || class.class == Class::LastBackend {
            self.before_execute(t, id, &class).await
        } else {
            Ok(())
        };
        // The execute may never reach the server (a restore fails, a KILL QUERY comes
        // first), leaving its statement there with this execute's long data, which the next
        // session to take it from the pool would execute with, or without the types
        // recorded as sent. Closed, it is prepared again when next needed.
        if let Err(e) = readied {
            self.forget_server_stmt(t, ck, backend_id).await;
            return Err(e);
        }
        let mut payload = self.with_types(t, (id, ck), params, payload, run);
        command::set_stmt_id(&mut payload, backend_id);
        let mut o = match self.forward(t, &payload, Expect::ResultSets, None).await {
            Ok(o) => o,
            Err(e) => {
                self.count(&route, t, None, class.class == Class::Read);
                self.answer_lost(t, &class);
                self.forget_server_stmt(t, ck, backend_id).await;
                return Err(e);
            }
        };
        if o.err.is_some() {
            if long_data {
                self.forget_server_stmt(t, ck, backend_id).await;
            }
            // The server may have refused it before it read the types it carried (a bulk
            // execute of a statement that cannot take arrays): what the statement holds
            // there is not known, so the next execute sends its types.
            if let Some(cached) = self.held.get_mut(t).and_then(|c| c.stmts.get(ck)) {
                cached.types = None;
            }
            self.status_after_error(t, &class, &mut o).await?;
        }
        self.count(&route, t, Some(&o), class.class == Class::Read);
        self.metadata_sent(t, id, ck, &o);
        if let Some(s) = self.stmts.map.get(&id) {
            self.answered = Some(self.observe(rt, t, started, s.digest, &s.sql));
        }
        if let Some(s) = self.stmts.map.get_mut(&id) {
            s.last = Some(t);
        }
        if matches!(class.class, Class::SetSession | Class::Use(_)) && o.err.is_none() {
            self.st.pins.set_unreplayable();
        }
        if self.st.pins.has_cursor(id) {
            self.end_cursor(id, (t, backend_id), &o).await;
        }
        if cursor {
            self.cursor_opened(id, (t, backend_id), &o);
        }
        self.after_statement(t, &class, &o, &[], guard);
        if o.err.is_none() && class.effects.named_lock != crate::router::LockEffect::None {
            if let Some(sql) = self.stmts.map.get(&id).map(|s| s.sql.clone()) {
                self.follow_named_locks(t, &class, &sql, run == Run::Execute);
            }
        }
        if self.hold_end {
            self.release_answer().await?;
        }
        // The command's buffer, for the next one to be read into.
        Ok(payload)
    }

    /// What an execute on `t` needs first, when it needs anything: the session's
    /// LAST_INSERT_ID() there, the answer a ROW_COUNT()-like statement reads.
    async fn before_execute(
        &mut self,
        t: Target,
        id: u32,
        class: &Classification,
    ) -> Result<(), SessionError> {
        if self.insert_id_differs(t) {
            if let Some(sql) = self.stmts.map.get(&id).map(|s| s.sql.clone()) {
                self.restore_insert_id(t, &sql).await?;
            }
        }
        if class.class == Class::LastBackend {
            self.put_back_own_answer(t).await?;
        }
        Ok(())
    }

    /// [`prepare_in_step`](Self::prepare_in_step)'s common case without its futures: `id`
    /// is prepared on `t` already, with the definitions the client holds. None: prepare.
    pub(super) fn prepared_in_step(&mut self, t: Target, id: u32) -> Option<(u32, u64)> {
        let conn = self.held.get_mut(t)?;
        let key = self.stmts.map.get_mut(&id)?.key_on(conn);
        let bid = conn.stmts.get(key)?.id;
        self.definitions_match(t, id, key).then_some((bid, key))
    }

    /// The backend's id for client statement `id`, preparing it there first if needed, and
    /// the statement's key in that connection's cache (hashed once per execute: the
    /// connection's state does not change until it has run).
    pub(super) async fn prepare_on(
        &mut self,
        t: Target,
        id: u32,
    ) -> Result<(u32, u64), SessionError> {
        let conn = self
            .held
            .get_mut(t)
            .ok_or_else(|| internal("no connection"))?;
        let stmt = self
            .stmts
            .map
            .get_mut(&id)
            .ok_or_else(|| unknown_stmt(id, "mysqld_stmt_execute"))?;
        let key = stmt.key_on(conn);
        if let Some(c) = conn.stmts.get(key) {
            return Ok((c.id, key));
        }
        let mut p = Vec::with_capacity(stmt.sql.len() + 1);
        p.push(COM_STMT_PREPARE);
        p.extend_from_slice(&stmt.sql);
        let open = self.st.pins.cursor_stmts_on(t);
        let mut shed = false;
        loop {
            let o = match restore::prepare_in(conn, &p, stmt.schema.as_ref()).await {
                Ok(o) => o,
                // The statement's schema is gone: the server's refusal, the connection fine.
                Err(crate::backend::BackendError::Server(e)) => return Err(SessionError::Reply(e)),
                Err(e) => return Err(self.failed_before_statement(t, e)),
            };
            let closed = match (o.prepared, o.err) {
                (Some(ok), _) => {
                    let closed = conn.stmts.insert(key, ok.backend_id, o.metadata, &open);
                    if close_all(conn, &closed).await.is_err() {
                        self.held.take(t);
                        self.lost_backend(t);
                        return Err(internal("connection lost closing cached statements"));
                    }
                    return Ok((ok.backend_id, key));
                }
                // The server holds as many statements as it allows: the connection's least
                // used half are closed and the prepare tried once more.
                (None, Some(e)) if e.code == MAX_PREPARED_STMT_COUNT_REACHED && !shed => {
                    shed = true;
                    conn.stmts.shed_half(key, &open)
                }
                (None, Some(e)) => return Err(SessionError::Reply(*e)),
                (None, None) => return Err(internal("prepare gave no statement")),
            };
            if close_all(conn, &closed).await.is_err() {
                self.held.take(t);
                self.lost_backend(t);
                return Err(internal("connection lost closing cached statements"));
            }
        }
    }

    /// An execute with long data failed: the server may have refused the data (longer than
    /// its `max_allowed_packet`), and keeps such a statement failed until a COM_STMT_RESET,
    /// while the connection's next sessions share it. It is closed (COM_STMT_CLOSE leaves
    /// the error for SHOW WARNINGS) and prepared again where next needed.
    async fn forget_server_stmt(&mut self, t: Target, key: u64, backend_id: u32) {
        let Some(conn) = self.held.get_mut(t) else {
            return;
        };
        conn.stmts.remove(key);
        if close_all(conn, &[backend_id]).await.is_err() {
            self.held.take(t);
            self.lost_backend(t);
        }
    }

    /// Long data is kept by Switchyard until execute, when the backend is known.
    async fn send_long_data(
        &mut self,
        t: Target,
        backend_id: u32,
        chunks: Vec<Vec<u8>>,
    ) -> Result<(), SessionError> {
        let conn = self
            .held
            .get_mut(t)
            .ok_or_else(|| internal("no connection"))?;
        for mut chunk in chunks {
            command::set_stmt_id(&mut chunk, backend_id);
            if let Err(e) = conn.send_no_reply(&chunk).await {
                return Err(self.failed_before_statement(t, e));
            }
        }
        Ok(())
    }

    /// Adds the parameter types to an execute that relies on types this server statement
    /// does not hold (never sent here, or another session's were sent last).
    /// `ck`: the statement's key in the connection's cache.
    fn with_types(
        &mut self,
        t: Target,
        (id, ck): (u32, u64),
        params: u16,
        payload: Vec<u8>,
        run: Run,
    ) -> Vec<u8> {
        let Some(stmt) = self.stmts.map.get(&id) else {
            return payload;
        };
        let Some(conn) = self.held.get_mut(t) else {
            return payload;
        };
        let Some(cached) = conn.stmts.get(ck) else {
            return payload;
        };
        if let Some(sent) = run.types(&payload, params) {
            if cached.types.as_deref() != Some(sent) {
                cached.types = Some(ParamTypes::from_slice(sent));
            }
            return payload;
        }
        if cached.types == stmt.types {
            return payload;
        }
        match stmt
            .types
            .as_ref()
            .and_then(|ty| run.with_types(&payload, params, ty))
        {
            Some(p) => {
                cached.types = stmt.types.clone();
                p
            }
            None => payload,
        }
    }

    pub(super) fn com_stmt_send_long_data(&mut self, rt: &RuntimeState, payload: Vec<u8>) {
        // No reply, even for an unknown statement: the server reports that at execute.
        if let Some(id) = command::stmt_id(&payload).map(|id| self.stmts.resolve(id)) {
            self.stmts.keep_long_data(id, payload, rt.max_client_packet);
        }
    }

    pub(super) async fn com_stmt_close(&mut self, payload: &[u8]) -> Result<(), SessionError> {
        // A short one names a statement as the server reads it (see `padded_stmt_id`).
        let id = self.stmts.resolve(command::padded_stmt_id(payload));
        self.stmts.drop_long_data(id);
        if self.stmts.remove(id).is_none() {
            return Ok(());
        }
        // The server's copy stays in its connection's cache for the next session that
        // prepares the same text; its cursor, if it had one, is closed.
        if let Some(at) = self.st.pins.close_cursor(id) {
            self.reset_cursor(at).await;
        }
        Ok(())
    }

    pub(super) async fn com_stmt_reset(
        &mut self,
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Result<(), SessionError> {
        let id = self.stmts.resolve(command::padded_stmt_id(payload));
        let stmt = self
            .stmts
            .map
            .get_mut(&id)
            .ok_or_else(|| unknown_stmt(id, "mysqld_stmt_reset"))?;
        let last = stmt.last;
        stmt.long_data_error = None;
        self.stmts.drop_long_data(id);
        // An open cursor's statement first: a SET since its execute may have the session's
        // text name another statement on that connection, and the reset must close it.
        let on_backend = self.held_cursor(id).or_else(|| {
            last.and_then(|t| {
                let conn = self.held.get(t)?;
                let key = self.stmts.key_on(id, conn)?;
                conn.stmts.peek(key).map(|c| (t, c.id))
            })
        });
        match on_backend {
            Some((t, bid)) => {
                let mut p = command::padded(payload, 5);
                command::set_stmt_id(&mut p, bid);
                self.ready(rt, t).await?;
                self.forward(t, &p, Expect::Single, None).await?;
                // The reset closed the statement's cursor, wherever it was opened.
                if let Some(at) = self.st.pins.close_cursor(id) {
                    self.reset_cursor_elsewhere(at, (t, bid)).await;
                }
                self.publish_if_changed();
                Ok(())
            }
            // Nothing of it lives on any backend: resetting Switchyard's copy is the answer.
            None => self.send_ok(self.answer_seq).await,
        }
    }
}

/// Sends COM_STMT_CLOSE for each server statement id (no answer comes).
async fn close_all(
    conn: &mut BackendConn,
    ids: &[u32],
) -> Result<(), crate::backend::BackendError> {
    for bid in ids {
        let mut p = vec![COM_STMT_CLOSE];
        p.extend_from_slice(&bid.to_le_bytes());
        conn.send_no_reply(&p).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt() -> Stmt {
        Stmt {
            sql: b"SELECT ?".to_vec(),
            schema: None,
            key: 0,
            text_key: 0,
            digest: 0,
            class: Arc::new(crate::router::Router::new().classify(b"SELECT ?")),
            params: 1,
            types: None,
            long_data: Vec::new(),
            long_data_error: None,
            last: None,
            checked: 0,
            meta: None,
            meta_from_execute: false,
            last_key: None,
        }
    }

    fn chunk(id: u32, len: usize) -> Vec<u8> {
        let mut p = vec![command::COM_STMT_SEND_LONG_DATA];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p.resize(7 + len, b'x');
        p
    }

    #[test]
    fn direct_execution_names_the_last_prepared_statement() {
        let mut s = Statements::default();
        assert_eq!(s.resolve(LAST_PREPARED), LAST_PREPARED, "nothing prepared");
        s.last_prepared = Some(3);
        assert_eq!((s.resolve(LAST_PREPARED), s.resolve(2)), (3, 2));
        s.map.insert(3, stmt());
        s.remove(3);
        assert_eq!(s.resolve(LAST_PREPARED), LAST_PREPARED, "closed");
    }

    /// Twins (one text, one schema) get distinct keys, also after one of them is closed;
    /// the text's own key goes to the first while none is live, and the schema tells texts
    /// apart.
    #[test]
    fn live_twins_never_share_a_key() {
        let mut s = Statements::default();
        let prepare = |s: &mut Statements, id: u32, schema: Option<&str>| {
            let (text_key, key) = s.new_key(b"SELECT ?", schema);
            s.insert(
                id,
                Stmt {
                    key,
                    text_key,
                    ..stmt()
                },
            );
            key
        };
        let a = prepare(&mut s, 1, Some("wf_acme"));
        let b = prepare(&mut s, 2, Some("wf_acme"));
        assert_ne!(a, b);
        assert_eq!(a, text_hash(b"SELECT ?", Some("wf_acme")));
        s.remove(1);
        let c = prepare(&mut s, 3, Some("wf_acme"));
        assert!(
            ![a, b].contains(&c),
            "a twin prepared after the first closed"
        );
        let d = prepare(&mut s, 4, Some("rb_acme"));
        assert!(![a, b, c].contains(&d));
        s.remove(2);
        s.remove(3);
        assert_eq!(
            prepare(&mut s, 5, Some("wf_acme")),
            a,
            "no twin live: the text's own"
        );
        s.clear();
        assert_eq!(prepare(&mut s, 6, Some("wf_acme")), a);
    }

    #[test]
    fn ids_wrap_around_live_statements() {
        let mut s = Statements::default();
        s.map.insert(1, stmt());
        s.next_id = u32::MAX;
        assert_eq!(s.free_id(), 2, "0 and the live 1 are skipped");
        s.next_id = u32::MAX - 1;
        assert_eq!(s.free_id(), 2, "the last-prepared id is never given");
    }

    #[test]
    fn long_data_is_bounded_and_overflow_is_remembered() {
        let mut s = Statements::default();
        s.map.insert(1, stmt());
        s.map.insert(2, stmt());
        // Each chunk held on its own counts its cost; one added to the chunk before it
        // (same parameter, small) its data only.
        s.keep_long_data(1, chunk(1, 600), 1200);
        s.keep_long_data(2, chunk(2, 300), 1200);
        assert_eq!(s.long_data_bytes, 900 + 2 * CHUNK_COST);
        s.keep_long_data(1, chunk(1, 200), 1200);
        assert_eq!(s.map[&1].long_data_error, Some(LongDataError::TooLong));
        assert!(s.map[&1].long_data.is_empty(), "chunks dropped");
        assert_eq!(s.long_data_bytes, 300 + CHUNK_COST, "budget given back");
        s.keep_long_data(1, chunk(1, 10), 1200);
        assert!(s.map[&1].long_data.is_empty(), "stays failed");
        s.drop_long_data(1);
        assert!(s.map[&1].long_data_error.is_some(), "until COM_STMT_RESET");
        assert_eq!(s.drop_long_data(2).len(), 1);
        assert_eq!(s.long_data_bytes, 0);
    }

    /// Small chunks for one parameter are held as one, up to the least packet a server
    /// takes; larger ones stay as the client sent them.
    #[test]
    fn small_chunks_for_one_parameter_are_held_as_one() {
        let mut s = Statements::default();
        s.map.insert(1, stmt());
        for _ in 0..1000 {
            s.keep_long_data(1, chunk(1, 0), 1 << 20);
        }
        s.keep_long_data(1, chunk(1, 100), 1 << 20);
        assert_eq!(s.map[&1].long_data.len(), 1);
        assert_eq!(s.map[&1].long_data[0].len(), 7 + 100);
        assert_eq!(s.long_data_bytes, 100 + CHUNK_COST);
        s.keep_long_data(1, chunk(1, MERGED_CHUNK_MAX), 1 << 20);
        assert_eq!(s.map[&1].long_data.len(), 2, "too big to add to the first");
        assert_eq!(s.drop_long_data(1).len(), 2);
        assert_eq!(s.long_data_bytes, 0);
    }

    #[test]
    fn long_data_for_a_parameter_the_statement_lacks_fails_it() {
        let mut s = Statements::default();
        s.map.insert(1, stmt());
        s.keep_long_data(1, chunk(1, 10), 1000);
        let mut past = chunk(1, 10);
        past[5] = 1; // parameter 1 of a one-parameter statement
        s.keep_long_data(1, past, 1000);
        assert_eq!(
            s.map[&1].long_data_error,
            Some(LongDataError::NoSuchParameter)
        );
        assert!(s.map[&1].long_data.is_empty(), "the good chunk dropped too");
        assert_eq!(s.long_data_bytes, 0);
    }
}
