//! TLS toward backends: a tenant with `backend_tls` reaches its primary and replicas over
//! TLS, with each server's certificate verified against the tenant's CA (the local cluster's,
//! made by scripts/cluster.sh); a certificate from another CA is refused with ERR 2026.

mod common;

use common::certs;

use std::path::{Path, PathBuf};

use mysql_async::prelude::*;
use switchyard::config;
use switchyard::state::RuntimeState;

fn cluster_ca() -> PathBuf {
    certs::cluster_tls().join("ca.pem")
}

/// A CA that signed nothing the cluster serves.
fn stranger_ca() -> PathBuf {
    let dir = certs::scratch_dir("backend-tls");
    certs::make_ca(&dir, "not the cluster CA");
    dir.join("ca.pem")
}

/// acme with `backend_tls` (CA `ca`); globex without.
fn state(ca: &Path) -> RuntimeState {
    let text = common::config_text(&format!("backend_tls = {{ ca = \"{}\" }}", ca.display()));
    let cfg = config::parse(&text, &|_| None).unwrap();
    RuntimeState::new(cfg)
        .with_tls()
        .expect("the CA file loads")
}

const SSL_VERSION: &str = "SELECT @@port, (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_VERSION')";

#[tokio::test]
async fn backends_are_reached_over_verified_tls() {
    let proxy = common::start_state(state(&cluster_ca())).await;
    let port = proxy.addr.port();
    let mut c = common::connect(port, "acme_app", Some("wf_acme")).await;

    // A read goes to a replica, over TLS.
    let (served, version): (u16, String) = c.query_first(SSL_VERSION).await.unwrap().unwrap();
    assert!(common::is_replica(served), "read served by {served}");
    assert!(
        version.starts_with("TLSv1."),
        "replica session: {version:?}"
    );

    // Writes and transactions: the primary, over TLS too.
    c.query_drop("CREATE TABLE IF NOT EXISTS wf_acme.tls_writes (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    c.query_drop("BEGIN").await.unwrap();
    let (served, version): (u16, String) = c.query_first(SSL_VERSION).await.unwrap().unwrap();
    assert_eq!(served, common::primary_port());
    assert!(
        version.starts_with("TLSv1."),
        "primary session: {version:?}"
    );
    c.query_drop("INSERT INTO wf_acme.tls_writes (v) VALUES ('via tls')")
        .await
        .unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    c.disconnect().await.unwrap();

    // A tenant without backend_tls stays in plaintext.
    let mut g = common::connect(port, "globex_app", Some("wf_globex")).await;
    let (_, version): (u16, String) = g.query_first(SSL_VERSION).await.unwrap().unwrap();
    assert_eq!(version, "", "globex has no backend_tls");
    g.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let proxy = common::start_state(state(&stranger_ca())).await;
    let port = proxy.addr.port();
    // The login reaches the primary (to enter wf_acme), so it is the login that fails.
    let opts = common::opts(port, "acme_app", Some("wf_acme"));
    let err = mysql_async::Conn::new(opts)
        .await
        .expect_err("must be refused");
    let mysql_async::Error::Server(e) = err else {
        panic!("expected an ERR packet, got {err:?}");
    };
    assert_eq!(e.code, 2026, "{}", e.message);
    assert!(e.message.contains("tenant acme"), "{}", e.message);
    assert!(e.message.contains("certificate"), "{}", e.message);

    // The failure is the tenant's alone: globex (no backend_tls) on the same proxy works.
    let mut g = common::connect(port, "globex_app", Some("wf_globex")).await;
    let one: i64 = g.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}

#[test]
fn a_missing_ca_file_is_a_startup_error() {
    let text = common::config_text("backend_tls = { ca = \"/nonexistent/ca.pem\" }");
    let cfg = config::parse(&text, &|_| None).unwrap();
    let err = RuntimeState::new(cfg).with_tls().err().expect("must fail");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/ca.pem"), "{msg}");
}

/// The monitor's view of the primary after the first checks, with `ca` as the tenant's CA.
async fn monitored_primary(ca: &Path) -> std::sync::Arc<switchyard::monitor::BackendStatus> {
    let text = format!(
        "[monitor]\nuser = \"sy_monitor\"\npassword = \"sy_monitor\"\n\n[defaults]\nhealth_interval = \"100ms\"\n{}",
        common::config_text(&format!("backend_tls = {{ ca = \"{}\" }}", ca.display()))
    );
    let cfg = config::parse(&text, &|_| None).unwrap();
    let settings = cfg.monitor.clone().unwrap();
    let targets = switchyard::monitor::targets(&cfg);
    let primary = format!("127.0.0.1:{}", common::primary_port());
    let target = targets.iter().find(|t| t.addr == primary).unwrap();
    assert_eq!(target.tls_ca.as_deref(), Some(ca.to_str().unwrap()));
    let handle = switchyard::monitor::Monitor::start_with(&settings, targets);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = handle.status(&primary);
        if let Some(s) = status
            .filter(|s| s.last_error.is_some() || s.state == switchyard::monitor::BackendState::Up)
        {
            handle.stop();
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no check result in 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_monitor_checks_over_tls_too() {
    let ok = monitored_primary(&cluster_ca()).await;
    assert_eq!(
        ok.state,
        switchyard::monitor::BackendState::Up,
        "{:?}",
        ok.last_error
    );
    let refused = monitored_primary(&stranger_ca()).await;
    assert_eq!(refused.state, switchyard::monitor::BackendState::Down);
    let why = refused.last_error.clone().unwrap_or_default();
    assert!(
        why.to_lowercase().contains("certificate") || why.contains("UnknownIssuer"),
        "{why}"
    );
}

/// The id of the primary connection a session uses.
async fn primary_conn_id(c: &mut mysql_async::Conn) -> u64 {
    common::on_primary(c, "SELECT CONNECTION_ID()").await
}

#[tokio::test]
async fn a_pooled_tls_connection_the_server_closed_is_not_handed_out() {
    let shared = state(&cluster_ca()).shared();
    let proxy = common::start_shared(shared.clone()).await;
    let port = proxy.addr.port();
    let mut a = common::connect(port, "acme_app", Some("wf_acme")).await;
    let killed = primary_conn_id(&mut a).await;
    a.disconnect().await.unwrap();
    // Back in the pool (reset in the background), then closed by the server.
    common::until_pooled(&shared, 1).await;
    let mut root = common::root().await;
    root.query_drop(format!("KILL CONNECTION {killed}"))
        .await
        .unwrap();
    common::until_gone(common::primary_port(), killed).await;

    let mut b = common::connect(port, "acme_app", Some("wf_acme")).await;
    let fresh = primary_conn_id(&mut b).await;
    assert_ne!(fresh, killed, "the closed connection was handed out again");
}

/// Tenants an open cluster makes at run time reach its servers over TLS with the cluster's CA.
#[tokio::test]
async fn a_tenant_made_by_an_open_cluster_uses_the_clusters_tls() {
    let (p, [r1, r2]) = (common::primary_port(), common::replica_ports());
    let text = format!(
        "[[clusters]]\nname = \"main\"\nprimary = \"127.0.0.1:{p}\"\n\
         replicas = [\"127.0.0.1:{r1}\", \"127.0.0.1:{r2}\"]\n\
         schemas = [\"wf_{{tenant}}\"]\ntenants = \"*\"\nbackend_tls = {{ ca = \"{}\" }}\n\n\
         [[users]]\nname = \"acme_app\"\npassword = \"acme_pw\"\ntenant = \"acme\"\n",
        cluster_ca().display()
    );
    let cfg = config::parse(&text, &|_| None).unwrap();
    let state = RuntimeState::new(cfg)
        .with_tls()
        .expect("the CA file loads");
    let proxy = common::start_state(state).await;
    let mut c = common::connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    let (_, version): (u16, String) = c.query_first(SSL_VERSION).await.unwrap().unwrap();
    assert!(version.starts_with("TLSv1."), "session: {version:?}");
    c.disconnect().await.unwrap();
}

/// A certificate from the right CA for another name is refused: the cluster's certificate
/// names 127.0.0.1 and localhost (scripts/cluster.sh), and acme reaches the same primary as
/// `[::ffff:127.0.0.1]`, the IPv4-mapped IPv6 address of 127.0.0.1 (the kernel carries the
/// connection to the server's 127.0.0.1 socket; no name service or /etc/hosts entry is
/// involved). The name checked is then that IPv6 address, which the certificate does not
/// carry: an IP SAN matches only its own address family (RFC 5280 4.2.1.6).
#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let (p, [r1, r2]) = (common::primary_port(), common::replica_ports());
    let acme_servers = format!(
        "primary = \"127.0.0.1:{p}\"\nreplicas = [\"127.0.0.1:{r1}\", \"127.0.0.1:{r2}\"]\n"
    );
    let elsewhere = format!(
        "primary = \"[::ffff:127.0.0.1]:{p}\"\n\
         replicas = [\"[::ffff:127.0.0.1]:{r1}\", \"[::ffff:127.0.0.1]:{r2}\"]\n"
    );
    let text = common::config_text(&format!(
        "backend_tls = {{ ca = \"{}\" }}",
        cluster_ca().display()
    ));
    // acme is the first tenant; globex keeps 127.0.0.1 and no backend_tls.
    let (at, globex) = (text.find(&acme_servers), text.find("name = \"globex\""));
    assert!(
        at.is_some() && at < globex,
        "acme's servers not found in:\n{text}"
    );
    let text = text.replacen(&acme_servers, &elsewhere, 1);
    let cfg = config::parse(&text, &|_| None).unwrap();
    let state = RuntimeState::new(cfg)
        .with_tls()
        .expect("the CA file loads");
    let proxy = common::start_state(state).await;
    let port = proxy.addr.port();

    // The login reaches the primary (to enter wf_acme), so it is the login that fails.
    let opts = common::opts(port, "acme_app", Some("wf_acme"));
    let err = tokio::time::timeout(common::SHORT, mysql_async::Conn::new(opts))
        .await
        .expect("the login is answered within 5 s")
        .expect_err("a certificate for another name must be refused");
    let mysql_async::Error::Server(e) = err else {
        panic!("expected an ERR packet, got {err:?}");
    };
    assert_eq!(e.code, 2026, "{}", e.message);
    assert!(e.message.contains("tenant acme"), "{}", e.message);
    // The certificate was read and refused for its name: TCP, the greeting and the TLS
    // handshake to the server went through, so it is the name alone that failed.
    assert!(
        e.message
            .contains("certificate not valid for name \"::ffff:127.0.0.1\""),
        "{}",
        e.message
    );

    // The failure is the tenant's alone: globex (no backend_tls) on the same proxy works.
    let mut g = common::connect(port, "globex_app", Some("wf_globex")).await;
    let one: i64 = g.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
    g.disconnect().await.unwrap();
}

/// A server whose certificate the monitor refuses is not asked again at every check: each
/// login refused in its TLS handshake counts against Switchyard's host on the server
/// (`max_connect_errors`, 100 by default, then "Host is blocked" for every user and tenant
/// there until FLUSH HOSTS), so such logins come 1 s, 2 s, 4 s... apart, up to a minute,
/// and the server stays down meanwhile.
#[tokio::test]
async fn logins_refused_in_the_tls_handshake_are_retried_ever_less_often() {
    let closed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let p = common::primary_port();
    let relay = common::recording_relay(p, std::sync::Arc::clone(&closed)).await;
    let text = format!(
        "[monitor]\nuser = \"sy_monitor\"\npassword = \"sy_monitor\"\n\n[defaults]\nhealth_interval = \"100ms\"\n{}",
        common::config_text(&format!("backend_tls = {{ ca = \"{}\" }}", stranger_ca().display()))
    )
    .replacen(
        &format!("primary = \"127.0.0.1:{p}\""),
        &format!("primary = \"127.0.0.1:{relay}\""),
        1,
    );
    let cfg = config::parse(&text, &|_| None).unwrap();
    let settings = cfg.monitor.clone().unwrap();
    let at = format!("127.0.0.1:{relay}");
    let handle =
        switchyard::monitor::Monitor::start_with(&settings, switchyard::monitor::targets(&cfg));
    let logins = || closed.lock().unwrap().len();
    common::until("the first login refused", common::SHORT, || async {
        (logins() >= 1).then_some(())
    })
    .await;
    let first = std::time::Instant::now();
    // 25 intervals: a login at each was 25 refusals; backing off, at 1 s and 3 s.
    let mut seen = Vec::new();
    while first.elapsed() < std::time::Duration::from_millis(2500) {
        let s = handle.status(&at).expect("a status");
        assert_eq!(
            s.state,
            switchyard::monitor::BackendState::Down,
            "{:?}",
            s.last_error
        );
        seen.push(logins());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    handle.stop();
    let n = logins();
    assert!(
        n <= 3,
        "{n} logins in 2.5 s after the first refusal: {seen:?}"
    );
    assert!(n >= 2, "tried again after a second: {seen:?}");
}
