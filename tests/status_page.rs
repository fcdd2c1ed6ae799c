//! The status page and its JSON API against the local cluster, through an in-process proxy
//! with the monitor running: what `/api/status` reports (tenants, backends with roles, GTID
//! positions and lag history, a session with its pin, a paused tenant, statement rates),
//! that `server.http_auth` guards the page while /metrics and the probes stay open, and
//! what headless Chromium shows of the page (its text, and a screenshot that is not blank,
//! saved to `<target dir>/status-page.png`).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use common::http::HttpAnswer;
use common::{connect, primary_port, replica_ports, AdminProxy};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use serde_json::Value;
use switchyard::config;
use switchyard::state::RuntimeState;

const ADMIN_USER: &str = "admin";
const ADMIN_PASSWORD: &str = "admin_pw";

/// The common test config with `server_keys` added to `[server]` and, if `admin`, an
/// `[admin]` section.
fn config_text(server_keys: &str, admin: bool) -> String {
    let mut text =
        common::config_text("").replacen("[server]\n", &format!("[server]\n{server_keys}\n"), 1);
    if admin {
        text.push_str(&format!(
            "\n[admin]\nuser = \"{ADMIN_USER}\"\npassword = \"{ADMIN_PASSWORD}\"\n"
        ));
    }
    text
}

async fn start(server_keys: &str, admin: bool) -> AdminProxy {
    let cfg = config::parse(&config_text(server_keys, admin), &|_| None).unwrap();
    common::start_with_admin(RuntimeState::new(cfg).with_monitor()).await
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

/// One HTTP/1.1 GET over a fresh connection, with `extra` header lines.
async fn get(p: &AdminProxy, path: &str, extra: &str) -> HttpAnswer {
    let a = common::http::get(p.http, path, extra, Duration::from_secs(5)).await;
    assert!(
        !a.head.contains("transfer-encoding: chunked"),
        "full bodies are sent with a length"
    );
    a
}

async fn status_json(p: &AdminProxy) -> Value {
    let a = get(p, "/api/status", &basic(ADMIN_USER, ADMIN_PASSWORD)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.head.contains("content-type: application/json"),
        "{}",
        a.head
    );
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {}", a.body))
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// What the page must show once set up: a session holding a named lock (pinned), a paused
/// tenant, statements on both routes.
struct Scene {
    _pinned: Conn,
    _admin: Conn,
    load: tokio::task::JoinHandle<()>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        self.load.abort();
    }
}

/// Reads on acme's replicas until aborted, so statement rates are above zero.
fn replica_load(p: &AdminProxy) -> tokio::task::JoinHandle<()> {
    let port = p.addr.port();
    tokio::spawn(async move {
        let mut c = connect(port, "acme_app", Some("wf_acme")).await;
        loop {
            c.query_drop("SELECT 1").await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

async fn set_scene(p: &AdminProxy) -> Scene {
    let mut pinned = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    // A lock name of its own: the tests of this file run at once against one server.
    let lock = format!("SELECT GET_LOCK('sy_status_page_{}', 5)", p.addr.port());
    let got: Option<i64> = pinned.query_first(lock).await.unwrap();
    assert_eq!(got, Some(1));
    let mut reads = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    for _ in 0..5 {
        reads.query_drop("SELECT 1").await.unwrap();
    }
    let mut globex = connect(p.addr.port(), "globex_app", Some("wf_globex")).await;
    globex.query_drop("SELECT @@server_id").await.unwrap();
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(p.admin.port())
        .user(Some(ADMIN_USER))
        .pass(Some(ADMIN_PASSWORD))
        .prefer_socket(false);
    let mut admin = Conn::new(opts).await.expect("admin login");
    admin.query_drop("PAUSE TENANT sb TIMEOUT 0").await.unwrap();
    Scene {
        _pinned: pinned,
        _admin: admin,
        load: replica_load(p),
    }
}

/// Polls `/api/status` until the monitor has checked every replica (GTID position and a
/// lag point) and the replica load shows as a rate, or fails after a bounded wait.
async fn settled_status(p: &AdminProxy) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status_json(p).await;
        let replicas_seen = replica_ports().iter().all(|port| {
            let a = addr(*port);
            let measured = s["backends"].as_array().unwrap().iter().any(|b| {
                b["addr"] == a.as_str()
                    && b["gtid_position"].is_string()
                    && b["lag_seconds"].is_number()
            });
            let history = s["lag_history"][&a]
                .as_array()
                .is_some_and(|h| !h.is_empty());
            measured && history
        });
        let acme_reads = s["statements"]["by_route"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["tenant"] == "acme" && r["route"] == "replica")
            .and_then(|r| r["per_second"].as_f64());
        if replicas_seen && acme_reads.is_some_and(|r| r > 0.0) {
            return s;
        }
        assert!(Instant::now() < deadline, "status did not settle: {s:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| v[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {list:#}"))
}

#[tokio::test]
async fn status_api_reports_tenants_backends_sessions_rates_and_pauses() {
    let p = start("", true).await;
    let _scene = set_scene(&p).await;
    let s = settled_status(&p).await;

    let acme = find(&s["tenants"], "name", "acme");
    assert_eq!(acme["primary"], addr(primary_port()).as_str());
    assert_eq!(acme["replicas"].as_array().unwrap().len(), 2);
    assert_eq!(acme["paused"], false);
    assert_eq!(find(&s["tenants"], "name", "sb")["paused"], true);
    assert_eq!(s["paused"], serde_json::json!(["sb"]));

    let backends = s["backends"].as_array().unwrap();
    let acme_rows: Vec<(&str, &str)> = backends
        .iter()
        .filter(|b| b["tenant"] == "acme")
        .map(|b| (b["addr"].as_str().unwrap(), b["role"].as_str().unwrap()))
        .collect();
    let [r1, r2] = replica_ports().map(addr);
    let primary = addr(primary_port());
    assert_eq!(
        acme_rows,
        [
            (primary.as_str(), "primary"),
            (r1.as_str(), "replica"),
            (r2.as_str(), "replica")
        ]
    );
    let p_row = backends
        .iter()
        .find(|b| b["addr"] == primary.as_str())
        .unwrap();
    assert_eq!(p_row["state"], "up");
    assert!(
        p_row["pool_in_use"].as_u64().unwrap() >= 1,
        "the pinned session: {p_row}"
    );

    let pinned = s["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| !x["pins"].as_array().unwrap().is_empty())
        .unwrap_or_else(|| panic!("no pinned session in {:#}", s["sessions"]));
    assert_eq!(pinned["user"], "acme_app");
    assert_eq!(pinned["tenant"], "acme");
    assert!(
        pinned["pins"][0].as_str().unwrap().contains("named lock"),
        "{pinned}"
    );

    let replica_reads = s["statements"]["by_route"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant"] == "acme" && r["route"] == "replica")
        .unwrap();
    assert!(
        replica_reads["total"].as_u64().unwrap() >= 5,
        "{replica_reads}"
    );
    assert!(
        replica_reads["per_second"].as_f64().unwrap() > 0.0,
        "{replica_reads}"
    );

    // The parts, each its own path.
    let auth = basic(ADMIN_USER, ADMIN_PASSWORD);
    for (path, check) in [
        ("/api/tenants", "\"name\":\"sb\""),
        ("/api/backends", "\"lag_history\""),
        ("/api/sessions", "named lock"),
        ("/api/statements", "\"by_route\""),
    ] {
        let a = get(&p, path, &auth).await;
        assert_eq!(a.status, 200, "{path}");
        assert!(a.body.contains(check), "{path}: {}", a.body);
        serde_json::from_str::<Value>(&a.body).unwrap();
    }
}

#[tokio::test]
async fn the_status_page_needs_the_admin_login_and_metrics_and_probes_do_not() {
    let p = start("", true).await;
    for path in ["/", "/api/status", "/api/sessions"] {
        let none = get(&p, path, "").await;
        assert_eq!(none.status, 401, "{path} without credentials");
        assert!(
            none.head
                .contains("www-authenticate: basic realm=\"switchyard\""),
            "{}",
            none.head
        );
        assert!(!none.body.contains("acme"), "nothing leaks: {}", none.body);
        let wrong = get(&p, path, &basic(ADMIN_USER, "nope")).await;
        assert_eq!(wrong.status, 401, "{path} with a wrong password");
        let app_user = get(&p, path, &basic("acme_app", "acme_pw")).await;
        assert_eq!(app_user.status, 401, "{path} as an app user");
        let ok = get(&p, path, &basic(ADMIN_USER, ADMIN_PASSWORD)).await;
        assert_eq!(ok.status, 200, "{path} with the admin login");
        assert!(ok.head.contains("cache-control: no-store"), "{}", ok.head);
    }
    let page = get(&p, "/", &basic(ADMIN_USER, ADMIN_PASSWORD)).await;
    assert!(
        page.head.contains("content-type: text/html"),
        "{}",
        page.head
    );
    assert!(page
        .head
        .contains("content-security-policy: default-src 'none'"));
    assert!(page.body.contains("<title>Switchyard status</title>"));
    assert!(
        page.body.contains("\"name\":\"globex\""),
        "the first paint's data is embedded"
    );
    for path in ["/metrics", "/health"] {
        assert_eq!(get(&p, path, "").await.status, 200, "{path} stays open");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&p, "/ready", "").await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "/ready never answered 200 without credentials"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn http_auth_none_opens_the_page_and_no_admin_section_closes_it() {
    let open = start("http_auth = \"none\"", false).await;
    let a = get(&open, "/api/tenants", "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("\"name\":\"acme\""), "{}", a.body);

    let closed = start("", false).await;
    assert_eq!(get(&closed, "/", "").await.status, 401);
    let guess = get(&closed, "/", &basic("admin", "")).await;
    assert_eq!(guess.status, 401, "no [admin]: no credentials are right");
    assert_eq!(get(&closed, "/metrics", "").await.status, 200);
}

fn chromium() -> String {
    std::env::var("SY_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Runs headless Chromium on `url` with `args`, bounded in time; its stdout.
async fn run_chromium(url: &str, args: &[&str]) -> String {
    let profile = std::env::temp_dir().join(format!(
        "switchyard-chromium-{}-{}",
        std::process::id(),
        args.len()
    ));
    let mut cmd = tokio::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        // Enough virtual time for the first paint and two refreshes of the JSON.
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "{} not runnable ({e}): scripts/cluster.sh deps installs it",
            chromium()
        )
    });
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("chromium finished in time")
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where the screenshot is kept, to be looked at: the target directory.
fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&target).unwrap();
    target.join("status-page.png")
}

/// (width, height, distinct colours) of a PNG.
fn png_summary(path: &PathBuf) -> (u32, u32, usize) {
    let file = std::fs::File::open(path).unwrap();
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).unwrap();
    let channels = frame.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> =
        buf[..frame.buffer_size()].chunks(channels).collect();
    (frame.width, frame.height, colours.len())
}

#[tokio::test]
async fn chromium_shows_the_status_page() {
    let started = Instant::now();
    let p = start("", true).await;
    let _scene = set_scene(&p).await;
    settled_status(&p).await;
    // Chromium sends URL credentials after the 401 challenge; the page's own fetches
    // then carry them too (tested above: without them every path here is a 401).
    let url = format!("http://{ADMIN_USER}:{ADMIN_PASSWORD}@{}/", p.http);

    let dom = run_chromium(&url, &["--dump-dom"]).await;
    let [r1, r2] = replica_ports().map(addr);
    for shown in [
        "acme",
        "globex",
        "sb",
        addr(primary_port()).as_str(),
        r1.as_str(),
        r2.as_str(),
        "primary",
        "replica",
        "named lock",
        "acme_app",
        "Paused: </strong>sb",
        "paused",
        "<svg class=\"spark\"",
    ] {
        assert!(dom.contains(shown), "{shown:?} not shown:\n{dom}");
    }
    let refreshes: u32 = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the page never refreshed from /api/status:\n{dom}"));
    assert!(refreshes >= 1);

    let path = screenshot_path();
    let _ = std::fs::remove_file(&path);
    run_chromium(
        &url,
        &[
            &format!("--screenshot={}", path.display()),
            "--window-size=1400,1400",
        ],
    )
    .await;
    let (width, height, colours) = png_summary(&path);
    assert_eq!((width, height), (1400, 1400));
    // A blank or error page has a handful of colours; text, badges and charts have many.
    assert!(colours > 64, "only {colours} colours in {}", path.display());
    println!(
        "status page screenshot: {} ({colours} colours; test took {:?})",
        path.display(),
        started.elapsed()
    );
}
