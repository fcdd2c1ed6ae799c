"""What a driver sees when the server ends its idle session (its own wait_timeout) while it
holds a temporary table: the driver must learn that the connection ended and reconnect on
its own, with the temporary table gone, as directly. Usage: reconnect_check.py DRIVER PORT,
DRIVER pymysql or mariadb (libmariadb, MariaDB Connector/Python). Prints comparable lines."""
import sys
import time

DRIVER, PORT = sys.argv[1], int(sys.argv[2])
ARGS = dict(host="127.0.0.1", port=PORT, user="globex_app", password="globex_pw",
            database="wf_globex")


def connect():
    if DRIVER == "pymysql":
        import pymysql
        conn = pymysql.connect(**ARGS, autocommit=True)
        return conn, pymysql.err.MySQLError
    import mariadb
    conn = mariadb.connect(**ARGS, autocommit=True)
    conn.auto_reconnect = True
    return conn, mariadb.Error


def handshake_id(conn):
    """The connection id the handshake gave (CONNECTION_ID() through Switchyard names a
    backend connection, see docs/routing.md)."""
    return conn.thread_id() if DRIVER == "pymysql" else conn.connection_id


def one(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    return cur.fetchall() if cur.description else None


conn, Error = connect()
before = handshake_id(conn)
one(conn, "SET SESSION wait_timeout = 2")
one(conn, "CREATE TEMPORARY TABLE wt (a INT)")
one(conn, "INSERT INTO wt VALUES (1)")
print("temporary table rows", one(conn, "SELECT COUNT(*) FROM wt")[0][0])
# Longer than wait_timeout: the server (or Switchyard, as the server would) ends the session.
time.sleep(3.5)
try:
    if DRIVER == "pymysql":
        conn.ping(reconnect=True)
    else:
        conn.ping()
    print("ping ok")
except Error as e:
    print("ping failed", type(e).__name__)
    conn, Error = connect()
after = handshake_id(conn)
print("a new connection", after != before)
try:
    one(conn, "SELECT COUNT(*) FROM wt")
    print("temporary table survived")
except Error as e:
    print("temporary table gone", getattr(e, "errno", None) or e.args[0])
print("works", one(conn, "SELECT 1")[0][0])
