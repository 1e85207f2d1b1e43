# shellcheck shell=bash
# bench/steps/query.sh — the latency tails of issue 10, target 4: where the
# time of a slow request goes. Sourced by scripts/bench.sh; uses its R,
# QUERY_PORT, psql_, get and say.
#
#   query_server_tail NAME   after a wrk run against query-service: the
#                            service's own view of the same requests (its
#                            http_request_duration_seconds histogram), so that
#                            a client p99 far above it says the wait is outside
#                            the handler (scheduling, the client). Writes
#                            $R/NAME.server: server_count= server_p99_le_ms=
#                            server_p999_le_ms= (the bucket bound the 99th /
#                            99.9th percentile falls in) server_over_100ms=
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

query_server_tail() {
  local name=$1
  curl -fsS "http://127.0.0.1:$QUERY_PORT/metrics" |
    sed -n 's|^http_request_duration_seconds_bucket{route="/api/v1/timestamp/{id}",status="200",le="\([^"]*\)"} \([0-9]*\)$|\1 \2|p' |
    awk '
      { le[++k] = $1; n[k] = $2; if ($1 == "0.1") fast = $2 }
      END {
        total = n[k]
        for (i = 1; i <= k; i++) {
          if (p99 == "" && n[i] >= 0.99 * total) p99 = le[i]
          if (p999 == "" && n[i] >= 0.999 * total) p999 = le[i]
        }
        printf "server_count=%d server_p99_le_ms=%s server_p999_le_ms=%s server_over_100ms=%d\n",
               total, p99 == "+Inf" ? "inf" : p99 * 1000, p999 == "+Inf" ? "inf" : p999 * 1000, total - fast
      }' >"$R/$name.server"
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
