//! Streams one response from a backend to a client verbatim: scan what arrived, forward it
//! in one write, read more, until the scanner says the response ended.

use std::io;

use bytes::Buf;

use super::error::BackendError;
use crate::protocol::scan::{Event, ScanError, Scanner};
use crate::protocol::PacketStream;

/// How much of one response is forwarded before the worker's other sessions get a turn:
/// the codec's slice of a large packet. A result of 200,000 rows (20 MB) yields about 300
/// times, a few hundred microseconds in all.
const YIELD_EVERY: usize = crate::protocol::codec::SLICE;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The backend failed; `forwarded` says whether part of its answer reached the client
    /// (then the client's protocol state is lost and it must be disconnected).
    #[error("{err}")]
    Backend { err: BackendError, forwarded: bool },
    #[error("client connection lost: {0}")]
    Client(io::Error),
}

impl RelayError {
    pub fn into_backend(self) -> BackendError {
        match self {
            RelayError::Backend { err, .. } => err,
            RelayError::Client(e) => BackendError::Io(e),
        }
    }

    fn backend(err: impl Into<BackendError>, forwarded: bool) -> Self {
        RelayError::Backend {
            err: err.into(),
            forwarded,
        }
    }
}

/// Relays the response the scanner expects. With no client, the response is read and
/// dropped (its outcome stays in the scanner).
pub async fn relay_response(
    backend: &mut PacketStream,
    client: Option<&mut PacketStream>,
    scanner: &mut Scanner,
) -> Result<(), RelayError> {
    relay(backend, client, scanner, false).await
}

/// [`relay_response`], except that with `hold_end` the response's last bytes are queued on
/// the client, not sent: the caller acts on the outcome first (a write's GTID recorded
/// before the client can learn the write is done), then flushes.
pub async fn relay(
    backend: &mut PacketStream,
    mut client: Option<&mut PacketStream>,
    scanner: &mut Scanner,
    hold_end: bool,
) -> Result<(), RelayError> {
    let mut forwarded = false;
    // Bytes forwarded since the worker last let its other sessions run: a large result
    // whose parts are always ready would otherwise hold the worker until tokio's budget
    // (128 reads and writes, about 2 MB) forces a yield.
    let mut since_yield = 0;
    // Just after the command went out nothing of the answer is there yet: read before the
    // first scan rather than scan nothing (a call into the scanner per statement).
    if backend.rbuf.is_empty() {
        read_more(backend, forwarded).await?;
    }
    loop {
        let (n, event) = scanner
            .scan(&mut backend.rbuf[..])
            .map_err(|e: ScanError| RelayError::backend(e, forwarded))?;
        if n > 0 {
            if let (Some(c), true) = (client.as_deref_mut(), hold_end && event == Event::Done) {
                c.queue_raw(&backend.rbuf[..n]);
                backend.rbuf.advance(n);
                return Ok(());
            }
            if let Some(c) = client.as_deref_mut() {
                // A statement's answer is usually taken at once: no write future then.
                let answer = &backend.rbuf[..n];
                let sent = c.write_raw_now(answer).map_err(RelayError::Client)?;
                if sent < n {
                    c.write_raw(&answer[sent..])
                        .await
                        .map_err(RelayError::Client)?;
                }
                forwarded = true;
            }
            backend.rbuf.advance(n);
            since_yield += n;
            if since_yield >= YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
        match event {
            Event::Done => return Ok(()),
            Event::LocalInfile => {
                let c = client
                    .as_deref_mut()
                    .ok_or_else(|| RelayError::backend(ScanError("LOCAL INFILE"), forwarded))?;
                relay_infile(c, backend).await?;
                scanner.resume_after_infile();
            }
            Event::NeedMore => read_more(backend, forwarded).await?,
        }
    }
}

/// Reads more of the answer; the server closing the connection mid-answer is an error.
async fn read_more(backend: &mut PacketStream, forwarded: bool) -> Result<(), RelayError> {
    match backend.fill().await {
        Ok(0) => {
            let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
            Err(RelayError::backend(eof, forwarded))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(RelayError::backend(e, forwarded)),
    }
}

/// How long a LOAD DATA LOCAL client may send nothing of its file, as the server's
/// `net_read_timeout` (30 s by default) bounds it: the statement holds its primary
/// connection (and the table's locks) meanwhile.
const INFILE_READ_STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// Forwards the client's file contents, up to and including the empty closing packet.
async fn relay_infile(
    client: &mut PacketStream,
    backend: &mut PacketStream,
) -> Result<(), RelayError> {
    loop {
        let read = tokio::time::timeout(INFILE_READ_STALL, client.read_packet()).await;
        let pkt = read
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client sent nothing of its LOCAL INFILE file for 30s",
                ))
            })
            .map_err(RelayError::Client)?;
        backend.queue(pkt.seq, &pkt.payload);
        if pkt.payload.is_empty() {
            return backend
                .flush()
                .await
                .map_err(|e| RelayError::backend(e, true));
        }
        if backend.pending() > 1 << 20 {
            backend
                .flush()
                .await
                .map_err(|e| RelayError::backend(e, true))?;
        }
    }
}

/// Reads one whole response into memory, for the small answers Switchyard itself asks for.
pub async fn collect_response(
    backend: &mut PacketStream,
    scanner: &mut Scanner,
) -> Result<Vec<u8>, BackendError> {
    let mut out = Vec::new();
    loop {
        let (n, event) = scanner.scan(&mut backend.rbuf[..])?;
        out.extend_from_slice(&backend.rbuf[..n]);
        backend.rbuf.advance(n);
        match event {
            Event::Done => return Ok(out),
            Event::LocalInfile => return Err(ScanError("LOCAL INFILE in an internal query").into()),
            Event::NeedMore => {
                if backend.fill().await? == 0 {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::rc::Rc;

    use socket2::SockRef;

    use super::*;
    use crate::protocol::scan::Expect;

    fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        v.push(seq);
        v.extend_from_slice(payload);
        v
    }

    /// One column, `rows` rows of 1000 bytes, ended by an OK (CLIENT_DEPRECATE_EOF).
    fn result_set(rows: usize) -> Vec<u8> {
        let mut v = pkt(1, &[1]);
        v.extend(pkt(2, b"coldef"));
        let mut row = vec![0xFC, 0xE8, 0x03];
        row.extend([b'r'; 1000]);
        for i in 0..rows {
            v.extend(pkt((3 + i) as u8, &row));
        }
        v.extend(pkt((3 + rows) as u8, &[0xFE, 0, 0, 0x02, 0, 0, 0]));
        v
    }

    /// A pair of loopback sockets with socket buffers of up to 1 MiB: the std end for a
    /// thread, the other wrapped for the relay. Returns what the two buffers hold together.
    async fn pair() -> (std::net::TcpStream, PacketStream, usize) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::task::spawn_blocking(move || std::net::TcpStream::connect(addr));
        let ours = listener.accept().await.unwrap().0;
        let peer = peer.await.unwrap().unwrap();
        let (p, o) = (SockRef::from(&peer), SockRef::from(&ours));
        for s in [&p, &o] {
            s.set_send_buffer_size(1 << 20).unwrap();
            s.set_recv_buffer_size(1 << 20).unwrap();
        }
        let room = p.send_buffer_size().unwrap() + o.recv_buffer_size().unwrap();
        (peer, PacketStream::new(ours, 1 << 20), room)
    }

    /// A large answer that is all there already (as from a server that wrote it to its
    /// socket) lets the worker's other sessions run every `YIELD_EVERY` bytes, not only
    /// when tokio's budget of 128 reads and writes (about 2 MB) runs out.
    #[tokio::test]
    async fn a_large_answer_lets_other_sessions_run() {
        let (mut server, mut backend, room) = pair().await;
        let (mut app, mut client, _) = pair().await;
        // A quarter of the kernel's room (the rest is its bookkeeping), at most 1 MiB: a
        // kernel that caps socket buffers at its usual 208 KiB still leaves three turns.
        let answer = result_set(room.min(4 << 20) / 4 / 1004);
        let (len, expected) = (answer.len(), answer.clone());
        let (written, wrote) = std::sync::mpsc::channel();
        let write = std::thread::spawn(move || {
            server.write_all(&answer).unwrap();
            written.send(()).unwrap();
            server
        });
        wrote
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the answer fits the socket buffers");
        let read = std::thread::spawn(move || {
            let mut got = vec![0u8; len];
            app.read_exact(&mut got).map(|_| got)
        });
        let turns = Rc::new(Cell::new(0usize));
        let local = tokio::task::LocalSet::new();
        let counted = Rc::clone(&turns);
        local.spawn_local(async move {
            loop {
                counted.set(counted.get() + 1);
                tokio::task::yield_now().await;
            }
        });
        let mut scanner = Scanner::new(Expect::ResultSets, true);
        local
            .run_until(relay_response(
                &mut backend,
                Some(&mut client),
                &mut scanner,
            ))
            .await
            .unwrap();
        assert!(
            read.join().unwrap().unwrap() == expected,
            "forwarded verbatim"
        );
        drop(write.join().unwrap());
        assert!(
            turns.get() >= len / YIELD_EVERY / 2,
            "the other session ran {} times while {len} bytes were relayed",
            turns.get()
        );
    }
}
