//! A session the server ends (its own `wait_timeout`) while it holds a temporary table: the
//! client's connection ends through Switchyard as it does directly, so PyMySQL (PyPI) and
//! libmariadb (MariaDB Connector/Python) notice and reconnect on their own, with the
//! temporary table gone, instead of running on silently without it.

mod common;

use std::time::Duration;

use common::drivers;
use tokio::process::Command;

const RUN_LIMIT: Duration = Duration::from_secs(60);

async fn run(mut cmd: Command, what: &str) -> String {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish in {RUN_LIMIT:?}"))
        .expect("the Python client runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
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
