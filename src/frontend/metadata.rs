//! MariaDB's metadata cache (MARIADB_CLIENT_CACHE_METADATA) across backend connections: a
//! server leaves out of an execute's answer the column definitions it last sent on its own
//! connection, so before an execute Switchyard makes sure those are the ones the client holds.

use super::error::SessionError;
use super::session::Session;
use crate::protocol::command::COM_STMT_CLOSE;
use crate::protocol::scan::Outcome;
use crate::router::route::Target;

/// What the server answers an execute whose statement changed under it (ER_NEED_REPREPARE):
/// the client's cached definitions match no server's current ones.
fn need_reprepare() -> SessionError {
    SessionError::reply(1615, "HY000", "Prepared statement needs to be re-prepared")
}

impl Session {
    /// The backend's id for statement `id` on `t` (prepared there if needed), such that an
    /// answer leaving out the column definitions leaves the client with the right ones, and
    /// the statement's key in that connection's cache.
    pub(super) async fn prepare_in_step(
        &mut self,
        t: Target,
        id: u32,
    ) -> Result<(u32, u64), SessionError> {
        let (bid, ck) = self.prepare_on(t, id).await?;
        if self.definitions_match(t, id, ck) {
            return Ok((bid, ck));
        }
        // The server last sent other definitions than the client holds. Prepared anew, a
        // server sends an execute's definitions when they differ from its prepare's. That
        // covers definitions the client got from an execute elsewhere (they follow the
        // parameters' types); definitions it got from a prepare that this server now answers
        // differently mean the servers disagree (DDL reached one first), and an execute
        // here could leave out definitions the client does not hold.
        self.close_on(t, id).await?;
        let (bid, ck) = self.prepare_on(t, id).await?;
        if self.definitions_match(t, id, ck) || self.stmts.meta_from_execute(id) {
            Ok((bid, ck))
        } else {
            Err(need_reprepare())
        }
    }

    /// `ck`: the statement's key in the connection's cache.
    pub(super) fn definitions_match(&self, t: Target, id: u32, ck: u64) -> bool {
        match self.held.get(t) {
            Some(conn) if conn.cache_metadata => {
                let held = conn.stmts.peek(ck).and_then(|c| c.meta);
                held == self.stmts.cached_metadata(id)
            }
            _ => true,
        }
    }

    /// Definitions an answer from `t` carried are now both the client's and that server's.
    /// `ck`: the statement's key in the connection's cache.
    pub(super) fn metadata_sent(&mut self, t: Target, id: u32, ck: u64, o: &Outcome) {
        let Some(m) = o.metadata else {
            return;
        };
        self.stmts.set_cached_metadata(id, m);
        if let Some(conn) = self.held.get_mut(t) {
            if let Some(c) = conn.stmts.get(ck) {
                c.meta = Some(m);
            }
        }
    }

    /// Closes the backend's copy of statement `id` on `t` (COM_STMT_CLOSE has no answer).
    async fn close_on(&mut self, t: Target, id: u32) -> Result<(), SessionError> {
        let Some(conn) = self.held.get_mut(t) else {
            return Ok(());
        };
        let Some(bid) = self
            .stmts
            .key_on(id, conn)
            .and_then(|k| conn.stmts.remove(k))
        else {
            return Ok(());
        };
        let mut p = vec![COM_STMT_CLOSE];
        p.extend_from_slice(&bid.to_le_bytes());
        if let Err(e) = conn.send_no_reply(&p).await {
            return Err(self.connection_failed(t, e));
        }
        Ok(())
    }
}
