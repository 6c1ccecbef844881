#!/usr/bin/env bash
# Runs a short demo load test against the engine's embedded target and builds its report.
#
#   scripts/demo.sh [extra `engine run` flags, e.g. --duration 20s --users 50]
#
# The first run compiles the engine and the analyzer in release mode (several minutes: polars is large).
# Everything stays on this machine: the embedded target listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p engine -p analyzer
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Both commands print their result path as the last line of stdout; tee keeps the progress visible.
target/release/engine run profiles/demo.ron "$@" | tee "$out"
run_dir=$(tail -n 1 "$out")
target/release/analyzer report "$run_dir" | tee "$out"
echo
echo "run directory: $run_dir"
echo "report:        $(tail -n 1 "$out")"
