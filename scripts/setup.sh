#!/usr/bin/env bash
# Installs strata's Debian dependencies (once) and builds (Release, Ninja).
#   scripts/setup.sh           everything the tests need: all packages, every target
#   scripts/setup.sh strata    only the build packages and the strata binary (the demo)
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
pkgs=(build-essential cmake ninja-build pkg-config liburing-dev libasio-dev libtbb-dev
      libeigen3-dev libspdlog-dev libfmt-dev doctest-dev nlohmann-json3-dev libcli11-dev
      libicu-dev libboost-dev)
# For the tests only: nodejs runs the real OpenAI/Ollama client libraries in the server tests
# (npm packages are installed at test time under build/); prometheus provides promtool, which
# checks /metrics; clang brings libFuzzer for the fuzz smoke runs (scripts/fuzz.sh).
[ ${#targets[@]} -eq 0 ] && pkgs+=(nodejs prometheus clang fio)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian's nodejs comes without npm (a package of its own); some nodejs builds bundle it.
if [ ${#targets[@]} -eq 0 ] && ! command -v npm >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi

BUILD_DIR=${STRATA_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
if [ ${#targets[@]} -gt 0 ]; then
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${targets[@]}"
else
  cmake --build "$BUILD_DIR" -j "$(nproc)"
fi
