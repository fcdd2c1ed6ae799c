//! The backend monitor against the chaos cluster (scripts/test.sh; ports 3317-3319): roles,
//! GTID positions, a stopped SQL thread, replication lag, mark_down, a closed port, and
//! what checks cost a server (a slow check waited for on its connection, a refused query
//! asked once).
//! These tests stop replication and add delays, so they never touch the shared cluster, and
//! they run one at a time (.config/nextest.toml, `CHAOS_LOCK`). Measured detection and
//! recovery times are printed.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use switchyard::config::{self, Config};
use switchyard::monitor::{BackendState, BackendStatus, GtidPos, Monitor, MonitorHandle};

use common::*;

/// Short, so the tests are quick and the timing bounds are tight.
const INTERVAL: Duration = Duration::from_millis(200);
/// Slack for scheduling and the check's own round trips on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(150);
const POLL: Duration = Duration::from_millis(10);

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// One tenant on the chaos cluster, checked every `INTERVAL`.
fn chaos_config(rise: u32, max_lag: &str) -> Config {
    let [p, r1, r2] = chaos_ports();
    let text = format!(
        r#"
[monitor]
user = "sy_monitor"
password = "sy_monitor"
connect_timeout = "1s"
rise = {rise}
fall = 1

[[tenants]]
name = "chaos"
schemas = ["chaos_t"]
primary = "127.0.0.1:{p}"
replicas = ["127.0.0.1:{r1}", "127.0.0.1:{r2}"]
health_interval = "{}ms"
max_replica_lag = "{max_lag}"

[[users]]
name = "chaos_app"
password = "pw"
tenant = "chaos"
"#,
        INTERVAL.as_millis()
    );
    config::parse(&text, &|_| None).unwrap_or_else(|e| panic!("chaos config invalid:\n{e}"))
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("switchyard=info")
        .try_init();
}

/// Polls until `pred` holds or `limit` passes; how long it took, `None` on timeout.
async fn wait_for(limit: Duration, mut pred: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if pred() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    pred().then(|| start.elapsed())
}

/// `switchyard_replica_lag_seconds` of the replica on `port`, as /metrics renders it.
fn replica_lag_metric(shared: &switchyard::state::SharedState, port: u16) -> f64 {
    use switchyard::admin::metrics;
    let text = metrics::encode(&metrics::registry(std::sync::Arc::clone(shared)));
    let addr = format!("addr=\"{}\"", addr(port));
    let line = text
        .lines()
        .find(|l| l.starts_with("switchyard_replica_lag_seconds{") && l.contains(&addr))
        .unwrap_or_else(|| panic!("no lag sample for {addr}:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn status(m: &MonitorHandle, port: u16) -> BackendStatus {
    match m.status(&addr(port)) {
        Some(s) => (*s).clone(),
        None => panic!("no status for {port} yet"),
    }
}

/// Waits until all three servers have been checked and both replicas are eligible.
async fn all_healthy(m: &MonitorHandle, max_lag: Duration) -> Duration {
    let [p, r1, r2] = chaos_ports();
    let took = wait_for(Duration::from_secs(10), || {
        m.status(&addr(p)).is_some_and(|s| s.is_up())
            && [r1, r2]
                .iter()
                .all(|r| m.status(&addr(*r)).is_some() && m.replica_eligible(&addr(*r), max_lag))
    })
    .await;
    took.unwrap_or_else(|| panic!("chaos cluster not healthy: {:#?}", m.snapshot()))
}

/// Each chaos test: one at a time, replicas put right before and after (even on panic).
async fn chaos_test<F: Future<Output = ()> + Send + 'static>(body: F) {
    init_logs();
    let _serial = CHAOS_LOCK.lock().await;
    let restore = || async {
        for port in chaos_replica_ports() {
            restore_replication(port).await;
        }
    };
    restore().await;
    with_restore(body, restore()).await;
}

/// Writes one row on the chaos primary; returns the primary's binlog position after it.
async fn write_on_primary() -> GtidPos {
    let mut c = chaos_root(chaos_primary_port()).await;
    c.query_drop(
        "CREATE DATABASE IF NOT EXISTS chaos_t; \
         CREATE TABLE IF NOT EXISTS chaos_t.ticks \
         (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)); \
         INSERT INTO chaos_t.ticks () VALUES ()",
    )
    .await
    .expect("write on the chaos primary");
    let pos: Option<String> = c
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid_binlog_pos");
    let _ = c.disconnect().await;
    GtidPos::parse(&pos.unwrap_or_default()).expect("primary gtid")
}

/// Writes on the chaos primary every `pace`, as an application would, until stopped.
struct Writer {
    on: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(pace: Duration) -> Writer {
        let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let w = std::sync::Arc::clone(&on);
        let task = tokio::spawn(async move {
            while w.load(std::sync::atomic::Ordering::Relaxed) {
                write_on_primary().await;
                tokio::time::sleep(pace).await;
            }
        });
        Writer { on, task }
    }

    async fn stop(self) {
        self.on.store(false, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap();
    }
}

fn gtid_of(s: &BackendStatus) -> GtidPos {
    GtidPos::parse(s.observed.gtid.as_deref().unwrap_or("")).expect("monitor gtid")
}

#[tokio::test]
async fn sees_roles_read_only_and_gtid_positions() {
    chaos_test(async {
        let m = Monitor::start(&chaos_config(2, "5s"));
        let took = all_healthy(&m, Duration::from_secs(5)).await;
        println!("monitor: all three servers up {took:?} after start");
        let [p, r1, r2] = chaos_ports();

        let primary = status(&m, p);
        assert_eq!(primary.state, BackendState::Up);
        assert!(primary.reachable && !primary.observed.read_only && !primary.observed.is_replica);
        assert_eq!(primary.observed.server_id, Some(1));
        assert!(primary.observed.version.contains("MariaDB"));
        assert!(!m.replica_eligible(&addr(p), Duration::from_secs(5)));
        for (port, id) in [(r1, 2), (r2, 3)] {
            let r = status(&m, port);
            assert_eq!(r.state, BackendState::Up, "{r:#?}");
            assert!(
                r.observed.read_only
                    && r.observed.is_replica
                    && r.observed.io_running
                    && r.observed.sql_running
            );
            assert_eq!(r.observed.server_id, Some(id));
            assert!(r.observed.lag.is_some(), "{r:#?}");
            assert!(r.observed.gtid_io.is_some(), "{r:#?}");
        }

        let written = write_on_primary().await;
        let start = Instant::now();
        let caught_up = wait_for(Duration::from_secs(10), || {
            [p, r1, r2]
                .iter()
                .all(|port| gtid_of(&status(&m, *port)).covers(&written))
        })
        .await;
        assert!(
            caught_up.is_some(),
            "positions never covered {written}: {:#?}",
            m.snapshot()
        );
        println!(
            "monitor: replica GTID positions covered the primary's write ({written}) after {:?}",
            start.elapsed()
        );
        let primary = status(&m, p);
        assert!(gtid_of(&primary).covers(&written));
        assert!(
            GtidPos::parse(primary.observed.gtid_binlog.as_deref().unwrap_or(""))
                .expect("binlog pos")
                .covers(&written)
        );
    })
    .await;
}

#[tokio::test]
async fn a_stopped_sql_thread_is_ineligible_until_rise_good_checks() {
    chaos_test(async {
        const RISE: u32 = 3;
        let max_lag = Duration::from_secs(5);
        let m = Monitor::start(&chaos_config(RISE, "5s"));
        all_healthy(&m, max_lag).await;
        let [r1, r2] = chaos_replica_ports();

        stop_sql_thread(r1).await;
        let detected = wait_for(Duration::from_secs(5), || {
            !m.replica_eligible(&addr(r1), max_lag)
        })
        .await
        .unwrap_or_else(|| panic!("still eligible: {:#?}", status(&m, r1)));
        println!("monitor: stopped SQL thread detected after {detected:?} (interval {INTERVAL:?})");
        assert!(
            detected <= 2 * INTERVAL + SLACK,
            "took {detected:?}, more than 2 intervals"
        );
        assert_eq!(status(&m, r1).state, BackendState::Stopped);
        assert!(!status(&m, r1).observed.sql_running);
        assert!(m.replica_eligible(&addr(r2), max_lag), "the other replica");

        start_sql_thread(r1).await;
        let start = Instant::now();
        let mut held_back = 0u32; // polls that saw it replicating again but not yet eligible
        let recovered = wait_for(Duration::from_secs(10), || {
            let s = status(&m, r1);
            let eligible = m.replica_eligible(&addr(r1), max_lag);
            if s.observed.sql_running && !eligible {
                held_back += 1;
            }
            eligible
        })
        .await
        .unwrap_or_else(|| panic!("never eligible again: {:#?}", status(&m, r1)));
        let s = status(&m, r1);
        println!(
            "monitor: eligible again {:?} after START SLAVE SQL_THREAD (rise {RISE}, ok_streak {})",
            start.elapsed(),
            s.ok_streak
        );
        assert!(s.ok_streak >= RISE, "{s:#?}");
        assert!(held_back > 0, "hysteresis not observed");
        assert!(
            recovered >= (RISE - 1) * INTERVAL - SLACK,
            "back after {recovered:?}: faster than {RISE} checks allow"
        );
    })
    .await;
}

#[tokio::test]
async fn replication_lag_over_the_limit_is_ineligible() {
    chaos_test(async {
        let max_lag = Duration::from_secs(1);
        let m = Monitor::start(&chaos_config(2, "1s"));
        all_healthy(&m, max_lag).await;
        let [r1, r2] = chaos_replica_ports();

        set_master_delay(r1, 3).await;
        // Restarting replication takes it out for a moment; start from eligible again.
        wait_for(Duration::from_secs(10), || m.replica_eligible(&addr(r1), max_lag))
            .await
            .unwrap_or_else(|| panic!("not eligible after setting the delay: {:#?}", status(&m, r1)));

        write_on_primary().await;
        let detected = wait_for(Duration::from_secs(10), || {
            !m.replica_eligible(&addr(r1), max_lag)
        })
        .await
        .unwrap_or_else(|| panic!("lag never detected: {:#?}", status(&m, r1)));
        let s = status(&m, r1);
        println!(
            "monitor: lag over {max_lag:?} detected {detected:?} after the write (GTID lag {:?}, Seconds_Behind_Master {:?}, state {})",
            s.observed.gtid_lag, s.observed.lag, s.state
        );
        assert_eq!(s.state, BackendState::Lagging, "{s:#?}");
        assert!(
            s.observed.effective_lag().is_some_and(|l| l > max_lag),
            "{s:#?}"
        );
        assert!(m.replica_eligible(&addr(r2), max_lag), "the other replica");

        // /metrics gives the lag as measured, fraction and all (it was rounded to seconds):
        // what the monitor says just before and just after the scrape brackets it.
        let mut rt = switchyard::state::RuntimeState::new(chaos_config(2, "1s"));
        rt.monitor = Some(m.clone());
        let shared = rt.shared();
        let lag = || status(&m, r1).observed.effective_lag().unwrap().as_secs_f64();
        let before = lag();
        let shown = replica_lag_metric(&shared, r1);
        let after = lag();
        assert!(
            before.min(after) - 1e-6 <= shown && shown <= before.max(after) + 1e-6,
            "/metrics {shown} s, the monitor {before} s then {after} s"
        );

        set_master_delay(r1, 0).await;
        let start = Instant::now();
        wait_for(Duration::from_secs(15), || m.replica_eligible(&addr(r1), max_lag))
            .await
            .unwrap_or_else(|| panic!("never eligible again: {:#?}", status(&m, r1)));
        println!(
            "monitor: eligible again {:?} after MASTER_DELAY=0 (lag {:?})",
            start.elapsed(),
            status(&m, r1).observed.effective_lag()
        );
    })
    .await;
}

/// A monitor that starts (at launch, or anew on a reload) while a replica already lags
/// has no past positions to measure it on: measured from the first position it saw, the
/// replica looked as fresh as the monitor was young and took reads at once. Its lag is
/// unknown on the timeline then, and `Seconds_Behind_Master` judges it.
#[tokio::test]
async fn a_monitor_started_beside_a_lagging_replica_does_not_call_it_fresh() {
    chaos_test(async {
        let max_lag = Duration::from_secs(1);
        let [r1, r2] = chaos_replica_ports();
        set_master_delay(r1, 30).await;
        write_on_primary().await;
        // The write r1 lacks is older than the limit before the monitor starts.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = Instant::now();
        let m = Monitor::start(&chaos_config(2, "1s"));
        // Past `rise` checks, and well within the second a young timeline called it fresh.
        let checked = started + 3 * INTERVAL;
        wait_for(Duration::from_secs(10), || {
            m.status(&addr(r1)).is_some_and(|s| s.last_check >= checked)
                && m.replica_eligible(&addr(r2), max_lag)
        })
        .await
        .unwrap_or_else(|| panic!("replicas never checked: {:#?}", m.snapshot()));
        let s = status(&m, r1);
        println!(
            "monitor started beside a replica 2 s behind: state {} (GTID lag {:?}, Seconds_Behind_Master {:?})",
            s.state, s.observed.gtid_lag, s.observed.lag
        );
        assert!(!m.replica_eligible(&addr(r1), max_lag), "{s:#?}");
        assert_eq!(s.state, BackendState::Lagging, "{s:#?}");
    })
    .await;
}

#[tokio::test]
async fn mark_down_is_immediate_and_rise_checks_bring_it_back() {
    chaos_test(async {
        let max_lag = Duration::from_secs(5);
        let m = Monitor::start(&chaos_config(2, "5s"));
        all_healthy(&m, max_lag).await;
        let r2 = chaos_replica_ports()[1];

        m.mark_down(&addr(r2));
        assert!(!m.replica_eligible(&addr(r2), max_lag));
        assert_eq!(status(&m, r2).state, BackendState::Down);
        let start = Instant::now();
        let back = wait_for(Duration::from_secs(5), || {
            m.replica_eligible(&addr(r2), max_lag)
        })
        .await
        .unwrap_or_else(|| panic!("never eligible again: {:#?}", status(&m, r2)));
        println!("monitor: eligible again {back:?} after mark_down (rise 2)");
        assert!(back >= INTERVAL - SLACK, "back after {back:?}: too soon");
        assert!(
            start.elapsed() <= 3 * INTERVAL + SLACK,
            "{:?}",
            start.elapsed()
        );
    })
    .await;
}

#[tokio::test]
async fn a_closed_port_is_down_without_hanging() {
    init_logs();
    let text = r#"
[monitor]
user = "sy_monitor"
password = "sy_monitor"
connect_timeout = "1s"

[[tenants]]
name = "gone"
schemas = ["gone"]
primary = "127.0.0.1:2"
health_interval = "200ms"

[[users]]
name = "u"
password = "pw"
tenant = "gone"
"#;
    let cfg = config::parse(text, &|_| None).expect("config");
    let m = Monitor::start(&cfg);
    let took = wait_for(Duration::from_secs(3), || m.status("127.0.0.1:2").is_some())
        .await
        .expect("a status within 3s");
    let s = status_at(&m, "127.0.0.1:2");
    println!("monitor: closed port reported {} after {took:?}", s.state);
    assert_eq!(s.state, BackendState::Down);
    assert!(!s.reachable);
    assert!(!m.is_up("127.0.0.1:2"));
    assert!(!m.replica_eligible("127.0.0.1:2", Duration::from_secs(60)));
    assert!(s.last_error.is_some());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    m.stop();
}

fn status_at(m: &MonitorHandle, addr: &str) -> BackendStatus {
    m.status(addr).map(|s| (*s).clone()).expect("status")
}

/// The chaos tenant without `[monitor]`: the monitor logs in as the application's user,
/// which may not read replication status.
fn unprivileged_config(max_lag: &str) -> Config {
    let keys = format!(
        "health_interval = \"{}ms\"\nmax_replica_lag = \"{max_lag}\"",
        INTERVAL.as_millis()
    );
    chaos_acme_config("", &keys)
}

#[tokio::test]
async fn without_privileges_lag_is_measured_on_the_gtid_timeline() {
    chaos_test(async {
        let max_lag = Duration::from_secs(1);
        let m = Monitor::start(&unprivileged_config("1s"));
        all_healthy(&m, max_lag).await;
        let [r1, r2] = chaos_replica_ports();
        assert!(
            status(&m, r1).observed.replication_hidden,
            "acme_app may not read replication status"
        );
        // Writes keep coming, as from an application, every 100 ms.
        let pace = Duration::from_millis(100);
        let writer = Writer::start(pace);

        stop_sql_thread(r1).await;
        let detected = wait_for(Duration::from_secs(5), || {
            !m.replica_eligible(&addr(r1), max_lag)
        })
        .await
        .unwrap_or_else(|| panic!("still eligible: {:#?}", status(&m, r1)));
        println!(
            "no privileges: stopped SQL thread out of rotation {detected:?} after STOP \
             (limit {max_lag:?}, interval {INTERVAL:?}, writes every {pace:?})"
        );
        // It falls behind the limit `max_lag` after the first write it misses (within one
        // write interval of the stop); then at most two checks.
        assert!(
            detected <= max_lag + pace + 2 * INTERVAL + SLACK,
            "took {detected:?}"
        );
        assert!(
            detected >= max_lag - INTERVAL,
            "out before it was behind: {detected:?}"
        );
        assert_eq!(status(&m, r1).state, BackendState::Lagging);
        assert!(m.replica_eligible(&addr(r2), max_lag), "the other replica");

        start_sql_thread(r1).await;
        let recovered = wait_for(Duration::from_secs(5), || {
            m.replica_eligible(&addr(r1), max_lag)
        })
        .await
        .unwrap_or_else(|| panic!("never eligible again: {:#?}", status(&m, r1)));
        println!("no privileges: eligible again {recovered:?} after START SLAVE SQL_THREAD");
        writer.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_reload_that_restarts_the_monitor_keeps_a_lagging_replica_out() {
    chaos_test(async {
        let limit = Duration::from_secs(1);
        let state = switchyard::state::RuntimeState::new(unprivileged_config("1s")).with_monitor();
        let old = state.monitor.clone().expect("monitor");
        all_healthy(&old, limit).await;
        let r1 = chaos_replica_ports()[0];
        let writer = Writer::start(Duration::from_millis(100));
        stop_sql_thread(r1).await;
        wait_for(Duration::from_secs(5), || {
            !old.replica_eligible(&addr(r1), limit)
        })
        .await
        .unwrap_or_else(|| panic!("still eligible: {:#?}", status(&old, r1)));

        // A new lag limit changes what the monitor watches: the reload starts another one.
        // (Tighter, so the replica, just past the old limit, is past the new one too.)
        let limit = Duration::from_millis(900);
        let next = state.successor(unprivileged_config("900ms")).unwrap();
        old.stop();
        let m = next.monitor.clone().expect("monitor after the reload");
        let reloaded = Instant::now();
        let mut eligible_at = None;
        // Long enough for `rise` checks, and for a timeline started by the reload to see
        // the replica fall behind its own first point by the limit.
        let checked = reloaded + limit + 3 * INTERVAL;
        wait_for(Duration::from_secs(10), || {
            if eligible_at.is_none() && m.replica_eligible(&addr(r1), limit) {
                eligible_at = Some(reloaded.elapsed());
            }
            m.status(&addr(r1)).is_some_and(|s| s.last_check >= checked)
        })
        .await
        .unwrap_or_else(|| panic!("the new monitor never checked: {:#?}", m.snapshot()));
        let s = status(&m, r1);
        println!(
            "reload: replica with a stopped SQL thread after a monitor restart: state {}, \
             GTID lag {:?}, eligible at {eligible_at:?}",
            s.state, s.observed.gtid_lag
        );
        assert_eq!(
            eligible_at, None,
            "back in rotation after the reload: {s:#?}"
        );
        assert_eq!(s.state, BackendState::Lagging, "{s:#?}");

        // What was carried over does not stick: the new monitor's checks bring it back.
        start_sql_thread(r1).await;
        wait_for(Duration::from_secs(5), || {
            m.replica_eligible(&addr(r1), limit)
        })
        .await
        .unwrap_or_else(|| panic!("never eligible again: {:#?}", status(&m, r1)));
        writer.stop().await;
    })
    .await;
}

/// A tenant whose one replica is reached through `gate`, checked every `INTERVAL`; the
/// monitor logs in as `[monitor]`'s user when `privileged`, else as the application's.
fn gated_config(gate: u16, privileged: bool) -> Config {
    let [p, _, _] = chaos_ports();
    let monitor = if privileged {
        "[monitor]\nuser = \"sy_monitor\"\npassword = \"sy_monitor\"\nconnect_timeout = \"1s\"\n"
    } else {
        ""
    };
    let text = format!(
        "{monitor}\n[[tenants]]\nname = \"acme\"\n\
         schemas = [\"wf_acme\"]\nprimary = \"127.0.0.1:{p}\"\n\
         replicas = [\"127.0.0.1:{gate}\"]\nhealth_interval = \"{}ms\"\n\n\
         [[users]]\nname = \"acme_app\"\npassword = \"acme_pw\"\ntenant = \"acme\"\n",
        INTERVAL.as_millis()
    );
    config::parse(&text, &|_| None).unwrap_or_else(|e| panic!("config invalid:\n{e}"))
}

/// A check the server does not answer within its interval fails (the server is down for
/// routing), and the next checks wait for it on the same connection: dropped mid-query, the
/// connection was an aborted one on the server, and a new one every interval queued up
/// behind whatever held the first (a replica status blocked behind STOP SLAVE or a backup's
/// lock), server threads piling up toward `max_connections`.
#[tokio::test]
async fn a_check_past_its_interval_is_waited_for_on_its_connection() {
    chaos_test(async {
        let [_, r1, _] = chaos_ports();
        let gate = Gate::start(r1).await;
        let at = addr(gate.port);
        let m = Monitor::start(&gated_config(gate.port, true));
        let checked_up = || m.status(&at).is_some_and(|s| s.is_up());
        wait_for(Duration::from_secs(5), checked_up)
            .await
            .expect("the replica is checked through the gate");
        let connections = gate.accepted();
        gate.hold.send_replace(true);
        wait_for(Duration::from_secs(5), || !m.is_up(&at))
            .await
            .expect("a check held at the gate fails");
        // Ten intervals, and more than two connect timeouts: a connection made meanwhile
        // would show here.
        let new = wait_for(Duration::from_millis(2500), || {
            gate.accepted() > connections
        })
        .await;
        assert_eq!(
            new,
            None,
            "{} connections opened while a check was held",
            gate.accepted() - connections
        );
        gate.hold.send_replace(false);
        wait_for(Duration::from_secs(5), checked_up)
            .await
            .expect("up again once the held check is answered");
        assert_eq!(
            gate.accepted(),
            connections,
            "the same connection checks on"
        );
        m.stop();
    })
    .await;
}

/// A monitor user without the privilege to read replication status (no `[monitor]` user:
/// the application's) is refused it once per connection, not at every check: global
/// privileges hold for a connection's life, and each refusal is a count in the server's
/// `Access_denied_errors`, twice a second per server and instance.
#[tokio::test]
async fn a_refused_replica_status_is_not_asked_again_on_its_connection() {
    chaos_test(async {
        let [_, r1, _] = chaos_ports();
        let gate = Gate::start(r1).await;
        let m = Monitor::start(&gated_config(gate.port, false));
        wait_for(Duration::from_secs(5), || {
            gate.sent_count("gtid_current_pos") >= 6
        })
        .await
        .expect("six checks through the gate");
        let hidden = status_at(&m, &addr(gate.port)).observed.replication_hidden;
        assert!(hidden, "acme_app may not read replication status");
        assert_eq!(gate.accepted(), 1, "one connection");
        assert_eq!(gate.sent_count("SHOW ALL SLAVES STATUS"), 1);
        m.stop();
    })
    .await;
}
