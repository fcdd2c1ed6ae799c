//! Session state follows the session across its backends: SET variables and the schema are
//! replayed, prepared statements run wherever routing sends them, and the session commands
//! (COM_RESET_CONNECTION, COM_CHANGE_USER, COM_PING) keep their meaning.

mod common;

use common::{connect, is_replica, primary_port, served_by};
use mysql_async::prelude::*;
use mysql_async::{ChangeUserOpts, Conn};

async fn proxy_conn() -> (common::Proxy, Conn) {
    let proxy = common::start(common::config(r#"consistency = "eventual""#)).await;
    let c = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    (proxy, c)
}

/// Runs `sql` once on a replica and once on the primary (in a transaction).
async fn on_both(c: &mut Conn, sql: &str) -> (String, String) {
    let r: (u16, String) = c
        .query_first(format!("SELECT @@port, {sql}"))
        .await
        .unwrap()
        .unwrap();
    assert!(is_replica(r.0));
    c.query_drop("BEGIN").await.unwrap();
    let p: (u16, String) = c
        .query_first(format!("SELECT @@port, {sql}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.0, primary_port());
    c.query_drop("COMMIT").await.unwrap();
    (r.1, p.1)
}

#[tokio::test]
async fn set_variables_follow_the_session() {
    let (_p, mut c) = proxy_conn().await;
    // Touch a replica first so its connection exists before the SETs (replay, not login).
    assert!(is_replica(served_by(&mut c).await));
    c.query_drop("SET time_zone = '+05:30'").await.unwrap();
    c.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    c.query_drop("SET NAMES latin1").await.unwrap();
    for _ in 0..4 {
        assert_eq!(
            on_both(&mut c, "@@time_zone").await,
            ("+05:30".into(), "+05:30".into())
        );
        assert_eq!(
            on_both(&mut c, "@@sql_mode").await,
            ("ANSI_QUOTES".into(), "ANSI_QUOTES".into())
        );
        assert_eq!(
            on_both(&mut c, "@@character_set_client").await,
            ("latin1".into(), "latin1".into())
        );
    }
    c.query_drop("SET time_zone = '-02:00'").await.unwrap();
    assert_eq!(
        on_both(&mut c, "@@time_zone").await,
        ("-02:00".into(), "-02:00".into())
    );
    // A SET the server rejects is not replayed anywhere.
    assert!(c.query_drop("SET no_such_variable = 1").await.is_err());
    assert_eq!(
        on_both(&mut c, "@@time_zone").await,
        ("-02:00".into(), "-02:00".into())
    );
}

#[tokio::test]
async fn schema_follows_the_session() {
    let (_p, mut c) = proxy_conn().await;
    assert_eq!(
        on_both(&mut c, "DATABASE()").await,
        ("wf_acme".into(), "wf_acme".into())
    );
    c.query_drop("USE rb_acme").await.unwrap();
    assert_eq!(
        on_both(&mut c, "DATABASE()").await,
        ("rb_acme".into(), "rb_acme".into())
    );
    // COM_INIT_DB
    c.query_drop("USE wf_acme").await.unwrap();
    let mut opts = ChangeUserOpts::default();
    opts = opts.with_db_name(Some("rb_acme".into()));
    let _ = opts; // COM_CHANGE_USER is tested below; here the text form is enough.
    assert_eq!(
        on_both(&mut c, "DATABASE()").await,
        ("wf_acme".into(), "wf_acme".into())
    );
    assert!(c.query_drop("USE no_such_schema_of_acme").await.is_err());
    assert_eq!(
        on_both(&mut c, "DATABASE()").await,
        ("wf_acme".into(), "wf_acme".into())
    );
}

#[tokio::test]
async fn prepared_statements_run_wherever_the_session_goes() {
    let mut root = common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.ps_items (id INT PRIMARY KEY, name VARCHAR(20))",
    )
    .await
    .unwrap();
    root.query_drop(
        "INSERT IGNORE INTO wf_acme.ps_items VALUES (1, 'one'), (2, 'two'), (3, 'three')",
    )
    .await
    .unwrap();
    common::wait_replicated().await;
    let (_p, mut c) = proxy_conn().await;
    let stmt = c
        .prep("SELECT @@port, name FROM ps_items WHERE id = ?")
        .await
        .unwrap();
    for round in 0..3 {
        let (port, name): (u16, String) = c.exec_first(&stmt, (2,)).await.unwrap().unwrap();
        assert!(
            is_replica(port),
            "round {round}: prepared read on a replica"
        );
        assert_eq!(name, "two");
        c.query_drop("BEGIN").await.unwrap();
        let (port, name): (u16, String) = c.exec_first(&stmt, (3,)).await.unwrap().unwrap();
        assert_eq!(
            port,
            primary_port(),
            "round {round}: same statement inside a transaction"
        );
        assert_eq!(name, "three");
        c.query_drop("COMMIT").await.unwrap();
    }
    let ins = c
        .prep("INSERT INTO ps_items VALUES (?, ?) ON DUPLICATE KEY UPDATE name = VALUES(name)")
        .await
        .unwrap();
    c.exec_drop(&ins, (10, "ten")).await.unwrap();
    c.close(stmt).await.unwrap();
    c.close(ins).await.unwrap();
    let n: String = root
        .query_first("SELECT name FROM wf_acme.ps_items WHERE id = 10")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, "ten");
    // A closed statement is gone.
    let err = c.query_drop("SELECT 1").await;
    assert!(err.is_ok());
}

/// The server runs a prepared statement in the schema it was prepared in, whatever USE
/// came between: so does Switchyard where it prepares the statement afresh (a replica, a
/// connection in the session's new schema), not in the session's current schema, where the
/// same name is another table.
#[tokio::test]
async fn a_prepared_statement_runs_in_the_schema_it_was_prepared_in() {
    let mut root = common::root().await;
    for (db, v) in [("wf_acme", "wf"), ("rb_acme", "rb")] {
        root.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {db}.ps_home (v VARCHAR(4)); \
             DELETE FROM {db}.ps_home; INSERT INTO {db}.ps_home VALUES ('{v}')"
        ))
        .await
        .unwrap();
    }
    common::wait_replicated().await;
    let (_p, mut c) = proxy_conn().await;
    let stmt = c.prep("SELECT @@port, v FROM ps_home").await.unwrap();
    c.query_drop("USE rb_acme").await.unwrap();
    for round in 0..3 {
        let (port, v): (u16, String) = c.exec_first(&stmt, ()).await.unwrap().unwrap();
        assert!(is_replica(port), "round {round}: a read, on a replica");
        assert_eq!(v, "wf", "round {round}: wf_acme's table, as prepared");
        c.query_drop("BEGIN").await.unwrap();
        let (port, v): (u16, String) = c.exec_first(&stmt, ()).await.unwrap().unwrap();
        assert_eq!(port, primary_port(), "round {round}: in a transaction");
        assert_eq!(v, "wf", "round {round}: on the primary too");
        c.query_drop("COMMIT").await.unwrap();
    }
    // The session's own statements still run in its schema, on the connections that
    // prepared in the other one.
    let (v, db): (String, String) = c
        .query_first("SELECT v, DATABASE() FROM ps_home")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v.as_str(), db.as_str()), ("rb", "rb_acme"));
    // A statement prepared now is rb_acme's.
    let rb = c.prep("SELECT v FROM ps_home WHERE 1 = 1").await.unwrap();
    let v: String = c.exec_first(&rb, ()).await.unwrap().unwrap();
    assert_eq!(v, "rb");
}

#[tokio::test]
async fn reset_connection_clears_session_state() {
    let (_p, mut c) = proxy_conn().await;
    c.query_drop("SET time_zone = '+01:00'").await.unwrap();
    c.query_drop("SET @v = 7").await.unwrap();
    c.query_drop("SELECT GET_LOCK('ss_reset', 5)")
        .await
        .unwrap();
    assert_eq!(
        served_by(&mut c).await,
        primary_port(),
        "pinned by the lock"
    );
    c.reset().await.unwrap();
    assert!(
        is_replica(served_by(&mut c).await),
        "reset releases the lock pin"
    );
    let (tz_r, tz_p) = on_both(&mut c, "@@time_zone").await;
    assert_eq!((tz_r.as_str(), tz_p.as_str()), ("SYSTEM", "SYSTEM"));
    let v: Option<Option<i64>> = c.query_first("SELECT @v").await.unwrap();
    assert_eq!(v, Some(None), "user variable gone");
    // The lock was really released on the server.
    let mut other = common::root().await;
    let free: i64 = other
        .query_first("SELECT IS_FREE_LOCK('ss_reset')")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(free, 1);
}

#[tokio::test]
async fn change_user_reauthenticates_and_may_change_tenant() {
    let proxy = common::start(common::config("")).await;
    let mut c = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    c.query_drop("SET time_zone = '+03:00'").await.unwrap();
    let opts = ChangeUserOpts::default()
        .with_user(Some("globex_app".into()))
        .with_pass(Some("globex_pw".into()))
        .with_db_name(Some("wf_globex".into()));
    c.change_user(opts).await.unwrap();
    let (user, db, tz): (String, String, String) = c
        .query_first("SELECT CURRENT_USER(), DATABASE(), @@time_zone")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (user.as_str(), db.as_str(), tz.as_str()),
        ("globex_app@%", "wf_globex", "SYSTEM")
    );
    assert!(
        c.query_drop("USE wf_acme").await.is_err(),
        "the new user's tenancy applies"
    );

    let bad = ChangeUserOpts::default()
        .with_user(Some("acme_app".into()))
        .with_pass(Some("wrong".into()));
    assert!(c.change_user(bad).await.is_err(), "wrong password refused");
}

#[tokio::test]
async fn ping_and_multi_tenant_user_switching() {
    let proxy = common::start(common::config("")).await;
    let mut ops = connect(proxy.addr.port(), "ops", None).await;
    ops.ping().await.unwrap();
    // Before a schema is named, reads of settings work (drivers send them at connect) but
    // anything that needs a tenant is refused.
    let one: i64 = ops.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
    let e = ops
        .query_drop("CREATE TABLE lobby_t (x INT)")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("1046"), "no tenant yet: {e}");
    ops.query_drop("USE wf_acme").await.unwrap();
    let db: String = ops.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db, "wf_acme");
    ops.query_drop("USE wf_globex").await.unwrap();
    let db: String = ops.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db, "wf_globex");
    ops.ping().await.unwrap();
    // Not while something lives on the current tenant's servers.
    ops.query_drop("SELECT GET_LOCK('ops_lock', 5)")
        .await
        .unwrap();
    let e = ops.query_drop("USE wf_acme").await.unwrap_err().to_string();
    assert!(e.contains("1179"), "{e}");
    ops.query_drop("SELECT RELEASE_LOCK('ops_lock')")
        .await
        .unwrap();
    ops.query_drop("USE wf_acme").await.unwrap();
}

#[tokio::test]
async fn a_session_without_a_schema_gets_no_pooled_connection_that_has_one() {
    let shared =
        switchyard::state::RuntimeState::new(common::config(r#"consistency = "eventual""#))
            .shared();
    let proxy = common::start_shared(shared.clone()).await;
    let port = proxy.addr.port();
    let mut c = connect(port, "acme_app", Some("wf_acme")).await;
    on_both(&mut c, "DATABASE()").await;
    c.disconnect().await.unwrap();
    // The connections are reset and pooled in the background.
    common::until_pooled(&shared, 2).await;

    let mut direct = connect(primary_port(), "acme_app", None).await;
    let expected: Option<String> = direct
        .query_first("SELECT DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expected, None);
    let mut c = connect(port, "acme_app", None).await;
    for sql in ["SELECT DATABASE()", "BEGIN", "SELECT DATABASE()", "COMMIT"] {
        if sql == "BEGIN" || sql == "COMMIT" {
            c.query_drop(sql).await.unwrap();
            continue;
        }
        let db: Option<String> = c.query_first(sql).await.unwrap().unwrap();
        assert_eq!(
            db,
            expected,
            "{sql} (served by {})",
            served_by(&mut c).await
        );
    }
}

/// The client's connection ended after a statement's OK: the next statement finds it closed.
async fn assert_ended(c: &mut Conn, case: &str) {
    let next = tokio::time::timeout(common::SHORT, c.query_drop("DO 1")).await;
    assert!(
        matches!(next, Ok(Err(mysql_async::Error::Io(_)))),
        "{case}: the client's connection ended: {next:?}"
    );
}

/// Another session of acme runs a transaction on the primary and a statement after it (on a
/// new connection, when the pool's one was closed by a release).
async fn another_session_works_on_the_primary(port: u16, case: &str) {
    let mut other = connect(port, "acme_app", Some("wf_acme")).await;
    let on = async {
        other.query_drop("BEGIN").await?;
        let on: Option<u16> = other.query_first("SELECT @@port").await?;
        other.query_drop("COMMIT").await?;
        other.query_drop("DO 1").await?;
        Ok::<_, mysql_async::Error>(on)
    };
    let on = tokio::time::timeout(common::SHORT, on).await;
    assert!(
        matches!(on, Ok(Ok(Some(p))) if p == primary_port()),
        "after {case}, another session: {on:?}"
    );
}

/// COMMIT RELEASE and ROLLBACK RELEASE, as text or prepared, end the client's connection, as
/// directly (the server closes the connection the transaction ran on; through Switchyard
/// the session went on, on another connection), and that dead connection never reaches
/// another session: with one connection to the primary in the pool, the next sessions'
/// transactions run on a new one.
#[tokio::test]
async fn a_release_ends_its_session_and_no_other() {
    let proxy = common::start(common::config("pool_max = 1")).await;
    let port = proxy.addr.port();
    for (end, prepared) in [
        ("COMMIT RELEASE", false),
        ("ROLLBACK WORK AND NO CHAIN RELEASE", false),
        ("COMMIT RELEASE", true),
    ] {
        let mut c = connect(port, "acme_app", Some("wf_acme")).await;
        c.query_drop("BEGIN").await.unwrap();
        if prepared {
            c.exec_drop(end, ()).await.unwrap();
        } else {
            c.query_drop(end).await.unwrap();
        }
        assert_ended(&mut c, end).await;
        for _ in 0..2 {
            another_session_works_on_the_primary(port, end).await;
        }
    }
}

/// `completion_type = 2` (RELEASE): every COMMIT and ROLLBACK that does not say NO RELEASE
/// then ends the client's connection after its OK, as the server ends it directly, with or
/// without a transaction open; other values (and a later SET back) do not: each case also
/// run against the server directly, which must agree. Another session then gets a working
/// connection (one connection to the primary in the pool).
#[tokio::test]
async fn completion_type_release_ends_the_session_at_commit() {
    let proxy = common::start(common::config("pool_max = 1")).await;
    let port = proxy.addr.port();
    for (set, begin, end, ends) in [
        ("SET completion_type = 2", true, "COMMIT", true),
        (
            "SET SESSION completion_type = 'RELEASE'",
            true,
            "ROLLBACK WORK",
            true,
        ),
        ("SET @@session.completion_type = 2", false, "COMMIT", true),
        ("SET completion_type = 2", true, "COMMIT NO RELEASE", false),
        (
            "SET completion_type = 2, completion_type = 'NO_CHAIN'",
            true,
            "COMMIT",
            false,
        ),
        ("SET completion_type = 1", true, "COMMIT", false),
    ] {
        // The server itself, then through Switchyard: the same outcome.
        for (to, case) in [(primary_port(), "directly"), (port, "proxied")] {
            let case = format!("{set}, {end} ({case})");
            let mut c = connect(to, "acme_app", Some("wf_acme")).await;
            c.query_drop(set).await.unwrap();
            if begin {
                c.query_drop("BEGIN").await.unwrap();
            }
            c.query_drop(end).await.unwrap();
            if ends {
                assert_ended(&mut c, &case).await;
            } else {
                let next = tokio::time::timeout(common::SHORT, c.query_drop("DO 1")).await;
                assert!(matches!(next, Ok(Ok(()))), "{case}: {next:?}");
                c.disconnect().await.unwrap();
            }
        }
        another_session_works_on_the_primary(port, &format!("{set}, {end}")).await;
    }
}

/// A session that leaves a prepared XA transaction behind (disconnecting, or changing user,
/// after `XA PREPARE`) harms no other session. The server keeps the transaction for `XA
/// RECOVER` once its connection is gone, as directly; but MariaDB resets such a connection
/// (COM_RESET_CONNECTION, COM_CHANGE_USER) into one where every table access fails with
/// 1031 "Storage engine InnoDB of the table ... doesn't have this option", so Switchyard
/// closes it rather than reset it for the pool. One connection to the primary in the pool:
/// the next session would get that one.
#[tokio::test]
async fn a_prepared_xa_transaction_left_behind_harms_no_other_session() {
    const XID: &str = "sy_xa_left";
    let mut root = common::root().await;
    let _ = root.query_drop(format!("XA ROLLBACK '{XID}'")).await;
    root.query_drop("CREATE TABLE IF NOT EXISTS wf_acme.xa_left (a INT)")
        .await
        .unwrap();
    let proxy = common::start(common::config("pool_max = 1")).await;
    let port = proxy.addr.port();
    // Dynamic SQL (as a stored procedure would) prepares it where no statement says so.
    let prepares = [
        format!("XA PREPARE '{XID}'"),
        format!("EXECUTE IMMEDIATE 'XA PREPARE ''{XID}'''"),
    ];
    let cases = ["disconnect", "change user"]
        .into_iter()
        .flat_map(|leave| prepares.iter().map(move |p| (leave, p)));
    for (leave, prepare) in cases {
        let mut c = connect(port, "acme_app", Some("wf_acme")).await;
        for sql in [
            format!("XA START '{XID}'"),
            "INSERT INTO xa_left VALUES (1)".into(),
            format!("XA END '{XID}'"),
            prepare.clone(),
        ] {
            c.query_drop(sql).await.unwrap();
        }
        if leave == "disconnect" {
            c.disconnect().await.unwrap();
        } else {
            c.change_user(ChangeUserOpts::default()).await.unwrap();
        }
        for _ in 0..2 {
            let mut other = connect(port, "acme_app", Some("wf_acme")).await;
            let read = async {
                other.query_drop("BEGIN").await?;
                let n: Option<i64> = other.query_first("SELECT COUNT(*) FROM xa_left").await?;
                other.query_drop("COMMIT").await?;
                Ok::<_, mysql_async::Error>(n)
            };
            let read = tokio::time::timeout(common::SHORT, read).await;
            assert!(
                matches!(read, Ok(Ok(Some(0)))),
                "after a {leave} with {prepare}, another session: {read:?}"
            );
        }
        // Kept for XA RECOVER, as when a client leaves it directly.
        let xids: Vec<(i64, i64, i64, Vec<u8>)> = root.query("XA RECOVER").await.unwrap();
        assert!(
            xids.iter().any(|x| x.3 == XID.as_bytes()),
            "after a {leave}: {xids:?}"
        );
        root.query_drop(format!("XA ROLLBACK '{XID}'"))
            .await
            .unwrap();
    }
    root.query_drop("DROP TABLE wf_acme.xa_left").await.unwrap();
}

/// Under `NO_BACKSLASH_ESCAPES` (and inside `"..."` under `ANSI_QUOTES`) a backslash is only
/// a character, so a string ending in one ends there: Switchyard reads the statement as the
/// server does. Before, it read `'x\'; SET ...; SELECT 'y\'` as one SELECT of one string:
/// the multi-statement went to a replica, and its SET (there, on a pooled connection) was
/// lost to the session, which directly keeps it.
#[tokio::test]
async fn a_set_in_a_multi_statement_is_seen_whatever_sql_mode_does_to_backslashes() {
    let proxy = common::start(common::config(r#"consistency = "eventual""#)).await;
    let cases = [
        (
            "NO_BACKSLASH_ESCAPES",
            r"SELECT 'x\'; SET time_zone = 0x2b30353a3030; SELECT 'y\', 'z'",
        ),
        (
            "ANSI_QUOTES",
            r#"SELECT 1 AS "x\"; SET time_zone = 0x2b30353a3030; SELECT 2 AS "y\", 'z'"#,
        ),
    ];
    for (mode, sql) in cases {
        for port in [primary_port(), proxy.addr.port()] {
            let mut c = connect(port, "acme_app", Some("wf_acme")).await;
            c.query_drop(format!("SET SESSION sql_mode = '{mode}'"))
                .await
                .unwrap();
            let sets = statements_run(&mut c, sql.as_bytes()).await;
            assert_eq!(sets, 3, "{mode} on {port}: three statements");
            for _ in 0..4 {
                let tz: String = c.query_first("SELECT @@time_zone").await.unwrap().unwrap();
                assert_eq!(tz, "+05:00", "{mode} on {port}");
            }
            c.disconnect().await.unwrap();
            let mut other = connect(port, "acme_app", Some("wf_acme")).await;
            for _ in 0..4 {
                let tz: String = other
                    .query_first("SELECT @@time_zone")
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(tz, "SYSTEM", "{mode} on {port}: another session");
            }
        }
    }
}

/// COM_RESET_CONNECTION inside a transaction, which may be a prepared XA one that MariaDB's
/// reset leaves broken (1031 on every table; started by a CALL or dynamic SQL, no statement
/// says so): that connection is closed once the reset is answered, never pooled; the
/// session's next statement gets a clean one. A plain transaction stands in for the XA one
/// here, which would leave the server a transaction holding its locks until it restarts.
#[tokio::test]
async fn a_connection_reset_inside_a_transaction_serves_no_other_session() {
    let proxy = common::start(common::config("pool_max = 1")).await;
    let port = proxy.addr.port();
    let mut a = connect(port, "acme_app", Some("wf_acme")).await;
    let first = primary_thread(&mut a).await;
    a.disconnect().await.unwrap();
    let mut b = connect(port, "acme_app", Some("wf_acme")).await;
    assert_eq!(primary_thread(&mut b).await, first, "a pool of one: reused");
    b.query_drop("BEGIN").await.unwrap();
    b.reset().await.unwrap();
    let after = primary_thread(&mut b).await;
    assert_ne!(
        after, first,
        "reset inside a transaction: closed, not pooled"
    );
    b.disconnect().await.unwrap();
    let mut c = connect(port, "acme_app", Some("wf_acme")).await;
    assert_eq!(primary_thread(&mut c).await, after);
    c.disconnect().await.unwrap();
    let mut d = connect(port, "acme_app", Some("wf_acme")).await;
    let reused = primary_thread(&mut d).await;
    let mut e = connect(port, "acme_app", Some("wf_acme")).await;
    assert_eq!(
        primary_thread(&mut e).await,
        reused,
        "a clean session's connection is pooled"
    );
}

/// The server thread of the session's primary connection (in a transaction, the
/// connection's own CONNECTION_ID()).
async fn primary_thread(c: &mut Conn) -> u64 {
    common::on_primary(c, "SELECT CONNECTION_ID()").await
}

/// In GBK (as in Big5 and Shift-JIS) a two-byte character may end in the byte of a
/// backslash: `'\xbf\x5c'` is one character in quotes, and the quote after it ends the
/// string, for the server. Switchyard reads the statement the same way, whether the client
/// logged in with that character set or changed to it with SET NAMES. Before, it read the
/// multi-statement below as one SELECT of one string: its SET went unseen to a replica and
/// was lost to the session (directly it stays).
#[tokio::test]
async fn a_set_behind_a_gbk_character_ending_in_a_backslash_byte_is_seen() {
    use common::raw::{modern_caps, RawClient};
    use switchyard::protocol::packets::first_text_value;
    use switchyard::protocol::scan::Expect;
    let proxy = common::start(common::config(r#"consistency = "eventual""#)).await;
    let hidden: &[u8] =
        b"SELECT '\xbf\x5c'; SET time_zone = 0x2b30353a3030; SELECT '\xbf\x5c', 'z'";
    for port in [primary_port(), proxy.addr.port()] {
        // Logged in with gbk_chinese_ci (28).
        let password = common::password_of("acme_app");
        let (mut raw, _) = RawClient::connect_in(
            port,
            "acme_app",
            password,
            Some("wf_acme"),
            modern_caps(),
            28,
        )
        .await;
        let mut command = vec![0x03];
        command.extend_from_slice(hidden);
        raw.command(&command, Expect::ResultSets).await;
        let deprecate = raw
            .caps
            .contains(switchyard::protocol::CapabilityFlags::CLIENT_DEPRECATE_EOF);
        for _ in 0..4 {
            let tz = first_text_value(&raw.query("SELECT @@time_zone").await, deprecate);
            assert_eq!(tz, Some(Some(b"+05:00".to_vec())), "gbk login on {port}");
        }
        // Changed to gbk with SET NAMES.
        let mut c = connect(port, "acme_app", Some("wf_acme")).await;
        c.query_drop("SET NAMES gbk").await.unwrap();
        let sets = statements_run(&mut c, hidden).await;
        assert_eq!(sets, 3, "three statements on {port}");
        for _ in 0..4 {
            let tz: String = c.query_first("SELECT @@time_zone").await.unwrap().unwrap();
            assert_eq!(tz, "+05:00", "SET NAMES gbk on {port}");
        }
    }
}

/// Runs a multi-statement and returns how many result sets (rows or OK) it answered with.
async fn statements_run(c: &mut Conn, sql: &[u8]) -> usize {
    let mut results = c.query_iter(sql).await.unwrap();
    let mut sets = 0;
    loop {
        let _: Vec<mysql_async::Row> = results.collect().await.unwrap();
        sets += 1;
        if results.is_empty() {
            return sets;
        }
    }
}

/// A SET followed by a statement long enough to pass the classifier's old 16 KB look-ahead
/// (`SET @a = 1; INSERT ... /* 20 KB */`) was taken for a lone SET: recorded, and replayed
/// whole, the INSERT with it, on each connection the session's state was restored on (three
/// rows after five reads, measured through the demo proxy). The INSERT runs once, and the
/// session keeps its variable (a SET inside a multi-statement pins it).
#[tokio::test]
async fn a_set_before_a_long_statement_is_not_replayed_with_it() {
    let (proxy, mut c) = proxy_conn().await;
    let mut root = common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.multi_once (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(8))",
    )
    .await
    .unwrap();
    root.query_drop("DELETE FROM wf_acme.multi_once")
        .await
        .unwrap();
    common::wait_replicated().await;
    let pad = "x".repeat(20 * 1024);
    c.query_drop(format!(
        "SET @once = 7; INSERT INTO wf_acme.multi_once (v) VALUES ('once') /* {pad} */"
    ))
    .await
    .unwrap();
    // Other sessions take and return connections meanwhile, so the session's statements
    // meet connections its state must be restored on.
    for _ in 0..5 {
        let mut other = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
        let _: Option<i64> = other.query_first("SELECT 1").await.unwrap();
        let once: Option<i64> = c.query_first("SELECT @once").await.unwrap().unwrap();
        assert_eq!(once, Some(7));
    }
    let rows: Option<i64> = root
        .query_first("SELECT COUNT(*) FROM wf_acme.multi_once")
        .await
        .unwrap();
    assert_eq!(rows, Some(1), "the INSERT ran once");
}

/// A CALL inside a multi-statement pins the session as a lone CALL does: what the procedure
/// set (here a user variable) is invisible to Switchyard, so the session stays on the
/// connection that has it. It went back to the pool, and the next read, on a replica, saw
/// NULL.
#[tokio::test]
async fn a_call_inside_a_multi_statement_pins_the_session() {
    let (proxy, mut c) = proxy_conn().await;
    let mut root = common::root().await;
    root.query_drop("CREATE OR REPLACE PROCEDURE wf_acme.sy_multi_proc() SET @in_proc = 5")
        .await
        .unwrap();
    root.query_drop("CREATE TABLE IF NOT EXISTS wf_acme.call_pin (id INT PRIMARY KEY)")
        .await
        .unwrap();
    common::wait_replicated().await;
    c.query_drop("CALL wf_acme.sy_multi_proc(); SELECT 1")
        .await
        .unwrap();
    // Statements of other kinds follow (a read on a replica, a write on the primary, which
    // end the hold of the CALL's answer), then another session's transaction takes
    // whatever primary connection is idle: the CALL's, unless the session keeps it.
    let _: Option<i64> = c.query_first("SELECT 2").await.unwrap();
    c.query_drop("DELETE FROM wf_acme.call_pin WHERE id = -1")
        .await
        .unwrap();
    let _: Option<i64> = c.query_first("SELECT 3").await.unwrap();
    let mut other = hold_a_primary_connection(proxy.addr.port()).await;
    for _ in 0..4 {
        let v: Option<i64> = c.query_first("SELECT @in_proc").await.unwrap().unwrap();
        assert_eq!(v, Some(5), "the procedure's variable");
    }
    other.query_drop("ROLLBACK").await.unwrap();
}

/// A connection another session's transaction holds, so the next statements need others.
async fn hold_a_primary_connection(port: u16) -> Conn {
    let mut other = connect(port, "acme_app", Some("wf_acme")).await;
    other.query_drop("BEGIN").await.unwrap();
    other
        .query_drop("SELECT * FROM wf_acme.call_pin FOR UPDATE")
        .await
        .unwrap();
    other
}

/// MariaDB runs a multi-statement up to the part that fails and keeps what ran: the time
/// zone set and the named lock taken before the error are the session's. Switchyard
/// applied none of a failed statement's effects, so the connection went back to the pool
/// unpinned, with the time zone and the lock on it for the next session, and this session
/// lost both.
#[tokio::test]
async fn what_a_failing_multi_statement_ran_stays_the_sessions() {
    let (proxy, mut c) = proxy_conn().await;
    let mut root = common::root().await;
    root.query_drop("CREATE TABLE IF NOT EXISTS wf_acme.call_pin (id INT PRIMARY KEY)")
        .await
        .unwrap();
    common::wait_replicated().await;
    let failed = c
        .query_drop(
            "SET time_zone = '+09:00'; SELECT GET_LOCK('sy_partial_multi', 0); \
             SELECT * FROM wf_acme.sy_no_such_table",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&failed, mysql_async::Error::Server(e) if e.code == 1146),
        "{failed}"
    );
    let _: Option<i64> = c.query_first("SELECT 2").await.unwrap();
    c.query_drop("DELETE FROM wf_acme.call_pin WHERE id = -1")
        .await
        .unwrap();
    let mut other = hold_a_primary_connection(proxy.addr.port()).await;
    let tz: Option<String> = other.query_first("SELECT @@time_zone").await.unwrap();
    assert_eq!(tz.as_deref(), Some("SYSTEM"), "another session's time zone");
    for _ in 0..4 {
        let tz: Option<String> = c.query_first("SELECT @@time_zone").await.unwrap();
        assert_eq!(tz.as_deref(), Some("+09:00"), "the session's time zone");
    }
    let released: Option<i64> = c
        .query_first("SELECT RELEASE_LOCK('sy_partial_multi')")
        .await
        .unwrap();
    assert_eq!(released, Some(1), "the lock the multi-statement took");
    other.query_drop("ROLLBACK").await.unwrap();
}

/// `UPDATE ... SET n = (@n := n + 1)` assigns a user variable as a SELECT does: the
/// session keeps the connection that has it. A write's assignment was not seen, and after
/// another session took the connection, `SELECT @n` answered NULL.
#[tokio::test]
async fn a_user_variable_a_write_assigns_stays_the_sessions() {
    let (proxy, mut c) = proxy_conn().await;
    let mut root = common::root().await;
    root.query_drop(
        "CREATE TABLE IF NOT EXISTS wf_acme.sy_counters (k VARCHAR(8) PRIMARY KEY, n INT)",
    )
    .await
    .unwrap();
    root.query_drop("INSERT IGNORE INTO wf_acme.sy_counters VALUES ('x', 0)")
        .await
        .unwrap();
    root.query_drop("CREATE TABLE IF NOT EXISTS wf_acme.call_pin (id INT PRIMARY KEY)")
        .await
        .unwrap();
    common::wait_replicated().await;
    c.query_drop("UPDATE sy_counters SET n = (@sy_n := n + 1) WHERE k = 'x'")
        .await
        .unwrap();
    let n: Option<i64> = root
        .query_first("SELECT n FROM wf_acme.sy_counters WHERE k = 'x'")
        .await
        .unwrap();
    let _: Option<i64> = c.query_first("SELECT 2").await.unwrap();
    let mut other = hold_a_primary_connection(proxy.addr.port()).await;
    for _ in 0..3 {
        let got: Option<Option<i64>> = c.query_first("SELECT @sy_n").await.unwrap();
        assert_eq!(got.flatten(), n, "the variable the UPDATE assigned");
    }
    other.query_drop("ROLLBACK").await.unwrap();
}

/// `SET sql_mode = @saved` after `SELECT @@sql_mode INTO @saved` (what scripts and
/// mysqldump's footer do): the variable exists on the session's primary connection only.
/// The SET was replayed on the replicas the session's reads went to, where `@saved` is
/// NULL: ERR 1231 at every read (with `replica_fallback = "error"`; the primary served
/// them otherwise, a replica connection dropped at each).
#[tokio::test]
async fn a_set_from_a_variable_only_its_connection_has_is_not_replayed() {
    let text = common::config_text("replica_fallback = \"error\"");
    let cfg = switchyard::config::parse(&text, &|_| None).unwrap();
    let proxy = common::start(cfg).await;
    let mut c = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    let before: Option<String> = c.query_first("SELECT @@session.sql_mode").await.unwrap();
    c.query_drop("SELECT @@session.sql_mode INTO @sy_saved")
        .await
        .unwrap();
    c.query_drop("SET sql_mode = 'ANSI'").await.unwrap();
    c.query_drop("SET sql_mode = @sy_saved").await.unwrap();
    for _ in 0..4 {
        let mode: Option<String> = c.query_first("SELECT @@session.sql_mode").await.unwrap();
        assert_eq!(mode, before);
        let n: Option<i64> = c
            .query_first("SELECT COUNT(*) FROM information_schema.SCHEMATA")
            .await
            .unwrap();
        assert!(n.is_some_and(|n| n > 0));
    }
}

/// A SET of a session variable to what a table holds is not replayed: a replay reads the
/// table again and may find another value. The session set `+03:00`, the table then said
/// `+04:00`, and a read on a replica connection replayed the SET and ran in `+04:00`.
#[tokio::test]
async fn a_session_variable_set_from_a_table_keeps_the_value_it_got() {
    let (_proxy, mut c) = proxy_conn().await;
    let mut root = common::root().await;
    root.query_drop(
        "CREATE OR REPLACE TABLE wf_acme.sy_prefs (k VARCHAR(8) PRIMARY KEY, tz VARCHAR(8))",
    )
    .await
    .unwrap();
    root.query_drop("INSERT INTO wf_acme.sy_prefs VALUES ('a', '+03:00')")
        .await
        .unwrap();
    common::wait_replicated().await;
    c.query_drop("SET time_zone = (SELECT tz FROM wf_acme.sy_prefs WHERE k = 'a')")
        .await
        .unwrap();
    root.query_drop("UPDATE wf_acme.sy_prefs SET tz = '+04:00'")
        .await
        .unwrap();
    common::wait_replicated().await;
    for _ in 0..4 {
        let tz: Option<String> = c
            .query_first("SELECT @@time_zone FROM wf_acme.sy_prefs")
            .await
            .unwrap();
        assert_eq!(tz.as_deref(), Some("+03:00"));
    }
}

/// A DROP of another table of the same name (in another schema) leaves the temporary
/// table and its pin: the pin was keyed by the bare, lower-cased name, so `DROP TABLE
/// rb_acme.t` lifted the pin of temporary table `t`, and the session's next read went to a
/// replica, where `t` does not exist (ERR 1146).
#[tokio::test]
async fn dropping_a_namesake_keeps_the_temporary_tables_pin() {
    let (_proxy, mut c) = proxy_conn().await;
    let mut root = common::root().await;
    root.query_drop("CREATE TABLE IF NOT EXISTS rb_acme.sy_namesake (x INT)")
        .await
        .unwrap();
    common::wait_replicated().await;
    c.query_drop("CREATE TEMPORARY TABLE sy_namesake (x INT)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO sy_namesake VALUES (1), (2)")
        .await
        .unwrap();
    c.query_drop("DROP TABLE rb_acme.sy_namesake")
        .await
        .unwrap();
    for _ in 0..3 {
        let n: Option<i64> = c
            .query_first("SELECT COUNT(*) FROM sy_namesake")
            .await
            .unwrap();
        assert_eq!(n, Some(2), "the temporary table");
    }
}

/// `DROP DATABASE` of the session's own schema leaves its connection with no default
/// database, as the server does: the next session given that connection is put in its
/// schema again. Switchyard took the connection for one still in the dropped schema, and
/// the next session's statement got ERR 1046 "No database selected".
#[tokio::test]
async fn a_dropped_default_database_is_chosen_again_for_the_next_session() {
    let mut root = common::root().await;
    root.query_drop("CREATE DATABASE IF NOT EXISTS sy_dropme")
        .await
        .unwrap();
    let p = common::primary_port();
    let text = format!(
        "{}\n[[tenants]]\nname = \"dropme\"\nschemas = [\"sy_dropme\"]\nprimary = \"127.0.0.1:{p}\"\n\
         replicas = []\npool_max = 1\nbackend_user = \"sy_root\"\nbackend_password = \"sy_root\"\n\n\
         [[users]]\nname = \"dropme_app\"\npassword = \"dropme_pw\"\ntenant = \"dropme\"\n",
        common::config_text("")
    );
    let cfg = switchyard::config::parse(&text, &|_| None).unwrap();
    let proxy = common::start(cfg).await;
    let port = proxy.addr.port();
    let opts =
        mysql_async::OptsBuilder::from_opts(common::opts(port, "dropme_app", Some("sy_dropme")))
            .pass(Some("dropme_pw"));
    let mut a = Conn::new(opts.clone()).await.unwrap();
    let mut b = Conn::new(opts).await.unwrap();
    a.query_drop("DROP DATABASE sy_dropme").await.unwrap();
    let db: Option<Option<String>> = a.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(
        db,
        Some(None),
        "the dropped database is no longer the default"
    );
    a.query_drop("CREATE DATABASE sy_dropme").await.unwrap();
    a.query_drop("CREATE TABLE sy_dropme.t (x INT)")
        .await
        .unwrap();
    let n: Option<i64> = b.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(0));
}

/// COM_RESET_CONNECTION puts `wait_timeout` back with the session's other variables: a
/// pool that resets its connections and keeps them idle keeps them. Switchyard kept the
/// session's shorter idle limit and closed the connection.
#[tokio::test]
async fn a_reset_connection_forgets_the_sessions_wait_timeout() {
    let (_proxy, mut c) = proxy_conn().await;
    c.query_drop("SET SESSION wait_timeout = 1").await.unwrap();
    c.reset().await.unwrap();
    // The idle time itself is the case (no wait for anything): past the old limit.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

/// COM_CHANGE_USER counts the session against the new user's `max_connections`, as the
/// server checks the new account's limit. The session kept the first user's slot, and any
/// number of sessions became a user allowed one.
#[tokio::test]
async fn change_user_takes_a_slot_of_the_new_users() {
    let text = common::config_text("").replace(
        "name = \"globex_app\"\npassword = \"globex_pw\"",
        "name = \"globex_app\"\npassword = \"globex_pw\"\nmax_connections = 1",
    );
    let cfg = switchyard::config::parse(&text, &|_| None).unwrap();
    let proxy = common::start(cfg).await;
    let to_globex = || {
        ChangeUserOpts::default()
            .with_user(Some("globex_app".into()))
            .with_pass(Some("globex_pw".into()))
            .with_db_name(Some("wf_globex".into()))
    };
    let mut a = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    let mut b = connect(proxy.addr.port(), "acme_app", Some("wf_acme")).await;
    a.change_user(to_globex()).await.unwrap();
    let refused = b.change_user(to_globex()).await.unwrap_err();
    assert!(
        matches!(&refused, mysql_async::Error::Server(e) if e.code == 1203),
        "{refused}"
    );
}

/// SETs a multi-tenant user makes before it chooses a tenant (in the lobby) carry over once
/// it does (routing.md, "Multi-tenant users and the lobby"): drivers set the time zone or
/// `sql_mode` right after connecting, before the application's `USE`, and a session that
/// lost them would compute and compare times differently on the tenant's servers. Checked
/// on a replica read and on the primary (in a transaction), for `ops` (lobby acme, then
/// `USE wf_acme`) and for a user whose lobby is another tenant than the one it chooses
/// (lobby globex, then `USE sbtest` of tenant sb).
#[tokio::test]
async fn sets_made_in_the_lobby_carry_over_to_the_chosen_tenant() {
    let text = common::config_text(r#"consistency = "eventual""#).replace(
        "[[tenants]]\nname = \"sb\"\nschemas = [\"sbtest\"]\n",
        "[[tenants]]\nname = \"sb\"\nschemas = [\"sbtest\"]\nconsistency = \"eventual\"\n",
    ) + "\n[[users]]\nname = \"sy_root\"\npassword = \"sy_root\"\ntenants = [\"globex\", \"sb\"]\n";
    assert!(text.contains("name = \"sb\"\nschemas = [\"sbtest\"]\nconsistency"));
    let cfg = switchyard::config::parse(&text, &|_| None).unwrap();
    let proxy = common::start(cfg).await;
    for (user, db, zone) in [
        ("ops", "wf_acme", "+03:00"),
        ("sy_root", "sbtest", "-04:30"),
    ] {
        let mut c = connect(proxy.addr.port(), user, None).await;
        let before: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
        assert_eq!(before, None, "{user} has chosen no tenant yet");
        c.query_drop(format!("SET time_zone = '{zone}'"))
            .await
            .unwrap();
        c.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
            .await
            .unwrap();
        c.query_drop(format!("USE {db}")).await.unwrap();
        for _ in 0..2 {
            assert_eq!(
                on_both(&mut c, "@@time_zone").await,
                (zone.into(), zone.into()),
                "{user} after USE {db}"
            );
            assert_eq!(
                on_both(&mut c, "@@sql_mode").await,
                ("ANSI_QUOTES".into(), "ANSI_QUOTES".into()),
                "{user} after USE {db}"
            );
        }
    }
}

/// A client that quits in the middle of a transaction: the transaction's server connection
/// is closed, never pooled (the server rolls the transaction back), and closed with
/// COM_QUIT, as the client closed its own; dropped, each such exit (a PHP script ending
/// mid-transaction, a pool closing a connection) was logged by the server as an aborted
/// connection and counted in `Aborted_clients`.
#[tokio::test]
async fn a_transaction_left_open_at_quit_ends_with_com_quit() {
    let (p, closed) = common::start_with_recorded_primary().await;
    let mut root = common::root().await;
    let table = format!("wf_acme.quit_in_txn_{}", std::process::id());
    root.query_drop(format!(
        "CREATE OR REPLACE TABLE {table} (id INT PRIMARY KEY)"
    ))
    .await
    .unwrap();
    let mut c = connect(p.addr.port(), "acme_app", Some("wf_acme")).await;
    c.query_drop("BEGIN").await.unwrap();
    let insert = format!("INSERT INTO {table} VALUES (1)");
    c.query_drop(&insert).await.unwrap();
    c.disconnect().await.unwrap();
    common::assert_closed_with_quit(&closed, insert.as_bytes(), "the transaction's connection")
        .await;
    // Rolled back and its row lock gone: the same row goes in at once (a transaction still
    // open would hold it until the lock wait gave up; a committed one would clash).
    root.query_drop("SET SESSION innodb_lock_wait_timeout = 5")
        .await
        .unwrap();
    root.query_drop(&insert).await.unwrap();
    root.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
