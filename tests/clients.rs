//! Real clients beyond mysql_async: the mariadb command-line client, PyMySQL and sysbench,
//! each run directly and through Switchyard.

mod common;

use std::process::Output;

use common::primary_port;
use mysql_async::prelude::*;
use tokio::process::Command;

async fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().await.expect("the client program runs");
    if !out.status.success() {
        panic!(
            "{cmd:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

async fn diff_table() {
    let mut root = common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_globex.diff_types (
            id INT PRIMARY KEY, b BINARY(4), vb VARBINARY(16), bl BLOB,
            d DECIMAL(12,3), f DOUBLE, u BIGINT UNSIGNED, t VARCHAR(40) CHARACTER SET utf8mb4,
            n INT NULL, dt DATETIME(3), da DATE, tm TIME, j JSON, e ENUM('x','y'), bit1 BIT(3))",
    )
    .await
    .unwrap();
    root.query_drop(
        "INSERT IGNORE INTO wf_globex.diff_types VALUES
        (1, 0x00FF10AB, 0xDEADBEEF00, 0x000102FF, 12345.678, 1.5e300, 18446744073709551615,
         'héllo 🐙 wörld', NULL, '2024-02-29 23:59:59.123', '1999-12-31', '-838:59:59',
         '{\"a\": [1, 2, {\"b\": null}]}', 'y', b'101'),
        (2, NULL, '', '', -0.001, -0, 0, '', 7, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    .await
    .unwrap();
}

fn mariadb(port: u16, user: &str, db: &str, sql: &str) -> Command {
    let mut c = Command::new("mariadb");
    c.args(["-h127.0.0.1", &format!("-P{port}"), &format!("-u{user}")])
        .arg(format!("-p{}", common::password_of(user)))
        .args([db, "--column-type-info", "--binary-as-hex", "-e", sql]);
    c
}

/// A MariaDB client program (`mariadb`, `mariadb-dump`, `mariadb-admin`) logging in to
/// `port` as acme_app.
fn acme_tool(program: &str, port: u16) -> Command {
    let mut c = Command::new(program);
    c.args([
        "-h127.0.0.1",
        &format!("-P{port}"),
        "-uacme_app",
        "-pacme_pw",
    ]);
    c
}

#[tokio::test]
async fn mariadb_cli_sees_the_same_as_directly() {
    diff_table().await;
    let proxy = common::start(common::config("")).await;
    let sql = "SELECT * FROM diff_types ORDER BY id; SELECT 1/0; SHOW WARNINGS; \
               SELECT @@character_set_client, DATABASE(); SHOW CREATE TABLE diff_types";
    let direct = run(&mut mariadb(primary_port(), "globex_app", "wf_globex", sql)).await;
    let proxied = run(&mut mariadb(
        proxy.addr.port(),
        "globex_app",
        "wf_globex",
        sql,
    ))
    .await;
    assert!(!direct.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&direct.stdout),
        String::from_utf8_lossy(&proxied.stdout)
    );
    // And through a tenant with replicas, reads land on one.
    let mut c = acme_tool("mariadb", proxy.addr.port());
    c.args(["wf_acme", "-N", "-e", "SELECT @@port"]);
    let out = run(&mut c).await;
    let port: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(common::is_replica(port));
    // A refused login: the CLI prints the server-style error and exits non-zero.
    let mut bad = mariadb(proxy.addr.port(), "acme_app", "wf_globex", "SELECT 1");
    let out = bad.output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1044 (42000)"));
}

#[tokio::test]
async fn pymysql_decodes_the_same_as_directly() {
    diff_table().await;
    let proxy = common::start(common::config("")).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/pymysql_check.py"
    );
    let py = |port: u16| {
        let mut c = Command::new("/usr/bin/python3");
        c.arg(script).arg(port.to_string());
        c
    };
    let direct = run(&mut py(primary_port())).await;
    let proxied = run(&mut py(proxy.addr.port())).await;
    let d = String::from_utf8_lossy(&direct.stdout);
    assert!(d.contains("binary ok 00ff10ab"), "{d}");
    assert_eq!(d, String::from_utf8_lossy(&proxied.stdout));
}

/// A schema of the test's own: the `sbtest` tables are the benches' (bench/run.sh prepares
/// 4 of 10,000 rows), and this test's prepare and cleanup would drop them.
const SYSBENCH_DB: &str = "sbtest_ci";

fn sysbench(port: u16, args: &[&str]) -> Command {
    let mut c = Command::new("sysbench");
    c.arg("oltp_read_write")
        .args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
        .arg(format!("--mysql-port={port}"))
        .args([
            "--mysql-user=sbtest",
            "--mysql-password=sbtest",
            &format!("--mysql-db={SYSBENCH_DB}"),
        ])
        .args(["--tables=2", "--table-size=2000"])
        .args(args);
    c
}

/// sysbench's oltp_read_write (transactions, prepared statements, point and range reads)
/// through Switchyard with zero errors, and the data it wrote is on the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_oltp_read_write_runs_without_errors() {
    let mut root = common::root().await;
    root.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS {SYSBENCH_DB}; GRANT ALL ON {SYSBENCH_DB}.* TO 'sbtest'@'%'"
    ))
    .await
    .unwrap();
    let text = common::config_text("").replacen(
        "schemas = [\"sbtest\"]",
        &format!("schemas = [\"sbtest\", \"{SYSBENCH_DB}\"]"),
        1,
    );
    let cfg = switchyard::config::parse(&text, &|_| None).unwrap();
    let proxy = common::start(cfg).await;
    let port = proxy.addr.port();
    run(&mut sysbench(port, &["cleanup"])).await;
    run(&mut sysbench(port, &["prepare"])).await;
    // New sessions read from replicas: let them have the tables first.
    common::wait_replicated().await;
    // One thread: no deadlock is possible, so any error would be Switchyard's.
    let single = [
        "--threads=1",
        "--time=4",
        "--db-ps-mode=auto",
        "--mysql-ignore-errors=none",
        "run",
    ];
    let text = sysbench_report(port, &single).await;
    assert_eq!(count(&text, "ignored errors:"), 0, "{text}");
    assert!(count(&text, "transactions:") > 50, "{text}");
    // Four threads: InnoDB may report deadlocks, which sysbench retries as it would
    // directly; nothing else may fail and no connection may be lost.
    let many = ["--threads=4", "--time=4", "--db-ps-mode=auto", "run"];
    let text = sysbench_report(port, &many).await;
    assert_eq!(count(&text, "reconnects:"), 0, "{text}");
    assert!(count(&text, "transactions:") > 50, "{text}");
    let rows: i64 = root
        .query_first(format!("SELECT COUNT(*) FROM {SYSBENCH_DB}.sbtest1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rows, 2000,
        "row count kept by sysbench's delete+insert pairs"
    );
    run(&mut sysbench(port, &["cleanup"])).await;
}

async fn sysbench_report(port: u16, args: &[&str]) -> String {
    let out = run(&mut sysbench(port, args)).await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after a label in sysbench's report.
fn count(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' in:\n{report}"))
}

/// A client that only speaks caching_sha2_password (MySQL 8.4/9 drivers' default) logs in
/// through the fast path; a wrong password is refused with 1045.
#[tokio::test]
async fn caching_sha2_password_clients_log_in() {
    let proxy = common::start(common::config("")).await;
    let port = proxy.addr.port();
    let cli = |password: &str| {
        let mut c = Command::new("mariadb");
        c.args(["-h127.0.0.1", &format!("-P{port}"), "-uacme_app"])
            .arg(format!("-p{password}"))
            .args(["--default-auth=caching_sha2_password", "wf_acme", "-N"])
            .args(["-e", "SELECT CURRENT_USER()"]);
        c
    };
    let out = run(&mut cli("acme_pw")).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "acme_app@%");
    let out = cli("wrong").output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1045"));
}

/// `mariadb-dump` through Switchyard writes what it writes directly, with
/// `--single-transaction` (a consistent-snapshot transaction, on the primary) and with its
/// default `--lock-tables` (`LOCK TABLES ... READ LOCAL`, which pins); and the dump restored
/// through Switchyard by the `mariadb` client (its header's saved session variables,
/// `DROP`/`CREATE TABLE`, `LOCK TABLES ... WRITE`, the `INSERT`s, `UNLOCK TABLES`, the
/// footer's restores) gives the same rows back and leaves no lock on any connection.
#[tokio::test]
async fn mariadb_dump_and_its_restore_work_through_switchyard() {
    let mut root = common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.dump_rows \
         (id INT PRIMARY KEY, t VARCHAR(20) CHARACTER SET utf8mb4, d DATETIME NULL)",
    )
    .await
    .unwrap();
    root.query_drop(
        "INSERT IGNORE INTO wf_acme.dump_rows VALUES \
         (1, 'a''b', '2024-02-29 23:59:59'), (2, 'héllo 🐙', NULL)",
    )
    .await
    .unwrap();
    let rows = |mut root: mysql_async::Conn| async move {
        let rows: Vec<(i32, String, Option<String>)> = root
            .query("SELECT id, t, CAST(d AS CHAR) FROM wf_acme.dump_rows ORDER BY id")
            .await
            .unwrap();
        rows
    };
    let before = rows(common::root().await).await;
    let proxy = common::start(common::config("")).await;
    let dump = |port: u16, how: &str| {
        let mut c = acme_tool("mariadb-dump", port);
        c.args(["--skip-dump-date", "--no-tablespaces", how])
            .args(["wf_acme", "dump_rows"]);
        c
    };
    let mut dumped = Vec::new();
    for how in ["--single-transaction", "--lock-tables"] {
        let direct = run(&mut dump(primary_port(), how)).await.stdout;
        let proxied = run(&mut dump(proxy.addr.port(), how)).await.stdout;
        assert!(
            String::from_utf8_lossy(&direct).contains("INSERT INTO `dump_rows`"),
            "{how}: {}",
            String::from_utf8_lossy(&direct)
        );
        assert_eq!(
            String::from_utf8_lossy(&direct),
            String::from_utf8_lossy(&proxied),
            "{how}"
        );
        dumped = proxied;
    }
    let mut restore = acme_tool("mariadb", proxy.addr.port())
        .arg("wf_acme")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = restore.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut input, &dumped)
        .await
        .unwrap();
    drop(input);
    let out = restore.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(common::root().await).await, before);
    // No connection kept the restore's table lock (nor a dump's read lock): a write from
    // outside gets through within its lock wait.
    root.query_drop("SET SESSION lock_wait_timeout = 5")
        .await
        .unwrap();
    root.query_drop("UPDATE wf_acme.dump_rows SET t = t WHERE id = 1")
        .await
        .unwrap();
}

/// `mariadb-admin` through Switchyard: `ping` and `variables` (a `SHOW VARIABLES`, on the
/// tenant's primary; but the GTID positions, which other tests' writes move) answer as
/// directly; `status` (COM_STATISTICS) and `processlist` answer;
/// `flush-logs` (COM_REFRESH) gets the server's own refusal for a user without RELOAD.
#[tokio::test]
async fn mariadb_admin_works_through_switchyard() {
    let proxy = common::start(common::config("")).await;
    let admin = |port: u16, cmd: &str| {
        let mut c = acme_tool("mariadb-admin", port);
        c.arg(cmd);
        c
    };
    let port = proxy.addr.port();
    let steady = |out: Vec<u8>| {
        String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| !l.contains("gtid"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for cmd in ["ping", "variables"] {
        let direct = steady(run(&mut admin(primary_port(), cmd)).await.stdout);
        let proxied = steady(run(&mut admin(port, cmd)).await.stdout);
        assert!(!direct.is_empty(), "{cmd}");
        assert_eq!(direct, proxied, "{cmd}");
    }
    let status = run(&mut admin(port, "status")).await.stdout;
    assert!(String::from_utf8_lossy(&status).contains("Uptime"));
    let list = run(&mut admin(port, "processlist")).await.stdout;
    assert!(String::from_utf8_lossy(&list).contains("acme_app"));
    let direct = admin(primary_port(), "flush-logs").output().await.unwrap();
    let proxied = admin(port, "flush-logs").output().await.unwrap();
    assert!(!direct.status.success());
    assert_eq!(
        String::from_utf8_lossy(&direct.stderr),
        String::from_utf8_lossy(&proxied.stderr)
    );
}
