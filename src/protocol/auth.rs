//! Authentication scrambles: nonces for clients, verifying and computing
//! mysql_native_password answers. Other plugins plug in beside these.

use mysql_common::scramble::{scramble_native, scramble_sha256};
use rand::Rng;

/// A fresh 20-byte nonce of printable characters (never NUL: part of it is NUL-terminated).
pub fn nonce() -> [u8; 20] {
    let mut rng = rand::rng();
    let mut n = [0u8; 20];
    for b in n.iter_mut() {
        *b = rng.random_range(b'!'..=b'~');
    }
    n
}

/// The mysql_native_password answer for `password` (empty for an empty password).
pub fn native_response(nonce: &[u8], password: &str) -> Vec<u8> {
    scramble_native(nonce, password.as_bytes())
        .map(|s| s.to_vec())
        .unwrap_or_default()
}

/// Checks a client's mysql_native_password answer, in time independent of where it differs.
pub fn verify_native(nonce: &[u8], password: &str, response: &[u8]) -> bool {
    same_bytes(&native_response(nonce, password), response)
}

/// Checks a client's caching_sha2_password fast-path answer. Switchyard knows every
/// password, so the fast path is always available and full authentication is never needed.
pub fn verify_sha2(nonce: &[u8], password: &str, response: &[u8]) -> bool {
    let expected = scramble_sha256(nonce, password.as_bytes());
    same_bytes(expected.as_ref().map_or(&[][..], |s| &s[..]), response)
}

/// Equality in time independent of where the bytes differ (password answers).
fn same_bytes(expected: &[u8], response: &[u8]) -> bool {
    expected.len() == response.len()
        && expected
            .iter()
            .zip(response)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// caching_sha2_password's "fast authentication succeeded" (AuthMoreData 0x03), sent
/// before the OK.
pub const SHA2_FAST_AUTH_OK: [u8; 2] = [0x01, 0x03];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_right_and_rejects_wrong() {
        let n = nonce();
        assert!(n.iter().all(|b| *b != 0));
        let r = native_response(&n, "secret");
        assert!(verify_native(&n, "secret", &r));
        assert!(!verify_native(&n, "Secret", &r));
        assert!(!verify_native(&n, "secret", &r[..19]));
        assert!(verify_native(&n, "", &[]));
        assert!(!verify_native(&n, "", &r));
        let s = scramble_sha256(&n, b"secret").unwrap();
        assert!(verify_sha2(&n, "secret", &s));
        assert!(!verify_sha2(&n, "Secret", &s));
        assert!(!verify_sha2(&n, "secret", &r));
        assert!(verify_sha2(&n, "", &[]));
    }
}
