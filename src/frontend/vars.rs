//! Session state that must be replayed on every backend connection a session leases:
//! SET statements (in order, identical repeats folded), their fingerprint, and the
//! COM_SET_OPTION value.

use std::hash::{Hash, Hasher};

use crate::backend::conn::Applied;
use crate::router::set_list;

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
    /// Beside each of `sets`: whether it may read state ([`reads_state`]), found once.
    reads: Vec<bool>,
    /// Bytes held in `sets`.
    bytes: usize,
    next_seq: u64,
    /// Fingerprint of `sets` (0: none): a connection with the same one needs no restore.
    fp: u64,
    /// Bumped when the session's state is cleared, so a connection holding an earlier
    /// state of this session is not taken for a prefix of the new one.
    generation: u32,
    /// The multi-statement option the session set with COM_SET_OPTION, when it is not the
    /// one its login asked for (None: as logged in). The server keeps it across
    /// COM_RESET_CONNECTION and COM_CHANGE_USER, so [`SessionVars::clear`] does too.
    pub set_option: Option<u16>,
}

impl SessionVars {
    /// Records a SET that succeeded. Returns its sequence number, or None when the list is
    /// full (the caller pins the session).
    pub fn record(&mut self, payload: &[u8]) -> Option<u64> {
        if let Some(i) = self.sets.iter().rposition(|(_, p)| p.as_slice() == payload) {
            if foldable(payload, &self.sets[i + 1..], &self.reads[i..]) {
                let (_, old) = self.sets.remove(i);
                self.reads.remove(i);
                self.bytes -= old.len();
            }
        }
        if self.sets.len() >= MAX_REPLAYED_SETS
            || self.bytes + payload.len() > MAX_REPLAYED_SET_BYTES
        {
            return None;
        }
        self.next_seq += 1;
        self.bytes += payload.len();
        self.sets.push((self.next_seq, payload.to_vec()));
        self.reads.push(reads_state(payload));
        self.fp = fingerprint(&self.sets);
        Some(self.next_seq)
    }

    /// Whether [`record`](Self::record) would keep `payload` (as if nothing folded: a SET
    /// it would keep only by folding is taken as not kept).
    pub fn would_record(&self, payload: &[u8]) -> bool {
        self.sets.len() < MAX_REPLAYED_SETS && self.bytes + payload.len() <= MAX_REPLAYED_SET_BYTES
    }

    pub fn sets(&self) -> &[(u64, Vec<u8>)] {
        &self.sets
    }

    pub fn fp(&self) -> u64 {
        self.fp
    }

    /// What a connection holds once it is in this state, for session `id`.
    pub fn applied(&self, id: u32) -> Applied {
        Applied {
            owner: (u64::from(id) << 32) | u64::from(self.generation),
            seq: self.next_seq,
            fp: self.fp,
        }
    }

    pub fn clear(&mut self) {
        self.sets.clear();
        self.reads.clear();
        self.bytes = 0;
        self.fp = 0;
        self.generation = self.generation.wrapping_add(1);
    }
}

/// Whether a SET may read state, so that where it stands in the list matters to what it
/// sets: one Switchyard cannot read as plain assignments (`set_list`) that names a
/// variable or calls something (`SET time_zone = @tz`, `/*!40101 SET @OLD_SQL_MODE =
/// @@SQL_MODE */`). Plain ones read nothing, nor do unreadable ones without `@` or `(`
/// (`SET SESSION TRANSACTION ISOLATION LEVEL ...`, which drivers send per transaction).
fn reads_state(payload: &[u8]) -> bool {
    payload.get(1..).and_then(set_list).is_none() && memchr::memchr2(b'@', b'(', payload).is_some()
}

/// Whether an identical repeat of `payload` may move it to the end of the list, past
/// `after` (`reads`: [`reads_state`] of the repeated one and of `after`): only when none of
/// them reads state (`SET time_zone = @tz` between two `SET @tz = '+05:00'` read the first,
/// and replayed after the repeat moved past a `SET @tz = 'UTC'` it would read that), and
/// not a SET that changes how the ones after it are parsed or checked (sql_mode), nor one
/// that changes the character set while a later one assigns a user variable a string,
/// which takes the collation of its time (`SET NAMES .. COLLATE utf8mb4_bin; SET @a =
/// 'x'`: a replay in the other order gives `@a` another collation).
fn foldable(payload: &[u8], after: &[(u64, Vec<u8>)], reads: &[bool]) -> bool {
    if after.is_empty() {
        return true;
    }
    if reads.iter().any(|r| *r) {
        return false;
    }
    let Some(l) = payload.get(1..).and_then(set_list) else {
        return true;
    };
    if l.ends_list {
        return false;
    }
    !l.changes_charset
        || after.iter().all(|(_, p)| {
            p.get(1..)
                .and_then(set_list)
                .is_some_and(|l| l.charset_neutral)
        })
}

/// Order matters (a later SET overrides an earlier one of the same variable); never 0.
fn fingerprint(sets: &[(u64, Vec<u8>)]) -> u64 {
    if sets.is_empty() {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (_, p) in sets {
        p.hash(&mut h);
    }
    h.finish() | 1
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
        assert_eq!(v.applied(1).seq, 3);
    }

    #[test]
    fn a_repeat_does_not_move_past_what_it_changes() {
        let texts =
            |v: &SessionVars| -> Vec<Vec<u8>> { v.sets.iter().map(|(_, p)| p.clone()).collect() };
        let mut v = SessionVars::default();
        v.record(b"\x03SET collation_connection = 'utf8mb4_bin'");
        v.record(b"\x03SET @a = 'x'");
        v.record(b"\x03SET collation_connection = 'utf8mb4_bin'");
        assert_eq!(texts(&v).len(), 3, "@a keeps the collation of its time");
        let mut v = SessionVars::default();
        v.record(b"\x03SET sql_mode = 'NO_BACKSLASH_ESCAPES'");
        v.record(b"\x03SET time_zone = '+01:00'");
        v.record(b"\x03SET sql_mode = 'NO_BACKSLASH_ESCAPES'");
        assert_eq!(
            texts(&v).len(),
            3,
            "later SETs are parsed in the mode of their time"
        );
        let mut v = SessionVars::default();
        v.record(b"\x03SET NAMES latin1");
        v.record(b"\x03SET time_zone = '+01:00'");
        v.record(b"\x03SET NAMES latin1");
        assert_eq!(
            texts(&v),
            vec![
                b"\x03SET time_zone = '+01:00'".to_vec(),
                b"\x03SET NAMES latin1".to_vec()
            ],
            "nothing after it takes the character set: folded"
        );
        let mut v = SessionVars::default();
        v.record(b"\x03SET @tz = '+05:00'");
        v.record(b"\x03SET time_zone = @tz");
        v.record(b"\x03SET @tz = 'UTC'");
        v.record(b"\x03SET @tz = '+05:00'");
        assert_eq!(texts(&v).len(), 4, "time_zone reads the first @tz");
        let mut v = SessionVars::default();
        v.record(b"\x03/*!40101 SET @OLD_SQL_MODE = @@SQL_MODE */");
        v.record(b"\x03SET @a = 'x'");
        v.record(b"\x03/*!40101 SET @OLD_SQL_MODE = @@SQL_MODE */");
        assert_eq!(texts(&v).len(), 3, "what reads a variable stays in place");
        v.record(b"\x03/*!40101 SET @OLD_SQL_MODE = @@SQL_MODE */");
        assert_eq!(texts(&v).len(), 3, "a repeat of the last one replaces it");
        // What drivers send per transaction reads nothing: the list does not grow.
        let mut v = SessionVars::default();
        for _ in 0..10 {
            v.record(b"\x03SET SESSION TRANSACTION READ ONLY");
            v.record(b"\x03SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
            v.record(b"\x03SET SESSION TRANSACTION READ WRITE");
        }
        assert_eq!(texts(&v).len(), 3);
    }

    #[test]
    fn fingerprints_follow_content_and_order() {
        let mut a = SessionVars::default();
        let mut b = SessionVars::default();
        assert_eq!(a.fp(), 0);
        a.record(b"\x03SET NAMES utf8mb4");
        a.record(b"\x03SET time_zone='+00:00'");
        b.record(b"\x03SET time_zone='+00:00'");
        b.record(b"\x03SET NAMES utf8mb4");
        assert_ne!(a.fp(), b.fp(), "order matters");
        b.record(b"\x03SET time_zone='+00:00'");
        assert_eq!(a.fp(), b.fp(), "the same list, however it was reached");
        let before = a.applied(7);
        a.clear();
        assert_eq!(a.fp(), 0);
        assert_ne!(a.applied(7).owner, before.owner, "a new generation");
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
