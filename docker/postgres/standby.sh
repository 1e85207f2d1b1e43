#!/usr/bin/env bash
# standby.sh COMMAND... — the entrypoint of docker-compose.yml's
# postgres-standby (profile cluster). On the first start (no PG_VERSION in
# PGDATA) it waits for the primary, 5 minutes at most, and copies it with
# pg_basebackup -R (standby.signal and primary_conninfo, so the copy starts as
# a streaming standby) through the physical replication slot STANDBY_SLOT: the
# primary keeps the WAL this standby has not received yet. Then it runs
# COMMAND (the image's docker-entrypoint.sh postgres).
#
# env: PGDATA, PRIMARY_HOST, PRIMARY_PORT (5432), STANDBY_SLOT (standby_1),
#      REPLICATION_USER, REPLICATION_PASSWORD_FILE
set -euo pipefail
: "${PGDATA:?}" "${PRIMARY_HOST:?}" "${REPLICATION_USER:?}" "${REPLICATION_PASSWORD_FILE:?}"
port=${PRIMARY_PORT:-5432}
slot=${STANDBY_SLOT:-standby_1}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # Over TCP: while the image initialises the primary, it listens on its
  # socket only, so this answers once the primary (and its users) are ready.
  tries=300
  until pg_isready -q -h "$PRIMARY_HOST" -p "$port"; do
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then
      echo "standby: the primary $PRIMARY_HOST:$port did not answer within 300 s" >&2
      exit 1
    fi
    sleep 1
  done
  PGPASSWORD=$(cat "$REPLICATION_PASSWORD_FILE")
  export PGPASSWORD
  # A half-done copy of an earlier attempt is thrown away.
  rm -rf "$PGDATA"
  copy=(pg_basebackup -h "$PRIMARY_HOST" -p "$port" -U "$REPLICATION_USER" -D "$PGDATA"
        -R -X stream --checkpoint=fast -S "$slot")
  echo "standby: copying $PRIMARY_HOST:$port into $PGDATA (slot $slot)"
  # -C creates the slot. It exists already when this standby is rebuilt (or
  # an earlier attempt failed after creating it): then the copy uses it.
  if ! out=$("${copy[@]}" -C 2>&1); then
    echo "$out" >&2
    case $out in
      *"already exists"*)
        rm -rf "$PGDATA"
        "${copy[@]}" ;;
      *) exit 1 ;;
    esac
  fi
  unset PGPASSWORD
  echo "standby: copy done, starting as a standby of $PRIMARY_HOST:$port"
fi
exec "$@"
