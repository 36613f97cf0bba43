#!/usr/bin/env bash
# Drives `strata serve` with the official npm clients (openai, ollama) under node's test runner.
#   run.sh STRATA_BINARY BUILD_DIR [clients|load]
# clients (default): openai.test.mjs and ollama.test.mjs; load: load.test.mjs.
# Installs the pinned packages (package.json here) into BUILD_DIR/npm-clients when missing,
# synthesizes a small MoE into a temp dir, starts the server on a free loopback port, runs the
# tests, then sends SIGTERM and requires exit status 0 within a few seconds. The server is
# stopped and the temp dir removed whatever happens. Skips (exit 0) only when the pinned
# packages are not installed and the npm registry cannot be reached.
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 STRATA_BINARY BUILD_DIR [clients|load]" >&2
  exit 2
fi
STRATA=$(realpath "$1")
BUILD=$(realpath "$2")
MODE=${3:-clients}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "$MODE" in
  clients) TESTS=(openai.test.mjs ollama.test.mjs) ;;
  load) TESTS=(load.test.mjs) ;;
  *) echo "unknown mode '$MODE' (clients or load)" >&2; exit 2 ;;
esac
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (Node.js 20+ is needed)" >&2; exit 1; }
done
now_ms() { date +%s%3N; }
T0=$(now_ms)
seconds_since() { local d=$(( $(now_ms) - $1 )); printf '%d.%02d' $((d / 1000)) $((d % 1000 / 10)); }
elapsed() { seconds_since "$T0"; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-node-$MODE.XXXXXX")
SERVER_PID=
NODE_PID=
cleanup() {
  [ -n "$NODE_PID" ] && kill -TERM "$NODE_PID" 2>/dev/null
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the pinned clients, installed once per build folder (a lock: ctest may run both modes at once)
NPM_DIR="$BUILD/npm-clients"
mkdir -p "$NPM_DIR"
installed() {
  node -e '
    const fs = require("fs"), path = require("path");
    const want = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).dependencies;
    for (const [name, v] of Object.entries(want)) {
      const f = path.join(process.argv[2], "node_modules", name, "package.json");
      if (!fs.existsSync(f) || JSON.parse(fs.readFileSync(f, "utf8")).version !== v) process.exit(1);
    }' "$HERE/package.json" "$NPM_DIR"
}
exec 9>"$NPM_DIR/.install.lock"
flock -w 200 9 || { echo "FAIL: timed out waiting for $NPM_DIR/.install.lock" >&2; exit 1; }
if ! installed; then
  cp "$HERE/package.json" "$NPM_DIR/package.json"
  rm -f "$NPM_DIR/package-lock.json"
  echo "installing $(node -p 'Object.entries(require(process.argv[1]).dependencies).map(([k, v]) => k + "@" + v).join(" ")' "$HERE/package.json") into $NPM_DIR"
  if ! (cd "$NPM_DIR" && timeout 150 npm install --no-audit --no-fund --prefer-offline --loglevel=error \
        --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 --fetch-timeout=30000 >"$TMP/npm.log" 2>&1) || ! installed; then
    if ! timeout 30 npm ping --fetch-retries=0 --fetch-timeout=15000 >/dev/null 2>&1; then
      echo "skipped: npm registry unreachable (and the pinned clients are not installed in $NPM_DIR)"
      exit 0
    fi
    echo "FAIL: npm install of the pinned clients failed although the registry answers:" >&2
    cat "$TMP/npm.log" >&2
    exit 1
  fi
fi
flock -u 9
exec 9>&-

# ---- the model: a small synthesized MoE, streamed under a budget of ~40% of the file
MODEL_ID=synth-moe
MODEL="$TMP/$MODEL_ID.gguf"
"$STRATA" synth -o "$MODEL" --arch mixtral --layers 2 --dim 128 --experts 8 --used 2 --ffn 256 --vocab 512 \
  --type q8_0 --seed 3 -t 1 >"$TMP/synth.log" 2>&1 || { cat "$TMP/synth.log" >&2; echo "FAIL: synth" >&2; exit 1; }
MODEL_BYTES=$(stat -c %s "$MODEL")
BUDGET=$(( MODEL_BYTES * 4 / 10 ))

# ---- the server
# load: a queue shorter than the clients, so that the overload path (429 + Retry-After) runs too.
EXTRA=()
[ "$MODE" = load ] && EXTRA=(--max-queue 48)
KEY="sk-strata-test-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
"$STRATA" serve -m "$MODEL" --memory-budget "$BUDGET" --host 127.0.0.1 --port 0 --api-key "$KEY" --max-batch 8 \
  --shutdown-grace 3 "${EXTRA[@]}" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
server_log() {
  echo "---- server stdout" >&2; tail -n 20 "$TMP/server.out" >&2
  echo "---- server stderr (last 60 lines)" >&2; tail -n 60 "$TMP/server.err" >&2
}
URL=
for _ in $(seq 300); do
  URL=$(sed -n 's/^listening on \(http:\/\/[^ ]*\)$/\1/p' "$TMP/server.out" | head -n 1)
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$URL" ]; then
  echo "FAIL: the server did not print 'listening on http://HOST:PORT'" >&2; server_log; exit 1
fi
HEALTH=
for _ in $(seq 300); do
  HEALTH=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/health")
  [ "$HEALTH" = 200 ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ "$HEALTH" != 200 ]; then
  echo "FAIL: $URL/health never answered 200 (last: $HEALTH)" >&2; server_log; exit 1
fi
echo "server pid $SERVER_PID at $URL, model $MODEL_BYTES bytes, --memory-budget $BUDGET ($(elapsed) s)"

# ---- the tests (copied next to a node_modules link, so that `import 'openai'` resolves)
mkdir -p "$TMP/tests"
cp "$HERE"/*.mjs "$TMP/tests/"
ln -s "$NPM_DIR/node_modules" "$TMP/tests/node_modules"
echo '{"type":"module"}' >"$TMP/tests/package.json"
(cd "$TMP/tests" && STRATA_URL="$URL" STRATA_API_KEY="$KEY" STRATA_MODEL="$MODEL_ID" STRATA_MODEL_BYTES="$MODEL_BYTES" \
  STRATA_PID="$SERVER_PID" exec timeout 150 node --test --test-concurrency=1 --test-reporter=spec "${TESTS[@]}") &
NODE_PID=$!
wait "$NODE_PID"  # in the background, so that a signal to this script runs the cleanup at once
RC=$?
NODE_PID=
[ $RC -ne 0 ] && { echo "FAIL: node --test exited $RC" >&2; server_log; }

# ---- shutdown: SIGTERM, exit status 0 within a few seconds
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "FAIL: the server died during the tests" >&2; server_log; wait "$SERVER_PID"; echo "exit status $?" >&2
  SERVER_PID=; exit 1
fi
T_STOP=$(now_ms)
kill -TERM "$SERVER_PID"
for _ in $(seq 80); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "FAIL: the server still runs 8 s after SIGTERM" >&2; server_log; exit 1
fi
wait "$SERVER_PID"
STATUS=$?
SERVER_PID=
STOP_S=$(seconds_since "$T_STOP")
if [ $STATUS -ne 0 ]; then
  echo "FAIL: the server exited $STATUS after SIGTERM (expected 0)" >&2; server_log; exit 1
fi
echo "server exited 0 ${STOP_S} s after SIGTERM; $MODE done in $(elapsed) s"
exit $RC
