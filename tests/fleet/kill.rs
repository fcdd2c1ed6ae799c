//! KILL of a session another instance serves: the instance that has it acts on it, so a
//! driver's cancel (KILL QUERY over a new connection: Connector/J's query timeout, the mysql
//! CLI's Ctrl-C) works whichever instance the balancer gives that connection; an id no
//! instance has, or another user's session, still gets the server's 1094.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::common;
use super::harness::{acme_body, local_ports, until, Fleet, FleetSpec};

fn code(r: &Result<(), mysql_async::Error>) -> Option<u16> {
    match r {
        Err(mysql_async::Error::Server(e)) => Some(e.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_reaches_the_instance_that_has_the_session() {
    let body = format!(
        "{}\n[[users]]\nname = \"ops\"\npassword = \"ops_pw\"\ntenants = \"*\"\n",
        acme_body(local_ports(), "")
    );
    let spec = FleetSpec {
        fleet: format!("kill-{}", std::process::id()),
        lease_ttl: "3s",
        ack_timeout: "1s",
        body,
    };
    let f = Fleet::start("kill", &["a", "b", "c"], spec).await;
    let mut sleeper = f.get("b").app().await;
    let id = sleeper.id();
    let tag = format!("fleet-kill-{}", std::process::id());
    let sql = format!("SELECT SLEEP(30) /* {tag} */");
    let run = tokio::spawn(async move {
        let r = sleeper.query_drop(sql).await;
        (sleeper, r, Instant::now())
    });
    until("the sleep runs", Duration::from_secs(10), || async {
        (common::running(&tag).await > 0).then_some(())
    })
    .await;

    // Another user's KILL, through a: 1094, as the server answers it, and nothing stops.
    let mut ops = common::connect(f.get("a").app, "ops", Some("wf_acme")).await;
    let r = ops.query_drop(format!("KILL QUERY {id}")).await;
    assert_eq!(code(&r), Some(1094), "another user's KILL: {r:?}");
    // An id no instance has: 1094 once every instance has said so.
    let mut killer = f.get("a").app().await;
    let asked = Instant::now();
    let r = killer
        .query_drop(format!("KILL QUERY {}", 1u64 << 31))
        .await;
    assert_eq!(code(&r), Some(1094), "a KILL of nobody's id: {r:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        !run.is_finished(),
        "the sleep was interrupted by a KILL that was not its"
    );

    // The user's own KILL QUERY through a interrupts the statement running through b.
    let at = Instant::now();
    killer.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (mut sleeper, r, done) = run.await.unwrap();
    let took = done.saturating_duration_since(at);
    assert!(
        took < Duration::from_secs(5),
        "interrupted after {took:?}: {r:?}"
    );
    let one: Option<i64> = sleeper.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the interrupted session goes on");

    // KILL CONNECTION through c ends the session on b.
    let mut other = f.get("c").app().await;
    other.query_drop(format!("KILL {id}")).await.unwrap();
    let ended = sleeper.query_drop("SELECT 1").await;
    assert!(ended.is_err(), "the killed session still answers");
}
