//! The classifier under a client that tries to stall or flood it: long and deeply nested
//! statements, lists of every length, more distinct statements than the cache holds.

use super::route::{decide, SessionView};
use std::time::Duration;

use super::PrimaryReason as R;
use super::*;
use crate::state::digests::Digests;

fn p(r: R) -> Class {
    Class::Primary(r)
}

/// A SELECT of exactly `len` bytes whose body is an OR chain (no list to collapse).
fn select_of_len(len: usize) -> String {
    let mut sql = String::from("SELECT c FROM t WHERE a = 1");
    while sql.len() + 9 <= len {
        sql.push_str(" OR a = 1");
    }
    while sql.len() < len {
        sql.push(' ');
    }
    sql
}

#[test]
fn past_the_size_limit_goes_to_the_primary_unparsed() {
    let r = Router::new();
    let at_limit = select_of_len(MAX_PARSED_SQL);
    assert_eq!(
        r.classify(at_limit.trim_end().as_bytes()).class,
        Class::Read
    );
    let over = select_of_len(MAX_PARSED_SQL + 9);
    let c = r.classify(over.as_bytes());
    assert_eq!(c.class, p(R::TooLong));
    assert_eq!(r.unparsed_counts(), (1, 0));
    assert_eq!(
        r.cached_entries(),
        1,
        "a statement not parsed is not cached"
    );
    // EXPLAIN ROUTE gives the reason, and is not counted as traffic.
    let explained = r.explain(over.as_bytes());
    let view = SessionView {
        has_replicas: true,
        ..SessionView::default()
    };
    assert_eq!(decide(&explained, &view).reason, "too long");
    assert_eq!(r.unparsed_counts(), (1, 0));
    // The token scan still runs: effects are kept and a stronger reason wins.
    let lock = format!("SELECT GET_LOCK('a', 1), {}", &over[7..]);
    let c = r.classify(lock.as_bytes());
    assert_eq!(c.class, p(R::SideEffectFunction));
    // (Per row of its FROM: no count of releases lifts the pin.)
    assert_eq!(c.effects.named_lock, LockEffect::Acquire(u32::MAX));
    let locking = format!("{over} FOR UPDATE");
    assert_eq!(r.classify(locking.as_bytes()).class, p(R::LockingRead));
    // Statements after a long one are still seen.
    let multi = format!("{over}; SELECT GET_LOCK('b', 1)");
    let c = r.classify(multi.as_bytes());
    assert_eq!(c.class, p(R::MultiStatement));
    assert_eq!(c.effects.named_lock, LockEffect::Acquire(1));
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let r = Router::new();
    let nest = |n: usize| format!("SELECT {}1{} FROM t", "(".repeat(n), ")".repeat(n));
    assert_eq!(r.classify(nest(MAX_NESTING).as_bytes()).class, Class::Read);
    assert_eq!(
        r.classify(nest(MAX_NESTING + 1).as_bytes()).class,
        p(R::TooDeep)
    );
    assert_eq!(r.classify(nest(100_000).as_bytes()).class, p(R::TooDeep));
    let subqueries = format!("SELECT {}1{}", "(SELECT ".repeat(5_000), ")".repeat(5_000));
    assert_eq!(r.classify(subqueries.as_bytes()).class, p(R::TooDeep));
    assert_eq!(r.unparsed_counts().1, 3);
}

/// Long operator chains nest the AST without nesting parentheses: the size limit must keep
/// them shallow enough to visit and drop on a small stack (half of tokio's 2 MiB default).
#[test]
fn long_operator_chains_do_not_overflow_the_stack() {
    let chains = [
        format!("SELECT {}1 FROM t", "1+".repeat(MAX_PARSED_SQL / 2 - 10)),
        format!(
            "SELECT 1 FROM t WHERE {}1",
            "NOT ".repeat(MAX_PARSED_SQL / 4 - 10)
        ),
        format!("SELECT 1 FROM t WHERE {}1", "-".repeat(MAX_PARSED_SQL - 30)),
        format!("SELECT {}1 FROM t", "1+".repeat(1 << 19)),
        format!("SELECT 1 FROM t WHERE {}a", "a=1 AND ".repeat(1 << 17)),
    ];
    let worker = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let r = Router::new();
            chains
                .iter()
                .map(|sql| r.classify(sql.as_bytes()).class)
                .collect::<Vec<_>>()
        })
        .unwrap();
    let classes = worker.join().expect("no stack overflow");
    assert_eq!(classes[0], Class::Read);
    assert_eq!(&classes[3..], &[p(R::TooLong), p(R::TooLong)]);
}

/// `SELECT ... IN (...)` for 10,000 list lengths, literals of every kind the collapse takes
/// first, then plain ids to keep the test quick.
fn in_lists() -> impl Iterator<Item = String> {
    let mut list = String::from("'x', -2, +0x1f, 1.5e3, \"y\", (1)");
    (0..10_000).map(move |_| {
        list.push_str(",7");
        format!("SELECT c FROM t WHERE id IN ({list}) AND k = 1")
    })
}

#[test]
fn every_in_list_length_shares_one_cache_entry() {
    let r = Router::new();
    for sql in in_lists() {
        assert_eq!(r.classify(sql.as_bytes()).class, Class::Read, "{sql}");
    }
    assert_eq!(r.cached_entries(), 1);
    assert_eq!(
        r.unparsed_counts(),
        (0, 0),
        "lists are collapsed before the size limit"
    );
}

#[test]
fn every_in_list_length_shares_one_digest_row() {
    let stats = Digests::default();
    for sql in in_lists() {
        let text = || fingerprint(sql.as_bytes()).1;
        stats.record(fingerprint_hash(sql.as_bytes()), text, true, Duration::ZERO);
    }
    let rows = stats.snapshot();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].text, "SELECT C FROM T WHERE ID IN(?+) AND K=?");
    assert_eq!(rows[0].count, 10_000);
}

#[test]
fn multi_row_values_share_one_entry() {
    let r = Router::new();
    for n in 1..=200 {
        let sql = format!("VALUES {}", vec!["(1, 'a')"; n].join(", "));
        assert_eq!(r.classify(sql.as_bytes()).class, Class::Read, "{n}");
        let ins = format!(
            "INSERT INTO t (a, b) VALUES {}",
            vec!["(1, 'a')"; n].join(",")
        );
        assert_eq!(
            fingerprint(ins.as_bytes()).1,
            "INSERT INTO T(A,B) VALUES(?+)"
        );
    }
    assert_eq!(r.cached_entries(), 1);
}

/// The collapsed shape keeps apart whatever changes routing: a list that is not all
/// literals is not collapsed, and what follows a list is still in the digest.
#[test]
fn collapsing_keeps_routing_apart() {
    let r = Router::new();
    let cases: &[(&str, Class)] = &[
        ("SELECT c FROM t WHERE id IN (1, 2, 3)", Class::Read),
        (
            "SELECT c FROM t WHERE id IN (1, 2, 3) FOR UPDATE",
            p(R::LockingRead),
        ),
        (
            "SELECT c FROM t WHERE id IN (1, 2) LOCK IN SHARE MODE",
            p(R::LockingRead),
        ),
        (
            "SELECT c FROM t WHERE id IN (1, GET_LOCK('a', 1))",
            p(R::SideEffectFunction),
        ),
        (
            "SELECT c FROM t WHERE id IN (1, 2, LAST_INSERT_ID())",
            p(R::SideEffectFunction),
        ),
        ("SELECT c FROM t WHERE id IN (1, @x)", p(R::UserVariable)),
        (
            "SELECT c INTO @v FROM t WHERE id IN (1, 2)",
            p(R::UserVariable),
        ),
        (
            "SELECT c FROM t WHERE id IN (1, 2) INTO OUTFILE '/tmp/x'",
            p(R::Write),
        ),
        (
            "SELECT c FROM t WHERE id IN (1, (SELECT db.f()))",
            p(R::StoredFunction),
        ),
        (
            "SELECT c FROM t WHERE id IN (1 /*!, GET_LOCK('a', 1) */)",
            p(R::SideEffectFunction),
        ),
        ("SELECT c FROM t WHERE id IN ()", p(R::Unparsed)),
        (
            "SELECT c FROM t WHERE (a, b) IN ((1, 2), (3, 4))",
            Class::Read,
        ),
        (
            "VALUES (1, 2), (3, GET_LOCK('a', 1))",
            p(R::SideEffectFunction),
        ),
    ];
    // Twice over one router: the second round answers from the cache.
    for _ in 0..2 {
        for (sql, want) in cases {
            assert_eq!(&r.classify(sql.as_bytes()).class, want, "{sql}");
        }
    }
    // Literal-only lists of other lengths hit the entries made above.
    let before = r.cached_entries();
    for sql in [
        "SELECT c FROM t WHERE id IN (9) FOR UPDATE",
        "SELECT c FROM t WHERE (a, b) IN ((5, 6))",
        "select c from t where id in ('a', -1, +2, 3e4)",
        "SELECT c FROM t WHERE id IN (?, ?, 5)",
    ] {
        r.classify(sql.as_bytes());
    }
    assert_eq!(r.cached_entries(), before);
}

/// Figures for the report, not a check: `cargo nextest run -E 'test(classify_cost)'
/// --run-ignored only --no-capture` (debug build: compare, do not quote as absolute).
#[test]
#[ignore]
fn classify_cost_of_one_megabyte() {
    use sqlparser::{dialect::MySqlDialect, parser::Parser};
    let list = format!(
        "SELECT c FROM t WHERE id IN ({})",
        (0..150_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let chain = select_of_len(1 << 20);
    for (name, sql) in [("in list", &list), ("or chain", &chain)] {
        let r = Router::new();
        let t = std::time::Instant::now();
        let c = r.classify(sql.as_bytes());
        eprintln!(
            "{name} {} KB: classify {:?} -> {:?}",
            sql.len() >> 10,
            t.elapsed(),
            c.class
        );
        let t = std::time::Instant::now();
        let c = r.classify(sql.as_bytes());
        eprintln!("  again {:?} -> {:?}", t.elapsed(), c.class);
    }
    let t = std::time::Instant::now();
    let parsed = Parser::parse_sql(&MySqlDialect {}, &list).is_ok();
    eprintln!(
        "sqlparser alone on the in list: {:?} (ok: {parsed})",
        t.elapsed()
    );
}

/// What the event loop runs (`try_classify_query`) gives up on long statements and on SELECT
/// shapes the cache lacks; the full pass answers those and fills the cache, and the light
/// pass then answers the same shape itself, as the full pass would.
#[test]
fn the_light_pass_gives_up_on_what_may_cost() {
    let r = Router::new();
    let point = "SELECT c FROM t WHERE id = 7";
    assert!(
        r.try_classify_query(point.as_bytes()).is_none(),
        "new shape"
    );
    let full = r.classify_query_full(crate::state::per_worker::current_slot(), point.as_bytes());
    assert_eq!(full.c.class, Class::Read);
    let light = r
        .try_classify_query(b"SELECT c FROM t WHERE id = 8")
        .unwrap();
    assert_eq!((&*light.c, light.fingerprint), (&*full.c, full.fingerprint));
    // Statements decided by their first keyword need no parse, at any length up to the
    // light pass's limit.
    let insert = format!("INSERT INTO t VALUES {}(1)", "(1),".repeat(800));
    assert!(insert.len() <= LIGHT_MAX_SQL);
    assert_eq!(
        r.try_classify_query(insert.as_bytes()).unwrap().c.class,
        p(R::Write)
    );
    let long = select_of_len(LIGHT_MAX_SQL + 1);
    assert!(r.try_classify_query(long.as_bytes()).is_none(), "too long");
    let big_insert = format!("INSERT INTO t VALUES {}(1)", "(1),".repeat(20_000));
    assert!(r.try_classify_query(big_insert.as_bytes()).is_none());
    // A statement of a known shape after one of a new shape: the whole text goes to the
    // full pass, which answers it as `classify` does.
    let multi = format!("{point}; SELECT d FROM u");
    assert!(r.try_classify_query(multi.as_bytes()).is_none());
    assert_eq!(r.classify_query(multi.as_bytes()).c.class, Class::Read);
    assert_eq!(
        r.full_pass_counts(),
        (0, 2),
        "counted by the full pass only"
    );
}

/// A light pass that gives up counts nothing, so the full pass's count is the only one.
#[test]
fn a_light_pass_that_gives_up_counts_nothing() {
    let r = Router::new();
    let deep = format!("SELECT {}1{} FROM t", "(".repeat(40), ")".repeat(40));
    let sql = format!("{deep}; SELECT c FROM t WHERE id = 1");
    assert!(r.try_classify_query(sql.as_bytes()).is_none());
    assert_eq!(r.unparsed_counts(), (0, 0));
    r.classify_query(sql.as_bytes());
    assert_eq!(r.unparsed_counts(), (0, 1));
    // Known now: the light pass answers, and counts.
    assert!(r.try_classify_query(sql.as_bytes()).is_some());
    assert_eq!(r.unparsed_counts(), (0, 2));
}
