//! A byte-level MySQL lexer: skips trivia, keeps strings and quoted names whole, never allocates.

/// What a token is; its bytes are `src[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Keyword or bare identifier (case-insensitive).
    Word,
    /// `` `name` `` (start..end includes the backticks).
    QuotedIdent,
    /// `'...'` or `"..."` (double quotes are strings unless ANSI_QUOTES, which we do not model).
    Str,
    /// A string or quoted name that runs to the end of the input: the server rejects it,
    /// and it must not share a digest with a complete one.
    Unterminated,
    Num,
    /// `@name`, `@'name'`, `` @`name` ``: a user variable.
    UserVar,
    /// `@@name`, `@@session.name`, `@@global.name`.
    SysVar,
    /// `:=`
    Assign,
    /// Any other single byte (`(`, `,`, `;`, `.`, `=`, ...).
    Punct(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn is_punct(&self, b: u8) -> bool {
        self.kind == Kind::Punct(b)
    }
}

/// Whether `b` may appear in a bare identifier. Bytes >= 0x80 are taken as identifier bytes
/// so multi-byte (or invalid) UTF-8 never splits a name.
pub(crate) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Where a system variable's name that starts at `at` (after its `@@`) ends, its scope
/// with it. The server takes the name in backticks too, and spaces or comments around the
/// scope's dot (`@@`server_id``, `@@session . read_only`): all of it is the token, which
/// [`sysvar_parts`] then declines to read.
fn sysvar_end(src: &[u8], at: usize) -> usize {
    let mut end = at;
    loop {
        end = if src.get(end) == Some(&b'`') {
            quoted_end(src, end, b'`', false).unwrap_or(src.len())
        } else {
            end + src[end..].iter().take_while(|&&b| is_ident_byte(b)).count()
        };
        let dot = trivia_end(src, end);
        if src.get(dot) != Some(&b'.') {
            return end;
        }
        end = trivia_end(src, dot + 1);
    }
}

/// Past whitespace and plain comments from `at`. An executable comment is not passed: its
/// content is SQL.
fn trivia_end(src: &[u8], mut at: usize) -> usize {
    while let Some(&b) = src.get(at) {
        let next = src.get(at + 1).copied();
        if is_space(b) {
            at += 1;
        } else if b == b'/' && next == Some(b'*') && !opens_executable(&src[at..]) {
            at = comment_end(src, at);
        } else if b == b'#' || opens_dash_comment(&src[at..]) {
            at += src[at..]
                .iter()
                .position(|&c| c == b'\n')
                .unwrap_or(src.len() - at);
        } else {
            break;
        }
    }
    at
}

fn opens_executable(at: &[u8]) -> bool {
    at.starts_with(b"/*!") || at.starts_with(b"/*M!")
}

/// A system variable token's scope, if spelt, and name: `@@x`, `@@session.x`,
/// `@@global.x`. None when spelt in a way that is not read here (in backticks, with space
/// or a comment at its dot): the callers then take the safe side.
pub(crate) fn sysvar_parts(text: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let name = text.get(2..).unwrap_or(b"");
    if !name.iter().all(|&b| is_ident_byte(b) || b == b'.') {
        return None;
    }
    Some(match name.iter().position(|&b| b == b'.') {
        Some(dot) => (Some(&name[..dot]), &name[dot + 1..]),
        None => (None, name),
    })
}

/// Whether `rest` starts with a `--` comment: `--` followed by the end, whitespace or a
/// control byte, DEL (0x7F) among them, as the server's character tables mark it. DEL
/// read as a character instead would have the comment's quotes start strings here that
/// the server never sees, and hide what follows them (a write, another tenant's schema).
pub(crate) fn opens_dash_comment(rest: &[u8]) -> bool {
    rest.starts_with(b"--") && rest.get(2).is_none_or(|&c| c <= b' ' || c == 0x7f)
}

pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A lexer position that can be resumed later (a statement may start inside `/*! ... */`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resume {
    pub pos: usize,
    pub in_exec: bool,
}

/// Which quotes take backslash escapes. The server's default is both; `NO_BACKSLASH_ESCAPES`
/// turns them off for both, `ANSI_QUOTES` makes `"..."` a name (no escapes) while `'...'`
/// keeps them. Only a scan that must agree with the server under any `sql_mode` (isolation)
/// uses anything but the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Escapes {
    pub single: bool,
    pub double: bool,
}

impl Escapes {
    pub const DEFAULT: Escapes = Escapes {
        single: true,
        double: true,
    };
}

#[derive(Clone)]
pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    /// Inside `/*! ... */`: its content is SQL, and the closing `*/` is trivia.
    in_exec: bool,
    escapes: Escapes,
    /// Versioned executable comments (`/*!50700 ...`, `/*M!100500 ...`) read as a server
    /// older than their version reads them: skipped to the first `*/`.
    skip_versioned: bool,
    /// One was met (either way).
    saw_versioned: bool,
}

impl<'a> Lexer<'a> {
    pub fn resume(src: &'a [u8], at: Resume) -> Self {
        Lexer {
            src,
            pos: at.pos.min(src.len()),
            in_exec: at.in_exec,
            escapes: Escapes::DEFAULT,
            skip_versioned: false,
            saw_versioned: false,
        }
    }

    /// A lexer over the whole of `src` whose strings take backslash escapes as `escapes` says.
    pub fn with_escapes(src: &'a [u8], escapes: Escapes) -> Self {
        Lexer {
            src,
            pos: 0,
            in_exec: false,
            escapes,
            skip_versioned: false,
            saw_versioned: false,
        }
    }

    /// This lexer, reading versioned executable comments as skipped (see `skip_versioned`).
    pub fn skipping_versioned(mut self) -> Self {
        self.skip_versioned = true;
        self
    }

    /// Whether a versioned executable comment was met so far.
    pub fn saw_versioned(&self) -> bool {
        self.saw_versioned
    }

    /// Where lexing stands, including whether it is inside an executable comment.
    pub fn state(&self) -> Resume {
        Resume {
            pos: self.pos,
            in_exec: self.in_exec,
        }
    }

    pub fn src(&self) -> &'a [u8] {
        self.src
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    /// Skips whitespace and comments; enters and leaves executable comments.
    pub fn skip_trivia(&mut self) {
        while self.pos < self.src.len() {
            let b = self.src[self.pos];
            if is_space(b) {
                self.pos += 1;
            } else if b == b'#' || opens_dash_comment(&self.src[self.pos..]) {
                self.skip_line();
            } else if b == b'/' && self.at(self.pos + 1) == b'*' {
                self.enter_comment();
            } else if self.in_exec && b == b'*' && self.at(self.pos + 1) == b'/' {
                self.in_exec = false;
                self.pos += 2;
            } else {
                return;
            }
        }
    }

    fn skip_line(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    /// At `/*`: an executable comment (`/*!`, `/*M!`) exposes its content as SQL after the
    /// optional version number; any other comment is skipped whole.
    fn enter_comment(&mut self) {
        let exec_len = match (self.at(self.pos + 2), self.at(self.pos + 3)) {
            (b'!', _) => 3,
            (b'M', b'!') => 4,
            _ => 0,
        };
        if exec_len > 0 && !self.in_exec {
            if self.at(self.pos + exec_len).is_ascii_digit() {
                self.saw_versioned = true;
                if self.skip_versioned {
                    self.pos = comment_end(self.src, self.pos);
                    return;
                }
            }
            self.in_exec = true;
            self.pos += exec_len;
            while self.pos < self.src.len() && self.src[self.pos].is_ascii_digit() {
                self.pos += 1;
            }
            return;
        }
        self.pos = comment_end(self.src, self.pos);
    }

    pub fn next_token(&mut self) -> Option<Token> {
        self.skip_trivia();
        let start = self.pos;
        let b = *self.src.get(start)?;
        let kind = match b {
            b'\'' => self.quoted(Kind::Str, self.escapes.single),
            b'"' => self.quoted(Kind::Str, self.escapes.double),
            b'`' => self.quoted(Kind::QuotedIdent, false),
            b'@' => self.variable(),
            b'0'..=b'9' => self.number(),
            b'.' if self.at(start + 1).is_ascii_digit() => self.number(),
            b':' if self.at(start + 1) == b'=' => {
                self.pos += 2;
                Kind::Assign
            }
            _ if is_ident_byte(b) => {
                self.pos = ident_end(self.src, start);
                Kind::Word
            }
            _ => {
                self.pos += 1;
                Kind::Punct(b)
            }
        };
        Some(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    fn quoted(&mut self, kind: Kind, backslash: bool) -> Kind {
        let quote = self.src[self.pos];
        match quoted_end(self.src, self.pos, quote, backslash) {
            Some(end) => {
                self.pos = end;
                kind
            }
            None => {
                self.pos = self.src.len();
                Kind::Unterminated
            }
        }
    }

    fn variable(&mut self) -> Kind {
        let start = self.pos;
        if self.at(start + 1) == b'@' {
            self.pos = sysvar_end(self.src, start + 2);
            return Kind::SysVar;
        }
        self.pos = match self.at(start + 1) {
            q @ (b'\'' | b'"' | b'`') => {
                let backslash = match q {
                    b'\'' => self.escapes.single,
                    b'"' => self.escapes.double,
                    _ => false,
                };
                quoted_end(self.src, start + 1, q, backslash).unwrap_or(self.src.len())
            }
            _ => {
                let mut end = start + 1;
                while end < self.src.len()
                    && (is_ident_byte(self.src[end]) || self.src[end] == b'.')
                {
                    end += 1;
                }
                end
            }
        };
        Kind::UserVar
    }

    /// Numbers, including hex/binary and exponents; a digit-led run that continues with
    /// identifier bytes (`1abc`) is a name in MySQL, so it becomes a word.
    fn number(&mut self) -> Kind {
        let src = self.src;
        let start = self.pos;
        let mut end = start;
        let is_prefixed =
            src[start] == b'0' && matches!(self.at(start + 1), b'x' | b'X' | b'b' | b'B');
        if is_prefixed {
            end += 2;
            while end < src.len() && src[end].is_ascii_hexdigit() {
                end += 1;
            }
        } else {
            while end < src.len() && (src[end].is_ascii_digit() || src[end] == b'.') {
                end += 1;
            }
            if matches!(self.at(end), b'e' | b'E') {
                let sign = usize::from(matches!(self.at(end + 1), b'+' | b'-'));
                if self.at(end + 1 + sign).is_ascii_digit() {
                    end += 1 + sign;
                    while end < src.len() && src[end].is_ascii_digit() {
                        end += 1;
                    }
                }
            }
        }
        if end < src.len() && is_ident_byte(src[end]) && src[start] != b'.' {
            self.pos = ident_end(src, start);
            return Kind::Word;
        }
        self.pos = end;
        Kind::Num
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        self.next_token()
    }
}

fn ident_end(src: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < src.len() && is_ident_byte(src[end]) {
        end += 1;
    }
    end
}

/// End (exclusive) of a quoted run starting at `start`; doubled quotes stay inside, and so
/// do backslash escapes where `backslash` holds. `None` when the run is not closed.
/// `sql` as the default `sql_mode` lexes it into the tokens the server reads under
/// `escapes`: a backslash inside a quoted run that takes no escapes (NO_BACKSLASH_ESCAPES,
/// `"..."` under ANSI_QUOTES) is only a character there, so it becomes one that is only a
/// character under the default too (`_`). Else `'x\'; SET ...; SELECT 'y\'` would read
/// as one SELECT of one string, and the SET would pass unseen. None when nothing changes.
pub(crate) fn as_default_escapes(sql: &[u8], escapes: Escapes) -> Option<Vec<u8>> {
    if escapes == Escapes::DEFAULT || memchr::memchr(b'\\', sql).is_none() {
        return None;
    }
    let mut lexer = Lexer::with_escapes(sql, escapes);
    let mut out: Option<Vec<u8>> = None;
    while let Some(t) = lexer.next_token() {
        let quote_at = match t.kind {
            Kind::Str | Kind::Unterminated => t.start,
            Kind::UserVar => t.start + 1,
            _ => continue,
        };
        let plain = match sql.get(quote_at) {
            Some(b'\'') => !escapes.single,
            Some(b'"') => !escapes.double,
            _ => false,
        };
        if plain && memchr::memchr(b'\\', &sql[quote_at..t.end]).is_some() {
            let copy = out.get_or_insert_with(|| sql.to_vec());
            for b in &mut copy[quote_at..t.end] {
                if *b == b'\\' {
                    *b = b'_';
                }
            }
        }
    }
    out
}

/// A client character set in which the second byte of a two-byte character may be a
/// backslash or a backtick (GBK, Big5, Shift-JIS and its cp932 variant): the server reads
/// such a byte as part of the character, a byte lexer as an escape or a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiByte {
    Gbk,
    Big5,
    Sjis,
}

impl MultiByte {
    pub const ALL: [MultiByte; 3] = [MultiByte::Gbk, MultiByte::Big5, MultiByte::Sjis];

    /// By character set name (as `SET NAMES` gives it, any case).
    pub fn of_charset(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "gbk" => Some(MultiByte::Gbk),
            "big5" => Some(MultiByte::Big5),
            "sjis" | "cp932" => Some(MultiByte::Sjis),
            _ => None,
        }
    }

    /// By the collation id a handshake or COM_CHANGE_USER names.
    pub fn of_collation_id(id: u8) -> Option<Self> {
        match id {
            28 | 87 => Some(MultiByte::Gbk),
            1 | 84 => Some(MultiByte::Big5),
            13 | 88 | 95 | 96 => Some(MultiByte::Sjis),
            _ => None,
        }
    }

    fn is_pair(self, lead: u8, trail: u8) -> bool {
        let (lead_ok, trail_high) = match self {
            MultiByte::Gbk => ((0x81..=0xFE).contains(&lead), 0x80..=0xFE),
            MultiByte::Big5 => ((0xA1..=0xF9).contains(&lead), 0xA1..=0xFE),
            MultiByte::Sjis => (
                (0x81..=0x9F).contains(&lead) || (0xE0..=0xFC).contains(&lead),
                0x80..=0xFC,
            ),
        };
        lead_ok && ((0x40..=0x7E).contains(&trail) || trail_high.contains(&trail))
    }
}

/// Whether some backslash or backtick byte of `sql` follows a byte that may lead a two-byte
/// character of a [`MultiByte`] set: only then can pairing change how `sql` reads. One
/// memchr pass; most statements have no such byte.
pub(crate) fn may_pair_bytes(sql: &[u8]) -> bool {
    memchr::memchr2_iter(b'\\', b'`', sql).any(|i| i > 0 && sql[i - 1] >= 0x81)
}

/// `sql` with the second byte of each two-byte character of `cs` that is a backslash or a
/// backtick made plain (`_`), so a byte lexer splits it as the server does (`'\xbf\x5c'` is
/// one GBK character in quotes, not a quote escaped). None when there is none.
pub(crate) fn as_single_byte(sql: &[u8], cs: MultiByte) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i + 1 < sql.len() {
        if !cs.is_pair(sql[i], sql[i + 1]) {
            i += 1;
            continue;
        }
        if matches!(sql[i + 1], b'\\' | b'`') {
            out.get_or_insert_with(|| sql.to_vec())[i + 1] = b'_';
        }
        i += 2;
    }
    out
}

pub(crate) fn quoted_end(src: &[u8], start: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut i = start + 1;
    // Only a quote or a backslash can end or escape anything: find the next with memchr
    // (SIMD) rather than byte by byte; string literals are most of a bulk INSERT's bytes.
    loop {
        let rest = src.get(i..)?;
        let at = if backslash {
            memchr::memchr2(quote, b'\\', rest)?
        } else {
            memchr::memchr(quote, rest)?
        };
        i += at;
        // A backslash escapes the byte after it; a doubled quote stays inside.
        let escaped = src[i] != quote || src.get(i + 1) == Some(&quote);
        if !escaped {
            return Some(i + 1);
        }
        i += 2;
    }
}

/// End (exclusive) of a `/* ... */` comment starting at `start`.
pub(crate) fn comment_end(src: &[u8], start: usize) -> usize {
    let mut i = start + 2;
    while i + 1 < src.len() {
        if src[i] == b'*' && src[i + 1] == b'/' {
            return i + 2;
        }
        i += 1;
    }
    src.len()
}

/// A statement-bounded view over the lexer with one token of lookahead: it ends at a
/// top-level `;`, which it leaves unconsumed so the caller can find the next statement.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    lex: Lexer<'a>,
    peeked: Option<Token>,
    /// Lexer state before the peeked token, so a caller can hand it to a new cursor.
    before_peeked: Resume,
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a [u8], at: Resume) -> Self {
        Cursor {
            lex: Lexer::resume(src, at),
            peeked: None,
            before_peeked: at,
        }
    }

    pub fn src(&self) -> &'a [u8] {
        self.lex.src()
    }

    /// Which quotes take backslash escapes for this cursor's lexer.
    pub fn escapes(&self) -> Escapes {
        self.lex.escapes
    }

    /// Moves to `pos`, which must be where a token ends and only plain bytes (no comment)
    /// were passed since the last token read: the list skipper's way back to lexing.
    pub fn skip_to(&mut self, pos: usize) {
        self.lex.pos = pos.min(self.lex.src.len());
        self.peeked = None;
    }

    pub fn peek(&mut self) -> Option<Token> {
        if self.peeked.is_none() {
            self.before_peeked = self.lex.state();
            self.peeked = self.lex.next_token();
        }
        self.peeked.filter(|t| !t.is_punct(b';'))
    }

    pub fn next_tok(&mut self) -> Option<Token> {
        let t = self.peek()?;
        self.peeked = None;
        Some(t)
    }

    /// Offset where the next unread token starts (or the end of trivia).
    pub fn offset(&mut self) -> usize {
        match self.peek() {
            Some(t) => t.start,
            None => self.peeked.map_or(self.lex.pos(), |t| t.start),
        }
    }

    /// The text from the next unread token on.
    pub fn rest(&mut self) -> &'a [u8] {
        let at = self.offset();
        self.src().get(at..).unwrap_or_default()
    }

    /// Where a new cursor would start reading the next unread token.
    pub fn resume_point(&mut self) -> Resume {
        self.peek();
        if self.peeked.is_some() {
            self.before_peeked
        } else {
            self.lex.state()
        }
    }

    pub fn text(&self, t: Token) -> &'a [u8] {
        &self.lex.src()[t.start..t.end]
    }

    pub fn is_word(&self, t: Token, kw: &str) -> bool {
        t.kind == Kind::Word && self.text(t).eq_ignore_ascii_case(kw.as_bytes())
    }

    /// Consumes the next token if it is the keyword `kw`.
    pub fn eat(&mut self, kw: &str) -> bool {
        match self.peek() {
            Some(t) if self.is_word(t, kw) => {
                self.peeked = None;
                true
            }
            _ => false,
        }
    }

    pub fn peek_is(&mut self, kw: &str) -> bool {
        matches!(self.peek(), Some(t) if self.is_word(t, kw))
    }

    /// Consumes the keywords in order if all are there; otherwise consumes nothing
    /// beyond what matched (callers use this only where a partial match is harmless).
    pub fn eat_seq(&mut self, kws: &[&str]) -> bool {
        kws.iter().all(|kw| self.eat(kw))
    }

    pub fn eat_punct(&mut self, b: u8) -> bool {
        match self.peek() {
            Some(t) if t.is_punct(b) => {
                self.peeked = None;
                true
            }
            _ => false,
        }
    }

    /// Skips to the end of the statement; returns where the next statement starts when one
    /// follows, `None` when only trivia (or lone `;`s) remain.
    pub fn next_statement(mut self) -> Option<Resume> {
        while self.next_tok().is_some() {}
        self.peeked = None;
        loop {
            let at = self.lex.state();
            match self.lex.next_token() {
                Some(t) if t.is_punct(b';') => continue,
                Some(_) => return Some(at),
                None => return None,
            }
        }
    }
}

/// Identifier text without backticks (doubled backticks undone).
pub(crate) fn ident_text(src: &[u8], t: Token) -> String {
    match t.kind {
        Kind::QuotedIdent => quoted_text(src, t),
        _ => String::from_utf8_lossy(&src[t.start..t.end]).into_owned(),
    }
}

/// The text a quoted token spells (`` `a``b` `` or, a name under ANSI_QUOTES, `"a""b"`):
/// its quotes removed, a doubled quote undone.
pub(crate) fn quoted_text(src: &[u8], t: Token) -> String {
    let raw = &src[t.start..t.end];
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or(b"");
    let (twice, once) = match raw.first() {
        Some(b'"') => ("\"\"", "\""),
        _ => ("``", "`"),
    };
    String::from_utf8_lossy(inner).replace(twice, once)
}

#[cfg(test)]
mod tests {
    use super::{as_default_escapes, quoted_end, Escapes, Kind, Lexer};

    /// The byte-by-byte definition `quoted_end` must keep: doubled quotes stay inside, a
    /// backslash (where it escapes) takes the byte after it.
    fn by_bytes(src: &[u8], start: usize, quote: u8, backslash: bool) -> Option<usize> {
        let mut i = start + 1;
        while i < src.len() {
            if backslash && src[i] == b'\\' {
                i += 2;
            } else if src[i] == quote {
                if src.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            } else {
                i += 1;
            }
        }
        None
    }

    #[test]
    fn backslashes_that_are_only_characters_under_the_mode_are_made_plain() {
        let nbe = Escapes {
            single: false,
            double: false,
        };
        let ansi = Escapes {
            single: true,
            double: false,
        };
        let sql: &[u8] = br#"SELECT 'x\'; SET a = 1; SELECT "y\", @'v\', `t\`"#;
        let seen = |esc| as_default_escapes(sql, esc).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(seen(Escapes::DEFAULT), None);
        assert_eq!(
            seen(nbe).as_deref(),
            Some(r#"SELECT 'x_'; SET a = 1; SELECT "y_", @'v_', `t\`"#)
        );
        // ANSI_QUOTES: single quotes keep their escapes, so 'x\'; ...' runs on.
        assert_eq!(
            as_default_escapes(br#"SELECT "y\"; SET a = '\''"#, ansi).as_deref(),
            Some(&br#"SELECT "y_"; SET a = '\''"#[..])
        );
        assert_eq!(as_default_escapes(b"SELECT 'no backslash'", nbe), None);
        // The copy splits where the server does, under the default's lexing.
        let copy = as_default_escapes(sql, nbe).unwrap();
        let words: Vec<_> = {
            let mut l = Lexer::with_escapes(&copy, Escapes::DEFAULT);
            std::iter::from_fn(|| l.next_token())
                .filter(|t| t.kind == Kind::Word)
                .map(|t| String::from_utf8_lossy(&copy[t.start..t.end]).into_owned())
                .collect()
        };
        assert_eq!(words, ["SELECT", "SET", "a", "SELECT"]);
    }

    #[test]
    fn two_byte_characters_ending_in_a_backslash_or_backtick_byte_are_paired() {
        use super::{as_single_byte, MultiByte};
        let sql: &[u8] = b"SELECT '\xbf\x5c'; SET a = 1; SELECT `\x81\x60`, '\x81\x81\x5c''";
        let gbk = as_single_byte(sql, MultiByte::Gbk).unwrap();
        // The pair after a pair keeps its own backslash: 0x81 0x81 is one character.
        assert_eq!(
            gbk,
            b"SELECT '\xbf_'; SET a = 1; SELECT `\x81_`, '\x81\x81\x5c''".to_vec()
        );
        // Big5 has no lead byte 0x81; Shift-JIS none at 0xbf (half-width katakana).
        assert_eq!(
            as_single_byte(b"'\x81\x5c' '\xbf\x5c'", MultiByte::Big5).as_deref(),
            Some(&b"'\x81\x5c' '\xbf_'"[..])
        );
        assert_eq!(
            as_single_byte(b"'\xbf\x5c' '\x81\x5c'", MultiByte::Sjis).as_deref(),
            Some(&b"'\xbf\x5c' '\x81_'"[..])
        );
        // A lead byte before a byte that cannot follow it is a character of its own.
        assert_eq!(as_single_byte(b"'\x81'\x5c", MultiByte::Gbk), None);
        assert_eq!(as_single_byte(b"SELECT 'plain \\'", MultiByte::Gbk), None);
        assert_eq!(MultiByte::of_collation_id(28), Some(MultiByte::Gbk));
        assert_eq!(MultiByte::of_collation_id(95), Some(MultiByte::Sjis));
        assert_eq!(MultiByte::of_collation_id(45), None);
        assert_eq!(MultiByte::of_charset("BIG5"), Some(MultiByte::Big5));
        assert_eq!(MultiByte::of_charset("utf8mb4"), None);
        assert!(super::may_pair_bytes(b"SELECT '\xbf\x5c'"));
        assert!(super::may_pair_bytes(b"SELECT `\x81\x60`"));
        assert!(!super::may_pair_bytes(b"SELECT 'a\\'b', `t`"));
        assert!(!super::may_pair_bytes(b"\\x"));
    }

    #[test]
    fn quoted_end_ends_where_a_byte_by_byte_scan_does() {
        // Every string of up to 7 bytes over quotes, backslashes and one plain byte, from
        // every start: escapes and doubled quotes at the end, unterminated runs, a trailing
        // backslash.
        const ALPHABET: &[u8] = b"'\"`\\x";
        let mut checked = 0;
        for len in 1..=7u32 {
            for n in 0..ALPHABET.len().pow(len) {
                let mut k = n;
                let src: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = ALPHABET[k % ALPHABET.len()];
                        k /= ALPHABET.len();
                        b
                    })
                    .collect();
                for start in 0..src.len() {
                    for quote in [b'\'', b'"', b'`'] {
                        for backslash in [true, false] {
                            assert_eq!(
                                quoted_end(&src, start, quote, backslash),
                                by_bytes(&src, start, quote, backslash),
                                "{:?} from {start}, quote {}, backslash {backslash}",
                                String::from_utf8_lossy(&src),
                                quote as char,
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 1_000_000);
    }
}
