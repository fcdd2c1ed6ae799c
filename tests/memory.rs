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

/// Long data of no data (the server takes it, as an empty value) or of a byte per chunk:
/// each chunk was held on its own and counted as its data only, so a client sending
/// millions of them grew the proxy's memory without limit. Chunks for the parameter of the
/// one before are now added to it, and one held on its own counts what holding it costs.
#[tokio::test]
async fn long_data_in_tiny_chunks_is_bounded() {
    let bin = binary::spawn(
        |port| binary::globex_config(port, &format!("max_packet = \"{MAX_PACKET_MB}M\"")),
        &[],
        Stdio::null(),
    );
    // Connects once the proxy listens.
    let _other = bin.connect("globex_app", Some("wf_globex")).await;
    let mut c = client(bin.port).await;
    let pid = bin.pid();
    let base = rss_mb(pid);
    let id = prepare(&mut c, "SELECT LENGTH(?)").await;
    let mut empty = vec![0x18];
    empty.extend_from_slice(&id.to_le_bytes());
    empty.extend_from_slice(&0u16.to_le_bytes());
    // Four million empty chunks, queued in batches so the test is not a syscall per chunk.
    for _ in 0..40 {
        for _ in 0..100_000 {
            c.io.queue(0, &empty);
        }
        c.io.flush().await.unwrap();
    }
    let answer = execute(&mut c, id).await;
    assert!(err_of(&answer).is_none(), "{:?}", err_of(&answer));
    // The binary row: its header, the NULL bitmap, LENGTH's INT 0.
    let row = [0u8; 6];
    assert!(
        packets(&answer).iter().any(|(_, p)| p[..] == row[..]),
        "LENGTH of empty long data is 0: {:?}",
        packets(&answer)
    );
    assert_bounded(pid, base, "four million empty chunks");

    // Chunks that alternate between two parameters cannot be added up: each counts its
    // cost, and the session's limit is reached as with long data of that size.
    let id = prepare(&mut c, "SELECT LENGTH(?), LENGTH(?)").await;
    for _ in 0..4 {
        for i in 0..100_000u32 {
            let mut p = vec![0x18];
            p.extend_from_slice(&id.to_le_bytes());
            p.extend_from_slice(&((i % 2) as u16).to_le_bytes());
            p.push(b'x');
            c.io.queue(0, &p);
        }
        c.io.flush().await.unwrap();
    }
    let mut p = vec![0x17];
    p.extend_from_slice(&id.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(0);
    p.push(1);
    p.extend_from_slice(&[0xfc, 0, 0xfc, 0]);
    let answer = c.command(&p, Expect::ResultSets).await;
    let (code, message) = err_of(&answer).expect("an ERR past the limit");
    assert_eq!(code, 1105, "{message}");
    assert_bounded(pid, base, "400,000 one-byte chunks");
}

/// Prepared statements a session never closes: their count was bounded (the server's
/// `max_prepared_stmt_count`), their text not, while the server keeps only the statements
/// its connections' caches hold. Past 64 MiB of text a prepare gets the server's refusal.
#[tokio::test]
async fn prepared_statements_text_is_bounded() {
    let bin = binary::spawn(
        |port| binary::globex_config(port, &format!("max_packet = \"{MAX_PACKET_MB}M\"")),
        &[],
        Stdio::null(),
    );
    let mut other = bin.connect("globex_app", Some("wf_globex")).await;
    let mut c = client(bin.port).await;
    let pid = bin.pid();
    let base = rss_mb(pid);
    let pad = "x".repeat(MB);
    let mut refused = None;
    for i in 0..100 {
        let mut p = vec![0x16];
        p.extend_from_slice(format!("SELECT {i}, LENGTH('{pad}')").as_bytes());
        let answer = c.command(&p, Expect::Prepare).await;
        if let Some(e) = err_of(&answer) {
            refused = Some((i, e));
            break;
        }
    }
    let (at, (code, message)) = refused.expect("a refusal past 64 MiB of text");
    assert_eq!(code, 1461, "{message}");
    assert!((60..=64).contains(&at), "refused at statement {at}");
    let now = rss_mb(pid);
    println!("{at} statements of 1 MB: RSS {base} MB -> {now} MB");
    assert!(now < base + 64 + RSS_BOUND_MB, "RSS {base} -> {now} MB");
    use mysql_async::prelude::*;
    let one: i64 = other.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}

/// A client that sends a statement with a 400 MB result and then reads nothing of it: the
/// relay reads from the server only as fast as the client takes the answer (backpressure),
/// so the proxy holds no more than its buffers while the server waits on a full socket,
/// another session is answered meanwhile, and once the client reads it gets every row whole.
#[tokio::test]
async fn a_client_reading_nothing_of_a_large_result_is_not_buffered() {
    use mysql_async::prelude::Queryable;
    use std::time::{Duration, Instant};
    use switchyard::protocol::MariadbCapabilities;

    const ROWS: usize = 400;
    const ROW: usize = 1_000_000;
    /// How long the statement must stay on the server, its answer unread, before the proxy's
    /// memory is judged: sent straight through, 400 MB take well under a second on loopback.
    const HELD_MS: u64 = 3_000;
    const NEEDLE: &str = "unread_large_result";

    let bin = binary::spawn(|port| binary::globex_config(port, ""), &[], Stdio::null());
    let mut other = bin.connect("globex_app", Some("wf_globex")).await;
    // A small receive buffer, set before connecting (the TCP window scale is fixed then).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let stream = socket
        .connect(([127, 0, 0, 1], bin.port).into())
        .await
        .unwrap();
    let caps = (modern_caps(), MariadbCapabilities::empty());
    let (mut c, _) =
        RawClient::login(stream, "globex_app", "globex_pw", Some("wf_globex"), caps).await;
    let pid = bin.pid();
    let base = rss_mb(pid);

    let sql = format!("SELECT /* {NEEDLE} */ REPEAT('x', {ROW}) FROM seq_1_to_{ROWS}");
    let mut q = vec![0x03];
    q.extend_from_slice(sql.as_bytes());
    c.send(&q).await;

    // Until the statement has been on the server for HELD_MS, its answer unread: the
    // proxy's RSS sampled all along, the other session asked once it has been held a second.
    let mut root = common::root().await;
    let started = Instant::now();
    let mut peak = base;
    let mut other_answered = None;
    let state = loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the statement was not held on the server for {HELD_MS} ms"
        );
        peak = peak.max(rss_mb(pid));
        let row: Option<(u64, String)> = root
            .exec_first(
                "SELECT CAST(TIME_MS AS UNSIGNED), STATE FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE CONCAT('%', ?, '%') AND ID <> CONNECTION_ID()",
                (NEEDLE,),
            )
            .await
            .unwrap();
        if let Some((ms, state)) = row {
            if ms >= 1_000 && other_answered.is_none() {
                let asked = Instant::now();
                let one: i64 =
                    tokio::time::timeout(Duration::from_secs(5), other.query_first("SELECT 1"))
                        .await
                        .expect("another session answered while the large result waits")
                        .unwrap()
                        .unwrap();
                assert_eq!(one, 1);
                other_answered = Some(asked.elapsed());
            }
            if ms >= HELD_MS {
                break state;
            }
        } else {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the statement is not (or no longer) running on the server after {:?}",
                started.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let other_answered = other_answered.expect("the other session was asked");
    println!(
        "held {HELD_MS} ms unread (server state {state:?}), other session answered in \
         {other_answered:?}: peak RSS {base} MB -> {peak} MB"
    );
    assert!(
        peak < base + RSS_BOUND_MB,
        "an unread 400 MB result: RSS grew from {base} MB to {peak} MB (bound +{RSS_BOUND_MB} MB)"
    );
    assert_bounded(pid, base, "an unread 400 MB result, still on the server");

    // The client reads at last: the column count, the column, ROWS rows of ROW 'x's, the OK.
    let read_from = Instant::now();
    let x = vec![b'x'; ROW];
    let mut bytes = 0;
    let mut rows = 0;
    let count = c.io.read_packet().await.unwrap();
    bytes += 4 + count.payload.len();
    assert_eq!(count.payload, [1], "one column");
    let column = c.io.read_packet().await.unwrap();
    bytes += 4 + column.payload.len();
    let end = loop {
        let p = c.io.read_packet().await.unwrap();
        bytes += 4 + p.payload.len();
        if p.payload.first() == Some(&0xFE) && p.payload.len() < 0xFF_FFFF {
            break p.payload;
        }
        assert_ne!(
            p.payload.first(),
            Some(&0xFF),
            "ERR mid-result: {:?}",
            parse_err(&p.payload)
        );
        // A length-encoded string of ROW bytes: 0xFD and a three-byte length, then the 'x's.
        let len = (ROW as u32).to_le_bytes();
        assert_eq!(p.payload[..4], [0xFD, len[0], len[1], len[2]], "row {rows}");
        assert!(p.payload[4..] == x[..], "row {rows} is ROW 'x's");
        rows += 1;
        if rows % 100 == 0 {
            peak = peak.max(rss_mb(pid));
        }
    };
    println!(
        "read {rows} rows, {bytes} bytes in {:?}; RSS while read: peak {peak} MB",
        read_from.elapsed()
    );
    assert_eq!(end[0], 0xFE, "the result ends with an OK");
    assert_eq!(rows, ROWS, "every row arrives");
    assert!(bytes > ROWS * ROW, "{bytes} bytes");
    assert!(
        peak < base + RSS_BOUND_MB,
        "RSS {base} -> {peak} MB while read"
    );
    assert_bounded(pid, base, "the 400 MB result read");

    // The session and the other one go on.
    let answer = c.query("SELECT 1").await;
    assert!(err_of(&answer).is_none(), "{:?}", err_of(&answer));
    let one: i64 = other.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}
