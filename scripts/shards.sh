#!/usr/bin/env bash
# One test as N shards on this machine, started the way a Kubernetes Indexed Job (or a hand-run SSH
# loop) starts them: N engine processes, each with its own index, the same --start-at a few seconds
# ahead and the same --run-id, against one target on loopback. Then it checks, from the target's own
# account, that the shards add up to one test:
#
#   closed model   the target's request count equals the sum of the shards' samples; no row of a
#                  `Unique` feeder was sent by two users; the shards' first requests reached the
#                  target within a few milliseconds of each other (printed, and checked against SPREAD_MS)
#   open model     the target's count equals the shards' samples, and is within 0.5 % of rate x duration
#
#   scripts/shards.sh                  # 3 shards of 1 core each
#   SHARDS=4 CORES=2 scripts/shards.sh
#
# The target is a small Python HTTP/1.1 server on one asyncio loop (scripts/lib/shard_target.py), so
# that its counts are independent of the engine. Environment: SHARDS (3), CORES (1), LEAD (start this many seconds ahead,
# 5), SPREAD_MS (10), ENGINE (target/release/engine). Only 127.0.0.1 is used; every engine runs under
# `timeout`, and the target is stopped on exit. Prints one line per check and exits non-zero if any
# fails.
set -euo pipefail

SHARDS=${SHARDS:-3}
CORES=${CORES:-1}
LEAD=${LEAD:-5}
SPREAD_MS=${SPREAD_MS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-$ROOT/target/release/engine}
[ -x "$ENGINE" ] || { echo "build the engine first: cargo build --release -p engine" >&2; exit 2; }
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 2; }

WORK=$(mktemp -d)
TARGET_PID=
cleanup() {
    if [ -n "$TARGET_PID" ]; then kill "$TARGET_PID" 2>/dev/null || true; wait "$TARGET_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
failed=0
check() { # check NAME CONDITION-TEXT RESULT(0/1)
    if [ "$3" = 0 ]; then echo "ok    $1: $2"; else echo "FAIL  $1: $2"; failed=1; fi
}

start_target() {
    local out
    out=$(mktemp -p "$WORK" target.XXXXXX)
    python3 "$ROOT/scripts/lib/shard_target.py" "$WORK/stats.json" > "$out" &
    TARGET_PID=$!
    for _ in $(seq 100); do
        ADDR=$(head -n1 "$out" 2>/dev/null || true)
        [ -n "$ADDR" ] && return 0
        sleep 0.05
    done
    echo "the target did not start" >&2
    exit 1
}

stop_target() {
    rm -f "$WORK/stats.json"
    kill -TERM "$TARGET_PID"
    wait "$TARGET_PID" || true
    TARGET_PID=
}

# run_shards NAME PROFILE: every shard of one test; sets SAMPLES (the shards' total) and START_NS.
run_shards() {
    local name=$1 profile=$2 pids=() i
    START_NS=$(( ($(date +%s) + LEAD) * 1000000000 ))
    local start
    start=$(date -u -d "@$((START_NS / 1000000000))" +%Y-%m-%dT%H:%M:%SZ)
    for ((i = 0; i < SHARDS; i++)); do
        timeout 120 "$ENGINE" run "$profile" --shard "$i/$SHARDS" --start-at "$start" --run-id "$name" \
            --cores "$CORES" --out "$WORK/runs" --quiet > "$WORK/$name-$i.out" 2> "$WORK/$name-$i.err" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            echo "shard $i of $name failed:" >&2
            cat "$WORK/$name-$i.err" >&2
            exit 1
        fi
    done
    SAMPLES=0
    for ((i = 0; i < SHARDS; i++)); do
        SAMPLES=$((SAMPLES + $(grep -oE '^[0-9]+ samples' "$WORK/$name-$i.out" | cut -d' ' -f1)))
    done
}

stat() { python3 -c "import json,sys; s=json.load(open('$WORK/stats.json')); print($1)"; }

echo "$SHARDS shards x $CORES core(s), starting $LEAD s ahead; engine $ENGINE"

# Closed model: more users than rows of a Unique feeder, think time so the Python target keeps up.
start_target
seq 0 29 | sed '1i id' > "$WORK/rows.csv"
cat > "$WORK/closed.ron" <<RON
(
    name: "shards-closed",
    host: "http://$ADDR",
    feeders: {"rows": (file: "rows.csv", order: Unique)},
    load: Closed(users: 36, duration: "3s"),
    users: [(cookies: false, wait: Constant("50ms"), tasks: [(requests: [
        (path: "/item", query: {"row": "{{rows.id}}", "user": "{{user_id()}}", "shard": "{{shard_id()}}"}),
    ])])],
)
RON
run_shards closed "$WORK/closed.ron"
stop_target
served=$(stat 's["count"]')
check "closed: requests" "target served $served, shards logged $SAMPLES" $([ "$served" = "$SAMPLES" ]; echo $?)
shared=$(stat 'sum(1 for u in s["users_of_row"].values() if len(u) > 1)')
rows=$(stat 'len(s["users_of_row"])')
check "closed: unique rows" "$rows rows used, $shared of them by more than one user" $([ "$shared" = 0 ] && [ "$rows" = 30 ]; echo $?)
firsts=$(stat '" ".join(f"{(t - '"$START_NS"') / 1e6:.1f}" for _, t in sorted(s["first_of_shard"].items(), key=lambda kv: int(kv[0])))')
spread=$(stat '(max(s["first_of_shard"].values()) - min(s["first_of_shard"].values())) / 1e6')
check "closed: start" "first requests reached the target ${firsts} ms after the start instant (spread ${spread} ms, limit ${SPREAD_MS} ms)" \
    $(python3 -c "import sys; sys.exit(0 if $spread < $SPREAD_MS else 1)"; echo $?)

# Open model: rate x duration arrivals over all shards.
start_target
cat > "$WORK/open.ron" <<RON
(
    name: "shards-open",
    host: "http://$ADDR",
    load: Open(rate: 400.0, duration: "3s", max_users: 60),
    users: [(cookies: false, tasks: [(requests: [(path: "/", query: {"shard": "{{shard_id()}}"})])])],
)
RON
run_shards open "$WORK/open.ron"
stop_target
served=$(stat 's["count"]')
check "open: requests" "target served $served, shards logged $SAMPLES" $([ "$served" = "$SAMPLES" ]; echo $?)
check "open: arrivals" "$served of 400/s x 3 s = 1200 (within 0.5 %: 1194..1206)" $([ "$served" -ge 1194 ] && [ "$served" -le 1206 ]; echo $?)

exit $failed
