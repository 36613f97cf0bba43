#!/usr/bin/env bash
# Runs the sharded batch job, waits for every shard, then the merge. Usage: deploy/kubernetes/run.sh
# (kubectl pointed at the cluster; the PVCs strata-models and strata-batch-data exist and hold
# /models/model.gguf and /data/input.jsonl). SHARDS must match batch-job.yaml (default 4).
set -euo pipefail
cd "$(dirname "$0")"
SHARDS=${SHARDS:-4}
kubectl delete job strata-batch-merge --ignore-not-found
kubectl apply -f batch-job.yaml   # re-applying an existing Job is a no-op: its pods resume
# Large batches run for hours: poll rather than time out.
while :; do
  ok=$(kubectl get job strata-batch -o jsonpath='{.status.succeeded}')
  failed=$(kubectl get job strata-batch -o jsonpath='{.status.failedIndexes}')
  [ -n "$failed" ] && { echo "shards $failed failed; see kubectl logs" >&2; exit 1; }
  [ "${ok:-0}" = "$SHARDS" ] && break
  sleep 30
done
kubectl apply -f merge-job.yaml
kubectl wait --for=condition=complete --timeout=1h job/strata-batch-merge
kubectl logs job/strata-batch-merge
