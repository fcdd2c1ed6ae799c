//! SET statements: session variables (replayable), server-wide changes, user variables.

use super::classify::{Ctx, Piece};
use super::lexer::{ident_text, sysvar_parts, Cursor, Kind, Token};
use super::select::{self, Scan};
use super::{Class, Effects, PrimaryReason};

use PrimaryReason as R;

/// Classifies the statement after its `SET` keyword.
pub(crate) fn statement(ctx: &Ctx, mut cur: Cursor) -> Piece {
    if cur.eat("STATEMENT") {
        return set_statement_for(ctx, cur);
    }
    if cur.peek_is("ROLE") {
        let effects = Effects {
            sets_role: true,
            unreplayable: true,
            ..Effects::default()
        };
        return Piece::with(Class::Primary(R::Ddl), effects);
    }
    if cur.peek_is("PASSWORD") {
        let effects = Effects {
            sets_password: true,
            ..Effects::default()
        };
        return Piece::with(Class::Primary(R::Ddl), effects);
    }
    if cur.eat_seq(&["DEFAULT", "ROLE"]) {
        return Piece::primary(R::Ddl);
    }
    // Without a scope, SET TRANSACTION applies to the next transaction only.
    if cur.peek_is("TRANSACTION") {
        let effects = Effects {
            next_transaction: true,
            ..Effects::default()
        };
        return Piece::with(Class::Primary(R::TransactionControl), effects);
    }
    let body = cur.resume_point();
    let targets = targets(cur);
    let allow = Scan {
        user_vars_allowed: true,
        watch_volatile: true,
        ..Scan::default()
    };
    let scan = select::scan_into(&mut Cursor::new(ctx.sql, body), allow);
    // `SET @@tx_read_only = 1` alone, its value plain: SET TRANSACTION's. A value that does
    // more (a function, a lock, a user variable) goes the general way, never replayed.
    let plain_value = scan.effects == Effects::default() && !scan.unknown_call;
    if targets.next_transaction && !targets.other_target && !targets.global && plain_value {
        let effects = Effects {
            next_transaction: true,
            ..Effects::default()
        };
        return Piece::with(Class::Primary(R::TransactionControl), effects);
    }
    let mut effects = scan.effects;
    // A user variable set to a literal is replayed with the other SETs wherever the
    // session goes; one set to anything else (NOW(), @y, a subquery) would get another
    // value on replay, so the session stays on the connection that has it.
    // The scan also flags each top-level `@y := 'a'`, which the targets judge here; an
    // assignment nested in a value makes that value no literal.
    if targets.user_var {
        effects.user_var_assign = !targets.user_values_literal;
    }
    // The scan counts `@x` in `SET @x = 1` as read: only what a value reads is.
    effects.reads_user_var = targets.reads_user_var;
    effects.profiling = targets.profiling;
    // A session variable set to what a table holds (`SET time_zone = (SELECT tz FROM
    // prefs ...)`) would be read again, perhaps changed or from a lagging replica, by a
    // replay: the session stays on the connection that has it.
    // So would one set to the clock or a random value (`SET timestamp = UNIX_TIMESTAMP()`):
    // replayed later it gets a later time, and two sessions' same text would share a
    // fingerprint though their values differ.
    // Beside other targets, a next transaction's characteristic keeps the session on the
    // connection that has it: replayed, it would hold for one more transaction there.
    effects.unreplayable = targets.one_shot
        || targets.next_transaction
        || (targets.session_var && (scan.names_tables || scan.volatile));
    // `SET GLOBAL a = 1, SESSION b = 2` (or `, @u = 1`): the statement runs as a global
    // change, never replayed, so its session part lives on this connection only.
    effects.unreplayable |= targets.global && targets.session_scoped;
    // A value from a stored function (`SET @n = next_doc_number()`) runs it where the SET
    // runs, once: replayed, it would run again; what it left on the connection stays the
    // session's, as after a CALL.
    if scan.unknown_call {
        effects.unreplayable = true;
        effects.calls_procedure = true;
    }
    // A client character set Switchyard cannot read (`SET NAMES gbk /*x*/`, `SET
    // character_set_client = @cs`): how the server splits and reads the session's next
    // statements is unknown, and a statement the classifier misreads (a GBK trail byte
    // taken for an escape, a `;` seen inside a string) must not leave what it ran on a
    // pooled connection. The session keeps its connection, reset before any other gets it.
    if !targets.global && charset_change(ctx.sql) == CharsetChange::Unread {
        effects.unreplayable = true;
    }
    // `SET GLOBAL completion_type` is the next sessions' default, not this one's.
    effects.completion_release = targets.completion_release.filter(|_| !targets.global);
    // A value with side effects must not be replayed on another connection.
    let class = if targets.global {
        Class::Primary(R::Ddl)
    } else if scan.unknown_call && scan.reason != Some(R::Write) {
        // Outranks a side-effect built-in beside it: a stored function counts as a write.
        Class::Primary(R::StoredFunction)
    } else if let Some(r) = scan.reason {
        Class::Primary(r)
    } else if let Some(r) = scan.previous_statement {
        Class::Primary(r)
    } else {
        Class::SetSession
    };
    Piece::with(class, effects)
}

struct Targets {
    global: bool,
    /// Some assignment is to the session's own state: a session variable (no modifier, or
    /// the last one SESSION or LOCAL) or a user variable.
    session_scoped: bool,
    user_var: bool,
    /// Every value assigned to a user variable is a literal (a number, a string, NULL,
    /// TRUE, FALSE, with a sign).
    user_values_literal: bool,
    /// A value reads a user variable.
    reads_user_var: bool,
    /// A session (system) variable is among the variables set.
    session_var: bool,
    /// `profiling` is one of the variables set.
    profiling: bool,
    /// One of the variables set is one a replay would wrongly set again ([`ONE_SHOT`]).
    one_shot: bool,
    /// `completion_type`'s new value, if one is set to a value read here
    /// ([`release_value`]).
    completion_release: Option<bool>,
    /// A transaction characteristic is set with `@@` and no scope (`SET @@tx_read_only =
    /// 1`): the server sets it for the next transaction only, as SET TRANSACTION does.
    next_transaction: bool,
    /// Something other than that is set too.
    other_target: bool,
}

/// The variables that `@@name`, without a scope, sets for the next transaction only.
const NEXT_TRANSACTION: [&str; 4] = [
    "tx_isolation",
    "tx_read_only",
    "transaction_isolation",
    "transaction_read_only",
];

/// Where the scan of a SET is in an assignment to `completion_type`.
#[derive(Clone, Copy, PartialEq)]
enum Completion {
    Elsewhere,
    Target,
    Value,
}

/// Whether `completion_type` set to the token `t` makes COMMIT and ROLLBACK release the
/// session: 2 or 'RELEASE' do; 0, 1, 'CHAIN', 'NO_CHAIN' and DEFAULT (the server's default,
/// NO_CHAIN unless configured otherwise) do not; None for anything else (an expression,
/// a variable), which leaves what Switchyard knew.
fn release_value(cur: &Cursor, t: Token) -> Option<bool> {
    let text = cur.text(t);
    let word = match t.kind {
        Kind::Num => {
            return match text {
                b"2" => Some(true),
                b"0" | b"1" => Some(false),
                _ => None,
            }
        }
        Kind::Str => text.get(1..text.len().saturating_sub(1))?,
        Kind::Word => text,
        _ => return None,
    };
    if word.eq_ignore_ascii_case(b"RELEASE") {
        Some(true)
    } else {
        ["CHAIN", "NO_CHAIN", "DEFAULT"]
            .iter()
            .any(|w| word.eq_ignore_ascii_case(w.as_bytes()))
            .then_some(false)
    }
}

/// Variables the server uses once and forgets (`insert_id`: the next insert's id; the
/// RAND() seeds; the next transaction's GTID, as binary-log replays set it: MySQL's
/// `gtid_next`, MariaDB's `gtid_seq_no`), or that set what the session's LAST_INSERT_ID()
/// emulation keeps (`last_insert_id`, `identity`): replayed on another connection, they
/// would apply again.
const ONE_SHOT: [&str; 7] = [
    "insert_id",
    "rand_seed1",
    "rand_seed2",
    "last_insert_id",
    "identity",
    "gtid_next",
    "gtid_seq_no",
];

fn is_next_transaction(name: &[u8]) -> bool {
    NEXT_TRANSACTION
        .iter()
        .any(|v| name.eq_ignore_ascii_case(v.as_bytes()))
}

fn is_one_shot(name: &[u8]) -> bool {
    ONE_SHOT
        .iter()
        .any(|v| name.eq_ignore_ascii_case(v.as_bytes()))
}

fn is_literal(cur: &Cursor, t: super::lexer::Token) -> bool {
    match t.kind {
        Kind::Num | Kind::Str => true,
        Kind::Punct(b'-' | b'+') => true,
        Kind::Word => ["NULL", "TRUE", "FALSE"].iter().any(|w| cur.is_word(t, w)),
        _ => false,
    }
}

impl Targets {
    /// A session variable `name` is assigned: what Switchyard follows of it.
    fn session_target(&mut self, name: &[u8]) -> Completion {
        self.session_var = true;
        self.profiling |= name.eq_ignore_ascii_case(b"profiling");
        self.one_shot |= is_one_shot(name);
        completion_target(name)
    }
}

/// Looks at each assignment's target (the token after SET or after a top-level comma).
fn targets(mut cur: Cursor) -> Targets {
    let mut out = Targets {
        global: false,
        session_scoped: false,
        user_var: false,
        user_values_literal: true,
        reads_user_var: false,
        session_var: false,
        profiling: false,
        one_shot: false,
        completion_release: None,
        next_transaction: false,
        other_target: false,
    };
    let mut completion = Completion::Elsewhere;
    // The last scope modifier, which applies to the assignments after it that have none.
    let mut scope_global = false;
    let mut at_target = true;
    let mut depth = 0u32;
    // Inside the value of a user variable's assignment (after its `=` or `:=`).
    let mut user_value = false;
    let mut user_target = false;
    while let Some(t) = cur.next_tok() {
        match completion {
            Completion::Value => {
                out.completion_release = release_value(&cur, t).or(out.completion_release);
                completion = Completion::Elsewhere;
            }
            Completion::Target if matches!(t.kind, Kind::Punct(b'=') | Kind::Assign) => {
                completion = Completion::Value;
            }
            _ => {}
        }
        if user_value && !at_target && depth == 0 && t.kind != Kind::Punct(b',') {
            out.user_values_literal &= is_literal(&cur, t);
        }
        if user_target && matches!(t.kind, Kind::Punct(b'=') | Kind::Assign) {
            user_target = false;
            user_value = true;
            continue;
        }
        if t.kind == Kind::UserVar && !at_target {
            out.reads_user_var = true;
        }
        if at_target {
            at_target = false;
            user_value = false;
            user_target = t.kind == Kind::UserVar;
            let text = cur.text(t);
            match t.kind {
                Kind::Word if is_global_scope(text) => {
                    out.global = true;
                    scope_global = true;
                    at_target = true;
                }
                Kind::Word if is_session_scope(text) => {
                    scope_global = false;
                    at_target = true;
                }
                Kind::Word => {
                    out.session_scoped |= !scope_global;
                    out.other_target = true;
                    completion = out.session_target(text);
                }
                // A quoted name is the variable of its unquoted text: mysql-connector-python's
                // pooled reset sends ``SET SESSION `name` = value``.
                Kind::QuotedIdent => {
                    out.session_scoped |= !scope_global;
                    out.other_target = true;
                    let name = ident_text(cur.src(), t);
                    completion = out.session_target(name.as_bytes());
                }
                Kind::UserVar => {
                    out.user_var = true;
                    out.session_scoped = true;
                    out.other_target = true;
                }
                Kind::SysVar => {
                    out.session_var = true;
                    // Scope and name parted by an executable comment: not read here.
                    if cur.peek().is_some_and(|n| n.is_punct(b'.')) {
                        out.one_shot = true;
                    }
                    match sysvar_parts(text) {
                        Some((None, name)) if is_next_transaction(name) => {
                            out.next_transaction = true;
                        }
                        Some((scope, name)) => {
                            out.other_target = true;
                            let global = scope.is_some_and(is_global_scope);
                            out.global |= global;
                            out.session_scoped |= !global;
                            out.profiling |= name.eq_ignore_ascii_case(b"profiling");
                            out.one_shot |= is_one_shot(name);
                            completion = completion_target(name);
                        }
                        // Spelt in a way not read here (`@@`autocommit``): it may be any
                        // variable, one Switchyard must follow among them, so the session
                        // keeps the connection that has it rather than replaying it.
                        None => {
                            out.one_shot = true;
                            out.other_target = true;
                        }
                    }
                }
                _ => {}
            }
        }
        match t.kind {
            Kind::Punct(b'(') => {
                depth += 1;
                out.user_values_literal &= !user_value;
            }
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Punct(b',') if depth == 0 => at_target = true,
            _ => {}
        }
    }
    out
}

fn completion_target(name: &[u8]) -> Completion {
    if name.eq_ignore_ascii_case(b"completion_type") {
        Completion::Target
    } else {
        Completion::Elsewhere
    }
}

fn is_global_scope(w: &[u8]) -> bool {
    ["GLOBAL", "PERSIST", "PERSIST_ONLY"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k.as_bytes()))
}

fn is_session_scope(w: &[u8]) -> bool {
    w.eq_ignore_ascii_case(b"SESSION") || w.eq_ignore_ascii_case(b"LOCAL")
}

/// What a `SET STATEMENT ... FOR <read>` may set and still be a read: limits on the
/// statement's time, rows and memory, and optimizer settings, which mean the same on a
/// replica. MariaDB Connector/J sends every read with a query timeout as `SET STATEMENT
/// max_statement_time=N FOR SELECT ...` (`setMaxRows`: `sql_select_limit`): sent to the
/// primary and counted as a write, a Spring or JPA timeout cost an application its
/// replica reads.
const READ_LIMITS: &[&str] = &[
    "max_statement_time",
    "sql_select_limit",
    "max_join_size",
    "sql_big_selects",
    "max_sort_length",
    "group_concat_max_len",
    "join_buffer_size",
    "sort_buffer_size",
    "tmp_table_size",
    "tmp_memory_table_size",
    "max_heap_table_size",
    "lock_wait_timeout",
    "innodb_lock_wait_timeout",
    "optimizer_switch",
    "optimizer_search_depth",
    "optimizer_prune_level",
    "optimizer_use_condition_selectivity",
];

/// MariaDB `SET STATEMENT var=value [, ...] FOR <statement>`: the inner statement decides,
/// its variables applying only there. A read setting only [`READ_LIMITS`] to plain values
/// stays a read; with anything else it goes to the primary (a variable Switchyard does
/// not know may mean something there).
fn set_statement_for(ctx: &Ctx, mut cur: Cursor) -> Piece {
    let mut depth = 0u32;
    let (mut at_name, mut limits_only) = (true, true);
    while let Some(t) = cur.next_tok() {
        if std::mem::take(&mut at_name) {
            let name = cur.text(t);
            limits_only &= t.kind == Kind::Word
                && READ_LIMITS
                    .iter()
                    .any(|v| name.eq_ignore_ascii_case(v.as_bytes()));
            continue;
        }
        match t.kind {
            Kind::Punct(b'(') => {
                depth += 1;
                limits_only = false;
            }
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Punct(b',') if depth == 0 => at_name = true,
            Kind::Word if depth == 0 && cur.is_word(t, "FOR") => {
                let inner = ctx.inner(cur.resume_point());
                let class = match inner.class {
                    Class::Primary(r) => Class::Primary(r),
                    Class::Read if limits_only => Class::Read,
                    _ => Class::Primary(R::Unknown),
                };
                return Piece { class, ..inner };
            }
            Kind::UserVar | Kind::SysVar => limits_only = false,
            _ => {}
        }
    }
    Piece::primary(R::Unknown)
}

/// A recorded SET statement as it can go into one SET with others, so a restore replays
/// many in one round trip. MariaDB parses a whole SET first, then checks (evaluates) every
/// value, then assigns them in order: joined, a value is parsed and checked in the state
/// from before the SET, not after the assignments written before it. So only values that
/// read no state are joined, and the flags say what may follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetList<'a> {
    /// The assignments after `SET`, as the client wrote them.
    pub list: &'a [u8],
    /// It changes how the server parses or checks what follows (`sql_mode`: quotes,
    /// backslashes, strict range checks): nothing more may join the SET it ends.
    pub ends_list: bool,
    /// It changes the connection's character set or collation.
    pub changes_charset: bool,
    /// It reads the same whatever the connection's character set: ASCII, and no string
    /// assigned to a user variable (which takes the connection's collation at parse time).
    pub charset_neutral: bool,
}

/// Variables whose new value changes how later assignments are parsed or checked.
const PARSE_STATE: [&str; 3] = ["sql_mode", "old_mode", "character_set_collations"];

/// The assignment list of `sql` (a SET statement without its command byte) when it can be
/// joined with others: plain assignments of literals to session or user variables, `NAMES`,
/// `CHARACTER SET`. Not: SET TRANSACTION, SET STATEMENT .. FOR, PASSWORD, ROLE, DEFAULT
/// ROLE, global scope, values that read anything (a variable, a function, an operator,
/// parentheses), comments (an executable one is a version condition, not trivia).
pub fn set_list(sql: &[u8]) -> Option<SetList<'_>> {
    let mut toks = Tokens::new(sql);
    let first = toks.next()?;
    if !(first.kind == Kind::Word && toks.text(first).eq_ignore_ascii_case(b"SET")) {
        return None;
    }
    let mut out = SetList {
        list: &[],
        ends_list: false,
        changes_charset: false,
        charset_neutral: sql.is_ascii(),
    };
    let start = toks.peek()?.start;
    let end = loop {
        let item = assignment(&mut toks)?;
        let name = item.name.to_ascii_lowercase();
        out.ends_list |= PARSE_STATE.contains(&name.as_str());
        out.changes_charset |= is_charset_name(&name);
        out.charset_neutral &= !item.user_string;
        match toks.next() {
            Some(t) if t.is_punct(b',') => {}
            Some(t) if t.is_punct(b';') && toks.next().is_none() => break item.end,
            None => break item.end,
            Some(_) => return None,
        }
    };
    if !toks.clean {
        return None;
    }
    out.list = &sql[start..end];
    Some(out)
}

/// The character set a SET leaves the client's statements in: the value of its last
/// `NAMES`, `CHARACTER SET`, `CHARSET` or `character_set_client` assignment, lower-cased
/// and unquoted (`default` for DEFAULT); None when it names none or one not read here (see
/// [`charset_change`]).
pub fn client_charset(sql: &[u8]) -> Option<String> {
    match charset_change(sql) {
        CharsetChange::To(cs) => Some(cs),
        CharsetChange::None | CharsetChange::Unread => None,
    }
}

/// What a SET gives an integer session variable, by its last assignment.
#[derive(Debug, PartialEq, Eq)]
pub enum SetInteger {
    /// It assigns the variable nothing.
    NotSet,
    To(u64),
    /// It assigns a value not read here: an expression (`10*60`), `DEFAULT`, a variable,
    /// or in a text with an executable comment.
    Unread,
}

/// What the SET statement `sql` gives the session variable `var` (`wait_timeout`), read as
/// the server reads it: not in a string or a comment, not a global of that name
/// (`SET GLOBAL a = 1, wait_timeout = 5`: the scope holds for the assignments after it), not
/// for one statement (`SET STATEMENT ... FOR`).
pub fn session_integer(sql: &[u8], var: &str) -> SetInteger {
    let mut toks = Tokens::new(unwrapped(sql));
    toks.plain_comments = true;
    let word = |toks: &Tokens, t: Token, w: &str| {
        t.kind == Kind::Word && toks.text(t).eq_ignore_ascii_case(w.as_bytes())
    };
    match toks.next() {
        Some(first) if word(&toks, first, "SET") => {}
        _ => return SetInteger::NotSet,
    }
    if toks.peek().is_some_and(|t| word(&toks, t, "STATEMENT")) {
        return SetInteger::NotSet;
    }
    let (mut found, mut global) = (SetInteger::NotSet, false);
    each_assignment(&mut toks, |toks, mut t| {
        let text = toks.text(t);
        if t.kind == Kind::Word && (is_global_scope(text) || is_session_scope(text)) {
            global = is_global_scope(text);
            t = toks.next()?;
        }
        // The last assignment counts, as the server applies them in order.
        match integer_assignment(toks, t, var, global) {
            Some(v) => found = v,
            None => return Some(Step::Other(t)),
        }
        Some(Step::Read)
    });
    if !toks.clean && found != SetInteger::NotSet {
        return SetInteger::Unread;
    }
    found
}

/// At an assignment's target `t`: None if it is not the session's `var`; else its value.
/// Leaves the cursor before the `,` that ends a plain one.
fn integer_assignment(toks: &mut Tokens, t: Token, var: &str, global: bool) -> Option<SetInteger> {
    let name = match t.kind {
        Kind::Word if !global => toks.text(t).to_vec(),
        Kind::QuotedIdent if !global => ident_text(toks.lex.src(), t).into_bytes(),
        // `@@name` without a scope is the session's, whatever scope word came before.
        Kind::SysVar => match sysvar_parts(toks.text(t)) {
            Some((scope, name)) if !scope.is_some_and(is_global_scope) => name.to_vec(),
            _ => return None,
        },
        _ => return None,
    };
    if !name.eq_ignore_ascii_case(var.as_bytes()) {
        return None;
    }
    let assigned = toks
        .next()
        .is_some_and(|op| op.is_punct(b'=') || op.kind == Kind::Assign);
    let value = toks.next().filter(|v| v.kind == Kind::Num);
    let ends = toks
        .peek()
        .is_none_or(|n| n.is_punct(b',') || n.is_punct(b';'));
    let number = value.and_then(|v| std::str::from_utf8(toks.text(v)).ok()?.parse().ok());
    Some(match number {
        Some(n) if assigned && ends => SetInteger::To(n),
        _ => SetInteger::Unread,
    })
}

/// What the reader of an assignment did with it (see [`each_assignment`]).
enum Step {
    /// Read it whole: the walk goes on after it.
    Read,
    /// Not the one looked for: the walk goes on from this token.
    Other(Token),
}

/// Walks a SET statement's assignments after `SET`: `at` is called at each one's first
/// token (where one starts: not inside parentheses, after a top-level comma), and says
/// how far it read; None stops the walk.
fn each_assignment(toks: &mut Tokens, mut at: impl FnMut(&mut Tokens, Token) -> Option<Step>) {
    let (mut at_target, mut depth) = (true, 0u32);
    while let Some(mut t) = toks.next() {
        if at_target && depth == 0 {
            at_target = false;
            match at(toks, t) {
                None => return,
                Some(Step::Read) => continue,
                Some(Step::Other(from)) => t = from,
            }
        }
        match t.kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Punct(b',') if depth == 0 => at_target = true,
            _ => {}
        }
    }
}

/// What a SET does to the client's character set.
#[derive(Debug, PartialEq)]
enum CharsetChange {
    /// It assigns none.
    None,
    To(String),
    /// It assigns one that is not read here: a value that is no plain name or string
    /// (`@cs`, an expression), or in a text with an executable comment (a plain one is
    /// read through).
    Unread,
}

/// Reads the client character set assignments of a SET, whatever its other assignments are
/// (Rails sets `sql_mode` to an expression beside NAMES).
fn charset_change(sql: &[u8]) -> CharsetChange {
    let mut toks = Tokens::new(unwrapped(sql));
    toks.plain_comments = true;
    let Some(first) = toks.next() else {
        return CharsetChange::None;
    };
    if !(first.kind == Kind::Word && toks.text(first).eq_ignore_ascii_case(b"SET")) {
        return CharsetChange::None;
    }
    let mut found = CharsetChange::None;
    each_assignment(&mut toks, |toks, t| {
        match charset_assignment(toks, t) {
            None => return Some(Step::Other(t)),
            Some(Some(value)) => found = CharsetChange::To(value),
            Some(None) => {
                found = CharsetChange::Unread;
                return None;
            }
        }
        Some(Step::Read)
    });
    if found == CharsetChange::Unread {
        return found;
    }
    if !toks.clean && found != CharsetChange::None {
        return CharsetChange::Unread;
    }
    found
}

/// At an assignment's first token `t`: None if it assigns no client character set (the
/// caller reads on); else its value, None inside when that is not read here. Leaves the
/// cursor before the `,` that ends the assignment.
fn charset_assignment(toks: &mut Tokens, mut t: Token) -> Option<Option<String>> {
    let word = |toks: &Tokens, t: Token, w: &str| {
        t.kind == Kind::Word && toks.text(t).eq_ignore_ascii_case(w.as_bytes())
    };
    if word(toks, t, "SESSION") || word(toks, t, "LOCAL") {
        t = toks.next()?;
    }
    let named = if word(toks, t, "NAMES") || word(toks, t, "CHARSET") {
        true
    } else if word(toks, t, "CHARACTER") {
        toks.peek().is_some_and(|n| word(toks, n, "SET")) && toks.next().is_some()
    } else {
        let name = match t.kind {
            Kind::Word => toks.text(t).to_vec(),
            Kind::QuotedIdent => ident_text(toks.lex.src(), t).into_bytes(),
            Kind::SysVar => match sysvar_parts(toks.text(t)) {
                Some((scope, name)) if !scope.is_some_and(is_global_scope) => name.to_vec(),
                _ => return None,
            },
            _ => return None,
        };
        name.eq_ignore_ascii_case(b"character_set_client")
            && toks
                .next()
                .is_some_and(|op| op.is_punct(b'=') || op.kind == Kind::Assign)
    };
    if !named {
        return None;
    }
    let Some(v) = toks
        .next()
        .filter(|v| matches!(v.kind, Kind::Word | Kind::Str))
    else {
        return Some(None);
    };
    let raw = toks.text(v);
    let unquoted = match v.kind {
        Kind::Str => raw.get(1..raw.len().saturating_sub(1)).unwrap_or(b""),
        _ => raw,
    };
    let value = String::from_utf8_lossy(unquoted).to_ascii_lowercase();
    // What may follow a plain value: its COLLATE, then the next assignment or the end.
    if toks.peek().is_some_and(|n| word(toks, n, "COLLATE")) {
        toks.next();
        toks.next();
    }
    match toks.peek() {
        None => Some(Some(value)),
        Some(n) if n.is_punct(b',') || n.is_punct(b';') => Some(Some(value)),
        Some(_) => Some(None),
    }
}

/// The statement inside an executable comment that is the whole of `sql` and that every
/// server Switchyard supports runs (no version, or one below MySQL 8.0's: mysqldump's
/// `/*!40101 SET NAMES utf8mb4 */`, `/*!50503 ... */`); else `sql`.
fn unwrapped(sql: &[u8]) -> &[u8] {
    let trimmed = sql.trim_ascii();
    let trimmed = trimmed
        .strip_suffix(b";")
        .unwrap_or(trimmed)
        .trim_ascii_end();
    let Some(rest) = trimmed.strip_prefix(b"/*!") else {
        return sql;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let runs_everywhere = digits == 0 || (digits == 5 && rest[..5] < b"80000"[..]);
    let Some(body) = rest[digits..].strip_suffix(b"*/") else {
        return sql;
    };
    if !runs_everywhere || body.windows(2).any(|w| w == b"*/" || w == b"/*") {
        return sql;
    }
    body
}

fn is_charset_name(name: &str) -> bool {
    matches!(name, "names" | "character set" | "charset")
        || name.starts_with("character_set_")
        || name.starts_with("collation_")
}

/// One assignment of a SET list.
struct Assignment {
    /// The variable, lower or upper case, without `@@` and scope (`names`, `character
    /// set` for those forms).
    name: String,
    /// A user variable is given a string.
    user_string: bool,
    /// End of its last token.
    end: usize,
}

fn assignment(toks: &mut Tokens) -> Option<Assignment> {
    let mut t = toks.next()?;
    if t.kind == Kind::Word && is_session_scope(toks.text(t)) {
        t = toks.next()?;
    }
    let text = toks.text(t);
    let word = |w: &str| t.kind == Kind::Word && text.eq_ignore_ascii_case(w.as_bytes());
    let mut user = false;
    let name = if word("NAMES") || word("CHARSET") {
        String::from_utf8_lossy(text).into_owned()
    } else if word("CHARACTER") {
        let set = toks.next()?;
        (set.kind == Kind::Word && toks.text(set).eq_ignore_ascii_case(b"SET"))
            .then(|| "character set".to_owned())?
    } else {
        let name = target_name(toks, t)?;
        user = t.kind == Kind::UserVar;
        let op = toks.next()?;
        if !(op.is_punct(b'=') || op.kind == Kind::Assign) {
            return None;
        }
        name
    };
    let (end, user_string) = literal_value(toks)?;
    Some(Assignment {
        name,
        user_string: user && user_string,
        end,
    })
}

/// The name assigned to at `t`: a session variable (bare, or `@@name`, `@@session.name`)
/// or a user variable. None for what cannot be joined.
fn target_name(toks: &Tokens, t: Token) -> Option<String> {
    let text = toks.text(t);
    let name = match t.kind {
        Kind::UserVar => text,
        Kind::SysVar => match sysvar_parts(text)? {
            (Some(scope), _) if is_global_scope(scope) => return None,
            (_, name) => name,
        },
        Kind::Word => {
            const ALONE: [&str; 9] = [
                "STATEMENT",
                "PASSWORD",
                "ROLE",
                "DEFAULT",
                "TRANSACTION",
                "GLOBAL",
                "PERSIST",
                "PERSIST_ONLY",
                "SESSION",
            ];
            if ALONE
                .iter()
                .any(|w| text.eq_ignore_ascii_case(w.as_bytes()))
            {
                return None;
            }
            text
        }
        _ => return None,
    };
    Some(String::from_utf8_lossy(name).into_owned())
}

/// Reads a value made of literals and names (a leading sign) up to the next `,` or `;`
/// (left unread); returns the end of its last token and whether it holds a string.
fn literal_value(toks: &mut Tokens) -> Option<(usize, bool)> {
    let mut end = None;
    let mut string = false;
    let mut signs_only = true;
    while let Some(t) = toks.peek() {
        match t.kind {
            Kind::Punct(b',' | b';') => break,
            Kind::Punct(b'-' | b'+') if signs_only => {}
            Kind::Str => string = true,
            Kind::Num | Kind::Word => {}
            _ => return None,
        }
        signs_only &= matches!(t.kind, Kind::Punct(_));
        toks.next();
        end = Some(t.end);
    }
    end.map(|e| (e, string))
}

/// The lexer's tokens, noting whether anything but whitespace lies between them (a
/// comment, which a joined statement could not keep in place).
struct Tokens<'a> {
    lex: super::lexer::Lexer<'a>,
    peeked: Option<Token>,
    last_end: usize,
    clean: bool,
    /// Plain comments between tokens keep the text clean (executable ones never do).
    plain_comments: bool,
}

impl<'a> Tokens<'a> {
    fn new(sql: &'a [u8]) -> Self {
        let at = super::lexer::Resume {
            pos: 0,
            in_exec: false,
        };
        Tokens {
            lex: super::lexer::Lexer::resume(sql, at),
            peeked: None,
            last_end: 0,
            clean: true,
            plain_comments: false,
        }
    }

    fn peek(&mut self) -> Option<Token> {
        if self.peeked.is_none() {
            self.peeked = self.lex.next_token();
        }
        self.peeked
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.peek();
        self.peeked = None;
        let src = self.lex.src();
        let gap_end = t.map_or(src.len(), |t| t.start);
        let gap = &src[self.last_end..gap_end];
        self.clean &= gap.iter().all(|&b| super::lexer::is_space(b))
            || (self.plain_comments
                && !gap.windows(3).any(|w| w == b"/*!")
                && !gap.windows(4).any(|w| w == b"/*M!"));
        if let Some(t) = t {
            self.clean &= t.kind != Kind::Unterminated;
            self.last_end = t.end;
        }
        t
    }

    fn text(&self, t: Token) -> &'a [u8] {
        &self.lex.src()[t.start..t.end]
    }
}

#[cfg(test)]
mod join_tests {
    use super::*;

    fn list(sql: &str) -> Option<String> {
        set_list(sql.as_bytes()).map(|l| String::from_utf8_lossy(l.list).into_owned())
    }

    #[test]
    fn wait_timeout_is_read_as_the_server_reads_it() {
        use SetInteger::{NotSet, To, Unread};
        let w = |sql: &str| session_integer(sql.as_bytes(), "wait_timeout");
        assert_eq!(w("SET SESSION wait_timeout = 2"), To(2));
        assert_eq!(w("set @@session.WAIT_TIMEOUT:=30"), To(30));
        assert_eq!(w("SET sql_mode='', wait_timeout=7"), To(7));
        assert_eq!(w("SET SESSION `wait_timeout` = 60"), To(60));
        assert_eq!(w("SET @@wait_timeout = 5"), To(5));
        assert_eq!(w("SET lock_wait_timeout = 9, wait_timeout = 3"), To(3));
        assert_eq!(w("SET wait_timeout = 5, wait_timeout = 600"), To(600));
        assert_eq!(w("/*!40101 SET wait_timeout = 8 */"), To(8));
        assert_eq!(w("SET wait_timeout = 9 /* nine */"), To(9));
        assert_eq!(w("SET GLOBAL sql_mode = '', @@wait_timeout = 4"), To(4));
        // Not read: the server's value is not known here.
        assert_eq!(w("SET SESSION wait_timeout = 10*60"), Unread);
        assert_eq!(w("SET wait_timeout = DEFAULT"), Unread);
        assert_eq!(w("SET wait_timeout = @x"), Unread);
        assert_eq!(w("SET wait_timeout = @@global.wait_timeout"), Unread);
        assert_eq!(w("SET wait_timeout = 5, wait_timeout = (600)"), Unread);
        assert_eq!(w("SET wait_timeout = (600), wait_timeout = 5"), To(5));
        assert_eq!(w("SET wait_timeout = IF(1, 2, 3), sql_mode = ''"), Unread);
        // Not the session's wait_timeout.
        assert_eq!(w("SET @wait_timeout = 5"), NotSet);
        assert_eq!(w("SET @`wait_timeout` = 5"), NotSet);
        assert_eq!(w("SET @note = 'wait_timeout=1'"), NotSet);
        assert_eq!(w("SET NAMES utf8mb4 /* wait_timeout=2 */"), NotSet);
        assert_eq!(w("SET innodb_lock_wait_timeout = 50"), NotSet);
        assert_eq!(w("SET GLOBAL wait_timeout = 5"), NotSet);
        assert_eq!(w("SET GLOBAL sql_mode = '', wait_timeout = 5"), NotSet);
        assert_eq!(w("SET @@global.wait_timeout = 5"), NotSet);
        assert_eq!(w("SET STATEMENT wait_timeout = 5 FOR SELECT 1"), NotSet);
        assert_eq!(w("SET x = IF(1, 2, 3), y = 4"), NotSet);
        assert_eq!(w("SELECT 1"), NotSet);
    }

    #[test]
    fn the_client_character_set_a_set_leaves() {
        let cs = |sql: &str| client_charset(sql.as_bytes());
        assert_eq!(cs("SET NAMES gbk").as_deref(), Some("gbk"));
        assert_eq!(
            cs("SET NAMES 'SJIS' COLLATE sjis_bin").as_deref(),
            Some("sjis")
        );
        assert_eq!(cs("SET CHARACTER SET big5").as_deref(), Some("big5"));
        assert_eq!(cs("SET CHARSET utf8mb4").as_deref(), Some("utf8mb4"));
        assert_eq!(cs("SET NAMES DEFAULT").as_deref(), Some("default"));
        assert_eq!(
            cs("SET @@session.character_set_client = gbk, time_zone = '+00:00'").as_deref(),
            Some("gbk")
        );
        assert_eq!(
            cs("SET NAMES gbk, character_set_client = utf8mb4").as_deref(),
            Some("utf8mb4")
        );
        assert_eq!(cs("SET character_set_results = gbk"), None);
        assert_eq!(cs("SET time_zone = '+00:00'"), None);
        assert_eq!(cs("SET GLOBAL character_set_client = gbk"), None);
    }

    #[test]
    fn plain_assignments_give_their_list() {
        assert_eq!(list("SET a=1").as_deref(), Some("a=1"));
        assert_eq!(
            list("  set SESSION sql_mode = 'ANSI', @u := -1 ;  ").as_deref(),
            Some("SESSION sql_mode = 'ANSI', @u := -1")
        );
        assert_eq!(
            list("SET NAMES utf8mb4 COLLATE utf8mb4_bin").as_deref(),
            Some("NAMES utf8mb4 COLLATE utf8mb4_bin")
        );
        assert_eq!(
            list("SET CHARACTER SET latin1").as_deref(),
            Some("CHARACTER SET latin1")
        );
        assert_eq!(
            list("SET @@session.time_zone='+01:00', LOCAL autocommit=ON, @@wait_timeout=DEFAULT")
                .as_deref(),
            Some("@@session.time_zone='+01:00', LOCAL autocommit=ON, @@wait_timeout=DEFAULT")
        );
        assert_eq!(
            list("SET @`a b`='x', @'c'=NULL").as_deref(),
            Some("@`a b`='x', @'c'=NULL")
        );
    }

    #[test]
    fn what_cannot_be_joined_is_refused() {
        for sql in [
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SET SESSION TRANSACTION READ ONLY",
            "SET STATEMENT max_statement_time=1 FOR SELECT 1",
            "SET PASSWORD = PASSWORD('x')",
            "SET ROLE r",
            "SET DEFAULT ROLE r FOR u",
            "SET GLOBAL a=1",
            "SET @@global.a=1",
            "SET a=1, GLOBAL b=2",
            "SET @a=@b",
            "SET sql_mode=CONCAT(@@sql_mode, ',ANSI')",
            "SET a=@@b",
            "SET a=1+2",
            "SET /* app */ a=1",
            "SET a=1 -- note\n",
            "/*!40101 SET NAMES utf8 */",
            "SET a='unterminated",
            "SET a=1; SET b=2",
            "SET a=",
            "SET a",
            "SELECT 1",
        ] {
            assert_eq!(list(sql), None, "{sql}");
        }
    }

    #[test]
    fn flags_say_what_may_follow() {
        let l = set_list(b"SET sql_mode='', @u=1").unwrap();
        assert!(l.ends_list && !l.changes_charset && l.charset_neutral);
        let l = set_list(b"SET @@SESSION.SQL_MODE=''").unwrap();
        assert!(l.ends_list);
        let l = set_list(b"SET NAMES latin1").unwrap();
        assert!(!l.ends_list && l.changes_charset && l.charset_neutral);
        let l = set_list(b"SET collation_connection=utf8mb4_bin").unwrap();
        assert!(l.changes_charset);
        let l = set_list(b"SET @s='abc'").unwrap();
        assert!(
            !l.charset_neutral,
            "a user variable's string takes the collation"
        );
        let l = set_list(b"SET time_zone='+01:00', @n=5").unwrap();
        assert!(l.charset_neutral, "a system variable converts its string");
        let l = set_list("SET lc_time_names='é'".as_bytes()).unwrap();
        assert!(!l.charset_neutral);
    }
}
