//! Switchyard: a read/write-splitting, tenant-aware MySQL wire-protocol proxy.
//!
//! The data plane (`frontend` → `router` → `backend`, over `protocol`) relays each
//! statement to the right server of the client's tenant; the control plane (`config`,
//! `state`, `monitor`) builds the shared snapshot every session reads and keeps track of
//! which backends are healthy.

pub mod backend;
pub mod config;
pub mod frontend;
pub mod monitor;
pub mod protocol;
pub mod router;
pub mod state;

use std::future::Future;

use tokio::net::TcpListener;

use state::SharedState;

/// The sockets Switchyard serves, bound by the caller (tests bind port 0).
pub struct Listeners {
    pub app: TcpListener,
}

/// Serves until `shutdown` completes. SIGHUP reloads the config file.
pub async fn run(listeners: Listeners, state: SharedState, shutdown: impl Future<Output = ()>) {
    state.load().learn_server_info().await;
    let reloader = tokio::spawn(reload_on_sighup(std::sync::Arc::clone(&state)));
    frontend::serve(listeners.app, std::sync::Arc::clone(&state), shutdown).await;
    reloader.abort();
    drain(&state).await;
}

/// Stops sessions at their next transaction boundary and waits for them, at most
/// `shutdown_grace`; whatever is left is cut off when the runtime ends.
async fn drain(state: &SharedState) {
    let rt = state.load_full();
    rt.shared.shutdown.send_replace(true);
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
