//! The schemas a statement names explicitly, for tenant isolation: the first part of dotted
//! names (`db.t`, `` `db`.`t` ``, `db.t.col`, `db.*`), `USE db`, `DATABASE db` / `SCHEMA db`
//! (CREATE, ALTER, DROP, SHOW CREATE), `FROM db` / `IN db` in SHOW statements, and the same
//! inside the literal of `PREPARE s FROM '...'` / `EXECUTE IMMEDIATE '...'`.
//!
//! An `alias.column` looks exactly like `db.table`, and `SHOW COLUMNS FROM t` names a table:
//! callers keep only names that are schemas they care about. Strings and comments are never
//! looked into (executable comments are SQL, so they are). One pass over the lexer, no
//! allocation unless a quoted name holds a doubled quote or a dynamic SQL literal must be
//! unescaped; statements of any size are scanned whole.

use std::borrow::Cow;
use std::ops::ControlFlow;

use super::lexer::{Escapes, Kind, Lexer, Token};

/// How quotes may be read under the server's `sql_mode`: the default, `ANSI_QUOTES` (`"..."`
/// is a name, without escapes) and `NO_BACKSLASH_ESCAPES`. They split a statement into the
/// same tokens unless a quoted run holds a backslash, so the other two are tried only then.
const MODES: [Escapes; 3] = [
    Escapes::DEFAULT,
    Escapes {
        single: true,
        double: false,
    },
    Escapes {
        single: false,
        double: false,
    },
];

/// Calls `f` with each schema name `sql` names explicitly (backticks and doubled quotes
/// undone, case kept); a name may come more than once. Stops at the first `Break`.
pub fn visit_schema_refs<B>(
    sql: &[u8],
    mut f: impl FnMut(&[u8]) -> ControlFlow<B>,
) -> ControlFlow<B> {
    visit(sql, false, &mut f)
}

/// The schema names `sql` names explicitly, sorted and without duplicates (see
/// [`visit_schema_refs`], which does not allocate).
pub fn schema_refs(sql: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let _ = visit_schema_refs(sql, |name| {
        out.push(String::from_utf8_lossy(name).into_owned());
        ControlFlow::<()>::Continue(())
    });
    out.sort();
    out.dedup();
    out
}

fn visit<B>(
    sql: &[u8],
    nested: bool,
    f: &mut impl FnMut(&[u8]) -> ControlFlow<B>,
) -> ControlFlow<B> {
    let seen = scan(sql, MODES[0], Reading::Run, nested, f)?;
    if seen.backslash {
        for mode in &MODES[1..] {
            scan(sql, *mode, Reading::Run, nested, f)?;
        }
    }
    // A versioned executable comment (`/*!50700 ... */`) runs only on a server of that
    // version or later; any other skips it to its first `*/`, quotes and all. Names are
    // looked for under that reading too, or the one would hide a schema from the other
    // (`wf_b/*!99999 x*/.t`, or a quote in a skipped comment opening a string that hides
    // the rest of the statement).
    if seen.versioned {
        for mode in MODES {
            scan(sql, mode, Reading::Skipped, nested, f)?;
        }
    }
    ControlFlow::Continue(())
}

/// How versioned executable comments are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    Run,
    Skipped,
}

/// What one pass met that asks for other readings.
struct Seen {
    /// A string held a backslash: the other quoting modes may split it differently.
    backslash: bool,
    /// A versioned executable comment.
    versioned: bool,
}

/// What the next token means, after a keyword.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// After `USE`: a schema, unless it is the index hint `USE INDEX` / `USE KEY`.
    Use,
    /// After `DATABASE` / `SCHEMA`, past `IF [NOT] EXISTS`.
    Database,
    /// After `FROM` / `IN` in a SHOW statement.
    Schema,
    /// After `PREPARE name FROM` / `EXECUTE IMMEDIATE`: a literal holding SQL.
    Dynamic,
}

/// One pass under one quoting mode and one reading of versioned comments.
fn scan<B>(
    sql: &[u8],
    esc: Escapes,
    reading: Reading,
    nested: bool,
    f: &mut impl FnMut(&[u8]) -> ControlFlow<B>,
) -> ControlFlow<B, Seen> {
    let mut lex = Lexer::with_escapes(sql, esc);
    if reading == Reading::Skipped {
        lex = lex.skipping_versioned();
    }
    // The three tokens before the current one, most recent first.
    let mut prev: [Option<Token>; 3] = [None; 3];
    let mut pending = Pending::None;
    let mut show = false;
    let mut backslash = false;
    while let Some(t) = lex.next_token() {
        let text = &sql[t.start..t.end];
        if matches!(t.kind, Kind::Str | Kind::Unterminated) && !backslash {
            backslash = text.contains(&b'\\');
        }
        match t.kind {
            // The server rejects the statement; the rest is inside the quote for this mode.
            Kind::Unterminated => break,
            Kind::Punct(b';') => {
                prev = [None; 3];
                pending = Pending::None;
                show = false;
                continue;
            }
            _ => {}
        }

        // `q . name` (or `q.*`): q is a schema unless it is itself the second part of a name.
        if is_punct(prev[0], b'.') && (is_name(sql, t) || t.is_punct(b'*')) {
            if let Some(q) = prev[1].filter(|q| is_name(sql, *q)) {
                if !is_punct(prev[2], b'.') {
                    f(&name(sql, q))?;
                }
            }
        }
        // `db.1t`: the lexer reads `.1` as a number.
        if t.kind == Kind::Num && text[0] == b'.' {
            if let Some(q) = prev[0].filter(|q| is_name(sql, *q) && q.end == t.start) {
                if !is_punct(prev[1], b'.') {
                    f(&name(sql, q))?;
                }
            }
        }

        let word = t.kind == Kind::Word;
        let is = |kw: &str| word && text.eq_ignore_ascii_case(kw.as_bytes());
        pending = match pending {
            Pending::Use if is("INDEX") || is("KEY") => Pending::None,
            Pending::Database if is("IF") || is("NOT") || is("EXISTS") => Pending::Database,
            Pending::Use | Pending::Database | Pending::Schema if is_name(sql, t) => {
                f(&name(sql, t))?;
                Pending::None
            }
            // A charset introducer: `_utf8mb4'...'`.
            Pending::Dynamic if word && text[0] == b'_' => Pending::Dynamic,
            Pending::Dynamic if t.kind == Kind::Str => {
                if !nested {
                    visit(&literal(text, esc), true, f)?;
                }
                Pending::None
            }
            _ if !word => Pending::None,
            _ if is("USE") => Pending::Use,
            _ if is("DATABASE") || is("SCHEMA") => Pending::Database,
            _ if (is("FROM") || is("IN")) && show => Pending::Schema,
            _ if is("FROM") && is_word(sql, prev[1], "PREPARE") => Pending::Dynamic,
            _ if is("IMMEDIATE") && is_word(sql, prev[0], "EXECUTE") => Pending::Dynamic,
            _ => {
                show |= is("SHOW");
                Pending::None
            }
        };
        prev = [Some(t), prev[0], prev[1]];
    }
    ControlFlow::Continue(Seen {
        backslash,
        versioned: lex.saw_versioned(),
    })
}

fn is_punct(t: Option<Token>, b: u8) -> bool {
    t.is_some_and(|t| t.is_punct(b))
}

fn is_word(sql: &[u8], t: Option<Token>, kw: &str) -> bool {
    t.is_some_and(|t| {
        t.kind == Kind::Word && sql[t.start..t.end].eq_ignore_ascii_case(kw.as_bytes())
    })
}

/// A token that can be a name: a bare word, `` `quoted` ``, or `"quoted"` (a name under
/// `ANSI_QUOTES`; as a string it cannot be followed by `.name`, so nothing is lost).
fn is_name(sql: &[u8], t: Token) -> bool {
    match t.kind {
        Kind::Word | Kind::QuotedIdent => true,
        Kind::Str => sql[t.start] == b'"',
        _ => false,
    }
}

/// The name a token spells: quotes removed, doubled quotes undone.
fn name(sql: &[u8], t: Token) -> Cow<'_, [u8]> {
    let raw = &sql[t.start..t.end];
    if t.kind == Kind::Word || raw.len() < 2 {
        return Cow::Borrowed(raw);
    }
    let q = raw[0];
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains(&q) {
        return Cow::Borrowed(inner);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        out.push(inner[i]);
        i += if inner[i] == q { 2 } else { 1 };
    }
    Cow::Owned(out)
}

/// The text of a string literal (quotes included in `raw`) as the server reads it.
pub(crate) fn literal(raw: &[u8], esc: Escapes) -> Cow<'_, [u8]> {
    let q = raw[0];
    let inner = &raw[1..raw.len().saturating_sub(1).max(1)];
    let backslash = if q == b'\'' { esc.single } else { esc.double };
    let escaped = backslash && inner.contains(&b'\\');
    if !escaped && !inner.contains(&q) {
        return Cow::Borrowed(inner);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        if backslash && b == b'\\' && i + 1 < inner.len() {
            out.push(match inner[i + 1] {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'0' => 0,
                b'b' => 8,
                b'Z' => 26,
                c => c,
            });
            i += 2;
        } else {
            out.push(b);
            i += if b == q { 2 } else { 1 };
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::schema_refs;

    fn refs(sql: &str) -> Vec<String> {
        schema_refs(sql.as_bytes())
    }

    #[test]
    fn statement_table() {
        let table: &[(&str, &[&str])] = &[
            // Nothing named: no schema.
            ("SELECT 1", &[]),
            ("SELECT a, b FROM t WHERE id = 1.5", &[]),
            ("INSERT INTO t VALUES (1, 'wf_globex.t', 2.5e3)", &[]),
            ("SELECT DATABASE()", &[]),
            ("SELECT * FROM t USE INDEX (i) WHERE x IN (1, 2)", &[]),
            ("SELECT * FROM t FORCE INDEX (i)", &[]),
            ("SELECT * FROM wf_globex", &[]),
            ("SELECT @a.b, @@session.sql_mode, @'x'.y", &[]),
            // Qualified names in every statement kind.
            ("SELECT * FROM wf_globex.t", &["wf_globex"]),
            ("select * from WF_GLOBEX.t", &["WF_GLOBEX"]),
            ("SELECT * FROM `wf_globex`.`t`", &["wf_globex"]),
            ("SELECT * FROM `wf``x`.t", &["wf`x"]),
            ("SELECT * FROM wf_globex . t", &["wf_globex"]),
            ("SELECT wf_globex.t.c FROM t", &["wf_globex"]),
            ("SELECT a.c FROM t AS a", &["a"]),
            ("SELECT t.* FROM wf_globex.t", &["t", "wf_globex"]),
            ("SELECT * FROM wf_globex.1t", &["wf_globex"]),
            ("SELECT * FROM \"wf_globex\".\"t\"", &["wf_globex"]),
            ("INSERT INTO wf_globex.t (a) VALUES (1)", &["wf_globex"]),
            ("REPLACE wf_globex.t SET a = 1", &["wf_globex"]),
            ("UPDATE wf_globex.t SET a = 1", &["wf_globex"]),
            ("DELETE FROM wf_globex.t", &["wf_globex"]),
            ("CREATE TABLE wf_globex.x (id INT)", &["wf_globex"]),
            ("CREATE TABLE x LIKE wf_globex.t", &["wf_globex"]),
            ("DROP TABLE IF EXISTS wf_globex.t", &["wf_globex"]),
            ("ALTER TABLE wf_globex.t ADD c INT", &["wf_globex"]),
            ("TRUNCATE wf_globex.t", &["wf_globex"]),
            ("CALL wf_globex.proc(1)", &["wf_globex"]),
            ("SELECT wf_globex.f(1)", &["wf_globex"]),
            ("DESCRIBE wf_globex.t", &["wf_globex"]),
            ("SHOW CREATE TABLE wf_globex.t", &["wf_globex"]),
            (
                "LOAD DATA LOCAL INFILE 'f' INTO TABLE wf_globex.t",
                &["wf_globex"],
            ),
            ("RENAME TABLE a TO wf_globex.t", &["wf_globex"]),
            ("GRANT SELECT ON wf_globex.* TO x", &["wf_globex"]),
            ("LOCK TABLES wf_globex.t READ", &["wf_globex"]),
            ("HANDLER wf_globex.t OPEN", &["wf_globex"]),
            (
                "SELECT * FROM wf_acme.a JOIN wf_globex.b ON a.id = b.id",
                &["a", "b", "wf_acme", "wf_globex"],
            ),
            (
                "SELECT * FROM t WHERE id IN (SELECT id FROM wf_globex.t)",
                &["wf_globex"],
            ),
            // Names without a dot.
            ("USE wf_globex", &["wf_globex"]),
            ("use `wf_globex`", &["wf_globex"]),
            ("/*!40101 USE wf_globex*/", &["wf_globex"]),
            ("SHOW TABLES FROM wf_globex", &["wf_globex"]),
            ("SHOW FULL TABLES IN wf_globex LIKE 'x'", &["wf_globex"]),
            ("SHOW COLUMNS FROM t FROM wf_globex", &["t", "wf_globex"]),
            ("SHOW TABLE STATUS FROM wf_globex", &["wf_globex"]),
            ("CREATE DATABASE IF NOT EXISTS wf_globex", &["wf_globex"]),
            ("DROP SCHEMA wf_globex", &["wf_globex"]),
            ("SHOW CREATE DATABASE wf_globex", &["wf_globex"]),
            // Multi-statements, hints, comments and strings.
            ("SELECT 1; SELECT * FROM wf_globex.t", &["wf_globex"]),
            ("SELECT 1; USE wf_globex", &["wf_globex"]),
            (
                "/* route=replica */ SELECT * FROM wf_globex.t",
                &["wf_globex"],
            ),
            ("SELECT 1 /* wf_globex.t */", &[]),
            ("SELECT 1 -- wf_globex.t", &[]),
            ("SELECT 1 # wf_globex.t", &[]),
            ("SELECT 'a''wf_globex.t'", &[]),
            // Under NO_BACKSLASH_ESCAPES the string ends at `\'`: a name after it counts.
            ("SELECT 'it\\'s wf_globex.t'", &["wf_globex"]),
            ("SELECT 'it''s wf_globex.t'", &[]),
            ("SELECT /*!50000 wf_globex.t */ 1", &["wf_globex"]),
            // A versioned comment a server may skip (to its first `*/`, quotes and all):
            // names under either reading count.
            ("SELECT * FROM wf_globex/*!99999 x*/.t", &["wf_globex", "x"]),
            (
                "USE /*!99999 wf_acme */ wf_globex",
                &["wf_acme", "wf_globex"],
            ),
            (
                "SELECT 1 /*!99999 ' */, (SELECT s FROM wf_globex.t) -- '",
                &["wf_globex"],
            ),
            (
                "SELECT 1 /*M!999999 ' */ FROM wf_globex.t -- '",
                &["wf_globex"],
            ),
            ("SELECT `wf_globex.t` FROM x", &[]),
            ("SELECT 'unterminated wf_globex.t", &[]),
            // Dynamic SQL in a literal.
            ("PREPARE s FROM 'SELECT * FROM wf_globex.t'", &["wf_globex"]),
            (
                "EXECUTE IMMEDIATE _utf8mb4'SELECT * FROM `wf_globex`.t'",
                &["wf_globex"],
            ),
            ("PREPARE s FROM 'SELECT ''wf_globex.t'''", &[]),
            ("SELECT 'PREPARE s FROM wf_globex.t'", &[]),
        ];
        for (sql, want) in table {
            assert_eq!(refs(sql), *want, "{sql}");
        }
    }

    /// The server ends a line at `--` followed by DEL (0x7F), a control byte to it: read as
    /// a character, the comment's quote hid the next line's schema from the check.
    #[test]
    fn a_comment_ended_by_del_hides_no_name() {
        assert_eq!(
            refs("SELECT * FROM t --\x7f '\n JOIN wf_globex.x ON 1 -- '"),
            ["wf_globex"]
        );
    }

    #[test]
    fn other_sql_modes_cannot_hide_a_name() {
        // NO_BACKSLASH_ESCAPES: the string ends at the second quote, the rest is SQL.
        assert_eq!(
            refs("SELECT '\\', wf_globex.t.c FROM wf_globex.t -- '"),
            ["wf_globex"]
        );
        // ANSI_QUOTES: "a\" is a name, the rest is SQL.
        assert_eq!(
            refs("SELECT \"a\\\" , x FROM wf_globex.t -- \""),
            ["wf_globex"]
        );
        // Without a backslash every mode agrees, and one pass is enough.
        assert_eq!(
            refs("SELECT 'a''b', \"c\"\"d\" FROM t"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn large_statements_are_scanned_whole() {
        let mut sql = String::from("INSERT INTO t VALUES ");
        for i in 0..50_000 {
            sql.push_str(&format!("({i}, 'v{i}.x', 1.5),"));
        }
        sql.push_str("(0, '', 0); INSERT INTO wf_globex.t VALUES (1)");
        assert!(sql.len() > 1_000_000);
        let t = std::time::Instant::now();
        assert_eq!(refs(&sql), ["wf_globex"]);
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn garbage_never_panics() {
        for sql in [
            "",
            ".",
            "..",
            ".a",
            "a.",
            "`",
            "`a`.",
            "\"",
            "'",
            "USE",
            "USE `",
            "PREPARE s FROM",
            "PREPARE s FROM '",
            "EXECUTE IMMEDIATE ''",
            "/*!",
            "/*! USE a",
            "a.`",
            ";;;.",
            "SHOW TABLES FROM",
            "DATABASE IF NOT EXISTS",
        ] {
            let _ = refs(sql);
        }
        let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let _ = schema_refs(&bytes);
    }
}
