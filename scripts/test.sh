#!/usr/bin/env bash
# Runs every test of the workspace against the real peers it talks to.
#
# Installs what is missing first (and skips what is already there):
#   - Debian: mosquitto, mosquitto-clients, chromium (the browser examples)
#   - PyPI:   paho-mqtt 2.x
#   - npm:    mqtt 5.x (MQTT.js), the aedes broker and playwright-core
#             (drives headless Chromium), into .peers/
# Then runs `cargo test --workspace` with MQTT_PEERS_REQUIRED=1, so a test
# whose peer is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || apt_missing+=(mosquitto-clients)
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "installing ${apt_missing[*]} (apt)"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

if ! python3 -c 'import paho.mqtt.client' >/dev/null 2>&1; then
  echo "installing paho-mqtt (pip)"
  python3 -m pip install --quiet --disable-pip-version-check 'paho-mqtt>=2,<3' \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'paho-mqtt>=2,<3'
fi

# npm packages go in .peers/ at the workspace root, where the tests look.
if [ ! -f .peers/node_modules/mqtt/package.json ] || [ ! -f .peers/node_modules/aedes-server-factory/package.json ] \
  || [ ! -f .peers/node_modules/playwright-core/package.json ]; then
  echo "installing mqtt, aedes, playwright-core (npm) into .peers/"
  npm install --prefix .peers --no-audit --no-fund --silent 'mqtt@5' 'aedes@0.51' 'aedes-server-factory@0.2' 'playwright-core@1' >/dev/null
fi
# The browser examples load MQTT.js from examples/web/vendor/.
bash examples/web/build.sh

export MQTT_PEERS_REQUIRED=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-features "$@" 2>&1 | tee "$log"

# One closing line for the whole workspace.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "workspace: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
