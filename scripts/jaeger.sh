#!/usr/bin/env bash
# jaeger.sh — build and run Jaeger v2 (an OpenTelemetry-collector distribution)
# on 127.0.0.1: the OTLP/HTTP receiver the services export their spans to, and
# the query API the tracing tests (and people) read the traces from.
#
# usage: scripts/jaeger.sh build|build-bg|start|stop|status|wait|path
#        scripts/jaeger.sh trace TRACE_ID | last [SERVICE]   (a trace as a tree of spans,
#        scripts/trace-tree.py; last: the latest of SERVICE, command-service)
# env:   JAEGER_OTLP_PORT (4318), JAEGER_QUERY_PORT (16686), STATE_DIR (<repo>/.local/run),
#        KAFKA_CACHE_DIR (<repo>/.cache), JAEGER_WAIT_SECONDS (60)
#
# build compiles the pinned version once from the Go module proxy into
# CACHE/jaeger/jaeger-<version> (~2 min of downloads, 5-10 min of compiling on 2 cores:
# 579 s in all here, 2.2 GB peak, a 121 MB binary, 1.3 GB of modules kept); GOPATH, the
# module cache and the build cache (dropped afterwards) stay under CACHE/jaeger
# too, so a fresh machine builds it the same way and nothing lands in ~/go.
# `go install pkg@version` refuses the module (its go.mod has replace
# directives), hence the scratch module that requires it as a tool.
#
# start writes a configuration of its own (STATE_DIR/jaeger.yaml) in which every
# listener is on 127.0.0.1 and on a port derived from the two above, so that
# parallel stacks do not clash on Jaeger's defaults (4317, 4318, 5778, 5779,
# 6831, 6832, 8888, 9411, 13133, 14250, 14268, 16685, 16686, 27777, 27778):
#   JAEGER_OTLP_PORT     OTLP/HTTP receiver (POST /v1/traces)
#   JAEGER_QUERY_PORT    query API (GET /api/traces/<id>, /api/traces?service=…); a binary
#                        built from the module has no UI assets (the release images do:
#                        docker-compose.yml's jaeger), so / answers a placeholder page
#   JAEGER_QUERY_PORT-1  query gRPC API (jaeger_query always serves it)
# and nothing else: no OTLP/gRPC, Jaeger or Zipkin receivers, no sampling,
# health-check, expvar or zpages extensions, the collector's own metrics off
# (ready = the query API answers). Traces are kept in memory (at most 100000)
# and lost at stop; the log is STATE_DIR/jaeger.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/proc.sh
. "$ROOT/scripts/lib/proc.sh"
JAEGER_VERSION=v1.76.0
OTLP_PORT=${JAEGER_OTLP_PORT:-4318}
QUERY_PORT=${JAEGER_QUERY_PORT:-16686}
STATE_DIR=${STATE_DIR:-$ROOT/.local/run}
CACHE=${KAFKA_CACHE_DIR:-$ROOT/.cache}
DIR=$CACHE/jaeger
BIN=$DIR/jaeger-$JAEGER_VERSION
WAIT=${JAEGER_WAIT_SECONDS:-60}
LOG=$STATE_DIR/jaeger.log
PIDFILE=$STATE_DIR/jaeger.pid
CONFIG=$STATE_DIR/jaeger.yaml

say() { echo "[jaeger] $*"; }
die() { echo "[jaeger] error: $*" >&2; exit 1; }

build() {
  [ -x "$BIN" ] && return 0
  local go
  go=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$go" ] || die "go not found (run make deps-test)"
  # Its go.mod asks for Go 1.24.6; with GOTOOLCHAIN=local an older go would
  # fail deep in the build (Debian 12's golang-go is 1.19): say so at once.
  local have
  have=$("$go" env GOVERSION 2>/dev/null || echo go0)
  [ "$(printf '%s\n' go1.24.6 "$have" | sort -V | head -n1)" = go1.24.6 ] ||
    die "Jaeger $JAEGER_VERSION needs Go 1.24.6 or later; $go is $have"
  local src=$DIR/src blog=$DIR/build.log
  mkdir -p "$src"
  # A lock, so that two stacks (or worktrees sharing the cache) do not build it twice
  # at once: the second waits for the first and then finds the binary.
  exec 9>"$DIR/.build.lock"
  if ! flock -n 9; then
    say "another build of $JAEGER_VERSION is running: waiting for it (up to 30 min)"
    flock -w 1800 9 || die "the other build did not finish within 30 min (see $blog)"
    [ ! -x "$BIN" ] || { say "the other build made $BIN"; return 0; }
    say "the other build failed (see $blog): building here"
  fi
  export GOPATH=$DIR/gopath GOMODCACHE=$DIR/gopath/pkg/mod GOCACHE=$DIR/gocache
  export GOFLAGS=-modcacherw GOTOOLCHAIN=local
  say "building Jaeger $JAEGER_VERSION from the Go module proxy into $BIN (once; ~2 min of downloads, 5-10 min of compiling; log $blog)"
  local t0=$SECONDS
  (
    cd "$src"
    [ -f go.mod ] || "$go" mod init jaeger-build
    say "1/2 go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >&3
    "$go" get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
    say "2/2 go build ($((SECONDS - t0)) s so far)" >&3
    "$go" build -trimpath -o "$BIN.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
  ) 3>&1 >"$blog" 2>&1 || { tail -n 30 "$blog" >&2; rm -f "$BIN.tmp"; die "build failed (see $blog)"; }
  mv "$BIN.tmp" "$BIN"
  # The build cache is only needed again for another version: drop it (GBs).
  rm -rf "$GOCACHE"
  say "built $BIN in $((SECONDS - t0)) s"
}

# build-bg: the build, detached, when the binary is missing (make deps-test starts
# it early, so that it runs while the unit tests do; `build` then waits for it).
build_bg() {
  [ -x "$BIN" ] && return 0
  mkdir -p "$DIR"
  exec 9>"$DIR/.build.lock"
  flock -n 9 || { say "a build of $JAEGER_VERSION is already running (log $DIR/build.log)"; return 0; }
  flock -u 9
  say "building $JAEGER_VERSION in the background (log $DIR/build-bg.log); the integration tests wait for it"
  setsid nohup "$0" build >"$DIR/build-bg.log" 2>&1 </dev/null &
}

pid() {  # prints Jaeger's pid if it is running
  local p
  p=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -qa "jaeger-" "/proc/$p/cmdline" 2>/dev/null \
    && echo "$p"
}

port_open() { { : >"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; }

write_config() {
  cat >"$CONFIG" <<EOF
# Written by scripts/jaeger.sh start: every listener on 127.0.0.1, on ports of this stack.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:$QUERY_PORT
    grpc:
      endpoint: 127.0.0.1:$((QUERY_PORT - 1))
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$OTLP_PORT
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
EOF
}

# Ready: the query API answers and the OTLP receiver takes connections.
ready() {
  curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$QUERY_PORT/api/services" 2>/dev/null &&
    port_open "$OTLP_PORT"
}

wait_ready() {
  local deadline=$((SECONDS + WAIT)) p
  p=$(cat "$PIDFILE" 2>/dev/null) || true
  until ready; do
    # Alive, not pid: just after the start the process may still be
    # setsid or nohup, before their exec of Jaeger.
    if [ -z "$p" ] || ! proc_alive "$p" || [ $SECONDS -ge $deadline ]; then
      say "not ready on 127.0.0.1:$QUERY_PORT (query) / $OTLP_PORT (OTLP); last lines of $LOG:" >&2
      tail -n 30 "$LOG" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

start() {
  [ -x "$BIN" ] || die "no Jaeger binary $BIN: run scripts/jaeger.sh build (make deps-test)"
  if [ -n "$(pid)" ]; then say "already running (pid $(pid)); query http://127.0.0.1:$QUERY_PORT"; return 0; fi
  local port t0=$SECONDS
  for port in "$OTLP_PORT" "$QUERY_PORT" $((QUERY_PORT - 1)); do
    ! port_open "$port" || die "port $port on 127.0.0.1 is already in use"
  done
  mkdir -p "$STATE_DIR"
  write_config
  setsid nohup "$BIN" --config "$CONFIG" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  wait_ready
  say "started (pid $(pid)) in $((SECONDS - t0)) s: OTLP/HTTP http://127.0.0.1:$OTLP_PORT, query API http://127.0.0.1:$QUERY_PORT/api/traces; log $LOG"
}

# SIGTERM, then SIGKILL after 10 s; waits until it is gone.
stop() {
  local p i
  p=$(pid) || { rm -f "$PIDFILE"; say "not running"; return 0; }
  kill -CONT "$p" 2>/dev/null || true  # a frozen one must act on it
  kill -TERM "$p"
  for ((i = 0; i < 50; i++)); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$p" 2>/dev/null; then
    say "still running after 10 s, killing"
    kill -KILL "$p"
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  say "stopped"
}

status() {
  if [ -n "$(pid)" ]; then
    say "running (pid $(pid)): OTLP/HTTP http://127.0.0.1:$OTLP_PORT, query http://127.0.0.1:$QUERY_PORT"
  else
    say "not running"
    return 3
  fi
}

# GET <query API><path> printed as trees (the binary built here has no UI).
show() {
  local out code
  out=$(curl -sS -m 10 -w '\n%{http_code}' "http://127.0.0.1:$QUERY_PORT$1") ||
    die "no answer from the query API on 127.0.0.1:$QUERY_PORT (scripts/jaeger.sh status)"
  code=${out##*$'\n'}
  [ "$code" = 200 ] || die "no trace in Jaeger for $1 (HTTP $code)"
  python3 "$ROOT/scripts/trace-tree.py" <<<"${out%$'\n'*}" || die "no trace in Jaeger for $1"
}

case ${1:-} in
  build) build ;;
  build-bg) build_bg ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  wait) wait_ready; say "ready: query http://127.0.0.1:$QUERY_PORT" ;;
  path) echo "$BIN" ;;
  trace)
    [[ ${2:-} =~ ^[0-9a-f]{1,32}$ ]] || die "trace: a trace id (up to 32 lowercase hex digits) expected, not '${2:-}'"
    show "/api/traces/$2"
    ;;
  last) show "/api/traces?service=${2:-command-service}&lookback=1h&limit=1" ;;
  *) echo "usage: $0 build|build-bg|start|stop|status|wait|path|trace TRACE_ID|last [SERVICE]" >&2; exit 2 ;;
esac
