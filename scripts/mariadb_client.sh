#!/usr/bin/env bash
# Installs MariaDB Connector/Python (PyPI `mariadb`, built against Debian's libmariadb) into
# its own venv, for tests/mariadb_client.rs. Idempotent: does nothing when it is there.
#   venv: ${SWITCHYARD_MARIADB_VENV:-/tmp/switchyard-mariadb-venv}
set -euo pipefail

VENV="${SWITCHYARD_MARIADB_VENV:-/tmp/switchyard-mariadb-venv}"
# Pinned: the tests compare its behaviour directly and through Switchyard.
MARIADB_PY_VERSION=1.1.14

if [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c "import mariadb, sys; sys.exit(mariadb.__version__ != '$MARIADB_PY_VERSION')" 2>/dev/null; then
    echo "mariadb $MARIADB_PY_VERSION present in $VENV"
    exit 0
fi

# The connector is a C extension: it needs libmariadb's headers, mariadb_config (from
# libmariadb-dev), a compiler and Python's headers.
missing=()
for pkg in libmariadb-dev pkg-config python3-dev python3-venv gcc; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's interpreter, whose headers python3-dev installed.
/usr/bin/python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "mariadb==$MARIADB_PY_VERSION"
"$VENV/bin/python" -c "import mariadb; print('mariadb', mariadb.__version__, 'in $VENV')"
