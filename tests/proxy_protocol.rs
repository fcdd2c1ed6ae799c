//! The PROXY protocol from a load balancer (`server.proxy_protocol`): Debian's HAProxy in
//! front with `send-proxy-v2` and `send-proxy` (v1), its connections to Switchyard made
//! from 127.0.0.3, the one address trusted; the sessions show the client's own address.
//! A trusted connection without a valid header gets ERR 1043 naming the problem; a header
//! from an untrusted address is never believed. Loopback only (127.0.0.0/8).

mod common;

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;
use switchyard::config;
use switchyard::state::limits::Refusal;
use switchyard::state::RuntimeState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::Child;

use common::raw::{modern_caps, RawClient};
use common::{AdminProxy, ScratchDir};
use switchyard::protocol::MariadbCapabilities;

/// The load balancer's address, as Switchyard sees its connections.
const BALANCER: &str = "127.0.0.3";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

async fn start() -> AdminProxy {
    let server_keys = format!(
        "proxy_protocol = [\"{BALANCER}\"]\nhandshake_timeout = \"{}s\"",
        HANDSHAKE_TIMEOUT.as_secs()
    );
    let mut text = common::config_text("").replacen("handshake_timeout = \"2s\"", &server_keys, 1);
    text.push_str("\n[admin]\nuser = \"admin\"\npassword = \"admin_pw\"\n");
    let cfg = config::parse(&text, &|_| None).unwrap();
    common::start_with_admin(RuntimeState::new(cfg)).await
}

/// HAProxy on two loopback ports, v2 and v1 headers, connecting to `app` from BALANCER.
struct Balancer {
    v2: u16,
    v1: u16,
    _process: Child,
    _dir: ScratchDir,
}

async fn balancer(app: u16) -> Balancer {
    let (v2, v1) = (common::free_port(), common::free_port());
    let dir = ScratchDir::new(&format!("sy-ppp-{v2}"));
    let cfg = dir.0.join("haproxy.cfg");
    let text = format!(
        "global\n  maxconn 64\n\
         defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
         listen v2\n  bind 127.0.0.1:{v2}\n  server sy 127.0.0.1:{app} send-proxy-v2 source {BALANCER}\n\
         listen v1\n  bind 127.0.0.1:{v1}\n  server sy 127.0.0.1:{app} send-proxy source {BALANCER}\n"
    );
    std::fs::write(&cfg, text).unwrap();
    let process = common::haproxy(&cfg, std::process::Stdio::null());
    Balancer {
        v2,
        v1,
        _process: process,
        _dir: dir,
    }
}

/// A login through the balancer's `port`, retried while HAProxy starts (5 s at most).
async fn login_through(port: u16) -> Conn {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Conn::new(common::opts(port, "acme_app", Some("wf_acme"))).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("no login through HAProxy: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Session id -> host, from the admin port's SHOW SESSIONS.
async fn session_hosts(p: &AdminProxy) -> Vec<(u32, String)> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(p.admin.port())
        .user(Some("admin"))
        .pass(Some("admin_pw"))
        .prefer_socket(false);
    let mut a = Conn::new(opts).await.expect("admin login");
    let rows: Vec<mysql_async::Row> = a.query("SHOW SESSIONS").await.unwrap();
    let _ = a.disconnect().await;
    rows.into_iter()
        .map(|r| {
            let id: u32 = r.get("id").expect("id column");
            let host: String = r.get("host").expect("host column");
            (id, host)
        })
        .collect()
}

/// A raw connection to Switchyard from `local` (a loopback address).
async fn raw_from(local: &str, p: &AdminProxy) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(p.addr).await.unwrap()
}

/// The next packet's payload, or None at EOF (5 s at most).
async fn packet(s: &mut TcpStream) -> Option<Vec<u8>> {
    let read = async {
        let mut head = [0u8; 4];
        s.read_exact(&mut head).await.ok()?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.ok()?;
        Some(payload)
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("an answer or EOF within 5 s")
}

/// An ERR packet's code, SQLSTATE and message.
fn err_of(payload: &[u8]) -> (u16, String, String) {
    assert_eq!(payload[0], 0xFF, "not an ERR packet: {payload:?}");
    let e = switchyard::protocol::packets::parse_err_spec(payload).unwrap();
    (e.code, e.state.into_owned(), e.message)
}

fn refused(p: &AdminProxy) -> u64 {
    p.state.load().shared.limits.refused(Refusal::ProxyHeader)
}

#[tokio::test]
async fn sessions_through_haproxy_show_the_client_address() {
    let p = start().await;
    let lb = balancer(p.addr.port()).await;
    for (version, port) in [("v2", lb.v2), ("v1", lb.v1)] {
        let mut c = login_through(port).await;
        let id = c.id();
        // A statement works as directly; the session's host is the client's, not HAProxy's.
        let one: Option<u32> = c.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
        let hosts = session_hosts(&p).await;
        let host = hosts
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, h)| h.as_str())
            .unwrap_or_else(|| panic!("session {id} not listed: {hosts:?}"));
        println!("PROXY {version}: session {id} shows host {host}");
        assert_eq!(host, "127.0.0.1", "{version}");
        c.disconnect().await.unwrap();
    }
    assert_eq!(refused(&p), 0);
}

#[tokio::test]
async fn a_trusted_connection_without_a_header_gets_an_err_saying_so() {
    let p = start().await;
    // A client reaching Switchyard through a balancer that sends no header waits for a
    // greeting: it gets ERR 1043 once the handshake timeout passes.
    let started = Instant::now();
    let mut silent = raw_from(BALANCER, &p).await;
    let (code, state, message) = err_of(&packet(&mut silent).await.expect("an ERR"));
    let waited = started.elapsed();
    println!("no header: ERR {code} ({state}) after {waited:?}: {message}");
    // In place of the greeting: no SQLSTATE, as servers send it before they know the
    // client's protocol (read as HY000).
    assert_eq!((code, state.as_str()), (1043, "HY000"));
    assert!(message.starts_with("Bad handshake"), "{message}");
    assert!(message.contains("PROXY protocol header"), "{message}");
    assert!(message.contains(BALANCER), "{message}");
    assert!(waited >= HANDSHAKE_TIMEOUT, "{waited:?}");
    assert_eq!(packet(&mut silent).await, None, "the connection ends");

    // Something else than a header: refused at once, naming what came.
    let started = Instant::now();
    let mut http = raw_from(BALANCER, &p).await;
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (code, _, message) = err_of(&packet(&mut http).await.expect("an ERR"));
    assert_eq!(code, 1043);
    assert!(message.contains("not a PROXY protocol header"), "{message}");
    assert!(
        started.elapsed() < HANDSHAKE_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(refused(&p), 2);

    // Other clients log in as ever, directly.
    let mut c = common::connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    c.query_drop("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn a_header_from_anyone_else_is_not_believed() {
    let p = start().await;
    // Straight from 127.0.0.1: Switchyard greets at once, as it greets any client.
    let mut spoof = raw_from("127.0.0.1", &p).await;
    let greeting = packet(&mut spoof).await.expect("a greeting");
    assert_eq!(greeting[0], 10, "protocol 10 greeting");
    spoof
        .write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 51234 6033\r\n")
        .await
        .unwrap();
    // The header is read as a (far too large) handshake packet: refused, never a session.
    match packet(&mut spoof).await {
        None => {}
        Some(p) => println!("spoofed header answered: ERR {:?}", err_of(&p)),
    }
    let hosts = session_hosts(&p).await;
    assert!(
        hosts.iter().all(|(_, h)| h != "192.0.2.7"),
        "a session shows the spoofed address: {hosts:?}"
    );
    assert_eq!(refused(&p), 0, "not a balancer's connection");
}

/// A balancer's connection is closed with a FIN even when the client quit and closed its
/// end at once (a direct client's would be reset, `reset_after_quit`): HAProxy takes a
/// reset after its own FIN for the server's abort, logs `SD` and counts it.
#[tokio::test]
async fn a_balancers_connection_ends_with_a_fin_not_a_reset() {
    let p = start().await;
    let mut stream = raw_from(BALANCER, &p).await;
    stream
        .write_all(b"PROXY TCP4 127.0.0.1 127.0.0.1 51234 6033\r\n")
        .await
        .unwrap();
    let caps = (modern_caps(), MariadbCapabilities::empty());
    let (client, login) =
        RawClient::login(stream, "acme_app", "acme_pw", Some("wf_acme"), caps).await;
    assert_eq!(login[4], 0, "an OK to the login: {login:?}");
    let end = client.quit(true).await;
    assert_eq!(
        end.ok(),
        Some(0),
        "the balancer's connection was not closed with a FIN"
    );
}
