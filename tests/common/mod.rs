//! Shared helpers for the integration tests: the local cluster's addresses, an in-process
//! Switchyard on port 0, mysql_async connections, and a raw protocol client.
#![allow(dead_code)]

pub mod binary;
pub mod certs;
pub mod compose;
pub mod drivers;
pub mod http;
pub mod raw;

use std::net::SocketAddr;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};
use switchyard::config::{self, Config};
use switchyard::state::RuntimeState;
use switchyard::Listeners;
use tokio::sync::oneshot;

/// A scratch directory `<name>-<pid>` under the system's temp dir, emptied when made and
/// removed when dropped (a failed assertion included).
pub struct ScratchDir(pub std::path::PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        ScratchDir(d)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Debian's HAProxy serving `cfg` in the foreground, killed when dropped: the file is
/// checked first (`haproxy -c`), so a config it refuses fails the test with HAProxy's own
/// words rather than as a balancer that never answers. Its log goes to `stderr`.
pub fn haproxy(cfg: &std::path::Path, stderr: std::process::Stdio) -> tokio::process::Child {
    let check = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(cfg)
        .output()
        .expect("haproxy (Debian's haproxy) on PATH");
    assert!(check.status.success(), "haproxy -c: {check:?}");
    tokio::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(cfg)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy (Debian's haproxy) on PATH")
}

/// A free loopback port for a child process to bind. The probe listener is released, so
/// the kernel may offer the same port again before the child binds it; ports already
/// handed out in this test process are skipped, or two instances started together can be
/// given one port (a fleet test failed on exactly that).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn port(var: &str, default: u16) -> u16 {
    std::env::var(var)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

pub fn primary_port() -> u16 {
    port("SY_PRIMARY_PORT", 3307)
}

pub fn replica_ports() -> [u16; 2] {
    [
        port("SY_REPLICA1_PORT", 3308),
        port("SY_REPLICA2_PORT", 3309),
    ]
}

/// Demo users of the local cluster (scripts/cluster.sh) and their passwords.
pub fn password_of(user: &str) -> &'static str {
    match user {
        "acme_app" => "acme_pw",
        "globex_app" => "globex_pw",
        "ops" => "ops_pw",
        "sbtest" => "sbtest",
        "sy_root" => "sy_root",
        _ => "",
    }
}

/// A config for the local cluster: tenant `acme` (wf_acme, rb_acme) with both replicas,
/// `globex` (wf_globex) with none, `sb` (sbtest) with both; `extra_tenant_keys` is added to
/// the acme tenant (e.g. `consistency = "eventual"`).
pub fn config(extra_tenant_keys: &str) -> Config {
    let text = config_text(extra_tenant_keys);
    config::parse(&text, &|_| None).unwrap_or_else(|e| panic!("test config invalid:\n{e}"))
}

/// The text of [`config`], for tests that write it to a file.
pub fn config_text(extra_tenant_keys: &str) -> String {
    let (p, [r1, r2]) = (primary_port(), replica_ports());
    format!(
        r#"
[server]
listen = "127.0.0.1:6033" # not bound: tests bind their own port 0
handshake_timeout = "2s"

[[tenants]]
name = "acme"
schemas = ["wf_acme", "rb_acme"]
primary = "127.0.0.1:{p}"
replicas = ["127.0.0.1:{r1}", "127.0.0.1:{r2}"]
{extra_tenant_keys}

[[tenants]]
name = "globex"
schemas = ["wf_globex"]
primary = "127.0.0.1:{p}"
replicas = []

[[tenants]]
name = "sb"
schemas = ["sbtest"]
primary = "127.0.0.1:{p}"
replicas = ["127.0.0.1:{r1}", "127.0.0.1:{r2}"]

[[users]]
name = "acme_app"
password = "acme_pw"
tenant = "acme"

[[users]]
name = "globex_app"
password = "globex_pw"
tenant = "globex"

[[users]]
name = "ops"
password = "ops_pw"
tenants = "*"

[[users]]
name = "sbtest"
password = "sbtest"
tenant = "sb"
"#
    )
}

/// A config with only tenant globex (wf_globex on the primary, no replicas) and its user,
/// with `server_keys` in `[server]`.
pub fn globex_only(server_keys: &str) -> String {
    let p = primary_port();
    format!(
        "[server]\n{server_keys}\n\n\
         [[tenants]]\nname = \"globex\"\nschemas = [\"wf_globex\"]\nprimary = \"127.0.0.1:{p}\"\n\n\
         [[users]]\nname = \"globex_app\"\npassword = \"globex_pw\"\ntenant = \"globex\"\n"
    )
}

/// A Switchyard serving on an ephemeral loopback port; stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub async fn start(cfg: Config) -> Proxy {
    start_state(RuntimeState::new(cfg)).await
}

/// Like `start`, with the backend monitor running (the config needs `[monitor]`).
pub async fn start_monitored(cfg: Config) -> Proxy {
    start_state(RuntimeState::new(cfg).with_monitor()).await
}

/// Serves `state` (e.g. with TLS loaded) on an ephemeral port, app listener only.
pub async fn start_state(state: RuntimeState) -> Proxy {
    start_shared(state.shared()).await
}

/// Like `start_state`, for a test that keeps a handle on the state the proxy serves.
pub async fn start_shared(shared: switchyard::state::SharedState) -> Proxy {
    let app = switchyard::bind("127.0.0.1:0").await.unwrap();
    let addr = app.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let listeners = Listeners {
        app,
        admin: None,
        http: None,
    };
    tokio::spawn(switchyard::run(listeners, shared, async {
        let _ = rx.await;
    }));
    Proxy { addr, _stop: tx }
}

/// A Switchyard with its admin port and HTTP endpoint also on ephemeral ports.
pub struct AdminProxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub http: SocketAddr,
    pub state: switchyard::state::SharedState,
    _stop: oneshot::Sender<()>,
}

/// Starts `state` (e.g. `RuntimeState::from_file(..)`, so RELOAD has a file to read) with
/// the app, admin and HTTP listeners bound to port 0.
pub async fn start_with_admin(state: RuntimeState) -> AdminProxy {
    let bind = || switchyard::bind("127.0.0.1:0");
    let (app, admin, http) = (
        bind().await.unwrap(),
        bind().await.unwrap(),
        bind().await.unwrap(),
    );
    let addrs = (
        app.local_addr().unwrap(),
        admin.local_addr().unwrap(),
        http.local_addr().unwrap(),
    );
    let state = state.shared();
    let (tx, rx) = oneshot::channel::<()>();
    let listeners = Listeners {
        app,
        admin: Some(admin),
        http: Some(http),
    };
    tokio::spawn(switchyard::run(listeners, state.clone(), async {
        let _ = rx.await;
    }));
    AdminProxy {
        addr: addrs.0,
        admin: addrs.1,
        http: addrs.2,
        state,
        _stop: tx,
    }
}

pub fn opts(port: u16, user: &str, db: Option<&str>) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password_of(user)))
        .db_name(db)
        .prefer_socket(false)
        .into()
}

pub async fn connect(port: u16, user: &str, db: Option<&str>) -> Conn {
    Conn::new(opts(port, user, db)).await.unwrap_or_else(|e| {
        panic!("connect {user}@{port}: {e}");
    })
}

/// A superuser connection straight to the primary, for setting up test data.
pub async fn root() -> Conn {
    connect(primary_port(), "sy_root", None).await
}

/// Waits until both replicas have applied everything the primary has logged.
pub async fn wait_replicated() {
    wait_replicated_on(primary_port(), replica_ports()).await;
}

/// Waits until `replicas` have applied everything `primary` has logged.
pub async fn wait_replicated_on(primary: u16, replicas: impl IntoIterator<Item = u16>) {
    let mut p = connect(primary, "sy_root", None).await;
    let pos: String = p
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    for port in replicas {
        let mut r = connect(port, "sy_root", None).await;
        let done: Option<i64> = r
            .query_first(format!("SELECT MASTER_GTID_WAIT('{pos}', 20)"))
            .await
            .unwrap();
        assert_eq!(done, Some(0), "replica {port} did not catch up to {pos}");
    }
}

/// The port of the server that answered.
/// `sql`'s first row, read on the session's primary connection: a transaction keeps the
/// statement there.
pub async fn on_primary<T: FromRow + Send + 'static>(c: &mut Conn, sql: &str) -> T {
    c.query_drop("BEGIN").await.unwrap();
    let row = c.query_first(sql).await.unwrap().unwrap();
    c.query_drop("COMMIT").await.unwrap();
    row
}

pub async fn served_by(c: &mut Conn) -> u16 {
    c.query_first::<u16, _>("SELECT @@port")
        .await
        .unwrap()
        .unwrap()
}

pub fn is_replica(port: u16) -> bool {
    replica_ports().contains(&port)
}

pub const SHORT: Duration = Duration::from_secs(5);

// ---- the chaos cluster (scripts/test.sh): for tests that break replication on purpose ----

pub fn chaos_primary_port() -> u16 {
    port("SY_CHAOS_PRIMARY_PORT", 3317)
}

pub fn chaos_replica_ports() -> [u16; 2] {
    [
        port("SY_CHAOS_REPLICA1_PORT", 3318),
        port("SY_CHAOS_REPLICA2_PORT", 3319),
    ]
}

/// Primary first, then the two replicas.
pub fn chaos_ports() -> [u16; 3] {
    let [r1, r2] = chaos_replica_ports();
    [chaos_primary_port(), r1, r2]
}

/// Tenant acme on the chaos cluster (wf_acme, both replicas) with `tenant_keys` added to
/// it, and its users acme_app and (for tests that pick out their own backend connections)
/// sy_root; `before` goes ahead of it (a `[monitor]` section, say).
pub fn chaos_acme_config(before: &str, tenant_keys: &str) -> Config {
    chaos_acme_config_at(chaos_ports()[0], before, tenant_keys)
}

/// [`chaos_acme_config`] with the primary reached at port `p` (a relay in front of it).
pub fn chaos_acme_config_at(p: u16, before: &str, tenant_keys: &str) -> Config {
    let [_, r1, r2] = chaos_ports();
    let text = format!(
        "{before}\n\n[[tenants]]\nname = \"acme\"\nschemas = [\"wf_acme\"]\n\
         primary = \"127.0.0.1:{p}\"\nreplicas = [\"127.0.0.1:{r1}\", \"127.0.0.1:{r2}\"]\n\
         {tenant_keys}\n\n\
         [[users]]\nname = \"acme_app\"\npassword = \"acme_pw\"\ntenant = \"acme\"\n\n\
         [[users]]\nname = \"sy_root\"\npassword = \"sy_root\"\ntenant = \"acme\"\n"
    );
    config::parse(&text, &|_| None).unwrap_or_else(|e| panic!("chaos config invalid:\n{e}"))
}

/// Serializes the chaos tests of one binary under plain `cargo test` (which runs a binary's
/// tests in parallel threads); under nextest each test is its own process and the `chaos`
/// test group (.config/nextest.toml) already runs them one at a time.
pub static CHAOS_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A superuser connection to one server of the chaos cluster.
pub async fn chaos_root(port: u16) -> Conn {
    connect(port, "sy_root", None).await
}

async fn run_on(port: u16, sql: &str) {
    let mut c = chaos_root(port).await;
    c.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql} on {port}: {e}"));
    let _ = c.disconnect().await;
}

pub async fn stop_sql_thread(port: u16) {
    run_on(port, "STOP SLAVE SQL_THREAD").await;
}

pub async fn start_sql_thread(port: u16) {
    run_on(port, "START SLAVE SQL_THREAD").await;
}

/// Makes a replica apply each transaction `seconds` after the primary wrote it.
pub async fn set_master_delay(port: u16, seconds: u32) {
    run_on(
        port,
        &format!("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY={seconds}; START SLAVE"),
    )
    .await;
}

/// Puts a chaos replica back to normal (no delay, both threads running) if a test, or a
/// test killed half-way, left it otherwise. Touches nothing that is already fine.
pub async fn restore_replication(port: u16) {
    let mut c = chaos_root(port).await;
    let row: Option<mysql_async::Row> = c
        .query_first("SHOW SLAVE STATUS")
        .await
        .unwrap_or_else(|e| panic!("SHOW SLAVE STATUS on {port}: {e}"));
    let _ = c.disconnect().await;
    let field = |name: &str| -> String {
        row.as_ref()
            .and_then(|r| r.get_opt::<Option<String>, _>(name))
            .and_then(Result::ok)
            .flatten()
            .unwrap_or_default()
    };
    let healthy = field("Slave_IO_Running") == "Yes"
        && field("Slave_SQL_Running") == "Yes"
        && field("SQL_Delay") == "0";
    if !healthy {
        set_master_delay(port, 0).await;
    }
}

/// Runs `body`, then `restore`, even if `body` panicked (the panic is raised again after).
pub async fn with_restore<B, R>(body: B, restore: R)
where
    B: std::future::Future<Output = ()> + Send + 'static,
    R: std::future::Future<Output = ()>,
{
    let result = tokio::spawn(body).await;
    restore.await;
    if let Err(e) = result {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test body did not finish: {e}");
    }
}

/// Waits until both chaos replicas have applied everything the chaos primary logged.
pub async fn wait_for_chaos_replicas() {
    let [p, r1, r2] = chaos_ports();
    let mut primary = chaos_root(p).await;
    let pos: String = primary
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    for port in [r1, r2] {
        let mut r = chaos_root(port).await;
        let done: Option<i64> = r
            .query_first(format!("SELECT MASTER_GTID_WAIT('{pos}', 20)"))
            .await
            .unwrap();
        assert_eq!(
            done,
            Some(0),
            "chaos replica {port} did not catch up to {pos}"
        );
    }
}

/// Polls `check` every 20 ms until it yields a value, failing the test after `limit`: what a
/// test waits on instead of sleeping for a time another task may not have had.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Idle connections in every pool of the proxy serving `state`.
pub fn idle_connections(state: &switchyard::state::SharedState) -> usize {
    state
        .load()
        .shared
        .pools
        .stats()
        .iter()
        .map(|g| g.idle)
        .sum()
}

/// Waits until every connection the proxy serving `state` has open is idle, `n` at least
/// (a closed session's are reset and pooled in the background).
pub async fn until_pooled(state: &switchyard::state::SharedState, n: usize) {
    until(
        &format!("{n} idle connections"),
        Duration::from_secs(10),
        || async {
            let groups = state.load().shared.pools.stats();
            let all_idle = groups.iter().all(|g| g.idle == g.open);
            (all_idle && idle_connections(state) >= n).then_some(())
        },
    )
    .await
}

/// Waits until the server on `port` no longer has connection `id` (a KILL is done by its
/// thread after the KILL's own answer).
pub async fn until_gone(port: u16, id: u64) {
    let q = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}");
    until(
        &format!("connection {id} gone"),
        Duration::from_secs(10),
        || async {
            let mut root = connect(port, "sy_root", None).await;
            let n: Option<i64> = root.query_first(&q).await.unwrap();
            (n == Some(0)).then_some(())
        },
    )
    .await
}

/// Statements running on any server of the cluster whose text contains `needle`.
pub async fn running(needle: &str) -> i64 {
    let mut total = 0;
    let [r1, r2] = replica_ports();
    for port in [primary_port(), r1, r2] {
        let mut root = connect(port, "sy_root", None).await;
        let n: Option<i64> = root
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE CONCAT('%', ?, '%') AND ID <> CONNECTION_ID()",
                (needle,),
            )
            .await
            .unwrap();
        total += n.unwrap_or(0);
    }
    total
}

/// A relay to the server on `to`: as each connection's sender closes it, the last bytes the
/// sender wrote on it (up to 256) are pushed to `closed` (what a server connection ended
/// with: COM_QUIT, or nothing, an aborted connection).
pub async fn recording_relay(to: u16, closed: Closed) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(("127.0.0.1", to))
                .await
                .unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
            let closed = std::sync::Arc::clone(&closed);
            tokio::spawn(async move {
                let (mut buf, mut tail) = (vec![0u8; 65536], Vec::new());
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    tail.extend_from_slice(&buf[..n]);
                    tail.drain(..tail.len().saturating_sub(256));
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                closed.lock().unwrap().push(tail);
            });
        }
    });
    port
}

/// What [`recording_relay`] records: the last bytes of each connection closed.
pub type Closed = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// A proxy for [`config_text`]`("")` whose primary is reached through a [`recording_relay`].
pub async fn start_with_recorded_primary() -> (Proxy, Closed) {
    let closed = Closed::default();
    let relay = recording_relay(primary_port(), std::sync::Arc::clone(&closed)).await;
    let text = config_text("").replacen(
        &format!("primary = \"127.0.0.1:{}\"", primary_port()),
        &format!("primary = \"127.0.0.1:{relay}\""),
        1,
    );
    (
        start(config::parse(&text, &|_| None).unwrap()).await,
        closed,
    )
}

/// Waits until a connection whose last bytes hold `needle` is closed, and asserts it ended
/// with COM_QUIT, as a client done with it ends one (dropped, the server logs an aborted
/// connection and counts it in `Aborted_clients`).
pub async fn assert_closed_with_quit(closed: &Closed, needle: &[u8], what: &str) {
    let tail = until(
        &format!("{what} closes"),
        Duration::from_secs(10),
        || async {
            let closed = closed.lock().unwrap();
            closed
                .iter()
                .find(|t| t.windows(needle.len()).any(|w| w == needle))
                .cloned()
        },
    )
    .await;
    assert!(
        tail.ends_with(&[1, 0, 0, 0, 1]),
        "{what} ended without COM_QUIT: last bytes {:?}",
        &tail[tail.len().saturating_sub(8)..]
    );
}

/// A relay to the server on `to` that counts the connections made through it and what they
/// send (`received`; the first MiB kept in `sent`); while `hold` is true, what they send is
/// kept back rather than forwarded, and past 1 MiB kept back no more is read (the sender
/// blocks).
pub struct Gate {
    pub port: u16,
    pub hold: tokio::sync::watch::Sender<bool>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    sent: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Gate {
    pub async fn start(to: u16) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (hold, held) = tokio::sync::watch::channel(false);
        let gate = Gate {
            port: listener.local_addr().unwrap().port(),
            hold,
            accepted: Default::default(),
            received: Default::default(),
            sent: Default::default(),
        };
        let counts = (
            gate.accepted.clone(),
            gate.received.clone(),
            gate.sent.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counts.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let server = tokio::net::TcpStream::connect(("127.0.0.1", to))
                    .await
                    .unwrap();
                let (cr, mut cw) = client.into_split();
                let (mut sr, sw) = server.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
                tokio::spawn(gate_forward(cr, sw, held.clone(), counts.clone()));
            }
        });
        gate
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How often `needle` appears in the first MiB sent through the gate.
    pub fn sent_count(&self, needle: &str) -> usize {
        let sent = self.sent.lock().unwrap();
        sent.windows(needle.len())
            .filter(|w| *w == needle.as_bytes())
            .count()
    }
}

type GateCounts = (
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
);

/// What a client sends through a [`Gate`], toward its server.
async fn gate_forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut held: tokio::sync::watch::Receiver<bool>,
    (_, received, sent): GateCounts,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const MIB: usize = 1 << 20;
    let (mut buf, mut kept) = (vec![0u8; 65536], Vec::new());
    loop {
        let reads = !*held.borrow() || kept.len() < MIB;
        tokio::select! {
            r = from.read(&mut buf), if reads => {
                let n = match r { Ok(0) | Err(_) => return, Ok(n) => n };
                received.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                let mut sent = sent.lock().unwrap();
                let room = MIB.saturating_sub(sent.len()).min(n);
                sent.extend_from_slice(&buf[..room]);
                drop(sent);
                kept.extend_from_slice(&buf[..n]);
            }
            c = held.changed() => if c.is_err() { return },
        }
        if !*held.borrow() && !kept.is_empty() {
            if to.write_all(&kept).await.is_err() {
                return;
            }
            kept.clear();
        }
    }
}
