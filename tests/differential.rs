//! Direct vs proxied, byte for byte: the same commands sent to the primary and through
//! Switchyard (tenant `globex` has no replicas, so routing cannot change the answer) must
//! give identical column definitions, rows, OK/EOF/ERR packets and status flags.

mod common;

use common::raw::{modern_caps, packets, RawClient};
use mysql_async::prelude::*;
use switchyard::protocol::scan::Expect;
use switchyard::protocol::CapabilityFlags;

const SETUP: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS wf_globex.diff_types (
        id INT PRIMARY KEY,
        b BINARY(4), vb VARBINARY(16), bl BLOB,
        d DECIMAL(12,3), f DOUBLE, u BIGINT UNSIGNED,
        t VARCHAR(40) CHARACTER SET utf8mb4, n INT NULL,
        dt DATETIME(3), da DATE, tm TIME, j JSON, e ENUM('x','y'), bit1 BIT(3)
    )",
    "INSERT IGNORE INTO wf_globex.diff_types VALUES
        (1, 0x00FF10AB, 0xDEADBEEF00, 0x000102FF, 12345.678, 1.5e300, 18446744073709551615,
         'héllo 🐙 wörld', NULL, '2024-02-29 23:59:59.123', '1999-12-31', '-838:59:59',
         '{\"a\": [1, 2, {\"b\": null}]}', 'y', b'101'),
        (2, NULL, '', '', -0.001, -0, 0, '', 7, NULL, NULL, NULL, NULL, NULL, NULL)",
    // For LOCK TABLES that holds a table other than diff_types.
    "CREATE TABLE IF NOT EXISTS wf_globex.diff_lock (id INT)",
];

const QUERIES: &[&str] = &[
    "SELECT * FROM diff_types ORDER BY id",
    "SELECT * FROM diff_types WHERE id < 0",
    "SELECT id, t, j FROM diff_types WHERE id = 1; SELECT 'second', 2; SELECT 3",
    "SELECT 1/0 AS warns",
    "SHOW WARNINGS",
    "UPDATE diff_types SET n = n WHERE id = 2",
    "SELECT * FROM no_such_table",
    "SELEC broken syntax",
    "SELECT CAST('abc' AS SIGNED)",
    "DO 1",
    "SHOW COLUMNS FROM diff_types",
    "USE ``",
    // Another tenant's schema: refused by Switchyard as the server refuses it.
    "USE wf_acme",
    // A string is no name without ANSI_QUOTES: the server's syntax error, not a refusal.
    "USE \"wf_globex\"",
    "USE 'wf_globex'",
];

async fn setup() {
    let mut root = common::root().await;
    for s in SETUP {
        root.query_drop(*s).await.unwrap();
    }
}

async fn pair(caps: CapabilityFlags) -> (RawClient, RawClient, Vec<u8>, Vec<u8>, common::Proxy) {
    let proxy = common::start(common::config("")).await;
    let (direct, d_login) = RawClient::connect(
        common::primary_port(),
        "globex_app",
        "globex_pw",
        Some("wf_globex"),
        caps,
    )
    .await;
    let (proxied, p_login) = RawClient::connect(
        proxy.addr.port(),
        "globex_app",
        "globex_pw",
        Some("wf_globex"),
        caps,
    )
    .await;
    (direct, proxied, d_login, p_login, proxy)
}

fn assert_same(what: &str, direct: &[u8], proxied: &[u8]) {
    if direct != proxied {
        panic!(
            "{what}: proxied answer differs\n direct:  {:?}\n proxied: {:?}",
            packets(direct),
            packets(proxied)
        );
    }
}

/// Sends `sql` as a query on both connections; the answers must be identical.
async fn same_query(direct: &mut RawClient, proxied: &mut RawClient, sql: &str) {
    assert_same(sql, &direct.query(sql).await, &proxied.query(sql).await);
}

#[tokio::test]
async fn text_protocol_is_byte_identical() {
    setup().await;
    let without_deprecate = modern_caps() - CapabilityFlags::CLIENT_DEPRECATE_EOF;
    let without_track = modern_caps() - CapabilityFlags::CLIENT_SESSION_TRACK;
    let old_client = modern_caps()
        - CapabilityFlags::CLIENT_FOUND_ROWS
        - CapabilityFlags::CLIENT_MULTI_STATEMENTS
        - CapabilityFlags::CLIENT_DEPRECATE_EOF
        - CapabilityFlags::CLIENT_SESSION_TRACK;
    for caps in [modern_caps(), without_deprecate, without_track, old_client] {
        let (mut direct, mut proxied, d_login, p_login, _proxy) = pair(caps).await;
        assert_same("login OK", &d_login, &p_login);
        assert_eq!(
            direct.server.version, proxied.server.version,
            "server version shown"
        );
        for q in QUERIES {
            let d = direct.query(q).await;
            let p = proxied.query(q).await;
            assert!(!d.is_empty());
            assert_same(q, &d, &p);
        }
    }
}

fn prepare(sql: &str) -> Vec<u8> {
    let mut p = vec![0x16];
    p.extend_from_slice(sql.as_bytes());
    p
}

/// COM_STMT_EXECUTE of statement `id` with one INT parameter; types sent only if `bound`.
fn execute(id: u32, param: i32, bound: bool) -> Vec<u8> {
    let mut p = vec![0x17];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, u8::from(bound)]);
    if bound {
        p.extend_from_slice(&[3, 0]);
    }
    p.extend_from_slice(&param.to_le_bytes());
    p
}

/// Reads and blanks the statement id of a raw prepare-OK answer.
fn take_stmt_id(raw: &mut [u8]) -> u32 {
    let id = u32::from_le_bytes([raw[5], raw[6], raw[7], raw[8]]);
    raw[5..9].fill(0);
    id
}

/// Prepares `sql` on both connections: each answer with its statement id read and blanked
/// (ids are each server's, or Switchyard's, own choice; all else must match).
async fn prepare_both(
    direct: &mut RawClient,
    proxied: &mut RawClient,
    sql: &str,
) -> ((Vec<u8>, u32), (Vec<u8>, u32)) {
    let sql = prepare(sql);
    let mut d = direct.command(&sql, Expect::Prepare).await;
    let mut p = proxied.command(&sql, Expect::Prepare).await;
    let (d_id, p_id) = (take_stmt_id(&mut d), take_stmt_id(&mut p));
    ((d, d_id), (p, p_id))
}

#[tokio::test]
async fn binary_protocol_is_byte_identical() {
    setup().await;
    let without_deprecate = modern_caps() - CapabilityFlags::CLIENT_DEPRECATE_EOF;
    for caps in [modern_caps(), without_deprecate] {
        let (mut direct, mut proxied, _, _, _proxy) = pair(caps).await;
        let ((d, d_id), (p, p_id)) = prepare_both(
            &mut direct,
            &mut proxied,
            "SELECT * FROM diff_types WHERE id > ? ORDER BY id",
        )
        .await;
        assert_same("prepare", &d, &p);
        for (param, bound) in [(0, true), (1, false), (5, false), (0, false)] {
            let d = direct
                .command(&execute(d_id, param, bound), Expect::ResultSets)
                .await;
            let p = proxied
                .command(&execute(p_id, param, bound), Expect::ResultSets)
                .await;
            assert_same(&format!("execute({param}, bound={bound})"), &d, &p);
        }
        let bad = prepare("SELECT * FROM nowhere WHERE id = ?");
        let d = direct.command(&bad, Expect::Prepare).await;
        let p = proxied.command(&bad, Expect::Prepare).await;
        assert_same("failed prepare", &d, &p);
    }
}

/// Sends each step (a name for messages, the command's payload, its answer's shape) on a
/// direct session and on a proxied one, and checks each answer is the server's, byte for
/// byte.
async fn same_answers(steps: &[(&str, &[u8], Expect)]) {
    setup().await;
    let (mut direct, mut proxied, _, _, _proxy) = pair(modern_caps()).await;
    for &(what, cmd, expect) in steps {
        let d = direct.command(cmd, expect).await;
        let p = proxied.command(cmd, expect).await;
        assert_same(what, &d, &p);
    }
}

/// COM_REFRESH (`mysql_refresh()`: `mariadb-admin flush-logs`) commits the session's
/// transaction first, as a FLUSH statement does, whatever the privilege check then says.
/// In a read-only transaction (which lives on a replica) it went to the replica, and the
/// session still took itself for one in that transaction: its next write got ERR 1792 where
/// the server runs it.
#[tokio::test]
async fn com_refresh_ends_a_read_only_transaction_as_directly() {
    same_answers(&[
        ("begin", b"\x03START TRANSACTION READ ONLY", Expect::Single),
        (
            "read",
            b"\x03SELECT COUNT(*) FROM diff_types",
            Expect::ResultSets,
        ),
        ("refresh", &[0x07, 0x02], Expect::Single),
        (
            "after",
            b"\x03CREATE TEMPORARY TABLE diff_refresh_tmp (x INT)",
            Expect::Single,
        ),
        ("state", b"\x03SELECT @@in_transaction", Expect::ResultSets),
    ])
    .await;
}

/// A reset of a session that holds no server connection is answered by Switchyard: its OK
/// (status flags: autocommit, the global sql_mode's) is the server's, and what the session
/// set is gone after it.
#[tokio::test]
async fn a_reset_answered_by_switchyard_is_the_servers() {
    same_answers(&[
        (
            "set",
            b"\x03SET @diff_reset = 1, SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES', autocommit = 0",
            Expect::Single,
        ),
        ("read", b"\x03SELECT 1", Expect::ResultSets),
        ("reset", &[0x1F], Expect::Single),
        (
            "after",
            b"\x03SELECT @diff_reset, @@sql_mode, @@autocommit",
            Expect::ResultSets,
        ),
    ])
    .await;
}

#[tokio::test]
async fn other_commands_are_byte_identical() {
    setup().await;
    let (mut direct, mut proxied, _, _, _proxy) = pair(modern_caps()).await;
    let cmds: Vec<(Vec<u8>, Expect)> = vec![
        (vec![0x0E], Expect::Single),                                 // COM_PING
        ([&[0x04][..], b"diff_types\0"].concat(), Expect::FieldList), // COM_FIELD_LIST
        ([&[0x02][..], b"wf_globex"].concat(), Expect::Single),       // COM_INIT_DB
        (vec![0x1B, 1, 0], Expect::Single),                           // COM_SET_OPTION off
        (vec![0x1B, 0, 0], Expect::Single),                           // COM_SET_OPTION on
        (vec![0x1F], Expect::Single),                                 // COM_RESET_CONNECTION
        (vec![0x07, 0x02], Expect::Single), // COM_REFRESH (logs): the server's privilege check
    ];
    for (cmd, expect) in cmds {
        let d = direct.command(&cmd, expect).await;
        let p = proxied.command(&cmd, expect).await;
        assert_same(&format!("command 0x{:02x}", cmd[0]), &d, &p);
    }
    // COM_STATISTICS changes every second; both must answer with one text packet.
    let d = direct.command(&[0x09], Expect::Single).await;
    let p = proxied.command(&[0x09], Expect::Single).await;
    assert!(
        packets(&p)[0].1.starts_with(b"Uptime: "),
        "{:?}",
        packets(&p)
    );
    assert_eq!(packets(&d).len(), packets(&p).len());
}

/// Commands too short for their fields, or that the server does not know: the server's own
/// answer, and the session goes on as it would directly.
#[tokio::test]
async fn short_and_unknown_commands_get_the_servers_answer() {
    setup().await;
    let (mut direct, mut proxied, _, _, proxy) = pair(modern_caps()).await;
    let refused: &[(&[u8], Expect)] = &[
        (&[], Expect::Single),                              // an empty packet
        (&[0x40], Expect::Single),                          // no such command
        (&[0x00], Expect::Single),                          // COM_SLEEP
        (&[0x1D], Expect::Single),                          // COM_DAEMON
        (&[0x17], Expect::ResultSets),                      // COM_STMT_EXECUTE, no fields
        (&[0x17, 1, 0, 0, 0], Expect::ResultSets),          // COM_STMT_EXECUTE, an id only
        (&[0xFA], Expect::ResultSets),                      // COM_STMT_BULK_EXECUTE, no fields
        (&[0xFA, 1, 0, 0, 0, 0x80, 0], Expect::ResultSets), // bulk the login did not ask for
        (&[0x02], Expect::Single),                          // COM_INIT_DB, no name
        (&[0x03], Expect::ResultSets),                      // COM_QUERY, no text
        (&[0x16], Expect::Prepare),                         // COM_STMT_PREPARE, no text
        (&[0x04], Expect::FieldList),                       // COM_FIELD_LIST, no table
    ];
    for &(cmd, expect) in refused {
        let d = direct.command(cmd, expect).await;
        let p = proxied.command(cmd, expect).await;
        assert_same(&format!("command {cmd:02x?}"), &d, &p);
        let d = direct.query("SELECT 42").await;
        let p = proxied.query("SELECT 42").await;
        assert_same(&format!("the statement after {cmd:02x?}"), &d, &p);
    }
    // The server reads a short field past the packet's end, from its buffer: zeros on a
    // fresh connection (later, what earlier packets left there). Each is a connection's
    // first command, then.
    let zero_read: &[(&[u8], Expect)] = &[
        (&[0x1C], Expect::ResultSets), // COM_STMT_FETCH of statement 0
        (&[0x1A], Expect::Single),     // COM_STMT_RESET of statement 0
        (&[0x1B], Expect::Single),     // COM_SET_OPTION 0: multi-statements on
        (&[0x0C], Expect::Single),     // COM_PROCESS_KILL of thread 0
    ];
    for &(cmd, expect) in zero_read {
        let mut answers = Vec::new();
        for port in [common::primary_port(), proxy.addr.port()] {
            let caps = modern_caps() - CapabilityFlags::CLIENT_MULTI_STATEMENTS;
            let (mut c, _) =
                RawClient::connect(port, "globex_app", "globex_pw", Some("wf_globex"), caps).await;
            let first = c.command(cmd, expect).await;
            // After COM_SET_OPTION 0, two statements in one query are two answers.
            answers.push((first, c.query("SELECT 42; SELECT 43").await));
        }
        assert_same(
            &format!("first command {cmd:02x?}"),
            &answers[0].0,
            &answers[1].0,
        );
        assert_same(
            &format!("the query after {cmd:02x?}"),
            &answers[0].1,
            &answers[1].1,
        );
    }
}

/// LOAD DATA LOCAL INFILE: the server's file request, the client's file in packets and the
/// server's answer pass through as directly, for a file with a bad row (its warnings too)
/// and for a client that sends no file (the empty packet at once).
#[tokio::test]
async fn load_data_local_infile_is_byte_identical() {
    setup().await;
    let mut root = common::root().await;
    root.query_drop("CREATE TABLE IF NOT EXISTS wf_globex.diff_load (id INT, t VARCHAR(10))")
        .await
        .unwrap();
    root.query_drop("TRUNCATE wf_globex.diff_load")
        .await
        .unwrap();
    let caps = modern_caps() | CapabilityFlags::CLIENT_LOCAL_FILES;
    let (mut direct, mut proxied, _, _, _proxy) = pair(caps).await;
    let load =
        b"\x03LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE diff_load FIELDS TERMINATED BY ','";
    let files: [(&str, &[u8]); 2] = [
        ("a file", b"1,one\n2,two\nx,three,extra\n"),
        ("no file", b""),
    ];
    for (what, file) in files {
        let mut answers = Vec::new();
        for c in [&mut direct, &mut proxied] {
            c.io.send(0, load).await.unwrap();
            let request = c.io.read_packet().await.unwrap();
            let mut seq = request.seq.wrapping_add(1);
            if !file.is_empty() {
                seq = c.io.send(seq, file).await.unwrap();
            }
            c.io.send(seq, &[]).await.unwrap();
            let answer = c.io.read_packet().await.unwrap();
            answers.push((request.seq, request.payload, answer.seq, answer.payload));
        }
        assert_eq!(
            answers[0].1[0], 0xFB,
            "{what}: the server asks for the file"
        );
        assert_eq!(answers[0].3[0], 0x00, "{what}: the load succeeds");
        // Each side's load of rows is a transaction of its own: the OK's session-state block
        // names its own GTID. All before that block (its length, type, entry length and name
        // length, a byte each, precede the name) must match.
        let before_gtid = |ok: &[u8]| match ok.windows(9).position(|w| w == b"last_gtid") {
            Some(at) => ok[..at - 4].to_vec(),
            None => ok.to_vec(),
        };
        let (d, p) = (&answers[0], &answers[1]);
        assert_eq!(
            (d.0, &d.1, d.2),
            (p.0, &p.1, p.2),
            "{what}: proxied exchange differs"
        );
        assert_eq!(
            before_gtid(&d.3),
            before_gtid(&p.3),
            "{what}: proxied OK differs"
        );
        let d = direct.query("SHOW WARNINGS").await;
        let p = proxied.query("SHOW WARNINGS").await;
        assert_same(&format!("SHOW WARNINGS after {what}"), &d, &p);
    }
    let rows: i64 = root
        .query_first("SELECT COUNT(*) FROM wf_globex.diff_load")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows, 6, "three rows loaded by each side");
    // A client that did not offer local files at login is refused, as directly.
    let (mut direct, mut proxied, _, _, _proxy) = pair(modern_caps()).await;
    let d = direct.command(load, Expect::ResultSets).await;
    let p = proxied.command(load, Expect::ResultSets).await;
    assert_eq!(packets(&d)[0].1[0], 0xFF, "refused: {:?}", packets(&d));
    assert_same("LOAD DATA LOCAL without CLIENT_LOCAL_FILES", &d, &p);
}

/// CALL: a procedure's result sets (SERVER_MORE_RESULTS_EXISTS between them) and, executed
/// as a prepared statement, its OUT parameters' result set (SERVER_PS_OUT_PARAMS) pass
/// through as directly.
#[tokio::test]
async fn stored_procedure_results_are_byte_identical() {
    setup().await;
    let mut root = common::root().await;
    root.query_drop(
        "CREATE OR REPLACE PROCEDURE wf_globex.diff_two_sets(IN a INT, OUT b INT)
         BEGIN SELECT a AS first; SELECT a + 1 AS second, 'x' AS y; SET b = a * 10; END",
    )
    .await
    .unwrap();
    let (mut direct, mut proxied, _, _, _proxy) = pair(modern_caps()).await;
    for q in ["CALL diff_two_sets(5, @out)", "SELECT @out"] {
        let d = direct.query(q).await;
        assert_same(q, &d, &proxied.query(q).await);
    }
    let ((d, d_id), (p, p_id)) =
        prepare_both(&mut direct, &mut proxied, "CALL diff_two_sets(?, ?)").await;
    assert_same("prepare CALL", &d, &p);
    // Two INT parameters, the second NULL (an OUT parameter's placeholder).
    let call = |id: u32| {
        let mut p = vec![0x17];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&[0, 1, 0, 0, 0, 0b10, 1, 3, 0, 3, 0]);
        p.extend_from_slice(&7i32.to_le_bytes());
        p
    };
    let d = direct.command(&call(d_id), Expect::ResultSets).await;
    let p = proxied.command(&call(p_id), Expect::ResultSets).await;
    assert!(
        packets(&d).len() > 10,
        "three result sets and the OK: {:?}",
        packets(&d)
    );
    assert_same("execute CALL", &d, &p);
    let d = direct.query("SELECT 42").await;
    assert_same("the statement after", &d, &proxied.query("SELECT 42").await);
}

#[tokio::test]
async fn large_results_and_packets_stream_through() {
    setup().await;
    let (mut direct, mut proxied, _, _, _proxy) = pair(modern_caps()).await;
    // A 20 MB value crosses the 16 MB packet boundary in both directions.
    let q = "SELECT REPEAT('x', 20 * 1024 * 1024) AS big, 'tail'";
    let d = direct.query(q).await;
    let p = proxied.query(q).await;
    assert!(d.len() > 20 * 1024 * 1024);
    assert!(d == p, "20 MB answer differs");
    let long = format!("SELECT LENGTH('{}') AS n", "y".repeat(17 * 1024 * 1024));
    let d = direct.query(&long).await;
    let p = proxied.query(&long).await;
    assert_same("17 MB statement", &d, &p);
    let rows = "SELECT seq, REPEAT('r', 100) FROM seq_1_to_200000";
    let d = direct.query(rows).await;
    let p = proxied.query(rows).await;
    assert!(d == p, "200k-row answer differs");
}

/// COM_STMT_SEND_LONG_DATA for parameter 0 of statement `id`.
fn long_data(id: u32, chunk: &[u8]) -> Vec<u8> {
    common::raw::long_data(id, chunk)
}

#[tokio::test]
async fn long_data_and_statement_reset_are_byte_identical() {
    setup().await;
    let (mut direct, mut proxied, _, _, _proxy) = pair(modern_caps()).await;
    let ((d, d_id), (p, p_id)) = prepare_both(
        &mut direct,
        &mut proxied,
        "SELECT LENGTH(?) AS len, MD5(?) AS sum",
    )
    .await;
    assert_same("prepare", &d, &p);
    // Two parameters: both long data, sent in chunks; then execute with types.
    let exec = |id: u32| {
        let mut e = vec![0x17];
        e.extend_from_slice(&id.to_le_bytes());
        e.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 252, 0, 252, 0]);
        e
    };
    for (client, id) in [(&mut direct, d_id), (&mut proxied, p_id)] {
        for chunk in [
            &b"first chunk "[..],
            &[0u8, 255, 1, 2][..],
            &vec![b'z'; 100_000][..],
        ] {
            client.io.send(0, &long_data(id, chunk)).await.unwrap();
            let mut second = long_data(id, chunk);
            second[5] = 1;
            client.io.send(0, &second).await.unwrap();
        }
    }
    let d = direct.command(&exec(d_id), Expect::ResultSets).await;
    let p = proxied.command(&exec(p_id), Expect::ResultSets).await;
    assert_same("execute with long data", &d, &p);
    // Long data sent, then the statement reset: the data is discarded.
    for (client, id) in [(&mut direct, d_id), (&mut proxied, p_id)] {
        client
            .io
            .send(0, &long_data(id, b"to be discarded"))
            .await
            .unwrap();
    }
    let d = direct.command(&reset(d_id), Expect::Single).await;
    let p = proxied.command(&reset(p_id), Expect::Single).await;
    assert_same("reset", &d, &p);
    // Long data for a third parameter fails the statement until it is reset, wherever its
    // next executes run: after a SET, Switchyard prepares it afresh.
    for (client, id) in [(&mut direct, d_id), (&mut proxied, p_id)] {
        let mut past = long_data(id, b"no such parameter");
        past[5] = 2;
        client.io.send(0, &past).await.unwrap();
    }
    for step in [
        "execute after long data for no parameter",
        "SET",
        "the next execute",
    ] {
        let (d, p) = if step == "SET" {
            let set = "SET SESSION sql_mode = 'ANSI_QUOTES'";
            (direct.query(set).await, proxied.query(set).await)
        } else {
            let d = direct.command(&exec(d_id), Expect::ResultSets).await;
            (d, proxied.command(&exec(p_id), Expect::ResultSets).await)
        };
        assert_same(step, &d, &p);
        if step != "SET" {
            assert!(
                String::from_utf8_lossy(&d).contains("Incorrect arguments"),
                "{step}: the server refuses it"
            );
        }
    }
    let d = direct.command(&reset(d_id), Expect::Single).await;
    let p = proxied.command(&reset(p_id), Expect::Single).await;
    assert_same("the reset of the failed statement", &d, &p);
    for (client, id) in [(&mut direct, d_id), (&mut proxied, p_id)] {
        for param in [0, 1] {
            let mut chunk = long_data(id, b"again");
            chunk[5] = param;
            client.io.send(0, &chunk).await.unwrap();
        }
    }
    let d = direct.command(&exec(d_id), Expect::ResultSets).await;
    let p = proxied.command(&exec(p_id), Expect::ResultSets).await;
    assert_same("execute after the reset", &d, &p);
    assert_eq!(d[4], 2, "two columns: rows, not an ERR");
    // An execute that fails after taking its long data uses it up, also when what failed
    // is Switchyard's prepare afresh (after a SET, under LOCK TABLES without its table):
    // the next execute, with its values in the packet, finds no long data.
    let ((d, d_id), (p, p_id)) = prepare_both(
        &mut direct,
        &mut proxied,
        "SELECT LENGTH(?) AS len, MD5(?) AS sum FROM diff_types LIMIT 1",
    )
    .await;
    assert_same("prepare of one reading a table", &d, &p);
    for (client, id) in [(&mut direct, d_id), (&mut proxied, p_id)] {
        for param in [0, 1] {
            let mut chunk = long_data(id, b"used up");
            chunk[5] = param;
            client.io.send(0, &chunk).await.unwrap();
        }
    }
    for sql in [
        "LOCK TABLES diff_lock READ",
        "SET SESSION sql_mode = DEFAULT",
    ] {
        same_query(&mut direct, &mut proxied, sql).await;
    }
    let d = direct.command(&exec(d_id), Expect::ResultSets).await;
    let p = proxied.command(&exec(p_id), Expect::ResultSets).await;
    assert_same("execute with long data under LOCK TABLES", &d, &p);
    assert!(
        String::from_utf8_lossy(&d).contains("was not locked"),
        "refused past its arguments"
    );
    same_query(&mut direct, &mut proxied, "UNLOCK TABLES").await;
    let with_values = |id: u32| {
        let mut e = exec(id);
        e.extend_from_slice(b"\x02ab\x02cd");
        e
    };
    let d = direct.command(&with_values(d_id), Expect::ResultSets).await;
    let p = proxied
        .command(&with_values(p_id), Expect::ResultSets)
        .await;
    assert_same("the next execute, its values in the packet", &d, &p);
}

/// A statement over `max_allowed_packet` (64M on the cluster, and Switchyard's default
/// `max_packet`): the server answers ERR 1153 (08S01) with the next sequence id and closes;
/// so does Switchyard. Only the message's wording of the limit differs.
#[tokio::test]
async fn an_oversized_packet_is_refused_as_the_server_refuses_it() {
    let (mut direct, mut proxied, _, _, _proxy) = pair(common::raw::modern_caps()).await;
    let mut answers = Vec::new();
    for c in [&mut direct, &mut proxied] {
        // Four full 16M-1 packets (a statement continued), then the header of a fifth whose
        // 8 bytes take the total 4 bytes past 64M: the limit shows at that header.
        let mut chunk = vec![b' '; 0xFF_FFFF];
        chunk[..7].copy_from_slice(b"\x03SELECT");
        for seq in 0..4u8 {
            c.io.write_raw(&[0xFF, 0xFF, 0xFF, seq]).await.unwrap();
            c.io.write_raw(&chunk).await.unwrap();
            chunk[..7].fill(b' ');
        }
        c.io.write_raw(&[8, 0, 0, 4]).await.unwrap();
        let reply = tokio::time::timeout(common::SHORT, c.io.read_packet())
            .await
            .expect("an answer in time")
            .expect("an ERR before the close");
        let (code, message) = switchyard::protocol::packets::parse_err(&reply.payload).unwrap();
        let state = String::from_utf8_lossy(&reply.payload[4..9]).into_owned();
        assert!(
            message.starts_with("Got a packet bigger than 'max_allowed_packet' bytes"),
            "{message}"
        );
        answers.push((reply.seq, code, state));
        let closed = tokio::time::timeout(common::SHORT, c.io.read_packet()).await;
        assert!(
            matches!(closed, Ok(Err(_))),
            "the connection is closed after the ERR"
        );
    }
    assert_eq!(
        answers[0], answers[1],
        "direct vs proxied (seq, code, SQLSTATE)"
    );
    assert_eq!(answers[0].1, 1153);
}

/// A LOAD DATA LOCAL file packet over `max_allowed_packet`: ERR 1153 with the next sequence
/// id, then the close, as directly (the proxy closed without a word).
#[tokio::test]
async fn an_oversized_local_infile_packet_is_refused_as_the_server_refuses_it() {
    setup().await;
    let mut root = common::root().await;
    root.query_drop("CREATE TABLE IF NOT EXISTS wf_globex.diff_load_big (t LONGTEXT)")
        .await
        .unwrap();
    let caps = modern_caps() | CapabilityFlags::CLIENT_LOCAL_FILES;
    let (mut direct, mut proxied, _, _, _proxy) = pair(caps).await;
    let load = b"\x03LOAD DATA LOCAL INFILE 'big.csv' INTO TABLE diff_load_big";
    let mut answers = Vec::new();
    for (side, c) in [("direct", &mut direct), ("proxied", &mut proxied)] {
        c.io.send(0, load).await.unwrap();
        let request = c.io.read_packet().await.unwrap();
        assert_eq!(request.payload[0], 0xFB, "the server asks for the file");
        // Four full 16M-1 packets of one file packet, then a fifth of 8 bytes, 4 past 64M
        // (the server answers once it has read them), and the file's end.
        let chunk = vec![b'x'; 0xFF_FFFF];
        let mut seq = request.seq.wrapping_add(1);
        for _ in 0..4 {
            c.io.write_raw(&[0xFF, 0xFF, 0xFF, seq]).await.unwrap();
            c.io.write_raw(&chunk).await.unwrap();
            seq = seq.wrapping_add(1);
        }
        c.io.write_raw(&[8, 0, 0, seq]).await.unwrap();
        // Switchyard answers at the header and may have closed by now.
        let _ = c.io.write_raw(b"xxxxxxxx").await;
        let _ = c.io.write_raw(&[0, 0, 0, seq.wrapping_add(1)]).await;
        let reply = tokio::time::timeout(common::SHORT, c.io.read_packet())
            .await
            .unwrap_or_else(|_| panic!("{side}: an answer in time"))
            .expect("an ERR before the close");
        let (code, _) = switchyard::protocol::packets::parse_err(&reply.payload).unwrap();
        let state = String::from_utf8_lossy(&reply.payload[4..9]).into_owned();
        answers.push((reply.seq, code, state));
        let closed = tokio::time::timeout(common::SHORT, c.io.read_packet()).await;
        assert!(matches!(closed, Ok(Err(_))), "{side}: closed after the ERR");
    }
    assert_eq!(
        answers[0], answers[1],
        "direct vs proxied (seq, code, SQLSTATE)"
    );
    assert_eq!(answers[0].1, 1153);
}

/// Reads a server's greeting (and hangs up).
async fn greeting_of(port: u16) -> switchyard::protocol::handshake::ServerInfo {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut io = switchyard::protocol::PacketStream::new(stream, 1 << 16);
    let g = io.read_packet().await.unwrap();
    switchyard::protocol::handshake::parse_greeting(&g.payload)
        .unwrap()
        .0
}

#[tokio::test]
async fn greeting_offers_what_the_backend_offers() {
    use switchyard::protocol::MariadbCapabilities as M;
    let proxy = common::start(common::config("")).await;
    let direct = greeting_of(common::primary_port()).await;
    let proxied = greeting_of(proxy.addr.port()).await;
    // Withheld, as docs/routing.md says: TLS unless Switchyard's own is configured.
    let withheld = CapabilityFlags::CLIENT_SSL;
    assert!(direct
        .capabilities
        .contains(CapabilityFlags::CLIENT_COMPRESS));
    assert_eq!(
        proxied.capabilities,
        direct.capabilities - withheld,
        "capabilities offered"
    );
    assert_eq!(
        proxied.ext_capabilities, direct.ext_capabilities,
        "MariaDB extended capabilities offered"
    );
    assert!(proxied.ext_capabilities.contains(
        M::MARIADB_CLIENT_STMT_BULK_OPERATIONS
            | M::MARIADB_CLIENT_EXTENDED_METADATA
            | M::MARIADB_CLIENT_CACHE_METADATA
    ));
}

/// A replica whose greeting lacks the MariaDB extended capabilities (a 10.5 server beside a
/// 10.6 primary, a MySQL server): clients are not offered them, since their reads may run
/// there, and an answer without the metadata byte or extended type info a client asked
/// for broke its stream. Here a listener greets with the primary's greeting, its extended
/// capabilities zeroed, and hangs up.
#[tokio::test]
async fn greeting_offers_only_what_every_backend_offers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = listener.local_addr().unwrap().port();
    let real = {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", common::primary_port()))
            .await
            .unwrap();
        let mut io = switchyard::protocol::PacketStream::new(stream, 1 << 16);
        io.read_packet().await.unwrap().payload
    };
    // Protocol byte, version and its NUL, thread id (4), scramble (8), filler, capabilities
    // (2), collation, status (2), capabilities (2), scramble length, 6 reserved bytes: then
    // MariaDB's 4 bytes of extended capabilities.
    let at = real.iter().position(|&b| b == 0).unwrap() + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 6;
    let mut greeting = real.clone();
    greeting[at..at + 4].fill(0);
    let mut packet = (greeting.len() as u32).to_le_bytes()[..3].to_vec();
    packet.push(0);
    packet.extend_from_slice(&greeting);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(&packet).await;
        }
    });
    let r1 = common::replica_ports()[0];
    let text = common::config_text("").replacen(
        &format!("\"127.0.0.1:{r1}\", "),
        &format!("\"127.0.0.1:{r1}\", \"127.0.0.1:{fake}\", "),
        1,
    );
    assert!(text.contains(&format!(":{fake}")));
    let cfg = switchyard::config::parse(&text, &|_| None).unwrap();
    let proxy = common::start(cfg).await;
    let direct = greeting_of(common::primary_port()).await;
    assert!(!direct.ext_capabilities.is_empty());
    let proxied = greeting_of(proxy.addr.port()).await;
    assert_eq!(
        proxied.ext_capabilities,
        switchyard::protocol::MariadbCapabilities::empty()
    );
    assert_eq!(
        proxied.version, direct.version,
        "the first primary's version"
    );
}

/// Under compression the server numbers the packets inside its frames after the frames
/// (clients check only the frames' sequence), and Switchyard's frames are its own: the
/// packets must match byte for byte, their sequence ids need not.
fn assert_same_packets(what: &str, direct: &[u8], proxied: &[u8]) {
    let payloads = |raw| packets(raw).into_iter().map(|(_, p)| p).collect::<Vec<_>>();
    assert!(
        payloads(direct) == payloads(proxied),
        "{what}: packets differ"
    );
    assert!(!direct.is_empty());
}

#[tokio::test]
async fn compressed_answers_are_byte_identical() {
    setup().await;
    let caps = modern_caps() | CapabilityFlags::CLIENT_COMPRESS;
    let (mut direct, mut proxied, d_login, p_login, _proxy) = pair(caps).await;
    assert_same("login OK", &d_login, &p_login);
    let mut queries = QUERIES.to_vec();
    queries.push("SELECT REPEAT('z', 3 * 1024 * 1024) AS big, 'tail'");
    queries.push("SELECT seq, REPEAT('r', 50) FROM seq_1_to_20000");
    for q in queries {
        let d = direct.query(q).await;
        let p = proxied.query(q).await;
        assert_same_packets(q, &d, &p);
    }
    let ((d, d_id), (p, p_id)) = prepare_both(
        &mut direct,
        &mut proxied,
        "SELECT * FROM diff_types WHERE id > ? ORDER BY id",
    )
    .await;
    assert_same_packets("compressed prepare", &d, &p);
    let d = direct
        .command(&execute(d_id, 0, true), Expect::ResultSets)
        .await;
    let p = proxied
        .command(&execute(p_id, 0, true), Expect::ResultSets)
        .await;
    assert_same_packets("compressed execute", &d, &p);
}

/// COM_STMT_EXECUTE of a statement without parameters, asking for a read-only cursor.
fn execute_cursor(id: u32) -> Vec<u8> {
    let mut p = vec![0x17];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&[1, 1, 0, 0, 0]);
    p
}

fn fetch(id: u32, rows: u32) -> Vec<u8> {
    let mut p = vec![0x1C];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&rows.to_le_bytes());
    p
}

/// COM_STMT_RESET.
fn reset(id: u32) -> Vec<u8> {
    [&[0x1A][..], &id.to_le_bytes()].concat()
}

/// COM_STMT_BULK_EXECUTE of a statement with one INT parameter, one row per value.
fn bulk(id: u32, values: &[i32]) -> Vec<u8> {
    let mut p = vec![0xFA];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&128u16.to_le_bytes());
    p.extend_from_slice(&[3, 0]);
    for v in values {
        p.push(0);
        p.extend_from_slice(&v.to_le_bytes());
    }
    p
}

#[tokio::test]
async fn mariadb_extensions_are_byte_identical() {
    use switchyard::protocol::MariadbCapabilities as M;
    setup().await;
    let ext = M::MARIADB_CLIENT_PROGRESS
        | M::MARIADB_CLIENT_STMT_BULK_OPERATIONS
        | M::MARIADB_CLIENT_EXTENDED_METADATA;
    let without_deprecate = modern_caps() - CapabilityFlags::CLIENT_DEPRECATE_EOF;
    let cached = ext | M::MARIADB_CLIENT_CACHE_METADATA;
    for (caps, ext) in [
        (modern_caps(), ext),
        (without_deprecate, ext),
        (modern_caps(), cached),
        (without_deprecate, cached),
    ] {
        let proxy = common::start(common::config("")).await;
        let connect = |port| {
            RawClient::connect_ext(
                port,
                "globex_app",
                "globex_pw",
                Some("wf_globex"),
                (caps, ext),
            )
        };
        let (mut direct, d_login) = connect(common::primary_port()).await;
        let (mut proxied, p_login) = connect(proxy.addr.port()).await;
        assert_same("login OK", &d_login, &p_login);
        // Extended type info: the JSON column's definition carries format=json.
        let q = "SELECT id, j FROM diff_types ORDER BY id";
        let d = direct.query(q).await;
        assert!(d.windows(4).any(|w| w == b"json"), "{:?}", packets(&d));
        assert_same(q, &d, &proxied.query(q).await);
        // A cursor: definitions and CURSOR_EXISTS, no rows; then rows by fetches.
        let ((d, d_id), (p, p_id)) = prepare_both(
            &mut direct,
            &mut proxied,
            "SELECT id, j, t FROM diff_types ORDER BY id",
        )
        .await;
        assert_same("prepare", &d, &p);
        for round in 0..2 {
            let d = direct
                .command(&execute_cursor(d_id), Expect::ResultSets)
                .await;
            let p = proxied
                .command(&execute_cursor(p_id), Expect::ResultSets)
                .await;
            assert_same(&format!("cursor execute {round}"), &d, &p);
            for rows in [1, 5] {
                let d = direct.command(&fetch(d_id, rows), Expect::Fetch).await;
                let p = proxied.command(&fetch(p_id, rows), Expect::Fetch).await;
                assert_same(&format!("fetch {rows} in round {round}"), &d, &p);
            }
            // Past its last row the cursor is closed: the server's error, naming each side's
            // own statement id.
            let d = direct.command(&fetch(d_id, 1), Expect::Fetch).await;
            let p = proxied.command(&fetch(p_id, 1), Expect::Fetch).await;
            let named = |raw: &[u8], id: u32| {
                String::from_utf8_lossy(&packets(raw)[0].1).replace(&format!("({id})"), "(N)")
            };
            assert!(named(&d, d_id).contains("has no open cursor"));
            assert_eq!(named(&d, d_id), named(&p, p_id), "fetch past the end");
        }
        // Array binding: one command, every row counted.
        let ((_, d_id), (_, p_id)) = prepare_both(
            &mut direct,
            &mut proxied,
            "UPDATE diff_types SET n = n WHERE id = ?",
        )
        .await;
        let d = direct
            .command(&bulk(d_id, &[1, 2, 3]), Expect::ResultSets)
            .await;
        let p = proxied
            .command(&bulk(p_id, &[1, 2, 3]), Expect::ResultSets)
            .await;
        assert_eq!(packets(&d)[0].1[0], 0, "bulk OK: {:?}", packets(&d));
        assert_same("bulk execute", &d, &p);
        // Unknown ids: one routine of the server runs both execute commands and names them
        // `mysqld_stmt_execute`; once the last prepared statement is closed, a direct
        // execution (id 0xFFFFFFFF) has none to run.
        let unknown = bulk(999_999, &[1]);
        let d = direct.command(&unknown, Expect::ResultSets).await;
        let p = proxied.command(&unknown, Expect::ResultSets).await;
        assert_same("bulk execute of an unknown id", &d, &p);
        direct.send(&close(d_id)).await;
        proxied.send(&close(p_id)).await;
        let last = bulk(u32::MAX, &[1]);
        let d = direct.command(&last, Expect::ResultSets).await;
        let p = proxied.command(&last, Expect::ResultSets).await;
        assert_same("direct execution after the last statement closed", &d, &p);
    }
}

/// COM_STMT_CLOSE.
fn close(id: u32) -> Vec<u8> {
    [&[0x19][..], &id.to_le_bytes()].concat()
}

/// With the metadata cache, a replica whose table differs from the primary's (DDL not yet
/// there) must not answer an execute with its rows under the client's cached definitions,
/// which are the primary's: the answer is the primary's, as directly.
#[tokio::test]
async fn cached_metadata_never_mixes_servers_definitions() {
    use switchyard::protocol::MariadbCapabilities as M;
    let mut root = common::root().await;
    for s in [
        "DROP TABLE IF EXISTS wf_acme.meta_drift",
        "CREATE TABLE wf_acme.meta_drift (id INT PRIMARY KEY, v INT)",
        "INSERT INTO wf_acme.meta_drift VALUES (1, 7)",
    ] {
        root.query_drop(s).await.unwrap();
    }
    common::wait_replicated().await;
    // On the primary only: the replicas keep v INT.
    root.query_drop("SET SESSION sql_log_bin = 0")
        .await
        .unwrap();
    root.query_drop("ALTER TABLE wf_acme.meta_drift MODIFY v BIGINT")
        .await
        .unwrap();
    root.query_drop("SET SESSION sql_log_bin = 1")
        .await
        .unwrap();

    let proxy = common::start(common::config("consistency = \"eventual\"")).await;
    let ext = M::MARIADB_CLIENT_CACHE_METADATA | M::MARIADB_CLIENT_EXTENDED_METADATA;
    let connect = |port| {
        RawClient::connect_ext(
            port,
            "acme_app",
            "acme_pw",
            Some("wf_acme"),
            (modern_caps(), ext),
        )
    };
    let (mut direct, _) = connect(common::primary_port()).await;
    let (mut proxied, _) = connect(proxy.addr.port()).await;
    let ((d, d_id), (p, p_id)) = prepare_both(
        &mut direct,
        &mut proxied,
        "SELECT id, v FROM meta_drift WHERE id = ?",
    )
    .await;
    assert_same("prepare (on the primary)", &d, &p);
    for round in 0..3 {
        let d = direct
            .command(&execute(d_id, 1, true), Expect::ResultSets)
            .await;
        let p = proxied
            .command(&execute(p_id, 1, true), Expect::ResultSets)
            .await;
        assert_eq!(
            packets(&d)[0].1,
            vec![2, 0],
            "definitions left out directly"
        );
        assert_same(&format!("execute {round}"), &d, &p);
    }
    root.query_drop("DROP TABLE wf_acme.meta_drift")
        .await
        .unwrap();
}

/// One side of `change_user_is_answered_as_by_the_server`: each step's answer, packet by
/// packet, and the refusals' delays. `lock` differs per side (both run at once on the
/// primary); it is never part of an answer.
async fn change_user_story(
    port: u16,
    lock: &str,
) -> (Vec<(String, Vec<(u8, Vec<u8>)>)>, Vec<u128>) {
    // latin1: the session's character set must visibly fall back to the server's.
    let (mut c, _) = RawClient::connect_in(
        port,
        "globex_app",
        "globex_pw",
        Some("wf_globex"),
        modern_caps(),
        8,
    )
    .await;
    let mut steps = Vec::new();
    let mut delays = Vec::new();
    for sql in [
        "SET @v = 7".to_string(),
        "CREATE TEMPORARY TABLE cu_tmp (x INT)".into(),
        format!("SELECT GET_LOCK('{lock}', 0) AS got"),
    ] {
        steps.push((sql.clone(), packets(&c.query(&sql).await)));
    }
    let state = format!(
        "SELECT @v, @@character_set_client, @@collation_connection, @@character_set_results, \
         DATABASE(), CURRENT_USER(), IS_USED_LOCK('{lock}') IS NULL AS freed"
    );
    let refused = [
        ("globex_app", "wrong", "wf_globex"),
        ("nobody_here", "x", ""),
        ("globex_app", "globex_pw", "wf_acme"),
        // The fourth is refused unread, even with the right password.
        ("globex_app", "globex_pw", "wf_globex"),
    ];
    for (i, who) in refused.into_iter().enumerate() {
        let (answer, took) = c.change_user(who, 45).await;
        steps.push((format!("refused change {i} to {who:?}"), answer));
        delays.push(took.as_millis());
        for sql in [state.as_str(), "SELECT * FROM cu_tmp"] {
            steps.push((
                format!("after change {i}: {sql}"),
                packets(&c.query(sql).await),
            ));
        }
    }
    // On another connection: a packet too short for the server to read (the user name's
    // NUL its last byte), refused as one more failure; then a change that succeeds.
    let (mut c, _) = RawClient::connect(port, "globex_app", "globex_pw", None, modern_caps()).await;
    c.query("SET @v = 7").await;
    let started = std::time::Instant::now();
    c.io.send(0, b"\x11globex_app\0").await.unwrap();
    let answer = c.io.read_packet().await.unwrap();
    steps.push((
        "malformed change".into(),
        vec![(answer.seq, answer.payload)],
    ));
    delays.push(started.elapsed().as_millis());
    let (answer, _) = c.change_user(("acme_app", "acme_pw", "wf_acme"), 8).await;
    steps.push(("change to acme_app".into(), answer));
    steps.push((state.clone(), packets(&c.query(&state).await)));
    (steps, delays)
}

/// COM_CHANGE_USER answered as MariaDB answers it: an auth switch over a fresh nonce, then
/// OK, or ERR a second later; a refused change resets the session but keeps the user and
/// schema, in the server's default character set; a packet the server cannot read is a
/// refusal too ("Unknown command"); after three refusals every change is that.
#[tokio::test]
async fn change_user_is_answered_as_by_the_server() {
    let proxy = common::start(common::config("")).await;
    let ((direct, d_delays), (proxied, p_delays)) = tokio::join!(
        change_user_story(common::primary_port(), "cu_lock_direct"),
        change_user_story(proxy.addr.port(), "cu_lock_proxied"),
    );
    assert_eq!(direct.len(), proxied.len());
    for ((step, d), (_, p)) in direct.iter().zip(&proxied) {
        assert_eq!(d, p, "{step}: proxied answer differs");
    }
    // The first refusal's answer was an auth switch and then ERR 1045.
    let first = &direct[3].1;
    assert_eq!((first[0].1[0], first[1].1[0]), (0xFE, 0xFF), "{first:?}");
    for ms in d_delays.iter().chain(&p_delays) {
        assert!(
            *ms >= 900,
            "a refusal answered after {ms} ms: {d_delays:?} {p_delays:?}"
        );
    }
}

/// The OKs Switchyard answers itself (here COM_STMT_RESET of a statement no connection of
/// the session holds) carry the session's sql_mode flags as the server's do: libmariadb
/// escapes strings for NO_BACKSLASH_ESCAPES by the last status it read, so an OK without
/// the flag would have it escape quotes with backslashes the server then reads literally.
#[tokio::test]
async fn own_answers_carry_the_sessions_sql_mode_flags() {
    setup().await;
    let (mut direct, mut proxied, _, _, _proxy) = pair(modern_caps()).await;
    for (set, no_backslash_escapes) in [
        (
            "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES'",
            true,
        ),
        ("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'", true),
        ("SET SESSION sql_mode = DEFAULT", false),
    ] {
        same_query(&mut direct, &mut proxied, set).await;
        let ((d, d_id), (p, p_id)) = prepare_both(&mut direct, &mut proxied, "SELECT ?").await;
        assert_same("prepare", &d, &p);
        let d = direct.command(&reset(d_id), Expect::Single).await;
        let p = proxied.command(&reset(p_id), Expect::Single).await;
        assert_same(&format!("reset after {set}"), &d, &p);
        // The flag is in the direct answer (so the comparison means something).
        let status = u16::from_le_bytes([d[7], d[8]]);
        assert_eq!(status & 0x0200 != 0, no_backslash_escapes, "{status:#x}");
    }
    // With autocommit off the server flags a transaction once a statement touched a table,
    // not before: so does the OK.
    let ((_, d_id), (_, p_id)) = prepare_both(&mut direct, &mut proxied, "SELECT ?").await;
    for sql in [
        "SET autocommit = 0",
        "SELECT COUNT(*) FROM diff_types",
        "COMMIT",
        "SET autocommit = 1",
    ] {
        same_query(&mut direct, &mut proxied, sql).await;
        let d = direct.command(&reset(d_id), Expect::Single).await;
        let p = proxied.command(&reset(p_id), Expect::Single).await;
        assert_same(&format!("reset after {sql}"), &d, &p);
    }
    // COM_CHANGE_USER starts a session in the global sql_mode: its OK carries that's flags,
    // not the ones the old session's last answer had.
    let set = "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'";
    same_query(&mut direct, &mut proxied, set).await;
    let login = ("globex_app", "globex_pw", "wf_globex");
    let (d, _) = direct.change_user(login, 45).await;
    let (p, _) = proxied.change_user(login, 45).await;
    assert_eq!(d, p, "COM_CHANGE_USER after {set}");
}

/// A statement that commits implicitly before it fails (FLUSH TABLES without the RELOAD
/// privilege) ends the transaction it ran in, though its ERR carries no status: the OK
/// Switchyard answers next says so, as the server's does, and SHOW WARNINGS still finds
/// the error (Switchyard asks the status with COM_PING, which keeps it).
#[tokio::test]
async fn a_failed_statement_that_committed_ends_the_transaction_in_own_answers() {
    setup().await;
    let (mut direct, mut proxied, _, _, _proxy) = pair(modern_caps()).await;
    let ((_, d_id), (_, p_id)) = prepare_both(&mut direct, &mut proxied, "SELECT ?").await;
    for (begin, end) in [
        ("BEGIN", "COMMIT"),
        ("SET autocommit = 0", "SET autocommit = 1"),
    ] {
        for sql in [begin, "SELECT COUNT(*) FROM diff_types", "FLUSH TABLES"] {
            same_query(&mut direct, &mut proxied, sql).await;
        }
        let d = direct.command(&reset(d_id), Expect::Single).await;
        let p = proxied.command(&reset(p_id), Expect::Single).await;
        assert_same(&format!("reset after {begin} and FLUSH TABLES"), &d, &p);
        // The server ended the transaction (so the comparison means something).
        let status = u16::from_le_bytes([d[7], d[8]]);
        assert_eq!(status & 0x0001, 0, "{begin}: {status:#x}");
        for sql in ["SHOW WARNINGS", end] {
            same_query(&mut direct, &mut proxied, sql).await;
        }
    }
}

/// A cursor opened by a read on a replica, then a SET the session runs elsewhere (the
/// primary): the fetch's answer carries the session's flags, as directly, not those of the
/// cursor's connection, which missed the SET (NO_BACKSLASH_ESCAPES, which a driver escapes
/// strings by, and autocommit). Switchyard also took the stale flags as the session's and
/// classified its next statements with backslash escapes the server no longer used.
#[tokio::test]
async fn a_fetch_from_a_replica_cursor_carries_the_sessions_flags() {
    let caps = modern_caps();
    let proxy = common::start(common::config("")).await;
    let (mut direct, _) = RawClient::connect(
        common::primary_port(),
        "acme_app",
        "acme_pw",
        Some("wf_acme"),
        caps,
    )
    .await;
    let (mut proxied, _) = RawClient::connect(
        proxy.addr.port(),
        "acme_app",
        "acme_pw",
        Some("wf_acme"),
        caps,
    )
    .await;
    let ((d, d_id), (p, p_id)) = prepare_both(
        &mut direct,
        &mut proxied,
        "SELECT seq, @@port FROM seq_1_to_10",
    )
    .await;
    assert_same("prepare", &d, &p);
    for set in [
        "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'",
        "SET autocommit = 0",
    ] {
        direct
            .command(&execute_cursor(d_id), Expect::ResultSets)
            .await;
        proxied
            .command(&execute_cursor(p_id), Expect::ResultSets)
            .await;
        same_query(&mut direct, &mut proxied, set).await;
        let d = direct.command(&fetch(d_id, 20), Expect::Fetch).await;
        let p = proxied.command(&fetch(p_id, 20), Expect::Fetch).await;
        let (d, p) = (packets(&d), packets(&p));
        // The rows name each side's server (@@port); the terminator is what is compared.
        assert_eq!(d.last(), p.last(), "the fetch's end after {set}");
        assert_eq!(d.len(), p.len(), "rows after {set}");
    }
}

/// `SELECT id FROM diff_types ORDER BY id` prepared alike on both sides: the clients, the
/// proxy (kept for as long as the clients are used) and each side's statement id.
async fn ids_in_order() -> (RawClient, RawClient, common::Proxy, u32, u32) {
    setup().await;
    let (mut direct, mut proxied, _, _, proxy) = pair(modern_caps()).await;
    let ((d, d_id), (p, p_id)) = prepare_both(
        &mut direct,
        &mut proxied,
        "SELECT id FROM diff_types ORDER BY id",
    )
    .await;
    assert_same("prepare", &d, &p);
    (direct, proxied, proxy, d_id, p_id)
}

/// A cursor outlives a SET between its execute and its fetches, as on the server: the SET
/// changes which statement the connection's cache names for the text, and the fetch went
/// looking there ("no open cursor"). An execute after the SET opens a new cursor, the old
/// one closed.
#[tokio::test]
async fn a_cursor_outlives_a_set_before_its_fetch() {
    let (mut direct, mut proxied, _proxy, d_id, p_id) = ids_in_order().await;
    let both = |d: Vec<u8>, p: Vec<u8>, what: &str| assert_same(what, &d, &p);
    for round in 0..2 {
        both(
            direct
                .command(&execute_cursor(d_id), Expect::ResultSets)
                .await,
            proxied
                .command(&execute_cursor(p_id), Expect::ResultSets)
                .await,
            &format!("execute with a cursor, round {round}"),
        );
        let set = [
            "SET SESSION sql_mode = 'ANSI_QUOTES'",
            "SET SESSION sql_mode = DEFAULT",
        ][round];
        same_query(&mut direct, &mut proxied, set).await;
        both(
            direct.command(&fetch(d_id, 1), Expect::Fetch).await,
            proxied.command(&fetch(p_id, 1), Expect::Fetch).await,
            &format!("fetch after {set}"),
        );
    }
    both(
        direct.command(&fetch(d_id, 5), Expect::Fetch).await,
        proxied.command(&fetch(p_id, 5), Expect::Fetch).await,
        "fetch to the end",
    );
    // A COM_STMT_RESET after a SET closes the cursor too (it reset the statement the
    // connection's cache named after the SET, and the fetch still found the cursor).
    direct
        .command(&execute_cursor(d_id), Expect::ResultSets)
        .await;
    proxied
        .command(&execute_cursor(p_id), Expect::ResultSets)
        .await;
    let set = "SET character_set_results = NULL";
    same_query(&mut direct, &mut proxied, set).await;
    both(
        direct.command(&reset(d_id), Expect::Single).await,
        proxied.command(&reset(p_id), Expect::Single).await,
        "reset after the SET",
    );
    // The error names each side's own statement id.
    let text = |raw: &[u8], id: u32| {
        String::from_utf8_lossy(&packets(raw)[0].1).replace(&format!("({id})"), "(N)")
    };
    let d = direct.command(&fetch(d_id, 1), Expect::Fetch).await;
    let p = proxied.command(&fetch(p_id, 1), Expect::Fetch).await;
    assert_eq!(text(&d, d_id), text(&p, p_id), "fetch after the reset");
    assert!(text(&d, d_id).ends_with("The statement (N) has no open cursor"));
    // An execute the server refuses for its arguments (here, a parameter's value cut short)
    // leaves the cursor open: the server reads them before it closes the cursor.
    let ((d, d_id), (p, p_id)) = prepare_both(
        &mut direct,
        &mut proxied,
        "SELECT id FROM diff_types WHERE id > ? ORDER BY id",
    )
    .await;
    assert_same("prepare with a parameter", &d, &p);
    let with_cursor = |id: u32| {
        let mut e = execute(id, 0, true);
        e[5] = 1;
        e
    };
    let cut_short = |id: u32| {
        let e = execute(id, 0, true);
        e[..e.len() - 2].to_vec()
    };
    // Refused by the statement that holds the cursor, then (after a SET) by another server
    // statement of the same text on that connection.
    for set in [None, Some("SET SESSION sql_mode = 'ANSI_QUOTES'")] {
        let d = direct.command(&with_cursor(d_id), Expect::ResultSets).await;
        let p = proxied
            .command(&with_cursor(p_id), Expect::ResultSets)
            .await;
        assert_same("execute with a cursor", &d, &p);
        if let Some(set) = set {
            same_query(&mut direct, &mut proxied, set).await;
        }
        let d = direct.command(&cut_short(d_id), Expect::ResultSets).await;
        let p = proxied.command(&cut_short(p_id), Expect::ResultSets).await;
        assert_same("an execute cut short", &d, &p);
        assert_eq!(d[4], 0xFF, "refused");
        let d = direct.command(&fetch(d_id, 1), Expect::Fetch).await;
        let p = proxied.command(&fetch(p_id, 1), Expect::Fetch).await;
        assert_same(
            &format!("fetch after the refused execute ({set:?})"),
            &d,
            &p,
        );
        assert_ne!(d[4], 0xFF, "a row");
    }
    // An execute that fails past its arguments (LOCK TABLES holds another table) closes the
    // cursor, also when Switchyard's prepare of it afresh (after a SET) is what failed.
    let d = direct.command(&with_cursor(d_id), Expect::ResultSets).await;
    let p = proxied
        .command(&with_cursor(p_id), Expect::ResultSets)
        .await;
    assert_same("execute with a cursor before LOCK TABLES", &d, &p);
    for sql in [
        "LOCK TABLES diff_lock READ",
        "SET SESSION sql_mode = DEFAULT",
    ] {
        same_query(&mut direct, &mut proxied, sql).await;
    }
    let d = direct
        .command(&execute(d_id, 0, true), Expect::ResultSets)
        .await;
    let p = proxied
        .command(&execute(p_id, 0, true), Expect::ResultSets)
        .await;
    assert_same("an execute under LOCK TABLES", &d, &p);
    assert_eq!(d[4], 0xFF, "refused: its table is not locked");
    let d = direct.command(&fetch(d_id, 1), Expect::Fetch).await;
    let p = proxied.command(&fetch(p_id, 1), Expect::Fetch).await;
    assert_eq!(
        text(&d, d_id),
        text(&p, p_id),
        "fetch after the failed execute"
    );
    assert!(text(&d, d_id).ends_with("has no open cursor"));
    same_query(&mut direct, &mut proxied, "UNLOCK TABLES").await;
}

/// USE and COM_INIT_DB inside a read-only transaction, which lives on a replica: their OK
/// says the transaction goes on, as the server's does (they ran on the primary, outside it,
/// and the OK said no transaction).
#[tokio::test]
async fn a_schema_change_in_a_read_only_transaction_answers_from_it() {
    setup().await;
    let (mut direct, mut proxied, _proxy) = acme_pair("").await;
    for (what, payload, expect) in [
        (
            "begin",
            &b"\x03START TRANSACTION READ ONLY"[..],
            Expect::ResultSets,
        ),
        ("USE", &b"\x03USE wf_acme"[..], Expect::ResultSets),
        ("COM_INIT_DB", &b"\x02wf_acme"[..], Expect::Single),
        ("commit", &b"\x03COMMIT"[..], Expect::ResultSets),
        ("USE after it", &b"\x03USE wf_acme"[..], Expect::ResultSets),
    ] {
        let d = direct.command(payload, expect).await;
        let p = proxied.command(payload, expect).await;
        assert_same(what, &d, &p);
    }
}

/// Tenant `acme` (it has replicas, `tenant_keys` added to it) directly on the primary and
/// through Switchyard.
async fn acme_pair(tenant_keys: &str) -> (RawClient, RawClient, common::Proxy) {
    let proxy = common::start(common::config(tenant_keys)).await;
    let caps = modern_caps();
    let login = |port| RawClient::connect(port, "acme_app", "acme_pw", Some("wf_acme"), caps);
    let direct = login(common::primary_port()).await.0;
    let proxied = login(proxy.addr.port()).await.0;
    (direct, proxied, proxy)
}

/// A cursor opened by an autocommit read lives on a replica; after BEGIN (the transaction
/// on the primary) its fetch and reset answer with the session's status, in a transaction,
/// as the server's do (they said the replica connection's: no transaction).
#[tokio::test]
async fn a_cursors_answers_carry_the_sessions_transaction() {
    let mut root = common::root().await;
    for sql in [
        "CREATE TABLE IF NOT EXISTS wf_acme.diff_cursor (id INT PRIMARY KEY)",
        "INSERT IGNORE INTO wf_acme.diff_cursor VALUES (1), (2), (3)",
    ] {
        root.query_drop(sql).await.unwrap();
    }
    common::wait_replicated().await;
    // Reads on replicas whatever other sessions of the user wrote.
    let (mut direct, mut proxied, _proxy) = acme_pair(r#"consistency = "eventual""#).await;
    let ((d, d_id), (p, p_id)) = prepare_both(
        &mut direct,
        &mut proxied,
        "SELECT id FROM diff_cursor ORDER BY id",
    )
    .await;
    assert_same("prepare", &d, &p);
    let d = direct
        .command(&execute_cursor(d_id), Expect::ResultSets)
        .await;
    let p = proxied
        .command(&execute_cursor(p_id), Expect::ResultSets)
        .await;
    assert_same("execute with a cursor", &d, &p);
    // Reads stay on the cursor's connection while it is open: this one says which.
    let id = proxied.query("SELECT @@port").await;
    let deprecate_eof = modern_caps().contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    let id = switchyard::protocol::packets::first_text_value(&id, deprecate_eof).flatten();
    let on = id.as_deref().map(String::from_utf8_lossy);
    let primary = common::primary_port().to_string();
    assert!(
        on.is_some_and(|port| port != primary),
        "the cursor on a replica"
    );
    same_query(&mut direct, &mut proxied, "BEGIN").await;
    let d = direct.command(&fetch(d_id, 1), Expect::Fetch).await;
    let p = proxied.command(&fetch(p_id, 1), Expect::Fetch).await;
    assert_same("fetch in the transaction", &d, &p);
    let d = direct.command(&reset(d_id), Expect::Single).await;
    let p = proxied.command(&reset(p_id), Expect::Single).await;
    assert_same("reset in the transaction", &d, &p);
    same_query(&mut direct, &mut proxied, "COMMIT").await;
}

/// Before a multi-tenant user has chosen a schema, COM_SET_OPTION with an option the server
/// does not know gets the server's ERR 1047. Switchyard answered it itself with an OK and
/// kept the option, which every connection the session leased then refused.
#[tokio::test]
async fn an_unknown_set_option_before_a_schema_gets_the_servers_answer() {
    let proxy = common::start(common::config("")).await;
    let login = |port| RawClient::connect(port, "ops", "ops_pw", None, modern_caps());
    let (mut direct, _) = login(common::primary_port()).await;
    let (mut proxied, _) = login(proxy.addr.port()).await;
    let d = direct.command(&[0x1B, 2, 0], Expect::Single).await;
    let p = proxied.command(&[0x1B, 2, 0], Expect::Single).await;
    assert_same("COM_SET_OPTION 2", &d, &p);
    let q = "SELECT COUNT(*) > 0 FROM wf_acme.diff_types";
    assert_same(q, &direct.query(q).await, &proxied.query(q).await);
}

/// A login naming `information_schema` (GUI tools and some drivers' metadata connections
/// do) is served by the user's tenant, as the server accepts it for every user: Switchyard
/// refused it with ERR 1044.
#[tokio::test]
async fn a_login_to_information_schema_is_accepted_as_directly() {
    let proxy = common::start(common::config("")).await;
    let login = |port| {
        RawClient::connect(
            port,
            "globex_app",
            "globex_pw",
            Some("information_schema"),
            modern_caps(),
        )
    };
    let (mut direct, d_login) = login(common::primary_port()).await;
    let (mut proxied, p_login) = login(proxy.addr.port()).await;
    assert_same("login OK", &d_login, &p_login);
    let q = "SELECT DATABASE(), COUNT(*) > 0 FROM TABLES WHERE TABLE_SCHEMA = 'wf_globex'";
    assert_same(q, &direct.query(q).await, &proxied.query(q).await);
}

/// COM_STATISTICS as a multi-tenant user's first command, before a schema is chosen
/// (`mysqladmin status`): the server's statistics line, from a server the user may reach,
/// as a read of variables gets its answer then. Switchyard answered ERR 1046.
#[tokio::test]
async fn statistics_before_a_schema_is_the_servers_line() {
    let proxy = common::start(common::config("")).await;
    let login = |port| RawClient::connect(port, "ops", "ops_pw", None, modern_caps());
    let (mut direct, _) = login(common::primary_port()).await;
    let (mut proxied, _) = login(proxy.addr.port()).await;
    for (who, c) in [("direct", &mut direct), ("proxied", &mut proxied)] {
        let answer = c.command(&[0x09], Expect::Single).await;
        let line = String::from_utf8_lossy(&packets(&answer)[0].1).into_owned();
        assert!(line.starts_with("Uptime: "), "{who}: {line}");
    }
}

/// A cursor survives the statements its session prepares after it on the cursor's
/// connection: past the connection's share of statements (256 at most) the least recently
/// used is closed to make room, and that was the cursor's own, whose next fetch failed
/// ("Unknown prepared statement handler") where the server answers it.
#[tokio::test]
async fn a_cursor_survives_the_statements_prepared_after_it() {
    let (mut direct, mut proxied, _proxy, d_id, p_id) = ids_in_order().await;
    assert_same(
        "execute with a cursor",
        &direct
            .command(&execute_cursor(d_id), Expect::ResultSets)
            .await,
        &proxied
            .command(&execute_cursor(p_id), Expect::ResultSets)
            .await,
    );
    for i in 0..300 {
        let sql = format!("SELECT id + {i} FROM diff_types WHERE id = ?");
        let ((_, d_other), (_, p_other)) = prepare_both(&mut direct, &mut proxied, &sql).await;
        // Closed by the client: Switchyard keeps its server statement cached.
        let close = |id: u32| [&[0x19][..], &id.to_le_bytes()].concat();
        direct.send(&close(d_other)).await;
        proxied.send(&close(p_other)).await;
    }
    assert_same(
        "fetch after 300 other statements",
        &direct.command(&fetch(d_id, 1), Expect::Fetch).await,
        &proxied.command(&fetch(p_id, 1), Expect::Fetch).await,
    );
}
