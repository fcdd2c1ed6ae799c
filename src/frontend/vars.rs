//! Session state that must be replayed on every backend connection a session uses:
//! SET statements (in order, identical repeats folded) and the COM_SET_OPTION value.

use crate::backend::{BackendConn, BackendError};
use crate::protocol::command::{COM_INIT_DB, COM_QUERY, COM_SET_OPTION};
use crate::protocol::scan::{Expect, Outcome};

/// Beyond this many distinct SET statements the session stays on the primary instead of
/// replaying an ever longer list on each new connection.
pub const MAX_REPLAYED_SETS: usize = 128;
/// Bytes of SET statements kept for replay per session. A SET that would pass it is not
/// kept (the session stays on the connection that has it): a client cannot make the proxy
/// hold more than this for replay, whatever it sends.
pub const MAX_REPLAYED_SET_BYTES: usize = 256 * 1024;

#[derive(Debug, Default, Clone)]
pub struct SessionVars {
    /// (sequence number, COM_QUERY payload of the SET).
    sets: Vec<(u64, Vec<u8>)>,
    /// Bytes held in `sets`.
    bytes: usize,
    next_seq: u64,
    pub set_option: Option<u16>,
}

impl SessionVars {
    /// Records a SET that succeeded. Returns its sequence number, or None when the list is
    /// full (the caller pins the session).
    pub fn record(&mut self, payload: &[u8]) -> Option<u64> {
        if let Some(i) = self.sets.iter().position(|(_, p)| p.as_slice() == payload) {
            let (_, old) = self.sets.remove(i);
            self.bytes -= old.len();
        }
        if self.sets.len() >= MAX_REPLAYED_SETS
            || self.bytes + payload.len() > MAX_REPLAYED_SET_BYTES
        {
            return None;
        }
        self.next_seq += 1;
        self.bytes += payload.len();
        self.sets.push((self.next_seq, payload.to_vec()));
        Some(self.next_seq)
    }

    pub fn latest(&self) -> u64 {
        self.next_seq
    }

    pub fn clear(&mut self) {
        self.sets.clear();
        self.bytes = 0;
        self.set_option = None;
    }
}

/// Brings a backend connection up to the session's schema, option and SET statements.
pub async fn sync(
    conn: &mut BackendConn,
    schema: Option<&str>,
    vars: &SessionVars,
) -> Result<(), BackendError> {
    if let Some(db) = schema.filter(|db| conn.schema.as_deref() != Some(*db)) {
        let mut p = vec![COM_INIT_DB];
        p.extend_from_slice(db.as_bytes());
        expect_ok(conn.exec_silent(&p, Expect::Single).await?, "USE")?;
        conn.schema = Some(db.to_owned());
    }
    if let Some(opt) = vars.set_option.filter(|o| conn.set_option != Some(*o)) {
        let mut p = vec![COM_SET_OPTION];
        p.extend_from_slice(&opt.to_le_bytes());
        expect_ok(
            conn.exec_silent(&p, Expect::Single).await?,
            "COM_SET_OPTION",
        )?;
        conn.set_option = Some(opt);
    }
    let applied = conn.set_seq;
    for (seq, payload) in vars.sets.iter().filter(|(s, _)| *s > applied) {
        debug_assert_eq!(payload.first(), Some(&COM_QUERY));
        expect_ok(
            conn.exec_silent(payload, Expect::ResultSets).await?,
            "SET replay",
        )?;
        conn.set_seq = *seq;
    }
    conn.set_seq = conn.set_seq.max(vars.latest());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_fold_and_order_is_kept() {
        let mut v = SessionVars::default();
        v.record(b"\x03SET NAMES utf8mb4");
        v.record(b"\x03SET sql_mode=''");
        v.record(b"\x03SET NAMES utf8mb4");
        let texts: Vec<_> = v.sets.iter().map(|(_, p)| p.clone()).collect();
        assert_eq!(
            texts,
            vec![
                b"\x03SET sql_mode=''".to_vec(),
                b"\x03SET NAMES utf8mb4".to_vec()
            ]
        );
        assert_eq!(v.latest(), 3);
    }

    #[test]
    fn list_is_bounded() {
        let mut v = SessionVars::default();
        for i in 0..MAX_REPLAYED_SETS {
            assert!(v.record(format!("SET @@x{i}=1").as_bytes()).is_some());
        }
        assert!(v.record(b"SET one_more=1").is_none());
    }

    #[test]
    fn bytes_are_bounded() {
        let mut v = SessionVars::default();
        let big = vec![b'x'; MAX_REPLAYED_SET_BYTES / 2 + 1];
        assert!(v.record(&big).is_some());
        let mut other = big.clone();
        other[0] = b'y';
        assert!(v.record(&other).is_none(), "over the byte bound");
        // A repeat replaces itself and stays within the bound.
        assert!(v.record(&big).is_some());
        assert_eq!(v.bytes, big.len());
        v.clear();
        assert!(v.record(&other).is_some());
    }
}
