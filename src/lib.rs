//! Switchyard: a read/write-splitting, tenant-aware MySQL wire-protocol proxy.
//!
//! The data plane (`frontend` → `router` → `backend`, over `protocol`) relays each
//! statement to the right server of the client's tenant; the control plane (`config`,
//! `state`, `monitor`) builds the shared snapshot every session reads and keeps track of
//! which backends are healthy; `admin` serves the admin port and the HTTP metrics and probes.

pub mod admin;
pub mod backend;
pub mod config;
pub mod fleet;
pub mod frontend;
pub mod monitor;
pub mod protocol;
pub mod router;
pub mod state;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;

use state::SharedState;

/// The sockets Switchyard serves, bound by the caller (tests bind port 0).
pub struct Listeners {
    pub app: TcpListener,
    /// The admin port (MySQL protocol), if configured.
    pub admin: Option<TcpListener>,
    /// `/metrics`, `/health`, `/ready`, if configured.
    pub http: Option<TcpListener>,
}

/// Connections the kernel queues for the application port before Switchyard accepts them.
/// MySQL clients wait for the server to speak first, so one whose handshake the kernel
/// dropped from a full queue waits for ever: a burst of connect-per-request clients must
/// fit (the kernel caps it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` (`host:port`, the first address it resolves to) with
/// [`LISTEN_BACKLOG`].
pub async fn bind(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let sa = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let socket = if sa.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(sa)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves until `shutdown` completes, then stops the admin and HTTP listeners too.
/// SIGHUP reloads the config file. Sessions run on `server.threads` worker threads
/// (`frontend::workers`), the first of which accepts; the caller's runtime runs the control
/// plane (admin port, HTTP, monitor, reloads). An error when the worker threads could not
/// start (nothing was served): a supervisor restarting on failure must see one.
pub async fn run(
    listeners: Listeners,
    state: SharedState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let admin_serving = listeners.admin.is_some();
    state
        .load()
        .shared
        .admin_serving
        .store(admin_serving, Ordering::Relaxed);
    let learned = state.load().learn_server_info().await;
    state.load().prepare_rsa_key().await;
    // Before the first client: a tenant paused fleet-wide is held here too.
    let fleet = fleet::start(&state).await;
    // Tenants that come from the fleet's document, or a first primary that did not answer:
    // the backends' greeting is learned once one answers (until then clients get the
    // built-in profile's, and executable comments are judged by its version).
    let learner = (!learned).then(|| tokio::spawn(learn_server_info_later(Arc::clone(&state))));
    let n = frontend::workers::count(state.load().config.server.threads);
    let workers = match frontend::workers::Workers::start(n, &state) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the worker threads");
            for task in [learner, fleet].into_iter().flatten() {
                task.abort();
            }
            return Err(e);
        }
    };
    tracing::info!(workers = n, "session workers started");
    let reloader = tokio::spawn(reload_on_sighup(Arc::clone(&state)));
    let sweeper = tokio::spawn(sweep_idle_connections(Arc::clone(&state)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let ready = Arc::new(AtomicBool::new(false));
    let mut control = Vec::new();
    if let Some(l) = listeners.admin {
        let done = until_stopped(stopped.clone());
        control.push(tokio::spawn(admin::serve(l, Arc::clone(&state), done)));
    }
    if let Some(l) = listeners.http {
        let done = until_stopped(stopped.clone());
        let ready = Arc::clone(&ready);
        control.push(tokio::spawn(admin::http::serve(
            l,
            Arc::clone(&state),
            ready,
            done,
        )));
    }
    ready.store(true, Ordering::Release);
    frontend::serve(listeners.app, &workers, shutdown).await;
    ready.store(false, Ordering::Release);
    // The admin port stays up while sessions drain, so ops can watch them finish.
    drain(&state).await;
    workers.stop().await;
    // Said goodbye to, not cut off: see `BackendConn::quit`.
    state.load().shared.pools.close_idle();
    let _ = stop.send(true);
    for task in control {
        let _ = task.await;
    }
    // After the admin port: what a command cut off there takes back goes before leaving.
    if let Some(task) = fleet {
        task.abort();
        fleet::leave(&state).await;
    }
    reloader.abort();
    sweeper.abort();
    if let Some(task) = learner {
        task.abort();
    }
    Ok(())
}

async fn learn_server_info_later(state: SharedState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if state.load_full().learn_server_info().await {
            tracing::info!("learned the backends' greeting");
            return;
        }
    }
}

/// Stops sessions at their next transaction boundary and waits for them, at most
/// `shutdown_grace`; whatever is left is cut off when the runtime ends.
async fn drain(state: &SharedState) {
    let rt = state.load_full();
    rt.shared.shutdown.send_replace(true);
    rt.shared.registry.shut_down_all();
    let grace = rt.config.server.shutdown_grace;
    let deadline = tokio::time::Instant::now() + grace;
    while rt.shared.registry.count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let left = rt.shared.registry.count();
    if left > 0 {
        tracing::warn!(
            sessions = left,
            "shutdown grace over: closing sessions still in a transaction"
        );
    } else {
        tracing::info!("all sessions closed");
    }
}

/// Closes backend connections idle past the pool's limit every few seconds, in every
/// list: a list is pruned when a connection comes back to it, and to some none ever does
/// (an old primary's after a promotion, a removed tenant's).
async fn sweep_idle_connections(state: SharedState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        state.load().sweep_pools(std::time::Instant::now());
    }
}

async fn reload_on_sighup(state: SharedState) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("SIGHUP cannot be watched: reload through the admin port only");
        return;
    };
    while hup.recv().await.is_some() {
        if let Err(e) = state::reload::reload(&state) {
            tracing::error!(error = %e, "reload refused");
        }
    }
}
