#!/usr/bin/env bash
# Sets up (packages + build) and runs every test suite with CTest.
# The reference-data tests read ../shared (or $STRATA_SHARED) and skip with a message without it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${STRATA_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
