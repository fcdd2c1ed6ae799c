//! MariaDB Connector/Python (libmariadb) directly and through Switchyard: bulk executemany
//! with indicator variables, extended type info (JSON columns), server-side cursors and the
//! compressed protocol. The driver comes from scripts/mariadb_client.sh; without it these
//! tests fail, they do not skip.

mod common;

use std::time::Duration;

use common::primary_port;
use tokio::process::Command;

/// Bounds one client run: a relay that lost its way would otherwise hang the test.
const RUN_LIMIT: Duration = Duration::from_secs(60);

async fn run(port: u16, tag: &str, mode: &str) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/mariadb_check.py"
    );
    let mut cmd = Command::new(common::drivers::mariadb_python());
    cmd.arg(script).arg(port.to_string()).args([tag, mode]);
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{mode} against port {port} did not finish in {RUN_LIMIT:?}"))
        .expect("the Python client runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{mode} against port {port} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `mode` directly and through a fresh Switchyard; returns the direct output after
/// checking the proxied one is the same.
async fn same_as_directly(mode: &str) -> String {
    let proxy = common::start(common::config("")).await;
    let direct = run(primary_port(), "direct", mode).await;
    let proxied = run(proxy.addr.port(), "proxied", mode).await;
    assert_eq!(direct, proxied, "{mode}: direct vs proxied");
    direct
}

#[tokio::test]
async fn bulk_executemany_counts_every_row_and_honours_indicators() {
    let out = same_as_directly("bulk").await;
    assert!(out.contains("bulk rowcount 4\n"), "{out}");
    assert!(out.contains("bulk update rowcount 2\n"), "{out}");
    assert!(out.contains(" row: (2, 'dflt', None)\n"), "{out}");
    assert!(out.contains("bulk error 1062 23000"), "{out}");
}

#[tokio::test]
async fn json_columns_keep_their_extended_type() {
    let out = same_as_directly("json").await;
    assert_eq!(out.matches("json type is JSON: True").count(), 2, "{out}");
}

#[tokio::test]
async fn read_only_cursors_interleave_on_one_connection() {
    let out = same_as_directly("cursors").await;
    assert!(out.contains("c1 (4, 'v4') c2 ('v4', 40)"), "{out}");
    assert!(out.contains("c1 again [(1, 'v1'), (2, 'v2')]"), "{out}");
    assert!(out.contains("after cursors [(1,)]"), "{out}");
}

#[tokio::test]
async fn compressed_protocol_gives_the_same_answers() {
    let out = same_as_directly("compress").await;
    assert!(out.contains("big 600000 abcabc 36"), "{out}");
    assert!(out.contains("blob 1 76800 True"), "{out}");
    assert!(out.contains("rows 3000 (1,) (3000,)"), "{out}");
}
