#!/usr/bin/env bash
# k8s-check.sh [BUILD_DIR] — the checks of deploy/k8s/ in `make test` (make
# test-k8s), no cluster needed:
#   render    kustomize build of the base and of each overlay
#   validate  every rendered object against its schema for each Kubernetes
#             version of K8S_VERSIONS (scripts/k8s-validate.py: the schemas of
#             kubernetes-validate; KEDA's ScaledObject and the Prometheus
#             Operator's PodMonitor against their CRDs' models)
#   policy    the trio's rules on each render (scripts/k8s-policy.py: probes,
#             resources, securityContext, preStop and grace, PDB, HPA, KEDA,
#             the DB Secret, images, scraping), and its self-test: every rule
#             broken in turn in a copy must be caught; with the variables
#             each service reads (its --help, from BUILD_DIR (build), and the
#             OTEL_* of common/trace.h), so a misspelt setting fails too
# The tools come from `make deps-test` (scripts/deps.sh: kustomize with `go
# install` into .cache/, kubernetes-validate with pip into .cache/k8s-venv);
# a missing one fails the run. Renders go to K8S_STATE_DIR (.local/k8s).
# Ends with "k8s: N passed, N failed".
#
# env: K8S_VERSIONS ("1.30 1.33"), K8S_STATE_DIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
CACHE=${KAFKA_CACHE_DIR:-$ROOT/.cache}
KUSTOMIZE_VERSION=$(sed -n 's/^KUSTOMIZE_VERSION=//p' "$HERE/deps.sh")
KUSTOMIZE=$CACHE/kustomize-$KUSTOMIZE_VERSION/kustomize
PY=$CACHE/k8s-venv/bin/python
OUT=${K8S_STATE_DIR:-$ROOT/.local/k8s}
VERSIONS=${K8S_VERSIONS:-1.30 1.33}

[ -x "$KUSTOMIZE" ] || { echo "k8s: $KUSTOMIZE missing: run make deps-test" >&2; exit 1; }
[ -x "$PY" ] || { echo "k8s: $PY missing: run make deps-test" >&2; exit 1; }

passed=0 failed=0
step() { # step NAME CMD...: runs one check, its output indented
  local name=$1 rc=0
  shift
  echo "-- $name"
  "$@" 2>&1 | sed 's/^/   /' || rc=$?
  if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); else echo "   FAILED: $name"; failed=$((failed + 1)); fi
}

# render DIR FILE: FILE only when the build succeeds.
render() { "$KUSTOMIZE" build "$1" > "$2.tmp" && mv "$2.tmp" "$2"; }

rm -rf "$OUT"
mkdir -p "$OUT"
renders=()
for dir in "$ROOT"/deploy/k8s/base "$ROOT"/deploy/k8s/overlays/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  step "kustomize build deploy/k8s/${dir#"$ROOT"/deploy/k8s/}" render "$dir" "$OUT/$name.yaml"
  [ ! -f "$OUT/$name.yaml" ] || renders+=("$OUT/$name.yaml")
done
# vars SERVICE: writes the variables it reads, one a line, to
# $OUT/vars/SERVICE.vars: the --help lines that start with a name, the
# NAME_FILE of a secret, and the tracing variables of common/trace.h
# (TRACE_CFG_PARAMS, in every service's table).
vars() {
  local help
  help=$("$BUILD/$1" --help) || return 1
  { grep -oE '^  [A-Z][A-Z0-9_]+ |; or [A-Z][A-Z0-9_]+_FILE naming' <<<"$help" |
      grep -oE '[A-Z][A-Z0-9_]+'
    grep -oE '\{"OTEL_[A-Z_]+"' "$ROOT/common/trace.h" | tr -d '{"'
  } > "$OUT/vars/$1.vars" && [ -s "$OUT/vars/$1.vars" ]
}
mkdir -p "$OUT/vars"
for s in command-service consumer-service query-service; do
  step "variables $s reads (--help)" vars "$s"
done

for v in $VERSIONS; do
  step "schemas, Kubernetes $v" "$PY" "$HERE/k8s-validate.py" -k "$v" "${renders[@]}"
done
for r in "${renders[@]}"; do
  step "policy: $(basename "$r" .yaml)" "$PY" "$HERE/k8s-policy.py" --vars "$OUT/vars" "$r"
done
# The self-test on the dev render (it has every kind, the Secret included).
step "policy self-test" "$PY" "$HERE/k8s-policy.py" --self-test --vars "$OUT/vars" "$OUT/dev.yaml"

echo "k8s: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
