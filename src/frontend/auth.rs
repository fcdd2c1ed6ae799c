//! Proving a client's password (login and COM_CHANGE_USER): the scheme the user's
//! configured password allows, auth switches, caching_sha2_password's fast path and full
//! authentication, and what the proof leaves for logging in to backends.

use super::error::{access_denied, SessionError};
use super::login::gone;
use crate::backend::Proof;
use crate::config::{Secret, UserConfig, UserPassword};
use crate::protocol::caching_sha2::{self as sha2, MORE_DATA};
use crate::protocol::crypt::PasswordHash;
use crate::protocol::handshake::{NATIVE_PASSWORD, SHA2_PASSWORD};
use crate::protocol::{auth, PacketStream};
use crate::state::auth::LoginMethod;
use crate::state::RuntimeState;

/// A client's first answer, as its handshake response (or COM_CHANGE_USER) carried it.
pub struct Offer<'a> {
    pub user: &'a str,
    pub host: &'a str,
    /// The plugin the answer is for (`None`: a client without CLIENT_PLUGIN_AUTH).
    pub plugin: Option<&'a str>,
    pub answer: Vec<u8>,
    /// The nonce the answer was computed over.
    pub nonce: [u8; 20],
    /// A fresh nonce for an auth switch.
    pub switch_nonce: [u8; 20],
    /// Ask for a new answer over `switch_nonce` even when this one is usable: MariaDB
    /// does so for COM_CHANGE_USER.
    pub must_switch: bool,
    /// Sequence id of the next packet to the client.
    pub seq: u8,
}

/// A client that proved who it is.
pub struct Proven {
    pub user: std::sync::Arc<UserConfig>,
    /// What logs the user in to backends when no backend_user is configured.
    pub proof: Proof,
    /// Sequence id for the login's OK.
    pub seq: u8,
}

type Failure = (SessionError, u8);

/// Checks the client's password for `offer.user`; on success the OK is the caller's to send.
/// Counts the outcome unless the client went away or broke the protocol.
pub async fn authenticate(
    client: &mut PacketStream,
    rt: &RuntimeState,
    offer: Offer<'_>,
) -> Result<Proven, Failure> {
    let mut method = LoginMethod::Native;
    let result = prove(client, rt, &offer, &mut method).await;
    match &result {
        Ok(_) => rt.shared.logins.record(method, true),
        Err((SessionError::Reply(_), _)) => rt.shared.logins.record(method, false),
        Err(_) => {}
    }
    result
}

/// Refuses `offer` before its password is checked (a user that must log in over TLS, on a
/// plaintext connection) with the words a wrong password gets, after asking for the answer
/// where a check would have asked: a refusal of its own would tell a stranger that the
/// user exists, as a refusal after the check would tell a guesser the password was right.
pub async fn refuse(client: &mut PacketStream, rt: &RuntimeState, offer: Offer<'_>) -> Failure {
    let user = rt.user(offer.user);
    let scheme = scheme_for(user.as_ref().map(|u| &u.password), offer.plugin);
    match answer_in(client, scheme, &offer).await {
        Ok((answer, _, seq)) => {
            let method = if scheme == SHA2_PASSWORD {
                LoginMethod::Sha2Fast
            } else {
                LoginMethod::Native
            };
            rt.shared.logins.record(method, false);
            let e = access_denied(offer.user, offer.host, !answer.is_empty());
            (SessionError::Reply(e), seq)
        }
        Err(f) => f,
    }
}

async fn prove(
    client: &mut PacketStream,
    rt: &RuntimeState,
    offer: &Offer<'_>,
    method: &mut LoginMethod,
) -> Result<Proven, Failure> {
    let user = rt.user(offer.user);
    let scheme = scheme_for(user.as_ref().map(|u| &u.password), offer.plugin);
    if scheme == SHA2_PASSWORD {
        *method = LoginMethod::Sha2Fast;
    }
    let (answer, nonce, seq) = answer_in(client, scheme, offer).await?;
    let with_password = !answer.is_empty();
    let deny = |seq: u8| {
        let e = access_denied(offer.user, offer.host, with_password);
        (SessionError::Reply(e), seq)
    };
    let Some(user) = user else {
        return Err(deny(seq));
    };
    let (proof, seq) = match (&user.password, scheme) {
        // An empty password is answered with nothing, which only the full check takes.
        (UserPassword::Plain { password, .. }, NATIVE_PASSWORD) if password.expose().is_empty() => {
            if !auth::verify_native(&nonce, password.expose(), &answer) {
                return Err(deny(seq));
            }
            (Proof::Password(password.clone()), seq)
        }
        (UserPassword::Plain { password, native }, NATIVE_PASSWORD) => {
            auth::native_stage1(&nonce, native, &answer).ok_or_else(|| deny(seq))?;
            (Proof::Password(password.clone()), seq)
        }
        (UserPassword::Hash(PasswordHash::Native(stage2)), _) => {
            let stage1 = auth::native_stage1(&nonce, stage2, &answer).ok_or_else(|| deny(seq))?;
            (Proof::NativeStage1(stage1), seq)
        }
        (UserPassword::Plain { password, .. }, _) => {
            if !auth::verify_sha2(&nonce, password.expose(), &answer) {
                return Err(deny(seq));
            }
            (
                Proof::Password(password.clone()),
                fast_auth_ok(client, seq).await?,
            )
        }
        (UserPassword::Hash(hash), _) => {
            let sha2 = Sha2Login {
                user: &user.name,
                hash,
                nonce: &nonce,
                answer: &answer,
            };
            sha2.prove(client, rt, seq, method, &deny).await?
        }
    };
    Ok(Proven { user, proof, seq })
}

/// A caching_sha2_password answer checked against a stored `$A$005$` hash.
struct Sha2Login<'a> {
    user: &'a str,
    hash: &'a PasswordHash,
    nonce: &'a [u8; 20],
    answer: &'a [u8],
}

impl Sha2Login<'_> {
    /// The fast path when this user's password was proven before (and the scramble matches
    /// it), else full authentication; a proven password is cached for the next login.
    async fn prove(
        &self,
        client: &mut PacketStream,
        rt: &RuntimeState,
        seq: u8,
        method: &mut LoginMethod,
        deny: &impl Fn(u8) -> Failure,
    ) -> Result<(Proof, u8), Failure> {
        let cached = rt.shared.sha2_cache.get(self.user, self.hash);
        if let Some(pw) =
            cached.filter(|pw| auth::verify_sha2(self.nonce, pw.expose(), self.answer))
        {
            return Ok((Proof::Password(pw), fast_auth_ok(client, seq).await?));
        }
        *method = if client.is_tls() {
            LoginMethod::Sha2FullTls
        } else {
            LoginMethod::Sha2FullRsa
        };
        let (pw, seq) = full_auth(client, rt, self.nonce, seq).await?;
        // 5,000 rounds of SHA-256: milliseconds of CPU, kept off the event loop too.
        let hash = self.hash.clone();
        let checked = rt
            .shared
            .login_work
            .run(move || pw.filter(|pw| hash.matches(pw)));
        let Some(pw) = checked.await.flatten() else {
            return Err(deny(seq));
        };
        let pw = Secret::new(String::from_utf8_lossy(&pw).into_owned());
        rt.shared
            .sha2_cache
            .insert(self.user, self.hash, pw.clone());
        Ok((Proof::Password(pw), seq))
    }
}

/// The scheme the answer must be in: a hash can only check its own scheme; a plaintext
/// password checks either, so the client's choice stands.
fn scheme_for(password: Option<&UserPassword>, offered: Option<&str>) -> &'static str {
    match password {
        Some(UserPassword::Hash(h)) => h.plugin(),
        _ if offered == Some(SHA2_PASSWORD) => SHA2_PASSWORD,
        _ => NATIVE_PASSWORD,
    }
}

/// The client's answer in `scheme`: the one it sent, or after an AuthSwitchRequest.
/// Returns the answer, the nonce it was computed over and the next seq.
async fn answer_in(
    client: &mut PacketStream,
    scheme: &'static str,
    offer: &Offer<'_>,
) -> Result<(Vec<u8>, [u8; 20], u8), Failure> {
    let offered = offer.plugin.unwrap_or(NATIVE_PASSWORD);
    // A caching_sha2 answer that is not a 32-byte scramble was made for another plugin:
    // libmariadb sends none when the greeting offered mysql_native_password. Asking again
    // costs one round trip, also for an empty password.
    let usable = !offer.must_switch
        && offered == scheme
        && (scheme == NATIVE_PASSWORD || offer.answer.len() == 32);
    if usable {
        return Ok((offer.answer.clone(), offer.nonce, offer.seq));
    }
    // A client without CLIENT_PLUGIN_AUTH cannot be asked to switch (it would read the
    // request as a pre-4.1 server's for the old scramble): the server's refusal.
    if offer.plugin.is_none() && scheme != NATIVE_PASSWORD {
        let e = SessionError::reply(
            1251,
            "08004",
            "Client does not support authentication protocol requested by server; consider upgrading MariaDB client",
        );
        return Err((e, offer.seq));
    }
    let (answer, seq) = switch_to(client, scheme, &offer.switch_nonce, offer.seq).await?;
    Ok((answer, offer.switch_nonce, seq))
}

/// Asks the client to answer with `plugin` over `nonce` (AuthSwitchRequest).
async fn switch_to(
    client: &mut PacketStream,
    plugin: &str,
    nonce: &[u8; 20],
    seq: u8,
) -> Result<(Vec<u8>, u8), Failure> {
    let mut req = vec![0xFE];
    req.extend_from_slice(plugin.as_bytes());
    req.push(0);
    req.extend_from_slice(nonce);
    req.push(0);
    client.send(seq, &req).await.map_err(gone)?;
    let pkt = client.read_packet().await.map_err(gone)?;
    Ok((pkt.payload, pkt.seq.wrapping_add(1)))
}

async fn fast_auth_ok(client: &mut PacketStream, seq: u8) -> Result<u8, Failure> {
    client
        .send(seq, &[MORE_DATA, sha2::FAST_AUTH_OK])
        .await
        .map_err(gone)
}

/// caching_sha2_password's full authentication: the client sends its password in clear
/// over TLS, or encrypted with Switchyard's RSA key (sent first if asked for). Returns the
/// password (`None` for an answer that does not decrypt) and the next seq.
async fn full_auth(
    client: &mut PacketStream,
    rt: &RuntimeState,
    nonce: &[u8; 20],
    seq: u8,
) -> Result<(Option<Vec<u8>>, u8), Failure> {
    client
        .send(seq, &[MORE_DATA, sha2::PERFORM_FULL_AUTH])
        .await
        .map_err(gone)?;
    let pkt = client.read_packet().await.map_err(gone)?;
    let mut seq = pkt.seq.wrapping_add(1);
    let mut payload = pkt.payload;
    if client.is_tls() {
        if payload.last() == Some(&0) {
            payload.pop();
        }
        return Ok((Some(payload), seq));
    }
    let key = rt
        .rsa_key()
        .await
        .map_err(|e| (super::backends::internal(&format!("RSA key: {e}")), seq))?;
    if payload == [sha2::REQUEST_PUBLIC_KEY] {
        let mut more = Vec::with_capacity(1 + key.public_pem().len());
        more.push(MORE_DATA);
        more.extend_from_slice(key.public_pem());
        client.send(seq, &more).await.map_err(gone)?;
        let pkt = client.read_packet().await.map_err(gone)?;
        seq = pkt.seq.wrapping_add(1);
        payload = pkt.payload;
    }
    // A private-key operation is a millisecond of CPU that any stranger can ask for: it runs
    // off the event loop, so other sessions are not held up.
    let nonce = *nonce;
    let decrypt = move || key.decrypt_password(&payload, &nonce);
    let password = rt.shared.login_work.run(decrypt).await.flatten();
    Ok((password, seq))
}
