#!/usr/bin/env bash
# What correlation costs: the engine's requests per client CPU-second on a REST API scenario (log in
# once, carry the token, create / read / update / delete with JSON checks) against a templated one
# (random path, per-user header, status check), alternating, against the same embedded target.
#
#   scripts/bench-scenarios.sh            # 3 alternating rounds of 10 s each
#
# The embedded target (`engine serve --threads 1`, the routes of profiles/rest-api.ron) runs pinned to
# CPU 1; the engine (one core, 50 users, no think time, every sample logged) pinned to CPU 0 runs
#   - templated: GET /items/{{random_int(1, 100000)}} with an X-User header from {{user_id()}} and a
#     Status([200]) check;
#   - rest-api: on_start POST /login extracting the token, sent as a bearer token after that; each
#     iteration POST /api/items (201, extract id and name, check the owner), GET /api/items/{{id}}
#     (JsonEquals id and name), PUT /api/items/{{id}} (JsonEquals qty and name), DELETE (204).
# The figure is requests divided by the client's own user + system CPU time (`getrusage` of the
# child). A request that fails its check counts as a request but is reported: every one should pass.
#
# Prints one line per run, the medians, each round's ratio and their median, and last:
#   rest_vs_templated=<ratio of the medians>   (the goal: at least 0.90)
# Environment: DURATION (10s), ROUNDS (3), ENGINE (target/release/engine), ENGINE_ARGS (e.g.
# "--io epoll"), NICE (-10).
# Only loopback is used; the target binds a free port on 127.0.0.1 and is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-$ROOT/target/release/engine}
ENGINE_ARGS=${ENGINE_ARGS:-}
NICE=${NICE:--10}
PRIO=()
if [ "$NICE" != 0 ] && nice -n "$NICE" true 2>/dev/null; then PRIO=(nice -n "$NICE"); fi

for tool in taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install util-linux python3)" >&2; exit 2; }
done
[ -x "$ENGINE" ] || { echo "build the engine first: cargo build --release -p engine" >&2; exit 2; }

# shellcheck source=lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
bench_workdir
PORT=$(free_port)
"${PRIO[@]}" taskset -c 1 "$ENGINE" serve --addr "127.0.0.1:$PORT" --threads 1 > "$WORK/serve.out" 2>&1 &
BENCH_PIDS+=($!)
wait_port "$PORT"
HOST="http://127.0.0.1:$PORT"

cat > "$WORK/templated.ron" <<RON
(name: "bench-templated", host: "$HOST", load: Closed(users: 50, duration: "$DURATION"),
 users: [(tasks: [(requests: [(
    path: "/items/{{random_int(1, 100000)}}", name: "GET /items/{id}",
    headers: {"X-User": "user-{{user_id()}}"},
    checks: [Status([200])],
 )])])])
RON
cat > "$WORK/rest.ron" <<RON
(name: "bench-rest", host: "$HOST", headers: {"Accept": "application/json"},
 load: Closed(users: 50, duration: "$DURATION"),
 users: [(
    auth: Bearer("{{token}}"),
    on_start: [(
        method: POST, path: "/login", name: "POST /login", auth: Off,
        body: Json({"user": "client-{{user_id()}}", "password": "secret"}),
        extract: {"token": Json("/token")},
        checks: [JsonEquals("/user", "client-{{user_id()}}")],
    )],
    tasks: [(name: "crud", requests: [
        (
            method: POST, path: "/api/items", name: "POST /api/items",
            body: Json({"name": "item-{{seq()}}", "qty": "{{raw(random_int(1, 5))}}"}),
            expect_status: [201],
            extract: {"id": Json("/id"), "name": Json("/name")},
            checks: [JsonEquals("/owner", "client-{{user_id()}}")],
        ),
        (
            path: "/api/items/{{id}}", name: "GET /api/items/{id}",
            checks: [JsonEquals("/id", "{{raw(id)}}"), JsonEquals("/name", "{{name}}")],
        ),
        (
            method: PUT, path: "/api/items/{{id}}", name: "PUT /api/items/{id}",
            body: Json({"qty": 9}),
            checks: [JsonEquals("/qty", 9), JsonEquals("/name", "{{name}}")],
        ),
        (method: DELETE, path: "/api/items/{{id}}", name: "DELETE /api/items/{id}", expect_status: [204]),
    ])],
 )])
RON

# run LABEL PROFILE: one engine run; sets RATE and prints the run's line.
run() {
    # shellcheck disable=SC2086
    read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 "$ENGINE" run "$2" --cores 1 --quiet \
        --out "$WORK/runs" $ENGINE_ARGS)
    local n failed driver
    n=$(awk '/ samples, / {print $1}' "$BENCH_OUT")
    driver=$(awk -F'[()]' '/ samples, / {print $2}' "$BENCH_OUT")
    # The per-name table: "<METHOD> <path> <requests> <failed> ..."; sum the failed column.
    failed=$(awk '$1 ~ /^(GET|POST|PUT|DELETE)$/ && $4 ~ /^[0-9]+$/ {f += $4} END {print f + 0}' "$BENCH_OUT")
    RATE=$(python3 -c "print(round($n / $cpu))")
    echo "round $round: $1 $n requests ($failed failed), ${cpu}s CPU, $RATE requests per CPU-second ($driver, all logged)"
    rm -rf "$WORK/runs"
}

templated_rates=()
rest_rates=()
for round in $(seq "$ROUNDS"); do
    run "templated" "$WORK/templated.ron"
    templated_rates+=("$RATE")
    run "rest-api " "$WORK/rest.ron"
    rest_rates+=("$RATE")
done
templated_med=$(median "${templated_rates[@]}")
rest_med=$(median "${rest_rates[@]}")
ratios=()
for i in "${!templated_rates[@]}"; do
    ratios+=("$(python3 -c "print(f'{${rest_rates[$i]} / ${templated_rates[$i]}:.3f}')")")
done
echo "median: templated $templated_med, rest-api $rest_med requests per client CPU-second"
echo "per-round rest-api/templated: ${ratios[*]}; median $(median "${ratios[@]}")"
echo "rest_vs_templated=$(python3 -c "print(f'{$rest_med / $templated_med:.3f}')")"
