//! The control plane's faces: the admin port (MySQL protocol, built on opensrv-mysql, one
//! file per command) and the HTTP endpoint (`/metrics`, `/health`, `/ready`, and the status
//! page `/` with its JSON `/api/...`).
//!
//! Commands are parsed in `command`, answered as [`table::Table`]s by the command files,
//! and written to the wire by `server`; [`execute`] is the whole path minus the wire.

mod api;
mod backend_state;
mod backends;
pub mod command;
mod compat;
mod digest;
mod explain;
mod fleet;
mod framed;
pub mod http;
mod http_auth;
pub mod log_line;
mod login;
pub mod metrics;
mod pause;
mod pools;
mod rates;
mod reload;
mod server;
mod sessions;
mod stats;
mod status;
pub mod table;
mod tenants;
mod variables;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use opensrv_mysql::AsyncMysqlIntermediary;
use tokio::io::BufWriter;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::state::SharedState;
use command::{Command, COMMANDS};
use compat::Session;
use table::{Kind, Reply, Table};

pub use backends::{status_of, BackendStatus};

/// Admin connections served at once; more are closed right away.
const MAX_ADMIN_CONNECTIONS: usize = 64;

/// Parses and runs one admin command from `session`.
pub async fn execute(state: &SharedState, session: &Session, text: &str) -> Reply {
    let cmd = command::parse(text)?;
    let rt = state.load_full();
    match cmd {
        Command::ShowTenants(filter) => tenants::show(&rt, &filter),
        Command::ShowBackends => backends::show(&rt),
        Command::ShowPools => pools::show(&rt),
        Command::ShowSessions => sessions::show(&rt),
        Command::ShowStats => stats::show(&rt),
        Command::ShowQueryDigest => digest::show(&rt),
        Command::ShowCommands => {
            let mut t = Table::new(&[("command", Kind::Text)]);
            for c in COMMANDS {
                t.push(vec![(*c).into()]);
            }
            Ok(t)
        }
        Command::ExplainRoute { target, sql } => explain::explain(&rt, &target, &sql),
        Command::Reload => reload::run(state),
        Command::Pause { tenant, timeout } => pause::pause(state, &tenant, timeout).await,
        Command::Resume { tenant } => pause::resume(state, &tenant).await,
        Command::SetBackend { addr, offline } => backend_state::set(state, &addr, offline).await,
        Command::ShowFleet => fleet::show(&rt).await,
        Command::Client(stmt) => compat::answer(session, &stmt),
    }
}

/// Serves the admin port until `shutdown` completes; open admin connections end then too.
pub async fn serve(listener: TcpListener, state: SharedState, shutdown: impl Future<Output = ()>) {
    let ids = AtomicU32::new(0);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if conns.len() >= MAX_ADMIN_CONNECTIONS {
            tracing::warn!(%peer, "admin connection refused: {MAX_ADMIN_CONNECTIONS} already open");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = ids.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let state = Arc::clone(&state);
        conns.spawn(async move {
            let refusal = login::Refusal::default();
            let host = peer.ip().to_string();
            let timeout = state.load().config.server.handshake_timeout;
            let shim = server::AdminShim::new(state, id, host.clone(), Arc::clone(&refusal));
            let logged_in = shim.logged_in();
            let (r, w) = stream.into_split();
            let r = framed::PacketBounded::new(r);
            let w = login::LoginErrWriter::new(BufWriter::new(w), refusal, host);
            let run = AsyncMysqlIntermediary::run_on(shim, r, w);
            // Silent connections would hold the 64 slots and lock operators out.
            let handshake = async {
                tokio::time::sleep(timeout).await;
                if logged_in.get().is_some() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                ended = run => if let Err(e) = ended {
                    tracing::debug!(admin = id, error = %e, "admin connection ended");
                },
                () = handshake => tracing::info!(admin = id, %peer, "admin handshake timed out"),
            }
        });
    }
    conns.abort_all();
    // Waited for: a PAUSE cut off here takes its pause back as its task is dropped
    // (`fleet::undo`), before the instance leaves the fleet.
    while conns.join_next().await.is_some() {}
}
