//! A chaos soak against the chaos cluster: 16 clients run reads, autocommit INSERTs and short
//! transactions through the real `switchyard` binary while replicas are killed (kill -9, then
//! started again), stopped (SIGSTOP, then SIGCONT), the primary is restarted (kill -9, then
//! started again) and the config is reloaded by SIGHUP every 10 s. Clients log in again every
//! 100 operations. `SY_SOAK_SECS` sets the length (default 60, as in CI; `bench/soak.sh`
//! runs 600).
//!
//! Afterwards, with the cluster healthy again, it checks:
//! - every acknowledged write (an autocommit INSERT or a COMMIT answered OK) is on the
//!   primary, no row is there that no client sent, and each transaction's two rows are there
//!   both or neither;
//! - every read's answer is right: a client's count of its own rows (`consistency =
//!   "tenant"`) is at least what it had acknowledged before the read and at most what it had
//!   sent;
//! - every error a client saw is allowed below; anything else fails the test, in particular
//!   a statement with no answer within 20 s, a client connection the proxy dropped, an error
//!   naming a replica, and any error while the primary was up (a killed or stopped replica
//!   must cost no client anything but time);
//! - the proxy is alive, logged no panic, applied every SIGHUP, and its RSS over the last
//!   third of the run stays within `RSS_SLACK_MB` of its maximum over the first third.
//!
//! Allowed, only while the primary is down or within `GRACE` of its return (the proxy skips
//! a server that refused a connection for 2 s, the monitor needs `rise` good checks):
//! 1. a write (INSERT, BEGIN, an INSERT in a transaction, COMMIT) gets ERR 2003 "Can't
//!    connect to primary ..." (the primary is down);
//! 2. a write gets ERR 2013 naming the primary: the statement was in flight when the
//!    primary died (its outcome unknown: a COMMIT so answered may or may not have
//!    committed, which is why only acknowledged writes must be there), or the transaction's
//!    primary connection died while the client was between statements (its next statement
//!    is told, the transaction is gone);
//! 3. a statement of an open transaction (INSERT, COMMIT) finds its client connection
//!    closed: the primary connection holding the transaction died, and Switchyard ends the
//!    client's connection as the server's end would have;
//! 4. a read gets ERR 2003 naming the primary and a GTID position the read must see "which
//!    no replica has applied", and that position is indeed beyond what each replica had
//!    applied just before the primary came back: writes the primary logged in its last
//!    moments that no replica received. Switchyard knows of them from a lookup of the
//!    primary's position, or the monitor's, made before the kill; only the dead primary
//!    holds them, so no server can answer the read truthfully.
//!
//! A read in flight on a replica that is killed is retried on another server by the proxy, a
//! read on a stopped replica waits for SIGCONT (seconds): neither is an error.
//!
//! Not allowed, ever: a login that fails, a read that fails while a replica can serve it
//! (with the primary down, replicas that applied all they received, or apply it within the
//! lag limit, keep serving: `primary lost`), and a read that misses a write acknowledged
//! before it while the primary is up. A login's own read (the driver's `SELECT
//! @@max_allowed_packet, ...`) reads no data and waits for no write.
//!
//! Allowed while the primary is down (and counted): a read that misses writes of its own
//! client that the primary acknowledged in its last moments and no replica had received
//! (asynchronous replication loses them until the primary returns). These clients do not
//! negotiate session tracking, so Switchyard cannot know those writes' GTIDs; for clients
//! that do, such a read gets an error instead (docs/routing.md, "Primary unreachable").

mod common;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{binary, chaos_ports, chaos_root, with_restore, CHAOS_LOCK};
use mysql_async::prelude::*;
use mysql_async::Conn;
use switchyard::monitor::GtidPos;

const CLIENTS: u32 = 16;
const TABLE: &str = "wf_acme.chaos_soak";
/// A statement with no answer after this long counts as hung (a SIGSTOP lasts `PAUSE`).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(20);
const RELOAD_EVERY: Duration = Duration::from_secs(10);
/// Pause between two chaos actions, so clients see the cluster healthy in between.
const GAP: Duration = Duration::from_secs(2);
/// How long a killed server stays down, and a stopped replica stopped.
const DOWN: Duration = Duration::from_secs(2);
const PAUSE: Duration = Duration::from_secs(3);
/// No action starts later than this before the end: the longest one (a restart and the
/// cluster's catch-up) must be over before the clients stop.
const LAST_ACTION_BEFORE_END: Duration = Duration::from_secs(12);
const MAX_ACTIONS: usize = 200;
/// Each client logs in again after this many operations.
const RECONNECT_EVERY: u64 = 101;
/// Errors are allowed this long after the primary is back (see the module comment).
const GRACE: Duration = Duration::from_secs(3);
const RSS_EVERY: Duration = Duration::from_secs(2);
/// Allocator slack, pools refilled after restarts: more than this is growth.
const RSS_SLACK_MB: u64 = 20;
const SEED: u64 = 0x50a4_c4a0_5eed;

fn soak_secs() -> u64 {
    std::env::var("SY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

// ---- the cluster ----

fn cluster_dir() -> String {
    std::env::var("SY_CHAOS_CLUSTER_DIR").unwrap_or_else(|_| "/tmp/switchyard-chaos".into())
}

/// Starts whatever chaos server is down and waits for the replicas to catch up.
async fn cluster_up() {
    let [p, r1, r2] = chaos_ports();
    let status = tokio::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh"))
        .arg("up")
        .env("SWITCHYARD_CLUSTER_DIR", cluster_dir())
        .env("SY_PRIMARY_PORT", p.to_string())
        .env("SY_REPLICA1_PORT", r1.to_string())
        .env("SY_REPLICA2_PORT", r2.to_string())
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "chaos cluster up");
}

/// Sends `signal` (KILL, STOP, CONT) to one chaos server; false if it has no live pid.
fn signal(instance: &str, signal: &str) -> bool {
    let Ok(pid) = std::fs::read_to_string(format!("{}/{instance}/mysqld.pid", cluster_dir()))
    else {
        return false;
    };
    std::process::Command::new("kill")
        .args([&format!("-{signal}"), pid.trim()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Leaves the chaos cluster healthy: nothing stopped, everything running and replicating.
async fn restore() {
    for replica in ["replica1", "replica2"] {
        signal(replica, "CONT");
    }
    cluster_up().await;
    let [_, r1, r2] = chaos_ports();
    for r in [r1, r2] {
        common::restore_replication(r).await;
    }
    common::wait_for_chaos_replicas().await;
}

async fn create_table() {
    let mut c = chaos_root(chaos_ports()[0]).await;
    c.query_drop(format!("DROP TABLE IF EXISTS {TABLE}"))
        .await
        .unwrap();
    c.query_drop(format!(
        "CREATE TABLE {TABLE} (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
         v VARCHAR(40) NOT NULL UNIQUE, client INT NOT NULL, KEY (client))"
    ))
    .await
    .unwrap();
    // Replicas without the table would fail reads for a reason of the test's own.
    common::wait_for_chaos_replicas().await;
}

// ---- the proxy ----

/// Two valid configs the soak alternates between on SIGHUP: the lag limit and a replica's
/// weight change, so each reload builds a new tenant.
fn config(port: u16, variant: usize) -> String {
    let [p, r1, r2] = chaos_ports();
    let (lag, weight) = [("2s", 1), ("3s", 2)][variant % 2];
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[monitor]
user = "sy_monitor"
password = "sy_monitor"
rise = 2

[[tenants]]
name = "acme"
schemas = ["wf_acme"]
primary = "127.0.0.1:{p}"
replicas = ["127.0.0.1:{r1}", {{ addr = "127.0.0.1:{r2}", weight = {weight} }}]
consistency = "tenant"
health_interval = "200ms"
max_replica_lag = "{lag}"

[[users]]
name = "acme_app"
password = "acme_pw"
tenant = "acme"
"#
    )
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Whether the process still runs (a dead child stays a zombie until waited for).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|st| !st.trim().starts_with('Z'))
    })
}

async fn sample_rss(pid: u32, t0: Instant, until: Duration) -> Vec<u64> {
    let mut samples = Vec::new();
    while t0.elapsed() < until {
        samples.push(rss_kb(pid));
        tokio::time::sleep(RSS_EVERY).await;
    }
    samples.push(rss_kb(pid));
    samples
}

/// Every `RELOAD_EVERY`, writes the other config and sends SIGHUP; returns how many.
async fn reload_loop(
    pid: u32,
    file: std::path::PathBuf,
    port: u16,
    t0: Instant,
    until: Duration,
) -> usize {
    let mut sent = 0;
    loop {
        tokio::time::sleep(RELOAD_EVERY).await;
        if t0.elapsed() >= until {
            return sent;
        }
        sent += 1;
        std::fs::write(&file, config(port, sent)).unwrap();
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP {pid}");
    }
}

// ---- chaos ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    KillReplica(usize),
    PauseReplica(usize),
    RestartPrimary,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::KillReplica(_) => "kill -9 a replica, start it",
            Action::PauseReplica(_) => "SIGSTOP a replica, SIGCONT",
            Action::RestartPrimary => "kill -9 the primary, start it",
        }
    }
}

/// When an action ran, relative to the start of the soak.
#[derive(Clone, Debug)]
struct Window {
    action: Action,
    from: Duration,
    to: Duration,
    /// A primary restart: each replica's applied position (`gtid_slave_pos`) just before the
    /// primary came back, all they could have had while it was down.
    replicas_applied: Vec<String>,
}

/// splitmix64: a fixed, seeded order of actions without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// Rounds of the three kinds of action, each round in a seeded order with seeded replicas,
/// so even the shortest soak (one round) covers every kind.
fn plan(seed: u64, n: usize) -> Vec<Action> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut round = vec![
            Action::KillReplica(rng.below(2)),
            Action::PauseReplica(rng.below(2)),
            Action::RestartPrimary,
        ];
        while !round.is_empty() {
            out.push(round.swap_remove(rng.below(round.len())));
        }
    }
    out.truncate(n);
    out
}

fn replica(i: usize) -> &'static str {
    ["replica1", "replica2"][i]
}

/// Runs one action; for a primary restart, returns what the replicas had applied just
/// before the primary came back.
async fn act(action: Action) -> Vec<String> {
    match action {
        Action::KillReplica(i) => {
            assert!(signal(replica(i), "KILL"), "kill -9 {}", replica(i));
            tokio::time::sleep(DOWN).await;
            cluster_up().await;
        }
        Action::PauseReplica(i) => {
            assert!(signal(replica(i), "STOP"), "SIGSTOP {}", replica(i));
            tokio::time::sleep(PAUSE).await;
            assert!(signal(replica(i), "CONT"), "SIGCONT {}", replica(i));
        }
        Action::RestartPrimary => {
            assert!(signal("primary", "KILL"), "kill -9 primary");
            tokio::time::sleep(DOWN).await;
            let [_, r1, r2] = chaos_ports();
            let mut applied = Vec::new();
            for r in [r1, r2] {
                let pos: Option<String> = chaos_root(r)
                    .await
                    .query_first("SELECT @@GLOBAL.gtid_slave_pos")
                    .await
                    .unwrap();
                applied.push(pos.unwrap_or_default());
            }
            cluster_up().await;
            return applied;
        }
    }
    Vec::new()
}

/// Runs the plan until `LAST_ACTION_BEFORE_END` before `until`; each action ends with the
/// cluster healthy again.
async fn chaos(t0: Instant, until: Duration, windows: Arc<Mutex<Vec<Window>>>) {
    for action in plan(SEED, MAX_ACTIONS) {
        tokio::time::sleep(GAP).await;
        if t0.elapsed() + LAST_ACTION_BEFORE_END > until {
            return;
        }
        let from = t0.elapsed();
        let replicas_applied = act(action).await;
        let to = t0.elapsed();
        windows.lock().unwrap().push(Window {
            action,
            from,
            to,
            replicas_applied,
        });
    }
}

// ---- clients ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Login,
    Read,
    Insert,
    Begin,
    TxnInsert,
    Commit,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Login => "login",
            Op::Read => "read (SELECT COUNT)",
            Op::Insert => "autocommit INSERT",
            Op::Begin => "BEGIN",
            Op::TxnInsert => "INSERT in a transaction",
            Op::Commit => "COMMIT",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ErrKind {
    /// An ERR packet with this code; the connection stays usable.
    Server(u16),
    /// The connection to the proxy broke (the proxy closed it, or it could not be made).
    Closed,
    /// No answer within `STATEMENT_TIMEOUT`.
    Timeout,
}

impl ErrKind {
    fn of(e: &mysql_async::Error) -> ErrKind {
        match e {
            mysql_async::Error::Server(s) => ErrKind::Server(s.code),
            _ => ErrKind::Closed,
        }
    }

    fn name(self) -> String {
        match self {
            ErrKind::Server(code) => format!("ERR {code}"),
            ErrKind::Closed => "connection closed".into(),
            ErrKind::Timeout => "timeout".into(),
        }
    }
}

#[derive(Debug)]
struct ErrorSeen {
    client: u32,
    op: Op,
    kind: ErrKind,
    from: Duration,
    to: Duration,
    message: String,
}

#[derive(Default)]
struct ClientLog {
    statements: BTreeMap<Op, u64>,
    /// Every value an INSERT was sent for, and those acknowledged.
    sent: Vec<String>,
    acked: Vec<String>,
    /// Each transaction's two values (the second maybe never sent).
    txns: Vec<(String, String)>,
    errors: Vec<ErrorSeen>,
    wrong: Vec<WrongRead>,
    max_latency: Duration,
}

/// A count of the client's own rows outside [acknowledged before the read, sent].
struct WrongRead {
    client: u32,
    from: Duration,
    to: Duration,
    count: usize,
    acked: usize,
    sent: usize,
    /// The port of the server that answered.
    served_by: u16,
}

impl WrongRead {
    fn describe(&self) -> String {
        format!(
            "client {} at {:.2}s..{:.2}s counted {} of its rows, had {} acknowledged and {} sent (server {})",
            self.client,
            self.from.as_secs_f64(),
            self.to.as_secs_f64(),
            self.count,
            self.acked,
            self.sent,
            self.served_by
        )
    }
}

struct Client {
    id: u32,
    port: u16,
    t0: Instant,
    seq: u64,
    conn: Option<Conn>,
    log: ClientLog,
}

/// Runs `fut` (a statement or a login) with a timeout, counting it and recording its error.
async fn attempt<T>(
    log: &mut ClientLog,
    client: u32,
    t0: Instant,
    op: Op,
    fut: impl Future<Output = mysql_async::Result<T>>,
) -> Result<T, ErrKind> {
    *log.statements.entry(op).or_default() += 1;
    let from = t0.elapsed();
    let answer = tokio::time::timeout(STATEMENT_TIMEOUT, fut).await;
    let to = t0.elapsed();
    log.max_latency = log.max_latency.max(to - from);
    let (kind, message) = match answer {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => (ErrKind::of(&e), e.to_string()),
        Err(_) => (
            ErrKind::Timeout,
            format!("no answer in {STATEMENT_TIMEOUT:?}"),
        ),
    };
    log.errors.push(ErrorSeen {
        client,
        op,
        kind,
        from,
        to,
        message,
    });
    Err(kind)
}

impl Client {
    fn new(id: u32, port: u16, t0: Instant) -> Client {
        Client {
            id,
            port,
            t0,
            seq: 0,
            conn: None,
            log: ClientLog::default(),
        }
    }

    async fn run(mut self, until: Duration) -> ClientLog {
        let mut n = 0u64;
        while self.t0.elapsed() < until {
            if self.conn.is_none() && !self.login().await {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            n += 1;
            if n.is_multiple_of(RECONNECT_EVERY) {
                // A new connection now and then, as web requests make them: logins are
                // part of the load.
                if let Some(c) = self.conn.take() {
                    let _ = c.disconnect().await;
                }
                continue;
            }
            match n % 4 {
                0 | 1 => self.read().await,
                2 => self.insert().await,
                _ => self.transaction().await,
            }
        }
        if let Some(c) = self.conn.take() {
            let _ = c.disconnect().await;
        }
        self.log
    }

    async fn login(&mut self) -> bool {
        let opts = common::opts(self.port, "acme_app", Some("wf_acme"));
        let r = attempt(&mut self.log, self.id, self.t0, Op::Login, Conn::new(opts)).await;
        self.conn = r.ok();
        self.conn.is_some()
    }

    /// Keeps the connection after an ERR packet, drops it when it broke.
    fn settle<T>(&mut self, r: Result<T, ErrKind>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(ErrKind::Server(_)) => None,
            Err(_) => {
                self.conn = None;
                None
            }
        }
    }

    async fn exec(&mut self, op: Op, sql: String) -> bool {
        let Some(c) = self.conn.as_mut() else {
            return false;
        };
        let r = attempt(&mut self.log, self.id, self.t0, op, c.query_drop(sql)).await;
        self.settle(r).is_some()
    }

    fn next_value(&mut self) -> String {
        self.seq += 1;
        format!("c{}-{}", self.id, self.seq)
    }

    async fn insert_value(&mut self, op: Op, v: &str) -> bool {
        self.log.sent.push(v.to_owned());
        let sql = format!(
            "INSERT INTO chaos_soak (v, client) VALUES ('{v}', {})",
            self.id
        );
        self.exec(op, sql).await
    }

    /// Counts the client's own rows: never fewer than it had acknowledged, never more than
    /// it had sent.
    async fn read(&mut self) {
        let (acked, id, from) = (self.log.acked.len(), self.id, self.t0.elapsed());
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        let sql = format!("SELECT COUNT(*), @@port FROM chaos_soak WHERE client = {id}");
        let r = attempt(&mut self.log, id, self.t0, Op::Read, c.query_first(sql)).await;
        let Some((count, served_by)) = self.settle(r).flatten() else {
            return;
        };
        let (count, sent): (usize, usize) = (count, self.log.sent.len());
        if count < acked || count > sent {
            let to = self.t0.elapsed();
            self.log.wrong.push(WrongRead {
                client: id,
                from,
                to,
                count,
                acked,
                sent,
                served_by,
            });
        }
    }

    async fn insert(&mut self) {
        let v = self.next_value();
        if self.insert_value(Op::Insert, &v).await {
            self.log.acked.push(v);
        }
    }

    /// BEGIN; INSERT; INSERT; COMMIT, rolled back at the first error.
    async fn transaction(&mut self) {
        if !self.exec(Op::Begin, "BEGIN".into()).await {
            return self.rollback().await;
        }
        let (a, b) = (self.next_value(), self.next_value());
        self.log.txns.push((a.clone(), b.clone()));
        for v in [&a, &b] {
            if !self.insert_value(Op::TxnInsert, v).await {
                return self.rollback().await;
            }
        }
        if self.exec(Op::Commit, "COMMIT".into()).await {
            self.log.acked.extend([a, b]);
        } else {
            self.rollback().await;
        }
    }

    /// What an application does after an error in a transaction; its own outcome does not
    /// matter (the transaction may be gone with its server).
    async fn rollback(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            let r = tokio::time::timeout(STATEMENT_TIMEOUT, c.query_drop("ROLLBACK")).await;
            if !matches!(r, Ok(Ok(())) | Ok(Err(mysql_async::Error::Server(_)))) {
                self.conn = None;
            }
        }
    }
}

// ---- the verdict ----

fn overlaps(from: Duration, to: Duration, w: &Window) -> bool {
    from <= w.to + GRACE && to >= w.from
}

fn primary_trouble(from: Duration, to: Duration, windows: &[Window]) -> bool {
    windows
        .iter()
        .any(|w| w.action == Action::RestartPrimary && overlaps(from, to, w))
}

/// A read that missed some of its client's acknowledged writes (never one it did not send)
/// while the primary was down: writes the primary acknowledged in its last moments that
/// no replica received yet. These clients (mysql_async) do not ask for session tracking,
/// so Switchyard cannot know those writes' GTIDs to refuse the read (docs/routing.md).
fn stale_while_primary_died(w: &WrongRead, windows: &[Window]) -> bool {
    // The kill happens just before its window is recorded.
    let lead = Duration::from_millis(500);
    w.count <= w.sent && primary_trouble(w.from + lead, w.to + lead, windows)
}

/// What the module comment's lists say of something a client saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Judgement {
    Allowed,
    Forbidden,
}

fn judge_error(e: &ErrorSeen, windows: &[Window]) -> Judgement {
    if !primary_trouble(e.from, e.to, windows) {
        return Judgement::Forbidden;
    }
    if e.op == Op::Read && e.kind == ErrKind::Server(2003) {
        return judge_read_behind(e, windows);
    }
    // A transaction whose primary connection died: its client's connection ends, as it
    // would directly (the transaction is gone, and the driver must know).
    if matches!(e.op, Op::TxnInsert | Op::Commit) && e.kind == ErrKind::Closed {
        return Judgement::Allowed;
    }
    if !e.message.contains("primary") {
        return Judgement::Forbidden;
    }
    match (e.op, e.kind) {
        (Op::Insert | Op::Begin | Op::TxnInsert | Op::Commit, ErrKind::Server(2003 | 2013)) => {
            Judgement::Allowed
        }
        _ => Judgement::Forbidden,
    }
}

/// A read refused while the primary was down because it must see writes no replica has
/// applied (allowed 4): the position it names must really be beyond what every replica had
/// applied before the primary came back, or the read was refused while a replica could
/// serve it.
fn judge_read_behind(e: &ErrorSeen, windows: &[Window]) -> Judgement {
    let Some(needed) = position_named(&e.message) else {
        return Judgement::Forbidden;
    };
    let applied = |pos: &String| GtidPos::parse(pos).expect("a replica's gtid_slave_pos");
    let beyond_replicas = windows
        .iter()
        .filter(|w| w.action == Action::RestartPrimary && overlaps(e.from, e.to, w))
        .any(|w| {
            !w.replicas_applied
                .iter()
                .any(|r| applied(r).covers(&needed))
        });
    if beyond_replicas {
        Judgement::Allowed
    } else {
        Judgement::Forbidden
    }
}

/// The GTID position in Switchyard's "the read must see ... up to GTID <pos>, which no
/// replica has applied"; `None` without one (or with one that does not parse).
fn position_named(message: &str) -> Option<GtidPos> {
    let (_, rest) = message.split_once(" up to GTID ")?;
    let (pos, _) = rest.split_once(", which no replica has applied")?;
    GtidPos::parse(pos).ok()
}

/// What the primary holds, against what the clients sent and were told.
async fn check_rows(logs: &[ClientLog]) -> (usize, Vec<String>) {
    let mut p = chaos_root(chaos_ports()[0]).await;
    let rows: Vec<String> = p.query(format!("SELECT v FROM {TABLE}")).await.unwrap();
    let present: HashSet<&str> = rows.iter().map(String::as_str).collect();
    let sent: HashSet<&str> = logs
        .iter()
        .flat_map(|l| l.sent.iter().map(String::as_str))
        .collect();
    let mut problems = Vec::new();
    for v in logs.iter().flat_map(|l| &l.acked) {
        if !present.contains(v.as_str()) {
            problems.push(format!("acknowledged {v} missing"));
        }
    }
    for v in &present {
        if !sent.contains(v) {
            problems.push(format!("row {v} that no client sent"));
        }
    }
    for (a, b) in logs.iter().flat_map(|l| &l.txns) {
        if present.contains(a.as_str()) != present.contains(b.as_str()) {
            problems.push(format!("transaction ({a}, {b}) half there"));
        }
    }
    (rows.len(), problems)
}

struct Figures {
    secs: u64,
    statements: BTreeMap<Op, u64>,
    acked: usize,
    rows: usize,
    errors: BTreeMap<(Op, ErrKind), usize>,
    actions: BTreeMap<&'static str, usize>,
    reloads: usize,
    rss: Vec<u64>,
    max_latency: Duration,
    wrong_reads: usize,
}

impl Figures {
    fn print(&self) {
        let total: u64 = self.statements.values().sum();
        let rss = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
        println!("\n| chaos soak, {} s, {CLIENTS} clients | |", self.secs);
        println!("| --- | --- |");
        println!("| statements (logins included) | {total} |");
        for (op, n) in &self.statements {
            println!("| - {} | {n} |", op.name());
        }
        println!("| acknowledged writes (rows) | {} |", self.acked);
        println!("| rows on the primary afterwards | {} |", self.rows);
        for ((op, kind), n) in &self.errors {
            println!("| error: {} on {} | {n} |", kind.name(), op.name());
        }
        println!("| wrong reads | {} |", self.wrong_reads);
        for (name, n) in &self.actions {
            println!("| chaos: {name} | {n} |");
        }
        println!("| chaos: SIGHUP reloads (applied) | {} |", self.reloads);
        println!("| slowest statement | {:?} |", self.max_latency);
        let max = self.rss.iter().copied().max().unwrap_or(0);
        println!(
            "| proxy RSS first / last / max | {} / {} / {} |",
            rss(self.rss[0]),
            rss(*self.rss.last().unwrap()),
            rss(max)
        );
    }
}

/// The max of the first and of the last third of the samples.
fn rss_thirds(samples: &[u64]) -> (u64, u64) {
    let third = (samples.len() / 3).max(1);
    let first = samples[..third].iter().copied().max().unwrap();
    let last = samples[samples.len() - third..]
        .iter()
        .copied()
        .max()
        .unwrap();
    (first, last)
}

fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

// ---- the test ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_kills_stops_restarts_and_reloads() {
    let _guard = CHAOS_LOCK.lock().await;
    restore().await;
    create_table().await;
    with_restore(soak(soak_secs()), restore()).await;
}

async fn soak(secs: u64) {
    let log_path = std::env::temp_dir().join(format!("sy-soak-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log_path).unwrap();
    let bin = binary::spawn(|port| config(port, 0), &[], Stdio::from(log_file));
    let pid = bin.pid();
    drop(bin.connect("acme_app", Some("wf_acme")).await);
    println!(
        "soak: {secs} s, proxy pid {pid}, its log in {}",
        log_path.display()
    );

    let (t0, until) = (Instant::now(), Duration::from_secs(secs));
    let windows = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(Client::new(id, bin.port, t0).run(until)))
        .collect();
    let chaos = tokio::spawn(chaos(t0, until, windows.clone()));
    let reloads = tokio::spawn(reload_loop(pid, bin.config_path(), bin.port, t0, until));
    let rss = tokio::spawn(sample_rss(pid, t0, until));

    let mut logs = Vec::new();
    for c in clients {
        logs.push(c.await.unwrap());
    }
    chaos.await.unwrap();
    let reloads = reloads.await.unwrap();
    let rss = rss.await.unwrap();
    let windows = windows.lock().unwrap().clone();

    // The proxy survived and still serves.
    assert!(
        alive(pid),
        "the proxy died; its log: {}",
        log_path.display()
    );
    let mut after = bin.connect("acme_app", Some("wf_acme")).await;
    let _: Option<u64> = after
        .query_first("SELECT COUNT(*) FROM chaos_soak")
        .await
        .unwrap();
    drop(after);

    restore().await;
    let (rows, row_problems) = check_rows(&logs).await;
    let proxy_log = std::fs::read_to_string(&log_path).unwrap();
    report(secs, &logs, &windows, reloads, &rss, rows);
    verdict(&logs, &windows, &row_problems, &proxy_log, reloads, &rss);
    let _ = std::fs::remove_file(&log_path);
}

fn report(
    secs: u64,
    logs: &[ClientLog],
    windows: &[Window],
    reloads: usize,
    rss: &[u64],
    rows: usize,
) {
    let mut f = Figures {
        secs,
        statements: BTreeMap::new(),
        acked: logs.iter().map(|l| l.acked.len()).sum(),
        rows,
        errors: BTreeMap::new(),
        actions: BTreeMap::new(),
        reloads,
        rss: rss.to_vec(),
        max_latency: logs.iter().map(|l| l.max_latency).max().unwrap_or_default(),
        wrong_reads: logs.iter().map(|l| l.wrong.len()).sum(),
    };
    for l in logs {
        for (op, n) in &l.statements {
            *f.statements.entry(*op).or_default() += n;
        }
        for e in &l.errors {
            *f.errors.entry((e.op, e.kind)).or_default() += 1;
        }
    }
    if let Some(w) = logs.iter().flat_map(|l| &l.wrong).next() {
        println!("first wrong read: {}", w.describe());
    }
    for w in windows {
        *f.actions.entry(w.action.name()).or_default() += 1;
        println!(
            "chaos {:?} from {:.1}s to {:.1}s {}",
            w.action,
            w.from.as_secs_f64(),
            w.to.as_secs_f64(),
            w.replicas_applied.join(" ")
        );
    }
    f.print();
}

fn verdict(
    logs: &[ClientLog],
    windows: &[Window],
    row_problems: &[String],
    proxy_log: &str,
    reloads: usize,
    rss: &[u64],
) {
    let mut problems: Vec<String> = row_problems.to_vec();
    for l in logs {
        for w in l
            .wrong
            .iter()
            .filter(|w| !stale_while_primary_died(w, windows))
        {
            problems.push(format!("wrong read: {}", w.describe()));
        }
        for e in l
            .errors
            .iter()
            .filter(|e| judge_error(e, windows) == Judgement::Forbidden)
        {
            problems.push(format!(
                "client {} {} at {:.1}s..{:.1}s: {}: {}",
                e.client,
                e.op.name(),
                e.from.as_secs_f64(),
                e.to.as_secs_f64(),
                e.kind.name(),
                e.message
            ));
        }
    }
    problems.extend(proxy_problems(proxy_log, reloads));
    let (first, last) = rss_thirds(rss);
    println!("RSS max of the first third {first} kB, of the last third {last} kB");
    if last > first + RSS_SLACK_MB * 1024 {
        problems.push(format!(
            "RSS grew: {first} kB max in the first third, {last} kB in the last (bound +{RSS_SLACK_MB} MB)"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems (the first {SHOWN}):\n{}\n\nwhat the proxy logged of its backends:\n{}",
        problems.len(),
        problems[..problems.len().min(SHOWN)].join("\n"),
        backend_lines(proxy_log)
    );
}

/// Problems printed when the soak fails: the rest are mostly the same error repeated.
const SHOWN: usize = 40;

/// The proxy's log of backend state changes and fallbacks, for a failure's message: which
/// server the proxy held unfit, when and why.
fn backend_lines(proxy_log: &str) -> String {
    const KEPT: usize = 120;
    let lines: Vec<&str> = proxy_log
        .lines()
        .filter(|l| {
            ["backend up", "backend not eligible", "reads go to"]
                .iter()
                .any(|k| l.contains(k))
        })
        .collect();
    lines[lines.len().saturating_sub(KEPT)..].join("\n")
}

/// A panic in the proxy's log, or a SIGHUP that was not applied.
fn proxy_problems(proxy_log: &str, reloads: usize) -> Vec<String> {
    let mut problems = Vec::new();
    if count_lines(proxy_log, "panicked") > 0 {
        problems.push("the proxy logged a panic".into());
    }
    let applied = count_lines(proxy_log, "configuration reloaded");
    let refused = count_lines(proxy_log, "reload refused");
    if applied != reloads || refused > 0 {
        problems.push(format!(
            "{reloads} SIGHUPs: {applied} reloads applied, {refused} refused"
        ));
    }
    problems
}

#[test]
fn the_plan_covers_every_action_in_its_first_round() {
    let first: HashSet<_> = plan(SEED, 3)
        .into_iter()
        .map(|a| std::mem::discriminant(&a))
        .collect();
    assert_eq!(first.len(), 3);
}

#[test]
fn a_read_refused_for_writes_no_replica_had_is_allowed_only_if_none_had_them() {
    let secs = Duration::from_secs;
    let windows = [Window {
        action: Action::RestartPrimary,
        from: secs(10),
        to: secs(14),
        replicas_applied: vec!["0-1-100".into(), "0-1-98".into()],
    }];
    let read = |at: u64, needs: &str| ErrorSeen {
        client: 0,
        op: Op::Read,
        kind: ErrKind::Server(2003),
        from: secs(at),
        to: secs(at + 1),
        message: format!(
            "Can't connect to primary 127.0.0.1:3317 of tenant acme: cannot connect: \
             Connection refused (os error 111); the read must see the tenant's writes up to \
             GTID {needs}, which no replica has applied"
        ),
    };
    let judge = |e: ErrorSeen| judge_error(&e, &windows);
    assert_eq!(judge(read(11, "0-1-101")), Judgement::Allowed);
    assert_eq!(judge(read(11, "0-1-100,1-2-1")), Judgement::Allowed);
    assert_eq!(
        judge(read(11, "0-1-100")),
        Judgement::Forbidden,
        "a replica had it"
    );
    assert_eq!(
        judge(read(30, "0-1-101")),
        Judgement::Forbidden,
        "primary up"
    );
    let mut plain = read(11, "0-1-101");
    plain.message = "Can't connect to primary 127.0.0.1:3317 of tenant acme".into();
    assert_eq!(judge(plain), Judgement::Forbidden, "no position named");
    assert_eq!(
        judge(read(11, "0-1-x")),
        Judgement::Forbidden,
        "no GTID position"
    );
}
