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

/// The server's refusals of an execute's arguments: ER_WRONG_ARGUMENTS,
/// ER_MALFORMED_PACKET.
const WRONG_ARGUMENTS: u16 = 1210;
const MALFORMED_PACKET: u16 = 1835;

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
    /// Records the cursor an execute of server statement `backend_id` on `t` that asked for
    /// one got.
    pub(super) fn cursor_opened(&mut self, id: u32, (t, backend_id): (Target, u32), o: &Outcome) {
        let opened = o.err.is_none() && o.status.is_some_and(|s| s & STATUS_CURSOR_EXISTS != 0);
        if opened {
            self.st.pins.open_cursor(id, t, backend_id);
        }
    }

    /// After an execute of the statement as server statement `run`: its previous cursor
    /// ended, unless the server refused the execute's arguments, which it reads before it
    /// closes the cursor. The server closes one on `run` itself; elsewhere (another
    /// connection, or another statement of the text there since a SET) Switchyard resets it.
    pub(super) async fn end_cursor(&mut self, id: u32, run: (Target, u32), o: &Outcome) {
        let refused = o
            .err
            .as_ref()
            .is_some_and(|e| matches!(e.code, WRONG_ARGUMENTS | MALFORMED_PACKET));
        if refused {
            return;
        }
        if let Some(at) = self.st.pins.close_cursor(id) {
            self.reset_cursor_elsewhere(at, run).await;
            self.publish_if_changed();
        }
    }

    /// Closes statement `id`'s cursor wherever it is: an execute that never reached a server
    /// statement (its prepare failed) ended it.
    pub(super) async fn drop_cursor(&mut self, id: u32) {
        if let Some(at) = self.st.pins.close_cursor(id) {
            self.reset_cursor(at).await;
            self.publish_if_changed();
        }
    }

    /// Closes the cursor at `at` (a connection and server statement) unless it is `run`,
    /// where the command itself does.
    pub(super) async fn reset_cursor_elsewhere(&mut self, at: (Target, u32), run: (Target, u32)) {
        if at != run {
            self.reset_cursor(at).await;
        }
    }

    /// Where statement `id`'s open cursor is (connection and server statement), while the
    /// session still holds that connection.
    pub(super) fn held_cursor(&self, id: u32) -> Option<(Target, u32)> {
        self.st
            .pins
            .cursor_of(id)
            .filter(|(t, _)| self.held.get(*t).is_some())
    }

    /// Closes the cursor of server statement `bid` on `at` by resetting the statement.
    pub(super) async fn reset_cursor(&mut self, (at, bid): (Target, u32)) {
        let Some(conn) = self.held.get_mut(at) else {
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
        let (t, bid) = self.held_cursor(id).ok_or_else(|| no_open_cursor(id))?;
        // Statement id and row count.
        let mut p = command::padded(payload, 9);
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
