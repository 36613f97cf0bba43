#!/usr/bin/env bash
# CTest tools.topology_same_answers: a model striped over 3 emulated drives gives the tokens and
# logits of the single file.
#
#   tests/tools/test_topology_same_answers.sh STRATA_BINARY SOURCE_DIR [SHARED_DIR]
#
# Models: a synthesized MoE, and ../shared's stories260K-w256-moe8x2-q8_0.gguf when present. For
# each, the answers of the single file (on /var/tmp) are taken first: `run --json` (token ids and
# the top logits at full precision) and `perplexity --json` over a short text (every running
# value and the final PPL at full precision), resident and streamed under a small
# --memory-budget. Then scripts/emulate-drives.sh sets up 3 throttled loop-device drives,
# `strata place` stripes the model over them (64 KiB stripes) and the same commands run on the
# manifest; every answer must be the same string. The streamed run must also have read from the
# three drives (its per-drive figures in --json).
#
# Exit 77 (skipped) where drives cannot be emulated (emulate-drives exits 77: not root, no loop
# devices, no blkio/io throttling) or the script is not in this tree. EMULATE_DRIVES overrides
# the script's path.
set -euo pipefail

STRATA=${1:?usage: $0 STRATA_BINARY SOURCE_DIR [SHARED_DIR]}
SRC=${2:?usage: $0 STRATA_BINARY SOURCE_DIR [SHARED_DIR]}
SHARED=${3:-${STRATA_SHARED:-}}
EMU=${EMULATE_DRIVES:-$SRC/scripts/emulate-drives.sh}
SKIP=77

[ -x "$STRATA" ] || { echo "FAIL: $STRATA is not an executable"; exit 1; }
if [ ! -f "$EMU" ]; then
  echo "skipped: $EMU not found (set EMULATE_DRIVES to scripts/emulate-drives.sh)"
  exit $SKIP
fi
command -v jq >/dev/null || { echo "skipped: jq not found"; exit $SKIP; }

work=$(mktemp -d /var/tmp/strata-topology-XXXXXX)
trap 'rm -rf "$work"' EXIT
topo_fail() { echo "FAIL: $*"; exit 1; }

# --- the models and the text -------------------------------------------------------------------
models=()
"$STRATA" synth -o "$work/synth-moe.gguf" --arch mixtral --layers 4 --dim 128 --heads 4 --kv-heads 2 --experts 16 \
  --used 2 --ffn 256 --vocab 300 --type q8_0 -t 2 > "$work/synth.log" 2>&1 || { cat "$work/synth.log"; topo_fail "strata synth"; }
models+=("$work/synth-moe.gguf:1M")
if [ -n "$SHARED" ] && [ -f "$SHARED/models/stories260K-w256-moe8x2-q8_0.gguf" ]; then
  cp "$SHARED/models/stories260K-w256-moe8x2-q8_0.gguf" "$work/stories-moe.gguf"
  models+=("$work/stories-moe.gguf:4M")
else
  echo "note: ../shared's stories260K-w256-moe8x2-q8_0.gguf not found: the synthesized model only"
fi
text="$work/text.txt"
words=(once upon a time there was a little girl named lily she liked to play in the park with her dog and friends)
for ((i = 0; i < 300; i++)); do printf '%s ' "${words[(i * 7 + i / 5) % ${#words[@]}]}"; done > "$text"
echo >> "$text"

# topo_answers MODEL OUT_PREFIX BUDGET: writes OUT_PREFIX.{run,ppl}[.streamed] (the compared strings)
# and OUT_PREFIX.drives (per-drive figures of the streamed run).
topo_answers() {
  local m=$1 out=$2 budget=$3 flags j
  for mode in resident streamed; do
    flags=""
    [ "$mode" = resident ] || flags="--memory-budget $budget"
    # shellcheck disable=SC2086
    j=$("$STRATA" run -m "$m" -p "Once upon a time" -n 16 --temp 0 -t 2 --json $flags 2> "$out.err") ||
      { cat "$out.err"; topo_fail "strata run -m $m $flags"; }
    jq -c '{token_ids, top_logits}' <<< "$j" > "$out.run.$mode"
    [ "$mode" = resident ] || jq -c '.stats.streaming.drives' <<< "$j" > "$out.drives"
    # shellcheck disable=SC2086
    j=$("$STRATA" perplexity -m "$m" -f "$text" -c 64 -t 2 --json $flags 2> "$out.err") ||
      { cat "$out.err"; topo_fail "strata perplexity -m $m $flags"; }
    jq -c '{n_chunks, n_scored, ppl, ppl_stderr, running_ppl}' <<< "$j" > "$out.ppl.$mode"
  done
}
export -f topo_answers topo_fail
export STRATA text

# --- the single files --------------------------------------------------------------------------
for entry in "${models[@]}"; do
  m=${entry%:*} budget=${entry##*:}
  topo_answers "$m" "$m.want" "$budget"
  # Streaming itself changes nothing (the premise of the comparison below).
  cmp -s "$m.want.run.resident" "$m.want.run.streamed" || topo_fail "$(basename "$m"): streamed run differs from resident"
  cmp -s "$m.want.ppl.resident" "$m.want.ppl.streamed" || topo_fail "$(basename "$m"): streamed perplexity differs from resident"
done

# --- the same models striped over 3 emulated drives --------------------------------------------
inner='
set -euo pipefail
IFS=, read -r -a drives <<< "$STRATA_DRIVES"
[ "${#drives[@]}" -eq 3 ] || topo_fail "expected 3 drives, got $STRATA_DRIVES"
for entry in "$@"; do
  m=${entry%:*} budget=${entry##*:}
  name=$(basename "$m" .gguf)
  "$STRATA" place -m "$m" --to "$STRATA_DRIVES" --stripe 64K -o "$m.placed.json" > "$m.place.log" 2>&1 ||
    { cat "$m.place.log"; topo_fail "strata place $m"; }
  for d in "${drives[@]}"; do
    [ -s "$d/$name.gguf.stripe-1-of-3" ] || [ -s "$d/$name.gguf.stripe-2-of-3" ] || [ -s "$d/$name.gguf.stripe-3-of-3" ] ||
      topo_fail "no stripe of $name on $d"
  done
  topo_answers "$m.placed.json" "$m.got" "$budget"
done
'
rc=0
bash "$EMU" --size 256M --bps 200M 3 -- bash -c "$inner" topology "${models[@]}" > "$work/emulate.log" 2>&1 || rc=$?
if [ "$rc" -eq $SKIP ]; then
  cat "$work/emulate.log"
  echo "skipped: drives cannot be emulated here"
  exit $SKIP
fi
[ "$rc" -eq 0 ] || { cat "$work/emulate.log"; topo_fail "the run on emulated drives exited $rc"; }

for entry in "${models[@]}"; do
  m=${entry%:*}
  n=$(basename "$m")
  for what in run.resident run.streamed ppl.resident ppl.streamed; do
    if ! cmp -s "$m.want.$what" "$m.got.$what"; then
      echo "--- single file ($what):"; cat "$m.want.$what"
      echo "--- striped over 3 drives ($what):"; cat "$m.got.$what"
      topo_fail "$n striped over 3 drives: $what differs from the single file"
    fi
  done
  # The streamed run read from three drives, loop devices, each some bytes.
  ndrives=$(jq 'length' "$m.got.drives")
  [ "$ndrives" -eq 3 ] || { cat "$m.got.drives"; topo_fail "$n: the streamed run reports $ndrives drives, expected 3"; }
  jq -e 'all(.[]; (.device | startswith("loop")) and .bytes > 0)' "$m.got.drives" > /dev/null ||
    { cat "$m.got.drives"; topo_fail "$n: a drive is not a loop device or read nothing during decode"; }
  echo "ok: $n striped over 3 emulated drives: same tokens, top logits and perplexity (resident and streamed);" \
    "ppl $(jq .ppl "$m.got.ppl.streamed"), decode read $(jq -r 'map("\(.device) \(.bytes) B") | join(", ")' "$m.got.drives")"
done
