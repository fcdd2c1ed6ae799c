//! Clusters and tenant templates against the local cluster: a new workspace's schema and
//! user work through Switchyard with no config change, isolation holds between tenants made
//! by pattern, and a generated config of 10,000 tenants checks, runs and reloads quickly
//! (timings and memory per tenant printed).

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use switchyard::config;
use switchyard::state::RuntimeState;

const TEMPLATE_PASSWORD: &str = "tmpl_pw";

/// One open cluster (the local one) with `wf_{tenant}`/`rb_{tenant}` schemas, globex named
/// on it, the demo users, and the user template `{tenant}_app`.
fn open_cluster_config() -> String {
    let (p, [r1, r2]) = (common::primary_port(), common::replica_ports());
    format!(
        r#"
[admin]
user = "admin"
password = "admin"

[[clusters]]
name = "main"
primary = "127.0.0.1:{p}"
replicas = ["127.0.0.1:{r1}", "127.0.0.1:{r2}"]
schemas = ["wf_{{tenant}}", "rb_{{tenant}}"]
tenants = "*"

[[tenants]]
name = "globex"
cluster = "main"
schemas = ["wf_globex"]
consistency = "primary"

[[users]]
name = "acme_app"
password = "acme_pw"
tenant = "acme"

[[users]]
name = "ops"
password = "ops_pw"
tenants = "*"

[[users]]
name = "{{tenant}}_app"
password = "{TEMPLATE_PASSWORD}"
"#
    )
}

fn opts(port: u16, user: &str, password: &str, db: Option<&str>) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(db)
        .prefer_socket(false)
}

/// The MySQL error code of a failed statement.
fn code(e: mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        other => panic!("expected a server error, got {other}"),
    }
}

/// A database and a user of a new workspace, made on the primary as ops would.
async fn new_workspace(name: &str) {
    let mut root = common::root().await;
    root.query_drop(format!(
        "DROP DATABASE IF EXISTS wf_{name}; DROP USER IF EXISTS '{name}_app'@'%'; \
         CREATE USER '{name}_app'@'%' IDENTIFIED BY '{TEMPLATE_PASSWORD}'; \
         GRANT ALL PRIVILEGES ON `wf_{name}`.* TO '{name}_app'@'%'"
    ))
    .await
    .unwrap();
}

async fn drop_workspace(name: &str) {
    let mut root = common::root().await;
    root.query_drop(format!(
        "DROP DATABASE IF EXISTS wf_{name}; DROP USER IF EXISTS '{name}_app'@'%'"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn a_new_workspace_needs_no_config_change() {
    new_workspace("newco").await;
    let cfg = config::parse(&open_cluster_config(), &|_| None).unwrap();
    let proxy = common::start_with_admin(RuntimeState::new(cfg)).await;
    let port = proxy.addr.port();

    // A migration tool: a multi-tenant user creates the schema with no database selected.
    let mut ops = Conn::new(opts(port, "ops", "ops_pw", None)).await.unwrap();
    ops.query_drop("CREATE DATABASE wf_newco").await.unwrap();
    ops.query_drop("USE wf_newco").await.unwrap();
    ops.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    ops.query_drop("INSERT INTO t VALUES (1, 'saved')")
        .await
        .unwrap();

    // The workspace's own user, by the template: bound to tenant newco.
    let mut app = Conn::new(opts(port, "newco_app", TEMPLATE_PASSWORD, Some("wf_newco")))
        .await
        .expect("newco_app logs in by the {tenant}_app template");
    let v: Option<String> = app
        .query_first("SELECT v FROM t WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        v.as_deref(),
        Some("saved"),
        "tenant consistency: the save is seen"
    );
    let served = common::served_by(&mut app).await;
    assert!(
        common::is_replica(served),
        "reads go to a replica, got {served}"
    );

    // Isolation: another tenant's schema, named or made by pattern, is refused by Switchyard.
    for stmt in [
        "SELECT * FROM wf_acme.t",
        "SELECT * FROM wf_other.t",
        "SELECT * FROM WF_NEWCO.t",
        "USE wf_globex",
    ] {
        let e = app.query_drop(stmt).await.expect_err(stmt);
        assert_eq!(code(e), 1044, "{stmt}");
    }
    // A plain user name wins over the template; a template name of no tenant is refused.
    let acme = Conn::new(opts(port, "acme_app", "acme_pw", Some("wf_acme"))).await;
    assert!(
        acme.is_ok(),
        "acme_app keeps its own entry: {:?}",
        acme.err()
    );
    let nobody = Conn::new(opts(port, "a b_app", TEMPLATE_PASSWORD, None)).await;
    assert_eq!(code(nobody.expect_err("not a tenant name")), 1045);

    // The admin port lists the tenant made by pattern while it has a session.
    let mut admin = Conn::new(opts(proxy.admin.port(), "admin", "admin", None))
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = admin
        .query_map("SHOW TENANTS LIKE 'new%'", |row: mysql_async::Row| {
            let get = |i: usize| {
                row.get::<Option<String>, _>(i)
                    .flatten()
                    .unwrap_or_default()
            };
            (get(0), get(1), get(2))
        })
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![("newco".into(), "main".into(), "wf_newco, rb_newco".into())]
    );
    drop(app);
    drop(ops);
    drop_workspace("newco").await;
}

/// 10,000 tenants: 5,000 listed on one cluster, 4,999 written as `[[tenants]]` the old way
/// and `acme` on an open cluster, with a user per named tenant plus the template.
fn ten_thousand(listen: &str, admin: &str) -> String {
    let (p, [r1, r2]) = (common::primary_port(), common::replica_ports());
    let mut s = format!(
        "[server]\n{listen}\n{admin}\n\n[admin]\nuser = \"admin\"\npassword = \"admin\"\n\n\
         [[clusters]]\nname = \"listed\"\nprimary = \"127.0.0.1:{p}\"\n\
         replicas = [\"127.0.0.1:{r1}\"]\nschemas = [\"ws_{{tenant}}\", \"wsr_{{tenant}}\"]\n\
         tenants = ["
    );
    let names: Vec<String> = (0..5000).map(|i| format!("\"t{i:05}\"")).collect();
    s.push_str(&names.join(", "));
    let _ = write!(
        s,
        "]\n\n[[clusters]]\nname = \"open\"\nprimary = \"127.0.0.1:{p}\"\n\
         replicas = [\"127.0.0.1:{r1}\", \"127.0.0.1:{r2}\"]\n\
         schemas = [\"wf_{{tenant}}\", \"rb_{{tenant}}\"]\ntenants = \"*\"\n"
    );
    for i in 0..4999 {
        let _ = write!(
            s,
            "\n[[tenants]]\nname = \"legacy{i:05}\"\nschemas = [\"lg_{i:05}\"]\n\
             primary = \"127.0.0.1:{p}\"\nreplicas = [\"127.0.0.1:{r2}\"]\n\
             \n[[users]]\nname = \"legacy{i:05}_user\"\npassword = \"pw{i}\"\ntenant = \"legacy{i:05}\"\n"
        );
    }
    s.push_str(
        "\n[[users]]\nname = \"ops\"\npassword = \"ops_pw\"\ntenants = \"*\"\n\
         \n[[users]]\nname = \"{tenant}_app\"\npassword = \"tmpl_pw\"\n",
    );
    s
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// The binary's RSS once it serves `ops` on wf_acme (tenant acme, made by pattern).
async fn serving_rss(config: impl FnOnce(u16) -> String) -> (common::binary::Binary, u64) {
    let bin = common::binary::spawn(config, &[], std::process::Stdio::null());
    let mut c = bin.connect("ops", Some("wf_acme")).await;
    let n: Option<i64> = c
        .query_first(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()",
        )
        .await
        .unwrap();
    assert!(n.is_some());
    let rss = rss_kb(bin.pid());
    (bin, rss)
}

#[tokio::test]
async fn ten_thousand_tenants_check_run_and_reload() {
    let dir = std::env::temp_dir().join(format!("sy-10k-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("switchyard.toml");
    std::fs::write(&file, ten_thousand("", "")).unwrap();

    // check: validates and resolves a named, a listed and a pattern tenant and a user.
    let t0 = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "--brief", "--config"])
        .arg(&file)
        .args(["--schema", "ws_t04242", "--schema", "wf_brandnew"])
        .args(["--schema", "lg_00017", "--schema", "mysql"])
        .args(["--user", "brandnew_app", "--user", "legacy00017_user"])
        .output()
        .unwrap();
    let check_time = t0.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "2 clusters, 9999 named tenants, 5001 users",
        "schema ws_t04242: tenant t04242 (named in the config), cluster listed",
        "schema wf_brandnew: tenant brandnew (by the patterns of open cluster open)",
        "schema lg_00017: tenant legacy00017 (named in the config), primary",
        "schema mysql: no tenant",
        "user brandnew_app (by a user template): tenant brandnew, cluster open",
        "user legacy00017_user (named in the config): tenant legacy00017",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    // run: memory per tenant, against the same proxy with one tenant.
    let (admin_port, http_port) = (common::free_port(), common::free_port());
    let (small, small_rss) = serving_rss(|port| {
        let (p, [r1, r2]) = (common::primary_port(), common::replica_ports());
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[[clusters]]\nname = \"open\"\n\
             primary = \"127.0.0.1:{p}\"\nreplicas = [\"127.0.0.1:{r1}\", \"127.0.0.1:{r2}\"]\n\
             schemas = [\"wf_{{tenant}}\", \"rb_{{tenant}}\"]\ntenants = \"*\"\n\n\
             [[users]]\nname = \"ops\"\npassword = \"ops_pw\"\ntenants = \"*\"\n"
        )
    })
    .await;
    drop(small);
    let t0 = Instant::now();
    let (big, big_rss) = serving_rss(|port| {
        ten_thousand(
            &format!("listen = \"127.0.0.1:{port}\""),
            &format!("admin_listen = \"127.0.0.1:{admin_port}\"\nhttp_listen = \"127.0.0.1:{http_port}\""),
        )
    })
    .await;
    let start_time = t0.elapsed();
    let per_tenant = (big_rss.saturating_sub(small_rss) * 1024) / 10_000;

    // RELOAD of the whole file through the admin port, with a tenant's session open.
    let mut admin = Conn::new(opts(admin_port, "admin", "admin", None))
        .await
        .unwrap();
    let t0 = Instant::now();
    admin.query_drop("RELOAD").await.unwrap();
    let reload_time = t0.elapsed();
    let listed: Vec<String> = admin
        .query_map(
            "SHOW TENANTS LIKE 't0424%' LIMIT 3 OFFSET 1",
            |row: mysql_async::Row| row.get::<String, _>(0).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(listed, ["t04241", "t04242", "t04243"]);
    let mut c = big.connect("ops", Some("wf_acme")).await;
    let n: Option<i64> = c
        .query_first(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()",
        )
        .await
        .unwrap();
    assert!(n.is_some(), "the session goes on after RELOAD");

    println!(
        "10,000 tenants: check {check_time:?}, start to first answer {start_time:?}, \
         RELOAD {reload_time:?}; RSS {} KiB vs {} KiB with one open cluster: {per_tenant} bytes per tenant",
        big_rss, small_rss
    );
    // Loose bounds: a debug build on a busy 2-core machine. Quadratic work over 10,000
    // tenants (100 million steps and more) would blow them; bench figures are in the docs.
    let bound = Duration::from_secs(10);
    assert!(
        check_time < bound && reload_time < bound,
        "check {check_time:?}, reload {reload_time:?}"
    );
    assert!(per_tenant < 16 * 1024, "{per_tenant} bytes per tenant");
    drop(big);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tenants made from what clients send cannot grow memory without bound: after thousands
/// of `USE` of schemas that do not exist, the per-tenant maps hold at most a few thousand
/// entries (those of tenants in use and those that wrote are kept).
#[tokio::test]
async fn names_tried_by_clients_do_not_pile_up() {
    let cfg = config::parse(&open_cluster_config(), &|_| None).unwrap();
    let proxy = common::start_with_admin(RuntimeState::new(cfg)).await;
    let mut ops = Conn::new(opts(proxy.addr.port(), "ops", "ops_pw", None))
        .await
        .unwrap();
    // Past the worker's 10,000 cached lease keys, which hold their tenants' pool groups.
    for i in 0..12_000 {
        let e = ops
            .query_drop(format!("USE wf_nosuch{i}"))
            .await
            .unwrap_err();
        assert_eq!(code(e), 1049, "the server's unknown-database error");
    }
    let held = proxy.state.load().shared.stats.tenants().len();
    println!("stats entries after 12,000 names tried: {held}");
    assert!(held <= 8192, "{held} tenant stats entries");
    // A pool group per name tried stayed for the process's life; the sweep lets go of
    // those nothing holds.
    let rt = proxy.state.load();
    rt.sweep_pools(std::time::Instant::now());
    let groups = rt.shared.pools.stats().len();
    println!("pool groups after the sweep: {groups}");
    assert!(groups < 5_000, "{groups} pool groups");
    ops.query_drop("USE wf_acme").await.unwrap();
}
