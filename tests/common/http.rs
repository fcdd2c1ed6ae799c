//! GETs to Switchyard's HTTP endpoint (/metrics, the probes, the status page), one fresh
//! HTTP/1.1 connection each, for the tests that read it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP answer: status, head (lower-cased), body (a chunked one joined).
pub struct HttpAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// GETs `path` from `addr` with `extra` header lines (each ending in `\r\n`); the whole
/// answer must arrive `within`.
pub async fn get(addr: SocketAddr, path: &str, extra: &str, within: Duration) -> HttpAnswer {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(within, s.read_to_end(&mut raw))
        .await
        .expect("HTTP answer in time")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        unchunk(body)
    } else {
        body.to_owned()
    };
    HttpAnswer { status, head, body }
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size");
        let n = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
}
