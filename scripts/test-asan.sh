#!/usr/bin/env bash
# The suites where memory and threads are most at risk, under AddressSanitizer and UBSan (its
# own build folder, build-asan/): the fault-injection suites (storage backends, the device array
# and its reaper threads, streaming provider with real and scripted backends: errors, short reads and truncated files must leak no buffer and touch no freed
# memory), the serving engine (threads, cancellation), the server's API mapping, and the server
# itself end to end (malformed requests, SIGTERM) and under the 64-client load test with
# disconnects, with leak detection in the server process. scripts/test.sh runs it first.
# Built with clang and -DSTRATA_FUZZ=ON (ASan + UBSan + libFuzzer's coverage instrumentation),
# so the same build folder also builds the fuzz targets; their smoke run (scripts/fuzz.sh,
# STRATA_FUZZ_SMOKE_SECONDS per target, default 10; 0 skips) follows the suites and costs only
# the targets' own files, not a second sanitizer tree.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
B=${STRATA_ASAN_BUILD_DIR:-build-asan}
# -O1 -g1: the sanitizers need no more, and the Beast/Asio server code compiles twice as fast
# as at -O2 -g (3m20s -> 1m44s for http_server.cpp alone on this machine).
# A folder configured before the switch to clang (gcc, STRATA_ASAN) is configured afresh.
if ! grep -qs "^STRATA_FUZZ:BOOL=ON" "$B/CMakeCache.txt"; then
  CC=clang CXX=clang++ cmake --fresh -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DSTRATA_FUZZ=ON >/dev/null
fi
suites=(storage_fault_injection storage_device_array runtime_streaming runtime_streaming_fake models_engine models_fuzz_regressions server_openai_api server_ollama_api server_fuzz_regressions
        server_serve_http)
ninja -C "$B" strata "${suites[@]/#/tests/test_}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for s in "${suites[@]}"; do
  echo "test-asan: $s"
  "$B/tests/test_$s"
done
echo "test-asan: server load test"
bash tests/server/clients/run.sh "$B/strata" "$B" load
smoke=${STRATA_FUZZ_SMOKE_SECONDS:-10}
if [ "$smoke" != 0 ]; then
  echo "test-asan: fuzz smoke, ${smoke}s per target"
  STRATA_FUZZ_BUILD_DIR="$B" scripts/fuzz.sh "$smoke"
fi
