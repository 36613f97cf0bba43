#!/usr/bin/env bash
# Storage-topology benchmark (not a test): decode tokens/s of a synthesized MoE streamed at small
# memory budgets from 1, 2 and 4 emulated drives (scripts/emulate-drives.sh: loop devices, ext4,
# a blkio read limit per drive), each configuration placed with `strata place` (1 MiB stripes),
# and `strata plan`'s prediction for the same drives and budget next to each measurement.
# Writes topology.json (every row, the 4-vs-1 scaling per budget, the prediction errors) and
# topology.png (gnuplot: measured and predicted tokens/s against the number of drives).
#
# Usage: scripts/bench-topology.sh [OUT_DIR]          (root; exits 77 where drives cannot be emulated)
#   CONFIGS="300M 300M,300M 300M,300M,300M,300M 300M,150M 300M,300M,150M,150M"
#            one emulated array per entry: the per-drive read limits (decimal bytes/s)
#   BUDGETS="256M 384M 512M"  N=12 (tokens)  THREADS=2  STRIPE=1M
#   MODEL=build/bench/topo-moe-1024x16-e8.gguf (synthesized when missing: ~1.0 GB Q4_0 Mixtral-style,
#   8 experts, 2 used, so a small budget reads ~0.25 GB per token)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/bench/topology}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CONFIGS=${CONFIGS:-"300M 300M,300M 300M,300M,300M,300M 300M,150M 300M,300M,150M,150M"}
BUDGETS=${BUDGETS:-"256M 384M 512M"}
N=${N:-12}
THREADS=${THREADS:-2}
STRIPE=${STRIPE:-1M}
STRATA=${STRATA:-$PWD/build/strata}
MODEL=${MODEL:-build/bench/topo-moe-1024x16-e8.gguf}
if [ ! -f "$MODEL" ]; then
  mkdir -p "$(dirname "$MODEL")"
  "$STRATA" synth -o "$MODEL" --arch mixtral --dim 1024 --layers 16 --heads 16 --kv-heads 8 \
    --experts 8 --used 2 --ffn 4096 --vocab 32000 --type q4_0 --routing uniform --seed 11 >&2
fi
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
model_bytes=$(stat -c %s "$MODEL")

# Compute time per token, measured once with the model all in RAM, and the routing trace of the
# same decode: what `strata plan` is told (its routing statistics: expert reuse between tokens),
# so its prediction is about the drives and the cache (the plan also measures compute itself).
echo "bench-topology: all resident (compute time per token)" >&2
"$STRATA" bench -m "$MODEL" -p 0 -n "$N" -r 1 -t "$THREADS" --trace-routing "$OUT/routing.jsonl" -o json > "$OUT/resident.json"
cs=$(python3 -c "import json;r=[x for x in json.load(open('$OUT/resident.json')) if x['n_gen']>0][0];print(1.0/r['avg_ts'])")

have_plan=0
"$STRATA" plan --help >/dev/null 2>&1 && have_plan=1

ci=0
for cfg in $CONFIGS; do
  n=$(awk -F, '{print NF}' <<<"$cfg")
  # Each drive holds its share of the stripes plus room for ext4.
  size_mb=$(( model_bytes / n / 1048576 + 384 ))
  tag="c$ci"
  ci=$((ci + 1))
  echo "bench-topology: $n drive(s) at $cfg B/s" >&2
  rc=0
  scripts/emulate-drives.sh --size "${size_mb}M" --bps "$cfg" "$n" -- bash -c '
    set -euo pipefail
    strata=$1 model=$2 out=$3 tag=$4 n=$5 threads=$6 stripe=$7 budgets=$8 cs=$9 have_plan=${10} cfg=${11}
    "$strata" place -m "$model" --to "$STRATA_DRIVES" --stripe "$stripe" -o "${STRATA_DRIVES%%,*}/model.strata.json" >&2
    manifest="${STRATA_DRIVES%%,*}/model.strata.json"
    gbps=$(python3 -c "import sys;print(\",\".join(str(int(x)/1e9) for x in sys.argv[1].split(\",\")))" "$STRATA_DRIVE_BPS")
    for b in $budgets; do
      sync; echo 3 > /proc/sys/vm/drop_caches
      "$strata" bench -m "$manifest" --memory-budget "$b" -p 0 -n "$n" -r 1 -t "$threads" \
        --compute-s-per-token "$cs" -o json > "$out/$tag-$b.json"
      if [ "$have_plan" = 1 ]; then
        "$strata" plan -m "$manifest" --memory-budget "$b" --drives "$gbps" --compute-s-per-token "$cs" \
          --trace "$out/routing.jsonl" --tokens "$n" --json > "$out/$tag-$b.plan.json" 2> "$out/$tag-$b.plan.err" || echo "plan failed: $(cat "$out/$tag-$b.plan.err")" >&2
      fi
    done
    echo "$cfg" > "$out/$tag.cfg"
  ' _ "$STRATA" "$MODEL" "$OUT" "$tag" "$N" "$THREADS" "$STRIPE" "$BUDGETS" "$cs" "$have_plan" "$cfg" || rc=$?
  if [ "$rc" = 77 ]; then exit 77; fi
  [ "$rc" = 0 ] || echo "bench-topology: configuration $cfg failed (exit $rc)" >&2
done

python3 - "$OUT" "$cs" "$BUDGETS" <<'PY'
import glob, json, os, sys
out, cs, budgets = sys.argv[1], float(sys.argv[2]), sys.argv[3].split()
rows = []
for cfgfile in sorted(glob.glob(os.path.join(out, "c*.cfg"))):
    tag = os.path.basename(cfgfile)[:-4]
    bps = [int(float(x.rstrip("M")) * 1e6) if x.endswith("M") else int(x) for x in open(cfgfile).read().strip().split(",")]
    for b in budgets:
        f = os.path.join(out, f"{tag}-{b}.json")
        if not os.path.exists(f):
            continue
        tg = [r for r in json.load(open(f)) if r.get("n_gen", 0) > 0][0]
        row = {"drives": len(bps), "drive_bps": bps, "equal": len(set(bps)) == 1, "budget": b,
               "tokens_per_s": tg["avg_ts"], "read_bytes_per_token": tg.get("bytes_read_per_token"),
               "disk_busy": tg.get("disk_busy"), "per_drive": tg.get("drives", [])}
        pf = os.path.join(out, f"{tag}-{b}.plan.json")
        if os.path.exists(pf) and os.path.getsize(pf) > 0:
            plan = json.load(open(pf))
            pr = plan["rows"][0] if "rows" in plan else plan
            row["predicted_tokens_per_s"] = pr["tokens_per_s"]
            row["predicted_bound"] = pr.get("bound")
            row["predicted_read_bytes_per_token"] = pr.get("read_bytes_per_token")
            row["prediction_error"] = pr["tokens_per_s"] / tg["avg_ts"] - 1
        rows.append(row)
scaling = {}
for b in budgets:
    one = [r for r in rows if r["budget"] == b and r["drives"] == 1]
    four = [r for r in rows if r["budget"] == b and r["drives"] == 4 and r["equal"]]
    if one and four:
        scaling[b] = {"tokens_per_s_1": one[0]["tokens_per_s"], "tokens_per_s_4": four[0]["tokens_per_s"],
                      "ratio_4_vs_1": four[0]["tokens_per_s"] / one[0]["tokens_per_s"]}
errs = [abs(r["prediction_error"]) for r in rows if "prediction_error" in r]
res = {"compute_s_per_token": cs, "rows": rows, "scaling": scaling,
       "prediction": {"rows": len(errs), "max_abs_error": max(errs) if errs else None,
                      "within_15pct": sum(e <= 0.15 for e in errs)}}
json.dump(res, open(os.path.join(out, "topology.json"), "w"), indent=1)
print(f"{'drives':>6} {'MB/s each':>18} {'budget':>7} {'tok/s':>7} {'plan':>7} {'err':>6} {'read/token':>11} busy")
for r in rows:
    p = r.get("predicted_tokens_per_s")
    mbs = ",".join(str(x // 1000000) for x in r["drive_bps"])
    plan = "%7.2f" % p if p else "      -"
    err = "%+5.0f%%" % (100 * r["prediction_error"]) if p else "     -"
    print(f"{r['drives']:>6} {mbs:>18} {r['budget']:>7} {r['tokens_per_s']:7.2f} {plan} {err} "
          f"{(r['read_bytes_per_token'] or 0)/1e6:8.0f} MB {100*(r['disk_busy'] or 0):3.0f}%")
for b, s in scaling.items():
    print(f"budget {b}: 4 drives vs 1: {s['ratio_4_vs_1']:.2f}x ({s['tokens_per_s_4']:.2f} vs {s['tokens_per_s_1']:.2f} tok/s)")
if errs:
    print(f"plan vs bench: {res['prediction']['within_15pct']}/{len(errs)} within 15%, worst {100*max(errs):.0f}%")
# gnuplot data: one block per budget, equal drives only (measured, predicted).
with open(os.path.join(out, "topology.dat"), "w") as f:
    for b in budgets:
        f.write(f'"{b}"\n')
        for r in sorted([r for r in rows if r["budget"] == b and r["equal"]], key=lambda r: r["drives"]):
            f.write(f"{r['drives']} {r['tokens_per_s']} {r.get('predicted_tokens_per_s', 'NaN')}\n")
        f.write("\n\n")
PY

if command -v gnuplot >/dev/null; then
  {
    echo "set terminal png size 900,600 noenhanced; set output '$OUT/topology.png'"
    echo "set title 'strata decode over emulated drives (equal speeds)'; set xlabel 'drives'; set ylabel 'tokens/s'"
    echo "set key left top; set grid; set xtics (1,2,4)"
    i=0; plots=()
    for b in $BUDGETS; do
      plots+=("'$OUT/topology.dat' index $i using 1:2 with linespoints lw 2 pt 7 title 'measured $b'")
      plots+=("'$OUT/topology.dat' index $i using 1:3 with linespoints lw 1 pt 6 ps 2 title 'plan $b'")
      i=$((i + 1))
    done
    (IFS=,; echo "plot ${plots[*]}")
  } | gnuplot && echo "bench-topology: $OUT/topology.png" >&2
else
  echo "bench-topology: gnuplot not available, no plot" >&2
fi
echo "bench-topology: $OUT/topology.json" >&2
