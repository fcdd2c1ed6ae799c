//! Admin logins: the `[admin]` user with mysql_native_password against the configured
//! password, and the ERR a refused login gets. opensrv-mysql answers a refused login itself
//! with ERR 1698; [`LoginErrWriter`] replaces that packet with the server's usual
//! ERR 1045 (28000) "Access denied for user ...", so clients and scripts see what MySQL sends.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use tokio::io::AsyncWrite;

use crate::protocol::auth::verify_native;
use crate::state::lock::Unpoisoned;
use crate::state::RuntimeState;

const NATIVE: &str = "mysql_native_password";

/// Whether `user` may log in with `response` to the scramble `salt`.
pub fn check(rt: &RuntimeState, plugin: &str, user: &[u8], salt: &[u8], response: &[u8]) -> bool {
    let Some(admin) = &rt.config.admin else {
        return false;
    };
    plugin == NATIVE
        && user == admin.user.as_bytes()
        && verify_native(salt, admin.password.expose(), response)
}

/// Set by the authentication hook when it refuses a login: (user, password given).
pub type Refusal = Arc<Mutex<Option<(String, bool)>>>;

enum Phase {
    /// Bytes go straight through.
    Pass,
    /// A login was refused: opensrv's ERR packet is collected here instead of sent.
    Capture(Vec<u8>),
    /// Our ERR packet, partly written.
    Emit(Vec<u8>, usize),
    /// Sent: anything more is dropped (the connection is closing).
    Done,
}

/// The write half of an admin connection; see the module docs.
pub struct LoginErrWriter<W> {
    inner: W,
    refusal: Refusal,
    host: String,
    phase: Phase,
}

impl<W> LoginErrWriter<W> {
    pub fn new(inner: W, refusal: Refusal, host: String) -> Self {
        LoginErrWriter {
            inner,
            refusal,
            host,
            phase: Phase::Pass,
        }
    }

    fn refused(&self) -> Option<(String, bool)> {
        self.refusal.locked().clone()
    }
}

/// ERR 1045 for `user`, with sequence id `seq`.
pub fn access_denied_packet(seq: u8, user: &str, host: &str, with_password: bool) -> Vec<u8> {
    let msg = format!(
        "Access denied for user '{user}'@'{host}' (using password: {})",
        if with_password { "YES" } else { "NO" }
    );
    let mut payload = vec![0xff];
    payload.extend_from_slice(&1045u16.to_le_bytes());
    payload.extend_from_slice(b"#28000");
    payload.extend_from_slice(msg.as_bytes());
    let len = payload.len() as u32;
    let mut packet = len.to_le_bytes()[..3].to_vec();
    packet.push(seq);
    packet.extend_from_slice(&payload);
    packet
}

impl<W: AsyncWrite + Unpin> AsyncWrite for LoginErrWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if matches!(self.phase, Phase::Pass) && self.refused().is_some() {
            self.phase = Phase::Capture(Vec::new());
        }
        let this = &mut *self;
        match &mut this.phase {
            Phase::Pass => Pin::new(&mut this.inner).poll_write(cx, buf),
            Phase::Capture(captured) => {
                captured.extend_from_slice(buf);
                Poll::Ready(Ok(buf.len()))
            }
            Phase::Emit(..) | Phase::Done => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Phase::Capture(captured) = &this.phase {
            if captured.len() >= 4 {
                let (user, with_password) = this.refused().unwrap_or_default();
                let packet = access_denied_packet(captured[3], &user, &this.host, with_password);
                this.phase = Phase::Emit(packet, 0);
            }
        }
        while let Phase::Emit(packet, written) = &mut this.phase {
            if *written == packet.len() {
                this.phase = Phase::Done;
                break;
            }
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &packet[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn passes_bytes_until_a_refusal_then_replaces_the_err() {
        let refusal: Refusal = Arc::default();
        let mut w = LoginErrWriter::new(Vec::new(), Arc::clone(&refusal), "127.0.0.1".into());
        w.write_all(b"greeting").await.unwrap();
        w.flush().await.unwrap();
        *refusal.lock().unwrap() = Some(("admin".into(), true));
        // What opensrv writes: a header with sequence id 2, then its own ERR 1698.
        w.write_all(&[9, 0, 0, 2]).await.unwrap();
        w.write_all(&[0xff, 0xa2, 0x06, b'#', b'2', b'8', b'0', b'0', b'0'])
            .await
            .unwrap();
        w.flush().await.unwrap();
        w.write_all(b"ignored").await.unwrap();
        w.flush().await.unwrap();
        let out = w.inner;
        assert_eq!(&out[..8], b"greeting");
        let packet = &out[8..];
        assert_eq!(packet[3], 2, "sequence id kept");
        assert_eq!(&packet[4..7], &[0xff, 0x15, 0x04], "ERR 1045");
        assert_eq!(&packet[7..13], b"#28000");
        let msg = std::str::from_utf8(&packet[13..]).unwrap();
        assert_eq!(
            msg,
            "Access denied for user 'admin'@'127.0.0.1' (using password: YES)"
        );
        assert_eq!(
            u32::from_le_bytes([packet[0], packet[1], packet[2], 0]) as usize,
            packet.len() - 4
        );
    }
}
