#!/usr/bin/env bash
# Emulates N drives on one machine (each a loop device over a sparse file, ext4, mounted, with its
# own read bandwidth limit), runs a command with them, and tears everything down again.
#
#   scripts/emulate-drives.sh [--size SIZE] [--bps BPS[,BPS...]] [--root DIR] [--keep-backing] N -- CMD [ARGS...]
#
#   N               number of drives, 1..16
#   --size SIZE     size of each drive's sparse backing file (default 4G); suffixes K/M/G are
#                   binary (4G = 4 GiB); at least 16M
#   --bps BPS,...   read bandwidth limit per drive in bytes/s; suffixes K/M/G are DECIMAL
#                   (300M = 300,000,000 bytes/s); 0 or "none" = unlimited (default none). One value
#                   applies to every drive; a comma list of N values gives each drive its own limit.
#   --root DIR      where backing files and mounts go (default /var/tmp/strata-drives-$$);
#                   drive I is ROOT/backing/dI.img mounted at ROOT/mnt/dI
#   --keep-backing  leave the backing files (and ROOT) in place after teardown
#
# Drive I: `truncate -s SIZE` -> `losetup --direct-io=on --show -f` (reads reach the backing
# file without a second page cache) -> mkfs.ext4 -> mount -o noatime,noinit_itable. The backing
# file is fresh and sparse, so it reads as zeros and mkfs may skip zeroing the inode tables and
# journal (lazy_*_init=1); noinit_itable stops ext4's background zeroing thread competing with
# the command's I/O.
#
# The limits are per device (so the drives may be unequal) and apply to reads only; writes run
# at full speed. cgroup v1: a blkio cgroup /sys/fs/cgroup/blkio/strata-drives-$$ with
# "MAJ:MIN BPS" lines in blkio.throttle.read_bps_device; cgroup v2: /sys/fs/cgroup/strata-drives-$$
# with "MAJ:MIN rbps=BPS" in io.max (+io is enabled in the root's cgroup.subtree_control if it is
# not, and left so). CMD runs with its process moved into that cgroup; its children, threads and
# io_uring workers (threads of the submitting process on kernels >= 5.12) stay there, so O_DIRECT
# reads, io_uring reads and buffered reads (page cache misses through ext4) are all throttled.
# Reads of data still in the page cache never reach the device and are not.
#
# CMD's environment:
#   STRATA_DRIVES         comma-separated mount dirs, ROOT/mnt/d0,ROOT/mnt/d1,...
#   STRATA_DRIVE_DEVICES  comma-separated loop devices, /dev/loopA,/dev/loopB,...
#   STRATA_DRIVE_BPS      comma-separated read limits in bytes/s (0 = unlimited)
#
# Teardown runs on exit, INT and TERM, also when setup fails halfway: processes CMD left in the
# cgroup are killed, then umount, losetup -d, rmdir of the cgroup, removal of backing files and
# ROOT (unless --keep-backing). INT/TERM are passed on to CMD (as TERM) before teardown.
#
# Exit status: CMD's; 2 for bad arguments; 1 when setup fails; 77 (the usual "skipped" code, as
# CTest's SKIP_RETURN_CODE) with one line "emulate-drives: cannot emulate drives here: REASON" on
# stderr when this machine cannot do it (not root, no losetup/mkfs.ext4, no loop devices, no
# blkio/io controller with throttling).
set -uo pipefail

PROG=emulate-drives
SKIP=77

usage() {
  sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"
}
die_usage() { echo "$PROG: $*" >&2; echo "$PROG: see --help" >&2; exit 2; }
skip() { echo "$PROG: cannot emulate drives here: $*" >&2; exit $SKIP; }
fail() { echo "$PROG: $*" >&2; exit 1; }

# parse_num VALUE BASE -> prints VALUE with a K/M/G suffix expanded (BASE 1000 or 1024)
parse_num() {
  local v=$1 base=$2 n suf mult=1
  [[ $v =~ ^([0-9]+)([KkMmGg]?)$ ]] || return 1
  n=$((10#${BASH_REMATCH[1]})) suf=${BASH_REMATCH[2]}
  case $suf in
    K|k) mult=$base ;;
    M|m) mult=$((base * base)) ;;
    G|g) mult=$((base * base * base)) ;;
  esac
  # refuse values that overflow 63 bits
  if [ "$n" -gt 0 ] && [ $((n * mult / mult)) -ne "$n" ]; then return 1; fi
  echo $((n * mult))
}

SIZE_ARG=4G BPS_ARG=none ROOT="" KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --size) [ $# -ge 2 ] || die_usage "--size needs a value"; SIZE_ARG=$2; shift 2 ;;
    --size=*) SIZE_ARG=${1#*=}; shift ;;
    --bps) [ $# -ge 2 ] || die_usage "--bps needs a value"; BPS_ARG=$2; shift 2 ;;
    --bps=*) BPS_ARG=${1#*=}; shift ;;
    --root) [ $# -ge 2 ] || die_usage "--root needs a value"; ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#*=}; shift ;;
    --keep-backing) KEEP=1; shift ;;
    --) die_usage "missing N before --" ;;
    -*) die_usage "unknown option '$1'" ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || die_usage "missing N (number of drives)"
N=$1; shift
if ! [[ $N =~ ^[0-9]{1,3}$ ]] || [ "$((10#$N))" -lt 1 ] || [ "$((10#$N))" -gt 16 ]; then
  die_usage "N must be a number of drives from 1 to 16, got '$N'"
fi
N=$((10#$N))
[ "${1-}" = "--" ] || die_usage "expected -- after N, got '${1-}'"
shift
[ $# -ge 1 ] || die_usage "missing CMD after --"

SIZE=$(parse_num "$SIZE_ARG" 1024) || die_usage "bad --size '$SIZE_ARG' (want a number with optional K/M/G, e.g. 4G)"
[ "$SIZE" -ge $((16 * 1024 * 1024)) ] || die_usage "--size '$SIZE_ARG' is too small (at least 16M)"

IFS=, read -r -a bps_in <<< "$BPS_ARG"
[ "${#bps_in[@]}" -ge 1 ] || die_usage "bad --bps '$BPS_ARG'"
if [ "${#bps_in[@]}" -ne 1 ] && [ "${#bps_in[@]}" -ne "$N" ]; then
  die_usage "--bps '$BPS_ARG' has ${#bps_in[@]} values; give one, or one per drive ($N)"
fi
BPS=()
for ((i = 0; i < N; i++)); do
  v=${bps_in[0]}; [ "${#bps_in[@]}" -eq 1 ] || v=${bps_in[i]}
  if [ "$v" = none ]; then BPS+=(0); continue; fi
  b=$(parse_num "$v" 1000) || die_usage "bad --bps value '$v' (want bytes/s with optional decimal K/M/G, e.g. 300M, or 0/none)"
  BPS+=("$b")
done
ROOT=${ROOT:-/var/tmp/strata-drives-$$}
case $ROOT in /*) ;; *) ROOT=$PWD/$ROOT ;; esac

# --- can this machine do it? -------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root (uid $(id -u))"
for tool in losetup mkfs.ext4 mount umount truncate; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool not found"
done
[ -e /dev/loop-control ] || ls /dev/loop[0-9]* >/dev/null 2>&1 || skip "no loop devices (/dev/loop-control missing)"
CGV="" CGROOT=""
if [ -f /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device ]; then
  CGV=1 CGROOT=/sys/fs/cgroup/blkio
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw io /sys/fs/cgroup/cgroup.controllers; then
  CGV=2 CGROOT=/sys/fs/cgroup
else
  skip "no blkio (cgroup v1) or io (cgroup v2) controller with throttling"
fi

# --- teardown ----------------------------------------------------------------------------------
CG="" DEVS=() MNTS=() CMD_PID="" TORN=0 ROOT_MADE=0

cg_pids() { [ -n "$CG" ] && [ -f "$CG/cgroup.procs" ] && cat "$CG/cgroup.procs" 2>/dev/null; }

teardown() {
  [ "$TORN" -eq 0 ] || return 0
  TORN=1
  local p i f d
  # Processes CMD left behind would keep the mounts busy and the cgroup non-empty.
  if [ -n "$CG" ]; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      p=$(cg_pids) || true
      [ -n "$p" ] || break
      # shellcheck disable=SC2086
      kill -KILL $p 2>/dev/null || true
      sleep 0.1
    done
  fi
  # Every mount under ROOT/mnt (also ones a half-finished setup made), innermost first.
  if [ -d "$ROOT/mnt" ]; then
    while read -r d; do
      umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null ||
        echo "$PROG: warning: could not unmount $d" >&2
    done < <(awk -v r="$ROOT/mnt/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r)
  fi
  # Every loop device over one of our backing files (also one losetup attached before we could
  # record its name).
  for ((i = 0; i < N; i++)); do
    f=$ROOT/backing/d$i.img
    [ -e "$f" ] || continue
    for d in $(losetup -j "$f" 2>/dev/null | cut -d: -f1); do
      losetup -d "$d" 2>/dev/null || echo "$PROG: warning: could not detach $d" >&2
    done
  done
  if [ -n "$CG" ] && [ -d "$CG" ]; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      rmdir "$CG" 2>/dev/null && break
      sleep 0.1
    done
    [ ! -d "$CG" ] || echo "$PROG: warning: could not remove cgroup $CG" >&2
  fi
  if [ "$KEEP" -eq 0 ]; then
    for ((i = 0; i < N; i++)); do
      rm -f "$ROOT/backing/d$i.img"
      rmdir "$ROOT/mnt/d$i" 2>/dev/null || true
    done
    rmdir "$ROOT/backing" "$ROOT/mnt" 2>/dev/null || true
    [ "$ROOT_MADE" -eq 0 ] || rmdir "$ROOT" 2>/dev/null || true
  else
    for ((i = 0; i < N; i++)); do rmdir "$ROOT/mnt/d$i" 2>/dev/null || true; done
    rmdir "$ROOT/mnt" 2>/dev/null || true
    echo "$PROG: backing files kept in $ROOT/backing" >&2
  fi
}

on_signal() {
  local sig=$1 p
  trap '' INT TERM
  if [ -n "$CMD_PID" ]; then
    kill -TERM "$CMD_PID" 2>/dev/null || true
    p=$(cg_pids) || true
    # shellcheck disable=SC2086
    [ -z "$p" ] || kill -TERM $p 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
      kill -0 "$CMD_PID" 2>/dev/null || break
      sleep 0.1
    done
  fi
  teardown
  [ "$sig" = INT ] && exit 130
  exit 143
}
trap teardown EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

# --- setup -------------------------------------------------------------------------------------
[ -d "$ROOT" ] || ROOT_MADE=1
mkdir -p "$ROOT/backing" "$ROOT/mnt" || fail "cannot create $ROOT"

CG=$CGROOT/strata-drives-$$
if [ "$CGV" = 2 ] && ! grep -qw io "$CGROOT/cgroup.subtree_control"; then
  echo +io > "$CGROOT/cgroup.subtree_control" 2>/dev/null || { CG=""; skip "cannot enable +io in $CGROOT/cgroup.subtree_control"; }
fi
mkdir "$CG" 2>/dev/null || { CG=""; skip "cannot create cgroup $CGROOT/strata-drives-$$"; }
if [ "$CGV" = 2 ] && [ ! -f "$CG/io.max" ]; then skip "no io.max in $CG (io throttling not in this kernel)"; fi

for ((i = 0; i < N; i++)); do
  f=$ROOT/backing/d$i.img mnt=$ROOT/mnt/d$i
  rm -f "$f"
  truncate -s "$SIZE" "$f" || fail "cannot create backing file $f"
  dev=$(losetup --direct-io=on --show -f "$f" 2>&1) || skip "losetup failed: $dev"
  DEVS+=("$dev")
  if [ "$(cat "/sys/block/${dev#/dev/}/loop/dio" 2>/dev/null)" != 1 ]; then
    echo "$PROG: warning: $dev is not in direct-io mode (backing filesystem without O_DIRECT?); reads pass through the host page cache" >&2
  fi
  out=$(mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 -L "strata-d$i" "$dev" 2>&1) ||
    fail "mkfs.ext4 on $dev failed: $out"
  mkdir -p "$mnt"
  out=$(mount -t ext4 -o noatime,noinit_itable "$dev" "$mnt" 2>&1) || skip "mount $dev failed: $out"
  MNTS+=("$mnt")
  majmin=$(cat "/sys/block/${dev#/dev/}/dev") || fail "no MAJ:MIN for $dev"
  if [ "${BPS[i]}" -gt 0 ]; then
    if [ "$CGV" = 1 ]; then
      echo "$majmin ${BPS[i]}" > "$CG/blkio.throttle.read_bps_device" ||
        fail "cannot write '$majmin ${BPS[i]}' to $CG/blkio.throttle.read_bps_device"
    else
      echo "$majmin rbps=${BPS[i]}" > "$CG/io.max" || fail "cannot write '$majmin rbps=${BPS[i]}' to $CG/io.max"
    fi
  fi
done

join() { local IFS=,; echo "$*"; }
export STRATA_DRIVES STRATA_DRIVE_DEVICES STRATA_DRIVE_BPS
STRATA_DRIVES=$(join "${MNTS[@]}")
STRATA_DRIVE_DEVICES=$(join "${DEVS[@]}")
STRATA_DRIVE_BPS=$(join "${BPS[@]}")

# CMD in the background (so INT/TERM reach the trap at once), with our stdin, moved into the
# cgroup before it execs.
bash -c 'echo $$ > "$1/cgroup.procs" || exit 1; shift; exec "$@"' _ "$CG" "$@" <&0 &
CMD_PID=$!
rc=0
wait "$CMD_PID" || rc=$?
CMD_PID=""
teardown
exit $rc
