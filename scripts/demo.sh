#!/usr/bin/env bash
# The main job on the embedded default: set up, synthesise a small Mixtral-style MoE with random
# weights (strata synth), and generate from it with strata run, streaming its weights from disk
# under a memory budget of a third of the file (BUDGET overrides, e.g. BUDGET=64M). Extra
# arguments go to `strata run`. Builds only the strata binary (the tests are scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh strata
MODEL=${STRATA_DEMO_MODEL:-build/demo-moe-q4_0.gguf}
if [ ! -f "$MODEL" ]; then
  build/strata synth -o "$MODEL" --arch mixtral --type q4_0 --seed 1
fi
build/strata info "$MODEL"
BUDGET=${BUDGET:-$(( $(stat -c %s "$MODEL") / 3 ))}
cat <<MSG

What this shows: strata running a Mixture-of-Experts model from disk within a fixed memory
budget ($(( BUDGET / 1048576 )) MiB for a $(( $(stat -c %s "$MODEL") / 1048576 )) MiB model). The model's weights are RANDOM (strata synth
wrote them), so the text below is noise by design. The point is the summary after it: tokens/s,
bytes read from disk per token, expert hit rate, peak memory. For real text, give a real GGUF:
build/strata run -m MODEL.gguf -p "..." [--memory-budget 4G].

MSG
build/strata run -m "$MODEL" -p "Once upon a time" -n 32 --memory-budget "$BUDGET" "$@"
