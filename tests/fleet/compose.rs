//! The compose file's fleet profile without Docker: three instances made from
//! deploy/fleet/instance.toml with their services' environment, config/compose.toml pushed by
//! the fleet-config service's own command, and HAProxy with deploy/fleet/haproxy.cfg in
//! front. Service names become loopback addresses (the MariaDB services are the local
//! cluster); nothing else of those files changes.

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use tokio::process::{Child, Command};

use super::common::compose::{read, resolved_environment, service, strings};
use super::common::{self, free_port};
use super::harness::{field, rows, scratch, until, Etcd};

const INSTANCES: [&str; 3] = ["sy-a", "sy-b", "sy-c"];

struct Spawned {
    name: &'static str,
    app: u16,
    admin: u16,
    http: u16,
    _child: Child,
}

/// `text` with each `(from, to)` replaced, every one of which must occur: a renamed
/// address in the deploy files must fail here, not pass unchanged.
fn replaced(text: &str, pairs: &[(String, String)]) -> String {
    pairs.iter().fold(text.to_string(), |t, (from, to)| {
        assert!(t.contains(from.as_str()), "{from} not found in:\n{t}");
        t.replace(from.as_str(), to)
    })
}

fn pair(from: &str, to: String) -> (String, String) {
    (from.to_string(), to)
}

#[tokio::test]
async fn compose_fleet_profile_serves_through_haproxy() {
    let compose = common::compose::file();
    let dir = scratch("compose");
    let etcd = Etcd::start(&dir.0).await;
    let etcd_url = pair("http://etcd:2379", etcd.endpoint());

    let mut spawned = Vec::new();
    for name in INSTANCES {
        let svc = service(&compose, name);
        let (app, admin, http) = (free_port(), free_port(), free_port());
        let text = replaced(
            &read("deploy/fleet/instance.toml"),
            &[
                pair("0.0.0.0:6033", format!("127.0.0.1:{app}")),
                pair("0.0.0.0:6032", format!("127.0.0.1:{admin}")),
                pair("0.0.0.0:9090", format!("127.0.0.1:{http}")),
                pair("${SWITCHYARD_INSTANCE}:6033", format!("127.0.0.1:{app}")),
                pair(
                    "/tmp/switchyard-fleet-document.toml",
                    dir.0
                        .join(format!("{name}-document.toml"))
                        .display()
                        .to_string(),
                ),
                etcd_url.clone(),
            ],
        );
        let file = dir.0.join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        // The service's own command, with the mounted file's path.
        let args = replaced(
            &strings(svc.get("command")).join("\n"),
            &[pair(
                "/etc/switchyard/switchyard.toml",
                file.display().to_string(),
            )],
        );
        let log = std::fs::File::create(dir.0.join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args.lines())
            .env_clear()
            .envs(resolved_environment(svc))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        spawned.push(Spawned {
            name,
            app,
            admin,
            http,
            _child: child,
        });
    }
    let logs = || {
        INSTANCES
            .iter()
            .map(|n| {
                let log = std::fs::read_to_string(dir.0.join(format!("{n}.log")));
                format!("--- {n}:\n{}", log.unwrap_or_default())
            })
            .collect::<String>()
    };

    // fleet-config: its command, with the shared file's MariaDB services replaced by the
    // local cluster. It exits 0 only once every live instance applied the config.
    let [p, r1, r2] = [
        common::primary_port(),
        common::replica_ports()[0],
        common::replica_ports()[1],
    ];
    let shared = dir.0.join("shared.toml");
    std::fs::write(
        &shared,
        replaced(
            &read("config/compose.toml"),
            &[
                pair("primary:3306", format!("127.0.0.1:{p}")),
                pair("replica1:3306", format!("127.0.0.1:{r1}")),
                pair("replica2:3306", format!("127.0.0.1:{r2}")),
            ],
        ),
    )
    .unwrap();
    let push = service(&compose, "fleet-config");
    let args = replaced(
        &strings(push.get("command")).join("\n"),
        &[
            pair("/etc/switchyard/shared.toml", shared.display().to_string()),
            etcd_url,
        ],
    );
    // The instances first: a push applies to the instances live when it is made.
    until("three instances live", Duration::from_secs(30), || async {
        let mut admin = admin(&spawned[0]).await?;
        let live = rows(&mut admin, "SHOW FLEET").await.ok()?.len();
        (live == 3).then_some(())
    })
    .await;
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args.lines())
        .env_clear()
        .envs(resolved_environment(push))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "fleet-config's push: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );

    // HAProxy with the compose file's config: each instance's app port, checked on its
    // HTTP port.
    let lb = free_port();
    let mut pairs = vec![pair("bind :3306", format!("bind 127.0.0.1:{lb}"))];
    for s in &spawned {
        pairs.push(pair(
            &format!("{0}:6033 check port 9090", s.name),
            format!("127.0.0.1:{} check port {}", s.app, s.http),
        ));
    }
    let text = read("deploy/fleet/haproxy.cfg");
    // What HAProxy's check asks each instance gets a 200 (it starts servers up, so clients
    // alone would not show a failing check until its first rounds).
    let path = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("option httpchk GET "))
        .expect("option httpchk GET <path>")
        .trim();
    assert!(text.contains("http-check expect status 200"));
    for s in &spawned {
        let url = format!("http://127.0.0.1:{}{path}", s.http);
        let status = common::compose::health_check(&url).await;
        assert_eq!(status, Some(0), "{}: GET {path}", s.name);
    }
    let cfg = dir.0.join("haproxy.cfg");
    std::fs::write(&cfg, replaced(&text, &pairs)).unwrap();
    let _haproxy = common::haproxy(&cfg, std::process::Stdio::null());

    // Clients of the compose file's demo, through HAProxy: logins the pushed config made,
    // reads on the replicas, spread over the instances (leastconn, all three up).
    let mut served = std::collections::BTreeSet::new();
    let mut clients = Vec::new();
    for _ in 0..6 {
        let mut c = until(
            "a login through HAProxy",
            Duration::from_secs(20),
            || async {
                Conn::new(common::opts(lb, "acme_app", Some("wf_acme")))
                    .await
                    .ok()
            },
        )
        .await;
        let port: u16 = c.query_first("SELECT @@port").await.unwrap().unwrap();
        assert!(common::replica_ports().contains(&port), "read on {port}");
        clients.push(c);
    }
    for s in &spawned {
        let mut a = admin(s).await.expect("admin login");
        let sessions = rows(&mut a, "SHOW SESSIONS").await.unwrap();
        if sessions.iter().any(|r| field(r, "user") == "acme_app") {
            served.insert(s.name);
        }
    }
    assert_eq!(served.len(), 3, "sessions on {served:?}\n{}", logs());
    let mut globex = Conn::new(common::opts(lb, "globex_app", Some("wf_globex")))
        .await
        .unwrap();
    let port: u16 = globex.query_first("SELECT @@port").await.unwrap().unwrap();
    assert_eq!(port, p, "globex has no replicas");
}

/// The instance's admin port, with the compose file's admin password.
async fn admin(s: &Spawned) -> Option<Conn> {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(s.admin)
        .user(Some("admin"))
        .pass(Some("admin"))
        .prefer_socket(false);
    Conn::new(opts).await.ok()
}
