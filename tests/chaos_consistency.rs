//! Consistency beyond one session, against the chaos cluster with its replicas delayed: the
//! PHP pattern (a request writes and closes, the next request reads on a new connection)
//! must never read stale data with `consistency = "tenant"`, nor through two Switchyards
//! with `"global"`; with `"eventual"` it does (so the test can fail).

mod common;

use std::sync::Arc;

use common::{chaos_ports, chaos_root, connect, with_restore, CHAOS_LOCK};
use mysql_async::prelude::*;
use switchyard::config;
use switchyard::state::RuntimeState;

const TRIES: usize = 20;
/// The replicas' delay. MASTER_DELAY counts from the event's timestamp, in whole seconds,
/// so a delay of 2 let a write through after little more than 1 s: within reach of a slow
/// request pair on a loaded 2-core CI machine, whose driver's connect-time read then found
/// the previous write on a replica (a read the test counts as one that needed none).
const DELAY_S: u32 = 5;

fn cfg(consistency: &str, keys: &str) -> config::Config {
    let keys = format!("consistency = \"{consistency}\"\nmax_replica_lag = \"1h\"\n{keys}");
    common::chaos_acme_config("", &keys)
}

/// Puts both replicas `DELAY_S` behind the primary.
async fn delay_replicas() {
    let [_, r1, r2] = chaos_ports();
    for r in [r1, r2] {
        common::set_master_delay(r, DELAY_S).await;
    }
}

async fn restore() {
    let [_, r1, r2] = chaos_ports();
    for r in [r1, r2] {
        common::set_master_delay(r, 0).await;
    }
}

/// A write the way a PHP request makes it: connect, write, close.
async fn write_request(port: u16, tracking_client: bool, v: &str) {
    let sql = format!("INSERT INTO wf_acme.cc_php (v) VALUES ('{v}')");
    if tracking_client {
        // libmariadb negotiates session tracking: the OK packet carries the write's GTID.
        let out = tokio::process::Command::new("mariadb")
            .args([
                "-h127.0.0.1",
                &format!("-P{port}"),
                "-uacme_app",
                "-pacme_pw",
            ])
            .args(["wf_acme", "-e", &sql])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        // mysql_async does not: Switchyard cannot know the write's GTID.
        let mut c = connect(port, "acme_app", Some("wf_acme")).await;
        c.query_drop(sql).await.unwrap();
        c.disconnect().await.unwrap();
    }
}

/// The next request: a new connection reads what the previous one wrote.
async fn read_request(port: u16, v: &str) -> bool {
    let mut c = connect(port, "acme_app", Some("wf_acme")).await;
    let seen: Option<String> = c
        .query_first(format!("SELECT v FROM wf_acme.cc_php WHERE v = '{v}'"))
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    seen.as_deref() == Some(v)
}

/// Stale reads in TRIES write-then-read request pairs.
async fn stale_reads(write_port: u16, read_port: u16, tracking: bool, label: &str) -> usize {
    let mut stale = 0;
    let start = std::time::Instant::now();
    for i in 0..TRIES {
        let v = format!("{label}-{i}-{}", std::process::id());
        write_request(write_port, tracking, &v).await;
        if !read_request(read_port, &v).await {
            stale += 1;
        }
    }
    println!(
        "{label}: {stale} stale reads in {TRIES} write-close-read pairs ({:?})",
        start.elapsed()
    );
    stale
}

/// The table the requests write and read, on the chaos cluster's primary `p`.
async fn cc_table(p: u16) {
    let mut root = chaos_root(p).await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.cc_php (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(60))",
    )
    .await
    .unwrap();
}

async fn start(consistency: &str) -> (common::Proxy, Arc<switchyard::state::Shared>) {
    start_with(consistency, "").await
}

async fn start_with(
    consistency: &str,
    keys: &str,
) -> (common::Proxy, Arc<switchyard::state::Shared>) {
    let state = RuntimeState::new(cfg(consistency, keys));
    let shared = Arc::clone(&state.shared);
    (common::start_state(state).await, shared)
}

#[tokio::test]
async fn reads_on_new_connections_see_earlier_requests_writes() {
    let _guard = CHAOS_LOCK.lock().await;
    restore().await;
    let [p, r1, r2] = chaos_ports();
    cc_table(p).await;
    let body = async move {
        common::set_master_delay(r1, DELAY_S).await;
        common::set_master_delay(r2, DELAY_S).await;

        let (proxy, shared) = start("tenant").await;
        let port = proxy.addr.port();
        for tracking in [true, false] {
            let label = format!("tenant, session tracking {tracking}");
            assert_eq!(
                stale_reads(port, port, tracking, &label).await,
                0,
                "{label}"
            );
        }
        let counts = acme_counts(&shared);
        println!("tenant scope outcomes: {counts:?}");
        // Drivers read settings at connect too: those reads name no table, so they wait for
        // no write and are served by a replica however far behind.
        assert_eq!(
            counts.consistent_primary as usize,
            2 * TRIES,
            "one read of the table per request pair: {counts:?}"
        );
        assert_eq!(
            counts.consistent_ready + counts.consistent_waited,
            0,
            "with replicas {DELAY_S}s behind, every read needed the primary"
        );

        // Two Switchyards: writes through one, reads through the other.
        let (a, _) = start("global").await;
        let (b, shared_b) = start("global").await;
        let (pa, pb) = (a.addr.port(), b.addr.port());
        assert_eq!(stale_reads(pa, pb, false, "global, two proxies").await, 0);
        let counts = acme_counts(&shared_b);
        assert!(counts.consistent_primary as usize >= TRIES, "{counts:?}");

        let (e, _) = start("eventual").await;
        let pe = e.addr.port();
        let stale = stale_reads(pe, pe, false, "eventual").await;
        assert!(
            stale > TRIES / 2,
            "eventual reads from replicas {DELAY_S}s behind must miss writes ({stale} did)"
        );
    };
    with_restore(body, restore()).await;
}

#[tokio::test]
async fn tenant_scope_reads_use_replicas_once_they_have_the_writes() {
    let _guard = CHAOS_LOCK.lock().await;
    restore().await;
    let [p, ..] = chaos_ports();
    cc_table(p).await;
    let (proxy, shared) = start("tenant").await;
    let port = proxy.addr.port();
    assert_eq!(
        stale_reads(port, port, true, "tenant, healthy replicas").await,
        0
    );
    let counts = acme_counts(&shared);
    println!("tenant scope outcomes, healthy replicas: {counts:?}");
    let on_replicas = counts.consistent_ready + counts.consistent_waited;
    assert!(
        on_replicas as usize > TRIES / 2,
        "replicas that keep up serve the reads: {counts:?}"
    );
}

/// Tenant acme's counters, summed over the proxy's session workers.
fn acme_counts(shared: &switchyard::state::Shared) -> switchyard::state::stats::TenantCounts {
    shared
        .stats
        .snapshot()
        .into_iter()
        .find(|(name, _)| name == "acme")
        .map(|(_, c)| c)
        .unwrap_or_default()
}

/// A session's own write is read back after COM_RESET_CONNECTION (what a pool sends when a
/// connection comes back to it, between one request's write and the next one's read): the
/// writes stay on the server, which a direct connection reads after its reset. The reset
/// made the session forget them, and the read went to a replica 5 s behind.
#[tokio::test]
async fn a_write_is_read_back_after_a_connection_reset() {
    let _guard = CHAOS_LOCK.lock().await;
    restore().await;
    let [p, ..] = chaos_ports();
    cc_table(p).await;
    let body = async move {
        delay_replicas().await;
        let (proxy, _) = start("session").await;
        let mut c = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
        for i in 0..3 {
            let v = format!("reset-{i}-{}", std::process::id());
            c.query_drop(format!("INSERT INTO wf_acme.cc_php (v) VALUES ('{v}')"))
                .await
                .unwrap();
            c.reset().await.unwrap();
            let seen: Option<String> = c
                .query_first(format!("SELECT v FROM wf_acme.cc_php WHERE v = '{v}'"))
                .await
                .unwrap();
            assert_eq!(
                seen.as_deref(),
                Some(v.as_str()),
                "read back after the reset"
            );
        }
    };
    with_restore(body, restore()).await;
}

/// A write run by `EXECUTE IMMEDIATE`, or by `EXECUTE` of a statement prepared by name, is
/// read back by the next request: it was taken for a session SET, so the tenant's mark
/// never learned of it and the next connection's read went to a replica 5 s behind.
#[tokio::test]
async fn a_write_run_by_execute_is_read_back_by_the_next_request() {
    let _guard = CHAOS_LOCK.lock().await;
    restore().await;
    let [p, ..] = chaos_ports();
    cc_table(p).await;
    let body = async move {
        delay_replicas().await;
        let (proxy, _) = start("tenant").await;
        let port = proxy.addr.port();
        for how in ["immediate", "by name"] {
            let v = format!("execute-{how}-{}", std::process::id());
            let insert = format!("INSERT INTO wf_acme.cc_php (v) VALUES ('{v}')");
            let mut c = connect(port, "acme_app", Some("wf_acme")).await;
            if how == "immediate" {
                c.query_drop(format!("EXECUTE IMMEDIATE \"{insert}\""))
                    .await
                    .unwrap();
            } else {
                c.query_drop(format!("PREPARE ins FROM \"{insert}\""))
                    .await
                    .unwrap();
                c.query_drop("EXECUTE ins").await.unwrap();
            }
            c.disconnect().await.unwrap();
            assert!(read_request(port, &v).await, "{how}: the write read back");
        }
    };
    with_restore(body, restore()).await;
}

/// A write the server answered with an error may have changed data all the same (a
/// multi-row INSERT into a table without transactions keeps the rows before the failing
/// one, and the server logs them): the next read sees them, in the session (`session`) and
/// in the next request (`tenant`). Counted as no write, the read went to a replica 5 s
/// behind.
#[tokio::test]
async fn a_write_that_failed_part_way_is_read_back() {
    let _guard = CHAOS_LOCK.lock().await;
    restore().await;
    let [p, r1, r2] = chaos_ports();
    let mut root = chaos_root(p).await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.cc_aria (id INT PRIMARY KEY, v VARCHAR(60)) ENGINE=MyISAM",
    )
    .await
    .unwrap();
    common::wait_replicated_on(p, [r1, r2]).await;
    let body = async move {
        delay_replicas().await;
        for mode in ["session", "tenant"] {
            let (proxy, _) = start(mode).await;
            let port = proxy.addr.port();
            let v = format!("partly-{mode}-{}", std::process::id());
            let id: u32 = rand::random::<u32>() >> 1;
            let mut c = connect(port, "acme_app", Some("wf_acme")).await;
            let failed = c
                .query_drop(format!(
                    "INSERT INTO cc_aria VALUES ({id}, '{v}'), ({id}, 'duplicate')"
                ))
                .await;
            assert!(failed.is_err(), "{mode}: the second row is refused");
            if mode == "tenant" {
                c.disconnect().await.unwrap();
                c = connect(port, "acme_app", Some("wf_acme")).await;
            }
            let seen: Option<String> = c
                .query_first(format!("SELECT v FROM cc_aria WHERE id = {id}"))
                .await
                .unwrap();
            assert_eq!(
                seen.as_deref(),
                Some(v.as_str()),
                "{mode}: the first row read back"
            );
        }
    };
    with_restore(body, restore()).await;
}

/// Forwards connections to the primary `p`, but a connection that sends `marker` to the
/// server never gets the server's answer to it: that connection is closed instead, as a
/// network failure after the server committed would leave it.
async fn answer_losing_primary(p: u16, marker: &'static [u8]) -> u16 {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", p)).await else {
                continue;
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let lose = Arc::new(AtomicBool::new(false));
            let lose_next = Arc::clone(&lose);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    // Marked before the server can answer what carries it.
                    if buf[..n].windows(marker.len()).any(|w| w == marker) {
                        lose_next.store(true, Ordering::SeqCst);
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if lose.load(Ordering::SeqCst) || cw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A write whose answer was lost with its connection may have committed (here it did):
/// the session's next read sees it, as a direct client's read after reconnecting would.
/// The session carried on as one that never wrote, and its read went to a replica 5 s
/// behind.
#[tokio::test]
async fn a_write_whose_answer_was_lost_is_read_back() {
    let _guard = CHAOS_LOCK.lock().await;
    restore().await;
    let [p, ..] = chaos_ports();
    cc_table(p).await;
    let body = async move {
        delay_replicas().await;
        let relay = answer_losing_primary(p, b"lose its answer").await;
        let keys = "consistency = \"session\"\nmax_replica_lag = \"1h\"";
        let cfg = common::chaos_acme_config_at(relay, "", keys);
        let proxy = common::start_state(RuntimeState::new(cfg)).await;
        let mut c = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
        let v = format!("answer-lost-{}", std::process::id());
        let lost = c
            .query_drop(format!(
                "INSERT /* lose its answer */ INTO cc_php (v) VALUES ('{v}')"
            ))
            .await;
        assert!(lost.is_err(), "the INSERT's answer is lost");
        let seen: Option<String> = c
            .query_first(format!("SELECT v FROM cc_php WHERE v = '{v}'"))
            .await
            .unwrap();
        assert_eq!(seen.as_deref(), Some(v.as_str()), "the write read back");
    };
    with_restore(body, restore()).await;
}

/// A statement that logs nothing (a ROLLBACK of writes, an UPDATE of no rows) leaves the
/// session's read position where its last write put it: the position was asked of the
/// rolled-back transaction's connection (`@@last_gtid`), which is the last GTID logged
/// there, another session's older write on a pooled connection, and a replica that had
/// that one but not the session's INSERT served the read. With two connections per server
/// the sessions below place each statement on the connection the test means.
#[tokio::test]
async fn a_statement_that_logs_nothing_keeps_the_session_position() {
    let _guard = CHAOS_LOCK.lock().await;
    restore().await;
    let [p, r1, r2] = chaos_ports();
    cc_table(p).await;
    let body = async move {
        let (proxy, _) = start_with("session", "pool_max = 2").await;
        let port = proxy.addr.port();
        let tag = std::process::id();
        let mut b = connect(port, "acme_app", Some("wf_acme")).await;
        let mut d = connect(port, "acme_app", Some("wf_acme")).await;
        let mut a = connect(port, "acme_app", Some("wf_acme")).await;
        // B's write (connection 1), which the replicas then apply before they fall behind.
        b.query_drop(format!("INSERT INTO cc_php (v) VALUES ('older-{tag}')"))
            .await
            .unwrap();
        common::wait_replicated_on(p, [r1, r2]).await;
        delay_replicas().await;
        let conn_id = "SELECT CONNECTION_ID()";
        b.query_drop("BEGIN").await.unwrap();
        let first: Option<u32> = b.query_first(conn_id).await.unwrap();
        // A writes on the other connection (2), then D holds that one.
        let v = format!("own-{tag}");
        a.query_drop(format!("INSERT INTO cc_php (v) VALUES ('{v}')"))
            .await
            .unwrap();
        d.query_drop("BEGIN").await.unwrap();
        let second: Option<u32> = d.query_first(conn_id).await.unwrap();
        assert_ne!(first, second, "B and D hold the two connections");
        b.query_drop("COMMIT").await.unwrap();
        // A's transaction gets connection 1, where B's write was the last logged.
        a.query_drop("BEGIN").await.unwrap();
        let third: Option<u32> = a.query_first(conn_id).await.unwrap();
        assert_eq!(third, first, "A's transaction runs where B wrote");
        a.query_drop("UPDATE cc_php SET v = v WHERE id = -1")
            .await
            .unwrap();
        a.query_drop("ROLLBACK").await.unwrap();
        let seen: Option<String> = a
            .query_first(format!("SELECT v FROM cc_php WHERE v = '{v}'"))
            .await
            .unwrap();
        assert_eq!(seen.as_deref(), Some(v.as_str()), "A's own write read back");
        d.query_drop("COMMIT").await.unwrap();
    };
    with_restore(body, restore()).await;
}
