#!/usr/bin/env bash
# dr-drill.sh — the disaster-recovery drill: rebuild timestamp_records (and its
# counts per minute, timestamp_counts) from the Kafka topic without downtime
# (blue-green), then twice more the hard way (for a lost database), and prove
# that every row comes back identical and the counts match the rows.
#
# usage: scripts/dr-drill.sh   against a running stack (`make run`, or any stack
#                              of scripts/services.sh: `make test-dr` starts one)
# The same rebuilds are a test of the fault suite too (integration/faults/dr_test.c).
#
#  1. create DR_RECORDS records through the command service (a mix of offsets,
#     fractions, a leap second, "now", and Idempotency-Key retries);
#  2. wait until every one is readable through the query service;
#  (0) the zero-downtime rebuild: DR_READERS readers GET the ids just created
#      and a writer POSTs new ones while `consumer-service --rebuild` runs with
#      the stack consumer's environment; it must exit 0, no read may answer
#      anything but 200, every new ticket must be readable afterwards, every
#      row of the old table must be in the new one unchanged, and
#      `consumer-service --verify` (when the binary has it) must pass. Prints
#      the readers' error count and the switch time; drops the old tables
#      when all of that holds (kept for a look when not);
#  3. snapshot the table (id, event_timestamp, created_at, exact text);
#  (a) TRUNCATE (the table and its counts), start one more consumer with a new KAFKA_GROUP_ID on a spare
#      port until the row count matches, stop it, compare with the snapshot;
#  (b) stop the stack's consumer (its pid file), TRUNCATE, run
#      `consumer-service --reset-offsets earliest`, start the consumer again
#      exactly as it ran before (same binary, environment and directory), wait,
#      compare.
# Identical rows in both, and counts equal to the rows' GROUP BY, or the
# verdict is FAIL (with a diff summary) and the exit status 1. The stack is left as it was found: the consumer runs, and
# should a rebuild fail, the rows it missed are restored from a copy taken
# before the first TRUNCATE. The drill assumes no other traffic meanwhile.
# The extra consumer and the reset run with the stack consumer's own
# environment (/proc/<pid>/environ), so they use its broker, topic, group and
# database; only SERVER_PORT and, for (a), KAFKA_GROUP_ID differ.
#
# env:   STATE_DIR (<repo>/.local/run; the stack's pid files and logs; the drill's
#        files go to STATE_DIR/dr-drill), COMMAND_PORT (7080), CONSUMER_PORT (7081),
#        QUERY_PORT (7082), KAFKA_PORT (9092; to delete the drill's group at the end),
#        PG_PORT (5432; for psql when the consumer's DB_URL is not known),
#        COMMAND_URL (http://127.0.0.1:COMMAND_PORT), QUERY_URL (http://127.0.0.1:QUERY_PORT),
#        DR_DB_URL (psql URL; default: the consumer's DB_URL and DB_USERNAME),
#        BIN_DIR (<repo>/build; its consumer-service runs the rebuilds),
#        DR_RECORDS (1001), DR_READERS (20), DR_SPARE_PORT (CONSUMER_PORT+2; the extra consumer's
#        HTTP port), DR_WAIT_SECONDS (120; for each wait)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/lib/proc.sh
. "$HERE/lib/proc.sh"
case "${1:-}" in
  "") ;;
  *) echo "usage: $0   (against a running stack; see the comment at the top)" >&2; exit 2 ;;
esac

export STATE_DIR=${STATE_DIR:-$ROOT/.local/run}
export COMMAND_PORT=${COMMAND_PORT:-7080} CONSUMER_PORT=${CONSUMER_PORT:-7081}
export QUERY_PORT=${QUERY_PORT:-7082} KAFKA_PORT=${KAFKA_PORT:-9092} PG_PORT=${PG_PORT:-5432}
export BIN_DIR=${BIN_DIR:-$ROOT/build}
COMMAND_URL=${COMMAND_URL:-http://127.0.0.1:$COMMAND_PORT}
QUERY_URL=${QUERY_URL:-http://127.0.0.1:$QUERY_PORT}
RECORDS=${DR_RECORDS:-1001}
READERS=${DR_READERS:-20}
SPARE_PORT=${DR_SPARE_PORT:-$((CONSUMER_PORT + 2))}
WAIT_SECONDS=${DR_WAIT_SECONDS:-120}
WORK=$STATE_DIR/dr-drill
PIDFILE=$STATE_DIR/consumer-service.pid
CONSUMER_LOG=$STATE_DIR/consumer-service.log
TABLE=timestamp_records
COUNTS=timestamp_counts  # the consumer keeps it with the rows: emptied with them

say() { echo "dr-drill: $*"; }
die() { echo "dr-drill: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

case $RECORDS in '' | *[!0-9]* | 0) die "DR_RECORDS must be a positive integer, not '$RECORDS'" ;; esac
case $READERS in '' | *[!0-9]* | 0) die "DR_READERS must be a positive integer, not '$READERS'" ;; esac

# ---- state the exit trap looks at ------------------------------------------

EXTRA_PID=""        # the extra consumer of rebuild (a), while it runs
LOAD_PIDS=()        # the readers and the writer of the zero-downtime rebuild
EXTRA_GROUP=""      # its group, deleted at the end
CONSUMER_STOPPED=0  # 1 while the stack's consumer is stopped by us
BACKUP_TAKEN=0      # 1 once the whole table is copied to $WORK/backup.copy
TABLE_DIRTY=0       # 1 from a TRUNCATE until the rebuild matched the snapshot
CONSUMER_EXE="" CONSUMER_CWD=""
CONSUMER_ENV=()

# shellcheck disable=SC2317  # invoked by the trap
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "${#LOAD_PIDS[@]}" -gt 0 ]; then
    : >"$WORK/load.stop"
    wait "${LOAD_PIDS[@]}" 2>/dev/null || true
  fi
  if [ -n "$EXTRA_PID" ]; then
    proc_stop "$EXTRA_PID" "the extra consumer" || true
    wait "$EXTRA_PID" 2>/dev/null || true
  fi
  if [ "$CONSUMER_STOPPED" = 1 ]; then
    say "starting the stack's consumer again"
    start_consumer || true
  fi
  if [ "$TABLE_DIRTY" = 1 ] && [ "$BACKUP_TAKEN" = 1 ]; then
    say "restoring the rows the rebuild did not bring back from $WORK/backup.copy"
    restore_backup || say "restore failed; the copy is in $WORK/backup.copy"
  fi
  if [ -n "$EXTRA_GROUP" ]; then
    "$HERE/kafka.sh" groups --delete --group "$EXTRA_GROUP" >/dev/null 2>&1 \
      || say "note: could not delete the drill's consumer group $EXTRA_GROUP"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---- helpers ------------------------------------------------------------------

# Sets DB to the libpq URL $1 without its password (user:PASSWORD@ or
# ?password=), which is safe to print and to put on psql's command line, and
# exports PGPASSWORD (percent-decoded) when it had one: `ps` shows every
# argument, and the drill's output is often pasted into tickets.
url_without_password() {
  local url=$1 scheme rest authority path="" query="" userinfo pw="" kv kvs kept=()
  scheme=${url%%://*} rest=${url#*://}
  if [[ $rest == *\?* ]]; then query=${rest#*\?} rest=${rest%%\?*}; fi
  authority=${rest%%/*}
  [[ $rest != */* ]] || path=/${rest#*/}
  if [[ $authority == *@* ]]; then
    userinfo=${authority%@*}
    if [[ $userinfo == *:* ]]; then pw=${userinfo#*:} userinfo=${userinfo%%:*}; fi
    authority=$userinfo@${authority##*@}
  fi
  if [ -n "$query" ]; then
    IFS='&' read -ra kvs <<<"$query"
    for kv in "${kvs[@]}"; do
      case $kv in password=*) pw=${kv#password=} ;; *) kept+=("$kv") ;; esac
    done
    query=$(IFS='&'; echo "${kept[*]}")
  fi
  DB=$scheme://$authority$path${query:+?$query}
  [ -z "$pw" ] || PGPASSWORD=$(printf '%b' "${pw//%/\\x}")
  [ -z "$pw" ] || export PGPASSWORD
}

psql_() { PGTZ=UTC PGDATESTYLE=ISO psql "$DB" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
row_count() { psql_ -c "SELECT count(*) FROM $TABLE"; }
dump_rows() {  # the compared columns, exact text, in id order
  psql_ -F '|' -c "SELECT id, event_timestamp, created_at FROM $TABLE ORDER BY id" >"$1"
}
restore_backup() {  # as the consumer writes: the advisory lock for seq, the rows really inserted counted
  psql_ -c "CREATE TEMP TABLE dr_restore (LIKE $TABLE)" \
        -c "\\copy dr_restore FROM '$WORK/backup.copy'" \
        -c "WITH l AS (SELECT pg_advisory_xact_lock(7461738, hashtext('$TABLE'))),
                 ins AS (INSERT INTO $TABLE (id, event_timestamp, created_at, persisted_at)
                         SELECT r.id, r.event_timestamp, r.created_at, r.persisted_at FROM l, dr_restore r
                         ON CONFLICT (id) DO NOTHING RETURNING event_timestamp)
            INSERT INTO $COUNTS AS c (minute, count)
            SELECT date_trunc('minute', event_timestamp, 'UTC'), count(*) FROM ins GROUP BY 1 ORDER BY 1
            ON CONFLICT (minute) DO UPDATE SET count = c.count + excluded.count"
}
# The minutes of the counts that differ from the rows' GROUP BY (0 when they agree).
counts_differ() {
  psql_ -c "SELECT count(*) FROM $COUNTS c FULL JOIN (SELECT date_trunc('minute', event_timestamp, 'UTC')
              AS minute, count(*) FROM $TABLE GROUP BY 1) r USING (minute)
            WHERE c.count IS DISTINCT FROM r.count"
}
port_open() { { : >"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; }
http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }
ready_within_30s() {  # a stack that has just started may need a moment
  local i
  for ((i = 0; i < 300; i++)); do
    http_ok "$1" && return 0
    sleep 0.1
  done
  return 1
}

consumer_pid() { proc_pid_file "$PIDFILE"; }  # the stack's consumer, if its pid file names a live one

# Remembers how the stack's consumer runs, so that the drill can start
# helpers with its configuration and restart it exactly as it was.
capture_consumer() {
  local pid=$1 kv
  CONSUMER_EXE=$(readlink "/proc/$pid/exe") || die "cannot read /proc/$pid/exe"
  CONSUMER_EXE=${CONSUMER_EXE% (deleted)}  # rebuilt since it started: use the new file
  CONSUMER_CWD=$(readlink "/proc/$pid/cwd") || CONSUMER_CWD=$ROOT
  mapfile -d '' CONSUMER_ENV <"/proc/$pid/environ" || die "cannot read /proc/$pid/environ"
  for kv in "${CONSUMER_ENV[@]}"; do
    case $kv in
      KAFKA_GROUP_ID=?*) GROUP=${kv#*=} ;;
      DB_URL=?*) C_DB_URL=${kv#*=} ;;
      DB_USERNAME=?*) C_DB_USER=${kv#*=} ;;
      DB_PASSWORD=?*) C_DB_PASSWORD=${kv#*=} ;;
      DB_PASSWORD_FILE=?*) C_DB_PASSWORD=$(cat "${kv#*=}" 2>/dev/null) || true ;;
      SERVER_PORT=?*) C_PORT=${kv#*=} ;;
    esac
  done
}

# as_consumer DIR [NAME=VALUE...] CMD [ARG...]: becomes CMD (exec), in DIR,
# with exactly the stack consumer's environment plus the NAME=VALUE pairs.
# The values are set with export, a builtin: `env -i NAME=VALUE ...` would
# show every one of them, the database password too, on its command line.
# Run it in a subshell (or through proc_start).
as_consumer() {
  local kv
  cd "$1" || exit 1
  shift
  while IFS= read -r kv; do unset "$kv" 2>/dev/null || true; done < <(compgen -e)
  # shellcheck disable=SC2163  # NAME=VALUE words, exported as such
  for kv in "${CONSUMER_ENV[@]}"; do export "$kv" 2>/dev/null || true; done
  # shellcheck disable=SC2163
  while [[ ${1:-} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do export "$1"; shift; done
  exec "$@"
}

start_consumer() {  # as services.sh does, with the captured binary, environment and cwd
  proc_start "$CONSUMER_LOG" as_consumer "$CONSUMER_CWD" "$CONSUMER_EXE"
  echo "$PROC_PID" >"$PIDFILE"
  CONSUMER_STOPPED=0
  proc_wait_ready "$PROC_PID" "http://127.0.0.1:$C_PORT/ready" "$WAIT_SECONDS" "$CONSUMER_LOG"
}

# Polls the row count until it reaches $1; prints the last count.
wait_rows() {
  local want=$1 pid=${2:-} n=0 i
  for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
    n=$(row_count)
    [ "$n" -ge "$want" ] && break
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "$n"
}

# Compares the table with the snapshot; prints a verdict line and a diff
# summary. Returns 0 when identical.
compare() {
  local got=$WORK/rebuilt-$1.txt bad
  dump_rows "$got"
  bad=$(counts_differ)
  if cmp -s "$WORK/snapshot.txt" "$got" && [ "$bad" = 0 ]; then
    say "   rows identical to the snapshot: $(wc -l <"$got") rows (id, event_timestamp, created_at); $COUNTS equal to their GROUP BY"
    return 0
  fi
  if [ "$bad" != 0 ]; then
    say "   $COUNTS DIFFERS from the rows' GROUP BY in $bad minutes"
    cmp -s "$WORK/snapshot.txt" "$got" && return 1
  fi
  say "   rows DIFFER from the snapshot ($(wc -l <"$WORK/snapshot.txt") rows before, $(wc -l <"$got") now):"
  awk -F'|' '
    NR == FNR { want[$1] = $0; next }
    { have[$1] = $0 }
    END {
      for (id in want) if (!(id in have)) { missing++; if (missing <= 5) m = m "\n      missing: " want[id] }
      for (id in have) if (!(id in want)) { extra++;   if (extra <= 5)   e = e "\n      extra:   " have[id] }
      for (id in have) if ((id in want) && have[id] != want[id]) {
        changed++
        if (changed <= 5) c = c "\n      before:  " want[id] "\n      after:   " have[id]
      }
      printf "      %d missing, %d extra, %d changed%s%s%s\n", missing, extra, changed, m, e, c
    }' "$WORK/snapshot.txt" "$got"
  say "   full diff: diff $WORK/snapshot.txt $got"
  return 1
}

# ---- the stack -----------------------------------------------------------------

BIN=$BIN_DIR/consumer-service
TIMEOUT=$(command -v timeout) || die "timeout (coreutils) not found"
[ -x "$BIN" ] || die "$BIN not found (make BUILD=... all, or set BIN_DIR)"
# Read whole before searching: grep -q leaving early would fail the --help
# that is still writing (SIGPIPE, under pipefail).
BIN_HELP=$("$BIN" --help 2>/dev/null) || die "$BIN --help failed"
grep -q -- --reset-offsets <<<"$BIN_HELP" || die "$BIN has no --reset-offsets (rebuild it)"
grep -q -- --rebuild <<<"$BIN_HELP" || die "$BIN has no --rebuild (rebuild it)"
PID=$(consumer_pid) || die "no consumer-service running per $PIDFILE (start the stack: make run; or set STATE_DIR)"
GROUP=timestamp-consumer-service C_DB_URL=postgresql://127.0.0.1:$PG_PORT/postgres
C_DB_USER=postgres C_DB_PASSWORD="" C_PORT=$CONSUMER_PORT
capture_consumer "$PID"
url_without_password "${DR_DB_URL:-${C_DB_URL/#jdbc:postgresql:/postgresql:}}"
if [ -z "${DR_DB_URL:-}" ]; then
  export PGUSER=$C_DB_USER
  [ -z "$C_DB_PASSWORD" ] || export PGPASSWORD=$C_DB_PASSWORD  # as DB_PASSWORD beats the URL's
fi
ready_within_30s "$COMMAND_URL/ready" || die "command service not ready at $COMMAND_URL"
ready_within_30s "$QUERY_URL/ready" || die "query service not ready at $QUERY_URL"
ready_within_30s "http://127.0.0.1:$C_PORT/ready" || die "consumer not ready on port $C_PORT"
row_count >/dev/null || die "cannot query $TABLE at $DB"
! port_open "$SPARE_PORT" || die "spare port $SPARE_PORT is in use (set DR_SPARE_PORT)"
mkdir -p "$WORK"
rm -f "$WORK"/*.txt "$WORK"/*.copy "$WORK"/*.cfg
say "stack: command $COMMAND_URL, query $QUERY_URL, consumer pid $PID (group $GROUP, port $C_PORT)," \
    "database $DB; files in $WORK"

# ---- 1. create records ---------------------------------------------------------------

# Sets P to request i's path: fractions of 0-9 digits, offsets raw and
# percent-encoded, lowercase t/z, a leap second, and "now" (/app and the
# bare path). Every 100th record is sent twice with one Idempotency-Key.
request_path() {
  local i=$1 y=$((1970 + $1 % 55)) mo=$((1 + $1 % 12)) d=$((1 + $1 % 28)) h=$(($1 % 24))
  local mi=$(($1 * 7 % 60)) s=$(($1 * 13 % 60)) f=$((($1 * 7919 + 13) % 1000000000))
  local base=/api/v1/timestamp
  if [ "$i" = 1 ]; then P=$base/1998-12-31T23:59:60Z; return; fi
  case $((i % 5)) in
    0) printf -v P '%s/%04d-%02d-%02dT%02d:%02d:%02d.%09dZ' $base $y $mo $d $h $mi $s $f ;;
    1) printf -v P '%s/%04d-%02d-%02dT%02d:%02d:%02d.%06d%%2B05:30' $base $y $mo $d $h $mi $s $((f % 1000000)) ;;
    2) printf -v P '%s/%04d-%02d-%02dt%02d:%02d:%02d.%03d-08:00' $base $y $mo $d $h $mi $s $((f % 1000)) ;;
    3) printf -v P '%s/%04d-%02d-%02dT%02d:%02d:%02dz' $base $y $mo $d $h $mi $s ;;
    4) if [ $((i % 2)) = 0 ]; then P=/app; else P=$base; fi ;;
  esac
}

run_id=$(date +%s)-$$
say "1. creating $RECORDS records via POST $COMMAND_URL (every 100th sent twice with one Idempotency-Key)"
t0=$(now)
{
  for ((i = 1; i <= RECORDS; i++)); do
    request_path "$i"
    reps=1
    [ $((i % 100)) = 0 ] && reps=2
    for ((r = 0; r < reps; r++)); do
      [ "$i$r" = 10 ] || printf 'next\n'  # separates one request's options from the last
      printf 'url = "%s%s"\nrequest = "POST"\nwrite-out = " %%{http_code} %d\\n"\n' \
        "$COMMAND_URL" "$P" "$i"
      [ "$reps" = 1 ] || printf 'header = "Idempotency-Key: dr-drill-%s-%d"\n' "$run_id" "$i"
    done
  done
} >"$WORK/post.cfg"
curl -sS --max-time 600 -K "$WORK/post.cfg" >"$WORK/post.txt" || true
# Each line: {"id":"<uuid>"} <status> <record number>
bad=$(awk '$(NF-1) != 200' "$WORK/post.txt" | head -n 3)
[ -z "$bad" ] || die "the command service did not answer 200 to every request, e.g.: $bad"
sed -n 's/^{"id":"\([0-9a-f-]\{36\}\)"} 200 \([0-9]*\)$/\2 \1/p' "$WORK/post.txt" | sort -u >"$WORK/ids.txt"
[ "$(wc -l <"$WORK/ids.txt")" = "$RECORDS" ] \
  || die "expected $RECORDS distinct (record, id) pairs, got $(wc -l <"$WORK/ids.txt") (a retry with the same Idempotency-Key got a new id?)"
[ "$(cut -d' ' -f2 "$WORK/ids.txt" | sort -u | wc -l)" = "$RECORDS" ] || die "two records got the same id"
say "   $RECORDS ids, $(wc -l <"$WORK/post.txt") answers, all 200, in $(since "$t0") s"

# ---- 2. wait until all are readable ---------------------------------------------------------

say "2. waiting until every record is readable via $QUERY_URL"
t0=$(now)
cut -d' ' -f2 "$WORK/ids.txt" >"$WORK/pending.txt"
while :; do
  awk -v u="$QUERY_URL" '{ printf "%surl = \"%s/api/v1/timestamp/%s\"\noutput = \"/dev/null\"\nwrite-out = \"%%{http_code} %s\\n\"\n", (NR > 1 ? "next\n" : ""), u, $1, $1 }' \
    "$WORK/pending.txt" >"$WORK/get.cfg"
  curl -sS --max-time 600 -K "$WORK/get.cfg" >"$WORK/get.txt" || true
  awk '$1 != 200 { print $2 }' "$WORK/get.txt" >"$WORK/pending.txt"
  [ -s "$WORK/pending.txt" ] || break
  [ "$(since "$t0" | cut -d. -f1)" -lt "$WAIT_SECONDS" ] \
    || die "$(wc -l <"$WORK/pending.txt") records still not readable after $WAIT_SECONDS s, e.g. $(head -n 1 "$WORK/pending.txt")"
  sleep 0.2
done
say "   $RECORDS of $RECORDS readable after $(since "$t0") s"

passed=0 failed=0
verdict() {
  if [ "$1" = 0 ]; then passed=$((passed + 1)); say "   => $2: PASS"
  else failed=$((failed + 1)); say "   => $2: FAIL"; fi
}

# ---- (0) the zero-downtime rebuild -------------------------------------------------------

# reader K: GETs the known ids in turn, 50 a curl (one keep-alive connection),
# until $WORK/load.stop exists; one status a line into reads-K.txt.
reader() {
  local k=$1
  # its share of the ids (every READERS-th), or the first ones if that is none
  awk -v u="$QUERY_URL" -v k="$k" -v n="$READERS" '
    NR % n == k % n && c < 50 { id[c++] = $2 }
    NR <= 50 { first[NR - 1] = $2 }
    END {
      if (c == 0) for (i in first) id[c++] = first[i]
      for (i = 0; i < c; i++)
        printf "%surl = \"%s/api/v1/timestamp/%s\"\noutput = \"/dev/null\"\nmax-time = 10\nwrite-out = \"%%{http_code} %s\\n\"\n", (i ? "next\n" : ""), u, id[i], id[i]
    }' "$WORK/ids.txt" >"$WORK/read-$k.cfg"
  while [ ! -e "$WORK/load.stop" ]; do
    curl -sS -K "$WORK/read-$k.cfg" >>"$WORK/reads-$k.txt" 2>/dev/null || true
  done
}
# writer: POSTs "now" 20 a curl until $WORK/load.stop exists; the answers
# ({"id":…} status) into writes.txt.
writer() {
  local i
  for ((i = 0; i < 20; i++)); do
    printf '%surl = "%s/api/v1/timestamp"\nrequest = "POST"\nmax-time = 10\nwrite-out = " %%{http_code}\\n"\n' \
      "$([ "$i" = 0 ] || echo next)" "$COMMAND_URL"
  done >"$WORK/write.cfg"
  while [ ! -e "$WORK/load.stop" ]; do
    curl -sS -K "$WORK/write.cfg" >>"$WORK/writes.txt" 2>/dev/null || true
    sleep 0.05
  done
}

say "(0) zero-downtime rebuild: $BIN --rebuild while $READERS readers GET known ids and a writer POSTs"
rm -f "$WORK"/load.stop "$WORK"/reads-*.txt "$WORK"/writes.txt
for ((k = 0; k < READERS; k++)); do reader "$k" & LOAD_PIDS+=($!); done
writer & LOAD_PIDS+=($!)
sleep 1
t0=$(now)
rc=0
(as_consumer "$CONSUMER_CWD" "$TIMEOUT" "$((WAIT_SECONDS * 5))" "$BIN" --rebuild) \
  >"$WORK/rebuild.txt" 2>&1 || rc=$?
took=$(since "$t0")
sleep 1  # reads and writes after the switch too
: >"$WORK/load.stop"
wait "${LOAD_PIDS[@]}" 2>/dev/null || true
LOAD_PIDS=()
grep -v '^{' "$WORK/rebuild.txt" | sed 's/^/   | /'
reads=$(cat "$WORK"/reads-*.txt | wc -l)
read_errors=$(cat "$WORK"/reads-*.txt | awk '$1 != 200' | wc -l)
switch=$(sed -n 's/^rebuild: switched in \([0-9.]*\) ms.*/\1/p' "$WORK/rebuild.txt")
old=$(sed -n 's/^rebuild: the previous tables are kept as \([a-z0-9_]*\) and .*/\1/p' "$WORK/rebuild.txt")
old_counts=$(sed -n 's/^rebuild: the previous tables are kept as [a-z0-9_]* and \([a-z0-9_]*\);.*/\1/p' "$WORK/rebuild.txt")
say "   --rebuild exited $rc after $took s; switch time: ${switch:-none} ms"
say "   readers: $reads GETs of known ids, $read_errors not 200"
[ "$rc" = 0 ] || rc=1
[ "$read_errors" = 0 ] || { rc=1; say "   e.g.: $(cat "$WORK"/reads-*.txt | awk '$1 != 200' | head -n 3 | tr '\n' ' ')"; }
[ -n "$switch" ] && [ -n "$old" ] && [ -n "$old_counts" ] || rc=1
# Every ticket the writer got is readable now.
sed -n 's/^{"id":"\([0-9a-f-]\{36\}\)"} 200$/\1/p' "$WORK/writes.txt" >"$WORK/pending.txt"
tickets=$(wc -l <"$WORK/pending.txt")
posts=$(wc -l <"$WORK/writes.txt")
t1=$(now)
while [ -s "$WORK/pending.txt" ]; do
  awk -v u="$QUERY_URL" '{ printf "%surl = \"%s/api/v1/timestamp/%s\"\noutput = \"/dev/null\"\nwrite-out = \"%%{http_code} %s\\n\"\n", (NR > 1 ? "next\n" : ""), u, $1, $1 }' \
    "$WORK/pending.txt" >"$WORK/get.cfg"
  curl -sS --max-time 600 -K "$WORK/get.cfg" >"$WORK/get.txt" || true
  awk '$1 != 200 { print $2 }' "$WORK/get.txt" >"$WORK/pending.txt"
  [ -s "$WORK/pending.txt" ] || break
  [ "$(since "$t1" | cut -d. -f1)" -lt "$WAIT_SECONDS" ] || break
  sleep 0.2
done
say "   writer: $posts POSTs, $tickets tickets (200), $((tickets - $(wc -l <"$WORK/pending.txt"))) of them readable"
[ "$tickets" -gt 0 ] && [ ! -s "$WORK/pending.txt" ] || rc=1
if [ -n "$old" ]; then
  differ=$(psql_ -c "SELECT count(*) FROM $old o WHERE NOT EXISTS (SELECT 1 FROM $TABLE n
                     WHERE n.id = o.id AND n.event_timestamp = o.event_timestamp
                     AND n.created_at = o.created_at)")
  say "   $(psql_ -c "SELECT count(*) FROM $old") rows in the old table $old, $differ of them missing or different in the new one"
  [ "$differ" = 0 ] || rc=1
fi
if grep -q -- --verify <<<"$BIN_HELP"; then
  if (as_consumer "$CONSUMER_CWD" "$BIN" --verify) >"$WORK/verify.txt" 2>&1; then
    say "   consumer-service --verify: the table agrees with the topic, the counts with the table"
  else
    rc=1
    say "   consumer-service --verify FAILED:"
    grep -v '^{' "$WORK/verify.txt" | tail -n 20 | sed 's/^/   | /'
  fi
else
  say "   (this consumer-service has no --verify: skipped)"
fi
if [ "$rc" = 0 ] && [ -n "$old" ]; then
  psql_ -c "DROP TABLE $old, $old_counts"
  say "   dropped the old tables $old and $old_counts (kept when the drill fails)"
fi
verdict "$rc" "zero-downtime rebuild: readers' errors ${read_errors}, switched in ${switch:-?} ms"

# ---- 3. snapshot -----------------------------------------------------------------------

psql_ -c "\\copy $TABLE TO '$WORK/backup.copy'"
BACKUP_TAKEN=1
dump_rows "$WORK/snapshot.txt"
WANT=$(wc -l <"$WORK/snapshot.txt")
say "3. snapshot: $WANT rows of $TABLE (id, event_timestamp, created_at) in $WORK/snapshot.txt"
[ "$WANT" -ge "$RECORDS" ] || die "the table holds fewer rows than the records just created"

# ---- (a) a new consumer group ---------------------------------------------------------------

EXTRA_GROUP=$GROUP.dr-drill-$run_id
say "(a) rebuild with a new consumer group: $EXTRA_GROUP"
psql_ -c "TRUNCATE $TABLE, $COUNTS"
TABLE_DIRTY=1
say "   TRUNCATE $TABLE, $COUNTS: $(row_count) rows"
t0=$(now)
: >"$WORK/consumer-a.log"
proc_start "$WORK/consumer-a.log" \
  as_consumer "$CONSUMER_CWD" SERVER_PORT="$SPARE_PORT" KAFKA_GROUP_ID="$EXTRA_GROUP" "$BIN"
EXTRA_PID=$PROC_PID
say "   started $BIN (pid $EXTRA_PID, port $SPARE_PORT; log $WORK/consumer-a.log)"
n=$(wait_rows "$WANT" "$EXTRA_PID")
say "   $n of $WANT rows after $(since "$t0") s"
rc=0
proc_stop "$EXTRA_PID" "the extra consumer" || rc=1
wait "$EXTRA_PID" || { say "   the extra consumer exited with status $?"; rc=1; }
EXTRA_PID=""
compare a || rc=1
[ "$rc" != 0 ] || TABLE_DIRTY=0
verdict "$rc" "rebuild (a), new group"

# ---- (b) reset the group's offsets --------------------------------------------------------------

say "(b) rebuild by resetting group $GROUP to the earliest offsets"
# A deliberate stop: `make run`'s supervisor leaves the consumer down until
# start_consumer writes a live pid to its pid file again.
CONSUMER_STOPPED=1
"$HERE/services.sh" stop consumer-service >/dev/null
say "   stopped the consumer (pid $PID)"
psql_ -c "TRUNCATE $TABLE, $COUNTS"
TABLE_DIRTY=1
say "   TRUNCATE $TABLE, $COUNTS: $(row_count) rows"
rc=0
# The group empties when its last member leaves; a killed member lingers
# until its session times out (10 s), so the reset is retried meanwhile.
for ((i = 0; ; i++)); do
  if (as_consumer "$CONSUMER_CWD" "$BIN" --reset-offsets earliest) >"$WORK/reset.txt" 2>&1; then
    break
  fi
  if [ "$i" -ge 20 ] || ! grep -q 'not idle\|active members' "$WORK/reset.txt"; then
    rc=1
    break
  fi
  sleep 1
done
sed 's/^/   | /' "$WORK/reset.txt"
if [ "$rc" = 0 ]; then
  t0=$(now)
  start_consumer || { say "   the consumer did not get ready again"; rc=1; }
  say "   started the consumer again (pid $(cat "$PIDFILE"), as before: $CONSUMER_EXE)"
  n=$(wait_rows "$WANT")
  say "   $n of $WANT rows after $(since "$t0") s"
  compare b || rc=1
else
  say "   consumer-service --reset-offsets failed"
  start_consumer || true
fi
[ "$rc" != 0 ] || TABLE_DIRTY=0
verdict "$rc" "rebuild (b), offsets reset to earliest"

# ---- verdict ----------------------------------------------------------------------------

if [ "$failed" = 0 ]; then
  say "PASS: $TABLE rebuilt from the topic without downtime, then twice more (new group; reset offsets) with $WANT identical rows"
else
  say "FAIL: $failed of 3 rebuilds did not reproduce the table (files in $WORK)"
fi
say "$passed passed, $failed failed"
[ "$failed" = 0 ]
