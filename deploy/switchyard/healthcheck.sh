#!/bin/bash
# Container health check for Switchyard: GET an http:// URL (default
# http://127.0.0.1:9090/health) and succeed only on a 200 answer. Plain bash (/dev/tcp), so
# the runtime image needs no curl or wget.
#
# /health (the process answers) and /ready (config loaded, listeners serving) are served on
# [server].http_listen: without that key the check fails and the container reports
# "unhealthy" while the proxy itself works. tests/admin.rs runs this script against both.
set -uo pipefail

url="${1:-http://127.0.0.1:9090/health}"
rest="${url#http://}"
[ "$rest" != "$url" ] || { echo "only http:// URLs: $url" >&2; exit 2; }
hostport="${rest%%/*}"
path="${rest#"$hostport"}"
path="/${path#/}"
host="${hostport%:*}"
port="${hostport##*:}"
[ "$port" != "$hostport" ] || port=80

exec 3<>"/dev/tcp/${host}/${port}" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$hostport" >&3
IFS= read -r -t 3 status <&3 || exit 1
exec 3<&-
case "$status" in
    "HTTP/1."[01]" 200"*) exit 0 ;;
    *) echo "unhealthy: ${status%$'\r'}" >&2; exit 1 ;;
esac
