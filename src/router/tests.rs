//! Classification tests: the statement table, hints, effects, cache behaviour, garbage input.

use std::time::Duration;

use super::PrimaryReason as R;
use super::*;

/// A router as it runs: in front of MariaDB 10.11 (the local cluster's), which decides the
/// executable comments it skips.
fn router() -> Router {
    let r = Router::new();
    r.server_version.learn(b"10.11.6-MariaDB");
    r
}

fn class(sql: &str) -> Class {
    router().classify(sql.as_bytes()).class
}

fn effects(sql: &str) -> Effects {
    router().classify(sql.as_bytes()).effects
}

const READ: Class = Class::Read;
const LAST: Class = Class::LastBackend;
const SET: Class = Class::SetSession;

fn p(r: R) -> Class {
    Class::Primary(r)
}

#[test]
fn statement_table() {
    let table: Vec<(&str, Class)> = vec![
        // Plain reads.
        ("SELECT c FROM sbtest1 WHERE id=42", READ),
        ("select c from sbtest1 where id = 42", READ),
        ("SeLeCt 1", READ),
        ("SELECT * FROM `order` WHERE `select` = 1", READ),
        ("SELECT 'FOR UPDATE'", READ),
        ("SELECT \"GET_LOCK(\"", READ),
        ("SELECT 'it''s @x', \"a\\\"b FOR UPDATE\"", READ),
        ("SELECT `get_lock` FROM t", READ),
        ("SELECT sleep FROM t", READ),
        ("SELECT RAND(), NOW(), UUID() FROM t", READ),
        (
            "SELECT COUNT(*) FROM t GROUP BY a HAVING COUNT(*) > 1",
            READ,
        ),
        ("WITH c AS (SELECT 1 AS x) SELECT x FROM c", READ),
        ("(SELECT 1) UNION (SELECT 2)", READ),
        (
            "SELECT a FROM t1 JOIN t2 ON t1.id = t2.id ORDER BY a LIMIT 10",
            READ,
        ),
        ("SELECT @@version, @@session.sql_mode", READ),
        ("SELECT 1;", READ),
        ("SELECT 1; -- trailing comment", READ),
        ("SELECT 1 /* for update */", READ),
        ("-- c\nSELECT 1", READ),
        ("#c\nSELECT 1", READ),
        ("/* route=replica */ SELECT 1", READ),
        (
            "SELECT * FROM t FOR SYSTEM_TIME AS OF '2020-01-01'",
            p(R::Unparsed),
        ),
        // Locking reads.
        ("SELECT * FROM t WHERE id=1 FOR UPDATE", p(R::LockingRead)),
        ("select * from t for share skip locked", p(R::LockingRead)),
        (
            "SELECT * FROM t WHERE id=1 FOR UPDATE NOWAIT",
            p(R::LockingRead),
        ),
        ("SELECT * FROM t LOCK IN SHARE MODE", p(R::LockingRead)),
        (
            "SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)",
            p(R::LockingRead),
        ),
        // INTO.
        ("SELECT a INTO @x FROM t", p(R::UserVariable)),
        ("SELECT a FROM t INTO OUTFILE '/tmp/x'", p(R::Write)),
        ("SELECT a FROM t INTO DUMPFILE '/tmp/x'", p(R::Write)),
        // User variables.
        ("SELECT @x", p(R::UserVariable)),
        ("SELECT @x := 1", p(R::UserVariable)),
        (
            "SELECT * FROM t WHERE a = @`quoted var`",
            p(R::UserVariable),
        ),
        // Side-effect and session-bound functions.
        ("SELECT GET_LOCK('a', 10)", p(R::SideEffectFunction)),
        ("SELECT release_lock('a')", p(R::SideEffectFunction)),
        ("SELECT RELEASE_ALL_LOCKS()", p(R::SideEffectFunction)),
        ("SELECT IS_FREE_LOCK('a')", p(R::SideEffectFunction)),
        ("SELECT LAST_INSERT_ID()", p(R::SideEffectFunction)),
        ("SELECT @@identity", p(R::SideEffectFunction)),
        ("SELECT SLEEP(1)", p(R::SideEffectFunction)),
        ("SELECT sleep (1)", p(R::SideEffectFunction)),
        ("SELECT BENCHMARK(10, MD5('a'))", p(R::SideEffectFunction)),
        ("SELECT NEXTVAL(seq)", p(R::SideEffectFunction)),
        ("SELECT NEXT VALUE FOR seq", p(R::SideEffectFunction)),
        ("SELECT PREVIOUS VALUE FOR seq", p(R::SideEffectFunction)),
        (
            "SELECT MASTER_GTID_WAIT('0-1-1', 1)",
            p(R::SideEffectFunction),
        ),
        (
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('x')",
            p(R::SideEffectFunction),
        ),
        ("SELECT CONNECTION_ID()", p(R::SideEffectFunction)),
        ("SELECT LOAD_FILE('/etc/passwd')", p(R::SideEffectFunction)),
        // A stored function may write: it counts as one for read-your-writes.
        ("SELECT mydb.my_func(1) FROM t", p(R::StoredFunction)),
        ("DO mydb.my_func(1)", p(R::StoredFunction)),
        ("DO GET_LOCK('a', 1)", p(R::SideEffectFunction)),
        ("SELECT GET_LOCK('a', 1), mydb.f()", p(R::StoredFunction)),
        ("SELECT `sleep`(1)", p(R::SideEffectFunction)),
        (
            "SELECT a FROM t WHERE b = (SELECT GET_LOCK('x', 1))",
            p(R::SideEffectFunction),
        ),
        ("SELECT @@read_only", p(R::Unknown)),
        // The previous statement's outcome.
        ("SELECT FOUND_ROWS()", LAST),
        ("SELECT ROW_COUNT()", LAST),
        ("SELECT @@warning_count", LAST),
        ("SELECT @@session.last_gtid", LAST),
        ("SELECT FOUND_ROWS() FROM dual", p(R::FoundRows)),
        (
            "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10",
            p(R::FoundRows),
        ),
        // Not a plain query, or not parseable.
        ("SELECT FROM WHERE", p(R::Unparsed)),
        ("SELECT * FROM t WHERE", p(R::Unparsed)),
        ("SELECT 'unterminated", p(R::Unparsed)),
        // Writes.
        (
            "INSERT INTO sbtest1 (id,k,c,pad) VALUES (1,2,'x','y')",
            p(R::Write),
        ),
        ("UPDATE sbtest1 SET k=k+1 WHERE id=7", p(R::Write)),
        ("delete from t where id = 1", p(R::Write)),
        ("REPLACE INTO t VALUES (1)", p(R::Write)),
        ("LOAD DATA INFILE 'x' INTO TABLE t", p(R::Write)),
        ("TRUNCATE TABLE t", p(R::Ddl)),
        ("EXPLAIN UPDATE t SET a = 1", p(R::Write)),
        // DDL and server-wide changes.
        ("CREATE TABLE t (a INT)", p(R::Ddl)),
        ("ALTER TABLE t ADD COLUMN b INT", p(R::Ddl)),
        ("DROP TABLE t", p(R::Ddl)),
        ("RENAME TABLE a TO b", p(R::Ddl)),
        ("GRANT SELECT ON db.* TO 'u'@'%'", p(R::Ddl)),
        ("REVOKE ALL ON *.* FROM u", p(R::Ddl)),
        ("ANALYZE TABLE t", p(R::Ddl)),
        ("OPTIMIZE TABLE t", p(R::Ddl)),
        ("FLUSH PRIVILEGES", p(R::Ddl)),
        ("INSTALL PLUGIN x SONAME 'x.so'", p(R::Ddl)),
        ("SET GLOBAL max_connections = 10", p(R::Ddl)),
        ("SET @@global.sql_mode = ''", p(R::Ddl)),
        ("SET PERSIST max_connections = 10", p(R::Ddl)),
        ("SET PASSWORD = 'x'", p(R::Ddl)),
        ("SET ROLE r", p(R::Ddl)),
        ("SET DEFAULT ROLE r TO u", p(R::Ddl)),
        (
            "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
            p(R::Ddl),
        ),
        // Calls and side effects.
        ("CALL p(1)", p(R::Call)),
        ("DO SLEEP(1)", p(R::SideEffectFunction)),
        ("DO GET_LOCK('a', 1)", p(R::SideEffectFunction)),
        // Transactions.
        ("BEGIN", Class::Begin { read_only: false }),
        ("begin work", Class::Begin { read_only: false }),
        ("START TRANSACTION", Class::Begin { read_only: false }),
        (
            "START TRANSACTION READ ONLY",
            Class::Begin { read_only: true },
        ),
        (
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
            Class::Begin { read_only: true },
        ),
        (
            "START TRANSACTION READ WRITE",
            Class::Begin { read_only: false },
        ),
        ("BEGIN NOT ATOMIC SELECT 1; END", p(R::Unknown)),
        ("COMMIT", p(R::TransactionControl)),
        ("ROLLBACK", p(R::TransactionControl)),
        ("ROLLBACK TO SAVEPOINT s1", p(R::TransactionControl)),
        ("SAVEPOINT s1", p(R::TransactionControl)),
        ("RELEASE SAVEPOINT s1", p(R::TransactionControl)),
        ("XA START 'x'", p(R::TransactionControl)),
        (
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            p(R::TransactionControl),
        ),
        // Locks.
        ("LOCK TABLES t READ", p(R::LockTables)),
        ("LOCK TABLE t WRITE", p(R::LockTables)),
        ("UNLOCK TABLES", p(R::LockTables)),
        // Schema.
        ("USE shop", Class::Use("shop".into())),
        ("use `my db`", Class::Use("my db".into())),
        // Session SETs.
        ("SET autocommit=0", SET),
        ("SET NAMES utf8mb4", SET),
        ("SET CHARACTER SET utf8", SET),
        ("SET SESSION sql_mode = 'STRICT_ALL_TABLES'", SET),
        ("SET LOCAL time_zone = '+00:00'", SET),
        ("SET @@session.wait_timeout = 10", SET),
        ("SET @@sql_mode = ''", SET),
        (
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            SET,
        ),
        ("SET @x = 1", SET),
        ("/*!40101 SET NAMES utf8mb4 */", SET),
        ("/*!40101 SET NAMES utf8mb4 */;", SET),
        ("/*M!100100 SET NAMES utf8mb4 */", SET),
        ("SET @x = GET_LOCK('a', 1)", p(R::SideEffectFunction)),
        // A read under limits stays a read (MariaDB Connector/J's query timeout and
        // max rows); anything else a SET STATEMENT sets sends it to the primary.
        ("SET STATEMENT max_statement_time=1 FOR SELECT 1", READ),
        (
            "set statement MAX_STATEMENT_TIME=0.5, sql_select_limit=10 for select * from t",
            READ,
        ),
        (
            "SET STATEMENT optimizer_switch='index_merge=off' FOR SELECT a FROM t",
            READ,
        ),
        ("SET STATEMENT sql_mode='ANSI' FOR SELECT 1", p(R::Unknown)),
        (
            "SET STATEMENT max_statement_time=(SELECT 1) FOR SELECT 1",
            p(R::Unknown),
        ),
        (
            "SET STATEMENT max_statement_time=@t FOR SELECT 1",
            p(R::Unknown),
        ),
        (
            "SET STATEMENT max_statement_time=1 FOR SELECT GET_LOCK('a', 1)",
            p(R::SideEffectFunction),
        ),
        (
            "SET STATEMENT max_statement_time=1 FOR UPDATE t SET a=1",
            p(R::Write),
        ),
        // SQL-level prepared statements.
        ("PREPARE s FROM 'SELECT 1'", p(R::SessionSet)),
        ("EXECUTE s USING @a", p(R::SessionSet)),
        ("DEALLOCATE PREPARE s", p(R::SessionSet)),
        ("DROP PREPARE s", p(R::SessionSet)),
        // SHOW, EXPLAIN, HELP, diagnostics.
        ("SHOW WARNINGS", LAST),
        ("SHOW ERRORS", LAST),
        ("SHOW COUNT(*) WARNINGS", LAST),
        ("GET DIAGNOSTICS @n = NUMBER", LAST),
        (
            "GET CURRENT DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT",
            LAST,
        ),
        ("SHOW TABLES", READ),
        ("SHOW FULL COLUMNS FROM t", READ),
        ("SHOW CREATE TABLE t", READ),
        ("SHOW VARIABLES LIKE 'x'", READ),
        ("SHOW SESSION VARIABLES LIKE 'sql\\_mode'", READ),
        ("show global variables like 'max_%'", READ),
        // Variables that answer for the server, as `SELECT @@read_only` does.
        ("SHOW VARIABLES LIKE 'read_only'", p(R::Unknown)),
        ("SHOW GLOBAL VARIABLES LIKE '%READ_ONLY'", p(R::Unknown)),
        ("SHOW VARIABLES LIKE 'server\\_id'", p(R::Unknown)),
        ("SHOW VARIABLES LIKE 'gtid_slave%'", p(R::Unknown)),
        ("SHOW VARIABLES LIKE 'host_ame'", p(R::Unknown)),
        ("SHOW VARIABLES", p(R::Unknown)),
        ("SHOW VARIABLES WHERE Variable_name = 'x'", p(R::Unknown)),
        ("SHOW VARIABLES LIKE 'a' 'b'", p(R::Unknown)),
        // ... and about the previous statement, as `SELECT @@last_gtid` does.
        ("SHOW VARIABLES LIKE 'last_gtid'", LAST),
        ("SHOW SESSION VARIABLES LIKE '%count'", LAST),
        ("SHOW MASTER STATUS", p(R::Unknown)),
        ("SHOW SLAVE STATUS", p(R::Unknown)),
        ("SHOW REPLICA STATUS", p(R::Unknown)),
        ("SHOW BINLOG EVENTS", p(R::Unknown)),
        ("SHOW FULL PROCESSLIST", p(R::Unknown)),
        ("SHOW ENGINE INNODB STATUS", p(R::Unknown)),
        ("SHOW GRANTS", p(R::Unknown)),
        ("DESCRIBE t", READ),
        ("DESC `t`", READ),
        ("EXPLAIN SELECT * FROM t", READ),
        ("EXPLAIN (SELECT 1) UNION (SELECT 2)", READ),
        ("EXPLAIN SELECT GET_LOCK('a', 1)", READ),
        ("EXPLAIN SELECT NEXTVAL(s)", p(R::SideEffectFunction)),
        (
            "EXPLAIN EXTENDED SELECT NEXT VALUE FOR s",
            p(R::SideEffectFunction),
        ),
        ("EXPLAIN FORMAT=JSON SELECT * FROM t", READ),
        ("EXPLAIN ANALYZE SELECT * FROM t", READ),
        (
            "EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE",
            p(R::LockingRead),
        ),
        ("ANALYZE SELECT GET_LOCK('a', 1)", p(R::SideEffectFunction)),
        ("HELP 'contents'", READ),
        // Everything else.
        ("HANDLER t OPEN", p(R::Unknown)),
        ("KILL 42", p(R::Unknown)),
        ("SHUTDOWN", p(R::Unknown)),
        ("CHECKSUM TABLE t", p(R::Unknown)),
        ("CACHE INDEX t IN c", p(R::Unknown)),
        ("START SLAVE", p(R::Unknown)),
        ("FROBNICATE everything", p(R::Unknown)),
        ("", p(R::Unknown)),
        ("   ", p(R::Unknown)),
        ("/* only a comment */", p(R::Unknown)),
        (";", p(R::Unknown)),
        ("42", p(R::Unknown)),
    ];
    let router = router();
    let mut failures = Vec::new();
    for (sql, want) in &table {
        let got = router.classify(sql.as_bytes()).class;
        if &got != want {
            failures.push(format!("{sql:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(table.len() >= 80);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn multi_statements() {
    assert_eq!(class("SELECT 1; SELECT 2"), READ);
    assert_eq!(class("SELECT 1;\n SELECT 2;  "), READ);
    assert_eq!(class("SELECT 1; UPDATE t SET a=1"), p(R::MultiStatement));
    assert_eq!(class("UPDATE t SET a=1; SELECT 1"), p(R::MultiStatement));
    assert_eq!(
        class("BEGIN; UPDATE t SET a = 1; COMMIT"),
        p(R::MultiStatement)
    );
    assert_eq!(class("SELECT 'a;b'; "), READ);
    assert_eq!(class("SELECT 1 -- ; UPDATE t\n"), READ);
    assert_eq!(class("SELECT 1 /* ; UPDATE t */"), READ);

    let e = effects("SET NAMES utf8; USE shop; SELECT GET_LOCK('a', 1); SELECT GET_LOCK('b', 1)");
    assert_eq!(e.use_dbs, vec!["shop".to_string()]);
    assert!(e.unreplayable);
    assert_eq!(e.named_lock, LockEffect::Acquire(2));

    // A CALL in a multi-statement pins as a lone one does (nothing marked it).
    assert!(effects("CALL p(); SELECT 1").calls_procedure);
    assert!(effects("SELECT 1; call db.p(2)").calls_procedure);
    assert!(!effects("SELECT 1; SELECT 'CALL p()'").calls_procedure);
    // A SET before a statement past the old 16 KB look-ahead is seen, and pins.
    let long = format!(
        "SET @a = 1; INSERT INTO t VALUES (1) /* {} */",
        "x".repeat(20_000)
    );
    assert_eq!(class(&long), p(R::MultiStatement));
    assert!(effects(&long).unreplayable);
    let long = format!(
        "BEGIN; INSERT INTO t VALUES ('{}'); COMMIT",
        "y".repeat(20_000)
    );
    assert_eq!(class(&long), p(R::MultiStatement));

    let e = effects("CREATE TEMPORARY TABLE a (x INT); CREATE TEMPORARY TABLE b (x INT)");
    assert_eq!(
        e.temp_tables_created,
        vec!["a".to_string(), "b".to_string()]
    );
    let e = effects("CREATE TEMPORARY TABLE a (s VARCHAR(9) DEFAULT ';'); SELECT GET_LOCK('x', 1)");
    assert_eq!(e.temp_tables_created, vec!["a".to_string()]);
    assert_eq!(e.named_lock, LockEffect::Acquire(1));
    // Other CREATEs are not split: a routine's body holds `;`.
    let e = effects("CREATE PROCEDURE p() BEGIN CREATE TEMPORARY TABLE c (x INT); END");
    assert!(e.temp_tables_created.is_empty());

    let e = effects("DROP TABLE a; SELECT @v := 1; PREPARE s FROM 'SELECT 1'");
    assert_eq!(e.tables_dropped, vec!["a".to_string()]);
    assert!(e.user_var_assign);
    assert!(e.unreplayable);

    assert!(!effects("SELECT 1; SELECT 2").unreplayable);
    assert_eq!(class("USE shop; SELECT 1"), p(R::MultiStatement));
}

/// MariaDB 10.11 skips `/*!50700` .. `/*!99999` and versions above its own, to the first
/// `*/`, quotes and all (checked on the local cluster: `SELECT 1 /*!99999 ' */, 2 -- '`
/// returns two columns). Read as SQL here, such a comment could hide a write or a SET in
/// what the classifier took for a string.
#[test]
fn a_comment_some_server_skips_reads_as_unknown() {
    for sql in [
        "SELECT 1 /*!99999 ' */; DELETE FROM t -- '",
        "SELECT 1 /*!50700 ' */, (SELECT 2) -- '",
        "SELECT 1 /*M!999999 ' */; SET time_zone = '+01:00' -- '",
        "SELECT 1 FROM t /*!101200 WHERE a = 1 */",
    ] {
        assert_eq!(class(sql), p(R::Unknown), "{sql}");
        assert!(effects(sql).unreplayable, "{sql}");
    }
    // Before a backend was reached, any from 5.7 on.
    let unknown = Router::new().classify(b"SELECT 1 FROM t /*!100000 WHERE a = 1 */");
    assert_eq!(unknown.class, p(R::Unknown));
    assert_eq!(class("SELECT 1 FROM t /*!100000 WHERE a = 1 */"), READ);
    // Versions every server runs: read as ever (mysqldump's headers, old hints).
    assert_eq!(class("SELECT /*!40001 SQL_NO_CACHE */ * FROM t"), READ);
    assert_eq!(class("SELECT /*! STRAIGHT_JOIN */ a FROM t"), READ);
    assert_eq!(class("/*!40101 SET NAMES utf8mb4 */"), SET);
    assert_eq!(class("/*M!100100 SET NAMES utf8mb4 */"), SET);
    // A comment in a string (`shape` blanks strings): the answer is that text's alone, not
    // remembered for the shape's other members.
    let r = router();
    let plain = b"SELECT a FROM t WHERE note = 'x'";
    assert_eq!(r.classify_query(plain).c.class, READ);
    let odd = r.classify_query(b"SELECT a FROM t WHERE note = '/*!99999'");
    assert_eq!(odd.c.class, p(R::Unknown));
    assert_eq!(r.classify_query(plain).c.class, READ);
}

/// A session variable set to the clock or a random value is kept, not replayed: replayed
/// later on another connection it got a later time (`SET timestamp = UNIX_TIMESTAMP()`
/// wrote 10:00 rows at 10:05), and another session's same text shared its fingerprint.
#[test]
fn a_set_to_the_clock_or_a_random_value_pins() {
    for sql in [
        "SET timestamp = UNIX_TIMESTAMP()",
        "SET @@session.timestamp = UNIX_TIMESTAMP(NOW())",
        "SET SESSION rand_seed1 = FLOOR(RAND() * 1000)",
        "SET timestamp = CURRENT_TIMESTAMP",
    ] {
        assert!(effects(sql).unreplayable, "{sql}");
    }
    for sql in [
        "SET time_zone = '+01:00'",
        "SET @now = NOW()",
        "SET NAMES utf8mb4",
    ] {
        assert!(!effects(sql).unreplayable, "{sql}");
    }
}

#[test]
fn sets_a_replay_would_apply_again_pin() {
    for sql in [
        "SET insert_id = 5000",
        "SET SESSION INSERT_ID = 1",
        "SET @@insert_id = 7, sql_mode = ''",
        "SET sql_mode = '', @@session.rand_seed2 = 3",
        "SET rand_seed1 = 1, rand_seed2 = 2",
        "SET last_insert_id = 9",
        "SET @@identity = 4",
        "SET SESSION `insert_id` = 1",
        "SET GLOBAL max_connections = 500, SESSION sql_mode = ''",
        "SET @@global.max_connections = 500, @u = 1",
        "SET SESSION sql_mode = '', GLOBAL max_connections = 500",
        "SET @@SESSION.GTID_NEXT = '3e11fa47-71ca-11e1-9e33-c80aa9429562:23'",
        "SET @@session.gtid_seq_no = 5",
    ] {
        assert!(effects(sql).unreplayable, "{sql}");
    }
    for sql in [
        "SET GLOBAL max_connections = 500, max_user_connections = 9",
        "SET @@global.max_connections = 500, GLOBAL max_user_connections = 9",
    ] {
        assert!(!effects(sql).unreplayable, "{sql}");
    }
    assert_eq!(class("SET insert_id = 5000"), SET);
    for sql in [
        "SET @insert_id = 1",
        "SET auto_increment_offset = 2",
        "SET sql_mode = 'insert_id'",
        "SET timestamp = 1700000000",
    ] {
        assert!(!effects(sql).unreplayable, "{sql}");
    }
}

#[test]
fn code_and_handles_that_live_on_a_connection_pin() {
    for sql in [
        "BEGIN NOT ATOMIC SET @x = 1; END",
        "IF 1 THEN SET @x = 1; END IF",
        "lbl: LOOP LEAVE lbl; END LOOP",
        "FOR i IN 1..1 DO SELECT GET_LOCK('job', 0); END FOR",
        "PREPARE s FROM 'SELECT 1'",
        "EXECUTE IMMEDIATE 'SET @x = 1'",
        "EXECUTE IMMEDIATE CONCAT('SET @x = ', 2)",
        "HANDLER t OPEN",
        "SET ROLE reporting",
        "SET ROLE NONE",
        "handler db.t open as h",
    ] {
        assert!(effects(sql).unreplayable, "{sql}");
    }
    for sql in [
        "DEALLOCATE PREPARE s",
        "HANDLER t READ FIRST",
        "HANDLER t CLOSE",
        "BEGIN",
        "BEGIN WORK",
        "SET DEFAULT ROLE reporting",
    ] {
        assert!(!effects(sql).unreplayable, "{sql}");
    }
    assert!(effects("SET ROLE reporting").sets_role);
    for (sql, release) in [
        ("SET completion_type = 2", Some(true)),
        ("SET @@session.completion_type = 'release'", Some(true)),
        ("SET completion_type = 2, completion_type = 0", Some(false)),
        ("SET SESSION completion_type = DEFAULT", Some(false)),
        ("SET SESSION `completion_type` = 2", Some(true)),
        ("SET completion_type = @v", None),
        ("SET GLOBAL completion_type = 2", None),
        ("SET sql_mode = 2", None),
    ] {
        assert_eq!(effects(sql).completion_release, release, "{sql}");
    }
    assert!(effects("COMMIT NO RELEASE").no_release);
    assert!(effects("ROLLBACK AND CHAIN NO RELEASE").no_release);
    assert!(!effects("COMMIT RELEASE").no_release);
    assert!(!effects("COMMIT").no_release && !effects("COMMIT").releases);
    assert!(effects("XA PREPARE 'x'").prepares_xa);
    assert!(effects("xa prepare 'x', 'b'").prepares_xa);
    assert!(!effects("XA START 'x'").prepares_xa);
    assert!(!effects("XA COMMIT 'x'").prepares_xa);
    assert!(effects("XA COMMIT 'x'").commits_xa);
    assert!(effects("xa commit 'x' one phase").commits_xa);
    assert!(!effects("XA ROLLBACK 'x'").commits_xa);
    assert!(!effects("SET DEFAULT ROLE reporting FOR u").sets_role);
}

/// Each of `statements` has the effect `has` looks at, and goes to the primary.
fn on_primary(statements: &[&str], has: fn(&Effects) -> bool) {
    for sql in statements {
        let c = Router::new().classify(sql.as_bytes());
        assert!(has(&c.effects), "{sql}");
        assert!(matches!(c.class, Class::Primary(_)), "{sql}: {:?}", c.class);
    }
}

/// None of `statements` has the effect `has` looks at.
fn none_has(statements: &[&str], has: fn(&Effects) -> bool) {
    for sql in statements {
        assert!(!has(&effects(sql)), "{sql}");
    }
}

#[test]
fn statements_that_read_a_user_variable_are_seen() {
    on_primary(
        &[
            "SELECT @x",
            "select @`a b` + 1 FROM t",
            "SELECT @x := @x + 1",
            "DO @x",
            "INSERT INTO t VALUES (@x)",
            "UPDATE t SET v = @x WHERE id = 1",
            "SELECT 1; SELECT @x",
            "SELECT c INTO @a FROM t WHERE id = @x",
        ],
        |e| e.reads_user_var && e.reads_what_writes_leave(),
    );
    // SETs run where the session's state is, wherever that is.
    for sql in [
        "SET @y = @x",
        "SET sql_mode = @saved",
        "SET @a = 1, @b = (SELECT @c)",
    ] {
        assert!(effects(sql).reads_user_var, "{sql}");
    }
    none_has(
        &[
            "SET @x = 1",
            "SET @x := 'a', @y = -2",
            "SELECT 1 INTO @a",
            "SELECT c FROM t LIMIT 1 INTO @a, @b",
            "SELECT @x := 5",
            "SELECT '@x'",
            "SELECT @@sql_mode",
            "INSERT INTO t VALUES ('@x')",
        ],
        |e| e.reads_user_var,
    );
}

#[test]
fn statements_that_move_or_read_a_sequence_are_seen() {
    on_primary(
        &[
            "SELECT NEXTVAL(s)",
            "select nextval(db.s), 1",
            "SELECT NEXT VALUE FOR s",
            "SELECT SETVAL(s, 100)",
            "DO SETVAL(s, 5)",
            "SET @id = NEXTVAL(s)",
            "INSERT INTO t (id) VALUES (NEXTVAL(s))",
            "insert into t values (next value for s, 'x')",
            "UPDATE t SET id = NEXTVAL(s) WHERE id = 0",
            "REPLACE INTO t SELECT NEXTVAL(s)",
            "INSERT INTO t VALUES (1); SELECT NEXTVAL(s)",
        ],
        |e| e.sequence_value,
    );
    none_has(
        &[
            "SELECT LASTVAL(s)",
            "SELECT PREVIOUS VALUE FOR s",
            "INSERT INTO t (v) VALUES ('nextval(s)')",
            "INSERT INTO t (interval_col) VALUES (1)",
            "UPDATE t SET val = 1",
            "SELECT * FROM t WHERE nextval = 1",
        ],
        |e| e.sequence_value,
    );
    on_primary(
        &[
            "SELECT LASTVAL(s)",
            "select lastval(db.s) + 1",
            "SELECT PREVIOUS VALUE FOR s",
            "DO LASTVAL(s)",
            "SET @v = PREVIOUS VALUE FOR s",
            "INSERT INTO t (v) SELECT LASTVAL(s)",
            "SELECT 1; SELECT LASTVAL(s)",
        ],
        |e| e.reads_sequence_value,
    );
    none_has(
        &[
            "SELECT NEXTVAL(s)",
            "SELECT 'lastval(s)'",
            "SELECT lastval FROM t",
            "INSERT INTO t (v) VALUES ('previous value for s')",
        ],
        |e| e.reads_sequence_value,
    );
}

#[test]
fn statements_that_set_the_insert_id_are_seen() {
    on_primary(
        &[
            "SELECT LAST_INSERT_ID(28)",
            "select last_insert_id( id + 1 ) from t",
            "DO LAST_INSERT_ID(5)",
            "SET @x = LAST_INSERT_ID(5)",
            "SELECT 1; SELECT LAST_INSERT_ID(2)",
            "SELECT `LAST_INSERT_ID`(3)",
        ],
        |e| e.sets_insert_id,
    );
    none_has(
        &[
            "SELECT LAST_INSERT_ID()",
            "SELECT last_insert_id ( )",
            "SELECT 'LAST_INSERT_ID(5)'",
            "INSERT INTO t VALUES (1)",
            // A write's OK reports the value: the session carries it.
            "UPDATE seq SET id = LAST_INSERT_ID(id + 1)",
            // A stored function of that name.
            "SELECT db.last_insert_id(5)",
        ],
        |e| e.sets_insert_id,
    );
}

#[test]
fn locks_a_connection_holds_are_seen() {
    for sql in [
        "FLUSH TABLES WITH READ LOCK",
        "flush no_write_to_binlog tables t1, t2 with read lock",
        "FLUSH TABLES WITH READ LOCK AND DISABLE CHECKPOINT",
        "FLUSH TABLES t1 FOR EXPORT",
        "LOCK TABLES t READ",
    ] {
        assert!(effects(sql).lock_tables, "{sql}");
    }
    for sql in [
        "FLUSH TABLES",
        "FLUSH PRIVILEGES",
        "FLUSH LOGS",
        "FLUSH TABLES t1, `lock`",
    ] {
        assert!(!effects(sql).lock_tables, "{sql}");
        assert_eq!(class(sql), p(R::Ddl), "{sql}");
    }
    assert!(effects("UNLOCK TABLES").unlock_tables);
    assert_eq!(effects("BACKUP STAGE START").backup_stage, Some(true));
    assert_eq!(
        effects("BACKUP STAGE BLOCK_COMMIT").backup_stage,
        Some(true)
    );
    assert_eq!(effects("backup stage end").backup_stage, Some(false));
    assert_eq!(effects("BACKUP LOCK db.t").backup_lock, Some(true));
    assert_eq!(effects("BACKUP UNLOCK").backup_lock, Some(false));
    assert_eq!(class("BACKUP LOCK t"), p(R::LockTables));
    assert_eq!(class("BACKUP SOMETHING"), p(R::Unknown));
    assert_eq!(effects("LOCK INSTANCE FOR BACKUP").backup_lock, Some(true));
    assert_eq!(effects("UNLOCK INSTANCE").backup_lock, Some(false));
    assert_eq!(effects("LOCK BINLOG FOR BACKUP").backup_lock, Some(true));
    assert_eq!(effects("UNLOCK BINLOG").backup_lock, Some(false));
    assert_eq!(class("LOCK INSTANCE FOR BACKUP"), p(R::LockTables));
    assert_eq!(class("LOCK SOMETHING"), p(R::Unknown));
}

#[test]
fn an_accounts_own_password_change_is_told() {
    for sql in [
        "SET PASSWORD = PASSWORD('x')",
        "SET PASSWORD FOR CURRENT_USER() = 'x'",
        "ALTER USER USER() IDENTIFIED BY 'x'",
        "alter user if exists current_user() identified by 'x'",
        "ALTER USER CURRENT_USER ACCOUNT LOCK",
        "PREPARE s FROM 'SET PASSWORD = PASSWORD(''x'')'",
        "EXECUTE IMMEDIATE 'ALTER USER USER() IDENTIFIED BY ''x'''",
        "DO 1; SET PASSWORD = 'x'",
    ] {
        assert!(effects(sql).sets_password, "{sql}");
    }
    for sql in [
        "SET @password = 1",
        "SET password_reuse_check_interval = 1",
        "SELECT PASSWORD('x')",
        "ALTER USER 'app'@'%' IDENTIFIED BY 'x'",
        "ALTER TABLE user ADD c INT",
    ] {
        assert!(!effects(sql).sets_password, "{sql}");
    }
}

#[test]
fn set_transaction_and_transaction_ends_are_told_apart() {
    for sql in [
        "SET TRANSACTION READ ONLY",
        "set transaction isolation level serializable",
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE",
        // `@@` without a scope sets these for the next transaction only, as the server
        // does (its session value stays; checked on MariaDB 10.11).
        "SET @@tx_read_only = 1",
        "set @@TX_ISOLATION='SERIALIZABLE'",
        "SET @@transaction_isolation = 'READ-COMMITTED'",
        "SET @@transaction_read_only = ON",
    ] {
        let c = Router::new().classify(sql.as_bytes());
        assert_eq!(c.class, p(R::TransactionControl), "{sql}");
        assert!(
            c.effects.next_transaction && !c.effects.ends_transaction,
            "{sql}"
        );
    }
    // With a scope it is a session variable, replayed like any other.
    let c = Router::new().classify(b"SET SESSION TRANSACTION READ ONLY");
    assert_eq!(c.class, SET);
    assert!(!c.effects.next_transaction);
    for sql in [
        "SET @@session.tx_read_only = 1",
        "SET tx_isolation = 'READ-COMMITTED'",
        "SET LOCAL transaction_read_only = 0",
    ] {
        let c = Router::new().classify(sql.as_bytes());
        assert_eq!(c.class, SET, "{sql}");
        assert!(
            !c.effects.next_transaction && !c.effects.unreplayable,
            "{sql}"
        );
    }
    // Beside another variable: never replayed (it would hold for one more transaction).
    let c = Router::new().classify(b"SET @@tx_read_only = 1, sql_mode = ''");
    assert!(c.effects.unreplayable);
    // A value that does more than name a value keeps what it does.
    let c = Router::new().classify(b"SET @@tx_read_only = GET_LOCK('a', 1)");
    assert!(c.effects.unreplayable && c.effects.named_lock != LockEffect::None);
    let c = Router::new().classify(b"SET @@tx_isolation = next_level()");
    assert!(c.effects.unreplayable && c.effects.calls_procedure);
    for sql in [
        "COMMIT",
        "commit work",
        "ROLLBACK",
        "ROLLBACK WORK",
        "COMMIT AND CHAIN",
    ] {
        assert!(effects(sql).ends_transaction, "{sql}");
        assert!(!effects(sql).releases, "{sql}");
    }
    for sql in [
        "COMMIT RELEASE",
        "rollback work release",
        "COMMIT AND NO CHAIN RELEASE",
        "SELECT 1; COMMIT RELEASE",
    ] {
        assert!(effects(sql).releases, "{sql}");
    }
    for sql in [
        "COMMIT NO RELEASE",
        "ROLLBACK AND CHAIN NO RELEASE",
        "RELEASE SAVEPOINT s",
    ] {
        assert!(!effects(sql).releases, "{sql}");
    }
    for sql in [
        "ROLLBACK TO SAVEPOINT s1",
        "ROLLBACK WORK TO s1",
        "SAVEPOINT s1",
        "RELEASE SAVEPOINT s1",
        "BEGIN",
    ] {
        assert!(!effects(sql).ends_transaction, "{sql}");
    }
    // What a multi-statement leaves set counts, whatever ended before it.
    let e = effects("COMMIT; SET TRANSACTION READ ONLY");
    assert!(e.next_transaction && !e.ends_transaction);
    let e = effects("SET TRANSACTION READ ONLY; COMMIT");
    assert!(e.next_transaction && !e.ends_transaction);
}

#[test]
fn a_set_of_profiling_is_seen_in_every_spelling() {
    for sql in [
        "SET profiling = 1",
        "set SESSION Profiling=ON",
        "SET @@profiling = 1",
        "SET @@session.profiling = 0",
        "SET time_zone = '+00:00', @@local.PROFILING = 1",
        "SET NAMES utf8; SET profiling = 1",
        // mysql-connector-python's pooled reset quotes the name.
        "SET SESSION `profiling` = 1",
    ] {
        assert!(effects(sql).profiling, "{sql}");
    }
    for sql in [
        "SET profiling_history_size = 100",
        "SET @profiling = 1",
        "SET @@session.profiling_history_size = 1",
        "SET sql_mode = 'profiling'",
        "SELECT @@profiling",
    ] {
        assert!(!effects(sql).profiling, "{sql}");
    }
}

#[test]
fn reads_that_no_write_can_change_are_told_apart() {
    let router = Router::new();
    for sql in [
        "SELECT @@max_allowed_packet,@@wait_timeout",
        "select @@session.auto_increment_increment AS a, @@character_set_client",
        "SELECT 1",
        "/* ping */ SELECT 1",
        "(SELECT 1) UNION (SELECT 'a')",
        "SELECT (SELECT 2)",
        "VALUES (1), (2)",
    ] {
        // Twice: the second answer comes from the cache.
        for _ in 0..2 {
            assert!(
                router.classify(sql.as_bytes()).effects.reads_no_data,
                "{sql}"
            );
        }
    }
    for sql in [
        "SELECT COUNT(*) FROM t",
        "SELECT 1 FROM DUAL",
        "SELECT (SELECT MAX(id) FROM t)",
        "SELECT EXISTS (TABLE t)",
        "TABLE t",
        "SELECT 1 UNION TABLE t",
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "SELECT my_function()",
        "SELECT `my_function`(1)",
        "SELECT NOW()",
        "SELECT @@port; SELECT 1",
        "SHOW VARIABLES LIKE 'port'",
        "SELECT @@server_id",
        "SELECT @x",
    ] {
        for _ in 0..2 {
            assert!(
                !router.classify(sql.as_bytes()).effects.reads_no_data,
                "{sql}"
            );
        }
    }
}

#[test]
fn show_variables_listing_both_kinds_keeps_the_previous_statement() {
    for sql in ["SHOW VARIABLES", "SHOW VARIABLES LIKE '%gtid%'"] {
        let e = effects(sql);
        assert!(e.looks_back, "{sql}");
    }
    assert!(!effects("SHOW VARIABLES LIKE 'read_only'").looks_back);
    assert!(!effects("SELECT @@server_id").looks_back);
    // A pattern longer than any name is not matched against them: it may list any.
    let show = |n: usize| class(&format!("SHOW VARIABLES LIKE '{}'", "x".repeat(n)));
    assert_eq!(show(300), p(R::Unknown));
    assert_eq!(show(200), READ);
}

#[test]
fn effects_of_single_statements() {
    let e = effects("CREATE TEMPORARY TABLE IF NOT EXISTS `Shop`.`Tmp_Orders` (id INT)");
    assert_eq!(e.temp_tables_created, vec!["Shop.Tmp_Orders".to_string()]);
    let e = effects("create or replace temporary table T1 like t");
    assert_eq!(e.temp_tables_created, vec!["T1".to_string()]);
    assert!(effects("CREATE TABLE t (a INT)")
        .temp_tables_created
        .is_empty());

    assert_eq!(
        effects("DROP DATABASE IF EXISTS `Wf_x`")
            .dropped_database
            .as_deref(),
        Some("Wf_x")
    );
    assert_eq!(
        effects("DROP SCHEMA s; SELECT 1")
            .dropped_database
            .as_deref(),
        Some("s")
    );
    let e = effects("DROP TEMPORARY TABLE IF EXISTS a, db.`B`, c");
    assert_eq!(e.tables_dropped, vec!["a", "db.B", "c"]);
    // A temporary sequence is one of the connection's temporary tables.
    let e = effects("CREATE TEMPORARY SEQUENCE IF NOT EXISTS Ids START WITH 10");
    assert_eq!(e.temp_tables_created, vec!["Ids".to_string()]);
    let e = effects("DROP TEMPORARY SEQUENCE IF EXISTS ids");
    assert_eq!(e.tables_dropped, vec!["ids"]);
    assert!(effects("CREATE SEQUENCE s").temp_tables_created.is_empty());

    assert!(effects("LOCK TABLES t READ, u WRITE").lock_tables);
    assert!(effects("UNLOCK TABLES").unlock_tables);

    assert_eq!(
        effects("SELECT GET_LOCK('a',1), GET_LOCK('b',1)").named_lock,
        LockEffect::Acquire(2)
    );
    assert_eq!(
        effects("SELECT RELEASE_LOCK('a')").named_lock,
        LockEffect::Release(1)
    );
    assert_eq!(
        effects("SELECT RELEASE_ALL_LOCKS()").named_lock,
        LockEffect::ReleaseAll
    );
    assert_eq!(
        effects("DO GET_LOCK('a', 1)").named_lock,
        LockEffect::Acquire(1)
    );
    assert_eq!(
        effects("DO RELEASE_LOCK('a')").named_lock,
        LockEffect::Release(1)
    );
    assert_eq!(
        effects("SELECT IS_FREE_LOCK('a')").named_lock,
        LockEffect::None
    );

    // Literals are replayed with the SETs: the value is known wherever the session goes.
    assert!(!effects("SET @x = 1").user_var_assign);
    assert!(!effects("SET NAMES utf8, @x = -1, @y := 'a'").user_var_assign);
    assert!(!effects("SET @x = NULL").user_var_assign);
    assert!(effects("SET @x = NOW()").user_var_assign);
    assert!(effects("SET @x = @y").user_var_assign);
    assert!(effects("SET @x = 1 + (SELECT 2)").user_var_assign);
    assert!(effects("SET NAMES utf8, @x = a").user_var_assign);
    assert!(!effects("SET @@x = 1").user_var_assign);
    assert!(effects("UPDATE t SET n = (@n := n + 1) WHERE k = 'x'").user_var_assign);
    assert!(!effects("UPDATE t SET n = @n WHERE k = 'x'").user_var_assign);
    // A session variable set from a table would be read again by a replay.
    assert!(effects("SET time_zone = (SELECT tz FROM prefs WHERE uid = 1)").unreplayable);
    assert!(effects("SET @@session.sql_mode = (SELECT m FROM t), @y = 1").unreplayable);
    assert!(!effects("SET time_zone = (SELECT '+01:00')").unreplayable);
    assert!(!effects("SET @x = (SELECT v FROM t)").unreplayable);
    // What a multi-statement that fails part-way may leave on its connection.
    assert!(effects("SET time_zone = '+01:00'; SELECT * FROM t").changes_session());
    assert!(effects("SELECT GET_LOCK('a', 0); SELECT * FROM t").changes_session());
    assert!(effects("INSERT INTO t VALUES (1); SELECT @x := 1").changes_session());
    assert!(!effects("INSERT INTO t VALUES (1); SELECT * FROM t").changes_session());
    assert!(effects("SELECT a INTO @x FROM t").user_var_assign);
    assert!(effects("SELECT @x := a FROM t").user_var_assign);
    assert!(!effects("SELECT @x FROM t").user_var_assign);
    assert!(effects("SELECT SQL_CALC_FOUND_ROWS a FROM t").calc_found_rows);
}

#[test]
fn hints() {
    let r = Router::new();
    let c = r.classify(b"/* route=replica */ SELECT 1");
    assert_eq!(c.hints.route, Some(RouteHint::Replica));
    let c = r.classify(
        b"/* route=primary */ /* consistency=read_your_writes, max_lag=500ms */ SELECT 1",
    );
    assert_eq!(c.hints.route, Some(RouteHint::Primary));
    assert_eq!(c.hints.consistency.as_deref(), Some("read_your_writes"));
    assert_eq!(c.hints.max_lag, Some(Duration::from_millis(500)));
    assert!(c.hints.unknown.is_empty());

    let c = r.classify(b"/* max_lag=2s colour=blue route=sideways */ UPDATE t SET a = 1");
    assert_eq!(c.hints.max_lag, Some(Duration::from_secs(2)));
    assert_eq!(c.hints.unknown, vec!["colour=blue", "route=sideways"]);
    assert_eq!(c.class, p(R::Write));

    let c = r.classify(b"/* route = replica */ SELECT 1");
    assert_eq!(c.hints.route, Some(RouteHint::Replica));

    // Prose comments and comments after the first keyword carry no hints.
    assert_eq!(
        r.classify(b"/* app: checkout */ SELECT 1").hints,
        Hints::default()
    );
    assert_eq!(
        r.classify(b"SELECT /* route=replica */ 1").hints,
        Hints::default()
    );
    assert_eq!(
        r.classify(b"-- route=replica\nSELECT 1").hints,
        Hints::default()
    );
    // An executable comment is SQL, not a hint.
    assert_eq!(
        r.classify(b"/*!40101 SET NAMES utf8 */").hints,
        Hints::default()
    );
}

#[test]
fn cache_hit_matches_miss() {
    let r = Router::new();
    let pairs = [
        (
            "SELECT c FROM sbtest1 WHERE id=42",
            "SELECT c FROM sbtest1 WHERE id=7",
        ),
        (
            "SELECT * FROM t WHERE a = 'x' FOR UPDATE",
            "select * from t where a = 'yy' for update",
        ),
        ("SELECT GET_LOCK('a', 1)", "SELECT GET_LOCK('b', 2)"),
        ("SELECT FOUND_ROWS()", "SELECT  FOUND_ROWS( )"),
        (
            "SELECT a FROM t WHERE b = 1.5e3",
            "SELECT a FROM t WHERE b = 0x1f",
        ),
    ];
    for (a, b) in pairs {
        let miss = r.classify(a.as_bytes());
        let entries = r.cached_entries();
        let hit = r.classify(b.as_bytes());
        assert_eq!(
            r.cached_entries(),
            entries,
            "{b} should hit the cache entry of {a}"
        );
        assert_eq!(miss.class, hit.class, "{a} / {b}");
        assert_eq!(miss.effects, hit.effects, "{a} / {b}");
        // And a fresh router agrees with the cached answer.
        assert_eq!(Router::new().classify(b.as_bytes()), hit);
    }
    // Hints come from the statement, not the cache.
    let c = r.classify(b"/* route=replica */ SELECT c FROM sbtest1 WHERE id=1");
    assert_eq!(c.hints.route, Some(RouteHint::Replica));
    // A complete string and an unterminated one do not share an entry.
    assert_eq!(r.classify(b"SELECT 'a'").class, READ);
    assert_eq!(r.classify(b"SELECT 'a").class, p(R::Unparsed));
}

#[test]
fn cache_is_bounded() {
    let r = Router::with_cache_entries(8);
    for i in 0..100 {
        let sql = format!("SELECT c{i} FROM t WHERE id = 1");
        assert_eq!(r.classify(sql.as_bytes()).class, READ);
        assert!(r.cached_entries() <= 8);
    }
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        Router::new().classify(b"SELECT '\xff\xfe'").class,
        p(R::Unparsed)
    );
    assert_eq!(
        Router::new()
            .classify(b"INSERT INTO t VALUES ('\xff')")
            .class,
        p(R::Write)
    );
    let r = Router::new();
    assert_eq!(r.classify(b"SELECT 'ok'").class, READ);
    assert_eq!(r.classify(b"SELECT '\xff'").class, p(R::Unparsed));
}

#[test]
fn huge_insert_is_decided_by_its_first_word() {
    let mut sql = b"INSERT INTO t (a, b) VALUES ".to_vec();
    while sql.len() < 1 << 20 {
        sql.extend_from_slice(b"(1, 'x; SELECT GET_LOCK(''a'', 1)'),");
    }
    sql.extend_from_slice(b"(2, 'y')");
    let c = Router::new().classify(&sql);
    assert_eq!(c.class, p(R::Write));
    assert_eq!(c.effects, Effects::default());
}

#[test]
fn display_names() {
    assert_eq!(R::LockingRead.to_string(), "locking read");
    assert_eq!(R::SideEffectFunction.to_string(), "side-effect function");
    assert_eq!(R::MultiStatement.to_string(), "multi-statement");
    assert_eq!(R::FoundRows.to_string(), "found_rows");
}

/// Small deterministic generator, so the garbage test needs no extra crate and repeats.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn garbage_never_panics() {
    let r = Router::with_cache_entries(64);
    let seeds: &[&[u8]] = &[
        b"SELECT 'a\\'b' FROM `t``x` WHERE c = \"d\" -- e\n# f\n/* g */ /*!40101 h */ FOR UPDATE;",
        b"/* route=replica max_lag=5s */ SELECT @x := GET_LOCK('a', 1), @@global.x; SET @y = 1; USE `db`",
        b"CREATE TEMPORARY TABLE IF NOT EXISTS `a`.`b` (x int); DROP TABLE IF EXISTS a, b;",
        b"EXPLAIN ANALYZE SET STATEMENT x=1 FOR START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT",
        b"/*M!100100 SELECT 0x1f, 1.5e-3, .5, 1abc, @'q', @`b`, @\"c\" */ LOCK IN SHARE MODE",
    ];
    let alphabet = b"SELECT'\"`@;:=()*/-#\\!M \n0123456789.,eE\xff\x80abFORUPDATE";
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    for seed in seeds {
        for cut in 0..=seed.len() {
            r.classify(&seed[..cut]);
            r.classify(&seed[cut..]);
        }
    }
    for _ in 0..5_000 {
        let len = (rng.next() % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let v = rng.next();
                if v.is_multiple_of(4) {
                    (v >> 8) as u8
                } else {
                    alphabet[(v >> 8) as usize % alphabet.len()]
                }
            })
            .collect();
        r.classify(&bytes);
    }
    // Deep nesting is refused rather than followed.
    let deep = "EXPLAIN ANALYZE ".repeat(10_000) + "SELECT 1";
    assert_eq!(r.classify(deep.as_bytes()).class, p(R::Unknown));
    let parens = "(".repeat(10_000);
    assert_eq!(r.classify(parens.as_bytes()).class, p(R::TooDeep));
}

#[test]
fn kill_is_marked_wherever_it_appears() {
    for sql in [
        "KILL 42",
        "kill query 42",
        "SELECT 1; KILL 42",
        "/*!KILL 42 */",
        "SET STATEMENT max_statement_time=1 FOR KILL 42",
    ] {
        assert!(effects(sql).kill, "{sql}");
    }
    for sql in ["SELECT 'KILL 42'", "SELECT kill FROM t", "SHOW PROCESSLIST"] {
        assert!(!effects(sql).kill, "{sql}");
    }
}

#[test]
fn kill_in_a_dynamic_sql_literal_is_marked() {
    for sql in [
        "PREPARE s FROM 'KILL 42'",
        r#"prepare s from _utf8mb4 "kill query 42""#,
        "PREPARE s FROM 'KI' 'LL 42'",
        r"PREPARE s FROM 'KI\LL 42'",
        "EXECUTE IMMEDIATE '/* x */ KILL 42'",
        "EXECUTE IMMEDIATE 'SET STATEMENT max_statement_time=1 FOR KILL 42'",
    ] {
        assert!(effects(sql).kill, "{sql}");
    }
    for sql in [
        "PREPARE s FROM 'SELECT ''KILL 42'''",
        "PREPARE s FROM @sql",
        "EXECUTE s USING 'KILL 42'",
        "EXECUTE IMMEDIATE",
        "PREPARE",
    ] {
        assert!(!effects(sql).kill, "{sql}");
    }
}

/// The fingerprint the classifier computes on its pass is exactly `fingerprint_hash`, for
/// every shape of text (lone SELECTs take it from the digest pass, the rest from a pass
/// of their own), so SHOW QUERY DIGEST never splits one statement into two rows.
#[test]
fn classifier_fingerprint_is_fingerprint_hash() {
    let long_in = format!(
        "SELECT c FROM t WHERE id IN ({})",
        (0..20_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let long_text = format!("SELECT {} FROM t", vec!["a"; 900].join(", "));
    let corpus = [
        "SELECT c FROM sbtest1 WHERE id=42",
        "  select c from sbtest1 where id = 7 ",
        "/* route=replica */ SELECT 1",
        "SELECT 1 /* trailing */",
        "SELECT 1;",
        "SELECT 1; SELECT 2",
        "SELECT a FROM t WHERE b IN (1, 2, 3) AND c = 'x'",
        "(SELECT 1) UNION (SELECT 2)",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "VALUES (1, 2), (3, 4)",
        "/*!40001 SQL_NO_CACHE */ SELECT 1",
        "SELECT /*!40001 SQL_NO_CACHE */ 1",
        "SELECT 1 /*! unclosed",
        "SELECT @x := 1, @@sql_mode",
        "SELECT 'unterminated",
        "INSERT INTO t VALUES (1), (2)",
        "UPDATE t SET a = 1 WHERE id = 2",
        "SET NAMES utf8mb4",
        "SELECT `select` FROM `t`",
        long_in.as_str(),
        long_text.as_str(),
    ];
    let r = Router::new();
    for sql in corpus {
        for _ in 0..2 {
            // Twice: a cache miss, then a hit.
            let (c, h) = r.classify_fingerprinted(sql.as_bytes());
            assert_eq!(h, fingerprint_hash(sql.as_bytes()), "{sql:.80}");
            assert_eq!(c, r.classify(sql.as_bytes()), "{sql:.80}");
        }
    }
}

/// The server's own reading, checked on MariaDB 10.11: `--` followed by DEL (0x7F) starts a
/// comment (its character tables call DEL a control byte). Read as a character, the quote
/// in that comment opened a string here that hid the next line's write.
#[test]
fn dashes_before_del_start_a_comment() {
    let sql = "SELECT ROW_COUNT() --\x7f '\n; UPDATE t SET a = 1; -- '";
    assert_ne!(class(sql), LAST, "{sql:?}");
    assert_ne!(class(sql), READ, "{sql:?}");
    assert_eq!(
        router()
            .classify(b"--\x7f x\n/* route=primary */ SELECT 1")
            .hints
            .route,
        Some(RouteHint::Primary)
    );
}

/// MariaDB reads a system variable's name in backticks, and with spaces or comments around
/// its scope's dot (`@@`server_id``, `@@session . last_gtid`). Read as a variable of no
/// name, it was a plain one: the read went to a replica, which has another server id and
/// none of the session's GTID. Such a spelling is not read here: the primary answers it,
/// and a SET of one is kept with the session's connection rather than replayed.
#[test]
fn odd_spellings_of_a_system_variable_take_the_safe_side() {
    for sql in [
        "SELECT @@`server_id`",
        "SELECT @@session .server_id",
        "SELECT @@session. read_only",
        "SELECT @@session/* x */.last_gtid",
        "SELECT @@session.`identity`",
        "SELECT @@`version`",
        // Parted by comments the server reads otherwise: a plain one that looks
        // executable, and an executable one of no content.
        "SELECT @@session/*M*/.server_id",
        "SELECT @@session/*!*/.last_gtid",
        "SELECT @@session/*!50000 .server_id*/",
    ] {
        assert!(matches!(class(sql), Class::Primary(_)), "{sql}");
    }
    assert_eq!(class("SELECT @@version, @@session.sql_mode"), READ);
    assert_eq!(class("SELECT @@version . 5"), p(R::Unknown));
    for sql in [
        "SET @@`autocommit` = 0",
        "SET @@session . time_zone = '+00:00'",
        "SET @@session/*!*/.autocommit = 0",
    ] {
        assert!(effects(sql).unreplayable, "{sql}");
    }
    assert!(!effects("SET @@session.time_zone = '+00:00'").unreplayable);
}

/// A write that takes or frees a named lock keeps the lock's pin: the lock stays with the
/// connection it was taken on (a later RELEASE_LOCK elsewhere found none).
#[test]
fn writes_keep_their_named_locks() {
    assert_eq!(
        effects("INSERT INTO t SELECT GET_LOCK('a', 0)").named_lock,
        LockEffect::Acquire(1)
    );
    assert_eq!(
        effects("UPDATE t SET a = RELEASE_LOCK('a')").named_lock,
        LockEffect::Release(1)
    );
    assert_eq!(effects("UPDATE t SET a = 1").named_lock, LockEffect::None);
}

/// A CTE before a write (MySQL 8) names no FROM: a ROW_COUNT() in it made the statement
/// one about the previous statement, sent where that ran, perhaps a replica.
#[test]
fn a_write_after_a_cte_is_no_question_about_the_previous_statement() {
    assert_eq!(
        class("WITH c AS (SELECT 1) UPDATE t SET a = ROW_COUNT()"),
        p(R::Write)
    );
    assert_eq!(class("WITH c AS (SELECT 1) SELECT ROW_COUNT()"), LAST);
    assert_eq!(
        class("SELECT WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS('0-1-1', 1)"),
        p(R::SideEffectFunction)
    );
}

/// A multi-statement led by an ALTER or CREATE of what has no body is split like any
/// other: the effects of what follows counted (`ALTER TABLE t ...; SELECT GET_LOCK(...)`
/// lost its lock's pin). Routines, triggers and events carry `;` in their bodies and are
/// not split.
#[test]
fn ddl_without_a_body_is_split() {
    for sql in [
        "ALTER TABLE t ADD c INT; SELECT GET_LOCK('m', 10)",
        "ALTER ONLINE TABLE t ADD c INT; SELECT GET_LOCK('m', 10)",
        "CREATE TABLE t (a VARCHAR(5) DEFAULT ';'); SELECT GET_LOCK('m', 10)",
        "CREATE OR REPLACE TABLE t (a INT); SELECT GET_LOCK('m', 10)",
        "CREATE UNIQUE INDEX i ON t (a); SELECT GET_LOCK('m', 10)",
        "CREATE DATABASE d; SELECT GET_LOCK('m', 10)",
    ] {
        assert_eq!(effects(sql).named_lock, LockEffect::Acquire(1), "{sql}");
    }
    for sql in [
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT GET_LOCK('m', 10); END",
        "ALTER EVENT e DO BEGIN SELECT 1; SELECT GET_LOCK('m', 10); END",
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET @a = 1; END",
    ] {
        assert_eq!(effects(sql).named_lock, LockEffect::None, "{sql}");
        assert!(matches!(class(sql), Class::Primary(_)), "{sql}");
    }
}

#[test]
fn what_a_server_answers_for_itself_is_read_on_the_primary() {
    for sql in [
        "SELECT * FROM information_schema.PROCESSLIST",
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'READ_ONLY'",
        "select count(*) from INFORMATION_SCHEMA.innodb_trx",
        "SELECT * FROM performance_schema.threads",
        "SELECT * FROM `information_schema`.`PROCESSLIST`",
        "SELECT * FROM `performance_schema`.threads",
        "SELECT GLOBAL_VALUE FROM information_schema.SYSTEM_VARIABLES WHERE VARIABLE_NAME = 'READ_ONLY'",
        "SHOW EXPLAIN FOR 12",
        "SHOW ANALYZE FOR 12",
        "SELECT @@pseudo_thread_id",
    ] {
        assert_ne!(class(sql), READ, "{sql}");
    }
    for sql in [
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'wf_acme'",
        "SELECT * FROM information_schema.COLUMNS",
    ] {
        assert_eq!(class(sql), READ, "{sql}");
    }
}

#[test]
fn locks_and_sequences_of_a_create_select_and_of_many_rows_are_seen() {
    assert_eq!(
        effects("CREATE TABLE t2 AS SELECT GET_LOCK('x', 0)").named_lock,
        LockEffect::Acquire(1)
    );
    assert!(effects("CREATE TABLE t2 SELECT NEXTVAL(s)").sequence_value);
    let tmp = effects("CREATE TEMPORARY TABLE t2 AS SELECT GET_LOCK('x', 0)");
    assert_eq!(tmp.named_lock, LockEffect::Acquire(1));
    assert_eq!(tmp.temp_tables_created, ["t2"]);
    // A lock per row: no count of releases lifts the pin.
    assert_eq!(
        effects("SELECT GET_LOCK(CONCAT('job', id), 0) FROM jobs").named_lock,
        LockEffect::Acquire(UNCOUNTED_LOCKS)
    );
    assert_eq!(
        effects("SELECT GET_LOCK('one', 0) FROM DUAL").named_lock,
        LockEffect::Acquire(1)
    );
    // A FROM inside parentheses is a function's or a subquery's, not the select list's.
    for sql in [
        "SELECT GET_LOCK(TRIM(LEADING '/' FROM 'a/b'), 0)",
        "SELECT GET_LOCK('a', 0), (SELECT COUNT(*) FROM t)",
    ] {
        assert_eq!(effects(sql).named_lock, LockEffect::Acquire(1), "{sql}");
    }
    assert_eq!(
        effects("UPDATE t SET c = GET_LOCK(CONCAT('l', id), 0)").named_lock,
        LockEffect::Acquire(UNCOUNTED_LOCKS)
    );
    assert_eq!(
        effects("INSERT INTO t VALUES (GET_LOCK('a', 0))").named_lock,
        LockEffect::Acquire(1)
    );
    // A column's DEFAULT NEXTVAL(s) runs nothing at CREATE.
    assert!(!effects("CREATE TABLE t (id INT DEFAULT NEXTVAL(s))").sequence_value);
}

#[test]
fn an_unqualified_stored_function_is_told_from_the_built_ins() {
    // What ORMs and reports send: built-ins only, reads.
    for sql in [
        "SELECT COUNT(*) AS aggregate FROM users WHERE deleted_at IS NULL",
        "SELECT DATE_FORMAT(created_at, '%Y-%m') ym, SUM(total) FROM orders GROUP BY ym",
        "SELECT IFNULL(MAX(id), 0), COALESCE(a, b), CONCAT_WS(',', a, b) FROM t",
        "SELECT CAST(a AS CHAR), CONVERT(a, SIGNED), JSON_EXTRACT(doc, '$.a') FROM t",
        "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b), RANK() OVER w FROM t WINDOW w AS (ORDER BY a)",
        "SELECT a FROM t WHERE MATCH(a) AGAINST ('x')",
        "SELECT UUID(), NOW(), CURDATE(), UNIX_TIMESTAMP(), DATABASE(), VERSION(), USER()",
        "SELECT LPAD(a, 5, '0'), UPPER(b), LENGTH(d), CHAR_LENGTH(e), ROUND(f, 2), FLOOR(h) FROM t",
        "SELECT TIMESTAMPDIFF(SECOND, a, b), DATE_ADD(a, INTERVAL 1 DAY), IF(a > 1, 'x', 'y') FROM t",
        "SELECT YEAR(d), MONTH(d), DAY(d), EXTRACT(YEAR FROM d), LAST_DAY(d), WEEKDAY(d) FROM t",
        "SELECT SUBSTRING(a, 1, 3), TRIM(b), REPLACE(c, 'a', 'b'), LEFT(d, 2), MID(e, 1, 2) FROM t",
        "SELECT GREATEST(a, b), LEAST(a, b), NULLIF(a, 0), ST_AsText(g), INET_NTOA(i) FROM t",
        "SELECT MD5(a), SHA2(a, 256), HEX(a), FIELD(a, 'x'), FIND_IN_SET(a, b), FORMAT(a, 2) FROM t",
        "SELECT STR_TO_DATE(a, '%d'), `concat`(a, b) FROM t",
        "WITH c (a) AS (SELECT 1) SELECT a FROM c",
        "SELECT a FROM t WHERE b IN (1, 2) AND EXISTS (SELECT 1 FROM u WHERE u.a = t.a)",
        "SELECT CURRENT_TIMESTAMP, REGEXP_LIKE(a, 'x') FROM t",
    ] {
        assert_eq!(class(sql), READ, "{sql}");
        assert!(!effects(sql).calls_procedure, "{sql}");
    }
    // Any other name is a stored function's, which may write (`next_doc_number()` numbers
    // an invoice): on the primary, a write for read-your-writes, and the session keeps its
    // connection, as after a CALL. A grammar word in backticks is a stored function's too.
    for sql in [
        "SELECT next_doc_number()",
        "SELECT id, wf_price(id) FROM items",
        "SELECT a FROM t WHERE b = my_check(a)",
        "WITH c AS (SELECT f(1) AS x) SELECT x FROM c",
        "SELECT `now`()",
        "DO next_doc_number()",
        "SET @n = next_doc_number()",
        "SET time_zone = tz_of(1)",
        // Beside what else makes a statement primary-only, or about the previous one.
        "SELECT @n := next_doc_number()",
        "SELECT next_doc_number() INTO @n",
        "SELECT next_doc_number(), FOUND_ROWS()",
        "SELECT f(id) FROM t FOR UPDATE",
        "SELECT f(), LAST_INSERT_ID()",
        "SET @n = f(), @i = LAST_INSERT_ID()",
    ] {
        assert_eq!(class(sql), p(R::StoredFunction), "{sql}");
        assert!(effects(sql).calls_procedure, "{sql}");
    }
    // A word before `(` that is no call, beside a user variable: that decides.
    assert_eq!(
        class("WITH c (a) AS (SELECT 1) SELECT @x := a FROM c"),
        p(R::UserVariable)
    );
    // A SET of one is run once, where it ran, never replayed.
    assert!(effects("SET time_zone = tz_of(1)").unreplayable);
    assert_eq!(class("SET @x = CONCAT('a', IF(1, 'b', 'c'))"), SET);
    assert_eq!(class("DO SLEEP(0)"), p(R::SideEffectFunction));
}

#[test]
fn what_execute_runs_counts_as_a_write() {
    assert!(effects("EXECUTE s").runs_unread);
    assert!(effects("EXECUTE IMMEDIATE 'INSERT INTO t VALUES (1)'").runs_unread);
    assert!(effects("SELECT 1; EXECUTE s").runs_unread);
    assert!(!effects("PREPARE s FROM 'INSERT INTO t VALUES (1)'").runs_unread);
    assert!(!effects("DEALLOCATE PREPARE s").runs_unread);
}

#[test]
fn use_of_a_double_quoted_name_is_a_schema_change() {
    assert_eq!(class("USE \"wf_b\""), Class::Use("wf_b".into()));
    assert_eq!(class("use \"a\"\"b\""), Class::Use("a\"b".into()));
    assert_eq!(class("USE \"wf_b\" x"), p(R::Unknown));
    assert_eq!(class("USE 'wf_b'"), p(R::Unknown));
}

/// SELECTs as ORMs and tools send them (Hibernate, Doctrine, Laravel, Django, SQLAlchemy,
/// Rails, Sequelize, Prisma, jOOQ, Grafana, Metabase, phpMyAdmin...), each checked to run
/// on MariaDB 10.11: every built-in they call is one, so each is a read; and the ones that
/// must run on the primary (a sequence, a named lock, a stored function in backticks or
/// not, FOR UPDATE) do.
#[test]
fn what_orms_send_is_classified_by_the_functions_it_calls() {
    let lines = |text: &'static str| text.lines().filter(|l| !l.trim().is_empty());
    for sql in lines(include_str!("testdata/orm_reads.sql")) {
        assert_eq!(class(sql), READ, "{sql}");
        assert!(!effects(sql).calls_procedure, "{sql}");
    }
    for sql in lines(include_str!("testdata/orm_primary.sql")) {
        let stored = sql.contains("next_doc_number");
        match class(sql) {
            Class::Primary(r) if stored => assert_eq!(r, R::StoredFunction, "{sql}"),
            Class::Primary(_) => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
}

/// A SET of the client's character set that Switchyard cannot read pins the session: how
/// the server splits its next statements is unknown, so what a misread one runs must stay
/// on the session's own connection. Plain comments and mysqldump's executable wrapper are
/// read through.
#[test]
fn an_unreadable_client_character_set_pins() {
    for (sql, charset) in [
        ("SET NAMES utf8mb4", "utf8mb4"),
        ("SET NAMES gbk /* app */", "gbk"),
        ("/* tag */ SET CHARACTER SET big5", "big5"),
        ("/*!40101 SET NAMES utf8mb4 */", "utf8mb4"),
        ("/*!50503 SET NAMES gbk */;", "gbk"),
        ("/*! SET character_set_client = sjis */", "sjis"),
        // What frameworks send at connect: Laravel's, Rails' (an expression beside NAMES).
        (
            "set names 'utf8mb4' collate 'utf8mb4_unicode_ci'",
            "utf8mb4",
        ),
        (
            "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci, @@SESSION.sql_mode = \
             CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'), \
             @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483",
            "utf8mb4",
        ),
        (
            "SET SESSION character_set_client = 'gbk', sql_mode = ''",
            "gbk",
        ),
        ("SET @@local.character_set_client := latin1", "latin1"),
    ] {
        assert_eq!(
            client_charset(sql.as_bytes()).as_deref(),
            Some(charset),
            "{sql}"
        );
        assert!(!effects(sql).unreplayable, "{sql}");
    }
    for sql in [
        "SET character_set_client = @cs",
        "SET NAMES gbk /*!, character_set_client = latin1 */",
        "/*!90000 SET NAMES gbk */",
        "SET @@session.character_set_client = CONCAT('g', 'bk')",
        "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */",
    ] {
        assert_eq!(client_charset(sql.as_bytes()), None, "{sql}");
        assert!(effects(sql).unreplayable, "{sql}");
    }
    assert!(!effects("SET character_set_results = NULL").unreplayable);
}
