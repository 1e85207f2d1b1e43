#!/usr/bin/env bash
# primary-init.sh — run once by the postgres image when it initialises the
# cluster form's primary (docker-compose.yml, profile cluster): a user that may
# stream WAL (REPLICATION_USER, password from REPLICATION_PASSWORD_FILE) and a
# pg_hba.conf line letting it in with a password. pg_hba.conf lives in the
# data directory here, so the standby's copy has the line too and can serve a
# new standby after it is promoted. PostgreSQL 15's defaults already stream:
# wal_level=replica, max_wal_senders=10, max_replication_slots=10.
set -euo pipefail
: "${REPLICATION_USER:?}" "${REPLICATION_PASSWORD_FILE:?}"
password=$(cat "$REPLICATION_PASSWORD_FILE")
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
  -v user="$REPLICATION_USER" -v password="$password" <<'SQL'
CREATE ROLE :"user" WITH LOGIN REPLICATION PASSWORD :'password';
SQL
echo "host replication $REPLICATION_USER all scram-sha-256" >>"$PGDATA/pg_hba.conf"
