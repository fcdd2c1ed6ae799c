//! Client-facing side: listener, handshake and auth, tenant resolution, the session pipeline.

mod auth;
mod backends;
mod balance;
mod causal;
mod change_user;
mod client;
mod commands;
mod cursor;
mod deadline;
pub mod error;
mod isolation;
mod kill;
mod lease;
mod login;
mod metadata;
mod offload;
mod ops;
mod pins;
mod prepared;
mod query;
mod session;
mod tenant;
mod vars;
pub mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

use crate::protocol::packets::{err_payload, err_payload_before_greeting, ErrSpec};
use crate::protocol::proxy_header;
use crate::protocol::PacketStream;
use crate::state::limits::Refusal;
use crate::state::{RuntimeState, SharedState};
use error::SessionError;
use session::{Ran, Session};
use workers::{Departure, Workers};

pub use client::REPICK_EVERY;
pub use kill::kill_for_fleet;
pub use pins::Reason as PinReason;

/// The largest packet accepted before a client has logged in: a handshake response with the
/// most connection attributes clients send (64 KiB) and room to spare.
const HANDSHAKE_MAX_PACKET: usize = 128 * 1024;

/// Who is at the other end of a client connection.
struct Peer {
    /// The client's address as logs, errors and SHOW SESSIONS show it.
    host: String,
    /// A `server.proxy_protocol` balancer relays the connection.
    balancer: bool,
}

/// The client's address: the connection's own, or, on a connection from a load balancer
/// listed in `server.proxy_protocol`, the one its PROXY header names. Such a connection
/// without a valid header within `handshake_timeout` gets an ERR saying so (counted,
/// logged): a MySQL client behind a balancer not configured to send one would otherwise
/// wait for a greeting that never comes, and a header from anyone else is never believed.
async fn client_host(
    stream: &mut TcpStream,
    peer: SocketAddr,
    id: u32,
    rt: &RuntimeState,
) -> Result<Peer, ErrSpec> {
    let ip = peer.ip().to_canonical();
    let trusted = &rt.config.server.proxy_protocol;
    if trusted.is_empty() || !trusted.iter().any(|n| n.contains(&ip)) {
        let host = workers::host_text(ip);
        return Ok(Peer {
            host,
            balancer: false,
        });
    }
    let timeout = rt.config.server.handshake_timeout;
    let problem = match tokio::time::timeout(timeout, proxy_header::read(stream)).await {
        Ok(Ok(client)) => {
            let host = workers::host_text(client.unwrap_or(ip));
            return Ok(Peer {
                host,
                balancer: true,
            });
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("none within {}s", timeout.as_secs_f64()),
    };
    rt.shared.limits.refuse(Refusal::ProxyHeader);
    tracing::info!(session = id, peer = %ip, problem, "connection refused: PROXY header expected");
    Err(ErrSpec::new(
        1043,
        "08S01",
        format!(
            "Bad handshake: a connection from {ip} must begin with a PROXY protocol header \
             (server.proxy_protocol): {problem}"
        ),
    ))
}

/// Counts live client connections; the guard gives the slot back when a session ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts clients until `shutdown` completes. The first worker accepts them, and keeps
/// each unless another worker has fewer sessions: an acceptor of its own would cost every
/// connection a wake-up across threads and registering its socket twice (4 `epoll_ctl`
/// calls instead of 2, measured per connect-per-request client).
pub async fn serve(listener: TcpListener, workers: &Workers, shutdown: impl Future<Output = ()>) {
    let live = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    match listener.into_std() {
        Ok(l) => workers.listen(l, live, stopped),
        Err(e) => {
            tracing::error!(error = %e, "listener not usable");
            return;
        }
    }
    shutdown.await;
    // Stops accepting (the worker drops the listener); a send to a worker gone is moot.
    let _ = stop.send(true);
}

/// A client's connection from accept: the PROXY header, the connection limit, the login,
/// then the session on worker `worker`, until it ends or leaves for another worker.
async fn handle(
    mut stream: TcpStream,
    peer: SocketAddr,
    id: u32,
    live: usize,
    state: SharedState,
    worker: usize,
) -> Option<Departure> {
    let rt = state.load_full();
    let host = client_host(&mut stream, peer, id, &rt).await;
    // Until the client has logged in, packets are small (a handshake response with
    // connection attributes, an RSA-encrypted password): a stranger cannot make Switchyard
    // buffer megabytes.
    let mut client = PacketStream::accepted(stream, HANDSHAKE_MAX_PACKET);
    let host = match host {
        Ok(from) => {
            // A balancer may count a reset as the server's abort (HAProxy logs `SD`).
            if rt.config.server.reset_after_quit && !from.balancer {
                client.allow_reset_after_quit();
            }
            from.host
        }
        Err(e) => {
            let _ = client.send(0, &err_payload_before_greeting(&e)).await;
            return None;
        }
    };
    let max = rt.config.server.max_connections as usize;
    if live > max {
        rt.shared.limits.refuse(Refusal::Global);
        let e = ErrSpec::new(
            1040,
            "08004",
            format!("Too many connections (Switchyard limit {max})"),
        );
        let _ = client.send(0, &err_payload_before_greeting(&e)).await;
        return None;
    }
    let nonce = crate::protocol::auth::nonce();
    let timeout = rt.config.server.handshake_timeout;
    let login =
        tokio::time::timeout(timeout, login::login(&mut client, &rt, id, &host, nonce)).await;
    let login = match login {
        Ok(Ok(l)) => l,
        Ok(Err((e, seq))) => {
            if let Some(spec) = e.to_err() {
                let _ = client.send(seq, &err_payload(&spec)).await;
            }
            tracing::info!(session = id, %host, error = %e, "login refused");
            return None;
        }
        Err(_) => {
            rt.shared.limits.refuse(Refusal::HandshakeTimeout);
            tracing::info!(session = id, %host, "handshake timed out");
            return None;
        }
    };
    let seq = login.seq;
    tracing::debug!(session = id, user = %login.user.name, tenant = ?login.tenant.as_ref().map(|t| &t.name), "login");
    client.set_max_packet(rt.max_client_packet);
    client.set_write_stall(rt.config.server.client_write_timeout);
    // The session loads a snapshot per request; this one, kept for its whole life, would
    // keep a reloaded-away config (and its monitor) alive as long as the client stays.
    drop(rt);
    let mut session = Session::new(id, client, state, host, nonce, login, worker);
    match session.start(seq).await {
        Ok(()) => {}
        Err(SessionError::ClientGone(_)) => return None,
        Err(e) => {
            tracing::info!(parent: &session.span(), error = %e, "session could not start");
            return None;
        }
    }
    match session.run().await {
        Ran::Closed => None,
        Ran::Moving(to) => Some(Departure {
            session: Box::new(session),
            to,
        }),
    }
}

/// A session that moved to this worker, from its next command on.
async fn resume(mut session: Box<Session>) -> Option<Departure> {
    match session.run().await {
        Ran::Closed => None,
        Ran::Moving(to) => Some(Departure { session, to }),
    }
}
