//! KILL statements: which session and what of it, so the proxy can act on its own session
//! ids instead of passing backend thread ids through; and what Switchyard refuses (KILL,
//! SET PASSWORD) hidden in dynamic SQL.

use super::classify::Ctx;
use super::hints;
use super::lexer::{Cursor, Escapes, Kind, Resume};
use super::schemas::literal;
use super::Effects;

/// A KILL the proxy can carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    /// `KILL QUERY`: interrupt the running statement; otherwise end the connection.
    pub query: bool,
    /// MariaDB's `HARD` / `SOFT`, passed on to the backend as written.
    pub mode: Option<KillMode>,
    pub id: KillId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMode {
    Hard,
    Soft,
}

impl KillMode {
    pub fn as_str(self) -> &'static str {
        match self {
            KillMode::Hard => "HARD",
            KillMode::Soft => "SOFT",
        }
    }

    /// The mode [`as_str`](Self::as_str) spells (a KILL passed on by another instance).
    pub fn named(name: &str) -> Option<Self> {
        [KillMode::Hard, KillMode::Soft]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// Whose session: a literal id, or the caller's own (`CONNECTION_ID()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillId {
    Session(u64),
    Own,
}

/// A KILL the proxy refuses; the text names what is not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported(pub &'static str);

/// Reads one COM_QUERY payload that starts with KILL (after hints and comments).
pub fn parse(sql: &[u8]) -> Result<Kill, Unsupported> {
    let (_, start) = hints::leading(sql);
    let mut cur = Cursor::new(
        sql,
        Resume {
            pos: start,
            in_exec: false,
        },
    );
    if !cur.eat("KILL") {
        return Err(Unsupported("KILL inside another statement"));
    }
    let mode = if cur.eat("HARD") {
        Some(KillMode::Hard)
    } else if cur.eat("SOFT") {
        Some(KillMode::Soft)
    } else {
        None
    };
    let query = cur.eat("QUERY");
    if !query {
        cur.eat("CONNECTION");
    }
    if query && cur.eat("ID") {
        return Err(Unsupported(
            "KILL QUERY ID (query ids are per backend server)",
        ));
    }
    if cur.peek_is("USER") {
        return Err(Unsupported("KILL USER"));
    }
    let id = target(&mut cur)?;
    let kill = Kill { query, mode, id };
    cur.eat_punct(b';');
    if cur.peek().is_some() || cur.next_statement().is_some() {
        return Err(Unsupported(
            "KILL with anything after the session id (multi-statements included)",
        ));
    }
    Ok(kill)
}

/// What Switchyard refuses that `PREPARE s FROM '...'` / `EXECUTE IMMEDIATE '...'` (the
/// cursor is after PREPARE or EXECUTE) holds in its literal: a KILL, a SET PASSWORD (only
/// those two flags of the answer are set). Adjacent literals are one string to the server;
/// the text is read with and without backslash escapes, as `sql_mode` may have it. A literal
/// built at run time (`FROM @sql`) cannot be seen: docs/security.md says what guards that.
pub(crate) fn in_dynamic_literal(ctx: &Ctx, mut cur: Cursor) -> Effects {
    let opened = if cur.eat("IMMEDIATE") {
        true
    } else {
        cur.next_tok().is_some() && cur.eat("FROM")
    };
    let mut found = Effects::default();
    if !opened {
        return found;
    }
    let mut parts = Vec::new();
    while let Some(t) = cur.peek() {
        // A charset introducer (`_utf8mb4'...'`) may lead.
        let introducer = parts.is_empty() && t.kind == Kind::Word && cur.text(t)[0] == b'_';
        if t.kind != Kind::Str && !introducer {
            break;
        }
        if t.kind == Kind::Str {
            parts.push(cur.text(t));
        }
        cur.next_tok();
    }
    let modes = [
        Escapes::DEFAULT,
        Escapes {
            single: false,
            double: false,
        },
    ];
    if parts.is_empty() {
        return found;
    }
    for esc in modes {
        let text: Vec<u8> = parts
            .iter()
            .flat_map(|p| literal(p, esc).into_owned())
            .collect();
        let e = ctx.literal(&text).effects;
        found.kill |= e.kill;
        found.sets_password |= e.sets_password;
    }
    found
}

/// The session id: a plain integer literal or `CONNECTION_ID()`; expressions are refused
/// because the backend would evaluate them against its own ids.
fn target(cur: &mut Cursor) -> Result<KillId, Unsupported> {
    const EXPR: Unsupported = Unsupported("KILL with anything but a literal session id");
    let t = cur.next_tok().ok_or(EXPR)?;
    if t.kind == Kind::Num {
        let text = cur.text(t);
        if !text.iter().all(u8::is_ascii_digit) {
            return Err(EXPR);
        }
        // Digits beyond u64 name no session either; the server reports the largest id.
        let id = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX);
        return Ok(KillId::Session(id));
    }
    if cur.is_word(t, "CONNECTION_ID") && cur.eat_punct(b'(') && cur.eat_punct(b')') {
        return Ok(KillId::Own);
    }
    Err(EXPR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> Kill {
        parse(sql.as_bytes()).unwrap_or_else(|e| panic!("{sql:?}: {e:?}"))
    }

    fn refused(sql: &str) -> &'static str {
        match parse(sql.as_bytes()) {
            Err(Unsupported(what)) => what,
            Ok(k) => panic!("{sql:?} accepted as {k:?}"),
        }
    }

    #[test]
    fn a_mode_is_read_back_as_spelt() {
        for m in [KillMode::Hard, KillMode::Soft] {
            assert_eq!(KillMode::named(m.as_str()), Some(m));
        }
        assert_eq!(KillMode::named("hard"), None);
    }

    #[test]
    fn connection_and_query() {
        let conn = |id| Kill {
            query: false,
            mode: None,
            id: KillId::Session(id),
        };
        assert_eq!(ok("KILL 42"), conn(42));
        assert_eq!(ok("kill connection 42"), conn(42));
        assert_eq!(ok("  /* why */ KILL CONNECTION 7 ;"), conn(7));
        assert_eq!(ok("KILL 42 -- trailing comment"), conn(42));
        assert_eq!(
            ok("KILL QUERY 9"),
            Kill {
                query: true,
                mode: None,
                id: KillId::Session(9)
            }
        );
        assert_eq!(
            ok("KILL HARD QUERY 9"),
            Kill {
                query: true,
                mode: Some(KillMode::Hard),
                id: KillId::Session(9)
            }
        );
        assert_eq!(ok("KILL SOFT 3").mode, Some(KillMode::Soft));
        assert_eq!(ok("/*!KILL 5 */").id, KillId::Session(5));
    }

    #[test]
    fn own_connection() {
        assert_eq!(ok("KILL CONNECTION_ID()").id, KillId::Own);
        assert_eq!(ok("KILL QUERY connection_id ( )").id, KillId::Own);
    }

    #[test]
    fn huge_ids_name_no_session() {
        assert_eq!(ok("KILL 4294967296").id, KillId::Session(4294967296));
        assert_eq!(
            ok("KILL 99999999999999999999999").id,
            KillId::Session(u64::MAX)
        );
    }

    #[test]
    fn refused_forms_say_what() {
        assert!(refused("KILL QUERY ID 5").contains("QUERY ID"));
        assert!(refused("KILL USER app").contains("USER"));
        assert!(refused("KILL CONNECTION USER app").contains("USER"));
        for sql in [
            "KILL",
            "KILL 0x2A",
            "KILL 4.2",
            "KILL -1",
            "KILL @id",
            "KILL ?",
            "KILL (5)",
            "KILL 'five'",
            "KILL CONNECTION_ID",
        ] {
            assert!(refused(sql).contains("literal"), "{sql}");
        }
        assert!(refused("KILL 5; SELECT 1").contains("multi-statements"));
        assert!(refused("KILL 5 6").contains("after"));
        assert!(refused("KILL 1+1").contains("after"));
        assert!(refused("SET STATEMENT max_statement_time=1 FOR KILL 5").contains("inside"));
    }
}
