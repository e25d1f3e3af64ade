#!/usr/bin/env bash
# Puts the browser build of MQTT.js (npm package `mqtt`, MIT licence) in
# examples/web/vendor/, where the pages load it from. Skips when present.
set -euo pipefail
cd "$(dirname "$0")"
[ -f vendor/mqtt.min.js ] && exit 0
from=../../.peers/node_modules/mqtt # installed by scripts/test.sh
if [ ! -f "$from/dist/mqtt.min.js" ]; then
  echo "installing mqtt@5 (npm) into examples/web/.build/"
  npm install --prefix .build --no-audit --no-fund --silent 'mqtt@5' >/dev/null
  from=.build/node_modules/mqtt
fi
mkdir -p vendor
cp "$from/dist/mqtt.min.js" vendor/mqtt.min.js
cp "$from/LICENSE.md" vendor/mqtt-LICENSE.md
echo "vendor/mqtt.min.js: MQTT.js $(node -p "require('./$from/package.json').version" 2>/dev/null || echo 5)"
