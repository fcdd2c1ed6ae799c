//! COM_CHANGE_USER as MariaDB answers it: the session reset first, the new user asked to
//! prove itself over a fresh nonce, and a refusal that keeps the old user, a second late.

use std::time::Duration;

use super::auth::{authenticate, refuse, Offer, Proven};
use super::error::{unknown_command, SessionError};
use super::login::tls_missing;
use super::session::{Flow, Session};
use super::tenant;
use crate::config::TenantConfig;
use crate::protocol::command::{self, ChangeUser};
use crate::protocol::{auth, CapabilityFlags};
use crate::state::RuntimeState;

/// How long a refused change waits before its ERR, as the server sleeps: a password guessed
/// through COM_CHANGE_USER costs a second a try.
const REFUSAL_DELAY: Duration = Duration::from_secs(1);

/// Refused changes after which the server answers every further one "Unknown command"
/// without checking it.
const MAX_REFUSALS: u8 = 3;

type Failure = (SessionError, u8);

impl Session {
    /// COM_CHANGE_USER: authenticate the new user (who may belong to another tenant) and
    /// start over with a clean session. The session is reset whatever the outcome; a refused
    /// change keeps the old user, tenant and schema, with the server's default character
    /// set, as MariaDB does (MySQL would close the connection).
    pub(super) async fn com_change_user(
        &mut self,
        rt: &RuntimeState,
        payload: &[u8],
    ) -> Result<Flow, SessionError> {
        self.release_backends(rt);
        self.reset_state(rt);
        // No server answered for the reset: the sql_mode flags are the new session's.
        self.st.server_modes = super::session::login_modes(rt);
        // A packet the server cannot read is a refused change too, "Unknown command".
        let Some(cu) = command::parse_change_user(payload, self.who.caps) else {
            return self
                .refuse_change(rt, &unknown_command(), self.answer_seq)
                .await;
        };
        match self.prove_new_user(rt, &cu).await {
            Ok((proven, tenant)) => self.become_user(rt, cu, proven, tenant).await,
            Err((e @ SessionError::Reply(_), seq)) => self.refuse_change(rt, &e, seq).await,
            Err((e, _)) => Err(e),
        }
    }

    /// The new user's proof and the tenant its database (or it alone) names.
    async fn prove_new_user(
        &mut self,
        rt: &RuntimeState,
        cu: &ChangeUser,
    ) -> Result<(Proven, Option<std::sync::Arc<TenantConfig>>), Failure> {
        if self.who.failed_changes >= MAX_REFUSALS {
            return Err((unknown_command(), 1));
        }
        // The answer in the packet was computed over the greeting's nonce; the server asks
        // for a new one over a fresh nonce, of any client that can be asked.
        let offer = Offer {
            user: &cu.user,
            host: &self.who.host,
            plugin: cu.auth_plugin.as_deref(),
            answer: cu.auth_response.clone(),
            nonce: self.who.nonce,
            switch_nonce: auth::nonce(),
            must_switch: self.who.caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH),
            seq: 1,
        };
        // Before the password is checked, as at login.
        if tls_missing(rt, &cu.user, &self.client) {
            return Err(refuse(&mut self.client, rt, offer).await);
        }
        // Bounded as a login's exchange is: a client that stops halfway holds its session
        // (and nothing answers it any more).
        let limit = rt.config.server.handshake_timeout;
        let proven =
            match tokio::time::timeout(limit, authenticate(&mut self.client, rt, offer)).await {
                Ok(proven) => proven?,
                Err(_) => {
                    let stalled = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "COM_CHANGE_USER's authentication exchange timed out",
                    );
                    return Err((SessionError::ClientGone(stalled), 0));
                }
            };
        let tenant = tenant::login_tenant(rt, &proven.user, cu.database.as_deref())
            .map_err(|e| (e, proven.seq))?;
        Ok((proven, tenant))
    }

    async fn become_user(
        &mut self,
        rt: &RuntimeState,
        cu: ChangeUser,
        proven: Proven,
        tenant: Option<std::sync::Arc<TenantConfig>>,
    ) -> Result<Flow, SessionError> {
        let Proven { user, proof, seq } = proven;
        // The new user's own connection slot (its `max_connections`), taken in start().
        self.user_permit = None;
        self.who.user = user;
        self.who.proof = proof;
        let same_tenant = match (&self.tenant, &tenant) {
            (Some(was), Some(now)) => was.name == now.name,
            _ => false,
        };
        if !same_tenant {
            // What its reads had to see was on the old tenant's servers.
            self.st.reset(super::client::Reset::Tenant);
        }
        self.tenant_chosen = tenant.is_some();
        self.tenant = tenant;
        self.st.schema = cu.database.map(Into::into);
        self.who.collation = collation(rt, cu.collation);
        self.charset_of_login();
        // The cached pool keys name the old login and collation: kept, the new login's
        // statements would run on the old login's connections, with its grants.
        self.held.forget_lease_keys();
        self.track_tenant_stats(rt);
        // start() has already told the client why it failed.
        match self.start(seq).await {
            Ok(()) => Ok(Flow::Continue),
            Err(_) => Ok(Flow::Quit),
        }
    }

    /// The old user stays, in a session reset to the server's default character set, and the
    /// ERR comes after the server's delay.
    async fn refuse_change(
        &mut self,
        rt: &RuntimeState,
        e: &SessionError,
        seq: u8,
    ) -> Result<Flow, SessionError> {
        self.who.failed_changes = self.who.failed_changes.saturating_add(1);
        self.who.collation = server_collation(rt);
        self.charset_of_login();
        self.held.forget_lease_keys();
        tokio::time::sleep(REFUSAL_DELAY).await;
        self.send_err(e, seq).await?;
        Ok(Flow::Continue)
    }
}

/// The collation a server session starts with: the greeting's.
fn server_collation(rt: &RuntimeState) -> u8 {
    rt.shared.server_info.load().collation
}

/// The session's collation after a change that sent `sent`: the server's default without
/// one. An id past 255 cannot be given to a backend in the login's one byte: the default
/// too (MariaDB's ids past 255 are its UCA 14.0 collations, otherwise unset here).
fn collation(rt: &RuntimeState, sent: Option<u16>) -> u8 {
    sent.and_then(|c| u8::try_from(c).ok())
        .unwrap_or_else(|| server_collation(rt))
}
