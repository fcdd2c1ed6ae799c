//! Statement digests (token stream with literals as `?`, keywords case-folded) and the
//! bounded cache of SELECT-family decisions keyed by them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use super::lexer::{Cursor, Kind};
use super::{Class, Effects};

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

/// Digests the statement under `cur`, consuming it up to (not including) its `;`.
/// Comments (hence hints) never reach the digest; literals hash as `?`.
pub(crate) fn digest(cur: &mut Cursor) -> Digest {
    let mut h = Hash2::new();
    while let Some(t) = cur.next_tok() {
        let text = cur.text(t);
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
    }
    // An executable comment still open where the statement ends makes it a different
    // statement (the server rejects it), as an unterminated string does.
    if cur.resume_point().in_exec {
        h.byte(b'!');
    }
    h.finish()
}

/// The part of a classification that depends only on the digest.
#[derive(Debug, Clone)]
struct Cached {
    check: u64,
    class: Class,
    effects: Effects,
}

/// The digest is already a hash; hashing it again would only cost time.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Bounded, thread-safe digest -> decision cache. When full it starts over: simple, and
/// a working set larger than the bound costs only re-parsing.
pub(crate) struct Cache {
    map: Mutex<HashMap<u64, Cached, BuildHasherDefault<KeyHasher>>>,
    capacity: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            map: Mutex::new(HashMap::default()),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, d: Digest) -> Option<(Class, Effects)> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let hit = map.get(&d.key).filter(|c| c.check == d.check)?;
        Some((hit.class.clone(), hit.effects.clone()))
    }

    pub fn put(&self, d: Digest, class: &Class, effects: &Effects) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&d.key) {
            map.clear();
        }
        map.insert(
            d.key,
            Cached {
                check: d.check,
                class: class.clone(),
                effects: effects.clone(),
            },
        );
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
