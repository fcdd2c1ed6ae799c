//! Bringing a leased connection to its session's state with the fewest round trips: nothing
//! when the fingerprints match, the missing SETs when it holds an earlier state of the same
//! session, else COM_RESET_CONNECTION and the session's SETs; then schema and option.

use super::conn::{Applied, BackendConn};
use super::error::BackendError;
use super::lease::Restore;
use crate::protocol::command::{COM_INIT_DB, COM_QUERY, COM_RESET_CONNECTION, COM_SET_OPTION};
use crate::protocol::scan::{Expect, Outcome};

/// The state a session wants its connection in.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub schema: Option<&'a str>,
    /// (sequence number, COM_QUERY payload) of each SET to replay, in order.
    pub sets: &'a [(u64, Vec<u8>)],
    pub applied: Applied,
    pub set_option: Option<u16>,
}

/// Restores `conn` to `w`; says how.
pub async fn restore(conn: &mut BackendConn, w: &Wanted<'_>) -> Result<Restore, BackendError> {
    let kind = restore_sets(conn, w).await?;
    if let Some(db) = w.schema.filter(|db| conn.schema.as_deref() != Some(*db)) {
        let mut p = vec![COM_INIT_DB];
        p.extend_from_slice(db.as_bytes());
        expect_ok(conn.exec_silent(&p, Expect::Single).await?, "USE")?;
        conn.schema = Some(db.to_owned());
    }
    if let Some(opt) = w.set_option.filter(|o| conn.set_option != Some(*o)) {
        let mut p = vec![COM_SET_OPTION];
        p.extend_from_slice(&opt.to_le_bytes());
        expect_ok(
            conn.exec_silent(&p, Expect::Single).await?,
            "COM_SET_OPTION",
        )?;
        conn.set_option = Some(opt);
    }
    Ok(kind)
}

async fn restore_sets(conn: &mut BackendConn, w: &Wanted<'_>) -> Result<Restore, BackendError> {
    let have = conn.applied;
    if have.fp == w.applied.fp {
        conn.applied = w.applied;
        return Ok(Restore::None);
    }
    let mut kind = Restore::Set;
    let from = if have.owner == w.applied.owner && have.seq <= w.applied.seq {
        // An earlier state of the same session: only what it set since.
        have.seq
    } else {
        if have.fp != 0 {
            reset(conn).await?;
            kind = Restore::Reset;
        }
        0
    };
    for (seq, payload) in w.sets.iter().filter(|(s, _)| *s > from) {
        debug_assert_eq!(payload.first(), Some(&COM_QUERY));
        expect_ok(
            conn.exec_silent(payload, Expect::ResultSets).await?,
            "SET replay",
        )?;
        conn.applied.seq = *seq;
    }
    conn.applied = w.applied;
    Ok(kind)
}

/// COM_RESET_CONNECTION: the server drops the session state another session left (its
/// variables, prepared statements, LAST_INSERT_ID) and keeps the schema.
pub async fn reset(conn: &mut BackendConn) -> Result<(), BackendError> {
    let o = conn
        .exec_silent(&[COM_RESET_CONNECTION], Expect::Single)
        .await?;
    expect_ok(o, "COM_RESET_CONNECTION")?;
    conn.applied = Applied::default();
    conn.forget_statements();
    conn.last_insert_id = 0;
    Ok(())
}

/// `DO LAST_INSERT_ID(n)`: sets what LAST_INSERT_ID() answers on `conn` without a result
/// or a warning. A server's refusal comes back as [`BackendError::Server`].
pub async fn insert_id(conn: &mut BackendConn, want: u64) -> Result<(), BackendError> {
    let mut p = vec![COM_QUERY];
    p.extend_from_slice(format!("DO LAST_INSERT_ID({want})").as_bytes());
    expect_ok(
        conn.exec_silent(&p, Expect::ResultSets).await?,
        "DO LAST_INSERT_ID",
    )?;
    conn.last_insert_id = want;
    Ok(())
}

fn expect_ok(o: Outcome, what: &str) -> Result<(), BackendError> {
    match o.err {
        None => Ok(()),
        Some(mut e) => {
            e.message = format!("{} ({what} by Switchyard)", e.message);
            Err(BackendError::Server(e))
        }
    }
}
