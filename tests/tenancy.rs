//! Authentication and tenant isolation: bad credentials, schemas of other tenants, and
//! backend failures, each answered with the right ERR while other sessions carry on.

mod common;

use common::{connect, opts, primary_port};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use switchyard::config;

fn server_code(e: &mysql_async::Error) -> Option<(u16, String, String)> {
    match e {
        mysql_async::Error::Server(s) => Some((s.code, s.state.clone(), s.message.clone())),
        _ => None,
    }
}

async fn refused(port: u16, user: &str, pass: &str, db: Option<&str>) -> (u16, String, String) {
    let o = OptsBuilder::from_opts(opts(port, user, db)).pass(Some(pass));
    let e = Conn::new(o).await.expect_err("login must fail");
    server_code(&e).unwrap_or_else(|| panic!("not a server error: {e}"))
}

#[tokio::test]
async fn bad_credentials_are_refused_like_the_server_does() {
    let proxy = common::start(common::config("")).await;
    let port = proxy.addr.port();
    let (code, state, msg) = refused(port, "acme_app", "wrong", Some("wf_acme")).await;
    assert_eq!((code, state.as_str()), (1045, "28000"));
    assert!(
        msg.contains("'acme_app'@'127.0.0.1'") && msg.contains("using password: YES"),
        "{msg}"
    );
    let (code, _, msg) = refused(port, "nobody", "x", None).await;
    assert_eq!(code, 1045);
    assert!(msg.contains("'nobody'"), "{msg}");
    let (code, _, msg) = refused(port, "acme_app", "", None).await;
    assert_eq!(code, 1045);
    assert!(msg.contains("using password: NO"), "{msg}");
    // The same mistakes directly give the same codes.
    let (direct, _, _) = refused(primary_port(), "acme_app", "wrong", Some("wf_acme")).await;
    assert_eq!(direct, 1045);
}

#[tokio::test]
async fn other_tenants_schemas_are_out_of_reach() {
    let proxy = common::start(common::config("")).await;
    let port = proxy.addr.port();
    let (code, state, msg) = refused(port, "acme_app", "acme_pw", Some("wf_globex")).await;
    assert_eq!((code, state.as_str()), (1044, "42000"));
    assert!(msg.contains("wf_globex"), "{msg}");

    let mut c = connect(port, "acme_app", Some("wf_acme")).await;
    for attempt in [
        "USE wf_globex",
        "USE `wf_globex`",
        "USE sbtest",
        "USE mysql",
    ] {
        let e = c.query_drop(attempt).await.unwrap_err();
        let (code, _, msg) = server_code(&e).unwrap();
        assert_eq!(code, 1044, "{attempt}: {msg}");
    }
    // COM_INIT_DB, the command form of USE.
    let (mut raw, _) = common::raw::RawClient::connect(
        port,
        "acme_app",
        "acme_pw",
        Some("wf_acme"),
        common::raw::modern_caps(),
    )
    .await;
    let answer = raw
        .command(b"\x02wf_globex", switchyard::protocol::scan::Expect::Single)
        .await;
    let err = &common::raw::packets(&answer)[0].1;
    assert_eq!((err[0], u16::from_le_bytes([err[1], err[2]])), (0xFF, 1044));
    // A USE hidden in a multi-statement.
    let e = c
        .query_drop("SELECT 1; USE wf_globex; SELECT 2")
        .await
        .unwrap_err();
    assert_eq!(server_code(&e).unwrap().0, 1044);
    // The session is unharmed and still in its own schema.
    let db: String = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db, "wf_acme");
    c.query_drop("USE rb_acme").await.unwrap();
}

#[tokio::test]
async fn unreachable_backend_is_named_and_harms_no_one_else() {
    let (p, [r1, _]) = (primary_port(), common::replica_ports());
    let text = format!(
        r#"
[[tenants]]
name = "ghost"
schemas = ["wf_acme"]
primary = "127.0.0.1:1"
replicas = []

[[tenants]]
name = "halfdead"
schemas = ["rb_acme"]
primary = "127.0.0.1:{p}"
replicas = ["127.0.0.1:2", "127.0.0.1:{r1}"]

[[users]]
name = "acme_app"
password = "acme_pw"
tenants = ["ghost", "halfdead"]
"#
    );
    let cfg = config::parse(&text, &|_| None).unwrap();
    let proxy = common::start(cfg).await;
    let port = proxy.addr.port();
    let (code, _, msg) = refused(port, "acme_app", "acme_pw", Some("wf_acme")).await;
    assert_eq!(code, 2003);
    for part in ["ghost", "primary", "127.0.0.1:1"] {
        assert!(msg.contains(part), "message names {part}: {msg}");
    }
    // A dead replica is skipped: reads still succeed, on the live one.
    let mut c = connect(port, "acme_app", Some("rb_acme")).await;
    for _ in 0..10 {
        assert_eq!(common::served_by(&mut c).await, r1);
    }
}

#[tokio::test]
async fn malformed_packets_close_only_that_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let proxy = common::start(common::config("")).await;
    let port = proxy.addr.port();
    let mut good = connect(port, "acme_app", Some("wf_acme")).await;

    // Garbage instead of a handshake response: the server's answer, byte for byte (ERR
    // 1043 "Bad handshake", without SQLSTATE), then close.
    let garbage = |port: u16| async move {
        let mut bad = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut greeting = vec![0u8; 512];
        let _ = bad.read(&mut greeting).await.unwrap();
        bad.write_all(b"\x0b\0\0\x01\0\0\0\0garbage").await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(common::SHORT, bad.read_to_end(&mut rest))
            .await
            .expect("the connection is closed after the ERR")
            .unwrap();
        rest
    };
    let rest = garbage(port).await;
    assert!(
        rest.len() > 4 && rest[4] == 0xFF,
        "an ERR, then close: {rest:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&rest),
        String::from_utf8_lossy(&garbage(common::primary_port()).await)
    );

    // A packet header promising more than the limit, after login.
    let (mut raw, _) = common::raw::RawClient::connect(
        port,
        "acme_app",
        "acme_pw",
        Some("wf_acme"),
        common::raw::modern_caps(),
    )
    .await;
    raw.io.queue_raw(&[0xFF, 0xFF, 0xFF, 0, 0x03]);
    raw.io.flush().await.unwrap();
    // Unknown command on a fresh connection: an ERR, and the session goes on.
    let (mut raw2, _) = common::raw::RawClient::connect(
        port,
        "acme_app",
        "acme_pw",
        Some("wf_acme"),
        common::raw::modern_caps(),
    )
    .await;
    let answer = raw2
        .command(&[0x12, 1, 2, 3], switchyard::protocol::scan::Expect::Single)
        .await;
    let pkts = common::raw::packets(&answer);
    assert_eq!(pkts[0].1[0], 0xFF);
    assert_eq!(u16::from_le_bytes([pkts[0].1[1], pkts[0].1[2]]), 1047);
    assert!(String::from_utf8_lossy(&pkts[0].1).contains("COM_BINLOG_DUMP"));
    let ok = raw2.query("SELECT 1").await;
    assert_ne!(common::raw::packets(&ok)[0].1[0], 0xFF);

    let one: i64 = good.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1, "other sessions are unaffected");
}

#[tokio::test]
async fn silent_clients_are_dropped_after_the_handshake_timeout() {
    use switchyard::state::limits::Refusal;
    use tokio::io::AsyncReadExt;
    let state = switchyard::state::RuntimeState::new(common::config(""));
    let limits = std::sync::Arc::clone(&state.shared.limits);
    let proxy = common::start_state(state).await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let start = std::time::Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(common::SHORT, s.read_to_end(&mut buf)).await;
    assert!(
        r.is_ok(),
        "connection closed within the 2 s handshake timeout"
    );
    assert!(start.elapsed() >= std::time::Duration::from_millis(1500));
    assert_eq!(limits.refused(Refusal::HandshakeTimeout), 1, "counted");
}

#[tokio::test]
async fn reads_fall_back_to_the_primary_when_no_replica_answers() {
    let p = primary_port();
    let text = format!(
        r#"
[[tenants]]
name = "acme"
schemas = ["wf_acme"]
primary = "127.0.0.1:{p}"
replicas = ["127.0.0.1:2", "127.0.0.1:3"]

[[users]]
name = "acme_app"
password = "acme_pw"
tenant = "acme"
"#
    );
    let proxy = common::start(config::parse(&text, &|_| None).unwrap()).await;
    let mut c = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    for _ in 0..5 {
        assert_eq!(common::served_by(&mut c).await, p);
    }
    // A tenant may choose an error over loading its primary with reads.
    let strict = text.replace("replicas = [", "replica_fallback = \"error\"\nreplicas = [");
    let proxy = common::start(config::parse(&strict, &|_| None).unwrap()).await;
    // A raw client: drivers' own settings reads at connect would fail the same way.
    let (mut raw, _) = common::raw::RawClient::connect(
        proxy.addr.port(),
        "acme_app",
        "acme_pw",
        Some("wf_acme"),
        common::raw::modern_caps(),
    )
    .await;
    let answer = raw.query("SELECT 1").await;
    let err = &common::raw::packets(&answer)[0].1;
    let text = String::from_utf8_lossy(err);
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1105, "{text}");
    assert!(text.contains("acme") && text.contains("replica"), "{text}");
    let ok = raw.query("DO 1").await;
    assert_eq!(common::raw::packets(&ok)[0].1[0], 0x00, "writes still work");
}

/// Sessions reading at once split over the replicas by weight, counted: with weights 1 and
/// 6, 14 sessions put exactly 2 on the light one (a weighted random choice gave 0-6).
#[tokio::test]
async fn replica_weights_shape_the_spread() {
    let (p, [r1, r2]) = (primary_port(), common::replica_ports());
    let text = format!(
        r#"
[server]
threads = 1

[[tenants]]
name = "acme"
schemas = ["wf_acme"]
primary = "127.0.0.1:{p}"
replicas = [{{ addr = "127.0.0.1:{r1}", weight = 1 }}, {{ addr = "127.0.0.1:{r2}", weight = 6 }}]
consistency = "eventual"

[[users]]
name = "acme_app"
password = "acme_pw"
tenant = "acme"
"#
    );
    let proxy = common::start(config::parse(&text, &|_| None).unwrap()).await;
    // Each session stays open, so every choice sees the ones before it.
    let mut sessions = Vec::new();
    let mut light = 0;
    for _ in 0..14 {
        let mut c = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
        if common::served_by(&mut c).await == r1 {
            light += 1;
        }
        sessions.push(c);
    }
    assert_eq!(light, 2, "the weight-1 replica serves 1 session in 7");
    // A session whose turn to choose again comes stays where it is: the split holds.
    // (The choice is made again at the first read after a command that ended past it.)
    tokio::time::sleep(switchyard::frontend::REPICK_EVERY).await;
    let mut light_again = 0;
    for c in &mut sessions {
        common::served_by(c).await;
        if common::served_by(c).await == r1 {
            light_again += 1;
        }
    }
    assert_eq!(light_again, 2, "after every session chose again");
}

/// The server kills a session's backend connection: a session that kept nothing there
/// goes on with a new one (one statement lost at most); one that kept state there (a user
/// variable) has its own connection ended, as directly, so its driver knows.
#[tokio::test]
async fn a_killed_backend_connection_costs_one_statement_or_ends_a_stateful_session() {
    let proxy = common::start(common::config("")).await;
    let kill = |id: u64| async move {
        let mut root = common::root().await;
        root.query_drop(format!("KILL CONNECTION {id}"))
            .await
            .unwrap();
    };

    let mut plain = connect(proxy.addr.port(), "globex_app", Some("wf_globex")).await;
    let id: u64 = plain
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    kill(id).await;
    if let Err(e) = plain.query_first::<i64, _>("SELECT 1").await {
        let msg = e.to_string();
        assert!(
            msg.contains("globex") || msg.contains("killed"),
            "error names what failed: {msg}"
        );
    }
    let again: i64 = plain.query_first("SELECT 2").await.unwrap().unwrap();
    assert_eq!(
        again, 2,
        "the session goes on with a new backend connection"
    );

    let mut stateful = connect(proxy.addr.port(), "globex_app", Some("wf_globex")).await;
    // Not a literal: the value lives only on the server connection that computed it (a
    // literal one would follow the session to any connection).
    stateful
        .query_drop("SET @marker = CONCAT('kill', '-me')")
        .await
        .unwrap();
    let id: u64 = stateful
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    kill(id).await;
    let mut direct = connect(common::primary_port(), "globex_app", Some("wf_globex")).await;
    direct
        .query_drop("SET @marker = CONCAT('kill', '-me')")
        .await
        .unwrap();
    let id: u64 = direct
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    kill(id).await;
    for (name, c) in [("proxied", &mut stateful), ("direct", &mut direct)] {
        let first = c.query_first::<String, _>("SELECT @marker").await;
        assert!(
            first.is_err(),
            "{name}: the variable is gone, and the client is told"
        );
        let second = c.query_first::<i64, _>("SELECT 2").await;
        assert!(second.is_err(), "{name}: the connection has ended");
    }
}

#[tokio::test]
async fn idle_sessions_are_closed_after_idle_timeout() {
    let text = common::globex_only("idle_timeout = \"1s\"");
    let proxy = common::start(config::parse(&text, &|_| None).unwrap()).await;
    let mut c = connect(proxy.addr.port(), "globex_app", Some("wf_globex")).await;
    // Activity keeps it open past the timeout...
    for _ in 0..6 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        c.query_drop("SELECT 1").await.unwrap();
    }
    // ... silence does not.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert!(
        c.query_drop("SELECT 1").await.is_err(),
        "idle session was closed"
    );
}

/// A session's own `wait_timeout` ends it after that much silence, through Switchyard as
/// directly: with a temporary table (the server closes the connection holding it) and
/// without (Switchyard's idle limit follows the session's setting).
#[tokio::test]
async fn the_sessions_wait_timeout_ends_it_as_directly() {
    let proxy = common::start(common::config("")).await;
    let mut conns = Vec::new();
    for temp_table in [true, false] {
        for port in [proxy.addr.port(), common::primary_port()] {
            let mut c = connect(port, "globex_app", Some("wf_globex")).await;
            c.query_drop("SET SESSION wait_timeout = 2").await.unwrap();
            if temp_table {
                c.query_drop("CREATE TEMPORARY TABLE wt (a INT)")
                    .await
                    .unwrap();
            }
            conns.push((temp_table, port, c));
        }
    }
    // The silence under test: longer than wait_timeout.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    for (temp_table, port, mut c) in conns {
        let direct = port == common::primary_port();
        let r = c.query_first::<i64, _>("SELECT 1").await;
        assert!(
            r.is_err(),
            "temporary table {temp_table}, direct {direct}: still open after 3.5 s idle"
        );
    }
}

/// A user with several tenants and no schema selected (what migration tools do) creates a
/// new tenant's database: the statement goes to the tenant of the schema it names, no USE
/// first. A schema of no tenant gets the server's own answer to that user (ERR 1044).
#[tokio::test]
async fn a_multi_tenant_user_creates_a_tenants_database_without_use() {
    let p = common::primary_port();
    let text = format!(
        "{}\n[[tenants]]\nname = \"newco\"\nschemas = [\"wf_newco\"]\nprimary = \"127.0.0.1:{p}\"\n",
        common::config_text("")
    );
    let proxy = common::start(config::parse(&text, &|_| None).unwrap()).await;
    let mut root = common::root().await;
    root.query_drop("DROP DATABASE IF EXISTS wf_newco")
        .await
        .unwrap();

    let mut ops = connect(proxy.addr.port(), "ops", None).await;
    ops.query_drop("CREATE DATABASE wf_newco").await.unwrap();
    ops.query_drop("CREATE TABLE wf_newco.t (a INT)")
        .await
        .unwrap();
    let db: Option<String> = root
        .query_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'wf_newco'",
        )
        .await
        .unwrap();
    assert_eq!(db.as_deref(), Some("wf_newco"));

    let code = |e: mysql_async::Error| match e {
        mysql_async::Error::Server(s) => s.code,
        other => panic!("not a server error: {other}"),
    };
    let mut direct = connect(p, "ops", None).await;
    let proxied = ops
        .query_drop("CREATE DATABASE zz_no_tenant")
        .await
        .unwrap_err();
    let direct_err = direct
        .query_drop("CREATE DATABASE zz_no_tenant")
        .await
        .unwrap_err();
    assert_eq!(code(proxied), code(direct_err));
    root.query_drop("DROP DATABASE wf_newco").await.unwrap();
}
