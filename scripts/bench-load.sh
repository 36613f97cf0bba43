#!/usr/bin/env bash
# Load benchmark (not a test): how fast a model loads into RAM without --memory-budget, against
# the raw O_DIRECT sequential read speed of the same file measured in the same process,
# alternating the two REPS times (this disk's speed drifts between runs). The goal: a median
# load/raw ratio of at least 0.5. Writes OUT_DIR/load.json (strata bench --load --json).
#
# The default model is a synthetic Mixtral-style Q4_0 model of ~2 GiB, made on first use.
#
# Usage: scripts/bench-load.sh [MODEL.gguf] [OUT_DIR]
#   MODEL=...  (same as the first argument)  REPS=3  THREADS= (default: all cores)
#   STRATA_BUILD_DIR=build (as for scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh strata >/dev/null
B=${STRATA_BUILD_DIR:-build}
DEFAULT_MODEL=$B/bench/load-2g-q4_0.gguf
MODEL=${1:-${MODEL:-$DEFAULT_MODEL}}
OUT=${2:-$B/bench/load}
REPS=${REPS:-3}
THREADS=${THREADS:-}
mkdir -p "$OUT"
if [ ! -f "$MODEL" ]; then
  if [ "$MODEL" != "$DEFAULT_MODEL" ]; then
    echo "bench-load: $MODEL not found" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$MODEL")"
  "$B/strata" synth -o "$MODEL" --arch mixtral --type q4_0 --size 2G
fi

args=(bench -m "$MODEL" --load -r "$REPS" --json)
[ -n "$THREADS" ] && args+=(-t "$THREADS")
echo "bench-load: $MODEL, $REPS reps" >&2
"$B/strata" "${args[@]}" > "$OUT/load.json"

python3 - "$OUT/load.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
gib = 1e9 / 2**30
for i, (raw, load, s) in enumerate(zip(j["raw_gbps"], j["load_gbps"], j["load_s"]), 1):
    print(f"rep {i}: raw {raw * gib:5.2f} GiB/s  load {load * gib:5.2f} GiB/s ({s:.2f} s)  ratio {load / raw if raw else 0:.2f}")
r = j["ratio_median"]
print(f"{j['model']}: {j['bytes'] / 2**30:.2f} GiB; median raw {j['median_raw_gbps'] * gib:.2f} GiB/s, "
      f"median load {j['median_load_gbps'] * gib:.2f} GiB/s, median ratio {r:.2f}: "
      f"{'meets' if r >= 0.5 else 'does NOT meet'} the 0.5 goal")
PY
echo "bench-load: wrote $OUT/load.json" >&2
