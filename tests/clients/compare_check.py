"""Prints what a modern Python driver reports for a fixed set of statements on Switchyard's
data port, so that direct and proxied runs can be compared line for line
(tests/driver_compare.rs): column names and types as the driver reports them, values,
warnings, and an error's code, SQLSTATE and message.
Usage: compare_check.py pymysql|connector-c|connector-pure[-compress] PORT
(user acme_app, db wf_acme; -compress: the compressed protocol, and rows of 100 KB)"""
import sys

driver, port = sys.argv[1], int(sys.argv[2])
args = dict(host="127.0.0.1", port=port, user="acme_app", password="acme_pw",
            database="wf_acme", charset="utf8mb4")
compress = driver.endswith("-compress")
driver = driver.removesuffix("-compress")
if compress:
    args["compress"] = True
if driver == "pymysql":
    import pymysql as db
    conn = db.connect(**args)
    server = conn.get_server_info()
else:
    pure = driver == "connector-pure"
    if not pure:
        import _mysql_connector  # noqa: F401  (before ssl: see admin_check.py)
    import mysql.connector as db
    conn = db.connect(use_pure=pure, collation="utf8mb4_general_ci", **args)
    assert pure or type(conn).__name__ == "CMySQLConnection", type(conn)
    server = conn.server_info
print("server", server)

STATEMENTS = [
    "SELECT * FROM drv_types ORDER BY id",
    "SELECT 'é🐙 ü' AS s, NULL AS n, 1.50 AS dec_lit, CAST(NULL AS DATETIME) AS nd",
    "SELECT 1/0 AS div0",
    "SHOW WARNINGS",
    "SELECT * FROM no_such_table_drv",
    "SELECT DATABASE(), @@character_set_client, @@collation_connection",
]
if compress:
    # Rows larger than one read from the server: their packets reach Switchyard in pieces.
    STATEMENTS += [
        "SELECT REPEAT('x', 100000) AS big, REPEAT('y', 40000) AS big2",
        "SELECT seq, REPEAT(CHAR(65 + seq % 26), 30000 + seq) AS v FROM seq_1_to_20",
    ]
cur = conn.cursor()
for sql in STATEMENTS:
    print("==", sql)
    try:
        cur.execute(sql)
    except db.Error as e:
        # PyMySQL: args (code, message); mysql-connector: errno, sqlstate, msg.
        code = getattr(e, "errno", None) or e.args[0]
        state = getattr(e, "sqlstate", None)
        msg = getattr(e, "msg", None) or e.args[1]
        print(" error", code, state, msg)
        continue
    for d in cur.description:
        print(" column", repr(d))
    for row in cur.fetchall():
        # Long values by their length and ends, not 100 KB of output per row.
        row = tuple(v if not isinstance(v, (str, bytes)) or len(v) < 1000
                    else (len(v), v[:8], v[-8:]) for v in row)
        print(" row", repr(row))
    print(" warnings", getattr(cur, "warning_count", None))
cur.close()
conn.close()
print("done")
