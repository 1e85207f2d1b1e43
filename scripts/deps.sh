#!/usr/bin/env bash
# deps.sh — install the Debian packages the stack needs to build, test and run (only those missing).
#
# usage: scripts/deps.sh [EXTRA_PACKAGE...]   (e.g. the benchmarks' wrk and gnuplot-nox)
set -euo pipefail

pkgs=(build-essential pkg-config libcivetweb-dev librdkafka-dev libjson-c-dev uuid-dev
      libpq-dev check libsubunit-dev libcurl4-openssl-dev postgresql-15 postgresql-client-15
      kcat curl clang cppcheck "$@")

# Java: any java >= 11 already on PATH will do; otherwise Debian's 17. Maven: only if no mvn.
java_major() { java -version 2>&1 | sed -nE '1s/.*version "(1\.)?([0-9]+).*/\2/p'; }
jv=0
if command -v java >/dev/null; then jv=$(java_major); fi
[ "${jv:-0}" -ge 11 ] || pkgs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || pkgs+=(maven)

# One dpkg-query call (fast): which of them are fully installed?
declare -A installed=()
while read -r name status; do
  [ "$status" = ii ] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${pkgs[@]}" 2>/dev/null || true)
missing=()
for p in "${pkgs[@]}"; do [ -n "${installed[$p]:-}" ] || missing+=("$p"); done

if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all packages present"
  exit 0
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "[deps] installing: ${missing[*]}"
# Debian would create and start a system cluster "15/main" on port 5432, which would
# clash with the cluster scripts/pg.sh runs: tell postgresql-common not to create it.
if [[ " ${missing[*]} " == *" postgresql-15 "* && ! -d /etc/postgresql/15/main ]]; then
  "${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" |
    "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/50-no-main-cluster.conf >/dev/null
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
echo "[deps] done"
