//! Users configured with the server-side hash instead of the password:
//! - mysql_native_password's `*HEX` (as MariaDB's PASSWORD() makes it): clients are checked
//!   against it and the backends are logged in to with what the client's answer reveals;
//! - caching_sha2_password's `$A$005$...`: the first login authenticates in full (RSA
//!   without TLS, in clear over TLS), later ones take the fast path, as on MySQL 8.

mod common;

use common::certs;

use std::path::Path;
use std::process::Command;

use mysql_async::prelude::*;
use switchyard::config;
use switchyard::protocol::crypt::sha256_crypt;
use switchyard::protocol::handshake::{backend_hello, parse_greeting};
use switchyard::protocol::PacketStream;
use switchyard::state::auth::LoginMethod;
use switchyard::state::RuntimeState;

/// The common config with acme_app's `password = "acme_pw"` replaced by `password_hash`.
fn state_with_hash(hash: &str, tls: bool) -> RuntimeState {
    state_with_hash_and(hash, tls, "")
}

fn state_with_hash_and(hash: &str, tls: bool, server_keys: &str) -> RuntimeState {
    let mut text = common::config_text("").replacen(
        "name = \"acme_app\"\npassword = \"acme_pw\"",
        &format!("name = \"acme_app\"\npassword_hash = \"{hash}\""),
        1,
    );
    assert!(text.contains("password_hash"));
    text = text.replacen("[server]", &format!("[server]\n{server_keys}"), 1);
    if tls {
        let d = certs::cluster_tls();
        text = text.replacen(
            "[server]",
            &format!(
                "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
                d.join("server.pem").display(),
                d.join("server.key").display()
            ),
            1,
        );
    }
    let cfg = config::parse(&text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    RuntimeState::new(cfg).with_tls().unwrap()
}

/// A caching_sha2_password hash of `password` as MySQL stores it (20-byte salt, 5000 rounds).
fn mysql_sha2_hash(password: &str) -> String {
    let salt = b"Sw1tchyardSaltX0aZ9q";
    let digest = sha256_crypt(password.as_bytes(), salt, 5000);
    format!(
        "$A$005${}{}",
        std::str::from_utf8(salt).unwrap(),
        String::from_utf8(digest).unwrap()
    )
}

/// Runs PyMySQL: logs in as acme_app with `password` and prints `@@port CURRENT_USER()`.
fn pymysql(port: u16, password: &str, ssl_ca: Option<&Path>) -> std::process::Output {
    let ssl = match ssl_ca {
        Some(ca) => format!(", ssl={{'ca': '{}'}}", ca.display()),
        None => String::new(),
    };
    pymysql_with(port, password, &ssl)
}

/// PyMySQL as acme_app with extra `connect()` arguments (`extra` starts with a comma).
fn pymysql_with(port: u16, password: &str, extra: &str) -> std::process::Output {
    let script = format!(
        "import pymysql\n\
         c = pymysql.connect(host='127.0.0.1', port={port}, user='acme_app', password='{password}', database='wf_acme'{extra})\n\
         cur = c.cursor()\n\
         cur.execute('SELECT @@port, CURRENT_USER()')\n\
         print(*cur.fetchone())\n"
    );
    Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap()
}

fn assert_logged_in(out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout {stdout}\nstderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("acme_app@%"), "{stdout}");
}

/// The mariadb CLI as acme_app (password acme_pw) with `extra` options, printing
/// `CURRENT_USER()`.
async fn mariadb_cli(port: u16, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("mariadb");
    cmd.args(["--no-defaults", "--protocol=TCP", "-h127.0.0.1"])
        .arg(format!("-P{port}"))
        .args(["-uacme_app", "-pacme_pw", "-Dwf_acme"])
        .args(extra)
        .args(["-NBe", "SELECT CURRENT_USER()"]);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// A hand-made caching_sha2_password login: returns the first packet after the hello
/// ([0x01, 0x03] is the fast path, [0x01, 0x04] asks for full authentication).
async fn sha2_first_reply(port: u16, password: &str) -> Vec<u8> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut io = PacketStream::new(stream, 1 << 20);
    let greeting = io.read_packet().await.unwrap();
    let (server, nonce, _) = parse_greeting(&greeting.payload).unwrap();
    let caps = common::raw::modern_caps() & server.capabilities;
    let answer = mysql_common::scramble::scramble_sha256(&nonce, password.as_bytes()).unwrap();
    let hello = backend_hello(
        "acme_app",
        &answer,
        Some("wf_acme"),
        caps,
        45,
        "caching_sha2_password",
    );
    io.send(1, &hello).await.unwrap();
    let reply = io.read_packet().await.unwrap().payload;
    // Hang up and wait for the proxy to close its end: its login task has ended by then
    // (and counted the login, or not).
    let tcp = io.tcp().expect("plain TCP");
    socket2::SockRef::from(tcp)
        .shutdown(std::net::Shutdown::Write)
        .unwrap();
    let drained = async { while io.read_packet().await.is_ok() {} };
    tokio::time::timeout(common::SHORT, drained)
        .await
        .expect("the proxy closes");
    reply
}

#[tokio::test]
async fn a_native_hash_checks_clients_and_logs_in_to_backends() {
    let mut root = common::root().await;
    let hash: String = root
        .query_first("SELECT PASSWORD('acme_pw')")
        .await
        .unwrap()
        .unwrap();
    assert!(hash.starts_with('*') && hash.len() == 41, "{hash}");
    let proxy = common::start_state(state_with_hash(&hash, false)).await;
    let port = proxy.addr.port();

    // mysql_native_password client: checked against the hash; reads (replica) and writes
    // (primary) run on backends logged in to with SHA1(password) from the client's answer.
    let mut c = common::connect(port, "acme_app", Some("wf_acme")).await;
    let (served, user): (u16, String) = c
        .query_first("SELECT @@port, CURRENT_USER()")
        .await
        .unwrap()
        .unwrap();
    assert!(common::is_replica(served), "{served}");
    assert_eq!(user, "acme_app@%");
    c.query_drop("BEGIN").await.unwrap();
    let served: u16 = c.query_first("SELECT @@port").await.unwrap().unwrap();
    assert_eq!(served, common::primary_port());
    c.query_drop("COMMIT").await.unwrap();

    // A wrong password is refused as the server would.
    let bad = mysql_async::OptsBuilder::from_opts(common::opts(port, "acme_app", None))
        .pass(Some("not_acme_pw"));
    let err = mysql_async::Conn::new(bad).await.expect_err("refused");
    let mysql_async::Error::Server(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 1045, "{}", e.message);

    // COM_CHANGE_USER to the hashed user from another one: the same check, and the
    // backends are logged in to anew with what the new answer reveals.
    let mut o = common::connect(port, "ops", Some("wf_globex")).await;
    let to_acme = mysql_async::ChangeUserOpts::default()
        .with_user(Some("acme_app".into()))
        .with_pass(Some("acme_pw".into()))
        .with_db_name(Some("wf_acme".into()));
    o.change_user(to_acme).await.unwrap();
    let user: String = o
        .query_first("SELECT CURRENT_USER()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user, "acme_app@%");
    let wrong = mysql_async::ChangeUserOpts::default()
        .with_user(Some("acme_app".into()))
        .with_pass(Some("acme_pX".into()));
    let e = o.change_user(wrong).await.expect_err("wrong password");
    assert!(e.to_string().contains("1045"), "{e}");

    // A caching_sha2_password client is switched to the scheme the hash can check.
    let out = mariadb_cli(port, &["--default-auth=caching_sha2_password"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "acme_app@%");
}

#[tokio::test]
async fn a_caching_sha2_hash_authenticates_in_full_then_fast() {
    let state = state_with_hash(&mysql_sha2_hash("acme_pw"), false);
    // The RSA key is made at the first full authentication: a prime search that can take
    // seconds on a loaded machine, inside the login's 2 s handshake timeout. Made here, so
    // the exchange under test is what is timed.
    state.rsa_key().await.unwrap();
    let shared = std::sync::Arc::clone(&state.shared);
    let proxy = common::start_state(state).await;
    let port = proxy.addr.port();

    // Nothing proven yet: even the right scramble gets "perform full authentication".
    assert_eq!(sha2_first_reply(port, "acme_pw").await, [0x01, 0x04]);

    // A wrong password through the whole RSA exchange is refused.
    let out = tokio::task::spawn_blocking(move || pymysql(port, "wrong", None))
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1045"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // PyMySQL over plaintext: asks for the RSA public key, sends the encrypted password,
    // and its statements run on the backends logged in to with that password.
    let out = tokio::task::spawn_blocking(move || pymysql(port, "acme_pw", None))
        .await
        .unwrap();
    assert_logged_in(&out);

    // Proven once: the fast path now, for the right password only (a scramble that does
    // not match is asked for full authentication, as MySQL does).
    assert_eq!(sha2_first_reply(port, "acme_pw").await, [0x01, 0x03]);
    assert_eq!(sha2_first_reply(port, "acme_pX").await, [0x01, 0x04]);

    // Counted by method (the hand-made logins that hung up mid-exchange are not).
    assert_eq!(shared.logins.get(LoginMethod::Sha2FullRsa), (1, 1));
    assert_eq!(shared.logins.get(LoginMethod::Sha2Fast), (1, 0));
    assert_eq!(shared.logins.get(LoginMethod::Native), (0, 0));
}

#[tokio::test]
async fn a_caching_sha2_hash_authenticates_in_clear_over_tls() {
    let proxy = common::start_state(state_with_hash(&mysql_sha2_hash("acme_pw"), true)).await;
    let port = proxy.addr.port();
    let ca = certs::cluster_tls().join("ca.pem");
    let out = tokio::task::spawn_blocking(move || pymysql(port, "acme_pw", Some(&ca)))
        .await
        .unwrap();
    assert_logged_in(&out);
    assert_eq!(sha2_first_reply(port, "acme_pw").await, [0x01, 0x03]);
}

#[test]
fn bad_hashes_are_config_errors_naming_the_key() {
    let text = common::config_text("").replacen(
        "name = \"acme_app\"\npassword = \"acme_pw\"",
        "name = \"acme_app\"\npassword_hash = \"*NOTHEX\"",
        1,
    );
    let err = config::parse(&text, &|_| None).unwrap_err().to_string();
    assert!(err.contains("password_hash"), "{err}");
    assert!(err.contains("40 hex digits"), "{err}");
    let text = common::config_text("").replacen(
        "password = \"acme_pw\"",
        "password = \"acme_pw\"\npassword_hash = \"*0A3F7E1E4B7C4E7B0A3E0C0C1E3A5F7B9D1C3E5F\"",
        1,
    );
    let err = config::parse(&text, &|_| None).unwrap_err().to_string();
    assert!(err.contains("not both"), "{err}");
}

#[tokio::test]
async fn a_configured_rsa_key_can_be_pinned_by_clients() {
    let dir = certs::scratch_dir("rsa");
    certs::openssl(&dir, &["genrsa", "-out", "rsa.key", "2048"]);
    certs::openssl(
        &dir,
        &["rsa", "-in", "rsa.key", "-pubout", "-out", "rsa.pub"],
    );
    let key = format!("rsa_private_key = \"{}\"", dir.join("rsa.key").display());
    let state = state_with_hash_and(&mysql_sha2_hash("acme_pw"), false, &key);
    let proxy = common::start_state(state).await;
    let port = proxy.addr.port();
    // PyMySQL with the public key given sends the encrypted password at once, without
    // asking for the key: it only works if Switchyard decrypts with the configured key.
    let pinned = format!(
        ", server_public_key=open('{}', 'rb').read()",
        dir.join("rsa.pub").display()
    );
    let out = tokio::task::spawn_blocking(move || pymysql_with(port, "acme_pw", &pinned))
        .await
        .unwrap();
    assert_logged_in(&out);
    let _ = std::fs::remove_dir_all(dir);
}

/// libmariadb's caching_sha2_password plugin (the mariadb CLI) against a hash with nothing
/// cached: full authentication with the RSA key over plaintext, in clear over TLS.
#[tokio::test]
async fn the_mariadb_client_authenticates_in_full() {
    let sha2 = mysql_sha2_hash("acme_pw");
    for tls in [false, true] {
        let proxy = common::start_state(state_with_hash(&sha2, tls)).await;
        let ca = certs::cluster_tls().join("ca.pem");
        let ssl_ca = format!("--ssl-ca={}", ca.display());
        let transport: &[&str] = if tls {
            &["--ssl", &ssl_ca, "--ssl-verify-server-cert"]
        } else {
            &["--skip-ssl"]
        };
        let mut extra = vec!["--default-auth=caching_sha2_password"];
        extra.extend_from_slice(transport);
        let out = mariadb_cli(proxy.addr.port(), &extra).await;
        assert!(
            out.status.success(),
            "tls {tls}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "acme_app@%");
    }
}

/// Generating the RSA key can take seconds of CPU on a loaded machine: it is made before the
/// first client is accepted, so no client spends its handshake timeout on it. Only a config
/// with a caching_sha2_password hash and no key file needs one.
#[tokio::test]
async fn the_rsa_key_is_made_before_the_first_client_is_greeted() {
    let state = state_with_hash(&mysql_sha2_hash("acme_pw"), false);
    assert!(state.needs_generated_rsa_key());
    let shared = state.shared();
    let proxy = common::start_shared(shared.clone()).await;
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let greeting = PacketStream::new(stream, 1 << 20)
        .read_packet()
        .await
        .unwrap();
    assert_eq!(greeting.seq, 0);
    assert!(shared.load().shared.generated_rsa_key.initialized());
    drop(proxy);

    let native = state_with_hash("*0A3F7E1E4B7C4E7B0A3E0C0C1E3A5F7B9D1C3E5F", false);
    assert!(!native.needs_generated_rsa_key());
    let plain = RuntimeState::new(common::config(""));
    assert!(!plain.needs_generated_rsa_key());
}

/// A client that cannot switch plugins (no CLIENT_PLUGIN_AUTH) logging in as a user whose
/// stored hash only caching_sha2_password can check gets ERR 1251, as the server answers
/// such a client: it was sent an auth switch request, which such a client reads as the
/// pre-4.1 server's request for the old password scramble.
#[tokio::test]
async fn a_client_that_cannot_switch_plugins_is_told_so() {
    use mysql_common::packets::HandshakeResponse;
    use mysql_common::proto::MySerialize;
    use switchyard::protocol::CapabilityFlags;
    let proxy = common::start_state(state_with_hash(&mysql_sha2_hash("acme_pw"), false)).await;
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut io = PacketStream::new(stream, 1 << 20);
    let greeting = io.read_packet().await.unwrap();
    let (server, nonce, _) = parse_greeting(&greeting.payload).unwrap();
    let caps = common::raw::modern_caps()
        .difference(CapabilityFlags::CLIENT_PLUGIN_AUTH)
        .intersection(server.capabilities);
    let answer = switchyard::protocol::auth::native_response(&nonce, "acme_pw");
    let hello = HandshakeResponse::new(
        Some(&answer[..]),
        (10, 11, 0),
        Some(&b"acme_app"[..]),
        Some(&b"wf_acme"[..]),
        None,
        caps,
        None,
        1 << 24,
    );
    let mut out = Vec::new();
    hello.serialize(&mut out);
    io.send(1, &out).await.unwrap();
    let reply = io.read_packet().await.unwrap().payload;
    assert_eq!(&reply[..3], &[0xFF, 0xE3, 0x04], "ERR 1251: {reply:?}");
    let message = String::from_utf8_lossy(&reply[9..]);
    assert!(
        message.starts_with("Client does not support authentication protocol requested by server"),
        "{message}"
    );
}
