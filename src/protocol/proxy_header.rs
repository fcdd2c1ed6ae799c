//! The PROXY protocol header (HAProxy's v1 text and v2 binary forms) a load balancer sends
//! ahead of the client's bytes: who the client really is.

use std::net::IpAddr;

use ppp::{v1, v2, HeaderResult, PartialResult};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Longest header accepted: a v1 line is at most 107 bytes, a v2 header 16 plus its
/// addresses and TLVs (HAProxy's, with TLS details and a unique id, stay well under this).
const MAX_HEADER: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("connection closed before a complete PROXY header")]
    Closed,
    #[error("cannot read the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a PROXY protocol header: {0}")]
    Invalid(String),
    #[error("PROXY header longer than {MAX_HEADER} bytes")]
    TooLong,
    #[error("bytes after the PROXY header before the greeting (a MySQL client waits for it)")]
    TrailingBytes,
}

/// Reads one PROXY header from `stream`, and nothing after it: a MySQL client sends nothing
/// before the server's greeting, so whatever follows the header in the same read is a
/// protocol violation, not data to keep. The client's address, or `None` when the header
/// names none (v2 `LOCAL`, a load balancer's own health check; v1 `UNKNOWN`; a Unix
/// socket): the connection's own address stands then.
pub async fn read(stream: &mut TcpStream) -> Result<Option<IpAddr>, ProxyHeaderError> {
    let mut buf = Vec::with_capacity(256);
    loop {
        if buf.len() >= MAX_HEADER {
            return Err(ProxyHeaderError::TooLong);
        }
        let mut chunk = [0u8; 512];
        let want = chunk.len().min(MAX_HEADER - buf.len());
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(ProxyHeaderError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse(&buf) {
            Parsed::Incomplete => continue,
            Parsed::Done { len, .. } if len != buf.len() => {
                return Err(ProxyHeaderError::TrailingBytes)
            }
            Parsed::Done { client, .. } => return Ok(client),
            Parsed::Invalid(e) => return Err(ProxyHeaderError::Invalid(e)),
        }
    }
}

/// What the bytes read so far hold.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Incomplete,
    /// A whole header of `len` bytes naming `client`.
    Done {
        len: usize,
        client: Option<IpAddr>,
    },
    Invalid(String),
}

/// Parses the start of a connection as a PROXY header (public for the fuzz target).
pub fn parse(buf: &[u8]) -> Parsed {
    let header = HeaderResult::parse(buf);
    if header.is_incomplete() {
        return Parsed::Incomplete;
    }
    match header {
        HeaderResult::V1(Ok(h)) => Parsed::Done {
            len: h.header.len(),
            client: match h.addresses {
                v1::Addresses::Tcp4(a) => Some(a.source_address.into()),
                v1::Addresses::Tcp6(a) => Some(a.source_address.into()),
                v1::Addresses::Unknown => None,
            },
        },
        HeaderResult::V2(Ok(h)) => Parsed::Done {
            len: h.len(),
            client: match (h.command, h.addresses) {
                (v2::Command::Local, _) => None,
                (_, v2::Addresses::IPv4(a)) => Some(a.source_address.into()),
                (_, v2::Addresses::IPv6(a)) => Some(a.source_address.into()),
                (_, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => None,
            },
        },
        HeaderResult::V1(Err(e)) => Parsed::Invalid(e.to_string()),
        HeaderResult::V2(Err(e)) => Parsed::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_header(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut h = v2::PROTOCOL_PREFIX.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
        h.extend_from_slice(addresses);
        h
    }

    #[test]
    fn v1_lines_name_the_client() {
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.5 51234 6033\r\n";
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            parse(line),
            Parsed::Done {
                len: line.len(),
                client: Some(ip)
            }
        );
        let six = b"PROXY TCP6 2001:db8::1 2001:db8::2 51234 6033\r\n";
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(matches!(parse(six), Parsed::Done { client: Some(c), .. } if c == ip));
        let unknown = b"PROXY UNKNOWN\r\n";
        assert_eq!(
            parse(unknown),
            Parsed::Done {
                len: unknown.len(),
                client: None
            }
        );
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7 10.0"), Parsed::Incomplete);
    }

    #[test]
    fn v2_headers_name_the_client_unless_local() {
        let mut addrs = vec![192, 0, 2, 7, 10, 0, 0, 5];
        addrs.extend_from_slice(&51234u16.to_be_bytes());
        addrs.extend_from_slice(&6033u16.to_be_bytes());
        let proxy = v2_header(1, 0x11, &addrs);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            parse(&proxy),
            Parsed::Done {
                len: proxy.len(),
                client: Some(ip)
            }
        );
        // A load balancer's health check speaks for itself.
        let local = v2_header(0, 0x00, &[]);
        assert_eq!(
            parse(&local),
            Parsed::Done {
                len: 16,
                client: None
            }
        );
        assert_eq!(parse(&proxy[..20]), Parsed::Incomplete);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"PROXY TCP4 not-an-ip 10.0.0.5 1 2\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            assert!(
                matches!(parse(bad), Parsed::Invalid(_)),
                "{:?}: {:?}",
                String::from_utf8_lossy(bad),
                parse(bad)
            );
        }
    }
}
