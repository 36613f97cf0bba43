#!/usr/bin/env bash
# Serving benchmark (not a test), shaped like vLLM's serving benchmark: `strata serve` on a
# synthesized MoE streamed under a memory budget, loaded by 1, 2, 4, 8, 16 concurrent clients
# (scripts/lib/serve-load.mjs: streamed /v1/completions, greedy, ignore_eos), reporting aggregate
# generated tok/s, TTFT and inter-token latency p50/p99, bytes read per generated token, and the
# sharing figures from /metrics: per step, the bytes read against the bytes of the distinct
# units the step needed that were not yet in memory, and the batch roofline
# max(bytes read per step / measured read speed, compute per step) against the step's time.
# The read speed is the drive's O_DIRECT speed over the model file in unit-sized reads, taken
# right before each point with the page cache dropped.
#
# Usage: scripts/bench-serve.sh [OUT_DIR]
#   MODELS="8 64" (8: the 11.1 GB 8-expert top-2 reference; 64: a 64-expert top-4 one)
#   CLIENTS="1 2 4 8 16"  BUDGET=4G  TOKENS=16 (per request)  REQS=2 (per client)  THREADS=2
#   WORDS=8 (prompt length in words)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
OUT=${1:-build/bench/serve}
mkdir -p "$OUT"
MODELS=${MODELS:-"8 64"}
CLIENTS=${CLIENTS:-"1 2 4 8 16"}
BUDGET=${BUDGET:-4G}
TOKENS=${TOKENS:-16}
REQS=${REQS:-2}
THREADS=${THREADS:-2}
WORDS=${WORDS:-8}

model_path() {
  case $1 in
    8) echo build/bench/mixtral-2048x24-e8-q4_0.gguf ;;
    64) echo build/bench/moe-2048x24-e64x4-q4_0.gguf ;;
  esac
}
synth_model() {
  local path; path=$(model_path "$1")
  [ -f "$path" ] && return
  case $1 in
    8) build/strata synth -o "$path" --arch mixtral --dim 2048 --layers 24 --heads 16 --kv-heads 8 \
         --experts 8 --used 2 --ffn 16384 --vocab 32000 --type q4_0 --seed 7 ;;
    64) build/strata synth -o "$path" --arch mixtral --dim 2048 --layers 24 --heads 16 --kv-heads 8 \
          --experts 64 --used 4 --ffn 2048 --vocab 32000 --type q4_0 --seed 7 ;;
  esac
}
drop_cache() { sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
# GB/s of O_DIRECT reads of the expert-unit size over 2 GiB from the middle of the file.
read_speed() {
  local path=$1 bs=$2 count
  count=$(( (2 << 30) / bs ))
  drop_cache
  dd if="$path" of=/dev/null iflag=direct bs="$bs" skip=$(( (1 << 30) / bs )) count="$count" 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; ++i) if ($i == "s,") print $1 / $(i-1) / 1e9 }'
}

rows=()
for e in $MODELS; do
  synth_model "$e"
  path=$(model_path "$e")
  # One expert's gate+up+down in Q4_0 (the unit the router picks).
  unit=$(build/strata info "$path" --json | node -e '
    const j = JSON.parse(require("fs").readFileSync(0));
    console.log(Math.round(3 * j.n_embd * (j.n_expert_ff ?? j.n_ff) * 18 / 32));')
  bs=$(( (unit + 4095) / 4096 * 4096 ))
  for c in $CLIENTS; do
    gbps=$(read_speed "$path" "$bs")
    drop_cache
    log="$OUT/serve-e$e-c$c.log"
    coproc SERVE { exec build/strata serve -m "$path" --memory-budget "$BUDGET" --port 0 --max-batch 16 \
                     --ctx 256 -t "$THREADS" --alias bench 2>"$log"; }
    trap 'kill -TERM "$SERVE_PID" 2>/dev/null || true' EXIT
    url=""
    while read -r line <&"${SERVE[0]}"; do
      case $line in "listening on "*) url=${line#listening on }; break ;; esac
    done
    [ -n "$url" ] || { echo "bench-serve: the server did not start (see $log)" >&2; exit 1; }
    until node -e "fetch('$url/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; do sleep 0.5; done
    echo "bench-serve: $e experts, $c clients, read speed $gbps GB/s" >&2
    res=$(READ_GBPS=$gbps THREADS=$THREADS node scripts/lib/serve-load.mjs "$url" "$c" "$REQS" "$TOKENS" "$WORDS")
    kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true
    trap - EXIT
    rows+=("$(node -e "const r=JSON.parse(process.argv[1]); r.model='$path'; r.experts=$e; r.budget='$BUDGET'; r.threads=$THREADS; console.log(JSON.stringify(r))" "$res")")
    echo "${rows[-1]}" >&2
  done
done
printf '%s\n' "${rows[@]}" | node -e '
  const rows = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
  console.log(JSON.stringify(rows, null, 1));' > "$OUT/serve.json"
echo "bench-serve: wrote $OUT/serve.json" >&2
