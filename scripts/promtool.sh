#!/usr/bin/env bash
# promtool.sh ARGS — runs Prometheus' promtool, unpacked from Debian's
# prometheus package into .cache/ (installing the package would also start a
# Prometheus server, which the tests do not want).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${KAFKA_CACHE_DIR:-$ROOT/.cache}/prometheus
BIN=$DIR/usr/bin/promtool

if [ ! -x "$BIN" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "[promtool] unpacking Debian's prometheus package into $DIR" >&2
  (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) || {
    [ "$(id -u)" -eq 0 ] && apt-get update -qq && (cd "$tmp" && apt-get download prometheus >/dev/null)
  }
  dpkg-deb -x "$tmp"/prometheus_*.deb "$DIR"
fi
exec "$BIN" "$@"
