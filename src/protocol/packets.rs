//! OK / ERR / EOF packets: building the ones Switchyard answers itself, and reading the
//! few header fields routing needs from the ones backends send.

use std::borrow::Cow;

use mysql_common::io::ParseBuf;

pub const OK_HEADER: u8 = 0x00;
pub const EOF_HEADER: u8 = 0xFE;
pub const ERR_HEADER: u8 = 0xFF;
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;

pub const STATUS_IN_TRANS: u16 = 0x0001;
pub const STATUS_AUTOCOMMIT: u16 = 0x0002;
pub const STATUS_MORE_RESULTS: u16 = 0x0008;
pub const STATUS_CURSOR_EXISTS: u16 = 0x0040;
pub const STATUS_LAST_ROW_SENT: u16 = 0x0080;
pub const STATUS_NO_BACKSLASH_ESCAPES: u16 = 0x0200;
pub const STATUS_IN_TRANS_READONLY: u16 = 0x2000;
pub const STATUS_SESSION_STATE_CHANGED: u16 = 0x4000;
/// MariaDB's: `sql_mode` has ANSI_QUOTES.
pub const STATUS_ANSI_QUOTES: u16 = 0x8000;
/// The status flags that describe the session's modes rather than the statement's answer:
/// `sql_mode`'s NO_BACKSLASH_ESCAPES and ANSI_QUOTES.
pub const STATUS_SQL_MODES: u16 = STATUS_NO_BACKSLASH_ESCAPES | STATUS_ANSI_QUOTES;

/// An error Switchyard itself answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrSpec {
    pub code: u16,
    /// SQLSTATE: Switchyard's own are static, a server's are kept as it sent them.
    pub state: Cow<'static, str>,
    pub message: String,
}

impl ErrSpec {
    pub fn new(code: u16, state: &'static str, message: impl Into<String>) -> Self {
        ErrSpec {
            code,
            state: Cow::Borrowed(state),
            message: message.into(),
        }
    }
}

/// ERR payload (protocol 4.1 form: with SQLSTATE; none for an empty `state`, as the
/// server answers a handshake response it cannot read).
pub fn err_payload(e: &ErrSpec) -> Vec<u8> {
    if e.state.is_empty() {
        return err_payload_before_greeting(e);
    }
    let mut p = Vec::with_capacity(9 + e.message.len());
    p.push(ERR_HEADER);
    p.extend_from_slice(&e.code.to_le_bytes());
    p.push(b'#');
    let state = e.state.as_bytes();
    p.extend_from_slice(&state[..5.min(state.len())]);
    p.extend_from_slice(e.message.as_bytes());
    p
}

/// ERR payload sent in place of the greeting (too many connections, a bad PROXY header):
/// without SQLSTATE, as servers send it before they know the client speaks protocol 4.1.
/// With one, libmysqlclient read `#08004` as the message's start.
pub fn err_payload_before_greeting(e: &ErrSpec) -> Vec<u8> {
    let mut p = Vec::with_capacity(3 + e.message.len());
    p.push(ERR_HEADER);
    p.extend_from_slice(&e.code.to_le_bytes());
    p.extend_from_slice(e.message.as_bytes());
    p
}

/// A plain OK payload: no rows, no insert id, no session-state info.
pub fn ok_payload(status: u16, warnings: u16) -> Vec<u8> {
    let mut p = vec![OK_HEADER, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&warnings.to_le_bytes());
    p
}

/// The OK that ends a login in `schema`: with session tracking, servers report the schema
/// as a session-state change, and clients that asked for tracking expect to see it.
pub fn login_ok_payload(status: u16, schema: Option<&str>, session_track: bool) -> Vec<u8> {
    let Some(db) = schema.filter(|_| session_track) else {
        return ok_payload(status, 0);
    };
    let mut entry = Vec::with_capacity(db.len() + 2);
    put_lenenc_str(&mut entry, db.as_bytes());
    let mut state = vec![SESSION_TRACK_SCHEMA];
    put_lenenc_str(&mut state, &entry);
    let mut p = ok_payload(status | STATUS_SESSION_STATE_CHANGED, 0);
    p.push(0); // empty info string
    put_lenenc_str(&mut p, &state);
    p
}

const SESSION_TRACK_SCHEMA: u8 = 1;

fn put_lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    use mysql_common::io::BufMutExt;
    out.put_lenenc_int(s.len() as u64);
    out.extend_from_slice(s);
}

/// The fields of an OK or EOF terminator that the session tracks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

/// Reads an OK packet (header 0x00 or 0xFE) as sent with CLIENT_PROTOCOL_41.
pub fn parse_ok(payload: &[u8]) -> Option<OkInfo> {
    read_ok(payload).map(|(info, _)| info)
}

/// The OK's fixed fields, and what follows them (info, session-state changes).
fn read_ok(payload: &[u8]) -> Option<(OkInfo, ParseBuf<'_>)> {
    let mut buf = ParseBuf(payload.get(1..)?);
    let affected_rows = buf.checked_eat_lenenc_int()?;
    let last_insert_id = buf.checked_eat_lenenc_int()?;
    let status = buf.checked_eat_u16_le()?;
    let warnings = buf.checked_eat_u16_le().unwrap_or(0);
    let info = OkInfo {
        affected_rows,
        last_insert_id,
        status,
        warnings,
    };
    Some((info, buf))
}

/// Session-state entry types (OK packet, CLIENT_SESSION_TRACK).
const SESSION_TRACK_SYSTEM_VARIABLES: u8 = 0;
const SESSION_TRACK_GTIDS: u8 = 3;

/// The GTID a write produced, from an OK packet's session-state changes: MariaDB's
/// `last_gtid` system variable (`session_track_system_variables` includes it) or MySQL's
/// own GTID (`session_track_gtids = OWN_GTID`). `None` when the OK carries neither (the
/// client did not ask for session tracking, the server does not track it, or the statement
/// wrote nothing to the binlog).
pub fn tracked_gtid(payload: &[u8]) -> Option<String> {
    let (ok, mut buf) = read_ok(payload)?;
    if ok.status & STATUS_SESSION_STATE_CHANGED == 0 {
        return None;
    }
    buf.checked_eat_lenenc_str()?; // info
    let mut state = ParseBuf(buf.checked_eat_lenenc_str()?);
    let mut found = None;
    while !state.is_empty() {
        let kind = state.checked_eat_u8()?;
        let mut data = ParseBuf(state.checked_eat_lenenc_str()?);
        match kind {
            SESSION_TRACK_SYSTEM_VARIABLES => {
                while !data.is_empty() {
                    let name = data.checked_eat_lenenc_str()?;
                    let value = data.checked_eat_lenenc_str()?;
                    if name.eq_ignore_ascii_case(b"last_gtid") && !value.is_empty() {
                        found = Some(String::from_utf8_lossy(value).into_owned());
                    }
                }
            }
            SESSION_TRACK_GTIDS => {
                data.checked_eat_u8()?; // encoding specification
                let gtids = data.checked_eat_lenenc_str()?;
                if !gtids.is_empty() {
                    found = Some(String::from_utf8_lossy(gtids).into_owned());
                }
            }
            _ => {}
        }
    }
    found
}

/// Reads an old-style EOF packet: 0xFE, warnings, status.
pub fn parse_eof(payload: &[u8]) -> Option<OkInfo> {
    let warnings = u16::from_le_bytes([*payload.get(1)?, *payload.get(2)?]);
    let status = u16::from_le_bytes([*payload.get(3)?, *payload.get(4)?]);
    Some(OkInfo {
        status,
        warnings,
        ..OkInfo::default()
    })
}

/// The session's transaction flags: what an answer relayed from a connection other than
/// the transaction's must say in their place.
pub const STATUS_TRANSACTION: u16 = STATUS_IN_TRANS | STATUS_AUTOCOMMIT | STATUS_IN_TRANS_READONLY;

/// Writes `flags` over the session's bits of a terminator's status ([`STATUS_TRANSACTION`]
/// and [`STATUS_SQL_MODES`]): an OK (`ok`: the status follows two length-encoded counts)
/// or an old-style EOF. A packet too short to have a status is left as it is.
pub fn set_session_flags(payload: &mut [u8], ok: bool, flags: u16) {
    let at = if ok {
        let Some(mut buf) = payload.get(1..).map(ParseBuf) else {
            return;
        };
        let counts = buf
            .checked_eat_lenenc_int()
            .and(buf.checked_eat_lenenc_int());
        if counts.is_none() {
            return;
        }
        payload.len() - buf.0.len()
    } else {
        3
    };
    let Some(s) = payload.get_mut(at..at + 2) else {
        return;
    };
    let status = u16::from_le_bytes([s[0], s[1]]);
    let session = STATUS_TRANSACTION | STATUS_SQL_MODES;
    let status = (status & !session) | (flags & session);
    s.copy_from_slice(&status.to_le_bytes());
}

/// The first column of the first row of a text-protocol result, from the raw framed bytes of
/// the whole answer: `Some(None)` for SQL NULL, `None` if the answer has no row.
pub fn first_text_value(raw: &[u8], deprecate_eof: bool) -> Option<Option<Vec<u8>>> {
    let mut packets = framed_payloads(raw);
    let first = packets.next()?;
    let columns = ParseBuf(first).checked_eat_lenenc_int()?;
    if matches!(first.first(), Some(&OK_HEADER) | Some(&ERR_HEADER)) || columns == 0 {
        return None;
    }
    // A column count near u64::MAX is nonsense, not an overflow.
    let skip = usize::try_from(columns)
        .ok()?
        .checked_add(usize::from(!deprecate_eof))?;
    let row = packets.nth(skip)?;
    if matches!(row.first(), Some(&EOF_HEADER) | Some(&ERR_HEADER)) && row.len() < 9 {
        return None;
    }
    if row.first() == Some(&0xFB) {
        return Some(None);
    }
    ParseBuf(row)
        .checked_eat_lenenc_str()
        .map(|v| Some(v.to_vec()))
}

/// Payloads of the framed packets in `raw` (each assumed whole and under 16 MB).
fn framed_payloads(mut raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes([*raw.first()?, *raw.get(1)?, *raw.get(2)?, 0]) as usize;
        let payload = raw.get(4..4 + len)?;
        raw = &raw[4 + len..];
        Some(payload)
    })
}

/// Error code and message of an ERR payload.
pub fn parse_err(payload: &[u8]) -> Option<(u16, String)> {
    parse_err_spec(payload).map(|e| (e.code, e.message))
}

/// An ERR payload whole: code, SQLSTATE (HY000 when the packet has none) and message.
/// A MariaDB progress report (MARIADB_CLIENT_PROGRESS): an ERR-headed packet with error code
/// 0xFFFF that comes before a command's real answer.
pub fn is_progress_report(p: &[u8]) -> bool {
    p.len() >= 3 && p[0] == ERR_HEADER && p[1] == 0xFF && p[2] == 0xFF
}

pub fn parse_err_spec(payload: &[u8]) -> Option<ErrSpec> {
    let code = u16::from_le_bytes([*payload.get(1)?, *payload.get(2)?]);
    let rest = payload.get(3..)?;
    let (state, msg) = if rest.first() == Some(&b'#') && rest.len() >= 6 {
        (
            String::from_utf8_lossy(&rest[1..6]).into_owned(),
            &rest[6..],
        )
    } else {
        ("HY000".to_owned(), rest)
    };
    Some(ErrSpec {
        code,
        state: Cow::Owned(state),
        message: String::from_utf8_lossy(msg).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OK with SESSION_STATE_CHANGED and the given session-state entries.
    fn ok_with_state(entries: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let lenenc = |b: &[u8]| {
            let mut v = vec![b.len() as u8];
            v.extend_from_slice(b);
            v
        };
        let mut state = Vec::new();
        for (kind, data) in entries {
            state.push(*kind);
            state.extend(lenenc(data));
        }
        let mut p = vec![OK_HEADER, 1, 0];
        p.extend_from_slice(&(STATUS_AUTOCOMMIT | STATUS_SESSION_STATE_CHANGED).to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend(lenenc(b""));
        p.extend(lenenc(&state));
        p
    }

    #[test]
    fn tracked_gtid_from_either_server() {
        let var = |n: &[u8], v: &[u8]| {
            let mut d = vec![n.len() as u8];
            d.extend_from_slice(n);
            d.push(v.len() as u8);
            d.extend_from_slice(v);
            d
        };
        // MariaDB: system variables, last_gtid among others.
        let maria = ok_with_state(&[
            (0, var(b"autocommit", b"ON")),
            (0, var(b"last_gtid", b"0-1-42")),
        ]);
        assert_eq!(tracked_gtid(&maria).as_deref(), Some("0-1-42"));
        // MySQL: a GTIDS entry (encoding 0, then the set).
        let mut gtids = vec![0u8, 38];
        gtids.extend_from_slice(b"3e11fa47-71ca-11e1-9e33-c80aa9429562:7");
        let mysql = ok_with_state(&[(3, gtids)]);
        assert_eq!(
            tracked_gtid(&mysql).as_deref(),
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:7")
        );
        // Other changes only, no change flag, truncated: nothing.
        assert_eq!(
            tracked_gtid(&ok_with_state(&[(0, var(b"autocommit", b"ON"))])),
            None
        );
        let mut plain = maria.clone();
        plain[3] = 0x02;
        plain[4] = 0;
        assert_eq!(tracked_gtid(&plain), None);
        for cut in 0..maria.len() - 1 {
            let _ = tracked_gtid(&maria[..cut]);
        }
    }

    #[test]
    fn ok_roundtrip() {
        let p = ok_payload(STATUS_AUTOCOMMIT, 3);
        let ok = parse_ok(&p).unwrap();
        assert_eq!(ok.status, STATUS_AUTOCOMMIT);
        assert_eq!(ok.warnings, 3);
    }

    #[test]
    fn session_flags_are_written_over_a_terminators_own() {
        let other = STATUS_CURSOR_EXISTS;
        let mut ok = ok_payload(STATUS_AUTOCOMMIT | STATUS_NO_BACKSLASH_ESCAPES | other, 2);
        // Counts of more than one byte move the status.
        ok.splice(1..2, [0xfc, 0x10, 0x27]);
        set_session_flags(&mut ok, true, STATUS_IN_TRANS | STATUS_IN_TRANS_READONLY);
        let info = parse_ok(&ok).unwrap();
        assert_eq!(info.affected_rows, 10_000);
        assert_eq!(
            info.status,
            STATUS_IN_TRANS | STATUS_IN_TRANS_READONLY | other
        );
        assert_eq!(info.warnings, 2);
        let [s0, s1] = (STATUS_IN_TRANS | other).to_le_bytes();
        let mut eof = vec![EOF_HEADER, 1, 0, s0, s1];
        let session = STATUS_AUTOCOMMIT | STATUS_ANSI_QUOTES;
        set_session_flags(&mut eof, false, session | STATUS_MORE_RESULTS);
        let info = parse_eof(&eof).unwrap();
        assert_eq!((info.status, info.warnings), (session | other, 1));
        for short in [&[OK_HEADER, 0xfc][..], &[EOF_HEADER, 0, 0, 2]] {
            let mut p = short.to_vec();
            set_session_flags(&mut p, short[0] == OK_HEADER, STATUS_IN_TRANS);
            assert_eq!(p, short);
        }
    }

    #[test]
    fn login_ok_reports_schema_only_when_tracked() {
        assert_eq!(login_ok_payload(2, Some("db"), false), ok_payload(2, 0));
        assert_eq!(login_ok_payload(2, None, true), ok_payload(2, 0));
        let p = login_ok_payload(2, Some("wf_globex"), true);
        let mut want = vec![0, 0, 0, 2, 0x40, 0, 0, 0, 12, 1, 10, 9];
        want.extend_from_slice(b"wf_globex");
        assert_eq!(p, want);
    }

    #[test]
    fn err_roundtrip() {
        let p = err_payload(&ErrSpec::new(1044, "42000", "Access denied"));
        assert_eq!(&p[..4], &[0xFF, 0x14, 0x04, b'#']);
        assert_eq!(parse_err(&p).unwrap(), (1044, "Access denied".to_string()));
        let spec = parse_err_spec(&p).unwrap();
        assert_eq!((spec.code, &*spec.state), (1044, "42000"));
        let old = [0xFF, 0x14, 0x04, b'n', b'o'];
        assert_eq!(&*parse_err_spec(&old).unwrap().state, "HY000");
    }

    fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
        let l = (payload.len() as u32).to_le_bytes();
        let mut v = vec![l[0], l[1], l[2], seq];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn first_value_of_a_result() {
        for deprecate in [false, true] {
            let mut raw = frame(1, &[1]);
            raw.extend(frame(2, b"\x03def-coldef"));
            if !deprecate {
                raw.extend(frame(3, &[0xFE, 0, 0, 2, 0]));
            }
            raw.extend(frame(4, b"\x050-1-9"));
            raw.extend(frame(5, &[0xFE, 0, 0, 2, 0, 0, 0]));
            assert_eq!(
                first_text_value(&raw, deprecate),
                Some(Some(b"0-1-9".to_vec()))
            );
        }
        let mut null = frame(1, &[1]);
        null.extend(frame(2, b"coldef"));
        null.extend(frame(3, &[0xFB]));
        assert_eq!(first_text_value(&null, true), Some(None));
        assert_eq!(first_text_value(&frame(1, &ok_payload(2, 0)), true), None);
        assert_eq!(first_text_value(&[1, 0], true), None);
        // Found by the response_scan fuzz target: a column count of u64::MAX.
        let huge = [
            19, 12, 0, 0, 116, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 108,
        ];
        assert_eq!(first_text_value(&huge, false), None);
    }

    #[test]
    fn truncated_packets_do_not_panic() {
        for p in [&[][..], &[0x00], &[0x00, 0xFC], &[0xFE, 1], &[0xFF, 1]] {
            let _ = parse_ok(p);
            let _ = parse_eof(p);
            let _ = parse_err(p);
        }
    }
}
