//! Connection phase packets: the greeting Switchyard sends clients (modelled on a real
//! backend's), the client's handshake response, and Switchyard's own response to a backend.

use std::sync::OnceLock;

use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse, SslRequest};
use mysql_common::proto::MySerialize;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const SHA2_PASSWORD: &str = "caching_sha2_password";

/// The max packet size Switchyard announces to backends (a server's usual
/// `max_allowed_packet`; answers are streamed, so it bounds nothing in Switchyard).
const BACKEND_MAX_PACKET: u32 = 64 * 1024 * 1024;

/// What a backend told us about itself in its greeting; clients are shown the same.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: Vec<u8>,
    pub capabilities: CapabilityFlags,
    /// MariaDB's extended capabilities (empty for MySQL servers).
    pub ext_capabilities: MariadbCapabilities,
    pub collation: u8,
    /// The greeting's status flags: autocommit, and the global `sql_mode`'s
    /// NO_BACKSLASH_ESCAPES and ANSI_QUOTES, which a client's escaping follows from the
    /// greeting on.
    pub status: u16,
    /// The greetings made of this, without and with TLS offered, made at the first login.
    greetings: OnceLock<[Option<Template>; 2]>,
}

impl Default for ServerInfo {
    fn default() -> Self {
        // Used only until a backend has been reached: a plain MariaDB 10.11 profile.
        ServerInfo {
            version: b"5.5.5-10.11.0-MariaDB".to_vec(),
            capabilities: supported_capabilities(),
            ext_capabilities: supported_ext_capabilities(),
            collation: 45,
            status: super::packets::STATUS_AUTOCOMMIT,
            greetings: OnceLock::new(),
        }
    }
}

/// Capabilities that shape what a server answers (EOF packets or not, session-state data,
/// several results): a client is offered them only if every backend has them, since its
/// session's statements may run on any of them and their answers are relayed as they are.
const ANSWER_SHAPING: CapabilityFlags = CapabilityFlags::CLIENT_DEPRECATE_EOF
    .union(CapabilityFlags::CLIENT_SESSION_TRACK)
    .union(CapabilityFlags::CLIENT_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_PS_MULTI_RESULTS);

impl ServerInfo {
    /// Keeps, of what shapes answers, only what `other` (another backend) has too:
    /// MariaDB's extended capabilities (a 10.5 replica beside a 10.6 primary has no
    /// metadata caching; a MySQL server has none of them), and [`ANSWER_SHAPING`]. The
    /// version and the rest stay this one's.
    pub fn keep_common(&mut self, other: &ServerInfo) {
        self.capabilities &= other.capabilities | !ANSWER_SHAPING;
        self.ext_capabilities &= other.ext_capabilities;
    }
}

/// Capabilities Switchyard can relay faithfully. SSL (when configured) and compression are
/// Switchyard's own with the client; backends are asked for neither by the client's wish
/// (compression is not response-shaping: backend connections stay uncompressed).
pub fn supported_capabilities() -> CapabilityFlags {
    use CapabilityFlags as C;
    C::CLIENT_LONG_PASSWORD
        | C::CLIENT_FOUND_ROWS
        | C::CLIENT_LONG_FLAG
        | C::CLIENT_CONNECT_WITH_DB
        | C::CLIENT_NO_SCHEMA
        | C::CLIENT_ODBC
        | C::CLIENT_LOCAL_FILES
        | C::CLIENT_IGNORE_SPACE
        | C::CLIENT_PROTOCOL_41
        | C::CLIENT_INTERACTIVE
        | C::CLIENT_IGNORE_SIGPIPE
        | C::CLIENT_TRANSACTIONS
        | C::CLIENT_RESERVED
        | C::CLIENT_SECURE_CONNECTION
        | C::CLIENT_MULTI_STATEMENTS
        | C::CLIENT_MULTI_RESULTS
        | C::CLIENT_PS_MULTI_RESULTS
        | C::CLIENT_PLUGIN_AUTH
        | C::CLIENT_CONNECT_ATTRS
        | C::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | C::CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
        | C::CLIENT_SESSION_TRACK
        | C::CLIENT_DEPRECATE_EOF
        | C::CLIENT_COMPRESS
        // Means something to client libraries only; servers offer it, so does Switchyard.
        | C::CLIENT_REMEMBER_OPTIONS
}

/// MariaDB's extended capabilities Switchyard relays: progress reports (passed through
/// before the answer), COM_STMT_BULK_EXECUTE, extended type info in column definitions (relayed
/// verbatim) and the metadata cache (kept in step across backends by
/// `frontend/metadata.rs`). Withheld: BULK_UNIT_RESULTS (MariaDB 11.5+), which no backend
/// here offers (see `docs/routing.md`, "Protocol capabilities").
pub fn supported_ext_capabilities() -> MariadbCapabilities {
    use MariadbCapabilities as M;
    M::MARIADB_CLIENT_PROGRESS
        | M::MARIADB_CLIENT_STMT_BULK_OPERATIONS
        | M::MARIADB_CLIENT_EXTENDED_METADATA
        | M::MARIADB_CLIENT_CACHE_METADATA
}

/// Capabilities that change what the server sends, so a backend connection must have
/// exactly the client's set of them for responses to be relayed verbatim.
pub fn response_shaping(caps: CapabilityFlags) -> CapabilityFlags {
    use CapabilityFlags as C;
    caps & (C::CLIENT_FOUND_ROWS
        | C::CLIENT_LONG_FLAG
        | C::CLIENT_NO_SCHEMA
        | C::CLIENT_ODBC
        | C::CLIENT_LOCAL_FILES
        | C::CLIENT_IGNORE_SPACE
        | C::CLIENT_INTERACTIVE
        | C::CLIENT_TRANSACTIONS
        | C::CLIENT_MULTI_STATEMENTS
        | C::CLIENT_MULTI_RESULTS
        | C::CLIENT_PS_MULTI_RESULTS
        | C::CLIENT_SESSION_TRACK
        | C::CLIENT_DEPRECATE_EOF)
}

/// Reads a server greeting.
pub fn parse_greeting(payload: &[u8]) -> std::io::Result<(ServerInfo, Vec<u8>, Option<String>)> {
    let hs: HandshakePacket<'_> = ParseBuf(payload).parse(())?;
    let info = ServerInfo {
        version: hs.server_version_ref().to_vec(),
        capabilities: hs.capabilities(),
        ext_capabilities: ext_if_mariadb(hs.capabilities(), hs.mariadb_ext_capabilities()),
        collation: hs.default_collation(),
        status: hs.status_flags().bits(),
        greetings: OnceLock::new(),
    };
    let plugin = hs.auth_plugin_name_str().map(|s| s.into_owned());
    Ok((info, hs.nonce(), plugin))
}

/// MariaDB's extended capability bytes mean something only when the sender leaves out
/// CLIENT_MYSQL (CLIENT_LONG_PASSWORD's bit); otherwise they are reserved.
fn ext_if_mariadb(caps: CapabilityFlags, ext: MariadbCapabilities) -> MariadbCapabilities {
    if caps.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
        MariadbCapabilities::empty()
    } else {
        ext
    }
}

/// The greeting Switchyard sends a client; `tls` offers the SSLRequest upgrade.
pub fn greeting(info: &ServerInfo, connection_id: u32, nonce: &[u8; 20], tls: bool) -> Vec<u8> {
    let templates = info
        .greetings
        .get_or_init(|| [Template::of(info, false), Template::of(info, true)]);
    match &templates[usize::from(tls)] {
        Some(t) => t.render(connection_id, nonce),
        None => serialize_greeting(info, connection_id, nonce, tls),
    }
}

/// A greeting with its connection id and nonce left to fill in: only they differ between
/// logins, and serializing the whole packet cost as much as the rest of the greeting.
#[derive(Debug, Clone)]
struct Template {
    bytes: Vec<u8>,
    id_at: usize,
    /// Where the nonce's first 8 bytes and its other 12 go.
    nonce_at: [usize; 2],
}

impl Template {
    /// Finds where the id and nonce sit by serializing twice with different ones: None,
    /// and every greeting serialized in full, unless exactly those bytes differ.
    fn of(info: &ServerInfo, tls: bool) -> Option<Template> {
        let a = serialize_greeting(info, 0x1111_1111, &[b'a'; 20], tls);
        let b = serialize_greeting(info, 0x2222_2222, &[b'b'; 20], tls);
        let id_at = 1 + info.version.len() + 1;
        // The 8 bytes after the id; then a filler, capabilities (2), collation, status
        // (2), capabilities (2), the nonce's length, 6 reserved bytes and MariaDB's 4.
        let nonce_at = [id_at + 4, id_at + 4 + 8 + 19];
        let varying = |i: usize| {
            (id_at..id_at + 4).contains(&i)
                || (nonce_at[0]..nonce_at[0] + 8).contains(&i)
                || (nonce_at[1]..nonce_at[1] + 12).contains(&i)
        };
        let found = a.len() == b.len()
            && a.len() > nonce_at[1] + 12
            && (0..a.len()).all(|i| (a[i] != b[i]) == varying(i));
        found.then_some(Template {
            bytes: a,
            id_at,
            nonce_at,
        })
    }

    fn render(&self, connection_id: u32, nonce: &[u8; 20]) -> Vec<u8> {
        let mut out = self.bytes.clone();
        out[self.id_at..self.id_at + 4].copy_from_slice(&connection_id.to_le_bytes());
        let [first, second] = self.nonce_at;
        out[first..first + 8].copy_from_slice(&nonce[..8]);
        out[second..second + 12].copy_from_slice(&nonce[8..]);
        out
    }
}

fn serialize_greeting(
    info: &ServerInfo,
    connection_id: u32,
    nonce: &[u8; 20],
    tls: bool,
) -> Vec<u8> {
    let mut caps = info.capabilities & supported_capabilities();
    if tls {
        caps |= CapabilityFlags::CLIENT_SSL;
    }
    let mut scramble_1 = [0u8; 8];
    scramble_1.copy_from_slice(&nonce[..8]);
    // The second part is NUL-terminated on the wire.
    let mut scramble_2 = nonce[8..].to_vec();
    scramble_2.push(0);
    let pkt = HandshakePacket::new(
        10,
        info.version.as_slice(),
        connection_id,
        scramble_1,
        Some(scramble_2),
        caps,
        info.collation,
        // Only what describes a fresh session: no transaction or statement state.
        StatusFlags::from_bits_truncate(
            info.status & (super::packets::STATUS_AUTOCOMMIT | super::packets::STATUS_SQL_MODES),
        ),
        Some(NATIVE_PASSWORD.as_bytes()),
    )
    .with_mariadb_ext_capabilities(info.ext_capabilities & supported_ext_capabilities());
    let mut out = Vec::with_capacity(96);
    pkt.serialize(&mut out);
    out
}

/// A client's handshake response, decoded.
#[derive(Debug, Clone)]
pub struct ClientHello {
    pub capabilities: CapabilityFlags,
    pub ext_capabilities: MariadbCapabilities,
    pub max_packet: u32,
    pub collation: u8,
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
}

/// True for the short SSLRequest packet a client sends before a TLS upgrade.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && CapabilityFlags::from_bits_truncate(u32::from_le_bytes([
            payload[0], payload[1], payload[2], payload[3],
        ]))
        .contains(CapabilityFlags::CLIENT_SSL)
}

pub fn parse_client_hello(payload: &[u8]) -> std::io::Result<ClientHello> {
    let hr: HandshakeResponse<'_> = ParseBuf(payload).parse(())?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(ClientHello {
        capabilities: hr.capabilities(),
        ext_capabilities: ext_if_mariadb(hr.capabilities(), hr.mariadb_ext_capabilities()),
        max_packet: u32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]),
        collation: hr.collation(),
        user: text(hr.user()),
        auth_response: hr.scramble_buf().to_vec(),
        database: hr.db_name().filter(|d| !d.is_empty()).map(text),
        auth_plugin: hr
            .auth_plugin()
            .map(|p| text(p.as_bytes()))
            .filter(|p| !p.is_empty()),
    })
}

/// The SSLRequest Switchyard sends a backend before the TLS handshake: the first 32 bytes of
/// a handshake response. A MariaDB server takes the extended capabilities from it, so they
/// must be there already (and CLIENT_MYSQL left out, as in the response itself).
pub fn ssl_request(
    (mut capabilities, ext): (CapabilityFlags, MariadbCapabilities),
    collation: u8,
) -> Vec<u8> {
    if !ext.is_empty() {
        capabilities.remove(CapabilityFlags::CLIENT_LONG_PASSWORD);
    }
    let mut out = Vec::with_capacity(32);
    SslRequest::new(capabilities, BACKEND_MAX_PACKET, collation)
        .with_mariadb_capabilities(ext)
        .serialize(&mut out);
    out
}

/// Switchyard's handshake response to a backend.
pub fn backend_hello(
    user: &str,
    auth_response: &[u8],
    database: Option<&str>,
    capabilities: CapabilityFlags,
    collation: u8,
    plugin: &str,
) -> Vec<u8> {
    let ext = MariadbCapabilities::empty();
    backend_hello_ext(
        user,
        auth_response,
        database,
        (capabilities, ext),
        collation,
        plugin,
    )
}

/// [`backend_hello`] asking a MariaDB server for extended capabilities too; the server
/// reads them only from a client that leaves out CLIENT_MYSQL.
pub fn backend_hello_ext(
    user: &str,
    auth_response: &[u8],
    database: Option<&str>,
    (mut capabilities, ext): (CapabilityFlags, MariadbCapabilities),
    collation: u8,
    plugin: &str,
) -> Vec<u8> {
    if !ext.is_empty() {
        capabilities.remove(CapabilityFlags::CLIENT_LONG_PASSWORD);
    }
    let hr = HandshakeResponse::new(
        Some(auth_response),
        (10, 11, 0),
        Some(user.as_bytes()),
        database.map(str::as_bytes),
        Some(AuthPlugin::from_bytes(plugin.as_bytes())),
        capabilities,
        None,
        BACKEND_MAX_PACKET,
    )
    .with_mariadb_ext_capabilities(ext);
    let mut out = Vec::with_capacity(128);
    hr.serialize(&mut out);
    // mysql_common picks the collation from the server version; the client's own must win
    // so that the backend session has the character set the client asked for.
    out[8] = collation;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greeting_from_its_template_is_the_serialized_one() {
        let mysql = ServerInfo {
            version: b"8.0.36".to_vec(),
            capabilities: supported_capabilities(),
            ext_capabilities: MariadbCapabilities::empty(),
            collation: 255,
            status: 0x0202,
            greetings: OnceLock::new(),
        };
        for info in [ServerInfo::default(), mysql] {
            for tls in [false, true] {
                assert!(Template::of(&info, tls).is_some(), "{info:?}");
                for (id, c) in [(0, b'!'), (7, b'x'), (u32::MAX, b'~')] {
                    let mut nonce = [c; 20];
                    nonce[19] = b'z';
                    assert_eq!(
                        greeting(&info, id, &nonce, tls),
                        serialize_greeting(&info, id, &nonce, tls)
                    );
                }
            }
        }
    }

    #[test]
    fn greeting_roundtrips() {
        let nonce = *b"abcdefghijklmnopqrst";
        let p = greeting(&ServerInfo::default(), 7, &nonce, true);
        let (info, n, plugin) = parse_greeting(&p).unwrap();
        assert_eq!(n, nonce.to_vec());
        assert_eq!(plugin.as_deref(), Some(NATIVE_PASSWORD));
        assert_eq!(info.version, ServerInfo::default().version);
        assert!(info.capabilities.contains(CapabilityFlags::CLIENT_SSL));
        assert_eq!(info.status, 0x0002);
        // A server whose global sql_mode has NO_BACKSLASH_ESCAPES and ANSI_QUOTES says so
        // in its greeting; Switchyard's greeting made of it says so too.
        let modes = ServerInfo {
            status: 0x8202,
            ..ServerInfo::default()
        };
        let (again, _, _) = parse_greeting(&greeting(&modes, 7, &nonce, false)).unwrap();
        assert_eq!(again.status, 0x8202);
    }

    #[test]
    fn ssl_request_is_the_32_byte_prefix_servers_expect() {
        let caps = supported_capabilities() | CapabilityFlags::CLIENT_SSL;
        let p = ssl_request((caps, MariadbCapabilities::empty()), 224);
        assert_eq!(p.len(), 32);
        assert!(is_ssl_request(&p));
        assert_eq!(&p[..4], &caps.bits().to_le_bytes());
        assert_eq!(&p[4..8], &BACKEND_MAX_PACKET.to_le_bytes());
        assert_eq!(p[8], 224);
        let ext = supported_ext_capabilities();
        let p = ssl_request((caps, ext), 224);
        assert_eq!(
            &p[28..32],
            &ext.bits().to_le_bytes(),
            "extended capabilities"
        );
        assert_eq!(p[0] & 1, 0, "CLIENT_MYSQL left out");
    }

    #[test]
    fn hello_roundtrips_with_collation() {
        let caps = supported_capabilities();
        let p = backend_hello(
            "acme_app",
            &[1; 20],
            Some("wf_acme"),
            caps,
            224,
            NATIVE_PASSWORD,
        );
        let h = parse_client_hello(&p).unwrap();
        assert_eq!(h.user, "acme_app");
        assert_eq!(h.database.as_deref(), Some("wf_acme"));
        assert_eq!(h.collation, 224);
        assert_eq!(h.auth_response, vec![1; 20]);
        assert_eq!(h.auth_plugin.as_deref(), Some(NATIVE_PASSWORD));
    }

    #[test]
    fn garbage_hello_is_an_error_not_a_panic() {
        for n in 0..40 {
            let _ = parse_client_hello(&vec![0xAB; n]);
            let _ = parse_greeting(&vec![0x0A; n]);
        }
    }
}
