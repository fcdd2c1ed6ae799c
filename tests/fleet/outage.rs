//! Losing etcd: an instance cut off keeps serving, says so, refuses fleet-wide changes, is
//! shown lost by the others and catches up when the link is back, a pause it holds held
//! throughout; with etcd stopped all three keep serving and PAUSE is refused; etcd back, the
//! fleet converges.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::harness::{acme_body, field, local_ports, rows, until, Fleet, FleetSpec, Instance};

async fn serves(inst: &Instance) {
    let mut c = inst.app().await;
    c.query_drop("SELECT 1").await.unwrap();
    c.query_drop("INSERT INTO wf_acme.fleet_outage VALUES (NULL)")
        .await
        .unwrap();
    let _ = c.disconnect().await;
}

async fn connected(inst: &Instance, want: f64) -> Option<()> {
    (inst.metric("switchyard_fleet_etcd_connected").await == Some(want)).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_ride_out_losing_etcd() {
    let spec = FleetSpec {
        fleet: format!("outage-{}", std::process::id()),
        lease_ttl: "2s",
        ack_timeout: "1s",
        body: acme_body(local_ports(), ""),
    };
    let (mut f, relay) = Fleet::start_relayed("outage", &["a", "b", "c"], spec, Some("b")).await;
    let relay = relay.unwrap();
    let mut root = super::common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.fleet_outage (id INT AUTO_INCREMENT PRIMARY KEY)",
    )
    .await
    .unwrap();
    let [_, r1, _] = local_ports();
    let offline = format!("SET BACKEND '127.0.0.1:{r1}' OFFLINE");

    // b alone loses etcd.
    relay.cut();
    let cut = Instant::now();
    let b = f.get("b");
    until("b notices", Duration::from_secs(10), || connected(b, 0.0)).await;
    println!("one instance cut off: noticed after {:?}", cut.elapsed());
    let mut admin_b = b.admin().await;
    for command in ["PAUSE TENANT acme", offline.as_str()] {
        let e = rows(&mut admin_b, command).await.unwrap_err().to_string();
        assert!(
            e.contains("cannot reach etcd") && e.contains("not applied locally"),
            "{e}"
        );
    }
    serves(b).await;
    let own = rows(&mut admin_b, "SHOW FLEET").await.unwrap();
    assert!(field(&own[0], "etcd").contains("unreachable"), "{own:?}");
    let a = f.get("a");
    until("a shows b lost", Duration::from_secs(10), || async move {
        let shown = rows(&mut a.admin().await, "SHOW FLEET").await.ok()?;
        let lost =
            |r: &Vec<(String, String)>| field(r, "instance") == "b" && field(r, "state") == "lost";
        shown.iter().any(lost).then_some(())
    })
    .await;
    let mut admin_a = a.admin().await;
    // A change made meanwhile reaches b when it is back.
    rows(&mut admin_a, &offline).await.unwrap();
    relay.restore();
    let back = Instant::now();
    let fr = &f;
    let caught_up = until("b catches up", Duration::from_secs(10), || async move {
        let recs = fr.records().await;
        let b = recs.iter().find(|r| r["name"] == "b")?;
        let has = b["offline"]
            .as_array()?
            .iter()
            .any(|v| v.as_str() == Some(&format!("127.0.0.1:{r1}")));
        has.then(|| back.elapsed())
    })
    .await;
    println!("link back: b registered with the OFFLINE made meanwhile after {caught_up:?}");

    rows(&mut admin_a, &offline.replace("OFFLINE", "ONLINE"))
        .await
        .unwrap();

    // etcd itself stops.
    f.etcd.stop().await;
    let stopped = Instant::now();
    for inst in &f.instances {
        serves(inst).await;
    }
    let e = rows(&mut admin_a, "PAUSE TENANT acme")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("PAUSE TENANT refused") && e.contains("cannot reach etcd"),
        "{e}"
    );
    for inst in &f.instances {
        until("every instance notices", Duration::from_secs(10), || {
            connected(inst, 0.0)
        })
        .await;
        serves(inst).await;
    }
    println!(
        "etcd stopped: all three noticed within {:?}, all kept serving",
        stopped.elapsed()
    );
    let losses = f
        .get("c")
        .metric("switchyard_fleet_etcd_losses_total")
        .await;
    assert!(losses >= Some(1.0), "{losses:?}");

    f.etcd.restart().await;
    let restarted = Instant::now();
    for inst in &f.instances {
        until("every instance reconnects", Duration::from_secs(15), || {
            connected(inst, 1.0)
        })
        .await;
    }
    f.wait_live(3).await;
    println!(
        "etcd back: all three registered again after {:?}",
        restarted.elapsed()
    );
    // Each under a new lease, its name its own at once: the last round's lease is revoked,
    // not left to hold the name until it runs out (etcd restarted renews every lease).
    for inst in &f.instances {
        let log = inst.log();
        assert!(
            !log.contains("registered under another lease"),
            "{} found its own name taken:\n{log}",
            inst.name
        );
    }
    let asked = Instant::now();
    let acks = rows(&mut admin_a, "PAUSE TENANT acme TIMEOUT 1")
        .await
        .unwrap();
    println!("PAUSE without load answered in {:?}", asked.elapsed());
    assert_eq!(acks.len(), 3, "{acks:?}");
    rows(&mut admin_a, "RESUME TENANT acme").await.unwrap();
    for inst in &f.instances {
        serves(inst).await;
    }
}

/// `SHOW TENANTS LIKE 'acme'` on `inst`'s admin port: (paused, statements held now).
async fn acme_pause(inst: &Instance) -> (String, String) {
    let shown = rows(&mut inst.admin().await, "SHOW TENANTS LIKE 'acme'")
        .await
        .unwrap();
    let row = &shown[0];
    (
        field(row, "paused").to_string(),
        field(row, "held_statements").to_string(),
    )
}

/// `inst`'s own SHOW FLEET row: (its link to etcd, the pauses it holds).
async fn own_fleet_row(inst: &Instance) -> (String, String) {
    let shown = rows(&mut inst.admin().await, "SHOW FLEET").await.unwrap();
    let own = shown
        .iter()
        .find(|r| field(r, "instance") == inst.name)
        .expect("the instance's own row");
    (
        field(own, "etcd").to_string(),
        field(own, "pauses_held").to_string(),
    )
}

/// A tenant paused fleet-wide stays paused on an instance cut off from etcd, and across its
/// reconnect while etcd still holds the pause (operations.md, "When etcd is away": "pauses
/// held stay held"; product.md: an instance that loses etcd keeps serving with its last
/// state): a write sent through it before the cut and one sent during it complete only
/// after RESUME. A pause dropped with the link, or at the re-read of `state/` on the way
/// back, lets one instance's writes through in the middle of the maintenance it was for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_on_an_instance_cut_off_from_etcd_and_after_its_return() {
    let spec = FleetSpec {
        fleet: format!("outagepause-{}", std::process::id()),
        lease_ttl: "2s",
        ack_timeout: "1s",
        body: acme_body(local_ports(), ""),
    };
    let (f, relay) = Fleet::start_relayed("outagepause", &["a", "b"], spec, Some("b")).await;
    let relay = relay.unwrap();
    let table = format!("wf_acme.fleet_outage_pause_{}", std::process::id());
    let mut root = super::common::root().await;
    root.query_drop(format!(
        "CREATE OR REPLACE TABLE {table} (id INT PRIMARY KEY)"
    ))
    .await
    .unwrap();
    let b = f.get("b");
    // Logged in before the pause: only the writes wait.
    let (mut before_cut, mut during_cut) = (b.app().await, b.app().await);
    let mut admin_a = f.get("a").admin().await;
    let acks = rows(&mut admin_a, "PAUSE TENANT acme TIMEOUT 5")
        .await
        .unwrap();
    assert_eq!(acks.len(), 2, "a and b acked: {acks:?}");

    let insert = |id: i32| format!("INSERT INTO {table} VALUES ({id})");
    let (first, second) = (insert(1), insert(2));
    let write_1 = tokio::spawn(async move { before_cut.query_drop(first).await });
    until(
        "b holds the first write",
        Duration::from_secs(10),
        || async { (acme_pause(b).await == ("1".into(), "1".into())).then_some(()) },
    )
    .await;

    relay.cut();
    until("b notices the cut", Duration::from_secs(10), || {
        connected(b, 0.0)
    })
    .await;
    let (link, held) = own_fleet_row(b).await;
    assert!(link.contains("unreachable"), "{link}");
    assert_eq!(held, "acme", "b still holds the pause while cut off");
    let write_2 = tokio::spawn(async move { during_cut.query_drop(second).await });
    until("b holds both writes", Duration::from_secs(10), || async {
        (acme_pause(b).await == ("1".into(), "2".into())).then_some(())
    })
    .await;

    relay.restore();
    // Connected again only once `state/` was read and applied.
    until("b is back on etcd", Duration::from_secs(15), || {
        connected(b, 1.0)
    })
    .await;
    let losses = b.metric("switchyard_fleet_etcd_losses_total").await;
    assert_eq!(losses, Some(1.0), "b lost etcd once");
    assert_eq!(
        own_fleet_row(b).await,
        ("connected".into(), "acme".into()),
        "b back on etcd, the pause still held"
    );
    assert_eq!(
        acme_pause(b).await,
        ("1".into(), "2".into()),
        "both writes still held after the reconnect"
    );
    assert!(!write_1.is_finished() && !write_2.is_finished());
    let committed: Option<i64> = root
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap();
    assert_eq!(committed, Some(0), "rows written through b while paused");

    rows(&mut admin_a, "RESUME TENANT acme").await.unwrap();
    for (n, w) in [(1, write_1), (2, write_2)] {
        let done = tokio::time::timeout(Duration::from_secs(10), w).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "write {n} after RESUME: {done:?}"
        );
    }
    let committed: Option<i64> = root
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap();
    assert_eq!(committed, Some(2));
    root.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
