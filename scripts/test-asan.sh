#!/usr/bin/env bash
# The fault-injection suites (storage backends, streaming provider) under AddressSanitizer and
# UBSan: errors, short reads and truncated files must leak no buffer and touch no freed memory.
# scripts/test.sh runs it after the CTest suites (its own build folder, build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
B=${STRATA_ASAN_BUILD_DIR:-build-asan}
[ -f "$B/build.ninja" ] || cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_ASAN=ON >/dev/null
ninja -C "$B" tests/test_storage_fault_injection tests/test_runtime_streaming
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
"$B/tests/test_storage_fault_injection"
"$B/tests/test_runtime_streaming"
