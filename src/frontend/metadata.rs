//! MariaDB's metadata cache (MARIADB_CLIENT_CACHE_METADATA) across backend connections: a
//! server leaves out of an execute's answer the column definitions it last sent on its own
//! connection, so before an execute Switchyard makes sure those are the ones the client holds.

use super::error::SessionError;
use super::session::Session;
use crate::protocol::command::COM_STMT_CLOSE;
use crate::protocol::scan::Outcome;
use crate::router::route::Target;

impl Session {
    /// The backend's id for statement `id` on `t` (prepared there if needed), such that an
    /// answer leaving out the column definitions leaves the client with the right ones.
    pub(super) async fn prepare_in_step(
        &mut self,
        t: Target,
        id: u32,
    ) -> Result<u32, SessionError> {
        let bid = self.prepare_on(t, id).await?;
        if self.definitions_match(t, id) {
            return Ok(bid);
        }
        // The server last sent other definitions than the client holds (DDL reached one
        // server before the other, or the client got its definitions from an execute on
        // another connection, whose types followed the parameters'). Prepared anew, the
        // server compares an execute's definitions with the prepare's and sends them when
        // they differ: the client gets the execute's definitions either way, except after
        // DDL that made them equal to the prepare's but not to the client's (see
        // docs/routing.md, prepared statements).
        self.close_on(t, id).await?;
        self.prepare_on(t, id).await
    }

    fn definitions_match(&self, t: Target, id: u32) -> bool {
        match self.backends.get(t) {
            Some(conn) if conn.cache_metadata => {
                let held = self
                    .stmts
                    .key_on(id, conn)
                    .and_then(|k| conn.stmts.peek(k))
                    .and_then(|c| c.meta);
                held == self.stmts.cached_metadata(id)
            }
            _ => true,
        }
    }

    /// Definitions an answer from `t` carried are now both the client's and that server's.
    pub(super) fn metadata_sent(&mut self, t: Target, id: u32, o: &Outcome) {
        let Some(m) = o.metadata else {
            return;
        };
        self.stmts.set_cached_metadata(id, m);
        if let Some(conn) = self.backends.get_mut(t) {
            if let Some(c) = self.stmts.key_on(id, conn).and_then(|k| conn.stmts.get(k)) {
                c.meta = Some(m);
            }
        }
    }

    /// Closes the backend's copy of statement `id` on `t` (COM_STMT_CLOSE has no answer).
    async fn close_on(&mut self, t: Target, id: u32) -> Result<(), SessionError> {
        let Some(conn) = self.backends.get_mut(t) else {
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
            self.backends.take(t);
            self.lost_backend(t);
            return Err(self.backend_error(t, e));
        }
        Ok(())
    }
}
