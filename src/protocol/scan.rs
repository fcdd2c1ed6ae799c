//! Finds where a backend's response to one command ends, without decoding rows: the relay
//! forwards bytes as soon as they are scanned and only looks inside terminators.

use super::packets::{
    self, OkInfo, EOF_HEADER, ERR_HEADER, LOCAL_INFILE_HEADER, OK_HEADER, STATUS_CURSOR_EXISTS,
    STATUS_MORE_RESULTS, STATUS_SESSION_STATE_CHANGED,
};
use super::MAX_PAYLOAD;

/// The shape of response a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// COM_QUERY / COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE request, or result sets.
    ResultSets,
    /// COM_STMT_PREPARE: prepare-OK with parameter and column definitions, or ERR.
    Prepare,
    /// COM_FIELD_LIST: column definitions up to an EOF, or ERR.
    FieldList,
    /// One packet of any kind (OK, ERR, EOF, COM_STATISTICS' string).
    Single,
    /// COM_STMT_FETCH: rows from an open cursor up to an EOF, or ERR.
    Fetch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    First,
    ColumnDefs(u64),
    ColumnsEof,
    Rows,
    PrepareParams { params: u16, columns: u16 },
    PrepareParamsEof { columns: u16 },
    PrepareColumns(u16),
    PrepareColumnsEof,
    Defs,
    Done,
}

/// What the scanner reached in the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// More bytes are needed.
    NeedMore,
    /// The response is complete.
    Done,
    /// The server asks the client for a local file; the client's packets must be relayed.
    LocalInfile,
}

/// How the response ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The final OK/EOF, if the response ended with one.
    pub ok: Option<OkInfo>,
    /// Error code and message, if it ended with ERR. Boxed: the outcome is built in every
    /// statement's scanner and moved out with its answer, and an ERR is rare.
    pub err: Option<Box<packets::ErrSpec>>,
    /// Status flags of the last terminator seen (OK, EOF).
    pub status: Option<u16>,
    /// Prepare-OK fields: backend statement id, columns, params.
    pub prepared: Option<PrepareOk>,
    /// Whether any result set (rows) was part of the answer.
    pub result_sets: u32,
    /// The last GTID the answer's OK packets reported through session tracking.
    pub gtid: Option<String>,
    /// The last LAST_INSERT_ID() an OK of the answer reported (0: none did). Not only the
    /// final OK's: in `INSERT ...; SELECT 1` the INSERT's is the one that counts.
    pub last_insert_id: u64,
    /// MARIADB_CLIENT_CACHE_METADATA: a result set came without its column definitions.
    pub metadata_skipped: bool,
    /// Digest of the column definitions of the answer's last result set that carried
    /// them (prepare-OK: its columns), when the scanner was asked to take it.
    pub metadata: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub backend_id: u32,
    pub columns: u16,
    pub params: u16,
}

/// Incremental scanner of one response.
#[derive(Debug)]
pub struct Scanner {
    expect: Expect,
    deprecate_eof: bool,
    phase: Phase,
    /// Payload bytes of the current physical packet still to pass through unread.
    opaque: usize,
    /// The previous physical packet was full-size: the next one continues it.
    continued: bool,
    /// Statement id to write into a prepare-OK in place of the backend's.
    pub rewrite_stmt_id: Option<u32>,
    /// The session's flags to write over the connection's in the answer's terminator (see
    /// [`packets::set_session_flags`]): the answer to a fetch or reset, from a connection
    /// the session's later statements may not have run on.
    pub session_flags: Option<u16>,
    /// MARIADB_CLIENT_CACHE_METADATA: a result set's column count is followed by a byte
    /// saying whether column definitions follow, and the definitions are digested
    /// (`Outcome::metadata`).
    pub metadata_flag: bool,
    /// With `metadata_flag`, whether definitions are digested: only a prepared statement's
    /// are compared later, and a text query's are always sent (the server leaves out only
    /// binary result sets' definitions).
    pub digest_definitions: bool,
    /// The packet passing through is a column definition.
    digesting: bool,
    /// Running digest of the current result set's definitions.
    digest: u64,
    pub outcome: Outcome,
}

/// FNV-1a: a streaming digest that any chunking of the bytes gives the same value.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A terminator or header must be read whole; a bigger one than this is malformed.
const MAX_CONTROL_PACKET: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed response from server: {0}")]
pub struct ScanError(pub &'static str);

impl Scanner {
    pub fn new(expect: Expect, deprecate_eof: bool) -> Self {
        // COM_FIELD_LIST has no header packet: definitions start at once; a fetch answers
        // rows of a result set whose header came with the execute.
        let phase = match expect {
            Expect::FieldList => Phase::Defs,
            Expect::Fetch => Phase::Rows,
            _ => Phase::First,
        };
        Scanner {
            expect,
            deprecate_eof,
            phase,
            opaque: 0,
            continued: false,
            rewrite_stmt_id: None,
            session_flags: None,
            metadata_flag: false,
            digest_definitions: true,
            digesting: false,
            digest: FNV_OFFSET,
            outcome: Outcome::default(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// After a LOCAL INFILE exchange the server answers with OK or ERR.
    pub fn resume_after_infile(&mut self) {
        self.phase = Phase::First;
    }

    /// Scans `buf` from its start. Returns how many bytes may be forwarded now and why it
    /// stopped. Bytes past `consumed` must be kept and scanned again with more data.
    pub fn scan(&mut self, buf: &mut [u8]) -> Result<(usize, Event), ScanError> {
        let mut pos = 0;
        if self.phase == Phase::First && self.expect == Expect::ResultSets && self.opaque == 0 {
            if let Some(end) = self.scan_whole(buf) {
                if self.phase == Phase::Done {
                    return Ok((end, Event::Done));
                }
                pos = end;
            }
        }
        loop {
            if self.opaque > 0 {
                let take = self.opaque.min(buf.len() - pos);
                if self.digesting {
                    self.digest = fnv(self.digest, &buf[pos..pos + take]);
                }
                pos += take;
                self.opaque -= take;
                if self.opaque > 0 {
                    return Ok((pos, Event::NeedMore));
                }
            }
            if self.digesting && !self.continued {
                self.digesting = false;
                self.outcome.metadata = Some(self.digest);
            }
            if self.phase == Phase::Done {
                return Ok((pos, Event::Done));
            }
            let rest = &buf[pos..];
            if rest.len() < 4 {
                return Ok((pos, Event::NeedMore));
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], 0]) as usize;
            if len > 0 && rest.len() < 5 {
                return Ok((pos, Event::NeedMore));
            }
            let was_continued = self.continued;
            if was_continued || self.is_opaque_packet(rest, len) {
                self.continued = len == MAX_PAYLOAD;
                if !was_continued {
                    self.start_definition(&rest[..3]);
                }
                self.after_opaque(was_continued);
                pos += 4;
                self.opaque = len;
                continue;
            }
            if len > MAX_CONTROL_PACKET {
                return Err(ScanError("oversized control packet"));
            }
            if rest.len() < 4 + len {
                return Ok((pos, Event::NeedMore));
            }
            let event = self.control_packet(&mut buf[pos + 4..pos + 4 + len])?;
            pos += 4 + len;
            if event == Event::LocalInfile {
                return Ok((pos, event));
            }
        }
    }

    /// The common answer, an OK or one result set of packets below the size limits, when it
    /// is all in `buf`: walked with none of the general loop's per-packet bookkeeping (most
    /// of a point select's scanning cost), to the same state. None: nothing was changed,
    /// the general loop scans from the start (an ERR, a cursor, a packet split over reads).
    fn scan_whole(&mut self, buf: &mut [u8]) -> Option<usize> {
        let (len, first) = whole_packet(buf, 0)?;
        if first == Some(OK_HEADER) {
            let p = &buf[4..4 + len];
            let info = packets::parse_ok(p)?;
            self.finish_or_more(info, p);
            return Some(4 + len);
        }
        if matches!(first, None | Some(ERR_HEADER | LOCAL_INFILE_HEADER)) {
            return None;
        }
        let mut header = mysql_common::io::ParseBuf(&buf[4..4 + len]);
        let columns = header.checked_eat_lenenc_int()?;
        if columns == 0 {
            return None;
        }
        // MARIADB_CLIENT_CACHE_METADATA: whether definitions follow, and their digest.
        let defs_follow = !self.metadata_flag || header.checked_eat_u8()? != 0;
        let digesting = self.metadata_flag && self.digest_definitions;
        let mut digest = FNV_OFFSET;
        let mut pos = 4 + len;
        for _ in 0..if defs_follow { columns } else { 0 } {
            let (len, _) = whole_packet(buf, pos)?;
            if digesting {
                digest = fnv(
                    fnv(digest, &buf[pos..pos + 3]),
                    &buf[pos + 4..pos + 4 + len],
                );
            }
            pos += 4 + len;
        }
        let mut columns_eof = None;
        if !self.deprecate_eof {
            let (len, first) = whole_packet(buf, pos)?;
            let eof = packets::parse_eof(&buf[pos + 4..pos + 4 + len]);
            let eof =
                eof.filter(|e| first != Some(ERR_HEADER) && e.status & STATUS_CURSOR_EXISTS == 0)?;
            columns_eof = Some(eof.status);
            pos += 4 + len;
        }
        loop {
            let (len, first) = whole_packet(buf, pos)?;
            match first {
                Some(ERR_HEADER) => return None,
                Some(EOF_HEADER) => break,
                _ => pos += 4 + len,
            }
        }
        let (len, _) = whole_packet(buf, pos)?;
        let p = &buf[pos + 4..pos + 4 + len];
        let info = self.terminator(p).ok()?;
        let skipped_before = self.outcome.metadata;
        self.new_definitions();
        if !defs_follow {
            self.outcome.metadata_skipped = true;
            self.outcome.metadata = skipped_before;
        } else if digesting {
            self.digest = digest;
            self.outcome.metadata = Some(digest);
        }
        self.outcome.result_sets += 1;
        if columns_eof.is_some() {
            self.outcome.status = columns_eof;
        }
        self.finish_or_more(info, p);
        Some(pos + 4 + len)
    }

    /// Rows and column definitions are passed through without being read.
    fn is_opaque_packet(&self, rest: &[u8], len: usize) -> bool {
        let first = if len == 0 { None } else { rest.get(4).copied() };
        match self.phase {
            Phase::ColumnDefs(_) | Phase::PrepareParams { .. } | Phase::PrepareColumns(_) => true,
            Phase::Rows | Phase::Defs => match first {
                Some(ERR_HEADER) => false,
                Some(EOF_HEADER) => len >= MAX_PAYLOAD,
                _ => true,
            },
            _ => false,
        }
    }

    /// With the metadata cache on, a column definition's length and bytes go into the
    /// digest of its result set's definitions.
    fn start_definition(&mut self, len: &[u8]) {
        let is_def = matches!(self.phase, Phase::ColumnDefs(_) | Phase::PrepareColumns(_));
        self.digesting = self.metadata_flag && self.digest_definitions && is_def;
        if self.digesting {
            self.digest = fnv(self.digest, len);
        }
    }

    /// A result set's (or prepare-OK's) definitions start: a fresh digest.
    fn new_definitions(&mut self) {
        self.digest = FNV_OFFSET;
        if self.metadata_flag && self.digest_definitions {
            // What a prepare or result set with no definitions leaves the client with.
            self.outcome.metadata = Some(FNV_OFFSET);
        }
    }

    /// Counts down definitions once a new (non-continuation) opaque packet starts.
    fn after_opaque(&mut self, was_continued: bool) {
        if was_continued {
            return;
        }
        self.phase = match self.phase {
            Phase::ColumnDefs(1) if self.deprecate_eof => {
                self.outcome.result_sets += 1;
                Phase::Rows
            }
            Phase::ColumnDefs(1) => Phase::ColumnsEof,
            Phase::ColumnDefs(n) => Phase::ColumnDefs(n - 1),
            Phase::PrepareParams { params: 1, columns } => {
                if self.deprecate_eof {
                    self.prepare_columns(columns)
                } else {
                    Phase::PrepareParamsEof { columns }
                }
            }
            Phase::PrepareParams { params, columns } => Phase::PrepareParams {
                params: params - 1,
                columns,
            },
            Phase::PrepareColumns(1) if self.deprecate_eof => Phase::Done,
            Phase::PrepareColumns(1) => Phase::PrepareColumnsEof,
            Phase::PrepareColumns(n) => Phase::PrepareColumns(n - 1),
            other => other,
        };
    }

    fn prepare_columns(&self, columns: u16) -> Phase {
        if columns == 0 {
            Phase::Done
        } else {
            Phase::PrepareColumns(columns)
        }
    }

    fn control_packet(&mut self, p: &mut [u8]) -> Result<Event, ScanError> {
        let first = p.first().copied();
        if packets::is_progress_report(p) && self.phase != Phase::Done {
            // MARIADB_CLIENT_PROGRESS: the client reads it and goes on waiting.
            return Ok(Event::NeedMore);
        }
        if first == Some(ERR_HEADER) && self.phase != Phase::Done {
            self.outcome.err = packets::parse_err_spec(p).map(Box::new);
            self.phase = Phase::Done;
            return Ok(Event::Done);
        }
        match self.phase {
            Phase::First => self.first_packet(p),
            Phase::ColumnsEof => {
                let eof = packets::parse_eof(p).ok_or(ScanError("short EOF"))?;
                self.outcome.status = Some(eof.status);
                self.outcome.result_sets += 1;
                // A cursor was opened: rows come later, through COM_STMT_FETCH.
                self.phase = if eof.status & STATUS_CURSOR_EXISTS != 0 {
                    Phase::Done
                } else {
                    Phase::Rows
                };
                Ok(self.event())
            }
            Phase::Rows | Phase::Defs => {
                self.write_session_flags(p);
                let info = self.terminator(p)?;
                self.finish_or_more(info, p);
                Ok(self.event())
            }
            Phase::PrepareParamsEof { columns } => {
                self.phase = self.prepare_columns(columns);
                Ok(self.event())
            }
            Phase::PrepareColumnsEof => {
                self.phase = Phase::Done;
                Ok(Event::Done)
            }
            _ => Err(ScanError("unexpected packet")),
        }
    }

    fn first_packet(&mut self, p: &mut [u8]) -> Result<Event, ScanError> {
        if self.expect == Expect::Single {
            if p.first() == Some(&OK_HEADER) || p.first() == Some(&EOF_HEADER) {
                self.write_session_flags(p);
                let info = self.terminator(p).ok();
                self.outcome.status = info.map(|i| i.status);
                self.outcome.last_insert_id = info.map_or(0, |i| i.last_insert_id);
                self.outcome.ok = info;
            }
            self.phase = Phase::Done;
            return Ok(Event::Done);
        }
        if self.expect == Expect::Prepare {
            return self.prepare_ok(p);
        }
        match p.first() {
            Some(&OK_HEADER) => {
                let info = packets::parse_ok(p).ok_or(ScanError("short OK"))?;
                self.finish_or_more(info, p);
                Ok(self.event())
            }
            Some(&LOCAL_INFILE_HEADER) => Ok(Event::LocalInfile),
            Some(_) => {
                let mut b = mysql_common::io::ParseBuf(p);
                let n = b
                    .checked_eat_lenenc_int()
                    .ok_or(ScanError("column count"))?;
                if n == 0 {
                    return Err(ScanError("zero column count"));
                }
                self.phase = Phase::ColumnDefs(n);
                let skipped_before = self.outcome.metadata;
                self.new_definitions();
                if self.metadata_flag && b.checked_eat_u8().ok_or(ScanError("metadata flag"))? == 0
                {
                    // The client has the definitions cached: none follow (the EOF that
                    // ends them still does, without DEPRECATE_EOF).
                    self.outcome.metadata_skipped = true;
                    self.outcome.metadata = skipped_before;
                    self.phase = if self.deprecate_eof {
                        self.outcome.result_sets += 1;
                        Phase::Rows
                    } else {
                        Phase::ColumnsEof
                    };
                }
                Ok(Event::NeedMore)
            }
            None => Err(ScanError("empty packet")),
        }
    }

    fn prepare_ok(&mut self, p: &mut [u8]) -> Result<Event, ScanError> {
        if p.len() < 9 || p[0] != OK_HEADER {
            return Err(ScanError("prepare response"));
        }
        let backend_id = u32::from_le_bytes([p[1], p[2], p[3], p[4]]);
        let columns = u16::from_le_bytes([p[5], p[6]]);
        let params = u16::from_le_bytes([p[7], p[8]]);
        if let Some(id) = self.rewrite_stmt_id {
            p[1..5].copy_from_slice(&id.to_le_bytes());
        }
        self.outcome.prepared = Some(PrepareOk {
            backend_id,
            columns,
            params,
        });
        self.new_definitions();
        self.phase = if params > 0 {
            Phase::PrepareParams { params, columns }
        } else {
            self.prepare_columns(columns)
        };
        Ok(self.event())
    }

    fn write_session_flags(&self, p: &mut [u8]) {
        if let Some(flags) = self.session_flags {
            packets::set_session_flags(p, self.is_ok_style(p), flags);
        }
    }

    fn is_ok_style(&self, p: &[u8]) -> bool {
        self.deprecate_eof || p.first() == Some(&OK_HEADER)
    }

    fn terminator(&self, p: &[u8]) -> Result<OkInfo, ScanError> {
        let parsed = if self.is_ok_style(p) {
            packets::parse_ok(p)
        } else {
            packets::parse_eof(p)
        };
        parsed.ok_or(ScanError("short terminator"))
    }

    fn finish_or_more(&mut self, info: OkInfo, p: &[u8]) {
        // Only a changed session state can carry a GTID; the flag keeps reads free of this.
        let is_ok = p.first() == Some(&OK_HEADER) || self.deprecate_eof;
        if info.status & STATUS_SESSION_STATE_CHANGED != 0 && is_ok {
            if let Some(gtid) = packets::tracked_gtid(p) {
                self.outcome.gtid = Some(gtid);
            }
        }
        self.outcome.status = Some(info.status);
        if info.last_insert_id != 0 {
            self.outcome.last_insert_id = info.last_insert_id;
        }
        self.outcome.ok = Some(info);
        self.phase = if info.status & STATUS_MORE_RESULTS != 0 && self.expect == Expect::ResultSets
        {
            Phase::First
        } else {
            Phase::Done
        };
    }

    fn event(&self) -> Event {
        if self.phase == Phase::Done {
            Event::Done
        } else {
            Event::NeedMore
        }
    }
}

/// The payload length and first byte of the packet at `pos` when it is all in `buf` and
/// below [`MAX_CONTROL_PACKET`] (so neither continued nor continuing).
#[inline]
fn whole_packet(buf: &[u8], pos: usize) -> Option<(usize, Option<u8>)> {
    let h = buf.get(pos..pos + 4)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
    if len > MAX_CONTROL_PACKET || buf.len() < pos + 4 + len {
        return None;
    }
    Some((len, buf.get(pos + 4).copied().filter(|_| len > 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
        let l = (payload.len() as u32).to_le_bytes();
        let mut v = vec![l[0], l[1], l[2], seq];
        v.extend_from_slice(payload);
        v
    }

    fn eof(status: u16) -> Vec<u8> {
        let s = status.to_le_bytes();
        vec![0xFE, 0, 0, s[0], s[1]]
    }

    fn ok_fe(status: u16) -> Vec<u8> {
        let s = status.to_le_bytes();
        vec![0xFE, 0, 0, s[0], s[1], 0, 0]
    }

    /// A result set of two columns and `rows` rows, old EOF style or DEPRECATE_EOF.
    fn result_set(deprecate: bool, rows: usize, status: u16) -> Vec<u8> {
        let mut v = pkt(1, &[2]);
        v.extend(pkt(2, b"coldef-a"));
        v.extend(pkt(3, b"coldef-b"));
        if !deprecate {
            v.extend(pkt(4, &eof(0x0002)));
        }
        for _ in 0..rows {
            v.extend(pkt(5, &[1, b'x', 0xFB]));
        }
        v.extend(pkt(
            9,
            &if deprecate {
                ok_fe(status)
            } else {
                eof(status)
            },
        ));
        v
    }

    fn scan_all(s: &mut Scanner, bytes: &mut [u8], step: usize) -> usize {
        // Feed the bytes in pieces, as a socket would deliver them.
        let mut start = 0;
        let mut end = step.min(bytes.len());
        loop {
            let (n, ev) = s.scan(&mut bytes[start..end]).unwrap();
            start += n;
            if ev == Event::Done {
                return start;
            }
            assert_ne!(ev, Event::LocalInfile);
            assert!(end < bytes.len(), "ran out of bytes before the end");
            end = (end + step).min(bytes.len());
        }
    }

    #[test]
    fn result_sets_both_eof_styles_any_chunking() {
        for deprecate in [false, true] {
            for step in [1, 3, 7, 1000] {
                let mut bytes = result_set(deprecate, 5, 0x0002);
                let mut s = Scanner::new(Expect::ResultSets, deprecate);
                assert_eq!(scan_all(&mut s, &mut bytes, step), bytes.len());
                assert_eq!(s.outcome.status, Some(0x0002));
                assert_eq!(s.outcome.result_sets, 1);
            }
        }
    }

    #[test]
    fn multi_results_continue_until_last() {
        let mut bytes = result_set(true, 1, 0x0002 | STATUS_MORE_RESULTS);
        bytes.extend(pkt(1, &[0, 1, 0, 0x02, 0, 0, 0]));
        let mut s = Scanner::new(Expect::ResultSets, true);
        assert_eq!(scan_all(&mut s, &mut bytes, 4), bytes.len());
        assert_eq!(s.outcome.ok.unwrap().affected_rows, 1);
    }

    /// The whole-answer path (`scan_whole`) ends where the packet-by-packet one does, with
    /// the same outcome, for every shape it takes or hands on.
    #[test]
    fn whole_answers_scan_as_fed_byte_by_byte() {
        let err = pkt(
            4,
            &[0xFF, 0x28, 0x04, b'#', b'4', b'2', b'0', b'0', b'0', b'x'],
        );
        let mut answers = vec![(true, pkt(1, &[0, 1, 0, 0x02, 0, 0, 0]))];
        for deprecate in [false, true] {
            for rows in [0, 1, 5] {
                answers.push((deprecate, result_set(deprecate, rows, 0x0022)));
            }
            let mut more = result_set(deprecate, 2, 0x0002 | STATUS_MORE_RESULTS);
            more.extend(result_set(deprecate, 1, 0x0002));
            answers.push((deprecate, more));
            let mut failed = pkt(1, &[1]);
            failed.extend(pkt(2, b"coldef"));
            if !deprecate {
                failed.extend(pkt(3, &eof(0x0002)));
            }
            failed.extend(err.clone());
            answers.push((deprecate, failed));
        }
        let mut cursor = pkt(1, &[1]);
        cursor.extend(pkt(2, b"coldef"));
        cursor.extend(pkt(3, &eof(0x0002 | STATUS_CURSOR_EXISTS)));
        answers.push((false, cursor));
        let scanners = |deprecate, flag, digest| {
            let mut s = Scanner::new(Expect::ResultSets, deprecate);
            (s.metadata_flag, s.digest_definitions) = (flag, digest);
            s
        };
        let mut cases: Vec<_> = answers.into_iter().map(|(d, a)| (d, a, false)).collect();
        // MARIADB_CLIENT_CACHE_METADATA: the column count's flag byte, definitions following
        // (1) or not (0).
        for deprecate in [false, true] {
            let mut with = result_set(deprecate, 2, 0x0002);
            with[0] = 2;
            with.insert(5, 1);
            cases.push((deprecate, with, true));
            let mut without = pkt(1, &[2, 0]);
            if !deprecate {
                without.extend(pkt(2, &eof(0x0002)));
            }
            without.extend(pkt(2, &[0, 0, 1]));
            without.extend(pkt(3, &if deprecate { ok_fe(2) } else { eof(2) }));
            cases.push((deprecate, without, true));
        }
        for (deprecate, answer, flag) in cases {
            for digest in [false, true] {
                let mut whole = answer.clone();
                // The next answer's first bytes already read: not part of this one.
                whole.extend([7, 0, 0]);
                let mut a = scanners(deprecate, flag, digest);
                let (n, ev) = a.scan(&mut whole).unwrap();
                assert_eq!((n, ev), (answer.len(), Event::Done), "{answer:?}");
                let mut bytes = answer.clone();
                let mut b = scanners(deprecate, flag, digest);
                assert_eq!(scan_all(&mut b, &mut bytes, 1), answer.len());
                assert_eq!(a.outcome, b.outcome, "{answer:?}");
                assert_eq!(a.digest, b.digest, "{answer:?}");
            }
        }
    }

    #[test]
    fn err_ends_response() {
        let mut bytes = pkt(
            1,
            &[0xFF, 0x28, 0x04, b'#', b'4', b'2', b'0', b'0', b'0', b'x'],
        );
        let mut s = Scanner::new(Expect::ResultSets, false);
        assert_eq!(scan_all(&mut s, &mut bytes, 2), bytes.len());
        assert_eq!(s.outcome.err.as_ref().unwrap().code, 1064);
    }

    #[test]
    fn big_rows_spanning_packets_are_opaque() {
        let mut bytes = pkt(1, &[1]);
        bytes.extend(pkt(2, b"coldef"));
        // A row of exactly MAX_PAYLOAD bytes whose continuation starts with 0xFE.
        let mut row = vec![0xFE; MAX_PAYLOAD];
        row[0] = 0xFC;
        bytes.extend(pkt(3, &row));
        bytes.extend(pkt(4, &[0xFE, 0xFE]));
        bytes.extend(pkt(5, &ok_fe(0x0002)));
        let mut s = Scanner::new(Expect::ResultSets, true);
        assert_eq!(scan_all(&mut s, &mut bytes, 65536), bytes.len());
    }

    #[test]
    fn prepare_rewrites_statement_id() {
        let mut bytes = pkt(1, &[0, 7, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0]);
        bytes.extend(pkt(2, b"param1"));
        bytes.extend(pkt(3, b"param2"));
        bytes.extend(pkt(4, &eof(2)));
        bytes.extend(pkt(5, b"col1"));
        bytes.extend(pkt(6, &eof(2)));
        let mut s = Scanner::new(Expect::Prepare, false);
        s.rewrite_stmt_id = Some(42);
        assert_eq!(scan_all(&mut s, &mut bytes, 5), bytes.len());
        let p = s.outcome.prepared.unwrap();
        assert_eq!((p.backend_id, p.columns, p.params), (7, 1, 2));
        assert_eq!(&bytes[5..9], &42u32.to_le_bytes());
    }

    #[test]
    fn field_list_ends_at_eof() {
        for deprecate in [false, true] {
            let mut bytes = pkt(1, b"\x03def\x07wf_test");
            bytes.extend(pkt(2, b"\x03def\x07wf_test2"));
            bytes.extend(pkt(3, &if deprecate { ok_fe(2) } else { eof(2) }));
            let mut s = Scanner::new(Expect::FieldList, deprecate);
            assert_eq!(scan_all(&mut s, &mut bytes, 3), bytes.len());
        }
    }

    fn progress(stage: u8) -> Vec<u8> {
        let mut p = vec![0xFF, 0xFF, 0xFF, 1, stage, 2, 0x10, 0x27, 0];
        p.extend_from_slice(b"\x05stage");
        p
    }

    #[test]
    fn progress_reports_pass_before_the_answer() {
        for deprecate in [false, true] {
            let mut bytes = pkt(1, &progress(1));
            bytes.extend(pkt(2, &progress(2)));
            let mut rs = result_set(deprecate, 2, 0x0002);
            rs[3] = 3;
            bytes.extend(rs);
            let mut s = Scanner::new(Expect::ResultSets, deprecate);
            assert_eq!(scan_all(&mut s, &mut bytes, 5), bytes.len());
            assert_eq!(s.outcome.err, None);
            assert_eq!(s.outcome.result_sets, 1);
        }
        let mut bytes = pkt(1, &progress(1));
        bytes.extend(pkt(2, &[0, 0, 0, 0x02, 0, 0, 0]));
        let mut s = Scanner::new(Expect::ResultSets, true);
        assert_eq!(scan_all(&mut s, &mut bytes, 3), bytes.len());
        assert!(s.outcome.ok.is_some());
    }

    #[test]
    fn fetch_ends_at_the_cursor_status() {
        for deprecate in [false, true] {
            let mut bytes = pkt(1, &[0, 0, 1, 2]);
            bytes.extend(pkt(2, &[0, 0, 3, 4]));
            let end = STATUS_CURSOR_EXISTS | packets::STATUS_LAST_ROW_SENT;
            bytes.extend(pkt(3, &if deprecate { ok_fe(end) } else { eof(end) }));
            let mut s = Scanner::new(Expect::Fetch, deprecate);
            assert_eq!(scan_all(&mut s, &mut bytes, 2), bytes.len());
            assert_eq!(s.outcome.status, Some(end));
        }
        let mut bytes = pkt(
            1,
            &[0xFF, 0xA5, 0x05, b'#', b'H', b'Y', b'0', b'0', b'0', b'x'],
        );
        let mut s = Scanner::new(Expect::Fetch, true);
        assert_eq!(scan_all(&mut s, &mut bytes, 4), bytes.len());
        assert_eq!(s.outcome.err.unwrap().code, 1445);
    }

    #[test]
    fn answers_from_outside_the_transaction_get_its_flags() {
        use packets::{STATUS_AUTOCOMMIT, STATUS_IN_TRANS, STATUS_LAST_ROW_SENT};
        let session = STATUS_IN_TRANS | STATUS_AUTOCOMMIT;
        for deprecate in [false, true] {
            let end = STATUS_AUTOCOMMIT | STATUS_CURSOR_EXISTS | STATUS_LAST_ROW_SENT;
            let terminator = if deprecate { ok_fe(end) } else { eof(end) };
            let mut bytes = pkt(1, &[0, 0, 1, 2]);
            bytes.extend(pkt(2, &terminator));
            let mut s = Scanner::new(Expect::Fetch, deprecate);
            s.session_flags = Some(session);
            assert_eq!(scan_all(&mut s, &mut bytes, 3), bytes.len());
            let want = session | STATUS_CURSOR_EXISTS | STATUS_LAST_ROW_SENT;
            assert_eq!(s.outcome.status, Some(want));
            let sent = &bytes[bytes.len() - terminator.len()..];
            let sent = if deprecate {
                packets::parse_ok(sent)
            } else {
                packets::parse_eof(sent)
            };
            assert_eq!(sent.unwrap().status, want);
            let mut ok = pkt(1, &packets::ok_payload(STATUS_AUTOCOMMIT, 0));
            let mut s = Scanner::new(Expect::Single, deprecate);
            s.session_flags = Some(STATUS_IN_TRANS);
            assert_eq!(scan_all(&mut s, &mut ok, 2), ok.len());
            assert_eq!(s.outcome.status, Some(STATUS_IN_TRANS));
            assert_eq!(packets::parse_ok(&ok[4..]).unwrap().status, STATUS_IN_TRANS);
        }
    }

    #[test]
    fn cursor_opened_with_deprecate_eof_ends_without_rows() {
        let mut bytes = pkt(1, &[1]);
        bytes.extend(pkt(2, b"coldef"));
        bytes.extend(pkt(3, &ok_fe(0x0002 | STATUS_CURSOR_EXISTS)));
        let mut s = Scanner::new(Expect::ResultSets, true);
        assert_eq!(scan_all(&mut s, &mut bytes, 3), bytes.len());
        assert_eq!(s.outcome.status, Some(0x0002 | STATUS_CURSOR_EXISTS));
    }

    #[test]
    fn cached_metadata_result_sets_may_omit_definitions() {
        for deprecate in [false, true] {
            // Metadata follows (flag 1): as usual, the flag byte aside.
            let mut with = result_set(deprecate, 2, 0x0002);
            with[0] = 2;
            with.insert(5, 1);
            let mut s = Scanner::new(Expect::ResultSets, deprecate);
            s.metadata_flag = true;
            assert_eq!(scan_all(&mut s, &mut with, 3), with.len());
            assert_eq!(s.outcome.result_sets, 1);
            // Skipped (flag 0): no definitions (their EOF still comes without
            // DEPRECATE_EOF), then rows.
            let mut bytes = pkt(1, &[2, 0]);
            if !deprecate {
                bytes.extend(pkt(2, &eof(0x0002)));
            }
            bytes.extend(pkt(2, &[0, 0, 1]));
            let end = 0x0002;
            bytes.extend(pkt(3, &if deprecate { ok_fe(end) } else { eof(end) }));
            let mut s = Scanner::new(Expect::ResultSets, deprecate);
            s.metadata_flag = true;
            assert_eq!(scan_all(&mut s, &mut bytes, 2), bytes.len());
            assert_eq!((s.outcome.result_sets, s.outcome.status), (1, Some(end)));
            assert!(s.outcome.metadata_skipped);
        }
    }

    #[test]
    fn definitions_are_digested_alike_in_prepare_and_execute() {
        let digest = |bytes: &mut Vec<u8>, expect, step| {
            let mut s = Scanner::new(expect, true);
            s.metadata_flag = true;
            scan_all(&mut s, bytes, step);
            s.outcome.metadata
        };
        let mut prepare = pkt(1, &[0, 7, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]);
        prepare.extend(pkt(2, b"coldef-a"));
        prepare.extend(pkt(3, b"coldef-b"));
        let mut execute = result_set(true, 1, 2);
        execute[0] = 2;
        execute.insert(5, 1);
        let p = digest(&mut prepare.clone(), Expect::Prepare, 1000);
        assert!(p.is_some());
        assert_eq!(p, digest(&mut prepare, Expect::Prepare, 3), "any chunking");
        assert_eq!(p, digest(&mut execute, Expect::ResultSets, 2));
        let mut other = execute.clone();
        // A byte of the second definition ("coldef-b" starts at 6 + 12 + 4).
        other[25] ^= 1;
        assert_ne!(p, digest(&mut other, Expect::ResultSets, 1000));
        // Skipped definitions leave no digest; a prepare without columns digests nothing.
        let mut skipped = pkt(1, &[2, 0]);
        skipped.extend(pkt(2, &ok_fe(2)));
        assert_eq!(digest(&mut skipped, Expect::ResultSets, 1000), None);
        let mut no_columns = pkt(1, &[0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            digest(&mut no_columns, Expect::Prepare, 1000),
            Some(FNV_OFFSET)
        );
    }

    #[test]
    fn local_infile_is_reported() {
        let mut bytes = pkt(1, b"\xFBfile.csv");
        let mut s = Scanner::new(Expect::ResultSets, true);
        let (n, ev) = s.scan(&mut bytes).unwrap();
        assert_eq!((n, ev), (bytes.len(), Event::LocalInfile));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 12345u64;
        for _ in 0..2000 {
            let mut bytes: Vec<u8> = (0..64)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            for expect in [
                Expect::ResultSets,
                Expect::Prepare,
                Expect::FieldList,
                Expect::Single,
                Expect::Fetch,
            ] {
                let mut s = Scanner::new(expect, seed & 1 == 0);
                s.metadata_flag = seed & 2 == 0;
                let _ = s.scan(&mut bytes);
            }
        }
    }
}
