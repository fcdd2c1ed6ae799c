"""Prints what PyMySQL decodes for a fixed set of queries, so that direct and proxied runs
can be compared line for line. Usage: pymysql_check.py PORT"""
import sys

import pymysql

conn = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="globex_app",
                       password="globex_pw", database="wf_globex", charset="utf8mb4",
                       binary_prefix=True)
with conn.cursor() as cur:
    for sql in ["SELECT * FROM diff_types ORDER BY id",
                "SELECT b, vb, bl FROM diff_types WHERE id = 1",
                "SELECT 1/0", "SHOW WARNINGS",
                "SELECT CONCAT('é', 0x00, '🐙') AS s"]:
        cur.execute(sql)
        print(sql)
        print(" description:", cur.description)
        for row in cur.fetchall():
            print(" row:", repr(row))
    cur.execute("SELECT b FROM diff_types WHERE id = %s", (1,))
    (b,) = cur.fetchone()
    assert isinstance(b, bytes) and b == b"\x00\xff\x10\xab", b
    print("binary ok", b.hex())
conn.close()
