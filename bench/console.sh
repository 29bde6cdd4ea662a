#!/usr/bin/env bash
# The web console on a large run: N servers (local transport) writing LINES lines each,
# followed live in a real headless Chromium, then the finished execution page opened.
# Release build; loopback only; prints one block and appends it to results-console.txt.
# Usage: bench/console.sh [N=1000] [LINES=100]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
export N=${1:-1000} LINES=${2:-100}
cargo build --release -q -p ordo-cli --manifest-path "$ROOT/Cargo.toml"
out=$(cargo test --release -q -p ordo-tests --manifest-path "$ROOT/Cargo.toml" \
  --test e2e console_bench -- --ignored --nocapture 2>/dev/null | grep -E '^(# console|run:|browser|execution page|finished|controller:)')
{ echo "$out" | head -1; echo "#   $(date -u +%F) $(nproc) cores, $(uname -r)"; echo "$out" | tail -n +2; } \
  | tee -a "$HERE/results-console.txt"
