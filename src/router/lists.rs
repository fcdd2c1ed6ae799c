//! Lists of literals (`IN (1, 2, 3)`, `VALUES (1, 'a'), (2, 'b')`): one shape whatever their
//! length, so a client cannot mint a new digest (and cache entry) per list length.
//!
//! Only literals and placeholders (`?`), one leading sign, commas, parentheses and whitespace may make up a
//! list. Such a list carries nothing routing looks at (no function, variable or keyword), so
//! every member of a collapsed shape routes alike; a comment inside (an executable one could
//! hide SQL) leaves the list as it is.

use std::ops::Range;

use super::lexer::{is_space, quoted_end, Cursor, Escapes, Kind, Token};

/// A recognized list: the cursor just past it, and the bytes a canonical member of its shape
/// leaves out (every element after the first).
pub(crate) struct List<'a> {
    pub after: Cursor<'a>,
    pub cut: Range<usize>,
}

/// With `(` next (after `IN`): a parenthesized list of literals or of literal tuples.
/// Tokens ending past `limit` are not read.
pub(crate) fn in_list<'a>(cur: &Cursor<'a>, limit: usize) -> Option<List<'a>> {
    Skip::new(cur, limit)
        .and_then(|s| s.in_list(cur))
        .or_else(|| walk_in_list(cur, limit))
}

fn walk_in_list<'a>(cur: &Cursor<'a>, limit: usize) -> Option<List<'a>> {
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
    Skip::new(cur, limit)
        .and_then(|s| s.value_rows(cur))
        .or_else(|| walk_value_rows(cur, limit))
}

fn walk_value_rows<'a>(cur: &Cursor<'a>, limit: usize) -> Option<List<'a>> {
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

/// The common lists (plain integers, quoted strings and placeholders, whitespace between)
/// read byte by byte rather than token by token: a 1 MB IN list took 7 ms as tokens. It
/// answers only where the token walk ([`Walk`]) would answer the same, and gives up (None)
/// on anything else, which the token walk then reads from the start.
struct Skip<'a> {
    /// The statement up to the limit: nothing past it may be read.
    src: &'a [u8],
    escapes: Escapes,
    /// Just past the list's opening `(`.
    start: usize,
}

/// Why the skipper stopped short of a list's end.
enum Stop {
    /// The text (or the limit) ends first, with only plain pieces read.
    End,
    /// Something the skipper does not read: the token walk decides.
    Odd,
}

impl<'a> Skip<'a> {
    fn new(cur: &Cursor<'a>, limit: usize) -> Option<Self> {
        let mut cur = cur.clone();
        let open = cur.peek().filter(|t| t.is_punct(b'(') && t.end <= limit)?;
        let src = cur.src();
        Some(Skip {
            src: &src[..limit.min(src.len())],
            escapes: cur.escapes(),
            start: open.end,
        })
    }

    fn space(&self, mut i: usize) -> usize {
        while self.src.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        i
    }

    /// The byte at `i`, or [`Stop::End`].
    fn at(&self, i: usize) -> Result<u8, Stop> {
        self.src.get(i).copied().ok_or(Stop::End)
    }

    /// The end of a plain integer, a quoted string or a `?` at `i`, when a space, `,` or `)`
    /// follows it (so the lexer would end the token there too).
    fn scalar(&self, i: usize) -> Result<usize, Stop> {
        let end = match self.at(i)? {
            b'1'..=b'9' => {
                i + self.src[i..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count()
            }
            // `0x..`, `0b..` and `0.5` are left to the lexer.
            b'0' => i + 1,
            // A placeholder (a prepared statement's text): one byte, as the lexer reads it.
            b'?' => i + 1,
            q @ b'\'' => quoted_end(self.src, i, q, self.escapes.single).ok_or(Stop::End)?,
            q @ b'"' => quoted_end(self.src, i, q, self.escapes.double).ok_or(Stop::End)?,
            _ => return Err(Stop::Odd),
        };
        match self.at(end)? {
            b',' | b')' => Ok(end),
            b if is_space(b) => Ok(end),
            _ => Err(Stop::Odd),
        }
    }

    /// Scalars separated by commas from `i` to a `)`: (end of the first, where `)` is).
    fn scalars(&self, i: usize) -> Result<(usize, usize), Stop> {
        let first = self.scalar(self.space(i))?;
        let mut i = self.space(first);
        loop {
            match self.at(i)? {
                b')' => return Ok((first, i)),
                b',' => i = self.space(self.scalar(self.space(i + 1))?),
                _ => return Err(Stop::Odd),
            }
        }
    }

    fn in_list(&self, cur: &Cursor<'a>) -> Option<List<'a>> {
        let (first, close) = self.scalars(self.start).ok()?;
        Some(self.list(cur, first..close, close + 1))
    }

    /// Rows up to the first that does not follow: the end of the list, anything but `,`
    /// after a row, or a row cut off by the end of the text or the limit (the walk cannot
    /// close it either: only plain pieces led there). A `,` followed by anything else is
    /// left to the walk, which knows how far the list then goes.
    fn value_rows(&self, cur: &Cursor<'a>) -> Option<List<'a>> {
        let (_, close) = self.scalars(self.start).ok()?;
        let first = close + 1;
        let mut last = first;
        loop {
            let i = self.space(last);
            if self.src.get(i) != Some(&b',') {
                return Some(self.list(cur, first..last, last));
            }
            let open = self.space(i + 1);
            let row = match self.at(open) {
                Ok(b'(') => self.scalars(open + 1),
                Ok(_) => Err(Stop::Odd),
                Err(end) => Err(end),
            };
            match row {
                Ok((_, close)) => last = close + 1,
                Err(Stop::End) => return Some(self.list(cur, first..last, last)),
                Err(Stop::Odd) => return None,
            }
        }
    }

    fn list(&self, cur: &Cursor<'a>, cut: Range<usize>, after: usize) -> List<'a> {
        let mut after_cur = cur.clone();
        after_cur.skip_to(after);
        List {
            after: after_cur,
            cut,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::lexer::Resume;

    type Find = for<'a> fn(&Cursor<'a>, usize) -> Option<List<'a>>;

    /// Where a list found by `f` ends and what it cuts, read from `sql` after its first
    /// word (`IN` or `VALUES`).
    fn found(sql: &[u8], limit: usize, f: Find) -> Option<(Resume, Range<usize>)> {
        let mut cur = Cursor::new(
            sql,
            Resume {
                pos: 0,
                in_exec: false,
            },
        );
        cur.next_tok()?;
        if !cur.peek()?.is_punct(b'(') {
            return None;
        }
        f(&cur, limit).map(|mut l| (l.after.resume_point(), l.cut))
    }

    fn skip_in_list<'a>(cur: &Cursor<'a>, limit: usize) -> Option<List<'a>> {
        Skip::new(cur, limit)?.in_list(cur)
    }

    fn skip_value_rows<'a>(cur: &Cursor<'a>, limit: usize) -> Option<List<'a>> {
        Skip::new(cur, limit)?.value_rows(cur)
    }

    /// A small deterministic generator: xorshift.
    struct Gen(u64);
    impl Gen {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A list as clients send them, with now and then a piece the skipper must leave to
    /// the walk (another number form, a placeholder, a sign, a comment, a call, a
    /// semicolon, an unclosed string) or a space, comma or parenthesis too many or too few.
    fn list_like(g: &mut Gen, rows: bool) -> String {
        const GOOD: &[&str] = &[
            "1", "23", "0", "?", "'a'", "\"b\"", "'it''s'", "'x\\'y'", "''",
        ];
        const ODD: &[&str] = &[
            "??", "-1", "1.5", "1e5", "0x1F", "00", "12ab", "NOW()", "/* c */", "#c\n", "-- c\n",
            ";", "'open", "x", ",", "(", ")", "",
        ];
        const SPACE: &[&str] = &["", "", " ", "\n  "];
        let piece = |g: &mut Gen| {
            let p = if g.below(10) == 0 {
                ODD[g.below(ODD.len())]
            } else {
                GOOD[g.below(GOOD.len())]
            };
            format!("{}{p}{}", SPACE[g.below(4)], SPACE[g.below(4)])
        };
        let group = |g: &mut Gen| {
            let items: Vec<String> = (0..1 + g.below(4)).map(|_| piece(g)).collect();
            format!("({})", items.join(","))
        };
        if rows {
            let groups: Vec<String> = (0..1 + g.below(4)).map(|_| group(g)).collect();
            format!(
                "VALUES {}{}",
                groups.join(SPACE[g.below(4)]).replace(")(", "),("),
                piece(g)
            )
        } else {
            format!("IN {}{}", group(g), SPACE[g.below(4)])
        }
    }

    #[test]
    fn skipped_lists_end_where_the_token_walk_ends() {
        let mut g = Gen(0x5eed_1234_abcd_0001);
        let (mut skipped, mut walked, mut neither) = (0, 0, 0);
        for _ in 0..100_000 {
            let rows = g.below(2) == 0;
            let sql = list_like(&mut g, rows);
            let limit = if g.below(4) == 0 {
                g.below(sql.len() + 2)
            } else {
                usize::MAX
            };
            let sql = sql.as_bytes();
            let (skip, walk): (Find, Find) = if rows {
                (skip_value_rows, walk_value_rows)
            } else {
                (skip_in_list, walk_in_list)
            };
            let by_walk = found(sql, limit, walk);
            match found(sql, limit, skip) {
                Some(by_skip) => {
                    assert_eq!(
                        Some(by_skip),
                        by_walk,
                        "{:?} limit {limit}",
                        String::from_utf8_lossy(sql)
                    );
                    skipped += 1;
                }
                None if by_walk.is_some() => walked += 1,
                None => neither += 1,
            }
        }
        // Every outcome is exercised: lists the skipper reads, lists only the walk reads,
        // and text that is no list.
        assert!(
            skipped > 10_000 && walked > 5_000 && neither > 5_000,
            "{skipped} {walked} {neither}"
        );
    }
}
