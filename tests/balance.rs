//! Sessions moving between worker threads (`server.worker_fill`): gathered on one worker
//! under light load, spread again when a worker carries more than the fill, a pinned
//! session kept where it is, and every session seeing exactly its own state across moves.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Statement};
use switchyard::config::Config;
use switchyard::state::{reload, SharedState};

const SESSIONS: usize = 8;
/// The session with a temporary table: pinned to its connection, so it never moves.
const PINNED: usize = 1;
/// A light client's pace: one round of statements per this.
const LIGHT: Duration = Duration::from_millis(100);

fn config(fill: u8) -> Config {
    let mut cfg = common::config("");
    cfg.server.threads = 2;
    cfg.server.worker_fill = fill;
    cfg
}

fn schema(i: usize) -> &'static str {
    ["wf_acme", "rb_acme"][i % 2]
}

fn sql_mode(i: usize) -> &'static str {
    ["ANSI_QUOTES", "NO_ZERO_DATE"][i % 2]
}

/// One client and what it set, checked after every statement.
struct Client {
    i: usize,
    conn: Conn,
    plus_mine: Statement,
}

impl Client {
    async fn open(port: u16, i: usize) -> Client {
        let mut conn = common::connect(port, "acme_app", Some(schema(i))).await;
        let mode = sql_mode(i);
        conn.query_drop(format!("SET SESSION sql_mode = '{mode}'"))
            .await
            .unwrap();
        // Replayed on whichever connection serves it (a user variable would pin it).
        let len = 1000 + i;
        conn.query_drop(format!(
            "SET time_zone = '+0{i}:00', group_concat_max_len = {len}"
        ))
        .await
        .unwrap();
        if i == PINNED {
            conn.query_drop("CREATE TEMPORARY TABLE balance_mine (x INT)")
                .await
                .unwrap();
            conn.query_drop(format!("INSERT INTO balance_mine VALUES ({i})"))
                .await
                .unwrap();
        }
        let plus_mine = conn
            .prep("SELECT ? + @@group_concat_max_len")
            .await
            .unwrap();
        Client { i, conn, plus_mine }
    }

    /// One round of statements, each answer checked against what this session set.
    async fn step(&mut self) {
        let i = self.i;
        let (mode, zone, db): (String, String, String) = self
            .conn
            .query_first("SELECT @@sql_mode, @@time_zone, DATABASE()")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mode, sql_mode(i), "session {i}'s sql_mode");
        assert_eq!(zone, format!("+0{i}:00"), "session {i}'s time_zone");
        assert_eq!(db, schema(i), "session {i}'s schema");
        let sum: i64 = self
            .conn
            .exec_first(&self.plus_mine, (100,))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sum, 1100 + i as i64, "session {i}'s prepared statement");
        if i == PINNED {
            let x: i64 = self
                .conn
                .query_first("SELECT x FROM balance_mine")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(x, i as i64, "session {i}'s temporary table");
        }
    }
}

/// Sessions per worker, as /metrics reads them.
fn placement(state: &SharedState) -> [usize; 2] {
    let rt = state.load();
    let board = &rt.shared.workers;
    [board.sessions(0), board.sessions(1)]
}

/// The tenant's statements as each worker counted them, by worker (`[0, 1]`).
fn counted(state: &SharedState) -> [u64; 2] {
    let mut by_worker = [0; 2];
    for (slot, c) in state.load().shared.stats.tenant_by_slot("acme") {
        // Worker i writes slot 1 + i; slot 0 is the threads that are no worker.
        if let Some(n) = slot.checked_sub(1).and_then(|w| by_worker.get_mut(w)) {
            *n = c.to_primary + c.to_replica;
        }
    }
    by_worker
}

/// Gathered on worker 0 (all but the pinned session, idle on worker 1), the clients run a
/// round each: every statement is counted by worker 0, including those of the sessions
/// that moved there from worker 1 (their counters must have moved with them).
async fn gathered_count_on_their_worker(
    mut clients: Vec<Client>,
    state: &SharedState,
) -> Vec<Client> {
    let before = counted(state);
    let mut statements = 0;
    for c in clients.iter_mut().filter(|c| c.i != PINNED) {
        c.step().await;
        statements += 2;
    }
    // A session counts a statement just after its answer went out: read until all are.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = counted(state);
    while after[0] + after[1] < before[0] + before[1] + statements && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        after = counted(state);
    }
    assert_eq!(placement(state), [7, 1], "still gathered");
    assert_eq!(
        [after[0] - before[0], after[1] - before[1]],
        [statements, 0],
        "statements counted by worker 0 and by worker 1"
    );
    clients
}

/// Every client runs rounds, one per `pace` (light load) or back to back (None), until
/// `until` holds or 20 s pass. The pinned session stays light throughout: alone on its
/// worker and back to back, it would load that worker as much as the others load theirs,
/// and the balancer would rightly find nothing to even out.
async fn run_until(
    clients: Vec<Client>,
    state: &SharedState,
    pace: Option<Duration>,
    until: impl Fn([usize; 2]) -> bool,
) -> (Vec<Client>, bool) {
    let done = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let done = Arc::clone(&done);
            let pace = if c.i == PINNED { Some(LIGHT) } else { pace };
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    c.step().await;
                    if let Some(pace) = pace {
                        tokio::time::sleep(pace).await;
                    }
                }
                c
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut met = false;
    while Instant::now() < deadline {
        if until(placement(state)) {
            met = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done.store(true, Ordering::Relaxed);
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("a client's checks failed"));
    }
    (clients, met)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_gather_and_spread_between_workers_keeping_their_own_state() {
    let state = switchyard::state::RuntimeState::new(config(0)).shared();
    let proxy = common::start_shared(state.clone()).await;
    let port = proxy.addr.port();
    let mut clients = Vec::new();
    for i in 0..SESSIONS {
        clients.push(Client::open(port, i).await);
    }
    // Moving off: the accepting worker spread them by count.
    assert_eq!(placement(&state), [4, 4], "accepted alternately");
    let rt = state.load();
    assert_eq!(rt.shared.workers.moves(), 0);
    for c in &mut clients {
        c.step().await;
    }

    // Light load (each client a round of statements every 100 ms) under the default fill:
    // all but the pinned session gather on worker 0. Light even for a test build on a busy
    // machine: at a round every 20 ms, such a build's sessions used about 0.75 of a core
    // between them, over the fill, and spread again as soon as they had gathered.
    reload::apply(&state, config(75)).unwrap();
    let light = Some(LIGHT);
    let (clients, met) = run_until(clients, &state, light, |p| p == [7, 1]).await;
    let moved = state.load().shared.workers.moves();
    assert!(
        met,
        "sessions per worker {:?}, {moved} moves",
        placement(&state)
    );
    assert!(moved >= 3, "{moved} moves");
    let clients = gathered_count_on_their_worker(clients, &state).await;

    // Clients back to back (but the pinned one), and a fill of 1% of a core: worker 0's
    // load is over it, and about half goes to worker 1.
    reload::apply(&state, config(1)).unwrap();
    let (mut clients, met) = run_until(clients, &state, None, |p| p[1] >= 3).await;
    let spread = state.load().shared.workers.moves() - moved;
    assert!(
        met,
        "sessions per worker {:?}, {spread} moves",
        placement(&state)
    );
    for c in &mut clients {
        c.step().await;
    }
    assert_eq!(placement(&state).iter().sum::<usize>(), SESSIONS);
}
