//! The exchange against the packets of the protocol documentation's caching_sha2_password
//! and auth-switch sequences, with a MySQL 8.4 greeting.

use super::*;
use crate::protocol::caching_sha2::RsaKey;
use crate::protocol::handshake;

/// A MySQL 8.4.3 Protocol::HandshakeV10 (payload only), as the server sends it: default
/// plugin caching_sha2_password, nonce split 8 + 12 with a trailing NUL.
fn mysql84_greeting() -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"8.4.3\0");
    p.extend_from_slice(&9u32.to_le_bytes()); // connection id
    p.extend_from_slice(b"\x1b\x0c\x3f\x50\x35\x27\x1f\x4e"); // auth-plugin-data part 1
    p.push(0); // filler
    p.extend_from_slice(&[0xff, 0xff]); // capabilities, lower
    p.push(255); // utf8mb4_0900_ai_ci
    p.extend_from_slice(&[0x02, 0x00]); // status: autocommit
    p.extend_from_slice(&[0xff, 0xdf]); // capabilities, upper
    p.push(21); // auth-plugin-data length
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"\x42\x11\x67\x0a\x38\x5d\x1d\x3e\x63\x53\x2a\x47\0");
    p.extend_from_slice(b"caching_sha2_password\0");
    p
}

const NONCE: &[u8; 20] =
    b"\x1b\x0c\x3f\x50\x35\x27\x1f\x4e\x42\x11\x67\x0a\x38\x5d\x1d\x3e\x63\x53\x2a\x47";

/// OK_Packet after authentication: header, affected rows, last insert id, status, warnings.
const OK: &[u8] = &[0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];
/// AuthMoreData: fast_auth_success / perform_full_authentication.
const FAST_AUTH_SUCCESS: &[u8] = &[0x01, 0x03];
const PERFORM_FULL_AUTH: &[u8] = &[0x01, 0x04];

fn password(pw: &str) -> Proof {
    Proof::Password(Secret::new(pw))
}

fn greeting_nonce_and_plugin() -> (Vec<u8>, Option<String>) {
    let (_, nonce, plugin) = handshake::parse_greeting(&mysql84_greeting()).unwrap();
    (nonce, plugin)
}

#[test]
fn the_greeting_offers_caching_sha2_with_its_nonce() {
    let (nonce, plugin) = greeting_nonce_and_plugin();
    assert_eq!(nonce, NONCE);
    assert_eq!(plugin.as_deref(), Some(SHA2_PASSWORD));
}

#[test]
fn fast_path() {
    let proof = password("s3cret");
    let (nonce, plugin) = greeting_nonce_and_plugin();
    let (mut ex, answer_plugin, answer) =
        Exchange::start("app", &proof, false, plugin.as_deref(), &nonce).unwrap();
    assert_eq!(answer_plugin, SHA2_PASSWORD);
    let expected = mysql_common::scramble::scramble_sha256(NONCE, b"s3cret").unwrap();
    assert_eq!(answer, expected.to_vec());
    assert_eq!(ex.on_packet(FAST_AUTH_SUCCESS).unwrap(), Step::Read);
    assert_eq!(ex.on_packet(OK).unwrap(), Step::Done);
}

#[test]
fn full_authentication_over_tls_sends_the_password_in_clear() {
    let proof = password("s3cret");
    let (mut ex, _, _) = Exchange::start("app", &proof, true, Some(SHA2_PASSWORD), NONCE).unwrap();
    assert_eq!(
        ex.on_packet(PERFORM_FULL_AUTH).unwrap(),
        Step::Send(b"s3cret\0".to_vec())
    );
    assert_eq!(ex.on_packet(OK).unwrap(), Step::Done);
}

#[test]
fn full_authentication_without_tls_uses_the_servers_rsa_key() {
    let server_key = RsaKey::generate().unwrap();
    let proof = password("s3cret");
    let (mut ex, _, _) = Exchange::start("app", &proof, false, Some(SHA2_PASSWORD), NONCE).unwrap();
    // Request Public Key, then the server's AuthMoreData with its PEM.
    assert_eq!(
        ex.on_packet(PERFORM_FULL_AUTH).unwrap(),
        Step::Send(vec![0x02])
    );
    let mut key_packet = vec![0x01];
    key_packet.extend_from_slice(server_key.public_pem());
    let Step::Send(encrypted) = ex.on_packet(&key_packet).unwrap() else {
        panic!("expected the encrypted password");
    };
    assert_eq!(encrypted.len(), 256);
    assert_eq!(
        server_key.decrypt_password(&encrypted, NONCE).unwrap(),
        b"s3cret"
    );
    assert_eq!(ex.on_packet(OK).unwrap(), Step::Done);
}

#[test]
fn a_wrong_password_ends_in_the_servers_error() {
    let proof = password("wrong");
    let (mut ex, _, _) = Exchange::start("app", &proof, true, Some(SHA2_PASSWORD), NONCE).unwrap();
    ex.on_packet(PERFORM_FULL_AUTH).unwrap();
    let mut err = vec![0xFF, 0x15, 0x04, b'#'];
    err.extend_from_slice(b"28000Access denied for user 'app'@'10.0.0.1' (using password: YES)");
    match ex.on_packet(&err) {
        Err(BackendError::Auth {
            code,
            state,
            message,
        }) => {
            assert_eq!(code, 1045);
            assert_eq!(state, "28000");
            assert!(
                message.starts_with("Access denied for user 'app'"),
                "{message}"
            );
        }
        _ => panic!("expected the server's refusal"),
    }
}

/// The server's SQLSTATE is kept with its code: ER_TOO_MANY_USER_CONNECTIONS is 42000
/// (it went to clients as 08004, and ER_NOT_SUPPORTED_AUTH_MODE's 08004 as HY000).
#[test]
fn a_refusal_keeps_the_servers_sqlstate() {
    let mut err = vec![0xFF, 0xB3, 0x04, b'#'];
    err.extend_from_slice(
        b"42000User sy_app already has more than 'max_user_connections' active connections",
    );
    match super::refusal(&err) {
        BackendError::Auth { code, state, .. } => {
            assert_eq!((code, state.as_str()), (1203, "42000"))
        }
        other => panic!("{other:?}"),
    }
    match super::refusal(&[0xFF]) {
        BackendError::Auth { code, state, .. } => {
            assert_eq!((code, state.as_str()), (1105, "HY000"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn switches_from_native_to_caching_sha2_and_back() {
    let proof = password("s3cret");
    // A MariaDB-style greeting offers mysql_native_password...
    let (mut ex, plugin, first) =
        Exchange::start("app", &proof, false, Some(NATIVE_PASSWORD), NONCE).unwrap();
    assert_eq!(plugin, NATIVE_PASSWORD);
    assert_eq!(first, auth::native_response(NONCE, "s3cret"));
    // ...and the account is caching_sha2_password: AuthSwitchRequest with a new nonce.
    let nonce2 = b"ABCDEFGHIJKLMNOPQRST";
    let mut switch = vec![0xFE];
    switch.extend_from_slice(b"caching_sha2_password\0");
    switch.extend_from_slice(nonce2);
    switch.push(0);
    let Step::Send(answer) = ex.on_packet(&switch).unwrap() else {
        panic!("expected an answer to the switch");
    };
    let expected = mysql_common::scramble::scramble_sha256(nonce2, b"s3cret").unwrap();
    assert_eq!(answer, expected.to_vec());
    assert_eq!(ex.on_packet(FAST_AUTH_SUCCESS).unwrap(), Step::Read);
    assert_eq!(ex.on_packet(OK).unwrap(), Step::Done);

    // The other way: a caching_sha2 greeting, a mysql_native_password account.
    let (mut ex, _, _) = Exchange::start("app", &proof, false, Some(SHA2_PASSWORD), NONCE).unwrap();
    let mut switch = vec![0xFE];
    switch.extend_from_slice(b"mysql_native_password\0");
    switch.extend_from_slice(nonce2);
    switch.push(0);
    assert_eq!(
        ex.on_packet(&switch).unwrap(),
        Step::Send(auth::native_response(nonce2, "s3cret"))
    );
    assert_eq!(ex.on_packet(OK).unwrap(), Step::Done);
}

#[test]
fn sha256_password_requests_the_key_without_tls() {
    let server_key = RsaKey::generate().unwrap();
    let proof = password("s3cret");
    let (mut ex, plugin, first) =
        Exchange::start("app", &proof, false, Some(SHA256_PASSWORD), NONCE).unwrap();
    assert_eq!(plugin, SHA256_PASSWORD);
    assert_eq!(first, vec![0x01]);
    let mut key_packet = vec![0x01];
    key_packet.extend_from_slice(server_key.public_pem());
    let Step::Send(encrypted) = ex.on_packet(&key_packet).unwrap() else {
        panic!("expected the encrypted password");
    };
    assert_eq!(
        server_key.decrypt_password(&encrypted, NONCE).unwrap(),
        b"s3cret"
    );
    assert_eq!(ex.on_packet(OK).unwrap(), Step::Done);
    let (_, _, first) = Exchange::start("app", &proof, true, Some(SHA256_PASSWORD), NONCE).unwrap();
    assert_eq!(first, b"s3cret\0");
}

#[test]
fn a_native_hash_cannot_answer_sha2_and_says_so() {
    let stage1 = [7u8; 20];
    let proof = Proof::NativeStage1(stage1);
    let (mut ex, _, first) =
        Exchange::start("app", &proof, false, Some(NATIVE_PASSWORD), NONCE).unwrap();
    assert_eq!(first, auth::native_response_from_stage1(NONCE, &stage1));
    let mut switch = vec![0xFE];
    switch.extend_from_slice(b"caching_sha2_password\0");
    switch.extend_from_slice(NONCE);
    switch.push(0);
    match ex.on_packet(&switch) {
        Err(BackendError::AuthPlugin(m)) => {
            assert!(m.contains("mysql_native_password hash"), "{m}");
            assert!(m.contains("'app'"), "{m}");
        }
        _ => panic!("a native hash must not pretend to answer caching_sha2_password"),
    }
}

/// MySQL 8.0 greets with caching_sha2_password whatever the account's plugin: a native hash
/// answers with mysql_native_password, which the server takes for an account that has it.
#[test]
fn a_native_hash_answers_a_sha2_greeting_with_native() {
    let stage1 = [7u8; 20];
    let proof = Proof::NativeStage1(stage1);
    let (mut ex, plugin, first) =
        Exchange::start("app", &proof, false, Some(SHA2_PASSWORD), NONCE).unwrap();
    assert_eq!(plugin, NATIVE_PASSWORD);
    assert_eq!(first, auth::native_response_from_stage1(NONCE, &stage1));
    assert_eq!(ex.on_packet(OK).unwrap(), Step::Done);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let proof = password("s3cret");
    for bad in [
        &[][..],
        &[0x01][..],
        &[0x01, 0x09][..],
        &[0x42, 1, 2][..],
        &[0xFE][..],
    ] {
        let (mut ex, _, _) =
            Exchange::start("app", &proof, false, Some(SHA2_PASSWORD), NONCE).unwrap();
        assert!(ex.on_packet(bad).is_err(), "{bad:?}");
    }
    let (mut ex, _, _) = Exchange::start("app", &proof, false, Some(SHA2_PASSWORD), NONCE).unwrap();
    ex.on_packet(PERFORM_FULL_AUTH).unwrap();
    assert!(ex.on_packet(b"\x01not a key").is_err());
}
