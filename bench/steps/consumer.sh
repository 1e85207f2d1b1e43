# shellcheck shell=bash
# bench/steps/consumer.sh — sourced by scripts/bench.sh: consumer-service
# meeting a backlog while it runs, and its memory against its prefetch.
# Uses bench.sh's variables (R, BUILD, STATE_DIR, KAFKA_BROKER, TOPIC,
# CONSUMER_PORT, SMOKE) and helpers (start, stop, rss_kb, psql_, rows, say, die).
#
#   consumer_running    the consumer, running and caught up, is stopped with
#                       SIGSTOP while CONSUMER_BACKLOG messages are written
#                       (bench/produce), then continued: $R/running gets
#                       running_rps running_mean_batch running_batches
#                       running_full_batches rss_peak_mib messages
#   consumer_burst      the same backlog written while the consumer runs:
#                       $R/burst gets burst_rps burst_mean_batch burst_batches
#                       burst_full_batches messages
#   consumer_prefetch   for each CONSUMER_PREFETCH_KB of PREFETCH_SIZES, a fresh
#                       consumer (peak RSS is per process) meets a backlog of
#                       PREFETCH_BACKLOG as consumer_running does:
#                       $R/prefetch-<kb> gets kb rps rss_peak_mib mean_batch
#   consumer_steps      all three, about 60 s (a few in a smoke run)
#
# rows/s are timed from the rows themselves, as step 3 does: every row's
# persisted_at is its batch's transaction start, and the rows of the batches
# strictly between the first and the last were written between the second
# batch's start and the last one's. The table is emptied first, so every row
# counted is one of the backlog's; every message must become exactly one row.
#
# env: CONSUMER_BACKLOG (200000; smoke 20000), PREFETCH_BACKLOG (100000;
#      smoke 10000), PREFETCH_SIZES ("256 1024 2048 8192"; smoke "1024")

CONSUMER_BACKLOG=${CONSUMER_BACKLOG:-$([ "$SMOKE" = 1 ] && echo 20000 || echo 200000)}
PREFETCH_BACKLOG=${PREFETCH_BACKLOG:-$([ "$SMOKE" = 1 ] && echo 10000 || echo 100000)}
PREFETCH_SIZES=${PREFETCH_SIZES:-$([ "$SMOKE" = 1 ] && echo 1024 || echo "256 1024 2048 8192")}

# _cons_start [ENV...]: a fresh consumer-service, ready, its offsets at the
# end of the topic (a small trickle written and stored proves it), and an
# empty table.
_cons_start() {
  local n
  stop consumer-service
  start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service" "$@"
  psql_ -c "TRUNCATE timestamp_records"
  "$BUILD/bench/produce" "$KAFKA_BROKER" "$TOPIC" 100 >/dev/null
  n=0
  until [ "$(rows)" -ge 100 ]; do
    [ $((n += 1)) -le 500 ] || die "consumer-service did not store 100 messages within 10 s"
    sleep 0.02
  done
  psql_ -c "TRUNCATE timestamp_records"
}

# _cons_wait N: until the table has N rows (exactly: more is a duplicate).
_cons_wait() {
  local deadline=$((SECONDS + 120)) n
  until [ "$(n=$(rows); echo "$n")" -ge "$1" ]; do
    [ $SECONDS -lt $deadline ] || die "consumer-service stored $(rows) of $1 rows in 120 s"
    sleep 0.1
  done
  n=$(rows)
  [ "$n" = "$1" ] || die "consumer-service: $n rows for $1 messages"
}

# _cons_backlog N stopped|running: writes N messages with the consumer
# SIGSTOPped meanwhile (stopped) or working (running), waits for the rows.
_cons_backlog() {
  local pid=${PIDS[consumer-service]}
  [ "$2" = running ] || kill -STOP "$pid"
  "$BUILD/bench/produce" "$KAFKA_BROKER" "$TOPIC" "$1" >"$R/cons-produce.out" ||
    { kill -CONT "$pid"; die "bench/produce failed"; }
  [ "$2" = running ] || kill -CONT "$pid"
  _cons_wait "$1"
}

# _cons_figures BATCH_SIZE: "batches rows/s mean_batch full_batches" of the
# rows in the table.
_cons_figures() {
  psql_ -F ' ' -c "
    WITH b AS (SELECT persisted_at t, count(*) n, row_number() OVER (ORDER BY persisted_at) r,
                      count(*) OVER () k
                 FROM timestamp_records GROUP BY persisted_at)
    SELECT max(k),
           coalesce(round(sum(n) FILTER (WHERE r > 1 AND r < k) /
             nullif(extract(epoch FROM max(t) FILTER (WHERE r = k) - max(t) FILTER (WHERE r = 2)), 0)), 0),
           round(sum(n) / max(k), 1),
           count(*) FILTER (WHERE n >= $1)
      FROM b"
}

_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

consumer_running() {
  local batches rps mean full
  say "3b. consumer-service running, SIGSTOPped while $CONSUMER_BACKLOG messages are written, then continued"
  _cons_start
  _cons_backlog "$CONSUMER_BACKLOG" stopped
  read -r batches rps mean full < <(_cons_figures "${CONSUMER_BATCH_SIZE:-2000}")
  echo "running_rps=$rps running_mean_batch=$mean running_batches=$batches" \
       "running_full_batches=$full rss_peak_mib=$(_mib "$(rss_kb consumer-service VmHWM)")" \
       "messages=$CONSUMER_BACKLOG" >"$R/running"
  say "   $rps rows/s, $batches batches (mean $mean rows, $full full), peak RSS $(_mib "$(rss_kb consumer-service VmHWM)") MiB"
}

consumer_burst() {
  local batches rps mean full
  say "3c. consumer-service running while $CONSUMER_BACKLOG messages are written at once"
  _cons_start
  _cons_backlog "$CONSUMER_BACKLOG" running
  read -r batches rps mean full < <(_cons_figures "${CONSUMER_BATCH_SIZE:-2000}")
  echo "burst_rps=$rps burst_mean_batch=$mean burst_batches=$batches burst_full_batches=$full" \
       "messages=$CONSUMER_BACKLOG" >"$R/burst"
  say "   $rps rows/s, $batches batches (mean $mean rows, $full full); produced: $(cat "$R/cons-produce.out")"
}

consumer_prefetch() {
  local kb batches rps mean full
  say "3d. consumer-service prefetch against peak RSS: a backlog of $PREFETCH_BACKLOG for CONSUMER_PREFETCH_KB in $PREFETCH_SIZES"
  for kb in $PREFETCH_SIZES; do
    _cons_start CONSUMER_PREFETCH_KB="$kb"
    _cons_backlog "$PREFETCH_BACKLOG" stopped
    read -r batches rps mean full < <(_cons_figures "${CONSUMER_BATCH_SIZE:-2000}")
    echo "kb=$kb rps=$rps rss_peak_mib=$(_mib "$(rss_kb consumer-service VmHWM)") mean_batch=$mean" \
      >"$R/prefetch-$kb"
    say "   $kb KiB: $rps rows/s, peak RSS $(_mib "$(rss_kb consumer-service VmHWM)") MiB (mean batch $mean)"
  done
  # Leave a consumer with the default settings running for the next steps.
  stop consumer-service
  start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service"
}

consumer_steps() {
  consumer_running
  consumer_burst
  consumer_prefetch
}
