#!/usr/bin/env bash
# Requests per client CPU-second for raw TCP (Redis PING over a Tcp step, against redis-benchmark)
# and WebSocket (echo against `engine serve`'s /ws), one client core, the server on the other.
#
#   cargo build --release -p engine && scripts/bench-protocols.sh
#
# redis-server (Debian's, no persistence) or `engine serve` runs pinned to CPU 1; the client to CPU 0.
# CPU time is the client's user+system time (getrusage of the child), so the figures are load per
# client core. TCP: `engine run` with 50 users sending `PING\r\n` and reading `+PONG\r\n`, every sample
# logged, against `redis-benchmark -c 50 -P 1 -t ping_inline --threads 1` for the same number of
# requests; prints tcp_engine_vs_redis_benchmark=<ratio>. WebSocket: 50 users, one text message and
# its echo per step; no peer tool is packaged in Debian for this, so it prints the rate alone.
# Environment: DURATION (10s), ROUNDS (3), ENGINE (target/release/engine). Loopback only.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-$ROOT/target/release/engine}
for tool in redis-server redis-benchmark taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools util-linux python3)" >&2; exit 2; }
done
[ -x "$ENGINE" ] || { echo "build the engine first: cargo build --release -p engine" >&2; exit 2; }

# shellcheck source=lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
bench_workdir

RPORT=$(free_port)
taskset -c 1 redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no >/dev/null &
BENCH_PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

cat > "$WORK/tcp.ron" <<RON
(name: "bench-tcp", host: "tcp://127.0.0.1:$RPORT", load: Closed(users: 50, duration: "$DURATION"),
 users: [(tasks: [(steps: [Tcp(name: "PING", send: "PING\r\n", read: Until("\r\n"))])])])
RON

engine_rates=(); bench_rates=()
for round in $(seq "$ROUNDS"); do
    read -r cpu _ < <(measure taskset -c 0 "$ENGINE" run "$WORK/tcp.ron" --cores 1 --quiet --out "$WORK/runs")
    n=$(awk '/ samples, / {print $1}' "$BENCH_OUT")
    failed=$(awk '$1 == "PING" {print $3}' "$BENCH_OUT")
    rate=$(python3 -c "print(round($n / $cpu))")
    engine_rates+=("$rate")
    echo "round $round: engine tcp      $n requests ($failed failed), ${cpu}s CPU, $rate per CPU-second"
    rm -rf "$WORK/runs"
    read -r cpu _ < <(measure taskset -c 0 redis-benchmark -p "$RPORT" -c 50 -P 1 --threads 1 -n "$n" -t ping_inline -q)
    rate=$(python3 -c "print(round($n / $cpu))")
    bench_rates+=("$rate")
    echo "round $round: redis-benchmark $n requests, ${cpu}s CPU, $rate per CPU-second"
done

SERVE_OUT="$WORK/serve.out"
taskset -c 1 "$ENGINE" serve --addr 127.0.0.1:0 > "$SERVE_OUT" &
BENCH_PIDS+=($!)
for _ in $(seq 100); do [ -s "$SERVE_OUT" ] && break; sleep 0.05; done
WSADDR=$(head -1 "$SERVE_OUT")
cat > "$WORK/ws.ron" <<RON
(name: "bench-ws", host: "ws://$WSADDR/ws", load: Closed(users: 50, duration: "$DURATION"),
 users: [(tasks: [(steps: [WebSocket(name: "echo", send: "hello", receive: Reply)])])])
RON
ws_rates=()
for round in $(seq "$ROUNDS"); do
    read -r cpu _ < <(measure taskset -c 0 "$ENGINE" run "$WORK/ws.ron" --cores 1 --quiet --out "$WORK/runs")
    n=$(awk '/ samples, / {print $1}' "$BENCH_OUT")
    failed=$(awk '$1 == "echo" {print $3}' "$BENCH_OUT")
    rate=$(python3 -c "print(round($n / $cpu))")
    ws_rates+=("$rate")
    echo "round $round: engine websocket $n messages ($failed failed), ${cpu}s CPU, $rate per CPU-second"
    rm -rf "$WORK/runs"
done

e=$(median "${engine_rates[@]}"); b=$(median "${bench_rates[@]}"); w=$(median "${ws_rates[@]}")
echo "median: engine tcp $e, redis-benchmark $b, engine websocket $w requests per CPU-second"
echo "ws_engine_per_cpu_second=$w"
echo "tcp_engine_vs_redis_benchmark=$(python3 -c "print(f'{$e / $b:.2f}')")"
