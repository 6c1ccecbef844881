#!/usr/bin/env bash
# The cost of watching a run: the engine's requests per client CPU-second with and without `--web` and
# `--metrics` being read every second, against wrk in the same rounds.
#
#   scripts/bench-live.sh            # 3 alternating rounds of 10 s each: wrk, engine, engine watched
#
# nginx (Debian's, `return 200 "ok"`, keep-alive) runs pinned to CPU 1; wrk -t1 -c50 and
# `engine run --url ... --cores 1 --users 50` (no think time, every sample logged) run pinned to CPU 0.
# In the watched runs the engine also serves `--web` and `--metrics`, and a scraper pinned to CPU 1 (with
# nginx, off the generator's CPU) fetches /metrics in both formats and the dashboard's feed /api/live
# once a second, as Prometheus and an open dashboard would. The engine's CPU time includes its live-view
# threads, so whatever watching costs is in the figure.
#
# Prints one line per run, the medians, and last:
#   watched_vs_plain=<ratio>   engine watched over engine alone (1.00 = free; the goal is >= 0.98)
#   engine_vs_wrk=<ratio>      engine alone over wrk
# Environment: DURATION (10s), ROUNDS (3), ENGINE (target/release/engine), ENGINE_ARGS, NICE (-10).
# Only loopback is used; nginx binds a free port on 127.0.0.1 and is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-$ROOT/target/release/engine}
ENGINE_ARGS=${ENGINE_ARGS:-}
NICE=${NICE:--10}
PRIO=()
if [ "$NICE" != 0 ] && nice -n "$NICE" true 2>/dev/null; then PRIO=(nice -n "$NICE"); fi

for tool in nginx wrk taskset python3 curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx-light wrk util-linux python3 curl)" >&2; exit 2; }
done
[ -x "$ENGINE" ] || { echo "build the engine first: cargo build --release -p engine" >&2; exit 2; }

# shellcheck source=lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
bench_workdir
start_nginx

# The scraper: every second, /metrics as Prometheus asks for it (OpenMetrics), /metrics as text, and the
# dashboard's feed; counts the answers so that a watched run that was not watched is caught.
scraper() {
    local web=$1 metrics=$2 n=0
    while [ ! -e "$WORK/stop-scraping" ]; do
        curl -fsS -o /dev/null -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' \
            "http://127.0.0.1:$metrics/metrics" && n=$((n + 1)) || true
        curl -fsS -o /dev/null "http://127.0.0.1:$metrics/metrics" && n=$((n + 1)) || true
        curl -fsS -o /dev/null "http://127.0.0.1:$web/api/live" && n=$((n + 1)) || true
        echo "$n" > "$WORK/scrapes"
        sleep 1
    done
}

engine_rate() {
    local cpu=$1 n
    # engine: "<n> samples, completed (<driver>)"; every one of them is in the run's log.
    n=$(awk '/ samples, / {print $1}' "$BENCH_OUT")
    RATE=$(python3 -c "print(round($n / $cpu))")
    COUNT=$n
}

wrk_rates=()
plain_rates=()
watched_rates=()
ratios=()
for round in $(seq "$ROUNDS"); do
    read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 wrk -t1 -c50 -d"$DURATION" "$URL")
    n=$(awk '/requests in/ {print $1}' "$BENCH_OUT")
    wrk_rate=$(python3 -c "print(round($n / $cpu))")
    wrk_rates+=("$wrk_rate")
    echo "round $round: wrk     $n requests, ${cpu}s CPU, $wrk_rate requests per CPU-second"

    # shellcheck disable=SC2086
    read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 "$ENGINE" run --url "$URL" --cores 1 --users 50 \
        --duration "$DURATION" --quiet --out "$WORK/runs" $ENGINE_ARGS)
    engine_rate "$cpu"
    plain=$RATE
    plain_rates+=("$plain")
    echo "round $round: engine  $COUNT requests, ${cpu}s CPU, $plain requests per CPU-second"

    web=$(free_port)
    metrics=$(free_port)
    rm -f "$WORK/stop-scraping" "$WORK/scrapes"
    (wait_port "$web" && taskset -c 1 bash -c "$(declare -f scraper); WORK=$WORK scraper $web $metrics") &
    scraper_pid=$!
    # shellcheck disable=SC2086
    read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 "$ENGINE" run --url "$URL" --cores 1 --users 50 \
        --duration "$DURATION" --quiet --out "$WORK/runs" --web "127.0.0.1:$web" --metrics "127.0.0.1:$metrics" \
        $ENGINE_ARGS)
    touch "$WORK/stop-scraping"
    wait "$scraper_pid" || true
    engine_rate "$cpu"
    watched=$RATE
    watched_rates+=("$watched")
    scrapes=$(cat "$WORK/scrapes" 2>/dev/null || echo 0)
    echo "round $round: watched $COUNT requests, ${cpu}s CPU, $watched requests per CPU-second ($scrapes scrapes answered)"
    [ "$scrapes" -gt 0 ] || { echo "the watched run was never scraped" >&2; exit 1; }
    ratios+=("$(python3 -c "print(f'{$watched / $plain:.3f}')")")
    rm -rf "$WORK/runs"
done

wrk_med=$(median "${wrk_rates[@]}")
plain_med=$(median "${plain_rates[@]}")
watched_med=$(median "${watched_rates[@]}")
echo "median: wrk $wrk_med, engine $plain_med, engine watched $watched_med requests per client CPU-second"
echo "per-round watched/plain: ${ratios[*]}; median $(median "${ratios[@]}")"
echo "watched_vs_wrk=$(python3 -c "print(f'{$watched_med / $wrk_med:.2f}')")"
echo "engine_vs_wrk=$(python3 -c "print(f'{$plain_med / $wrk_med:.2f}')")"
echo "watched_vs_plain=$(python3 -c "print(f'{$watched_med / $plain_med:.3f}')")"
