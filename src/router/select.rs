//! Deciding a SELECT-family statement: a token scan for what makes it primary-only, then
//! sqlparser (MySqlDialect) as a second check on the AST.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, ObjectNamePart, Query, Select, SetExpr, Statement, Visit, Visitor};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::builtins;
use super::lexer::Resume as At;
use super::lexer::{ident_text, Cursor, Kind, Resume, Token};
use super::{Class, Effects, LockCall, LockEffect, PrimaryReason, MAX_LOCK_CALLS};

/// What a function call means for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    GetLock,
    ReleaseLock,
    ReleaseAllLocks,
    /// Reads the previous statement's outcome: fine where that statement ran.
    FoundRows,
    RowCount,
    /// Moves a sequence: sets the value LASTVAL answers on this connection.
    Sequence,
    /// LASTVAL: answers the value a sequence last took on this connection.
    LastValue,
    /// `LAST_INSERT_ID(expr)`: sets the value LAST_INSERT_ID() answers on this connection.
    SetInsertId,
    /// Side effects or bound to the primary connection.
    Other,
}

/// Built-in functions that change state, wait, or answer about this connection: never on a
/// replica. RAND, UUID, NOW and the like are fine there and are not listed.
pub(crate) fn call_kind(name: &[u8]) -> Option<Call> {
    // The longest name listed is 33 bytes (WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS).
    let mut buf = [0u8; 40];
    let upper = buf.get_mut(..name.len())?;
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    let kind = match &*upper {
        b"GET_LOCK" => Call::GetLock,
        b"RELEASE_LOCK" => Call::ReleaseLock,
        b"RELEASE_ALL_LOCKS" => Call::ReleaseAllLocks,
        b"FOUND_ROWS" => Call::FoundRows,
        b"ROW_COUNT" => Call::RowCount,
        b"NEXTVAL" | b"SETVAL" => Call::Sequence,
        b"LASTVAL" => Call::LastValue,
        b"IS_FREE_LOCK"
        | b"IS_USED_LOCK"
        | b"LAST_INSERT_ID"
        | b"SLEEP"
        | b"BENCHMARK"
        | b"LOAD_FILE"
        | b"MASTER_POS_WAIT"
        | b"MASTER_GTID_WAIT"
        | b"WAIT_FOR_EXECUTED_GTID_SET"
        | b"SOURCE_POS_WAIT"
        | b"WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS"
        | b"UUID_SHORT"
        | b"CONNECTION_ID" => Call::Other,
        _ => return None,
    };
    Some(kind)
}

/// Combines lock effects in statement order. When acquire and release mix, the result
/// keeps the acquire: holding a pin too long is safe, lifting it early is not.
pub(crate) fn merge_lock(prev: LockEffect, next: LockEffect) -> LockEffect {
    use LockEffect::*;
    match (prev, next) {
        (p, None) => p,
        (None, n) | (ReleaseAll, n @ Acquire(_)) | (_, n @ ReleaseAll) => n,
        (Acquire(a), Acquire(b)) => Acquire(a.saturating_add(b)),
        (Release(a), Release(b)) => Release(a.saturating_add(b)),
        (p @ Acquire(_), Release(_)) | (p @ ReleaseAll, Release(_)) => p,
        (Release(_), n @ Acquire(_)) => n,
    }
}

/// Findings of a token scan; shared by SELECT, SET and DO.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub reason: Option<PrimaryReason>,
    pub effects: Effects,
    pub has_from: bool,
    /// A top-level FROM names a table (not DUAL): a function in the select list runs once
    /// per row.
    pub from_rows: bool,
    /// Parentheses open where the scan is (a FROM inside them is a subquery's, or
    /// `TRIM(... FROM ...)`'s).
    pub depth: u32,
    /// FROM or TABLE: the statement reads some table.
    pub names_tables: bool,
    /// FOUND_ROWS(), ROW_COUNT(), @@warning_count ...: refer to the previous statement.
    pub previous_statement: Option<PrimaryReason>,
    /// SET assigns and reads user variables by design; only their other effects count there.
    pub user_vars_allowed: bool,
    /// Look for values that differ at each evaluation (the clock, random numbers): a SET
    /// of one gets another value when it is replayed on another connection later.
    pub watch_volatile: bool,
    /// One was found.
    pub volatile: bool,
    /// An unqualified call of a name that is no built-in (`next_doc_number()`), or a word
    /// before `(` that is none (a CTE's name): in an expression, a stored function's call.
    pub unknown_call: bool,
}

/// The clock's and random values, as functions (`NOW()`) or bare words (`CURRENT_TIMESTAMP`).
fn is_volatile(name: &[u8]) -> bool {
    const NAMES: [&str; 17] = [
        "NOW",
        "SYSDATE",
        "CURRENT_TIMESTAMP",
        "CURRENT_DATE",
        "CURRENT_TIME",
        "CURDATE",
        "CURTIME",
        "LOCALTIME",
        "LOCALTIMESTAMP",
        "UNIX_TIMESTAMP",
        "UTC_TIMESTAMP",
        "UTC_DATE",
        "UTC_TIME",
        "RAND",
        "UUID",
        "UUID_SHORT",
        "SYS_GUID",
    ];
    NAMES
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

impl Scan {
    /// Keeps the strongest reason, so the answer does not depend on token order.
    fn hit(&mut self, r: PrimaryReason) {
        if self.reason.is_none_or(|old| rank(r) < rank(old)) {
            self.reason = Some(r);
        }
    }

    fn call(&mut self, call: Call) {
        let lock = match call {
            Call::GetLock => LockEffect::Acquire(1),
            Call::ReleaseLock => LockEffect::Release(1),
            Call::ReleaseAllLocks => LockEffect::ReleaseAll,
            Call::FoundRows => {
                self.previous_statement = Some(PrimaryReason::FoundRows);
                return;
            }
            Call::RowCount => {
                self.previous_statement
                    .get_or_insert(PrimaryReason::SideEffectFunction);
                return;
            }
            Call::Sequence => {
                self.effects.sequence_value = true;
                LockEffect::None
            }
            Call::LastValue => {
                self.effects.reads_sequence_value = true;
                LockEffect::None
            }
            Call::SetInsertId => {
                self.effects.sets_insert_id = true;
                LockEffect::None
            }
            Call::Other => LockEffect::None,
        };
        self.effects.named_lock = merge_lock(self.effects.named_lock, lock);
        self.hit(PrimaryReason::SideEffectFunction);
    }

    /// The class the scan alone decides, if any.
    pub fn decided(&self) -> Option<Class> {
        if let Some(r) = self.reason {
            return Some(Class::Primary(r));
        }
        let prev = self.previous_statement?;
        Some(if self.has_from {
            Class::Primary(prev)
        } else {
            Class::LastBackend
        })
    }
}

fn rank(r: PrimaryReason) -> u8 {
    use PrimaryReason::*;
    match r {
        Write => 0,
        StoredFunction => 1,
        LockingRead => 2,
        UserVariable => 3,
        SideEffectFunction => 4,
        FoundRows => 5,
        _ => 6,
    }
}

/// Scans the rest of the statement under `cur` for locking clauses, INTO, user variables,
/// side-effect functions and SQL_CALC_FOUND_ROWS.
pub(crate) fn scan(cur: &mut Cursor) -> Scan {
    scan_into(cur, Scan::default())
}

/// Like [`scan`], starting from (and adding to) `s`.
pub(crate) fn scan_into(cur: &mut Cursor, mut s: Scan) -> Scan {
    let mut prev: Option<Token> = None;
    while let Some(t) = cur.next_tok() {
        match t.kind {
            Kind::Word => scan_word(cur, t, prev, &mut s),
            Kind::Punct(b'(') => s.depth += 1,
            Kind::Punct(b')') => s.depth = s.depth.saturating_sub(1),
            // `` `information_schema`.PROCESSLIST ``, as tools quote it.
            Kind::QuotedIdent if quoted_server_schema(cur.text(t)).is_some() => {
                let performance = quoted_server_schema(cur.text(t)) == Some(true);
                server_table(cur, performance, &mut s);
            }
            Kind::QuotedIdent if cur.peek().is_some_and(|n| n.is_punct(b'(')) => {
                let name = cur.text(t);
                let inner = name.get(1..name.len().saturating_sub(1)).unwrap_or(b"");
                function_call(inner, true, prev, cur, &mut s);
            }
            Kind::UserVar => {
                if !s.user_vars_allowed {
                    s.hit(PrimaryReason::UserVariable);
                }
                if cur.peek().is_some_and(|n| n.kind == Kind::Assign) {
                    s.effects.user_var_assign = true;
                } else {
                    s.effects.reads_user_var = true;
                }
            }
            Kind::SysVar => {
                system_variable(cur.text(t), &mut s);
                // A dot after the token: its scope and name were parted by an executable
                // comment (`@@session/*!*/.last_gtid`), and the name read is not the one.
                if cur.peek().is_some_and(|n| n.is_punct(b'.')) {
                    s.hit(PrimaryReason::Unknown);
                }
            }
            _ => {}
        }
        prev = Some(t);
    }
    if s.from_rows {
        s.effects.named_lock = per_row(s.effects.named_lock);
    }
    s
}

/// A named-lock effect of calls that run once per row (`SELECT GET_LOCK(CONCAT('job', id),
/// 0) FROM jobs`, `UPDATE t SET c = GET_LOCK(...)`): how many locks is not known, so no
/// count of RELEASE_LOCK calls ends the pin (RELEASE_ALL_LOCKS, a reset or the session's
/// end do).
pub(crate) fn per_row(lock: LockEffect) -> LockEffect {
    match lock {
        LockEffect::Acquire(_) => LockEffect::Acquire(super::UNCOUNTED_LOCKS),
        other => other,
    }
}

/// A quoted identifier (`` `name` ``, its quotes included) that names `information_schema`
/// (false) or `performance_schema` (true); None for any other. Compared in place: ORMs quote
/// every name, and a statement seen for the first time is scanned name by name.
fn quoted_server_schema(quoted: &[u8]) -> Option<bool> {
    let name = quoted.get(1..quoted.len().checked_sub(1)?)?;
    if name.eq_ignore_ascii_case(b"information_schema") {
        Some(false)
    } else if name.eq_ignore_ascii_case(b"performance_schema") {
        Some(true)
    } else {
        None
    }
}

fn scan_word(cur: &mut Cursor, t: Token, prev: Option<Token>, s: &mut Scan) {
    if s.watch_volatile && is_volatile(cur.text(t)) {
        s.volatile = true;
    }
    if cur.peek().is_some_and(|n| n.is_punct(b'(')) {
        function_call(cur.text(t), false, prev, cur, s);
        return;
    }
    let w = cur.text(t);
    let is = |kw: &str| w.eq_ignore_ascii_case(kw.as_bytes());
    if is("FOR") {
        if cur.peek_is("UPDATE") || cur.peek_is("SHARE") {
            s.hit(PrimaryReason::LockingRead);
        }
    } else if is("LOCK") {
        if cur.eat_seq(&["IN", "SHARE", "MODE"]) {
            s.hit(PrimaryReason::LockingRead);
        }
    } else if is("INTO") {
        into_target(cur, s);
    } else if is("SQL_CALC_FOUND_ROWS") {
        s.effects.calc_found_rows = true;
        s.hit(PrimaryReason::FoundRows);
    } else if w.len() == 18 && (is("INFORMATION_SCHEMA") || is("PERFORMANCE_SCHEMA")) {
        // (Unquoted here; a quoted one in `scan_into`.)
        server_table(cur, is("PERFORMANCE_SCHEMA"), s);
    } else if is("FROM") {
        s.has_from = true;
        s.names_tables = true;
        s.from_rows |= s.depth == 0 && !cur.peek_is("DUAL");
    } else if is("TABLE") {
        s.names_tables = true;
    } else if (is("NEXT") || is("PREVIOUS")) && cur.eat_seq(&["VALUE", "FOR"]) {
        s.effects.sequence_value |= is("NEXT");
        s.effects.reads_sequence_value |= is("PREVIOUS");
        s.hit(PrimaryReason::SideEffectFunction);
    }
}

fn into_target(cur: &mut Cursor, s: &mut Scan) {
    match cur.peek() {
        Some(n) if n.kind == Kind::UserVar => {
            s.effects.user_var_assign = true;
            s.hit(PrimaryReason::UserVariable);
            // What INTO assigns is not read: `INTO @a, @b` is passed over.
            while cur.peek().is_some_and(|n| n.kind == Kind::UserVar) {
                cur.next_tok();
                if !cur.peek().is_some_and(|n| n.is_punct(b',')) {
                    break;
                }
                cur.next_tok();
            }
        }
        Some(n) if cur.is_word(n, "OUTFILE") || cur.is_word(n, "DUMPFILE") => {
            s.hit(PrimaryReason::Write)
        }
        // INTO a procedure variable or anything else is not a plain read.
        _ => s.hit(PrimaryReason::Unknown),
    }
}

/// Tables of `information_schema` that answer for the server they are read on (its threads,
/// transactions, locks, variables), as `SHOW PROCESSLIST` and `@@read_only` do. Not the
/// status counters: `SHOW STATUS` reads a replica's too (and a session's own, its replica
/// connection's: `SSL_VERSION`).
const SERVER_TABLES: [&str; 13] = [
    "PROCESSLIST",
    "SYSTEM_VARIABLES",
    "INNODB_TRX",
    "INNODB_LOCKS",
    "INNODB_LOCK_WAITS",
    "GLOBAL_VARIABLES",
    "SESSION_VARIABLES",
    "USER_VARIABLES",
    "METADATA_LOCK_INFO",
    "USER_STATISTICS",
    "CLIENT_STATISTICS",
    "TABLE_STATISTICS",
    "INDEX_STATISTICS",
];

/// After `information_schema` or `performance_schema` (`performance`): a read of what the
/// server it runs on holds (every performance_schema table, the listed information_schema
/// ones) goes to the primary, where the client's writes and sessions are, not to a replica
/// that answers for itself (`read_only` ON, its own threads).
fn server_table(cur: &mut Cursor, performance: bool, s: &mut Scan) {
    if !cur.peek().is_some_and(|n| n.is_punct(b'.')) {
        return;
    }
    let mut ahead = cur.clone();
    ahead.next_tok();
    let Some(name) = ahead.peek() else {
        return;
    };
    let name = ident_text(ahead.src(), name);
    if performance || SERVER_TABLES.iter().any(|t| name.eq_ignore_ascii_case(t)) {
        s.hit(PrimaryReason::ServerState);
    }
}

/// `name(`: a denylisted built-in, or a stored function (schema-qualified: surely; any
/// other name no built-in has: in an expression), which may do anything.
/// A call of `name`, whose `(` is the next token under `cur`; `quoted`: in backticks.
fn function_call(name: &[u8], quoted: bool, prev: Option<Token>, cur: &Cursor, s: &mut Scan) {
    if prev.is_some_and(|p| p.is_punct(b'.')) {
        s.hit(PrimaryReason::StoredFunction);
        // What it left in the session (a named lock, a temporary table, a user variable)
        // is as unknown as a procedure's: its session keeps the connection as after a CALL.
        s.effects.calls_procedure = true;
    } else if !builtins::is_builtin(name, quoted) {
        // Perhaps a stored function, perhaps a word before `(` (a CTE's name, `COLUMNS (`):
        // SET and DO, whose values are expressions, take it for a stored function; a
        // SELECT asks its AST.
        s.unknown_call = true;
    } else if let Some(call) = call_kind(name) {
        let sets_insert_id = name.eq_ignore_ascii_case(b"LAST_INSERT_ID") && has_argument(cur);
        s.call(if sets_insert_id {
            Call::SetInsertId
        } else {
            call
        });
    }
}

/// The named-lock calls of `sql`, in order, each with its lock's name when a literal gives
/// it; None past [`MAX_LOCK_CALLS`]. Read from the statement's own text each time one with
/// a named-lock effect runs: the classification is shared by statements that differ only
/// in their literals, the names among them.
pub fn lock_calls(sql: &[u8]) -> Option<LockCalls> {
    let mut cur = Cursor::new(
        sql,
        At {
            pos: 0,
            in_exec: false,
        },
    );
    // What a versioned comment holds runs on some servers only.
    let versioned =
        memchr::memmem::find(sql, b"/*!").is_some() || memchr::memmem::find(sql, b"/*M!").is_some();
    let mut out = LockCalls {
        calls: Vec::new(),
        plain: !versioned,
    };
    let mut first = true;
    let mut alias = false;
    while let Some(t) = cur.next_tok() {
        let opens = cur.peek().is_some_and(|n| n.is_punct(b'('));
        let kind = match t.kind {
            Kind::Word if opens => call_kind(cur.text(t)),
            Kind::QuotedIdent if opens => call_kind(ident_text(cur.src(), t).as_bytes()),
            _ => None,
        };
        let call = match kind {
            Some(Call::GetLock) => LockCall::Get(literal_argument(&cur)),
            Some(Call::ReleaseLock) => LockCall::Release(literal_argument(&cur)),
            Some(Call::ReleaseAllLocks) => LockCall::ReleaseAll,
            // Another function (a backticked built-in among them: `COALESCE`(1, ...) may
            // not run what follows): not plain.
            _ if opens => {
                out.plain = false;
                first = false;
                continue;
            }
            _ => {
                out.plain &= (alias && t.kind == Kind::Word) || plain_token(&cur, t, first);
                alias = t.kind == Kind::Word && cur.is_word(t, "AS");
                first = false;
                continue;
            }
        };
        first = false;
        alias = false;
        if out.calls.len() == MAX_LOCK_CALLS {
            return None;
        }
        out.calls.push(call);
    }
    Some(out)
}

/// A statement's named-lock calls ([`lock_calls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockCalls {
    pub calls: Vec<LockCall>,
    /// The statement is a `SELECT` or `DO` of the calls alone (their arguments literals or
    /// parameters, perhaps aliased): each call ran once. Otherwise one may not have run (a
    /// branch not taken, a FROM over no rows) or run again.
    pub plain: bool,
}

/// Whether `t` (not a lock call) leaves a statement plain: its leading SELECT or DO, a
/// literal or parameter, parentheses and commas, an alias.
fn plain_token(cur: &Cursor, t: Token, first: bool) -> bool {
    match t.kind {
        Kind::Word if first => cur.is_word(t, "SELECT") || cur.is_word(t, "DO"),
        Kind::Word => cur.is_word(t, "AS"),
        Kind::Str | Kind::Num | Kind::QuotedIdent => true,
        Kind::Punct(b) => matches!(b, b'(' | b')' | b',' | b'?'),
        _ => false,
    }
}

/// The call's first argument when it is a string literal alone (`GET_LOCK('job', 5)`): its
/// text as written, quotes included.
fn literal_argument(cur: &Cursor) -> Option<Box<str>> {
    let mut ahead = cur.clone();
    ahead.next_tok();
    let t = ahead.next_tok().filter(|t| t.kind == Kind::Str)?;
    let next = ahead.peek()?;
    (next.is_punct(b',') || next.is_punct(b')'))
        .then(|| String::from_utf8_lossy(ahead.text(t)).into())
}

/// Whether the call whose `(` is the next token passes an argument.
fn has_argument(cur: &Cursor) -> bool {
    let mut ahead = cur.clone();
    ahead.next_tok();
    !ahead.peek().is_some_and(|n| n.is_punct(b')'))
}

fn system_variable(text: &[u8], s: &mut Scan) {
    // A name spelt in a way not read here may be any variable: the primary answers it.
    let Some((_, name)) = super::lexer::sysvar_parts(text) else {
        s.hit(PrimaryReason::Unknown);
        return;
    };
    match variable_kind(name) {
        VariableKind::Connection => s.hit(PrimaryReason::SideEffectFunction),
        VariableKind::PreviousStatement => {
            s.previous_statement
                .get_or_insert(PrimaryReason::SideEffectFunction);
        }
        VariableKind::PerServer => s.hit(PrimaryReason::Unknown),
        VariableKind::Plain => {}
    }
}

/// What a system variable's value depends on, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VariableKind {
    /// The connection's last insert id (`identity`, `last_insert_id`).
    Connection,
    /// The previous statement on the connection: its warnings, errors, or (`last_gtid`) the
    /// GTID of its write, where the write ran.
    PreviousStatement,
    /// The server itself: drivers read these to find the primary, and a replica's answer
    /// would mislead them.
    PerServer,
    /// The session's settings or the server's, alike on every server of a tenant.
    Plain,
}

/// Variables that answer the connection's last insert id (see [`VariableKind`]).
const CONNECTION_VARIABLES: [&str; 3] = ["identity", "last_insert_id", "pseudo_thread_id"];

/// Variables whose value is the previous statement's.
const PREVIOUS_STATEMENT_VARIABLES: [&str; 3] = ["warning_count", "error_count", "last_gtid"];

/// Variables that answer for the server, by name; and every `gtid_*` one besides.
const PER_SERVER_VARIABLES: [&str; 6] = [
    "read_only",
    "super_read_only",
    "innodb_read_only",
    "server_id",
    "server_uuid",
    "hostname",
];

/// The `gtid_*` variables of MariaDB and MySQL, for patterns (`SHOW VARIABLES LIKE`) that
/// cannot be matched against a prefix.
const GTID_VARIABLES: [&str; 16] = [
    "gtid_binlog_pos",
    "gtid_binlog_state",
    "gtid_cleanup_batch_size",
    "gtid_current_pos",
    "gtid_domain_id",
    "gtid_ignore_duplicates",
    "gtid_pos_auto_engines",
    "gtid_seq_no",
    "gtid_slave_pos",
    "gtid_strict_mode",
    "gtid_executed",
    "gtid_executed_compression_period",
    "gtid_mode",
    "gtid_next",
    "gtid_owned",
    "gtid_purged",
];

/// Every variable whose kind is not [`VariableKind::Plain`], by name: what a
/// `SHOW VARIABLES LIKE` pattern is matched against.
pub(crate) fn routed_variables() -> impl Iterator<Item = &'static str> {
    CONNECTION_VARIABLES
        .iter()
        .chain(&PREVIOUS_STATEMENT_VARIABLES)
        .chain(&PER_SERVER_VARIABLES)
        .chain(&GTID_VARIABLES)
        .copied()
}

pub(crate) fn variable_kind(name: &[u8]) -> VariableKind {
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if CONNECTION_VARIABLES.iter().any(|n| is(n)) {
        VariableKind::Connection
    } else if PREVIOUS_STATEMENT_VARIABLES.iter().any(|n| is(n)) {
        VariableKind::PreviousStatement
    } else if PER_SERVER_VARIABLES.iter().any(|n| is(n))
        || name.len() > 5 && name[..5].eq_ignore_ascii_case(b"gtid_")
    {
        VariableKind::PerServer
    } else {
        VariableKind::Plain
    }
}

/// Decides one SELECT-family statement (no `;` inside). The answer depends only on the
/// token stream, so it may be cached by digest.
pub(crate) fn decide(text: &str) -> (Class, Effects) {
    let mut cur = Cursor::new(
        text.as_bytes(),
        Resume {
            pos: 0,
            in_exec: false,
        },
    );
    let scan = scan(&mut cur);
    if let Some(class) = scan.decided() {
        // A stored function outranks what else the scan found (a user variable, FOUND_ROWS(),
        // FOR UPDATE): the tree tells a call of no built-in's name from a word before `(`.
        let stored = Class::Primary(PrimaryReason::StoredFunction);
        let outranked = class != stored && class != Class::Primary(PrimaryReason::Write);
        if scan.unknown_call && outranked && calls_stored_function(text) {
            let effects = Effects {
                calls_procedure: true,
                ..scan.effects
            };
            return (stored, effects);
        }
        if class == Class::LastBackend && leads_with_cte(text) {
            return (last_backend_unless_more(text), scan.effects);
        }
        return (class, scan.effects);
    }
    let ast = ast_check(text);
    let class = match ast.reason {
        Some(r) => Class::Primary(r),
        None => Class::Read,
    };
    let reads_no_data = class == Class::Read && !scan.names_tables && !ast.calls;
    let effects = Effects {
        reads_no_data,
        // An unqualified stored function's call (the scan pins a qualified one).
        calls_procedure: scan.effects.calls_procedure
            || class == Class::Primary(PrimaryReason::StoredFunction),
        ..scan.effects
    };
    (class, effects)
}

fn leads_with_cte(text: &str) -> bool {
    let resume = Resume {
        pos: 0,
        in_exec: false,
    };
    Cursor::new(text.as_bytes(), resume).peek_is("WITH")
}

/// A statement about the previous one goes where that ran, perhaps a replica: one led by a
/// CTE may be a write besides (`WITH c AS (...) UPDATE t SET a = ROW_COUNT()` names no
/// FROM), which the AST tells.
fn last_backend_unless_more(text: &str) -> Class {
    match ast_check(text).reason {
        None | Some(PrimaryReason::SideEffectFunction) => Class::LastBackend,
        Some(r) => Class::Primary(r),
    }
}

/// What sqlparser's AST says of a statement.
struct Ast {
    /// Why it is not a plain read; `None`: a provable plain read.
    reason: Option<PrimaryReason>,
    /// It calls a function (a stored one may read tables). The token scan cannot tell a
    /// call from a keyword before `(` (`IN (`, `UNION (`); the AST can.
    calls: bool,
}

/// Parses with sqlparser.
fn ast_check(text: &str) -> Ast {
    let Ok(stmts) = Parser::parse_sql(&MySqlDialect {}, text) else {
        return Ast {
            reason: Some(PrimaryReason::Unparsed),
            calls: true,
        };
    };
    let mut check = AstCheck::default();
    let reason = match stmts.as_slice() {
        [stmt @ Statement::Query(_)] => stmt.visit(&mut check).break_value(),
        [_] => Some(PrimaryReason::Unknown),
        _ => Some(PrimaryReason::Unparsed),
    };
    Ast {
        reason,
        calls: check.calls,
    }
}

/// Whether the statement calls a function of no built-in's name (a stored function); true
/// when sqlparser cannot read it (the scan saw such a call, or the word before a `(`).
fn calls_stored_function(text: &str) -> bool {
    let Ok(stmts) = Parser::parse_sql(&MySqlDialect {}, text) else {
        return true;
    };
    let mut find = StoredCalls;
    stmts.iter().any(|s| s.visit(&mut find).is_break())
}

/// Stops at a call of a function no built-in has the name of.
struct StoredCalls;

impl Visitor for StoredCalls {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(f) if stored_function_name(&f.name.0) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
}

/// A function name that is a stored function's: schema-qualified, or no built-in's.
fn stored_function_name(parts: &[ObjectNamePart]) -> bool {
    match parts {
        [ObjectNamePart::Identifier(id)] => {
            !builtins::is_builtin(id.value.as_bytes(), id.quote_style.is_some())
        }
        _ => true,
    }
}

/// Catches what the token scan might miss: locking clauses, data-changing query bodies,
/// SELECT ... INTO, and denylisted or stored functions.
#[derive(Default)]
struct AstCheck {
    calls: bool,
}

impl Visitor for AstCheck {
    type Break = PrimaryReason;

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<PrimaryReason> {
        if !q.locks.is_empty() {
            return ControlFlow::Break(PrimaryReason::LockingRead);
        }
        match *q.body {
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                ControlFlow::Break(PrimaryReason::Write)
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<PrimaryReason> {
        if select.into.is_some() {
            return ControlFlow::Break(PrimaryReason::Unknown);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<PrimaryReason> {
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        self.calls = true;
        let parts = &f.name.0;
        // A name the server does not know as a built-in is a stored function's, which may
        // write: `SELECT next_doc_number()` as much as `SELECT db.f()`.
        if stored_function_name(parts) {
            return ControlFlow::Break(PrimaryReason::StoredFunction);
        }
        if let [ObjectNamePart::Identifier(id)] = parts.as_slice() {
            if call_kind(id.value.as_bytes()).is_some() {
                return ControlFlow::Break(PrimaryReason::SideEffectFunction);
            }
        }
        ControlFlow::Continue(())
    }
}
