//! A raw MySQL protocol client that keeps every byte of every answer, to compare what
//! Switchyard relays with what the server sends directly.

use bytes::Buf;
use switchyard::protocol::handshake::{backend_hello_ext, parse_greeting, ServerInfo};
use switchyard::protocol::scan::{Event, Expect, Scanner};
use switchyard::protocol::{auth, CapabilityFlags, MariadbCapabilities, PacketStream};
use tokio::net::TcpStream;

pub struct RawClient {
    pub io: PacketStream,
    pub caps: CapabilityFlags,
    pub ext: MariadbCapabilities,
    pub server: ServerInfo,
    /// The greeting's connection id (through Switchyard: the session id KILL takes).
    pub connection_id: u32,
}

/// Capabilities of a typical modern client; tests remove some to cover older clients.
pub fn modern_caps() -> CapabilityFlags {
    use CapabilityFlags as C;
    C::CLIENT_LONG_PASSWORD
        | C::CLIENT_FOUND_ROWS
        | C::CLIENT_LONG_FLAG
        | C::CLIENT_PROTOCOL_41
        | C::CLIENT_TRANSACTIONS
        | C::CLIENT_SECURE_CONNECTION
        | C::CLIENT_MULTI_STATEMENTS
        | C::CLIENT_MULTI_RESULTS
        | C::CLIENT_PS_MULTI_RESULTS
        | C::CLIENT_PLUGIN_AUTH
        | C::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | C::CLIENT_SESSION_TRACK
        | C::CLIENT_DEPRECATE_EOF
}

impl RawClient {
    /// Logs in; returns the client and the raw bytes of the server's final login reply.
    pub async fn connect(
        port: u16,
        user: &str,
        password: &str,
        db: Option<&str>,
        caps: CapabilityFlags,
    ) -> (RawClient, Vec<u8>) {
        let ext = MariadbCapabilities::empty();
        Self::connect_ext(port, user, password, db, (caps, ext)).await
    }

    /// [`RawClient::connect`] asking for MariaDB extended capabilities too; with
    /// CLIENT_COMPRESS the connection is compressed after the login.
    pub async fn connect_ext(
        port: u16,
        user: &str,
        password: &str,
        db: Option<&str>,
        (caps, ext): (CapabilityFlags, MariadbCapabilities),
    ) -> (RawClient, Vec<u8>) {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        Self::login(stream, user, password, db, (caps, ext)).await
    }

    /// [`RawClient::connect_ext`] over a connection already made (one that began with a
    /// PROXY protocol header, say).
    pub async fn login(
        stream: TcpStream,
        user: &str,
        password: &str,
        db: Option<&str>,
        caps: (CapabilityFlags, MariadbCapabilities),
    ) -> (RawClient, Vec<u8>) {
        Self::login_in(stream, user, password, db, caps, 45).await
    }

    /// [`RawClient::connect`] in the character set of `collation` (see
    /// [`RawClient::login_in`]).
    pub async fn connect_in(
        port: u16,
        user: &str,
        password: &str,
        db: Option<&str>,
        caps: CapabilityFlags,
        collation: u8,
    ) -> (RawClient, Vec<u8>) {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let ext = MariadbCapabilities::empty();
        Self::login_in(stream, user, password, db, (caps, ext), collation).await
    }

    /// [`RawClient::login`] in the character set of `collation` (utf8mb4_general_ci, 45, is
    /// the servers' default).
    pub async fn login_in(
        stream: TcpStream,
        user: &str,
        password: &str,
        db: Option<&str>,
        (caps, ext): (CapabilityFlags, MariadbCapabilities),
        collation: u8,
    ) -> (RawClient, Vec<u8>) {
        let mut io = PacketStream::new(stream, 1 << 30);
        let greeting = io.read_packet().await.unwrap();
        let (server, nonce, _) = parse_greeting(&greeting.payload).unwrap();
        // After the protocol version byte and the NUL-terminated server version.
        let at = 1 + greeting.payload[1..].iter().position(|b| *b == 0).unwrap() + 1;
        let connection_id = u32::from_le_bytes(greeting.payload[at..at + 4].try_into().unwrap());
        let caps = caps & server.capabilities;
        let ext = ext & server.ext_capabilities;
        let answer = auth::native_response(&nonce, password);
        let hello = backend_hello_ext(
            user,
            &answer,
            db,
            (caps, ext),
            collation,
            "mysql_native_password",
        );
        io.send(1, &hello).await.unwrap();
        let reply = io.read_packet().await.unwrap();
        if caps.contains(CapabilityFlags::CLIENT_COMPRESS) && reply.payload.first() == Some(&0) {
            io.start_compression();
        }
        let len = (reply.payload.len() as u32).to_le_bytes();
        let mut raw = vec![len[0], len[1], len[2], reply.seq];
        raw.extend_from_slice(&reply.payload);
        (
            RawClient {
                io,
                caps,
                ext,
                server,
                connection_id,
            },
            raw,
        )
    }

    /// Sends one command and returns every byte of the answer, headers included.
    pub async fn command(&mut self, payload: &[u8], expect: Expect) -> Vec<u8> {
        self.io.send(0, payload).await.unwrap();
        self.answer(expect).await
    }

    /// Sends a command the server answers nothing to (COM_STMT_CLOSE).
    pub async fn send(&mut self, payload: &[u8]) {
        self.io.send(0, payload).await.unwrap();
    }

    /// Reads one command's answer.
    async fn answer(&mut self, expect: Expect) -> Vec<u8> {
        let deprecate = self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
        let mut scanner = Scanner::new(expect, deprecate);
        scanner.metadata_flag = self
            .ext
            .contains(MariadbCapabilities::MARIADB_CLIENT_CACHE_METADATA);
        let mut out = Vec::new();
        loop {
            let (n, ev) = scanner.scan(&mut self.io.rbuf[..]).unwrap();
            out.extend_from_slice(&self.io.rbuf[..n]);
            self.io.rbuf.advance(n);
            match ev {
                Event::Done => return out,
                Event::LocalInfile => panic!("unexpected LOCAL INFILE"),
                Event::NeedMore => {
                    assert!(
                        self.io.fill().await.unwrap() > 0,
                        "server closed mid-answer"
                    );
                }
            }
        }
    }

    /// Sends several commands in one write (as pipelining clients do) and returns each
    /// answer's bytes, in order.
    pub async fn pipeline(&mut self, payloads: &[&[u8]], expect: Expect) -> Vec<Vec<u8>> {
        for p in payloads {
            self.io.queue(0, p);
        }
        self.io.flush().await.unwrap();
        let mut answers = Vec::new();
        for _ in payloads {
            answers.push(self.answer(expect).await);
        }
        answers
    }

    /// Sends several commands in one write and reads nothing.
    pub async fn send_pipelined(&mut self, payloads: &[&[u8]]) {
        for p in payloads {
            self.io.queue(0, p);
        }
        self.io.flush().await.unwrap();
    }

    /// Reads the next command's answer (after [`send_pipelined`](Self::send_pipelined)).
    pub async fn next_answer(&mut self, expect: Expect) -> Vec<u8> {
        self.answer(expect).await
    }

    /// Whether the peer ends the connection (within 5 s) without sending anything more.
    pub async fn ends(&mut self) -> bool {
        let end = tokio::time::timeout(std::time::Duration::from_secs(5), self.io.fill());
        matches!(end.await, Ok(Ok(0) | Err(_)))
    }

    /// Sends COM_QUIT and then reads how the connection ends: Ok(0) for an orderly close
    /// (the server's FIN), an error of kind ConnectionReset for a reset. With `close`, the
    /// FIN goes in the same TCP segment as the packet (corked, the FIN tacked onto it), so
    /// the server sees both at once, as from a client that closes right after it quits.
    pub async fn quit(mut self, close: bool) -> std::io::Result<usize> {
        fn socket(io: &PacketStream) -> socket2::SockRef<'_> {
            socket2::SockRef::from(io.tcp().unwrap())
        }
        if close {
            socket(&self.io).set_tcp_cork(true).unwrap();
        }
        self.io.send(0, &[0x01]).await.unwrap();
        if close {
            socket(&self.io)
                .shutdown(std::net::Shutdown::Write)
                .unwrap();
        }
        let end = tokio::time::timeout(std::time::Duration::from_secs(5), self.io.fill());
        end.await.expect("the connection ends within 5 s")
    }

    /// COM_CHANGE_USER to `user` with `password` (and its answer to an auth switch), in
    /// `collation`; returns each packet of the answer (an auth switch's nonce zeroed) and how
    /// long the final one took.
    pub async fn change_user(
        &mut self,
        (user, password, db): (&str, &str, &str),
        collation: u8,
    ) -> (Vec<(u8, Vec<u8>)>, std::time::Duration) {
        let mut p = vec![0x11];
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        // Over no nonce the server checks: it asks again over a fresh one.
        let stale = auth::native_response(&[0; 20], password);
        p.push(stale.len() as u8);
        p.extend_from_slice(&stale);
        p.extend_from_slice(db.as_bytes());
        p.push(0);
        p.extend_from_slice(&[collation, 0]);
        p.extend_from_slice(b"mysql_native_password\0");
        let started = std::time::Instant::now();
        self.io.send(0, &p).await.unwrap();
        let mut answer = Vec::new();
        loop {
            let mut pkt = self.io.read_packet().await.unwrap();
            if pkt.payload.first() != Some(&0xFE) || pkt.payload.len() < 22 {
                answer.push((pkt.seq, pkt.payload));
                return (answer, started.elapsed());
            }
            let nonce_at = pkt.payload.iter().position(|&b| b == 0).unwrap() + 1;
            let mut nonce = [0; 20];
            nonce.copy_from_slice(&pkt.payload[nonce_at..nonce_at + 20]);
            let proof = auth::native_response(&nonce, password);
            self.io.send(pkt.seq.wrapping_add(1), &proof).await.unwrap();
            pkt.payload[nonce_at..nonce_at + 20].fill(0);
            answer.push((pkt.seq, pkt.payload));
        }
    }

    pub async fn query(&mut self, sql: &str) -> Vec<u8> {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p, Expect::ResultSets).await
    }
}

/// Splits raw bytes into packets: (sequence id, payload).
/// COM_STMT_SEND_LONG_DATA of `chunk` for parameter 0 of statement `id`.
pub fn long_data(id: u32, chunk: &[u8]) -> Vec<u8> {
    let mut p = vec![0x18];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(chunk);
    p
}

/// COM_STMT_EXECUTE of statement `id` whose one parameter (its type sent: MEDIUM_BLOB, not
/// NULL) takes its value from the long data sent before.
pub fn execute_long_blob(id: u32) -> Vec<u8> {
    let mut execute = vec![0x17];
    execute.extend_from_slice(&id.to_le_bytes());
    execute.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 0xFA, 0]);
    execute
}

/// COM_STMT_EXECUTE of statement `id` whose one parameter is `value`, inline (its type
/// sent: VAR_STRING; shorter than 251 bytes).
pub fn execute_string(id: u32, value: &[u8]) -> Vec<u8> {
    let mut execute = vec![0x17];
    execute.extend_from_slice(&id.to_le_bytes());
    execute.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 0xFD, 0, value.len() as u8]);
    execute.extend_from_slice(value);
    execute
}

/// The statement id of a COM_STMT_PREPARE's answer.
pub fn prepared_id(answer: &[u8]) -> u32 {
    u32::from_le_bytes(packets(answer)[0].1[1..5].try_into().unwrap())
}

pub fn packets(mut raw: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while raw.len() >= 4 {
        let len = u32::from_le_bytes([raw[0], raw[1], raw[2], 0]) as usize;
        out.push((raw[3], raw[4..4 + len].to_vec()));
        raw = &raw[4 + len..];
    }
    out
}
