//! KILL, KILL QUERY and COM_PROCESS_KILL on Switchyard session ids: the caller may act only
//! on its own user's sessions, and only their backend connections are ever touched.

use std::sync::Arc;

use super::error::{self, SessionError};
use super::session::Session;
use crate::backend::BackendConn;
use crate::fleet::{KillAnswer, KillRequest};
use crate::protocol::command::{self, COM_QUERY};
use crate::protocol::scan::Expect;
use crate::router::kill::{self, Kill, KillId, KillMode};
use crate::state::registry::SessionEntry;
use crate::state::RuntimeState;

/// The server's answer to a KILL of a thread that ended meanwhile.
const UNKNOWN_THREAD: u16 = 1094;

impl Session {
    /// A COM_QUERY the classifier marked as (containing) KILL.
    pub(super) async fn kill_statement(
        &mut self,
        rt: &RuntimeState,
        sql: &[u8],
    ) -> Result<(), SessionError> {
        let k =
            kill::parse(sql).map_err(|kill::Unsupported(what)| error::kill_unsupported(what))?;
        self.kill(rt, k).await
    }

    /// COM_PROCESS_KILL: a 4-byte session id, ending that session as KILL CONNECTION does.
    pub(super) async fn com_process_kill(
        &mut self,
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Result<(), SessionError> {
        // Short, it names thread 0 to the server too (see `command::padded_field`).
        let id = command::padded_field(payload, 1, 4) as u32;
        let k = Kill {
            query: false,
            mode: None,
            id: KillId::Session(u64::from(id)),
        };
        self.kill(rt, k).await
    }

    async fn kill(&mut self, rt: &RuntimeState, k: Kill) -> Result<(), SessionError> {
        let id = match k.id {
            KillId::Own => u64::from(self.id),
            KillId::Session(id) => id,
        };
        let Some(entry) = killable(rt, id, &self.who.user.name) else {
            self.kill_elsewhere(rt, id, &k).await?;
            return self.send_ok(self.answer_seq).await;
        };
        if entry.id == self.id {
            return self.kill_self(&entry, k.query).await;
        }
        tracing::info!(
            parent: &self.span(),
            target = entry.id,
            query = k.query,
            "KILL"
        );
        act(rt, &entry, &k).await?;
        self.send_ok(self.answer_seq).await
    }

    /// A session id no local session of this user has: in a fleet, the instance that has
    /// it acts on it (a driver's cancel reaches whichever instance the balancer picks);
    /// else, and when none has it, the server's 1094.
    async fn kill_elsewhere(
        &self,
        rt: &RuntimeState,
        id: u64,
        k: &Kill,
    ) -> Result<(), SessionError> {
        let (Some(fleet), Ok(session)) = (rt.shared.fleet.get(), u32::try_from(id)) else {
            return Err(error::unknown_thread(id));
        };
        let req = KillRequest {
            session,
            user: self.who.user.name.to_string(),
            query: k.query,
            mode: k.mode.map(KillMode::as_str),
        };
        // The other instance claims the request and answers (an etcd request each), and
        // between them may connect to a backend and wait for its KILL's answer.
        let wait = fleet.config.etcd_timeout * 2 + rt.connect_timeout * 2;
        // Boxed: etcd's requests are kilobytes of future, which every session's own future
        // would carry (and move at its start) for a KILL few ever send this way.
        match Box::pin(fleet.kill(&req, wait)).await {
            Ok(KillAnswer::Done) => {
                tracing::info!(parent: &self.span(), target = id, query = k.query, "KILL of another instance's session");
                Ok(())
            }
            Ok(KillAnswer::Failed(why)) => Err(SessionError::reply(1105, "HY000", why)),
            Ok(KillAnswer::NotFound) => Err(error::unknown_thread(id)),
            Err(e) => {
                tracing::warn!(parent: &self.span(), target = id, error = %e, "KILL not passed to the fleet");
                Err(error::unknown_thread(id))
            }
        }
    }

    /// As directly: the KILL statement itself is what gets interrupted, or the connection
    /// ends after telling the client why.
    async fn kill_self(&mut self, entry: &SessionEntry, query: bool) -> Result<(), SessionError> {
        if query {
            return Err(error::query_interrupted());
        }
        self.send_err(&error::connection_killed(), self.answer_seq)
            .await?;
        entry.kill();
        Ok(())
    }
}

/// The live session `id` if `user` may kill it (the server's rule for users without the
/// privilege to kill others' threads: only their own).
fn killable(rt: &RuntimeState, id: u64, user: &str) -> Option<Arc<SessionEntry>> {
    u32::try_from(id)
        .ok()
        .and_then(|id| rt.shared.registry.get(id))
        .filter(|e| e.user() == user)
}

/// What a KILL of another session does: a KILL CONNECTION ends the session, and what it
/// runs on a server is interrupted.
async fn act(rt: &RuntimeState, entry: &SessionEntry, k: &Kill) -> Result<(), SessionError> {
    if !k.query {
        // First, so the session ends (and pools nothing) whatever the backend answers.
        entry.kill();
    }
    interrupt(rt, entry, k).await
}

/// A KILL another instance of the fleet passes on: acted on as a local one from a session
/// of `user`, once `claim` (a future) says this instance is the one to act (two may have
/// the id). `Ok(false)`: no session `id` of that user here, or another instance acts;
/// `Err`: what failed.
pub async fn kill_for_fleet(
    rt: &RuntimeState,
    id: u32,
    user: &str,
    query: bool,
    mode: Option<&str>,
    claim: impl std::future::Future<Output = bool>,
) -> Result<bool, String> {
    let Some(entry) = killable(rt, u64::from(id), user) else {
        return Ok(false);
    };
    if !claim.await {
        return Ok(false);
    }
    let k = Kill {
        query,
        mode: mode.and_then(KillMode::named),
        id: KillId::Session(u64::from(id)),
    };
    act(rt, &entry, &k).await.map_err(|e| e.to_string())?;
    Ok(true)
}

/// Interrupts what the target session runs now, if anything: logs in beside its backend
/// connection and sends the backend's own KILL for that connection's thread.
async fn interrupt(rt: &RuntimeState, entry: &SessionEntry, k: &Kill) -> Result<(), SessionError> {
    let mut running = entry.running();
    if running.is_none() && k.query {
        // Nothing on a server: a statement waiting (a paused tenant, a pool connection)
        // ends with ERR 1317; an idle session forgets it at its next command. Looked at
        // again after: one that started meanwhile is killed on its server.
        entry.signals.raise_query();
        running = entry.running();
    }
    let Some(run) = running else {
        return Ok(());
    };
    let failed = |e: &dyn std::fmt::Display| error::kill_failed(entry.id, &run.key.addr, e);
    let tls = match &run.key.tls_ca {
        Some(ca) => Some(
            rt.backend_tls
                .get(&**ca)
                .ok_or_else(|| failed(&"backend TLS connector missing"))?,
        ),
        None => None,
    };
    let mut side = BackendConn::connect(run.key.clone(), &run.creds, None, rt.connect_timeout, tls)
        .await
        .map_err(|e| failed(&e))?;
    // Held until the backend answered: the session cannot finish this statement and give
    // the connection to the pool (where another session could take it) in between.
    let mut claim = entry.start_kill().await;
    if !claim.running().is_some_and(|r| r.same_connection(&run)) {
        side.quit();
        return Ok(());
    }
    // Bounded: the target session waits on the claim to finish its statement. Given up
    // on (or this future dropped), the claim marks the connection: the KILL may still
    // arrive, and must not find another session's statement there.
    let sql = backend_kill(k, run.thread_id);
    claim.sending(&run);
    let answer = side.exec_silent(&sql, Expect::ResultSets);
    let o = tokio::time::timeout(rt.connect_timeout, answer)
        .await
        .map_err(|_| failed(&"the backend did not answer its KILL in time"))?
        .map_err(|e| failed(&e))?;
    claim.answered();
    // As a client done with it: dropped, the server logged every KILL's side connection as
    // an aborted one and counted it in `Aborted_clients`. One left mid-answer is dropped.
    side.quit();
    match o.err {
        // The statement ended before the KILL arrived: nothing left to interrupt.
        None => Ok(()),
        Some(e) if e.code == UNKNOWN_THREAD => Ok(()),
        Some(e) => Err(failed(&format!("ERR {}: {}", e.code, e.message))),
    }
}

/// The backend's KILL for one of its threads, as a COM_QUERY payload.
fn backend_kill(k: &Kill, thread_id: u32) -> Vec<u8> {
    let mode = k.mode.map_or(String::new(), |m| format!("{} ", m.as_str()));
    let what = if k.query { "QUERY" } else { "CONNECTION" };
    let mut p = vec![COM_QUERY];
    p.extend_from_slice(format!("KILL {mode}{what} {thread_id}").as_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_kill_names_the_thread() {
        let k = Kill {
            query: true,
            mode: Some(KillMode::Hard),
            id: KillId::Own,
        };
        assert_eq!(&backend_kill(&k, 77)[1..], b"KILL HARD QUERY 77");
        let k = Kill {
            query: false,
            mode: None,
            id: KillId::Session(3),
        };
        assert_eq!(backend_kill(&k, 8), b"\x03KILL CONNECTION 8");
    }
}
