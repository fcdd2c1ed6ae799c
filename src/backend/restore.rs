//! Bringing a leased connection to its session's state with the fewest round trips: nothing
//! when the fingerprints match, the missing SETs when it holds an earlier state of the same
//! session, else COM_RESET_CONNECTION and the session's SETs (or only the SETs when the pool
//! logged it in again with COM_CHANGE_USER, which resets it); then schema and option. The
//! SETs replayed go as few statements as keeps them exactly equivalent (see [`plan`]).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use super::conn::{Applied, BackendConn};
use super::error::BackendError;
use super::lease::Restore;
use crate::protocol::command::{COM_INIT_DB, COM_QUERY, COM_RESET_CONNECTION, COM_SET_OPTION};
use crate::protocol::scan::{Expect, Outcome};
use crate::router::{set_list, SetList};

/// Largest SET a replay joins: far below any server's `max_allowed_packet` in use, and
/// above what a session's SETs usually add up to (one round trip).
const MAX_JOINED_BYTES: usize = 64 * 1024;

/// The state a session wants its connection in.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub schema: Option<&'a Arc<str>>,
    /// (sequence number, COM_QUERY payload) of each SET to replay, in order.
    pub sets: &'a [(u64, Vec<u8>)],
    pub applied: Applied,
    pub set_option: Option<u16>,
}

/// Brings `conn` to `w` when that takes no command (the common case: the connection is in
/// the session's state already); false if [`restore`] must run.
pub fn restored_in_place(conn: &mut BackendConn, w: &Wanted<'_>) -> bool {
    let current = conn.applied.fp == w.applied.fp
        && !conn.changed_user
        && !conn.from_other_tenant
        && w.schema.is_none_or(|db| in_schema(conn, db))
        && conn.set_option == w.set_option;
    if current {
        conn.applied = w.applied;
        // The same name in another string (the connection was opened or last used by
        // another session): take the session's, so the next check is a pointer compare.
        if let (Some(db), Some(had)) = (w.schema, &conn.schema) {
            if !Arc::ptr_eq(db, had) {
                conn.schema = Some(Arc::clone(db));
            }
        }
    }
    current
}

/// Whether `conn` is in schema `db`, as far as Switchyard knows.
fn in_schema(conn: &BackendConn, db: &Arc<str>) -> bool {
    conn.schema.as_ref().is_some_and(|c| same_name(c, db))
}

/// Whether two schema names are one: most often the same string, shared.
fn same_name(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// Whether two connections' or statements' schemas (none included) are one.
pub fn same_schema(a: &Option<Arc<str>>, b: &Option<Arc<str>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_name(a, b),
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// Restores `conn` to `w`; says how. The schema comes before the SETs: a SET may read the
/// current schema (`SET CHARACTER SET` takes `character_set_database`'s collation, `SET
/// collation_connection = @@collation_database` at connect), and sessions mostly choose
/// their schema before their SETs; and the schema's name, kept as UTF-8, is read in the
/// login's character set, not in one a SET chose.
pub async fn restore(conn: &mut BackendConn, w: &Wanted<'_>) -> Result<Restore, BackendError> {
    let (mut kind, since) = reset_for(conn, w).await?;
    if std::mem::take(&mut conn.changed_user) {
        kind = Restore::ChangeUser;
    }
    if std::mem::take(&mut conn.from_other_tenant) {
        forget_found_rows(conn).await?;
    }
    if let Some(db) = w.schema.filter(|db| !in_schema(conn, db)) {
        use_schema(conn, db).await?;
    }
    if let Some(since) = since {
        replay_sets(conn, w, since).await?;
    }
    option(conn, w.set_option).await?;
    Ok(kind)
}

async fn use_schema(conn: &mut BackendConn, db: &Arc<str>) -> Result<(), BackendError> {
    let mut p = vec![COM_INIT_DB];
    p.extend_from_slice(db.as_bytes());
    expect_ok(conn.exec_silent(&p, Expect::Single).await?, "USE")?;
    conn.schema = Some(Arc::clone(db));
    Ok(())
}

/// Prepares `prepare` (a COM_STMT_PREPARE) on `conn` in `schema`, the one its session was in
/// when it prepared the statement: the server keeps a statement's schema and runs it there
/// whatever the connection's is, so one prepared afresh after the session moved must be
/// prepared there. The connection is moved back after.
pub async fn prepare_in(
    conn: &mut BackendConn,
    prepare: &[u8],
    schema: Option<&Arc<str>>,
) -> Result<Outcome, BackendError> {
    let Some(db) = schema.filter(|db| !in_schema(conn, db)) else {
        return conn.exec_silent(prepare, Expect::Prepare).await;
    };
    let back = conn.schema.clone();
    use_schema(conn, db).await?;
    let outcome = conn.exec_silent(prepare, Expect::Prepare).await?;
    // A connection in no schema stays in the statement's: none can be left once chosen.
    if let Some(back) = back {
        use_schema(conn, &back).await?;
    }
    Ok(outcome)
}

/// Brings `conn`'s multi-statement option to `want` (None: its login's).
pub async fn option(conn: &mut BackendConn, want: Option<u16>) -> Result<(), BackendError> {
    if conn.set_option == want {
        return Ok(());
    }
    // Each side is None at its login's option (the same login's: the pool keys on the
    // client's capabilities) or Some of the other one; there are two, so the option to set
    // is the one wanted, else the flip of the connection's.
    let opt = want.or(conn.set_option.map(|o| o ^ 1)).unwrap_or_default();
    let mut p = vec![COM_SET_OPTION];
    p.extend_from_slice(&opt.to_le_bytes());
    expect_ok(
        conn.exec_silent(&p, Expect::Single).await?,
        "COM_SET_OPTION",
    )?;
    conn.set_option = want;
    Ok(())
}

/// Resets `conn` when its SETs are not an earlier state of `w`'s session; says how, and
/// after which of the session's SETs to replay (None: none, the connection has them all).
async fn reset_for(
    conn: &mut BackendConn,
    w: &Wanted<'_>,
) -> Result<(Restore, Option<u64>), BackendError> {
    let have = conn.applied;
    if have.fp == w.applied.fp {
        conn.applied = w.applied;
        return Ok((Restore::None, None));
    }
    if have.owner == w.applied.owner && have.seq <= w.applied.seq {
        // An earlier state of the same session: only what it set since.
        return Ok((Restore::Set, Some(have.seq)));
    }
    if have.fp == 0 {
        return Ok((Restore::Set, Some(0)));
    }
    reset(conn).await?;
    Ok((Restore::Reset, Some(0)))
}

/// Replays `w`'s SETs after the `from`th.
async fn replay_sets(
    conn: &mut BackendConn,
    w: &Wanted<'_>,
    from: u64,
) -> Result<(), BackendError> {
    for (seq, payload) in plan(w.sets.iter().filter(|(s, _)| *s > from)) {
        expect_ok(
            conn.exec_silent(&payload, Expect::ResultSets).await?,
            "SET replay",
        )?;
        conn.applied.seq = seq;
    }
    conn.applied = w.applied;
    Ok(())
}

/// The COM_QUERY payloads that replay `sets` (recorded SETs, in order), each with the
/// sequence number of the last SET it carries: runs of joinable SETs become one `SET a, b,
/// ...` (MariaDB assigns a list in order), anything else goes alone, in its place.
pub fn plan<'a>(sets: impl Iterator<Item = &'a (u64, Vec<u8>)>) -> Vec<(u64, Cow<'a, [u8]>)> {
    let mut out = Vec::new();
    let mut run = Run::default();
    for (seq, payload) in sets {
        debug_assert_eq!(payload.first(), Some(&COM_QUERY));
        let list = payload.get(1..).and_then(set_list);
        match list {
            Some(l) if run.accepts(&l) => run.push(*seq, payload, l),
            Some(l) => {
                run.flush(&mut out);
                run.push(*seq, payload, l);
            }
            None => {
                run.flush(&mut out);
                out.push((*seq, Cow::Borrowed(payload.as_slice())));
            }
        }
    }
    run.flush(&mut out);
    out
}

/// SETs being joined into one.
#[derive(Default)]
struct Run<'a> {
    /// Each one's whole payload and assignment list.
    parts: Vec<(&'a [u8], &'a [u8])>,
    seq: u64,
    bytes: usize,
    /// The last one changed how the server parses or checks what follows it.
    ended: bool,
    /// One changed the character set: what follows is parsed in the old one when joined.
    charset_changed: bool,
}

impl<'a> Run<'a> {
    fn accepts(&self, l: &SetList) -> bool {
        self.parts.is_empty()
            || (!self.ended
                && (!self.charset_changed || l.charset_neutral)
                && self.bytes + 2 + l.list.len() <= MAX_JOINED_BYTES)
    }

    fn push(&mut self, seq: u64, payload: &'a [u8], l: SetList<'a>) {
        self.parts.push((payload, l.list));
        self.seq = seq;
        self.bytes += 2 + l.list.len();
        self.ended = l.ends_list;
        self.charset_changed |= l.changes_charset;
    }

    fn flush(&mut self, out: &mut Vec<(u64, Cow<'a, [u8]>)>) {
        match self.parts.as_slice() {
            [] => {}
            [(payload, _)] => out.push((self.seq, Cow::Borrowed(*payload))),
            parts => {
                let mut p = Vec::with_capacity(5 + self.bytes);
                p.push(COM_QUERY);
                p.extend_from_slice(b"SET ");
                for (i, (_, list)) in parts.iter().enumerate() {
                    if i > 0 {
                        p.extend_from_slice(b", ");
                    }
                    p.extend_from_slice(list);
                }
                out.push((self.seq, Cow::Owned(p)));
            }
        }
        *self = Run::default();
    }
}

/// COM_RESET_CONNECTION: the server drops the session state another session left (its
/// variables, prepared statements, LAST_INSERT_ID) and keeps the schema.
pub async fn reset(conn: &mut BackendConn) -> Result<(), BackendError> {
    let o = conn
        .exec_silent(&[COM_RESET_CONNECTION], Expect::Single)
        .await?;
    expect_ok(o, "COM_RESET_CONNECTION")?;
    conn.session_was_reset();
    Ok(())
}

/// Leaves FOUND_ROWS() at 0: the server keeps it through COM_RESET_CONNECTION and
/// COM_CHANGE_USER, where it would tell the next tenant how many rows the last one's SELECT
/// returned. A subquery's empty result sets it; DO sends no rows and leaves ROW_COUNT() at
/// the reset's 0 and no warning.
async fn forget_found_rows(conn: &mut BackendConn) -> Result<(), BackendError> {
    run_silent(
        conn,
        b"DO (SELECT 1 FROM DUAL WHERE 0)",
        "clearing FOUND_ROWS()",
    )
    .await
}

/// Leaves `conn` answering as after a read that returned nothing: no warnings or errors for
/// SHOW WARNINGS, -1 for ROW_COUNT(), 0 for FOUND_ROWS(). What the connection answered
/// before was another session's statement, or Switchyard's own command. The server keeps
/// the warnings through a statement that uses no table (`SELECT 1`, `DO`, `SET`): a
/// derived table counts.
pub async fn forget_answer(conn: &mut BackendConn) -> Result<(), BackendError> {
    run_silent(
        conn,
        b"SELECT 1 FROM (SELECT 1) AS t WHERE 0",
        "clearing another statement's warnings",
    )
    .await
}

/// `DO LAST_INSERT_ID(n)`: sets what LAST_INSERT_ID() answers on `conn` without a result
/// or a warning. A server's refusal comes back as [`BackendError::Server`].
pub async fn insert_id(conn: &mut BackendConn, want: u64) -> Result<(), BackendError> {
    let sql = format!("DO LAST_INSERT_ID({want})");
    run_silent(conn, sql.as_bytes(), "DO LAST_INSERT_ID").await?;
    conn.last_insert_id = want;
    Ok(())
}

/// `COMMIT` on `conn`: the implicit commit a statement makes of a read-only transaction
/// when the statement itself runs elsewhere (`frontend::session`). Spelt out so that the
/// session's `completion_type`, replayed on the connection, neither chains a transaction
/// to it nor has the server close the connection.
pub async fn commit(conn: &mut BackendConn) -> Result<(), BackendError> {
    run_silent(conn, b"COMMIT AND NO CHAIN NO RELEASE", "COMMIT").await
}

/// Opens a read-only transaction on `conn` (one a session moves there from a replica).
pub async fn begin_read_only(conn: &mut BackendConn) -> Result<(), BackendError> {
    run_silent(
        conn,
        b"START TRANSACTION READ ONLY",
        "START TRANSACTION READ ONLY",
    )
    .await
}

/// The longest MESSAGE_TEXT SIGNAL takes (longer: ERR 1648, not the condition).
const MESSAGE_TEXT_CHARS: usize = 512;

/// Raises on `conn` the error Switchyard answers a statement with (SIGNAL), when that
/// statement never reaches the server: what the session asks next about it (SHOW WARNINGS,
/// `@@error_count`, on this connection) then finds it there, as when the server refuses a
/// statement itself (MariaDB and MySQL both run SIGNAL outside stored programs). The
/// server's answer, the error raised, is not passed on: the caller answers the client.
/// The message is cut to the 512 characters a condition's MESSAGE_TEXT holds.
pub async fn raise(
    conn: &mut BackendConn,
    code: u16,
    state: &str,
    message: &str,
) -> Result<(), BackendError> {
    let message: String = message.chars().take(MESSAGE_TEXT_CHARS).collect();
    // In hex with its character set named: it may hold what the client sent (a schema
    // name), and a quoted text is read in the connection's character set and sql_mode (a
    // GBK trail byte took the backslash of an escaped quote, ending the string early).
    let mut hex = String::with_capacity(message.len() * 2);
    for b in message.bytes() {
        let _ = write!(hex, "{b:02X}");
    }
    let sql = format!(
        "SIGNAL SQLSTATE '{state}' SET MYSQL_ERRNO = {code}, MESSAGE_TEXT = _utf8mb4 X'{hex}'"
    );
    let mut p = Vec::with_capacity(1 + sql.len());
    p.push(COM_QUERY);
    p.extend_from_slice(sql.as_bytes());
    conn.exec_silent(&p, Expect::ResultSets).await.map(drop)
}

/// Runs a statement of Switchyard's own that answers OK (`what` names it in an error).
async fn run_silent(conn: &mut BackendConn, sql: &[u8], what: &str) -> Result<(), BackendError> {
    let mut p = Vec::with_capacity(1 + sql.len());
    p.push(COM_QUERY);
    p.extend_from_slice(sql);
    expect_ok(conn.exec_silent(&p, Expect::ResultSets).await?, what)
}

fn expect_ok(o: Outcome, what: &str) -> Result<(), BackendError> {
    match o.err {
        None => Ok(()),
        Some(mut e) => {
            e.message = format!("{} ({what} by Switchyard)", e.message);
            Err(BackendError::Server(*e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_the_same_by_name_shared_or_not() {
        let a: Arc<str> = "wf_a".into();
        assert!(same_schema(&Some(Arc::clone(&a)), &Some(a)));
        assert!(same_schema(&Some("wf_a".into()), &Some("wf_a".into())));
        assert!(!same_schema(&Some("wf_a".into()), &Some("wf_b".into())));
        assert!(!same_schema(&Some("wf_a".into()), &None));
        assert!(!same_schema(&None, &Some("wf_a".into())));
        assert!(same_schema(&None, &None));
    }

    fn texts(sets: &[&str]) -> Vec<(u64, String)> {
        let recorded: Vec<(u64, Vec<u8>)> = sets
            .iter()
            .zip(1..)
            .map(|(s, i)| (i, [&[COM_QUERY], s.as_bytes()].concat()))
            .collect();
        plan(recorded.iter())
            .into_iter()
            .map(|(seq, p)| (seq, String::from_utf8_lossy(&p[1..]).into_owned()))
            .collect()
    }

    #[test]
    fn joinable_sets_go_as_one() {
        assert_eq!(
            texts(&[
                "SET time_zone = '+03:00'",
                "SET @u = 'x'",
                "SET NAMES latin1",
                "SET @n = 7, @m = NULL",
                "set SESSION sql_mode = 'ANSI_QUOTES'",
            ]),
            vec![(
                5,
                "SET time_zone = '+03:00', @u = 'x', NAMES latin1, @n = 7, @m = NULL, SESSION sql_mode = 'ANSI_QUOTES'"
                    .into()
            )]
        );
        assert_eq!(
            texts(&["SET a=1"]),
            vec![(1, "SET a=1".into())],
            "one goes as it is"
        );
        assert!(texts(&[]).is_empty());
    }

    #[test]
    fn what_cannot_join_goes_alone_in_its_place() {
        assert_eq!(
            texts(&[
                "SET a=1",
                "SET b=2",
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                "SET c=3",
                "/*!40101 SET d=4 */",
                "SET e=5",
                "SET f=6",
            ]),
            vec![
                (2, "SET a=1, b=2".into()),
                (
                    3,
                    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".into()
                ),
                (4, "SET c=3".into()),
                (5, "/*!40101 SET d=4 */".into()),
                (7, "SET e=5, f=6".into()),
            ]
        );
    }

    #[test]
    fn parsing_state_changes_split_the_join() {
        // What follows a sql_mode change is parsed and checked under the new mode.
        assert_eq!(
            texts(&[
                "SET a=1",
                "SET sql_mode='NO_BACKSLASH_ESCAPES'",
                "SET @s='a\\'"
            ]),
            vec![
                (2, "SET a=1, sql_mode='NO_BACKSLASH_ESCAPES'".into()),
                (3, "SET @s='a\\'".into()),
            ]
        );
        // A user variable's string takes the character set in force when it is parsed.
        assert_eq!(
            texts(&[
                "SET NAMES latin1",
                "SET @n=1, time_zone='+01:00'",
                "SET @s='x'"
            ]),
            vec![
                (2, "SET NAMES latin1, @n=1, time_zone='+01:00'".into()),
                (3, "SET @s='x'".into()),
            ]
        );
    }

    #[test]
    fn a_join_is_bounded() {
        let big = format!("SET @b='{}'", "x".repeat(MAX_JOINED_BYTES / 2));
        let planned = texts(&[&big, &big.replace("@b", "@c"), "SET @d=1"]);
        assert_eq!(planned.len(), 2);
        assert!(planned.iter().all(|(_, p)| p.len() <= MAX_JOINED_BYTES + 4));
    }
}
