//! Inputs from the fuzz targets (fuzz/, scripts/fuzz.sh), replayed as plain tests so they
//! run in every `cargo test` without libFuzzer: the committed seeds of each target (where
//! crash reproducers are added too) and the inputs of findings, with what was decided.
//! Needs no cluster.

mod common;

use std::path::Path;

use switchyard::config;
use switchyard::protocol::scan::{Event, Expect, Scanner};
use switchyard::protocol::{command, handshake, packets};
use switchyard::router::{self, Class, PrimaryReason, Router};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn response_scan_corpus() {
    for (name, input) in corpus("response_scan") {
        let data = &input[1..]; // the first byte seeds the fuzzer's chunk sizes
        for expect in [
            Expect::ResultSets,
            Expect::Prepare,
            Expect::FieldList,
            Expect::Single,
        ] {
            for deprecate_eof in [false, true] {
                let mut buf = data.to_vec();
                let mut s = Scanner::new(expect, deprecate_eof);
                let mut pos = 0;
                while let Ok((n, ev)) = s.scan(&mut buf[pos..]) {
                    assert!(n <= buf.len() - pos, "{name}");
                    pos += n;
                    match ev {
                        Event::LocalInfile => s.resume_after_infile(),
                        Event::Done | Event::NeedMore => break,
                    }
                }
            }
            let _ = packets::first_text_value(data, true);
            let _ = packets::first_text_value(data, false);
        }
    }
}

#[test]
fn client_handshake_corpus() {
    for (_, data) in corpus("client_handshake") {
        let _ = handshake::parse_client_hello(&data);
        let _ = handshake::parse_greeting(&data);
        let _ = handshake::is_ssl_request(&data);
        use switchyard::protocol::CapabilityFlags as C;
        let secure = C::CLIENT_PROTOCOL_41 | C::CLIENT_SECURE_CONNECTION;
        for caps in [C::empty(), secure, secure | C::CLIENT_PLUGIN_AUTH] {
            let _ = command::parse_change_user(&data, caps);
        }
        for params in [0u16, 1, 2, 9, u16::MAX] {
            let _ = command::execute_param_types(&data, params);
            let _ = command::execute_with_types(&data, params, &vec![0; 2 * params as usize]);
        }
    }
}

#[test]
fn classifier_corpus() {
    for (name, input) in corpus("classifier") {
        let shared = Router::with_cache_entries(4);
        for sql in input.split(|&b| b == 0) {
            let first = shared.classify(sql);
            assert_eq!(shared.classify(sql), first, "{name}");
            let _ = router::schema_refs(sql);
        }
    }
}

#[test]
fn config_corpus() {
    for (name, data) in corpus("config") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        if let Err(errors) = config::parse(text, &|_| None) {
            assert!(!errors.is_empty(), "{name}");
        }
    }
}

/// Finding of the classifier target: the digest left comments out, so an executable comment
/// left open shared the digest of the same statement with it closed or absent, and a router
/// that had cached the complete statement said `Read` where a fresh one says `Unparsed`. An
/// open executable comment now marks the digest, as an unterminated string does.
#[test]
fn open_executable_comment_has_its_own_digest() {
    let open = b"SELECT /*!25 * FROM t WHERE id = 'x'";
    assert_eq!(
        Router::new().classify(open).class,
        Class::Primary(PrimaryReason::Unparsed)
    );
    let r = Router::new();
    assert_eq!(
        r.classify(b"SELECT * FROM t WHERE id = 1").class,
        Class::Read
    );
    assert_eq!(
        r.classify(open).class,
        Class::Primary(PrimaryReason::Unparsed),
        "the cache must not answer for a different statement"
    );
}

/// The login seeds of the response_scan target are a server's side of complete logins
/// (the first byte picks the plugin as the target does): each must end logged in.
#[test]
fn login_seeds_complete_the_exchange() {
    use switchyard::backend::auth::{Exchange, Proof, Step};
    let plugins = [
        "mysql_native_password",
        "caching_sha2_password",
        "sha256_password",
    ];
    let proof = Proof::Password(config::Secret::new("pw"));
    let mut seen = 0;
    for (name, input) in corpus("response_scan") {
        if !name
            .rsplit('/')
            .next()
            .is_some_and(|f| f.starts_with("login_"))
        {
            continue;
        }
        seen += 1;
        let plugin = plugins[usize::from(input[0] & 3)];
        let (mut ex, _, _) = Exchange::start("u", &proof, false, Some(plugin), b"nonce").unwrap();
        let mut done = false;
        for (_, payload) in common::raw::packets(&input[1..]) {
            match ex.on_packet(&payload) {
                Ok(Step::Done) => done = true,
                Ok(_) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert!(done, "{name} did not end logged in");
    }
    assert!(seen >= 4, "login seeds missing");
}
