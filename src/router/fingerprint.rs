//! Statement fingerprints for ops (`SHOW QUERY DIGEST`, the slow-statement log): the token
//! stream with literals as `?`, lists of literals as `(?+)`, keywords upper-cased, comments
//! dropped, cut at a length.

use super::lexer::{Cursor, Kind, Resume};
use super::lists;

/// Input bytes read at most outside lists of literals: a fingerprint of a 1 MB INSERT must
/// not cost a 1 MB scan.
const MAX_SCAN: usize = 4096;
/// Input bytes read at most in all: a list of literals is read to its end up to here, so
/// `IN (...)` lists of up to about 10,000 ids share one fingerprint with the short ones.
pub(super) const MAX_LIST_SCAN: usize = 64 * 1024;
/// Output characters kept at most (the server's own digests stop at 1024 too).
const MAX_TEXT: usize = 1024;

/// The hash of a statement's normalized text, without building the text (the hot path:
/// the text is only needed the first time a digest is seen).
pub fn fingerprint_hash(sql: &[u8]) -> u64 {
    let mut h = Fnv::default();
    normalize(sql, |piece| h.feed(piece));
    h.0
}

/// The normalized text of a statement and its hash (the same as `fingerprint_hash`).
pub fn fingerprint(sql: &[u8]) -> (u64, String) {
    let mut out: Vec<u8> = Vec::with_capacity(sql.len().min(MAX_TEXT));
    normalize(sql, |piece| {
        out.extend_from_slice(piece);
    });
    let hash = fnv1a(&out);
    (hash, String::from_utf8_lossy(&out).into_owned())
}

/// Feeds the normalized text to `emit` piece by piece, up to MAX_TEXT bytes, with a trailing
/// ` ...` when the statement was cut.
fn normalize(sql: &[u8], mut emit: impl FnMut(&[u8])) {
    let src = &sql[..sql.len().min(MAX_LIST_SCAN)];
    let mut cur = Cursor::new(
        src,
        Resume {
            pos: 0,
            in_exec: false,
        },
    );
    let mut n = Normalizer::default();
    let mut cut = src.len() < sql.len();
    while let Some(t) = cur.next_tok() {
        if n.past_scan(t.start) {
            cut = true;
            break;
        }
        let text = cur.text(t);
        n.token(t.kind, text, &mut emit);
        if t.kind == Kind::Word {
            if let Some(list) = lists::after_word(text, &mut cur, MAX_LIST_SCAN) {
                n.list(list.cut.len(), &mut emit);
                cur = list.after;
            }
        }
        if n.full() {
            emit(b" ...");
            return;
        }
    }
    if cut {
        emit(b" ...");
    }
}

/// The normalization of one token after another, shared by [`normalize`] and the router's
/// digest pass (which computes a statement's fingerprint hash on the way, so the hot path
/// lexes a SELECT once).
#[derive(Default)]
pub(super) struct Normalizer {
    written: usize,
    prev_word: bool,
    /// Bytes inside collapsed lists, which do not count against MAX_SCAN.
    listed: usize,
}

impl Normalizer {
    /// Whether a token starting at `start` lies past what a fingerprint reads.
    pub fn past_scan(&self, start: usize) -> bool {
        start - self.listed >= MAX_SCAN
    }

    /// Whether the text is as long as a fingerprint gets.
    pub fn full(&self) -> bool {
        self.written >= MAX_TEXT
    }

    pub fn token(&mut self, kind: Kind, text: &[u8], mut emit: impl FnMut(&[u8])) {
        let word = !matches!(kind, Kind::Assign | Kind::Punct(_));
        if word && self.prev_word {
            self.written += 1;
            emit(b" ");
        }
        // `) VALUES` reads better than `)VALUES`; `(`, `,` and `.` hug their neighbours.
        self.prev_word = word || kind == Kind::Punct(b')');
        let piece: &[u8] = match kind {
            Kind::Word | Kind::SysVar | Kind::UserVar => {
                // Upper-cased in chunks, without allocating.
                let mut upper = [0u8; 64];
                for chunk in text.chunks(upper.len()) {
                    let up = &mut upper[..chunk.len()];
                    up.copy_from_slice(chunk);
                    up.make_ascii_uppercase();
                    emit(up);
                }
                self.written += text.len();
                &[]
            }
            Kind::QuotedIdent => text,
            Kind::Str | Kind::Num | Kind::Unterminated => b"?",
            Kind::Assign => b":=",
            Kind::Punct(_) => text,
        };
        if !piece.is_empty() {
            emit(piece);
            self.written += piece.len();
        }
    }

    /// A collapsed list of `cut` bytes followed the last word.
    pub fn list(&mut self, cut: usize, mut emit: impl FnMut(&[u8])) {
        self.listed += cut;
        emit(b"(?+)");
        self.written += 4;
    }
}

/// A fingerprint hash fed piece by piece (FNV-1a, as [`fingerprint_hash`]).
pub(super) struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn feed(&mut self, piece: &[u8]) {
        for &b in piece {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_case_do_not_split_digests() {
        let (a, text) = fingerprint(b"select c from sbtest1 where id = 42");
        let (b, _) = fingerprint(b"SELECT c FROM sbtest1 WHERE id=7 /* hint */");
        assert_eq!(a, b);
        assert_eq!(a, fingerprint_hash(b"select c from sbtest1 where id = 42"));
        assert_eq!(text, "SELECT C FROM SBTEST1 WHERE ID=?");
        let (_, text) = fingerprint(b"INSERT INTO t (a, b) VALUES ('x', 1.5), (@v, `col`)");
        assert_eq!(text, "INSERT INTO T(A,B) VALUES(?+),(@V,`col`)");
    }

    #[test]
    fn long_statements_are_cut() {
        let big = format!("INSERT INTO t VALUES {}", "(1,'x'),".repeat(200_000));
        let (h, text) = fingerprint(big.as_bytes());
        assert_eq!(h, fingerprint_hash(big.as_bytes()));
        assert!(text.len() <= MAX_TEXT + 70);
        assert!(text.ends_with("..."));
        for n in 0..40 {
            let _ = fingerprint(&"é'\"`/*".as_bytes()[..n.min(7)]);
        }
    }
}
