//! Worker threads: each a current-thread runtime that owns the sessions handed to it, from
//! accept to close.
//!
//! One acceptor (on the caller's runtime) hands each new connection to the worker with the
//! fewest live sessions. That balances a handful of long-lived clients evenly, where
//! SO_REUSEPORT's hash of the 4-tuple can put 5 of 8 on one core; accepting costs a few
//! microseconds per connection, not per statement, so one acceptor does not limit
//! throughput. A session never moves: what its statements write (counters, digests, the
//! router's cache, `state::per_worker`) is its worker's own.

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

struct Worker {
    tx: mpsc::UnboundedSender<Accepted>,
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
        if let Err(mpsc::error::SendError(a)) = w.tx.send(a) {
            // The worker is gone (it panicked): the client is dropped, not left hanging.
            w.sessions.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(session = a.id, "worker thread gone: connection closed");
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
    mut rx: mpsc::UnboundedReceiver<Accepted>,
    state: SharedState,
    sessions: Arc<AtomicUsize>,
) {
    while let Some(a) = rx.recv().await {
        let stream = match tokio::net::TcpStream::from_std(a.stream) {
            Ok(s) => s,
            Err(e) => {
                sessions.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "accepted connection not usable");
                continue;
            }
        };
        // Given back however the session ends, a panic included.
        let busy = Slot(Arc::clone(&sessions));
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _slots = (a.slot, busy);
            super::handle(stream, a.peer.ip().to_string(), a.id, a.live, state).await;
        });
    }
}
