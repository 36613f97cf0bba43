#!/usr/bin/env bash
# The main job on the embedded default: set up, synthesise a small Mixtral-style MoE with random
# weights (strata synth), and generate from it with strata run, streaming its weights from disk
# under a memory budget of a third of the file (BUDGET overrides, e.g. BUDGET=64M). Extra
# arguments go to `strata run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
MODEL=${STRATA_DEMO_MODEL:-build/demo-moe-q4_0.gguf}
if [ ! -f "$MODEL" ]; then
  build/strata synth -o "$MODEL" --arch mixtral --type q4_0 --seed 1
fi
build/strata info "$MODEL"
echo
BUDGET=${BUDGET:-$(( $(stat -c %s "$MODEL") / 3 ))}
build/strata run -m "$MODEL" -p "Once upon a time" -n 32 --memory-budget "$BUDGET" "$@"
