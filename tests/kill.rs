//! KILL through Switchyard acts on Switchyard session ids: KILL QUERY interrupts the named
//! session's statement, KILL [CONNECTION] and COM_PROCESS_KILL end that session, only for
//! the same user; a backend's thread id, or another tenant's session, gets the server's own
//! "Unknown thread id" and is left alone. Each outcome is compared with the server's.

mod common;

use std::time::{Duration, Instant};

use common::raw::{
    execute_long_blob, execute_string, long_data, modern_caps, packets, prepared_id, RawClient,
};
use common::{connect, primary_port};
use mysql_async::prelude::*;
use mysql_async::Conn;
use switchyard::protocol::scan::Expect;

const QUICK: Duration = Duration::from_secs(1);

fn code_of(r: &Result<(), mysql_async::Error>) -> Option<u16> {
    match r {
        Ok(()) => None,
        Err(mysql_async::Error::Server(s)) => Some(s.code),
        Err(other) => panic!("not a server error: {other}"),
    }
}

fn server_err(e: mysql_async::Error) -> (u16, String) {
    match e {
        mysql_async::Error::Server(s) => (s.code, s.message),
        other => panic!("not a server error: {other}"),
    }
}

async fn proxy() -> common::Proxy {
    common::start(common::config("")).await
}

/// Runs `sql` on `c` in the background; yields what it returned and how long it took.
fn in_background(
    mut c: Conn,
    sql: String,
) -> tokio::task::JoinHandle<(Conn, Result<(), mysql_async::Error>, Instant)> {
    tokio::spawn(async move {
        let r = c.query_drop(sql).await;
        (c, r, Instant::now())
    })
}

/// Waits until a statement whose text holds `needle` runs on a server of the cluster.
async fn until_running(needle: &str) {
    common::until(needle, Duration::from_secs(10), || async {
        (common::running(needle).await > 0).then_some(())
    })
    .await
}

/// Waits until the proxy no longer has session `id` (its end is done in the background).
async fn until_ended(state: &switchyard::state::SharedState, id: u32) {
    common::until(
        &format!("session {id} ends"),
        Duration::from_secs(10),
        || async { state.load().shared.registry.get(id).is_none().then_some(()) },
    )
    .await
}

/// KILL QUERY of a sleeping connection from another one on `port`: the sleeper's error code
/// and how long after the KILL its answer came.
async fn kill_query_of_sleep(port: u16) -> (Option<u16>, Duration, Conn) {
    let sleeper = connect(port, "acme_app", Some("wf_acme")).await;
    let id = sleeper.id();
    // Tagged by port: another test may be sleeping too.
    let tag = format!("kill-query-{port}");
    let run = in_background(sleeper, format!("SELECT SLEEP(10) /* {tag} */"));
    until_running(&tag).await;
    let mut killer = connect(port, "acme_app", Some("wf_acme")).await;
    let at = Instant::now();
    killer.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (sleeper, r, done) = run.await.unwrap();
    (code_of(&r), done.saturating_duration_since(at), sleeper)
}

#[tokio::test]
async fn kill_query_interrupts_the_named_session_as_directly() {
    let p = proxy().await;
    let (direct, direct_took, _) = kill_query_of_sleep(primary_port()).await;
    let (proxied, took, mut sleeper) = kill_query_of_sleep(p.addr.port()).await;
    assert_eq!(proxied, direct, "the sleeper's answer, proxied vs direct");
    assert!(direct_took < QUICK, "direct took {direct_took:?}");
    assert!(took < QUICK, "interrupted after {took:?}");
    let one: Option<i64> = sleeper.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the interrupted session keeps working");
}

#[tokio::test]
async fn kill_query_of_own_session_and_kill_of_own_connection_as_directly() {
    let p = proxy().await;
    for port in [primary_port(), p.addr.port()] {
        let mut c = connect(port, "acme_app", Some("wf_acme")).await;
        let id = c.id();
        let e = c.query_drop(format!("KILL QUERY {id}")).await.unwrap_err();
        assert_eq!(server_err(e).0, 1317, "port {port}");
        let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
        let e = c.query_drop(format!("KILL {id}")).await.unwrap_err();
        assert_eq!(server_err(e), (1927, "Connection was killed".into()));
        assert!(c.query_drop("SELECT 1").await.is_err(), "port {port}");
    }
}

#[tokio::test]
async fn a_backend_thread_id_is_unknown_and_its_connection_lives() {
    let p = proxy().await;
    let mut direct = connect(primary_port(), "acme_app", Some("wf_acme")).await;
    let tid: u32 = direct
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    let mut c = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    assert_ne!(c.id(), tid, "a session id that happens to be the thread id");
    for sql in [format!("KILL {tid}"), format!("KILL QUERY {tid}")] {
        let e = c.query_drop(&sql).await.unwrap_err();
        assert_eq!(server_err(e), (1094, format!("Unknown thread id: {tid}")));
    }
    let one: Option<i64> = direct.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the direct connection is alive");
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn another_tenants_session_cannot_be_killed() {
    let p = proxy().await;
    let mut globex = connect(p.addr.port(), "globex_app", Some("wf_globex")).await;
    let gid = globex.id();
    let mut acme = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let run = in_background(globex, "SELECT SLEEP(2) /* another-tenant */".into());
    until_running("another-tenant").await;
    for sql in [format!("KILL QUERY {gid}"), format!("KILL {gid}")] {
        let e = acme.query_drop(&sql).await.unwrap_err();
        assert_eq!(server_err(e), (1094, format!("Unknown thread id: {gid}")));
    }
    let (g, r, _) = run.await.unwrap();
    globex = g;
    assert!(r.is_ok(), "globex's statement ran to its end: {r:?}");
    let one: Option<i64> = globex.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "globex's session lives");
}

#[tokio::test]
async fn kill_connection_ends_another_own_session() {
    let state = switchyard::state::RuntimeState::new(common::config("")).shared();
    let p = common::start_shared(state.clone()).await;
    let mut killer = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    // Idle.
    let mut idle = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    killer
        .query_drop(format!("KILL CONNECTION {}", idle.id()))
        .await
        .unwrap();
    until_ended(&state, idle.id()).await;
    assert!(
        idle.query_drop("SELECT 1").await.is_err(),
        "idle session ended"
    );
    // Running a statement: it ends at once, as directly (the connection is lost).
    let busy = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let id = busy.id();
    let run = in_background(busy, "SELECT SLEEP(9.25)".into());
    until_running("SLEEP(9.25)").await;
    let at = Instant::now();
    killer.query_drop(format!("KILL {id}")).await.unwrap();
    let (mut busy, r, done) = run.await.unwrap();
    assert!(r.is_err(), "the killed statement's connection is lost");
    assert!(done.saturating_duration_since(at) < QUICK);
    assert!(busy.query_drop("SELECT 1").await.is_err());
    // Its backend statement was stopped too, not left running (a killed thread may show
    // for a moment while it cleans up).
    let gone = || async { (common::running("SLEEP(9.25)").await == 0).then_some(()) };
    common::until(
        "the killed session's statement ends",
        Duration::from_secs(1),
        gone,
    )
    .await;
    let one: Option<i64> = killer.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

async fn raw(port: u16, user: &str, password: &str, db: &str) -> RawClient {
    RawClient::connect(port, user, password, Some(db), modern_caps())
        .await
        .0
}

/// COM_PROCESS_KILL's answer: `None` for OK, else the ERR's code and message.
async fn process_kill(c: &mut RawClient, id: u32) -> Option<(u16, String)> {
    let mut p = vec![0x0C];
    p.extend_from_slice(&id.to_le_bytes());
    let answer = c.command(&p, Expect::Single).await;
    let (_, payload) = packets(&answer).into_iter().next().unwrap();
    (payload[0] == 0xFF).then(|| {
        let code = u16::from_le_bytes([payload[1], payload[2]]);
        (code, String::from_utf8_lossy(&payload[9..]).into_owned())
    })
}

/// Instances behind one balancer: a `KILL QUERY` of one instance's session id that reaches
/// another (a driver's query timeout, sent over a new connection the balancer placed there)
/// names nobody there. Every instance counted its ids from 1, and the KILL interrupted
/// another client's statement.
#[tokio::test]
async fn a_kill_that_reaches_another_instance_interrupts_nothing_there() {
    let (one, two) = (proxy().await, proxy().await);
    let timed_out = connect(one.addr.port(), "acme_app", Some("wf_acme")).await;
    let sleeper = connect(two.addr.port(), "acme_app", Some("wf_acme")).await;
    let tag = format!("kill-elsewhere-{}", two.addr.port());
    let run = in_background(sleeper, format!("SELECT SLEEP(1) /* {tag} */"));
    until_running(&tag).await;
    let mut killer = connect(two.addr.port(), "acme_app", Some("wf_acme")).await;
    let e = killer
        .query_drop(format!("KILL QUERY {}", timed_out.id()))
        .await
        .expect_err("no such session there");
    assert_eq!(server_err(e).0, 1094);
    let (_, r, _) = run.await.unwrap();
    assert_eq!(
        code_of(&r),
        None,
        "the other instance's statement ran to its end"
    );
}

/// A KILL of the session's own connection ends it before the commands pipelined behind
/// it, as directly: an INSERT sent in the same write ran on the primary, the session's
/// command read before its kill was looked at.
#[tokio::test]
async fn commands_pipelined_behind_a_self_kill_do_not_run() {
    let p = proxy().await;
    let mut root = common::root().await;
    root.query_drop("CREATE OR REPLACE TABLE wf_acme.kill_pipelined (via VARCHAR(8))")
        .await
        .unwrap();
    for (port, via) in [(primary_port(), "direct"), (p.addr.port(), "proxy")] {
        let mut c = raw(port, "acme_app", "acme_pw", "wf_acme").await;
        let insert = format!("\x03INSERT INTO wf_acme.kill_pipelined VALUES ('{via}')");
        c.send_pipelined(&[b"\x03KILL CONNECTION_ID()", insert.as_bytes()])
            .await;
        let answer = c.next_answer(Expect::Single).await;
        let (_, err) = packets(&answer).remove(0);
        assert_eq!(err[0], 0xFF, "{via}: {err:?}");
        assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1927, "{via}");
        assert!(c.ends().await, "{via}: the connection ends");
    }
    let rows: Vec<String> = root
        .query("SELECT via FROM wf_acme.kill_pipelined")
        .await
        .unwrap();
    assert!(rows.is_empty(), "ran after the KILL: {rows:?}");
    root.query_drop("DROP TABLE wf_acme.kill_pipelined")
        .await
        .unwrap();
}

#[tokio::test]
async fn com_process_kill_acts_as_kill() {
    let state = switchyard::state::RuntimeState::new(common::config("")).shared();
    let p = common::start_shared(state.clone()).await;
    let port = p.addr.port();
    let mut direct = connect(primary_port(), "acme_app", Some("wf_acme")).await;
    let tid = direct.id();
    let mut k = raw(port, "acme_app", "acme_pw", "wf_acme").await;
    let mut d = raw(primary_port(), "acme_app", "acme_pw", "wf_acme").await;
    let unknown = |id: u32| Some((1094, format!("Unknown thread id: {id}")));
    assert_eq!(
        process_kill(&mut d, 4_000_000_000).await,
        unknown(4_000_000_000)
    );
    assert_eq!(
        process_kill(&mut k, 4_000_000_000).await,
        unknown(4_000_000_000)
    );
    assert_eq!(process_kill(&mut k, tid).await, unknown(tid));
    let one: Option<i64> = direct.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the direct connection is alive");
    let mut globex = connect(port, "globex_app", Some("wf_globex")).await;
    assert_eq!(
        process_kill(&mut k, globex.id()).await,
        unknown(globex.id())
    );
    globex.query_drop("SELECT 1").await.unwrap();
    let mut own = connect(port, "acme_app", Some("wf_acme")).await;
    assert_eq!(process_kill(&mut k, own.id()).await, None);
    until_ended(&state, own.id()).await;
    assert!(
        own.query_drop("SELECT 1").await.is_err(),
        "killed session ended"
    );
}

#[tokio::test]
async fn unsupported_kill_forms_are_refused() {
    let p = proxy().await;
    let mut c = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    let id = c.id();
    for (sql, names) in [
        ("KILL QUERY ID 5".to_owned(), "QUERY ID"),
        ("KILL USER acme_app".to_owned(), "KILL USER"),
        (format!("KILL {id} + 0"), "after"),
        (format!("SELECT 1; KILL {id}"), "inside"),
        ("KILL @x".to_owned(), "literal"),
        (format!("PREPARE s FROM 'KILL {id}'"), "inside"),
        (format!("EXECUTE IMMEDIATE 'KILL QUERY {id}'"), "inside"),
    ] {
        let (code, msg) = server_err(c.query_drop(&sql).await.unwrap_err());
        assert_eq!(code, 1235, "{sql}: {msg}");
        assert!(msg.contains(names), "{sql}: {msg}");
    }
    let e = c.prep(format!("KILL {id}")).await.unwrap_err();
    assert_eq!(server_err(e).0, 1235);
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the session was not killed");
}

/// The mariadb CLI's Ctrl-C during `SELECT SLEEP(10)`: what it printed, and how long the
/// query lasted after the signal. The CLI cancels by sending KILL QUERY <handshake id>
/// from a second connection.
async fn ctrl_c_over_sleep(port: u16) -> (String, Duration) {
    // Named by port, in an alias the CLI keeps (it strips comments): others sleep too.
    let tag = format!("ctrl_c_{port}");
    let cli = tokio::process::Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uacme_app",
            "-pacme_pw",
        ])
        .args(["wf_acme", "-e", &format!("SELECT SLEEP(10) AS {tag}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the mariadb client runs");
    // A Ctrl-C before the query runs just ends the client.
    until_running(&tag).await;
    let pid = cli.id().expect("running").to_string();
    let at = Instant::now();
    let signalled = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(signalled.success());
    let out = tokio::time::timeout(Duration::from_secs(5), cli.wait_with_output())
        .await
        .expect("the client ends after Ctrl-C")
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        at.elapsed(),
    )
}

#[tokio::test]
async fn ctrl_c_in_the_mariadb_cli_cancels_the_query_as_directly() {
    let p = proxy().await;
    let (direct, _) = ctrl_c_over_sleep(primary_port()).await;
    let (proxied, took) = ctrl_c_over_sleep(p.addr.port()).await;
    assert!(direct.contains("ERROR 1317"), "direct: {direct}");
    assert_eq!(proxied, direct);
    assert!(took < QUICK, "cancelled after {took:?}");
}

/// KILL QUERY of an idle connection on `port`, then that connection's next statement.
async fn kill_query_of_idle(port: u16) -> Result<Option<i64>, mysql_async::Error> {
    let mut idle = connect(port, "acme_app", Some("wf_acme")).await;
    let mut killer = connect(port, "acme_app", Some("wf_acme")).await;
    killer
        .query_drop(format!("KILL QUERY {}", idle.id()))
        .await
        .unwrap();
    idle.query_first("SELECT SLEEP(0.2)").await
}

#[tokio::test]
async fn kill_query_of_an_idle_session_as_directly() {
    let p = proxy().await;
    let direct = kill_query_of_idle(primary_port()).await;
    let proxied = kill_query_of_idle(p.addr.port()).await;
    assert_eq!(
        proxied.map_err(|e| server_err(e).0),
        direct.map_err(|e| server_err(e).0)
    );
}

/// KILL QUERY of a statement waiting for a connection (every one of `pool_max` busy) ends
/// the wait with ERR 1317, as the server ends a statement waiting on a lock: it answered OK
/// and left the statement waiting, to run once a connection came free (a driver's query
/// timeout, which cancels so, saw its cancelled write commit later) or fail with 1040.
#[tokio::test]
async fn kill_query_ends_a_statement_waiting_for_a_connection() {
    use switchyard::state::RuntimeState;
    let state = RuntimeState::new(common::config("pool_max = 1")).shared();
    let p = common::start_shared(state.clone()).await;
    let port = p.addr.port();
    // Logged in first: a login may need the connection that will be busy.
    let mut killer = connect(port, "acme_app", Some("wf_acme")).await;
    let waiter = connect(port, "acme_app", Some("wf_acme")).await;
    let id = waiter.id();
    let mut holder = connect(port, "acme_app", Some("wf_acme")).await;
    // Pinned to the primary's only connection by the named lock it holds.
    holder
        .query_drop("SELECT GET_LOCK('sy_kill_wait_holder', 0)")
        .await
        .unwrap();
    let run = in_background(waiter, "SELECT GET_LOCK('sy_kill_wait_waiter', 0)".into());
    let waiting = || async {
        let stats = state.load().shared.pools.stats();
        stats.iter().any(|g| g.waiting > 0).then_some(())
    };
    common::until("the statement waits", Duration::from_secs(5), waiting).await;
    let at = Instant::now();
    killer.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (mut waiter, r, done) = run.await.unwrap();
    let took = done.saturating_duration_since(at);
    assert_eq!(code_of(&r), Some(1317), "after {took:?}");
    assert!(took < QUICK, "interrupted after {took:?}");
    // It keeps working once a connection comes free; and the KILL is not left pending for
    // its next statement.
    holder
        .query_drop("SELECT RELEASE_LOCK('sy_kill_wait_holder')")
        .await
        .unwrap();
    drop(holder);
    let one: Option<i64> = waiter.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

/// A KILL that Switchyard answers itself leaves the diagnostics as the server's KILL does:
/// `SHOW WARNINGS` after it still shows the statement before it.
#[tokio::test]
async fn a_kill_clears_the_previous_statements_warnings_as_directly() {
    let p = proxy().await;
    let mut seen = Vec::new();
    for port in [primary_port(), p.addr.port()] {
        let mut c = connect(port, "acme_app", Some("wf_acme")).await;
        let other = connect(port, "acme_app", Some("wf_acme")).await;
        let _: Option<Option<i64>> = c.query_first("SELECT 1/0").await.unwrap();
        let before: Vec<(String, u16, String)> = c.query("SHOW WARNINGS").await.unwrap();
        assert_eq!(before.len(), 1, "port {port}: the division's warning");
        let _: Option<Option<i64>> = c.query_first("SELECT 1/0").await.unwrap();
        c.query_drop(format!("KILL QUERY {}", other.id()))
            .await
            .unwrap();
        let after: Vec<(String, u16, String)> = c.query("SHOW WARNINGS").await.unwrap();
        seen.push(after);
    }
    assert_eq!(seen[1], seen[0], "proxied vs direct");
    assert_eq!(seen[0].len(), 1, "{:?}", seen[0]);
}

/// A KILL QUERY that ends an execute after its long data went to the server but before
/// the execute did (Switchyard sends long data at execute): the server's statement kept
/// that data, and the next session to execute the same text on the pool's one connection
/// ran with it, its own value replaced. The primary is reached through a gate that holds
/// what Switchyard sends, so the KILL lands while the long data is on its way.
#[tokio::test]
async fn an_execute_killed_before_it_ran_leaves_its_long_data_to_nobody() {
    let gate = common::Gate::start(primary_port()).await;
    let text = common::config_text("pool_max = 1").replacen(
        &format!("primary = \"127.0.0.1:{}\"", primary_port()),
        &format!("primary = \"127.0.0.1:{}\"", gate.port),
        1,
    );
    let cfg = switchyard::config::parse(&text, &|_| None).unwrap();
    let p = common::start(cfg).await;
    let port = p.addr.port();
    let mut root = common::root().await;
    let table = format!("wf_acme.kill_long_{}", std::process::id());
    root.query_drop(format!(
        "CREATE OR REPLACE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v LONGBLOB)"
    ))
    .await
    .unwrap();
    let prepare = [
        &[0x16][..],
        format!("INSERT INTO {table} (v) VALUES (?)").as_bytes(),
    ]
    .concat();
    let login = || RawClient::connect(port, "acme_app", "acme_pw", Some("wf_acme"), modern_caps());
    let mut killer = connect(port, "acme_app", Some("wf_acme")).await;
    let (mut b, _) = login().await;
    let b_id = prepared_id(&b.command(&prepare, Expect::Prepare).await);
    let (mut a, _) = login().await;
    let id = prepared_id(&a.command(&prepare, Expect::Prepare).await);
    // More than the gate and both sockets' buffers hold: Switchyard is still sending it
    // when the KILL comes.
    let blob = vec![b'a'; 1_000_000];
    for _ in 0..32 {
        a.send(&long_data(id, &blob)).await;
    }
    // What Switchyard sends from now on waits at the gate: the execute's long data first.
    let before = gate.received();
    gate.hold.send_replace(true);
    a.send(&execute_long_blob(id)).await;
    common::until(
        "the long data reaches the gate",
        Duration::from_secs(10),
        || async { (gate.received() >= before + 1_000_000).then_some(()) },
    )
    .await;
    killer
        .query_drop(format!("KILL QUERY {}", a.connection_id))
        .await
        .unwrap();
    gate.hold.send_replace(false);
    let answer = a.next_answer(Expect::ResultSets).await;
    let answer = packets(&answer);
    assert_eq!(answer[0].1[0], 0xFF, "A's execute: {:?}", &answer[0].1[..3]);
    assert_eq!(&answer[0].1[1..3], &1317u16.to_le_bytes(), "interrupted");
    drop(a);
    // B's execute on the same text, its value inline.
    let ran = b
        .command(&execute_string(b_id, b"b"), Expect::ResultSets)
        .await;
    let ran = packets(&ran);
    assert_eq!(ran[0].1[0], 0, "B's execute: {:?}", ran[0].1);
    let last: Option<Vec<u8>> = root
        .query_first(format!("SELECT v FROM {table} ORDER BY id DESC LIMIT 1"))
        .await
        .unwrap();
    // Compared by length: A's blob printed would be megabytes of log.
    assert_eq!(last.as_ref().map(Vec::len), Some(1), "B's row's length");
    assert_eq!(last.as_deref(), Some(&b"b"[..]));
    root.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// `SELECT SLEEP(3)` on `c` in the background, tagged with `tag`: what it returned (0 when
/// it slept its full time, 1 or an error when interrupted) and the connection.
fn sleep_in_background(
    mut c: Conn,
    tag: String,
) -> tokio::task::JoinHandle<(Conn, Result<Option<i64>, mysql_async::Error>)> {
    tokio::spawn(async move {
        let r = c.query_first(format!("SELECT SLEEP(3) /* {tag} */")).await;
        (c, r)
    })
}

/// KILL acts only on sessions of the same configured user, not on another user's session
/// of the same tenant (security.md, KILL row; routing.md, "Session ids and KILL"): `ops`,
/// in tenant acme, gets ERR 1094 `Unknown thread id` for an `acme_app` session's id, and
/// that session's statement runs to its end. A check by tenant alone would let any user
/// of a tenant interrupt (or probe) the others' sessions; the server refuses it too.
#[tokio::test]
async fn another_users_session_of_the_same_tenant_cannot_be_killed() {
    let p = proxy().await;
    let port = p.addr.port();
    let victim = connect(port, "acme_app", Some("wf_acme")).await;
    let id = victim.id();
    let mut ops = connect(port, "ops", Some("wf_acme")).await;
    let db: String = ops.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db, "wf_acme", "ops is in tenant acme");

    let tag = format!("other-user-{port}");
    let run = sleep_in_background(victim, tag.clone());
    until_running(&tag).await;
    for sql in [format!("KILL QUERY {id}"), format!("KILL {id}")] {
        let e = ops.query_drop(&sql).await.expect_err(&sql);
        assert_eq!(
            server_err(e),
            (1094, format!("Unknown thread id: {id}")),
            "{sql}"
        );
    }
    let (mut victim, r) = run.await.unwrap();
    assert_eq!(
        r.expect("acme_app's statement is not interrupted"),
        Some(0),
        "SLEEP(3) ran its full time"
    );
    let one: Option<i64> = victim.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "acme_app's session lives");

    // Control: the same id, killed by its own user, is interrupted (the id was right).
    let tag = format!("same-user-{port}");
    let run = sleep_in_background(victim, tag.clone());
    until_running(&tag).await;
    let mut own = connect(port, "acme_app", Some("wf_acme")).await;
    own.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (_, r) = run.await.unwrap();
    assert_ne!(
        r.ok(),
        Some(Some(0)),
        "the same user's KILL QUERY interrupts it"
    );
}

/// The connection a KILL QUERY logs in with beside the target's is closed as a client done
/// with it closes one, with COM_QUIT: dropped, each KILL through Switchyard cost the server
/// an "Aborted connection" warning in its error log and a count in `Aborted_clients`.
#[tokio::test]
async fn a_kills_own_server_connection_ends_with_com_quit() {
    let (p, closed) = common::start_with_recorded_primary().await;
    let port = p.addr.port();
    let sleeper = connect(port, "acme_app", Some("wf_acme")).await;
    let id = sleeper.id();
    let tag = format!("kill-quits-{}", std::process::id());
    let run = in_background(
        sleeper,
        format!("/* route=primary */ SELECT SLEEP(10) /* {tag} */"),
    );
    until_running(&tag).await;
    let mut killer = connect(port, "acme_app", Some("wf_acme")).await;
    killer.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (_, r, _) = run.await.unwrap();
    assert_eq!(code_of(&r), Some(1317), "the sleep was interrupted");
    common::assert_closed_with_quit(&closed, b"KILL QUERY ", "the KILL's server connection").await;
}
