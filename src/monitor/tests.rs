//! Tests of the handle and target derivation that need no server.

use std::time::Duration;

use super::*;
use crate::config;

fn config_with_monitor() -> Config {
    let text = r#"
[monitor]
user = "mon"
password = "pw"
rise = 3
fall = 2

[defaults]
health_interval = "500ms"
max_replica_lag = "5s"

[[tenants]]
name = "a"
schemas = ["a"]
primary = "10.0.0.1:3306"
replicas = ["10.0.0.2:3306", "10.0.0.3:3306"]
max_replica_lag = "2s"

[[tenants]]
name = "b"
schemas = ["b"]
primary = "10.0.0.1:3306"
replicas = ["10.0.0.3:3306"]
health_interval = "100ms"

[[users]]
name = "u"
password = "pw"
tenants = "*"
"#;
    config::parse(text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// A replica two tenants read from is judged by the more lenient limit: by the stricter
/// one it was `lagging` for both, and the other tenant's reads went to its primary.
#[test]
fn one_target_per_address_at_the_fastest_interval_and_most_lenient_lag() {
    let cfg = config_with_monitor();
    let got: Vec<_> = targets(&cfg)
        .into_iter()
        .map(|t| (t.addr, t.interval, t.policy.replica, t.policy.max_lag))
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(
        got,
        [
            ("10.0.0.1:3306".into(), ms(100), false, Duration::MAX),
            (
                "10.0.0.2:3306".into(),
                ms(500),
                true,
                Duration::from_secs(2)
            ),
            (
                "10.0.0.3:3306".into(),
                ms(100),
                true,
                Duration::from_secs(5)
            ),
        ]
    );
    let t = &targets(&cfg)[0];
    assert_eq!((t.policy.rise, t.policy.fall), (3, 2));
    assert!(t.is_primary && t.primary.is_none());
    assert_eq!((t.login.user.as_str(), t.login.privileged), ("mon", true));
    let r = &targets(&cfg)[1];
    assert!(!r.is_primary);
    assert_eq!(r.primary.as_deref(), Some("10.0.0.1:3306"));
}

/// A server shared by a tenant without TLS and, after it, one with `backend_tls` was
/// checked in plaintext (the first tenant's way), the monitor's login crossing the network
/// unencrypted to a server the second tenant only reaches over TLS.
#[test]
fn a_server_any_tenant_reaches_over_tls_is_checked_over_tls() {
    let mut cfg = config_with_monitor();
    cfg.tenants[1].backend_tls_ca = Some("/etc/ca.pem".into());
    let ca = |addr: &str| {
        let all = targets(&cfg);
        let t = all.iter().find(|t| t.addr == addr).expect("a target");
        t.tls_ca.clone()
    };
    // Tenant b uses the primary and the third server, not the second.
    assert_eq!(ca("10.0.0.1:3306").as_deref(), Some("/etc/ca.pem"));
    assert_eq!(ca("10.0.0.3:3306").as_deref(), Some("/etc/ca.pem"));
    assert_eq!(ca("10.0.0.2:3306"), None);
}

#[test]
fn without_a_monitor_section_each_tenant_checks_with_its_own_login() {
    let mut cfg = config_with_monitor();
    cfg.monitor = None;
    let t = &targets(&cfg)[0];
    assert_eq!((t.login.user.as_str(), t.login.privileged), ("u", false));
    assert_eq!((t.policy.rise, t.policy.fall), (2, 1), "the defaults");
    // A tenant whose users only have password hashes, and no backend_user, has no login.
    let text = r#"
[[tenants]]
name = "h"
schemas = ["h"]
primary = "10.0.0.9:3306"

[[users]]
name = "hashed"
password_hash = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
tenant = "h"
"#;
    let cfg = config::parse(text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    assert!(targets(&cfg).is_empty());
    assert!(cfg.monitor_login(&cfg.tenants[0]).is_none());
}

/// A replica target checked every `interval` (5 s lag limit, rise 2, fall 1, plaintext).
fn replica_target(addr: &str, interval: Duration) -> Target {
    Target {
        addr: addr.into(),
        interval,
        policy: Policy {
            replica: true,
            max_lag: Duration::from_secs(5),
            rise: 2,
            fall: 1,
        },
        tls_ca: None,
        login: Login {
            user: "mon".into(),
            password: crate::config::Secret::new("pw"),
            privileged: true,
        },
        primary: None,
        is_primary: false,
    }
}

#[tokio::test]
async fn mark_down_takes_a_monitored_replica_out_at_once() {
    let settings = config_with_monitor().monitor.expect("monitor");
    // A long interval: the closed port is checked once, right at the start; what
    // matters here is the state mark_down leaves.
    let target = replica_target("127.0.0.1:2", Duration::from_secs(3600));
    let handle = Monitor::start_with(&settings, vec![target]);
    handle.mark_down("127.0.0.1:2");
    assert!(!handle.replica_eligible("127.0.0.1:2", Duration::from_secs(60)));
    let status = handle.status("127.0.0.1:2").expect("status");
    assert_eq!(status.state, BackendState::Down);
    assert_eq!(
        status.last_error.as_deref(),
        Some("refused a connection on the data path")
    );
    // Not monitored: ignored, stays eligible.
    handle.mark_down("127.0.0.1:9");
    assert!(handle.replica_eligible("127.0.0.1:9", Duration::ZERO));
    handle.stop();
}

#[tokio::test]
async fn a_bad_address_is_published_as_down() {
    let settings = config_with_monitor().monitor.expect("monitor");
    let target = replica_target("no-port", Duration::from_secs(1));
    let handle = Monitor::start_with(&settings, vec![target]);
    let status = handle.status("no-port").expect("status");
    assert_eq!(status.state, BackendState::Down);
    assert!(status.last_error.as_deref().unwrap().contains("host:port"));
}

#[test]
fn a_remembered_eligibility_follows_every_published_status() {
    let m = MonitorHandle::idle();
    let mut memo = EligibleMemo::default();
    let lag = Duration::from_secs(5);
    let (a, b) = ("10.0.0.2:3306", "10.0.0.3:3306");
    assert!(
        m.replica_eligible_memo(&mut memo, a, lag),
        "unchecked is eligible"
    );
    let down = |addr: &'static str| {
        move |prev: Option<&BackendStatus>| {
            BackendStatus::marked_down(prev, addr, "test", Instant::now())
        }
    };
    task::update(&m.inner.statuses, a, down(a));
    assert!(
        !m.replica_eligible_memo(&mut memo, a, lag),
        "a new status is seen"
    );
    assert!(
        m.replica_eligible_memo(&mut memo, b, lag),
        "another address is not a's answer"
    );
    task::update(&m.inner.statuses, b, down(b));
    assert!(!m.replica_eligible_memo(&mut memo, b, lag));
    assert!(!m.replica_eligible_memo(&mut memo, a, Duration::from_secs(9)));
}

#[test]
fn a_successor_keeps_what_still_holds_for_its_targets() {
    let down = |addr: &str| Arc::new(BackendStatus::marked_down(None, addr, "t", Instant::now()));
    let primary = "10.0.0.1:3306";
    let mut timeline = Timeline::default();
    timeline.observe(GtidPos::parse("0-1-7").unwrap(), Instant::now());
    let mut statuses = StatusMap::default();
    let mut primaries = HashMap::new();
    for (addr, from) in [
        ("r1:1", Some(primary)),
        ("r2:1", Some(primary)),
        ("gone:1", None),
    ] {
        statuses.insert(addr.to_owned(), down(addr));
        primaries.insert(addr.to_owned(), from.map(str::to_owned));
    }
    primaries.insert(primary.to_owned(), None);
    let known = Known {
        statuses: Arc::new(statuses),
        timelines: HashMap::from([(primary.to_owned(), timeline.clone())]),
        histories: HashMap::new(),
        primaries,
    };
    let mut p = replica_target(primary, Duration::from_secs(1));
    p.is_primary = true;
    let mut r1 = replica_target("r1:1", Duration::from_secs(1));
    r1.primary = Some(primary.to_owned());
    // r2 now replicates from elsewhere: its lag was measured on another timeline.
    let mut r2 = replica_target("r2:1", Duration::from_secs(1));
    r2.primary = Some("10.0.0.9:3306".to_owned());
    let carried = known.carried(&[p, r1, r2]);
    let mut kept: Vec<_> = carried.statuses.keys().cloned().collect();
    kept.sort();
    assert_eq!(kept, vec!["r1:1"]);
    assert_eq!(carried.timelines.get(primary), Some(&timeline));
}

#[test]
fn a_remembered_eligibility_is_not_taken_from_another_monitor() {
    let (old, new) = (MonitorHandle::idle(), MonitorHandle::idle());
    let (a, lag) = ("10.0.0.2:3306", Duration::from_secs(5));
    let mut memo = EligibleMemo::default();
    assert!(old.replica_eligible_memo(&mut memo, a, lag));
    // The same count of updates in a monitor a reload started is not the same map.
    task::update(&new.inner.statuses, a, |prev| {
        BackendStatus::marked_down(prev, a, "test", Instant::now())
    });
    task::update(&old.inner.statuses, "other:1", |prev| {
        BackendStatus::marked_down(prev, "other:1", "test", Instant::now())
    });
    assert!(old.replica_eligible_memo(&mut memo, a, lag));
    assert_eq!(
        old.inner.statuses.generation(),
        new.inner.statuses.generation()
    );
    assert!(!new.replica_eligible_memo(&mut memo, a, lag));
}

/// With the primary unreachable its timeline stops; measured at the check's own time, the
/// lag of every replica grew alike, and the status gave up judging it (a replica stopped
/// an hour before took reads as `primary lost` once the primary missed one check).
#[test]
fn with_the_primary_down_lag_is_measured_when_it_was_last_seen() {
    use super::timeline::Timeline;
    let primary = "10.0.0.1:3306";
    let t0 = std::time::Instant::now();
    let mut timeline = Timeline::default();
    let pos = |s: &str| super::gtid::GtidPos::parse(s).unwrap();
    timeline.observe(pos("0-1-10"), t0);
    timeline.observe(pos("0-1-20"), t0 + Duration::from_secs(3600));
    let last_seen = t0 + Duration::from_secs(7200);
    timeline.observe(pos("0-1-20"), last_seen);
    let timelines: task::Timelines = Default::default();
    timelines.lock().unwrap().insert(primary.into(), timeline);
    let mut target = replica_target("10.0.0.2:3306", Duration::from_millis(500));
    target.primary = Some(primary.into());
    let lag_of = |applied: &str, primary_down: bool| {
        let mut obs = Observation {
            gtid: Some(applied.into()),
            primary_down,
            ..Observation::default()
        };
        let now = last_seen + Duration::from_secs(600);
        task::measure_on_timeline(&target, &mut obs, &timelines, now);
        obs.gtid_lag.map(|l| l.as_secs())
    };
    // Ten minutes into the outage: the current replica is as fresh as it was...
    assert_eq!(lag_of("0-1-20", true), Some(0));
    // ...and the one that stopped before the last write is as far behind as it was when
    // the primary was last seen: that write was an hour old then.
    assert_eq!(lag_of("0-1-15", true), Some(3600));
    // With the primary up, lag is its age now.
    assert_eq!(lag_of("0-1-15", false), Some(4200));
}

/// After a promotion made elsewhere, one check of either server that timed out sent the
/// writes back to the read-only old primary for an interval (ERR 1290, and every session's
/// primary connection dropped on the way there and back).
#[test]
fn writes_stay_with_the_promoted_server_through_a_missed_check() {
    let (old, new) = ("10.0.0.1:3306", "10.0.0.2:3306");
    let m = MonitorHandle::idle();
    let policy = replica_target(old, Duration::from_secs(1)).policy;
    let check = |addr: &str, outcome: Outcome| {
        task::update(&m.inner.statuses, addr, |prev| {
            BackendStatus::next(prev, addr, outcome.clone(), &policy, Instant::now())
        })
    };
    let seen = |read_only: bool| {
        Outcome::Seen(Observation {
            version: "10.11.19-MariaDB".into(),
            read_only,
            ..Observation::default()
        })
    };
    let target = || m.write_target(old, [new].into_iter());
    assert_eq!(target(), old, "never checked: as configured");
    check(new, seen(false));
    check(old, seen(false));
    assert_eq!(target(), old, "both writable: as configured");
    check(old, seen(true));
    assert_eq!(target(), new, "promoted");
    check(old, Outcome::Unreachable("timed out".into()));
    assert_eq!(target(), new, "the old primary missed a check");
    check(new, Outcome::Unreachable("timed out".into()));
    assert_eq!(target(), new, "the new one missed a check");
    check(old, seen(false));
    assert_eq!(target(), old, "the old primary writable again");

    // A second promotion: the first promoted server died, the next one took the writes.
    let third = "10.0.0.3:3306";
    let target = || m.write_target(old, [new, third].into_iter());
    check(old, seen(true));
    check(new, seen(false));
    assert_eq!(target(), new);
    check(new, Outcome::Unreachable("refused".into()));
    check(third, seen(false));
    assert_eq!(target(), third, "the one that answers");
}
