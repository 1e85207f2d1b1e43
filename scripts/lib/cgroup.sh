# shellcheck shell=bash
# cgroup.sh — a cpu cgroup of its own for PostgreSQL when make bench runs it
# as plain processes (sourced by bench.sh).
#
# Each PostgreSQL backend calls setsid(). With kernel.sched_autogroup_enabled=1
# (Debian's default) every session in the root cpu cgroup is a scheduling
# group of its own, so a database with 8 busy backends is 8 groups. When both
# cores were saturated (step 4b: range pages), `perf sched latency` showed
# backends runnable but not run for up to 860 ms: the range pages' p99 was
# 41-326 ms and their maximum 0.3-1.8 s, while query-service's own histogram
# had 99.9 % of them within 25 ms. The same stack, within the hour, with the
# postmaster and its children in one cpu cgroup: p99 7-11 ms, maximum 54-71
# ms. A database run as a systemd service or in a container is in a cgroup of
# its own, and then the kernel's autogroup does not apply to it: this makes
# the bench's PostgreSQL run as it would be deployed, at the default weight
# (README, Performance: a heavier one moved pgbench's ceilings).
#
#   cgroup_own NAME PID   moves PID and its children (its later children are
#                         born there) into the cpu cgroup NAME, when autogroup
#                         is on, PID is in the root cpu cgroup and we may make
#                         one; sets CGROUP_NOTE to what it did, or why not.
#                         Never fails: the bench runs either way, and says so
#   cgroup_remove NAME    removes it (its processes moved to the root first,
#                         if any is left)

# The cpu controller: "v1 DIR" (its own hierarchy) or "v2 DIR" (the unified
# one, where the root hands it to its children); nothing when neither.
cgroup_cpu() {
  local d
  d=$(awk '$3 == "cgroup" { n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] == "cpu") { print $2; exit } }' /proc/mounts)
  if [ -n "$d" ]; then
    echo "v1 $d"
  else
    d=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
    [ -z "$d" ] || ! grep -qw cpu "$d/cgroup.subtree_control" 2>/dev/null || echo "v2 $d"
  fi
}

# cgroup_of VERSION PID: PID's cpu cgroup, "/" for the root.
cgroup_of() {
  if [ "$1" = v1 ]; then
    awk -F: '{ n = split($2, c, ","); for (i = 1; i <= n; i++) if (c[i] == "cpu") { print $3; exit } }' "/proc/$2/cgroup"
  else
    awk -F: '$1 == "0" { print $3; exit }' "/proc/$2/cgroup"
  fi
}

# shellcheck disable=SC2034  # CGROUP_NOTE: read by the caller
cgroup_own() {
  local name=$1 pid=$2 cpu cur dir p err
  if [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" != 1 ]; then
    CGROUP_NOTE="as plain processes (the kernel's autogroup is off)"
    return 0
  fi
  cpu=$(cgroup_cpu)
  if [ -z "$cpu" ]; then
    CGROUP_NOTE="as plain processes, one scheduling group a backend (no cpu cgroup controller to use)"
    return 0
  fi
  if [ -z "$pid" ] || [ ! -r "/proc/$pid/cgroup" ]; then
    CGROUP_NOTE="as plain processes (no postmaster to move: pid '$pid')"
    return 0
  fi
  cur=$(cgroup_of "${cpu%% *}" "$pid")
  if [ "$cur" != / ]; then
    CGROUP_NOTE="in the cpu cgroup it was started in ($cur)"
    return 0
  fi
  dir=${cpu#* }/$name
  # The postmaster first: a backend it forks meanwhile is born in $dir or
  # is among the children listed after.
  if ! err=$({ mkdir -p "$dir" && echo "$pid" >"$dir/cgroup.procs"; } 2>&1); then
    CGROUP_NOTE="as plain processes, one scheduling group a backend (could not use $dir: ${err:-no reason given})"
    return 0
  fi
  for p in $(pgrep -P "$pid"); do
    echo "$p" >"$dir/cgroup.procs" 2>/dev/null || true  # one that ended meanwhile
  done
  CGROUP_NOTE="in a cpu cgroup of its own ($dir), as a systemd service or a container runs it"
}

cgroup_remove() {
  local cpu dir p
  cpu=$(cgroup_cpu)
  [ -n "$cpu" ] || return 0
  dir=${cpu#* }/$1
  [ -d "$dir" ] || return 0
  while read -r p; do
    echo "$p" >"${cpu#* }/cgroup.procs" 2>/dev/null || true
  done <"$dir/cgroup.procs"
  rmdir "$dir" 2>/dev/null || true
}
