//! The admin port's reader: one whole packet per read, and only commands the library answers.
//!
//! The protocol library gets one whole MySQL packet per read, and only the commands it
//! answers correctly; the others become a query the shim refuses.
//!
//! Two faults of opensrv-mysql 0.7.0 (the latest release) are kept away from it:
//! - it frees its read buffer while the packet it just returned still points into it
//!   whenever one read delivered more than one packet (a client that pipelines, as MariaDB
//!   Connector/J does at connect): a use after free (databendlabs/opensrv#66, fixed upstream
//!   after that release). Reads that end at packet boundaries never take that path;
//! - a command it cannot parse gets an OK packet (a fake success: COM_CHANGE_USER, an unknown
//!   byte, a short COM_STMT_CLOSE that must get no answer at all), and an execute, or a query
//!   that is not UTF-8, ends the connection without a word. Those are rewritten into a
//!   [`REFUSAL`] query naming what to refuse, which the shim answers with an ERR
//!   ([`refusal`]), or dropped when the command takes no answer.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::protocol::command::{
    server_implements, COM_FIELD_LIST, COM_INIT_DB, COM_PING, COM_QUERY, COM_QUIT,
    COM_RESET_CONNECTION, COM_STMT_BULK_EXECUTE, COM_STMT_CLOSE, COM_STMT_EXECUTE, COM_STMT_FETCH,
    COM_STMT_PREPARE, COM_STMT_RESET, COM_STMT_SEND_LONG_DATA,
};

const HEADER: usize = 4;
/// A payload this long continues in the next packet (commands of 16 MB and more).
const CONTINUED: usize = 0xFF_FFFF;
/// The longest packet the admin port reads (an `EXPLAIN ROUTE` of a long statement fits):
/// the library keeps a whole command in memory, so a client declaring 16 MB packet after
/// packet would grow it without end, before any login.
pub const MAX_PACKET: usize = 1 << 20;

/// How a rewritten command's text begins: no client types a NUL first.
pub const REFUSAL: &str = "\0switchyard-admin-refuses:";

/// What the shim answers instead of a command the library would mishandle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A command no MySQL server knows (an empty packet, an unassigned byte).
    Unknown,
    /// A command the admin port does not serve (COM_CHANGE_USER, COM_STATISTICS...).
    Unsupported(u8),
    /// An execute, fetch, reset or bulk execute: the admin port prepares nothing.
    Prepared,
    /// A query, prepare or COM_INIT_DB whose text is not UTF-8.
    NotUtf8,
    /// COM_RESET_CONNECTION: the session's database is forgotten, then OK.
    Reset,
    /// A command longer than [`MAX_PACKET`]: ERR 1153 (its bytes read past, not kept).
    TooLarge,
}

impl Refused {
    fn code(self) -> String {
        match self {
            Refused::Unknown => "unknown".into(),
            Refused::Unsupported(cmd) => format!("unsupported {cmd}"),
            Refused::Prepared => "prepared".into(),
            Refused::NotUtf8 => "not-utf8".into(),
            Refused::Reset => "reset".into(),
            Refused::TooLarge => "too-large".into(),
        }
    }
}

/// The refusal a rewritten command's text names, if it is one.
pub fn refusal(query: &str) -> Option<Refused> {
    let code = query.strip_prefix(REFUSAL)?;
    Some(match code {
        "unknown" => Refused::Unknown,
        "prepared" => Refused::Prepared,
        "not-utf8" => Refused::NotUtf8,
        "reset" => Refused::Reset,
        "too-large" => Refused::TooLarge,
        other => Refused::Unsupported(other.strip_prefix("unsupported ")?.parse().ok()?),
    })
}

/// What becomes of one command packet (its payload).
fn screen(payload: &[u8]) -> Option<Result<(), Refused>> {
    let Some(&cmd) = payload.first() else {
        return Some(Err(Refused::Unknown));
    };
    let utf8 = || std::str::from_utf8(&payload[1..]).is_ok();
    Some(match cmd {
        COM_QUERY | COM_STMT_PREPARE | COM_INIT_DB if !utf8() => Err(Refused::NotUtf8),
        COM_QUERY | COM_STMT_PREPARE | COM_INIT_DB | COM_FIELD_LIST | COM_PING | COM_QUIT => Ok(()),
        // Neither takes an answer: the library would answer a short close with an OK, and
        // end the connection at long data for a statement it never prepared.
        COM_STMT_CLOSE if payload.len() >= 5 => Ok(()),
        COM_STMT_CLOSE | COM_STMT_SEND_LONG_DATA => return None,
        COM_STMT_EXECUTE | COM_STMT_FETCH | COM_STMT_RESET | COM_STMT_BULK_EXECUTE => {
            Err(Refused::Prepared)
        }
        COM_RESET_CONNECTION => Err(Refused::Reset),
        other if server_implements(other) => Err(Refused::Unsupported(other)),
        _ => Err(Refused::Unknown),
    })
}

pub struct PacketBounded<R> {
    inner: R,
    /// The packet being read, header first.
    incoming: Vec<u8>,
    /// The packet (possibly rewritten) being handed out, and how much of it has been.
    out: Vec<u8>,
    given: usize,
    /// A login packet over [`MAX_PACKET`] was met: nothing more is read.
    ended: bool,
    /// Bytes of a refused command still to read past, whether its last packet was 16 MB
    /// (a next one continues it, to be read past too), and the sequence id of the last
    /// packet read past: its ERR is handed on once the whole command was (answered one
    /// past that id, as the client counts).
    skipping: usize,
    skip_next: bool,
    skipped_seq: Option<u8>,
}

impl<R> PacketBounded<R> {
    pub fn new(inner: R) -> Self {
        PacketBounded {
            inner,
            incoming: Vec::new(),
            out: Vec::new(),
            given: 0,
            ended: false,
            skipping: 0,
            skip_next: false,
            skipped_seq: None,
        }
    }

    /// Bytes of the current packet still to read.
    fn wanted(&self) -> usize {
        match self.declared() {
            None => HEADER - self.incoming.len(),
            Some(len) => HEADER + len - self.incoming.len(),
        }
    }

    /// The length the current packet's header declares, once it is read.
    fn declared(&self) -> Option<usize> {
        let h = self.incoming.get(..HEADER)?;
        Some(usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16)
    }

    /// A packet declared longer than [`MAX_PACKET`], or continuing one: a command is
    /// refused with ERR 1153 and its bytes read past, never kept (the connection goes on,
    /// and the client reads the ERR once it sent the whole); a login packet (sequence id
    /// above 0) ends the connection.
    fn refuse_oversized(&mut self, len: usize) {
        let (seq, continued) = (self.incoming[3], self.skip_next);
        self.incoming.clear();
        self.given = 0;
        self.out = Vec::new();
        if !continued && seq != 0 {
            self.ended = true;
            return;
        }
        self.skipping = len;
        self.skip_next = len == CONTINUED;
        self.skipped_seq = Some(seq);
        self.refuse_when_skipped();
    }

    /// The refused command read past to its end: its ERR goes out.
    fn refuse_when_skipped(&mut self) {
        if self.skipping > 0 || self.skip_next {
            return;
        }
        if let Some(seq) = self.skipped_seq.take() {
            self.out = refusal_packet(seq, Refused::TooLarge);
            self.given = 0;
        }
    }

    /// The packet just read, screened, becomes what is handed out next (or nothing).
    fn take_packet(&mut self) {
        let packet = std::mem::take(&mut self.incoming);
        // A command starts at sequence id 0; the login's packets (1, 3...) pass as they are.
        let verdict = if packet[3] == 0 {
            screen(&packet[HEADER..])
        } else {
            Some(Ok(()))
        };
        self.given = 0;
        self.out = match verdict {
            Some(Ok(())) if packet[HEADER..] == *BARE_MAX_PACKET_QUERY => {
                // A space after it: opensrv-mysql answers the exact text itself, with
                // 64 MiB, which this port does not read.
                let mut body = packet[HEADER..].to_vec();
                body.push(b' ');
                packet_of(packet[3], &body)
            }
            Some(Ok(())) => packet,
            Some(Err(refused)) => refusal_packet(packet[3], refused),
            None => Vec::new(),
        };
    }
}

/// What opensrv-mysql answers itself (COM_QUERY, then the text).
const BARE_MAX_PACKET_QUERY: &[u8] = b"\x03SELECT @@max_allowed_packet";

/// The query that stands for a refused command, with the command's sequence id.
fn refusal_packet(seq: u8, refused: Refused) -> Vec<u8> {
    let mut body = vec![COM_QUERY];
    body.extend_from_slice(REFUSAL.as_bytes());
    body.extend_from_slice(refused.code().as_bytes());
    packet_of(seq, &body)
}

/// `body` as one packet (under 16 MB) with sequence id `seq`.
fn packet_of(seq: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len();
    let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    p.extend_from_slice(body);
    p
}

impl<R: AsyncRead + Unpin> AsyncRead for PacketBounded<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if self.given < self.out.len() {
                let n = (self.out.len() - self.given).min(buf.remaining());
                let from = self.given;
                buf.put_slice(&self.out[from..from + n]);
                self.given += n;
                return Poll::Ready(Ok(()));
            }
            if self.ended {
                return Poll::Ready(Ok(()));
            }
            if let Some(len) = self.declared() {
                if len > MAX_PACKET || self.skip_next {
                    self.refuse_oversized(len);
                    continue;
                }
            }
            let wanted = match self.skipping {
                0 => self.wanted(),
                n => n,
            };
            if wanted == 0 {
                self.take_packet();
                continue;
            }
            // A bounded scratch buffer: one packet at most, as the client declared it
            // (the admin port is not a hot path).
            let mut scratch = vec![0u8; wanted.min(64 * 1024)];
            let mut limited = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut limited) {
                Poll::Ready(Ok(())) => {
                    let got = limited.filled().len();
                    if got == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    if self.skipping > 0 {
                        self.skipping -= got;
                        self.refuse_when_skipped();
                    } else {
                        self.incoming.extend_from_slice(&scratch[..got]);
                    }
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{refusal, PacketBounded, Refused, MAX_PACKET};
    use tokio::io::AsyncReadExt;

    use super::packet_of as packet;

    async fn reads(wire: &[u8]) -> Vec<Vec<u8>> {
        let mut r = PacketBounded::new(wire);
        let mut buf = [0u8; 1024];
        let mut reads = Vec::new();
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            reads.push(buf[..n].to_vec());
        }
        reads
    }

    #[tokio::test]
    async fn reads_stop_at_each_packet_end() {
        // The login's answer (sequence id 1) is no command: passed as it is.
        let mut wire = packet(1, &[0x85, 0xa6, 0xff, 0x01]);
        wire.extend(packet(0, b"\x03SHOW TENANTS"));
        wire.extend(packet(0, b"\x0e"));
        wire.extend(packet(0, b"\x03SELECT 1"));
        let reads = reads(&wire).await;
        let sizes: Vec<usize> = reads.iter().map(Vec::len).collect();
        assert_eq!(sizes, [8, 17, 5, 13]);
        assert_eq!(reads.concat(), wire);
    }

    #[tokio::test]
    async fn commands_the_library_mishandles_become_refusals_or_vanish() {
        let mut wire = packet(0, b"");
        wire.extend(packet(0, &[0x11, b'x', 0]));
        wire.extend(packet(0, &[0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0]));
        wire.extend(packet(0, &[0x19, 1]));
        wire.extend(packet(0, &[0x18, 1, 0, 0, 0, 0, 0, b'x']));
        wire.extend(packet(0, b"\x03\xff\xfe"));
        wire.extend(packet(0, &[0x1F]));
        wire.extend(packet(0, &[0x40]));
        let got: Vec<Option<Refused>> = reads(&wire)
            .await
            .iter()
            .map(|p| {
                assert_eq!(p[4], 0x03, "{p:?}");
                refusal(std::str::from_utf8(&p[5..]).unwrap())
            })
            .collect();
        assert_eq!(
            got,
            [
                Some(Refused::Unknown),
                Some(Refused::Unsupported(0x11)),
                Some(Refused::Prepared),
                // The short close and the long data took no answer: gone.
                Some(Refused::NotUtf8),
                Some(Refused::Reset),
                Some(Refused::Unknown),
            ]
        );
    }

    /// The library keeps a whole command in memory: a client chaining 16 MB packets, before
    /// any login, grew it without end.
    #[tokio::test]
    async fn a_packet_over_the_limit_is_never_read() {
        let mut wire = packet(0, b"\x03SELECT 1");
        // 16 MB, and a next packet continuing it: read past, never kept.
        let mut huge = b"\x03SELECT '".to_vec();
        huge.resize(0xFF_FFFF + 10, b'x');
        wire.extend([0xff, 0xff, 0xff, 0]);
        wire.extend(&huge[..0xFF_FFFF]);
        wire.extend(packet(1, &huge[0xFF_FFFF..]));
        wire.extend(packet(0, b"\x03SELECT 2"));
        let got = reads(&wire).await;
        assert_eq!(
            got.len(),
            3,
            "{:?}",
            got.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert_eq!(got[0], packet(0, b"\x03SELECT 1"));
        assert_eq!(
            refusal(std::str::from_utf8(&got[1][5..]).unwrap()),
            Some(Refused::TooLarge)
        );
        assert_eq!(got[1][3], 1, "stamped with the last packet's sequence id");
        assert_eq!(got[2], packet(0, b"\x03SELECT 2"), "the connection goes on");
        // A login packet over it ends the connection with nothing handed on.
        let mut login = vec![0, 0, 0x20, 1];
        login.extend(vec![0; 64]);
        assert!(reads(&login).await.is_empty());
        // opensrv-mysql's own answer (64 MiB) is not given: the shim's is.
        let bare = packet(0, b"\x03SELECT @@max_allowed_packet");
        assert_eq!(
            reads(&bare).await.concat(),
            packet(0, b"\x03SELECT @@max_allowed_packet ")
        );
        // One at the limit is passed whole.
        let mut body = b"\x03SELECT '".to_vec();
        body.resize(MAX_PACKET - 1, b'y');
        body.push(b'\'');
        let big = packet(0, &body);
        assert_eq!(reads(&big).await.concat(), big);
    }
}
