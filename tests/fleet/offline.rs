//! SET BACKEND OFFLINE on one instance takes the replica out of every instance's reads
//! within a second; ONLINE puts it back everywhere.

use std::time::{Duration, Instant};

use super::common;
use super::harness::{acme_body, local_ports, rows, until, Fleet, FleetSpec, Instance};

/// The server a read on a new connection through `inst` lands on.
async fn read_lands_on(inst: &Instance) -> u16 {
    let mut c = inst.app().await;
    let port = common::served_by(&mut c).await;
    let _ = c.disconnect().await;
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_on_one_instance_stops_reads_everywhere_within_a_second() {
    let spec = FleetSpec {
        fleet: format!("offline-{}", std::process::id()),
        lease_ttl: "3s",
        ack_timeout: "1s",
        body: acme_body(local_ports(), "consistency = \"eventual\""),
    };
    let f = Fleet::start("offline", &["a", "b", "c"], spec).await;
    let [_, r1, _] = local_ports();
    // Reads do reach r1 through every instance, so its absence below means something.
    for inst in &f.instances {
        until(
            "a read lands on r1",
            Duration::from_secs(10),
            || async move { (read_lands_on(inst).await == r1).then_some(()) },
        )
        .await;
    }

    let addr = format!("127.0.0.1:{r1}");
    let mut admin_a = f.get("a").admin().await;
    let sent = Instant::now();
    rows(&mut admin_a, &format!("SET BACKEND '{addr}' OFFLINE"))
        .await
        .unwrap();
    let answered = sent.elapsed();
    // Each instance reports what it applied in its record: when all three list it.
    let (fr, addr_ref) = (&f, addr.as_str());
    let everywhere = until(
        "every instance has r1 OFFLINE",
        Duration::from_secs(1),
        || async move {
            let recs = fr.records().await;
            let all = recs.len() == 3
                && recs.iter().all(|r| {
                    r["offline"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|v| v == addr_ref))
                });
            all.then(|| sent.elapsed())
        },
    )
    .await;
    println!("OFFLINE: answered in {answered:?}, applied by all three within {everywhere:?}");
    for inst in &f.instances {
        for _ in 0..15 {
            assert_ne!(
                read_lands_on(inst).await,
                r1,
                "{} read from an OFFLINE replica",
                inst.name
            );
        }
    }

    rows(
        &mut f.get("b").admin().await,
        &format!("SET BACKEND '{addr}' ONLINE"),
    )
    .await
    .unwrap();
    for inst in &f.instances {
        until(
            "reads reach r1 again",
            Duration::from_secs(10),
            || async move { (read_lands_on(inst).await == r1).then_some(()) },
        )
        .await;
    }
}
