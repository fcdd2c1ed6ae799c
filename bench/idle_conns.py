"""Opens N client connections and keeps them idle until a hold file disappears.

Usage: idle_conns.py HOST PORT USER PASSWORD DB N HOLD_FILE

Prints "READY <n>" once all N are logged in (or "FAILED <n> <error>" and exits 1), then
polls HOLD_FILE; when it is gone, closes everything and exits. Used by bench/run.sh to
measure the proxy's memory per idle client connection.
"""

import os
import sys
import time

import pymysql


def main() -> int:
    host, port, user, password, db, n, hold = sys.argv[1:8]
    conns = []
    try:
        for _ in range(int(n)):
            # autocommit=None: send nothing after login, like an idle pooled connection.
            conns.append(
                pymysql.connect(
                    host=host,
                    port=int(port),
                    user=user,
                    password=password,
                    database=db,
                    autocommit=None,
                    connect_timeout=30,
                )
            )
    except Exception as e:  # report how far it got, then let the harness decide
        print(f"FAILED {len(conns)} {e}", flush=True)
        return 1
    print(f"READY {len(conns)}", flush=True)
    while os.path.exists(hold):
        time.sleep(0.1)
    for c in conns:
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
