# shellcheck shell=bash
# proc.sh — the one shell way to start a program in the background, wait for
# its /ready and stop it (sourced by services.sh, bench.sh, dr-drill.sh and
# jaeger.sh; integration/harness/proc.c is its counterpart for the C tests).
#
#   proc_start LOG CMD [ARG...]   runs CMD in the background, its output
#                                 appended to LOG; sets PROC_PID. Environment
#                                 or working folder: CMD = env [-i] [-C DIR] ...
#                                 (never with a secret: env's arguments are on
#                                 its command line), or CMD = a function of the
#                                 caller's that ends by exec-ing the program
#   proc_wait_ready PID URL SECONDS LOG [INTERVAL]
#                                 polls URL (every INTERVAL s, 0.1) until it
#                                 answers 2xx: 0; PID exited or SECONDS passed:
#                                 says which and the last lines of LOG on
#                                 stderr, returns 1
#   proc_stop PID [NAME]          SIGTERM, up to 10 s (the services' promise),
#                                 then SIGKILL (said on stderr, returns 1); a
#                                 child's exit status is left to the caller's wait
#   proc_alive PID                true while PID runs (a zombie does not)
#   proc_pid_file FILE            prints the pid FILE names if it is alive
#   proc_service_port SERVICE     COMMAND_PORT, CONSUMER_PORT or QUERY_PORT
#                                 of command-, consumer- or query-service

proc_start() {
  local log=$1
  shift
  if declare -F "$1" >/dev/null; then
    # A subshell that ignores SIGHUP, as nohup would; the function's exec
    # makes the program this pid.
    ( trap '' HUP; "$@" ) >>"$log" 2>&1 </dev/null &
  else
    nohup "$@" >>"$log" 2>&1 </dev/null &
  fi
  # shellcheck disable=SC2034  # read by the caller
  PROC_PID=$!
}

proc_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

proc_pid_file() {
  local p
  p=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$p" ] && proc_alive "$p" && echo "$p"
}

proc_wait_ready() {
  local pid=$1 url=$2 seconds=$3 log=$4 interval=${5:-0.1} deadline=$((SECONDS + $3))
  until curl -fsS -m 5 -o /dev/null "$url" 2>/dev/null; do
    if ! proc_alive "$pid"; then
      echo "pid $pid exited before $url answered; last lines of $log:" >&2
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "pid $pid: $url not ready after $seconds s ($(curl -sS -m 2 "$url" 2>&1)); last lines of $log:" >&2
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    sleep "$interval"
  done
}

proc_stop() {
  local pid=$1 name=${2:-pid $1} i rc=0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    proc_alive "$pid" || break
    sleep 0.1
  done
  if proc_alive "$pid"; then
    echo "$name did not stop within 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    rc=1
  fi
  return $rc
}

proc_service_port() {
  case $1 in
    command-service) echo "$COMMAND_PORT" ;;
    consumer-service) echo "$CONSUMER_PORT" ;;
    query-service) echo "$QUERY_PORT" ;;
  esac
}
