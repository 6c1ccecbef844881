#!/usr/bin/env bash
# Engine vs wrk on one client core, against nginx on another, counting requests per client CPU-second.
#
#   scripts/bench-vs-wrk.sh            # 3 alternating rounds of 10 s each, then the idle-users memory test
#
# nginx (Debian's, `return 200 "ok"`, keep-alive) runs pinned to CPU 1. wrk -t1 -c50 and
# `engine run --url ... --cores 1 --users 50` (no think time, every sample logged) run pinned to CPU 0
# for the same duration, alternating. CPU time is the client's user+system time (getrusage of the
# child), so the figure is load per core, independent of how busy the machine is otherwise.
#
# Prints one line per round, the medians, the per-round ratios and their median, the idle-user memory
# figure, and last: engine_vs_wrk=<ratio of the medians>.
# Environment: DURATION (default 10s), ROUNDS (3), IDLE_USERS (10000), ENGINE (target/release/engine),
# SKIP_MEMORY=1 to skip the idle-users test, ENGINE_ARGS for extra engine flags (e.g. "--io epoll"),
# NICE (-10; the priority for nginx and both clients when running as root, 0 to leave it).
#
# SCENARIO=1 adds alternating rounds of scenarios against nginx's JSON location, four runs a round:
#   - wrk -s templated.lua: a random path (`/json/<1..100000>`) and a per-user header built by Lua for
#     every request, wrk's own count of non-2xx/3xx answers as the status check;
#   - templated: the engine doing the same with a profile (`{{random_int}}` path, `X-User` header from
#     `{{user_id()}}`, `Status([200])` check, cookie jar on as by default);
#   - static: `engine run --url .../json/1`, one request rendered once;
#   - scenario: a profile that renders a path, a query and a UUID header, keeps the body, extracts a
#     JSON value and checks another;
# and prints templated_vs_wrk=<ratio> (the like-for-like comparison) and scenario_vs_static=<ratio>
# before the last line.
# Only loopback is used; nginx binds a free port on 127.0.0.1 and is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
IDLE_USERS=${IDLE_USERS:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-$ROOT/target/release/engine}
ENGINE_ARGS=${ENGINE_ARGS:-}
# The machines are shared with builds. When allowed (root), nginx and both clients run at a higher
# priority, equally, so that other work perturbs the comparison less; NICE=0 turns this off.
NICE=${NICE:--10}
PRIO=()
if [ "$NICE" != 0 ] && nice -n "$NICE" true 2>/dev/null; then PRIO=(nice -n "$NICE"); fi

for tool in nginx wrk taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx-light wrk util-linux python3)" >&2; exit 2; }
done
[ -x "$ENGINE" ] || { echo "build the engine first: cargo build --release -p engine" >&2; exit 2; }

# shellcheck source=lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
bench_workdir
start_nginx

wrk_rates=()
engine_rates=()
for round in $(seq "$ROUNDS"); do
    read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 wrk -t1 -c50 -d"$DURATION" "$URL")
    # wrk: "  1234567 requests in 10.00s, ..."
    n=$(awk '/requests in/ {print $1}' "$BENCH_OUT")
    wrk_rate=$(python3 -c "print(round($n / $cpu))")
    wrk_rates+=("$wrk_rate")
    echo "round $round: wrk    $n requests, ${cpu}s CPU, $wrk_rate requests per CPU-second"

    # shellcheck disable=SC2086
    read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 "$ENGINE" run --url "$URL" --cores 1 --users 50 --duration "$DURATION" \
        --quiet --out "$WORK/runs" $ENGINE_ARGS)
    # engine: "<n> samples, completed (<driver>)"; every one of them is in the run's log.
    n=$(awk '/ samples, / {print $1}' "$BENCH_OUT")
    driver=$(awk -F'[()]' '/ samples, / {print $2}' "$BENCH_OUT")
    engine_rate=$(python3 -c "print(round($n / $cpu))")
    engine_rates+=("$engine_rate")
    echo "round $round: engine $n requests, ${cpu}s CPU, $engine_rate requests per CPU-second ($driver, all logged)"
    rm -rf "$WORK/runs"
done

wrk_med=$(median "${wrk_rates[@]}")
engine_med=$(median "${engine_rates[@]}")
echo "median: wrk $wrk_med, engine $engine_med requests per client CPU-second"
# Each round's engine run against the wrk run just before it: steadier than the ratio of medians when
# the machine's speed drifts between rounds.
round_ratios=()
for i in "${!wrk_rates[@]}"; do
    round_ratios+=("$(python3 -c "print(f'{${engine_rates[$i]} / ${wrk_rates[$i]}:.3f}')")")
done
echo "per-round ratios: ${round_ratios[*]}; median $(median "${round_ratios[@]}")"

if [ "${SCENARIO:-0}" = 1 ]; then
    # The templated scenario, like for like: wrk runs a Lua script that builds the same random path and
    # per-user header for every request, and checks the status the way wrk does (its count of non-2xx
    # or 3xx answers), against the same nginx location. A Lua `response` callback would make wrk parse
    # every response into Lua tables; its built-in count is the cheapest status check wrk has.
    cat > "$WORK/templated.lua" <<'LUA'
local user = 0
request = function()
    user = user % 50 + 1
    return wrk.format("GET", "/json/" .. math.random(1, 100000), { ["X-User"] = "user-" .. user })
end
LUA
    cat > "$WORK/templated.ron" <<RON
(name: "bench-templated", host: "http://127.0.0.1:$PORT", load: Closed(users: 50, duration: "$DURATION"),
 users: [(tasks: [(requests: [(
    path: "/json/{{random_int(1, 100000)}}", name: "GET /json/{id}",
    headers: {"X-User": "user-{{user_id()}}"},
    checks: [Status([200])],
 )])])])
RON
    # The richer scenario: three run-time values, a kept body, an extraction and a JSON check.
    cat > "$WORK/scenario.ron" <<RON
(name: "bench-scenario", host: "http://127.0.0.1:$PORT", load: Closed(users: 50, duration: "$DURATION"),
 users: [(tasks: [(requests: [(
    path: "/json/{{random_int(1, 100000)}}", query: {"user": "{{user_id()}}"}, name: "GET /json/{id}",
    headers: {"X-Request-Id": "{{uuid()}}"},
    extract: {"id": Json("/id")},
    checks: [JsonEquals("/name", "stampede")],
 )])])])
RON
    wrk_lua_rates=()
    templated_rates=()
    static_rates=()
    scenario_rates=()
    # engine_profile_run LABEL PROFILE: one engine run of PROFILE; sets RATE.
    engine_profile_run() {
        # shellcheck disable=SC2086
        read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 "$ENGINE" run "$2" --cores 1 --quiet \
            --out "$WORK/runs" $ENGINE_ARGS)
        n=$(awk '/ samples, / {print $1}' "$BENCH_OUT")
        failed=$(awk '$1 == "GET" && $2 == "/json/{id}" {print $4}' "$BENCH_OUT")
        RATE=$(python3 -c "print(round($n / $cpu))")
        echo "round $round: $1 $n requests (${failed:-?} failed), ${cpu}s CPU, $RATE requests per CPU-second"
        rm -rf "$WORK/runs"
    }
    for round in $(seq "$ROUNDS"); do
        read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 wrk -t1 -c50 -d"$DURATION" -s "$WORK/templated.lua" "$URL")
        n=$(awk '/requests in/ {print $1}' "$BENCH_OUT")
        bad=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$BENCH_OUT")
        rate=$(python3 -c "print(round($n / $cpu))")
        wrk_lua_rates+=("$rate")
        echo "round $round: wrk -s templated.lua $n requests (${bad:-0} not 2xx/3xx), ${cpu}s CPU, $rate requests per CPU-second"
        engine_profile_run "templated" "$WORK/templated.ron"
        templated_rates+=("$RATE")
        # shellcheck disable=SC2086
        read -r cpu _ < <(measure "${PRIO[@]}" taskset -c 0 "$ENGINE" run --url "${URL}json/1" --cores 1 --users 50 \
            --duration "$DURATION" --quiet --out "$WORK/runs" $ENGINE_ARGS)
        n=$(awk '/ samples, / {print $1}' "$BENCH_OUT")
        rate=$(python3 -c "print(round($n / $cpu))")
        static_rates+=("$rate")
        echo "round $round: static $n requests, ${cpu}s CPU, $rate requests per CPU-second"
        rm -rf "$WORK/runs"
        engine_profile_run "scenario" "$WORK/scenario.ron"
        scenario_rates+=("$RATE")
    done
    wrk_lua_med=$(median "${wrk_lua_rates[@]}")
    templated_med=$(median "${templated_rates[@]}")
    static_med=$(median "${static_rates[@]}")
    scenario_med=$(median "${scenario_rates[@]}")
    round_ratios=()
    for i in "${!wrk_lua_rates[@]}"; do
        round_ratios+=("$(python3 -c "print(f'{${templated_rates[$i]} / ${wrk_lua_rates[$i]}:.3f}')")")
    done
    echo "median: wrk -s templated.lua $wrk_lua_med, templated $templated_med, static $static_med, scenario $scenario_med requests per client CPU-second"
    echo "per-round templated/wrk-lua: ${round_ratios[*]}; median $(median "${round_ratios[@]}")"
    echo "templated_vs_wrk=$(python3 -c "print(f'{$templated_med / $wrk_lua_med:.3f}')")"
    echo "scenario_vs_static=$(python3 -c "print(f'{$scenario_med / $static_med:.3f}')")"
fi

if [ "${SKIP_MEMORY:-0}" != 1 ]; then
    # Idle users: each makes one request, which sets a session cookie (so every user's cookie jar holds
    # one), then thinks for an hour. Resident memory beyond a one-user run, divided by the extra users.
    idle_profile() {
        cat > "$WORK/idle.ron" <<RON
(name: "idle", host: "http://127.0.0.1:$PORT", load: Closed(users: $1, spawn_rate: 5000.0, duration: "6s"),
 users: [(wait: Constant("1h"), tasks: [(requests: [(path: "/cookie")])])])
RON
    }
    idle_profile 1
    read -r _ base_kib < <(measure taskset -c 0 "$ENGINE" run "$WORK/idle.ron" --cores 1 --quiet --out "$WORK/runs")
    idle_profile "$IDLE_USERS"
    read -r _ idle_kib < <(measure taskset -c 0 "$ENGINE" run "$WORK/idle.ron" --cores 1 --quiet --out "$WORK/runs")
    per_user=$(python3 -c "print(round(($idle_kib - $base_kib) * 1024 / ($IDLE_USERS - 1)))")
    echo "idle users: $IDLE_USERS users peak RSS ${idle_kib} KiB, 1 user ${base_kib} KiB: $per_user bytes per user"
    echo "bytes_per_idle_user=$per_user"
fi

echo "engine_vs_wrk=$(python3 -c "print(f'{$engine_med / $wrk_med:.2f}')")"
