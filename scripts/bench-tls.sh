#!/usr/bin/env bash
# HTTPS keep-alive: the engine's requests per client CPU-second against nginx over TLS, with h2load
# (HTTP/1.1 over TLS, `--h1`) and oha (when installed) in the same rounds.
#
#   scripts/bench-tls.sh            # 3 alternating rounds of 10 s each
#
# nginx (Debian's, `return 200 "ok"`, keep-alive, TLS 1.3 with TLS_AES_128_GCM_SHA256 only, so every
# client negotiates the same cipher; a fresh self-signed certificate for 127.0.0.1) runs pinned to CPU 1.
# Each client runs pinned to CPU 0 with 50 connections for the same duration, alternating:
#   - h2load --h1 -c50 -t1 -D <secs>   (nghttp2's load tool, OpenSSL, one thread);
#   - engine run PROFILE --cores 1     (50 users, no think time, the certificate verified as a CA, every
#                                       sample logged);
#   - oha -c50 -z <dur> --insecure     (tokio and rustls; skipped when oha is not installed).
# The figure is requests divided by the client's own user + system CPU time (`getrusage` of the
# child), so it is load per core, independent of how fast nginx answers; handshakes (50 per run) are
# in it for every client.
#
# Prints one line per run, the medians, each round's ratios and their median, and last:
#   engine_vs_h2load_tls=<ratio of the medians>   (and engine_vs_oha_tls=<ratio> before it, with oha)
# Environment: DURATION (10s), ROUNDS (3), ENGINE (target/release/engine), ENGINE_ARGS (e.g.
# "--io epoll"), OHA (oha), NICE (-10).
# Only loopback is used; nginx binds free ports on 127.0.0.1 and is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-$ROOT/target/release/engine}
ENGINE_ARGS=${ENGINE_ARGS:-}
OHA=${OHA:-oha}
NICE=${NICE:--10}
PRIO=()
if [ "$NICE" != 0 ] && nice -n "$NICE" true 2>/dev/null; then PRIO=(nice -n "$NICE"); fi

for tool in nginx h2load openssl taskset python3; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool (apt-get install nginx-light nghttp2-client openssl util-linux python3)" >&2
        exit 2
    }
done
[ -x "$ENGINE" ] || { echo "build the engine first: cargo build --release -p engine" >&2; exit 2; }
SECS=$(python3 -c "
import re, sys
m = re.fullmatch(r'(\d+)s', '$DURATION') or sys.exit('DURATION must be whole seconds, like 10s')
print(m[1])")

# shellcheck source=lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
bench_workdir
NGINX_TLS=1 start_nginx

cat > "$WORK/tls.ron" <<RON
(name: "bench-tls", host: "https://127.0.0.1:$TLS_PORT", tls: (ca_file: "$CA_FILE"),
 load: Closed(users: 50, duration: "$DURATION"),
 users: [(tasks: [(requests: [(path: "/")])])])
RON
# The engine's first run checks the set-up: every request must succeed.
"$ENGINE" run "$WORK/tls.ron" --cores 1 --duration 1s --quiet --out "$WORK/runs" > "$WORK/check.out" 2>&1 || true
if ! awk '$1 == "GET" && $2 == "/" && $4 == "0" {ok = 1} END {exit !ok}' "$WORK/check.out"; then
    cat "$WORK/check.out" >&2
    echo "the engine's requests to nginx over TLS failed (analyzer export RUN_DIR --csv says why)" >&2
    exit 1
fi
rm -rf "$WORK/runs"

have_oha=0
if command -v "$OHA" >/dev/null; then have_oha=1; else echo "oha: not installed (cargo install oha); skipped"; fi
rate() { python3 -c "print(round($1 / $2))"; }
h2_rates=()
engine_rates=()
oha_rates=()
for round in $(seq "$ROUNDS"); do
    read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 h2load --h1 -c50 -t1 -D "$SECS" "$TLS_URL")
    # h2load: "requests: N total, N started, N done, N succeeded, ..."
    n=$(awk '/^requests:/ {print $8}' "$BENCH_OUT")
    cipher=$(awk -F': ' '/^Cipher:/ {print $2}' "$BENCH_OUT")
    h2_rates+=("$(rate "$n" "$cpu")")
    echo "round $round: h2load $n requests, ${cpu}s CPU, ${h2_rates[-1]} requests per CPU-second ($cipher)"

    # shellcheck disable=SC2086
    read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 "$ENGINE" run "$WORK/tls.ron" --cores 1 --quiet \
        --out "$WORK/runs" $ENGINE_ARGS)
    n=$(awk '/ samples, / {print $1}' "$BENCH_OUT")
    driver=$(awk -F'[()]' '/ samples, / {print $2}' "$BENCH_OUT")
    failed=$(awk '$1 == "GET" && $2 == "/" {print $4}' "$BENCH_OUT")
    engine_rates+=("$(rate "$n" "$cpu")")
    echo "round $round: engine $n requests (${failed:-?} failed), ${cpu}s CPU, ${engine_rates[-1]} requests per CPU-second ($driver, all logged)"
    rm -rf "$WORK/runs"

    if [ "$have_oha" = 1 ]; then
        read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 "$OHA" -c 50 -z "$DURATION" --no-tui --insecure \
            --output-format json "$TLS_URL")
        n=$(python3 -c "
import json, sys
d = json.load(open('$BENCH_OUT'))
print(sum(d['statusCodeDistribution'].values()))")
        oha_rates+=("$(rate "$n" "$cpu")")
        echo "round $round: oha    $n requests, ${cpu}s CPU, ${oha_rates[-1]} requests per CPU-second"
    fi
done

h2_med=$(median "${h2_rates[@]}")
engine_med=$(median "${engine_rates[@]}")
ratios=()
for i in "${!h2_rates[@]}"; do
    ratios+=("$(python3 -c "print(f'{${engine_rates[$i]} / ${h2_rates[$i]}:.3f}')")")
done
echo "median: h2load $h2_med, engine $engine_med requests per client CPU-second"
echo "per-round engine/h2load: ${ratios[*]}; median $(median "${ratios[@]}")"
if [ "$have_oha" = 1 ]; then
    oha_med=$(median "${oha_rates[@]}")
    echo "median: oha $oha_med requests per client CPU-second"
    echo "engine_vs_oha_tls=$(python3 -c "print(f'{$engine_med / $oha_med:.2f}')")"
fi
echo "engine_vs_h2load_tls=$(python3 -c "print(f'{$engine_med / $h2_med:.2f}')")"
