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

/// Serves until `shutdown` completes.
pub async fn run(listeners: Listeners, state: SharedState, shutdown: impl Future<Output = ()>) {
    state.load().learn_server_info().await;
    frontend::serve(listeners.app, state, shutdown).await;
}
