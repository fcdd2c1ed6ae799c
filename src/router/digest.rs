//! Statement digests (token stream with literals as `?`, lists of literals as one `L`,
//! keywords case-folded) and the bounded cache of SELECT-family decisions keyed by them.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Mutex;

use super::clock::Clock;
use super::fingerprint::{Fnv, Normalizer};
use super::lexer::{Cursor, Kind};
use super::lists;
use super::{Class, Effects, PrimaryReason};
use crate::state::lock::Unpoisoned;

/// Two independent 64-bit hashes of the normalized token stream: `key` indexes the cache,
/// `check` guards against a key collision handing one statement another's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Digest {
    pub key: u64,
    pub check: u64,
}

struct Hash2 {
    a: u64,
    b: u64,
}

impl Hash2 {
    fn new() -> Self {
        Hash2 {
            a: 0xcbf2_9ce4_8422_2325,
            b: 0x9e37_79b9_7f4a_7c15,
        }
    }

    #[inline]
    fn byte(&mut self, x: u8) {
        self.a = (self.a ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
        self.b = (self.b ^ u64::from(x))
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .rotate_left(23);
    }

    fn finish(self) -> Digest {
        Digest {
            key: self.a,
            check: self.b ^ (self.b >> 29),
        }
    }
}

/// What the classifier needs from one pass over a SELECT-family statement.
pub(crate) struct Shape {
    pub digest: Digest,
    /// Byte ranges that a canonical member of the shape leaves out: every element of a
    /// collapsed literal list after the first. Empty for most statements (no allocation).
    pub cuts: Vec<Range<usize>>,
    /// The statement's `fingerprint_hash` as far as its tokens go, computed in the same
    /// pass; `None` when the fingerprint would be cut (past its scan or text limits).
    pub fingerprint: Option<u64>,
}

/// `fingerprint_hash` fed token by token from the digest pass.
struct Fingerprint {
    n: Normalizer,
    h: Fnv,
    ok: bool,
}

impl Fingerprint {
    fn token(&mut self, start: usize, kind: Kind, text: &[u8]) {
        if !self.ok {
            return;
        }
        if self.n.past_scan(start) {
            self.ok = false;
            return;
        }
        let h = &mut self.h;
        self.n.token(kind, text, |p| h.feed(p));
    }

    fn list(&mut self, cut: usize) {
        let h = &mut self.h;
        self.n.list(cut, |p| h.feed(p));
        self.ok &= !self.n.full();
    }

    fn finish(self) -> Option<u64> {
        (self.ok && !self.n.full()).then_some(self.h.0)
    }
}

impl Shape {
    /// The canonical member's text: `range` of `src` without the cuts.
    pub fn canonical<'s>(&self, src: &'s [u8], range: Range<usize>) -> Cow<'s, [u8]> {
        if self.cuts.is_empty() {
            return Cow::Borrowed(&src[range]);
        }
        let mut out = Vec::with_capacity(range.len());
        let mut at = range.start;
        for c in &self.cuts {
            out.extend_from_slice(&src[at..c.start]);
            at = c.end;
        }
        out.extend_from_slice(&src[at..range.end.max(at)]);
        Cow::Owned(out)
    }
}

/// How much of a statement is worth a digest: what sqlparser would be given (lists cut to
/// their first element) must end by `end` and nest no deeper than `depth`.
pub(crate) struct Limits {
    pub end: usize,
    pub depth: usize,
}

/// Digests the statement under `cur`, consuming it up to (not including) its `;`.
/// Comments (hence hints) never reach the digest; literals hash as `?`, and a list of
/// literals of any length as one `L` (see `lists`). Stops early, with the reason, at the
/// first token past `limits`: such a statement is not parsed, so its digest is not needed.
pub(crate) fn digest(cur: &mut Cursor, limits: &Limits) -> Result<Shape, PrimaryReason> {
    let mut h = Hash2::new();
    let mut cuts: Vec<Range<usize>> = Vec::new();
    let mut cut = 0;
    let mut depth = 0usize;
    let mut fp = Fingerprint {
        n: Normalizer::default(),
        h: Fnv::default(),
        ok: true,
    };
    while let Some(t) = cur.next_tok() {
        if t.end - cut > limits.end {
            return Err(PrimaryReason::TooLong);
        }
        let text = cur.text(t);
        fp.token(t.start, t.kind, text);
        // A tag per kind keeps `select` the keyword apart from `` `select` `` the name.
        let (tag, body): (u8, &[u8]) = match t.kind {
            Kind::Word => (b'w', text),
            Kind::QuotedIdent => (b'q', text),
            Kind::Str | Kind::Num => (b'?', b""),
            Kind::Unterminated => (b'x', b""),
            Kind::UserVar => (b'u', text),
            Kind::SysVar => (b's', text),
            Kind::Assign => (b'a', b""),
            Kind::Punct(p) => (p, b""),
        };
        h.byte(tag);
        let fold = matches!(t.kind, Kind::Word | Kind::SysVar | Kind::UserVar);
        for &b in body {
            h.byte(if fold { b.to_ascii_uppercase() } else { b });
        }
        h.byte(0);
        match t.kind {
            Kind::Punct(b'(') => {
                depth += 1;
                if depth > limits.depth {
                    return Err(PrimaryReason::TooDeep);
                }
            }
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Word => {
                if let Some(list) = lists::after_word(text, cur, usize::MAX) {
                    *cur = list.after;
                    cut += list.cut.len();
                    fp.list(list.cut.len());
                    cuts.push(list.cut);
                    // `L` is an identifier byte, so never a punctuation tag.
                    h.byte(b'L');
                    h.byte(0);
                }
            }
            _ => {}
        }
    }
    // An executable comment still open where the statement ends makes it a different
    // statement (the server rejects it), as an unterminated string does.
    if cur.resume_point().in_exec {
        h.byte(b'!');
    }
    Ok(Shape {
        digest: h.finish(),
        cuts,
        fingerprint: fp.finish(),
    })
}

/// The part of a classification that depends only on the digest.
#[derive(Debug, Clone)]
struct Cached {
    check: u64,
    class: Class,
    effects: Effects,
}

/// Bounded, thread-safe digest -> decision cache. When full, one new entry replaces one
/// old one (CLOCK), so a client minting new statements costs others little.
pub(crate) struct Cache {
    slots: Mutex<Clock<Cached>>,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            slots: Mutex::new(Clock::new(capacity)),
        }
    }

    pub fn get(&self, d: Digest) -> Option<(Class, Effects)> {
        let mut s = self.slots.locked();
        let hit = s.get(d.key).filter(|c| c.check == d.check)?;
        Some((hit.class.clone(), hit.effects.clone()))
    }

    pub fn put(&self, d: Digest, class: &Class, effects: &Effects) {
        let entry = Cached {
            check: d.check,
            class: class.clone(),
            effects: effects.clone(),
        };
        self.slots.locked().put(d.key, entry);
    }

    pub fn len(&self) -> usize {
        self.slots.locked().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u64) -> Digest {
        Digest { key: i, check: !i }
    }

    fn filled(n: u64) -> Cache {
        let c = Cache::new(n as usize);
        for i in 0..n {
            c.put(d(i), &Class::Read, &Effects::default());
        }
        c
    }

    #[test]
    fn a_key_collision_is_a_miss() {
        let c = filled(4);
        assert!(c.get(Digest { key: 1, check: 1 }).is_none());
    }
}
