//! The data port through the modern drivers scripts/drivers.sh installs (PyMySQL and
//! mysql-connector-python C/pure from PyPI, mysql2 from npm): each runs the same statements
//! directly on the primary and through Switchyard (a SELECT of DECIMAL, DATETIME, JSON,
//! LONGTEXT, NULL and utf8mb4 text; a warning and SHOW WARNINGS; an error), and what the
//! driver reports (values, column names and types, warning counts, error code, SQLSTATE and
//! message) must be the same. Programs are tests/clients/compare_check.{py,js}.

mod common;

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
    // Reads through the proxy may go to a replica.
    common::wait_replicated().await;
}

/// Runs `program PORT` directly and through a proxy; returns both outputs.
async fn both(driver: &str, program: impl Fn() -> Command) -> (String, String) {
    table().await;
    let proxy = common::start(common::config("")).await;
    let mut outputs = Vec::new();
    for port in [primary_port(), proxy.addr.port()] {
        let mut c = program();
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
    let (direct, proxied) = both(driver, || drivers::python("compare_check.py", driver)).await;
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

/// mysql2 asks for MariaDB's extended column metadata and parses a JSON column
/// (`format=json`) into an object; through Switchyard too, now that the capability is offered.
const JSON_PARSED: &str = r#"{"a":[1,null]}"#;

#[tokio::test]
async fn node_mysql2() {
    if drivers::skipped("mysql2") {
        return;
    }
    let (direct, proxied) = both("mysql2", || drivers::node("compare_check.js")).await;
    assert!(direct.contains(JSON_PARSED), "{direct}");
    assert_eq!(
        direct, proxied,
        "mysql2: direct (left) and proxied (right) differ"
    );
}
