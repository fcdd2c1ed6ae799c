//! Logs of the real binary: the slow-statement log names the tenant, user, route, backend,
//! time and the normalized statement; `--log-format json` gives one JSON object per line.

mod common;

use std::time::Duration;

use common::{binary, primary_port};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_statements_are_logged_as_json() {
    let bin = binary::spawn(
        |port| binary::globex_config(port, "slow_statement = \"20ms\"\nshutdown_grace = \"1s\""),
        &["--log-format", "json"],
        std::process::Stdio::piped(),
    );
    let mut c = bin.connect("globex_app", Some("wf_globex")).await;
    let _: Option<i64> = c.query_first("SELECT SLEEP(0.1)").await.unwrap();
    let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    drop(c);
    bin.sigterm();
    let out = bin.exit(Duration::from_secs(10)).await;
    let log = String::from_utf8_lossy(&out.stderr);
    let slow: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("slow statement"))
        .collect();
    assert_eq!(slow.len(), 1, "exactly the SLEEP is slow:\n{log}");
    let line = slow[0];
    assert!(line.starts_with('{') && line.ends_with('}'), "JSON: {line}");
    for part in [
        "\"tenant\":\"globex\"",
        "\"user\":\"globex_app\"",
        "SELECT SLEEP(?)",
        &format!("127.0.0.1:{}", primary_port()),
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}
