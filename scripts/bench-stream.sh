#!/usr/bin/env bash
# Streaming benchmark (not a test): decode tokens/s of the reference synthetic Mixtral-style Q4_0
# model (dim 2048, 24 layers, 8 experts, 2 used, expert ffn 16384: ~11.1 GB, 2.93 GB touched per
# token) against the memory budget, for each read backend, with the disk's raw sequential speed
# measured in the same run. Each `strata bench` prints llama-bench's array of rows (one tg row
# here, carrying the streaming figures); this gathers them into stream.json and a PNG plot (gnuplot).
#
# uring and pread run with --memory-budget B. mmap is the page-cache baseline: it runs inside a
# memory cgroup (v1 or v2, where this machine lets root make one) limited to B, with half of B
# as its pinned pool, so the page cache it leans on gets the other half; without a cgroup it
# runs unconfined and the JSON says so ("cgroup": false).
#
# Usage: scripts/bench-stream.sh [OUT_DIR]
#   BUDGETS="0.5 1 2 4 8" (GiB)  BACKENDS="uring pread mmap"  N=32 (tokens)  THREADS=2  REPS=1
#   RESIDENT=1 also runs the all-resident point (needs RAM for the whole model).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
OUT=${1:-build/bench/stream}
mkdir -p "$OUT"
BUDGETS=${BUDGETS:-"0.5 1 2 4 8"}
BACKENDS=${BACKENDS:-"uring pread mmap"}
N=${N:-32}
THREADS=${THREADS:-2}
# One timed run per point: at the small budgets a run of 32 tokens takes tens of seconds.
REPS=${REPS:-1}
RESIDENT=${RESIDENT:-1}
MODEL=${MODEL:-build/bench/mixtral-2048x24-e8-q4_0.gguf}
if [ ! -f "$MODEL" ]; then
  build/strata synth -o "$MODEL" --arch mixtral --dim 2048 --layers 24 --heads 16 --kv-heads 8 \
    --experts 8 --used 2 --ffn 16384 --vocab 32000 --type q4_0 --seed 7
fi

drop_cache() { sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# run_in_cgroup LIMIT CMD...: CMD in a memory cgroup of LIMIT bytes (unconfined where none).
source scripts/lib/cgroup.sh

# The all-resident run first: its time per token is the CPU's limit, the compute side of the
# roofline every streamed run is compared with (ratio_to_roofline).
COMPUTE=()
if [ "$RESIDENT" = 1 ]; then
  echo "bench-stream: all resident" >&2
  build/strata bench -m "$MODEL" -p 0 -n "$N" -r "$REPS" -t "$THREADS" -o json > "$OUT/resident.json"
  cs=$(python3 -c "import json;r=[x for x in json.load(open('$OUT/resident.json')) if x['n_gen']>0][0];print(1.0/r['avg_ts'])")
  COMPUTE=(--compute-s-per-token "$cs")
fi

rows=()
for io in $BACKENDS; do
  for gib in $BUDGETS; do
    bytes=$(python3 -c "print(int($gib * (1<<30)))")
    drop_cache
    echo "bench-stream: $io at $gib GiB" >&2
    f="$OUT/$io-$gib.json"
    if [ "$io" = mmap ]; then
      half=$((bytes / 2))
      if run_in_cgroup "$bytes" build/strata bench -m "$MODEL" --memory-budget "$half" --io mmap -n "$N" -r "$REPS" -t "$THREADS" "${COMPUTE[@]}" -o json > "$f"; then
        python3 - "$f" "$bytes" "$CGROUP_CONFINED" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
for r in rows:
    r["memory_budget"] = int(sys.argv[2]); r["cgroup"] = sys.argv[3] == "1"
json.dump(rows, open(sys.argv[1], "w"), indent=1)
PY
      else
        echo "[{\"io\": \"mmap\", \"memory_budget\": $bytes, \"failed\": true}]" > "$f"
      fi
    else
      build/strata bench -m "$MODEL" --memory-budget "$bytes" --io "$io" -n "$N" -r "$REPS" -t "$THREADS" "${COMPUTE[@]}" -o json > "$f" ||
        echo "[{\"io\": \"$io\", \"memory_budget\": $bytes, \"failed\": true}]" > "$f"
    fi
    rows+=("$f")
  done
done

python3 - "$OUT" "${rows[@]}" <<'PY'
import json, sys, os
out = sys.argv[1]
# Each file holds an array of rows (llama-bench's form); a streamed run's tg rows carry io,
# memory_budget and the streaming figures.
rows = [r for f in sys.argv[2:] for r in json.load(open(f))]
res = os.path.join(out, "resident.json")
resident = next(r["avg_ts"] for r in json.load(open(res)) if r["n_gen"] > 0) if os.path.exists(res) else None
json.dump({"runs": rows, "resident_tokens_per_s": resident}, open(os.path.join(out, "stream.json"), "w"), indent=1)
with open(os.path.join(out, "stream.dat"), "w") as d:
    for io in sorted({r["io"] for r in rows}):
        d.write(f"# {io}\n")
        for r in rows:
            if r["io"] == io and not r.get("failed"):
                d.write(f"{r['memory_budget'] / 2**30} {r['tokens_per_s']}\n")
        d.write("\n\n")
    # The roofline: 1 / max(bytes read per token / the run's pattern speed, resident compute).
    d.write("# roofline\n")
    for r in rows:
        if not r.get("failed") and r.get("roofline_s_per_token"):
            d.write(f"{r['memory_budget'] / 2**30} {1.0 / r['roofline_s_per_token']}\n")
    d.write("\n\n")
for r in rows:
    if r.get("failed"):
        print(f"{r['io']:6s} {r['memory_budget']/2**30:5.1f} GiB  failed")
    else:
        print(f"{r['io']:6s} {r['memory_budget']/2**30:5.1f} GiB  {r['tokens_per_s']:7.3f} tok/s  "
              f"read {r['bytes_read_per_token']/1e9:.2f} GB/tok at {r['read_gbps']:.2f} GB/s  raw {r['raw_gbps']:.2f}  "
              f"unit pattern {r.get('raw_unit_gbps', 0):.2f}  ratio_to_floor {r['ratio_to_floor']:.2f}  "
              f"ratio_to_roofline {(r.get('ratio_to_roofline') or 0):.2f}  disk_busy {r['disk_busy']:.2f}  "
              f"hits d/e {r['hit_rate_dense']:.2f}/{r['hit_rate_expert']:.2f}  prefetch {r['prefetch_accuracy']:.2f}")
if resident:
    print(f"resident        {resident:7.3f} tok/s")
PY

if ! command -v gnuplot >/dev/null; then
  apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 || echo "bench-stream: gnuplot not available, no plot" >&2
fi
if command -v gnuplot >/dev/null; then
  n_sets=$(grep -c '^# ' "$OUT/stream.dat" || true)
  resident=$(python3 -c "import json;r=json.load(open('$OUT/stream.json'))['resident_tokens_per_s'];print(r if r else '')")
  {
    echo "set terminal png size 900,600 noenhanced; set output '$OUT/stream.png'"
    echo "set title 'strata decode tokens/s vs memory budget (11.1 GB Mixtral-style Q4_0, 2 threads)'"
    echo "set xlabel 'memory budget (GiB)'; set ylabel 'tokens/s'; set logscale x 2; set key top left; set grid"
    plot="plot"
    i=0
    for io in $(grep '^# ' "$OUT/stream.dat" | cut -c3-); do
      if [ "$io" = roofline ]; then
        plot="$plot '$OUT/stream.dat' index $i with linespoints dashtype 3 title 'roofline (slower of disk and CPU)',"
      else
        plot="$plot '$OUT/stream.dat' index $i with linespoints title '$io',"
      fi
      i=$((i + 1))
    done
    [ -n "$resident" ] && plot="$plot $resident with lines dashtype 2 title 'all resident',"
    echo "${plot%,}"
  } | gnuplot
  echo "bench-stream: wrote $OUT/stream.json and $OUT/stream.png" >&2
fi
