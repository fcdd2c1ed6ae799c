//! A session the server ends (its own `wait_timeout`) while it holds a temporary table: the
//! client's connection ends through Switchyard as it does directly, so PyMySQL (PyPI) and
//! libmariadb (MariaDB Connector/Python) notice and reconnect on their own, with the
//! temporary table gone, instead of running on silently without it.

mod common;

use common::drivers;
use tokio::process::Command;

async fn run(mut cmd: Command, what: &str) -> String {
    let out = drivers::run(what, &mut cmd).await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn command(python: std::path::PathBuf, driver: &str, port: u16) -> Command {
    let mut c = Command::new(python);
    c.arg(drivers::clients_dir().join("reconnect_check.py"))
        .arg(driver)
        .arg(port.to_string());
    c
}

/// Direct and proxied runs side by side (each idles past its wait_timeout).
async fn same_as_directly(python: impl Fn() -> std::path::PathBuf, driver: &str) -> String {
    let proxy = common::start(common::config("")).await;
    let (direct, proxied) = tokio::join!(
        run(command(python(), driver, common::primary_port()), "direct"),
        run(command(python(), driver, proxy.addr.port()), "proxied"),
    );
    assert_eq!(
        direct, proxied,
        "{driver}: direct (left) vs proxied (right)"
    );
    direct
}

fn assert_reconnected(out: &str) {
    assert!(out.contains("temporary table rows 1\n"), "{out}");
    assert!(out.contains("a new connection True\n"), "{out}");
    assert!(out.contains("temporary table gone 1146\n"), "{out}");
    assert!(out.contains("works 1\n"), "{out}");
}

#[tokio::test]
async fn pymysql_reconnects_as_directly() {
    if drivers::skipped("pymysql") {
        return;
    }
    let out = same_as_directly(drivers::venv_python, "pymysql").await;
    assert_reconnected(&out);
}

#[tokio::test]
async fn libmariadb_reconnects_as_directly() {
    let out = same_as_directly(drivers::mariadb_python, "mariadb").await;
    assert_reconnected(&out);
}
