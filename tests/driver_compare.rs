//! The data port through the drivers scripts/drivers.sh installs (PyMySQL and
//! mysql-connector-python C/pure from PyPI, mysql2 from npm; Debian's PHP PDO and mysqli and
//! MariaDB Connector/J, what the PHP and Java applications Switchyard is for use): each runs
//! the same statements directly on the primary and through Switchyard (a SELECT of DECIMAL,
//! DATETIME, JSON, LONGTEXT, NULL and utf8mb4 text; a warning and SHOW WARNINGS; an error;
//! for PHP and Java also prepared statements, a transaction, writes read back at once, a
//! query timeout), and what the driver reports (values, column names and types, warning
//! counts, error code, SQLSTATE and message) must be the same. Programs are
//! tests/clients/compare_check.{py,js,php} and CompareCheck.java.

mod common;

use std::future::Future;

use common::drivers::{self, run};
use common::primary_port;
use mysql_async::prelude::*;
use tokio::process::Command;

async fn table() {
    let mut root = common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.drv_types (
            id INT PRIMARY KEY, d DECIMAL(12,3), dt DATETIME(3), j JSON, lt LONGTEXT,
            n INT NULL, t VARCHAR(40) CHARACTER SET utf8mb4, f DOUBLE, u BIGINT UNSIGNED)",
    )
    .await
    .unwrap();
    root.query_drop(
        "INSERT IGNORE INTO wf_acme.drv_types VALUES
        (1, 12345.678, '2024-02-29 23:59:59.123', '{\"a\": [1, null]}', REPEAT('x', 300), NULL,
         'héllo 🐙', 1.5e300, 18446744073709551615),
        (2, -0.001, NULL, NULL, '', 7, '', -0, 0)",
    )
    .await
    .unwrap();
    // What the PHP and Java programs write and read back.
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.drv_java (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
    )
    .await
    .unwrap();
    // Reads through the proxy may go to a replica.
    common::wait_replicated().await;
}

/// Runs `program PORT` directly and through a proxy; returns both outputs.
async fn both<F: Future<Output = Command>>(
    driver: &str,
    program: impl Fn() -> F,
) -> (String, String) {
    table().await;
    let proxy = common::start(common::config("")).await;
    let mut outputs = Vec::new();
    for port in [primary_port(), proxy.addr.port()] {
        let mut c = program().await;
        c.arg(port.to_string());
        let out = run(driver, &mut c).await;
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let proxied = outputs.pop().unwrap();
    let direct = outputs.pop().unwrap();
    for wanted in [
        "héllo 🐙",
        "12345.678",
        "1146",
        "42S02",
        "Division by 0",
        "done",
    ] {
        assert!(
            direct.contains(wanted),
            "{driver}: {wanted} missing from {direct}"
        );
    }
    (direct, proxied)
}

async fn python(driver: &str) {
    if drivers::skipped(driver) {
        return;
    }
    let program = || async move { drivers::python("compare_check.py", driver) };
    let (direct, proxied) = both(driver, program).await;
    assert_eq!(
        direct, proxied,
        "{driver}: direct (left) and proxied (right) differ"
    );
}

#[tokio::test]
async fn pymysql_from_pypi() {
    python("pymysql").await;
}

#[tokio::test]
async fn mysql_connector_python_c_extension() {
    python("connector-c").await;
}

#[tokio::test]
async fn mysql_connector_python_pure() {
    python("connector-pure").await;
}

/// The pure-Python connector reads a compressed packet that a frame cuts short by reading
/// one more frame only: a row spread over several frames did not parse.
#[tokio::test]
async fn mysql_connector_python_pure_compressed() {
    python("connector-pure-compress").await;
}

/// mysql2 asks for MariaDB's extended column metadata and parses a JSON column
/// (`format=json`) into an object; through Switchyard too, now that the capability is offered.
const JSON_PARSED: &str = r#"{"a":[1,null]}"#;

#[tokio::test]
async fn node_mysql2() {
    if drivers::skipped("mysql2") {
        return;
    }
    let program = || async { drivers::node("compare_check.js") };
    let (direct, proxied) = both("mysql2", program).await;
    assert!(direct.contains(JSON_PARSED), "{direct}");
    assert_eq!(
        direct, proxied,
        "mysql2: direct (left) and proxied (right) differ"
    );
}

async fn php(driver: &str) {
    if drivers::skipped(driver) {
        return;
    }
    let program = || async move { drivers::php("compare_check.php", driver) };
    let (direct, proxied) = both(driver, program).await;
    assert!(direct.contains(" insert id set true"), "{direct}");
    assert_eq!(
        direct, proxied,
        "{driver}: direct (left) and proxied (right) differ"
    );
}

/// PDO as PHP applications use it: prepares emulated (PDO's default), so every statement
/// is text, parameters quoted into it by PDO.
#[tokio::test]
async fn php_pdo() {
    php("pdo").await;
}

#[tokio::test]
async fn php_mysqli() {
    php("mysqli").await;
}

/// MariaDB Connector/J (Debian's) with server-side prepared statements and rewritten
/// batches; a read under a query timeout is sent as `SET STATEMENT max_statement_time=...
/// FOR SELECT ...`.
#[tokio::test]
async fn mariadb_connector_j() {
    if drivers::skipped("connector-j") {
        return;
    }
    let program = || drivers::java_program("CompareCheck");
    let (direct, proxied) = both("connector-j", program).await;
    assert!(direct.contains(" valid true"), "{direct}");
    assert_eq!(
        direct, proxied,
        "connector-j: direct (left) and proxied (right) differ"
    );
}
