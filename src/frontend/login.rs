//! The connection phase with a client: greeting, authentication against the configured
//! users, and the tenant the session starts in.

use std::sync::Arc;

use super::error::{access_denied, SessionError};
use super::tenant;
use crate::config::{TenantConfig, UserConfig};
use crate::protocol::handshake::{self, NATIVE_PASSWORD, SHA2_PASSWORD};
use crate::protocol::{auth, CapabilityFlags, PacketStream};
use crate::state::RuntimeState;

/// A client that proved who it is.
pub struct Login {
    pub user: UserConfig,
    pub caps: CapabilityFlags,
    pub collation: u8,
    pub database: Option<String>,
    pub tenant: Option<Arc<TenantConfig>>,
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
    let hello = handshake::parse_client_hello(&pkt.payload).map_err(|e| {
        (
            SessionError::ClientProtocol(format!("handshake response: {e}")),
            seq,
        )
    })?;
    if !hello
        .capabilities
        .contains(CapabilityFlags::CLIENT_PROTOCOL_41)
    {
        let e = SessionError::reply(1251, "08004", "Client does not support protocol 4.1");
        return Err((e, seq));
    }
    let caps = hello.capabilities & info.capabilities & handshake::supported_capabilities();

    let plugin = hello.auth_plugin.as_deref();
    let (answer, nonce, seq, method) = client_answer(
        client,
        plugin,
        hello.auth_response.clone(),
        nonce,
        nonce,
        seq,
    )
    .await?;
    let user = rt
        .user(&hello.user)
        .filter(|u| method.verify(&nonce, u.password.expose(), &answer))
        .cloned()
        .ok_or_else(|| {
            let e = access_denied(&hello.user, host, !answer.is_empty());
            (SessionError::Reply(e), seq)
        })?;
    let seq = method.confirm(client, seq).await?;

    if user.require_tls && !client.is_tls() {
        let e = SessionError::reply(
            3159,
            "08004",
            format!(
                "Connections using insecure transport are prohibited for user '{}' (require_tls)",
                user.name
            ),
        );
        return Err((e, seq));
    }
    let tenant = match &hello.database {
        Some(db) => {
            Some(tenant::tenant_for_schema(rt, &user, host, db, None).map_err(|e| (e, seq))?)
        }
        None => tenant::initial_tenant(rt, &user),
    };
    Ok(Login {
        user,
        caps,
        collation: hello.collation,
        database: hello.database,
        tenant,
        seq,
    })
}

/// The password schemes Switchyard verifies itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Native,
    /// caching_sha2_password, fast path (MySQL 8+ clients' default; the only one of MySQL 9).
    Sha2,
}

impl Method {
    pub fn verify(self, nonce: &[u8], password: &str, answer: &[u8]) -> bool {
        match self {
            Method::Native => auth::verify_native(nonce, password, answer),
            Method::Sha2 => auth::verify_sha2(nonce, password, answer),
        }
    }

    /// Sends what the scheme wants between a good answer and the OK; returns the OK's seq.
    pub async fn confirm(
        self,
        client: &mut PacketStream,
        seq: u8,
    ) -> Result<u8, (SessionError, u8)> {
        match self {
            Method::Native => Ok(seq),
            Method::Sha2 => client
                .send(seq, &auth::SHA2_FAST_AUTH_OK)
                .await
                .map_err(gone),
        }
    }
}

/// The client's password answer in a scheme Switchyard verifies: as sent for
/// mysql_native_password and caching_sha2_password (computed over `sent_nonce`), otherwise
/// after asking the client to switch to mysql_native_password over `switch_nonce`.
/// Returns the answer, the nonce it was computed over, the next seq and the scheme.
pub async fn client_answer(
    client: &mut PacketStream,
    offered: Option<&str>,
    answer: Vec<u8>,
    sent_nonce: [u8; 20],
    switch_nonce: [u8; 20],
    seq: u8,
) -> Result<(Vec<u8>, [u8; 20], u8, Method), (SessionError, u8)> {
    match offered {
        None | Some(NATIVE_PASSWORD) => Ok((answer, sent_nonce, seq, Method::Native)),
        Some(SHA2_PASSWORD) if answer.len() == 32 => Ok((answer, sent_nonce, seq, Method::Sha2)),
        // A client whose first answer was for another plugin (libmariadb sends none when
        // the greeting offered mysql_native_password) is asked again, as servers do.
        Some(SHA2_PASSWORD) => {
            let (answer, seq) = switch_to(client, SHA2_PASSWORD, &switch_nonce, seq).await?;
            Ok((answer, switch_nonce, seq, Method::Sha2))
        }
        Some(_) => {
            let (answer, seq) = switch_to(client, NATIVE_PASSWORD, &switch_nonce, seq).await?;
            Ok((answer, switch_nonce, seq, Method::Native))
        }
    }
}

/// Asks the client to answer with `plugin` over `nonce` (AuthSwitchRequest).
async fn switch_to(
    client: &mut PacketStream,
    plugin: &str,
    nonce: &[u8; 20],
    seq: u8,
) -> Result<(Vec<u8>, u8), (SessionError, u8)> {
    let mut req = vec![0xFE];
    req.extend_from_slice(plugin.as_bytes());
    req.push(0);
    req.extend_from_slice(nonce);
    req.push(0);
    client.send(seq, &req).await.map_err(gone)?;
    let pkt = client.read_packet().await.map_err(gone)?;
    Ok((pkt.payload, pkt.seq.wrapping_add(1)))
}

fn gone(e: std::io::Error) -> (SessionError, u8) {
    (SessionError::ClientGone(e), 0)
}
