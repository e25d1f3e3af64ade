#!/usr/bin/env bash
# Side-by-side broker benchmark: our example broker, Mosquitto and rumqttd,
# measured with the same load tool (mqtt-bench) in the same run, in
# alternation, the broker pinned to CPU 0 and the load to CPU 1.
# Writes BENCHMARKS.md at the repository root.
#
#   bash bench/compare.sh [ROUNDS]      (default 3)
#
# Installs what is missing: Debian's mosquitto (apt) and rumqttd
# (cargo install rumqttd --version 0.20.0).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  echo "installing mosquitto (apt)"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
fi
if ! command -v rumqttd >/dev/null 2>&1; then
  echo "installing rumqttd 0.20.0 (cargo install)"
  # Its lock file pins metrics 0.22.1, which newer compilers reject: without
  # --locked, cargo picks the fixed patch release.
  cargo install --quiet rumqttd --version 0.20.0 || echo "rumqttd could not be installed: it is left out"
fi
cargo build --quiet --release -p mqtt-examples --bin broker --bin mqtt-bench
python3 bench/compare.py --rounds "$rounds"

# The client: our mqtt-client against rumqttc through the same mosquitto.
{
  echo
  echo "## Client: mqtt-client vs rumqttc"
  echo
  echo '`cargo bench -p mqtt-client --bench vs_rumqttc` (method in mqtt-client/BENCHMARKS.md), same machine, through mosquitto and then through our broker (pinned to CPU 0):'
  echo
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  taskset -c 0 target/release/broker --tcp "127.0.0.1:$port" --log error --in-memory &
  broker_pid=$!
  sleep 1
  VS_RUMQTTC_BROKER="$port:$broker_pid" cargo bench --quiet -p mqtt-client --bench vs_rumqttc -- "$rounds" 2>/dev/null
  kill "$broker_pid"
} | tee -a BENCHMARKS.md
