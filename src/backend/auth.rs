//! Switchyard's side of a backend's authentication exchange, as a state machine over packet
//! payloads (no I/O, so the exchange is testable against recorded packets):
//! mysql_native_password, caching_sha2_password (fast path, full authentication in clear
//! over TLS or RSA-encrypted without), sha256_password, and auth switches between them.

use super::error::BackendError;
use crate::config::Secret;
use crate::protocol::auth;
use crate::protocol::caching_sha2::{self as sha2, MORE_DATA};
use crate::protocol::handshake::{NATIVE_PASSWORD, SHA2_PASSWORD};
use crate::protocol::packets::{self, EOF_HEADER, ERR_HEADER, OK_HEADER};

pub const SHA256_PASSWORD: &str = "sha256_password";

/// What Switchyard can prove a backend login with.
#[derive(Clone, PartialEq, Eq)]
pub enum Proof {
    Password(Secret),
    /// SHA1(password), learned from a client's mysql_native_password login against a stored
    /// hash: enough for mysql_native_password, not for the SHA-256 schemes.
    NativeStage1([u8; 20]),
}

/// Login name and proof for a backend.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub proof: Proof,
}

/// What to do with the server's next packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this payload (with the next sequence id) and read again.
    Send(Vec<u8>),
    /// Read again (the server sent "fast authentication succeeded").
    Read,
    /// Logged in.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// For OK, ERR, an auth switch or AuthMoreData.
    Verdict,
    /// For the server's RSA public key.
    PublicKey,
}

/// One login's exchange.
pub struct Exchange<'a> {
    user: &'a str,
    proof: &'a Proof,
    tls: bool,
    plugin: String,
    nonce: Vec<u8>,
    waiting: Waiting,
}

impl<'a> Exchange<'a> {
    /// Starts with the greeting's plugin and nonce; returns the exchange, the plugin the
    /// first answer is for and the answer. An unknown plugin gets a mysql_native_password
    /// answer, and the server asks to switch if it minds.
    pub fn start(
        user: &'a str,
        proof: &'a Proof,
        tls: bool,
        plugin: Option<&str>,
        nonce: &[u8],
    ) -> Result<(Exchange<'a>, &'static str, Vec<u8>), BackendError> {
        let plugin = match plugin {
            // A native hash can answer only mysql_native_password: MySQL 8.0 greets with
            // caching_sha2_password whatever the account's plugin, and takes a native answer
            // for an account that has the native one (it asks to switch otherwise).
            _ if matches!(proof, Proof::NativeStage1(_)) => NATIVE_PASSWORD,
            Some(SHA2_PASSWORD) => SHA2_PASSWORD,
            Some(SHA256_PASSWORD) => SHA256_PASSWORD,
            _ => NATIVE_PASSWORD,
        };
        let mut ex = Exchange {
            user,
            proof,
            tls,
            plugin: plugin.to_owned(),
            nonce: nonce.to_vec(),
            waiting: Waiting::Verdict,
        };
        let answer = ex.scramble()?;
        Ok((ex, plugin, answer))
    }

    /// The answer the current plugin wants first.
    fn scramble(&mut self) -> Result<Vec<u8>, BackendError> {
        match (self.plugin.as_str(), self.proof) {
            (NATIVE_PASSWORD, Proof::Password(pw)) => {
                Ok(auth::native_response(&self.nonce, pw.expose()))
            }
            (NATIVE_PASSWORD, Proof::NativeStage1(s1)) => {
                Ok(auth::native_response_from_stage1(&self.nonce, s1))
            }
            (SHA2_PASSWORD, Proof::Password(pw)) => Ok(mysql_common::scramble::scramble_sha256(
                &self.nonce,
                pw.expose().as_bytes(),
            )
            .map(|s| s.to_vec())
            .unwrap_or_default()),
            (SHA256_PASSWORD, Proof::Password(pw)) if pw.expose().is_empty() => Ok(vec![0]),
            (SHA256_PASSWORD, Proof::Password(pw)) if self.tls => {
                Ok(sha2::cleartext(pw.expose().as_bytes()))
            }
            (SHA256_PASSWORD, Proof::Password(_)) => {
                self.waiting = Waiting::PublicKey;
                Ok(vec![sha2::SHA256_REQUEST_PUBLIC_KEY])
            }
            (plugin, Proof::NativeStage1(_)) => Err(self.needs_password(plugin)),
            (plugin, _) => Err(BackendError::AuthPlugin(plugin.to_owned())),
        }
    }

    fn needs_password(&self, plugin: &str) -> BackendError {
        BackendError::AuthPlugin(format!(
            "{plugin} (user '{}' is configured with a mysql_native_password hash, which cannot \
             answer it: configure the password or backend_user/backend_password)",
            self.user
        ))
    }

    /// The server's next packet, and what to do about it.
    pub fn on_packet(&mut self, payload: &[u8]) -> Result<Step, BackendError> {
        if self.waiting == Waiting::PublicKey {
            return self.on_public_key(payload);
        }
        match payload.first() {
            Some(&OK_HEADER) => Ok(Step::Done),
            Some(&ERR_HEADER) => Err(refusal(payload)),
            Some(&EOF_HEADER) if payload.len() > 1 => {
                let (plugin, nonce) = auth_switch(payload);
                self.plugin = plugin;
                self.nonce = nonce.to_vec();
                self.waiting = Waiting::Verdict;
                self.scramble().map(Step::Send)
            }
            Some(&MORE_DATA) if self.plugin == SHA2_PASSWORD => self.on_sha2_more(&payload[1..]),
            Some(&MORE_DATA) if self.plugin == SHA256_PASSWORD => self.on_public_key(payload),
            _ => Err(BackendError::AuthPlugin(format!(
                "{} (unexpected packet 0x{:02x} during authentication)",
                self.plugin,
                payload.first().copied().unwrap_or(0)
            ))),
        }
    }

    fn on_sha2_more(&mut self, data: &[u8]) -> Result<Step, BackendError> {
        match data.first() {
            Some(&sha2::FAST_AUTH_OK) => Ok(Step::Read),
            Some(&sha2::PERFORM_FULL_AUTH) => {
                let pw = self.password(SHA2_PASSWORD)?;
                if self.tls {
                    return Ok(Step::Send(sha2::cleartext(pw.as_bytes())));
                }
                self.waiting = Waiting::PublicKey;
                Ok(Step::Send(vec![sha2::REQUEST_PUBLIC_KEY]))
            }
            _ => Err(BackendError::AuthPlugin(
                "caching_sha2_password (unknown AuthMoreData)".into(),
            )),
        }
    }

    /// AuthMoreData carrying the server's PEM public key: answer with the encrypted password.
    fn on_public_key(&mut self, payload: &[u8]) -> Result<Step, BackendError> {
        match payload.first() {
            Some(&MORE_DATA) => {}
            Some(&ERR_HEADER) => return Err(refusal(payload)),
            _ => {
                return Err(BackendError::AuthPlugin(format!(
                    "{} (expected the server's public key)",
                    self.plugin
                )))
            }
        }
        let pw = self.password(&self.plugin)?;
        let answer = sha2::encrypt_password(pw.as_bytes(), &self.nonce, &payload[1..])
            .map_err(|e| BackendError::AuthPlugin(format!("{} ({e})", self.plugin)))?;
        self.waiting = Waiting::Verdict;
        Ok(Step::Send(answer))
    }

    fn password(&self, plugin: &str) -> Result<&'a str, BackendError> {
        match self.proof {
            Proof::Password(pw) => Ok(pw.expose()),
            Proof::NativeStage1(_) => Err(self.needs_password(plugin)),
        }
    }
}

/// An AuthSwitchRequest's plugin name and nonce (without its trailing NUL).
pub fn auth_switch(payload: &[u8]) -> (String, &[u8]) {
    let rest = &payload[1..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let plugin = String::from_utf8_lossy(&rest[..end]).into_owned();
    let mut data = rest.get(end + 1..).unwrap_or(&[]);
    if data.last() == Some(&0) {
        data = &data[..data.len() - 1];
    }
    (plugin, data)
}

pub fn refusal(payload: &[u8]) -> BackendError {
    match packets::parse_err_spec(payload) {
        Some(e) => BackendError::Auth {
            code: e.code,
            state: e.state.into_owned(),
            message: e.message,
        },
        None => BackendError::Auth {
            code: 1105,
            state: "HY000".into(),
            message: "malformed error packet".into(),
        },
    }
}

#[cfg(test)]
mod tests;
