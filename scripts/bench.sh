#!/usr/bin/env bash
# bench.sh BUILD_DIR OUT_DIR — make bench: each service measured against its
# ceiling in the same run, on a stack of its own (Kafka 13092, PostgreSQL
# 13432, services 13080-13082, the do-nothing server 13083; state in
# .local/bench). Prints a table (figure, ceiling, ratio, PASS/FAIL against the
# targets of DESIGN.md) and writes OUT_DIR/REPORT.md with gnuplot charts.
#
#   1. HTTP ceiling     bench/noop-server (http_start, the services' options)
#   2. command-service  POST at fixed concurrency (wrk), real broker, acks=all
#   3. consumer-service a backlog of N messages → rows/s; ceiling: the same
#                       sink statement fed by bench/insert without Kafka
#   4. query-service    GET random existing ids (wrk) vs pgbench -M prepared
#   5. accept→readable  vegeta at constant rates, bench/readable polls GET
#   6. footprint        RSS at rest and peak, start → /ready, binary sizes
#
# env: BENCH_SMOKE=1 (a couple of seconds a step, no thresholds: make test),
#      BENCH_SECONDS (20), BENCH_MESSAGES (200000), BENCH_RATES ("1000 5000"),
#      BENCH_CONNECTIONS (48), BENCH_STATE_DIR (.local/bench)
# Correctness still fails a smoke run: a non-2xx answer, a lost row.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/lib/proc.sh
. "$HERE/lib/proc.sh"
BUILD=$(cd "${1:?usage: bench.sh BUILD_DIR OUT_DIR}" && pwd)
mkdir -p "${2:?usage: bench.sh BUILD_DIR OUT_DIR}"
OUT=$(cd "$2" && pwd)
SMOKE=${BENCH_SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
  SECS=${BENCH_SECONDS:-2} MESSAGES=${BENCH_MESSAGES:-20000} RATES=${BENCH_RATES:-"200 1000"}
  WARM=1
else
  SECS=${BENCH_SECONDS:-20} MESSAGES=${BENCH_MESSAGES:-200000} RATES=${BENCH_RATES:-"1000 5000"}
  WARM=20  # a fresh broker's JIT needs this long to reach its steady state
fi
CONNS=${BENCH_CONNECTIONS:-64}     # fewer than command-service's 128 HTTP threads
QUERY_CONNS=32                     # query-service: 64 HTTP threads, a pool of 8
POOL=8                             # DB connections: query-service's pool and pgbench's clients

export STATE_DIR=${BENCH_STATE_DIR:-$ROOT/.local/bench}
export KAFKA_PORT=13092 PG_PORT=13432
export COMMAND_PORT=13080 CONSUMER_PORT=13081 QUERY_PORT=13082 NOOP_PORT=13083
export KAFKA_BROKER=127.0.0.1:$KAFKA_PORT DB_URL=postgresql://127.0.0.1:$PG_PORT/postgres
export LOG_LEVEL=WARN DB_POOL_SIZE=$POOL
TOPIC=timestamp.command.v1
CACHE=$ROOT/.cache
VEGETA=$CACHE/bin/vegeta
VEGETA_VERSION=$(sed -n 's/^VEGETA_VERSION=//p' "$HERE/deps.sh")
KAFKA_VERSION=$(sed -n 's/^KAFKA_VERSION=//p' "$HERE/kafka.sh")
R=$STATE_DIR/results               # raw figures and chart data
# What is measured: read before the run rewrites the report (which would
# make every tree look modified).
REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

say() { echo "[bench] $*"; }
die() { echo "[bench] error: $*" >&2; exit 1; }
psql_() { "$HERE/pg.sh" psql -qAt -v ON_ERROR_STOP=1 "$@"; }

# ---- tools -------------------------------------------------------------------------

tools() {  # installed by make deps-test (scripts/deps.sh test)
  local t
  for t in wrk gnuplot; do
    command -v "$t" >/dev/null || die "$t missing: run make deps-test"
  done
  [ -x "$VEGETA" ] || die "$VEGETA missing: run make deps-test"
}

# ---- processes ---------------------------------------------------------------------

declare -A PIDS=()

# start NAME PORT BIN [ENV...]: starts a program in the background, waits for
# its /ready (polled every 2 ms: the wait is measured); sets READY_MS.
start() {
  local name=$1 port=$2 bin=$3 t0
  shift 3
  t0=$(date +%s%N)
  proc_start "$STATE_DIR/$name.log" env SERVER_PORT="$port" "$@" "$bin"
  PIDS[$name]=$PROC_PID
  proc_wait_ready "$PROC_PID" "http://127.0.0.1:$port/ready" 30 "$STATE_DIR/$name.log" 0.002 ||
    die "$name did not get ready"  # noop: 200 to all
  READY_MS=$((($(date +%s%N) - t0) / 1000000))
}

stop() {
  local pid=${PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  proc_stop "$pid" "$1" || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$1]"
}

# kB of resident memory now (VmRSS) or at its peak (VmHWM).
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/${PIDS[$1]}/status"; }

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  for n in "${!PIDS[@]}"; do stop "$n"; done
  "$HERE/kafka.sh" stop >/dev/null 2>&1 || true
  "$HERE/pg.sh" stop >/dev/null 2>&1 || true
}

# ---- measuring ---------------------------------------------------------------------

# wrk_ NAME URL SCRIPT CONNS: closed-loop load; the BENCH line into $R/NAME.wrk.
wrk_() {
  (cd "$ROOT" && wrk -t2 -c"$4" -d"${SECS}s" --timeout 10s -s "$3" "$2") >"$R/$1.wrk.log" 2>&1 ||
    { cat "$R/$1.wrk.log"; die "wrk failed against $2"; }
  grep '^BENCH ' "$R/$1.wrk.log" >"$R/$1.wrk" || { cat "$R/$1.wrk.log"; die "no figures from wrk"; }
}

# all_2xx NAME: a correctness check, so also in a smoke run.
all_2xx() {
  if [ "$(get "$1.wrk" non2xx)" != 0 ] || [ "$(get "$1.wrk" socket_errors)" != 0 ]; then
    die "$1: $(get "$1.wrk" non2xx) non-2xx answers, $(get "$1.wrk" socket_errors) socket errors (see $R/$1.wrk.log)"
  fi
}

# warm NAME URL SCRIPT CONNS: load not measured, so that the JVM's JIT,
# caches and connections are warm before a measured run.
warm() {
  local SECS=$WARM
  wrk_ "warm-$1" "$2" "$3" "$4"
}

# get FILE KEY: a value of a key=value line.
get() { tr ' ' '\n' <"$R/$1" | sed -n "s/^$2=//p"; }

metric() {  # metric PORT NAME_WITH_LABELS: a sample's value from /metrics
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'
}

rows() { psql_ -c "SELECT count(*) FROM timestamp_records"; }

# drain N: waits (up to 60 s) until at least N rows are stored and no more
# arrive for half a second: the consumer has caught up.
drain() {
  local deadline=$((SECONDS + 60)) n=-1 last
  while :; do
    last=$n
    n=$(rows)
    [ "$n" -lt "$1" ] || [ "$n" != "$last" ] || return 0
    [ $SECONDS -lt $deadline ] || die "the consumer stored $n of at least $1 rows in 60 s"
    sleep 0.5
  done
}

FAILED=0
declare -a TABLE=()
# row LABEL VALUE CEILING RATIO_TARGET UNIT: a table row; ratio and verdict
# computed here. TARGET is a minimum ratio (e.g. 0.40), or "" for none.
row() {
  local label=$1 value=$2 ceiling=$3 target=$4 unit=$5 ratio verdict
  ratio=$(awk -v a="$value" -v b="$ceiling" 'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "-" }')
  verdict=$(verdict_ge "$(awk -v a="$value" -v b="$ceiling" 'BEGIN { print (b > 0 ? a / b : 0) }')" "$target")
  TABLE+=("| $label | $(fmt "$value") $unit | $(fmt "$ceiling") $unit | $ratio | $(target_text "$target") | $verdict |")
}
# row_max LABEL VALUE LIMIT UNIT: a figure that must stay under a limit
# ("" for none: shown for information).
row_max() {
  local label=$1 value=$2 limit=$3 unit=$4 verdict
  verdict=$(awk -v a="$value" -v b="$limit" -v s="$SMOKE" \
    'BEGIN { print ((s == 1 || b == "") ? "-" : (a < b ? "PASS" : "FAIL")) }')
  [ "$verdict" != FAIL ] || FAILED=1
  TABLE+=("| $label | $(fmt "$value") $unit | | | ${limit:+< $limit $unit} | $verdict |")
}
verdict_ge() {
  local v
  if [ -z "$2" ] || [ "$SMOKE" = 1 ]; then echo "-"; return; fi
  v=$(awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "PASS" : "FAIL") }')
  [ "$v" = PASS ] || FAILED=1
  echo "$v"
}
target_text() { [ -z "$1" ] || awk -v t="$1" 'BEGIN { printf "≥ %.0f %%", 100 * t }'; }
fmt() { awk -v v="$1" 'BEGIN { if (v == int(v)) printf "%\047d", v; else printf "%.2f", v }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

# ---- the run -----------------------------------------------------------------------

trap cleanup EXIT
cleanup
# A fresh broker and database each run: nothing left from an earlier one.
rm -rf "$STATE_DIR"
mkdir -p "$STATE_DIR" "$R"
tools
say "stack: Kafka :$KAFKA_PORT, PostgreSQL :$PG_PORT, services :$COMMAND_PORT-$QUERY_PORT (state in $STATE_DIR)"
"$HERE/pg.sh" start >/dev/null
"$HERE/kafka.sh" start >/dev/null

# The first start provisions (topics, schema); the second one, each service
# alone with its dependencies up, is what "ready within 200 ms" measures.
declare -A READY FIRST_READY RSS_REST
for s in command-service consumer-service query-service; do
  start "$s" "$(proc_service_port "$s")" "$BUILD/$s"
  FIRST_READY[$s]=$READY_MS
done
for s in command-service consumer-service query-service; do
  stop "$s"
  start "$s" "$(proc_service_port "$s")" "$BUILD/$s"
  READY[$s]=$READY_MS
  RSS_REST[$s]=$(rss_kb "$s" VmRSS)
done
say "start → /ready: command ${READY[command-service]} ms, consumer ${READY[consumer-service]} ms, query ${READY[query-service]} ms (first start, creating topics and schema: ${FIRST_READY[command-service]}, ${FIRST_READY[consumer-service]}, ${FIRST_READY[query-service]} ms)"

# 1-2. HTTP ceiling, then command-service under the same load. The consumer
# is stopped meanwhile so that the figure is the command service's and the
# broker's alone (the consumer has step 3); it catches up afterwards.
start noop "$NOOP_PORT" "$BUILD/bench/noop-server"
say "1. HTTP ceiling: do-nothing civetweb handler, $CONNS connections, ${SECS} s"
warm noop "http://127.0.0.1:$NOOP_PORT" bench/post.lua "$CONNS"
wrk_ noop "http://127.0.0.1:$NOOP_PORT" bench/post.lua "$CONNS"
stop noop
stop consumer-service
say "2. command-service: POST /api/v1/timestamp/{ts}, $CONNS connections, ${SECS} s (acks=all)"
rows_before=$(rows)
warm command "http://127.0.0.1:$COMMAND_PORT" bench/post.lua "$CONNS"
wrk_ command "http://127.0.0.1:$COMMAND_PORT" bench/post.lua "$CONNS"
all_2xx command
start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service"
all_2xx warm-command
accepted=$(($(get command.wrk requests) + $(get warm-command.wrk requests)))
drain $((rows_before + accepted))
stored=$(($(rows) - rows_before))
# wrk counts requests that completed; one it cut off may still be stored.
[ "$stored" -ge "$accepted" ] || die "command-service: $accepted requests answered 200 but only $stored rows stored"
say "   $(fmt "$(get command.wrk rps)") req/s against $(fmt "$(get noop.wrk rps)"); all $accepted accepted (warm-up included) stored"

# 3. consumer-service on a backlog; ceiling: the same statement without Kafka.
say "3. consumer-service: a backlog of $MESSAGES messages → rows/s; ceiling: bench/insert"
psql_ -c "TRUNCATE timestamp_records"
"$BUILD/bench/insert" "$DB_URL" "$MESSAGES" 2000 >"$R/insert.out"
insert_s=$(awk '{ print $4 }' "$R/insert.out")
psql_ -c "TRUNCATE timestamp_records"
stop consumer-service
"$BUILD/bench/produce" "$KAFKA_BROKER" "$TOPIC" "$MESSAGES" >"$R/produce.out"
start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service"
deadline=$((SECONDS + 300))
until [ "$(rows)" -ge "$MESSAGES" ]; do
  [ $SECONDS -lt $deadline ] || die "consumer-service stored $(rows) of $MESSAGES rows in 300 s"
  sleep 0.2
done
stored=$(rows)
[ "$stored" = "$MESSAGES" ] || die "consumer-service: $stored rows for $MESSAGES messages"
# Timed from the rows themselves: each batch is one transaction, whose start
# is every row's persisted_at. The batches strictly between the first and the
# last were written between the second batch's start and the last one's, so
# rows/s = their rows / that time (joining the group and the first fetch are
# left out).
read -r batches consumer_rps < <(psql_ -F ' ' -c "
  WITH b AS (SELECT persisted_at t, count(*) n, row_number() OVER (ORDER BY persisted_at) r,
                    count(*) OVER () k
               FROM timestamp_records GROUP BY persisted_at)
  SELECT max(k), coalesce(round(sum(n) FILTER (WHERE r > 1 AND r < k) /
           nullif(extract(epoch FROM max(t) FILTER (WHERE r = k) - max(t) FILTER (WHERE r = 2)), 0)), 0)
    FROM b")
insert_rps=$(awk -v n="$MESSAGES" -v s="$insert_s" 'BEGIN { print (s > 0 ? n / s : 0) }')
say "   $(fmt "$consumer_rps") rows/s in $batches batches against $(fmt "$insert_rps"); all $MESSAGES stored once"
RSS_PEAK_CONSUMER=$(rss_kb consumer-service VmHWM)

# 4. query-service vs pgbench, the same rows by primary key, 8 DB connections.
say "4. query-service: GET by id ($QUERY_CONNS connections, pool of $POOL) vs pgbench -M prepared -c $POOL"
# pgbench has no list of uuids to pick from, so these rows get ids both sides
# can compute: md5('bench' || i), i in 0..N-1 (the md5 costs pgbench ~1 µs).
psql_ -c "INSERT INTO timestamp_records (id, event_timestamp, created_at)
          SELECT md5('bench' || i)::uuid, now(), now() FROM generate_series(0, $((MESSAGES - 1))) i" \
      -c "VACUUM ANALYZE timestamp_records"
psql_ -c "SELECT md5('bench' || i)::uuid FROM generate_series(0, $((MESSAGES - 1))) i" >"$R/ids"
cat >"$R/pgbench.sql" <<EOF
\\set i random(0, $((MESSAGES - 1)))
SELECT id, event_timestamp, created_at FROM timestamp_records WHERE id = md5('bench' || :i)::uuid;
EOF
"$(command -v pgbench)" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -M prepared -c "$POOL" -j 2 \
  -T "$SECS" -f "$R/pgbench.sql" postgres >"$R/pgbench.log" 2>&1 || { cat "$R/pgbench.log"; die "pgbench failed"; }
pgbench_tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$R/pgbench.log" | head -1)
BENCH_IDS=$R/ids wrk_ query "http://127.0.0.1:$QUERY_PORT" bench/get.lua "$QUERY_CONNS"
all_2xx query
say "   $(fmt "$(get query.wrk rps)") req/s against pgbench's $(fmt "$pgbench_tps")"

# 5. accept → readable at constant rates.
for rate in $RATES; do
  # About 250 records a second are followed (GET every 2 ms until found), so
  # that the polling does not load the machine more than the POSTs do.
  say "5. accept → readable: vegeta POST at $rate/s for ${SECS} s; every $(((rate + 249) / 250)) record(s) GET until found"
  echo "POST http://127.0.0.1:$COMMAND_PORT/api/v1/timestamp/2026-01-01T00:00:00Z" >"$R/targets"
  # At most as many connections as the closed-loop runs: a client pool, not
  # a new connection for every request that has to wait.
  "$VEGETA" attack -rate="$rate/s" -duration="${SECS}s" -timeout=10s -targets="$R/targets" \
    -workers="$CONNS" -max-workers="$CONNS" -max-connections="$CONNS" |
    "$VEGETA" encode --to json |
    "$BUILD/bench/readable" "http://127.0.0.1:$QUERY_PORT" "$(((rate + 249) / 250))" 2 "$R/readable-$rate.ms" \
      >"$R/readable-$rate"
  if [ "$(get "readable-$rate" non2xx)" != 0 ] || [ "$(get "readable-$rate" lost)" != 0 ]; then
    die "at $rate/s: $(get "readable-$rate" non2xx) non-2xx POSTs, $(get "readable-$rate" lost) records never readable"
  fi
done

# 6. footprint under load: the peaks.
RSS_PEAK_COMMAND=$(rss_kb command-service VmHWM)
RSS_PEAK_QUERY=$(rss_kb query-service VmHWM)

# ---- the table ------------------------------------------------------------------------

TABLE+=("| Figure | Measured | Ceiling | Ratio | Target | |" "|---|---:|---:|---:|---:|---|")
row "command-service POST req/s ($CONNS conn.)" "$(get command.wrk rps)" "$(get noop.wrk rps)" 0.40 "req/s"
row "consumer-service rows/s ($MESSAGES msgs, $batches batches)" "$consumer_rps" "$insert_rps" 0.50 "rows/s"
row "query-service GET req/s (pool $POOL)" "$(get query.wrk rps)" "$pgbench_tps" 0.50 "req/s"
for rate in $RATES; do
  row_max "accept→readable p99 at $rate/s (p50 $(get "readable-$rate" readable_p50_ms), max $(get "readable-$rate" readable_max_ms) ms; $(get "readable-$rate" readable) checked, achieved $(get "readable-$rate" rate)/s)" \
    "$(get "readable-$rate" readable_p99_ms)" "$([ "$rate" = 5000 ] && echo 50)" ms
done
for s in command-service consumer-service query-service; do
  case $s in
    command-service) peak=$RSS_PEAK_COMMAND ;;
    consumer-service) peak=$RSS_PEAK_CONSUMER ;;
    query-service) peak=$RSS_PEAK_QUERY ;;
  esac
  row_max "$s resident memory, peak under load (at rest $((RSS_REST[$s] / 1024)) MiB)" \
    "$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')" 32 MiB
  row_max "$s start → /ready (dependencies up; first start ${FIRST_READY[$s]} ms)" "${READY[$s]}" 200 ms
done

LAT=("| Latency (wrk, closed loop) | p50 | p99 | p99.9 | max |" "|---|---:|---:|---:|---:|")
for n in noop command query; do
  LAT+=("| $n | $(ms "$(get $n.wrk p50_us)") ms | $(ms "$(get $n.wrk p99_us)") ms | $(ms "$(get $n.wrk p999_us)") ms | $(ms "$(get $n.wrk max_us)") ms |")
done
for rate in $RATES; do
  LAT+=("| command POST at $rate/s (vegeta) | $(get "readable-$rate" post_p50_ms) ms | $(get "readable-$rate" post_p99_ms) ms | | $(get "readable-$rate" post_max_ms) ms |")
done

SIZES=$(for s in command-service consumer-service query-service; do
  printf '%s %s KiB; ' "$s" $(($(stat -c %s "$BUILD/$s") / 1024)); done)

printf '%s\n' "${TABLE[@]}"
echo
printf '%s\n' "${LAT[@]}"
echo
echo "binaries (with debug info): $SIZES"

# ---- the report ------------------------------------------------------------------------

charts() {
  cat >"$R/throughput.dat" <<EOF
"command-service\\nPOST" $(get command.wrk rps) $(get noop.wrk rps)
"consumer-service\\nrows" $consumer_rps $insert_rps
"query-service\\nGET" $(get query.wrk rps) $pgbench_tps
EOF
  gnuplot <<EOF
set terminal pngcairo size 900,500 font "sans,10"
set output "$OUT/throughput.png"
set title "Throughput against its ceiling (same machine, same run)"
set bmargin 5
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "per second"
set grid ytics
set key top right
set yrange [0:*]
plot "$R/throughput.dat" using 2:xtic(1) title "service" lc rgb "#3366cc", \
     "" using 3 title "ceiling" lc rgb "#aaaaaa"
EOF
  local plots="" timeline="" rate
  for rate in $RATES; do
    sort -n "$R/readable-$rate.ms" |
      awk -v n="$(wc -l <"$R/readable-$rate.ms")" '{ print $1, 100 * NR / n }' >"$R/readable-$rate.cdf"
    plots="$plots${plots:+, }\"$R/readable-$rate.cdf\" using 1:2 with lines lw 2 title \"$rate req/s\""
    timeline="$timeline${timeline:+, }\"$R/readable-$rate.ms\" using 2:1 with points pt 7 ps 0.3 title \"$rate req/s\""
  done
  gnuplot <<EOF
set terminal pngcairo size 900,500 font "sans,10"
set output "$OUT/readable.png"
set title "Accept → readable: time from a POST's 200 to the first GET that finds the record"
set xlabel "milliseconds"
set ylabel "% of records readable"
set logscale x
set grid
set key bottom right
set yrange [0:100]
set arrow from 50, graph 0 to 50, graph 1 nohead dt 2 lc rgb "red"
set label "target p99" at 50, 5 right offset -0.5,0 tc rgb "red"
plot $plots
EOF
  gnuplot <<EOF
set terminal pngcairo size 900,400 font "sans,10"
set output "$OUT/readable-timeline.png"
set title "Accept → readable over each run: a stall shows as a column"
set xlabel "seconds into the run"
set ylabel "milliseconds"
set logscale y
set grid
set key top right
set arrow from graph 0, first 50 to graph 1, first 50 nohead dt 2 lc rgb "red"
plot $timeline
EOF
}

report() {
  local cpu mem
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
  {
    echo "# Benchmark report"
    echo
    echo "Written by \`make bench\` ($([ "$SMOKE" = 1 ] && echo "smoke run: no thresholds" || echo "full run")) on $(date -u +%Y-%m-%dT%H:%MZ), commit $REV."
    echo
    echo "Machine: $(nproc) cores ($cpu), $mem, $(uname -sr); load generator, Kafka, PostgreSQL"
    echo "and the services all on these cores. Kafka $KAFKA_VERSION,"
    echo "PostgreSQL $("$(dirname "$(command -v pgbench)")/pgbench" --version | awk '{ print $3 }'),"
    echo "librdkafka $(dpkg-query -W -f '${Version}' librdkafka1 2>/dev/null), civetweb $(dpkg-query -W -f '${Version}' libcivetweb1 2>/dev/null), $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), vegeta $VEGETA_VERSION."
    echo "Each step ran ${SECS} s; $MESSAGES messages for the consumer."
    echo
    printf '%s\n' "${TABLE[@]}"
    echo
    echo "![throughput against ceilings](throughput.png)"
    echo
    printf '%s\n' "${LAT[@]}"
    echo
    echo "![accept → readable](readable.png)"
    echo
    echo "![accept → readable over time](readable-timeline.png)"
    echo
    echo "Binary sizes (with debug info): $SIZES"
    echo
    echo "How each figure is taken: see bench/README.md."
  } >"$OUT/REPORT.md"
}

charts
report
say "report: $OUT/REPORT.md (charts throughput.png, readable.png, readable-timeline.png; raw figures in $R)"
if [ "$SMOKE" = 1 ]; then
  say "smoke run: every step ran; no thresholds"
elif [ "$FAILED" = 1 ]; then
  say "some targets were missed (FAIL above)"
  exit 1
else
  say "every target met"
fi
