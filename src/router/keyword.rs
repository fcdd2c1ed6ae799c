//! Statements decided by their leading keyword (and a few tokens after it).

use super::classify::{Ctx, Piece};
use super::kill;
use super::lexer::{
    ident_text, is_ident_byte, is_space, quoted_text, Cursor, Escapes, Kind, Token,
};
use super::like::like;
use super::schemas;
use super::select::{self, VariableKind};
use super::set;
use super::{Class, Effects, PrimaryReason};

use PrimaryReason as R;

/// Leading keywords of the SELECT family, which `Ctx::select` decides (as does a leading
/// `(`).
const SELECT_FAMILY: [&[u8]; 4] = [b"SELECT", b"WITH", b"VALUES", b"TABLE"];

/// Whether `sql` may be a statement of the SELECT family: it starts (after whitespace) with
/// `(` or one of its keywords. The shape memory holds only those, and asks this first so
/// that other statements (writes, transaction control) cost it nothing.
pub(crate) fn may_select(sql: &[u8]) -> bool {
    let start = sql.iter().position(|&b| !is_space(b)).unwrap_or(sql.len());
    let rest = &sql[start..];
    let Some(&first) = rest.first() else {
        return false;
    };
    if first == b'(' {
        return true;
    }
    // Asked of every COM_QUERY: the first letter rules out most keywords at once.
    let first = first.to_ascii_uppercase();
    SELECT_FAMILY.iter().any(|k| {
        k[0] == first
            && rest
                .get(..k.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(k))
            && rest.get(k.len()).is_none_or(|&b| !is_ident_byte(b))
    })
}

/// Upper-cases a keyword into `buf`; longer words are no keyword we know.
fn upper<'b>(word: &[u8], buf: &'b mut [u8; 24]) -> &'b [u8] {
    match buf.get_mut(..word.len()) {
        Some(out) => {
            out.copy_from_slice(word);
            out.make_ascii_uppercase();
            out
        }
        None => b"",
    }
}

pub(crate) fn dispatch(ctx: &Ctx, mut cur: Cursor) -> Piece {
    let Some(first) = cur.peek() else {
        return Piece::primary(R::Unknown);
    };
    if first.is_punct(b'(') {
        return ctx.select(cur);
    }
    if first.kind != Kind::Word {
        return Piece::primary(R::Unknown);
    }
    let mut buf = [0u8; 24];
    let kw = upper(cur.text(first), &mut buf);
    if SELECT_FAMILY.contains(&kw) {
        return ctx.select(cur);
    }
    cur.next_tok();
    match kw {
        // An UPDATE's or DELETE's functions run once per row it changes.
        b"UPDATE" | b"DELETE" => {
            let mut piece = write(cur);
            piece.effects.named_lock = select::per_row(piece.effects.named_lock);
            piece
        }
        b"INSERT" | b"REPLACE" | b"LOAD" | b"MERGE" | b"IMPORT" => write(cur),
        // Commits the transaction it is in, as DDL does.
        b"TRUNCATE" => Piece::primary(R::Ddl),
        b"CREATE" => create(cur),
        b"ALTER" => alter(cur),
        b"DROP" => drop(cur),
        b"RENAME" if cur.peek_is("TABLE") || cur.peek_is("TABLES") => renames(),
        b"RENAME" | b"GRANT" | b"REVOKE" | b"OPTIMIZE" | b"REPAIR" | b"INSTALL" | b"UNINSTALL"
        | b"RESET" | b"PURGE" => Piece::primary(R::Ddl),
        b"FLUSH" => flush(cur),
        b"BACKUP" => backup(cur),
        b"ANALYZE" => analyze(ctx, cur),
        b"CALL" => Piece::with(
            Class::Primary(R::Call),
            Effects {
                calls_procedure: true,
                ..Effects::default()
            },
        ),
        b"DO" => do_statement(cur),
        b"BEGIN" => begin(cur),
        b"START" => start(cur),
        b"COMMIT" | b"ROLLBACK" => {
            // `ROLLBACK [WORK] TO [SAVEPOINT] s` leaves the transaction open.
            let mut rest = cur.clone();
            rest.eat("WORK");
            let to_savepoint = rest.peek_is("TO");
            let release = (!to_savepoint).then(|| release_said(rest)).flatten();
            let effects = Effects {
                ends_transaction: !to_savepoint,
                releases: release == Some(true),
                no_release: release == Some(false),
                ..Effects::default()
            };
            Piece::with(Class::Primary(R::TransactionControl), effects)
        }
        b"SAVEPOINT" | b"RELEASE" => Piece::primary(R::TransactionControl),
        b"XA" => {
            let effects = Effects {
                prepares_xa: cur.peek_is("PREPARE"),
                commits_xa: cur.peek_is("COMMIT"),
                ..Effects::default()
            };
            Piece::with(Class::Primary(R::TransactionControl), effects)
        }
        b"LOCK" => lock(cur, true),
        b"UNLOCK" => lock(cur, false),
        b"USE" => use_db(cur),
        b"SET" => set::statement(ctx, cur),
        b"PREPARE" | b"EXECUTE" => {
            let hidden = kill::in_dynamic_literal(ctx, cur);
            let effects = Effects {
                kill: hidden.kill,
                sets_password: hidden.sets_password,
                // A statement prepared by name lives on the connection until DEALLOCATE;
                // what `EXECUTE IMMEDIATE` runs (a SET, a temporary table) is not known.
                unreplayable: true,
                runs_unread: kw == b"EXECUTE",
                ..Effects::default()
            };
            Piece::with(Class::Primary(R::SessionSet), effects)
        }
        b"DEALLOCATE" => Piece::primary(R::SessionSet),
        b"SHOW" => show(cur),
        b"DESCRIBE" | b"DESC" | b"EXPLAIN" => explain(ctx, cur),
        b"HELP" => Piece::new(Class::Read),
        b"GET" => get(cur),
        b"KILL" => Piece::with(
            Class::Primary(R::Unknown),
            Effects {
                kill: true,
                ..Effects::default()
            },
        ),
        // Compound statements carry `;` inside their bodies (MariaDB's `FOR i IN 1..3 DO
        // ... END FOR` too).
        b"IF" | b"CASE" | b"LOOP" | b"WHILE" | b"REPEAT" | b"DECLARE" | b"FOR" => compound(),
        b"HANDLER" => handler(cur),
        // `label: BEGIN NOT ATOMIC ...`, `label: LOOP ...`
        _ if cur.eat_punct(b':') => compound(),
        _ => Piece::primary(R::Unknown),
    }
}

/// A write, decided by its keyword. One that may move a sequence (`VALUES (NEXTVAL(s))`) is
/// scanned on: the session must then keep the connection that answers LASTVAL; so is one
/// that may take or free a named lock (`INSERT ... SELECT GET_LOCK(...)`), which stays
/// with the connection, and one that may read a sequence or a user variable (`@`), which
/// the connection may hold for another session. A byte search rules out the rest without
/// lexing them (writes are not cached by digest).
fn write(cur: Cursor) -> Piece {
    Piece::with(
        Class::Primary(R::Write),
        writes_effects(cur, Effects::default()),
    )
}

/// `base` with what the SELECT of a `CREATE TABLE ... [AS] SELECT` under `cur` leaves on
/// the connection (its column definitions ran nothing: `DEFAULT NEXTVAL(s)` moved no
/// sequence).
fn select_effects(mut cur: Cursor, base: Effects) -> Effects {
    while let Some(t) = cur.peek() {
        if cur.is_word(t, "SELECT") {
            return writes_effects(cur, base);
        }
        cur.next_tok();
    }
    base
}

/// `base` with what the rest of a write under `cur` leaves on the connection: a named lock,
/// a sequence's value, a user variable (`INSERT ... SELECT GET_LOCK(...)`, `CREATE TABLE t
/// AS SELECT NEXTVAL(s)`).
fn writes_effects(mut cur: Cursor, base: Effects) -> Effects {
    let rest = cur.rest();
    if !may_name_sequence_function(rest)
        && !may_name_lock_function(rest)
        && memchr::memchr(b'@', rest).is_none()
    {
        return base;
    }
    let scan = select::scan(&mut cur);
    Effects {
        named_lock: scan.effects.named_lock,
        sequence_value: scan.effects.sequence_value,
        reads_sequence_value: scan.effects.reads_sequence_value,
        reads_user_var: scan.effects.reads_user_var,
        // `UPDATE t SET n = (@n := n + 1)`: the session reads @n next, where it was set.
        user_var_assign: scan.effects.user_var_assign,
        ..base
    }
}

/// Whether `sql` holds `_lock` in any case: GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS.
fn may_name_lock_function(sql: &[u8]) -> bool {
    memchr::memchr_iter(b'_', sql).any(|i| {
        sql.get(i + 1..i + 5)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"lock"))
    })
}

/// Whether `sql` holds `val` in any case: NEXTVAL, SETVAL, `NEXT VALUE FOR`, and LASTVAL
/// and `PREVIOUS VALUE FOR`, which read one, all do.
fn may_name_sequence_function(sql: &[u8]) -> bool {
    memchr::memchr2_iter(b'v', b'V', sql).any(|i| {
        sql.get(i + 1..i + 3)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"al"))
    })
}

/// `[schema.]name` with backticks removed, as written: a temporary table's pin lifts only
/// at a DROP naming it the same way. Lower-cased or without its schema, `DROP TABLE
/// archive.t` or `DROP TABLE T` (other tables where names are case-sensitive) lifted the
/// pin of temporary table `t`, which went to the pool with its connection.
fn table_name(cur: &mut Cursor) -> Option<String> {
    let mut name: Option<String> = None;
    loop {
        match cur.peek() {
            Some(t) if matches!(t.kind, Kind::Word | Kind::QuotedIdent) => {
                cur.next_tok();
                let part = ident_text(cur.src(), t);
                name = Some(match name {
                    Some(schema) => format!("{schema}.{part}"),
                    None => part,
                });
            }
            _ => break,
        }
        if !cur.eat_punct(b'.') {
            break;
        }
    }
    name
}

fn create(mut cur: Cursor) -> Piece {
    cur.eat_seq(&["OR", "REPLACE"]);
    let mut effects = Effects::default();
    // A temporary sequence is a temporary table of the connection's too (one namespace).
    if cur.eat("TEMPORARY") && (cur.eat("TABLE") || cur.eat("SEQUENCE")) {
        cur.eat_seq(&["IF", "NOT", "EXISTS"]);
        effects.temp_tables_created.extend(table_name(&mut cur));
        effects.temporary_ddl = true;
        // Splittable: a second CREATE TEMPORARY TABLE after `;` pins as well.
        return Piece::with(Class::Primary(R::Ddl), select_effects(cur, effects));
    }
    if cur.peek_is("TABLE") {
        // `CREATE TABLE t AS SELECT GET_LOCK(...)`: what its SELECT leaves stays.
        return Piece::with(Class::Primary(R::Ddl), select_effects(cur, effects));
    }
    // Routines, triggers and events carry `;` inside their bodies (and a view's
    // ALGORITHM/DEFINER clauses are not read here): only what has no body is split.
    let piece = Piece::with(Class::Primary(R::Ddl), effects);
    if leads_bodiless(
        &mut cur,
        &[
            "TABLE", "INDEX", "UNIQUE", "DATABASE", "SCHEMA", "USER", "ROLE",
        ],
    ) {
        piece
    } else {
        piece.unsplittable()
    }
}

/// ALTER of what has no body is split at `;` like any statement: what follows it in a
/// multi-statement (`ALTER TABLE t ...; SELECT GET_LOCK('m', 10)`) had its effects lost,
/// the lock left on a pooled connection. An event's or a routine's may carry a body.
fn alter(mut cur: Cursor) -> Piece {
    let piece = Piece::primary(R::Ddl);
    cur.eat("ONLINE");
    cur.eat("IGNORE");
    if cur.eat("USER") {
        cur.eat_seq(&["IF", "EXISTS"]);
        // MySQL lets any account alter itself by these names (`ALTER USER USER()
        // IDENTIFIED BY ...`), as SET PASSWORD does: refused the same way.
        if cur.peek_is("USER") || cur.peek_is("CURRENT_USER") {
            let effects = Effects {
                sets_password: true,
                ..Effects::default()
            };
            return Piece::with(Class::Primary(R::Ddl), effects);
        }
        return piece;
    }
    if cur.peek_is("TABLE") && renames_in(cur.clone()) {
        return renames();
    }
    if leads_bodiless(
        &mut cur,
        &["TABLE", "DATABASE", "SCHEMA", "USER", "SEQUENCE"],
    ) {
        piece
    } else {
        piece.unsplittable()
    }
}

/// DDL that may rename a table (a temporary one among them).
fn renames() -> Piece {
    let effects = Effects {
        renames_tables: true,
        ..Effects::default()
    };
    Piece::with(Class::Primary(R::Ddl), effects)
}

/// Whether an ALTER TABLE's text has a RENAME (of the table, or of a column or index,
/// which is taken for one: it only keeps a temporary table's pin).
fn renames_in(mut cur: Cursor) -> bool {
    while let Some(t) = cur.next_tok() {
        if cur.is_word(t, "RENAME") {
            return true;
        }
    }
    false
}

/// Whether the next word is one of `kinds` (objects whose statement has no body).
fn leads_bodiless(cur: &mut Cursor, kinds: &[&str]) -> bool {
    kinds.iter().any(|k| cur.peek_is(k))
}

fn drop(mut cur: Cursor) -> Piece {
    if cur.eat("PREPARE") {
        return Piece::primary(R::SessionSet);
    }
    if cur.eat("DATABASE") || cur.eat("SCHEMA") {
        cur.eat_seq(&["IF", "EXISTS"]);
        let effects = Effects {
            dropped_database: table_name(&mut cur),
            ..Effects::default()
        };
        return Piece::with(Class::Primary(R::Ddl), effects);
    }
    let mut effects = Effects {
        temporary_ddl: cur.eat("TEMPORARY"),
        ..Effects::default()
    };
    if cur.eat("TABLE") || cur.eat("TABLES") || cur.eat("SEQUENCE") {
        cur.eat_seq(&["IF", "EXISTS"]);
        while let Some(name) = table_name(&mut cur) {
            effects.tables_dropped.push(name);
            if !cur.eat_punct(b',') {
                break;
            }
        }
    }
    Piece::with(Class::Primary(R::Ddl), effects)
}

/// `ANALYZE TABLE` maintains statistics; MariaDB's `ANALYZE <statement>` runs the statement.
fn analyze(ctx: &Ctx, mut cur: Cursor) -> Piece {
    if cur.peek_is("TABLE") || cur.peek_is("NO_WRITE_TO_BINLOG") || cur.peek_is("LOCAL") {
        return Piece::primary(R::Ddl);
    }
    skip_format(&mut cur);
    inner_statement(ctx, cur)
}

fn skip_format(cur: &mut Cursor) {
    if cur.eat("FORMAT") {
        cur.eat_punct(b'=');
        cur.next_tok();
    }
}

fn inner_statement(ctx: &Ctx, mut cur: Cursor) -> Piece {
    if cur.peek().is_none() {
        return Piece::primary(R::Unknown);
    }
    ctx.inner(cur.resume_point())
}

/// EXPLAIN shows a plan without running the statement, except EXPLAIN ANALYZE.
fn explain(ctx: &Ctx, mut cur: Cursor) -> Piece {
    while cur.eat("EXTENDED") || cur.eat("PARTITIONS") {}
    skip_format(&mut cur);
    if cur.eat("ANALYZE") {
        skip_format(&mut cur);
        return inner_statement(ctx, cur);
    }
    if cur.peek_is("FOR") {
        return Piece::primary(R::Unknown);
    }
    if may_select(cur.rest()) {
        // A plan is a read, except of a statement that moves a sequence: the server takes
        // the sequence for writing even to explain it, which a read-only replica refuses.
        let inner = ctx.inner(cur.resume_point());
        if inner.effects.sequence_value {
            return Piece::primary(R::SideEffectFunction);
        }
        return Piece::new(Class::Read);
    }
    match cur.peek() {
        None => Piece::primary(R::Unknown),
        Some(t)
            if ["INSERT", "UPDATE", "DELETE", "REPLACE"]
                .iter()
                .any(|k| cur.is_word(t, k)) =>
        {
            Piece::primary(R::Write)
        }
        // SELECT, WITH, TABLE, VALUES, or a table name (DESCRIBE t).
        Some(t) if matches!(t.kind, Kind::Word | Kind::QuotedIdent) => Piece::new(Class::Read),
        Some(_) => Piece::primary(R::Unknown),
    }
}

fn do_statement(mut cur: Cursor) -> Piece {
    let mut scan = select::scan(&mut cur);
    // `DO db.f()` or `DO f()` runs a stored function, which may write, and what it leaves
    // on the connection (a named lock, a user variable) stays the session's.
    let reason = match scan.decided() {
        Some(Class::Primary(R::StoredFunction)) => R::StoredFunction,
        _ if scan.unknown_call => R::StoredFunction,
        _ => R::SideEffectFunction,
    };
    scan.effects.calls_procedure |= reason == R::StoredFunction;
    Piece::with(Class::Primary(reason), scan.effects)
}

fn begin(mut cur: Cursor) -> Piece {
    cur.eat("WORK");
    match cur.peek() {
        None => Piece::new(Class::Begin { read_only: false }),
        // BEGIN NOT ATOMIC ... END and the like: a compound statement.
        Some(_) => compound(),
    }
}

/// A compound statement outside a stored program (MariaDB's `BEGIN NOT ATOMIC`, `IF`,
/// `LOOP`...): like a CALL, it may set variables, make temporary tables or take locks that
/// no statement of the session names, so the session keeps its connection.
fn compound() -> Piece {
    let effects = Effects {
        unreplayable: true,
        ..Effects::default()
    };
    Piece::with(Class::Primary(R::Unknown), effects).unsplittable()
}

/// `HANDLER t OPEN` leaves the table open on the connection for the `HANDLER t READ`s that
/// follow.
fn handler(mut cur: Cursor) -> Piece {
    let _table = table_name(&mut cur);
    let effects = Effects {
        unreplayable: cur.eat("OPEN"),
        ..Effects::default()
    };
    Piece::with(Class::Primary(R::Unknown), effects)
}

fn start(mut cur: Cursor) -> Piece {
    if !cur.eat("TRANSACTION") {
        return Piece::primary(R::Unknown);
    }
    let (mut ro, mut rw) = (false, false);
    while cur.peek().is_some() {
        if cur.eat("READ") {
            ro |= cur.eat("ONLY");
            rw |= cur.eat("WRITE");
        } else if !(cur.eat_seq(&["WITH", "CONSISTENT", "SNAPSHOT"]) || cur.eat_punct(b',')) {
            return Piece::primary(R::Unknown);
        }
    }
    Piece::new(Class::Begin {
        read_only: ro && !rw,
    })
}

fn lock(mut cur: Cursor, acquire: bool) -> Piece {
    // MySQL's `LOCK INSTANCE FOR BACKUP` and Percona's `LOCK BINLOG FOR BACKUP` stay with
    // the connection until `UNLOCK INSTANCE` / `UNLOCK BINLOG`, as MariaDB's BACKUP LOCK
    // does until BACKUP UNLOCK: pooled, they would block the server's DDL (its binary log)
    // for whoever got the connection next.
    if cur.eat("INSTANCE") || cur.eat("BINLOG") {
        let effects = Effects {
            backup_lock: Some(acquire),
            ..Effects::default()
        };
        return Piece::with(Class::Primary(R::LockTables), effects);
    }
    if !(cur.eat("TABLES") || cur.eat("TABLE")) {
        return Piece::primary(R::Unknown);
    }
    let effects = Effects {
        lock_tables: acquire,
        unlock_tables: !acquire,
        ..Effects::default()
    };
    Piece::with(Class::Primary(R::LockTables), effects)
}

/// FLUSH acts on the server it runs on: the primary. `FLUSH TABLES [t, ...] WITH READ
/// LOCK` and `FLUSH TABLES t, ... FOR EXPORT` leave the connection holding the locks until
/// UNLOCK TABLES, as LOCK TABLES does: a pooled connection holding the global read lock
/// would block every write of the server.
fn flush(mut cur: Cursor) -> Piece {
    let mut locks = false;
    let mut prev: Option<Token> = None;
    while let Some(t) = cur.next_tok() {
        let after = |w: &str| prev.is_some_and(|p| cur.is_word(p, w));
        locks |=
            (cur.is_word(t, "LOCK") && after("READ")) || (cur.is_word(t, "EXPORT") && after("FOR"));
        prev = Some(t);
    }
    let effects = Effects {
        lock_tables: locks,
        ..Effects::default()
    };
    Piece::with(Class::Primary(R::Ddl), effects)
}

/// MariaDB's backup locks, held by the connection: `BACKUP STAGE START` (and the stages
/// after it) until `BACKUP STAGE END`, `BACKUP LOCK t` until `BACKUP UNLOCK`.
fn backup(mut cur: Cursor) -> Piece {
    let (backup_stage, backup_lock) = if cur.eat("STAGE") {
        (Some(!cur.eat("END")), None)
    } else if cur.eat("LOCK") {
        (None, Some(true))
    } else if cur.eat("UNLOCK") {
        (None, Some(false))
    } else {
        return Piece::primary(R::Unknown);
    };
    let effects = Effects {
        backup_stage,
        backup_lock,
        ..Effects::default()
    };
    Piece::with(Class::Primary(R::LockTables), effects)
}

fn use_db(mut cur: Cursor) -> Piece {
    match cur.next_tok() {
        Some(t) if matches!(t.kind, Kind::Word | Kind::QuotedIdent) && cur.peek().is_none() => {
            Piece::new(Class::Use(ident_text(cur.src(), t)))
        }
        // `USE "db"`: a name under ANSI_QUOTES (Connector/J quotes so then), a syntax error
        // otherwise, which changes nothing. Taken as the schema change it may be: left
        // unknown, the connection went back to the pool labelled with its old schema and
        // the next session there ran in this one's.
        Some(t) if t.kind == Kind::Str && cur.text(t).first() == Some(&b'"') => {
            if cur.peek().is_some() {
                return Piece::primary(R::Unknown);
            }
            Piece::new(Class::Use(quoted_text(cur.src(), t)))
        }
        _ => Piece::primary(R::Unknown),
    }
}

fn show(mut cur: Cursor) -> Piece {
    while cur.eat("FULL") || cur.eat("GLOBAL") || cur.eat("SESSION") || cur.eat("LOCAL") {}
    let Some(t) = cur.peek() else {
        return Piece::primary(R::Unknown);
    };
    let mut buf = [0u8; 24];
    match upper(cur.text(t), &mut buf) {
        b"WARNINGS" | b"ERRORS" | b"COUNT" | b"PROFILE" | b"PROFILES" => {
            Piece::new(Class::LastBackend)
        }
        // Answers that differ per server (replication, threads, grants as seen there).
        // MariaDB's `SHOW EXPLAIN FOR n` / `SHOW ANALYZE FOR n` name a thread the client
        // read from the primary's process list.
        b"MASTER" | b"SLAVE" | b"REPLICA" | b"REPLICAS" | b"BINLOG" | b"BINARY" | b"RELAYLOG"
        | b"PROCESSLIST" | b"ENGINE" | b"GRANTS" | b"ALL" | b"EXPLAIN" | b"ANALYZE" => {
            Piece::primary(R::Unknown)
        }
        b"VARIABLES" => {
            cur.next_tok();
            show_variables(cur)
        }
        _ => Piece::new(Class::Read),
    }
}

/// `SHOW [GLOBAL|SESSION] VARIABLES [LIKE 'pattern' | WHERE ...]` answers as `SELECT @@name`
/// would for each variable it lists: from the primary when it may list one that answers for
/// the server (`read_only`, `server_id`, ...), where the previous statement ran when it may
/// list only ones about that statement (`warning_count`, `last_gtid`), else from a replica.
/// A `WHERE` or no filter may list any.
fn show_variables(mut cur: Cursor) -> Piece {
    let pattern = match cur.peek() {
        None => None,
        Some(_) if cur.eat("LIKE") => match cur.next_tok() {
            Some(t) if t.kind == Kind::Str && cur.peek().is_none() => {
                // The server keeps `\_` and `\%` in a string as two bytes (a literal `_`
                // to LIKE); read here as a wildcard, the pattern lists more, never less.
                Some(schemas::literal(cur.text(t), Escapes::DEFAULT))
            }
            _ => return Piece::primary(R::Unknown),
        },
        Some(_) => return Piece::primary(R::Unknown),
    };
    // A pattern far longer than any name is taken to list everything: matching it against
    // each name would cost the event loop time for nothing.
    let pattern = pattern.filter(|p| p.len() <= MAX_LIKE_PATTERN);
    let lists = |name: &str| pattern.as_deref().is_none_or(|p| like(p, name.as_bytes()));
    let (mut per_server, mut previous) = (false, false);
    for name in select::routed_variables().filter(|n| lists(n)) {
        match select::variable_kind(name.as_bytes()) {
            VariableKind::PreviousStatement => previous = true,
            VariableKind::Connection | VariableKind::PerServer => per_server = true,
            VariableKind::Plain => {}
        }
    }
    match (per_server, previous) {
        (false, false) => Piece::new(Class::Read),
        (false, true) => Piece::new(Class::LastBackend),
        (true, looks_back) => Piece::with(
            Class::Primary(R::Unknown),
            Effects {
                looks_back,
                ..Effects::default()
            },
        ),
    }
}

/// The longest `SHOW VARIABLES LIKE` pattern matched against names (variable names are
/// at most 64 bytes).
const MAX_LIKE_PATTERN: usize = 256;

fn get(mut cur: Cursor) -> Piece {
    let _ = cur.eat("CURRENT") || cur.eat("STACKED");
    if cur.eat("DIAGNOSTICS") {
        Piece::new(Class::LastBackend)
    } else {
        Piece::primary(R::Unknown)
    }
}

/// What `[AND [NO] CHAIN] [[NO] RELEASE]` says of the session: Some(true) for RELEASE,
/// Some(false) for NO RELEASE, None when it says nothing (`completion_type` decides).
fn release_said(mut rest: Cursor<'_>) -> Option<bool> {
    if rest.eat("AND") {
        rest.eat("NO");
        rest.eat("CHAIN");
    }
    if rest.eat("NO") {
        return rest.eat("RELEASE").then_some(false);
    }
    rest.eat("RELEASE").then_some(true)
}

#[cfg(test)]
mod tests {
    use super::may_select;

    #[test]
    fn only_select_family_texts_may_select() {
        for sql in [
            "SELECT 1",
            "  select 1",
            "(SELECT 1)",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "values (1)",
            "TABLE t",
            "\nSelect\t1",
        ] {
            assert!(may_select(sql.as_bytes()), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "BEGIN",
            "SELECTX 1",
            "SET a = 1",
            "",
            "/* c */ SELECT 1",
        ] {
            assert!(!may_select(sql.as_bytes()), "{sql}");
        }
    }
}
