//! Streams one response from a backend to a client verbatim: scan what arrived, forward it
//! in one write, read more, until the scanner says the response ended.

use std::io;

use bytes::Buf;

use super::error::BackendError;
use crate::protocol::scan::{Event, ScanError, Scanner};
use crate::protocol::PacketStream;

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
                c.write_raw(&backend.rbuf[..n])
                    .await
                    .map_err(RelayError::Client)?;
                forwarded = true;
            }
            backend.rbuf.advance(n);
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

/// Forwards the client's file contents, up to and including the empty closing packet.
async fn relay_infile(
    client: &mut PacketStream,
    backend: &mut PacketStream,
) -> Result<(), RelayError> {
    loop {
        let pkt = client.read_packet().await.map_err(RelayError::Client)?;
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
