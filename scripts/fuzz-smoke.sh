#!/usr/bin/env bash
# Runs every cargo-fuzz target for a short while (default 20 s each).
# Installs cargo-fuzz when it is missing. On the stable toolchain the
# targets run with libFuzzer's coverage instrumentation but without
# AddressSanitizer (`--sanitizer none`): ASan needs nightly. Panics, failed
# assertions and allocations over -malloc_limit_mb still fail the run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-20}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
for target in $(cargo fuzz list); do
  echo "fuzzing $target for ${seconds}s"
  log="$(mktemp)"
  if ! cargo fuzz run --sanitizer none "$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=16 -max_len=70000 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $target failed"
    exit 1
  fi
  grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs)' "$log" | tail -n 2
  rm -f "$log"
done
