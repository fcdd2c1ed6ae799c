//! Server-side cursors: a COM_STMT_EXECUTE with a cursor flag opens one on the backend
//! connection it ran on, COM_STMT_FETCH reads it there, and the session's reads stay on that
//! connection until every cursor has ended.

use super::error::SessionError;
use super::prepared::unknown_stmt;
use super::session::Session;
use crate::protocol::command::{self, COM_STMT_RESET};
use crate::protocol::packets::{STATUS_CURSOR_EXISTS, STATUS_LAST_ROW_SENT};
use crate::protocol::scan::{Expect, Outcome};
use crate::router::route::Target;

/// The server's answer to a fetch from a statement without an open cursor
/// (ER_STMT_HAS_NO_OPEN_CURSOR).
fn no_open_cursor(id: u32) -> SessionError {
    SessionError::reply(
        1421,
        "HY000",
        format!("The statement ({id}) has no open cursor"),
    )
}

impl Session {
    /// Records the cursor an execute that asked for one got.
    pub(super) fn cursor_opened(&mut self, id: u32, t: Target, o: &Outcome) {
        let opened = o.err.is_none() && o.status.is_some_and(|s| s & STATUS_CURSOR_EXISTS != 0);
        if opened {
            self.st.pins.open_cursor(id, t);
        }
    }

    /// A statement about to run again on `t` ends its previous cursor: the server closes it
    /// when the statement runs on the same connection; on another one Switchyard resets it.
    pub(super) async fn end_cursor(&mut self, id: u32, t: Target) {
        if let Some(at) = self.st.pins.close_cursor(id) {
            self.reset_cursor_elsewhere(id, at, t).await;
            self.publish_if_changed();
        }
    }

    /// Closes the cursor of `id` on `at` unless `at` is `t`, where the command itself does.
    pub(super) async fn reset_cursor_elsewhere(&mut self, id: u32, at: Target, t: Target) {
        if at == t {
            return;
        }
        let Some(conn) = self.held.get_mut(at) else {
            return;
        };
        let Some(bid) = self
            .stmts
            .key_on(id, conn)
            .and_then(|k| conn.stmts.peek(k))
            .map(|c| c.id)
        else {
            return;
        };
        let mut p = vec![COM_STMT_RESET];
        p.extend_from_slice(&bid.to_le_bytes());
        if conn.exec_silent(&p, Expect::Single).await.is_err() {
            self.held.take(at);
            self.lost_backend(at);
        }
    }

    /// COM_STMT_FETCH goes to the connection holding the statement's cursor, under that
    /// server's statement id; the cursor ends with the last row.
    pub(super) async fn com_stmt_fetch(&mut self, payload: &[u8]) -> Result<(), SessionError> {
        let id = self.stmts.resolve(command::padded_stmt_id(payload));
        if !self.stmts.contains(id) {
            return Err(unknown_stmt(id, "mysqld_stmt_fetch"));
        }
        let t = self
            .st
            .pins
            .cursor_of(id)
            .ok_or_else(|| no_open_cursor(id))?;
        let bid = self
            .held
            .get(t)
            .and_then(|c| {
                let key = self.stmts.key_on(id, c)?;
                c.stmts.peek(key).map(|s| s.id)
            })
            .ok_or_else(|| no_open_cursor(id))?;
        let mut p = payload.to_vec();
        command::set_stmt_id(&mut p, bid);
        let o = self.forward(t, &p, Expect::Fetch, None).await?;
        let ended = o
            .status
            .is_some_and(|s| s & STATUS_CURSOR_EXISTS == 0 || s & STATUS_LAST_ROW_SENT != 0);
        if ended {
            self.st.pins.close_cursor(id);
            self.publish_if_changed();
        }
        Ok(())
    }
}
