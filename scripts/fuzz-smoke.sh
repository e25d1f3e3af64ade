#!/usr/bin/env bash
# Runs every cargo-fuzz target for a short while (default 20 s each).
# Installs cargo-fuzz when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-20}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
for target in $(cargo fuzz list); do
  echo "fuzzing $target for ${seconds}s"
  cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=16 -max_len=70000 2>&1 | tail -n 3
done
