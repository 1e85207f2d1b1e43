#!/usr/bin/env bash
# deps.sh — installs what the project needs, only what is missing, and says
# so in one line per install. It is the only script that installs anything:
# the others fail, naming `make deps` or `make deps-test`, when a tool is
# missing. `make run` calls it with `run`, `make test` and `make bench` with
# `test`, once, before anything else.
#
# usage: scripts/deps.sh run|test
#   run   Debian packages to build and run the trio (compiler, libraries,
#         libcurl for the trace exporter, PostgreSQL 15, a Java runtime and
#         Maven) and the Apache Kafka jars (Maven, into .cache/)
#   test  the same, plus what the tests and benchmarks use: Debian's check,
#         clang (fuzz), cppcheck and shellcheck (make lint), kcat,
#         wrk and gnuplot (bench), docker-compose, ansible and ansible-lint
#         (ops checks), Node.js with newman and redocly (`npm ci`),
#         schemathesis and hadolint (pip, .cache/ops-venv), vegeta (`go
#         install`, .cache/bin), promtool (unpacked from Debian's
#         prometheus package into .cache/prometheus), kustomize (`go
#         install`, .cache/kustomize-<version>) and kubernetes-validate (pip,
#         .cache/k8s-venv) for make test-k8s, and Jaeger (built from the Go
#         module proxy into .cache/jaeger by scripts/jaeger.sh: in the
#         background, ~7-10 min the first time; the integration tests wait for it;
#         not with DEPS_JAEGER=0, as `make bench` runs it)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${KAFKA_CACHE_DIR:-$ROOT/.cache}
# Versions of what is not a Debian package (bench.sh reads VEGETA_VERSION here).
VEGETA_VERSION=v12.13.0
# (k8s-check.sh reads this; v5.8.3 and later need a newer Go than Debian 12's machines have)
KUSTOMIZE_VERSION=v5.8.2

say() { echo "[deps] $*"; }
die() { echo "[deps] error: $*" >&2; exit 1; }

profile=${1:-}
case $profile in run | test) ;; *) echo "usage: $0 run|test" >&2; exit 2 ;; esac

pkgs=(build-essential pkg-config libcivetweb-dev librdkafka-dev libjson-c-dev uuid-dev
      libpq-dev libcurl4-openssl-dev postgresql-15 postgresql-client-15 curl)
if [ "$profile" = test ]; then
  pkgs+=(check libsubunit-dev clang cppcheck shellcheck kcat wrk
         gnuplot-nox docker-compose ansible ansible-lint python3)
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
  python3 -c 'import ensurepip' 2>/dev/null || pkgs+=(python3-venv)
  [ -x "$(command -v go || echo /usr/local/go/bin/go)" ] || pkgs+=(golang-go)
fi
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

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
apt_updated=
apt_() {
  if [ -z "$apt_updated" ]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  # Debian would create and start a system cluster "15/main" on port 5432, which
  # would clash with the cluster scripts/pg.sh runs: tell postgresql-common not to.
  if [[ " ${missing[*]} " == *" postgresql-15 "* && ! -d /etc/postgresql/15/main ]]; then
    "${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" |
      "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/50-no-main-cluster.conf >/dev/null
  fi
  apt_ install -y -qq "${missing[@]}" >/dev/null
fi

# Jaeger, the tracing tests' collector: first, as its build (minutes) runs in
# the background while the rest is fetched and the unit tests run.
# Not for `make bench` (DEPS_JAEGER=0): it would compile on the cores the
# benchmark measures.
[ "$profile" != test ] || [ "${DEPS_JAEGER:-1}" = 0 ] || "$HERE/jaeger.sh" build-bg
# The Kafka jars (kafka.sh says a line when it fetches them).
"$HERE/kafka.sh" fetch

if [ "$profile" = test ]; then
  # newman and redocly, exactly as package-lock.json says; again only when it changed.
  stamp=$ROOT/node_modules/.ops-lock
  if ! cmp -s "$ROOT/package-lock.json" "$stamp" || [ ! -x "$ROOT/node_modules/.bin/newman" ]; then
    say "npm ci (newman, redocly; package-lock.json) into node_modules/"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error \
       --update-notifier=false) >/dev/null
    cp "$ROOT/package-lock.json" "$stamp"
  fi
  # schemathesis and hadolint in a venv of our own.
  venv=$CACHE/ops-venv
  stamp=$venv/.ops-requirements
  if ! cmp -s "$ROOT/requirements-ops.txt" "$stamp"; then
    say "pip install -r requirements-ops.txt (schemathesis, hadolint) into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements-ops.txt"
    cp "$ROOT/requirements-ops.txt" "$stamp"
  fi
  # vegeta: a constant-rate HTTP load generator (make bench and its smoke).
  if [ ! -x "$CACHE/bin/vegeta" ]; then
    go=$(command -v go || echo /usr/local/go/bin/go)
    say "go install vegeta $VEGETA_VERSION (Go module proxy) into $CACHE/bin"
    mkdir -p "$CACHE"
    GOBIN=$CACHE/bin GOPATH=$CACHE/go GOFLAGS=-modcacherw \
      "$go" install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION" >"$CACHE/vegeta-install.log" 2>&1 ||
      { cat "$CACHE/vegeta-install.log"; die "could not install vegeta"; }
  fi
  # kustomize renders deploy/k8s/ (make test-k8s); a new version, a new folder.
  kz=$CACHE/kustomize-$KUSTOMIZE_VERSION
  if [ ! -x "$kz/kustomize" ]; then
    go=$(command -v go || echo /usr/local/go/bin/go)
    say "go install kustomize $KUSTOMIZE_VERSION (Go module proxy) into $kz"
    mkdir -p "$CACHE"
    GOBIN=$kz GOPATH=$CACHE/go GOFLAGS=-modcacherw GOTOOLCHAIN=local \
      "$go" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" \
      >"$CACHE/kustomize-install.log" 2>&1 ||
      { cat "$CACHE/kustomize-install.log"; die "could not install kustomize"; }
  fi
  # kubernetes-validate and the CRD models (make test-k8s), in a venv of their own.
  venv=$CACHE/k8s-venv
  stamp=$venv/.k8s-requirements
  if ! cmp -s "$ROOT/requirements-k8s.txt" "$stamp"; then
    say "pip install -r requirements-k8s.txt (kubernetes-validate) into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements-k8s.txt"
    cp "$ROOT/requirements-k8s.txt" "$stamp"
  fi
  # promtool, unpacked: installing the package would also start a Prometheus server.
  prom=$CACHE/prometheus
  if [ ! -x "$prom/usr/bin/promtool" ]; then
    say "promtool: unpacking Debian's prometheus package into $prom"
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) ||
      { "${sudo[@]}" apt-get update -qq; (cd "$tmp" && apt-get download prometheus >/dev/null); }
    dpkg-deb -x "$tmp"/prometheus_*.deb "$prom"
    rm -rf "$tmp"
  fi
fi
say "$profile: everything present"
