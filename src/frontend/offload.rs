//! The classifier's full pass off the event loop: statements over 64 KiB and SELECT shapes
//! new to the digest cache are classified on a blocking thread, so the event loop that other
//! sessions share only ever runs the bounded light pass.

use std::sync::Arc;

use crate::frontend::error::SessionError;
use crate::frontend::session::Session;
use crate::protocol::packets::{STATUS_ANSI_QUOTES, STATUS_NO_BACKSLASH_ESCAPES, STATUS_SQL_MODES};
use crate::router::{Classified, Refs};
use crate::state::{per_worker, RuntimeState};

impl Session {
    /// The classification of `payload`'s statement (a COM_QUERY or COM_STMT_PREPARE) by the
    /// router's light pass, when it suffices: a plain call, so the common statement builds
    /// no future for it. None: [`classify_later`](Self::classify_later), which also reads
    /// statements under a `sql_mode` or a client character set that changes how quotes
    /// are read.
    pub(in crate::frontend) fn classify_now(
        &self,
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Option<Classified> {
        if self.st.server_modes & STATUS_SQL_MODES != 0 || self.st.multibyte.is_some() {
            return None;
        }
        rt.shared.router.try_classify_query(&payload[1..])
    }

    /// What [`classify_now`](Self::classify_now) did not answer: the statement as the
    /// server reads it in the client's character set and under the session's `sql_mode`
    /// (see [`relexed`](Self::relexed)), by the light pass or
    /// [off the loop](Self::classify_off_loop).
    pub(in crate::frontend) async fn classify_later(
        &self,
        rt: &RuntimeState,
        payload: &mut Vec<u8>,
    ) -> Result<Classified, SessionError> {
        let mut relexed = self.relexed(payload);
        let text = relexed.as_mut().unwrap_or(payload);
        let mut q = match rt.shared.router.try_classify_query(&text[1..]) {
            Some(q) => q,
            None => self.classify_off_loop(rt, text).await?,
        };
        if relexed.is_some() {
            // Schema names are read from the statement as sent, under every mode.
            q.refs = Refs::Unknown;
        }
        Ok(q)
    }

    /// The statement (with its command byte) as the default lexing reads it the way the
    /// server does: two-byte characters of the client's character set paired first, then
    /// backslashes that the `sql_mode` makes plain characters. None: as sent.
    fn relexed(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let sql = self.relexed_sql(payload.get(1..)?)?;
        let mut relexed = Vec::with_capacity(payload.len());
        relexed.push(payload[0]);
        relexed.extend_from_slice(&sql);
        Some(relexed)
    }

    /// A statement's normalized text (literals out), lexed as the server reads it: under
    /// NO_BACKSLASH_ESCAPES or a character set whose second bytes may be `\`, the default
    /// lexing ends a string early and shows the next one's content (a password) in the
    /// slow-statement log and the digest table.
    pub(super) fn fingerprint_text(&self, sql: &[u8]) -> String {
        let relexed = self.relexed_sql(sql);
        crate::router::fingerprint(relexed.as_deref().unwrap_or(sql)).1
    }

    fn relexed_sql(&self, sql: &[u8]) -> Option<Vec<u8>> {
        let paired = self
            .st
            .multibyte
            .and_then(|cs| crate::router::as_single_byte(sql, cs));
        let sql = paired.as_deref().unwrap_or(sql);
        let modes = self.st.server_modes;
        let plain = (modes & STATUS_SQL_MODES != 0)
            .then(|| {
                crate::router::as_default_sql_mode(
                    sql,
                    modes & STATUS_NO_BACKSLASH_ESCAPES != 0,
                    modes & STATUS_ANSI_QUOTES != 0,
                )
            })
            .flatten();
        plain.or(paired)
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
        let shared = Arc::clone(&rt.shared);
        let worker = per_worker::current_slot();
        let lent = std::mem::take(payload);
        let full = rt.shared.off_loop.run(move || {
            let sql = &lent[1..];
            let mut q = shared.router.classify_query_full(worker, sql);
            if names {
                q.refs = Refs::scanned(sql);
            }
            (q, lent)
        });
        let Some((q, lent)) = full.await else {
            tracing::error!(parent: &self.span(), "classifier failed");
            return Err(unclassified());
        };
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
