//! One instance killed under load through HAProxy: clients that reconnect go on, and every
//! write that was acknowledged is in the database.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;

use super::common;
use super::harness::{acme_body, local_ports, until, Fleet, FleetSpec, HaProxy};

const WRITERS: u32 = 8;

#[derive(Default)]
struct Tally {
    /// (writer, seq) of every INSERT that got its OK.
    acked: Vec<(u32, u32)>,
    /// Acks per writer after the kill.
    after_kill: Vec<u32>,
    errors: usize,
    reconnects: usize,
}

async fn writer(
    port: u16,
    table: String,
    w: u32,
    tally: Arc<Mutex<Tally>>,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let mut conn: Option<Conn> = None;
    let mut seq = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            match Conn::new(common::opts(port, "acme_app", Some("wf_acme"))).await {
                Ok(c) => {
                    conn = Some(c);
                    tally.lock().unwrap().reconnects += 1;
                }
                // Pacing between attempts while HAProxy finds a live instance.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            continue;
        };
        seq += 1;
        let r = c
            .query_drop(format!("INSERT INTO {table} VALUES ({w}, {seq})"))
            .await;
        let mut t = tally.lock().unwrap();
        match r {
            Ok(()) => {
                t.acked.push((w, seq));
                if killed.load(Ordering::Relaxed) {
                    t.after_kill[w as usize] += 1;
                }
            }
            Err(_) => {
                t.errors += 1;
                conn = None;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_load_loses_no_acknowledged_write() {
    let spec = FleetSpec {
        fleet: format!("load-{}", std::process::id()),
        lease_ttl: "3s",
        ack_timeout: "1s",
        body: acme_body(local_ports(), ""),
    };
    let mut f = Fleet::start("load", &["a", "b", "c"], spec).await;
    let all: Vec<_> = f.instances.iter().collect();
    let lb = HaProxy::start(&f.dir.0, &all).await;
    let table = format!("wf_acme.fleet_load_{}", std::process::id());
    let mut root = common::root().await;
    root.query_drop(format!(
        "CREATE OR REPLACE TABLE {table} (w INT, seq INT, PRIMARY KEY (w, seq))"
    ))
    .await
    .unwrap();

    let tally = Arc::new(Mutex::new(Tally {
        after_kill: vec![0; WRITERS as usize],
        ..Tally::default()
    }));
    let (killed, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let args = (Arc::clone(&tally), Arc::clone(&killed), Arc::clone(&stop));
            tokio::spawn(writer(lb.port, table.clone(), w, args.0, args.1, args.2))
        })
        .collect();
    let t = Arc::clone(&tally);
    until("load is running", Duration::from_secs(20), || {
        let t = Arc::clone(&t);
        async move { (t.lock().unwrap().acked.len() >= 300).then_some(()) }
    })
    .await;
    let victim = f.instances.iter_mut().find(|i| i.name == "b").unwrap();
    killed.store(true, Ordering::Relaxed);
    let kill_at = Instant::now();
    victim.kill().await;
    until(
        "every writer goes on after the kill",
        Duration::from_secs(20),
        || {
            let t = Arc::clone(&t);
            async move {
                t.lock()
                    .unwrap()
                    .after_kill
                    .iter()
                    .all(|n| *n >= 20)
                    .then_some(())
            }
        },
    )
    .await;
    let recovered = kill_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let stored: Vec<(u32, u32)> = root
        .query(format!("SELECT w, seq FROM {table}"))
        .await
        .unwrap();
    let stored: HashSet<(u32, u32)> = stored.into_iter().collect();
    let (acked, errors, reconnects) = {
        let t = tally.lock().unwrap();
        (t.acked.clone(), t.errors, t.reconnects)
    };
    let lost: Vec<_> = acked.iter().filter(|a| !stored.contains(a)).collect();
    println!(
        "kill under load: {} acknowledged writes, {} lost, {errors} errors, {reconnects} connections; every writer 20 acks past the kill within {recovered:?}",
        acked.len(),
        lost.len(),
    );
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    // HAProxy spread the writers: those on the killed instance failed and reconnected.
    assert!(
        errors > 0 && reconnects > WRITERS as usize,
        "no writer was on the killed instance ({errors} errors, {reconnects} connections)"
    );
    root.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
