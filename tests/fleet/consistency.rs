//! Read-your-writes across instances: with replicas delayed, a write through one instance
//! and the next request's read through the other (HAProxy alternates them) never reads
//! stale data with `consistency = "global"` pushed to the fleet; with `"eventual"` it does
//! (so the test can fail). Runs on the chaos cluster (`chaos` test group).

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Conn;

use super::common::{self, chaos_ports, chaos_root, with_restore};
use super::harness::{acme_body, until, Fleet, FleetSpec, HaProxy, Instance};

const PAIRS: usize = 12;
const DELAY_S: u32 = 2;

async fn push(f: &Fleet, consistency: &str) {
    let text = acme_body(
        chaos_ports(),
        &format!("consistency = \"{consistency}\"\nmax_replica_lag = \"1h\""),
    );
    let file = f.dir.0.join(format!("{consistency}.toml"));
    std::fs::write(&file, text).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["config", "push"])
        .arg(&file)
        .args(["--fleet", &f.spec.fleet, "--etcd", &f.etcd.endpoint()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Write-close-read pairs through the load balancer: how many reads missed their write.
async fn stale_reads(port: u16, label: &str) -> usize {
    let mut stale = 0;
    for i in 0..PAIRS {
        let v = format!("{label}-{i}-{}", std::process::id());
        let mut w = Conn::new(common::opts(port, "acme_app", Some("wf_acme")))
            .await
            .unwrap();
        w.query_drop(format!("INSERT INTO wf_acme.fleet_ryw (v) VALUES ('{v}')"))
            .await
            .unwrap();
        w.disconnect().await.unwrap();
        let mut r = Conn::new(common::opts(port, "acme_app", Some("wf_acme")))
            .await
            .unwrap();
        let seen: Option<String> = r
            .query_first(format!("SELECT v FROM wf_acme.fleet_ryw WHERE v = '{v}'"))
            .await
            .unwrap();
        r.disconnect().await.unwrap();
        stale += usize::from(seen.is_none());
    }
    println!("{label}: {stale} stale reads in {PAIRS} write-close-read pairs through HAProxy");
    stale
}

/// Client logins an instance accepted (from /metrics).
async fn logins(inst: &Instance) -> f64 {
    let body = inst.http_get("/metrics").await.unwrap_or_default();
    body.lines()
        .filter(|l| l.starts_with("switchyard_client_logins_total{") && l.contains("accepted"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_read_your_writes_across_two_instances_behind_haproxy() {
    let _guard = common::CHAOS_LOCK.lock().await;
    let [p, r1, r2] = chaos_ports();
    for r in [r1, r2] {
        common::restore_replication(r).await;
    }
    let mut root = chaos_root(p).await;
    root.query_drop("CREATE TABLE IF NOT EXISTS wf_acme.fleet_ryw (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(60))")
        .await
        .unwrap();
    let body = async move {
        let spec = FleetSpec {
            fleet: format!("ryw-{}", std::process::id()),
            lease_ttl: "3s",
            ack_timeout: "1s",
            body: acme_body(chaos_ports(), "max_replica_lag = \"1h\""),
        };
        let f = Fleet::start("ryw", &["a", "b"], spec).await;
        let both: Vec<_> = f.instances.iter().collect();
        let lb = HaProxy::start(&f.dir.0, &both).await;
        for r in [r1, r2] {
            common::set_master_delay(r, DELAY_S).await;
        }
        // Delayed replicas may still be reconnecting: wait until a read lands on one.
        until(
            "a replica serves reads",
            Duration::from_secs(10),
            || async move {
                let mut c = Conn::new(common::opts(lb.port, "acme_app", Some("wf_acme")))
                    .await
                    .ok()?;
                let port = common::served_by(&mut c).await;
                (port == r1 || port == r2).then_some(())
            },
        )
        .await;

        push(&f, "eventual").await;
        assert!(
            stale_reads(lb.port, "eventual, two instances").await > 0,
            "replicas not delayed?"
        );
        push(&f, "global").await;
        let before = [logins(&f.instances[0]).await, logins(&f.instances[1]).await];
        assert_eq!(stale_reads(lb.port, "global, two instances").await, 0);
        for (i, inst) in f.instances.iter().enumerate() {
            let served = logins(inst).await - before[i];
            assert!(
                served >= (PAIRS / 2) as f64,
                "{} served {served} of the connections",
                inst.name
            );
        }
    };
    with_restore(body, async {
        for r in [r1, r2] {
            common::set_master_delay(r, 0).await;
        }
    })
    .await;
}
