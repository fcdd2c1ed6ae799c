//! One connection to a backend server: login as a client, run commands, and remember the
//! session state replayed on it (schema, SET statements, prepared statements).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::auth::{self as login_auth, Credentials, Exchange, Step};
use super::error::BackendError;
use super::lease::{Restore, Slot};
use super::pool::PoolKey;
use super::relay;
use super::stmt_cache::StmtCache;
use crate::protocol::handshake::{self, ServerInfo};
use crate::protocol::packets::{self, ERR_HEADER};
use crate::protocol::scan::{Expect, Outcome, Scanner};
use crate::protocol::{CapabilityFlags, MariadbCapabilities, PacketStream};

/// Largest packet accepted from a backend while reading whole packets (handshake only;
/// results are streamed).
const MAX_BACKEND_PACKET: usize = 1 << 30;

/// One backend connection. Boxed: a connection moves at every lease (out of the pool, into
/// the session, back), and a box moves as one pointer where the connection itself is some
/// 600 bytes (callgrind: a tenth of a connect-per-request client's instructions in the
/// session task were such copies).
pub struct BackendConn(Box<Conn>);

impl std::ops::Deref for BackendConn {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.0
    }
}

impl std::ops::DerefMut for BackendConn {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.0
    }
}

/// What a [`BackendConn`] holds.
pub struct Conn {
    pub io: PacketStream,
    pub key: PoolKey,
    pub info: ServerInfo,
    pub connection_id: u32,
    /// What logged this connection in; a KILL QUERY logs in beside it with the same.
    pub creds: Arc<Credentials>,
    /// Schema this connection is in (as far as Switchyard knows).
    pub schema: Option<Arc<str>>,
    /// The session state (SET statements) this connection is in.
    pub applied: Applied,
    /// COM_SET_OPTION value applied here.
    pub set_option: Option<u16>,
    /// Statements prepared here, shared by the sessions that lease the connection.
    pub stmts: StmtCache,
    /// MARIADB_CLIENT_CACHE_METADATA was agreed at login: result sets carry the "metadata
    /// follows" byte and may leave out their column definitions.
    pub cache_metadata: bool,
    /// What LAST_INSERT_ID() answers here, as far as the OK packets tell.
    pub last_insert_id: u64,
    /// The session whose statement ran here last (0: none, or Switchyard's own command
    /// since): SHOW WARNINGS, ROW_COUNT() and FOUND_ROWS() answer about that statement.
    pub answer_of: u32,
    /// Which sessions wrote here since the last reset: a write can move a sequence without
    /// naming it (a column's `DEFAULT NEXTVAL(s)`, a trigger), and LASTVAL then answers that
    /// session's value on this connection.
    pub writers: Writers,
    /// Its place under the (tenant, server) cap on open connections.
    pub slot: Option<Slot>,
    /// What this server served for the session's tenant (set when a session takes it).
    pub served: Arc<crate::state::stats::Served>,
    /// When it was opened or last came back to the pool (its idle time there starts here):
    /// one a session has held longer than [`CHECK_IDLE_AFTER`] since is checked before
    /// each use.
    pub last_used: Instant,
    /// The worker (`state::per_worker` slot) whose runtime the socket is registered with:
    /// its readiness is always delivered there, so it idles in that worker's pool.
    pub home: usize,
    /// The greeting's nonce and plugin: COM_CHANGE_USER answers them.
    pub greeting: Greeting,
    /// Logged in again as another user since its last restore, which reports it.
    pub changed_user: bool,
    /// Taken over from another tenant since its last restore: what COM_RESET_CONNECTION
    /// and COM_CHANGE_USER leave behind (FOUND_ROWS(), that tenant's last row count) is
    /// cleared before this tenant's session runs anything on it.
    pub from_other_tenant: bool,
    /// Holds what the server keeps through COM_RESET_CONNECTION and no other session may
    /// have: the statements a SET of `profiling` made it profile (their text, in SHOW
    /// PROFILES), the role a SET ROLE made current, a KILL given up on that the server may
    /// still carry out. Closed when its session lets it go.
    pub outlives_reset: bool,
    /// May hold what its session no longer follows (a named lock a release did not free):
    /// marked foreign when the session lets it go, so the next lease resets it.
    pub reset_before_reuse: bool,
    /// [`BackendConn::identity`], made once per login rather than per statement.
    identity: Option<Arc<Identity>>,
}

/// The sessions that wrote on a connection since it was last reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Writers {
    #[default]
    None,
    One(u32),
    Several,
}

impl Writers {
    /// `session` wrote.
    pub fn with(self, session: u32) -> Writers {
        match self {
            Writers::None => Writers::One(session),
            Writers::One(s) if s == session => self,
            _ => Writers::Several,
        }
    }

    /// Whether a session other than `session` wrote.
    pub fn other_than(self, session: u32) -> bool {
        match self {
            Writers::None => false,
            Writers::One(s) => s != session,
            Writers::Several => true,
        }
    }
}

/// Who a connection is on its server: what a KILL QUERY needs to log in beside it and name
/// its thread.
pub struct Identity {
    pub key: PoolKey,
    pub creds: Arc<Credentials>,
    /// The backend's own id of that connection (from its greeting).
    pub thread_id: u32,
}

impl Identity {
    /// The same connection: its thread id on the same server.
    pub fn same_connection(&self, other: &Identity) -> bool {
        self.thread_id == other.thread_id && self.key.addr == other.key.addr
    }
}

/// What a server's greeting asks a login to answer.
#[derive(Debug, Clone, Default)]
pub struct Greeting {
    pub nonce: Vec<u8>,
    pub plugin: Option<String>,
}

/// The session state a connection is in: whose SET statements, up to which one, and
/// their fingerprint (0: none, as after a login or COM_RESET_CONNECTION).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The session (and its generation of state) whose SETs these are.
    pub owner: u64,
    /// The owner's last SET applied here.
    pub seq: u64,
    pub fp: u64,
}

impl Applied {
    /// Left by another tenant's session: never matches a session's fingerprint (those are
    /// odd, or 0), so it is reset before use.
    pub const FOREIGN: Applied = Applied {
        owner: u64::MAX,
        seq: 0,
        fp: 2,
    };
}

/// Whether the server keeps the previous statement's warnings and counts through the
/// command: a prepare (a driver prepares SHOW WARNINGS after the statement it asks about),
/// a ping, a field list, statistics.
fn leaves_answer(command: Option<u8>) -> bool {
    use crate::protocol::command::{COM_FIELD_LIST, COM_PING, COM_STATISTICS, COM_STMT_PREPARE};
    matches!(
        command,
        Some(COM_STMT_PREPARE | COM_PING | COM_FIELD_LIST | COM_STATISTICS)
    )
}

/// How long a held connection may sit idle before Switchyard checks that the server has not
/// closed it (its `wait_timeout`, a KILL, a restart) before sending it a statement.
pub const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// COM_QUIT, the first packet of a command (sequence id 0).
const COM_QUIT_PACKET: [u8; 5] = [1, 0, 0, 0, crate::protocol::command::COM_QUIT];

impl BackendConn {
    /// Closes a connection at rest (no command under way, nothing unread) as a client done
    /// with it: COM_QUIT first. Dropped without it, every pooled connection Switchyard
    /// closes (idle too long, over a lowered cap, at shutdown) cost the server an "Aborted
    /// connection" warning in its error log and a count in `Aborted_clients`, which
    /// operators watch for network and application faults.
    pub fn quit(mut self) {
        if self.io.rbuf.is_empty() {
            self.io.send_before_close(&COM_QUIT_PACKET);
        }
    }

    /// Connects and logs in with the capabilities the client negotiated; over TLS when
    /// `tls` is given (a connector trusting the tenant's CA).
    pub async fn connect(
        key: PoolKey,
        creds: &Credentials,
        database: Option<&str>,
        timeout: Duration,
        tls: Option<&TlsConnector>,
    ) -> Result<BackendConn, BackendError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&*key.addr))
            .await
            .map_err(|_| BackendError::ConnectTimeout)?
            .map_err(BackendError::Connect)?;
        keep_alive(&stream);
        let mut io = PacketStream::new(stream, MAX_BACKEND_PACKET);
        let login = tokio::time::timeout(timeout, login(&mut io, &key, creds, database, tls));
        let (info, connection_id, greeting) =
            match login.await.map_err(|_| BackendError::ConnectTimeout)? {
                Ok(l) => l,
                // Closed or reset before the login finished: the server is going away (a
                // shutdown, a crash), so it counts as unreachable; a session's login can
                // then fall back to a replica, as when the connect itself is refused.
                Err(BackendError::Io(e)) => return Err(BackendError::Connect(e)),
                Err(e) => return Err(e),
            };
        let cache_metadata = (key.ext_capabilities & info.ext_capabilities)
            .contains(MariadbCapabilities::MARIADB_CLIENT_CACHE_METADATA);
        Ok(BackendConn(Box::new(Conn {
            io,
            key,
            info,
            connection_id,
            creds: Arc::new(creds.clone()),
            schema: database.map(Into::into),
            applied: Applied::default(),
            set_option: None,
            stmts: StmtCache::default(),
            cache_metadata,
            last_insert_id: 0,
            answer_of: 0,
            writers: Writers::None,
            slot: None,
            served: Arc::default(),
            last_used: Instant::now(),
            home: crate::state::per_worker::current_slot(),
            identity: None,
            greeting,
            changed_user: false,
            from_other_tenant: false,
            outlives_reset: false,
            reset_before_reuse: false,
        })))
    }

    /// Whether this is a connection to `addr`: not, once the primary moved (a promotion).
    pub fn serves(&self, addr: &str) -> bool {
        &*self.key.addr == addr
    }

    /// Counts how this connection was brought to a session's state, for SHOW POOLS.
    pub fn count_restore(&self, kind: Restore) {
        if let Some(slot) = &self.slot {
            slot.group().restored(kind);
        }
    }

    /// False when the server has closed the connection since. A peek, no round trip, and
    /// only once it has been out of the pool for [`CHECK_IDLE_AFTER`] (a session holding it
    /// stamps no clock per statement).
    pub fn survived_idle(&self) -> bool {
        self.last_used.elapsed() < CHECK_IDLE_AFTER || self.io.is_open()
    }

    /// This connection's identity, shared: cloning its key per statement would write the
    /// reference counts of strings every connection to the server shares. Made again
    /// after COM_CHANGE_USER (new credentials).
    #[inline]
    pub fn identity(&mut self) -> &Arc<Identity> {
        // The fields themselves, so that they borrow apart.
        let conn: &mut Conn = &mut self.0;
        let current = (conn.identity.as_ref()).is_some_and(|i| {
            Arc::ptr_eq(&i.creds, &conn.creds) && i.thread_id == conn.connection_id
        });
        if !current {
            conn.identity = None;
        }
        let (key, creds, thread_id) = (&conn.key, &conn.creds, conn.connection_id);
        conn.identity.get_or_insert_with(|| {
            Arc::new(Identity {
                key: key.clone(),
                creds: Arc::clone(creds),
                thread_id,
            })
        })
    }

    /// Whether the response to the next command will use OK packets instead of EOF.
    pub fn deprecate_eof(&self) -> bool {
        self.key
            .capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// A scanner for the answer to the next command on this connection.
    pub fn scanner(&self, expect: Expect) -> Scanner {
        let mut s = Scanner::new(expect, self.deprecate_eof());
        s.metadata_flag = self.cache_metadata;
        s
    }

    /// The server reset this connection's session (COM_RESET_CONNECTION, COM_CHANGE_USER):
    /// no replayed SETs, prepared statements, insert id, previous answer or writers' state
    /// are left on it. The schema is the caller's to set.
    pub fn session_was_reset(&mut self) {
        self.applied = Applied::default();
        self.stmts.clear();
        self.last_insert_id = 0;
        self.answer_of = 0;
        self.writers = Writers::None;
        self.reset_before_reuse = false;
    }

    /// Runs a command whose answer only Switchyard reads (state replay, silent prepare).
    pub async fn exec_silent(
        &mut self,
        payload: &[u8],
        expect: Expect,
    ) -> Result<Outcome, BackendError> {
        self.send_own(payload).await?;
        let mut scanner = self.scanner(expect);
        relay::relay_response(&mut self.io, None, &mut scanner)
            .await
            .map_err(|e| e.into_backend())?;
        Ok(scanner.outcome)
    }

    /// Runs a query Switchyard needs the answer of and returns its first value (text
    /// protocol): `Ok(None)` when the answer has no row or the value is NULL.
    pub async fn query_scalar(&mut self, sql: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let mut p = Vec::with_capacity(sql.len() + 1);
        p.push(crate::protocol::command::COM_QUERY);
        p.extend_from_slice(sql.as_bytes());
        self.send_own(&p).await?;
        let mut scanner = self.scanner(Expect::ResultSets);
        let raw = relay::collect_response(&mut self.io, &mut scanner).await?;
        if let Some(e) = scanner.outcome.err {
            return Err(BackendError::Server(*e));
        }
        Ok(packets::first_text_value(&raw, self.deprecate_eof()).flatten())
    }

    /// Sends a command of Switchyard's own whose answer it reads: the connection no longer
    /// answers about a session's statement unless the server keeps that through it.
    async fn send_own(&mut self, payload: &[u8]) -> Result<(), BackendError> {
        if !leaves_answer(payload.first().copied()) {
            self.answer_of = 0;
        }
        self.io.send(0, payload).await?;
        Ok(())
    }

    /// Sends a command that gets no answer (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA).
    pub async fn send_no_reply(&mut self, payload: &[u8]) -> Result<(), BackendError> {
        self.io.send(0, payload).await?;
        Ok(())
    }
}

async fn login(
    io: &mut PacketStream,
    key: &PoolKey,
    creds: &Credentials,
    database: Option<&str>,
    tls: Option<&TlsConnector>,
) -> Result<(ServerInfo, u32, Greeting), BackendError> {
    let greeting = io.read_packet().await?;
    if greeting.payload.first() == Some(&ERR_HEADER) {
        return Err(login_auth::refusal(&greeting.payload));
    }
    let (info, nonce, plugin) = handshake::parse_greeting(&greeting.payload)
        .map_err(|e| BackendError::Greeting(e.to_string()))?;
    let connection_id = connection_id(&greeting.payload);
    let mut caps = backend_capabilities(key.capabilities, info.capabilities, database.is_some());
    // Only what the server offers: a MySQL server (or a MariaDB one behind another proxy)
    // may offer less than the client was promised by another backend's greeting.
    let ext = key.ext_capabilities & info.ext_capabilities;
    let mut seq = greeting.seq.wrapping_add(1);
    if let Some(tls) = tls {
        seq = start_tls(io, &key.addr, &info, (caps, ext), key.collation, seq, tls).await?;
        caps |= CapabilityFlags::CLIENT_SSL;
    }
    let (mut exchange, first_plugin, answer) = Exchange::start(
        &creds.user,
        &creds.proof,
        io.is_tls(),
        plugin.as_deref(),
        &nonce,
    )?;
    let hello = handshake::backend_hello_ext(
        &creds.user,
        &answer,
        database,
        (caps, ext),
        key.collation,
        first_plugin,
    );
    io.send(seq, &hello).await?;
    loop {
        let reply = io.read_packet().await?;
        match exchange.on_packet(&reply.payload)? {
            Step::Done => return Ok((info, connection_id, Greeting { nonce, plugin })),
            Step::Read => {}
            Step::Send(answer) => {
                io.send(reply.seq.wrapping_add(1), &answer).await?;
            }
        }
    }
}

/// SSLRequest and the TLS handshake; returns the seq of the login packet that follows.
async fn start_tls(
    io: &mut PacketStream,
    addr: &str,
    info: &ServerInfo,
    (caps, ext): (CapabilityFlags, MariadbCapabilities),
    collation: u8,
    seq: u8,
    tls: &TlsConnector,
) -> Result<u8, BackendError> {
    if !info.capabilities.contains(CapabilityFlags::CLIENT_SSL) {
        return Err(BackendError::Tls(
            "backend_tls is configured but the server does not offer TLS".into(),
        ));
    }
    let request = handshake::ssl_request((caps | CapabilityFlags::CLIENT_SSL, ext), collation);
    let seq = io.send(seq, &request).await?;
    let name = server_name(addr)?;
    io.connect_tls(tls, name)
        .await
        .map_err(|e| BackendError::Tls(e.to_string()))?;
    Ok(seq)
}

/// The name the server's certificate must carry: the host part of `addr` (an IP address
/// or a DNS name).
fn server_name(addr: &str) -> Result<rustls::pki_types::ServerName<'static>, BackendError> {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| BackendError::Tls(format!("'{host}' is not a usable server name: {e}")))
}

/// The capabilities Switchyard asks a backend for: exactly the client's response-shaping
/// ones, plus what the login itself needs.
fn backend_capabilities(
    client: CapabilityFlags,
    server: CapabilityFlags,
    with_db: bool,
) -> CapabilityFlags {
    use CapabilityFlags as C;
    let mut caps = handshake::response_shaping(client)
        | C::CLIENT_LONG_PASSWORD
        | C::CLIENT_PROTOCOL_41
        | C::CLIENT_SECURE_CONNECTION
        | C::CLIENT_PLUGIN_AUTH
        | C::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
    if with_db {
        caps |= C::CLIENT_CONNECT_WITH_DB;
    }
    caps & (server | C::CLIENT_CONNECT_WITH_DB)
}

fn connection_id(greeting: &[u8]) -> u32 {
    let start = 1 + greeting.iter().skip(1).position(|&b| b == 0).unwrap_or(0) + 1;
    greeting
        .get(start..start + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

/// A server that vanishes without closing its connections (a host lost, a partition) would
/// leave a session waiting for an answer for ever, and a pooled connection looking open:
/// TCP keepalive probes a connection quiet for a minute, every 10 s, and the kernel ends it
/// after the probes go unanswered (the session gets a lost-connection error, the pool drops
/// it). Keepalive sends no probe while sent bytes wait for their acknowledgement (a
/// statement sent to a host already gone): the user timeout ends such a connection too,
/// rather than after the kernel's 15 minutes of retransmissions. A live server's kernel
/// answers probes and acknowledges at once, so a long statement is not cut short.
fn keep_alive(stream: &TcpStream) {
    const DEAD_AFTER: Duration = Duration::from_secs(150);
    let probes = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10));
    let sock = socket2::SockRef::from(stream);
    let set = sock
        .set_tcp_keepalive(&probes)
        .and_then(|()| sock.set_tcp_user_timeout(Some(DEAD_AFTER)));
    if let Err(e) = set {
        tracing::debug!(error = %e, "TCP keepalive not set on a server connection");
    }
}

/// Greeting of a server, read and dropped: the version and capabilities clients are shown.
pub async fn probe_server_info(addr: &str, timeout: Duration) -> Option<Arc<ServerInfo>> {
    let fut = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        let mut io = PacketStream::new(stream, 1 << 16);
        let greeting = io.read_packet().await.ok()?;
        handshake::parse_greeting(&greeting.payload)
            .ok()
            .map(|(info, _, _)| Arc::new(info))
    };
    tokio::time::timeout(timeout, fut).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_addresses() {
        use rustls::pki_types::ServerName;
        assert!(matches!(
            server_name("127.0.0.1:3307").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:3307").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("db-1.internal:3306").unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn capabilities_follow_the_client() {
        use CapabilityFlags as C;
        let server = handshake::supported_capabilities();
        let with = backend_capabilities(C::CLIENT_DEPRECATE_EOF, server, false);
        let without = backend_capabilities(C::empty(), server, true);
        assert!(with.contains(C::CLIENT_DEPRECATE_EOF));
        assert!(!without.contains(C::CLIENT_DEPRECATE_EOF));
        assert!(without.contains(C::CLIENT_CONNECT_WITH_DB));
    }
}
