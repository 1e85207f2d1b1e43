#!/usr/bin/env bash
# promtool.sh ARGS — runs Prometheus' promtool, which `make deps-test`
# (scripts/deps.sh test) unpacks from Debian's prometheus package into
# .cache/ (installing the package would also start a Prometheus server).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${KAFKA_CACHE_DIR:-$ROOT/.cache}/prometheus/usr/bin/promtool
[ -x "$BIN" ] || { echo "promtool.sh: $BIN missing: run make deps-test" >&2; exit 127; }
exec "$BIN" "$@"
