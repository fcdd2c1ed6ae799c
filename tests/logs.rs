//! Logs of the real binary: the slow-statement log names the tenant, user, route, backend,
//! time and the normalized statement; `--log-format json` gives one JSON object per line.

mod common;

use std::time::Duration;

use common::{opts, primary_port};
use mysql_async::prelude::*;
use mysql_async::Conn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_statements_are_logged_as_json() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = std::env::temp_dir().join(format!("sy-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("switchyard.toml");
    let p = primary_port();
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nslow_statement = \"20ms\"\nshutdown_grace = \"1s\"\n\n[[tenants]]\nname = \"globex\"\nschemas = [\"wf_globex\"]\nprimary = \"127.0.0.1:{p}\"\n\n[[users]]\nname = \"globex_app\"\npassword = \"globex_pw\"\ntenant = \"globex\"\n"
        ),
    )
    .unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut c = loop {
        if let Ok(c) = Conn::new(opts(port, "globex_app", Some("wf_globex"))).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _: Option<i64> = c.query_first("SELECT SLEEP(0.1)").await.unwrap();
    let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    drop(c);
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("exits")
        .unwrap();
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
        &format!("127.0.0.1:{p}"),
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
