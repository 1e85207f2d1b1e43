# shellcheck shell=bash
# bench/steps/cluster.sh — issue 13: what real durability costs. Sourced by
# scripts/bench.sh; uses its ROOT, HERE, R, BUILD, STATE_DIR, SECS, WARM,
# CONNS, QUERY_CONNS, KAFKA_PORT, PG_PORT, PG_CGROUP, COMMAND_PORT, QUERY_PORT,
# start, stop, wrk_, warm, all_2xx, get, psql_, cgroup_own, cgroup_remove, say
# and die. Reported figures, no target. Run last: three more JVMs would
# disturb every other step.
#
#   step_cluster  three Kafka nodes (scripts/kafka.sh with KAFKA_NODES=3 on
#                 KAFKA_PORT+100, +102, +104; state in STATE_DIR/cluster)
#                 and a streaming standby of the bench's PostgreSQL
#                 (scripts/pg.sh start-standby on PG_PORT+1); then
#                 * a second command-service (COMMAND_PORT+4) on the three
#                   brokers with KAFKA_TOPIC_REPLICATION=3 (min.insync.replicas
#                   2: every 200 is on two brokers' logs): POST at 1, 8 and
#                   CONNS connections, as step 2 did on the single broker;
#                 * a second query-service (QUERY_PORT+4) reading from the
#                   standby (DB_READ_URL; DB_URL the primary, for the 404s it
#                   would confirm: none here, every id exists): GET as step 4.
#                 Figures into $R/cluster-c1.wrk, cluster-c8.wrk,
#                 cluster-c$CONNS.wrk and standby.wrk (wrk's BENCH lines).

CLUSTER_KAFKA_PORT=$((KAFKA_PORT + 100))
PG_STANDBY_PORT=$((PG_PORT + 1))

cluster_kafka() { KAFKA_NODES=3 KAFKA_PORT=$CLUSTER_KAFKA_PORT STATE_DIR=$STATE_DIR/cluster "$HERE/kafka.sh" "$@"; }
cluster_standby() { PG_STANDBY_PORT=$PG_STANDBY_PORT "$HERE/pg.sh" "$@"; }

# shellcheck disable=SC2317  # invoked by bench.sh's cleanup
cluster_cleanup() {
  cluster_kafka stop >/dev/null 2>&1 || true
  cluster_standby stop-standby >/dev/null 2>&1 || true
  cgroup_remove "$PG_CGROUP-standby"
}

step_cluster() {
  local brokers c deadline lag
  brokers=127.0.0.1:$CLUSTER_KAFKA_PORT,127.0.0.1:$((CLUSTER_KAFKA_PORT + 2)),127.0.0.1:$((CLUSTER_KAFKA_PORT + 4))
  say "9. cluster: 3 brokers (RF 3, min.insync.replicas 2) and a PostgreSQL standby; POST and GET as steps 2 and 4"
  mkdir -p "$STATE_DIR/cluster"
  cluster_kafka start >/dev/null
  cluster_standby start-standby >/dev/null
  cgroup_own "$PG_CGROUP-standby" "$(head -1 "$STATE_DIR/pgdata-standby/postmaster.pid")"  # as the primary

  start command-cluster $((COMMAND_PORT + 4)) "$BUILD/command-service" \
    KAFKA_BROKER="$brokers" KAFKA_TOPIC_REPLICATION=3
  warm command-cluster "http://127.0.0.1:$((COMMAND_PORT + 4))" bench/post.lua "$CONNS"
  all_2xx warm-command-cluster
  for c in 1 8 "$CONNS"; do
    warm "cluster-c$c" "http://127.0.0.1:$((COMMAND_PORT + 4))" bench/post.lua "$c" 1
    all_2xx "warm-cluster-c$c"
    wrk_ "cluster-c$c" "http://127.0.0.1:$((COMMAND_PORT + 4))" bench/post.lua "$c"
    all_2xx "cluster-c$c"
  done
  stop command-cluster
  say "   POST on 3 brokers, RF 3: req/s at 1, 8, $CONNS conn.: $(get cluster-c1.wrk rps), $(get cluster-c8.wrk rps), $(get "cluster-c$CONNS.wrk" rps) (one broker: $(get command-c1.wrk rps), $(get command-c8.wrk rps), $(get command.wrk rps)); p50 at 1 conn. $(get cluster-c1.wrk p50_us) µs (one broker $(get command-c1.wrk p50_us) µs)"

  # The standby has every bench row before it is measured: its replay has
  # reached the primary's WAL position of now.
  deadline=$((SECONDS + 60))
  lag=$(psql_ -c "SELECT pg_current_wal_lsn()")
  until [ "$(psql -h 127.0.0.1 -p "$PG_STANDBY_PORT" -U postgres -X -qAt \
              -c "SELECT pg_last_wal_replay_lsn() >= '$lag'::pg_lsn")" = t ]; do
    [ $SECONDS -lt $deadline ] || die "the standby did not replay up to $lag in 60 s"
    sleep 0.2
  done
  start query-standby $((QUERY_PORT + 4)) "$BUILD/query-service" \
    DB_READ_URL="postgresql://127.0.0.1:$PG_STANDBY_PORT/postgres"
  BENCH_IDS=$R/ids warm query-standby "http://127.0.0.1:$((QUERY_PORT + 4))" bench/get.lua "$QUERY_CONNS"
  BENCH_IDS=$R/ids wrk_ standby "http://127.0.0.1:$((QUERY_PORT + 4))" bench/get.lua "$QUERY_CONNS"
  all_2xx standby
  stop query-standby
  say "   GET from the standby: $(get standby.wrk rps) req/s, p99 $(get standby.wrk p99_us) µs (from the primary, step 4: $(get query.wrk rps) req/s)"
  cluster_cleanup
}
