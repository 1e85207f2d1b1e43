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
# warm, say, die, all_2xx, get.

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
