//! Packet framing over a TCP stream: 3-byte length + sequence id, 16 MB splitting, one
//! reusable read buffer and one write buffer per connection.

use std::future::Future;
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::compress::Compression;
use super::stream::{Prefixed, Stream};
use super::MAX_PAYLOAD;

/// Room a read is given at most; a connection's read window grows to it by doubling.
const READ_CHUNK: usize = 16 * 1024;
/// What a connection's buffers start with. Most connections only ever carry small
/// packets, and two 16 KiB buffers per connection cost a connect-per-request client
/// glibc's large-chunk path (3,000 instructions in `free` alone) at every connection.
const START_CAPACITY: usize = 1024;
/// A read buffer that held a packet larger than this is given back after it, so one big
/// statement does not cost its connection that much memory for the rest of its life.
const SHRINK_AFTER: usize = 1024 * 1024;
/// Room made at once for the rest of a packet whose header says it is large, at most: a
/// 1 MB statement is read into one allocation instead of one doubled eleven times (each
/// doubling copies what arrived so far), while a header alone, its payload not sent, earns
/// its connection no more than this.
const UPFRONT_MAX: usize = 4 * 1024 * 1024;
/// Payloads from this size on are sent from where they lie, not copied into the write
/// buffer first.
const SEND_IN_PLACE: usize = 64 * 1024;
/// A large packet is read and sent this much at a time, the worker's other sessions let
/// run in between: copying one client's megabyte in one go held up every other statement
/// on its worker for up to a millisecond. The relay of a large result takes its turns by
/// the same measure.
pub(crate) const SLICE: usize = 64 * 1024;

/// A packet read into its own payload as it arrives: one allocation of its size, no copy
/// out of the read buffer (a 1 MB statement's copy held up its worker for 0.1-0.2 ms).
struct Direct {
    seq: u8,
    len: usize,
    payload: Vec<u8>,
}

/// What the read buffer holds of the next logical packet.
enum Buffered {
    /// All of it: its first sequence id, payload size and where it ends in the buffer.
    Whole(u8, usize, usize),
    /// Part of it: at least this many more bytes are needed.
    Short(usize),
}

/// A peer announced a packet over the limit (as soon as its header says so: the packet is
/// never buffered).
#[derive(Debug, thiserror::Error)]
#[error("packet larger than the limit of {limit} bytes")]
pub struct PacketTooLarge {
    pub limit: usize,
    /// The sequence id of the header that crossed the limit (an ERR answering it takes the
    /// next one, as servers answer).
    pub seq: u8,
}

impl PacketTooLarge {
    /// The limit error inside an I/O error from `read_packet`, if that is what it is.
    pub fn of(e: &io::Error) -> Option<&PacketTooLarge> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

/// One logical packet (splits joined).
#[derive(Debug)]
pub struct Packet {
    /// The sequence id of its first (or only) packet.
    pub seq: u8,
    pub payload: Vec<u8>,
}

impl Packet {
    /// The sequence id an answer to it starts at: one past its last packet's (a payload of
    /// 16 MB and more came in several, and a whole multiple of 16 MB with an empty last one).
    pub fn answer_seq(&self) -> u8 {
        let parts = self.payload.len() / MAX_PAYLOAD;
        self.seq.wrapping_add(parts as u8).wrapping_add(1)
    }
}

/// A framed MySQL connection. Reads go through `rbuf` so the relay can scan and forward raw
/// bytes; writes are queued in `wbuf` and sent with one syscall by `flush`.
pub struct PacketStream {
    stream: Stream,
    pub rbuf: BytesMut,
    wbuf: Vec<u8>,
    /// Largest logical packet accepted from the peer.
    max_packet: usize,
    /// A command's payload the session is done with, reused for the next one (an
    /// allocation and a free per statement otherwise).
    spare: Vec<u8>,
    /// A large packet being read straight into its payload, not through `rbuf`.
    direct: Option<Box<Direct>>,
    /// CLIENT_COMPRESS framing, once the login has ended (client connections only: backend
    /// connections stay uncompressed). `rbuf` and `wbuf` hold plain packets either way.
    compress: Option<Box<Compression>>,
    /// Whether [`end_after_quit`](Self::end_after_quit) may close with a reset.
    reset_after_quit: bool,
    /// Room a plain read is given. It starts small and doubles each time a read fills all
    /// the room it had (the peer had more to send): an emptied buffer is reused in place at
    /// its old size, so without this a backend's 12 KB result came in twelve 1 KiB reads,
    /// each forwarded with its own send.
    window: usize,
    /// How long a write may make no progress before the connection is given up (client
    /// connections: [`CLIENT_WRITE_STALL`]); None: as long as TCP keeps it.
    write_stall: Option<Duration>,
}

/// A client that reads nothing of its answer for this long is cut off, as the server's
/// `net_write_timeout` (60 s by default) cuts off one that stops reading: else it would
/// keep the backend connection its statement streams from (and the transaction's locks,
/// and the session's place in what PAUSE waits for) for as long as its TCP stays up.
/// `server.client_write_timeout` sets it once the login is done.
pub const CLIENT_WRITE_STALL: Duration = Duration::from_secs(60);

impl PacketStream {
    /// A connection Switchyard opened (to a backend): Nagle's algorithm is turned off.
    pub fn new(stream: TcpStream, max_packet: usize) -> Self {
        let _ = stream.set_nodelay(true);
        PacketStream {
            write_stall: None,
            ..Self::accepted(stream, max_packet)
        }
    }

    /// A client's connection, accepted from a listener with TCP_NODELAY set
    /// (`frontend::workers`): Linux and the BSDs copy it to accepted sockets, so it costs
    /// no syscall per connection there.
    pub fn accepted(stream: TcpStream, max_packet: usize) -> Self {
        if !cfg!(any(
            target_os = "linux",
            target_os = "freebsd",
            target_os = "macos"
        )) {
            let _ = stream.set_nodelay(true);
        }
        PacketStream {
            stream: Stream::Plain(stream),
            rbuf: BytesMut::with_capacity(START_CAPACITY),
            wbuf: Vec::with_capacity(START_CAPACITY),
            spare: Vec::new(),
            direct: None,
            max_packet,
            compress: None,
            reset_after_quit: false,
            window: START_CAPACITY,
            write_stall: Some(CLIENT_WRITE_STALL),
        }
    }

    /// Switches to the compressed protocol: everything after the login's OK is framed.
    pub fn start_compression(&mut self) {
        // After COM_CHANGE_USER's OK the stream is compressed already: starting over would
        // drop the compressed bytes not yet read and take read ones for compressed.
        if self.compress.is_some() {
            return;
        }
        let mut c = Box::<Compression>::default();
        // Bytes the client sent right behind its login belong to the compressed stream.
        c.raw = self.rbuf.split();
        self.compress = Some(c);
    }

    /// Changes the largest packet accepted from the peer (small until a client logged in).
    pub fn set_max_packet(&mut self, max_packet: usize) {
        self.max_packet = max_packet;
    }

    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.stream
            .tcp()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?
            .peer_addr()
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// See [`Stream::send_before_close`]; nothing when bytes wait to be sent (they would
    /// come first).
    pub fn send_before_close(&mut self, bytes: &[u8]) {
        if self.wbuf.is_empty() {
            self.stream.send_before_close(bytes);
        }
    }

    /// Upgrades to TLS as the server side (after the client's SSLRequest). Bytes already
    /// read past the SSLRequest are the start of the TLS handshake and go to it first.
    pub async fn accept_tls(&mut self, acceptor: &tokio_rustls::TlsAcceptor) -> io::Result<()> {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "already TLS"));
        };
        let early = self.rbuf.split().to_vec();
        let tls = acceptor.accept(Prefixed::new(early, tcp)).await?;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Upgrades to TLS as the client side (after sending a backend the SSLRequest).
    pub async fn connect_tls(
        &mut self,
        connector: &tokio_rustls::TlsConnector,
        server_name: rustls::pki_types::ServerName<'static>,
    ) -> io::Result<()> {
        if !self.rbuf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the server sent data before the TLS handshake",
            ));
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "already TLS"));
        };
        let tls = connector.connect(server_name, tcp).await?;
        self.stream = Stream::TlsClient(Box::new(tls));
        Ok(())
    }

    /// Reads more bytes into `rbuf`. Returns 0 at end of stream.
    pub async fn fill(&mut self) -> io::Result<usize> {
        let Some(c) = self.compress.as_deref_mut() else {
            if self.rbuf.capacity() - self.rbuf.len() < self.window / 2 {
                // A large packet kept whole grows the buffer by doubling as well.
                let more = self.rbuf.capacity().clamp(self.window, READ_CHUNK);
                self.rbuf.reserve(more);
            }
            let room = self.rbuf.capacity() - self.rbuf.len();
            let n = self.stream.read_buf(&mut self.rbuf).await?;
            if n == room && self.window < READ_CHUNK {
                self.window *= 2;
            }
            return Ok(n);
        };
        loop {
            match c.decode(&mut self.rbuf)? {
                Some(n) if n > 0 => return Ok(n),
                Some(_) => continue,
                None => {}
            }
            if c.raw.capacity() - c.raw.len() < READ_CHUNK / 4 {
                c.raw.reserve(READ_CHUNK);
            }
            if self.stream.read_buf(&mut c.raw).await? == 0 {
                return Ok(0);
            }
        }
    }

    /// Reads one logical packet, joining 16 MB continuations. Cancel-safe: what was read
    /// stays in `self` (the read buffer, or the payload of a packet read directly), so a
    /// `select!` may drop this future.
    pub async fn read_packet(&mut self) -> io::Result<Packet> {
        let (seq, total, end) = loop {
            if let Some(d) = self.direct.as_deref_mut() {
                if d.payload.len() == d.len {
                    let d = self.direct.take().expect("checked above");
                    return Ok(Packet {
                        seq: d.seq,
                        payload: d.payload,
                    });
                }
                let want = (d.len - d.payload.len()).min(SLICE);
                read_slice(&mut self.stream, &mut d.payload, want).await?;
                continue;
            }
            match self.buffered_packet()? {
                Buffered::Whole(seq, total, end) => break (seq, total, end),
                Buffered::Short(missing) if missing > READ_CHUNK && self.start_direct() => {}
                Buffered::Short(missing) if missing > READ_CHUNK => {
                    self.rbuf.reserve(missing.min(UPFRONT_MAX));
                    match self.compress {
                        Some(_) => {
                            self.fill_or_eof().await?;
                            tokio::task::yield_now().await;
                        }
                        None => read_slice(&mut self.stream, &mut self.rbuf, SLICE).await?,
                    }
                }
                Buffered::Short(_) => self.fill_or_eof().await?,
            }
        };
        let mut payload = std::mem::take(&mut self.spare);
        payload.clear();
        payload.reserve(total);
        let mut pos = 0;
        while pos < end {
            let h = &self.rbuf[pos..pos + 4];
            let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
            payload.extend_from_slice(&self.rbuf[pos + 4..pos + 4 + len]);
            pos += 4 + len;
        }
        self.rbuf.advance(end);
        if total > SHRINK_AFTER {
            self.shrink_rbuf();
        }
        Ok(Packet { seq, payload })
    }

    /// Takes back a payload [`read_packet`](Self::read_packet) returned, to read the next
    /// one into. A large one is let go, as the read buffer is after a large packet.
    pub fn recycle(&mut self, payload: Vec<u8>) {
        if payload.capacity() <= READ_CHUNK {
            self.spare = payload;
        }
    }

    /// Moves a large packet whose header is at the front of `rbuf` (and the part of it that
    /// arrived) to a payload of its own, to be read straight into. Only a plain connection's
    /// single packet: 16 MB continuations and compressed frames go through `rbuf`.
    fn start_direct(&mut self) -> bool {
        let Some(h) = self.rbuf.get(..4) else {
            return false;
        };
        let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
        if len >= MAX_PAYLOAD || self.compress.is_some() {
            return false;
        }
        let seq = h[3];
        let mut payload = Vec::with_capacity(len);
        // All of it is this packet's: the buffer holds less than the packet.
        payload.extend_from_slice(&self.rbuf[4..]);
        self.rbuf.clear();
        self.direct = Some(Box::new(Direct { seq, len, payload }));
        true
    }

    /// Replaces the read buffer with a small one holding what is left in it.
    fn shrink_rbuf(&mut self) {
        let mut small = BytesMut::with_capacity(READ_CHUNK.max(self.rbuf.len()));
        small.extend_from_slice(&self.rbuf);
        self.rbuf = small;
    }

    /// How much of the next logical packet is buffered.
    fn buffered_packet(&self) -> io::Result<Buffered> {
        let (mut pos, mut total, mut seq) = (0, 0, None);
        loop {
            let Some(h) = self.rbuf.get(pos..pos + 4) else {
                return Ok(Buffered::Short(pos + 4 - self.rbuf.len()));
            };
            let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
            seq.get_or_insert(h[3]);
            total += len;
            if total > self.max_packet {
                let e = PacketTooLarge {
                    limit: self.max_packet,
                    seq: h[3],
                };
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if self.rbuf.len() < pos + 4 + len {
                return Ok(Buffered::Short(pos + 4 + len - self.rbuf.len()));
            }
            pos += 4 + len;
            if len < MAX_PAYLOAD {
                return Ok(Buffered::Whole(seq.unwrap_or(0), total, pos));
            }
        }
    }

    async fn fill_or_eof(&mut self) -> io::Result<()> {
        if self.fill().await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Queues a packet, splitting it as the protocol requires. Returns the next sequence id.
    pub fn queue(&mut self, mut seq: u8, payload: &[u8]) -> u8 {
        if seq == 0 {
            if let Some(c) = self.compress.as_deref_mut() {
                // A command (sequence id 0) starts a new exchange, and so restarts the
                // compressed sequence: only a client sends one.
                c.restart();
            }
        }
        for part in packets(payload) {
            self.wbuf.extend_from_slice(&header(part.len(), seq));
            self.wbuf.extend_from_slice(part);
            seq = seq.wrapping_add(1);
        }
        seq
    }

    /// Queues bytes that are already framed (relayed verbatim).
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(bytes);
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            let stall = self.write_stall;
            write_out(
                &mut self.stream,
                self.compress.as_deref_mut(),
                &self.wbuf,
                stall,
            )
            .await?;
            self.wbuf.clear();
            if self.wbuf.capacity() > 4 * 1024 * 1024 {
                // Don't keep a huge buffer for the life of an idle connection.
                self.wbuf.shrink_to(READ_CHUNK);
            }
        }
        Ok(())
    }

    /// [`send`](Self::send)'s common case without its future, for a payload small enough to
    /// queue: queued, and written at once when the socket takes it all (true). False: what
    /// is left waits in the queue, for [`flush`](Self::flush); None: too large to queue, so
    /// nothing was (`send` writes it from where it lies).
    pub fn send_now(&mut self, seq: u8, payload: &[u8]) -> Option<io::Result<bool>> {
        if payload.len() >= SEND_IN_PLACE && self.compress.is_none() {
            return None;
        }
        self.queue(seq, payload);
        Some(self.flush_now())
    }

    /// [`flush`](Self::flush)'s common case without its future: a plain socket takes
    /// everything queued at once (true). False: the rest is still queued.
    fn flush_now(&mut self) -> io::Result<bool> {
        if self.compress.is_some() {
            return Ok(self.wbuf.is_empty());
        }
        let sent = write_now(&self.stream, &self.wbuf)?;
        if sent < self.wbuf.len() {
            self.wbuf.drain(..sent);
            return Ok(false);
        }
        self.wbuf.clear();
        Ok(true)
    }

    /// Queues and sends one packet.
    pub async fn send(&mut self, seq: u8, payload: &[u8]) -> io::Result<u8> {
        if payload.len() >= SEND_IN_PLACE && self.compress.is_none() {
            return self.send_in_place(seq, payload).await;
        }
        let next = self.queue(seq, payload);
        self.flush().await?;
        Ok(next)
    }

    /// [`send`](Self::send) for a large payload: what is queued goes first, then each
    /// packet's header and its part of the payload, written from where it lies.
    async fn send_in_place(&mut self, mut seq: u8, payload: &[u8]) -> io::Result<u8> {
        for part in packets(payload) {
            self.wbuf.extend_from_slice(&header(part.len(), seq));
            self.flush().await?;
            for slice in part.chunks(SLICE) {
                write_out(&mut self.stream, None, slice, self.write_stall).await?;
                tokio::task::yield_now().await;
            }
            seq = seq.wrapping_add(1);
        }
        Ok(seq)
    }

    /// [`write_raw`](Self::write_raw)'s common case without its future: the bytes a plain,
    /// uncompressed socket takes at once (0 otherwise); the caller awaits `write_raw` for
    /// the rest.
    pub fn write_raw_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.compress.is_some() {
            return Ok(0);
        }
        write_now(&self.stream, bytes)
    }

    /// Writes raw bytes straight to the socket (used by the relay).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stall = self.write_stall;
        write_out(&mut self.stream, self.compress.as_deref_mut(), bytes, stall).await
    }

    /// Ends a TLS connection with its close_notify. A plain one needs nothing before it is
    /// dropped: closing the socket sends the FIN (one syscall per connection fewer).
    pub async fn shutdown(&mut self) {
        if !matches!(self.stream, Stream::Plain(_)) {
            let _ = unstalled(self.write_stall, self.stream.shutdown()).await;
        }
    }
}

/// A payload's parts, one per packet: 16 MB - 1 bytes each, the last one shorter, and empty
/// when the payload is a multiple of that (the protocol's end marker), as for no payload.
fn packets(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let end = payload.len().is_multiple_of(MAX_PAYLOAD).then_some(&[][..]);
    payload.chunks(MAX_PAYLOAD).chain(end)
}

/// A packet's header: its 3-byte length and sequence id.
fn header(len: usize, seq: u8) -> [u8; 4] {
    let len = (len as u32).to_le_bytes();
    [len[0], len[1], len[2], seq]
}

/// Reads at most `at_most` bytes into `buf`, then lets the worker's other tasks run: a
/// large packet's slice. End of stream is an error (the packet is cut).
async fn read_slice(
    stream: &mut Stream,
    buf: &mut impl bytes::BufMut,
    at_most: usize,
) -> io::Result<()> {
    if stream
        .read_buf(&mut bytes::BufMut::limit(buf, at_most))
        .await?
        == 0
    {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    tokio::task::yield_now().await;
    Ok(())
}

/// Sends framed packets, in compressed frames when the connection is compressed.
async fn write_out(
    stream: &mut Stream,
    compress: Option<&mut Compression>,
    bytes: &[u8],
    stall: Option<Duration>,
) -> io::Result<()> {
    match compress {
        Some(c) => write_all_within(stream, &c.frame(bytes)?, stall).await?,
        None => {
            let sent = write_now(stream, bytes)?;
            if sent == bytes.len() {
                return Ok(());
            }
            write_all_within(stream, &bytes[sent..], stall).await?
        }
    }
    // TLS buffers records; a plain socket's flush is free.
    unstalled(stall, stream.flush()).await
}

/// `write_all`, each write given at most `stall` to make progress (a slow reader is not
/// one that stopped).
async fn write_all_within(
    stream: &mut Stream,
    mut bytes: &[u8],
    stall: Option<Duration>,
) -> io::Result<()> {
    while !bytes.is_empty() {
        match unstalled(stall, stream.write(bytes)).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// `io` within `stall`, if one is set; past it, TimedOut.
async fn unstalled<T>(
    stall: Option<Duration>,
    io: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let Some(limit) = stall else {
        return io.await;
    };
    // Most writes complete at once (TLS's every flush comes here): no timer for those, as
    // making one reads the clock.
    let mut io = std::pin::pin!(io);
    let first = std::future::poll_fn(|cx| match io.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(Some(r)),
        Poll::Pending => Poll::Ready(None),
    });
    if let Some(r) = first.await {
        return r;
    }
    match tokio::time::timeout(limit, io).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the peer read nothing for {}s", limit.as_secs()),
        )),
    }
}

/// Writes what a plain socket takes at once, without a future: a statement's packets
/// almost always fit its send buffer, and the write future's machinery cost more than the
/// syscall's own user-space part. 0 under TLS or when the socket is full (the caller
/// awaits the rest).
fn write_now(stream: &Stream, bytes: &[u8]) -> io::Result<usize> {
    let Stream::Plain(tcp) = stream else {
        return Ok(0);
    };
    match tcp.try_write(bytes) {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// Bytes in `tcp`'s send queue the peer has not acknowledged (SIOCOUTQ), if the kernel says
/// (Linux; elsewhere unknown, so a quit ends with a FIN).
#[cfg(target_os = "linux")]
fn unacknowledged(tcp: &TcpStream) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int through the pointer, which outlives the call.
    let rc = unsafe { libc::ioctl(tcp.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    (rc == 0).then_some(queued)
}

#[cfg(not(target_os = "linux"))]
fn unacknowledged(_: &TcpStream) -> Option<i32> {
    None
}

impl PacketStream {
    /// Lets [`end_after_quit`](Self::end_after_quit) close with a reset.
    pub fn allow_reset_after_quit(&mut self) {
        self.reset_after_quit = true;
    }

    /// The client sent COM_QUIT. If its FIN has come too (it closed its end: tokio has seen
    /// the read side close, no syscall asks) and everything sent has reached it, dropping
    /// the socket will reset the connection rather than begin the FIN/ACK exchange: the
    /// reset spares both ends that exchange and the client's host a TIME_WAIT socket per
    /// connection (a connect-per-request client costs the proxy 5-9% less CPU). A client
    /// that has not closed its end may wait for the FIN, and gets it. Nor does one whose
    /// answer is not all in its hands yet: a statement written ahead of the QUIT and the
    /// FIN (`printf ... | nc`) has its answer in the socket's send queue, which a reset
    /// throws away; the client reads what it received, and the reset after it.
    pub fn end_after_quit(&self) {
        let Stream::Plain(tcp) = &self.stream else {
            return;
        };
        if !self.reset_after_quit || !self.wbuf.is_empty() {
            return;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let ready = std::pin::pin!(tcp.ready(tokio::io::Interest::READABLE)).poll(&mut cx);
        if let Poll::Ready(Ok(r)) = ready {
            if r.is_read_closed() && unacknowledged(tcp) == Some(0) {
                let _ = tcp.set_zero_linger();
            }
        }
    }

    /// The socket, under TLS too (None only while a TLS handshake has it).
    pub fn tcp(&self) -> Option<&TcpStream> {
        self.stream.tcp()
    }

    /// How long a write may make no progress before it fails (TimedOut).
    pub fn set_write_stall(&mut self, limit: Duration) {
        self.write_stall = Some(limit);
    }

    /// Bytes queued but not yet sent.
    pub fn pending(&self) -> usize {
        self.wbuf.len()
    }

    /// Completes once an idle connection's peer closes it or sends something unasked for
    /// (a server's ERR before it hangs up); never while it stays silent.
    pub async fn closed(&self) {
        let Some(tcp) = self.stream.tcp() else {
            return std::future::pending().await;
        };
        loop {
            if !self.rbuf.is_empty() || tcp.readable().await.is_err() || !self.is_open() {
                return;
            }
        }
    }

    /// Registers a plain TCP socket with the calling thread's runtime, so its readiness is
    /// noticed by the thread that waits on it. False under TLS, left where it is.
    pub fn rehome(&mut self) -> std::io::Result<bool> {
        let Stream::Plain(_) = &self.stream else {
            return Ok(false);
        };
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            unreachable!("matched above");
        };
        self.stream = Stream::Plain(TcpStream::from_std(tcp.into_std()?)?);
        Ok(true)
    }

    /// False if the peer has closed the connection or sent something unasked for (an idle
    /// connection must be silent).
    pub fn is_open(&self) -> bool {
        // Peeked, not read: under TLS, consuming raw bytes would corrupt the session. A
        // TLS peer that closes sends close_notify or FIN, which shows up here as bytes or EOF.
        let Some(tcp) = self.stream.tcp() else {
            return false;
        };
        // `try_io` asks the socket only when tokio saw it become readable since the last
        // read: otherwise it answers at once, without a syscall or registering a waker (a
        // lease checks every connection it takes; `poll_peek` cost 190 instructions).
        let peeked = tcp.try_io(tokio::io::Interest::READABLE, || {
            let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
            socket2::SockRef::from(tcp).peek(&mut probe)
        });
        matches!(peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback pair: the peer's end and a `PacketStream` on ours.
    async fn pair() -> (TcpStream, PacketStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap());
        let (peer, ours) = tokio::join!(peer, listener.accept());
        let peer = peer.unwrap();
        // Each answer leaves in one segment, not held back for the last one's ACK.
        peer.set_nodelay(true).unwrap();
        (peer, PacketStream::new(ours.unwrap().0, 1 << 20))
    }

    /// Reads what the peer wrote (all of it queued here already: loopback delivers a
    /// write before it returns), as the relay does: forward, empty the buffer, read more.
    /// Returns the reads it took.
    async fn drain(io: &mut PacketStream, mut left: usize) -> usize {
        let mut reads = 0;
        while left > 0 {
            left -= io.fill().await.unwrap();
            io.rbuf.clear();
            reads += 1;
        }
        reads
    }

    #[tokio::test]
    async fn a_large_answer_is_read_in_few_reads_once_seen() {
        let (mut peer, mut io) = pair().await;
        let answer = vec![7u8; 12 * 1024];
        let mut reads = Vec::new();
        for _ in 0..4 {
            peer.write_all(&answer).await.unwrap();
            reads.push(drain(&mut io, answer.len()).await);
        }
        // The first answer finds the window at its starting size; later ones take one read.
        assert!(reads[0] > 2, "{reads:?}");
        assert_eq!(reads[3], 1, "{reads:?}");
    }

    #[tokio::test]
    async fn a_large_packet_is_read_into_one_allocation_of_its_size() {
        let (mut peer, mut io) = pair().await;
        let size = 600 * 1024;
        let mut packet = (size as u32).to_le_bytes();
        packet[3] = 0;
        let mut packet = packet.to_vec();
        packet.extend((0..size).map(|i| i as u8));
        let write = tokio::spawn(async move { peer.write_all(&packet).await.map(|_| peer) });
        let p = io.read_packet().await.unwrap();
        assert_eq!(p.payload.len(), size);
        assert!(p.payload.iter().enumerate().all(|(i, b)| *b == i as u8));
        // Read straight into a payload of its size; the read buffer stayed small (grown by
        // doubling it would have reached 1 MiB, copying what it held at each step).
        assert_eq!(p.payload.capacity(), size);
        assert!(io.rbuf.capacity() <= READ_CHUNK, "{}", io.rbuf.capacity());
        drop(write.await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn a_large_packet_read_in_part_survives_a_dropped_read() {
        let (mut peer, mut io) = pair().await;
        let size = 300 * 1024;
        let mut packet = ((size as u32) | (5 << 24)).to_le_bytes().to_vec();
        packet.extend((0..size).map(|i| (i % 251) as u8));
        let (first, rest) = packet.split_at(100 * 1024);
        peer.write_all(first).await.unwrap();
        // A `select!` that gives up on the read once it has had to wait.
        tokio::select! {
            biased;
            _ = io.read_packet() => panic!("the packet is not all there"),
            _ = std::future::ready(()) => {}
        }
        assert!(
            io.direct.is_some() || !io.rbuf.is_empty(),
            "what arrived is kept"
        );
        peer.write_all(rest).await.unwrap();
        let p = io.read_packet().await.unwrap();
        assert_eq!(p.seq, 5);
        assert_eq!(p.payload.len(), size);
        assert!(p
            .payload
            .iter()
            .enumerate()
            .all(|(i, b)| *b == (i % 251) as u8));
    }

    #[tokio::test]
    async fn large_payloads_are_sent_without_the_write_buffer() {
        let (peer, mut io) = pair().await;
        let mut theirs = PacketStream::new(peer, 32 << 20);
        let sizes = [SEND_IN_PLACE, MAX_PAYLOAD, MAX_PAYLOAD + 5];
        let read = tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in sizes {
                let p = theirs.read_packet().await.unwrap();
                got.push((p.seq, p.payload.len(), p.payload.iter().all(|b| *b == 9)));
            }
            got
        });
        let mut next = Vec::new();
        for n in sizes {
            next.push(io.send(3, &vec![9u8; n]).await.unwrap());
            assert!(io.wbuf.capacity() < SEND_IN_PLACE, "{}", io.wbuf.capacity());
        }
        // 16 MB - 1 takes two packets (the second empty), one byte more too.
        assert_eq!(next, [4, 5, 5]);
        let got = read.await.unwrap();
        assert_eq!(
            got,
            [
                (3, SEND_IN_PLACE, true),
                (3, MAX_PAYLOAD, true),
                (3, MAX_PAYLOAD + 5, true)
            ]
        );
    }

    #[tokio::test]
    async fn small_packets_keep_the_buffer_small() {
        let (mut peer, mut io) = pair().await;
        for i in 0..100u8 {
            peer.write_all(&[3, 0, 0, i, 1, 2, 3]).await.unwrap();
            let p = io.read_packet().await.unwrap();
            assert_eq!((p.seq, &p.payload[..]), (i, &[1, 2, 3][..]));
            io.recycle(p.payload);
        }
        assert!(
            io.rbuf.capacity() <= START_CAPACITY,
            "{}",
            io.rbuf.capacity()
        );
        assert_eq!(io.window, START_CAPACITY);
    }
}
