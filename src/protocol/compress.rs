//! The protocol's compression (CLIENT_COMPRESS) on a client connection: zlib-compressed
//! frames around the ordinary packet stream, each with a 7-byte header (compressed length,
//! compressed sequence id, uncompressed length; 0 when the frame is stored uncompressed).

use std::io::{self, Read, Write};

use bytes::{Buf, BufMut, BytesMut};
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use super::MAX_PAYLOAD;

const HEADER: usize = 7;
/// Frames smaller than this are sent as they are: zlib would make them larger (the
/// servers' own threshold).
const MIN_COMPRESS: usize = 50;
/// The read buffer's capacity kept once it is empty again.
const KEEP_AT_MOST: usize = 1 << 20;

/// One direction's framing state for a compressed connection.
#[derive(Debug, Default)]
pub struct Compression {
    /// Frames read from the socket and not yet decoded.
    pub raw: BytesMut,
    /// The next compressed sequence id: a command starts at the client's, and the answer's
    /// frames count on from it.
    seq: u8,
    /// The start of a packet not yet whole, held for the frame that completes it (see
    /// [`frame`](Self::frame)): at most one packet, 16 MB.
    held: Vec<u8>,
}

/// Inflates `body` onto `out`: exactly `plain` bytes, or Err (as the server refuses a frame
/// whose data does not fill, or overflows, the length its header gives).
fn inflate(body: &[u8], plain: usize, out: &mut BytesMut) -> io::Result<()> {
    // Room for a usual frame at once; a large one grows as it inflates.
    out.reserve(plain.min(256 << 10));
    let mut z = ZlibDecoder::new(body).take(plain as u64);
    let inflated = io::copy(&mut z, &mut out.writer())?;
    let more = z.into_inner().read(&mut [0u8; 1])?;
    if inflated == plain as u64 && more == 0 {
        return Ok(());
    }
    let m = match more {
        0 => format!("{inflated} bytes where the header says {plain}"),
        _ => format!("more bytes than the header's {plain}"),
    };
    Err(io::Error::new(io::ErrorKind::InvalidData, m))
}

impl Compression {
    /// Decodes the first whole frame in `raw` onto `out`. `Ok(None)`: more bytes needed.
    pub fn decode(&mut self, out: &mut BytesMut) -> io::Result<Option<usize>> {
        let Some(h) = self.raw.get(..HEADER) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
        let seq = h[3];
        let plain = u32::from_le_bytes([h[4], h[5], h[6], 0]) as usize;
        if self.raw.len() < HEADER + len {
            return Ok(None);
        }
        let body = &self.raw[HEADER..HEADER + len];
        if plain == 0 {
            out.extend_from_slice(body);
        } else {
            // Grown as the data inflates, not to the length the header claims: a frame of a
            // few bytes that claims 16 MB costs no 16 MB of zeroed memory before it fails.
            let start = out.len();
            if let Err(e) = inflate(body, plain, out) {
                out.truncate(start);
                let m = format!("compressed frame: {e}");
                return Err(io::Error::new(io::ErrorKind::InvalidData, m));
            }
        }
        self.raw.advance(HEADER + len);
        if self.raw.is_empty() && self.raw.capacity() > KEEP_AT_MOST {
            // A large frame (up to 16 MB) grew it: not kept for the connection's life.
            self.raw = BytesMut::new();
        }
        self.seq = seq.wrapping_add(1);
        Ok(Some(if plain == 0 { len } else { plain }))
    }

    /// The compressed sequence starts again, as it does with each command.
    pub fn restart(&mut self) {
        self.seq = 0;
    }

    /// `bytes` (packets, the last of them perhaps not whole yet) as compressed frames that
    /// end where packets end, as a server's do for any packet that fits its buffer. An answer
    /// is relayed as it arrives, so a large row comes in pieces, and mysql-connector-python's
    /// pure driver reads a packet a frame cuts short from the next frame only: a row over
    /// several frames did not parse. A packet's start is held here until the rest arrives.
    pub fn frame(&mut self, bytes: &[u8]) -> io::Result<Vec<u8>> {
        if self.held.is_empty() {
            let whole = whole_packets(bytes);
            self.held.extend_from_slice(&bytes[whole..]);
            return self.frame_chunks(&bytes[..whole]);
        }
        self.held.extend_from_slice(bytes);
        let whole = whole_packets(&self.held);
        if whole == 0 {
            return Ok(Vec::new());
        }
        let rest = self.held.split_off(whole);
        let ready = std::mem::replace(&mut self.held, rest);
        self.frame_chunks(&ready)
    }

    /// `bytes` as compressed frames of at most 16 MB - 1 each, cut wherever that falls.
    fn frame_chunks(&mut self, bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(bytes.len() / 2 + HEADER);
        for chunk in bytes.chunks(MAX_PAYLOAD) {
            let (body, plain) = if chunk.len() < MIN_COMPRESS {
                (chunk.to_vec(), 0)
            } else {
                let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                z.write_all(chunk)?;
                let deflated = z.finish()?;
                // Stored when zlib did not make it smaller, as servers do: a 16 MB chunk
                // that grew would not fit the header's 3-byte length.
                if deflated.len() < chunk.len() {
                    (deflated, chunk.len())
                } else {
                    (chunk.to_vec(), 0)
                }
            };
            let len = (body.len() as u32).to_le_bytes();
            let plain = (plain as u32).to_le_bytes();
            out.extend_from_slice(&[len[0], len[1], len[2], self.seq]);
            out.extend_from_slice(&plain[..3]);
            out.extend_from_slice(&body);
            self.seq = self.seq.wrapping_add(1);
        }
        Ok(out)
    }
}

/// How many bytes at the start of `bytes` are whole packets.
fn whole_packets(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(h) = bytes.get(at..at + 4) {
        let end = at + 4 + u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
        if end > bytes.len() {
            break;
        }
        at = end;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(c: &mut Compression) -> BytesMut {
        let mut out = BytesMut::new();
        while c.decode(&mut out).unwrap().is_some() {}
        out
    }

    #[test]
    fn what_zlib_cannot_shrink_is_stored() {
        // Incompressible (xorshift): deflated it would be larger than it is.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut tx = Compression::default();
        let framed = tx.frame_chunks(&noise).unwrap();
        assert_eq!(&framed[4..7], &[0, 0, 0], "stored: uncompressed length 0");
        assert_eq!(&framed[HEADER..], &noise[..]);
        let mut rx = Compression::default();
        rx.raw.extend_from_slice(&framed);
        assert_eq!(&decode_all(&mut rx)[..], &noise[..]);
    }

    #[test]
    fn frames_round_trip_small_and_large() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for bytes in [b"\x01\x00\x00\x00\x0e".to_vec(), big] {
            let mut tx = Compression::default();
            let mut rx = Compression::default();
            rx.raw.extend_from_slice(&tx.frame_chunks(&bytes).unwrap());
            assert_eq!(&decode_all(&mut rx)[..], &bytes[..]);
            assert!(rx.raw.is_empty());
        }
    }

    /// A frame whose header claims more than its data inflates to is refused, without
    /// memory for what it claims; so is one that inflates to more.
    #[test]
    fn a_frame_is_held_to_its_header() {
        let mut tx = Compression::default();
        let mut framed = tx.frame_chunks(&[b'x'; 1000]).unwrap();
        framed[4..7].copy_from_slice(&[0xff, 0xff, 0xff]);
        let mut rx = Compression::default();
        rx.raw.extend_from_slice(&framed);
        let mut out = BytesMut::new();
        let e = rx.decode(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string()
                .contains("1000 bytes where the header says 16777215"),
            "{e}"
        );
        assert!(
            out.is_empty() && out.capacity() < 1 << 20,
            "{}",
            out.capacity()
        );
        framed[4..7].copy_from_slice(&[100, 0, 0]);
        let mut rx = Compression::default();
        rx.raw.extend_from_slice(&framed);
        let e = rx.decode(&mut out).unwrap_err();
        assert!(
            e.to_string().contains("more bytes than the header's 100"),
            "{e}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn small_frames_are_stored_and_large_ones_shrink() {
        let mut c = Compression::default();
        let small = c.frame(b"\x01\x00\x00\x00\x0e").unwrap();
        assert_eq!(&small[4..7], &[0, 0, 0], "stored, uncompressed length 0");
        let big = c.frame_chunks(&[b'x'; 10_000]).unwrap();
        assert!(big.len() < 200);
        assert_eq!(big[3], 1, "sequence ids count on");
    }

    #[test]
    fn answers_continue_the_commands_sequence() {
        let mut client = Compression::default();
        let mut server = Compression::default();
        let cmd = client.frame(b"\x07\x00\x00\x00\x03SELECT").unwrap();
        server.raw.extend_from_slice(&cmd);
        decode_all(&mut server);
        let answer = server
            .frame(b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00")
            .unwrap();
        assert_eq!(answer[3], 1);
    }

    #[test]
    fn a_packet_that_arrives_in_pieces_goes_out_in_one_frame() {
        let row: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut answer = vec![0x02, 0x00, 0x00, 0x01, 0x01, 0x01];
        answer.extend_from_slice(&[0xA0, 0x86, 0x01, 0x02]);
        answer.extend_from_slice(&row);
        answer.extend_from_slice(b"\x01\x00\x00\x03\xfe");
        let mut tx = Compression::default();
        // Pieces cut inside the row, twice, then inside the last packet's header (the row
        // ends at 100,010), then the rest.
        let cuts = [0, 30_000, 100_008, 100_012, answer.len()];
        let frames: Vec<Vec<u8>> = cuts
            .windows(2)
            .map(|w| tx.frame(&answer[w[0]..w[1]]).unwrap())
            .collect();
        let mut rx = Compression::default();
        let mut next = |frame: &[u8]| {
            rx.raw.extend_from_slice(frame);
            let mut out = BytesMut::new();
            assert!(rx.decode(&mut out).unwrap().is_some(), "one whole frame");
            assert!(rx.raw.is_empty(), "only one");
            out
        };
        assert_eq!(&next(&frames[0])[..], &answer[..6], "the first packet only");
        assert!(frames[1].is_empty(), "nothing whole yet");
        assert_eq!(&next(&frames[2])[..], &answer[6..100_010], "the row, whole");
        assert_eq!(&next(&frames[3])[..], &answer[100_010..], "the last packet");
        assert!(tx.held.is_empty());
    }

    #[test]
    fn a_large_frames_buffer_is_let_go() {
        let big = vec![b'x'; 4 << 20];
        let mut rx = Compression::default();
        // As the reads of a large frame grow it.
        rx.raw.reserve(4 << 20);
        rx.raw
            .extend_from_slice(&Compression::default().frame_chunks(&big).unwrap());
        assert_eq!(decode_all(&mut rx).len(), big.len());
        assert!(rx.raw.capacity() <= KEEP_AT_MOST, "{}", rx.raw.capacity());
    }

    #[test]
    fn partial_and_corrupt_frames() {
        let mut tx = Compression::default();
        let framed = tx.frame_chunks(&[7u8; 1000]).unwrap();
        let mut rx = Compression::default();
        rx.raw.extend_from_slice(&framed[..framed.len() - 1]);
        assert!(rx.decode(&mut BytesMut::new()).unwrap().is_none());
        let mut bad = framed.clone();
        // Not a zlib stream header.
        bad[HEADER] = 0xFF;
        let mut rx = Compression::default();
        rx.raw.extend_from_slice(&bad);
        let mut out = BytesMut::new();
        assert!(rx.decode(&mut out).is_err());
        assert!(out.is_empty());
    }
}
