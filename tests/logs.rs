//! Logs of the real binary: the slow-statement log names the tenant, user, route, backend,
//! time and the normalized statement; `--log-format json` gives one JSON object per line; a
//! session's events carry who it is.

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
        "\"route\":\"primary\"",
        "SELECT SLEEP(?)",
        &format!("127.0.0.1:{}", primary_port()),
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}

/// The session's future is not instrumented (a span entered at every poll cost the hot path):
/// its events name their session span as their parent instead, so a warning still says whose
/// it is, in each format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_warnings_say_whose_they_are() {
    for format in ["json", "human"] {
        let bin = binary::spawn(
            |port| binary::globex_config(port, "shutdown_grace = \"1s\""),
            &["--log-format", format],
            std::process::Stdio::piped(),
        );
        let mut c = bin.connect("globex_app", Some("wf_globex")).await;
        let _: Option<i64> = c.query_first("/* nosuch=1 */ SELECT 1").await.unwrap();
        drop(c);
        bin.sigterm();
        let out = bin.exit(Duration::from_secs(10)).await;
        let log = String::from_utf8_lossy(&out.stderr);
        let line = log
            .lines()
            .find(|l| l.contains("hint not honoured"))
            .unwrap_or_else(|| panic!("no hint warning ({format}):\n{log}"));
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let span = &v["span"];
            assert_eq!(span["name"], "session", "{line}");
            assert_eq!(span["user"], "globex_app", "{line}");
            assert_eq!(span["tenant"], "globex", "{line}");
            assert!(span["id"].as_u64().is_some(), "{line}");
            assert!(v.get("spans").is_none(), "{line}");
        } else {
            let plain = strip_ansi(line);
            for part in ["session{id=", "user=globex_app", "tenant=\"globex\"}"] {
                assert!(plain.contains(part), "{part} in {plain}");
            }
        }
    }
}

/// What a client sends cannot start a log line of its own: a newline in a refused login's
/// user name, or in a slow statement's quoted identifier, is written escaped (the human
/// format wrote both as they came, a forged line after them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_newlines_stay_inside_their_log_line() {
    let bin = binary::spawn(
        |port| binary::globex_config(port, "slow_statement = \"20ms\"\nshutdown_grace = \"1s\""),
        &["--log-format", "human"],
        std::process::Stdio::piped(),
    );
    // Connected once first: the binary is listening.
    let mut c = bin.connect("globex_app", Some("wf_globex")).await;
    let forged_user = "x\nFORGED-LOGIN INFO switchyard: admin login";
    let opts = mysql_async::OptsBuilder::from_opts(common::opts(bin.port, "globex_app", None))
        .user(Some(forged_user));
    let e = mysql_async::Conn::new(opts)
        .await
        .expect_err("no such user");
    assert!(matches!(e, mysql_async::Error::Server(_)), "{e}");
    let _: Option<i64> = c
        .query_first("SELECT SLEEP(0.1) AS `a\nFORGED-SLOW WARN x`")
        .await
        .unwrap();
    drop(c);
    bin.sigterm();
    let out = bin.exit(Duration::from_secs(10)).await;
    let log = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    for forged in ["FORGED-LOGIN", "FORGED-SLOW"] {
        assert!(
            log.lines().all(|l| !l.starts_with(forged)),
            "{forged} began a line:\n{log}"
        );
        assert!(
            log.contains(&format!("\\n{forged}")),
            "{forged} logged escaped:\n{log}"
        );
    }
}

/// The line without its colour codes (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// No password reaches the log, at any of Switchyard's levels: not a user's from the config,
/// not one a client sent, right or wrong (operations.md, security.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_reach_the_log_even_at_trace() {
    let bin = binary::spawn_with_env(
        |port| binary::globex_config(port, "shutdown_grace = \"1s\""),
        &[],
        std::process::Stdio::piped(),
        // Everything at info and Switchyard's own events at every level; every crate at
        // trace could fill the stderr pipe nobody reads until the end.
        &[("RUST_LOG", "info,switchyard=trace")],
    );
    let mut c = bin.connect("globex_app", Some("wf_globex")).await;
    let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    drop(c);
    let wrong = "not-the-password-7391";
    let opts = mysql_async::OptsBuilder::from_opts(common::opts(
        bin.port,
        "globex_app",
        Some("wf_globex"),
    ))
    .pass(Some(wrong));
    mysql_async::Conn::new(opts)
        .await
        .expect_err("a wrong password is refused");
    bin.sigterm();
    let out = bin.exit(Duration::from_secs(10)).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("TRACE") && log.contains("login refused"),
        "trace logging ran, the refusal logged:\n{log}"
    );
    for secret in [common::password_of("globex_app"), wrong] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

/// A failed admin command is logged without its literals: an operator's mistyped
/// `GRANT ... IDENTIFIED BY '...'`, or an EXPLAIN ROUTE of a statement holding a secret, left it in
/// the log (at `info`, the default level).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_admin_commands_are_logged_without_their_literals() {
    let admin_port = common::free_port();
    let bin = binary::spawn(
        |port| {
            let keys =
                format!("admin_listen = \"127.0.0.1:{admin_port}\"\nshutdown_grace = \"1s\"");
            let text = binary::globex_config(port, &keys);
            format!("{text}\n[admin]\nuser = \"admin\"\npassword = \"admin_pw\"\n")
        },
        &[],
        std::process::Stdio::piped(),
    );
    let app = bin.connect("globex_app", Some("wf_globex")).await;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(admin_port)
        .user(Some("admin"))
        .pass(Some("admin_pw"))
        .prefer_socket(false);
    let mut admin = mysql_async::Conn::new(opts).await.unwrap();
    for cmd in [
        "GRANT ALL ON *.* TO x IDENTIFIED BY 'hunter8'",
        "EXPLAIN ROUTE FOR USER nobody SELECT 'hunter9'",
    ] {
        assert!(admin.query_drop(cmd).await.is_err(), "{cmd} fails");
    }
    drop((admin, app));
    bin.sigterm();
    let out = bin.exit(Duration::from_secs(10)).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("admin command failed"), "{log}");
    assert!(!log.contains("hunter"), "{log}");
}
