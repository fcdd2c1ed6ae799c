"""Prints what a modern Python driver reports for a fixed set of statements on Switchyard's
data port, so that direct and proxied runs can be compared line for line
(tests/driver_compare.rs): column names and types as the driver reports them, values,
warnings, and an error's code, SQLSTATE and message.
Usage: compare_check.py pymysql|connector-c|connector-pure PORT   (user acme_app, db wf_acme)"""
import sys

driver, port = sys.argv[1], int(sys.argv[2])
args = dict(host="127.0.0.1", port=port, user="acme_app", password="acme_pw",
            database="wf_acme", charset="utf8mb4")
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
        print(" row", repr(row))
    print(" warnings", getattr(cur, "warning_count", None))
cur.close()
conn.close()
print("done")
