#!/usr/bin/env bash
# `strata iobench` against one emulated drive (scripts/emulate-drives.sh: a loop device limited to
# 200e6 read bytes/s): random 1 MiB reads at queue depth 16 must measure within 10% of the limit,
# in the fio-shaped JSON (jobs[0].read.bw_bytes) and in the saved drive profile (read_gbps).
# Exits 77 (skipped) where the machine cannot emulate drives.
#   tests/tools/test_iobench_emulated.sh [STRATA_BINARY]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
STRATA=${1:-$here/../../build/strata}
ED=$here/../../scripts/emulate-drives.sh
LIMIT=200000000
[ -x "$STRATA" ] || { echo "skipped: $STRATA is not built"; exit 77; }
[ -x "$ED" ] || [ -f "$ED" ] || { echo "skipped: $ED is missing"; exit 77; }
TMP=$(mktemp -d /var/tmp/strata-test-iobench-emulated.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The drive list is only known inside the emulation: CMD expands $STRATA_DRIVES (commas -> args).
bash "$ED" --size 1G --bps 200M 1 -- bash -c '
  exec "$1" iobench ${STRATA_DRIVES//,/ } --size 512M --bs 1M --qd 16 --rw randread --runtime 3 --json \
    --save-profile "$2/profile.json" > "$2/out.json" 2> "$2/err.txt"' _ "$STRATA" "$TMP"
rc=$?
if [ "$rc" -eq 77 ]; then echo "skipped: this machine cannot emulate drives"; exit 77; fi
if [ "$rc" -ne 0 ]; then
  echo "FAIL strata iobench exited $rc"
  cat "$TMP/err.txt"
  exit 1
fi
python3 - "$TMP/out.json" "$TMP/profile.json" "$LIMIT" <<'PY'
import json, sys
out, prof, limit = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
jobs = out["jobs"]
assert len(jobs) == 1, f"expected one job, got {len(jobs)}"
bw = jobs[0]["read"]["bw_bytes"]
gbps = prof["drives"][0]["read_gbps"] * 1e9
print(f"{jobs[0]['jobname']}: {bw / 1e6:.1f} MB/s against a {limit / 1e6:.0f} MB/s limit "
      f"({100 * (bw / limit - 1):+.1f}%); profile read_gbps {gbps / 1e9:.3f}")
ok = True
for what, v in (("bw_bytes", bw), ("profile read_gbps", gbps)):
    if abs(v / limit - 1) > 0.10:
        print(f"FAIL {what} {v / 1e6:.1f} MB/s is not within 10% of {limit / 1e6:.0f} MB/s")
        ok = False
sys.exit(0 if ok else 1)
PY
