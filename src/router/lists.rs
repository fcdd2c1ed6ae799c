//! Lists of literals (`IN (1, 2, 3)`, `VALUES (1, 'a'), (2, 'b')`): one shape whatever their
//! length, so a client cannot mint a new digest (and cache entry) per list length.
//!
//! Only literals and placeholders (`?`), one leading sign, commas, parentheses and whitespace may make up a
//! list. Such a list carries nothing routing looks at (no function, variable or keyword), so
//! every member of a collapsed shape routes alike; a comment inside (an executable one could
//! hide SQL) leaves the list as it is.

use std::ops::Range;

use super::lexer::{is_space, Cursor, Kind, Token};

/// A recognized list: the cursor just past it, and the bytes a canonical member of its shape
/// leaves out (every element after the first).
pub(crate) struct List<'a> {
    pub after: Cursor<'a>,
    pub cut: Range<usize>,
}

/// With `(` next (after `IN`): a parenthesized list of literals or of literal tuples.
/// Tokens ending past `limit` are not read.
pub(crate) fn in_list<'a>(cur: &Cursor<'a>, limit: usize) -> Option<List<'a>> {
    let mut w = Walk::new(cur, limit);
    w.punct(b'(')?;
    let first = w.element()?;
    loop {
        let t = w.tok()?;
        if t.is_punct(b')') {
            return Some(List {
                after: w.cur,
                cut: first..t.start,
            });
        }
        if !t.is_punct(b',') {
            return None;
        }
        w.element()?;
    }
}

/// After `VALUES`: rows of literals, `(1, 'a'), (2, 'b')`. Rows that follow and are not all
/// literals are left to the caller.
pub(crate) fn value_rows<'a>(cur: &Cursor<'a>, limit: usize) -> Option<List<'a>> {
    let mut w = Walk::new(cur, limit);
    let first = w.tuple()?;
    let mut last = first;
    loop {
        let mut next = w.clone();
        if !next.tok().is_some_and(|t| t.is_punct(b',')) {
            break;
        }
        let Some(end) = next.tuple() else { break };
        last = end;
        w = next;
    }
    Some(List {
        after: w.cur,
        cut: first..last,
    })
}

#[derive(Clone)]
struct Walk<'a> {
    cur: Cursor<'a>,
    prev_end: Option<usize>,
    limit: usize,
}

impl<'a> Walk<'a> {
    fn new(cur: &Cursor<'a>, limit: usize) -> Self {
        Walk {
            cur: cur.clone(),
            prev_end: None,
            limit,
        }
    }

    fn tok(&mut self) -> Option<Token> {
        let t = self.cur.peek()?;
        if t.end > self.limit {
            return None;
        }
        if let Some(e) = self.prev_end {
            if !self.cur.src()[e..t.start].iter().all(|&b| is_space(b)) {
                return None;
            }
        }
        self.cur.next_tok();
        self.prev_end = Some(t.end);
        Some(t)
    }

    fn punct(&mut self, b: u8) -> Option<usize> {
        let t = self.tok()?;
        t.is_punct(b).then_some(t.end)
    }

    fn scalar(&mut self) -> Option<usize> {
        let t = self.tok()?;
        match t.kind {
            // `?`: a prepared statement's placeholder is a value too.
            Kind::Str | Kind::Num | Kind::Punct(b'?') => Some(t.end),
            Kind::Punct(b'-' | b'+') => {
                let n = self.tok()?;
                (n.kind == Kind::Num).then_some(n.end)
            }
            _ => None,
        }
    }

    fn tuple(&mut self) -> Option<usize> {
        self.punct(b'(')?;
        self.scalar()?;
        loop {
            let t = self.tok()?;
            if t.is_punct(b')') {
                return Some(t.end);
            }
            if !t.is_punct(b',') {
                return None;
            }
            self.scalar()?;
        }
    }

    fn element(&mut self) -> Option<usize> {
        if self.cur.peek()?.is_punct(b'(') {
            self.tuple()
        } else {
            self.scalar()
        }
    }
}

/// The list the word `w` (just read from `cur`) introduces, if `(` follows and a list of
/// literals does.
pub(crate) fn after_word<'a>(w: &[u8], cur: &mut Cursor<'a>, limit: usize) -> Option<List<'a>> {
    if !cur.peek().is_some_and(|n| n.is_punct(b'(')) {
        return None;
    }
    if w.eq_ignore_ascii_case(b"IN") {
        in_list(cur, limit)
    } else if w.eq_ignore_ascii_case(b"VALUES") || w.eq_ignore_ascii_case(b"VALUE") {
        value_rows(cur, limit)
    } else {
        None
    }
}
