//! What clients send before and around authentication, and the command packets whose
//! fields the session reads or rewrites: a load balancer's PROXY header, handshake
//! response, SSLRequest, greeting, COM_CHANGE_USER, statement ids, COM_STMT_EXECUTE
//! parameter types.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::protocol::{command, handshake, proxy_header, CapabilityFlags as C};

/// The capabilities that change how COM_CHANGE_USER is read: none, the 4.1 answer length,
/// and that with a plugin name.
fn change_user_caps() -> [C; 3] {
    let secure = C::CLIENT_PROTOCOL_41 | C::CLIENT_SECURE_CONNECTION;
    [C::empty(), secure, secure | C::CLIENT_PLUGIN_AUTH]
}

fuzz_target!(|data: &[u8]| {
    if let proxy_header::Parsed::Done { len, .. } = proxy_header::parse(data) {
        assert!(len <= data.len(), "a header longer than its bytes");
    }
    if let Ok(hello) = handshake::parse_client_hello(data) {
        // What the proxy then sends a backend on the client's behalf.
        let _ = handshake::backend_hello(
            &hello.user,
            &hello.auth_response,
            hello.database.as_deref(),
            handshake::response_shaping(hello.capabilities),
            hello.collation,
            hello
                .auth_plugin
                .as_deref()
                .unwrap_or("mysql_native_password"),
        );
    }
    let _ = handshake::is_ssl_request(data);
    let _ = handshake::parse_greeting(data);
    for caps in change_user_caps() {
        let _ = command::parse_change_user(data, caps);
    }
    let _ = command::stmt_id(data);
    let mut copy = data.to_vec();
    command::set_stmt_id(&mut copy, 0xABCD_1234);
    if data.len() >= 5 {
        assert_eq!(command::stmt_id(&copy), Some(0xABCD_1234));
    }
    let _ = command::name(data.first().copied().unwrap_or(0));

    // A few parameter counts, and one the input picks.
    let picked = data
        .get(10..12)
        .map_or(3, |b| u16::from_le_bytes([b[0], b[1]]));
    for params in [0u16, 1, 2, 7, 8, 9, 64, picked, u16::MAX] {
        if let Some(types) = command::execute_param_types(data, params) {
            assert_eq!(types.len(), 2 * params as usize);
        }
        let types: Vec<u8> = (0..2 * params as usize).map(|i| i as u8).collect();
        for t in [&types[..], &types[..types.len() / 2]] {
            if let Some(out) = command::execute_with_types(data, params, t) {
                assert_eq!(out.len(), data.len() + t.len());
                assert_eq!(command::execute_param_types(&out, params), Some(t));
                assert_eq!(command::stmt_id(&out), command::stmt_id(data));
            }
        }
    }
});
