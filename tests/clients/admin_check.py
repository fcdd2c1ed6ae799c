"""Logs in to Switchyard's admin port with a modern Python driver and runs the admin
commands tests/admin_drivers.rs checks, printing each answer in the format it parses:
  == <statement> / columns<TAB>name... / row<TAB>value... (NULL as \\N)
Usage: admin_check.py pymysql|connector-c|connector-pure   (SY_ADMIN_* and SY_TENANT in env)"""
import os
import sys

driver = sys.argv[1]
env = os.environ
args = dict(host="127.0.0.1", port=int(env["SY_ADMIN_PORT"]), user=env["SY_ADMIN_USER"],
            password=env["SY_ADMIN_PASSWORD"])
if driver == "pymysql":
    import pymysql
    print("driver PyMySQL", pymysql.__version__)
    conn = pymysql.connect(**args)
else:
    pure = driver == "connector-pure"
    if not pure:
        # The C extension links the newer OpenSSL its wheel ships (same soname as Debian's):
        # loaded before anything else, it brings that one in; loaded after Python's own ssl
        # module, it finds Debian's 3.0 and fails to load (HAVE_CEXT False).
        import _mysql_connector  # noqa: F401
    import mysql.connector
    if not pure:
        from mysql.connector import HAVE_CEXT
        assert HAVE_CEXT, "mysql-connector-python's C extension is not available"
    conn = mysql.connector.connect(use_pure=pure, **args)
    print("driver mysql-connector-python", mysql.connector.__version__, type(conn).__name__)

tenant = env["SY_TENANT"]
cur = conn.cursor()
for sql in ["SHOW BACKENDS", f"PAUSE TENANT {tenant} TIMEOUT 5", "SHOW TENANTS",
            f"RESUME TENANT {tenant}"]:
    cur.execute(sql)
    print("==", sql)
    print("columns", *[d[0] for d in cur.description], sep="\t")
    for row in cur.fetchall():
        print("row", *["\\N" if v is None else v for v in row], sep="\t")
cur.close()
conn.ping()
conn.close()
print("done")
