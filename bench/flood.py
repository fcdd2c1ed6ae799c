"""Floods Switchyard's classifier from one connection until a hold file disappears.

Usage: flood.py HOST PORT USER PASSWORD DB HOLD_FILE [cheap]

Sends, in turn, point selects with IN-lists of every length from 1 to 10,000 (each a
distinct statement text; lists of literals share one digest, so they must not fill or churn
the router's cache) and, every 50th statement, a 1 MB SELECT (past the classifier's parse
limit: it goes to the primary unparsed, after one scan for what pins or routes it): in turn
one of a single string literal and one of 500,000 words, which the server rejects at its
third word (the classifier's worst case: 500,000 tokens that cost the server nothing).
Prints how many of each it sent when the hold file is gone. Used by bench/flood.sh.

With `cheap`, sends one short statement over and over instead (its digest cached after the
first): the control, a neighbour as busy as the flood but costing the classifier nothing.
"""

import os
import sys

import pymysql


def main() -> int:
    host, port, user, password, db, hold = sys.argv[1:7]
    conn = pymysql.connect(
        host=host, port=int(port), user=user, password=password, database=db
    )
    if sys.argv[7:] == ["cheap"]:
        return cheap(conn, hold)
    bigs_text = [
        "SELECT 1 FROM DUAL WHERE '" + "x" * (1 << 20) + "' = ''",
        "SELECT 1 " + "x " * (1 << 19),
    ]
    # Every prefix of one list, so a statement costs a slice, not a join.
    ids = ",".join(str(i) for i in range(1, 10_001))
    ends = [i for i, ch in enumerate(ids) if ch == ","] + [len(ids)]
    lists = bigs = 0
    length = 0
    with conn.cursor() as cur:
        while os.path.exists(hold):
            length = length % 10_000 + 1
            # FROM DUAL: the server's work is negligible, so the flood is the classifier's.
            cur.execute(f"SELECT 1 FROM DUAL WHERE 0 IN ({ids[: ends[length - 1]]})")
            cur.fetchall()
            lists += 1
            if lists % 50 == 0:
                try:
                    cur.execute(bigs_text[bigs % 2])
                    cur.fetchall()
                except pymysql.err.ProgrammingError as e:
                    if e.args[0] != 1064:  # the words' syntax error is expected
                        raise
                bigs += 1
    print(f"sent {lists} IN-list selects (lengths up to {max(length, 1)}), {bigs} 1 MB selects")
    return 0


def cheap(conn, hold: str) -> int:
    sent = 0
    with conn.cursor() as cur:
        while os.path.exists(hold):
            cur.execute("SELECT 1 FROM DUAL WHERE 0 IN (1)")
            cur.fetchall()
            sent += 1
    print(f"sent {sent} cheap selects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
