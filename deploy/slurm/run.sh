#!/usr/bin/env bash
# Submits the shard array and the merge that waits for it.
# Usage: MODEL=/nvme/model.gguf INPUT=/shared/in.jsonl OUT_DIR=/shared/out deploy/slurm/run.sh
# (BUDGET=4G, MAX_BATCH=64, STRATA=path/to/strata optional; change --array in batch-array.sbatch
# for another shard count).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p logs
array=$(sbatch --parsable --export=ALL batch-array.sbatch)
merge=$(sbatch --parsable --export=ALL --dependency=afterok:"${array%%;*}" merge.sbatch)
echo "submitted array job $array and merge job $merge"
