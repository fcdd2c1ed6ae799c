//! The connection phase with a client: greeting, authentication against the configured
//! users, and the tenant the session starts in.

use std::sync::Arc;

use super::auth::{self, Proven};
use super::error::SessionError;
use super::tenant;
use crate::backend::Proof;
use crate::config::{TenantConfig, UserConfig};
use crate::protocol::handshake;
use crate::protocol::{CapabilityFlags, PacketStream};
use crate::state::RuntimeState;

/// A client that proved who it is.
pub struct Login {
    pub user: std::sync::Arc<UserConfig>,
    /// What logs the user in to backends (see `auth::Proven`).
    pub proof: Proof,
    pub caps: CapabilityFlags,
    pub ext_caps: crate::protocol::MariadbCapabilities,
    pub collation: u8,
    pub database: Option<String>,
    pub tenant: Option<Arc<TenantConfig>>,
    /// The config the user and tenant were found in: a reload during the login is followed
    /// from there, as at any statement.
    pub config: Arc<crate::config::Config>,
    /// Sequence id for the next packet to the client (the login's OK or ERR).
    pub seq: u8,
}

/// Runs the handshake. On error, `seq` for the ERR is returned alongside.
pub async fn login(
    client: &mut PacketStream,
    rt: &RuntimeState,
    connection_id: u32,
    host: &str,
    nonce: [u8; 20],
) -> Result<Login, (SessionError, u8)> {
    let info = rt.shared.server_info.load_full();
    let greeting = handshake::greeting(&info, connection_id, &nonce, rt.tls.is_some());
    client.send(0, &greeting).await.map_err(gone)?;

    let mut pkt = client.read_packet().await.map_err(gone)?;
    if handshake::is_ssl_request(&pkt.payload) {
        let Some(acceptor) = &rt.tls else {
            let e = SessionError::reply(1043, "08S01", "TLS is not configured on this listener");
            return Err((e, pkt.seq.wrapping_add(1)));
        };
        client.accept_tls(acceptor).await.map_err(gone)?;
        pkt = client.read_packet().await.map_err(gone)?;
    }
    let seq = pkt.seq.wrapping_add(1);
    if rt.config.server.require_tls && !client.is_tls() {
        let e = SessionError::reply(
            3159,
            "08004",
            "Connections using insecure transport are prohibited: this Switchyard requires TLS (require_tls = true)",
        );
        return Err((e, seq));
    }
    // The server's answer to a handshake response it cannot read (ER_HANDSHAKE_ERROR,
    // without SQLSTATE: it does not know the client's protocol); what was wrong goes to
    // the log.
    let hello = handshake::parse_client_hello(&pkt.payload).map_err(|e| {
        tracing::info!(error = %e, "unreadable handshake response");
        (SessionError::reply(1043, "", "Bad handshake"), seq)
    })?;
    if !hello
        .capabilities
        .contains(CapabilityFlags::CLIENT_PROTOCOL_41)
    {
        let e = SessionError::reply(1251, "08004", "Client does not support protocol 4.1");
        return Err((e, seq));
    }
    let caps = hello.capabilities & info.capabilities & handshake::supported_capabilities();
    let ext_caps =
        hello.ext_capabilities & info.ext_capabilities & handshake::supported_ext_capabilities();

    let offer = auth::Offer {
        user: &hello.user,
        host,
        plugin: hello.auth_plugin.as_deref(),
        answer: hello.auth_response.clone(),
        nonce,
        switch_nonce: nonce,
        must_switch: false,
        seq,
    };
    if tls_missing(rt, &hello.user, client) {
        return Err(auth::refuse(client, rt, offer).await);
    }
    let Proven { user, proof, seq } = auth::authenticate(client, rt, offer).await?;
    let tenant =
        tenant::login_tenant(rt, &user, hello.database.as_deref()).map_err(|e| (e, seq))?;
    Ok(Login {
        user,
        proof,
        caps,
        ext_caps,
        collation: hello.collation,
        database: hello.database,
        tenant,
        config: Arc::clone(&rt.config),
        seq,
    })
}

/// Whether `name` is a user with `require_tls` and this connection is plaintext (at login
/// and at COM_CHANGE_USER alike). Such a login is refused as MariaDB refuses an account
/// `REQUIRE SSL` over plaintext, with ERR 1045 (`auth::refuse`), and the reason logged.
pub(super) fn tls_missing(rt: &RuntimeState, name: &str, client: &PacketStream) -> bool {
    let missing = rt
        .user(name)
        .is_some_and(|user| user.require_tls && !client.is_tls());
    if missing {
        tracing::info!(
            user = name,
            "login refused: the user requires TLS (require_tls)"
        );
    }
    missing
}

/// An I/O failure during the login: the client is gone, or sent a packet over the
/// handshake's limit (answered with ERR 1153, as servers do).
pub(super) fn gone(e: std::io::Error) -> (SessionError, u8) {
    super::error::packet_too_large(&e).unwrap_or((SessionError::ClientGone(e), 0))
}
