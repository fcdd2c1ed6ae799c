//! COM_CHANGE_USER: an idle connection of another backend user on the same server logs in
//! again as the session's user instead of a new connection being opened (one or two round
//! trips instead of a TCP connect, a greeting and a login). The server resets the session
//! as it does (variables, temporary tables, prepared statements, schema), so the session's
//! state is then replayed as after COM_RESET_CONNECTION.

use std::sync::Arc;

use super::auth::{Credentials, Exchange, Step};
use super::conn::BackendConn;
use super::error::BackendError;
use super::pool::PoolKey;
use crate::protocol::command::COM_CHANGE_USER;
use crate::protocol::CapabilityFlags;

/// Logs `conn` in as `creds` for `key` (its server, client capabilities and TLS are
/// `key`'s already), in `schema`; answers an auth switch the way a login does. On an error
/// the connection is in no known state: the caller drops it.
pub async fn change_user(
    conn: &mut BackendConn,
    key: &PoolKey,
    creds: &Credentials,
    schema: Option<&str>,
) -> Result<(), BackendError> {
    let (mut exchange, plugin, answer) = Exchange::start(
        &creds.user,
        &creds.proof,
        conn.io.is_tls(),
        conn.greeting.plugin.as_deref(),
        &conn.greeting.nonce,
    )?;
    let with_plugin = conn
        .info
        .capabilities
        .contains(CapabilityFlags::CLIENT_PLUGIN_AUTH);
    let p = packet(
        &creds.user,
        &answer,
        schema,
        key.collation,
        with_plugin.then_some(plugin),
    )?;
    conn.io.send(0, &p).await?;
    loop {
        let reply = conn.io.read_packet().await?;
        match exchange.on_packet(&reply.payload)? {
            Step::Done => break,
            Step::Read => {}
            Step::Send(answer) => {
                conn.io.send(reply.seq.wrapping_add(1), &answer).await?;
            }
        }
    }
    conn.key = key.clone();
    conn.creds = Arc::new(creds.clone());
    conn.schema = schema.map(Into::into);
    conn.session_was_reset();
    conn.set_option = None;
    conn.changed_user = true;
    Ok(())
}

/// The COM_CHANGE_USER payload (the connection has CLIENT_PROTOCOL_41 and
/// CLIENT_SECURE_CONNECTION, which every login of Switchyard's asks for; no connection
/// attributes, which it never asks for).
fn packet(
    user: &str,
    answer: &[u8],
    schema: Option<&str>,
    collation: u8,
    plugin: Option<&str>,
) -> Result<Vec<u8>, BackendError> {
    let len = u8::try_from(answer.len()).map_err(|_| {
        BackendError::AuthPlugin(format!(
            "{} (an answer of {} bytes does not fit COM_CHANGE_USER)",
            plugin.unwrap_or("authentication"),
            answer.len()
        ))
    })?;
    let schema = schema.unwrap_or("");
    let mut p = Vec::with_capacity(user.len() + answer.len() + schema.len() + 32);
    p.push(COM_CHANGE_USER);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.push(len);
    p.extend_from_slice(answer);
    p.extend_from_slice(schema.as_bytes());
    p.push(0);
    p.extend_from_slice(&u16::from(collation).to_le_bytes());
    if let Some(plugin) = plugin {
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::parse_change_user;

    #[test]
    fn the_packet_reads_back_as_sent() {
        let p = packet(
            "sy_b",
            &[7; 20],
            Some("wf_globex"),
            224,
            Some("mysql_native_password"),
        )
        .unwrap();
        use crate::protocol::CapabilityFlags as C;
        let caps = C::CLIENT_PROTOCOL_41 | C::CLIENT_SECURE_CONNECTION;
        let c = parse_change_user(&p, caps | C::CLIENT_PLUGIN_AUTH).unwrap();
        assert_eq!(c.user, "sy_b");
        assert_eq!(c.auth_response, vec![7; 20]);
        assert_eq!(c.database.as_deref(), Some("wf_globex"));
        assert_eq!(c.collation, Some(224));
        assert_eq!(c.auth_plugin.as_deref(), Some("mysql_native_password"));
        let c = parse_change_user(&packet("u", &[], None, 45, None).unwrap(), caps).unwrap();
        assert_eq!((c.database, c.auth_plugin), (None, None));
    }

    #[test]
    fn an_answer_too_long_for_the_packet_is_refused() {
        assert!(matches!(
            packet("u", &[1; 256], None, 45, Some("sha256_password")),
            Err(BackendError::AuthPlugin(_))
        ));
    }
}
