//! Where each kind of statement runs, seen through `@@port`: reads on replicas, writes on
//! the primary, transactions kept whole, pins held and lifted, hints honoured.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{connect, is_replica, primary_port, served_by};
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn proxy_conn(extra: &str) -> (common::Proxy, Conn) {
    let proxy = common::start(common::config(extra)).await;
    let c = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    (proxy, c)
}

async fn table(name: &str) {
    let mut root = common::root().await;
    root.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS wf_acme.{name} (id INT AUTO_INCREMENT PRIMARY KEY, port INT, v VARCHAR(20))"
    ))
    .await
    .unwrap();
    common::wait_replicated().await;
}

#[tokio::test]
async fn reads_spread_over_replicas_and_writes_hit_the_primary() {
    table("rt_writes").await;
    let (p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    // A session keeps its replica for a second (REPICK_EVERY), then chooses again by even
    // odds. A burst of 640 reads moves at most about once per second it lasts (choosing per
    // read would move about 320 times; a replica that lags behind other tests' writes for a
    // moment also moves it: hence the margin). Reading on, the other replica serves within
    // seconds (not within 20 s only by chance: p < 1e-5).
    let started = Instant::now();
    let mut seen = HashSet::new();
    let (mut last, mut moves) = (None, 0u64);
    for _ in 0..640 {
        let port = served_by(&mut c).await;
        assert!(is_replica(port), "plain read ran on {port}");
        seen.insert(port);
        moves += u64::from(last.is_some_and(|l| l != port));
        last = Some(port);
    }
    let secs = started.elapsed().as_secs();
    println!("one session: {moves} moves between replicas in 640 reads over {secs} s");
    assert!(
        moves <= secs + 6,
        "a session keeps its replica a while: {moves} moves in 640 reads over {secs} s"
    );
    while seen.len() < 2 && started.elapsed() < Duration::from_secs(20) {
        let port = served_by(&mut c).await;
        assert!(is_replica(port), "plain read ran on {port}");
        seen.insert(port);
    }
    assert_eq!(
        seen.len(),
        2,
        "both replicas serve one session's reads over time: {seen:?}"
    );
    // Sessions choose apart: sixteen new ones, kept open, each read from the replica
    // fewer sessions read from (counted per worker: with two, the 17 split 9/8 or 10/7 at
    // worst).
    let mut per_port = std::collections::HashMap::new();
    *per_port.entry(served_by(&mut c).await).or_insert(0) += 1;
    let mut others = Vec::new();
    for _ in 0..16 {
        let mut s = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
        *per_port.entry(served_by(&mut s).await).or_insert(0) += 1;
        others.push(s);
    }
    assert!(
        per_port.len() == 2 && per_port.values().all(|&n| n >= 7),
        "sessions spread evenly over replicas: {per_port:?}"
    );
    drop(others);
    c.query_drop("INSERT INTO rt_writes (port) VALUES (@@port)")
        .await
        .unwrap();
    let id: u64 = c
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    let mut root = common::root().await;
    let port: u16 = root
        .query_first(format!(
            "SELECT port FROM wf_acme.rt_writes WHERE id = {id}"
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(port, primary_port(), "the INSERT ran on the primary");
    let locking: u16 = c
        .query_first("SELECT @@port FROM rt_writes LIMIT 1 FOR UPDATE")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(locking, primary_port(), "locking read");
}

/// A read with a query timeout as MariaDB Connector/J sends it (`SET STATEMENT
/// max_statement_time=N FOR SELECT ...`, every read of a Spring transaction with a timeout)
/// is a read: it went to the primary. Anything else SET STATEMENT sets still goes there.
#[tokio::test]
async fn a_read_under_a_query_timeout_goes_to_a_replica() {
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    let timed = "SET STATEMENT max_statement_time=10, sql_select_limit=5 FOR SELECT @@port";
    let timed: Option<u16> = c.query_first(timed).await.unwrap();
    assert!(is_replica(timed.unwrap()), "a read under a timeout");
    let moded = "SET STATEMENT sql_mode='ANSI' FOR SELECT @@port";
    let moded: u16 = c.query_first(moded).await.unwrap().unwrap();
    assert_eq!(moded, primary_port(), "a read under another variable");
}

#[tokio::test]
async fn transactions_stay_on_one_server() {
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    for begin in ["BEGIN", "START TRANSACTION", "START TRANSACTION READ WRITE"] {
        c.query_drop(begin).await.unwrap();
        for _ in 0..3 {
            assert_eq!(served_by(&mut c).await, primary_port(), "inside {begin}");
        }
        c.query_drop("COMMIT").await.unwrap();
        assert!(
            is_replica(served_by(&mut c).await),
            "after {begin} .. COMMIT"
        );
    }
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    let first = served_by(&mut c).await;
    assert!(is_replica(first), "read-only transaction on a replica");
    for _ in 0..5 {
        assert_eq!(
            served_by(&mut c).await,
            first,
            "read-only transaction stays put"
        );
    }
    c.query_drop("ROLLBACK").await.unwrap();
    c.query_drop("SET autocommit = 0").await.unwrap();
    for _ in 0..3 {
        assert_eq!(served_by(&mut c).await, primary_port(), "autocommit=0");
    }
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        served_by(&mut c).await,
        primary_port(),
        "autocommit=0 after COMMIT"
    );
    c.query_drop("SET autocommit = 1").await.unwrap();
    assert!(is_replica(served_by(&mut c).await), "autocommit back on");
}

async fn pinned_then_released(c: &mut Conn, pin: &str, release: &str) {
    assert!(is_replica(served_by(c).await), "before {pin}");
    c.query_drop(pin).await.unwrap();
    for _ in 0..3 {
        assert_eq!(served_by(c).await, primary_port(), "pinned by {pin}");
    }
    c.query_drop(release).await.unwrap();
    assert!(is_replica(served_by(c).await), "released by {release}");
}

#[tokio::test]
async fn pins_hold_and_lift() {
    table("rt_pins").await;
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    pinned_then_released(
        &mut c,
        "SELECT GET_LOCK('rt_upgrade', 5)",
        "SELECT RELEASE_LOCK('rt_upgrade')",
    )
    .await;
    pinned_then_released(
        &mut c,
        "DO GET_LOCK('rt_a', 5), GET_LOCK('rt_b', 5)",
        "SELECT RELEASE_ALL_LOCKS()",
    )
    .await;
    pinned_then_released(
        &mut c,
        "CREATE TEMPORARY TABLE rt_tmp (x INT)",
        "DROP TEMPORARY TABLE rt_tmp",
    )
    .await;
    pinned_then_released(&mut c, "LOCK TABLES rt_pins READ", "UNLOCK TABLES").await;

    // Two locks, one released: still pinned.
    c.query_drop("SELECT GET_LOCK('rt_x', 5), GET_LOCK('rt_y', 5)")
        .await
        .unwrap();
    c.query_drop("SELECT RELEASE_LOCK('rt_x')").await.unwrap();
    assert_eq!(
        served_by(&mut c).await,
        primary_port(),
        "one lock still held"
    );
    c.query_drop("SELECT RELEASE_LOCK('rt_y')").await.unwrap();
    assert!(is_replica(served_by(&mut c).await));

    // The temporary table is really usable (it exists only on the primary).
    c.query_drop("CREATE TEMPORARY TABLE rt_tmp2 (x INT)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO rt_tmp2 VALUES (1), (2)")
        .await
        .unwrap();
    let n: i64 = c
        .query_first("SELECT COUNT(*) FROM rt_tmp2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn session_bound_functions_and_variables_use_the_primary() {
    table("rt_funcs").await;
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    c.query_drop("SET @answer = 42").await.unwrap();
    let v: i64 = c.query_first("SELECT @answer").await.unwrap().unwrap();
    assert_eq!(v, 42, "user variable read back");
    c.query_drop("SELECT @count := COUNT(*) FROM rt_funcs")
        .await
        .unwrap();
    let n: Option<i64> = c.query_first("SELECT @count").await.unwrap().unwrap();
    assert!(n.is_some());

    c.query_drop("INSERT INTO rt_funcs (v) VALUES ('a'), ('b'), ('c')")
        .await
        .unwrap();
    let rows: Vec<i64> = c
        .query("SELECT SQL_CALC_FOUND_ROWS id FROM rt_funcs LIMIT 1")
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let found: i64 = c.query_first("SELECT FOUND_ROWS()").await.unwrap().unwrap();
    let total: i64 = common::root()
        .await
        .query_first("SELECT COUNT(*) FROM wf_acme.rt_funcs")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, total, "FOUND_ROWS after SQL_CALC_FOUND_ROWS");

    c.query_drop("INSERT INTO rt_funcs (v) VALUES ('last')")
        .await
        .unwrap();
    let id: u64 = c
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    let v: String = common::root()
        .await
        .query_first(format!("SELECT v FROM wf_acme.rt_funcs WHERE id = {id}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        v, "last",
        "LAST_INSERT_ID after a write names the written row"
    );

    // SHOW WARNINGS answers for the previous statement, wherever it ran.
    let _: Option<Option<i64>> = c.query_first("SELECT 1/0").await.unwrap();
    let warnings: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(
        warnings.len(),
        1,
        "warning of the replica read: {warnings:?}"
    );
    assert_eq!(warnings[0].1, 1365);
}

#[tokio::test]
async fn hints_override_and_refusals_are_safe() {
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    let port: u16 = c
        .query_first("/* route=primary */ SELECT @@port")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(port, primary_port());
    let port: u16 = c
        .query_first("/* route=replica */ SELECT @@port")
        .await
        .unwrap()
        .unwrap();
    assert!(is_replica(port));
    c.query_drop("BEGIN").await.unwrap();
    let port: u16 = c
        .query_first("/* route=replica */ SELECT @@port")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        port,
        primary_port(),
        "a replica hint cannot pull a read out of a transaction"
    );
    c.query_drop("COMMIT").await.unwrap();
}

#[tokio::test]
async fn read_your_writes_reads_see_the_sessions_writes_on_a_replica() {
    table("rt_ryw").await;
    let (_p, mut c) = proxy_conn("").await;
    let first = served_by(&mut c).await;
    assert!(is_replica(first), "reads before any write");
    let mut on_replica = 0;
    for i in 0..20 {
        c.query_drop(format!("INSERT INTO rt_ryw (v) VALUES ('w{i}')"))
            .await
            .unwrap();
        let id: u64 = c
            .query_first("SELECT LAST_INSERT_ID()")
            .await
            .unwrap()
            .unwrap();
        let (port, seen): (u16, Option<String>) = c
            .query_first(format!(
                "SELECT @@port, (SELECT v FROM rt_ryw WHERE id = {id})"
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            seen.as_deref(),
            Some(format!("w{i}").as_str()),
            "read my write {i} on {port}"
        );
        if is_replica(port) {
            // Monotonic: the session keeps to the replica it started reading from.
            assert_eq!(port, first, "read {i} stayed on its replica");
            on_replica += 1;
        }
    }
    // Replication on loopback applies a write in far less than the 100 ms wait.
    assert!(
        on_replica >= 15,
        "only {on_replica} of 20 reads-after-write used a replica"
    );
}

#[tokio::test]
async fn tenant_without_replicas_and_consistency_primary_read_from_the_primary() {
    let proxy = common::start(common::config(r#"consistency = "primary""#)).await;
    let mut g = connect(proxy.addr.port(), "globex_app", Some("wf_globex")).await;
    assert_eq!(
        served_by(&mut g).await,
        primary_port(),
        "tenant with no replicas"
    );
    let mut a = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    assert_eq!(
        served_by(&mut a).await,
        primary_port(),
        "consistency = primary"
    );
}

/// The first value of a text result, from a raw answer.
fn raw_value(raw: &[u8]) -> String {
    let v = switchyard::protocol::packets::first_text_value(raw, true)
        .expect("a row")
        .expect("not NULL");
    String::from_utf8(v).unwrap()
}

/// `SELECT @@last_gtid` after a write answers that write's GTID, as directly: it runs on the
/// connection the write ran on (after an autocommit write and after a COMMIT), not on a
/// replica or another pooled connection.
#[tokio::test]
async fn last_gtid_after_a_write_is_that_writes_gtid() {
    use common::raw::{modern_caps, packets, RawClient};
    use switchyard::protocol::packets::tracked_gtid;
    let mut root = common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.rt_last_gtid (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
    )
    .await
    .unwrap();
    let proxy = common::start(common::config("")).await;
    let (mut c, _) = RawClient::connect(
        proxy.addr.port(),
        "acme_app",
        "acme_pw",
        Some("wf_acme"),
        modern_caps(),
    )
    .await;
    let gtid_of = |raw: Vec<u8>| tracked_gtid(&packets(&raw).remove(0).1).expect("a GTID");
    for round in 0..3 {
        let insert = format!("INSERT INTO rt_last_gtid (v) VALUES ({round})");
        let gtid = gtid_of(c.query(&insert).await);
        assert_eq!(raw_value(&c.query("SELECT @@last_gtid").await), gtid);
        c.query("BEGIN").await;
        c.query(&insert).await;
        let gtid = gtid_of(c.query("COMMIT").await);
        assert_eq!(
            raw_value(&c.query("select @@session.last_gtid").await),
            gtid
        );
    }
}

/// `SHOW VARIABLES` answers as the `SELECT @@name` of what it lists would: the server's own
/// variables (`server_id`, `read_only`) from the primary, as directly, `last_gtid` after a
/// write from the write's connection, and the rest from a replica.
#[tokio::test]
async fn show_variables_answers_for_the_server_as_select_does() {
    table("rt_show_vars").await;
    let primary_id: String = common::root()
        .await
        .query_first("SELECT @@server_id")
        .await
        .unwrap()
        .unwrap();
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    let var = |rows: Vec<(String, String)>, name: &str| {
        rows.into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{name} listed"))
    };
    let mut ports = HashSet::new();
    for _ in 0..8 {
        let rows = c.query("SHOW VARIABLES LIKE 'server_id'").await.unwrap();
        assert_eq!(
            var(rows, "server_id"),
            primary_id,
            "the primary's server_id"
        );
        let rows = c
            .query("SHOW GLOBAL VARIABLES LIKE '%read_only'")
            .await
            .unwrap();
        assert_eq!(var(rows, "read_only"), "OFF");
        let rows = c.query("SHOW VARIABLES LIKE 'port'").await.unwrap();
        ports.insert(var(rows, "port").parse::<u16>().unwrap());
    }
    assert!(
        ports.iter().all(|p| is_replica(*p)),
        "other variables are read from replicas: {ports:?}"
    );
    let mut seqs = Vec::new();
    for pattern in ["last_gtid", "%gtid%"] {
        c.query_drop("INSERT INTO rt_show_vars (v) VALUES ('1')")
            .await
            .unwrap();
        let rows = c
            .query(format!("SHOW VARIABLES LIKE '{pattern}'"))
            .await
            .unwrap();
        let gtid = var(rows, "last_gtid");
        let seq: u64 = gtid
            .rsplit('-')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("the write's GTID after {pattern}: {gtid:?}"));
        seqs.push(seq);
    }
    assert!(seqs[1] > seqs[0], "two writes, two GTIDs: {seqs:?}");
    // What information_schema and performance_schema say about the server is the
    // primary's too: a replica answered read_only ON and its own threads.
    for _ in 0..4 {
        for (name, primarys) in [("READ_ONLY", "OFF"), ("SERVER_ID", primary_id.as_str())] {
            let value: Option<String> = c
                .query_first(format!(
                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES \
                     WHERE VARIABLE_NAME = '{name}'"
                ))
                .await
                .unwrap();
            assert_eq!(value.as_deref(), Some(primarys), "the primary's {name}");
        }
    }
}

/// With a client that negotiated session tracking (as libmariadb does) and a server that
/// tracks `last_gtid` (the local cluster does), a write's GTID arrives in its OK packet, and
/// read-your-writes uses it instead of asking the primary for `@@last_gtid`.
#[tokio::test]
async fn read_your_writes_takes_the_gtid_from_session_tracking() {
    use common::raw::{modern_caps, packets, RawClient};
    use switchyard::protocol::packets::tracked_gtid;
    let mut root = common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.rt_tracked (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
    )
    .await
    .unwrap();
    common::wait_replicated().await;

    // Directly: the OK of an INSERT carries the GTID that @@last_gtid then shows.
    let (mut direct, _) = RawClient::connect(
        primary_port(),
        "acme_app",
        "acme_pw",
        Some("wf_acme"),
        modern_caps(),
    )
    .await;
    let ok = direct.query("INSERT INTO rt_tracked (v) VALUES (1)").await;
    let (_, payload) = packets(&ok).remove(0);
    let gtid = tracked_gtid(&payload).expect("last_gtid tracked in the OK");
    assert_eq!(gtid, raw_value(&direct.query("SELECT @@last_gtid").await));

    // Through Switchyard: write, then read; the primary connection runs no SELECT for it.
    let proxy = common::start(common::config("")).await;
    let port = proxy.addr.port();
    let (mut c, _) =
        RawClient::connect(port, "acme_app", "acme_pw", Some("wf_acme"), modern_caps()).await;
    let selects_on_primary = |raw: Vec<u8>| raw_value(&raw).parse::<i64>().unwrap();
    let count = "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'COM_SELECT'";
    c.query("BEGIN").await;
    let before = selects_on_primary(c.query(count).await);
    c.query("COMMIT").await;
    let ok = c.query("INSERT INTO rt_tracked (v) VALUES (2)").await;
    let (_, payload) = packets(&ok).remove(0);
    assert!(
        tracked_gtid(&payload).is_some(),
        "relayed as the server sent it"
    );
    let read = raw_value(
        &c.query("SELECT CONCAT(@@port, ':', COUNT(*)) FROM rt_tracked WHERE v = 2")
            .await,
    );
    let (served, rows) = read.split_once(':').unwrap();
    assert!(
        is_replica(served.parse().unwrap()),
        "read served by {served}"
    );
    assert_ne!(rows, "0", "the read sees the write");
    c.query("BEGIN").await;
    let after = selects_on_primary(c.query(count).await);
    c.query("COMMIT").await;
    assert_eq!(
        after - before,
        1,
        "only the count itself ran on the primary"
    );
}

/// A statement the light pass gives up on (here: over 64 KiB) is classified off the event
/// loop. With every turn of the full pass held, it waits unanswered while another session on
/// the same (only) worker is served; once a turn is free it is answered and routed as any
/// read, and counted.
#[tokio::test]
async fn long_statements_are_classified_off_the_event_loop() {
    let mut cfg = common::config("");
    cfg.server.threads = 1;
    let state = switchyard::state::RuntimeState::new(cfg).shared();
    let proxy = common::start_shared(state.clone()).await;
    let shared = std::sync::Arc::clone(&state.load().shared);
    let port = proxy.addr.port();
    let mut other = connect(port, "acme_app", Some("wf_acme")).await;
    // Its shape is in the worker's cache before the turns are taken.
    let _: Option<i64> = other.query_first("SELECT 1 + 1").await.unwrap();
    let turns = shared.off_loop.0.available_permits() as u32;
    let held = shared.off_loop.0.acquire_many(turns).await.unwrap();

    let mut long = connect(port, "acme_app", Some("wf_acme")).await;
    let sql = format!(
        "SELECT @@port AS p /* {} */",
        "x".repeat(switchyard::router::LIGHT_MAX_SQL)
    );
    let waiting = tokio::spawn(async move {
        let port: Option<i64> = long.query_first(sql).await.unwrap();
        port
    });
    for i in 0..50_i64 {
        let two: Option<i64> = other.query_first(format!("SELECT {i} + 1")).await.unwrap();
        assert_eq!(two, Some(i + 1));
    }
    assert!(!waiting.is_finished(), "answered without a turn");
    assert_eq!(shared.router.full_pass_counts().0, 0);
    drop(held);
    let served = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("answered once a turn is free")
        .unwrap();
    assert!(is_replica(served.unwrap() as u16), "a read, on a replica");
    assert_eq!(shared.router.full_pass_counts().0, 1);
}

/// A write inside START TRANSACTION READ ONLY, as text, as an execute and as a prepare:
/// directly the primary
/// answers 1792; through the proxy the transaction lives on a replica, whose `read_only`
/// would answer 1290 instead. The client gets the primary's answer, and the transaction
/// goes on where it was.
#[tokio::test]
async fn a_write_in_a_read_only_transaction_is_refused_as_the_primary_refuses_it() {
    table("rt_read_only").await;
    type Diagnostics = Vec<(String, u32, String)>;
    async fn diagnostics(c: &mut Conn) -> (Diagnostics, (i64, i64)) {
        let shown = c.query("SHOW WARNINGS").await.unwrap();
        let counts: (i64, i64) = c
            .query_first("SELECT @@warning_count, @@error_count")
            .await
            .unwrap()
            .unwrap();
        (shown, counts)
    }
    async fn refusals(
        c: &mut Conn,
    ) -> (Vec<(u16, String, String)>, Vec<(Diagnostics, (i64, i64))>) {
        let stmt = c
            .prep("UPDATE rt_read_only SET v = ? WHERE id = 1")
            .await
            .unwrap();
        c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
        let _: Option<i64> = c
            .query_first("SELECT COUNT(*) FROM rt_read_only")
            .await
            .unwrap();
        let text = c
            .query_drop("INSERT INTO rt_read_only (v) VALUES ('x')")
            .await;
        // What the session learns of the refused statement afterwards is the server's too.
        let mut shown = vec![diagnostics(c).await];
        let executed = c.exec_drop(&stmt, ("y",)).await;
        shown.push(diagnostics(c).await);
        // The server refuses even to prepare a write inside the transaction.
        let prepared = c
            .prep("DELETE FROM rt_read_only WHERE id = 2")
            .await
            .map(drop);
        let mut out = Vec::new();
        for r in [text, executed, prepared] {
            match r {
                Err(mysql_async::Error::Server(e)) => out.push((e.code, e.state, e.message)),
                other => panic!("a write in a read-only transaction: {other:?}"),
            }
        }
        c.query_drop("COMMIT").await.unwrap();
        (out, shown)
    }
    let mut direct = connect(primary_port(), "acme_app", Some("wf_acme")).await;
    let want = refusals(&mut direct).await;
    assert_eq!(want.0[0].0, 1792, "the primary's own answer: {want:?}");
    assert_eq!(
        want.1[0].1,
        (1, 1),
        "the refusal is the session's last error: {want:?}"
    );
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    let first = served_by(&mut c).await;
    assert!(is_replica(first), "read-only transaction on a replica");
    let refused = c.query_drop("DELETE FROM rt_read_only WHERE id = 1").await;
    assert!(matches!(refused, Err(mysql_async::Error::Server(ref e)) if e.code == 1792));
    assert_eq!(served_by(&mut c).await, first, "the transaction goes on");
    c.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(refusals(&mut c).await, want);
}

/// `@@in_transaction` on the session's connection.
async fn in_transaction(c: &mut Conn) -> i64 {
    c.query_first("SELECT @@in_transaction")
        .await
        .unwrap()
        .unwrap()
}

/// BEGIN or DDL inside START TRANSACTION READ ONLY commits it, as the server does, and runs
/// outside it: a table made, a row written in the transaction BEGIN opened. Through the
/// proxy the read-only transaction was on a replica, where both were refused.
#[tokio::test]
async fn begin_and_ddl_end_a_read_only_transaction_as_on_the_server() {
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    c.query_drop("DROP TABLE IF EXISTS rt_ro_ddl")
        .await
        .unwrap();
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    assert!(is_replica(served_by(&mut c).await));
    c.query_drop("CREATE TABLE rt_ro_ddl (id INT PRIMARY KEY, port INT)")
        .await
        .unwrap();
    let in_txn = in_transaction(&mut c).await;
    assert_eq!(in_txn, 0, "the DDL committed the transaction");
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    assert!(is_replica(served_by(&mut c).await));
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO rt_ro_ddl VALUES (1, @@port)")
        .await
        .unwrap();
    let port: i64 = c
        .query_first("SELECT port FROM rt_ro_ddl WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        port,
        i64::from(primary_port()),
        "BEGIN's transaction on the primary"
    );
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop("DROP TABLE rt_ro_ddl").await.unwrap();
    // A DDL executed as a prepared statement commits the transaction alike.
    c.query_drop("DROP TABLE IF EXISTS rt_ro_ddl2")
        .await
        .unwrap();
    let ddl = c.prep("CREATE TABLE rt_ro_ddl2 (id INT)").await.unwrap();
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    assert!(is_replica(served_by(&mut c).await));
    c.exec_drop(&ddl, ()).await.unwrap();
    let in_txn = in_transaction(&mut c).await;
    assert_eq!(in_txn, 0, "the executed DDL committed the transaction");
    c.query_drop("DROP TABLE rt_ro_ddl2").await.unwrap();
}

/// Inside START TRANSACTION READ ONLY on a replica, statements the replica cannot run as
/// the server would move the transaction to the primary or end it there: several in one
/// (`COMMIT; INSERT`: the INSERT runs outside the transaction, on the primary; the replica
/// refused it with 1290), a read of a user variable only the primary's connection has
/// (NULL on the replica), TRUNCATE (it commits the transaction, as DDL; Switchyard answered
/// 1792 as to a write).
#[tokio::test]
async fn a_read_only_transaction_moves_for_what_only_the_primary_can_run() {
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    c.query_drop(
        "CREATE TABLE IF NOT EXISTS rt_ro_moves (id INT AUTO_INCREMENT PRIMARY KEY, port INT)",
    )
    .await
    .unwrap();
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    assert!(is_replica(served_by(&mut c).await));
    c.query_drop("COMMIT; INSERT INTO rt_ro_moves (port) VALUES (@@port)")
        .await
        .expect("COMMIT; INSERT in a read-only transaction");
    let port: Option<i64> = c
        .query_first("SELECT port FROM rt_ro_moves WHERE id = LAST_INSERT_ID()")
        .await
        .unwrap();
    assert_eq!(port, Some(i64::from(primary_port())));
    c.query_drop("SELECT 5 INTO @rt_ro_x").await.unwrap();
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    let x: Option<i64> = c.query_first("SELECT @rt_ro_x").await.unwrap();
    assert_eq!(x, Some(5), "the session's variable");
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    assert!(is_replica(served_by(&mut c).await));
    c.query_drop("TRUNCATE TABLE rt_ro_moves")
        .await
        .expect("TRUNCATE in a read-only transaction");
    let in_txn = in_transaction(&mut c).await;
    assert_eq!(in_txn, 0, "TRUNCATE committed the transaction");
}

/// A session through the proxy whose `START TRANSACTION READ ONLY` runs on a replica
/// (checked once, then committed), for stories compared with the server's.
async fn read_only_on_a_replica() -> (common::Proxy, Conn) {
    let (p, mut c) = proxy_conn("").await;
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    assert!(
        is_replica(served_by(&mut c).await),
        "the transaction on a replica"
    );
    c.query_drop("COMMIT").await.unwrap();
    (p, c)
}

/// What a statement inside a read-only transaction leaves in the session (a named lock, a
/// statement prepared by name, LAST_INSERT_ID(n)) outlives the transaction, and named locks
/// are the primary's (IS_FREE_LOCK sees another session's): the transaction, begun on a
/// replica, moves to the primary for such a statement and goes on there, read-only. On the
/// replica a lock excluded no one taking it on the primary, IS_FREE_LOCK called every lock
/// free, and the state was gone after COMMIT.
#[tokio::test]
async fn session_state_taken_in_a_read_only_transaction_lives_on_the_primary() {
    table("rt_ro_state").await;
    async fn story(c: &mut Conn) -> Vec<String> {
        let mut out = Vec::new();
        let mut root = common::root().await;
        root.query_drop("DO GET_LOCK('rt_ro_other', 0)")
            .await
            .unwrap();
        c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
        for sql in [
            // Another session holds it, on the primary.
            "SELECT IS_FREE_LOCK('rt_ro_other')",
            "SELECT GET_LOCK('rt_ro_state', 0)",
            "PREPARE rt_ro_s FROM 'SELECT 42'",
            "SELECT LAST_INSERT_ID(77)",
            "INSERT INTO rt_ro_state (v) VALUES ('written')",
            "COMMIT",
            "EXECUTE rt_ro_s",
            "SELECT LAST_INSERT_ID()",
        ] {
            let answer = match c.query::<Option<i64>, _>(sql).await {
                Ok(rows) => format!("{rows:?}"),
                Err(mysql_async::Error::Server(e)) => format!("{} {}", e.code, e.message),
                Err(e) => panic!("{sql}: {e}"),
            };
            // Taken where every other session takes it.
            let held: Option<i64> = root
                .query_first("SELECT IS_USED_LOCK('rt_ro_state') IS NOT NULL")
                .await
                .unwrap();
            out.push(format!(
                "{sql}: {answer}, lock held on the primary {held:?}"
            ));
        }
        let released: Option<i64> = c
            .query_first("SELECT RELEASE_LOCK('rt_ro_state')")
            .await
            .unwrap();
        out.push(format!("released {released:?}"));
        root.query_drop("DO RELEASE_LOCK('rt_ro_other')")
            .await
            .unwrap();
        out
    }
    let mut direct = connect(primary_port(), "acme_app", Some("wf_acme")).await;
    let want = story(&mut direct).await;
    assert!(
        want[0].starts_with("SELECT IS_FREE_LOCK('rt_ro_other'): [Some(0)]"),
        "{want:?}"
    );
    assert!(
        want[1].contains("[Some(1)], lock held on the primary Some(1)"),
        "{want:?}"
    );
    drop(direct);
    let (_p, mut c) = read_only_on_a_replica().await;
    assert_eq!(story(&mut c).await, want);
}

/// A user variable a SELECT assigns, an open HANDLER and a locking read inside a read-only
/// transaction move it to the primary too: on the replica the variable and the handler
/// were gone after COMMIT (the session then pinned to the primary, where they never were),
/// and the shared lock held up nothing on the primary (while it held up replication of the
/// row on the replica).
#[tokio::test]
async fn a_read_only_transactions_assignments_and_row_locks_are_the_primarys() {
    table("rt_ro_rows").await;
    let mut root = common::root().await;
    root.query_drop("INSERT IGNORE INTO wf_acme.rt_ro_rows (id, v) VALUES (1, 'row')")
        .await
        .unwrap();
    common::wait_replicated().await;
    async fn rows(c: &mut Conn, sql: &str) -> String {
        let rows: Vec<mysql_async::Row> = c.query(sql).await.unwrap();
        let rows: Vec<Vec<mysql_async::Value>> = rows.into_iter().map(|r| r.unwrap()).collect();
        format!("{rows:?}")
    }
    async fn story(c: &mut Conn, root: &mut Conn, sql: &str, after: &str) -> String {
        // Whether another session on the primary finds the row locked.
        async fn locked(root: &mut Conn) -> bool {
            let sql = "SELECT id FROM wf_acme.rt_ro_rows WHERE id = 1 FOR UPDATE NOWAIT";
            root.query_drop(sql).await.is_err()
        }
        c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
        let answer = rows(c, sql).await;
        let during = locked(root).await;
        c.query_drop("COMMIT").await.unwrap();
        let unlocked = !locked(root).await;
        let then = rows(c, after).await;
        format!("{sql}: {answer}, row locked on the primary {during}, then {unlocked}: {then}")
    }
    for (sql, after, directly) in [
        (
            "SELECT @r := 5",
            "SELECT @r",
            "locked on the primary false, then true: [[Bytes(\"5\")]]",
        ),
        (
            "HANDLER rt_ro_rows OPEN",
            "HANDLER rt_ro_rows READ FIRST",
            "[[Bytes(\"1\"), Null, Bytes(\"row\")]]",
        ),
        (
            "SELECT id FROM rt_ro_rows WHERE id = 1 LOCK IN SHARE MODE",
            "SELECT 1",
            "locked on the primary true, then true: [[Bytes(\"1\")]]",
        ),
    ] {
        let mut direct = connect(primary_port(), "acme_app", Some("wf_acme")).await;
        let want = story(&mut direct, &mut root, sql, after).await;
        assert!(want.ends_with(directly), "{want}");
        drop(direct);
        let (_p, mut c) = read_only_on_a_replica().await;
        assert_eq!(story(&mut c, &mut root, sql, after).await, want);
    }
}

/// CREATE and DROP TEMPORARY TABLE commit nothing, and MariaDB refuses them inside START
/// TRANSACTION READ ONLY (1792) with the transaction going on: through the proxy they had
/// committed the replica's transaction and run outside it, so the session's next write,
/// which directly is refused in the transaction, was written. UNLOCK TABLES, which commits
/// only when LOCK TABLES holds tables, had done the same.
#[tokio::test]
async fn temporary_table_ddl_in_a_read_only_transaction_is_refused_as_on_the_server() {
    table("rt_ro_temp").await;
    async fn story(c: &mut Conn) -> Vec<String> {
        let mut out = Vec::new();
        c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
        for sql in [
            "CREATE TEMPORARY TABLE rt_ro_tmp (x INT)",
            "DROP TEMPORARY TABLE IF EXISTS rt_ro_tmp",
            // Commits only when LOCK TABLES holds tables, which none can in the transaction.
            "UNLOCK TABLES",
            "INSERT INTO rt_ro_temp (v) VALUES ('written')",
        ] {
            let answer = match c.query_drop(sql).await {
                Ok(()) => "OK".to_string(),
                Err(mysql_async::Error::Server(e)) => format!("{} {}", e.code, e.message),
                Err(e) => panic!("{sql}: {e}"),
            };
            let in_txn = in_transaction(c).await;
            out.push(format!("{sql}: {answer}, in transaction {in_txn}"));
        }
        c.query_drop("COMMIT").await.unwrap();
        let written: i64 = c
            .query_first("SELECT COUNT(*) FROM rt_ro_temp WHERE v = 'written'")
            .await
            .unwrap()
            .unwrap();
        out.push(format!("rows written: {written}"));
        out
    }
    let mut direct = connect(primary_port(), "acme_app", Some("wf_acme")).await;
    let want = story(&mut direct).await;
    assert!(want[0].contains("1792"), "{want:?}");
    // Read-your-writes: the count after the transaction sees a row the session wrote.
    let (_p, mut c) = read_only_on_a_replica().await;
    assert_eq!(story(&mut c).await, want);
}

/// MariaDB skips an executable comment of a version it does not run (`/*!50700` to
/// `/*!99999`, or above its own) to the first `*/`, quotes and all, where the classifier
/// read it as SQL: `SELECT @@port /*!99999 ' */ -- '` was a read ending in a string here, and
/// `... ' */; DELETE ... -- '` hid a write that went to a replica. Such a statement goes to
/// the primary; its answer is the server's.
#[tokio::test]
async fn a_comment_the_server_skips_sends_the_statement_to_the_primary() {
    let p = common::start(common::config("")).await;
    let mut c = common::connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    assert!(common::is_replica(common::served_by(&mut c).await));
    let port: u16 = c
        .query_first("SELECT @@port /*!99999 ' */ -- '")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        port,
        common::primary_port(),
        "a statement that reads either way"
    );
    let row: (i64, i64) = c
        .query_first("SELECT 1 /*!99999 ' */, 2 -- '")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row, (1, 2), "as the server reads it");
    // What it may have changed of the session stays with it: pinned to that connection.
    assert_eq!(common::served_by(&mut c).await, common::primary_port());
    // Mysqldump's and hints' comments of versions the server runs route as ever.
    let mut other = common::connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let port: u16 = other
        .query_first("SELECT /*!40001 SQL_NO_CACHE */ @@port")
        .await
        .unwrap()
        .unwrap();
    assert!(common::is_replica(port));
}

/// A stored function called without its schema, as ERP code numbers its documents
/// (`SELECT next_doc_number()`): it may write, so it runs on the primary, not on a replica
/// (where its INSERT failed with 1290, or with a privilege past `read_only` wrote there).
#[tokio::test]
async fn an_unqualified_stored_function_runs_on_the_primary() {
    table("rt_docs").await;
    let mut root = common::root().await;
    // DETERMINISTIC (untrue) passes binary logging's check for a creator without SUPER, as
    // schemas that number documents this way declare it.
    root.query_drop(
        "CREATE OR REPLACE FUNCTION wf_acme.rt_next_doc() RETURNS INT MODIFIES SQL DATA \
         DETERMINISTIC SQL SECURITY INVOKER \
         BEGIN INSERT INTO wf_acme.rt_docs (port, v) VALUES (@@port, 'doc'); \
         RETURN LAST_INSERT_ID(); END",
    )
    .await
    .unwrap();
    common::wait_replicated().await;
    let (_p, mut c) = proxy_conn(r#"consistency = "eventual""#).await;
    for _ in 0..3 {
        let id: i64 = c
            .query_first("SELECT rt_next_doc()")
            .await
            .unwrap()
            .unwrap();
        let port: u16 = root
            .query_first(format!("SELECT port FROM wf_acme.rt_docs WHERE id = {id}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(port, primary_port(), "where the function wrote");
    }
}

/// Whether the server knows `name` (as written: quoted or not) as a built-in: a call of it
/// with no argument, or else with one to five, answered anything but "FUNCTION db.name
/// does not exist" (1305, or 1630 for a keyword's name). The geometry constructors are
/// read as such only with their arguments.
async fn server_knows(c: &mut Conn, name: &str) -> bool {
    for arity in 0..=5 {
        let args = vec!["1"; arity].join(", ");
        let sql = format!("SELECT {name}({args})");
        match c.query_drop(&sql).await {
            Ok(()) => return true,
            Err(mysql_async::Error::Server(e)) if e.code == 1305 || e.code == 1630 => {}
            Err(mysql_async::Error::Server(_)) => return true,
            Err(e) => panic!("{sql}: {e}"),
        }
    }
    false
}

/// Every name the classifier takes for a built-in is one on the server, spelt as the list
/// says (a name listed that is none would send a stored function of that name to a
/// replica), and names of other servers' built-ins are not this one's.
#[tokio::test]
async fn the_built_in_function_list_is_the_servers() {
    let mut root = common::root().await;
    root.query_drop("USE information_schema").await.unwrap();
    let list = include_str!("../src/router/builtins.txt");
    let mut checked = 0;
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, kind) = line.split_once(' ').unwrap();
        let plain = server_knows(&mut root, name).await;
        let quoted = server_knows(&mut root, &format!("`{name}`")).await;
        let expected = match kind {
            "native" => (true, true),
            "keyword" => (true, false),
            "other" => (false, false),
            other => panic!("kind {other} of {name}"),
        };
        assert_eq!(
            (plain, quoted),
            expected,
            "{name} ({kind}): known unquoted, quoted"
        );
        checked += 1;
    }
    assert!(checked > 800, "{checked} names");
    for made_up in ["next_doc_number", "rt_next_doc", "concatt"] {
        assert!(!server_knows(&mut root, made_up).await);
    }
}

/// The `pins` column of session `id` in SHOW SESSIONS on the admin port `admin`.
async fn pins_of(admin: u16, id: u32) -> Option<String> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(admin)
        .user(Some("admin"))
        .pass(Some("admin_pw"))
        .prefer_socket(false);
    let mut a = Conn::new(opts).await.expect("admin login");
    let rows: Vec<mysql_async::Row> = a.query("SHOW SESSIONS").await.unwrap();
    rows.into_iter().find_map(|r| {
        let sid: u64 = r.get("id")?;
        let pins: Option<Option<String>> = r.get("pins");
        (sid == u64::from(id)).then(|| pins.flatten().unwrap_or_default())
    })
}

/// `/* pin=on */` keeps the session on its primary connection until `/* pin=off */`, and
/// SHOW SESSIONS names the pin `hint` (routing.md, "Hints"; product.md). It is what an
/// application relies on when its code keeps server state Switchyard cannot see: a pin
/// the proxy forgot would send the next read to a replica, where that state is missing.
#[tokio::test]
async fn a_pin_hint_keeps_reads_on_the_primary_until_pin_off() {
    let text = common::config_text(r#"consistency = "eventual""#)
        + "\n[admin]\nuser = \"admin\"\npassword = \"admin_pw\"\n";
    let cfg = switchyard::config::parse(&text, &|_| None).unwrap();
    let p = common::start_with_admin(switchyard::state::RuntimeState::new(cfg)).await;
    let admin = p.admin.port();
    let mut c = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let id = c.id();
    assert!(is_replica(served_by(&mut c).await), "before the hint");

    let port: u16 = c
        .query_first("/* pin=on */ SELECT @@port")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(port, primary_port(), "the pin=on statement itself");
    for i in 0..5 {
        assert_eq!(
            served_by(&mut c).await,
            primary_port(),
            "read {i} after pin=on"
        );
    }
    let pins = common::until("SHOW SESSIONS names the hint pin", SHOW, || async {
        pins_of(admin, id).await.filter(|p| p.contains("hint"))
    })
    .await;
    assert_eq!(pins, "hint");

    c.query_drop("/* pin=off */ SELECT 1").await.unwrap();
    for i in 0..3 {
        assert!(
            is_replica(served_by(&mut c).await),
            "read {i} after pin=off goes to a replica again"
        );
    }
    common::until("SHOW SESSIONS drops the hint pin", SHOW, || async {
        pins_of(admin, id)
            .await
            .filter(|p| p.is_empty())
            .map(|_| ())
    })
    .await;
}

const SHOW: Duration = Duration::from_secs(5);

/// A write that failed without changing anything (a duplicate key on a transactional
/// table: nothing logged) leaves the session's reads free to use replicas with
/// `consistency = "session"`: asked for the write's GTID, its connection had none (it had
/// never logged one), and every read of the session went to the primary until a write that
/// logged something.
#[tokio::test]
async fn a_failed_write_that_logged_nothing_keeps_reads_on_replicas() {
    let mut root = common::root().await;
    root.query_drop("CREATE TABLE IF NOT EXISTS wf_acme.ryw_dup (id INT PRIMARY KEY)")
        .await
        .unwrap();
    root.query_drop("INSERT IGNORE INTO wf_acme.ryw_dup VALUES (1)")
        .await
        .unwrap();
    common::wait_replicated().await;
    let proxy = common::start(common::config(r#"consistency = "session""#)).await;
    let mut c = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    let dup = c.query_drop("INSERT INTO ryw_dup VALUES (1)").await;
    assert!(dup.is_err(), "the duplicate is refused");
    // A read of the table, not of variables only (those wait for no write).
    for i in 0..3 {
        let port: u16 = c
            .query_first("SELECT @@port FROM ryw_dup WHERE id = 1")
            .await
            .unwrap()
            .unwrap();
        assert!(
            is_replica(port),
            "read {i} after the failed write ran on {port}"
        );
    }
}
