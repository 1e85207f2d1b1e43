# shellcheck shell=bash
# bench/steps/range.sh — query-service's range pages (issue 12) against the
# same keyset query run by pgbench. Sourced by scripts/bench.sh and run after
# step 4, query-service up.
#
#   N rows (MESSAGES) one millisecond apart from 2400-01-01 (a window of their
#   own), ids md5('range' || i)::uuid that pgbench can compute;
#   wrk, QUERY_CONNS connections, walking the pages of 100 through their Link
#   headers (bench/range.lua): pages/s, closed loop;
#   pgbench -M prepared -c POOL: the service's own statement (range.h,
#   RANGE_STATEMENTS: 101 rows after a random (event_timestamp, id)).
#
# Writes $R/range.wrk (bench/report.lua's BENCH line) and $R/range:
# pages_s= pgbench_pages_s= ratio= (the service's pages/s over pgbench's).
# Uses bench.sh's ROOT, R, SECS, MESSAGES, QUERY_PORT, QUERY_CONNS, POOL,
# PG_PORT, psql_, wrk_, all_2xx, get, get_ms, fmt, say, die.

range_step() {
  local n=$MESSAGES from=2400-01-01T00:00:00Z to pg_tps pages ratio
  to=$(psql_ -c "SELECT to_char(('$from'::timestamptz + $n * interval '1 millisecond') AT TIME ZONE 'UTC',
                                'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
  say "4b. query-service: range pages of 100 ($QUERY_CONNS connections, following Link) vs pgbench -M prepared -c $POOL, the same keyset statement"
  psql_ -c "INSERT INTO timestamp_records (id, event_timestamp, created_at)
            SELECT md5('range' || i)::uuid, '$from'::timestamptz + i * interval '1 millisecond', now()
              FROM generate_series(0, $((n - 1))) i" \
        -c "VACUUM ANALYZE timestamp_records"
  # The statement of RANGE_STATEMENTS, after the record at a random position.
  printf '%s\n' "\\set i random(0, $((n - 101)))" \
    "SELECT id, event_timestamp, created_at FROM timestamp_records
       WHERE event_timestamp >= '$from'::timestamptz AND event_timestamp < '$to'::timestamptz
         AND (event_timestamp, id) > ('$from'::timestamptz + :i * interval '1 millisecond', md5('range' || :i)::uuid)
       ORDER BY event_timestamp, id LIMIT 101;" >"$R/pgbench-range.sql"
  "${LOADGEN[@]}" "$(command -v pgbench)" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -M prepared -c "$POOL" -j 2 \
    -T "$SECS" -f "$R/pgbench-range.sql" postgres >"$R/pgbench-range.log" 2>&1 ||
    { cat "$R/pgbench-range.log"; die "pgbench (range) failed"; }
  pg_tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$R/pgbench-range.log" | head -1)
  BENCH_RANGE_FROM=$from BENCH_RANGE_TO=$to wrk_ range "http://127.0.0.1:$QUERY_PORT" bench/range.lua "$QUERY_CONNS"
  all_2xx range
  pages=$(get range.wrk rps)
  ratio=$(awk -v a="$pages" -v b="$pg_tps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  echo "pages_s=$pages pgbench_pages_s=$pg_tps ratio=$ratio" >"$R/range"
  say "   $(fmt "$pages") pages/s against pgbench's $(fmt "$pg_tps") (ratio $ratio); p99 $(get_ms range.wrk p99_us) ms"
}
