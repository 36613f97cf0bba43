#!/usr/bin/env bash
# Batch throughput benchmark (not a test): `strata batch` on REQUESTS greedy completions of
# TOKENS generated tokens (ignore_eos), streamed under a memory budget, at --max-batch 1, 4, 16,
# 64, on the 11.1 GB reference MoE (8 experts, top-2) and on a 64-expert top-4 model with skewed
# routing (`strata synth --routing zipf`). Per point: aggregate generated tok/s, bytes read per
# generated token, and the batch roofline as scripts/bench-serve.sh computes it: per step,
# max(bytes read / the drive's measured O_DIRECT speed, compute = CPU time / threads), against
# the step's measured time (ratio_to_roofline: 1 = at the roofline) and the tok/s it allows.
# read_over_needed compares the bytes read with the bytes of the distinct units each step needed
# that were not in memory (1: every needed unit read at most once per step). The checks at the
# end say, per model, whether tok/s rose with the batch until the roofline said it could not.
#
# Usage: scripts/bench-batch.sh [OUT_DIR]       (writes OUT_DIR/batch.json; default build/bench/batch)
#   MODELS="8 64"  BATCHES="1 4 16 64"  REQUESTS=64  TOKENS=32  BUDGET=4G  THREADS=2  WORDS=8
#   STRATA_BUILD_DIR=build (where strata is)   QUICK=1: a small 64-expert model and a short run,
#   to check the script end to end in a minute (MODELS=quick BUDGET=16M REQUESTS=16 TOKENS=8
#   BATCHES="1 4 16").
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${STRATA_BUILD_DIR:-build}
STRATA=$BUILD/strata
[ -x "$STRATA" ] || { echo "bench-batch: $STRATA not built (scripts/setup.sh, or set STRATA_BUILD_DIR)" >&2; exit 1; }
OUT=${1:-$BUILD/bench/batch}
mkdir -p "$OUT"
if [ "${QUICK:-0}" = 1 ]; then
  MODELS=${MODELS:-quick}; BUDGET=${BUDGET:-16M}; REQUESTS=${REQUESTS:-16}; TOKENS=${TOKENS:-8}; BATCHES=${BATCHES:-"1 4 16"}
fi
MODELS=${MODELS:-"8 64"}
BATCHES=${BATCHES:-"1 4 16 64"}
REQUESTS=${REQUESTS:-64}
TOKENS=${TOKENS:-32}
BUDGET=${BUDGET:-4G}
THREADS=${THREADS:-2}
WORDS=${WORDS:-8}

model_path() {
  case $1 in
    8) echo build/bench/mixtral-2048x24-e8-q4_0.gguf ;;       # the one bench-stream.sh makes
    64) echo build/bench/moe-2048x24-e64x4-zipf-q4_0.gguf ;;
    quick) echo "$OUT/moe-256x4-e64x4-zipf-q4_0.gguf" ;;
    *) echo "bench-batch: unknown model '$1' (8, 64 or quick)" >&2; exit 1 ;;
  esac
}
synth_model() {
  local path; path=$(model_path "$1")
  [ -f "$path" ] && return
  mkdir -p "$(dirname "$path")"
  case $1 in
    8) "$STRATA" synth -o "$path" --arch mixtral --dim 2048 --layers 24 --heads 16 --kv-heads 8 \
         --experts 8 --used 2 --ffn 16384 --vocab 32000 --type q4_0 --seed 7 ;;
    64) "$STRATA" synth -o "$path" --arch mixtral --dim 2048 --layers 24 --heads 16 --kv-heads 8 \
          --experts 64 --used 4 --ffn 2048 --vocab 32000 --type q4_0 --seed 7 --routing zipf ;;
    quick) "$STRATA" synth -o "$path" --arch mixtral --dim 256 --layers 4 --heads 4 --kv-heads 2 \
             --experts 64 --used 4 --ffn 256 --vocab 1000 --ctx 512 --type q4_0 --seed 7 --routing zipf ;;
  esac
}
drop_cache() { sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
# GB/s of O_DIRECT reads of the expert-unit size over up to 2 GiB from the middle of the file
# (bench-serve.sh's measure; half the file when it is smaller).
read_speed() {
  local path=$1 bs=$2 size span count
  size=$(stat -c %s "$path")
  span=$(( size / 2 < (2 << 30) ? size / 2 : (2 << 30) ))
  count=$(( span / bs > 0 ? span / bs : 1 ))
  drop_cache
  dd if="$path" of=/dev/null iflag=direct bs="$bs" skip=$(( size / 4 / bs )) count="$count" 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; ++i) if ($i == "s,") print $1 / $(i-1) / 1e9 }'
}
# REQUESTS completions, different prompts (and so routing) each, fixed across runs.
make_input() {
  node -e '
    const [n, tokens, words] = process.argv.slice(1).map(Number);
    const vocab = ["river","stone","light","market","winter","engine","garden","copper","signal","harbor",
                   "paper","orbit","forest","glass","thunder","velvet"];
    for (let r = 0; r < n; ++r) {
      let x = (r * 104729 + 17) >>> 0; const w = [];
      for (let i = 0; i < words; ++i) { x = (x * 1103515245 + 12345) >>> 0; w.push(vocab[x % vocab.length]); }
      console.log(JSON.stringify({custom_id: `req-${r}`, method: "POST", url: "/v1/completions",
        body: {prompt: w.join(" "), max_tokens: tokens, temperature: 0, ignore_eos: true}}));
    }' "$REQUESTS" "$TOKENS" "$WORDS" > "$1"
}

input="$OUT/input.jsonl"
make_input "$input"
rows=()
for e in $MODELS; do
  synth_model "$e"
  path=$(model_path "$e")
  # One expert's gate+up+down in Q4_0 (the unit the router picks), as bench-serve.sh reads.
  unit=$("$STRATA" info "$path" --json | node -e '
    const j = JSON.parse(require("fs").readFileSync(0));
    console.log(Math.round(3 * j.n_embd * (j.n_expert_ff ?? j.n_ff) * 18 / 32));')
  bs=$(( (unit + 4095) / 4096 * 4096 ))
  for b in $BATCHES; do
    gbps=$(read_speed "$path" "$bs")
    drop_cache
    out="$OUT/out-$e-b$b.jsonl"
    rm -f "$out"
    echo "bench-batch: model $e, --max-batch $b, read speed $gbps GB/s" >&2
    res=$(STRATA_PROGRESS=0 "$STRATA" batch -m "$path" -i "$input" -o "$out" --memory-budget "$BUDGET" \
            --max-batch "$b" -c 256 -t "$THREADS" --alias bench --json 2>"$OUT/batch-$e-b$b.log")
    rows+=("$(READ_GBPS=$gbps THREADS=$THREADS node -e '
      const s = JSON.parse(process.argv[1]);
      const gbps = Number(process.env.READ_GBPS), threads = Number(process.env.THREADS);
      const steps = s.steps || 0;
      const perStep = {
        steps, bytes_read: steps ? s.bytes_read / steps : 0,
        needed_new_bytes: steps ? s.step_new_bytes / steps : 0,
        tokens: steps ? s.batch_tokens / steps : 0,
        generated_tokens: steps ? s.generated_tokens / steps : 0,
        seconds: steps ? s.step_seconds / steps : 0,
        compute_s: steps ? s.step_cpu_seconds / threads / steps : 0,  // CPU time spread over the threads
      };
      const roofline = Math.max(gbps > 0 ? perStep.bytes_read / (gbps * 1e9) : 0, perStep.compute_s);
      console.log(JSON.stringify({
        model: process.argv[2], experts: process.argv[3], max_batch: s.max_batch, budget: process.argv[4],
        threads, requests: s.requests, ok: s.ok, failed: s.failed,
        generated_tokens: s.generated_tokens, wall_s: s.seconds, aggregate_tok_s: s.generated_tok_s,
        bytes_read_per_generated_token: s.bytes_read_per_generated_token,
        hit_rate_dense: s.hit_rate_dense, hit_rate_expert: s.hit_rate_expert,
        read_gbps_measured: gbps, achieved_read_gbps: s.step_seconds > 0 ? s.bytes_read / s.step_seconds / 1e9 : 0,
        per_step: perStep,
        read_over_needed: s.step_new_bytes > 0 ? s.bytes_read / s.step_new_bytes : null,
        roofline_step_s: roofline,
        roofline_bound: gbps > 0 && perStep.bytes_read / (gbps * 1e9) >= perStep.compute_s ? "read" : "compute",
        ratio_to_roofline: perStep.seconds > 0 ? roofline / perStep.seconds : null,
        roofline_tok_s: roofline > 0 ? perStep.generated_tokens / roofline : null,
        ratio_to_roofline_wall: steps && s.seconds > 0 ? roofline * steps / s.seconds : null,
      }));' "$res" "$path" "$e" "$BUDGET")")
    echo "${rows[-1]}" >&2
  done
done
# Per model, in batch order: tok/s should rise with the batch unless the roofline of the larger
# batch allows no more than the smaller one achieved (within 5%).
printf '%s\n' "${rows[@]}" | node -e '
  const rows = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
  const checks = [];
  for (const e of [...new Set(rows.map(r => r.experts))]) {
    const rs = rows.filter(r => r.experts === e).sort((a, b) => a.max_batch - b.max_batch);
    for (let i = 1; i < rs.length; ++i) {
      const [a, b] = [rs[i - 1], rs[i]];
      const rose = b.aggregate_tok_s > a.aggregate_tok_s;
      const capped = b.roofline_tok_s !== null && b.roofline_tok_s <= a.aggregate_tok_s * 1.05;
      checks.push({experts: e, from_batch: a.max_batch, to_batch: b.max_batch, tok_s: [a.aggregate_tok_s, b.aggregate_tok_s],
                   rose, roofline_says_cannot: capped, ok: rose || capped});
    }
  }
  const bad = checks.filter(c => !c.ok);
  for (const c of bad) console.error(`bench-batch: tok/s did not rise from --max-batch ${c.from_batch} to ${c.to_batch} (model ${c.experts}) though the roofline allows it`);
  console.log(JSON.stringify({rows, checks, ok: bad.length === 0}, null, 1));' > "$OUT/batch.json"
echo "bench-batch: wrote $OUT/batch.json" >&2
