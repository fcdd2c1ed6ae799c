"""Prints what MariaDB Connector/Python (libmariadb) sees for one feature, so that direct and
proxied runs can be compared line for line. Usage: mariadb_check.py PORT TAG MODE, where TAG
keeps each run's tables apart (it is never printed) and MODE is one of the functions below."""
import sys

import mariadb
from mariadb.constants import CURSOR, FIELD_TYPE, INDICATOR

PORT, TAG, MODE = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def connect(**kw):
    conn = mariadb.connect(host="127.0.0.1", port=PORT, user="acme_app", password="acme_pw",
                           database="wf_acme", **kw)
    conn.autocommit = True
    return conn


def table(cur, name, columns):
    t = f"mdb_{name}_{TAG}"
    cur.execute(f"DROP TABLE IF EXISTS {t}")
    cur.execute(f"CREATE TABLE {t} ({columns})")
    return t


def bulk():
    """executemany takes the COM_STMT_BULK_EXECUTE path: one command, all rows counted,
    indicator variables (which need the bulk capability) honoured."""
    conn = connect()
    cur = conn.cursor()
    t = table(cur, "bulk", "id INT PRIMARY KEY, name VARCHAR(20) DEFAULT 'dflt', "
                           "note VARCHAR(20) DEFAULT 'n' NULL")
    rows = [(1, "a", "x"), (2, INDICATOR.DEFAULT, "y"), (3, "c", INDICATOR.NULL),
            (4, INDICATOR.DEFAULT, INDICATOR.DEFAULT)]
    cur.executemany(f"INSERT INTO {t} VALUES (?, ?, ?)", rows)
    print("bulk rowcount", cur.rowcount)
    cur.executemany(f"UPDATE {t} SET note = ? WHERE id = ?", [("u1", 1), (INDICATOR.NULL, 2)])
    print("bulk update rowcount", cur.rowcount)
    cur.execute(f"SELECT id, name, note FROM {t} ORDER BY id")
    for row in cur.fetchall():
        print(" row:", row)
    try:
        cur.executemany(f"INSERT INTO {t} VALUES (?, ?, ?)", [(5, "e", "e"), (1, "dup", "d")])
    except mariadb.Error as e:
        print("bulk error", e.errno, e.sqlstate)
    conn.close()


def json_type():
    """Extended type info: a JSON column is reported as JSON, not as the BLOB it is stored as."""
    conn = connect()
    cur = conn.cursor()
    t = table(cur, "json", "id INT PRIMARY KEY, j JSON, p POINT")
    cur.execute(f"INSERT INTO {t} VALUES (1, '{{\"a\": [1, 2]}}', POINT(1, 2))")
    for prepared in (False, True):
        c = conn.cursor(prepared=prepared)
        c.execute(f"SELECT id, j FROM {t} WHERE id = ?", (1,))
        # Name, type, sizes, nullability and flags (the table names carry the run's tag).
        print("prepared" if prepared else "text", "description:", [d[:8] for d in c.description])
        print(" json type is JSON:", c.description[1][1] == FIELD_TYPE.JSON)
        print(" rows:", c.fetchall())
        c.close()
    conn.close()


def cursors():
    """Two read-only server-side cursors on one connection, fetched interleaved, with other
    statements run between fetches."""
    conn = connect()
    cur = conn.cursor()
    t = table(cur, "cursor", "id INT PRIMARY KEY, v VARCHAR(10)")
    cur.executemany(f"INSERT INTO {t} VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 8)])
    c1 = conn.cursor(cursor_type=CURSOR.READ_ONLY, prefetch_size=2)
    c2 = conn.cursor(cursor_type=CURSOR.READ_ONLY, prefetch_size=3)
    c1.execute(f"SELECT id, v FROM {t} WHERE id <= ? ORDER BY id", (5,))
    c2.execute(f"SELECT v, id * 10 FROM {t} ORDER BY id DESC")
    for _ in range(4):
        print("c1", c1.fetchone(), "c2", c2.fetchone())
    other = conn.cursor()
    other.execute("SELECT COUNT(*) FROM " + t)
    print("between fetches", other.fetchall())
    print("c2 rest", c2.fetchall())
    print("c1 rest", c1.fetchall())
    # Executed again: the first cursor of the statement ends, a new one starts.
    c1.execute(f"SELECT id, v FROM {t} WHERE id <= ? ORDER BY id", (2,))
    print("c1 again", c1.fetchall())
    c1.close()
    c2.close()
    cur.execute("SELECT 1")
    print("after cursors", cur.fetchall())
    conn.close()


def compress():
    """The compressed protocol: small and large answers, text and binary."""
    conn = connect(compress=True)
    cur = conn.cursor()
    cur.execute("SELECT 1, 'x', NULL")
    print("small", cur.fetchall())
    cur.execute("SELECT REPEAT('abc', 200000) AS big, LENGTH(REPEAT(UUID(), 1))")
    (big, n) = cur.fetchone()
    print("big", len(big), big[:6], n)
    t = table(cur, "compress", "id INT PRIMARY KEY, b LONGBLOB")
    payload = bytes(range(256)) * 300
    cur.execute(f"INSERT INTO {t} VALUES (?, ?)", (1, payload))
    c = conn.cursor(prepared=True)
    c.execute(f"SELECT id, b FROM {t} WHERE id = ?", (1,))
    (i, b) = c.fetchone()
    print("blob", i, len(b), b == payload)
    cur.execute("SELECT seq FROM seq_1_to_3000")
    rows = cur.fetchall()
    print("rows", len(rows), rows[0], rows[-1])
    try:
        cur.execute("SELECT * FROM no_such_table")
    except mariadb.Error as e:
        print("error", e.errno, e.sqlstate)
    conn.close()


{"bulk": bulk, "json": json_type, "cursors": cursors, "compress": compress}[MODE]()
