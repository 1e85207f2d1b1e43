# shellcheck shell=bash
# bench/steps/tracing.sh — issue 14: what tracing costs the hot paths.
# Sourced by scripts/bench.sh; uses its ROOT, R, BUILD, SECS, MESSAGES, CONNS,
# QUERY_CONNS, TOPIC, KAFKA_BROKER, COMMAND_PORT, CONSUMER_PORT, QUERY_PORT,
# NOOP_PORT, start, stop, wrk_, warm, all_2xx, get, psql_, rows, drain, say
# and die.
#
#   step_tracing  command-service (POST, CONNS connections), query-service
#                 (GET by id, QUERY_CONNS connections) and consumer-service
#                 (a backlog of MESSAGES/2) with tracing off, then on at 100 %
#                 sampling (OTEL_TRACES_SAMPLER=always_on), twice in turn so
#                 that a drift of the machine falls on both. The collector is
#                 a second bench/noop-server on NOOP_PORT, which answers every
#                 export at once: the figure is the services' own cost
#                 (spans, their encoding in the default http/protobuf, the
#                 export requests), not a collector's, which would share
#                 these two cores.
#                 Writes $R/tracing: post_off= post_on= post_ratio= get_off=
#                 get_on= get_ratio= rows_off= rows_on= rows_ratio= (sums over
#                 both rounds, on over off) and the spans each service
#                 exported and dropped (the queue is bounded: a backlog
#                 drained at full speed makes more spans than it holds).

tracing_env() {  # MODE: the environment of a service with tracing MODE (off, on)
  [ "$1" = on ] || return 0
  echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$NOOP_PORT"
  echo "OTEL_TRACES_SAMPLER=always_on"
}

# tracing_spans PORT RESULT: the service's trace_spans_total{result=RESULT}.
tracing_spans() {
  curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" |
    awk -v r="result=\"$2\"" 'index($0, "trace_spans_total{") == 1 && index($0, r) { n += $2 } END { print n + 0 }'
}

# tracing_rows_s T0: rows/s of the batches written since T0 (a timestamptz),
# as step 3 times them: the batches strictly between the first and the last.
tracing_rows_s() {
  psql_ -c "
    WITH b AS (SELECT persisted_at t, count(*) n, row_number() OVER (ORDER BY persisted_at) r,
                      count(*) OVER () k
                 FROM timestamp_records WHERE persisted_at >= '$1' GROUP BY persisted_at)
    SELECT coalesce(round(sum(n) FILTER (WHERE r > 1 AND r < k) /
             nullif(extract(epoch FROM max(t) FILTER (WHERE r = k) - max(t) FILTER (WHERE r = 2)), 0)), 0)
      FROM b"
}

step_tracing() {
  local round mode env n=$((MESSAGES / 2)) before t0 rps line="" s
  local -A sum=()
  say "10. tracing: POST ($CONNS conn.), GET ($QUERY_CONNS conn.) and a backlog of $n with tracing off and on (100 % sampling, OTLP to a do-nothing collector), twice in turn"
  start otlp-sink "$NOOP_PORT" "$BUILD/bench/noop-server"
  stop consumer-service
  for round in 1 2; do
    for mode in off on; do
      mapfile -t env < <(tracing_env "$mode")
      stop command-service
      stop query-service
      start command-service "$COMMAND_PORT" "$BUILD/command-service" "${env[@]}"
      start query-service "$QUERY_PORT" "$BUILD/query-service" "${env[@]}"
      warm "trace-post-$mode$round" "http://127.0.0.1:$COMMAND_PORT" bench/post.lua "$CONNS" 1
      all_2xx "warm-trace-post-$mode$round"
      wrk_ "trace-post-$mode$round" "http://127.0.0.1:$COMMAND_PORT" bench/post.lua "$CONNS"
      all_2xx "trace-post-$mode$round"
      BENCH_IDS=$R/ids warm "trace-get-$mode$round" "http://127.0.0.1:$QUERY_PORT" bench/get.lua "$QUERY_CONNS" 1
      BENCH_IDS=$R/ids wrk_ "trace-get-$mode$round" "http://127.0.0.1:$QUERY_PORT" bench/get.lua "$QUERY_CONNS"
      all_2xx "trace-get-$mode$round"
      if [ "$mode" = on ]; then
        for s in command-service:$COMMAND_PORT query-service:$QUERY_PORT; do
          sum[exported_${s%%:*}]=$((${sum[exported_${s%%:*}]:-0} + $(tracing_spans "${s#*:}" exported)))
          sum[dropped_${s%%:*}]=$((${sum[dropped_${s%%:*}]:-0} + $(tracing_spans "${s#*:}" dropped_queue_full) +
            $(tracing_spans "${s#*:}" dropped_export_failed) + $(tracing_spans "${s#*:}" dropped_no_memory)))
        done
      fi
      # The POSTs' messages first, not measured, then a backlog of n. The
      # rows are counted before the consumer starts: it writes at once.
      before=$(($(rows) + $(get "trace-post-$mode$round.wrk" requests) + $(get "warm-trace-post-$mode$round.wrk" requests)))
      start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service"
      drain "$before"
      stop consumer-service
      before=$(rows)
      "$BUILD/bench/produce" "$KAFKA_BROKER" "$TOPIC" "$n" >"$R/trace-produce-$mode$round.out"
      t0=$(psql_ -c "SELECT now()")
      start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service" "${env[@]}"
      drain $((before + n))
      rps=$(tracing_rows_s "$t0")
      if [ "$mode" = on ]; then
        sum[exported_consumer-service]=$((${sum[exported_consumer-service]:-0} + $(tracing_spans "$CONSUMER_PORT" exported)))
        sum[dropped_consumer-service]=$((${sum[dropped_consumer-service]:-0} + $(tracing_spans "$CONSUMER_PORT" dropped_queue_full) +
          $(tracing_spans "$CONSUMER_PORT" dropped_export_failed) + $(tracing_spans "$CONSUMER_PORT" dropped_no_memory)))
      fi
      stop consumer-service
      sum[post_$mode]=$(awk -v a="${sum[post_$mode]:-0}" -v b="$(get "trace-post-$mode$round.wrk" rps)" 'BEGIN { print a + b }')
      sum[get_$mode]=$(awk -v a="${sum[get_$mode]:-0}" -v b="$(get "trace-get-$mode$round.wrk" rps)" 'BEGIN { print a + b }')
      sum[rows_$mode]=$(awk -v a="${sum[rows_$mode]:-0}" -v b="$rps" 'BEGIN { print a + b }')
      say "   round $round, tracing $mode: POST $(get "trace-post-$mode$round.wrk" rps) req/s, GET $(get "trace-get-$mode$round.wrk" rps) req/s, backlog $rps rows/s"
    done
  done
  for s in post get rows; do
    line+="${s}_off=${sum[${s}_off]} ${s}_on=${sum[${s}_on]} ${s}_ratio=$(awk -v a="${sum[${s}_on]}" -v b="${sum[${s}_off]}" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }') "
  done
  for s in command-service consumer-service query-service; do
    line+="exported_$s=${sum[exported_$s]:-0} dropped_$s=${sum[dropped_$s]:-0} "
  done
  echo "${line% }" >"$R/tracing"
  say "   on / off: POST $(get tracing post_ratio), GET $(get tracing get_ratio), backlog $(get tracing rows_ratio); spans exported / dropped: command $(get tracing exported_command-service) / $(get tracing dropped_command-service), consumer $(get tracing exported_consumer-service) / $(get tracing dropped_consumer-service), query $(get tracing exported_query-service) / $(get tracing dropped_query-service)"
  stop otlp-sink
  # The services as the steps after this one expect them: tracing off.
  stop command-service
  stop query-service
  start command-service "$COMMAND_PORT" "$BUILD/command-service"
  start query-service "$QUERY_PORT" "$BUILD/query-service"
  start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service"
}
