//! Statement classification: leading keyword, bounded sqlparser for the SELECT family, digest cache, hints.
//!
//! Pure: no I/O, no session state. SELECT-family statements are parsed only up to a size
//! and nesting limit; decisions are cached by normalized digest.

mod builtins;
mod classify;
mod clock;
mod digest;
mod fingerprint;
mod hints;
mod keyword;
pub mod kill;
mod lexer;
pub(crate) mod like;
mod lists;
mod memo;
pub mod replicas;
pub mod route;
pub use classify::{LIGHT_MAX_SQL, MAX_NESTING, MAX_PARSED_SQL};
pub use fingerprint::{fingerprint, fingerprint_hash};
pub use memo::Refs;
#[cfg(test)]
mod flood_tests;
mod schemas;
mod select;
pub use select::{lock_calls, LockCalls};
mod set;
#[cfg(test)]
mod tests;
mod versioned;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::per_worker::{self, PerWorker};

pub(crate) use lexer::is_ident_byte;
pub use lexer::MultiByte;
pub use schemas::{schema_refs, visit_schema_refs};
pub use set::{client_charset, session_integer, SetInteger};
pub use set::{set_list, SetList};

/// `sql` as the classifier must read it under the session's `sql_mode`
/// (`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`): the classifier lexes as the default mode does,
/// so a backslash that is only a character under the session's mode is made one that is
/// only a character under the default. None when the default reads it right.
pub fn as_default_sql_mode(
    sql: &[u8],
    no_backslash_escapes: bool,
    ansi_quotes: bool,
) -> Option<Vec<u8>> {
    let escapes = lexer::Escapes {
        single: !no_backslash_escapes,
        double: !no_backslash_escapes && !ansi_quotes,
    };
    lexer::as_default_escapes(sql, escapes)
}

/// `sql` as the classifier must read it when the client's character set is `cs`: see
/// [`MultiByte`]. None when it reads right as it is.
pub fn as_single_byte(sql: &[u8], cs: MultiByte) -> Option<Vec<u8>> {
    lexer::as_single_byte(sql, cs)
}

/// Whether [`as_single_byte`] can change `sql` for some [`MultiByte`] set (one cheap pass).
pub fn may_pair_bytes(sql: &[u8]) -> bool {
    lexer::may_pair_bytes(sql)
}

/// Default bound on cached SELECT-family decisions.
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

/// Classifies statements. Holds only bounded caches of SELECT-family decisions keyed by
/// normalized digest, so one `Router` can be shared by every session (`&self`, thread-safe).
/// Each worker thread has a cache of its own: a hit never touches a lock or a cache line
/// another core writes.
pub struct Router {
    caches: PerWorker<digest::Cache>,
    memos: PerWorker<memo::Memo>,
    /// Entries each worker's cache holds at most.
    entries: usize,
    unparsed: classify::Unparsed,
    /// Full passes run for statements the light pass gave up on: [long, new shape].
    full_passes: [AtomicU64; 2],
    /// What executable comments the backends skip (see `versioned`).
    pub server_version: versioned::ServerVersion,
}

impl Router {
    pub fn new() -> Self {
        Self::with_cache_entries(DEFAULT_CACHE_ENTRIES)
    }

    /// A router whose cache holds at most `entries` decisions (at least one).
    pub fn with_cache_entries(entries: usize) -> Self {
        Router {
            caches: PerWorker::default(),
            memos: PerWorker::default(),
            entries,
            unparsed: classify::Unparsed::default(),
            full_passes: Default::default(),
            server_version: versioned::ServerVersion::default(),
        }
    }

    fn cache(&self) -> &digest::Cache {
        self.cache_of(per_worker::current_slot())
    }

    /// Worker slot `worker`'s cache, made the first time.
    fn cache_of(&self, worker: usize) -> &digest::Cache {
        self.caches
            .slot_or(worker, || digest::Cache::new(self.entries))
    }

    /// Classifies one COM_QUERY / COM_STMT_PREPARE payload (raw bytes, any encoding).
    /// Never panics; whatever it cannot prove safe for a replica goes to the primary.
    pub fn classify(&self, sql: &[u8]) -> Classification {
        let c = classify::classify(self.cache(), Some(&self.unparsed), sql);
        self.server_version.guard(c, sql).0
    }

    /// [`Router::classify`] and the statement's [`fingerprint_hash`], for a lone SELECT from
    /// the same pass over its text.
    pub fn classify_fingerprinted(&self, sql: &[u8]) -> (Classification, u64) {
        let (c, h) = classify::classify_fingerprinted(self.cache(), Some(&self.unparsed), sql);
        (self.server_version.guard(c, sql).0, h)
    }

    /// What a COM_QUERY needs from the classifier: [`Router::classify_fingerprinted`] and
    /// the schema names the statement spells out, when known. The light pass if it is
    /// enough, else the full one, in the caller's thread.
    pub fn classify_query(&self, sql: &[u8]) -> Classified {
        self.try_classify_query(sql)
            .unwrap_or_else(|| self.classify_query_full(per_worker::current_slot(), sql))
    }

    /// [`Router::classify_query`] as far as the event loop may go (the light pass): `None`
    /// for a statement longer than [`LIGHT_MAX_SQL`] or whose SELECT misses the digest
    /// cache, which [`Router::classify_query_full`] answers off the loop. A lone SELECT
    /// whose shape (its text with literals blanked) this worker saw before is answered
    /// from memory.
    pub fn try_classify_query(&self, sql: &[u8]) -> Option<Classified> {
        let memo = self.memos.local_or(|| memo::Memo::new(self.entries));
        // Only SELECTs are remembered: another statement is not looked over for a shape.
        let recalled = keyword::may_select(sql).then(|| memo.recall(sql));
        let missed = match recalled {
            Some(Ok(a)) => {
                return Some(Classified {
                    c: a.c,
                    fingerprint: a.fingerprint,
                    refs: a.refs,
                })
            }
            Some(Err(missed)) => missed,
            None => None,
        };
        let (c, lone) = classify::classify_light(self.cache(), Some(&self.unparsed), sql)?;
        let (c, guarded) = self.server_version.guard(c, sql);
        let c = std::sync::Arc::new(c);
        let fingerprint = match (lone, missed) {
            // Not remembered when the guard decided: its comment was in a string, which the
            // shape blanks, and the shape's other members would inherit the answer.
            (Some(h), Some(m)) if !guarded => {
                memo.remember(m, sql, &c, h);
                h
            }
            (Some(h), _) => h,
            (None, _) => fingerprint_hash(sql),
        };
        Some(Classified {
            c,
            fingerprint,
            refs: Refs::Unknown,
        })
    }

    /// The full pass for what [`Router::try_classify_query`] gave up on, on any thread:
    /// with the digest cache of worker slot `worker` (`per_worker::current_slot` on the
    /// session's worker), which the light pass then hits. The shape is not remembered here:
    /// the next statement of it is, by the light pass, from the cache.
    pub fn classify_query_full(&self, worker: usize, sql: &[u8]) -> Classified {
        let why = usize::from(sql.len() <= LIGHT_MAX_SQL);
        self.full_passes[why].fetch_add(1, Ordering::Relaxed);
        let cache = self.cache_of(worker);
        let (c, fingerprint) = classify::classify_fingerprinted(cache, Some(&self.unparsed), sql);
        Classified {
            c: std::sync::Arc::new(self.server_version.guard(c, sql).0),
            fingerprint,
            refs: Refs::Unknown,
        }
    }

    /// Like [`Router::classify`], for EXPLAIN ROUTE: not counted as traffic.
    pub fn explain(&self, sql: &[u8]) -> Classification {
        let c = classify::classify(self.cache(), None, sql);
        self.server_version.guard(c, sql).0
    }

    /// Full passes for statements the light pass gave up on: (longer than
    /// [`LIGHT_MAX_SQL`], a SELECT shape not in the digest cache).
    pub fn full_pass_counts(&self) -> (u64, u64) {
        let [long, new] = &self.full_passes;
        (long.load(Ordering::Relaxed), new.load(Ordering::Relaxed))
    }

    /// SELECT-family statements sent to the primary unparsed: (too long, too deep).
    pub fn unparsed_counts(&self) -> (u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (get(&self.unparsed.too_long), get(&self.unparsed.too_deep))
    }

    /// Number of cached decisions, every worker's (for admin stats).
    pub fn cached_entries(&self) -> usize {
        self.caches.iter().map(digest::Cache::len).sum()
    }

    /// Number of remembered statement shapes, every worker's.
    pub fn remembered_shapes(&self) -> usize {
        self.memos.iter().map(memo::Memo::len).sum()
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a comment hint asks a statement to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteHint {
    Primary,
    Replica,
}

/// Hints read from comments before the first keyword, e.g.
/// `/* route=replica */`, `/* consistency=read_your_writes max_lag=1s */`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    pub route: Option<RouteHint>,
    /// Raw value of `consistency=` (validated by the session).
    pub consistency: Option<String>,
    /// `max_lag=1s` / `500ms`.
    pub max_lag: Option<std::time::Duration>,
    /// `pin=on` keeps the session on its primary connection (no multiplexing) until
    /// `pin=off`.
    pub pin: Option<bool>,
    /// Hint keys or values that were not understood (reported, never silently dropped).
    pub unknown: Vec<String>,
}

/// Why a statement must run on the primary. `Display` gives a short, stable name
/// (`write`, `ddl`, `locking read`, ...) shown by admin and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrimaryReason {
    Write,
    Ddl,
    LockingRead,
    SideEffectFunction,
    /// A stored function (schema-qualified, or a name no built-in has): it may write, so it
    /// counts as a write for read-your-writes, unlike GET_LOCK and the other side-effect
    /// built-ins.
    StoredFunction,
    UserVariable,
    FoundRows,
    Call,
    TransactionControl,
    LockTables,
    MultiStatement,
    SessionSet,
    Unparsed,
    /// A SELECT-family statement longer than [`MAX_PARSED_SQL`]: not parsed.
    TooLong,
    /// Parentheses nested deeper than [`MAX_NESTING`]: not parsed.
    TooDeep,
    /// A read of what the server it runs on holds (its threads, transactions, variables:
    /// `information_schema.PROCESSLIST`, `performance_schema`): the primary's, where the
    /// session's writes and sessions are. Not a write.
    ServerState,
    Unknown,
}

impl PrimaryReason {
    /// The short, stable name used by admin output, logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        use PrimaryReason::*;
        match self {
            Write => "write",
            Ddl => "ddl",
            LockingRead => "locking read",
            SideEffectFunction => "side-effect function",
            StoredFunction => "stored function",
            UserVariable => "user variable",
            FoundRows => "found_rows",
            Call => "call",
            TransactionControl => "transaction control",
            LockTables => "lock tables",
            MultiStatement => "multi-statement",
            SessionSet => "session set",
            Unparsed => "unparsed",
            TooLong => "too long",
            TooDeep => "too deep",
            ServerState => "server state",
            Unknown => "unknown",
        }
    }
}

impl fmt::Display for PrimaryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a statement is, as far as routing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Provably side-effect-free read: may run on a replica.
    Read,
    /// Must run on the primary (unless a session rule says otherwise, e.g. a read-only txn).
    Primary(PrimaryReason),
    /// Refers to the session's previous statement (SHOW WARNINGS/ERRORS/COUNT(*) WARNINGS,
    /// GET DIAGNOSTICS, SELECT ROW_COUNT(), SELECT FOUND_ROWS() without SQL_CALC):
    /// run where the previous statement ran.
    LastBackend,
    /// BEGIN / START TRANSACTION [...]; `read_only` for START TRANSACTION READ ONLY.
    Begin { read_only: bool },
    /// `USE db` (single statement). The session checks the tenant and tracks the schema.
    Use(String),
    /// `SET` of session state only (system variables, NAMES, CHARACTER SET, SESSION
    /// TRANSACTION ...): runs on the primary and is replayed on every other backend
    /// connection the session uses. A SET that also assigns a user variable is
    /// `SetSession` with `effects.user_var_assign`.
    SetSession,
}

/// The named-lock count of GET_LOCK calls that ran once per row (see `select::per_row`):
/// more than any count of releases lifts.
pub const UNCOUNTED_LOCKS: u32 = u32::MAX;

/// One GET_LOCK, RELEASE_LOCK or RELEASE_ALL_LOCKS call of a statement, in order
/// ([`lock_calls`]). A lock is named by its literal's text as written (`'upgrade'`): a name
/// given otherwise (a parameter, an expression) is None, and only such a release counts it
/// out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockCall {
    Get(Option<Box<str>>),
    Release(Option<Box<str>>),
    ReleaseAll,
}

/// The lock calls [`lock_calls`] lists at most: past them a statement's locks are
/// uncounted.
pub const MAX_LOCK_CALLS: usize = 64;

/// Named-lock effect of a statement (GET_LOCK family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockEffect {
    #[default]
    None,
    /// Number of GET_LOCK calls in the statement.
    Acquire(u32),
    /// Number of RELEASE_LOCK calls.
    Release(u32),
    /// RELEASE_ALL_LOCKS().
    ReleaseAll,
}

/// What a statement does beyond its class: session-state side effects the session must
/// track (pins, schema), and what its answer can depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    pub named_lock: LockEffect,
    /// Names from CREATE TEMPORARY TABLE, as written (`[schema.]name`, backticks removed).
    pub temp_tables_created: Vec<String>,
    /// Names from DROP [TEMPORARY] TABLE, as written (the session ignores unknown ones).
    pub tables_dropped: Vec<String>,
    /// RENAME TABLE, or an ALTER TABLE that renames: a temporary table the session holds
    /// may now go by a name no statement of it created.
    pub renames_tables: bool,
    /// CREATE or DROP of a TEMPORARY table or sequence: DDL that commits no open
    /// transaction (and that a read-only one refuses, as it refuses a write).
    pub temporary_ddl: bool,
    /// LOCK TABLES, or FLUSH TABLES ... WITH READ LOCK / FOR EXPORT.
    pub lock_tables: bool,
    pub unlock_tables: bool,
    /// `BACKUP STAGE`: Some(true) for a stage that holds the backup lock, Some(false) for
    /// `BACKUP STAGE END`.
    pub backup_stage: Option<bool>,
    /// `BACKUP LOCK t` (Some(true)) or `BACKUP UNLOCK` (Some(false)).
    pub backup_lock: Option<bool>,
    /// `SET @x`, `SELECT ... INTO @x`, `@x :=`.
    pub user_var_assign: bool,
    /// `LAST_INSERT_ID(expr)`: sets what LAST_INSERT_ID() answers on the connection, which
    /// only an INSERT's or UPDATE's OK reports.
    pub sets_insert_id: bool,
    /// SQL_CALC_FOUND_ROWS present.
    pub calc_found_rows: bool,
    /// The answer also reports on the previous statement (`SHOW VARIABLES` listing
    /// `last_gtid` beside `server_id`): the connection that ran it is kept for this one,
    /// which finds it there when routed to the same server.
    pub looks_back: bool,
    /// Databases named by `USE` inside a multi-statement.
    pub use_dbs: Vec<String>,
    /// `DROP DATABASE db`: the server leaves a connection whose default database it was
    /// with none.
    pub dropped_database: Option<String>,
    /// A session change Switchyard cannot replay on another connection: SET/USE/PREPARE
    /// inside a multi-statement; a SET of a variable the server uses once and forgets
    /// (`insert_id` for the next insert, the RAND() seeds; `last_insert_id`, which the
    /// session's own LAST_INSERT_ID() emulation would overwrite); SET ROLE; what lives on
    /// the connection or is not known (PREPARE and EXECUTE by name, EXECUTE IMMEDIATE,
    /// HANDLER OPEN, a compound statement). The session pins.
    pub unreplayable: bool,
    /// `SET ROLE`: the role stays current on the connection through COM_RESET_CONNECTION,
    /// which is closed rather than pooled when the session lets it go (it pins too).
    pub sets_role: bool,
    /// `SET TRANSACTION` without a scope: characteristics the server keeps for the
    /// connection's next transaction only, which a replay elsewhere could not reproduce and
    /// another session must not inherit. The session pins until a transaction ends.
    pub next_transaction: bool,
    /// COMMIT or ROLLBACK of the whole transaction (not to a savepoint): on the server it
    /// also clears what `SET TRANSACTION` kept for the next one.
    pub ends_transaction: bool,
    /// COMMIT or ROLLBACK ... RELEASE: the server ends the session after its answer.
    pub releases: bool,
    /// COMMIT or ROLLBACK ... NO RELEASE: the session goes on whatever `completion_type`
    /// says.
    pub no_release: bool,
    /// A SET of `completion_type` to a value Switchyard reads: whether every COMMIT and
    /// ROLLBACK then releases (2, 'RELEASE') or not (0, 1, 'CHAIN', 'NO_CHAIN', DEFAULT).
    pub completion_release: Option<bool>,
    /// `XA PREPARE`: the connection holds a prepared transaction until XA COMMIT or
    /// ROLLBACK, and MariaDB resets such a connection (COM_RESET_CONNECTION,
    /// COM_CHANGE_USER) into one where every table access fails (1031): closed rather than
    /// reset when its session lets it go, which leaves the transaction to XA RECOVER as a
    /// client's disconnect does.
    pub prepares_xa: bool,
    /// `XA COMMIT`: it may commit a branch another connection prepared (a transaction
    /// manager's recovery), whose writes this session never ran: a write for the reads
    /// after it.
    pub commits_xa: bool,
    /// A CALL or a stored function, alone or among a multi-statement's
    /// parts: what the routine changed in the session is unknown, so the session is pinned.
    pub calls_procedure: bool,
    /// `EXECUTE` or `EXECUTE IMMEDIATE`: runs a statement the classifier never read (an
    /// INSERT prepared by name), so a write for the reads after it.
    pub runs_unread: bool,
    /// A KILL statement: its id is a Switchyard session id, so it never reaches a backend.
    pub kill: bool,
    /// `SET PASSWORD`, or MySQL's `ALTER USER USER()` / `CURRENT_USER`: refused. Any
    /// account may change its own password without a
    /// privilege, and the account is one Switchyard logs in as with the password its config
    /// holds (a tenant's `backend_user`, shared by a cluster's tenants, or the client's own):
    /// changed, every later login to the servers with it fails.
    pub sets_password: bool,
    /// A SET of `profiling`: the server keeps the statements it profiled (SHOW PROFILES,
    /// their text) on the connection, through COM_RESET_CONNECTION and COM_CHANGE_USER.
    pub profiling: bool,
    /// NEXTVAL, SETVAL or `NEXT VALUE FOR`: the connection keeps the sequence's last value
    /// (LASTVAL, `PREVIOUS VALUE FOR`) until it is reset, for this session and no other.
    pub sequence_value: bool,
    /// LASTVAL or `PREVIOUS VALUE FOR`: answers with the value a sequence last took on the
    /// connection, for whichever session moved it there.
    pub reads_sequence_value: bool,
    /// Reads a user variable (`@x` anywhere but as what a SET, `:=` or `INTO` assigns): it
    /// answers with the value the connection holds, which a trigger of another session's
    /// write may have set.
    pub reads_user_var: bool,
    /// A multi-statement some part of which left something on the connection (see
    /// [`changes_session`](Self::changes_session)), whatever a later part undid: a failure
    /// part-way leaves it there (`LOCK TABLES t WRITE; INSERT ...; UNLOCK TABLES` whose
    /// INSERT fails keeps the lock).
    pub parts_change_session: bool,
    /// A read that names no table and calls no function (`SELECT @@max_allowed_packet`,
    /// `SELECT 1`): its answer depends on no write, so it waits for none (consistency).
    pub reads_no_data: bool,
}

impl Effects {
    /// Leaves on its connection something a later statement of the session may find there:
    /// a named lock, a temporary table, a table or backup lock, a user variable, a session
    /// change (a SET or USE among several statements), a sequence's value, the next
    /// transaction's characteristics, profiling.
    pub fn changes_session(&self) -> bool {
        matches!(self.named_lock, LockEffect::Acquire(_))
            || !self.temp_tables_created.is_empty()
            || self.lock_tables
            || self.backup_stage == Some(true)
            || self.backup_lock == Some(true)
            || self.user_var_assign
            || self.sets_insert_id
            || self.unreplayable
            || !self.use_dbs.is_empty()
            || self.sequence_value
            || self.next_transaction
            || self.profiling
    }

    /// Reads what a write can leave on its connection without naming it, by a trigger or a
    /// column default: a sequence's last value, a user variable.
    pub fn reads_what_writes_leave(&self) -> bool {
        self.reads_sequence_value || self.reads_user_var
    }
}

/// A COM_QUERY's classification, `fingerprint_hash` and the schema names it spells out.
#[derive(Debug, Clone)]
pub struct Classified {
    /// Shared with the memory of its shape, if any (a hit copies no classification).
    pub c: std::sync::Arc<Classification>,
    pub fingerprint: u64,
    pub refs: Refs,
}

/// The full answer for one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub class: Class,
    pub hints: Hints,
    pub effects: Effects,
}
