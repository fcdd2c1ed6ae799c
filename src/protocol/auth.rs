//! Authentication scrambles: nonces for clients, verifying and computing
//! mysql_native_password answers. Other plugins plug in beside these.

use mysql_common::scramble::{scramble_native, scramble_sha256};
use rand::Rng;
use sha1::{Digest, Sha1};

/// How many printable characters a nonce draws from: `!` to `~`.
const PRINTABLE: u8 = b'~' - b'!' + 1;

/// A fresh 20-byte nonce of printable characters (never NUL: part of it is NUL-terminated).
/// Random bytes below twice [`PRINTABLE`] are kept, each standing for one character
/// (uniformly); the rest are drawn again. Drawing each character on its own (a ranged draw)
/// cost as much as the rest of the greeting.
pub fn nonce() -> [u8; 20] {
    let mut rng = rand::rng();
    let mut n = [0u8; 20];
    let mut filled = 0;
    let mut pool = [0u8; 32];
    while filled < n.len() {
        rng.fill(&mut pool[..]);
        for b in pool.iter().filter(|&&b| b < 2 * PRINTABLE) {
            n[filled] = b'!' + b % PRINTABLE;
            filled += 1;
            if filled == n.len() {
                break;
            }
        }
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

/// SHA1(SHA1(password)): what a server stores for mysql_native_password, and all a
/// client's answer is checked against.
pub fn native_stage2(password: &[u8]) -> [u8; 20] {
    Sha1::digest(Sha1::digest(password)).into()
}

/// mysql_native_password against a stored SHA1(SHA1(password)): checks the client's answer
/// and returns SHA1(password), which is all a login to a backend with that scheme needs.
pub fn native_stage1(nonce: &[u8], stage2: &[u8; 20], response: &[u8]) -> Option<[u8; 20]> {
    if response.len() != 20 {
        return None;
    }
    let mask = Sha1::new()
        .chain_update(nonce)
        .chain_update(stage2)
        .finalize();
    let mut stage1 = [0u8; 20];
    for (i, b) in stage1.iter_mut().enumerate() {
        *b = response[i] ^ mask[i];
    }
    same_bytes(&Sha1::digest(stage1), stage2).then_some(stage1)
}

/// The mysql_native_password answer computed from SHA1(password) alone.
pub fn native_response_from_stage1(nonce: &[u8], stage1: &[u8; 20]) -> Vec<u8> {
    let stage2 = Sha1::digest(stage1);
    let mask = Sha1::new()
        .chain_update(nonce)
        .chain_update(stage2)
        .finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

/// Checks a client's caching_sha2_password fast-path answer against a known password.
/// For an empty password the answer is nothing, or one NUL byte (libmysqlclient's, which
/// MySQL's server takes as no password too).
pub fn verify_sha2(nonce: &[u8], password: &str, response: &[u8]) -> bool {
    if password.is_empty() {
        return response.is_empty() || response == [0];
    }
    let expected = scramble_sha256(nonce, password.as_bytes());
    same_bytes(expected.as_ref().map_or(&[][..], |s| &s[..]), response)
}

/// Equality in time independent of where the bytes differ (password answers).
pub fn same_bytes(expected: &[u8], response: &[u8]) -> bool {
    expected.len() == response.len()
        && expected
            .iter()
            .zip(response)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

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
        // libmysqlclient answers an empty password with one NUL byte.
        assert!(verify_sha2(&n, "", &[0]));
        assert!(!verify_sha2(&n, "", &[0, 0]));
        assert!(!verify_sha2(&n, "", &s));
    }

    #[test]
    fn nonces_are_printable_and_use_every_character() {
        let mut seen = [false; 256];
        for _ in 0..200 {
            for b in nonce() {
                assert!((b'!'..=b'~').contains(&b), "{b}");
                seen[usize::from(b)] = true;
            }
        }
        // 4,000 draws from 94 characters: each is missed with probability ~3e-19.
        assert!((b'!'..=b'~').all(|b| seen[usize::from(b)]));
        assert_ne!(nonce(), nonce());
    }

    #[test]
    fn the_stored_native_hash_is_the_servers() {
        // MariaDB: SELECT PASSWORD('secret') is '*14E65567ABDB5135D0CFD9A70B3032C179A49EE7'.
        let hex: String = native_stage2(b"secret")
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(hex, "14E65567ABDB5135D0CFD9A70B3032C179A49EE7");
    }

    #[test]
    fn native_works_from_the_stored_hash() {
        let n = nonce();
        let stage1: [u8; 20] = Sha1::digest(b"secret").into();
        let stage2: [u8; 20] = Sha1::digest(stage1).into();
        let answer = native_response(&n, "secret");
        assert_eq!(native_stage1(&n, &stage2, &answer), Some(stage1));
        assert_eq!(
            native_stage1(&n, &stage2, &native_response(&n, "other")),
            None
        );
        assert_eq!(native_stage1(&n, &stage2, &answer[..19]), None);
        assert_eq!(native_response_from_stage1(&n, &stage1), answer);
    }
}
