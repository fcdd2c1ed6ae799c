//! `switchyard config push`: a document that is not valid is not stored; one the instances
//! cannot run is refused by each and reported, and all keep serving the config they had; a
//! good one runs on all three within two seconds.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::common;
use super::harness::{acme_body, field, local_ports, rows, until, Fleet, FleetSpec};

async fn push(f: &Fleet, name: &str, text: &str) -> std::process::Output {
    push_to(f, &f.spec.fleet, "5", name, text).await
}

async fn push_to(
    f: &Fleet,
    fleet: &str,
    wait: &str,
    name: &str,
    text: &str,
) -> std::process::Output {
    let file = f.dir.0.join(name);
    std::fs::write(&file, text).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["config", "push"])
        .arg(&file)
        .args([
            "--fleet",
            fleet,
            "--etcd",
            &f.etcd.endpoint(),
            "--wait",
            wait,
        ])
        .output()
        .await
        .unwrap()
}

/// The version `push` says it stored.
fn stored_version(stdout: &str) -> i64 {
    let after = stdout.split("stored as version ").nth(1).expect(stdout);
    after
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .expect(stdout)
}

/// Every instance runs `version` (by its record) within two seconds.
async fn all_run(f: &Fleet, version: i64) {
    until(
        &format!("all three on version {version}"),
        Duration::from_secs(2),
        || async move {
            let recs = f.records().await;
            (recs.len() == 3 && recs.iter().all(|r| r["config_version"] == version)).then_some(())
        },
    )
    .await
}

fn globex(body: &str) -> String {
    let p = common::primary_port();
    format!(
        "{body}\n[[tenants]]\nname = \"globex\"\nschemas = [\"wf_globex\"]\nprimary = \"127.0.0.1:{p}\"\n\n\
         [[users]]\nname = \"globex_app\"\npassword = \"globex_pw\"\ntenant = \"globex\"\n"
    )
}

async fn globex_logs_in(port: u16) -> bool {
    mysql_async::Conn::new(common::opts(port, "globex_app", Some("wf_globex")))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_documents_are_checked_before_every_instance_runs_them() {
    let body = acme_body(local_ports(), "");
    let spec = FleetSpec {
        fleet: format!("config-{}", std::process::id()),
        lease_ttl: "3s",
        ack_timeout: "1s",
        body: body.clone(),
    };
    let f = Fleet::start("config", &["a", "b", "c"], spec).await;

    // Not a valid config: not stored.
    let out = push(
        &f,
        "bad.toml",
        &format!("{body}\n[[tenants]]\nname = \"x\"\n"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("invalid, not pushed"),
        "{stderr}"
    );
    let key = format!("/switchyard/{}/state/config", f.spec.fleet);
    assert!(f
        .etcd
        .client()
        .await
        .get(key.as_str(), None)
        .await
        .unwrap()
        .kvs()
        .is_empty());

    // Valid where it is pushed, not where it runs (a variable the instances lack).
    let unrunnable = format!(
        "{}\n[[users]]\nname = \"ops\"\npassword = \"${{SY_FLEET_TEST_NEVER_SET}}\"\ntenants = \"*\"\n",
        globex(&body)
    );
    let out = push(&f, "unrunnable.toml", &unrunnable).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    for name in ["a", "b", "c"] {
        assert!(stdout.contains(&format!("refused by {name}: ")), "{stdout}");
    }
    let shown = rows(&mut f.get("a").admin().await, "SHOW FLEET")
        .await
        .unwrap();
    for r in &shown {
        assert_eq!(field(r, "config_version"), "0", "{r:?}");
        assert!(
            field(r, "config_error").contains("SY_FLEET_TEST_NEVER_SET"),
            "{r:?}"
        );
    }
    for inst in &f.instances {
        let mut c = inst.app().await;
        c.query_drop("SELECT 1").await.unwrap();
        assert!(
            !globex_logs_in(inst.app).await,
            "{} runs the refused document",
            inst.name
        );
    }

    // Runnable but for a file it names that no instance can load: refused by each, saying
    // which file (it was checked by building a whole state beside the running one; the
    // reload itself now loads the files and refuses).
    let unloadable = globex(&body).replacen(
        "name = \"globex\"\n",
        "name = \"globex\"\nbackend_tls = { ca = \"/nonexistent/sy-fleet-ca.pem\" }\n",
        1,
    );
    let out = push(&f, "unloadable.toml", &unloadable).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    for name in ["a", "b", "c"] {
        assert!(stdout.contains(&format!("refused by {name}: ")), "{stdout}");
    }
    assert!(stdout.contains("/nonexistent/sy-fleet-ca.pem"), "{stdout}");
    for inst in &f.instances {
        assert!(!globex_logs_in(inst.app).await, "{} runs it", inst.name);
    }

    // A good one: on all three within two seconds.
    let started = Instant::now();
    let out = push(&f, "good.toml", &globex(&body)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("applied by a, b, c"), "{stdout}");
    let version = stored_version(&stdout);
    all_run(&f, version).await;
    println!(
        "config push: {} (all three on the new version {:?} after the command started)",
        stdout.trim(),
        started.elapsed()
    );
    for inst in &f.instances {
        assert!(
            globex_logs_in(inst.app).await,
            "{} did not apply version {version}",
            inst.name
        );
        assert_eq!(
            inst.metric("switchyard_fleet_config_version").await,
            Some(version as f64)
        );
    }
    let shown = rows(&mut f.get("c").admin().await, "SHOW FLEET")
        .await
        .unwrap();
    assert!(
        shown.iter().all(|r| field(r, "config_error").is_empty()),
        "{shown:?}"
    );
    // The local file no longer says what runs: RELOAD points at config push.
    let err = rows(&mut f.get("b").admin().await, "RELOAD")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("switchyard config push"), "{err}");
    // Nothing was tried, and what runs is current: no failed reload to alert on.
    let b = f.get("b");
    assert_eq!(
        b.metric("switchyard_config_last_reload_successful").await,
        Some(1.0)
    );

    // The key deleted and pushed anew, twice: etcd numbers the key's versions from 1
    // again each time, and the second document was taken for the first (skipped by every
    // instance, while push said it was applied by all).
    let mut etcd = f.etcd.client().await;
    let key = format!("/switchyard/{}/state/config", f.spec.fleet);
    let p = common::primary_port();
    for tenant in ["initech_a", "initech_b"] {
        etcd.delete(key.as_str(), None).await.unwrap();
        let text = format!(
            "{}\n[[tenants]]\nname = \"{tenant}\"\nschemas = [\"wf_{tenant}\"]\nprimary = \"127.0.0.1:{p}\"\n",
            globex(&body)
        );
        let out = push(&f, &format!("{tenant}.toml"), &text).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        all_run(&f, stored_version(&stdout)).await;
        for inst in &f.instances {
            let shown = rows(&mut inst.admin().await, "SHOW TENANTS").await.unwrap();
            assert!(
                shown.iter().any(|r| field(r, "tenant") == tenant),
                "{} does not run the push adding {tenant}: {shown:?}",
                inst.name
            );
        }
    }

    // A fleet name mistyped: stored where no instance looks, and push says so.
    let out = push_to(&f, "prd", "nan", "typo.toml", &globex(&body)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("no live instance in fleet prd"), "{stdout}");
}

/// Two instances given one `fleet.instance` shared a record and acks: a PAUSE was satisfied
/// by either one's ack, and one's leaving deleted the other's record. The second is now
/// refused registration (and says why), and its leaving takes nothing of the first's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_with_the_same_name_is_not_registered() {
    let spec = FleetSpec {
        fleet: format!("dup-{}", std::process::id()),
        lease_ttl: "3s",
        ack_timeout: "1s",
        body: acme_body(local_ports(), ""),
    };
    let f = Fleet::start("dup", &["a"], spec).await;
    let first = f.records().await[0]["address"].clone();
    let dup_dir = f.dir.0.join("dup");
    let mut dup = super::harness::Instance::spawn(&dup_dir, "a", &f.spec, f.etcd.port);
    let log = until("the duplicate says why", Duration::from_secs(10), || {
        let log = dup.log();
        async move {
            log.contains("registered under another lease")
                .then_some(log)
        }
    })
    .await;
    assert!(log.contains("fleet: not registered"), "{log}");
    let recs = f.records().await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(
        recs[0]["address"], first,
        "the first's record stays the first's"
    );
    // It serves its clients all the same.
    let mut c = dup.app().await;
    c.query_drop("SELECT 1").await.unwrap();
    drop(c);
    // A clean stop of the duplicate leaves the first registered.
    dup.signal("TERM");
    dup.wait().await;
    let recs = f.records().await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["address"], first);
}

/// An instance restarted while etcd is away serves the document it ran, kept in
/// `fleet.document_cache` (it served its local file: with a document that moved a
/// primary, that instance's writes went to the old one until etcd came back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_etcd_is_away_serves_the_document_it_ran() {
    let body = acme_body(local_ports(), "");
    let spec = FleetSpec {
        fleet: format!("cache-{}", std::process::id()),
        lease_ttl: "2s",
        ack_timeout: "1s",
        body: body.clone(),
    };
    let mut f = Fleet::start("cache", &["a"], spec).await;
    let out = push(&f, "good.toml", &globex(&body)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    f.etcd.stop().await;
    let mut a = f.instances.remove(0);
    a.kill().await;
    let a = super::harness::Instance::spawn(&f.dir.0, "a", &f.spec, f.etcd.port);
    let logs = || a.log();
    until("a serves again", Duration::from_secs(10), || async {
        mysql_async::Conn::new(common::opts(a.app, "acme_app", Some("wf_acme")))
            .await
            .ok()
            .map(drop)
    })
    .await;
    assert!(
        globex_logs_in(a.app).await,
        "the pushed document is not what runs:\n{}",
        logs()
    );
    assert!(
        logs().contains("serving the config document cached"),
        "{}",
        logs()
    );
    f.instances.push(a);
}

/// The version a server at `port` greets with (the handshake's first packet).
async fn greeting_version(port: u16) -> String {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.unwrap();
    let mut p = vec![0; usize::from(head[0]) | usize::from(head[1]) << 8];
    s.read_exact(&mut p).await.unwrap();
    let end = p[1..].iter().position(|&b| b == 0).unwrap() + 1;
    String::from_utf8_lossy(&p[1..end]).into_owned()
}

/// An instance whose local file names no tenant (they come with the fleet's document)
/// greeted every client as the built-in profile (`5.5.5-10.11.0-MariaDB`) for its whole
/// life: the backends' greeting was read once at start, when there was none to ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_tenants_greets_as_its_backends_once_the_document_runs() {
    let admin = format!(
        "[admin]\nuser = \"admin\"\npassword = \"{}\"\n",
        super::harness::ADMIN_PASSWORD
    );
    let spec = FleetSpec {
        fleet: format!("greet-{}", std::process::id()),
        lease_ttl: "2s",
        ack_timeout: "1s",
        body: admin,
    };
    let f = Fleet::start("greet", &["a"], spec).await;
    let out = push(&f, "acme.toml", &acme_body(local_ports(), "")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let direct = greeting_version(common::primary_port()).await;
    let a = f.get("a");
    until(
        "the instance greets as its backends",
        Duration::from_secs(5),
        || async { (greeting_version(a.app).await == direct).then_some(()) },
    )
    .await;
}
