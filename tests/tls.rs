//! TLS for clients: a CA and server certificate made at test time with openssl, then the
//! mariadb CLI and PyMySQL log in over TLS, and `require_tls` refuses plaintext logins (and
//! plaintext COM_CHANGE_USER to such a user).

mod common;

use common::certs;
use common::raw::RawClient;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use switchyard::config;
use switchyard::state::RuntimeState;

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it, in a directory of
/// the test's own (`tag`: tests of one process must not share, or delete, each other's).
fn make_certs(tag: &str) -> PathBuf {
    let dir = certs::scratch_dir(tag);
    certs::make_ca(&dir, "switchyard test CA");
    certs::make_server_cert(&dir);
    dir
}

async fn start(certs: &Path, require_tls: bool) -> common::Proxy {
    let state =
        RuntimeState::new(config::parse(&config_text(certs, require_tls), &|_| None).unwrap())
            .with_tls()
            .expect("certificates load");
    common::start_state(state).await
}

/// A config serving acme over TLS with `certs`' server certificate and key.
fn config_text(certs: &Path, require_tls: bool) -> String {
    let p = common::primary_port();
    format!(
        r#"
[server]
tls_cert = "{cert}"
tls_key = "{key}"
require_tls = {require_tls}

[[tenants]]
name = "acme"
schemas = ["wf_acme"]
primary = "127.0.0.1:{p}"

[[users]]
name = "acme_app"
password = "acme_pw"
tenant = "acme"

[[users]]
name = "ops"
password = "ops_pw"
tenant = "acme"
require_tls = true
"#,
        cert = certs.join("server.pem").display(),
        key = certs.join("server.key").display(),
    )
}

fn mariadb_as(user: &str, port: u16, ca: &Path, tls: bool, sql: &str) -> std::process::Output {
    let mut c = Command::new("mariadb");
    c.args(["-h127.0.0.1", &format!("-P{port}"), &format!("-u{user}")])
        .arg(format!("-p{}", common::password_of(user)))
        .arg("wf_acme");
    if tls {
        c.arg("--ssl")
            .arg(format!("--ssl-ca={}", ca.display()))
            .arg("--ssl-verify-server-cert");
    } else {
        c.arg("--skip-ssl");
    }
    c.args(["-e", sql]).output().unwrap()
}

/// [`mariadb_as`] on a blocking thread, so the proxy's runtime goes on serving meanwhile.
async fn mariadb_off(user: &str, port: u16, ca: &Path, tls: bool, sql: &str) -> Output {
    let (user, ca, sql) = (user.to_owned(), ca.to_owned(), sql.to_owned());
    tokio::task::spawn_blocking(move || mariadb_as(&user, port, &ca, tls, &sql))
        .await
        .unwrap()
}

/// Asserts the client succeeded, showing its error output otherwise.
fn assert_ran(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_log_in_over_tls_and_plaintext_can_be_refused() {
    let certs = make_certs("tls-login");
    let ca = certs.join("ca.pem");
    let proxy = start(&certs, false).await;
    let port = proxy.addr.port();

    // The mariadb CLI, verifying the certificate against the test CA.
    let out = mariadb_off("acme_app", port, &ca, true, "\\s").await;
    let status = String::from_utf8_lossy(&out.stdout);
    assert_ran(&out, "the login");
    assert!(status.contains("Cipher in use is"), "TLS in use:\n{status}");
    let out = mariadb_off("acme_app", port, &ca, true, "SELECT 40 + 2").await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("42"));

    // PyMySQL with ssl=.
    let script = format!(
        "import pymysql\nc = pymysql.connect(host='127.0.0.1', port={port}, user='acme_app', password='acme_pw', database='wf_acme', ssl={{'ca': '{}'}})\ncur = c.cursor()\ncur.execute('SELECT DATABASE()')\nprint(cur.fetchone()[0], type(c._sock).__name__)\n",
        ca.display()
    );
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ran(&out, "PyMySQL over TLS");
    assert_eq!(text.trim(), "wf_acme SSLSocket");

    // Plaintext still works when TLS is optional ...
    let out = mariadb_off("acme_app", port, &ca, false, "SELECT 1").await;
    assert_ran(&out, "the login");

    // A user marked require_tls is refused without TLS even where TLS is optional, as
    // MariaDB refuses an account REQUIRE SSL: ERR 1045.
    let out = mariadb_off("ops", port, &ca, false, "SELECT 1").await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ERROR 1045"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mariadb_off("ops", port, &ca, true, "SELECT 1").await;
    assert_ran(&out, "the login");
    // The same refusal whatever the password, and the same as a user that does not exist
    // gets: a refusal of its own (ERR 3159 naming the user) told a stranger which users
    // exist, and one after the password's check would tell a guesser which one was right.
    let refusal = |name: &'static str, password: &'static str| async move {
        let (_, answer) =
            RawClient::connect(port, name, password, None, common::raw::modern_caps()).await;
        let answer = common::raw::packets(&answer);
        answer.last().unwrap().1.clone()
    };
    let right = refusal("ops", "ops_pw").await;
    let message = String::from_utf8_lossy(&right[9..]).into_owned();
    assert_eq!(&right[..3], &[0xFF, 0x15, 0x04], "ERR 1045: {message}");
    assert!(
        message.starts_with("Access denied for user 'ops'@")
            && message.ends_with("(using password: YES)"),
        "{message}"
    );
    assert_eq!(refusal("ops", "wrong").await, right);
    let stranger = refusal("nobody", "ops_pw").await;
    assert_eq!(
        String::from_utf8_lossy(&stranger[9..]),
        message.replace("'ops'", "'nobody'")
    );

    // Nor can a plaintext session become that user with COM_CHANGE_USER: refused as at
    // login, the session going on as its old user.
    let (mut c, _) = RawClient::connect(
        port,
        "acme_app",
        "acme_pw",
        Some("wf_acme"),
        common::raw::modern_caps(),
    )
    .await;
    let (answer, _) = c.change_user(("ops", "ops_pw", "wf_acme"), 45).await;
    let (_, last) = answer.last().unwrap();
    assert_eq!(&last[..3], &[0xFF, 0x15, 0x04], "ERR 1045: {answer:?}");
    let who = c.query("SELECT CURRENT_USER()").await;
    assert!(
        who.windows(10).any(|w| w == b"acme_app@%"),
        "still acme_app: {:?}",
        String::from_utf8_lossy(&who)
    );

    // ... and is refused with require_tls, while TLS logins go on working.
    let strict = start(&certs, true).await;
    let port = strict.addr.port();
    let out = mariadb_off("acme_app", port, &ca, false, "SELECT 1").await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ERROR 3159"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mariadb_off("acme_app", port, &ca, true, "SELECT 1").await;
    assert_ran(&out, "the login");
    let _ = std::fs::remove_dir_all(certs);
}

/// A reload loads the files the new config names as `check` and a start do: certificates
/// renewed in place are served from then on, and a config naming a file that does not load
/// is refused whole (before, it was applied without its TLS: with `require_tls` every login
/// then got ERR 3159, TLS being required but no longer offered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_renews_certificates_and_refuses_files_that_do_not_load() {
    let dir = make_certs("tls-reload");
    let certs = dir.join("live");
    std::fs::create_dir_all(&certs).unwrap();
    for f in ["server.pem", "server.key"] {
        std::fs::copy(dir.join(f), certs.join(f)).unwrap();
    }
    let file = dir.join("switchyard.toml");
    std::fs::write(&file, config_text(&certs, false)).unwrap();
    let state = RuntimeState::from_file(config::load(&file).unwrap(), file.clone())
        .with_tls()
        .unwrap()
        .shared();
    let proxy = common::start_shared(std::sync::Arc::clone(&state)).await;
    let port = proxy.addr.port();
    let tls_login = |ca: PathBuf| async move {
        mariadb_off("acme_app", port, &ca, true, "SELECT 40 + 2").await
    };
    let (old_ca, new_ca) = (dir.join("ca.pem"), dir.join("renewed").join("ca.pem"));
    assert!(tls_login(old_ca.clone()).await.status.success());

    // Renewed in place (another CA's certificate, so a client can tell which it got).
    let renewed = dir.join("renewed");
    std::fs::create_dir_all(&renewed).unwrap();
    certs::make_ca(&renewed, "switchyard renewed CA");
    certs::make_server_cert(&renewed);
    for f in ["server.pem", "server.key"] {
        std::fs::copy(renewed.join(f), certs.join(f)).unwrap();
    }
    switchyard::state::reload::reload_from(&state, &file).expect("the renewed files load");
    let out = tls_login(new_ca.clone()).await;
    assert_ran(&out, "the renewed certificate is served");
    assert!(!tls_login(old_ca).await.status.success());

    // A key that does not load, with require_tls turned on: refused, nothing changes.
    let broken = dir.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(certs.join("server.pem"), broken.join("server.pem")).unwrap();
    std::fs::write(broken.join("server.key"), "not a key\n").unwrap();
    std::fs::write(&file, config_text(&broken, true)).unwrap();
    let e = switchyard::state::reload::reload_from(&state, &file)
        .expect_err("a key that does not load refuses the reload");
    let said = e.to_string();
    assert!(
        said.contains(&broken.join("server.key").display().to_string()),
        "{said}"
    );
    assert!(!state.load().config.server.require_tls);
    let out = tls_login(new_ca.clone()).await;
    assert_ran(&out, "the login");
    let out = mariadb_off("acme_app", port, &new_ca, false, "SELECT 1").await;
    assert_ran(&out, "plaintext logins still allowed");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unreadable_certificates_are_a_clear_startup_error() {
    let e = switchyard::protocol::tls::acceptor("/nonexistent/cert.pem", "/nonexistent/key.pem")
        .err()
        .expect("missing files are an error");
    assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
}
