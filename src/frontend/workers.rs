//! Worker threads: each a current-thread runtime that owns the sessions handed to it, from
//! accept to close, or until the balancer (`balance.rs`) moves one to another worker.
//!
//! The first worker accepts (`Job::Listen`) and keeps each new connection unless another
//! worker in use has fewer live sessions, which is then handed it. That balances a handful
//! of long-lived clients evenly, where SO_REUSEPORT's hash of the 4-tuple can put 5 of 8 on
//! one core; accepting costs a few microseconds per connection, not per statement, so one
//! accepting worker does not limit throughput. An acceptor thread of its own cost every
//! connection a wake-up across threads and two more `epoll_ctl` calls. A connection joins the
//! I/O driver of the worker that serves it, and no other. A session moves only between
//! commands, holding no server connection (`Job::Moved`): what its statements write
//! (counters, digests, the router's cache, `state::per_worker`) is always the own slot of
//! the worker running it.

use std::cell::RefCell;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use super::balance::{self, CpuClock};
use super::session::Session;
use super::Slot;
use crate::state::{per_worker, SharedState};

/// A connection the accepting worker handed over, with what it learned at accept.
pub(super) struct Accepted {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
    pub id: u32,
    /// Live client connections, this one included (for the connection limit).
    pub live: usize,
    pub slot: Slot,
}

/// A session leaving its worker between commands, for worker `to`.
pub(super) struct Departure {
    pub session: Box<Session>,
    pub to: usize,
}

/// What a worker is handed.
enum Job {
    /// A connection the accepting worker handed over.
    Conn(Accepted),
    /// A session another worker let go, with its slot among the live connections.
    Moved(Box<Session>, Slot),
    /// The listener itself, to accept on, until `stop` reads true.
    Listen {
        listener: std::net::TcpListener,
        live: Arc<AtomicUsize>,
        stop: tokio::sync::watch::Receiver<bool>,
        dispatch: Arc<Dispatch>,
    },
}

struct Worker {
    tx: mpsc::UnboundedSender<Job>,
    /// Sessions this worker serves now.
    sessions: Arc<AtomicUsize>,
}

/// The running workers. Dropping this ends them once their queues are empty: a worker whose
/// senders are gone stops and cuts off the sessions it still had, as the end of a runtime
/// does.
pub struct Workers {
    dispatch: Arc<Dispatch>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The workers' queues and loads: what hands a connection to the least busy one.
pub(super) struct Dispatch {
    workers: Vec<Worker>,
}

thread_local! {
    /// The workers' queues, as a worker thread reaches them to hand a session over.
    static DISPATCH: RefCell<Weak<Dispatch>> = const { RefCell::new(Weak::new()) };
}

/// The worker count `configured` asks for: 0 means one per core the process may use.
pub fn count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    // Past the most workers the counters have slots for, more would share them.
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(crate::config::MAX_THREADS)
}

impl Workers {
    /// Starts `n` (at least one) worker threads serving sessions of `state`, and the
    /// balancer that moves sessions between them (on the calling runtime).
    pub fn start(n: usize, state: &SharedState) -> std::io::Result<Self> {
        let n = n.max(1);
        state.load().shared.pools.set_workers(n);
        let counters = state.load().shared.workers.start(n);
        let mut queues = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for sessions in counters {
            let (tx, rx) = mpsc::unbounded_channel();
            workers.push(Worker { tx, sessions });
            queues.push(rx);
        }
        let dispatch = Arc::new(Dispatch { workers });
        let mut threads = Vec::with_capacity(n);
        for (i, rx) in queues.into_iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let state = Arc::clone(state);
            let count = Arc::clone(&dispatch.workers[i].sessions);
            let weak = Arc::downgrade(&dispatch);
            let thread = std::thread::Builder::new()
                .name(format!("sy-worker-{i}"))
                .spawn(move || {
                    per_worker::enter_worker(i);
                    DISPATCH.with(|d| *d.borrow_mut() = weak);
                    runtime.block_on(serve(rx, state, count, i));
                })?;
            threads.push(thread);
        }
        let clocks = threads.iter().map(CpuClock::of).collect();
        balance::start(clocks, state, &dispatch);
        Ok(Workers { dispatch, threads })
    }

    /// Has the first worker accept on `listener` until `stop` reads true, keeping each
    /// connection or handing it to a less busy worker.
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
            dispatch: Arc::clone(&self.dispatch),
        };
        if self.dispatch.workers[0].tx.send(job).is_err() {
            tracing::error!("worker thread gone: not accepting clients");
        }
    }

    /// Ends the workers (sessions still open are cut off) and waits for their threads.
    pub async fn stop(self) {
        let Workers { dispatch, threads } = self;
        // The accepting worker's share goes when its accept loop stops (the listener's
        // `stop`, sent before this).
        drop(dispatch);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

impl Dispatch {
    /// The worker with the fewest sessions among the first `active` (those the balancer
    /// has in use); `here` (the accepting one) on a tie, which keeps the connection where
    /// it was accepted.
    fn least_busy(&self, here: usize, active: usize) -> usize {
        let load = |i: usize| self.workers[i].sessions.load(Ordering::Relaxed);
        let active = active.clamp(1, self.workers.len());
        let first = if here < active { here } else { 0 };
        (0..active).fold(first, |best, i| if load(i) < load(best) { i } else { best })
    }

    /// Hands an accepted connection to worker `i`.
    fn send(&self, i: usize, a: Accepted) {
        let w = &self.workers[i];
        w.sessions.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(Job::Conn(a))) = w.tx.send(Job::Conn(a)) {
            // The worker is gone (it panicked): the client is dropped, not left hanging.
            w.sessions.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(session = a.id, "worker thread gone: connection closed");
        }
    }
}

/// A worker's loop (worker `here`): runs each connection and session it is handed as a
/// task of its own runtime until its senders are gone.
async fn serve(
    mut rx: mpsc::UnboundedReceiver<Job>,
    state: SharedState,
    sessions: Arc<AtomicUsize>,
    here: usize,
) {
    tokio::spawn(tick());
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
                let state = Arc::clone(&state);
                let session = super::handle(stream, a.peer, a.id, a.live, state, here);
                run_session(session, a.slot, busy);
            }
            Job::Moved(mut session, live) => {
                let busy = Slot(Arc::clone(&sessions));
                if let Err(e) = session.arrive(here) {
                    tracing::warn!(session = session.id, error = %e, "session could not move to this worker: closed");
                    continue;
                }
                run_session(super::resume(session), live, busy);
            }
            Job::Listen {
                listener,
                live,
                stop,
                dispatch,
            } => {
                let state = Arc::clone(&state);
                tokio::spawn(accept_here(listener, state, dispatch, live, stop));
            }
        }
    }
}

/// Wakes the worker once a second, so its timer driver never sleeps longer: a timer armed
/// for an earlier moment than the driver's next wake-up makes tokio wake the driver through
/// its eventfd, and every client's login timeout (10 s) was such a timer while the only
/// others were sessions' idle timers (hours): one syscall and one more loop per connection.
async fn tick() {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
    }
}

/// Runs a session as a task of this worker; `live` and `busy` (this worker's count) are
/// given back however it ends, a panic included, and `live` goes along if it moves.
fn run_session(
    session: impl Future<Output = Option<Departure>> + Send + 'static,
    live: Slot,
    busy: Slot,
) {
    // Boxed: a session's future is kilobytes, and spawning moves it through half a dozen
    // calls (task cell, runtime context) by value: 3,900 instructions of memcpy per
    // connection (callgrind, connect-per-request clients), against one allocation. Behind
    // `dyn`, its poll stays a function of its own (`run_session::{{closure}}`), which
    // bench/instructions.sh counts in.
    let task: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let departing = session.await;
        drop(busy);
        if let Some(d) = departing {
            depart(d, live);
        }
    });
    tokio::spawn(task);
}

/// Hands a departing session to its new worker. With the workers stopping, or the new one
/// gone, the session ends here (its client connection closed).
fn depart(d: Departure, live: Slot) {
    let Some(dispatch) = DISPATCH.with(|w| w.borrow().upgrade()) else {
        return;
    };
    let Some(w) = dispatch.workers.get(d.to) else {
        return;
    };
    w.sessions.fetch_add(1, Ordering::Relaxed);
    let id = d.session.id;
    if w.tx.send(Job::Moved(d.session, live)).is_err() {
        w.sessions.fetch_sub(1, Ordering::Relaxed);
        tracing::error!(session = id, "worker thread gone: connection closed");
    }
}

/// The client's address as the server shows it (`127.0.0.1`), an IPv4 one written without
/// the formatting machinery: a connect-per-request client paid 2,200 instructions at every
/// connection for `to_string`'s padding support.
pub(super) fn host_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, &o) in v4.octets().iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if o >= 100 {
            s.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            s.push(char::from(b'0' + o / 10 % 10));
        }
        s.push(char::from(b'0' + o % 10));
    }
    s
}

/// The accepting worker's loop (worker 0): a client runs here unless another worker in use
/// has fewer sessions, which is then handed it.
async fn accept_here(
    listener: std::net::TcpListener,
    state: SharedState,
    dispatch: Arc<Dispatch>,
    live: Arc<AtomicUsize>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    const HERE: usize = 0;
    // Accepted sockets inherit it (see `PacketStream::accepted`).
    if let Err(e) = socket2::SockRef::from(&listener).set_tcp_nodelay(true) {
        tracing::warn!(error = %e, "TCP_NODELAY not set on the listener: client answers may be delayed");
    }
    // The listener is watched through tokio, but a connection is accepted unregistered and
    // joins the I/O driver of the worker that serves it: a handed-over connection is
    // registered once, not registered here, deregistered and registered again (two
    // `epoll_ctl` calls per hand-over).
    let listener = mio::net::TcpListener::from_std(listener);
    // SAFETY: the mio listener owns its descriptor and keeps it, open and the same, for as
    // long as the AsyncFd holds it (I/O safety: nothing else can close or replace it).
    let registered =
        unsafe { AsyncFd::register_with_interest(listener, tokio::io::Interest::READABLE) };
    let listener = match registered {
        Ok(l) => l,
        Err(e) => {
            let (_, e) = e.into_parts();
            tracing::error!(error = %e, "listener not usable: not accepting clients");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            a = accept(&listener) => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Some((stream, peer)) = accepted else {
            continue;
        };
        let rt = state.load();
        let id = rt.shared.registry.next_id();
        let count = live.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Slot(Arc::clone(&live));
        let to = dispatch.least_busy(HERE, rt.shared.workers.active());
        drop(rt);
        if to != HERE {
            let a = Accepted {
                stream,
                peer,
                id,
                live: count,
                slot,
            };
            dispatch.send(to, a);
            continue;
        }
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepted connection not usable");
                continue;
            }
        };
        let sessions = &dispatch.workers[HERE].sessions;
        sessions.fetch_add(1, Ordering::Relaxed);
        let busy = Slot(Arc::clone(sessions));
        let session = super::handle(stream, peer, id, count, Arc::clone(&state), HERE);
        run_session(session, slot, busy);
    }
}

/// The next client connection, non-blocking and in no I/O driver yet; None after a failed
/// accept (logged, and backed off).
async fn accept(
    listener: &AsyncFd<mio::net::TcpListener>,
) -> Option<(std::net::TcpStream, SocketAddr)> {
    let failed = loop {
        let mut ready = match listener.readable().await {
            Ok(r) => r,
            Err(e) => break e,
        };
        // A WouldBlock clears the readiness, and the loop waits for the next connection.
        match ready.try_io(|l| l.get_ref().accept()) {
            Ok(Ok((stream, peer))) => return Some((stream.into(), peer)),
            Ok(Err(e)) => break e,
            Err(_would_block) => continue,
        }
    };
    // Out of file descriptors and the like: back off instead of spinning.
    tracing::warn!(error = %failed, "accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_written_as_to_string_writes_them() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        for o in [0u8, 1, 9, 10, 42, 99, 100, 101, 199, 200, 255] {
            let ip = IpAddr::V4(Ipv4Addr::new(o, 255 - o, o / 2, 7));
            assert_eq!(host_text(ip), ip.to_string());
        }
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(host_text(v6), "::1");
    }

    fn dispatch(loads: &[usize]) -> Dispatch {
        let workers = loads
            .iter()
            .map(|n| Worker {
                tx: mpsc::unbounded_channel().0,
                sessions: Arc::new(AtomicUsize::new(*n)),
            })
            .collect();
        Dispatch { workers }
    }

    #[test]
    fn the_accepting_worker_keeps_a_connection_unless_another_has_fewer_sessions() {
        assert_eq!(dispatch(&[0, 0]).least_busy(0, 2), 0, "a tie stays here");
        assert_eq!(dispatch(&[3, 3, 3]).least_busy(0, 3), 0);
        assert_eq!(dispatch(&[1, 0]).least_busy(0, 2), 1);
        assert_eq!(
            dispatch(&[4, 2, 1, 1]).least_busy(0, 4),
            2,
            "the first of the least"
        );
        assert_eq!(
            dispatch(&[4, 2, 1, 1]).least_busy(0, 2),
            1,
            "only workers in use"
        );
        assert_eq!(dispatch(&[9, 0]).least_busy(0, 1), 0, "one in use");
    }
}
