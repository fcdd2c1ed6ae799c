//! The classifier's full pass off the event loop: statements over 64 KiB and SELECT shapes
//! new to the digest cache are classified on a blocking thread, so the event loop that other
//! sessions share only ever runs the bounded light pass.

use std::sync::Arc;

use crate::frontend::error::SessionError;
use crate::frontend::session::Session;
use crate::router::{Classified, Refs};
use crate::state::{per_worker, RuntimeState};

impl Session {
    /// The classification of `payload`'s statement (a COM_QUERY or COM_STMT_PREPARE) by the
    /// router's light pass, when it suffices: a plain call, so the common statement builds
    /// no future for it. None: [`classify_off_loop`](Self::classify_off_loop).
    pub(in crate::frontend) fn classify_now(
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Option<Classified> {
        rt.shared.router.try_classify_query(&payload[1..])
    }

    /// The full pass on a blocking thread, which `payload` is lent to (not copied: it may
    /// be megabytes). That pass also collects the schema names the statement spells out
    /// when this session will check them, so no check scans a long statement here either.
    pub(in crate::frontend) async fn classify_off_loop(
        &self,
        rt: &RuntimeState,
        payload: &mut Vec<u8>,
    ) -> Result<Classified, SessionError> {
        let names = !self.tenant_chosen || self.checks_schema_refs(rt);
        let turns = Arc::clone(&rt.shared.off_loop.0);
        let turn = turns.acquire_owned().await.map_err(|_| unclassified())?;
        let shared = Arc::clone(&rt.shared);
        let worker = per_worker::current_slot();
        let lent = std::mem::take(payload);
        let full = tokio::task::spawn_blocking(move || {
            // Held to the end of the pass, even if the session stops waiting for it.
            let _turn = turn;
            let sql = &lent[1..];
            let mut q = shared.router.classify_query_full(worker, sql);
            if names {
                q.refs = Refs::scanned(sql);
            }
            (q, lent)
        });
        let (q, lent) = full.await.map_err(|e| {
            tracing::error!(parent: &self.span(), error = %e, "classifier failed");
            unclassified()
        })?;
        *payload = lent;
        Ok(q)
    }
}

/// The classifier failed (it never should: it does not panic on any input, and the
/// semaphore is never closed): the statement is refused, the session goes on.
fn unclassified() -> SessionError {
    SessionError::reply(
        1105,
        "HY000",
        "Switchyard could not classify the statement (internal error; see its log)",
    )
}
