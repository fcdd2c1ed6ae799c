//! What one authenticated client can make Switchyard hold: long data for a prepared
//! statement and the SET history kept for replay are bounded, read buffers shrink back after
//! big packets, and other sessions carry on. Measured on the real binary's resident memory.

mod common;

use std::process::Stdio;

use common::binary;
use common::raw::{modern_caps, packets, RawClient};
use switchyard::protocol::packets::parse_err;
use switchyard::protocol::scan::Expect;

const MB: usize = 1 << 20;
/// `server.max_packet` for these tests: long data is held up to this much per session.
const MAX_PACKET_MB: usize = 16;
/// How much the proxy's resident memory may grow while one client sends hundreds of
/// megabytes: the long-data limit, one packet in flight and allocator slack. Before the
/// limits the same load added 203 MB (long data) and 124 MB (SETs).
const RSS_BOUND_MB: usize = 64;

fn rss_mb(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb / 1024
}

fn assert_bounded(pid: u32, base: usize, what: &str) {
    let now = rss_mb(pid);
    println!("{what}: RSS {base} MB -> {now} MB");
    assert!(
        now < base + RSS_BOUND_MB,
        "{what}: RSS grew from {base} MB to {now} MB (bound +{RSS_BOUND_MB} MB)"
    );
}

async fn client(port: u16) -> RawClient {
    let caps = modern_caps();
    RawClient::connect(port, "globex_app", "globex_pw", Some("wf_globex"), caps)
        .await
        .0
}

fn err_of(answer: &[u8]) -> Option<(u16, String)> {
    let first = packets(answer).into_iter().next()?;
    (first.1.first() == Some(&0xFF))
        .then(|| parse_err(&first.1))
        .flatten()
}

async fn prepare(c: &mut RawClient, sql: &str) -> u32 {
    let mut p = vec![0x16];
    p.extend_from_slice(sql.as_bytes());
    let answer = c.command(&p, Expect::Prepare).await;
    let ok = &packets(&answer)[0].1;
    assert_eq!(ok[0], 0, "prepare: {:?}", err_of(&answer));
    u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]])
}

async fn send_long_data(c: &mut RawClient, id: u32, chunk: &[u8]) {
    let mut p = vec![0x18];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(chunk);
    c.io.send(0, &p).await.unwrap();
}

/// Executes a one-parameter statement whose value came as long data (a BLOB).
async fn execute(c: &mut RawClient, id: u32) -> Vec<u8> {
    let mut p = vec![0x17];
    p.extend_from_slice(&id.to_le_bytes());
    p.push(0); // no cursor
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(0); // null bitmap
    p.push(1); // types follow
    p.extend_from_slice(&[0xfc, 0]); // MYSQL_TYPE_BLOB
    c.command(&p, Expect::ResultSets).await
}

#[tokio::test]
async fn one_client_cannot_make_the_proxy_hold_hundreds_of_megabytes() {
    let bin = binary::spawn(
        |port| binary::globex_config(port, &format!("max_packet = \"{MAX_PACKET_MB}M\"")),
        &[],
        Stdio::null(),
    );
    let mut other = bin.connect("globex_app", Some("wf_globex")).await;
    let mut c = client(bin.port).await;
    let pid = bin.pid();
    let base = rss_mb(pid);

    // 200 MB of long data for one parameter.
    let id = prepare(&mut c, "SELECT LENGTH(?)").await;
    let chunk = vec![b'x'; MB];
    for _ in 0..200 {
        send_long_data(&mut c, id, &chunk).await;
    }
    let answer = execute(&mut c, id).await;
    let (code, message) = err_of(&answer).expect("an ERR past the limit");
    assert_eq!(code, 1105, "{message}");
    assert!(message.contains("max_allowed_packet"), "{message}");
    assert_bounded(pid, base, "200 MB of long data");
    // As on the server, the statement stays failed until it is reset, then works again
    // with long data within the limit.
    send_long_data(&mut c, id, &chunk).await;
    let answer = execute(&mut c, id).await;
    assert_eq!(
        err_of(&answer).map(|e| e.0),
        Some(1105),
        "failed until reset"
    );
    let mut reset = vec![0x1A];
    reset.extend_from_slice(&id.to_le_bytes());
    let answer = c.command(&reset, Expect::Single).await;
    assert!(err_of(&answer).is_none(), "{:?}", err_of(&answer));
    send_long_data(&mut c, id, &chunk).await;
    let answer = execute(&mut c, id).await;
    assert!(err_of(&answer).is_none(), "{:?}", err_of(&answer));
    let length = (MB as u32).to_le_bytes();
    assert!(
        answer.windows(4).any(|w| w == length),
        "LENGTH of 1 MB of long data, in the binary row"
    );

    // 300 SETs, each carrying a 1 MB comment.
    let pad = "x".repeat(MB);
    for i in 0..300 {
        let mode = if i % 2 == 0 {
            "ANSI_QUOTES"
        } else {
            "PIPES_AS_CONCAT"
        };
        let answer = c
            .query(&format!("SET /* {i} {pad} */ sql_mode = '{mode}'"))
            .await;
        assert!(err_of(&answer).is_none(), "SET {i}: {:?}", err_of(&answer));
    }
    assert_bounded(pid, base, "300 SETs of 1 MB");
    let answer = c.query("SELECT @@sql_mode").await;
    assert!(
        String::from_utf8_lossy(&answer).contains("PIPES_AS_CONCAT"),
        "the session keeps its last SET"
    );

    // Nobody else noticed.
    use mysql_async::prelude::*;
    let one: i64 = other.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}
