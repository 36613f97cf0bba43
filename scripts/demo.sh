#!/usr/bin/env bash
# The main job on the embedded default: set up, synthesise a small Mixtral-style MoE with random
# weights (strata synth), and generate from it with strata run. Extra arguments go to `strata run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
MODEL=${STRATA_DEMO_MODEL:-build/demo-moe-q4_0.gguf}
if [ ! -f "$MODEL" ]; then
  build/strata synth -o "$MODEL" --arch mixtral --type q4_0 --seed 1
fi
build/strata info "$MODEL"
echo
build/strata run -m "$MODEL" -p "Once upon a time" -n 32 "$@"
