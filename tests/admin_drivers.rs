//! The admin port through the drivers ops scripts and tools use, each with what it sends at
//! connect (SET NAMES, session SETs, settings reads, an empty database): the mariadb CLI,
//! PyMySQL and mysql-connector-python (C extension and pure) from PyPI, PHP mysqli and PDO,
//! mysql2 from npm, MariaDB Connector/J and go-sql-driver/mysql from Debian. Each logs in and
//! runs SHOW BACKENDS, PAUSE TENANT, SHOW TENANTS and RESUME TENANT; the answers are checked
//! here and the pause against the proxy's state. Programs are in tests/clients/.

mod common;

use common::drivers::{self, run};
use common::AdminProxy;
use switchyard::config;
use switchyard::state::RuntimeState;
use tokio::process::Command;

const USER: &str = "admin";
const PASSWORD: &str = "admin_pw";
const TENANT: &str = "globex";

async fn start() -> AdminProxy {
    let text = common::config_text("")
        + &format!("\n[admin]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n");
    let cfg = config::parse(&text, &|_| None).unwrap();
    common::start_with_admin(RuntimeState::new(cfg)).await
}

/// One statement's answer, as a client program printed it.
#[derive(Debug, Default)]
struct Answer {
    sql: String,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Answer {
    fn column(&self, name: &str) -> Vec<&str> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{}: no column {name} in {:?}", self.sql, self.columns));
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }

    /// The value in `column` of the row whose tenant is [`TENANT`].
    fn tenant_value(&self, column: &str) -> &str {
        let at = self
            .column("tenant")
            .iter()
            .position(|t| *t == TENANT)
            .unwrap_or_else(|| panic!("{}: no row for {TENANT}: {self:?}", self.sql));
        self.column(column)[at]
    }
}

/// Reads `== sql` / `columns\t...` / `row\t...` lines (see tests/clients/admin_check.py).
fn parse(out: &str) -> Vec<Answer> {
    let mut answers: Vec<Answer> = Vec::new();
    for line in out.lines() {
        if let Some(sql) = line.strip_prefix("== ") {
            answers.push(Answer {
                sql: sql.to_owned(),
                ..Answer::default()
            });
        } else if let Some(cols) = line.strip_prefix("columns\t") {
            answers.last_mut().expect("columns after ==").columns =
                cols.split('\t').map(str::to_owned).collect();
        } else if let Some(row) = line.strip_prefix("row\t") {
            let a = answers.last_mut().expect("row after ==");
            a.rows.push(row.split('\t').map(str::to_owned).collect());
        }
    }
    answers
}

/// What every driver must have seen.
fn check_answers(driver: &str, answers: &[Answer]) {
    let sqls: Vec<&str> = answers.iter().map(|a| a.sql.as_str()).collect();
    assert_eq!(
        sqls,
        [
            "SHOW BACKENDS".to_owned(),
            format!("PAUSE TENANT {TENANT} TIMEOUT 5"),
            "SHOW TENANTS".to_owned(),
            format!("RESUME TENANT {TENANT}"),
        ],
        "{driver}"
    );
    let backends = &answers[0];
    let tenants = backends.column("tenant");
    for t in ["acme", "globex", "sb"] {
        assert!(
            tenants.contains(&t),
            "{driver}: {t} missing from {backends:?}"
        );
    }
    let roles = backends.column("role");
    assert!(
        roles.contains(&"primary") && roles.contains(&"replica"),
        "{driver}: {roles:?}"
    );
    assert_eq!(answers[1].tenant_value("status"), "paused", "{driver}");
    assert_eq!(answers[2].tenant_value("paused"), "1", "{driver}");
    assert_eq!(answers[3].tenant_value("status"), "running", "{driver}");
}

/// Runs `program` against a fresh proxy's admin port and checks what it printed.
async fn check(driver: &str, mut program: Command) {
    let p = start().await;
    program
        .env("SY_ADMIN_PORT", p.admin.port().to_string())
        .env("SY_ADMIN_USER", USER)
        .env("SY_ADMIN_PASSWORD", PASSWORD)
        .env("SY_TENANT", TENANT);
    let out = run(driver, &mut program).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l == "done"), "{driver}: {text}");
    check_answers(driver, &parse(&text));
    assert!(
        !p.state.load().shared.pauses.is_paused(TENANT),
        "{driver}: {TENANT} still paused after RESUME"
    );
}

#[tokio::test]
async fn mariadb_cli() {
    if drivers::skipped("mariadb") {
        return;
    }
    let p = start().await;
    let mut text = String::new();
    // One login per statement: --batch prints one header line, then tab-separated rows.
    for sql in [
        "SHOW BACKENDS".to_owned(),
        format!("PAUSE TENANT {TENANT} TIMEOUT 5"),
        "SHOW TENANTS".to_owned(),
        format!("RESUME TENANT {TENANT}"),
    ] {
        let mut c = Command::new("mariadb");
        c.args(["-h127.0.0.1", &format!("-P{}", p.admin.port())])
            .args([
                &format!("-u{USER}"),
                &format!("-p{PASSWORD}"),
                "--batch",
                "-e",
            ])
            .arg(&sql);
        let out = run("mariadb", &mut c).await;
        let lines = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = lines.lines();
        text += &format!("== {sql}\ncolumns\t{}\n", lines.next().unwrap_or(""));
        for row in lines {
            text += &format!("row\t{row}\n");
        }
    }
    check_answers("mariadb", &parse(&text));
    assert!(!p.state.load().shared.pauses.is_paused(TENANT));
}

#[tokio::test]
async fn pymysql_from_pypi() {
    if !drivers::skipped("pymysql") {
        check("pymysql", drivers::python("admin_check.py", "pymysql")).await;
    }
}

#[tokio::test]
async fn mysql_connector_python_c_extension() {
    if !drivers::skipped("connector-c") {
        check(
            "connector-c",
            drivers::python("admin_check.py", "connector-c"),
        )
        .await;
    }
}

#[tokio::test]
async fn mysql_connector_python_pure() {
    if !drivers::skipped("connector-pure") {
        check(
            "connector-pure",
            drivers::python("admin_check.py", "connector-pure"),
        )
        .await;
    }
}

#[tokio::test]
async fn php_mysqli() {
    if !drivers::skipped("mysqli") {
        check("mysqli", drivers::php("admin_check.php", "mysqli")).await;
    }
}

#[tokio::test]
async fn php_pdo() {
    if !drivers::skipped("pdo") {
        check("pdo", drivers::php("admin_check.php", "pdo")).await;
    }
}

#[tokio::test]
async fn node_mysql2() {
    if !drivers::skipped("mysql2") {
        check("mysql2", drivers::node("admin_check.js")).await;
    }
}

#[tokio::test]
async fn mariadb_connector_j() {
    if !drivers::skipped("connector-j") {
        check("connector-j", drivers::java_program("AdminCheck").await).await;
    }
}

#[tokio::test]
async fn go_sql_driver() {
    if !drivers::skipped("go") {
        check("go", drivers::go_program().await).await;
    }
}
