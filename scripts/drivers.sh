#!/usr/bin/env bash
# Installs the client drivers tests/admin_drivers.rs and tests/driver_compare.rs run, when
# missing (a no-op in well under a second when all are present):
#   Debian: php-cli + php-mysql (mysqli, PDO), libmariadb-java (MariaDB Connector/J) and a JDK,
#           golang-go + golang-github-go-sql-driver-mysql-dev, nodejs + npm, python3-venv;
#   PyPI:   tests/clients/requirements.txt (PyMySQL, mysql-connector-python) into the venv
#           ${SWITCHYARD_VENV:-/tmp/switchyard-venv}, beside Debian's older python3-pymysql;
#   npm:    tests/clients/node (mysql2) by `npm ci` from its package-lock.json.
# Usage: scripts/drivers.sh   (as root on a fresh machine; called by scripts/test.sh)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${SWITCHYARD_VENV:-/tmp/switchyard-venv}"
NODE_DIR=tests/clients/node
log() { printf '[drivers] %s\n' "$*"; }
die() { printf '[drivers] error: %s\n' "$*" >&2; exit 1; }

pkg_installed() { dpkg -s "$1" >/dev/null 2>&1; }

debian_packages() {
    local missing=() p
    for p in php-cli php-mysql libmariadb-java golang-go golang-github-go-sql-driver-mysql-dev \
        python3-venv; do
        pkg_installed "$p" || missing+=("$p")
    done
    # A JDK and node may come from elsewhere than Debian (as on the developers' machines):
    # only the commands matter.
    command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root: install them first"
    log "installing Debian packages: ${missing[*]}"
    local s=$SECONDS
    {
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update &&
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
                --no-install-recommends "${missing[@]}"
    } </dev/null || die "apt-get failed"
    log "Debian packages installed in $((SECONDS - s))s"
}

# The venv is current when it imports exactly the pinned versions.
venv_current() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - tests/clients/requirements.txt <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        assert version(name) == want, (name, version(name), want)
import pymysql, mysql.connector
EOF
}

python_packages() {
    venv_current && return 0
    log "installing PyPI packages into $VENV"
    local s=$SECONDS
    [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r tests/clients/requirements.txt
    venv_current || die "venv $VENV does not import the pinned packages after pip install"
    log "PyPI packages installed in $((SECONDS - s))s"
}

# npm ci records the lock file's hash copy in node_modules/.package-lock.json.
node_packages() {
    if [ -f "$NODE_DIR/node_modules/.package-lock.json" ] &&
        [ -f "$NODE_DIR/node_modules/mysql2/package.json" ] &&
        [ "$NODE_DIR/node_modules/.package-lock.json" -nt "$NODE_DIR/package-lock.json" ]; then
        return 0
    fi
    log "installing npm packages in $NODE_DIR"
    local s=$SECONDS
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    log "npm packages installed in $((SECONDS - s))s"
}

debian_packages
python_packages
node_packages
