#!/usr/bin/env bash
# Coverage-guided fuzzing of every input parser (libFuzzer + ASan + UBSan, clang).
#   scripts/fuzz.sh [SECONDS] [TARGET...]    every target when none is named (default 60 s each)
# Targets (fuzz/fuzz_<target>.cpp): gguf tokenizer chat_template openai ollama (batch_line when
# batch/ exists). Builds in build-fuzz/ (STRATA_FUZZ_BUILD_DIR), keeps each target's growing
# corpus in fuzz/corpus/<target>/ (ignored by git; started from fuzz/seeds/<target>/ and from
# ../shared) and writes a crash, leak or timeout reproducer to fuzz/crashes/<target>/. Exits
# non-zero when any target found one. Extra libFuzzer flags: FUZZ_FLAGS="-runs=1000000".
# Reproduce one: build-fuzz/fuzz/fuzz_<target> fuzz/crashes/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
all=(gguf tokenizer chat_template openai ollama)
[ -f fuzz/fuzz_batch_line.cpp ] && all+=(batch_line)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
B=${STRATA_FUZZ_BUILD_DIR:-build-fuzz}
SHARED=${STRATA_SHARED:-../shared}

command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (apt-get install clang)" >&2; exit 1; }
# Configured exactly as scripts/test-asan.sh's folder (-O1 -g1, STRATA_FUZZ: ASan + UBSan +
# coverage), so STRATA_FUZZ_BUILD_DIR=build-asan reuses the libraries the ASan suites built.
if ! grep -qs "^STRATA_FUZZ:BOOL=ON" "$B/CMakeCache.txt"; then
  CC=clang CXX=clang++ cmake --fresh -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DSTRATA_FUZZ=ON >/dev/null
fi
ninja -C "$B" "${targets[@]/#/fuzz_}"

# Seeds from the reference data: each target's corpus starts with what real users send.
seed_from_shared() {
  local t=$1 dir=fuzz/corpus/$1
  # The GGUF seeds are generated (no model files in git): the smallest models Model::load accepts.
  [ "$t" = gguf ] && python3 fuzz/make_gguf_seeds.py "$dir"
  [ -d "$SHARED" ] || return 0
  case $t in
    tokenizer)
      # The vocab test strings, each prefixed with a selector byte for each tokenizer (0..3).
      python3 - "$SHARED/vocab" "$dir" <<'PY'
import hashlib, pathlib, sys
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for inp in sorted(src.glob('*.inp')):
    for text in inp.read_bytes().split(b'\n__ggml_vocab_test__\n'):
        for sel in range(4):
            data = bytes([sel]) + text
            (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
PY
      ;;
    chat_template)
      cp "$SHARED"/chat-templates/templates/*.jinja "$dir"/ 2>/dev/null || true
      chmod u+w "$dir"/* ;;
  esac
}

export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export STRATA_PROGRESS=0
failed=()
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  crashes=fuzz/crashes/$t
  if [ ! -d "$corpus" ]; then
    mkdir -p "$corpus"
    seed_from_shared "$t"
  fi
  mkdir -p "$crashes"
  dict=()
  case $t in
    gguf) dict=(-dict=fuzz/dicts/gguf.dict) ;;
    openai|ollama|batch_line) dict=(-dict=fuzz/dicts/api.dict) ;;
    chat_template) dict=(-dict=fuzz/dicts/chat_template.dict) ;;
  esac
  echo "fuzz: $t for ${seconds}s"
  # -rss_limit_mb/-malloc_limit_mb: a single allocation of more than 1 GiB from inputs of a few
  # KiB is a bug (sizes must be checked against what the input holds); -timeout: a hang.
  # Output goes to a log; the final stats and any report are shown.
  log=$crashes/last.log
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  if "$B/fuzz/fuzz_$t" "$corpus" "${seeds[@]}" "${dict[@]}" -max_total_time="$seconds" \
       -timeout=20 -rss_limit_mb=4096 -malloc_limit_mb=1024 -artifact_prefix="$crashes/" \
       -print_final_stats=1 ${FUZZ_FLAGS:-} >"$log" 2>&1; then
    grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)" "$log" || true
    echo "fuzz: $t: corpus $(ls "$corpus" | wc -l) files"
  else
    echo "fuzz: $t FAILED; reproducer in $crashes/ (log $log):"
    grep -A40 -E "^==[0-9]+==ERROR|runtime error|deadly signal|uncaught exception|Test unit written" "$log" | head -60
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]}" >&2
  exit 1
fi
