//! caching_sha2_password's exchange after the scramble: the AuthMoreData codes, and the
//! password sent in full (in clear over TLS, else RSA-OAEP encrypted and XORed with the nonce).

use openssl::pkey::{Private, Public};
use openssl::rsa::{Padding, Rsa};

/// First byte of an AuthMoreData packet.
pub const MORE_DATA: u8 = 0x01;
/// Client to server: "send me your RSA public key".
pub const REQUEST_PUBLIC_KEY: u8 = 0x02;
/// Server to client: the scramble matched.
pub const FAST_AUTH_OK: u8 = 0x03;
/// Server to client: send the password in full.
pub const PERFORM_FULL_AUTH: u8 = 0x04;

/// sha256_password's request for the public key (it has no fast path).
pub const SHA256_REQUEST_PUBLIC_KEY: u8 = 0x01;

/// The password as sent over TLS: NUL-terminated.
pub fn cleartext(password: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(password.len() + 1);
    out.extend_from_slice(password);
    out.push(0);
    out
}

/// XORs `data` with `nonce` repeated, as both sides do around the RSA step.
fn xor_nonce(data: &mut [u8], nonce: &[u8]) {
    if nonce.is_empty() {
        return;
    }
    for (b, n) in data.iter_mut().zip(nonce.iter().cycle()) {
        *b ^= n;
    }
}

/// The full-authentication answer over plaintext: `password\0` XOR nonce, encrypted with the
/// server's public key (PEM, "PUBLIC KEY" or "RSA PUBLIC KEY") and OAEP padding.
pub fn encrypt_password(password: &[u8], nonce: &[u8], pem: &[u8]) -> Result<Vec<u8>, String> {
    let key: Rsa<Public> = Rsa::public_key_from_pem(pem)
        .or_else(|_| Rsa::public_key_from_pem_pkcs1(pem))
        .map_err(|_| "the server's RSA public key is not a PEM public key".to_string())?;
    let mut plain = cleartext(password);
    xor_nonce(&mut plain, nonce);
    // OAEP with SHA-1 takes at most the modulus size minus 42 bytes.
    if plain.len() + 42 > key.size() as usize {
        return Err("the password is too long for the server's RSA key".into());
    }
    let mut out = vec![0; key.size() as usize];
    let n = key
        .public_encrypt(&plain, &mut out, Padding::PKCS1_OAEP)
        .map_err(|e| format!("RSA encryption failed: {e}"))?;
    out.truncate(n);
    Ok(out)
}

/// Switchyard's RSA key pair for clients that authenticate in full without TLS.
pub struct RsaKey {
    private: Rsa<Private>,
    public_pem: Vec<u8>,
}

impl RsaKey {
    /// A fresh 2048-bit key, as MySQL makes at startup when none is configured.
    pub fn generate() -> Result<RsaKey, String> {
        let private = Rsa::generate(2048).map_err(|e| format!("RSA key generation: {e}"))?;
        RsaKey::from_private(private)
    }

    /// The key pair from a PEM private key file.
    pub fn from_pem_file(path: &str) -> Result<RsaKey, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let private = Rsa::private_key_from_pem(&pem)
            .map_err(|_| format!("{path} is not a PEM RSA private key"))?;
        RsaKey::from_private(private)
    }

    fn from_private(private: Rsa<Private>) -> Result<RsaKey, String> {
        let public_pem = private
            .public_key_to_pem()
            .map_err(|e| format!("RSA public key: {e}"))?;
        Ok(RsaKey {
            private,
            public_pem,
        })
    }

    /// The public key as clients get it (SubjectPublicKeyInfo PEM).
    pub fn public_pem(&self) -> &[u8] {
        &self.public_pem
    }

    /// The password in a client's encrypted answer (without its NUL), or `None` when the
    /// answer does not decrypt.
    pub fn decrypt_password(&self, answer: &[u8], nonce: &[u8]) -> Option<Vec<u8>> {
        let size = self.private.size() as usize;
        if answer.len() != size {
            return None;
        }
        let mut plain = vec![0; size];
        let n = self
            .private
            .private_decrypt(answer, &mut plain, Padding::PKCS1_OAEP)
            .ok()?;
        plain.truncate(n);
        xor_nonce(&mut plain, nonce);
        if plain.last() == Some(&0) {
            plain.pop();
        }
        Some(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_password_round_trips() {
        let key = RsaKey::generate().unwrap();
        let nonce = b"0123456789abcdefghij";
        let pem = key.public_pem().to_vec();
        assert!(pem.starts_with(b"-----BEGIN PUBLIC KEY-----"));
        let answer = encrypt_password(b"s3cret", nonce, &pem).unwrap();
        assert_eq!(answer.len(), 256);
        assert_eq!(key.decrypt_password(&answer, nonce).unwrap(), b"s3cret");
        // The nonce is part of the secret: another one gives another password.
        let other = key
            .decrypt_password(&answer, b"XXXXXXXXXXXXXXXXXXXX")
            .unwrap();
        assert_ne!(other, b"s3cret");
        assert!(key.decrypt_password(&answer[1..], nonce).is_none());
        assert!(key.decrypt_password(&[7; 256], nonce).is_none());
    }

    #[test]
    fn a_bad_public_key_is_an_error() {
        assert!(encrypt_password(b"pw", b"n", b"-----BEGIN PUBLIC KEY-----\nnope\n").is_err());
        assert!(encrypt_password(b"pw", b"n", b"").is_err());
    }
}
