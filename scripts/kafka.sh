#!/usr/bin/env bash
# kafka.sh — fetch and run a single-node Apache Kafka 3.9 (KRaft) broker on 127.0.0.1.
#
# usage: scripts/kafka.sh fetch|start|stop|status|wait
#        scripts/kafka.sh topics|groups ARGS...   (kafka-topics / kafka-consumer-groups)
# env:   KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), STATE_DIR (<repo>/.local/run),
#        KAFKA_CACHE_DIR (<repo>/.cache), KAFKA_HEAP_OPTS ("-Xms256m -Xmx512m"),
#        KAFKA_WAIT_SECONDS (60)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KAFKA_VERSION=3.9.1
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
STATE_DIR=${STATE_DIR:-$ROOT/.local/run}
CACHE=${KAFKA_CACHE_DIR:-$ROOT/.cache}
LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
DATA=$STATE_DIR/kafka
LOG=$STATE_DIR/kafka.log
PIDFILE=$STATE_DIR/kafka.pid
BOOTSTRAP=127.0.0.1:$KAFKA_PORT
LOG4J=file:$ROOT/scripts/kafka/log4j.properties

say() { echo "[kafka] $*"; }
die() { echo "[kafka] error: $*" >&2; exit 1; }

fetch() {
  local stamp=$LIBS/.fetched
  [ -f "$stamp" ] && return 0
  command -v mvn >/dev/null || die "mvn not found (run make deps)"
  say "fetching Kafka $KAFKA_VERSION jars with Maven into $LIBS"
  rm -rf "$LIBS"
  # (Debian's Maven 3.8 prints stray colour codes even with -q -B: strip them)
  mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$LIBS" -f "$ROOT/scripts/kafka/pom.xml" 2>&1 | sed 's/\x1b\[[0-9;]*m//g'
  touch "$stamp"
}

pid() {  # prints the broker's pid if it is running
  local p
  p=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -qa kafka.Kafka "/proc/$p/cmdline" 2>/dev/null \
    && echo "$p"
}

java_() { java -cp "$LIBS/*" -Dlog4j.configuration="$LOG4J" "$@"; }

write_config() {
  mkdir -p "$DATA"
  cat >"$STATE_DIR/kafka-server.properties" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
log.dirs=$DATA
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

port_open() { { : >"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; }

ready() {  # the broker answers a metadata request and lists itself
  if command -v kcat >/dev/null; then
    kcat -b "$BOOTSTRAP" -L -m 2 2>/dev/null | grep -q '1 brokers:'
  else
    port_open "$KAFKA_PORT"
  fi
}

wait_ready() {
  local deadline=$((SECONDS + ${KAFKA_WAIT_SECONDS:-60}))
  until ready; do
    if { [ -f "$PIDFILE" ] && [ -z "$(pid)" ]; } || [ $SECONDS -ge $deadline ]; then
      say "not ready on $BOOTSTRAP; last lines of $LOG:" >&2
      tail -n 30 "$LOG" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.3
  done
}

start() {
  if [ -n "$(pid)" ]; then say "already running (pid $(pid)) on $BOOTSTRAP"; return 0; fi
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    ! port_open "$port" || die "port $port on 127.0.0.1 is already in use"
  done
  [ -f "$LIBS/.fetched" ] || die "no Kafka jars in $LIBS: run make deps (scripts/deps.sh run)"
  write_config
  if [ ! -f "$DATA/meta.properties" ]; then
    # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding;
    # one starting with '-' would be read by StorageTool as an option.
    local id=-
    while [ "${id:0:1}" = - ]; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    java_ kafka.tools.StorageTool format -t "$id" -c "$STATE_DIR/kafka-server.properties" >/dev/null
  fi
  local t0=$SECONDS
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM options
  setsid nohup java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -cp "$LIBS/*" -Dlog4j.configuration="$LOG4J" \
    kafka.Kafka "$STATE_DIR/kafka-server.properties" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  wait_ready
  say "started (pid $(pid)) on $BOOTSTRAP in $((SECONDS - t0)) s; data $DATA, log $LOG"
}

stop() {
  local p i
  p=$(pid) || { say "not running"; rm -f "$PIDFILE"; return 0; }
  kill -TERM "$p"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$p" 2>/dev/null; then
    say "still running after 20 s, killing"
    kill -KILL "$p"
    while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  say "stopped"
}

status() {
  if [ -n "$(pid)" ]; then say "running (pid $(pid)) on $BOOTSTRAP"; else say "not running"; return 3; fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  wait) wait_ready; say "ready on $BOOTSTRAP" ;;
  topics) shift; java_ org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" "$@" ;;
  groups) shift; java_ org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$BOOTSTRAP" "$@" ;;
  *) echo "usage: $0 fetch|start|stop|status|wait|topics ARGS|groups ARGS" >&2; exit 2 ;;
esac
