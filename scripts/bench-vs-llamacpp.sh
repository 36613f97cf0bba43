#!/usr/bin/env bash
# strata side by side with llama.cpp (not a test): the same GGUF, thread count and token counts,
# llama.cpp run through the npm package node-llama-cpp (pinned; its prebuilt CPU binaries, see
# scripts/lib/llamacpp-bench.mjs), strata through `strata bench -o json`. Each case runs PAIRS
# pairs, one process of each side per pair, the side going first alternating from pair to pair;
# each process loads the model, warms up untimed, then times REPS runs. Per pair it prints
# strata's tokens/s over llama.cpp's (each side's avg_ts over its REPS runs), then the medians,
# and writes vs-llamacpp.json: per case and test the samples of both sides, their medians, the
# ratio per pair and the median ratio, the load average around every run, machine and versions.
#
# Cases (CASES, comma-separated):
#   tiny    ../shared/models/stories260K-w256-q4_0.gguf, resident, prompt 64 / decode 32
#   moe     ../shared/models/stories260K-w256-moe8x2-q4_k_m.gguf, resident, prompt 64 / decode 32
#   big     the 11.1 GB Mixtral-style Q4_0 reference MoE, resident (~12 GB of free RAM),
#           prompt 32 / decode 16
#   cgroup  the same 11.1 GB model under 4 GiB, decode 8 from a dropped page cache: llama.cpp
#           with its plain mmap inside a 4 GiB memory cgroup against `strata bench
#           --memory-budget 4G` (its own pool is the limit; it runs outside the cgroup). Before
#           each run the page cache is dropped.
# llama.cpp runs as node-llama-cpp sets it up (CPU backend, mmap, the CPU backend's weight
# repacking on), with two changes made through scripts/lib/llamacpp-shim.c (LD_PRELOAD, built here
# against the llama.h of the release the package bundles), where node-llama-cpp has no option:
#  - a persistent CPU threadpool per context, as llama-bench attaches (LLAMACPP_THREADPOOL=1, the
#    default). node-llama-cpp attaches none, so each llama_decode creates and joins a throwaway
#    pool; with THREADS = cores, its spinning threads then preempt one another, and 2-thread
#    decode of the tiny model runs ~70 tok/s instead of ~4500 (LLAMACPP_THREADPOOL=0 shows it).
#  - under the cgroup only, no repacking, as llama.cpp's `--no-repack`: repacking copies every
#    Q4_0 weight into anonymous memory, so in 4 GiB it is OOM-killed while loading the 11.1 GB
#    model; without it the weights stay in the file's mmap (page cache the cgroup can reclaim).
# The JSON records per llama.cpp run whether it repacked ("CPU_REPACK" buffers in its load log)
# and what the shim did.
# Every run is bounded (TIMEOUT seconds, TIMEOUT_BIG for the 11.1 GB model); a run killed by the
# timeout or by the cgroup's OOM killer is recorded as such, and the script goes on.
#
# Usage: scripts/bench-vs-llamacpp.sh [OUT_DIR]
#   CASES=tiny,moe,big,cgroup  PAIRS=3  THREADS=$(nproc)  REPS (per process; default 5 for the
#   small models, 2 for big, 1 for cgroup)  TIMEOUT=180  TIMEOUT_BIG=900  CGROUP_LIMIT=4G
#   CGROUP_N=8 (decode tokens under the cgroup)  LLAMACPP_THREADPOOL=1
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/bench/vs-llamacpp}
CASES=${CASES:-tiny,moe,big,cgroup}
PAIRS=${PAIRS:-3}
THREADS=${THREADS:-$(nproc)}
TIMEOUT=${TIMEOUT:-180}
TIMEOUT_BIG=${TIMEOUT_BIG:-900}
CGROUP_LIMIT=${CGROUP_LIMIT:-4G}
CGROUP_N=${CGROUP_N:-8}
LLAMACPP_THREADPOOL=${LLAMACPP_THREADPOOL:-1}
SHARED=${STRATA_SHARED:-../shared}
BIG=${BIG_MODEL:-build/bench/mixtral-2048x24-e8-q4_0.gguf}
NLC_VERSION=3.21.1
NLC_DIR=build/npm-llamacpp
mkdir -p "$OUT/runs"
rm -f "$OUT"/runs/*
source scripts/lib/cgroup.sh

# strata: the lead keeps build/ current; build only what is missing.
[ -x build/strata ] || scripts/setup.sh strata >/dev/null
if ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi

# node-llama-cpp, pinned, with only this platform's prebuilt CPU binaries (its other optional
# packages, CUDA and Vulkan builds among them, are ~600 MB this script never uses).
case $(uname -m) in
  x86_64) NLC_BINS=@node-llama-cpp/linux-x64 ;;
  aarch64) NLC_BINS=@node-llama-cpp/linux-arm64 ;;
  *) echo "bench-vs-llamacpp: no prebuilt node-llama-cpp CPU package for $(uname -m)" >&2; exit 1 ;;
esac
have=$(node -p "require('./$NLC_DIR/node_modules/node-llama-cpp/package.json').version" 2>/dev/null || true)
if [ "$have" != "$NLC_VERSION" ] || [ ! -d "$NLC_DIR/node_modules/$NLC_BINS" ]; then
  echo "bench-vs-llamacpp: installing node-llama-cpp@$NLC_VERSION into $NLC_DIR" >&2
  mkdir -p "$NLC_DIR"
  [ -f "$NLC_DIR/package.json" ] || echo '{"name": "strata-bench-llamacpp", "private": true}' > "$NLC_DIR/package.json"
  (cd "$NLC_DIR" && npm i -E --omit=optional --no-audit --no-fund --loglevel=error \
     "node-llama-cpp@$NLC_VERSION" "$NLC_BINS@$NLC_VERSION" >/dev/null)
fi
# The shim, against the llama.h of the release the package bundles.
SHIM=$NLC_DIR/llamacpp-shim.so
if [ ! -f "$SHIM" ] || [ scripts/lib/llamacpp-shim.c -nt "$SHIM" ]; then
  src=$NLC_DIR/llama.cpp-headers
  rm -rf "$src"
  git clone -q --no-checkout "$NLC_DIR/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$src"
  git -C "$src" -c advice.detachedHead=false checkout -q HEAD -- include ggml/include
  cc -shared -fPIC -O2 -Wall -I "$src/include" -I "$src/ggml/include" -o "$SHIM" scripts/lib/llamacpp-shim.c -ldl
fi

drop_cache() { sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
n_vocab() { build/strata info "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["vocab_size"])'; }

# run_side CASE PAIR SIDE CGROUP(0/1) TIMEOUT CMD...: one bounded run; leaves RUN.json (stdout),
# RUN.err (stderr) and RUN.meta (exit status, load average before and after, cgroup figures).
run_side() {
  local case=$1 pair=$2 side=$3 confine=$4 limit_s=$5; shift 5
  local base="$OUT/runs/$case-$pair-$side" rc=0 load0
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  CGROUP_CONFINED=0 CGROUP_OOM_KILLS=0 CGROUP_PEAK_BYTES=""
  if [ "$confine" = 1 ]; then
    run_in_cgroup "$CGROUP_BYTES" timeout -k 10 "$limit_s" "$@" > "$base.json" 2> "$base.err" || rc=$?
  else
    timeout -k 10 "$limit_s" "$@" > "$base.json" 2> "$base.err" || rc=$?
  fi
  printf '{"rc": %d, "timeout_s": %d, "load_before": "%s", "load_after": "%s", "cgroup": %s, "oom_kills": %d, "cgroup_peak_bytes": %s}\n' \
    "$rc" "$limit_s" "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$([ "$CGROUP_CONFINED" = 1 ] && echo true || echo false)" \
    "$CGROUP_OOM_KILLS" "${CGROUP_PEAK_BYTES:-null}" > "$base.meta"
  local how="ok"
  [ "$rc" = 124 ] && how="timed out after ${limit_s}s"
  [ "$CGROUP_OOM_KILLS" -gt 0 ] && how="OOM-killed (rc $rc)"
  [ "$rc" != 0 ] && [ "$how" = ok ] && how="failed (rc $rc)"
  echo "bench-vs-llamacpp: $case pair $pair $side: $how" >&2
}

CGROUP_BYTES=$(python3 -c "
s = '$CGROUP_LIMIT'.strip().upper(); m = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
print(int(float(s[:-1]) * m[s[-1]]) if s[-1] in m else int(s))")

# llama.cpp's CPU threads spin at their barriers: with THREADS = cores and anything else running,
# a preempted thread stalls every step (decode can drop a thousandfold). Say so up front.
load1=$(cut -d' ' -f1 /proc/loadavg)
if python3 -c "import sys; sys.exit(0 if $load1 > 0.5 else 1)"; then
  echo "bench-vs-llamacpp: warning: load average $load1 before starting; llama.cpp's figures suffer most from other load" >&2
fi

cases_run=()
IFS=, read -r -a cases <<< "$CASES"
for c in "${cases[@]}"; do
  case $c in
    tiny) model=$SHARED/models/stories260K-w256-q4_0.gguf; P=64; N=32; R=${REPS:-5}; lim=$TIMEOUT ;;
    moe) model=$SHARED/models/stories260K-w256-moe8x2-q4_k_m.gguf; P=64; N=32; R=${REPS:-5}; lim=$TIMEOUT ;;
    big) model=$BIG; P=32; N=16; R=${REPS:-2}; lim=$TIMEOUT_BIG ;;
    cgroup) model=$BIG; P=0; N=$CGROUP_N; R=${REPS:-1}; lim=$TIMEOUT_BIG ;;
    *) echo "bench-vs-llamacpp: unknown case '$c' (tiny, moe, big, cgroup)" >&2; exit 1 ;;
  esac
  if [ "$model" = "$BIG" ] && [ ! -f "$BIG" ]; then
    build/strata synth -o "$BIG" --arch mixtral --dim 2048 --layers 24 --heads 16 --kv-heads 8 \
      --experts 8 --used 2 --ffn 16384 --vocab 32000 --type q4_0 --seed 7
  fi
  if [ ! -f "$model" ]; then echo "bench-vs-llamacpp: $model not found, case $c skipped" >&2; continue; fi
  if [ "$c" = big ]; then
    need=$(( $(stat -c %s "$model") + (1 << 30) ))
    avail=$(( $(awk '/MemAvailable/ { print $2 }' /proc/meminfo) * 1024 ))
    if [ "$avail" -lt "$need" ]; then
      echo "bench-vs-llamacpp: case big needs $((need >> 30)) GiB available, $((avail >> 30)) GiB is; skipped" >&2
      continue
    fi
  fi
  vocab=$(n_vocab "$model")
  echo "bench-vs-llamacpp: case $c: $model, prompt $P, decode $N, $THREADS threads, $R reps x $PAIRS pairs" >&2
  echo "{\"case\": \"$c\", \"model\": \"$model\", \"n_prompt\": $P, \"n_gen\": $N, \"reps\": $R, \"threads\": $THREADS, \"pairs\": $PAIRS}" > "$OUT/runs/$c.case"
  for ((i = 1; i <= PAIRS; ++i)); do
    sides="llamacpp strata"
    [ $((i % 2)) = 0 ] && sides="strata llamacpp"
    for side in $sides; do
      if [ "$c" = cgroup ]; then
        drop_cache
        if [ "$side" = llamacpp ]; then
          run_side "$c" "$i" "$side" 1 "$lim" env LD_PRELOAD="$PWD/$SHIM" STRATA_LLAMACPP_NO_REPACK=1 \
            STRATA_LLAMACPP_THREADPOOL="$LLAMACPP_THREADPOOL" NLC_DIR="$NLC_DIR" node scripts/lib/llamacpp-bench.mjs "$model" 0 "$N" "$THREADS" "$R" "$vocab"
        else
          run_side "$c" "$i" "$side" 0 "$lim" build/strata bench -m "$model" --memory-budget "$CGROUP_LIMIT" \
            -n "$N" -t "$THREADS" -r "$R" -o json
        fi
      elif [ "$side" = llamacpp ]; then
        run_side "$c" "$i" "$side" 0 "$lim" env LD_PRELOAD="$PWD/$SHIM" \
          STRATA_LLAMACPP_THREADPOOL="$LLAMACPP_THREADPOOL" NLC_DIR="$NLC_DIR" node scripts/lib/llamacpp-bench.mjs "$model" "$P" "$N" "$THREADS" "$R" "$vocab"
      else
        run_side "$c" "$i" "$side" 0 "$lim" build/strata bench -m "$model" -p "$P" -n "$N" -t "$THREADS" -r "$R" -o json
      fi
    done
  done
  cases_run+=("$c")
done

python3 - "$OUT" "$THREADS" "$CGROUP_LIMIT" "$LLAMACPP_THREADPOOL" "${cases_run[@]}" <<'PY'
import json, os, platform, statistics, subprocess, sys

out, threads, cg_limit, tp, cases = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5:]
runs = os.path.join(out, "runs")

def load(case, pair, side):
    base = os.path.join(runs, f"{case}-{pair}-{side}")
    meta = json.load(open(base + ".meta"))
    err = open(base + ".err", errors="replace").read().splitlines()
    rec = {"side": side, **meta}
    try:
        rec["result"] = json.load(open(base + ".json"))
    except (json.JSONDecodeError, FileNotFoundError):
        rec["result"] = None
    rec["oom_killed"] = meta["oom_kills"] > 0
    rec["timed_out"] = meta["rc"] == 124
    rec["ok"] = meta["rc"] == 0 and rec["result"] is not None
    if side == "llamacpp":
        rec["shim"] = [l for l in err if l.startswith("llamacpp-shim:")]
    if not rec["ok"]:
        phases = [l[7:] for l in err if l.startswith("phase: ")]
        rec["last_phase"] = phases[-1] if phases else None
        rec["stderr_tail"] = err[-8:]
    return rec

def rows_of(rec):
    """(n_prompt, n_gen) -> row with avg_ts/samples_ts, for either side."""
    if not rec["ok"]:
        return {}
    rows = rec["result"]["rows"] if rec["side"] == "llamacpp" else rec["result"]
    return {(r["n_prompt"], r["n_gen"]): r for r in rows}

def median(v):
    return statistics.median(v) if v else None

machine = {
    "cpu": subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip(),
    "cores": os.cpu_count(),
    "mem_total_bytes": int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0]) * 1024,
    "kernel": platform.release(),
    "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
}
versions = {}
result = {"machine": machine, "threads": threads, "llamacpp_threadpool": tp, "versions": versions,
          "timing": {"llamacpp": "llama_perf counters: time inside llama_decode (wall-clock per run in wall_*)",
                     "strata": "strata bench samples_ns"},
          "cases": []}
for case in cases:
    info = json.load(open(os.path.join(runs, case + ".case")))
    pairs = []
    for i in range(1, info["pairs"] + 1):
        pairs.append({"pair": i, "first": "llamacpp" if i % 2 else "strata",
                      "llamacpp": load(case, i, "llamacpp"), "strata": load(case, i, "strata")})
    tests = []
    for key in ([(info["n_prompt"], 0)] if info["n_prompt"] else []) + [(0, info["n_gen"])]:
        name = f"pp{key[0]}" if key[0] else f"tg{key[1]}"
        t = {"test": name, "n_prompt": key[0], "n_gen": key[1], "llamacpp": {}, "strata": {}, "ratio_per_pair": []}
        for side in ("llamacpp", "strata"):
            per_pair = [rows_of(p[side]).get(key) for p in pairs]
            t[side] = {
                "avg_ts_per_pair": [r["avg_ts"] if r else None for r in per_pair],
                "samples_ts": [r["samples_ts"] if r else None for r in per_pair],
                "median_ts": median([r["avg_ts"] for r in per_pair if r]),
            }
            if side == "llamacpp":
                t[side]["wall_avg_ts_per_pair"] = [r["wall"]["avg_ts"] if r else None for r in per_pair]
        for a, b in zip(t["llamacpp"]["avg_ts_per_pair"], t["strata"]["avg_ts_per_pair"]):
            t["ratio_per_pair"].append(b / a if a and b else None)
        t["median_ratio"] = median([r for r in t["ratio_per_pair"] if r is not None])
        tests.append(t)
    for p in pairs:
        if p["llamacpp"]["ok"]:
            r = p["llamacpp"]["result"]
            versions.setdefault("node_llama_cpp", r["node_llama_cpp_version"])
            versions.setdefault("llama_cpp_release", r["llama_cpp_release"])
            versions.setdefault("llama_cpp_cpu_backend", r["cpu_backend"])
            versions.setdefault("llama_cpp_system_info", r["system_info"])
        if p["strata"]["ok"] and p["strata"]["result"]:
            versions.setdefault("strata_build_commit", p["strata"]["result"][0]["build_commit"])
    pool = "a persistent threadpool attached (as llama-bench)" if tp else "node-llama-cpp's own threading (a throwaway pool per decode)"
    setup = {"llamacpp": f"node-llama-cpp, CPU, mmap, repacking as it loads (see repack per run), {pool}",
             "strata": "strata bench, resident"}
    if case == "cgroup":
        setup = {"llamacpp": f"node-llama-cpp, CPU, mmap, no repack (--no-repack through the shim), {pool}, "
                             f"inside a {cg_limit} memory cgroup, page cache dropped first",
                 "strata": f"strata bench --memory-budget {cg_limit} (io_uring, O_DIRECT), unconfined, page cache dropped first"}
    for p in pairs:
        if p["llamacpp"]["ok"]:
            p["llamacpp"]["repack"] = p["llamacpp"]["result"]["repack"]
    result["cases"].append({**info, "setup": setup, "tests": tests, "runs": pairs})
    print(f"== {case}: {info['model']} ({threads} threads, {info['reps']} reps per run)")
    for p in pairs:
        for side in ("llamacpp", "strata"):
            r = p[side]
            if not r["ok"]:
                why = "OOM-killed" if r["oom_killed"] else "timed out" if r["timed_out"] else f"failed rc {r['rc']}"
                print(f"   pair {p['pair']} {side}: {why} (last phase: {r.get('last_phase')})")
    for t in tests:
        for i, ratio in enumerate(t["ratio_per_pair"], 1):
            a, b = t["llamacpp"]["avg_ts_per_pair"][i - 1], t["strata"]["avg_ts_per_pair"][i - 1]
            fa = f"{a:10.2f}" if a else "    failed"
            fb = f"{b:10.2f}" if b else "    failed"
            fr = f"{ratio:6.2f}" if ratio else "     -"
            print(f"   {t['test']:6s} pair {i}: llama.cpp {fa} tok/s  strata {fb} tok/s  strata/llama.cpp {fr}")
        la, sa, mr = t["llamacpp"]["median_ts"], t["strata"]["median_ts"], t["median_ratio"]
        print(f"   {t['test']:6s} median: llama.cpp {la if la is None else round(la, 2)} tok/s  "
              f"strata {sa if sa is None else round(sa, 2)} tok/s  median ratio {mr if mr is None else round(mr, 2)}")
json.dump(result, open(os.path.join(out, "vs-llamacpp.json"), "w"), indent=1)
print(f"wrote {os.path.join(out, 'vs-llamacpp.json')}")
PY
