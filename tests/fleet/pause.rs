//! PAUSE on one instance holds the tenant on all of them: between PAUSE's OK and RESUME no
//! statement of the tenant completes through any instance; an instance that cannot ack
//! makes PAUSE fail, naming it, and the pause is withdrawn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::common;
use super::harness::{acme_body, field, local_ports, rows, until, Fleet, FleetSpec, Instance};

/// Completion times of one writer's statements, and its errors.
#[derive(Default)]
struct Writer {
    done: Vec<Instant>,
    errors: Vec<String>,
}

fn spawn_writer(
    inst: &Instance,
    table: &str,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Writer>>, tokio::task::JoinHandle<()>) {
    let log = Arc::new(Mutex::new(Writer::default()));
    let (port, via, table) = (inst.app, inst.name.clone(), table.to_string());
    let out = Arc::clone(&log);
    let task = tokio::spawn(async move {
        let mut c = common::connect(port, "acme_app", Some("wf_acme")).await;
        while !stop.load(Ordering::Relaxed) {
            let r = c
                .query_drop(format!("INSERT INTO {table} (via) VALUES ('{via}')"))
                .await;
            let mut w = out.lock().unwrap();
            match r {
                Ok(()) => w.done.push(Instant::now()),
                Err(e) => w.errors.push(e.to_string()),
            }
        }
    });
    (log, task)
}

async fn server_now(root: &mut mysql_async::Conn) -> String {
    root.query_first("SELECT NOW(6)").await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_on_one_instance_holds_the_tenant_on_all() {
    let spec = FleetSpec {
        fleet: format!("pause-{}", std::process::id()),
        lease_ttl: "3s",
        ack_timeout: "1s",
        body: acme_body(local_ports(), ""),
    };
    let f = Fleet::start("pause", &["a", "b", "c"], spec).await;
    let table = format!("wf_acme.fleet_pause_{}", std::process::id());
    let mut root = common::root().await;
    root.query_drop(format!(
        "CREATE OR REPLACE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, via VARCHAR(8), \
         at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
    ))
    .await
    .unwrap();

    // Two writers through each of b and c, none through a (where PAUSE is sent).
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for name in ["b", "b", "c", "c"] {
        writers.push(spawn_writer(f.get(name), &table, Arc::clone(&stop)));
    }
    let logs: Vec<_> = writers.iter().map(|(l, _)| Arc::clone(l)).collect();
    let progressed = |since: Option<Instant>, n: usize| {
        logs.iter().all(|l| {
            let w = l.lock().unwrap();
            w.done
                .iter()
                .filter(|t| since.is_none_or(|s| **t > s))
                .count()
                >= n
        })
    };
    until(
        "every writer wrote",
        Duration::from_secs(10),
        || async move { progressed(None, 5).then_some(()) },
    )
    .await;

    let mut admin_a = f.get("a").admin().await;
    let asked = Instant::now();
    let acks = rows(&mut admin_a, "PAUSE TENANT acme TIMEOUT 5")
        .await
        .unwrap();
    let paused_at = Instant::now();
    let server_paused = server_now(&mut root).await;
    let took = paused_at - asked;
    let names: Vec<&str> = acks.iter().map(|r| field(r, "instance")).collect();
    assert_eq!(
        names,
        ["a", "b", "c"],
        "one ack per live instance: {acks:?}"
    );
    println!(
        "fleet PAUSE under load: answered in {took:?}; per-instance waits: {:?}",
        acks.iter()
            .map(|r| (field(r, "instance"), field(r, "waited_seconds")))
            .collect::<Vec<_>>()
    );

    // Every instance says it holds the pause.
    let fleet_rows = rows(&mut f.get("b").admin().await, "SHOW FLEET")
        .await
        .unwrap();
    for r in &fleet_rows {
        assert_eq!(field(r, "pauses_held"), "acme", "{r:?}");
    }
    // The window under test: a second in which nothing of acme may complete anywhere.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server_resume = server_now(&mut root).await;
    let resume_sent = Instant::now();
    rows(&mut admin_a, "RESUME TENANT acme").await.unwrap();

    for (i, l) in logs.iter().enumerate() {
        let w = l.lock().unwrap();
        let inside = w
            .done
            .iter()
            .filter(|t| **t > paused_at && **t < resume_sent)
            .count();
        assert_eq!(
            inside, 0,
            "writer {i}: {inside} statements completed while paused"
        );
    }
    let committed: i64 = root
        .query_first(format!(
            "SELECT COUNT(*) FROM {table} WHERE at > '{server_paused}' AND at < '{server_resume}'"
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(committed, 0, "rows written between PAUSE's OK and RESUME");
    until(
        "every writer goes on after RESUME",
        Duration::from_secs(10),
        || async move { progressed(Some(resume_sent), 3).then_some(()) },
    )
    .await;

    // An instance that cannot ack (frozen) fails the PAUSE, named; the pause is withdrawn.
    f.get("c").signal("STOP");
    let asked = Instant::now();
    let err = rows(&mut admin_a, "PAUSE TENANT acme TIMEOUT 0")
        .await
        .unwrap_err();
    let waited = asked.elapsed();
    f.get("c").signal("CONT");
    let message = err.to_string();
    assert!(
        message.contains("instance(s) c did not acknowledge") && message.contains("withdrawn"),
        "{message}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "PAUSE failed after {waited:?}"
    );
    let resumed = Instant::now();
    until(
        "writes go on after the failed PAUSE",
        Duration::from_secs(10),
        || async move { progressed(Some(resumed), 3).then_some(()) },
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    for (log, task) in writers {
        task.await.unwrap();
        let w = log.lock().unwrap();
        assert!(w.errors.is_empty(), "writer errors: {:?}", w.errors);
    }
    root.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// A PAUSE cut off by its instance stopping takes its pause back: left in etcd, it would
/// hold the tenant on every instance (and on any started later) until someone thought of
/// RESUME TENANT.
#[tokio::test(flavor = "multi_thread")]
async fn a_pause_cut_off_by_shutdown_is_withdrawn() {
    let spec = FleetSpec {
        fleet: format!("pausecut-{}", std::process::id()),
        lease_ttl: "3s",
        ack_timeout: "1s",
        body: acme_body(local_ports(), ""),
    };
    let pause_key = format!("/switchyard/{}/state/pause/acme", spec.fleet);
    let mut f = Fleet::start("pausecut", &["a", "b"], spec).await;
    // A transaction on b: b acks only once PAUSE's TIMEOUT is over, so the PAUSE waits.
    let mut open = common::connect(f.get("b").app, "acme_app", Some("wf_acme")).await;
    open.query_drop("BEGIN").await.unwrap();
    open.query_drop("SELECT 1 FROM DUAL FOR UPDATE")
        .await
        .unwrap();
    let mut admin_a = f.get("a").admin().await;
    let pausing =
        tokio::spawn(async move { rows(&mut admin_a, "PAUSE TENANT acme TIMEOUT 60").await });
    let etcd = f.etcd.client().await;
    until("the pause is written", Duration::from_secs(10), || {
        let (etcd, key) = (etcd.clone(), pause_key.clone());
        async move { stored(etcd, &key).await.then_some(()) }
    })
    .await;
    assert!(
        !pausing.is_finished(),
        "PAUSE answered: {:?}",
        pausing.await
    );

    f.get("a").signal("TERM");
    f.instances[0].wait().await;
    assert!(
        !stored(etcd, &pause_key).await,
        "the pause of a PAUSE cut off by its instance's shutdown is still in etcd"
    );
    // And b no longer holds the tenant: a statement outside the transaction runs.
    let mut other = common::connect(f.get("b").app, "acme_app", Some("wf_acme")).await;
    let ran = tokio::time::timeout(
        Duration::from_secs(5),
        other.query_first::<i64, _>("SELECT 7"),
    )
    .await;
    assert!(
        matches!(ran, Ok(Ok(Some(7)))),
        "b still holds acme: {ran:?}"
    );
    open.query_drop("ROLLBACK").await.unwrap();
}

async fn stored(mut etcd: etcd_client::Client, key: &str) -> bool {
    etcd.get(key, None).await.unwrap().count() > 0
}
