//! A reader that never hands the admin protocol library more than the rest of one MySQL
//! packet per read.
//!
//! opensrv-mysql 0.7.0 (the latest release) frees its read buffer while the packet it just
//! returned still points into it whenever one read delivered more than one packet (a client
//! that pipelines, as MariaDB Connector/J does at connect): a use after free
//! (databendlabs/opensrv#66, fixed upstream after that release). Reads that end at packet
//! boundaries never take that path.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

const HEADER: usize = 4;

pub struct PacketBounded<R> {
    inner: R,
    header: [u8; HEADER],
    /// Header bytes seen of the current packet (HEADER: reading its payload).
    seen: usize,
    /// Payload bytes of the current packet still to come.
    left: usize,
}

impl<R> PacketBounded<R> {
    pub fn new(inner: R) -> Self {
        PacketBounded {
            inner,
            header: [0; HEADER],
            seen: 0,
            left: 0,
        }
    }

    /// How many bytes the next read may return without passing the packet's end.
    fn allowance(&self) -> usize {
        if self.seen < HEADER {
            HEADER - self.seen
        } else {
            self.left
        }
    }

    /// Accounts for bytes handed out.
    fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.seen < HEADER {
                let n = (HEADER - self.seen).min(bytes.len());
                self.header[self.seen..self.seen + n].copy_from_slice(&bytes[..n]);
                self.seen += n;
                bytes = &bytes[n..];
                if self.seen == HEADER {
                    let h = self.header;
                    self.left =
                        usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
                    if self.left == 0 {
                        self.seen = 0;
                    }
                }
            } else {
                let n = self.left.min(bytes.len());
                self.left -= n;
                bytes = &bytes[n..];
                if self.left == 0 {
                    self.seen = 0;
                }
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for PacketBounded<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let allowed = self.allowance().min(buf.remaining());
        // A bounded scratch buffer rather than a window into `buf`: marking bytes of `buf`
        // filled after another reader wrote them would take `unsafe`. The admin port is not
        // a hot path.
        let mut scratch = vec![0u8; allowed];
        let mut limited = ReadBuf::new(&mut scratch);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        if let Poll::Ready(Ok(())) = polled {
            let got = limited.filled();
            buf.put_slice(got);
            self.advance(got);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::PacketBounded;
    use tokio::io::AsyncReadExt;

    fn packet(seq: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len();
        let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        p.extend_from_slice(body);
        p
    }

    #[tokio::test]
    async fn reads_stop_at_each_packet_end() {
        let mut wire = packet(0, b"\x03SHOW TENANTS");
        wire.extend(packet(0, b""));
        wire.extend(packet(0, b"\x03SELECT 1"));
        let mut r = PacketBounded::new(&wire[..]);
        let mut buf = [0u8; 1024];
        let mut reads = Vec::new();
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            reads.push(buf[..n].to_vec());
        }
        let sizes: Vec<usize> = reads.iter().map(Vec::len).collect();
        // Header, payload; an empty packet's header alone; header, payload.
        assert_eq!(sizes, [4, 13, 4, 4, 9]);
        assert_eq!(reads.concat(), wire);
    }
}
