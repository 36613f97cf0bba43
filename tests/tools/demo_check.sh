#!/usr/bin/env bash
# CTest tools.demo: the README's first command, on a fresh temp model. It must say the weights
# are random, end with the streaming summary, print only valid UTF-8, and build only the
# strata binary (setup.sh with a target).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
STRATA_DEMO_MODEL="$tmp/demo.gguf" scripts/demo.sh > "$tmp/out.txt" 2>&1 || { cat "$tmp/out.txt"; echo "FAIL: demo exited $?"; exit 1; }
fail() { cat "$tmp/out.txt"; echo "FAIL: $1"; exit 1; }
grep -q "weights are RANDOM" "$tmp/out.txt" || fail "the demo does not say the weights are random"
grep -q "^decode: .* tok/s | read .*/token" "$tmp/out.txt" || fail "no streaming summary"
iconv -f UTF-8 -t UTF-8 "$tmp/out.txt" > /dev/null || fail "output is not valid UTF-8"
grep -q "warning:" "$tmp/out.txt" && fail "compiler warnings in the demo's build"
grep -q "test_" "$tmp/out.txt" && fail "the demo built test targets"
echo "demo ok"
