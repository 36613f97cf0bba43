#!/usr/bin/env bash
# Sets up (packages + build) and runs every test suite with CTest.
# The reference-data tests read ../shared (or $STRATA_SHARED) and skip with a message without it.
# First the fault-injection suites run under AddressSanitizer/UBSan (scripts/test-asan.sh: leaked
# buffers, use after free; about 8 minutes on 2 cores from scratch; STRATA_SKIP_ASAN=1 skips it
# for quick local runs) and, from the same clang build, a fuzz smoke run of every libFuzzer target
# (STRATA_FUZZ_SMOKE_SECONDS each, default 10; 0 skips), then the whole CTest set, whose summary
# closes the output.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "${STRATA_SKIP_ASAN:-0}" != 1 ]; then
  scripts/test-asan.sh
fi
BUILD_DIR=${STRATA_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
