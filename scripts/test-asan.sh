#!/usr/bin/env bash
# The suites where memory and threads are most at risk, under AddressSanitizer and UBSan (its
# own build folder, build-asan/): the fault-injection suites (storage backends, streaming
# provider: errors, short reads and truncated files must leak no buffer and touch no freed
# memory), the serving engine (threads, cancellation), the server's API mapping, and the server
# itself end to end (malformed requests, SIGTERM) and under the 64-client load test with
# disconnects, with leak detection in the server process. scripts/test.sh runs it first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
B=${STRATA_ASAN_BUILD_DIR:-build-asan}
# -O1 -g1: the sanitizers need no more, and the Beast/Asio server code compiles twice as fast
# as at -O2 -g (3m20s -> 1m44s for http_server.cpp alone on this machine).
[ -f "$B/build.ninja" ] || cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DSTRATA_ASAN=ON >/dev/null
suites=(storage_fault_injection runtime_streaming models_engine server_openai_api server_ollama_api server_serve_http)
ninja -C "$B" strata "${suites[@]/#/tests/test_}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for s in "${suites[@]}"; do
  echo "test-asan: $s"
  "$B/tests/test_$s"
done
echo "test-asan: server load test"
bash tests/server/clients/run.sh "$B/strata" "$B" load
