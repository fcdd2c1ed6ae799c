//! The response scanner and the packet decoders behind it, on arbitrary server bytes.
//!
//! Input: one byte that seeds the chunk sizes, then the bytes a backend might send. Each is
//! scanned for every `Expect` and both EOF styles, once as one buffer and once in chunks
//! the way socket reads deliver them (unconsumed bytes kept and fed again with more). The
//! scanner must never claim more bytes than it was given, and both ways must agree. The
//! same bytes also drive Switchyard's side of a backend login (`backend::auth::Exchange`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::protocol::packets;
use switchyard::protocol::scan::{Event, Expect, Outcome, Scanner};

const EXPECTS: [Expect; 4] = [
    Expect::ResultSets,
    Expect::Prepare,
    Expect::FieldList,
    Expect::Single,
];

/// Where the relay would have stopped: bytes consumed, how it ended, what it read.
#[derive(Debug, PartialEq)]
struct Run {
    consumed: usize,
    end: End,
    outcome: Outcome,
    /// The bytes as forwarded (the prepare-OK statement id is rewritten in place).
    forwarded: Vec<u8>,
}

#[derive(Debug, PartialEq)]
enum End {
    Done,
    /// Ran out of input before the response was complete.
    Short,
    Error,
}

fn new_scanner(expect: Expect, deprecate_eof: bool) -> Scanner {
    let mut s = Scanner::new(expect, deprecate_eof);
    s.rewrite_stmt_id = Some(0x5EED_1D00);
    s
}

/// Feeds `data` in chunks whose sizes come from `sizes` (0 means all that is left).
fn run(expect: Expect, deprecate_eof: bool, data: &[u8], mut sizes: impl FnMut() -> usize) -> Run {
    let mut s = new_scanner(expect, deprecate_eof);
    let mut pending: Vec<u8> = Vec::new();
    let mut forwarded = Vec::new();
    let mut next = 0;
    let mut consumed = 0;
    loop {
        let (n, ev) = match s.scan(&mut pending) {
            Ok(r) => r,
            Err(_) => {
                return Run {
                    consumed,
                    end: End::Error,
                    outcome: s.outcome,
                    forwarded,
                }
            }
        };
        assert!(
            n <= pending.len(),
            "consumed {n} of {} bytes",
            pending.len()
        );
        forwarded.extend_from_slice(&pending[..n]);
        pending.drain(..n);
        consumed += n;
        match ev {
            Event::Done => {
                assert!(s.is_done());
                return Run {
                    consumed,
                    end: End::Done,
                    outcome: s.outcome,
                    forwarded,
                };
            }
            // The relay passes the client's file through, then the server answers.
            Event::LocalInfile => s.resume_after_infile(),
            Event::NeedMore => {
                if next == data.len() {
                    return Run {
                        consumed,
                        end: End::Short,
                        outcome: s.outcome,
                        forwarded,
                    };
                }
                let want = match sizes() {
                    0 => data.len() - next,
                    k => k.min(data.len() - next),
                };
                pending.extend_from_slice(&data[next..next + want]);
                next += want;
            }
        }
    }
}

/// A backend's side of a login: the bytes, framed as MySQL packets, answer Switchyard's
/// authentication exchange; the seed picks the plugin, TLS and the kind of proof.
fn login_exchange(seed: u8, data: &[u8]) {
    use switchyard::backend::auth::{Exchange, Proof};
    let plugin = [
        "mysql_native_password",
        "caching_sha2_password",
        "sha256_password",
        "x",
    ][usize::from(seed & 3)];
    let proof = if seed & 4 == 0 {
        Proof::Password(switchyard::config::Secret::new("pw"))
    } else {
        Proof::NativeStage1([7; 20])
    };
    let Ok((mut ex, _, _)) = Exchange::start("u", &proof, seed & 8 != 0, Some(plugin), b"nonce")
    else {
        return;
    };
    let mut rest = data;
    while rest.len() >= 4 {
        let len = usize::from(rest[0]) | usize::from(rest[1]) << 8 | usize::from(rest[2]) << 16;
        let Some(payload) = rest.get(4..4 + len) else {
            break;
        };
        rest = &rest[4 + len..];
        if !matches!(
            ex.on_packet(payload),
            Ok(switchyard::backend::auth::Step::Send(_))
                | Ok(switchyard::backend::auth::Step::Read)
        ) {
            break;
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else {
        return;
    };

    // The decoders the scanner and the session use, on the raw bytes and on each payload.
    for deprecate_eof in [false, true] {
        let _ = packets::first_text_value(data, deprecate_eof);
    }
    let _ = packets::parse_ok(data);
    let _ = packets::parse_eof(data);
    let _ = packets::parse_err(data);
    let _ = packets::tracked_gtid(data);
    login_exchange(seed, data);

    for expect in EXPECTS {
        for deprecate_eof in [false, true] {
            let whole = run(expect, deprecate_eof, data, || 0);
            let mut x = u32::from(seed) | 0x100;
            let chunked = run(expect, deprecate_eof, data, || {
                // xorshift: chunk sizes 1..=16, now and then a bigger one.
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if x % 8 == 0 {
                    (x as usize >> 8) % 512 + 1
                } else {
                    (x as usize >> 8) % 16 + 1
                }
            });
            if whole.end == End::Error {
                // The relay drops the connection at an error: what was forwarded before
                // it depends on the chunking, the verdict must not.
                assert_eq!(
                    chunked.end,
                    End::Error,
                    "{expect:?} deprecate_eof={deprecate_eof}"
                );
                assert_eq!(whole.outcome, chunked.outcome);
            } else {
                assert_eq!(whole, chunked, "{expect:?} deprecate_eof={deprecate_eof}");
            }
            assert!(whole.consumed <= data.len());
        }
    }
});
