#!/usr/bin/env bash
# Compute benchmark (not a test): prompt (64) and generation (32) tokens/s, 2 threads, median of
# 5, as llama-bench's JSON rows (build_commit, model_type, avg_ts, samples_ts, ...) plus our
# median_ts. Models: the small stories260K-w256-q4_0 and MoE q4_k_m from ../shared/models
# (per-token overhead), and a synthetic Mixtral-style Q4_0 model of ~11.1 GB (kernel speed; it
# must fit in RAM: it is read fully before timing).
# Usage: scripts/bench-compute.sh [OUT.json]   (SKIP_BIG=1 skips the 11 GB model)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
OUT=${1:-build/bench/compute.json}
mkdir -p "$(dirname "$OUT")"
SHARED=${STRATA_SHARED:-../shared}
THREADS=${THREADS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

models=()
for m in stories260K-w256-q4_0 stories260K-w256-moe8x2-q4_k_m; do
  if [ -f "$SHARED/models/$m.gguf" ]; then models+=("$SHARED/models/$m.gguf"); else echo "bench: $m not found in $SHARED/models, skipped" >&2; fi
done
if [ "${SKIP_BIG:-0}" != 1 ]; then
  BIG=${BIG_MODEL:-build/bench/mixtral-2048x24-e8-q4_0.gguf}
  if [ ! -f "$BIG" ]; then
    build/strata synth -o "$BIG" --arch mixtral --dim 2048 --layers 24 --heads 16 --kv-heads 8 \
      --experts 8 --used 2 --ffn 16384 --vocab 32000 --type q4_0 --seed 7
  fi
  models+=("$BIG")
fi

i=0
for m in "${models[@]}"; do
  echo "bench: $m" >&2
  build/strata bench -m "$m" -p 64 -n 32 -r 5 -t "$THREADS" -o json > "$tmp/$i.json"
  i=$((i + 1))
done
python3 - "$tmp" "$OUT" <<'PY'
import json, sys, glob, os
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json")), key=lambda p: int(os.path.basename(p)[:-5])):
    rows += json.load(open(f))
json.dump(rows, open(sys.argv[2], "w"), indent=1)
for r in rows:
    kind = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
    print(f"{os.path.basename(r['model_filename']):40s} {r['model_type']:24s} {kind:6s} median {r['median_ts']:10.2f} tok/s  avg {r['avg_ts']:10.2f} ± {r['stddev_ts']:.2f}")
PY
echo "bench: wrote $OUT" >&2
