#!/usr/bin/env bash
# ops-cluster.sh compose|ansible|standby — the checks of make test-ops
# (scripts/ops-test.sh) for the cluster form's operations files:
#   compose  docker-compose.yml: both profiles valid (docker compose config),
#            and scripts/ops-cluster-check.py: the single-node form unchanged,
#            the cluster profile still 3 KRaft voters with RF 3 / min ISR 2,
#            a primary and a standby, services pointed at all of them, and
#            Jaeger (pinned) with every service exporting its spans to it;
#   ansible  the playbook's syntax against the cluster inventory example, the
#            roles' templates rendered for ansible/tests/cluster.yml (3 Kafka
#            nodes, a primary and a standby, 2 web nodes) and checked by
#            scripts/ops-cluster-check.py, then site.yml --check for it, and
#            the standby's guard (never overwrites a database or a promoted
#            standby) in check mode;
#   standby  docker/postgres/primary-init.sh and standby.sh (the compose
#            cluster's replication) run against real PostgreSQL 15 binaries on
#            127.0.0.1: the standby is copied through its slot and streams, is
#            rebuilt through the existing slot, and is promoted.
# No container engine is needed: the images' scripts run on this machine.
#
# env: STATE_DIR (.local/ops), PG_BIN (/usr/lib/postgresql/15/bin), BIN_DIR
#      (build), KAFKA_CACHE_DIR (.cache: the Kafka jars for the check run),
#      OPS_REPL_PRIMARY_PORT (23434), OPS_REPL_STANDBY_PORT (23435)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
STATE_DIR=${STATE_DIR:-$ROOT/.local/ops}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "ops-cluster: $*" >&2; exit 1; }

compose_() {
  local compose=(docker-compose) dir=$STATE_DIR/compose
  if docker compose version >/dev/null 2>&1; then compose=(docker compose); fi
  mkdir -p "$dir"
  (cd "$ROOT" && "${compose[@]}" config >"$dir/default.yml" &&
     "${compose[@]}" --profile cluster config >"$dir/cluster.yml") || return 1
  shellcheck "$ROOT"/docker/postgres/*.sh || return 1
  python3 "$HERE/ops-cluster-check.py" compose "$dir/default.yml" "$dir/cluster.yml"
}

ansible_() {
  local out=$STATE_DIR/ansible-render
  rm -rf "$out"
  mkdir -p "$out"
  cd "$ROOT/ansible"
  ansible-playbook -i inventory/cluster-example.yml site.yml --syntax-check || return 1
  ansible-playbook -i tests/cluster.yml tests/render.yml -e "render_dir=$out" \
    >"$out/render.log" 2>&1 || { cat "$out/render.log"; return 1; }
  sed -n '/PLAY RECAP/,$p' "$out/render.log"
  python3 "$HERE/ops-cluster-check.py" ansible "$out" || return 1
  # The whole playbook in check mode for that inventory, every host being
  # this machine (nothing changes): the standby's and the voters' tasks
  # evaluate, in the order a real run takes.
  ansible-playbook -i tests/cluster.yml site.yml --check -e ansible_become_method=su \
    -e "timestamp_service_bin_dir=${BIN_DIR:-$ROOT/build}" \
    -e "kafka_libs_src=${KAFKA_CACHE_DIR:-$ROOT/.cache}/kafka-3.9.1/libs/" \
    >"$out/check.log" 2>&1 || { cat "$out/check.log"; return 1; }
  # (check mode skips the copy itself, a command, but predicts what precedes it)
  grep -A1 'TASK \[postgresql : Remove its data\]' "$out/check.log" | grep -q 'changed: \[db2\]' ||
    { echo "check mode: db2 would not be copied from the primary"; return 1; }
  sed -n '/PLAY RECAP/,$p' "$out/check.log"
  standby_guard "$out"
}

# standby_guard DIR: the postgresql role never overwrites data it should not.
# The database nodes alone, in check mode, with the data directory and the
# copy's mark in DIR: a standby is left alone; a host holding databases of its
# own, or one that was built as a standby and promoted, is refused.
standby_guard() {
  local data=$1/pgdata marker=$1/pgdata.standby-of log=$1/guard.log
  guard_run() {
    ansible-playbook -i tests/cluster.yml site.yml --check -l db1,db2 -e ansible_become_method=su \
      -e "postgresql_data_dir=$data" -e "postgresql_standby_marker=$marker" >"$log" 2>&1
  }
  rm -rf "$data" "$marker"
  mkdir -p "$data"/base/{1,2,3,4}
  if guard_run || ! grep -q 'db2 is in dbstandbys but is no standby (it holds databases of its own)' "$log"; then
    cat "$log"; echo "a host holding a database was not refused"; return 1
  fi
  rmdir "$data/base/4"
  touch "$marker"
  if guard_run || ! grep -q 'db2 is in dbstandbys but is no standby (it was promoted)' "$log"; then
    cat "$log"; echo "a promoted standby was not refused"; return 1
  fi
  touch "$data/standby.signal"
  if ! guard_run || ! grep -A1 'TASK \[postgresql : Remove its data\]' "$log" | grep -q 'skipping: \[db2\]'; then
    cat "$log"; echo "a standby was not left alone"; return 1
  fi
  echo "standby guard: a host holding databases and a promoted standby refused, a standby left alone"
}

# ---- standby: the compose cluster's replication scripts on real PostgreSQL ----

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# sql PORT QUERY: one value, as the superuser timestamps over the socket (trust).
sql() {
  as_pg "$PG_BIN/psql" -h "$REPL_DIR" -p "$1" -U timestamps \
    -d timestamps -X -A -t -v ON_ERROR_STOP=1 -c "$2"
}

# wait_for PORT QUERY WANT: polls until QUERY answers WANT, 30 s at most.
wait_for() {
  local i got=
  for i in $(seq 1 150); do
    got=$(sql "$1" "$2" 2>/dev/null) || got=
    [ "$got" = "$3" ] && return 0
    sleep 0.2
  done
  echo "after $i tries, :$1 answers '$got' to \"$2\", not '$3'"
  return 1
}

pg_ctl_() { as_pg "$PG_BIN/pg_ctl" "$@"; }

# shellcheck disable=SC2317  # invoked by the trap
stop_repl() {
  local d
  for d in standby primary; do
    [ -f "$REPL_DIR/$d/postmaster.pid" ] && pg_ctl_ stop -D "$REPL_DIR/$d" -m immediate -w >/dev/null 2>&1
  done
  return 0
}

# run_standby_sh: docker/postgres/standby.sh as the container runs it, with
# pg_ctl start as the command it ends in.
run_standby_sh() {
  as_pg env PATH="$PG_BIN:$PATH" PGDATA="$REPL_DIR/standby" PRIMARY_HOST=127.0.0.1 \
    PRIMARY_PORT="$P" STANDBY_SLOT=standby_1 REPLICATION_USER=replicator \
    REPLICATION_PASSWORD_FILE="$REPL_DIR/replication-password" \
    "$ROOT/docker/postgres/standby.sh" \
    "$PG_BIN/pg_ctl" start -w -t 60 -D "$REPL_DIR/standby" -l "$REPL_DIR/standby.log" \
    -o "-p $S -k $REPL_DIR -c listen_addresses=127.0.0.1"
}

standby_() {
  REPL_DIR=$STATE_DIR/pg-replication
  P=${OPS_REPL_PRIMARY_PORT:-23434} S=${OPS_REPL_STANDBY_PORT:-23435}
  [ -x "$PG_BIN/pg_ctl" ] || die "$PG_BIN/pg_ctl not found (run make deps)"
  stop_repl 2>/dev/null || true
  rm -rf "$REPL_DIR"
  mkdir -p "$REPL_DIR"
  trap stop_repl EXIT
  cp "$ROOT/docker/secrets/db-password" "$ROOT/docker/secrets/replication-password" "$REPL_DIR/"
  [ "$(id -u)" -ne 0 ] || chown -R postgres: "$REPL_DIR"
  local d=$REPL_DIR
  while [ "$d" != / ]; do  # postgres must reach the state dir (see scripts/pg.sh)
    [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$d" || chmod o+x "$d"
    d=$(dirname "$d")
  done

  # The primary as the postgres image makes it: a superuser with the
  # password, password logins from the network, the init scripts run on a
  # socket-only server. The default pg_hba replication lines are removed, so
  # the standby gets in only by the line primary-init.sh adds.
  as_pg "$PG_BIN/initdb" -D "$REPL_DIR/primary" -U timestamps --pwfile="$REPL_DIR/db-password" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null || return 1
  sed -i '/replication/d' "$REPL_DIR/primary/pg_hba.conf"
  echo "host all all all scram-sha-256" >>"$REPL_DIR/primary/pg_hba.conf"
  pg_ctl_ start -w -t 60 -D "$REPL_DIR/primary" -l "$REPL_DIR/primary.log" \
    -o "-p $P -k $REPL_DIR -c listen_addresses=''" >/dev/null || return 1
  as_pg "$PG_BIN/createdb" -h "$REPL_DIR" -p "$P" -U timestamps timestamps || return 1
  as_pg env PATH="$PG_BIN:$PATH" PGHOST="$REPL_DIR" PGPORT="$P" PGDATA="$REPL_DIR/primary" \
    POSTGRES_USER=timestamps POSTGRES_DB=timestamps REPLICATION_USER=replicator \
    REPLICATION_PASSWORD_FILE="$REPL_DIR/replication-password" \
    "$ROOT/docker/postgres/primary-init.sh" || return 1
  pg_ctl_ stop -D "$REPL_DIR/primary" -m fast -w >/dev/null || return 1
  pg_ctl_ start -w -t 60 -D "$REPL_DIR/primary" -l "$REPL_DIR/primary.log" \
    -o "-p $P -k $REPL_DIR -c listen_addresses=127.0.0.1" >/dev/null || return 1
  echo "primary :$P initialised as the image does, with primary-init.sh"

  run_standby_sh || return 1
  wait_for "$S" "SELECT pg_is_in_recovery()" t || return 1
  wait_for "$P" "SELECT active FROM pg_replication_slots WHERE slot_name = 'standby_1'" t || return 1
  sql "$P" "CREATE TABLE ops_check (n int); INSERT INTO ops_check VALUES (1), (2), (3)" >/dev/null || return 1
  wait_for "$S" "SELECT count(*) FROM ops_check" 3 || return 1
  echo "standby :$S copied with pg_basebackup -R, streams through slot standby_1 (3 rows seen)"

  # Rebuilt from scratch: the slot exists, the copy uses it.
  pg_ctl_ stop -D "$REPL_DIR/standby" -m fast -w >/dev/null || return 1
  rm -rf "${REPL_DIR:?}/standby"
  run_standby_sh || return 1
  wait_for "$S" "SELECT pg_is_in_recovery()" t || return 1
  wait_for "$P" "SELECT count(*) FROM pg_replication_slots" 1 || return 1
  wait_for "$P" "SELECT active FROM pg_replication_slots WHERE slot_name = 'standby_1'" t || return 1
  sql "$P" "INSERT INTO ops_check VALUES (4)" >/dev/null || return 1
  wait_for "$S" "SELECT count(*) FROM ops_check" 4 || return 1
  echo "standby rebuilt through the existing slot (4 rows seen)"

  # Failover as the README says: the primary gone, the standby promoted.
  pg_ctl_ stop -D "$REPL_DIR/primary" -m immediate -w >/dev/null || return 1
  pg_ctl_ promote -w -t 60 -D "$REPL_DIR/standby" >/dev/null || return 1
  wait_for "$S" "SELECT pg_is_in_recovery()" f || return 1
  sql "$S" "INSERT INTO ops_check VALUES (5)" >/dev/null || return 1
  wait_for "$S" "SELECT count(*) FROM ops_check" 5 || return 1
  echo "primary stopped, standby promoted with pg_ctl promote: it takes writes (5 rows)"
}

case ${1:-} in
  compose) compose_ ;;
  ansible) ansible_ ;;
  standby) standby_ ;;
  *) echo "usage: scripts/ops-cluster.sh compose|ansible|standby" >&2; exit 2 ;;
esac
