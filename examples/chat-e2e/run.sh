#!/usr/bin/env bash
# End-to-end test of examples/chat.rs in a real browser: two headless Chromium pages
# (Debian's chromium, driven by playwright-core; no browser download) chat with each
# other, then the server shuts down gracefully. Installs what it needs; exits non-zero
# on failure. Run from anywhere: examples/chat-e2e/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

if [[ ! -x /usr/bin/chromium ]]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [[ ! -d "$HERE/node_modules/playwright-core" ]]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd "$ROOT" && cargo build --release -p sansock-examples --example chat)

LOG=$(mktemp)
NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} "$TARGET/release/examples/chat" --listen 127.0.0.1:0 2>"$LOG" &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true
  rm -f "$LOG"
}
trap cleanup EXIT

URL=""
for _ in $(seq 100); do
  URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$LOG" | head -n1 || true)
  [[ -n "$URL" ]] && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$URL" ]]; then
  echo "chat-e2e: the chat server did not start" >&2
  cat "$LOG" >&2
  exit 1
fi
echo "chat-e2e: server at $URL (pid $PID)"

status=0
(cd "$HERE" && CHAT_URL="$URL" CHAT_PID="$PID" node --test --test-reporter=spec test.mjs) || status=$?

# The test sent SIGINT: the server must have shut down gracefully and exited 0.
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then
  echo "chat-e2e: the server did not exit after SIGINT" >&2
  status=1
else
  server_status=0
  wait "$PID" || server_status=$?
  if [[ $server_status -ne 0 ]]; then
    echo "chat-e2e: the server exited with $server_status" >&2
    status=1
  fi
fi
echo "--- server log"
cat "$LOG"
exit "$status"
