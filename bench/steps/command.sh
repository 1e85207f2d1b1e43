# shellcheck shell=bash
# bench/steps/command.sh — command-service latency at low concurrency against
# the produce path's ceiling (issue 10, target 1). Sourced by scripts/bench.sh
# and run with command-service up and consumer-service stopped (step 2), so
# that the figures are the command service's and the broker's alone; the
# rows it adds are stored when the consumer catches up afterwards.
#
#   bench/produce-latency at 1 and 8 callers: a bare librdkafka producer
#     (acks=all, idempotent, linger 0, no Nagle, callers poll for their own
#     reports) producing one message and waiting for its report in a loop
#   wrk against command-service at 1, 8, 64 and 256 connections
#
# Each run is SECS seconds (after 1 s not measured: the ceiling's own
# warm-up, wrk's at each concurrency); about 70 s at SECS=10. Writes:
#   $R/produce-1, $R/produce-8    callers= seconds= msgs= msgs_s= p50_ms=
#                                 p99_ms= p999_ms= max_ms= failed=
#   $R/command-cN.wrk             bench/report.lua's BENCH line (rps, p50_us, p99_us, …)
#   $R/command-latency            p50_ratio_c1= p50_ratio_c8= (POST p50 over
#                                 the ceiling's at 1 and 8; target ≤ 1.5)
#                                 rps_c1= rps_c8= rps_c64= rps_c256=
# Uses bench.sh's R, BUILD, SECS, KAFKA_BROKER, TOPIC, COMMAND_PORT, wrk_,
# warm, say, die, all_2xx, get; command_linger (2c, below) also RATES,
# CONNS, STATE_DIR, LOADGEN, start, stop, cpu_ms, pid_cpu_ms, machine_mark
# and machine_note.

command_step() {
  local n c url="http://127.0.0.1:$COMMAND_PORT" line
  say "2b. command latency: produce ceiling (bench/produce-latency) at 1 and 8 callers, POST at 1, 8, 64, 256 connections, ${SECS} s each"
  for n in 1 8; do
    "$BUILD/bench/produce-latency" "$KAFKA_BROKER" "$TOPIC" "$n" "$SECS" >"$R/produce-$n" 2>"$R/produce-$n.log" ||
      { cat "$R/produce-$n.log"; die "produce-latency failed at $n callers"; }
  done
  for c in 1 8 64 256; do
    warm "command-c$c" "$url" bench/post.lua "$c" 1
    all_2xx "warm-command-c$c"
    wrk_ "command-c$c" "$url" bench/post.lua "$c"
    all_2xx "command-c$c"
  done
  line=""
  for n in 1 8; do
    line+="p50_ratio_c$n=$(awk -v s="$(get "command-c$n.wrk" p50_us)" -v p="$(get "produce-$n" p50_ms)" \
      'BEGIN { printf "%.2f", (p > 0 ? s / 1000 / p : 0) }') "
  done
  for c in 1 8 64 256; do line+="rps_c$c=$(get "command-c$c.wrk" rps) "; done
  echo "${line% }" >"$R/command-latency"
  say "   ceiling p50 $(get produce-1 p50_ms) / $(get produce-8 p50_ms) ms at 1 / 8 callers; POST p50 $(get command-c1.wrk p50_us) / $(get command-c8.wrk p50_us) µs ($(get command-latency p50_ratio_c1)× / $(get command-latency p50_ratio_c8)×); req/s at 1, 8, 64, 256: $(get command-c1.wrk rps), $(get command-c8.wrk rps), $(get command-c64.wrk rps), $(get command-c256.wrk rps)"
}

# 2c. What batching in the producer buys and costs (issue 10: "if batching
# and latency pull in opposite directions"): for each linger.ms of LINGERS,
# command-service restarted with KAFKA_PROPERTIES=linger.ms=L and POSTed at
# the last of RATES (5,000/s) by bench/attack, open loop, for SECS (after 1 s
# not measured), the consumer still stopped. CPU a POST of command-service
# and of the broker from /proc. Leaves command-service running with its
# defaults. About 40 s at SECS=10. Writes $R/linger-L: linger= rate= posts=
# accepted= (the 200s, warm-up included) p50_ms= p99_ms= command_us=
# broker_us=. A POST not answered 200 fails the run, as in every step.
LINGERS=${BENCH_LINGERS:-"0 1 3"}

command_linger() {
  local l name rate=${RATES##* } url="http://127.0.0.1:$COMMAND_PORT/api/v1/timestamp/2026-01-01T00:00:00Z"
  local broker cmd0 brk0 cmd_ms brk_ms bad
  broker=$(cat "$STATE_DIR/kafka.pid")
  say "2c. the producer's linger: POST at $rate/s (bench/attack, open loop), ${SECS} s for each linger.ms of $LINGERS; CPU a POST of command-service and the broker"
  for l in $LINGERS; do
    name=linger-$l
    stop command-service
    start command-service "$COMMAND_PORT" "$BUILD/command-service" "KAFKA_PROPERTIES=linger.ms=$l"
    "${LOADGEN[@]}" "$BUILD/bench/attack" "$url" "$rate" 1 "$CONNS" >"$R/warm-$name.out"
    machine_mark "$name"
    cmd0=$(cpu_ms command-service)
    brk0=$(pid_cpu_ms "$broker")
    "${LOADGEN[@]}" "$BUILD/bench/attack" "$url" "$rate" "$SECS" "$CONNS" >"$R/$name.out"
    cmd_ms=$(($(cpu_ms command-service) - cmd0))
    brk_ms=$(($(pid_cpu_ms "$broker") - brk0))
    machine_note "$name"
    # attack's lines: CODE START_NS LATENCY_NS ID.
    bad=$(awk '$1 != 200' "$R/warm-$name.out" "$R/$name.out" | wc -l)
    [ "$bad" = 0 ] || die "linger.ms=$l: $bad POSTs not answered 200 (see $R/$name.out)"
    sort -n -k3,3 "$R/$name.out" |
      awk -v l="$l" -v rate="$rate" -v acc="$(cat "$R/warm-$name.out" "$R/$name.out" | wc -l)" -v c="$cmd_ms" -v b="$brk_ms" '
        { v[NR] = $3 / 1e6 }
        function q(p,  i) { i = int(NR * p + 0.999999); return v[i < 1 ? 1 : i] }
        END { printf "linger=%s rate=%s posts=%d accepted=%d p50_ms=%.2f p99_ms=%.2f command_us=%.1f broker_us=%.1f\n",
                l, rate, NR, acc, q(0.5), q(0.99), c * 1000 / NR, b * 1000 / NR }' >"$R/$name"
    say "   linger.ms=$l: POST p50 $(get "$name" p50_ms) ms, p99 $(get "$name" p99_ms) ms; CPU a POST: command-service $(get "$name" command_us) µs, broker $(get "$name" broker_us) µs"
  done
  stop command-service
  start command-service "$COMMAND_PORT" "$BUILD/command-service"
}
