//! Client command packets: command bytes, and the few commands whose fields the session
//! reads or rewrites (COM_CHANGE_USER, statement ids, COM_STMT_EXECUTE parameter types).

use mysql_common::constants::CapabilityFlags;

pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_FIELD_LIST: u8 = 0x04;
pub const COM_REFRESH: u8 = 0x07;
pub const COM_STATISTICS: u8 = 0x09;
pub const COM_PROCESS_KILL: u8 = 0x0C;
pub const COM_PING: u8 = 0x0E;
pub const COM_CHANGE_USER: u8 = 0x11;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1A;
pub const COM_SET_OPTION: u8 = 0x1B;
pub const COM_STMT_FETCH: u8 = 0x1C;
pub const COM_RESET_CONNECTION: u8 = 0x1F;
/// MariaDB's array binding (MARIADB_CLIENT_STMT_BULK_OPERATIONS).
pub const COM_STMT_BULK_EXECUTE: u8 = 0xFA;

/// COM_STMT_EXECUTE's flags byte, and the cursor types a client may ask for in it.
const EXECUTE_FLAGS_AT: usize = 5;
const CURSOR_TYPES: u8 = 0x01 | 0x02 | 0x04;
/// COM_STMT_BULK_EXECUTE's flags (u16) and the one saying parameter types follow them.
const BULK_FLAGS_AT: usize = 5;
const BULK_SEND_TYPES: u16 = 128;
const BULK_TYPES_AT: usize = 7;

/// Name of a command byte, for errors and logs.
pub fn name(cmd: u8) -> &'static str {
    match cmd {
        0x00 => "COM_SLEEP",
        COM_QUIT => "COM_QUIT",
        COM_INIT_DB => "COM_INIT_DB",
        COM_QUERY => "COM_QUERY",
        COM_FIELD_LIST => "COM_FIELD_LIST",
        0x05 => "COM_CREATE_DB",
        0x06 => "COM_DROP_DB",
        COM_REFRESH => "COM_REFRESH",
        0x08 => "COM_SHUTDOWN",
        COM_STATISTICS => "COM_STATISTICS",
        0x0A => "COM_PROCESS_INFO",
        COM_PROCESS_KILL => "COM_PROCESS_KILL",
        0x0D => "COM_DEBUG",
        COM_PING => "COM_PING",
        COM_CHANGE_USER => "COM_CHANGE_USER",
        0x12 => "COM_BINLOG_DUMP",
        0x15 => "COM_REGISTER_SLAVE",
        COM_STMT_PREPARE => "COM_STMT_PREPARE",
        COM_STMT_EXECUTE => "COM_STMT_EXECUTE",
        COM_STMT_SEND_LONG_DATA => "COM_STMT_SEND_LONG_DATA",
        COM_STMT_CLOSE => "COM_STMT_CLOSE",
        COM_STMT_RESET => "COM_STMT_RESET",
        COM_SET_OPTION => "COM_SET_OPTION",
        COM_STMT_FETCH => "COM_STMT_FETCH",
        0x1E => "COM_BINLOG_DUMP_GTID",
        COM_RESET_CONNECTION => "COM_RESET_CONNECTION",
        COM_STMT_BULK_EXECUTE => "COM_STMT_BULK_EXECUTE",
        _ => "unknown command",
    }
}

/// A decoded COM_CHANGE_USER.
#[derive(Debug, Clone)]
pub struct ChangeUser {
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    /// As sent: two bytes, so ids past 255 too (the login's field has one).
    pub collation: Option<u16>,
    pub auth_plugin: Option<String>,
}

/// COM_CHANGE_USER read as MariaDB reads it (`parse_com_change_user_packet`), so that the
/// packets it refuses are refused here and the ones it takes are read alike: a name ends at
/// its NUL or at the packet's end (the server's buffer ends in one); the user name's NUL must
/// come before the last byte and the database name must start inside the packet; the
/// collation is read when two bytes follow the database name; a client with
/// CLIENT_PLUGIN_AUTH must have sent at least a byte of plugin name after that. Connection
/// attributes are not read (the server ignores malformed ones).
pub fn parse_change_user(payload: &[u8], caps: CapabilityFlags) -> Option<ChangeUser> {
    let body = payload.get(1..)?;
    let end = body.len();
    let nul_or_end = |from: usize| {
        let rest = body.get(from..).unwrap_or(&[]);
        from + rest.iter().position(|&c| c == 0).unwrap_or(rest.len())
    };
    let lossy = |r: std::ops::Range<usize>| String::from_utf8_lossy(&body[r]).into_owned();
    let user_end = nul_or_end(0);
    let auth_at = user_end + 1;
    if auth_at >= end {
        return None;
    }
    let (auth, db_at) = if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
        let len = usize::from(body[auth_at]);
        (auth_at + 1..auth_at + 1 + len, auth_at + 1 + len)
    } else {
        let auth_end = nul_or_end(auth_at);
        (auth_at..auth_end, auth_end + 1)
    };
    if db_at >= end {
        return None;
    }
    let db_end = nul_or_end(db_at);
    let mut at = db_end + 1;
    let mut collation = None;
    if at + 1 < end {
        collation = Some(u16::from_le_bytes([body[at], body[at + 1]]));
        at += 2;
    }
    let mut auth_plugin = None;
    if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
        if at >= end {
            return None;
        }
        auth_plugin = Some(lossy(at..nul_or_end(at))).filter(|p| !p.is_empty());
    }
    Some(ChangeUser {
        user: lossy(0..user_end),
        auth_response: body[auth].to_vec(),
        database: Some(lossy(db_at..db_end)).filter(|d| !d.is_empty()),
        collation,
        auth_plugin,
    })
}

/// The parameter a COM_STMT_SEND_LONG_DATA is for; `None` for a packet too short to name
/// one, which the server ignores.
pub fn long_data_param(payload: &[u8]) -> Option<u16> {
    let b = payload.get(5..7)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// The statement id of COM_STMT_EXECUTE / SEND_LONG_DATA / CLOSE / RESET / FETCH.
pub fn stmt_id(payload: &[u8]) -> Option<u32> {
    let b = payload.get(1..5)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The little-endian field of `len` bytes (at most 8) at `at`, bytes past the payload's end
/// read as zeros: the server reads a short command's fields from its zeroed buffer and
/// answers for those values (COM_STMT_FETCH of statement 0, COM_PROCESS_KILL of thread 0)
/// rather than refusing the packet.
pub fn padded_field(payload: &[u8], at: usize, len: usize) -> u64 {
    let end = (at + len.min(8)).min(payload.len());
    let b = payload.get(at..end).unwrap_or(&[]);
    b.iter()
        .rev()
        .fold(0, |n, &byte| (n << 8) | u64::from(byte))
}

/// The statement id of a command, read as the server reads a short one (see
/// [`padded_field`]).
pub fn padded_stmt_id(payload: &[u8]) -> u32 {
    // Every execute asks: the whole field is read as it is.
    stmt_id(payload).unwrap_or_else(|| padded_field(payload, 1, 4) as u32)
}

/// Whether MariaDB implements `cmd`: it answers the others "Unknown command" (1047), and so
/// does Switchyard, in the same words.
pub fn server_implements(cmd: u8) -> bool {
    !matches!(
        name(cmd),
        "unknown command" | "COM_SLEEP" | "COM_CREATE_DB" | "COM_DROP_DB"
    )
}

/// A copy of a command at least `len` bytes long: a short one zero-filled, as
/// [`padded_stmt_id`] reads it, so the server is sent what Switchyard read (it reads the
/// fixed fields of a short one from whatever its buffer holds).
pub fn padded(payload: &[u8], len: usize) -> Vec<u8> {
    let mut p = payload.to_vec();
    if p.len() < len {
        p.resize(len, 0);
    }
    p
}

pub fn set_stmt_id(payload: &mut [u8], id: u32) {
    if payload.len() >= 5 {
        payload[1..5].copy_from_slice(&id.to_le_bytes());
    }
}

/// Offset of the new-params-bound flag in a COM_STMT_EXECUTE with `params` parameters.
fn bound_flag_at(params: u16) -> usize {
    1 + 4 + 1 + 4 + (params as usize).div_ceil(8)
}

/// The parameter types a COM_STMT_EXECUTE carries, if it carries them.
pub fn execute_param_types(payload: &[u8], params: u16) -> Option<&[u8]> {
    if params == 0 {
        return None;
    }
    let at = bound_flag_at(params);
    if payload.get(at) != Some(&1) {
        return None;
    }
    payload.get(at + 1..at + 1 + 2 * params as usize)
}

/// Rewrites a COM_STMT_EXECUTE that relies on types sent earlier (to another backend) into
/// one that carries them, so any backend can run it.
pub fn execute_with_types(payload: &[u8], params: u16, types: &[u8]) -> Option<Vec<u8>> {
    let at = bound_flag_at(params);
    if params == 0 || payload.get(at) != Some(&0) || types.len() != 2 * params as usize {
        return None;
    }
    let mut out = Vec::with_capacity(payload.len() + types.len());
    out.extend_from_slice(&payload[..at]);
    out.push(1);
    out.extend_from_slice(types);
    out.extend_from_slice(&payload[at + 1..]);
    Some(out)
}

/// Whether a COM_STMT_EXECUTE asks for a server-side cursor.
pub fn execute_opens_cursor(payload: &[u8]) -> bool {
    payload
        .get(EXECUTE_FLAGS_AT)
        .is_some_and(|f| f & CURSOR_TYPES != 0)
}

fn bulk_flags(payload: &[u8]) -> Option<u16> {
    let b = payload.get(BULK_FLAGS_AT..BULK_TYPES_AT)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// The parameter types a COM_STMT_BULK_EXECUTE carries, if it carries them (same layout as
/// COM_STMT_EXECUTE's: type and flags byte per parameter).
pub fn bulk_param_types(payload: &[u8], params: u16) -> Option<&[u8]> {
    if params == 0 || bulk_flags(payload)? & BULK_SEND_TYPES == 0 {
        return None;
    }
    payload.get(BULK_TYPES_AT..BULK_TYPES_AT + 2 * params as usize)
}

/// Why the server refuses an execute before it looks its statement up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecuteRefusal {
    /// Too short for the fixed fields (ER_MALFORMED_PACKET).
    Malformed,
    /// A bulk execute from a client that did not ask for bulk operations at login, or with
    /// flags the server does not know (ER_UNSUPPORTED_PS).
    Unsupported,
}

/// The server's checks of a COM_STMT_EXECUTE's (`bulk`: COM_STMT_BULK_EXECUTE's) fixed
/// fields, in its order; `bulk_asked`: the client's login asked for bulk operations.
pub fn refuse_execute(payload: &[u8], bulk: bool, bulk_asked: bool) -> Option<ExecuteRefusal> {
    if !bulk {
        // Statement id, flags, iteration count.
        return (payload.len() < 1 + 9).then_some(ExecuteRefusal::Malformed);
    }
    let Some(flags) = bulk_flags(payload) else {
        return Some(ExecuteRefusal::Malformed);
    };
    (!bulk_asked || flags & !BULK_SEND_TYPES != 0).then_some(ExecuteRefusal::Unsupported)
}

/// Rewrites a COM_STMT_BULK_EXECUTE that relies on types sent earlier into one that
/// carries them.
pub fn bulk_with_types(payload: &[u8], params: u16, types: &[u8]) -> Option<Vec<u8>> {
    let flags = bulk_flags(payload)?;
    if params == 0 || flags & BULK_SEND_TYPES != 0 || types.len() != 2 * params as usize {
        return None;
    }
    let mut out = Vec::with_capacity(payload.len() + types.len());
    out.extend_from_slice(&payload[..BULK_FLAGS_AT]);
    out.extend_from_slice(&(flags | BULK_SEND_TYPES).to_le_bytes());
    out.extend_from_slice(types);
    out.extend_from_slice(&payload[BULK_TYPES_AT..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_fields_read_as_the_server_reads_them() {
        assert_eq!(padded_stmt_id(&[COM_STMT_FETCH]), 0);
        assert_eq!(padded_stmt_id(&[COM_STMT_FETCH, 1]), 1);
        assert_eq!(padded_stmt_id(&[COM_STMT_FETCH, 1, 2]), 0x0201);
        assert_eq!(
            padded_stmt_id(&[COM_STMT_FETCH, 1, 2, 3, 4, 5]),
            0x0403_0201
        );
        assert_eq!(padded_field(&[COM_SET_OPTION, 1, 0], 1, 2), 1);
        assert_eq!(padded_field(&[], 1, 2), 0);
        // What is sent on is what was read: a short fetch's id rewritten, not left as the
        // client's beside the server's leftover bytes.
        let mut p = padded(&[COM_STMT_FETCH, 5], 9);
        assert_eq!(padded_stmt_id(&p), 5);
        set_stmt_id(&mut p, 17);
        assert_eq!(p, [COM_STMT_FETCH, 17, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(padded(&[COM_STMT_RESET, 1, 2, 3, 4, 9], 5).len(), 6);
    }

    #[test]
    fn executes_are_refused_in_the_servers_order() {
        use ExecuteRefusal::*;
        let execute = [COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(refuse_execute(&execute, false, false), None);
        assert_eq!(refuse_execute(&execute[..9], false, true), Some(Malformed));
        assert_eq!(refuse_execute(&execute[..1], false, true), Some(Malformed));
        let bulk = [COM_STMT_BULK_EXECUTE, 1, 0, 0, 0, 128, 0];
        assert_eq!(refuse_execute(&bulk, true, true), None);
        // Too short is said before the missing capability.
        assert_eq!(refuse_execute(&bulk[..6], true, false), Some(Malformed));
        assert_eq!(refuse_execute(&bulk, true, false), Some(Unsupported));
        let unknown_flag = [COM_STMT_BULK_EXECUTE, 1, 0, 0, 0, 64, 0];
        assert_eq!(refuse_execute(&unknown_flag, true, true), Some(Unsupported));
    }

    #[test]
    fn only_commands_the_server_lacks_are_plainly_unknown() {
        for cmd in [
            0x00, 0x05, 0x06, 0x0B, 0x0F, 0x10, 0x13, 0x14, 0x1D, 0x40, 0xFF,
        ] {
            assert!(!server_implements(cmd), "0x{cmd:02x}");
        }
        for cmd in [
            0x07,
            0x08,
            0x0A,
            0x0D,
            0x12,
            0x15,
            COM_QUERY,
            COM_STMT_BULK_EXECUTE,
        ] {
            assert!(server_implements(cmd), "0x{cmd:02x}");
        }
    }

    #[test]
    fn change_user_parses() {
        let mut p = vec![COM_CHANGE_USER];
        p.extend_from_slice(b"bob\0");
        p.push(3);
        p.extend_from_slice(&[9, 9, 9]);
        p.extend_from_slice(b"wf_acme\0");
        p.extend_from_slice(&[45, 0]);
        p.extend_from_slice(b"mysql_native_password\0");
        let c = parse_change_user(&p, plugin_caps()).unwrap();
        assert_eq!(c.user, "bob");
        assert_eq!(c.auth_response, vec![9, 9, 9]);
        assert_eq!(c.database.as_deref(), Some("wf_acme"));
        assert_eq!(c.collation, Some(45));
        assert_eq!(c.auth_plugin.as_deref(), Some("mysql_native_password"));
        for n in 0..p.len() {
            let _ = parse_change_user(&p[..n], plugin_caps());
        }
    }

    fn plugin_caps() -> CapabilityFlags {
        use CapabilityFlags as C;
        C::CLIENT_PROTOCOL_41 | C::CLIENT_SECURE_CONNECTION | C::CLIENT_PLUGIN_AUTH
    }

    /// Each packet as MariaDB 10.11 answered it when sent directly: refused ("Unknown
    /// command") or read, with the collation and plugin it used.
    #[test]
    fn change_user_is_refused_where_the_server_refuses_it() {
        // Refused (None), or read with this collation and plugin.
        type Read = Option<(Option<u16>, Option<&'static str>)>;
        let cases: &[(&[u8], Read)] = &[
            (b"", None),
            (b"bob", None),
            (b"bob\0", None),
            (b"bob\0\x14abc", None),
            (b"bob\0\x00wf", None),
            (b"bob\0\x00wf\0", None),
            (b"bob\0\x00wf\0\x2d", Some((None, Some("-")))),
            (b"bob\0\x00wf\0\x2d\x00", None),
            (b"bob\0\x00wf\0\x2d\x00p", Some((Some(45), Some("p")))),
            (b"bob\0\x00wf\0\xe7\x03p\0", Some((Some(999), Some("p")))),
            (
                b"bob\0\x00wf\0\x2d\x00p\0\xfc\xff\xff",
                Some((Some(45), Some("p"))),
            ),
        ];
        for (body, read) in cases {
            let p = [&[COM_CHANGE_USER][..], body].concat();
            let got = parse_change_user(&p, plugin_caps()).map(|c| {
                assert_eq!(
                    (c.user.as_str(), c.database.as_deref()),
                    ("bob", Some("wf"))
                );
                (c.collation, c.auth_plugin)
            });
            let want = read.map(|(c, p)| (c, p.map(String::from)));
            assert_eq!(got, want, "{body:?}");
        }
        // Without CLIENT_PLUGIN_AUTH no plugin name is needed.
        let p = b"\x11bob\0\x00wf".to_vec();
        let caps = plugin_caps() - CapabilityFlags::CLIENT_PLUGIN_AUTH;
        assert_eq!(
            parse_change_user(&p, caps).unwrap().database.as_deref(),
            Some("wf")
        );
    }

    #[test]
    fn bulk_types_are_read_and_injected() {
        // 2 params, no types, then one row of values with indicators.
        let p = vec![COM_STMT_BULK_EXECUTE, 9, 0, 0, 0, 0, 0, 1, 1];
        assert_eq!(bulk_param_types(&p, 2), None);
        let q = bulk_with_types(&p, 2, &[3, 0, 253, 0]).unwrap();
        assert_eq!(bulk_param_types(&q, 2), Some(&[3, 0, 253, 0][..]));
        assert_eq!(&q[q.len() - 2..], &[1, 1]);
        assert_eq!(stmt_id(&q), Some(9));
        assert_eq!(bulk_with_types(&q, 2, &[3, 0, 253, 0]), None, "has types");
        assert_eq!(bulk_param_types(&p[..6], 2), None);
    }

    #[test]
    fn cursor_flags_are_seen() {
        assert!(execute_opens_cursor(&[
            COM_STMT_EXECUTE,
            1,
            0,
            0,
            0,
            1,
            1,
            0,
            0,
            0
        ]));
        assert!(!execute_opens_cursor(&[
            COM_STMT_EXECUTE,
            1,
            0,
            0,
            0,
            0,
            1,
            0,
            0,
            0
        ]));
    }

    #[test]
    fn execute_types_are_injected() {
        // 2 params, not bound, then values.
        let mut p = vec![COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0b00, 0];
        p.extend_from_slice(&[7, 7]);
        assert_eq!(execute_param_types(&p, 2), None);
        let q = execute_with_types(&p, 2, &[3, 0, 253, 0]).unwrap();
        assert_eq!(execute_param_types(&q, 2), Some(&[3, 0, 253, 0][..]));
        assert_eq!(&q[q.len() - 2..], &[7, 7]);
        assert_eq!(stmt_id(&q), Some(1));
    }
}
