//! Classification cost of the router: typical OLTP statements on a warm digest cache (and a
//! point select whose shape is remembered, as a session's COM_QUERY finds it), a
//! 1 MB multi-row INSERT, and what a flooding client sends (1 MB SELECTs, IN lists of ever
//! new lengths). `bench/run.sh` runs this and puts the per-op times in its report.
//!
//! Run alone: `cargo bench --bench router` (add `-- --warm-up-time 1 --measurement-time 2`
//! for a short run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchyard::router::Router;

/// Statements as an OLTP client sends them (sysbench's oltp_read_write, plus a join).
const OLTP: &[(&str, &str)] = &[
    ("point_select", "SELECT c FROM sbtest1 WHERE id=4711"),
    (
        "range_select",
        "SELECT c FROM sbtest3 WHERE id BETWEEN 5012 AND 5111 ORDER BY c",
    ),
    (
        "update_by_pk",
        "UPDATE sbtest2 SET k=k+1 WHERE id=2718",
    ),
    (
        "insert_one_row",
        "INSERT INTO sbtest4 (id, k, c, pad) VALUES (5025, 4993, \
         '83868641912-28773972837-60736120486-75162659906-27563526494-20381887404-41576422241-93426793964-56405065102-33518432330', \
         '67847967377-48000963322-62604785301-91415491898-96926520291')",
    ),
    ("begin", "BEGIN"),
    ("commit", "COMMIT"),
    (
        "select_join",
        "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.created_at >= '2024-01-01' AND c.region = 'eu' ORDER BY o.total DESC LIMIT 20",
    ),
];

/// A multi-row INSERT of at least `bytes` bytes, rows shaped like sysbench's.
fn big_insert(bytes: usize) -> String {
    let mut sql = String::with_capacity(bytes + 256);
    sql.push_str("INSERT INTO sbtest1 (id, k, c, pad) VALUES ");
    let mut id = 1u64;
    while sql.len() < bytes {
        if id > 1 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "({id}, {k}, '{c:0>119}', '{p:0>59}')",
            k = id * 7 % 100_000,
            c = id * 31,
            p = id * 17
        ));
        id += 1;
    }
    sql
}

fn oltp(c: &mut Criterion) {
    let router = Router::new();
    let mut group = c.benchmark_group("classify");
    for (name, sql) in OLTP {
        // Warm the digest cache, as in a running proxy.
        router.classify(sql.as_bytes());
        group.bench_function(*name, |b| {
            b.iter(|| router.classify(black_box(sql.as_bytes())))
        });
    }
    // What a COM_QUERY costs the classifier once its shape was seen (the session's path).
    let (_, sql) = OLTP[0];
    router.classify_query(sql.as_bytes());
    group.bench_function("point_select_remembered", |b| {
        b.iter(|| router.classify_query(black_box(sql.as_bytes())))
    });
    group.finish();
}

fn large_insert(c: &mut Criterion) {
    let router = Router::new();
    let sql = big_insert(1 << 20);
    router.classify(sql.as_bytes());
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Bytes(sql.len() as u64));
    group.bench_function("insert_1mb", |b| {
        b.iter(|| router.classify(black_box(sql.as_bytes())))
    });
    group.finish();
}

/// A SELECT of about `bytes` bytes: one IN list of ids (`list`) or an OR chain, which stays
/// too long to parse after lists are collapsed.
fn big_select(bytes: usize, list: bool) -> String {
    let mut sql = String::from("SELECT c FROM sbtest1 WHERE id IN (1");
    let mut id = 2u64;
    while sql.len() < bytes {
        if list {
            sql.push_str(&format!(",{id}"));
        } else {
            sql.push_str(&format!(") OR id IN ({id}"));
        }
        id += 1;
    }
    sql.push(')');
    sql
}

fn flood(c: &mut Criterion) {
    let router = Router::new();
    let mut group = c.benchmark_group("classify");
    for (name, list) in [("select_1mb_in_list", true), ("select_1mb_too_long", false)] {
        let sql = big_select(1 << 20, list);
        router.classify(sql.as_bytes());
        group.throughput(Throughput::Bytes(sql.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| router.classify(black_box(sql.as_bytes())))
        });
        // A shape not seen before: what a client minting new statements costs.
        group.bench_function(format!("{name}_cold"), |b| {
            b.iter(|| Router::with_cache_entries(1).classify(black_box(sql.as_bytes())))
        });
    }
    // A megabyte of one-letter words: the most tokens a statement of its size can hold (the
    // server rejects it at the third word; the classifier scans all of them).
    let words = format!("SELECT 1 {}", "x ".repeat(1 << 19));
    group.throughput(Throughput::Bytes(words.len() as u64));
    group.bench_function("select_1mb_words", |b| {
        b.iter(|| router.classify(black_box(words.as_bytes())))
    });
    // Every iteration a list length the cache has not seen as a statement.
    let lists: Vec<String> = (1..=1000).map(|n| big_select(n * 8, true)).collect();
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("in_list_new_length", |b| {
        b.iter(|| {
            i = (i + 1) % lists.len();
            router.classify(black_box(lists[i].as_bytes()))
        })
    });
    group.finish();
}

criterion_group!(benches, oltp, large_insert, flood);
criterion_main!(benches);
