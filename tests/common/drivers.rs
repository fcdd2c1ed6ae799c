//! The client drivers scripts/drivers.sh installs, as commands the tests run: where each
//! lives, building the Go and Java programs at test time, and the one opt-out
//! (`SY_SKIP_DRIVERS=name,...` or `all`): a driver that is missing otherwise fails its test.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tokio::process::Command;

/// The longest any one client program may run.
const RUN_LIMIT: Duration = Duration::from_secs(120);

pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Whether `SY_SKIP_DRIVERS` opts out of `driver`; says so on stderr when it does.
pub fn skipped(driver: &str) -> bool {
    let list = std::env::var("SY_SKIP_DRIVERS").unwrap_or_default();
    let skip = list
        .split(',')
        .any(|d| d.trim() == "all" || d.trim() == driver);
    if skip {
        eprintln!("{driver}: skipped (SY_SKIP_DRIVERS={list})");
    }
    skip
}

/// The venv's python (`SWITCHYARD_VENV`, as in scripts/drivers.sh).
pub fn venv_python() -> PathBuf {
    let venv = std::env::var("SWITCHYARD_VENV").unwrap_or_else(|_| "/tmp/switchyard-venv".into());
    Path::new(&venv).join("bin/python")
}

/// MariaDB Connector/Python's venv python (`SWITCHYARD_MARIADB_VENV`, as in
/// scripts/mariadb_client.sh); a missing one fails the test that needs it.
pub fn mariadb_python() -> PathBuf {
    let venv = std::env::var("SWITCHYARD_MARIADB_VENV")
        .unwrap_or_else(|_| "/tmp/switchyard-mariadb-venv".into());
    let py = Path::new(&venv).join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/mariadb_client.sh to install MariaDB Connector/Python",
        py.display()
    );
    py
}

/// `python script driver` with the venv's python.
pub fn python(script: &str, driver: &str) -> Command {
    let mut c = Command::new(venv_python());
    c.arg(clients_dir().join(script)).arg(driver);
    c
}

pub fn php(script: &str, driver: &str) -> Command {
    let mut c = Command::new("php");
    c.arg(clients_dir().join(script)).arg(driver);
    c
}

pub fn node(script: &str) -> Command {
    let mut c = Command::new("node");
    c.arg(clients_dir().join("node").join(script));
    c
}

/// A scratch directory for built programs, one per test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds tests/clients/go in GOPATH mode against Debian's go-sql-driver/mysql (offline: no
/// module proxy) and returns the program.
pub async fn go_program() -> Command {
    let out = scratch("go");
    let bin = out.join("admin_check");
    let mut build = Command::new("go");
    build
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(clients_dir().join("go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOCACHE", std::env::temp_dir().join("switchyard-gocache"));
    run("go build", &mut build).await;
    Command::new(bin)
}

/// The MariaDB Connector/J jar Debian's libmariadb-java installs.
pub const CONNECTOR_J: &str = "/usr/share/java/mariadb-java-client.jar";

/// Compiles tests/clients/`class`.java and returns `java` running it.
pub async fn java_program(class: &str) -> Command {
    let out = scratch("java");
    let mut javac = Command::new("javac");
    javac
        .arg("-d")
        .arg(&out)
        .args(["-cp", CONNECTOR_J])
        .arg(clients_dir().join(format!("{class}.java")));
    run("javac", &mut javac).await;
    let mut c = Command::new("java");
    c.arg("-cp")
        .arg(format!("{}:{CONNECTOR_J}", out.display()))
        .arg(class);
    c
}

/// Runs `cmd` to completion within [`RUN_LIMIT`]; panics with its output unless it succeeded
/// (a missing program or module fails here, naming scripts/drivers.sh).
pub async fn run(what: &str, cmd: &mut Command) -> Output {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what}: still running after {RUN_LIMIT:?}: {cmd:?}"))
        .unwrap_or_else(|e| {
            panic!("{what}: cannot run {cmd:?}: {e} (scripts/drivers.sh installs the drivers; SY_SKIP_DRIVERS opts out)")
        });
    if !out.status.success() {
        panic!(
            "{what} failed ({}): {cmd:?}\nstdout:\n{}\nstderr:\n{}\n(scripts/drivers.sh installs the drivers; SY_SKIP_DRIVERS opts out)",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}
