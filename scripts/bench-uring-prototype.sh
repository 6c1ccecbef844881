#!/usr/bin/env bash
# The hand-written io_uring prototype (engine/examples/uring_client) against wrk and the engine, on one
# client core, against nginx on another, counting requests per client CPU-second. The method is
# scripts/bench-vs-wrk.sh's: nginx (Debian's, `return 200 "ok"`, keep-alive) pinned to CPU 1; every
# client pinned to CPU 0 with 50 keep-alive connections, no think time, for the same duration; CPU time
# is the client's user+system time (getrusage of the child). Clients run one after another, in the same
# order every round, so each round compares clients under the same machine load.
#
#   scripts/bench-uring-prototype.sh                # wrk, engine, and the default prototype variants
#   VARIANTS="--recv multishot;--recv pollfirst" ROUNDS=5 DURATION=5s scripts/bench-uring-prototype.sh
#
# Every prototype sample is logged through formats::LogWriter, like the engine's. Prints one line per
# client per round, then per client the median rate and its ratio to wrk's median, and the median of
# the per-round ratios (each client against the wrk run of its own round); the last line is
# uring_vs_wrk=<per-round-ratio median of the first variant>.
#
# Environment: DURATION (5s), ROUNDS (5), VARIANTS (';'-separated prototype argument lists),
# ENGINE (target/release/engine; ENGINE=none skips it), PROTO (target/release/examples/uring_client),
# ENGINE_ARGS, NICE (-10 when allowed, as in bench-vs-wrk.sh), CONNS (50).
# Only loopback is used; nginx binds a free port on 127.0.0.1 and is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-$ROOT/target/release/engine}
PROTO=${PROTO:-$ROOT/target/release/examples/uring_client}
ENGINE_ARGS=${ENGINE_ARGS:-}
VARIANTS=${VARIANTS:---recv multishot;--recv pollfirst;--recv plain}
NICE=${NICE:--10}
PRIO=()
if [ "$NICE" != 0 ] && nice -n "$NICE" true 2>/dev/null; then PRIO=(nice -n "$NICE"); fi

for tool in nginx wrk taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx-light wrk util-linux python3)" >&2; exit 2; }
done
[ -x "$PROTO" ] || { echo "build the prototype first: cargo build --release -p engine --example uring_client" >&2; exit 2; }
if [ "$ENGINE" != none ] && [ ! -x "$ENGINE" ]; then
    echo "build the engine first: cargo build --release -p engine (or ENGINE=none)" >&2; exit 2
fi

# shellcheck source=lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
bench_workdir
start_nginx

IFS=';' read -r -a variants <<<"$VARIANTS"
# Clients by index: 0 wrk, 1 engine (unless none), then the variants.
names=("wrk")
[ "$ENGINE" != none ] && names+=("engine${ENGINE_ARGS:+ ($ENGINE_ARGS)}")
first_variant=${#names[@]}
for v in "${variants[@]}"; do names+=("prototype $v"); done
declare -A rates ratios

for round in $(seq "$ROUNDS"); do
    echo "round $round ($(uptime | sed 's/.*load average: //'))"
    wrk_rate=
    i=0
    for name in "${names[@]}"; do
        case $i in
            0)
                cpu=$(measure "${PRIO[@]}" taskset -c 0 wrk -t1 -c"$CONNS" -d"$DURATION" "$URL")
                n=$(awk '/requests in/ {print $1}' "$BENCH_OUT")
                ;;
            *)
                if [ "$ENGINE" != none ] && [ "$i" = 1 ]; then
                    # shellcheck disable=SC2086
                    cpu=$(measure "${PRIO[@]}" taskset -c 0 "$ENGINE" run --url "$URL" --cores 1 --users "$CONNS" \
                        --duration "$DURATION" --quiet --out "$WORK/runs" $ENGINE_ARGS)
                else
                    # shellcheck disable=SC2086
                    cpu=$(measure "${PRIO[@]}" taskset -c 0 "$PROTO" --url "$URL" --conns "$CONNS" \
                        --duration "$DURATION" --out "$WORK/runs/proto" ${variants[$((i - first_variant))]})
                fi
                n=$(awk '/ samples, / {print $1}' "$BENCH_OUT")
                ;;
        esac
        cpu=${cpu%% *}
        rm -rf "$WORK/runs"
        rate=$(python3 -c "print(round($n / $cpu))")
        [ "$i" = 0 ] && wrk_rate=$rate
        rates[$i]="${rates[$i]:-} $rate"
        ratios[$i]="${ratios[$i]:-} $(python3 -c "print(f'{$rate / $wrk_rate:.3f}')")"
        printf '  %-58s %9s requests %7ss CPU %8s per CPU-second\n' "$name" "$n" "$cpu" "$rate"
        i=$((i + 1))
    done
done

# shellcheck disable=SC2086
wrk_med=$(median ${rates[0]})
echo "medians over $ROUNDS rounds (requests per client CPU-second; vs wrk: ratio of medians, median of per-round ratios):"
i=0
for name in "${names[@]}"; do
    # shellcheck disable=SC2086
    med=$(median ${rates[$i]})
    # shellcheck disable=SC2086
    rmed=$(median ${ratios[$i]})
    printf '  %-58s %8s  %5s  %5s\n' "$name" "$med" "$(python3 -c "print(f'{$med / $wrk_med:.2f}')")" "$(printf '%.2f' "$rmed")"
    i=$((i + 1))
done
# shellcheck disable=SC2086
echo "uring_vs_wrk=$(printf '%.2f' "$(median ${ratios[$first_variant]})")"
