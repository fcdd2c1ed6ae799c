//! Worker threads: each a current-thread runtime that owns the sessions handed to it, from
//! accept to close.
//!
//! One acceptor (on the caller's runtime) hands each new connection to the worker with the
//! fewest live sessions. That balances a handful of long-lived clients evenly, where
//! SO_REUSEPORT's hash of the 4-tuple can put 5 of 8 on one core; accepting costs a few
//! microseconds per connection, not per statement, so one acceptor does not limit
//! throughput. A lone worker accepts on the listener itself (`Job::Listen`): with nothing
//! to balance, the hand-over would only cost each connection a wake-up across threads. A
//! session never moves: what its statements write (counters, digests, the router's cache,
//! `state::per_worker`) is its worker's own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Slot;
use crate::state::{per_worker, SharedState};

/// A connection the acceptor handed over, with what it learned at accept.
pub(super) struct Accepted {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
    pub id: u32,
    /// Live client connections, this one included (for the connection limit).
    pub live: usize,
    pub slot: Slot,
}

/// What a worker is handed.
enum Job {
    /// A connection the acceptor accepted.
    Conn(Accepted),
    /// The listener itself, to accept on (the only worker), until `stop` reads true.
    Listen {
        listener: std::net::TcpListener,
        live: Arc<AtomicUsize>,
        stop: tokio::sync::watch::Receiver<bool>,
    },
}

struct Worker {
    tx: mpsc::UnboundedSender<Job>,
    /// Sessions this worker serves now.
    sessions: Arc<AtomicUsize>,
}

/// The running workers. Dropping this ends them once their queues are empty: a worker whose
/// acceptor is gone stops and cuts off the sessions it still had, as the end of a runtime
/// does.
pub struct Workers {
    workers: Vec<Worker>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Where the search for the least busy worker starts, so ties rotate.
    next: AtomicUsize,
}

/// The worker count `configured` asks for: 0 means one per core the process may use.
pub fn count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Workers {
    /// Starts `n` (at least one) worker threads serving sessions of `state`.
    pub fn start(n: usize, state: &SharedState) -> std::io::Result<Self> {
        let mut workers = Vec::with_capacity(n.max(1));
        let mut threads = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            let sessions = Arc::new(AtomicUsize::new(0));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (state, count) = (Arc::clone(state), Arc::clone(&sessions));
            let thread = std::thread::Builder::new()
                .name(format!("sy-worker-{i}"))
                .spawn(move || {
                    per_worker::enter_worker(i);
                    runtime.block_on(serve(rx, state, count));
                })?;
            workers.push(Worker { tx, sessions });
            threads.push(thread);
        }
        Ok(Workers {
            workers,
            threads,
            next: AtomicUsize::new(0),
        })
    }

    /// Hands a new connection to the worker with the fewest sessions.
    pub(super) fn dispatch(&self, a: Accepted) {
        let n = self.workers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let w = (0..n)
            .map(|k| &self.workers[(start + k) % n])
            .min_by_key(|w| w.sessions.load(Ordering::Relaxed))
            .expect("at least one worker");
        w.sessions.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(Job::Conn(a))) = w.tx.send(Job::Conn(a)) {
            // The worker is gone (it panicked): the client is dropped, not left hanging.
            w.sessions.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(session = a.id, "worker thread gone: connection closed");
        }
    }

    /// How many workers there are.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Has the first worker accept on `listener` itself until `stop` reads true.
    pub(super) fn listen(
        &self,
        listener: std::net::TcpListener,
        live: Arc<AtomicUsize>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let job = Job::Listen {
            listener,
            live,
            stop,
        };
        if self.workers[0].tx.send(job).is_err() {
            tracing::error!("worker thread gone: not accepting clients");
        }
    }

    /// Ends the workers (sessions still open are cut off) and waits for their threads.
    pub async fn stop(self) {
        let Workers {
            workers, threads, ..
        } = self;
        drop(workers);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// A worker's loop: runs each connection it is handed as a task of its own runtime until
/// the acceptor is gone.
async fn serve(
    mut rx: mpsc::UnboundedReceiver<Job>,
    state: SharedState,
    sessions: Arc<AtomicUsize>,
) {
    while let Some(job) = rx.recv().await {
        match job {
            Job::Conn(a) => {
                let stream = match tokio::net::TcpStream::from_std(a.stream) {
                    Ok(s) => s,
                    Err(e) => {
                        sessions.fetch_sub(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "accepted connection not usable");
                        continue;
                    }
                };
                let busy = Slot(Arc::clone(&sessions));
                run_session(stream, a.peer, a.id, a.live, (a.slot, busy), &state);
            }
            Job::Listen {
                listener,
                live,
                stop,
            } => {
                let (state, sessions) = (Arc::clone(&state), Arc::clone(&sessions));
                tokio::spawn(accept_here(listener, state, sessions, live, stop));
            }
        }
    }
}

/// Runs a session as a task of this worker; `slots` are given back however it ends, a
/// panic included.
fn run_session(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    id: u32,
    live: usize,
    slots: (Slot, Slot),
    state: &SharedState,
) {
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let _slots = slots;
        super::handle(stream, peer.ip().to_string(), id, live, state).await;
    });
}

/// The only worker's accept loop: each client runs here from accept to close.
async fn accept_here(
    listener: std::net::TcpListener,
    state: SharedState,
    sessions: Arc<AtomicUsize>,
    live: Arc<AtomicUsize>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "listener not usable: not accepting clients");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            a = super::accept(&listener) => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Some((stream, peer)) = accepted else {
            continue;
        };
        let id = state.load().shared.registry.next_id();
        let count = live.fetch_add(1, Ordering::Relaxed) + 1;
        sessions.fetch_add(1, Ordering::Relaxed);
        let slots = (Slot(Arc::clone(&live)), Slot(Arc::clone(&sessions)));
        run_session(stream, peer, id, count, slots, &state);
    }
}
