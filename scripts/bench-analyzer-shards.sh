#!/usr/bin/env bash
# Benchmark of merging shards: the same number of samples written as one run (2 core logs) and as a
# sharded run (SHARDS shards of 2 core logs each), both reported in full (HTML, Markdown, JSON),
# alternating, ROUNDS times each. Prints each round with its ratio, the best of each, their ratio and the
# median of the per-round ratios (rounds are back to back, so they share the machine's load); the
# issue's goal is sharded / one run <= 1.5 at 100M samples from 16 shards.
#
# The last line is machine-readable:
#   one_run_s=<s> sharded_s=<s> ratio=<sharded/one, best of each> median_round_ratio=<r> sharded_peak_mib=<MiB>
#
#   scripts/bench-analyzer-shards.sh                          # 100M samples, 16 shards
#   SAMPLES=10000000 ROUNDS=2 scripts/bench-analyzer-shards.sh  # a quicker look
#
# Environment: SAMPLES (100000000), SHARDS (16), DURATION (300 s of synthetic run), ROUNDS (3),
# BENCH_DIR (where the runs are kept between invocations; /tmp/stampede-bench-analyzer).
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES=${SAMPLES:-100000000}
SHARDS=${SHARDS:-16}
DURATION=${DURATION:-300}
ROUNDS=${ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/stampede-bench-analyzer}
ONE="$BENCH_DIR/run-$SAMPLES-2"
SHARDED="$BENCH_DIR/sharded-$SAMPLES-$SHARDS"

cargo build --release -p analyzer --quiet
BIN=target/release/analyzer

# The same synthetic shop, seed and length: the sharded run splits the samples evenly over its shards
# (each shard its own random stream), so both runs hold the same number of samples of one distribution.
if [ ! -f "$ONE/manifest.json" ]; then
    echo "writing $SAMPLES samples as one run to $ONE" >&2
    rm -rf "$ONE"
    "$BIN" synth --samples "$SAMPLES" --cores 2 --seed 1 --duration "$DURATION" --out "$ONE" >/dev/null
fi
if [ ! -f "$SHARDED/shard-00/manifest.json" ]; then
    echo "writing $SAMPLES samples as $SHARDS shards to $SHARDED" >&2
    rm -rf "$SHARDED"
    "$BIN" synth --samples "$SAMPLES" --cores 2 --seed 1 --duration "$DURATION" --shards "$SHARDS" --out "$SHARDED" >/dev/null
fi
du -sh "$ONE" "$SHARDED" >&2

# Runs a command and prints "<wall seconds> <peak RSS MiB>" of it, using only Python's standard library.
measure() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
elapsed = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{elapsed:.2f} {peak_kib / 1024:.0f}")
PY
}

best() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }

one_times=(); sharded_times=(); ratios=(); sharded_peak=0
for i in $(seq 1 "$ROUNDS"); do
    read -r one mib < <(measure "$BIN" report "$ONE" --out "$BENCH_DIR/out-one")
    echo "round $i: one run ${one} s (peak ${mib} MiB)" >&2
    read -r sharded mib < <(measure "$BIN" report "$SHARDED" --out "$BENCH_DIR/out-sharded")
    r=$(python3 -c "print(f'{$sharded / $one:.2f}')")
    echo "round $i: $SHARDS shards ${sharded} s (peak ${mib} MiB), ratio $r" >&2
    one_times+=("$one"); sharded_times+=("$sharded"); ratios+=("$r"); sharded_peak=$mib
done
one_s=$(best "${one_times[@]}")
sharded_s=$(best "${sharded_times[@]}")
ratio=$(python3 -c "print(f'{$sharded_s / $one_s:.2f}')")
median=$(python3 -c "import statistics, sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.2f}')" "${ratios[@]}")
echo "one_run_s=$one_s sharded_s=$sharded_s ratio=$ratio median_round_ratio=$median sharded_peak_mib=$sharded_peak"
