//! The admin port and the HTTP endpoint against the local cluster: every command through
//! mysql_async and some through the mariadb CLI, OFFLINE/ONLINE seen in where reads go,
//! PAUSE/RESUME seen in when statements complete, RELOAD of a broken and of a changed file,
//! and /metrics, /health, /ready over HTTP.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, is_replica, primary_port, replica_ports, served_by, AdminProxy};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder, Value};
use switchyard::config;
use switchyard::state::RuntimeState;

const ADMIN_USER: &str = "admin";
const ADMIN_PASSWORD: &str = "admin_pw";

fn admin_section() -> String {
    format!("\n[admin]\nuser = \"{ADMIN_USER}\"\npassword = \"{ADMIN_PASSWORD}\"\n")
}

/// The common test config plus an `[admin]` user, with `acme`'s replica list replaced.
fn config_text(acme_replicas: Option<&str>) -> String {
    let mut text = common::config_text("");
    if let Some(list) = acme_replicas {
        let [r1, r2] = replica_ports();
        let old = format!(r#"replicas = ["127.0.0.1:{r1}", "127.0.0.1:{r2}"]"#);
        // The first such line is acme's.
        text = text.replacen(&old, &format!("replicas = [{list}]"), 1);
    }
    text + &admin_section()
}

async fn start() -> AdminProxy {
    let cfg = config::parse(&config_text(None), &|_| None).unwrap();
    common::start_with_admin(RuntimeState::new(cfg)).await
}

/// A config file of its own for a test that reloads.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "switchyard-admin-{name}-{}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        TempConfig(path)
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn start_from_file(file: &TempConfig) -> AdminProxy {
    let cfg = config::load(&file.0).unwrap();
    common::start_with_admin(RuntimeState::from_file(cfg, file.0.clone())).await
}

/// A proxy serving config file `name` (written with `text`, to be rewritten and reloaded),
/// and an admin connection to it.
async fn serving_file(name: &str, text: &str) -> (TempConfig, AdminProxy, Conn) {
    let file = TempConfig::new(name, text);
    let p = start_from_file(&file).await;
    let a = admin(&p).await;
    (file, p, a)
}

async fn admin_with(p: &AdminProxy, password: &str) -> mysql_async::Result<Conn> {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(p.admin.port())
        .user(Some(ADMIN_USER))
        .pass(Some(password))
        .prefer_socket(false);
    Conn::new(opts).await
}

async fn admin(p: &AdminProxy) -> Conn {
    admin_with(p, ADMIN_PASSWORD).await.expect("admin login")
}

/// A session of `acme_app` in `wf_acme` over the raw protocol client.
async fn raw_acme(p: &AdminProxy) -> common::raw::RawClient {
    let caps = common::raw::modern_caps();
    let port = p.addr.port();
    common::raw::RawClient::connect(port, "acme_app", "acme_pw", Some("wf_acme"), caps)
        .await
        .0
}

/// The admin login over the raw protocol client, which keeps every byte of the answers.
async fn raw_admin(p: &AdminProxy) -> common::raw::RawClient {
    let (a, login) = common::raw::RawClient::connect(
        p.admin.port(),
        ADMIN_USER,
        ADMIN_PASSWORD,
        None,
        common::raw::modern_caps(),
    )
    .await;
    assert_eq!(login[4], 0, "admin login OK: {login:?}");
    a
}

/// A result set read back as text: column names and rows (NULL as None).
#[derive(Debug)]
struct Answer {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

impl Answer {
    fn col(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.columns))
    }

    fn get(&self, row: usize, name: &str) -> Option<&str> {
        self.rows[row][self.col(name)].as_deref()
    }

    /// The first row whose `column` is `value`.
    fn find(&self, column: &str, value: &str) -> Option<usize> {
        let i = self.col(column);
        self.rows
            .iter()
            .position(|r| r[i].as_deref() == Some(value))
    }
}

async fn ask(c: &mut Conn, command: &str) -> mysql_async::Result<Answer> {
    let mut result = c.query_iter(command).await?;
    let columns = result
        .columns()
        .map(|cols| cols.iter().map(|c| c.name_str().into_owned()).collect())
        .unwrap_or_default();
    let rows: Vec<mysql_async::Row> = result.collect().await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    Value::NULL => None,
                    Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true)),
                })
                .collect()
        })
        .collect();
    Ok(Answer { columns, rows })
}

async fn must(c: &mut Conn, command: &str) -> Answer {
    ask(c, command)
        .await
        .unwrap_or_else(|e| panic!("{command}: {e}"))
}

/// `command`'s answer once `done` holds for it (at most 5 s). A session runs on a worker
/// thread of its own and records a statement (digest statistics, pins) just after its
/// answer reached the client, so an admin read right after may come a moment early.
async fn must_until(c: &mut Conn, command: &str, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = must(c, command).await;
        if done(&a) || Instant::now() >= deadline {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn server_error(e: mysql_async::Error) -> (u16, String) {
    match e {
        mysql_async::Error::Server(s) => (s.code, s.message),
        other => panic!("expected a server error, got {other}"),
    }
}

async fn refused(c: &mut Conn, command: &str) -> (u16, String) {
    match ask(c, command).await {
        Ok(a) => panic!("{command} answered {a:?}"),
        Err(e) => server_error(e),
    }
}

fn replica_addr(i: usize) -> String {
    format!("127.0.0.1:{}", replica_ports()[i])
}

#[tokio::test]
async fn admin_login_needs_the_configured_password() {
    let p = start().await;
    let e = admin_with(&p, "wrong").await.expect_err("wrong password");
    let (code, msg) = server_error(e);
    assert_eq!(code, 1045, "{msg}");
    assert!(msg.contains("Access denied for user 'admin'"), "{msg}");
    // An app user is not an admin, even with its right password.
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(p.admin.port())
        .user(Some("acme_app"))
        .pass(Some("acme_pw"))
        .prefer_socket(false);
    let (code, _) = server_error(Conn::new(opts).await.expect_err("app user"));
    assert_eq!(code, 1045);
    let mut a = admin(&p).await;
    must(&mut a, "SHOW TENANTS").await;
}

#[tokio::test]
async fn show_commands_answer_typed_tables() {
    let p = start().await;
    let mut a = admin(&p).await;

    let t = must(&mut a, "show tenants;").await;
    let acme = t.find("tenant", "acme").expect("acme listed");
    assert_eq!(t.get(acme, "schemas"), Some("wf_acme, rb_acme"));
    assert_eq!(
        t.get(acme, "primary"),
        Some(format!("127.0.0.1:{}", primary_port()).as_str())
    );
    assert_eq!(t.get(acme, "paused"), Some("0"));
    assert!(t.find("tenant", "globex").is_some() && t.find("tenant", "sb").is_some());

    let b = must(&mut a, "SHOW BACKENDS").await;
    for col in [
        "tenant",
        "address",
        "role",
        "state",
        "lag_seconds",
        "gtid_position",
        "pool_in_use",
        "pool_idle",
        "reads_served",
        "writes_served",
    ] {
        b.col(col);
    }
    let r1 = (0..b.rows.len())
        .find(|&i| {
            b.get(i, "tenant") == Some("acme") && b.get(i, "address") == Some(&replica_addr(0))
        })
        .expect("acme's first replica");
    assert_eq!(b.get(r1, "role"), Some("replica"));
    assert_eq!(b.get(r1, "state"), Some("up"));

    // Typed columns: counts are integers to the client, flags tiny integers.
    let mut result = a.query_iter("SHOW STATS").await.unwrap();
    let types: Vec<_> = result
        .columns()
        .unwrap()
        .iter()
        .map(|c| (c.name_str().into_owned(), c.column_type()))
        .collect();
    drop(result.collect::<mysql_async::Row>().await.unwrap());
    assert_eq!(
        types[0].1,
        mysql_async::consts::ColumnType::MYSQL_TYPE_VAR_STRING
    );
    assert_eq!(
        types[1],
        (
            "statements".into(),
            mysql_async::consts::ColumnType::MYSQL_TYPE_LONGLONG
        )
    );

    let s = must(&mut a, "SHOW STATS").await;
    assert!(s.find("tenant", "globex").is_some());

    // Statements through the data port show up normalized, counted and timed.
    let mut app = common::connect(p.addr.port(), "globex_app", Some("wf_globex")).await;
    for n in [1, 2, 3] {
        let _: Option<i64> = app.query_first(format!("SELECT {n} + 40")).await.unwrap();
    }
    let d = must_until(&mut a, "SHOW QUERY DIGEST", |d| {
        d.find("digest", "SELECT ?+?")
            .is_some_and(|row| d.get(row, "count") == Some("3"))
    })
    .await;
    assert_eq!(
        d.columns,
        ["digest", "count", "route", "total_time_ms", "max_time_ms"]
    );
    let row = d
        .find("digest", "SELECT ?+?")
        .expect("the digest of SELECT n + 40");
    assert_eq!(d.get(row, "count"), Some("3"));
    assert_eq!(d.get(row, "route"), Some("primary"));
    // ... and are counted on the server that ran them.
    let b = must(&mut a, "SHOW BACKENDS").await;
    let primary = (0..b.rows.len())
        .find(|&i| b.get(i, "tenant") == Some("globex") && b.get(i, "role") == Some("primary"))
        .expect("globex's primary");
    let reads: u64 = b.get(primary, "reads_served").unwrap().parse().unwrap();
    assert!(reads >= 3, "reads served: {reads}");

    let h = must(&mut a, "SHOW COMMANDS").await;
    assert!(h.find("command", "RELOAD").is_some());

    let (code, msg) = refused(&mut a, "FLUSH EVERYTHING").await;
    assert_eq!(code, 1064);
    for c in [
        "SHOW TENANTS",
        "SHOW BACKENDS",
        "SHOW SESSIONS",
        "SHOW STATS",
        "EXPLAIN ROUTE",
        "RELOAD",
        "PAUSE TENANT",
        "RESUME TENANT",
        "SET BACKEND",
    ] {
        assert!(msg.contains(c), "{c} not listed in: {msg}");
    }
    let (code, msg) = refused(&mut a, "RESUME TENANT nosuch").await;
    assert_eq!(code, 1049);
    assert!(msg.contains("nosuch"), "{msg}");
    let (_, msg) = refused(&mut a, "PAUSE TENANT nosuch TIMEOUT 1").await;
    assert!(msg.contains("nosuch"), "{msg}");
    // The connection is still usable after errors.
    must(&mut a, "SHOW SESSIONS").await;
}

/// A plain read longer than the classifier parses (`router::MAX_PARSED_SQL`).
fn long_select() -> String {
    let mut sql = String::from("SELECT 1 FROM DUAL WHERE 1 = 1");
    while sql.len() <= switchyard::router::MAX_PARSED_SQL {
        sql.push_str(" OR 1 = 1");
    }
    sql
}

#[tokio::test]
async fn explain_route_gives_route_and_reason() {
    let p = start().await;
    let mut a = admin(&p).await;

    let e = must(&mut a, "EXPLAIN ROUTE SELECT id FROM t WHERE id = 1").await;
    assert_eq!(e.get(0, "tenant"), Some("acme"), "first tenant by default");
    assert_eq!(e.get(0, "class"), Some("read"));
    assert_eq!(e.get(0, "route"), Some("replica"));
    // The default consistency: a read sees the tenant's writes through this proxy.
    assert_eq!(e.get(0, "reason"), Some("tenant's writes"));
    assert_eq!(e.get(0, "must_see"), Some("tenant"));
    assert!(e.get(0, "servers").unwrap().contains(&replica_addr(0)));

    let e = must(&mut a, "explain route UPDATE t SET a = 1 WHERE id = 2").await;
    assert_eq!(e.get(0, "route"), Some("primary"));
    assert_eq!(e.get(0, "reason"), Some("write"));

    let e = must(&mut a, "EXPLAIN ROUTE SELECT GET_LOCK('x', 1)").await;
    assert_eq!(e.get(0, "route"), Some("primary"));
    assert!(e.get(0, "effects").unwrap().contains("named lock"), "{e:?}");

    let e = must(&mut a, "EXPLAIN ROUTE FOR USER globex_app SELECT 1").await;
    assert_eq!(e.get(0, "tenant"), Some("globex"));
    assert_eq!(
        (e.get(0, "route"), e.get(0, "reason")),
        (Some("primary"), Some("no replicas"))
    );

    let e = must(
        &mut a,
        "EXPLAIN ROUTE FOR USER ops SCHEMA wf_globex SELECT 1",
    )
    .await;
    assert_eq!(e.get(0, "tenant"), Some("globex"));
    // A schema alone names its tenant (it was taken for the statement, and the first
    // tenant's route given).
    let e = must(&mut a, "EXPLAIN ROUTE SCHEMA wf_globex SELECT 1").await;
    assert_eq!(e.get(0, "tenant"), Some("globex"));
    assert_eq!(e.get(0, "reason"), Some("no replicas"));

    // Past the parse limit: not parsed, and the reason says so.
    let long = format!("EXPLAIN ROUTE {}", long_select());
    let e = must(&mut a, &long).await;
    assert_eq!(
        (e.get(0, "class"), e.get(0, "route"), e.get(0, "reason")),
        (
            Some("primary only (too long)"),
            Some("primary"),
            Some("too long")
        )
    );

    let e = must(&mut a, "EXPLAIN ROUTE /* route=primary */ SELECT 1").await;
    assert_eq!(
        (e.get(0, "route"), e.get(0, "reason")),
        (Some("primary"), Some("hint"))
    );

    let (code, msg) = refused(
        &mut a,
        "EXPLAIN ROUTE FOR USER acme_app SCHEMA wf_globex SELECT 1",
    )
    .await;
    assert_eq!(code, 1044, "{msg}");
    let (_, msg) = refused(&mut a, "EXPLAIN ROUTE FOR USER ops SELECT 1").await;
    assert!(msg.contains("SCHEMA"), "{msg}");
}

#[tokio::test]
async fn show_sessions_lists_a_live_session_and_its_pin() {
    let p = start().await;
    let mut app = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let got: Option<i64> = app
        .query_first("SELECT GET_LOCK('sy_admin_test_pin', 5)")
        .await
        .unwrap();
    assert_eq!(got, Some(1));
    let mut a = admin(&p).await;
    let pinned = |s: &Answer| {
        s.find("user", "acme_app")
            .is_some_and(|row| s.get(row, "pins").is_some_and(|p| p.contains("named lock")))
    };
    let s = must_until(&mut a, "SHOW SESSIONS", pinned).await;
    let row = s
        .find("user", "acme_app")
        .expect("the app session is listed");
    assert_eq!(s.get(row, "tenant"), Some("acme"));
    assert_eq!(s.get(row, "schema"), Some("wf_acme"));
    assert_eq!(s.get(row, "in_transaction"), Some("0"));
    assert!(s.get(row, "pins").unwrap().contains("named lock"), "{s:?}");
    let primary = format!("127.0.0.1:{}", primary_port());
    assert!(s.get(row, "backends").unwrap().contains(&primary), "{s:?}");

    // The same through the mariadb client: a table.
    let out = mariadb_cli(&p, "SHOW SESSIONS").await;
    assert!(out.starts_with("+-"), "{out}");
    assert!(out.contains("| tenant") && out.contains("| acme"), "{out}");
    assert!(out.contains("named lock"), "{out}");
    let out = mariadb_cli(&p, "show tenants;").await;
    assert!(out.contains("| globex"), "{out}");

    app.query_drop("DO RELEASE_LOCK('sy_admin_test_pin')")
        .await
        .unwrap();
    let s = must_until(&mut a, "SHOW SESSIONS", |s| {
        s.find("user", "acme_app")
            .is_some_and(|row| s.get(row, "pins") == Some(""))
    })
    .await;
    let row = s.find("user", "acme_app").unwrap();
    assert_eq!(s.get(row, "pins"), Some(""), "the pin lifts: {s:?}");
    drop(app);
    // A closed session leaves the list.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = must(&mut a, "SHOW SESSIONS").await;
        if s.find("user", "acme_app").is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "session still listed: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn mariadb_cli(p: &AdminProxy, command: &str) -> String {
    let out = tokio::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            "--table",
            "-h127.0.0.1",
            &format!("-P{}", p.admin.port()),
            &format!("-u{ADMIN_USER}"),
            &format!("-p{ADMIN_PASSWORD}"),
            "-e",
            command,
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("mariadb client finished")
        .expect("mariadb client runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mariadb {command}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn offline_replica_gets_no_reads_until_online() {
    let p = start().await;
    let mut a = admin(&p).await;
    let r1 = replica_ports()[0];
    let mut app = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    assert!(is_replica(served_by(&mut app).await));

    let s = must(&mut a, &format!("SET BACKEND {} OFFLINE", replica_addr(0))).await;
    assert_eq!(s.get(0, "state"), Some("offline"));
    assert_eq!(s.get(0, "changed"), Some("1"));
    let b = must(&mut a, "SHOW BACKENDS").await;
    let row = b.find("address", &replica_addr(0)).unwrap();
    assert_eq!(b.get(row, "state"), Some("offline"));
    for _ in 0..20 {
        let port = served_by(&mut app).await;
        assert_ne!(port, r1, "an OFFLINE replica served a read");
        assert!(
            is_replica(port),
            "reads still go to the other replica, not {port}"
        );
    }
    for _ in 0..5 {
        let mut fresh = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
        assert_ne!(served_by(&mut fresh).await, r1);
    }

    must(
        &mut a,
        &format!("set backend '{}' online;", replica_addr(0)),
    )
    .await;
    let mut seen = HashSet::new();
    for _ in 0..30 {
        let mut fresh = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
        seen.insert(served_by(&mut fresh).await);
        if seen.contains(&r1) {
            break;
        }
    }
    assert!(
        seen.contains(&r1),
        "back ONLINE, the replica serves reads again: {seen:?}"
    );

    let (_, msg) = refused(&mut a, "SET BACKEND 127.0.0.1:1 OFFLINE").await;
    assert!(msg.contains("Unknown backend '127.0.0.1:1'"), "{msg}");
    let (_, msg) = refused(
        &mut a,
        &format!("SET BACKEND 127.0.0.1:{} OFFLINE", primary_port()),
    )
    .await;
    assert!(msg.contains("primary"), "{msg}");
}

/// `EXPLAIN ROUTE FOR TENANT t` explains the statement for tenant `t`, not the first
/// configured one (product.md, operations.md admin commands): globex, which has no
/// replicas, routes `SELECT 1` to its primary, where the default tenant (acme) would
/// name a replica. An operator asking why a tenant's reads hit the primary relies on it.
#[tokio::test]
async fn explain_route_for_tenant_names_that_tenant_and_its_route() {
    let p = start().await;
    let mut a = admin(&p).await;
    let primary = format!("127.0.0.1:{}", primary_port());

    let e = must(&mut a, "EXPLAIN ROUTE FOR TENANT globex SELECT 1").await;
    assert_eq!(e.rows.len(), 1);
    assert_eq!(e.get(0, "tenant"), Some("globex"));
    assert_eq!(e.get(0, "class"), Some("read"));
    assert_eq!(
        (e.get(0, "route"), e.get(0, "reason")),
        (Some("primary"), Some("no replicas"))
    );
    assert_eq!(e.get(0, "servers"), Some(primary.as_str()));

    // The control: without FOR TENANT, or for acme, the same read goes to a replica.
    for sql in [
        "EXPLAIN ROUTE SELECT 1",
        "explain route for tenant acme SELECT 1",
    ] {
        let e = must(&mut a, sql).await;
        assert_eq!(e.get(0, "tenant"), Some("acme"), "{sql}");
        assert_eq!(e.get(0, "route"), Some("replica"), "{sql}");
    }
    let e = must(&mut a, "EXPLAIN ROUTE FOR TENANT sb SELECT 1").await;
    assert_eq!(e.get(0, "tenant"), Some("sb"));

    let (code, msg) = refused(&mut a, "EXPLAIN ROUTE FOR TENANT nobody SELECT 1").await;
    assert_eq!(code, 1049, "{msg}");
    assert!(msg.contains("'nobody'"), "{msg}");
}

/// A replica set OFFLINE on the admin port stays OFFLINE across RELOAD, of the same file
/// and of one that changes its tenant (operations.md, "Reload": "backends set OFFLINE ...
/// survive the reload"; the admin table: "kept across reloads"). A reload that brought it
/// back would send reads to a replica an operator took out for maintenance.
#[tokio::test]
async fn an_offline_replica_stays_offline_across_reload() {
    let (file, p, mut a) = serving_file("offline-reload", &config_text(None)).await;
    let r1 = replica_ports()[0];
    must(&mut a, &format!("SET BACKEND {} OFFLINE", replica_addr(0))).await;

    let changed = common::config_text(r#"consistency = "eventual""#) + &admin_section();
    for (what, text) in [("unchanged", config_text(None)), ("acme changed", changed)] {
        file.write(&text);
        let r = must(&mut a, "RELOAD").await;
        assert_eq!(r.get(0, "status"), Some("reloaded"), "{what}");
        if what == "acme changed" {
            assert_eq!(r.get(0, "tenants_changed"), Some("acme"), "{what}");
        }

        let b = must(&mut a, "SHOW BACKENDS").await;
        let rows: Vec<usize> = (0..b.rows.len())
            .filter(|&i| b.get(i, "address") == Some(replica_addr(0).as_str()))
            .collect();
        assert!(!rows.is_empty(), "{what}: replica 1 is listed");
        for i in rows {
            assert_eq!(
                b.get(i, "state"),
                Some("offline"),
                "{what}: replica 1 of tenant {:?}",
                b.get(i, "tenant")
            );
        }
        // Sessions kept open choose the replica fewer of them read from: with replica 1
        // back in rotation, some of these would pick it.
        let mut sessions = Vec::new();
        for (user, db) in [("acme_app", "wf_acme"), ("sbtest", "sbtest")] {
            for _ in 0..4 {
                sessions.push(connect(p.addr.port(), user, Some(db)).await);
            }
        }
        for i in 0..20 {
            let n = sessions.len();
            let port = served_by(&mut sessions[i % n]).await;
            assert_ne!(port, r1, "{what}: read {i} reached the OFFLINE replica");
            assert!(is_replica(port), "{what}: read {i} ran on {port}");
        }
    }
}

/// Runs `SELECT 1` on a globex session until `stop`; returns (statements, slowest).
fn globex_loop(p: &AdminProxy, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, Duration)> {
    let port = p.addr.port();
    tokio::spawn(async move {
        let mut c = connect(port, "globex_app", Some("wf_globex")).await;
        let (mut n, mut slowest) = (0u64, Duration::ZERO);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let t = Instant::now();
            let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
            assert_eq!(one, Some(1));
            slowest = slowest.max(t.elapsed());
            n += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (n, slowest)
    })
}

#[tokio::test]
async fn pause_waits_for_transactions_then_holds_statements_until_resume() {
    let p = start().await;
    let mut a = admin(&p).await;
    let stop = Arc::new(AtomicBool::new(false));
    let globex = globex_loop(&p, Arc::clone(&stop));

    let mut in_txn = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let mut later = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    in_txn.query_drop("START TRANSACTION").await.unwrap();
    let _: Option<u16> = in_txn.query_first("SELECT @@port").await.unwrap();
    let sessions = must(&mut a, "SHOW SESSIONS").await;
    let holder = (0..sessions.rows.len())
        .find(|&i| sessions.get(i, "in_transaction") == Some("1"))
        .map(|i| sessions.get(i, "id").unwrap().to_owned())
        .expect("a session in a transaction");

    // PAUSE waits up to its timeout for the transaction, then names the session.
    let t = Instant::now();
    let r = must(&mut a, "PAUSE TENANT acme TIMEOUT 0.5").await;
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "PAUSE waited {:?}",
        t.elapsed()
    );
    assert_eq!(r.get(0, "status"), Some("paused"));
    assert_eq!(
        r.get(0, "sessions_still_in_transaction"),
        Some(holder.as_str())
    );
    assert!(
        r.get(0, "message").unwrap().contains("stays in force"),
        "{r:?}"
    );
    let t = must(&mut a, "SHOW TENANTS").await;
    assert_eq!(
        t.get(t.find("tenant", "acme").unwrap(), "paused"),
        Some("1")
    );

    // The transaction goes on and ends; a new statement of acme is held.
    let _: Option<u16> = in_txn.query_first("SELECT @@port").await.unwrap();
    in_txn.query_drop("COMMIT").await.unwrap();
    let held = tokio::spawn(async move {
        let v: Option<i64> = later.query_first("SELECT 40 + 2").await.unwrap();
        (v, later)
    });
    let held_now = |t: &Answer| t.get(0, "held_statements") == Some("1");
    let t = must_until(&mut a, "SHOW TENANTS LIKE 'acme'", held_now).await;
    assert!(held_now(&t), "the statement is held: {t:?}");
    // And it stays held while the tenant is paused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !held.is_finished(),
        "a statement of a paused tenant completed"
    );
    // A second PAUSE now finds no transaction and returns at once.
    let t = Instant::now();
    let r = must(&mut a, "PAUSE TENANT acme TIMEOUT 5").await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(r.get(0, "sessions_still_in_transaction"), Some(""));

    let r = must(&mut a, "RESUME TENANT acme").await;
    assert_eq!(r.get(0, "status"), Some("running"));
    let (v, _later) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("held statement completes after RESUME")
        .unwrap();
    assert_eq!(v, Some(42), "held statement's result intact");

    stop.store(true, Ordering::Relaxed);
    let (n, slowest) = globex.await.unwrap();
    assert!(n >= 20, "globex kept running: {n} statements");
    assert!(
        slowest < Duration::from_millis(400),
        "globex stalled for {slowest:?}"
    );

    let s = must(&mut a, "SHOW STATS").await;
    let acme = s.find("tenant", "acme").unwrap();
    assert!(
        s.get(acme, "held").unwrap().parse::<u64>().unwrap() >= 1,
        "{s:?}"
    );
    let r = must(&mut a, "RESUME TENANT acme").await;
    assert_eq!(r.get(0, "message"), Some("was not paused"));
}

#[tokio::test]
async fn statements_held_past_the_limit_get_an_error() {
    let cfg = config::parse(&config_text(None), &|_| None).unwrap();
    let mut state = RuntimeState::new(cfg);
    state.pause_max_hold = Duration::from_millis(300);
    let p = common::start_with_admin(state).await;
    let mut a = admin(&p).await;
    let mut app = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    must(&mut a, "PAUSE TENANT acme TIMEOUT 0").await;
    let e = app.query_drop("SELECT 1").await.expect_err("held too long");
    let (code, msg) = server_error(e);
    assert_eq!(code, 1205);
    assert!(msg.contains("acme") && msg.contains("paused"), "{msg}");
    must(&mut a, "RESUME TENANT acme").await;
    app.query_drop("SELECT 1").await.unwrap();
}

/// A procedure that fails after its START TRANSACTION leaves the transaction open, as
/// directly: the session is in it (SHOW SESSIONS, so PAUSE and a drain wait for it). No
/// answer reported it (a procedure's own OKs never reach the client), and Switchyard took
/// the session for one outside a transaction.
#[tokio::test]
async fn a_transaction_a_failed_procedure_left_open_is_the_sessions() {
    let mut root = common::root().await;
    for sql in [
        "CREATE OR REPLACE TABLE wf_acme.sy_half_txn_rows (id INT PRIMARY KEY)",
        "CREATE OR REPLACE PROCEDURE wf_acme.sy_half_txn() BEGIN START TRANSACTION; \
         INSERT INTO wf_acme.sy_half_txn_rows VALUES (1); \
         INSERT INTO wf_acme.sy_half_txn_rows VALUES (1); END",
    ] {
        root.query_drop(sql).await.unwrap();
    }
    let p = start().await;
    let mut a = admin(&p).await;
    let mut app = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let (code, _) = server_error(app.query_drop("CALL sy_half_txn()").await.unwrap_err());
    assert_eq!(code, 1062);
    let in_trans: Option<i64> = app.query_first("SELECT @@in_transaction").await.unwrap();
    assert_eq!(in_trans, Some(1), "open on the server");
    let sessions = must(&mut a, "SHOW SESSIONS").await;
    assert_eq!(sessions.get(0, "in_transaction"), Some("1"), "{sessions:?}");
    app.query_drop("ROLLBACK").await.unwrap();
    let sessions = must(&mut a, "SHOW SESSIONS").await;
    assert_eq!(sessions.get(0, "in_transaction"), Some("0"), "{sessions:?}");
}

/// PAUSE waits for a statement of a session that chose its tenant by a qualified name
/// (no schema at login, no `USE`): it answered at once, the statement still running.
#[tokio::test]
async fn pause_waits_for_a_statement_that_named_its_tenant() {
    let p = start().await;
    let mut a = admin(&p).await;
    let mut root = common::root().await;
    root.query_drop("CREATE OR REPLACE TABLE wf_acme.pause_probe (a INT)")
        .await
        .unwrap();
    root.query_drop("INSERT INTO wf_acme.pause_probe VALUES (1)")
        .await
        .unwrap();
    let mut ops = connect(p.addr.port(), "ops", None).await;
    let slow = tokio::spawn(async move {
        ops.query_drop("SELECT SLEEP(1) FROM wf_acme.pause_probe /* pause_probe */")
            .await
    });
    let running = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                   WHERE INFO LIKE '%/* pause\\_probe */%' AND INFO NOT LIKE '%PROCESSLIST%'";
    common::until("the statement runs", Duration::from_secs(10), || async {
        let mut root = common::root().await;
        let n: Option<i64> = root.query_first(running).await.unwrap();
        (n == Some(1)).then_some(())
    })
    .await;
    let r = must(&mut a, "PAUSE TENANT acme TIMEOUT 10").await;
    assert_eq!(r.get(0, "status"), Some("paused"));
    let n: Option<i64> = root.query_first(running).await.unwrap();
    assert_eq!(n, Some(0), "PAUSE answered while the statement ran");
    must(&mut a, "RESUME TENANT acme").await;
    slow.await.unwrap().unwrap();
    root.query_drop("DROP TABLE wf_acme.pause_probe")
        .await
        .unwrap();
}

/// A login that completes while Switchyard drains gets ERR 1053, as from a server shutting
/// down: it got an OK, then its connection closed before its first statement (a client's
/// pool took it for sound).
#[tokio::test]
async fn a_login_completing_during_the_drain_is_refused() {
    use switchyard::protocol::MariadbCapabilities;
    let p = start().await;
    let addr = p.addr;
    // A transaction keeps the drain going.
    let mut in_txn = connect(addr.port(), "acme_app", Some("wf_acme")).await;
    in_txn.query_drop("BEGIN").await.unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.readable().await.unwrap();
    drop(p);
    common::until(
        "the listener closed",
        Duration::from_secs(5),
        || async move {
            tokio::net::TcpStream::connect(addr)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    let caps = (common::raw::modern_caps(), MariadbCapabilities::empty());
    let (_c, reply) =
        common::raw::RawClient::login(stream, "acme_app", "acme_pw", Some("wf_acme"), caps).await;
    assert_eq!(reply[4], 0xFF, "the login is refused: {reply:?}");
    let code = u16::from_le_bytes([reply[5], reply[6]]);
    assert_eq!(code, 1053, "{}", String::from_utf8_lossy(&reply[13..]));
    // The transaction still finishes.
    in_txn.query_drop("COMMIT").await.unwrap();
}

/// A statement a pause holds when Switchyard is told to shut down gets ERR 1053 at once, as
/// from a server shutting down, and is not run: it waited for the whole grace (30 s), then
/// its connection was cut without a word (the client could not tell whether it ran).
#[tokio::test]
async fn a_held_statement_is_refused_at_shutdown() {
    let p = start().await;
    let mut a = admin(&p).await;
    let mut app = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    must(&mut a, "PAUSE TENANT acme TIMEOUT 0").await;
    let held = tokio::spawn(async move { app.query_drop("SELECT 1").await });
    let held_now = |t: &Answer| t.get(0, "held_statements") == Some("1");
    let t = must_until(&mut a, "SHOW TENANTS LIKE 'acme'", held_now).await;
    assert!(held_now(&t), "the statement is held: {t:?}");
    drop(p);
    let answer = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("answered before the grace ends")
        .unwrap();
    let (code, msg) = server_error(answer.expect_err("not run"));
    assert_eq!(code, 1053, "{msg}");
}

/// A statement a pause holds runs under the config of its resume, not of its arrival: the
/// maintenance a pause is for (pause, move or remove, reload, resume). It ran as the old
/// config said: a user the reload removed got its answer (a moved tenant's write went to
/// the old primary).
#[tokio::test]
async fn a_statement_held_across_a_reload_runs_under_the_reloaded_config() {
    let text = config_text(None);
    let (file, p, mut a) = serving_file("held-reload", &text).await;
    let mut app = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let mut prepared = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let stmt = prepared.prep("SELECT 40 + ?").await.unwrap();
    must(&mut a, "PAUSE TENANT acme TIMEOUT 0").await;
    let held = tokio::spawn(async move { app.query_first::<i64, _>("SELECT 40 + 2").await });
    let held_execute =
        tokio::spawn(async move { prepared.exec_first::<i64, _, _>(&stmt, (2,)).await });
    let both_held = |t: &Answer| t.get(0, "held_statements") == Some("2");
    let t = must_until(&mut a, "SHOW TENANTS LIKE 'acme'", both_held).await;
    assert!(both_held(&t), "both statements held: {t:?}");

    let user = "[[users]]\nname = \"acme_app\"\npassword = \"acme_pw\"\ntenant = \"acme\"\n";
    assert!(text.contains(user));
    file.write(&text.replace(user, ""));
    must(&mut a, "RELOAD").await;
    must(&mut a, "RESUME TENANT acme").await;
    for answer in [held.await.unwrap(), held_execute.await.unwrap()] {
        let (code, msg) = server_error(answer.expect_err("the reload removed the user"));
        assert_eq!(code, 1044, "{msg}");
        assert!(msg.contains("acme_app") && msg.contains("removed"), "{msg}");
    }
}

#[tokio::test]
async fn reload_of_a_broken_file_is_refused_and_the_old_config_serves() {
    let (file, p, mut a) = serving_file("broken", &config_text(None)).await;
    file.write(
        &(config_text(None)
            + "\n[[tenants]]\nname = \"acme\"\nschemas = [\"wf_acme\"]\nprimary = \"nowhere\"\n"),
    );
    let (code, msg) = refused(&mut a, "RELOAD").await;
    assert_eq!(code, 1105);
    assert!(
        msg.contains("invalid") && msg.contains("running one stays"),
        "{msg}"
    );
    assert!(msg.contains("tenants"), "the problems are listed: {msg}");
    assert!(msg.lines().count() >= 3, "every problem: {msg}");
    let metric = |body: &str, name: &str| -> i64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {body}"))
    };
    let (_, body) = http_get(&p, "/metrics").await;
    assert_eq!(metric(&body, "switchyard_config_last_reload_successful"), 0);
    let started_at = metric(
        &body,
        "switchyard_config_last_reload_success_timestamp_seconds",
    );

    let mut app = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    assert!(is_replica(served_by(&mut app).await));
    let t = must(&mut a, "SHOW TENANTS").await;
    assert_eq!(t.rows.len(), 3);

    // Valid, but without [admin]: it would lock this admin port for good.
    file.write(&common::config_text(""));
    let (code, msg) = refused(&mut a, "RELOAD").await;
    assert_eq!(code, 1105);
    assert!(msg.contains("no [admin] section"), "{msg}");
    must(&mut admin(&p).await, "SHOW POOLS").await;

    file.write(&config_text(None));
    let r = must(&mut a, "RELOAD").await;
    assert_eq!(r.get(0, "status"), Some("reloaded"));
    let (ok, failed) = p.state.load().shared.reloads.get();
    assert_eq!((ok, failed), (1, 2));
    let (_, body) = http_get(&p, "/metrics").await;
    assert_eq!(metric(&body, "switchyard_config_last_reload_successful"), 1);
    assert!(
        metric(
            &body,
            "switchyard_config_last_reload_success_timestamp_seconds"
        ) >= started_at
    );
}

/// A reload that removes a tenant lets its sessions finish the transaction they are in,
/// on the servers they were using, then answers their next statement with ERR 1049 naming
/// the tenant; its users can no longer log in.
#[tokio::test]
async fn a_removed_tenants_sessions_finish_their_transaction_then_get_err_1049() {
    let (file, p, mut a) = serving_file("removed", &config_text(None)).await;
    let mut app = connect(p.addr.port(), "sbtest", Some("sbtest")).await;
    app.query_drop("BEGIN").await.unwrap();
    let before: u16 = app.query_first("SELECT @@port").await.unwrap().unwrap();

    let (primary, [r1, r2]) = (common::primary_port(), replica_ports());
    let sb_tenant = format!(
        "[[tenants]]\nname = \"sb\"\nschemas = [\"sbtest\"]\nprimary = \"127.0.0.1:{primary}\"\nreplicas = [\"127.0.0.1:{r1}\", \"127.0.0.1:{r2}\"]\n"
    );
    let sb_user = "[[users]]\nname = \"sbtest\"\npassword = \"sbtest\"\ntenant = \"sb\"\n";
    let text = config_text(None);
    assert!(text.contains(&sb_tenant) && text.contains(sb_user));
    file.write(&text.replace(&sb_tenant, "").replace(sb_user, ""));
    let r = must(&mut a, "RELOAD").await;
    assert_eq!(r.get(0, "tenants_removed"), Some("sb"));

    // The transaction goes on where it was, and ends.
    let inside: u16 = app.query_first("SELECT @@port").await.unwrap().unwrap();
    assert_eq!(inside, before);
    app.query_drop("COMMIT").await.unwrap();
    let (code, msg) = server_error(app.query_drop("SELECT 1").await.unwrap_err());
    assert_eq!(code, 1049);
    assert!(msg.contains("'sb'") && msg.contains("removed"), "{msg}");
    let (code, msg) = server_error(app.query_drop("SELECT 1").await.unwrap_err());
    assert_eq!(code, 1049, "at every statement: {msg}");
    let e = Conn::new(common::opts(p.addr.port(), "sbtest", Some("sbtest")))
        .await
        .expect_err("the removed tenant's user is gone");
    assert_eq!(server_error(e).0, 1045);
}

/// A session holding a named lock when a reload removes its tenant gets ERR 1049 and
/// ends, its lock freed: every statement, `RELEASE_LOCK` included, got the ERR, and the
/// lock stayed held on the server for as long as the client kept the connection.
#[tokio::test]
async fn a_removed_tenants_pinned_session_ends_and_frees_its_lock() {
    let text = config_text(None);
    let (file, p, mut a) = serving_file("removed-pinned", &text).await;
    let mut app = connect(p.addr.port(), "globex_app", Some("wf_globex")).await;
    let got: Option<i64> = app
        .query_first("SELECT GET_LOCK('sy_removed_pin', 5)")
        .await
        .unwrap();
    assert_eq!(got, Some(1));
    let globex = format!(
        "[[tenants]]\nname = \"globex\"\nschemas = [\"wf_globex\"]\nprimary = \"127.0.0.1:{}\"\nreplicas = []\n",
        primary_port()
    );
    let user = "[[users]]\nname = \"globex_app\"\npassword = \"globex_pw\"\ntenant = \"globex\"\n";
    assert!(text.contains(&globex) && text.contains(user));
    file.write(&text.replace(&globex, "").replace(user, ""));
    must(&mut a, "RELOAD").await;
    let (code, msg) = server_error(
        app.query_drop("SELECT RELEASE_LOCK('sy_removed_pin')")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 1049, "{msg}");
    assert!(
        app.query_drop("SELECT 1").await.is_err(),
        "the session ended"
    );
    until_lock_free("sy_removed_pin").await;
}

#[tokio::test]
async fn reload_with_new_replicas_under_load_drops_nothing() {
    let [r1, r2] = replica_ports();
    let (file, p, mut a) = serving_file(
        "replicas",
        &config_text(Some(&format!("\"127.0.0.1:{r1}\""))),
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let port = p.addr.port();
    let client = {
        let (stop, errors, reads) = (Arc::clone(&stop), Arc::clone(&errors), Arc::clone(&reads));
        tokio::spawn(async move {
            let mut c = connect(port, "acme_app", Some("wf_acme")).await;
            let mut ports = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match c.query_first::<u16, _>("SELECT @@port").await {
                    Ok(Some(p)) => ports.push(p),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                reads.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            ports
        })
    };
    let answered = |n: u64| {
        let reads = Arc::clone(&reads);
        common::until("the client's reads", Duration::from_secs(20), move || {
            let done = reads.load(Ordering::Relaxed);
            async move { (done >= n).then_some(()) }
        })
    };
    answered(5).await;
    file.write(&config_text(Some(&format!("\"127.0.0.1:{r2}\""))));
    let r = must(&mut a, "RELOAD").await;
    assert_eq!(r.get(0, "tenants_changed"), Some("acme"));
    let b = must(&mut a, "SHOW BACKENDS").await;
    let acme_replicas: Vec<_> = (0..b.rows.len())
        .filter(|&i| b.get(i, "tenant") == Some("acme") && b.get(i, "role") == Some("replica"))
        .map(|i| b.get(i, "address").unwrap().to_owned())
        .collect();
    assert_eq!(acme_replicas, [replica_addr(1)]);
    answered(reads.load(Ordering::Relaxed) + 25).await;
    stop.store(true, Ordering::Relaxed);
    let ports = client.await.unwrap();
    assert_eq!(
        errors.load(Ordering::Relaxed),
        0,
        "statements failed across the reload"
    );
    assert!(ports.len() > 25, "the loop ran: {}", ports.len());
    assert_eq!(ports.first(), Some(&r1), "before the reload: {ports:?}");
    let tail = &ports[ports.len() - 20..];
    assert!(
        tail.iter().all(|p| *p == r2),
        "after the reload only the new replica: {tail:?}"
    );

    // A fresh session also uses the new list.
    let mut fresh = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    assert_eq!(served_by(&mut fresh).await, r2);
}

/// One HTTP/1.1 GET over a fresh connection: (status, body).
async fn http_get(p: &AdminProxy, path: &str) -> (u16, String) {
    let a = common::http::get(p.http, path, "", Duration::from_secs(5)).await;
    (a.status, a.body)
}

/// The exit code of the image's health check probing `path` on the HTTP port.
async fn container_health_check(p: &AdminProxy, path: &str) -> Option<i32> {
    common::compose::health_check(&format!("http://{}{path}", p.http)).await
}

/// One sample of the text exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus / OpenMetrics text format strictly: `# HELP` / `# TYPE` / `# EOF`
/// lines, every sample belonging to a declared family, names and label names by the
/// exposition rules, label values with `\\`, `\"`, `\n` escapes, float values.
fn parse_exposition(text: &str) -> Vec<Sample> {
    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'));
        first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let mut saw_eof = false;
    for line in text.lines() {
        assert!(!saw_eof, "content after # EOF: {line}");
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_name(name, true), "bad family name {name}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "unknown"].contains(&kind),
                "{line}"
            );
            assert!(
                families.insert(name.into(), kind.into()).is_none(),
                "family {name} declared twice"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment line {line}");
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("sample without value: {line}"),
        };
        assert!(is_name(name, true), "bad metric name {name}");
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(mut r) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let (lname, after) = r.split_once("=\"").expect("label=\"value\"");
                assert!(is_name(lname, false), "bad label name {lname}");
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().expect("unterminated label value") {
                        (i, '"') => break i,
                        (_, '\\') => match chars.next().expect("escape").1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => panic!("bad escape \\{c} in {line}"),
                        },
                        (_, c) => value.push(c),
                    }
                };
                assert!(
                    labels.insert(lname.to_owned(), value).is_none(),
                    "duplicate label in {line}"
                );
                r = &after[end + 1..];
                r = r.strip_prefix(',').unwrap_or(r);
            }
            rest = r;
        }
        let value = rest.trim_start_matches(' ');
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let family = families
            .keys()
            .filter(|f| {
                name == f.as_str()
                    || name.strip_prefix(f.as_str()).is_some_and(|s| {
                        ["_total", "_bucket", "_sum", "_count", "_created"].contains(&s)
                    })
            })
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("sample {name} has no # TYPE"));
        if families[family] == "counter" {
            assert!(
                name.ends_with("_total") || name.ends_with("_created"),
                "counter sample {name}"
            );
            assert!(value >= 0.0);
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    assert!(saw_eof, "no # EOF");
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[tokio::test]
async fn metrics_and_probes_over_http() {
    let p = start().await;
    assert_eq!(http_get(&p, "/health").await, (200, "ok\n".into()));
    let mut ready = (0, String::new());
    for _ in 0..50 {
        ready = http_get(&p, "/ready").await;
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready.0, 200, "{ready:?}");
    assert_eq!(http_get(&p, "/nope").await.0, 404);
    // The image's and compose file's health check (plain bash over /dev/tcp) reads the
    // same answers: healthy on /health and /ready, unhealthy on anything else.
    assert_eq!(container_health_check(&p, "/health").await, Some(0));
    assert_eq!(container_health_check(&p, "/ready").await, Some(0));
    assert_eq!(container_health_check(&p, "/nope").await, Some(1));

    let mut acme = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    for _ in 0..5 {
        assert!(is_replica(served_by(&mut acme).await));
    }
    let mut globex = connect(p.addr.port(), "globex_app", Some("wf_globex")).await;
    for _ in 0..3 {
        assert_eq!(served_by(&mut globex).await, primary_port());
    }
    let _ = globex.query_drop("SELECT * FROM no_such_table_here").await;
    acme.query_drop(long_select()).await.unwrap();
    let pad = "x".repeat(switchyard::router::LIGHT_MAX_SQL);
    acme.query_drop(format!("DO 1 /* {pad} */")).await.unwrap();
    let mut a = admin(&p).await;
    must(&mut a, "PAUSE TENANT sb TIMEOUT 0").await;

    let (status, body) = http_get(&p, "/metrics").await;
    assert_eq!(status, 200);
    let samples = parse_exposition(&body);
    let stmt = |t: &str, r: &str| {
        value(
            &samples,
            "switchyard_statements_total",
            &[("tenant", t), ("route", r)],
        )
        .unwrap_or_else(|| panic!("no statements for {t}/{r}:\n{body}"))
    };
    assert!(stmt("acme", "replica") >= 5.0, "{body}");
    // The latency histogram: a count per tenant and route, matching the +Inf bucket.
    let count = value(
        &samples,
        "switchyard_statement_duration_seconds_count",
        &[("tenant", "acme"), ("route", "replica")],
    )
    .unwrap_or_else(|| panic!("no latency histogram:\n{body}"));
    let inf = value(
        &samples,
        "switchyard_statement_duration_seconds_bucket",
        &[("tenant", "acme"), ("route", "replica"), ("le", "+Inf")],
    )
    .unwrap_or_else(|| panic!("no +Inf bucket:\n{body}"));
    assert!(count >= 5.0 && count == inf, "{body}");
    assert!(stmt("globex", "primary") >= 4.0, "{body}");
    assert_eq!(stmt("globex", "replica"), 0.0);
    assert!(
        value(
            &samples,
            "switchyard_errors_total",
            &[("tenant", "globex"), ("kind", "statement")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        value(&samples, "switchyard_tenant_paused", &[("tenant", "sb")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "switchyard_tenant_paused", &[("tenant", "acme")]),
        Some(0.0)
    );
    assert!(value(&samples, "switchyard_client_sessions", &[]).unwrap() >= 2.0);
    let r1 = replica_addr(0);
    assert_eq!(
        value(
            &samples,
            "switchyard_backend_up",
            &[("tenant", "acme"), ("addr", &r1), ("role", "replica")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "switchyard_reloads_total", &[("result", "ok")]),
        Some(0.0)
    );
    for (reason, n) in [("too_long", 1.0), ("too_deep", 0.0)] {
        assert_eq!(
            value(
                &samples,
                "switchyard_classifier_unparsed_total",
                &[("reason", reason)]
            ),
            Some(n),
            "{body}"
        );
    }
    // The statement over the light pass's limit was classified off the event loop (the
    // long read is within it); so was each new SELECT shape.
    let off_loop = |reason| {
        value(
            &samples,
            "switchyard_classifier_off_loop_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(off_loop("long"), Some(1.0), "{body}");
    assert!(off_loop("new_shape").unwrap() >= 1.0, "{body}");
    assert_eq!(
        value(
            &samples,
            "switchyard_connections_refused_total",
            &[("limit", "handshake_timeout")]
        ),
        Some(0.0)
    );
    assert!(
        value(
            &samples,
            "switchyard_client_logins_total",
            &[("method", "mysql_native_password"), ("result", "accepted")]
        )
        .unwrap()
            >= 2.0,
        "the test's own logins:\n{body}"
    );
    for family in [
        "switchyard_fallbacks_total",
        "switchyard_hints_refused_total",
        "switchyard_held_statements_total",
        "switchyard_pinned_sessions",
    ] {
        assert!(
            samples.iter().any(|s| s.name == family),
            "{family} missing:\n{body}"
        );
    }
    let tenants: HashSet<&str> = samples
        .iter()
        .filter_map(|s| s.labels.get("tenant").map(String::as_str))
        .collect();
    assert_eq!(tenants, HashSet::from(["acme", "globex", "sb"]));
}

/// The security counters reach `/metrics` (security.md, "Misbehaving clients"; operations.md,
/// "Metrics and health"): a wrong password in
/// `switchyard_client_logins_total{method="mysql_native_password",result="refused"}`, a login
/// past `users[].max_connections` in `switchyard_connections_refused_total{limit="user"}`,
/// and hints that cannot be honoured (routing.md: an unknown consistency, a replica route
/// for a locking read) in `switchyard_hints_refused_total{tenant}`. Alerts on password
/// guessing and on clients over their limit read these series: counted but not exported,
/// they would never fire.
#[tokio::test]
async fn security_counters_reach_metrics() {
    let text = config_text(None).replacen(
        "tenant = \"globex\"\n",
        "tenant = \"globex\"\nmax_connections = 1\n",
        1,
    );
    let cfg = config::parse(&text, &|_| None).unwrap();
    assert_eq!(
        cfg.users
            .iter()
            .find(|u| u.name == "globex_app")
            .unwrap()
            .max_connections,
        Some(1)
    );
    let p = common::start_with_admin(RuntimeState::new(cfg)).await;
    let port = p.addr.port();

    let wrong = OptsBuilder::from_opts(common::opts(port, "acme_app", Some("wf_acme")))
        .pass(Some("not_acme_pw"));
    let e = Conn::new(wrong)
        .await
        .expect_err("a wrong password is refused");
    assert_eq!(server_error(e).0, 1045);

    let _held = connect(port, "globex_app", Some("wf_globex")).await;
    let e = Conn::new(common::opts(port, "globex_app", Some("wf_globex")))
        .await
        .expect_err("a second globex_app login is over its limit");
    assert_eq!(server_error(e).0, 1203);

    let mut acme = connect(port, "acme_app", Some("wf_acme")).await;
    for hinted in [
        "/* consistency=sometimes */ SELECT 1",
        "/* route=replica */ SELECT 1 FROM DUAL FOR UPDATE",
    ] {
        acme.query_drop(hinted).await.unwrap();
    }

    // A statement is counted just after its answer reached the client: scrape until the
    // hints are in, then read every series from that one scrape.
    let samples = common::until(
        "the refused hints in /metrics",
        Duration::from_secs(5),
        || async {
            let (status, body) = http_get(&p, "/metrics").await;
            assert_eq!(status, 200);
            let samples = parse_exposition(&body);
            let hints = value(
                &samples,
                "switchyard_hints_refused_total",
                &[("tenant", "acme")],
            );
            (hints == Some(2.0)).then_some(samples)
        },
    )
    .await;
    assert_eq!(
        value(
            &samples,
            "switchyard_client_logins_total",
            &[("method", "mysql_native_password"), ("result", "refused")]
        ),
        Some(1.0),
        "the wrong password"
    );
    assert_eq!(
        value(
            &samples,
            "switchyard_connections_refused_total",
            &[("limit", "user")]
        ),
        Some(1.0),
        "the login over globex_app's max_connections"
    );
}

#[tokio::test]
async fn shutdown_closes_the_admin_and_http_listeners() {
    let p = start().await;
    let (admin_addr, http_addr) = (p.admin, p.http);
    let mut a = admin(&p).await;
    must(&mut a, "SHOW TENANTS").await;
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let admin_gone = tokio::net::TcpStream::connect(admin_addr).await.is_err();
        let http_gone = tokio::net::TcpStream::connect(http_addr).await.is_err();
        if admin_gone && http_gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "listeners still open after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The open admin connection was closed too.
    assert!(ask(&mut a, "SHOW TENANTS").await.is_err());
}

#[tokio::test]
async fn show_sessions_lists_an_open_cursor_until_it_ends() {
    use switchyard::protocol::scan::Expect;
    let p = start().await;
    let mut app = raw_acme(&p).await;
    let prepared = app
        .command(b"\x16SELECT seq FROM seq_1_to_3", Expect::Prepare)
        .await;
    let id = u32::from_le_bytes([prepared[5], prepared[6], prepared[7], prepared[8]]);
    let id = id.to_le_bytes();
    // Execute with CURSOR_TYPE_READ_ONLY, then fetch all rows at once.
    let execute = [0x17, id[0], id[1], id[2], id[3], 1, 1, 0, 0, 0];
    app.command(&execute, Expect::ResultSets).await;
    let mut a = admin(&p).await;
    let opened = |s: &Answer| {
        s.find("user", "acme_app")
            .is_some_and(|row| s.get(row, "pins").is_some_and(|p| p.contains("cursor x1")))
    };
    let s = must_until(&mut a, "SHOW SESSIONS", opened).await;
    let row = s.find("user", "acme_app").expect("listed");
    assert!(s.get(row, "pins").unwrap().contains("cursor x1"), "{s:?}");
    let fetch = [0x1C, id[0], id[1], id[2], id[3], 10, 0, 0, 0];
    let rows = app.command(&fetch, Expect::Fetch).await;
    assert_eq!(
        common::raw::packets(&rows).len(),
        4,
        "three rows and the end"
    );
    let ended = |s: &Answer| {
        s.find("user", "acme_app")
            .is_some_and(|row| s.get(row, "pins") == Some(""))
    };
    let s = must_until(&mut a, "SHOW SESSIONS", ended).await;
    let row = s.find("user", "acme_app").unwrap();
    assert_eq!(s.get(row, "pins"), Some(""), "the cursor ended: {s:?}");
}

#[tokio::test]
async fn pipelined_admin_commands_each_get_their_answer() {
    // MariaDB Connector/J sends its connect-time queries in one write. The admin protocol
    // library used to free the buffer such a read landed in while still parsing from it
    // (`src/admin/framed.rs`).
    use common::raw::packets;
    use switchyard::protocol::scan::Expect;
    let p = start().await;
    let mut a = raw_admin(&p).await;
    let show = b"\x03SHOW TENANTS";
    let pools = b"\x03SHOW POOLS";
    for round in 0..20 {
        let answers = a
            .pipeline(&[show, pools, show, pools], Expect::ResultSets)
            .await;
        for (i, answer) in answers.iter().enumerate() {
            let pk = packets(answer);
            let text = String::from_utf8_lossy(answer);
            assert_ne!(
                pk[0].1[0], 0xff,
                "round {round}, answer {i}: an error: {text}"
            );
            let want = if i % 2 == 0 { "tenant" } else { "pool_max" };
            assert!(text.contains(want), "round {round}, answer {i}: {text}");
        }
    }
}

/// Commands the admin port does not serve get an ERR naming why, never an OK, and the
/// connection goes on; those that take no answer (a short COM_STMT_CLOSE, long data) get
/// none. (The protocol library alone answered the first with an OK and ended the connection
/// at an execute or a query that is not UTF-8.)
#[tokio::test]
async fn unserved_commands_get_an_err_and_the_connection_goes_on() {
    use common::raw::packets;
    use switchyard::protocol::scan::Expect;
    let p = start().await;
    let mut a = raw_admin(&p).await;
    let refused: &[(&[u8], u16)] = &[
        (&[], 1047),                                // an empty packet
        (&[0x40], 1047),                            // no such command
        (&[0x11, b'x', 0, 0], 1047),                // COM_CHANGE_USER
        (&[0x09], 1047),                            // COM_STATISTICS
        (&[0x0C, 1, 0, 0, 0], 1047),                // COM_PROCESS_KILL
        (&[0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0], 1295), // COM_STMT_EXECUTE
        (&[0x1C, 1, 0, 0, 0, 1, 0, 0, 0], 1295),    // COM_STMT_FETCH
        (b"\x03SHOW \xff\xfe", 1300),               // a query that is not UTF-8
    ];
    for &(cmd, code) in refused {
        let answer = a.command(cmd, Expect::ResultSets).await;
        let pk = packets(&answer);
        assert_eq!(pk[0].1[0], 0xFF, "{cmd:02x?}: an ERR, not {pk:?}");
        assert_eq!(
            u16::from_le_bytes([pk[0].1[1], pk[0].1[2]]),
            code,
            "{cmd:02x?}"
        );
        let pools = a.query("SHOW POOLS").await;
        assert!(
            String::from_utf8_lossy(&pools).contains("pool_max"),
            "{cmd:02x?}: then {pools:?}"
        );
    }
    // No answer for these: the next command's answer is the next thing read.
    a.io.send(0, &[0x19, 1]).await.unwrap();
    a.io.send(0, &[0x18, 1, 0, 0, 0, 0, 0, b'x']).await.unwrap();
    let pools = a.query("SHOW POOLS").await;
    assert!(
        String::from_utf8_lossy(&pools).contains("pool_max"),
        "{pools:?}"
    );
    // COM_RESET_CONNECTION forgets the database chosen.
    let db = |a: &[u8]| String::from_utf8_lossy(a).into_owned();
    a.command(b"\x02switchyard", Expect::Single).await;
    assert!(db(&a.query("SELECT DATABASE()").await).contains("switchyard"));
    let ok = a.command(&[0x1F], Expect::Single).await;
    assert_eq!(packets(&ok)[0].1[0], 0, "reset: OK");
    assert!(!db(&a.query("SELECT DATABASE()").await).contains("switchyard"));
}

/// The admin port holds no more for a stranger than the data port does: a connection that
/// never logs in is closed after `handshake_timeout` (64 silent ones locked operators out),
/// a login packet over 1 MB ends the connection unread, and a command over it gets ERR
/// 1153 and is read past, never kept (the protocol library kept a whole command in memory:
/// a client chaining 16 MB packets grew it without end).
#[tokio::test]
async fn the_admin_port_bounds_what_a_stranger_makes_it_hold() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = start().await;
    // Reads until the server closes; how long that took (None: still open after 6 s).
    async fn closed_after(s: &mut tokio::net::TcpStream) -> Option<Duration> {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(6), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
                Ok(Ok(_)) => {}
                Err(_) => return None,
            }
        }
    }
    let mut silent = tokio::net::TcpStream::connect(p.admin).await.unwrap();
    let took = closed_after(&mut silent).await;
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(1900)),
        "a silent connection: {took:?}"
    );

    let mut big_login = tokio::net::TcpStream::connect(p.admin).await.unwrap();
    let mut greeting = [0u8; 4096];
    let _ = big_login.read(&mut greeting).await.unwrap();
    big_login.write_all(&[0xff, 0xff, 0xff, 1]).await.unwrap();
    // Closed at the header: the body may meet a closed socket.
    let _ = big_login.write_all(&[0u8; 4096]).await;
    let took = closed_after(&mut big_login).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "a 16 MB login packet: {took:?}"
    );

    let mut a = raw_admin(&p).await;
    let mut query = b"\x03SELECT '".to_vec();
    query.resize(2 << 20, b'x');
    query.push(b'\'');
    a.io.send(0, &query).await.unwrap();
    let err = a.io.read_packet().await.unwrap();
    assert_eq!(err.payload[0], 0xFF, "{:?}", err.payload);
    assert_eq!(u16::from_le_bytes([err.payload[1], err.payload[2]]), 1153);
    assert_eq!(&err.payload[4..9], b"08S01");
    // Read past, not kept: the connection goes on.
    let pools = a.query("SHOW POOLS").await;
    assert!(
        String::from_utf8_lossy(&pools).contains("pool_max"),
        "{pools:?}"
    );
}

/// `text` with `rb_acme` given from acme to globex.
fn rb_acme_to_globex(text: &str) -> String {
    let moved = text
        .replacen(
            r#"schemas = ["wf_acme", "rb_acme"]"#,
            r#"schemas = ["wf_acme"]"#,
            1,
        )
        .replacen(
            r#"schemas = ["wf_globex"]"#,
            r#"schemas = ["wf_globex", "rb_acme"]"#,
            1,
        );
    assert_ne!(moved, text);
    moved
}

/// A reload that gives a session's schema to another tenant, or takes the session's user
/// away, reaches open sessions at their next statement: the schema is left (ERR 1046 for an
/// unqualified statement, as after DROP DATABASE) and a removed user gets ERR 1044 at every
/// statement, a COM_FIELD_LIST and a COM_PING too. Both went on as before the reload: the
/// schema's new tenant's data read by the old one's user, a removed user working as long
/// as its connection lived.
#[tokio::test]
async fn a_reload_reaches_open_sessions_of_moved_schemas_and_removed_users() {
    let (file, p, mut a) = serving_file("moved", &config_text(None)).await;
    let mut app = connect(p.addr.port(), "acme_app", Some("rb_acme")).await;
    let db: Option<String> = app.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db.as_deref(), Some("rb_acme"));
    let (mut field_list, mut ping) = (raw_acme(&p).await, raw_acme(&p).await);

    let text = config_text(None);
    let moved = rb_acme_to_globex(&text);
    file.write(&moved);
    must(&mut a, "RELOAD").await;
    let db: Option<Option<String>> = app.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(
        db,
        Some(None),
        "the session left the schema given to globex"
    );
    let (code, _) = server_error(
        app.query_drop("SELECT * FROM no_such_table_anyway")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 1046);
    app.query_drop("USE wf_acme").await.unwrap();

    let user = "[[users]]\nname = \"acme_app\"\npassword = \"acme_pw\"\ntenant = \"acme\"\n";
    assert!(moved.contains(user));
    file.write(&moved.replace(user, ""));
    must(&mut a, "RELOAD").await;
    for _ in 0..2 {
        let (code, msg) = server_error(app.query_drop("SELECT 1").await.unwrap_err());
        assert_eq!(code, 1044, "{msg}");
        assert!(msg.contains("acme_app") && msg.contains("removed"), "{msg}");
    }
    // Nor does a COM_FIELD_LIST list a table's columns for it (it did, to a removed user).
    let answer = field_list
        .command(b"\x04t\0", switchyard::protocol::scan::Expect::FieldList)
        .await;
    let (_, err) = common::raw::packets(&answer).remove(0);
    assert_eq!(err[0], 0xFF, "refused: {err:?}");
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1044);
    // Nor does a ping pass (a pool's health check kept the session as sound).
    let answer = ping
        .command(b"\x0e", switchyard::protocol::scan::Expect::Single)
        .await;
    let (_, err) = common::raw::packets(&answer).remove(0);
    assert_eq!(err[0], 0xFF, "refused: {err:?}");
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1044);
}

/// Waits until no connection of the cluster's primary holds named lock `name`.
async fn until_lock_free(name: &'static str) {
    common::until(name, Duration::from_secs(10), || async move {
        let mut root = common::root().await;
        let sql = format!("SELECT IS_USED_LOCK('{name}') IS NOT NULL");
        let used: Option<bool> = root.query_first(sql).await.unwrap();
        (used == Some(false)).then_some(())
    })
    .await
}

/// A login under way when a reload lands (greeted under the old config, answering under
/// the new) follows the reload as a session's statement would: the user the reload removed
/// is refused. The session took the new config as already followed and went on as the old
/// one said (a removed user logged in, a moved tenant's writes sent to its old primary)
/// until some later reload.
#[tokio::test]
async fn a_login_under_way_at_a_reload_follows_it() {
    use switchyard::protocol::MariadbCapabilities;
    let text = config_text(None);
    let (file, p, mut a) = serving_file("login-reload", &text).await;
    let stream = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    // Greeted: the login has its config.
    stream.readable().await.unwrap();
    let user = "[[users]]\nname = \"acme_app\"\npassword = \"acme_pw\"\ntenant = \"acme\"\n";
    assert!(text.contains(user));
    file.write(&text.replace(user, ""));
    must(&mut a, "RELOAD").await;
    let caps = (common::raw::modern_caps(), MariadbCapabilities::empty());
    let (_c, reply) =
        common::raw::RawClient::login(stream, "acme_app", "acme_pw", Some("wf_acme"), caps).await;
    assert_eq!(reply[4], 0xFF, "the login is refused: {reply:?}");
    let code = u16::from_le_bytes([reply[5], reply[6]]);
    let msg = String::from_utf8_lossy(&reply[13..]);
    assert_eq!(code, 1044, "{msg}");
    assert!(msg.contains("acme_app") && msg.contains("removed"), "{msg}");
}

/// A user whose tenants a reload narrowed reaches only those from its open sessions' next
/// command on: a `USE` of a schema it may no longer reach, a name qualified with one (the
/// first statement after the reload, and inside a transaction), and a statement prepared
/// before the reload are refused; a session holding a statement prepared by name (which
/// no check sees run) ends. The sessions kept the tenants their login found for their life.
#[tokio::test]
async fn a_reload_narrowing_a_users_tenants_reaches_its_open_sessions() {
    let mut root = common::root().await;
    root.query_drop("CREATE TABLE IF NOT EXISTS wf_globex.reload_narrowed (v INT)")
        .await
        .unwrap();
    let text = config_text(None);
    let (file, p, mut a) = serving_file("narrowed", &text).await;
    let mut ops = connect(p.addr.port(), "ops", Some("wf_acme")).await;
    ops.query_drop("USE wf_globex").await.unwrap();
    ops.query_drop("USE wf_acme").await.unwrap();
    let reach = "SELECT COUNT(*) FROM wf_globex.reload_narrowed";
    let prepared = ops.prep(reach).await.unwrap();
    let _: Option<i64> = ops.exec_first(&prepared, ()).await.unwrap();
    let mut by_name = connect(p.addr.port(), "ops", Some("wf_acme")).await;
    by_name
        .query_drop(format!("PREPARE s FROM '{reach}'"))
        .await
        .unwrap();
    let mut in_txn = connect(p.addr.port(), "ops", Some("wf_acme")).await;
    in_txn.query_drop("BEGIN").await.unwrap();
    let all = "name = \"ops\"\npassword = \"ops_pw\"\ntenants = \"*\"\n";
    assert!(text.contains(all));
    file.write(&text.replace(
        all,
        "name = \"ops\"\npassword = \"ops_pw\"\ntenant = \"acme\"\n",
    ));
    must(&mut a, "RELOAD").await;
    let refused = |r: Result<(), mysql_async::Error>| server_error(r.unwrap_err()).0;
    assert_eq!(
        refused(ops.query_drop(reach).await),
        1044,
        "the first statement"
    );
    assert_eq!(
        refused(in_txn.query_drop(reach).await),
        1044,
        "in a transaction"
    );
    in_txn.query_drop("COMMIT").await.unwrap();
    let e = ops.exec_first::<i64, _, _>(&prepared, ()).await.map(drop);
    assert_eq!(refused(e), 1044, "a statement prepared before");
    let (code, msg) = server_error(ops.query_drop("USE wf_globex").await.unwrap_err());
    assert_eq!(code, 1044, "{msg}");
    let one: Option<i64> = ops.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the session goes on in acme");
    let (code, msg) = server_error(by_name.query_drop("EXECUTE s").await.unwrap_err());
    assert_eq!(code, 1044, "{msg}");
    assert!(
        by_name.query_drop("SELECT 1").await.is_err(),
        "that session ended"
    );
    // Removed, it reaches no tenant: not even the one it was left.
    let narrowed = "name = \"ops\"\npassword = \"ops_pw\"\ntenant = \"acme\"\n";
    let removed = text
        .replace(all, narrowed)
        .replace(&format!("[[users]]\n{narrowed}"), "");
    assert!(!removed.contains("name = \"ops\""));
    file.write(&removed);
    must(&mut a, "RELOAD").await;
    let (code, msg) = server_error(ops.query_drop("USE wf_acme").await.unwrap_err());
    assert_eq!(code, 1044, "{msg}");
}

/// A statement prepared in a schema a reload gave another tenant is refused at its next
/// execute (it ran there, in the other tenant's schema); a multi-tenant user whose tenant
/// the reload removed leaves it with `USE`; one that has chosen no tenant yet goes on.
#[tokio::test]
async fn a_reload_reaches_prepared_statements_and_lets_sessions_leave_removed_tenants() {
    let text = config_text(None);
    let (file, p, mut a) = serving_file("prepared-moved", &text).await;
    let mut app = connect(p.addr.port(), "acme_app", Some("rb_acme")).await;
    let in_schema = app.prep("SELECT DATABASE()").await.unwrap();
    let mut spanning = connect(p.addr.port(), "acme_app", Some("rb_acme")).await;
    spanning.query_drop("BEGIN").await.unwrap();
    let mut shared = connect(p.addr.port(), "acme_app", Some("information_schema")).await;
    let in_shared = shared.prep("SELECT DATABASE()").await.unwrap();
    let mut ops = connect(p.addr.port(), "ops", Some("wf_acme")).await;
    // ops may use every tenant: before a schema, the first (acme) serves it.
    let first = |name: &str| text.find(&format!("name = \"{name}\"")).unwrap();
    assert!(first("acme") < first("globex"));
    let mut lobby = connect(p.addr.port(), "ops", None).await;
    let _: Option<i64> = lobby.query_first("SELECT 1").await.unwrap();
    // rb_acme goes to globex; then acme is removed.
    let moved = rb_acme_to_globex(&text);
    file.write(&moved);
    must(&mut a, "RELOAD").await;
    let e = app
        .exec_first::<String, _, _>(&in_schema, ())
        .await
        .unwrap_err();
    assert_eq!(server_error(e).0, 1044, "a statement prepared in rb_acme");
    // Prepared inside a transaction that began before the reload: checked once it ends.
    let in_txn = spanning.prep("SELECT DATABASE()").await.unwrap();
    spanning.query_drop("COMMIT").await.unwrap();
    let e = spanning
        .exec_first::<String, _, _>(&in_txn, ())
        .await
        .unwrap_err();
    assert_eq!(server_error(e).0, 1044, "prepared in the transaction");
    let db: Option<String> = shared.exec_first(&in_shared, ()).await.unwrap();
    assert_eq!(
        db.as_deref(),
        Some("information_schema"),
        "a shared schema stays"
    );
    let [r1, r2] = replica_ports();
    let acme = format!(
        "[[tenants]]\nname = \"acme\"\nschemas = [\"wf_acme\"]\nprimary = \"127.0.0.1:{}\"\nreplicas = [\"127.0.0.1:{r1}\", \"127.0.0.1:{r2}\"]\n",
        primary_port()
    );
    let acme_user = "[[users]]\nname = \"acme_app\"\npassword = \"acme_pw\"\ntenant = \"acme\"\n";
    assert!(moved.contains(&acme) && moved.contains(acme_user));
    file.write(&moved.replace(&acme, "").replace(acme_user, ""));
    must(&mut a, "RELOAD").await;
    ops.query_drop("USE wf_globex").await.unwrap();
    let db: Option<String> = ops.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db.as_deref(), Some("wf_globex"));
    let one: Option<i64> = lobby.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "a session before any tenant goes on");
    // A user of every tenant the reload removes reaches none (it went on into any).
    let ops_user = "[[users]]\nname = \"ops\"\npassword = \"ops_pw\"\ntenants = \"*\"\n";
    let without_acme = moved.replace(&acme, "").replace(acme_user, "");
    assert!(without_acme.contains(ops_user));
    file.write(&without_acme.replace(ops_user, ""));
    must(&mut a, "RELOAD").await;
    let (code, msg) = server_error(lobby.query_drop("USE wf_globex").await.unwrap_err());
    assert_eq!(code, 1044, "{msg}");
}

/// A session pinned to its primary (here by a named lock) across a reload of its tenant:
/// where the primary stays, it keeps the lock and its connection and takes the new
/// settings; where the reload moved the primary, it ends with ERR 1927 at its next
/// statement, its lock freed, rather than go on writing to a server that is no longer the
/// tenant's (it stayed there, on the old settings, for as long as the pin lasted).
#[tokio::test]
async fn a_pinned_session_keeps_its_primary_or_ends_when_a_reload_moves_it() {
    let [r1, r2] = replica_ports();
    let text = config_text(None);
    let (file, p, mut a) = serving_file("pinned-reload", &text).await;
    let mut app = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let got: Option<i64> = app
        .query_first("SELECT GET_LOCK('sy_reload_pin', 5)")
        .await
        .unwrap();
    assert_eq!(got, Some(1));
    let mut root = common::root().await;
    let lock_held = "SELECT IS_USED_LOCK('sy_reload_pin') IS NOT NULL";

    // One replica fewer: the primary stays, and so do the session and its lock.
    let fewer = config_text(Some(&format!("\"127.0.0.1:{r1}\"")));
    file.write(&fewer);
    must(&mut a, "RELOAD").await;
    let port: Option<u16> = app.query_first("SELECT @@port").await.unwrap();
    assert_eq!(port, Some(primary_port()), "pinned to the primary");
    assert_eq!(root.query_first(lock_held).await.unwrap(), Some(true));

    // The primary moved: the next statement ends the session, and the lock is freed.
    let old = format!(
        "primary = \"127.0.0.1:{}\"\nreplicas = [\"127.0.0.1:{r1}\"]",
        primary_port()
    );
    assert!(fewer.contains(&old));
    let moved = format!("primary = \"127.0.0.1:{r2}\"\nreplicas = [\"127.0.0.1:{r1}\"]");
    file.write(&fewer.replacen(&old, &moved, 1));
    must(&mut a, "RELOAD").await;
    let mysql_async::Error::Server(e) = app.query_drop("SELECT 1").await.unwrap_err() else {
        panic!("expected a server error");
    };
    let (code, msg) = (e.code, e.message);
    assert_eq!(code, 1927, "{msg}");
    // The session ends after it: a communication failure's SQLSTATE, so a client's pool
    // drops the connection at once (JDBC drivers and HikariCP go by class 08).
    assert_eq!(e.state, "08S01", "{msg}");
    assert!(msg.contains("acme") && msg.contains("named lock"), "{msg}");
    assert!(
        app.query_drop("SELECT 1").await.is_err(),
        "the session ended"
    );
    until_lock_free("sy_reload_pin").await;
}

/// The digest table shows statements without their literals however the session lexes
/// them: under NO_BACKSLASH_ESCAPES a string ending in `\`, and in Shift-JIS a character
/// whose second byte is `\`, ended the string early for the default lexing, and the next
/// string's content (a password) was shown (as was the slow-statement log, which prints
/// the same text).
#[tokio::test]
async fn digests_hide_literals_under_every_lexing_mode() {
    use common::raw::{modern_caps, RawClient};
    use switchyard::protocol::scan::Expect;
    let p = start().await;
    let mut a = admin(&p).await;
    let mut app = connect(p.addr.port(), "globex_app", Some("wf_globex")).await;
    app.query_drop("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
        .await
        .unwrap();
    let _: Option<(String, String)> = app
        .query_first(r"SELECT 'a\', 'hunter2' AS nbe_probe")
        .await
        .unwrap();
    let (mut raw, _) = RawClient::connect(
        p.addr.port(),
        "globex_app",
        "globex_pw",
        Some("wf_globex"),
        modern_caps(),
    )
    .await;
    raw.query("SET NAMES sjis").await;
    // 表 in Shift-JIS is 0x95 0x5C.
    let mut sjis = b"\x03SELECT '\x95\x5c', 'hunter3' AS sjis_probe".to_vec();
    let answer = raw.command(&sjis, Expect::ResultSets).await;
    assert_ne!(answer[4], 0xFF, "the Shift-JIS statement runs");
    sjis.clear();
    let probes = |d: &Answer| {
        let texts: Vec<&str> = d.rows.iter().filter_map(|r| r[0].as_deref()).collect();
        ["NBE_PROBE", "SJIS_PROBE"].map(|p| {
            texts
                .iter()
                .find(|t| t.to_uppercase().contains(p))
                .map(|t| t.to_string())
        })
    };
    let d = must_until(&mut a, "SHOW QUERY DIGEST", |d| {
        probes(d).iter().all(Option::is_some)
    })
    .await;
    for text in probes(&d) {
        let text = text.expect("the probe's digest");
        assert!(
            !text.to_lowercase().contains("hunter"),
            "a literal shown: {text}"
        );
    }
}

/// 64 HTTP connections held open (a request never finished, answers never read) kept the
/// liveness probe out, and its pod restarted: at the cap, the connection open longest
/// gives way to the new one once it has been open a second.
#[tokio::test]
async fn held_http_connections_give_way_to_the_health_probe() {
    use tokio::io::AsyncWriteExt;
    let p = start().await;
    let mut held = Vec::new();
    for _ in 0..64 {
        let mut s = tokio::net::TcpStream::connect(p.http).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    // The case itself: connections open longer than a second (not a synchronization).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = http_get(&p, "/health").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    drop(held);
}
