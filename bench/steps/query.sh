# shellcheck shell=bash
# bench/steps/query.sh — the latency tails of issue 10, target 4: where the
# time of a slow request goes. Sourced by scripts/bench.sh; uses its R,
# QUERY_PORT, psql_, get, get_ms and say.
#
#   query_server_tail NAME [BASE]
#                            after a wrk run against query-service: the
#                            service's own view of the same requests (its
#                            http_request_duration_seconds histogram), so that
#                            a client p99 far above it says the wait is outside
#                            the handler (scheduling, the client). Writes
#                            $R/NAME.server: server_count= server_p99_le_ms=
#                            server_p999_le_ms= (the bucket bound the 99th /
#                            99.9th percentile falls in) server_over_100ms=;
#                            with BASE (query_buckets' output before the
#                            run), of the requests since
#   query_split NAME SINCE   after readable_run NAME (SINCE: its start, from
#                            `date -u +%FT%T.%3NZ`): the rows written since,
#                            split at the consumer's transaction start.
#                            Writes $R/NAME.split: rows= batches=
#                            persist_p50_ms= persist_p99_ms= persist_max_ms=
#                            (created_at → persisted_at: accept to the start
#                            of the batch's transaction) gap_p99_ms= gap_max_ms=
#                            (between one batch's start and the next: a batch
#                            that waits long for its predecessor is a stall of
#                            the consumer or of PostgreSQL)
#   query_checkpoint_step    4c. ../shared/DESIGN.md's "p99 ≤ 10 ms, also
#                            across a PostgreSQL checkpoint": pgbench
#                            (QUERY_CONNS clients, step 4's SELECT), then
#                            query-service (QUERY_CONNS connections), each
#                            after a fresh MESSAGES rows dirtied the buffers
#                            (as the consumer's writes do) and with a
#                            CHECKPOINT issued a third into its window.
#                            Writes $R/pgbench-ckpt: tps= p50_ms= p99_ms=
#                            p999_ms= max_ms= (from pgbench's log of every
#                            transaction, corrected for coordinated omission
#                            as wrk corrects its own) and raw_p50_ms= …
#                            raw_max_ms= (as logged), $R/checkpoint:
#                            pgbench_s= query_s=
#                            (how long each CHECKPOINT took), query-ckpt.wrk
#                            and query-ckpt.server

# query_buckets: the histogram's buckets of GET by id, "le count" a line.
query_buckets() {
  curl -fsS "http://127.0.0.1:$QUERY_PORT/metrics" |
    sed -n 's|^http_request_duration_seconds_bucket{route="/api/v1/timestamp/{id}",status="200",le="\([^"]*\)"} \([0-9]*\)$|\1 \2|p'
}

query_server_tail() {
  local name=$1 base=${2:-/dev/null}
  query_buckets |
    awk 'FILENAME != "-" { before[$1] = $2; next }
      { $2 -= before[$1]; le[++k] = $1; n[k] = $2; if ($1 == "0.1") fast = $2 }
      END {
        total = n[k]
        for (i = 1; i <= k; i++) {
          if (p99 == "" && n[i] >= 0.99 * total) p99 = le[i]
          if (p999 == "" && n[i] >= 0.999 * total) p999 = le[i]
        }
        printf "server_count=%d server_p99_le_ms=%s server_p999_le_ms=%s server_over_100ms=%d\n",
               total, p99 == "+Inf" ? "inf" : p99 * 1000, p999 == "+Inf" ? "inf" : p999 * 1000, total - fast
      }' "$base" - >"$R/$name.server"
  say "   query-service's own histogram: $(cat "$R/$name.server")"
}

query_split() {
  local name=$1 since=$2
  psql_ -F ' ' -c "
    WITH r AS (SELECT created_at c, persisted_at p FROM timestamp_records WHERE created_at >= '$since'),
         b AS (SELECT p, p - lag(p) OVER (ORDER BY p) gap FROM r GROUP BY p)
    SELECT 'rows=' || (SELECT count(*) FROM r),
           'batches=' || (SELECT count(*) FROM b),
           'persist_p50_ms=' || (SELECT coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM p - c)) * 1000)::numeric, 2), 0) FROM r),
           'persist_p99_ms=' || (SELECT coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM p - c)) * 1000)::numeric, 2), 0) FROM r),
           'persist_max_ms=' || (SELECT coalesce(round((max(extract(epoch FROM p - c)) * 1000)::numeric, 2), 0) FROM r),
           'gap_p99_ms=' || (SELECT coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM gap)) * 1000)::numeric, 2), 0) FROM b),
           'gap_max_ms=' || (SELECT coalesce(round((max(extract(epoch FROM gap)) * 1000)::numeric, 2), 0) FROM b)" \
    >"$R/$name.split"
  say "   $name, accept → transaction start: $(cat "$R/$name.split")"
}

# ckpt_dirty TAG: MESSAGES new rows, so that a checkpoint has pages to write.
ckpt_dirty() {
  psql_ -c "INSERT INTO timestamp_records (id, event_timestamp, created_at)
            SELECT md5('$1' || i)::uuid, now(), now() FROM generate_series(0, $((MESSAGES - 1))) i"
}

# ckpt_at KEY: a CHECKPOINT a third into a window of SECS that starts now;
# appends KEY=its duration in seconds to $R/checkpoint. It waits for one
# already under way, which an immediate request hurries: two minutes at most.
ckpt_at() {
  local t0
  sleep "$(awk -v s="$SECS" 'BEGIN { print s / 3 }')"
  t0=$(date +%s%N)
  psql_ -c "SET statement_timeout = '120s'" -c CHECKPOINT
  echo "$1=$(awk -v d="$(($(date +%s%N) - t0))" 'BEGIN { printf "%.2f", d / 1e9 }')" >>"$R/checkpoint"
}

# ckpt_percentiles PREFIX: of latencies in µs on stdin, one a line:
# PREFIXp50_ms= PREFIXp99_ms= PREFIXp999_ms= PREFIXmax_ms=
ckpt_percentiles() {
  sort -n | awk -v p="$1" '
    { v[NR] = $1 }
    function q(f) { i = int(NR * f); if (i < 1) i = 1; return sprintf("%.2f", v[i] / 1000) }
    END { printf "%sp50_ms=%s %sp99_ms=%s %sp999_ms=%s %smax_ms=%s\n", p, q(0.5), p, q(0.99), p, q(0.999), p, q(1) }'
}

query_checkpoint_step() {
  local ck n e
  say "4c. GET by id across a CHECKPOINT: pgbench -M prepared -c $QUERY_CONNS, then query-service ($QUERY_CONNS connections), each after $MESSAGES new rows"
  : >"$R/checkpoint"
  ckpt_dirty ckpt-pgbench
  ckpt_at pgbench_s &
  ck=$!
  rm -f "$R"/pgbench-ckpt.log.*
  "${LOADGEN[@]}" "$(command -v pgbench)" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -M prepared -c "$QUERY_CONNS" -j 2 \
    -T "$SECS" -l --log-prefix="$R/pgbench-ckpt.log" -f "$R/pgbench.sql" postgres >"$R/pgbench-ckpt.out" 2>&1 ||
    { cat "$R/pgbench-ckpt.out"; die "pgbench (checkpoint) failed"; }
  wait "$ck" || die "CHECKPOINT failed"
  # The log's third field: each transaction's latency in µs. wrk corrects
  # its latencies for coordinated omission (stats_correct): a request that
  # took n ≥ 2e, e the mean interval between one connection's requests,
  # also counts n − e, n − 2e, … down to above e, the requests a client at
  # a steady rate would have sent meanwhile. pgbench's log is not corrected,
  # so the same correction is applied here, the raw figures kept beside.
  awk '{ print $3 }' "$R"/pgbench-ckpt.log.* >"$R/pgbench-ckpt.us"
  n=$(wc -l <"$R/pgbench-ckpt.us")
  [ "$n" -gt 0 ] || die "pgbench (checkpoint) logged no transaction"
  e=$(awk -v s="$SECS" -v n="$n" -v c="$QUERY_CONNS" 'BEGIN { k = int(n / c); print (k > 0 ? int(s * 1e6 / k) : 0) }')
  {
    echo "tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$R/pgbench-ckpt.out" | head -1 | cut -d. -f1)"
    ckpt_percentiles "" < <(awk -v e="$e" '{ print; if (e > 0 && $1 >= 2 * e) for (m = $1 - e; m > e; m -= e) print m }' "$R/pgbench-ckpt.us")
    ckpt_percentiles raw_ <"$R/pgbench-ckpt.us"
  } | tr '\n' ' ' >"$R/pgbench-ckpt"
  rm -f "$R"/pgbench-ckpt.log.* "$R/pgbench-ckpt.us"
  ckpt_dirty ckpt-query
  ckpt_at query_s &
  ck=$!
  query_buckets >"$R/query-ckpt.base"
  BENCH_IDS=$R/ids wrk_ query-ckpt "http://127.0.0.1:$QUERY_PORT" bench/get.lua "$QUERY_CONNS"
  wait "$ck" || die "CHECKPOINT failed"
  all_2xx query-ckpt
  query_server_tail query-ckpt "$R/query-ckpt.base"
  say "   pgbench: p99 $(get pgbench-ckpt p99_ms) ms (as logged: $(get pgbench-ckpt raw_p99_ms) ms), max $(get pgbench-ckpt max_ms) ms; query-service: p99 $(get_ms query-ckpt.wrk p99_us) ms, max $(get_ms query-ckpt.wrk max_us) ms; the checkpoints took $(tr '\n' ' ' <"$R/checkpoint")"
}
