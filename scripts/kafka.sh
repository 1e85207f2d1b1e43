#!/usr/bin/env bash
# kafka.sh — fetch and run Apache Kafka 3.9 (KRaft) on 127.0.0.1: one broker, or
# with KAFKA_NODES=N a cluster of N combined broker+controller nodes.
#
# usage: scripts/kafka.sh fetch|start|stop|status|wait
#        scripts/kafka.sh topics|groups ARGS...   (kafka-topics / kafka-consumer-groups)
#        scripts/kafka.sh start-node|stop-node|kill-node|wipe-node|pid N   (one node of the cluster)
#        scripts/kafka.sh leader|isr TOPIC PARTITION   (the node id leading it / its ISR)
# env:   KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), STATE_DIR (<repo>/.local/run),
#        KAFKA_CACHE_DIR (<repo>/.cache), KAFKA_HEAP_OPTS ("-Xms256m -Xmx512m"; a cluster's
#        nodes "-Xms128m -Xmx384m" each), KAFKA_JVM_PERFORMANCE_OPTS (Kafka's own: see
#        launch), KAFKA_WAIT_SECONDS (60), KAFKA_NODES (1)
#
# Each node's garbage collections are logged to kafka-gc.log (kafka-i-gc.log) beside
# its kafka.log: the pauses, when a stall needs explaining (make bench counts them).
#
# Cluster form (KAFKA_NODES > 1): node i listens on KAFKA_PORT + 2(i-1), its
# controller on that port + 1; node 1 keeps the single broker's files
# (STATE_DIR/kafka, kafka.pid, kafka.log), node i has kafka-i, kafka-i.pid,
# kafka-i.log. All nodes are voters of the KRaft quorum, so with a majority
# down there is no controller either. Internal topics get RF 3 (at most N)
# and min ISR 2. stop-node sends SIGTERM, kill-node SIGKILL; wipe-node kills
# the node and deletes its data directory: start-node then formats it again
# with the cluster's id and the node's former directory id, so it rejoins as
# the same replica and copies its partitions back from the others.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KAFKA_VERSION=3.9.1
KAFKA_PORT=${KAFKA_PORT:-9092}
NODES=${KAFKA_NODES:-1}
case $NODES in [1-9]) ;; *) echo "[kafka] error: KAFKA_NODES must be 1-9, not '$NODES'" >&2; exit 2 ;; esac
STATE_DIR=${STATE_DIR:-$ROOT/.local/run}
CACHE=${KAFKA_CACHE_DIR:-$ROOT/.cache}
LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
LOG4J=file:$ROOT/scripts/kafka/log4j.properties
BOOTSTRAP=127.0.0.1:$KAFKA_PORT
VOTERS=
for ((i = 2; i <= NODES; i++)); do BOOTSTRAP+=,127.0.0.1:$((KAFKA_PORT + 2 * (i - 1))); done
for ((i = 1; i <= NODES; i++)); do VOTERS+=${VOTERS:+,}$i@127.0.0.1:$((KAFKA_PORT + 2 * i - 1)); done

# node N: sets NODE, PORT, CONTROLLER_PORT, DATA, LOG, PIDFILE, CONFIG (node 1's are the
# single broker's).
node() {
  NODE=$1
  local sfx=
  [ "$NODE" -eq 1 ] || sfx=-$NODE
  PORT=$((KAFKA_PORT + 2 * (NODE - 1)))
  CONTROLLER_PORT=$((PORT + 1))
  [ "$NODES" -gt 1 ] || CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$CONTROLLER_PORT}
  DATA=$STATE_DIR/kafka$sfx
  LOG=$STATE_DIR/kafka$sfx.log
  PIDFILE=$STATE_DIR/kafka$sfx.pid
  CONFIG=$STATE_DIR/kafka$sfx-server.properties
}
node 1

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
  if [ "$NODES" -eq 1 ]; then
    cat >"$CONFIG" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
log.dirs=$DATA
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    return 0
  fi
  local rf=$((NODES < 3 ? NODES : 3)) isr=$((NODES < 3 ? 1 : 2))
  # A dead node is fenced (and leaves the ISRs) after the session timeout:
  # 6 s instead of 9, so that acks=all writes wait less for it.
  cat >"$CONFIG" <<EOF
process.roles=broker,controller
node.id=$NODE
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=$VOTERS
log.dirs=$DATA
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
group.initial.rebalance.delay.ms=0
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
EOF
}

port_open() { { : >"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; }

ready() {  # the broker answers a metadata request and lists itself (a cluster: all its nodes)
  if command -v kcat >/dev/null; then
    kcat -b "$BOOTSTRAP" -L -m 2 2>/dev/null | grep -q "^ $NODES brokers:"
  else
    port_open "$KAFKA_PORT"
  fi
}

# True if a node that was started has exited meanwhile (then its log is shown).
died() {
  local i
  for ((i = 1; i <= NODES; i++)); do
    node "$i"
    if [ -f "$PIDFILE" ] && [ -z "$(pid)" ]; then return 0; fi
  done
  node 1
  return 1
}

wait_ready() {
  local deadline=$((SECONDS + ${KAFKA_WAIT_SECONDS:-60}))
  until ready; do
    if died || [ $SECONDS -ge $deadline ]; then
      say "not ready on $BOOTSTRAP; last lines of $LOG:" >&2
      tail -n 30 "$LOG" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.3
  done
}

# A cluster's id and each node's directory id outlive a lost data directory:
# a node formatted again with both is the same replica to the controller.
ID_FILE=$STATE_DIR/kafka-cluster.id

format() {
  local id=- dirid_file=$DATA.directory-id
  if [ "$NODES" -gt 1 ] && [ -s "$ID_FILE" ]; then
    id=$(cat "$ID_FILE")
  else
    # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding;
    # one starting with '-' would be read by StorageTool as an option.
    while [ "${id:0:1}" = - ]; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    [ "$NODES" -eq 1 ] || echo "$id" >"$ID_FILE"
  fi
  java_ kafka.tools.StorageTool format -t "$id" -c "$CONFIG" >/dev/null
  [ "$NODES" -gt 1 ] || return 0
  if [ -s "$dirid_file" ]; then
    sed -i "s/^directory.id=.*/directory.id=$(cat "$dirid_file")/" "$DATA/meta.properties"
  else
    sed -n 's/^directory.id=//p' "$DATA/meta.properties" >"$dirid_file"
  fi
}

# Starts node N's JVM without waiting for it.
launch() {
  node "$1"
  if [ -n "$(pid)" ]; then say "node $NODE already running (pid $(pid)) on 127.0.0.1:$PORT"; return 0; fi
  local port
  for port in "$PORT" "$CONTROLLER_PORT"; do
    ! port_open "$port" || die "port $port on 127.0.0.1 is already in use"
  done
  write_config
  [ -f "$DATA/meta.properties" ] || format
  # Data of another cluster (a single-node run's, say) would never join:
  # its votes are refused as INCONSISTENT_CLUSTER_ID until the deadline.
  if [ "$NODES" -gt 1 ] && [ -s "$ID_FILE" ] &&
     ! grep -qx "cluster.id=$(cat "$ID_FILE")" "$DATA/meta.properties"; then
    die "node $NODE's data in $DATA belongs to another Kafka cluster ($(sed -n 's/^cluster.id=//p' "$DATA/meta.properties"), not $(cat "$ID_FILE")): use another STATE_DIR, or delete $DATA"
  fi
  local heap=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
  # Three JVMs on a small machine: each node of a cluster measured 320-400 MB RSS
  # with this heap (idle to light load), the cluster 1.0-1.2 GB in all.
  [ "$NODES" -eq 1 ] || heap=${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}
  # The options kafka-server-start.sh runs a broker with (kafka-run-class.sh's
  # KAFKA_JVM_PERFORMANCE_OPTS, as the Docker image does): G1 aiming at 20 ms
  # pauses, where the JVM alone aims at 200 ms. Every POST waits for the
  # broker. Measured here, with them against without, in turn: vegeta at
  # 1,000 POST/s for 10 s, four runs each: POST p99 5.5-26 ms against
  # 21-120 ms; GC pauses 7.7-9.7 ms on average against 9.9-10.0 ms (the
  # longest 25-59 ms against 36-39 ms: no better). wrk, 10 s: at 1
  # connection p50 141-158 µs against 158-159 µs (two rounds), at 8
  # 13,300-19,100 req/s against 13,400-18,800 (four), at 64 27,100-35,200
  # req/s, p99 6.3-7.7 ms against 22,900-27,800, p99 8.6-29.8 ms (two).
  local perf=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true}
  # shellcheck disable=SC2086 # the heap and performance options are lists of JVM options
  setsid nohup java $heap $perf "-Xlog:gc:file=\"${LOG%.log}-gc.log\":uptime,level,tags:filecount=2,filesize=10m" \
    -cp "$LIBS/*" -Dlog4j.configuration="$LOG4J" kafka.Kafka "$CONFIG" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
}

start() {
  [ -f "$LIBS/.fetched" ] || die "no Kafka jars in $LIBS: run make deps (scripts/deps.sh run)"
  if [ "$NODES" -eq 1 ] && [ -n "$(pid)" ]; then say "already running (pid $(pid)) on $BOOTSTRAP"; return 0; fi
  local t0=$SECONDS i
  for ((i = 1; i <= NODES; i++)); do launch "$i"; done
  node 1
  wait_ready
  if [ "$NODES" -eq 1 ]; then
    say "started (pid $(pid)) on $BOOTSTRAP in $((SECONDS - t0)) s; data $DATA, log $LOG"
  else
    say "cluster of $NODES nodes ready on $BOOTSTRAP in $((SECONDS - t0)) s; data and logs $STATE_DIR/kafka*"
  fi
}

# Sends node N's process sig (TERM: SIGKILL after 20 s) and waits until it is
# gone. Prints nothing; returns 1 if it was not running.
halt() {
  node "$1"
  local p i sig=$2
  p=$(pid) || { rm -f "$PIDFILE"; return 1; }
  kill -CONT "$p" 2>/dev/null || true  # a frozen node must act on it
  kill "-$sig" "$p"
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
}

stop() {
  local i p alive pids=() lost=0
  if [ "$NODES" -eq 1 ]; then
    if halt 1 TERM; then say "stopped"; else say "not running"; fi
    return 0
  fi
  # All at once: one by one, the last nodes would wait for a quorum that is
  # gone. Even so the last node still in its controlled shutdown may find no
  # active controller, and a KRaft broker then waits for one (by design,
  # KAFKA-13907): once no majority of the nodes runs any more, the rest are
  # killed after 3 s (their data is on the others too, and a log recovers
  # from an unclean stop); else each is killed after 20 s, as a single broker.
  for ((i = 1; i <= NODES; i++)); do
    node "$i"
    p=$(pid) || { rm -f "$PIDFILE"; continue; }
    kill -CONT "$p" 2>/dev/null || true  # a frozen node must act on it
    kill -TERM "$p"
    pids+=("$p")
  done
  for ((i = 0; i < 100; i++)); do
    alive=()
    for p in "${pids[@]}"; do ! kill -0 "$p" 2>/dev/null || alive+=("$p"); done
    [ ${#alive[@]} -gt 0 ] || break
    if [ $((2 * ${#alive[@]})) -le "$NODES" ]; then lost=$((lost + 1)); else lost=0; fi
    [ $lost -lt 15 ] || break
    sleep 0.2
  done
  if [ ${#alive[@]} -gt 0 ]; then
    if [ $lost -ge 15 ]; then say "no controller quorum left for the shutdown of pid ${alive[*]}: killing"
    else say "still running after 20 s, killing pid ${alive[*]}"; fi
    kill -KILL "${alive[@]}" 2>/dev/null || true
    for p in "${alive[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  fi
  for ((i = 1; i <= NODES; i++)); do node "$i"; rm -f "$PIDFILE"; done
  say "stopped the cluster's nodes"
}

status() {
  local i down=0
  if [ "$NODES" -eq 1 ]; then
    if [ -n "$(pid)" ]; then say "running (pid $(pid)) on $BOOTSTRAP"; else say "not running"; return 3; fi
    return 0
  fi
  for ((i = 1; i <= NODES; i++)); do
    node "$i"
    if [ -n "$(pid)" ]; then say "node $i running (pid $(pid)) on 127.0.0.1:$PORT"
    else say "node $i not running"; down=1; fi
  done
  [ $down -eq 0 ] || return 3
}

# The node number argument of the per-node commands.
node_arg() {
  [ "$NODES" -gt 1 ] || die "$1 needs a cluster (KAFKA_NODES > 1)"
  case ${2:-} in
    [1-9]) [ "$2" -le "$NODES" ] || die "$1: no node $2 (KAFKA_NODES=$NODES)" ;;
    *) die "$1: a node number 1-$NODES expected, not '${2:-}'" ;;
  esac
}

start_node() {
  local t0=$SECONDS deadline=$((SECONDS + ${KAFKA_WAIT_SECONDS:-60}))
  launch "$1"
  # Ready when it serves metadata on its own port and is registered (unfenced).
  until kcat -b "127.0.0.1:$PORT" -L -m 2 2>/dev/null | grep -q "^  broker $NODE at "; do
    if [ -z "$(pid)" ] || [ $SECONDS -ge $deadline ]; then
      say "node $NODE not ready on 127.0.0.1:$PORT; last lines of $LOG:" >&2
      tail -n 30 "$LOG" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.3
  done
  say "node $NODE (pid $(pid)) ready on 127.0.0.1:$PORT in $((SECONDS - t0)) s"
}

# The "partition P, leader L, replicas: ..., isrs: ..." line of kcat -L for a partition.
partition_line() {
  local line
  line=$(kcat -b "$BOOTSTRAP" -L -t "$1" -m 5 2>/dev/null | grep -E "^ +partition $2, ") ||
    die "no partition $2 of topic $1 in the metadata of $BOOTSTRAP"
  echo "$line"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  wait) wait_ready; say "ready on $BOOTSTRAP" ;;
  topics) shift; java_ org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" "$@" ;;
  groups) shift; java_ org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$BOOTSTRAP" "$@" ;;
  start-node) node_arg "$@"; start_node "$2" ;;
  stop-node) node_arg "$@"; if halt "$2" TERM; then say "node $2 stopped"; else say "node $2 not running"; fi ;;
  kill-node) node_arg "$@"; if halt "$2" KILL; then say "node $2 killed"; else say "node $2 not running"; fi ;;
  wipe-node)
    node_arg "$@"
    halt "$2" KILL || true
    rm -rf "$DATA"
    say "node $2 killed and its data directory $DATA deleted (start-node $2 formats it again)"
    ;;
  pid) node_arg "$@"; node "$2"; pid ;;
  leader)
    [ $# -eq 3 ] || die "usage: $0 leader TOPIC PARTITION"
    partition_line "$2" "$3" | sed -E 's/.* leader (-?[0-9]+),.*/\1/'
    ;;
  isr)
    [ $# -eq 3 ] || die "usage: $0 isr TOPIC PARTITION"
    partition_line "$2" "$3" | sed -E 's/.*isrs: ([0-9,]*).*/\1/'
    ;;
  *)
    echo "usage: $0 fetch|start|stop|status|wait|topics ARGS|groups ARGS" >&2
    echo "       $0 start-node|stop-node|kill-node|wipe-node|pid N | leader|isr TOPIC PARTITION" >&2
    exit 2
    ;;
esac
