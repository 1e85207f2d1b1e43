# shellcheck shell=bash
# bench/steps/live.sh — issue 12's live side: how soon a write reaches a
# reader that is already waiting for it. Sourced by scripts/bench.sh; uses
# its R, SECS, RATES, VEGETA, BUILD, COMMAND_PORT, QUERY_PORT, PIDS, start,
# stop, get and say. Reported figures, no target.
#
#   step_live   for each rate of RATES (1,000/s and 5,000/s), for
#               LIVE_SECS (5 s; 2 in a smoke run) at once:
#               * vegeta GETs /api/v1/timestamp/<id>?wait=10000 at the rate,
#                 each id the UUIDv5 of an Idempotency-Key;
#               * LIVE_LEAD_MS (20 ms) later, a second vegeta POSTs each key
#                 at the same rate: the GET for an id is waiting when its
#                 POST is sent;
#               * bench/live.py follows GET /api/v1/timestamps/stream.
#               Wait-for-write latency: the POST's 200 → the waiting GET's
#               200; stream delivery latency: the POST's 200 → its event
#               (both wall clock, one machine). Figures into $R/live-RATE:
#               wait_n wait_p50_ms wait_p99_ms wait_late wait_unsent
#               wait_not_200 stream_n stream_p50_ms stream_p99_ms
#               stream_missing stream_duplicates stream_reconnects (the
#               follower resumes with Last-Event-ID when it is cut off, as
#               an EventSource does).
#   The query-service runs with WAIT_MAX_WAITERS=4096 for the step (at
#   5,000/s a GET waits the lead plus the write's latency, which on this
#   machine reaches a few hundred ms: over a thousand at once; vegeta gets
#   as many workers), and as configured by default again after it.

LIVE_LEAD_MS=${LIVE_LEAD_MS:-20}

step_live() {
  local rate n accepted after secs=${LIVE_SECS:-$([ "$SMOKE" = 1 ] && echo 2 || echo 5)} follower getter
  local ns=5b8f6c1e-3f0a-4c57-9a55-2f6a7c1d9e40  # UID_IDEMPOTENCY_NAMESPACE
  stop query-service
  start query-service "$QUERY_PORT" "$BUILD/query-service" WAIT_MAX_WAITERS=4096
  for rate in $RATES; do
    n=$((rate * secs))
    say "8. live: GET ?wait at $rate/s, POST ${LIVE_LEAD_MS} ms later, ${secs} s; one stream follows"
    python3 - "$ns" "$rate" "$n" "$COMMAND_PORT" "$QUERY_PORT" "$R/live-$rate" <<'EOF'
import sys, uuid
ns, rate, n, cport, qport, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
with open(out + ".gets", "w") as g, open(out + ".posts", "w") as p:
    for i in range(n):
        key = f"bench-live-{rate}-{i}"
        rid = uuid.uuid5(uuid.UUID(ns), key)
        g.write(f"GET http://127.0.0.1:{qport}/api/v1/timestamp/{rid}?wait=10000\n\n")
        p.write(f"POST http://127.0.0.1:{cport}/api/v1/timestamp/2026-01-01T00:00:00Z\n"
                f"Idempotency-Key: {key}\n\n")
EOF
    # From the table's last seq, not from whenever the follower's request
    # gets there: at the second rate the first follower's stream may still
    # count in streams_open below (its end not yet noticed), and the first
    # POSTs went by before the new one was registered (seen: 79 of 2,000).
    after=$(psql_ -c "SELECT coalesce(max(seq), 0) FROM timestamp_records")
    python3 "$ROOT/bench/live.py" follow "http://127.0.0.1:$QUERY_PORT/api/v1/timestamps/stream?after=$after" \
      "$R/live-$rate.events" &
    follower=$!
    for _ in $(seq 500); do  # until it follows (5 s at most): its events start then
      curl -fsS "http://127.0.0.1:$QUERY_PORT/metrics" | grep -q '^streams_open [1-9]' && break
      sleep 0.01
    done
    ("${LOADGEN[@]}" "$VEGETA" attack -rate="$rate/s" -duration="${secs}s" -timeout=15s -targets="$R/live-$rate.gets" \
      -workers=512 -max-workers=4096 | "$VEGETA" encode --to json >"$R/live-$rate.get.json") &
    getter=$!
    sleep "$(awk -v ms="$LIVE_LEAD_MS" 'BEGIN { print ms / 1000 }')"
    "${LOADGEN[@]}" "$VEGETA" attack -rate="$rate/s" -duration="${secs}s" -timeout=10s -targets="$R/live-$rate.posts" \
      -workers="$CONNS" -max-workers="$CONNS" -max-connections="$CONNS" |
      "$VEGETA" encode --to json >"$R/live-$rate.post.json"
    wait "$getter" || true
    # The last events: past the sustainable rate the read side runs
    # seconds behind, so wait (15 s at most) until the stream has as many
    # events as POSTs were accepted, rather than count the tail as missing.
    accepted=$(grep -c '"code":200' "$R/live-$rate.post.json" || true)
    for _ in $(seq 150); do
      [ "$(wc -l <"$R/live-$rate.events" 2>/dev/null || echo 0)" -ge "$accepted" ] && break
      sleep 0.1
    done
    kill -TERM "$follower" 2>/dev/null || true
    wait "$follower" 2>/dev/null || true
    python3 "$ROOT/bench/live.py" report "$R/live-$rate.get.json" "$R/live-$rate.post.json" \
      "$R/live-$rate.events" >"$R/live-$rate"
    say "   wait-for-write p50 $(get "live-$rate" wait_p50_ms) ms, p99 $(get "live-$rate" wait_p99_ms) ms ($(get "live-$rate" wait_n) waits, $(get "live-$rate" wait_late) GETs late, $(get "live-$rate" wait_unsent) not sent, $(get "live-$rate" wait_not_200) not 200); stream p50 $(get "live-$rate" stream_p50_ms) ms, p99 $(get "live-$rate" stream_p99_ms) ms ($(get "live-$rate" stream_missing) events missing, $(get "live-$rate" stream_duplicates) twice, $(get "live-$rate" stream_reconnects) resumptions)"
  done
  stop query-service
  start query-service "$QUERY_PORT" "$BUILD/query-service"
}
