//! Statement classification and the schema names a statement spells out, on arbitrary
//! bytes (COM_QUERY payloads are not necessarily UTF-8).
//!
//! The input is up to 8 statements separated by NUL bytes, classified in order by one
//! router, so later ones may be answered from the digest cache entries of earlier ones.
//! Every answer must equal that of a router that has never seen anything, and asking again
//! (now from the cache) must give the same answer. One input is one whole reproducer. The
//! session's own readers of statement text (SET lists, character set and idle limit
//! changes, named-lock calls) run on each too: none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::router::{self, Class, PrimaryReason, Router};

fuzz_target!(|input: &[u8]| {
    // Small, so the cache also starts over now and then.
    let shared = Router::with_cache_entries(4);
    for sql in input.split(|&b| b == 0).take(8) {
        let fresh = Router::new().classify(sql);
        let first = shared.classify(sql);
        // Known and tolerated: the digest leaves out literal values and comments, which
        // sqlparser does see, so a statement it cannot parse (`SELECT /*!1 1` without its
        // `*/`, `SELECT 1.2.3`) may share a digest with one it can. The two answers then
        // differ only in `Primary(Unparsed)` against `Read` for text every server rejects,
        // and in what only the parse tells (`reads_no_data`: whether it calls a function).
        let unparsed = Class::Primary(PrimaryReason::Unparsed);
        let parsed_effects = |c: &router::Classification| router::Effects {
            reads_no_data: false,
            ..c.effects.clone()
        };
        let parse_only = (first.class == unparsed) != (fresh.class == unparsed)
            && (first.class == Class::Read || fresh.class == Class::Read)
            && first.hints == fresh.hints
            && parsed_effects(&first) == parsed_effects(&fresh);
        assert!(
            first == fresh || parse_only,
            "answer after the earlier statements' cache entries differs from a fresh one: \
             {:?}\n cached: {first:?}\n fresh: {fresh:?}",
            String::from_utf8_lossy(sql)
        );
        assert_eq!(shared.classify(sql), first, "classifying twice differs");

        if let Some(list) = router::set_list(sql) {
            assert!(sql.len() >= list.list.len(), "a SET list longer than its statement");
        }
        let _ = router::client_charset(sql);
        let _ = router::session_integer(sql, "wait_timeout");
        let _ = router::lock_calls(sql);

        let names = router::schema_refs(sql);
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "not sorted or not deduplicated"
        );
    }
});
