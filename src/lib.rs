//! Switchyard: a read/write-splitting, tenant-aware MySQL wire-protocol proxy.
//!
//! The data plane (`frontend` → `router` → `backend`, over `protocol`) relays each
//! statement to the right server of the client's tenant; the control plane (`config`,
//! `state`) builds the shared snapshot every session reads.

pub mod backend;
pub mod config;
pub mod frontend;
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
    frontend::serve(listeners.app, state, shutdown).await;
    reloader.abort();
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
