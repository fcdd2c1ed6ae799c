//! Limits and shutdown: connection limits per user, per tenant and overall answered with
//! the server's error codes; SIGTERM lets open transactions finish and loses no commit,
//! `/ready` says 503 meanwhile, and what is still open when the grace ends is rolled back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{connect, opts, primary_port};
use mysql_async::prelude::*;
use mysql_async::Conn;
use switchyard::config;
use switchyard::state::limits::{Kind, Limits, Refusal};
use switchyard::state::RuntimeState;

fn cfg(server_extra: &str, tenant_extra: &str, user_extra: &str) -> config::Config {
    let p = primary_port();
    let text = format!(
        r#"
[server]
{server_extra}

[[tenants]]
name = "globex"
schemas = ["wf_globex"]
primary = "127.0.0.1:{p}"
{tenant_extra}

[[users]]
name = "globex_app"
password = "globex_pw"
tenant = "globex"
{user_extra}

[[users]]
name = "ops"
password = "ops_pw"
tenants = "*"
"#
    );
    config::parse(&text, &|_| None).unwrap()
}

/// A proxy for `cfg`, and its limits (to read what they refused).
async fn start(cfg: config::Config) -> (common::Proxy, Arc<Limits>) {
    let state = RuntimeState::new(cfg);
    let limits = Arc::clone(&state.shared.limits);
    (common::start_state(state).await, limits)
}

async fn refused_code(port: u16, user: &str, db: &str) -> u16 {
    refusal(port, user, db).await.0
}

/// The code and SQLSTATE a login is refused with.
async fn refusal(port: u16, user: &str, db: &str) -> (u16, String) {
    match Conn::new(opts(port, user, Some(db))).await {
        Ok(_) => panic!("connection should be refused"),
        Err(mysql_async::Error::Server(e)) => (e.code, e.state),
        Err(e) => panic!("not a server error: {e}"),
    }
}

#[tokio::test]
async fn per_user_limit_answers_1203_and_frees_slots() {
    let (proxy, limits) = start(cfg("", "", "max_connections = 2")).await;
    let port = proxy.addr.port();
    let a = connect(port, "globex_app", Some("wf_globex")).await;
    let _b = connect(port, "globex_app", Some("wf_globex")).await;
    assert_eq!(refused_code(port, "globex_app", "wf_globex").await, 1203);
    assert_eq!(limits.refused(Refusal::User), 1, "counted for metrics");
    // Another user is not affected.
    let _ops = connect(port, "ops", Some("wf_globex")).await;
    a.disconnect().await.unwrap();
    // The slot is freed when the session's task ends, after the client's goodbye.
    common::until(
        "globex_app's slot freed",
        Duration::from_secs(10),
        || async { (limits.held(Kind::User, "globex_app") == 1).then_some(()) },
    )
    .await;
    let _c = connect(port, "globex_app", Some("wf_globex")).await;
}

#[tokio::test]
async fn per_tenant_and_global_limits_answer_1040() {
    let (proxy, limits) = start(cfg("", "max_connections = 1", "")).await;
    let port = proxy.addr.port();
    let _a = connect(port, "globex_app", Some("wf_globex")).await;
    // The server's SQLSTATE for a connection refused at its limit.
    assert_eq!(
        refusal(port, "ops", "wf_globex").await,
        (1040, "08004".to_string())
    );
    assert_eq!(limits.refused(Refusal::Tenant), 1);

    let (proxy, limits) = start(cfg("max_connections = 1", "", "")).await;
    let port = proxy.addr.port();
    let _a = connect(port, "globex_app", Some("wf_globex")).await;
    assert_eq!(refused_code(port, "globex_app", "wf_globex").await, 1040);
    assert_eq!(limits.refused(Refusal::Global), 1);
    assert_eq!(limits.refused(Refusal::Tenant), 0);
    // Sent in place of the greeting: without SQLSTATE, as the server sends it before it
    // knows the client speaks protocol 4.1 (libmysqlclient read `#08004` as the message).
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut refusal = Vec::new();
    s.read_to_end(&mut refusal).await.unwrap();
    assert_eq!(&refusal[3..7], &[0, 0xFF, 0x10, 0x04], "{refusal:?}");
    let message = String::from_utf8_lossy(&refusal[7..]);
    assert!(message.starts_with("Too many connections"), "{message}");
}

/// A second SIGTERM stops the binary at once, sessions still in a transaction cut off (the
/// server rolls them back), with a failing exit status: the first one waits up to
/// `shutdown_grace` for them, and a second did nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_stops_at_once() {
    let bin = common::binary::spawn(
        |port| common::binary::globex_config(port, "shutdown_grace = \"60s\""),
        &[],
        std::process::Stdio::null(),
    );
    let mut c = bin.connect("globex_app", Some("wf_globex")).await;
    c.query_drop("BEGIN").await.unwrap();
    let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    bin.sigterm();
    common::until("the listener closed", Duration::from_secs(10), || async {
        let at = ("127.0.0.1", bin.port);
        tokio::net::TcpStream::connect(at).await.err().map(|_| ())
    })
    .await;
    bin.sigterm();
    let status = bin.exit(Duration::from_secs(5)).await.status;
    assert!(!status.success(), "exit status {status:?}");
    drop(c);
}

/// The real binary, SIGTERM in the middle of a transaction loop: it exits 0, every commit it
/// acknowledged is in the table, and the transaction open at the signal was let finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_no_committed_transaction() {
    sigterm_mid_transaction("shutdown_grace = \"5s\"").await;
}

/// The same with one worker thread, which accepts and serves every client: it still stops
/// at the signal, and the open transaction finishes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_one_worker_loses_no_committed_transaction() {
    sigterm_mid_transaction("shutdown_grace = \"5s\"\nthreads = 1").await;
}

async fn sigterm_mid_transaction(server_keys: &str) {
    let mut root = shutdown_runs().await;
    let run_id = run_id();
    let bin = common::binary::spawn(
        |port| common::binary::globex_config(port, server_keys),
        &[],
        std::process::Stdio::null(),
    );
    let mut c = bin.connect("globex_app", Some("wf_globex")).await;
    let mut acknowledged = Vec::new();
    let mut signalled = false;
    for i in 0..100_000 {
        let signal_now = i == 50;
        let txn = async {
            c.query_drop("BEGIN").await?;
            c.query_drop(format!("INSERT INTO shutdown_runs VALUES ({i}, {run_id})"))
                .await?;
            if signal_now {
                // SIGTERM while this transaction is open: it must be let finish.
                bin.sigterm();
                // The drain has begun once the listener is closed.
                common::until("the listener closed", Duration::from_secs(10), || async {
                    let at = ("127.0.0.1", bin.port);
                    tokio::net::TcpStream::connect(at).await.err().map(|_| ())
                })
                .await;
            }
            c.query_drop("COMMIT").await
        };
        signalled |= signal_now;
        match txn.await {
            Ok(()) => acknowledged.push(i),
            Err(_) => break,
        }
    }
    assert!(
        signalled && acknowledged.len() >= 50,
        "{} commits",
        acknowledged.len()
    );
    let status = bin.exit(Duration::from_secs(10)).await.status;
    assert!(status.success(), "exit status {status:?}");
    let stored: Vec<i32> = root
        .query(format!(
            "SELECT id FROM wf_globex.shutdown_runs WHERE run = {run_id} ORDER BY id"
        ))
        .await
        .unwrap();
    assert_eq!(
        stored, acknowledged,
        "every acknowledged commit, and nothing else"
    );
    // The transaction open at the signal (number 50) was finished, not cut off.
    assert!(acknowledged.contains(&50));
}

/// `/ready` answers 503 once the binary is shutting down, while a transaction still keeps
/// it alive (operations.md: "200 while the instance accepts clients, 503 once it is
/// shutting down"): a load balancer checking it takes the instance out at SIGTERM instead
/// of sending new clients to a closed listener for the whole drain. The transaction still
/// commits, and the process then exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_answers_503_while_a_transaction_keeps_the_drain_going() {
    let mut root = shutdown_runs().await;
    let run_id = run_id();
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let bin = common::binary::spawn(
        |port| {
            let keys = format!("shutdown_grace = \"30s\"\nhttp_listen = \"{http}\"");
            common::binary::globex_config(port, &keys)
        },
        &[],
        std::process::Stdio::null(),
    );
    let mut c = bin.connect("globex_app", Some("wf_globex")).await;
    let ready = || async {
        common::http::get(http, "/ready", "", common::SHORT)
            .await
            .status
    };
    assert_eq!(ready().await, 200, "ready while serving");
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO shutdown_runs VALUES (1, {run_id})"))
        .await
        .unwrap();
    bin.sigterm();
    common::until("/ready answers 503", Duration::from_secs(10), || async {
        (ready().await == 503).then_some(())
    })
    .await;
    // Still draining: the transaction goes on, then commits.
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    c.query_drop("COMMIT").await.unwrap();
    let status = bin.exit(Duration::from_secs(10)).await.status;
    assert!(status.success(), "exit status {status:?}");
    let stored: Option<i64> = root
        .query_first(format!(
            "SELECT COUNT(*) FROM wf_globex.shutdown_runs WHERE run = {run_id}"
        ))
        .await
        .unwrap();
    assert_eq!(stored, Some(1), "the transaction open at SIGTERM committed");
}

/// When `shutdown_grace` runs out, a transaction that never commits is cut off and rolled
/// back, and the process exits 0 (configuration.md: "lets sessions in a transaction finish
/// it, for at most this long; then it exits 0"; product.md: SIGTERM "lets open
/// transactions finish for `shutdown_grace`"): an idle client holding a transaction open
/// must not keep a deploy or a `docker stop` waiting without end, and what it never
/// committed must not be committed for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncommitted_transaction_is_rolled_back_when_the_grace_runs_out() {
    let mut root = shutdown_runs().await;
    let run_id = run_id();
    let bin = common::binary::spawn(
        |port| common::binary::globex_config(port, "shutdown_grace = \"2s\""),
        &[],
        std::process::Stdio::null(),
    );
    let mut c = bin.connect("globex_app", Some("wf_globex")).await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO shutdown_runs VALUES (1, {run_id})"))
        .await
        .unwrap();
    let signalled = std::time::Instant::now();
    bin.sigterm();
    // The grace (2 s) and a margin: the process must not wait for the client.
    let status = bin.exit(Duration::from_secs(8)).await.status;
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took >= Duration::from_secs(2),
        "exited after {took:?}, before the grace was over"
    );
    // The process is gone: nobody can commit the transaction any more.
    let stored: Option<i64> = root
        .query_first(format!(
            "SELECT COUNT(*) FROM wf_globex.shutdown_runs WHERE run = {run_id}"
        ))
        .await
        .unwrap();
    assert_eq!(stored, Some(0), "the uncommitted row was committed");
    assert!(
        c.query_drop("COMMIT").await.is_err(),
        "the session outlived the process"
    );
}

/// A key no other run of these tests used: the tables keep earlier runs' rows.
fn run_id() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// A root connection to the primary, with the table the shutdown tests write their runs to.
async fn shutdown_runs() -> Conn {
    let mut root = common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_globex.shutdown_runs (id INT, run BIGINT, PRIMARY KEY (run, id))",
    )
    .await
    .unwrap();
    root
}

/// A handshake response carrying 64 KiB of connection attributes (CLIENT_CONNECT_ATTRS) is
/// accepted, and the session it opens works (security.md: "a handshake response with 64
/// KiB of connection attributes fits" in the 128 KiB allowed before login). Drivers send
/// attributes of their own and applications add more (program name, host, build): a
/// stricter limit before login would refuse such clients with ERR 1153.
#[tokio::test]
async fn a_handshake_with_64_kib_of_connection_attributes_is_accepted() {
    use mysql_common::packets::{AuthPlugin, HandshakeResponse};
    use mysql_common::proto::MySerialize;
    use switchyard::protocol::handshake::parse_greeting;
    use switchyard::protocol::{CapabilityFlags, MariadbCapabilities, PacketStream};
    let proxy = common::start(cfg("", "", "")).await;
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut io = PacketStream::new(tcp, 1 << 20);
    let greeting = io.read_packet().await.unwrap();
    let (server, nonce, _) = parse_greeting(&greeting.payload).unwrap();
    assert!(
        server
            .capabilities
            .contains(CapabilityFlags::CLIENT_CONNECT_ATTRS),
        "CLIENT_CONNECT_ATTRS offered"
    );
    // 16 attributes of 4 KiB each: 64 KiB of values, and their names and lengths.
    let attrs: std::collections::HashMap<String, String> = (0..16)
        .map(|i| (format!("attr_{i:02}"), "v".repeat(4096)))
        .collect();
    let answer = switchyard::protocol::auth::native_response(&nonce, "globex_pw");
    let caps = common::raw::modern_caps() & server.capabilities;
    let hello = HandshakeResponse::new(
        Some(&answer[..]),
        (10, 11, 0),
        Some(&b"globex_app"[..]),
        Some(&b"wf_globex"[..]),
        Some(AuthPlugin::MysqlNativePassword),
        caps,
        Some(attrs),
        1 << 24,
    );
    assert!(hello
        .capabilities()
        .contains(CapabilityFlags::CLIENT_CONNECT_ATTRS));
    let mut out = Vec::new();
    hello.serialize(&mut out);
    assert!(out.len() > 64 * 1024, "{} bytes", out.len());
    io.send(1, &out).await.unwrap();
    let reply = io.read_packet().await.unwrap().payload;
    if reply[0] == 0xFF {
        let (code, message) = switchyard::protocol::packets::parse_err(&reply).unwrap();
        panic!("login refused: {code} {message}");
    }
    assert_eq!(reply[0], 0, "login OK");
    let mut c = common::raw::RawClient {
        io,
        caps: hello.capabilities(),
        ext: MariadbCapabilities::empty(),
        server,
        connection_id: 0,
    };
    let answer = c.query("SELECT 'attrs ok'").await;
    let rows = common::raw::packets(&answer);
    assert!(
        rows.iter().any(|(_, p)| p.ends_with(b"attrs ok")),
        "the query's row: {} packets",
        rows.len()
    );
}

/// The payload of the next packet, or None once the connection is closed.
async fn next_payload(io: &mut switchyard::protocol::PacketStream) -> Option<(u8, Vec<u8>)> {
    let p = tokio::time::timeout(common::SHORT, io.read_packet())
        .await
        .expect("an answer or a close, in time")
        .ok()?;
    Some((p.seq, p.payload))
}

/// Writes a packet header announcing `len` bytes, and only a few of them.
async fn announce(io: &mut switchyard::protocol::PacketStream, len: usize, seq: u8) {
    let l = (len as u32).to_le_bytes();
    io.write_raw(&[l[0], l[1], l[2], seq, 0x03, b'S', b'E', b'L'])
        .await
        .unwrap();
}

#[tokio::test]
async fn oversized_packets_get_1153_and_are_never_buffered() {
    use switchyard::protocol::packets::parse_err;
    let proxy = common::start(cfg("max_packet = \"1M\"", "", "")).await;

    // Before login: a stranger announcing 1 MB (far over the handshake's 128 KiB).
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut io = switchyard::protocol::PacketStream::new(tcp, 1 << 20);
    io.read_packet().await.unwrap(); // greeting
    announce(&mut io, 1 << 20, 1).await;
    let (seq, err) = next_payload(&mut io).await.expect("an ERR");
    assert_eq!(seq, 2);
    assert_eq!(parse_err(&err).map(|(c, _)| c), Some(1153));
    assert!(next_payload(&mut io).await.is_none(), "then closed");

    // Logged in: over `max_packet` (1M here), the same answer.
    let caps = common::raw::modern_caps();
    let (mut c, _) = common::raw::RawClient::connect(
        proxy.addr.port(),
        "globex_app",
        "globex_pw",
        Some("wf_globex"),
        caps,
    )
    .await;
    announce(&mut c.io, 2 << 20, 0).await;
    let (seq, err) = next_payload(&mut c.io).await.expect("an ERR");
    assert_eq!(seq, 1);
    let (code, message) = parse_err(&err).unwrap();
    assert_eq!(code, 1153, "{message}");
    assert!(message.contains("max_allowed_packet"), "{message}");

    // Nobody else noticed.
    let mut other = connect(proxy.addr.port(), "globex_app", Some("wf_globex")).await;
    let one: i64 = other.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}

/// Switchyard's own answer to a command of 16 MB or more starts one past the client's last
/// packet, as a server's does: it started at 1, and the client, whose command took packets
/// 0 and 1, read it as out of order and gave up the connection without the error.
#[tokio::test]
async fn an_answer_to_a_command_of_16_mb_counts_on_from_its_last_packet() {
    use switchyard::protocol::packets::parse_err;
    let proxy = common::start(common::config("")).await;
    let (mut c, _) = common::raw::RawClient::connect(
        proxy.addr.port(),
        "globex_app",
        "globex_pw",
        Some("wf_globex"),
        common::raw::modern_caps(),
    )
    .await;
    // An execute of a statement never prepared: Switchyard answers it (ERR 1243).
    for len in [0xFF_FFFF + 100, 2 * 0xFF_FFFF] {
        let mut execute = vec![0x17, 0x39, 0x05, 0, 0, 0, 1, 0, 0, 0];
        execute.resize(len, 0);
        c.io.send(0, &execute).await.unwrap();
        let (seq, err) = next_payload(&mut c.io).await.expect("an ERR");
        let (code, message) = parse_err(&err).unwrap();
        assert_eq!(code, 1243, "{message}");
        // Packets 0 and 1; or 0, 1 and an empty 2 after 32 MB.
        assert_eq!(seq, (len / 0xFF_FFFF) as u8 + 1, "{len} bytes");
    }
    let one = c.query("SELECT 1").await;
    assert!(!one.is_empty());
}

/// A session that prepares without ever closing is refused as the server refuses one past
/// `max_prepared_stmt_count` (ERR 1461), rather than growing without bound; a close makes
/// room again. Twins of one text, so that each is a statement of its own.
#[tokio::test]
async fn a_session_holds_at_most_max_prepared_stmt_count_statements() {
    use common::raw::{modern_caps, packets, RawClient};
    use switchyard::protocol::scan::Expect;
    let proxy = common::start(common::config("")).await;
    let (mut c, _) = RawClient::connect(
        proxy.addr.port(),
        "globex_app",
        "globex_pw",
        Some("wf_globex"),
        modern_caps(),
    )
    .await;
    const MAX: usize = 16382;
    let prepare: &[u8] = b"\x16SELECT 1";
    let mut ids = Vec::new();
    while ids.len() < MAX {
        let batch = (MAX - ids.len()).min(1000);
        for answer in c.pipeline(&vec![prepare; batch], Expect::Prepare).await {
            assert_eq!(answer[4], 0, "prepare {}: {answer:?}", ids.len());
            ids.push(u32::from_le_bytes([
                answer[5], answer[6], answer[7], answer[8],
            ]));
        }
    }
    let refused = c.command(prepare, Expect::Prepare).await;
    let (_, err) = &packets(&refused)[0];
    assert_eq!(
        String::from_utf8_lossy(&err[3..]),
        "#42000Can't create more than max_prepared_stmt_count statements (current value: 16382)"
    );
    assert_eq!(&err[..3], &[0xFF, 0xB5, 0x05], "ERR 1461");
    // The statements still run; closing one makes room for another.
    let mut execute = vec![0x17];
    execute.extend_from_slice(&ids[0].to_le_bytes());
    execute.extend_from_slice(&[0, 1, 0, 0, 0]);
    let rows = c.command(&execute, Expect::ResultSets).await;
    assert_eq!(
        packets(&rows).len(),
        4,
        "column count, definition, row, EOF: {rows:?}"
    );
    let mut close = vec![0x19];
    close.extend_from_slice(&ids[1].to_le_bytes());
    c.io.send(0, &close).await.unwrap();
    let again = c.command(prepare, Expect::Prepare).await;
    assert_eq!(again[4], 0, "{again:?}");
}

/// Each client and server connection is a file descriptor, and services often start with a
/// soft limit of 1024: the binary raises its soft limit to the hard one, and says at start
/// when even that is below what `server.max_connections` allows (clients past it would wait
/// at accept, new server connections fail).
#[tokio::test]
async fn the_open_files_limit_is_raised_and_a_low_one_is_logged() {
    let bin = common::binary::spawn_with_open_files(
        |port| common::binary::globex_config(port, "max_connections = 1000"),
        std::process::Stdio::piped(),
        (256, 512),
    );
    let _c = bin.connect("globex_app", Some("wf_globex")).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", bin.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok())
        .collect::<Vec<_>>();
    assert_eq!(
        open_files,
        [512, 512],
        "soft limit raised to the hard one: {limits}"
    );
    bin.sigterm();
    let out = bin.exit(Duration::from_secs(10)).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains("open files") && l.contains("512") && l.contains("1000")),
        "{log}"
    );
}

/// A client that stops reading its answer is closed after `server.client_write_timeout`,
/// as the server's `net_write_timeout` closes one, and the statement's backend connection
/// with it: the statement stops on the server. It kept running there, blocked on its write
/// to Switchyard, holding its connection (and a transaction's locks) until the server's own
/// timeout, while the client's TCP connection stayed up.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    use common::raw::{modern_caps, RawClient};
    let (p, _) = start(cfg("client_write_timeout = \"1s\"", "", "")).await;
    let needle = format!("sy_stalled_reader_{}", std::process::id());
    let (mut c, _) = RawClient::connect(
        p.addr.port(),
        "globex_app",
        "globex_pw",
        Some("wf_globex"),
        modern_caps(),
    )
    .await;
    let sql = format!("SELECT REPEAT('x', 1048576), '{needle}' FROM seq_1_to_1024");
    c.send(&[&[0x03][..], sql.as_bytes()].concat()).await;
    common::until("the statement runs", Duration::from_secs(10), || async {
        (common::running(&needle).await > 0).then_some(())
    })
    .await;
    // The server's own net_write_timeout (60 s) is far behind this.
    common::until(
        "the statement ends with its stalled client",
        Duration::from_secs(15),
        || async { (common::running(&needle).await == 0).then_some(()) },
    )
    .await;
    drop(c);
}
