#!/usr/bin/env bash
# bench.sh BUILD_DIR OUT_DIR — make bench: each service measured against its
# ceiling in the same run, on a stack of its own (Kafka 13092, PostgreSQL
# 13432, services 13080-13082, the do-nothing server 13083; state in
# .local/bench). It measures; bench/report.py judges the figures against
# bench/targets.tsv (the targets of DESIGN.md, written once there), prints the
# table and writes OUT_DIR/REPORT.md with gnuplot charts.
#
#   1. HTTP ceiling     bench/noop-server (http_start, the services' options)
#   2. command-service  POST at fixed concurrency (wrk), real broker, acks=all;
#                       at 1, 8 and 256 connections against the produce path's
#                       ceiling (bench/produce-latency: bench/steps/command.sh);
#                       2c. open loop at the last of RATES by the producer's
#                       linger.ms (LINGERS), CPU a POST of it and the broker
#   3. consumer-service a backlog of N messages → rows/s; ceiling: the same
#                       sink statement fed by bench/insert without Kafka; a
#                       running consumer meeting a backlog, and memory against
#                       drain rate by prefetch size (bench/steps/consumer.sh)
#   4. query-service    GET random existing ids (wrk) vs pgbench -M prepared
#                       4b. range pages of 100 following Link vs pgbench
#                       running the same keyset statement (bench/steps/range.sh)
#                       4c. GET by id, and pgbench, across a CHECKPOINT
#                       after fresh writes (bench/steps/query.sh)
#   5. accept→readable  bench/attack POSTs at constant rates (open loop),
#                       bench/readable polls GET
#   6. pipeline         the highest constant POST rate the three services
#                       sustain together (every 200, the consumer keeps up,
#                       accept→readable p99 under the target), stepped
#   7. footprint        RSS at rest and peak, CPU time per 1,000 requests or
#                       rows, start → /ready, binary sizes
#   8. live             issue 12: wait-for-write and stream delivery latency
#                       at RATES, reported (bench/steps/live.sh)
#   9. cluster          issue 13: POST on 3 brokers with RF 3 and GET from a
#                       PostgreSQL standby beside steps 2 and 4's figures,
#                       reported (bench/steps/cluster.sh; Kafka P192-P197,
#                       the standby P433, services P084 and P086)
#  10. tracing          issue 14: POST, GET and a consumer's backlog with
#                       tracing off and on (100 % sampling, exporting to a
#                       do-nothing collector), twice in turn; run before 9
#                       (bench/steps/tracing.sh)
#
# env: BENCH_SMOKE=1 (a couple of seconds a step, no thresholds: make test),
#      BENCH_SECONDS (10), BENCH_MESSAGES (200000), BENCH_RATES ("1000 5000"),
#      BENCH_PIPELINE_RATES ("3000 4000 … 16000": tried in order until one fails),
#      BENCH_CONNECTIONS (64), BENCH_LINGERS ("0 1 3": step 2c),
#      BENCH_STATE_DIR (.local/bench),
#      BENCH_PORT_PREFIX (13: ports 13092, 13432, 13080-13083)
# Correctness still fails a smoke run: a non-2xx answer, a lost row.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/lib/proc.sh
. "$HERE/lib/proc.sh"
# shellcheck source=scripts/lib/cgroup.sh
. "$HERE/lib/cgroup.sh"
BUILD=$(cd "${1:?usage: bench.sh BUILD_DIR OUT_DIR}" && pwd)
mkdir -p "${2:?usage: bench.sh BUILD_DIR OUT_DIR}"
OUT=$(cd "$2" && pwd)
SMOKE=${BENCH_SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
  SECS=${BENCH_SECONDS:-2} MESSAGES=${BENCH_MESSAGES:-20000} RATES=${BENCH_RATES:-"200 1000"}
  PIPELINE_RATES=${BENCH_PIPELINE_RATES:-"500 1000"} PIPELINE_SECS=2
  WARM=1
else
  SECS=${BENCH_SECONDS:-10} MESSAGES=${BENCH_MESSAGES:-200000} RATES=${BENCH_RATES:-"1000 5000"}
  PIPELINE_RATES=${BENCH_PIPELINE_RATES:-"3000 4000 5000 6000 7000 8000 10000 12000 14000 16000"}
  PIPELINE_SECS=8
  WARM=15  # a fresh broker's JIT needs this long to reach its steady state
fi
CONNS=${BENCH_CONNECTIONS:-64}     # fewer than command-service's 128 HTTP threads
QUERY_CONNS=32                     # query-service: 64 HTTP threads, a pool of 8
POOL=8                             # DB connections: query-service's pool and pgbench's clients

export STATE_DIR=${BENCH_STATE_DIR:-$ROOT/.local/bench}
P=${BENCH_PORT_PREFIX:-13}          # ports P092, P432, P080-P083: two benches side by side
export KAFKA_PORT=${P}092 PG_PORT=${P}432
export COMMAND_PORT=${P}080 CONSUMER_PORT=${P}081 QUERY_PORT=${P}082 NOOP_PORT=${P}083
export KAFKA_BROKER=127.0.0.1:$KAFKA_PORT DB_URL=postgresql://127.0.0.1:$PG_PORT/postgres
export LOG_LEVEL=WARN DB_POOL_SIZE=$POOL
TOPIC=timestamp.command.v1
PG_CGROUP=cqrs-bench-postgres-$PG_PORT  # lib/cgroup.sh; the standby's: cluster.sh
CACHE=$ROOT/.cache
VEGETA=$CACHE/bin/vegeta
VEGETA_VERSION=$(sed -n 's/^VEGETA_VERSION=//p' "$HERE/deps.sh")
KAFKA_VERSION=$(sed -n 's/^KAFKA_VERSION=//p' "$HERE/kafka.sh")
R=$STATE_DIR/results               # raw figures and chart data
# What is measured: the commit, "-dirty" when anything but the report and
# its history differs from it (a run rewrites those).
REV=$(git -C "$ROOT" describe --always 2>/dev/null || echo unknown)
if [ "$REV" != unknown ] && ! git -C "$ROOT" diff --quiet HEAD -- . ':(exclude)bench/REPORT.md' \
     ':(exclude)bench/*.png' ':(exclude)bench/history.jsonl'; then
  REV=$REV-dirty
fi

say() { echo "[bench] $*"; }
die() { echo "[bench] error: $*" >&2; exit 1; }
psql_() { "$HERE/pg.sh" psql -qAt -v ON_ERROR_STOP=1 "$@"; }

# The load generators (wrk, pgbench, vegeta, bench/attack, bench/readable) run at nice -10
# when allowed (root or CAP_SYS_NICE). They share the two cores with the
# services, and at the same priority wrk waited for a CPU behind the
# services' and PostgreSQL's threads: that wait was counted as the service's
# latency. Step 4 measured so: wrk p99 42-71 ms while query-service's own
# histogram put p99 at <= 5 ms; with wrk at nice -10, same stack, same
# minute, alternating: 5.0-18.7 ms. A client on another host never waits
# behind the server's threads. The ceilings (noop-server, pgbench) are
# driven the same way, so the ratios compare like with like.
LOADGEN=()
if [ "$(nice -n -10 nice 2>/dev/null)" -lt "$(nice)" ]; then
  LOADGEN=(nice -n -10)
fi

# ---- tools -------------------------------------------------------------------------

tools() {  # installed by make deps-test (scripts/deps.sh test)
  local t
  for t in wrk gnuplot; do
    command -v "$t" >/dev/null || die "$t missing: run make deps-test"
  done
  [ -x "$VEGETA" ] || die "$VEGETA missing: run make deps-test"
}

# A build of Jaeger in the background (make deps-test starts one for the
# tracing tests; make bench does not) would compile on the cores being
# measured: a full run waits for it to end, up to 30 min, saying so.
jaeger_build_wait() {
  local lock=${KAFKA_CACHE_DIR:-$ROOT/.cache}/jaeger/.build.lock
  [ "$SMOKE" = 0 ] && [ -e "$lock" ] || return 0
  exec 8<"$lock"
  if ! flock -n -s 8; then
    say "a build of Jaeger is compiling on these cores (make deps-test started it): waiting for it to end before measuring (up to 30 min; log ${lock%/*}/build.log)"
    flock -w 1800 -s 8 || die "the Jaeger build still runs after 30 min"
  fi
  exec 8<&-
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

# CPU time (user + system) a program has used so far, in ms: fields 14 and
# 15 of /proc/PID/stat, in clock ticks (our programs' names hold no space).
TICK_MS=$((1000 / $(getconf CLK_TCK)))
pid_cpu_ms() { awk -v t="$TICK_MS" '{ print ($14 + $15) * t }' "/proc/$1/stat"; }
cpu_ms() { pid_cpu_ms "${PIDS[$1]}"; }

# per_1000 MS N: CPU ms per 1,000 of N things.
per_1000() { awk -v ms="$1" -v n="$2" 'BEGIN { printf "%.1f", (n > 0 ? ms * 1000 / n : 0) }'; }

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  [ -z "${PAUSE_PID:-}" ] || kill -TERM "$PAUSE_PID" 2>/dev/null || true
  for n in "${!PIDS[@]}"; do stop "$n"; done
  cluster_cleanup
  "$HERE/kafka.sh" stop >/dev/null 2>&1 || true
  "$HERE/pg.sh" stop >/dev/null 2>&1 || true
  cgroup_remove "$PG_CGROUP"
}

# ---- measuring ---------------------------------------------------------------------

# The machine around a measured run. On a shared virtual machine the host
# takes CPU time from the guest now and then (steal), and a step of ours can
# leave work behind (autovacuum, the broker's log flushes) that the next one
# pays for: so each measured run says where the two cores' time went.
# machine_mark NAME before the run, machine_note NAME after it: $R/NAME.machine
# holds probe_ms= (see machine_mark), steal_pct= iowait_pct= idle_pct= (of
# all CPU time meanwhile), top= (the five programs that used most CPU,
# name:ms; kernel threads summed as kernel, processes of one name summed) and
# bench/pause's pause_rt= pause_max_ms= pauses_10ms= (how late a real-time
# thread's wake-ups came: time the whole virtual machine stood still), and
# the brokers' garbage-collection pauses meanwhile (scripts/kafka.sh logs them):
# gc_pauses= gc_pause_max_ms= gc_pause_ms= (how many, the longest, in all),
# waited= (the six programs whose threads waited longest, runnable, for a
# core, name:ms, as proc_wait counts it: who paid when the cores were busy)
# and PostgreSQL's WAL meanwhile, wal_mb= wal_fpi= (pg_wal).
# A program that exited before the note (the load generator) is not in top:
# loadgen_ms= is what this shell's children that ended between mark and
# note took (bash's times), which is the load generator alone: wrk, or
# bench/attack and bench/readable (vegeta and its encoder in step 8).
proc_cpu() {  # name ticks, one line per running process
  local f line name rest t tname jit
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    name=${line#*\(}
    name=${name%)*}
    rest=${line##*) }
    case $name in kworker/* | ksoftirqd/* | rcu_* | migration/* | jbd2/*) name=kernel ;; esac
    # shellcheck disable=SC2086  # the fields, split on purpose
    set -- $rest
    echo "${name// /_} $((${12} + ${13}))"
    # A JVM's JIT compiler threads, also apart: a broker still compiling
    # is a broker still warming up.
    [ "$name" = java ] || continue
    jit=0
    for t in "${f%/stat}"/task/*; do
      { read -r tname <"$t/comm"; } 2>/dev/null || continue
      case $tname in "C1 Compiler"* | "C2 Compiler"*) ;; *) continue ;; esac
      { read -r line <"$t/stat"; } 2>/dev/null || continue
      # shellcheck disable=SC2086  # the fields, split on purpose
      set -- ${line##*) }
      jit=$((jit + ${12} + ${13}))
    done
    echo "java-jit $jit"
  done
}

# proc_wait: "TID NAME NS" for every thread running: how long it has waited
# on a run queue, runnable, for a core (its schedstat's second field), and
# the name of its process (ksoftirqd apart from the other kernel threads:
# the packets a sender's own softirq did not handle, and loopback carries
# every request here, wait for it, and it waits for a core like any thread).
# Nothing without schedstats (a kernel without CONFIG_SCHED_INFO).
proc_wait() {
  local d t line name run wait rest
  [ -r /proc/self/schedstat ] || return 0
  for d in /proc/[0-9]*; do
    { read -r line <"$d/stat"; } 2>/dev/null || continue
    name=${line#*\(}
    name=${name%)*}
    case $name in
      ksoftirqd/*) name=ksoftirqd ;;
      kworker/* | rcu_* | migration/* | jbd2/*) name=kernel ;;
    esac
    for t in "$d"/task/*; do
      # shellcheck disable=SC2034  # run and rest: the fields around wait
      { read -r run wait rest <"$t/schedstat"; } 2>/dev/null || continue
      echo "${t##*/} ${name// /_} $wait"
    done
  done
}

# pg_wal: "BYTES FPI", the WAL PostgreSQL has written so far and how many
# full-page images it held (the first change to a page after a checkpoint
# logs the whole 8 kB page: WAL grows several times over until most pages
# were touched once); nothing when the database does not answer.
pg_wal() {
  psql_ -F ' ' -c "SELECT wal_bytes, wal_fpi FROM pg_stat_wal" 2>/dev/null || true
}

machine_mark() {
  local t0
  # probe: how long one core takes for a fixed loop just before the run;
  # a slow machine (a busy host, a step's leftovers) shows as a long probe.
  t0=$(date +%s%N)
  awk 'BEGIN { for (i = 0; i < 2000000; i++) s += i % 7 }'
  echo $((($(date +%s%N) - t0) / 1000000)) >"$R/$1.probe"
  head -1 /proc/stat >"$R/$1.stat0"
  proc_cpu >"$R/$1.proc0"
  proc_wait >"$R/$1.wait0"
  pg_wal >"$R/$1.wal0"
  "$BUILD/bench/pause" 900 >"$R/$1.pause" 2>/dev/null &
  PAUSE_PID=$!
  gc_logs_mark >"$R/$1.gc0"
  times >"$R/$1.times0"  # last: nothing of the mark's own after it
}

# children_ms FILE: the user + system time of the shell's ended children in
# a `times` output (its second line, like 0m1.234s 0m0.567s; a locale's
# decimal comma read as a point), in ms.
children_ms() {
  sed -n 2p "$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { gsub(/,/, ".", $i); split($i, p, /[ms]/); t += p[1] * 60 + p[2] } printf "%d", t * 1000 }'
}

# gc_logs_mark: each broker's GC log (step 9's cluster's too) and its size
# now, one "SIZE FILE" a line.
gc_logs_mark() {
  local f
  for f in "$STATE_DIR"/kafka*-gc.log "$STATE_DIR"/cluster/kafka*-gc.log; do
    [ -f "$f" ] && echo "$(wc -c <"$f") $f"
  done
  return 0
}

# gc_pauses MARKS: the pauses logged since gc_logs_mark wrote MARKS, as
# gc_pauses= gc_pause_max_ms= gc_pause_ms=. A log that rotated since (it is
# shorter now) is read whole; one that rotated and grew past the mark again
# loses the pauses before its rotation (10 MB of log: not within one run).
# Nothing when there was no log: the report then says "?", not 0.
gc_pauses() {
  local size f now
  [ -s "$1" ] || return 0
  {
    while read -r size f; do
      [ -f "$f" ] || continue
      now=$(wc -c <"$f")
      if [ "$now" -ge "$size" ]; then tail -c +"$((size + 1))" "$f"; else cat "$f"; fi
    done <"$1"
  } | awk '/ Pause / && $NF ~ /^[0-9.]+ms$/ { v = $NF + 0; n++; t += v; if (v > m) m = v }
           END { printf "gc_pauses=%d gc_pause_max_ms=%.1f gc_pause_ms=%.1f\n", n, m, t }'
}
machine_note() {
  local top pause loadgen waited wal
  times >"$R/$1.times1"  # first: before bench/pause is waited for
  loadgen=$(($(children_ms "$R/$1.times1") - $(children_ms "$R/$1.times0")))
  kill -TERM "$PAUSE_PID" 2>/dev/null || true
  wait "$PAUSE_PID" 2>/dev/null || true
  pause=$(cat "$R/$1.pause")
  top=$(proc_cpu | awk -v t="$TICK_MS" 'NR == FNR { a[$1] += $2; next } { b[$1] += $2 }
          END { for (k in b) if (b[k] - a[k] > 0) print (b[k] - a[k]) * t, k }' "$R/$1.proc0" - |
        sort -rn | head -5 | awk '{ printf "%s%s:%d", (NR > 1 ? "," : ""), $2, $1 }')
  # By thread: one that ended meanwhile is left out, one that began counts
  # whole; under 10 ms (this shell's own pipelines) is left out.
  waited=$(proc_wait | awk -v mark="$R/$1.wait0" '
             BEGIN { while ((getline line < mark) > 0) { split(line, f, " "); a[f[1]] = f[3] } }
             { d = $3 - ($1 in a ? a[$1] : 0); if (d > 0) w[$2] += d }
             END { for (k in w) if (w[k] >= 1e7) printf "%d %s\n", w[k] / 1e6, k }' |
           sort -rn | head -6 | awk '{ printf "%s%s:%d", (NR > 1 ? "," : ""), $2, $1 }')
  wal=$(pg_wal | awk -v a="$(cat "$R/$1.wal0")" 'NF == 2 && split(a, p, " ") == 2 && $1 >= p[1] {
          printf "wal_mb=%.1f wal_fpi=%d", ($1 - p[1]) / 1048576, $2 - p[2] }')
  head -1 /proc/stat | awk -v top="$top" -v waited="$waited" -v wal="$wal" -v probe="$(cat "$R/$1.probe")" -v pause="$pause" -v gc="$(gc_pauses "$R/$1.gc0")" -v loadgen="$loadgen" 'NR == FNR { for (i = 2; i <= 9; i++) a[i] = $i; next }
    { for (i = 2; i <= 9; i++) { d[i] = $i - a[i]; s += d[i] } }
    END { if (s <= 0) s = 1
          printf "probe_ms=%d steal_pct=%.1f iowait_pct=%.1f idle_pct=%.1f top=%s %s %s loadgen_ms=%d%s%s\n", probe, 100 * d[9] / s, 100 * d[6] / s, 100 * d[5] / s, top, pause, gc, loadgen, (waited == "" ? "" : " waited=" waited), (wal == "" ? "" : " " wal) }' \
    "$R/$1.stat0" - >"$R/$1.machine"
  rm -f "$R/$1.probe" "$R/$1.stat0" "$R/$1.proc0" "$R/$1.pause" "$R/$1.gc0" "$R/$1.wait0" "$R/$1.wal0" "$R/$1.times0" "$R/$1.times1"
}

# wrk_ NAME URL SCRIPT CONNS: closed-loop load; the BENCH line into $R/NAME.wrk.
# Two wrk threads, or one for one connection (wrk refuses more threads than
# connections).
wrk_() {
  machine_mark "$1"
  (cd "$ROOT" && "${LOADGEN[@]}" wrk -t"$(($4 < 2 ? $4 : 2))" -c"$4" -d"${SECS}s" --timeout 10s -s "$3" "$2") >"$R/$1.wrk.log" 2>&1 ||
    { cat "$R/$1.wrk.log"; die "wrk failed against $2"; }
  machine_note "$1"
  grep '^BENCH ' "$R/$1.wrk.log" >"$R/$1.wrk" || { cat "$R/$1.wrk.log"; die "no figures from wrk"; }
}

# all_2xx NAME: a correctness check, so also in a smoke run.
all_2xx() {
  if [ "$(get "$1.wrk" non2xx)" != 0 ] || [ "$(get "$1.wrk" socket_errors)" != 0 ]; then
    die "$1: $(get "$1.wrk" non2xx) non-2xx answers, $(get "$1.wrk" socket_errors) socket errors (see $R/$1.wrk.log)"
  fi
}

# warm NAME URL SCRIPT CONNS [SECONDS]: load not measured (as warm-NAME), so
# that the JVM's JIT, caches and connections are warm before a measured run;
# WARM seconds unless told (1 s before each run on a broker already warm).
warm() {
  local SECS=${5:-$WARM}
  wrk_ "warm-$1" "$2" "$3" "$4"
}

# get FILE KEY: a value of a key=value line.
get() { tr ' ' '\n' <"$R/$1" | sed -n "s/^$2=//p"; }
# get_ms FILE KEY: a value in µs, in ms with two decimals.
get_ms() { awk -v u="$(get "$1" "$2")" 'BEGIN { printf "%.2f", u / 1000 }'; }

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

# Numbers for the progress lines (the report's own are bench/report.py's).
fmt() { awk -v v="$1" 'BEGIN { if (v == int(v)) printf "%\047d", v; else printf "%.2f", v }'; }

# ---- the steps ---------------------------------------------------------------------

# The steps that have files of their own (bench/steps/*.sh: step_* functions).
for f in "$ROOT"/bench/steps/*.sh; do
  # shellcheck source=/dev/null
  [ -e "$f" ] && . "$f"
done

# readable_run RATE SECONDS NAME [overload]: bench/attack POSTs at a
# constant RATE for SECONDS, open loop (each POST's latency counts from when
# it was due), while bench/readable follows about 250 records a second (GET
# every 2 ms until found, so that the polling does not load the machine more
# than the POSTs do); figures into $R/NAME, one line per followed record into
# $R/NAME.ms. Fails the run on a record accepted but never readable, and on a
# non-2xx answer unless "overload" (the pipeline step looks for the rate at
# which they begin).
readable_run() {
  local rate=$1 secs=$2 name=$3 overload=${4:-}
  machine_mark "$name"
  # At most as many connections as the closed-loop runs: a client pool, not
  # a new connection for every request that has to wait. Until 2026-12-04
  # vegeta made these POSTs: with its encoder it took 100-117 µs of CPU a
  # request, against bench/attack's 52-55 µs (bench/README.md).
  "${LOADGEN[@]}" "$BUILD/bench/attack" "http://127.0.0.1:$COMMAND_PORT/api/v1/timestamp/2026-01-01T00:00:00Z" \
    "$rate" "$secs" "$CONNS" |
    "${LOADGEN[@]}" "$BUILD/bench/readable" "http://127.0.0.1:$QUERY_PORT" "$(((rate + 249) / 250))" 2 "$R/$name.ms" \
      >"$R/$name"
  machine_note "$name"
  if { [ -z "$overload" ] && [ "$(get "$name" non2xx)" != 0 ]; } || [ "$(get "$name" lost)" != 0 ]; then
    die "at $rate/s: $(get "$name" non2xx) non-2xx POSTs, $(get "$name" lost) records never readable"
  fi
}

# 6. The pipeline's sustainable rate: each rate of PIPELINE_RATES in turn,
# for PIPELINE_SECS, until one fails; then once halfway between the last
# that held and the first that did not (when the first rate fails, half of
# it, and so on). A rate holds when bench/attack achieved it
# (98 %), every POST got 200, accept→readable p99 stayed under the target and
# the consumer kept up: 1 s after the last POST every accepted record is a
# row. $R/pipeline: rate= (the highest that held), tried=, failed_at=, why=.
pipeline_holds() {  # RATE: 0 when it holds; the reason in WHY
  local rate=$1 name="pipeline-$1" before after accepted p99 achieved
  before=$(rows)
  readable_run "$rate" "$PIPELINE_SECS" "$name" overload
  sleep 1
  after=$(rows)
  accepted=$(get "$name" posts)
  p99=$(get "$name" readable_p99_ms)
  achieved=$(get "$name" rate)
  WHY=
  if [ "$(get "$name" non2xx)" != 0 ]; then
    WHY="$(get "$name" non2xx) of $accepted POSTs not answered 200"
  elif awk -v a="$achieved" -v r="$rate" 'BEGIN { exit !(a < 0.98 * r) }'; then
    WHY="the POSTs achieved $achieved/s"
  elif awk -v p="$p99" -v l="$READABLE_LIMIT_MS" 'BEGIN { exit !(p >= l) }'; then
    WHY="accept→readable p99 $p99 ms"
  elif [ $((after - before)) -lt "$accepted" ]; then
    WHY="the consumer fell behind: $((accepted - after + before)) of $accepted accepted not stored 1 s later"
  fi
  say "   $rate/s: accept→readable p99 $p99 ms, achieved $achieved/s${WHY:+: fails ($WHY)}"
  [ -z "$WHY" ]
}

step_pipeline() {
  local rate held=0 failed=0 why="" tried=""
  say "6. pipeline: the three services together, constant POST rates for ${PIPELINE_SECS} s each, until one fails"
  for rate in $PIPELINE_RATES; do
    tried="$tried${tried:+,}$rate"
    if pipeline_holds "$rate"; then
      held=$rate
    else
      failed=$rate why=$WHY
      break
    fi
  done
  # The first rate failed: halve it until one holds (down to 250/s).
  rate=${PIPELINE_RATES%% *}
  while [ "$held" = 0 ] && [ $((rate /= 2)) -ge 250 ]; do
    tried="$tried,$rate"
    if pipeline_holds "$rate"; then held=$rate; else failed=$rate why=$WHY; fi
  done
  if [ "$failed" != 0 ] && [ "$held" != 0 ] && [ $((failed - held)) -gt 500 ]; then
    rate=$(((held + failed) / 2 / 100 * 100))
    tried="$tried,$rate"
    if pipeline_holds "$rate"; then held=$rate; else failed=$rate why=$WHY; fi
  fi
  echo "rate=$held tried=$tried failed_at=$failed why=${why// /_}" >"$R/pipeline"
  if [ "$failed" = 0 ]; then
    say "   sustained every rate tried, up to $held/s"
  else
    say "   sustainable: $held/s (at $failed/s: $why)"
  fi
}

# ---- the run -----------------------------------------------------------------------

trap cleanup EXIT
cleanup
# A fresh broker and database each run: nothing left from an earlier one.
rm -rf "$STATE_DIR"
mkdir -p "$STATE_DIR" "$R"
tools
jaeger_build_wait
READABLE_LIMIT_MS=$(awk -F '\t' '$1 == "readable-5000" { print $5 }' "$ROOT/bench/targets.tsv")
say "stack: Kafka :$KAFKA_PORT, PostgreSQL :$PG_PORT, services :$COMMAND_PORT-$QUERY_PORT (state in $STATE_DIR)"
"$HERE/pg.sh" start >/dev/null
# One scheduling group for the database, not one a backend (lib/cgroup.sh).
cgroup_own "$PG_CGROUP" "$(head -1 "$STATE_DIR/pgdata/postmaster.pid")"
PG_CGROUP_NOTE=$CGROUP_NOTE
say "PostgreSQL runs $PG_CGROUP_NOTE"
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
# broker's alone (the consumer has step 3); it catches up afterwards. The
# ceiling and the service take turns, twice, and the gate compares their
# means: on a shared host the machine's speed drifts within a minute (see
# the machine table of the report), and a ceiling measured once, before,
# judged the service against another machine.
stop consumer-service
start noop "$NOOP_PORT" "$BUILD/bench/noop-server"
rows_before=$(rows)
say "1-2. HTTP ceiling (do-nothing civetweb handler) and command-service POST /api/v1/timestamp/{ts} (acks=all) in turn, twice; $CONNS connections, ${SECS} s each"
warm noop "http://127.0.0.1:$NOOP_PORT" bench/post.lua "$CONNS"
warm command "http://127.0.0.1:$COMMAND_PORT" bench/post.lua "$CONNS"
cpu_ms_post=0
accepted=$(get warm-command.wrk requests)
for n in -1 ""; do  # the second round's files: noop.wrk, command.wrk
  wrk_ "noop$n" "http://127.0.0.1:$NOOP_PORT" bench/post.lua "$CONNS"
  cpu0=$(cpu_ms command-service)
  wrk_ "command$n" "http://127.0.0.1:$COMMAND_PORT" bench/post.lua "$CONNS"
  cpu_ms_post=$((cpu_ms_post + $(cpu_ms command-service) - cpu0))
  all_2xx "command$n"
  accepted=$((accepted + $(get "command$n.wrk" requests)))
done
stop noop
all_2xx warm-command
cpu_post=$(per_1000 "$cpu_ms_post" $(($(get command-1.wrk requests) + $(get command.wrk requests))))
awk -v n1="$(get noop-1.wrk rps)" -v n2="$(get noop.wrk rps)" -v c1="$(get command-1.wrk rps)" -v c2="$(get command.wrk rps)" \
  'BEGIN { printf "noop_rps=%.1f command_rps=%.1f\n", (n1 + n2) / 2, (c1 + c2) / 2 }' >"$R/command-pair"
say "   $(fmt "$(get command-pair command_rps)") req/s against $(fmt "$(get command-pair noop_rps)") (means; rounds: $(fmt "$(get command-1.wrk rps)") against $(fmt "$(get noop-1.wrk rps)"), $(fmt "$(get command.wrk rps)") against $(fmt "$(get noop.wrk rps)")); $cpu_post CPU ms per 1,000 POSTs"
command_step  # 2b. 1, 8, 64 and 256 connections, and the produce path's ceiling
for f in "$R"/command-c*.wrk "$R"/warm-command-c*.wrk; do
  accepted=$((accepted + $(get "$(basename "$f")" requests)))
done
# 2c restarts command-service: its peak under the closed loops so far is
# taken now, and step 7 reports the larger of it and the later one.
RSS_PEAK_COMMAND_CLOSED=$(rss_kb command-service VmHWM)
command_linger  # 2c. POSTs at 5,000/s by the producer's linger.ms
for l in $LINGERS; do
  accepted=$((accepted + $(get "linger-$l" accepted)))
done
start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service"
drain $((rows_before + accepted))
stored=$(($(rows) - rows_before))
# wrk counts requests that completed; one it cut off may still be stored.
[ "$stored" -ge "$accepted" ] || die "command-service: $accepted requests answered 200 but only $stored rows stored"
say "   all $accepted accepted (warm-up included) stored"

# 3. consumer-service on a backlog; ceiling: the same statement without Kafka.
say "3. consumer-service: a backlog of $MESSAGES messages → rows/s; ceiling: bench/insert"
psql_ -c "TRUNCATE timestamp_records, timestamp_counts"
"$BUILD/bench/insert" "$DB_URL" "$MESSAGES" 2000 >"$R/insert.out"
insert_s=$(awk '{ print $4 }' "$R/insert.out")
psql_ -c "TRUNCATE timestamp_records, timestamp_counts"
stop consumer-service
"$BUILD/bench/produce" "$KAFKA_BROKER" "$TOPIC" "$MESSAGES" >"$R/produce.out"
start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service"
cpu0=$(cpu_ms consumer-service)
deadline=$((SECONDS + 300))
until [ "$(rows)" -ge "$MESSAGES" ]; do
  [ $SECONDS -lt $deadline ] || die "consumer-service stored $(rows) of $MESSAGES rows in 300 s"
  sleep 0.2
done
cpu_row=$(per_1000 $(($(cpu_ms consumer-service) - cpu0)) "$MESSAGES")
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
RSS_BACKLOG_CONSUMER=$(rss_kb consumer-service VmHWM)
say "   $(fmt "$consumer_rps") rows/s in $batches batches against $(fmt "$insert_rps"); all $MESSAGES stored once; $cpu_row CPU ms per 1,000 rows; peak RSS $((RSS_BACKLOG_CONSUMER / 1024)) MiB"
consumer_steps  # 3b-3d: a running consumer meeting a backlog (SIGSTOP, burst); memory by prefetch size

# 4. query-service vs pgbench, the same rows by primary key, 8 DB connections.
say "4. query-service: GET by id ($QUERY_CONNS connections, pool of $POOL) vs pgbench -M prepared -c $POOL"
# pgbench has no list of uuids to pick from, so these rows get ids both sides
# can compute: md5('bench' || i), i in 0..N-1 (the md5 costs pgbench ~1 µs).
psql_ -c "INSERT INTO timestamp_records (id, event_timestamp, created_at)
          SELECT md5('bench' || i)::uuid, now(), now() FROM generate_series(0, $((MESSAGES - 1))) i" \
      -c "VACUUM ANALYZE timestamp_records"
psql_ -c "SELECT md5('bench' || i)::uuid FROM generate_series(0, $((MESSAGES - 1))) i" >"$R/ids"
printf '%s\n' "\\set i random(0, $((MESSAGES - 1)))" \
  "SELECT id, event_timestamp, created_at FROM timestamp_records WHERE id = md5('bench' || :i)::uuid;" \
  >"$R/pgbench.sql"
"${LOADGEN[@]}" "$(command -v pgbench)" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -M prepared -c "$POOL" -j 2 \
  -T "$SECS" -f "$R/pgbench.sql" postgres >"$R/pgbench.log" 2>&1 || { cat "$R/pgbench.log"; die "pgbench failed"; }
pgbench_tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$R/pgbench.log" | head -1)
cpu0=$(cpu_ms query-service)
BENCH_IDS=$R/ids wrk_ query "http://127.0.0.1:$QUERY_PORT" bench/get.lua "$QUERY_CONNS"
cpu_get=$(per_1000 $(($(cpu_ms query-service) - cpu0)) "$(get query.wrk requests)")
all_2xx query
query_server_tail query  # the service's own histogram of the same requests
say "   $(fmt "$(get query.wrk rps)") req/s against pgbench's $(fmt "$pgbench_tps"); p99 $(get_ms query.wrk p99_us) ms; $cpu_get CPU ms per 1,000 GETs"
range_step  # 4b. range pages following Link vs pgbench running the same keyset statement
query_checkpoint_step  # 4c. GET by id across a CHECKPOINT, pgbench beside it

# 5. accept → readable at constant rates, with a consumer started afresh:
# its peak memory from here on is the steady state's.
stop consumer-service
start consumer-service "$CONSUMER_PORT" "$BUILD/consumer-service"
for rate in $RATES; do
  say "5. accept → readable: bench/attack POST at $rate/s for ${SECS} s; every $(((rate + 249) / 250)) record(s) GET until found"
  t0=$(date -u +%FT%T.%3NZ)
  readable_run "$rate" "$SECS" "readable-$rate"
  query_split "readable-$rate" "$t0"  # accept → transaction start, and the gaps between batches
done
RSS_STEADY_CONSUMER=$(rss_kb consumer-service VmHWM)
# query-service's peak under the GETs above, with its default reserve of
# threads for waits and streams: step_live restarts it with a larger one.
RSS_PEAK_QUERY=$(rss_kb query-service VmHWM)

step_live

step_pipeline

# 7. footprint under load: the peaks.
RSS_PEAK_COMMAND=$(rss_kb command-service VmHWM)
[ "$RSS_PEAK_COMMAND" -ge "$RSS_PEAK_COMMAND_CLOSED" ] || RSS_PEAK_COMMAND=$RSS_PEAK_COMMAND_CLOSED

step_tracing  # 10. the services with tracing off and on (before 9: the cluster's JVMs would disturb it)

step_cluster  # 9. the same POSTs on 3 brokers with RF 3, the same GETs from a standby

# ---- the verdicts and the report ---------------------------------------------------------------

# Every figure that is not in a results file already, one key=value a line,
# for bench/report.py, which judges them against bench/targets.tsv.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
  echo "rev=$REV"
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "machine=$(nproc) cores ($cpu), $mem, $(uname -sr)"
  echo "loadgen=${LOADGEN[*]:-normal priority}"
  echo "postgres_cgroup=$PG_CGROUP_NOTE"
  echo "versions=Kafka $KAFKA_VERSION, PostgreSQL $(pgbench --version | awk '{ print $3 }'), librdkafka $(dpkg-query -W -f '${Version}' librdkafka1 2>/dev/null), civetweb $(dpkg-query -W -f '${Version}' libcivetweb1 2>/dev/null), $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), vegeta $VEGETA_VERSION."
  echo "seconds=$SECS"
  echo "messages=$MESSAGES"
  echo "conns=$CONNS"
  echo "query_conns=$QUERY_CONNS"
  echo "pool=$POOL"
  echo "batch_size=${CONSUMER_BATCH_SIZE:-2000}"
  echo "rates=$(echo "$RATES" | tr ' ' ',')"
  echo "batches=$batches"
  echo "consumer_rps=$consumer_rps"
  echo "insert_rps=$insert_rps"
  echo "pgbench_tps=$pgbench_tps"
  echo "cpu_ms_per_1000_post=$cpu_post"
  echo "cpu_ms_per_1000_row=$cpu_row"
  echo "cpu_ms_per_1000_get=$cpu_get"
  echo "rss_backlog_mib_consumer-service=$(mib "$RSS_BACKLOG_CONSUMER")"
  for s in command-service consumer-service query-service; do
    case $s in
      command-service) peak=$RSS_PEAK_COMMAND ;;
      consumer-service) peak=$RSS_STEADY_CONSUMER ;;
      query-service) peak=$RSS_PEAK_QUERY ;;
    esac
    echo "rss_peak_mib_$s=$(mib "$peak")"
    echo "rss_rest_mib_$s=$((RSS_REST[$s] / 1024))"
    echo "ready_ms_$s=${READY[$s]}"
    echo "first_ready_ms_$s=${FIRST_READY[$s]}"
    echo "size_kib_$s=$(($(stat -c %s "$BUILD/$s") / 1024))"
    strip -o "$R/$s.stripped" "$BUILD/$s"
    echo "stripped_kib_$s=$(($(stat -c %s "$R/$s.stripped") / 1024))"
  done
} >"$R/run"

rc=0
BENCH_SMOKE=$SMOKE python3 "$ROOT/bench/report.py" "$R" "$OUT" || rc=$?
say "report: $OUT/REPORT.md (charts throughput.png, readable.png, readable-timeline.png; raw figures in $R)"
exit "$rc"
