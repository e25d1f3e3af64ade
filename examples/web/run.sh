#!/usr/bin/env bash
# Starts a browser example: the example broker (TCP 127.0.0.1:1883, and
# WebSocket + these pages on http://127.0.0.1:8080/) and the example's
# program, until Ctrl-C.
#
#   bash examples/web/run.sh dashboard   # a fleet of 200 simulated sensors
#   bash examples/web/run.sh chat        # the chat's history service
set -euo pipefail
cd "$(dirname "$0")/../.."
example=${1:-dashboard}
case "$example" in
  dashboard) program=(fleet --devices "${DEVICES:-200}") ;;
  chat) program=(chat-history) ;;
  *) echo "usage: $0 dashboard|chat" >&2; exit 2 ;;
esac
bash examples/web/build.sh
cargo build --release -q -p mqtt-examples --bin broker --bin fleet --bin chat-history
bin=target/release
trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT INT TERM
"$bin/broker" --tcp 127.0.0.1:1883 --ws 127.0.0.1:8080 --web examples/web --log warn &
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
"$bin/${program[0]}" "${program[@]:1}" &
echo "open http://127.0.0.1:8080/$example/ (Ctrl-C stops)"
wait
