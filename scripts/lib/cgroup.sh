# Sourced by the bench scripts (bash).
#
# run_in_cgroup LIMIT_BYTES CMD...: runs CMD inside a fresh memory cgroup limited to LIMIT_BYTES
# (v1 or v2, where this machine lets root make one; page cache counts against the limit too),
# and returns CMD's exit status. Without a cgroup it runs CMD unconfined. Afterwards:
#   CGROUP_CONFINED    1 when CMD ran confined, else 0
#   CGROUP_OOM_KILLS   processes the kernel's OOM killer killed in the group (0 when unknown)
#   CGROUP_PEAK_BYTES  the group's peak memory use (empty when the kernel does not report it)
run_in_cgroup() {
  local limit=$1; shift
  local v1=/sys/fs/cgroup/memory v2=/sys/fs/cgroup cg="" rc
  CGROUP_CONFINED=0 CGROUP_OOM_KILLS=0 CGROUP_PEAK_BYTES=""
  if [ -d "$v1" ] && mkdir -p "$v1/strata-bench-$$" 2>/dev/null; then
    cg="$v1/strata-bench-$$"; echo "$limit" > "$cg/memory.limit_in_bytes"
  elif [ -f "$v2/cgroup.controllers" ] && mkdir -p "$v2/strata-bench-$$" 2>/dev/null; then
    cg="$v2/strata-bench-$$"; echo "$limit" > "$cg/memory.max"
  fi
  if [ -z "$cg" ]; then
    rc=0; "$@" || rc=$?
    return $rc
  fi
  CGROUP_CONFINED=1
  rc=0; bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$cg" "$@" || rc=$?
  if [ -f "$cg/memory.oom_control" ]; then
    CGROUP_OOM_KILLS=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.oom_control")
    CGROUP_PEAK_BYTES=$(cat "$cg/memory.max_usage_in_bytes" 2>/dev/null || true)
  elif [ -f "$cg/memory.events" ]; then
    CGROUP_OOM_KILLS=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.events")
    CGROUP_PEAK_BYTES=$(cat "$cg/memory.peak" 2>/dev/null || true)
  fi
  CGROUP_OOM_KILLS=${CGROUP_OOM_KILLS:-0}
  rmdir "$cg" 2>/dev/null || true
  return $rc
}
