//! A tiny MySQL-speaking backend that answers every read with one fixed row at once, so a
//! benchmark of the proxy in front of it measures the proxy, not a database.
//!
//! Usage: `synthetic_backend ADDR [THREADS]` (default 127.0.0.1:3390, 1 thread). Any login is
//! accepted (mysql_native_password, the scramble is not checked). COM_QUERY: `SET`, `USE`,
//! `BEGIN`, `COMMIT`, `ROLLBACK`, `START`, `DO` get an OK; a SELECT of variables (`@@`)
//! gets one row of plausible values (read_only 1, server_id 1, one GTID for every server), so
//! the proxy's monitor sees an eligible server with no lag; `SHOW` gets ERR 1227 (replication
//! status hidden, as for a user without the privilege); anything else gets one row of one
//! column `c`. Prepared statements (prepare, execute, close, reset) answer the same row in the
//! binary protocol, so `sysbench --db-ps-mode=auto` runs too. Pipelined commands are
//! answered in order, one write per read.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Capabilities offered: protocol 4.1, secure connection, plugin auth, multi results,
/// transactions, connect attributes, DEPRECATE_EOF, and bit 0 (a MySQL server, so MariaDB
/// clients expect no extended capabilities).
const CAPS: u32 = 0x1
    | 0x2
    | 0x4
    | 0x8
    | 0x200
    | 0x2000
    | 0x8000
    | 0x1_0000
    | 0x2_0000
    | 0x4_0000
    | 0x8_0000
    | 0x10_0000
    | 0x20_0000
    | 0x100_0000;
const DEPRECATE_EOF: u32 = 0x100_0000;
const STATUS_AUTOCOMMIT: u16 = 0x0002;
/// The value of the fixed row: what sysbench's point select reads is a CHAR(120).
const VALUE: &[u8] = b"83868641912-28773972837-60736120486-75162659906-27563526494-20381887404-41576422241-93426793964-56405065102-33518432330";

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3390".into());
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("synthetic backend on {addr}, {threads} thread(s)");
        let mut id = 0u32;
        loop {
            let (s, _) = listener.accept().await?;
            let _ = s.set_nodelay(true);
            id = id.wrapping_add(1);
            tokio::spawn(async move {
                let _ = Conn::new(s).serve(id).await;
            });
        }
    })
}

struct Conn {
    s: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    caps: u32,
    next_stmt: u32,
}

impl Conn {
    fn new(s: TcpStream) -> Self {
        Conn {
            s,
            rbuf: Vec::with_capacity(16 * 1024),
            wbuf: Vec::with_capacity(16 * 1024),
            caps: 0,
            next_stmt: 0,
        }
    }

    async fn serve(mut self, id: u32) -> io::Result<()> {
        self.greet(id);
        self.flush().await?;
        let (_, login) = self.packet().await?;
        self.caps = u32::from_le_bytes(
            login
                .get(..4)
                .unwrap_or(&[0; 4])
                .try_into()
                .unwrap_or([0; 4]),
        );
        self.ok(2);
        self.flush().await?;
        loop {
            let (_, cmd) = self.packet().await?;
            if !self.answer(&cmd) {
                return Ok(());
            }
            // Answer everything already read before writing (pipelined clients).
            while let Some((_, cmd)) = self.buffered_packet() {
                if !self.answer(&cmd) {
                    return Ok(());
                }
            }
            self.flush().await?;
        }
    }

    /// Queues the answer to one command; false for COM_QUIT.
    fn answer(&mut self, cmd: &[u8]) -> bool {
        let body = cmd.get(1..).unwrap_or(b"");
        match cmd.first().copied().unwrap_or(0) {
            0x01 => return false,
            0x03 => self.query(body),
            0x16 => self.prepare(body),
            0x17 => self.result(1, true),
            0x19 => {} // COM_STMT_CLOSE: no answer
            0x02 | 0x0e | 0x1a | 0x1f | 0x1b => self.ok(1),
            _ => self.err(1, 1047, b"Unknown command"),
        }
        true
    }

    fn query(&mut self, sql: &[u8]) {
        let head: Vec<u8> = sql
            .iter()
            .skip_while(|b| b.is_ascii_whitespace())
            .take(8)
            .map(u8::to_ascii_uppercase)
            .collect();
        let starts = |w: &[u8]| head.starts_with(w);
        if ["SET", "USE", "BEGIN", "COMMIT", "ROLLBACK", "START", "DO"]
            .iter()
            .any(|w| starts(w.as_bytes()))
        {
            self.ok(1);
        } else if starts(b"SHOW") {
            self.err(
                1,
                1227,
                b"Access denied; you need the REPLICATION CLIENT privilege",
            );
        } else if sql.windows(2).any(|w| w == b"@@") {
            self.variables(sql);
        } else {
            self.result(1, false);
        }
    }

    /// `SELECT @@a, @@b, NULL`: one row, a value per item.
    fn variables(&mut self, sql: &[u8]) {
        let text = String::from_utf8_lossy(sql).to_ascii_lowercase();
        let list = text.trim().trim_start_matches("select").trim();
        let items: Vec<&str> = list.split(',').map(str::trim).collect();
        let mut seq = 1;
        self.push(&mut seq, &[items.len() as u8]);
        for item in &items {
            self.push(&mut seq, &column_def(item.as_bytes(), 0xfd));
        }
        if !self.deprecate_eof() {
            self.push(&mut seq, &eof());
        }
        let mut row = Vec::new();
        for item in &items {
            let value: Option<&[u8]> = if item.contains("version") {
                Some(b"5.7.99-synthetic")
            } else if item.contains("gtid") {
                Some(b"3e11fa47-71ca-11e1-9e33-c80aa9429562:1")
            } else if item.contains("server_id") || item.contains("read_only") {
                // read_only: a replica; as the tenant's primary too it is kept (no other
                // server is writable).
                Some(b"1")
            } else if item.contains("max_allowed_packet") {
                Some(b"67108864")
            } else if item.contains("wait_timeout") {
                Some(b"28800")
            } else if item.contains("socket") || *item == "null" {
                None
            } else {
                Some(b"0")
            };
            match value {
                Some(v) => {
                    row.push(v.len() as u8);
                    row.extend_from_slice(v);
                }
                None => row.push(0xfb),
            }
        }
        self.push(&mut seq, &row);
        self.end_rows(seq);
    }

    fn end_rows(&mut self, mut seq: u8) {
        if self.deprecate_eof() {
            self.push(&mut seq, &[0xfe, 0, 0, 0x02, 0, 0, 0]);
        } else {
            self.push(&mut seq, &eof());
        }
    }

    fn prepare(&mut self, sql: &[u8]) {
        let params = sql.iter().filter(|&&b| b == b'?').count() as u16;
        self.next_stmt += 1;
        let mut p = vec![0x00];
        p.extend_from_slice(&self.next_stmt.to_le_bytes());
        p.extend_from_slice(&1u16.to_le_bytes()); // columns
        p.extend_from_slice(&params.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0]); // filler, warnings
        let mut seq = 1;
        self.push(&mut seq, &p);
        for _ in 0..params {
            self.push(&mut seq, &column_def(b"?", 0xfd));
        }
        if params > 0 && !self.deprecate_eof() {
            self.push(&mut seq, &eof());
        }
        self.push(&mut seq, &column_def(b"c", 0xfe));
        if !self.deprecate_eof() {
            self.push(&mut seq, &eof());
        }
    }

    /// One column `c`, one row: text protocol, or binary for COM_STMT_EXECUTE.
    fn result(&mut self, mut seq: u8, binary: bool) {
        self.push(&mut seq, &[1]);
        self.push(&mut seq, &column_def(b"c", 0xfe));
        if !self.deprecate_eof() {
            self.push(&mut seq, &eof());
        }
        let mut row = if binary { vec![0x00, 0x00] } else { Vec::new() };
        row.push(VALUE.len() as u8);
        row.extend_from_slice(VALUE);
        self.push(&mut seq, &row);
        self.end_rows(seq);
    }

    fn deprecate_eof(&self) -> bool {
        self.caps & DEPRECATE_EOF != 0
    }

    fn ok(&mut self, mut seq: u8) {
        let s = STATUS_AUTOCOMMIT.to_le_bytes();
        self.push(&mut seq, &[0x00, 0, 0, s[0], s[1], 0, 0]);
    }

    fn err(&mut self, mut seq: u8, code: u16, msg: &[u8]) {
        let mut p = vec![0xff];
        p.extend_from_slice(&code.to_le_bytes());
        p.extend_from_slice(b"#42000");
        p.extend_from_slice(msg);
        self.push(&mut seq, &p);
    }

    fn greet(&mut self, id: u32) {
        let mut p = vec![0x0a];
        p.extend_from_slice(b"5.7.99-synthetic\0");
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(b"abcdefgh\0");
        p.extend_from_slice(&(CAPS as u16).to_le_bytes());
        p.push(0x2d); // utf8mb4_general_ci
        p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&((CAPS >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(b"mysql_native_password\0");
        let mut seq = 0;
        self.push(&mut seq, &p);
    }

    fn push(&mut self, seq: &mut u8, payload: &[u8]) {
        let len = payload.len() as u32;
        self.wbuf.extend_from_slice(&len.to_le_bytes()[..3]);
        self.wbuf.push(*seq);
        self.wbuf.extend_from_slice(payload);
        *seq = seq.wrapping_add(1);
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.s.write_all(&self.wbuf).await?;
        self.wbuf.clear();
        Ok(())
    }

    /// One whole packet from what was read already, if there is one.
    fn buffered_packet(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.rbuf.len() < 4 {
            return None;
        }
        let len = u32::from_le_bytes([self.rbuf[0], self.rbuf[1], self.rbuf[2], 0]) as usize;
        if self.rbuf.len() < 4 + len {
            return None;
        }
        let seq = self.rbuf[3];
        let payload = self.rbuf[4..4 + len].to_vec();
        self.rbuf.drain(..4 + len);
        Some((seq, payload))
    }

    async fn packet(&mut self) -> io::Result<(u8, Vec<u8>)> {
        loop {
            if let Some(p) = self.buffered_packet() {
                return Ok(p);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.s.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn column_def(name: &[u8], ty: u8) -> Vec<u8> {
    let mut p = Vec::with_capacity(32 + name.len());
    for part in [&b"def"[..], b"", b"", b"", name, b""] {
        p.push(part.len() as u8);
        p.extend_from_slice(part);
    }
    p.push(0x0c);
    p.extend_from_slice(&0x2du16.to_le_bytes());
    p.extend_from_slice(&480u32.to_le_bytes());
    p.push(ty);
    p.extend_from_slice(&[0, 0, 0, 0, 0]); // flags, decimals, filler
    p
}

fn eof() -> Vec<u8> {
    let s = STATUS_AUTOCOMMIT.to_le_bytes();
    vec![0xfe, 0, 0, s[0], s[1]]
}
