#!/usr/bin/env bash
# What one scripted hook costs per call in each candidate embedded language, measured in the same run:
# Lua 5.4 (mlua, vendored, with the instruction-count hook that enforces a time budget), JavaScript
# (QuickJS through rquickjs, with its interrupt handler) and Rhai (pure Rust, with its operation
# limit). The hook is the same in each: read and update a per-user table, build a small string
# (a body to sign), return it to Rust. Each program also shows how the engine stops a runaway script
# and what a syntax error looks like, where the language reports them.
#
# The sources are in scripts/script-engines/; each is built as its own project in a temporary
# directory (nothing is added to the workspace), in release mode, and run ROUNDS times, alternating.
# Prints each round and the median per language, and its ratio to the fastest; the last line is
# machine-readable:
#   lua_ns=<ns> quickjs_ns=<ns> rhai_ns=<ns>
#
#   scripts/bench-script-engines.sh
#   ROUNDS=5 scripts/bench-script-engines.sh
#
# Environment: ROUNDS (3), BENCH_DIR (/tmp/stampede-bench-script-engines; delete it afterwards: each
# project's target directory is a few hundred MB).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/stampede-bench-script-engines}
SRC=scripts/script-engines

project() { # name, dependency line
    local dir="$BENCH_DIR/$1"
    mkdir -p "$dir/src"
    cp "$SRC/$1.rs" "$dir/src/main.rs"
    cat >"$dir/Cargo.toml" <<TOML
[package]
name = "bench-$1"
version = "0.1.0"
edition = "2024"

[dependencies]
$2

[profile.release]
debug = false
TOML
    (cd "$dir" && cargo build --release --quiet)
}

project lua 'mlua = { version = "0.10", features = ["lua54", "vendored"] }'
project quickjs 'rquickjs = { version = "0.9", default-features = false }'
project rhai 'rhai = { version = "1", default-features = false, features = ["std", "only_i64", "no_float"] }'

declare -A all
for round in $(seq 1 "$ROUNDS"); do
    line="round $round:"
    for lang in lua quickjs rhai; do
        out=$("$BENCH_DIR/$lang/target/release/bench-$lang")
        ns=$(sed -n 's/^hook call: \([0-9]*\) ns.*/\1/p' <<<"$out")
        all[$lang]+="$ns "
        line+=" $lang=${ns}ns"
    done
    echo "$line"
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
lua=$(median <<<"${all[lua]}")
quickjs=$(median <<<"${all[quickjs]}")
rhai=$(median <<<"${all[rhai]}")
best=$(printf '%s\n' "$lua" "$quickjs" "$rhai" | sort -n | head -1)
for lang in lua quickjs rhai; do
    v=${!lang}
    awk -v l="$lang" -v v="$v" -v b="$best" 'BEGIN {printf "%-8s median %5d ns/call  %.2fx the fastest\n", l, v, v / b}'
done
"$BENCH_DIR/lua/target/release/bench-lua" | tail -2
"$BENCH_DIR/rhai/target/release/bench-rhai" | tail -2
echo "lua_ns=$lua quickjs_ns=$quickjs rhai_ns=$rhai"
