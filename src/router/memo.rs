//! Lone SELECTs by their spelling with literals blanked (their shape): a statement whose
//! shape was seen before is classified without lexing, digesting or parsing it again, and
//! the schema names it spells out are known without a scan.

use std::hash::Hasher;
use std::sync::{Arc, Mutex};

use super::clock::Clock;
use super::lexer::{quoted_end, Kind, Lexer, Resume};
use super::Classification;
use crate::state::lock::Unpoisoned;

/// Statements longer than this are not remembered: their shapes would cost memory, and
/// lexing costs little next to relaying them.
const MAX_SHAPE: usize = 512;
/// What stands for a string and for a number in a shape: control bytes, which a shape
/// holds nowhere else (a statement with one outside a string has no shape).
const STR: u8 = 0x01;
const NUM: u8 = 0x02;

/// How [`shape`] treats a byte outside strings and quoted names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    /// Punctuation and whitespace: kept; ends a word.
    Plain,
    /// A letter, `_` or `$`: kept; part of a word.
    Ident,
    /// A byte of a multi-byte character: kept, part of a word (the lexer's rule).
    Wide,
    Digit,
    Dot,
    Quote,
    Backtick,
    Dash,
    Slash,
    /// What a shape cannot stand for.
    Refuse,
}

const BYTES: [Byte; 256] = {
    let mut t = [Byte::Plain; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => Byte::Ident,
            b'0'..=b'9' => Byte::Digit,
            0x80..=0xff => Byte::Wide,
            b'.' => Byte::Dot,
            b'\'' => Byte::Quote,
            b'`' => Byte::Backtick,
            b'-' => Byte::Dash,
            b'/' => Byte::Slash,
            b'"' | b'\\' | b'@' | b'#' => Byte::Refuse,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => Byte::Plain,
            0..=0x1f => Byte::Refuse,
            _ => Byte::Plain,
        };
        b += 1;
    }
    t
};

/// Writes `sql`'s shape to `out` and gives its length: every byte as it is, except that
/// each single-quoted string becomes [`STR`] and each number [`NUM`], at the token
/// boundaries the lexer finds. So two statements of one shape lex to the same tokens but
/// for their literals' values, and the classifier gives them the same answer (it caches
/// decisions by a digest that blanks literals too). `None` for what a shape cannot stand
/// for exactly: comments (they hold hints), `"` (a name under ANSI_QUOTES), backslashes
/// (where a string ends depends on NO_BACKSLASH_ESCAPES), variables, control bytes,
/// unterminated quotes, invalid UTF-8 and statements over [`MAX_SHAPE`] bytes.
pub(crate) fn shape(sql: &[u8], out: &mut [u8; MAX_SHAPE]) -> Option<usize> {
    if sql.len() > MAX_SHAPE {
        return None;
    }
    // Bytes kept as they are are copied in runs, when a literal ends one. A shape is never
    // longer than its statement: a marker stands for one byte or more.
    let mut o = 0;
    let mut copied = 0;
    let mut ascii = true;
    let mut in_word = false;
    let mut i = 0;
    while i < sql.len() {
        // The common bytes first, in a tight loop: kept, and only whether they end a word
        // noted (a digit inside a word is the word's).
        let mut class = BYTES[usize::from(sql[i])];
        while class == Byte::Plain || class == Byte::Ident || (class == Byte::Digit && in_word) {
            in_word = class != Byte::Plain;
            i += 1;
            match sql.get(i) {
                Some(&b) => class = BYTES[usize::from(b)],
                None => break,
            }
        }
        if i == sql.len() {
            break;
        }
        let next = sql.get(i + 1).copied().unwrap_or(0);
        let (end, marker) = match class {
            Byte::Plain | Byte::Ident => unreachable!("skipped above"),
            Byte::Wide => {
                in_word = true;
                ascii = false;
                i += 1;
                continue;
            }
            Byte::Dot if !next.is_ascii_digit() => (i + 1, None),
            Byte::Digit | Byte::Dot => number(sql, i, &mut ascii)?,
            Byte::Quote => {
                let end = quoted_end(sql, i, b'\'', true)?;
                let inner = &sql[i + 1..end - 1];
                if inner.contains(&b'\\') {
                    return None;
                }
                ascii &= inner.is_ascii();
                (end, Some(STR))
            }
            Byte::Backtick => {
                let end = quoted_end(sql, i, b'`', false)?;
                let name = &sql[i..end];
                if name.iter().any(|&c| c < b' ') {
                    return None;
                }
                ascii &= name.is_ascii();
                (end, None)
            }
            Byte::Dash if next == b'-' => return None,
            Byte::Slash if next == b'*' => return None,
            Byte::Dash | Byte::Slash => (i + 1, None),
            Byte::Refuse => return None,
        };
        if let Some(m) = marker {
            let kept = &sql[copied..i];
            out[o..o + kept.len()].copy_from_slice(kept);
            out[o + kept.len()] = m;
            o += kept.len() + 1;
            copied = end;
        }
        in_word = false;
        i = end;
    }
    let kept = &sql[copied..];
    out[o..o + kept.len()].copy_from_slice(kept);
    o += kept.len();
    (ascii || std::str::from_utf8(sql).is_ok()).then_some(o)
}

/// The token at `i`, a digit or a `.` before one: where it ends, and [`NUM`] when it is a
/// number (`None`: a name, `1abc`, kept as it is).
fn number(sql: &[u8], i: usize, ascii: &mut bool) -> Option<(usize, Option<u8>)> {
    let digits = sql[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    let after = sql.get(i + digits).copied();
    if digits > 0 && after.is_none_or(|a| BYTES[usize::from(a)] == Byte::Plain) {
        // The common case, `id=42 `: digits that nothing joins to a name, a fraction, an
        // exponent or a hex or binary prefix.
        return Some((i + digits, Some(NUM)));
    }
    // The lexer's own rules: `1e5`, `0x1f` and `.5` are numbers, `1abc` a name.
    let at = Resume {
        pos: i,
        in_exec: false,
    };
    let t = Lexer::resume(sql, at).next_token()?;
    if t.kind == Kind::Num {
        return Some((t.end, Some(NUM)));
    }
    *ascii &= sql[i..t.end].is_ascii();
    Some((t.end, None))
}

/// The schema names a remembered statement spells out, as `schemas::visit_schema_refs`
/// finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refs {
    /// Not known: scan the statement.
    Unknown,
    /// These (none, most often).
    Known(Option<Arc<[Box<[u8]>]>>),
}

impl Refs {
    /// The names `sql` spells out, when they are the same for every statement of its
    /// shape: not when a word could make a string literal SQL (`PREPARE s FROM '...'`,
    /// `EXECUTE IMMEDIATE '...'`), whose names the scan looks into.
    fn of(sql: &[u8]) -> Refs {
        let dynamic = [&b"prepare"[..], b"immediate"]
            .iter()
            .any(|w| sql.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w)));
        if dynamic {
            return Refs::Unknown;
        }
        Refs::scanned(sql)
    }

    /// Every name a scan of `sql` finds, literals made SQL included: this statement's own
    /// names, for a statement classified off the event loop (so none of its checks scans
    /// it there again).
    pub fn scanned(sql: &[u8]) -> Refs {
        let mut names: Vec<Box<[u8]>> = Vec::new();
        let _ = super::visit_schema_refs(sql, |name| {
            names.push(name.into());
            std::ops::ControlFlow::<()>::Continue(())
        });
        Refs::Known((!names.is_empty()).then(|| names.into()))
    }

    /// Calls `f` with each schema name `sql` spells out: the known ones, or those a scan
    /// finds.
    pub fn visit<B>(
        &self,
        sql: &[u8],
        mut f: impl FnMut(&[u8]) -> std::ops::ControlFlow<B>,
    ) -> std::ops::ControlFlow<B> {
        match self {
            Refs::Known(names) => names.iter().flat_map(|n| n.iter()).try_for_each(|n| f(n)),
            Refs::Unknown => super::visit_schema_refs(sql, f),
        }
    }
}

/// What the classifier answered for a statement of a shape.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub c: Arc<Classification>,
    pub fingerprint: u64,
    pub refs: Refs,
}

struct Entry {
    shape: Box<[u8]>,
    answer: Answer,
}

struct Inner {
    clock: Clock<Entry>,
    /// The shape being looked up, kept to spare an allocation per statement.
    scratch: Box<[u8; MAX_SHAPE]>,
}

/// Bounded shape -> answer map of one worker (CLOCK, like the digest cache).
pub(crate) struct Memo {
    inner: Mutex<Inner>,
}

/// A statement's shape, found but not remembered yet.
pub(crate) struct Missed {
    key: u64,
    shape: Box<[u8]>,
}

impl Memo {
    pub fn new(capacity: usize) -> Self {
        Memo {
            inner: Mutex::new(Inner {
                clock: Clock::new(capacity),
                scratch: Box::new([0; MAX_SHAPE]),
            }),
        }
    }

    /// The answer remembered for `sql`'s shape; else the shape to remember it by, if it
    /// has one.
    pub fn recall(&self, sql: &[u8]) -> Result<Answer, Option<Missed>> {
        let mut guard = self.inner.locked();
        let inner = &mut *guard;
        let Some(len) = shape(sql, &mut inner.scratch) else {
            return Err(None);
        };
        let found = &inner.scratch[..len];
        let mut h = rustc_hash::FxHasher::default();
        h.write(found);
        let key = h.finish();
        match inner.clock.get(key) {
            Some(e) if *e.shape == *found => Ok(e.answer.clone()),
            _ => Err(Some(Missed {
                key,
                shape: found.into(),
            })),
        }
    }

    /// Remembers what the classifier answered for `sql`, a lone SELECT of shape `m`.
    pub fn remember(&self, m: Missed, sql: &[u8], c: &Arc<Classification>, fingerprint: u64) {
        let answer = Answer {
            c: Arc::clone(c),
            fingerprint,
            refs: Refs::of(sql),
        };
        let entry = Entry {
            shape: m.shape,
            answer,
        };
        self.inner.locked().clock.put(m.key, entry);
    }

    pub fn len(&self) -> usize {
        self.inner.locked().clock.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::router::classify::classify_fingerprinted;
    use crate::router::digest::Cache;
    use crate::router::Router;

    fn shape_of(sql: &str) -> Option<Vec<u8>> {
        let mut out = [0; MAX_SHAPE];
        shape(sql.as_bytes(), &mut out).map(|n| out[..n].to_vec())
    }

    #[test]
    fn literals_are_blanked_and_names_kept() {
        let a = shape_of("SELECT c FROM sbtest1 WHERE id=5123").unwrap();
        assert_eq!(a, b"SELECT c FROM sbtest1 WHERE id=\x02");
        assert_eq!(shape_of("SELECT c FROM sbtest1 WHERE id=7"), Some(a));
        assert_eq!(
            shape_of("SELECT 'it''s', 1.5e3, .5, 0x1f FROM `t``1`").unwrap(),
            b"SELECT \x01, \x02, \x02, \x02 FROM `t``1`"
        );
        // Digit-led names are names, and a digit inside a name is the name's.
        assert_eq!(
            shape_of("SELECT 1abc, a1 FROM t").unwrap(),
            b"SELECT 1abc, a1 FROM t"
        );
        assert_ne!(shape_of("SELECT * FROM t1"), shape_of("SELECT * FROM t2"));
        assert_eq!(shape_of("SELECT 'é'").unwrap(), b"SELECT \x01");
    }

    #[test]
    fn what_a_shape_cannot_stand_for_has_none() {
        for sql in [
            "SELECT /* hint */ 1",
            "SELECT 1 -- x",
            "SELECT 1 # x",
            "SELECT \"a\"",
            "SELECT 'a\\'b'",
            "SELECT @x",
            "SELECT @@version",
            "SELECT 'open",
            "SELECT `open",
            "SELECT \x01",
        ] {
            assert_eq!(shape_of(sql), None, "{sql}");
        }
        assert_eq!(shape(b"SELECT '\xff'", &mut [0; MAX_SHAPE]), None);
        let long = format!("SELECT {}", "1,".repeat(MAX_SHAPE));
        assert_eq!(shape_of(&long), None);
    }

    /// The lexer's tokens with literal values left out: what a shape must determine.
    fn erased(sql: &str) -> Vec<(Kind, Vec<u8>)> {
        let at = Resume {
            pos: 0,
            in_exec: false,
        };
        Lexer::resume(sql.as_bytes(), at)
            .map(|t| match t.kind {
                Kind::Str | Kind::Num => (t.kind, Vec::new()),
                k => (k, sql.as_bytes()[t.start..t.end].to_vec()),
            })
            .collect()
    }

    /// Statements from a small alphabet of tokens and separators, so that many share a
    /// shape and many differ from another only where a shape might blur them (`1abc` and
    /// `1 abc`, `t.5` and `t .5`, `1.5.3`).
    fn corpus(seed: u64, n: usize) -> Vec<String> {
        const PIECES: &[&str] = &[
            "SELECT", "c", "FROM", "t", "t1", "WHERE", "id", "IN", "e", "x", "b", "abc", "1", "42",
            "0", "1.5", ".5", "1e5", "1e", "0x1f", "0b1", "1abc", "'a'", "'b'", "''", "'it''s'",
            "`t`", "`a``b`", "=", ",", "(", ")", ".", ";", "*", "-", "+", "/", ":=", "<", "FOR",
            "UPDATE", "é",
        ];
        const SEPS: &[&str] = &["", " ", " ", "\n"];
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut s = String::from("SELECT ");
                for _ in 0..rng.random_range(1..7) {
                    s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
                    s.push_str(SEPS[rng.random_range(0..SEPS.len())]);
                }
                s
            })
            .collect()
    }

    #[test]
    fn statements_of_one_shape_lex_alike_but_for_literals() {
        let mut by_shape: HashMap<Vec<u8>, String> = HashMap::new();
        let mut shared = 0;
        for sql in corpus(7, 200_000) {
            let Some(s) = shape_of(&sql) else {
                continue;
            };
            match by_shape.get(&s) {
                Some(first) => {
                    shared += usize::from(*first != sql);
                    assert_eq!(erased(first), erased(&sql), "{first:?} and {sql:?}");
                }
                None => {
                    by_shape.insert(s, sql);
                }
            }
        }
        assert!(shared > 10_000, "only {shared} statements shared a shape");
    }

    #[test]
    fn a_remembered_answer_is_the_classifiers() {
        // Against a digest cache that sees every statement in the same order: a digest's
        // first statement decides for all of it in both (sqlparser may parse two members
        // of a digest differently: `SELECT 1 0` and `SELECT 1e5 0`).
        let router = Router::with_cache_entries(100_000);
        let reference = Cache::new(100_000);
        let mut hits = 0;
        for sql in corpus(11, 20_000) {
            let (c, fp) = classify_fingerprinted(&reference, None, sql.as_bytes());
            let got = router.classify_query(sql.as_bytes());
            hits += usize::from(got.refs != Refs::Unknown);
            assert_eq!((&*got.c, got.fingerprint), (&c, fp), "{sql:?}");
        }
        assert!(hits > 1_000, "only {hits} statements were remembered");
        assert!(router.remembered_shapes() > 0);
    }
}
