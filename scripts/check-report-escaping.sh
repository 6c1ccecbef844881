#!/usr/bin/env bash
# Runs the engine with hostile text (request names, profile name, check messages) and secrets, renders
# the reports, and checks them end to end (issue 9):
#   1. no secret value appears in the run directory, the console or any report;
#   2. opened in headless Chromium, the HTML report runs none of the hostile payloads.
# A control page with the same payloads unescaped proves that Chromium here does run them.
#
# Needs the Debian package `chromium`. Not part of `cargo test`, which cannot assume a browser.
# Usage: scripts/check-report-escaping.sh          (exit 0 when every check passes)
set -euo pipefail
cd "$(dirname "$0")/.."

chromium=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $chromium ]]; then
    echo "chromium not found: apt-get install chromium" >&2
    exit 2
fi

cargo build --quiet --bin engine --bin analyzer
engine=target/debug/engine
analyzer=target/debug/analyzer

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Each payload, if it ever ran, marks the page: the title, or a data-pwned attribute on <body>.
script_payload="<script>document.title='PWNED-script'</script>"
img_payload="\\\"><img src=x onerror=\\\"document.body.setAttribute('data-pwned','img')\\\">"
svg_payload="<svg onload=\\\"document.body.setAttribute('data-pwned','svg')\\\"></svg>"

cat >"$tmp/hostile.ron" <<EOF
(
    name: "hostile $img_payload",
    host: "embedded",
    secrets: {"api_key": "\${REPORT_CHECK_KEY}"},
    headers: {"Authorization": "Bearer tok-literal-8086"},
    load: Closed(users: 2, duration: "2s"),
    users: [(auth: Basic(user: "ann", password: "basic-literal-6502"), tasks: [(requests: [
        (path: "/", name: "$script_payload"),
        (path: "/items/1", name: "$img_payload", checks: [BodyContains("$svg_payload")]),
        (path: "/status/500", name: "$svg_payload", headers: {"X-Api-Key": "\${api_key}"}),
    ])])],
)
EOF

REPORT_CHECK_KEY=sk-env-secret-1234 "$engine" run "$tmp/hostile.ron" --out "$tmp/runs" \
    >"$tmp/engine.stdout" 2>"$tmp/engine.stderr"
run=$(tail -n 1 "$tmp/engine.stdout")
"$analyzer" report "$run" --format html,md,json >"$tmp/analyzer.stdout" 2>"$tmp/analyzer.stderr"

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# 1. Secrets: nowhere in the run directory, the reports or the console output.
for secret in sk-env-secret-1234 tok-literal-8086 basic-literal-6502 YW5uOmJhc2ljLWxpdGVyYWwtNjUwMg; do
    if grep -rl --binary-files=text -- "$secret" "$run" "$tmp"/*.stdout "$tmp"/*.stderr; then
        fail "secret $secret found in the files above"
    fi
done
# The payloads did reach the reports (as text), so the next check is not vacuous.
grep -q "PWNED-script" "$run/report.html" || fail "the script payload is not in the report at all"
grep -q "data-pwned" "$run/report.html" || fail "the attribute payloads are not in the report at all"

# 2. Chromium: load the report with scripts enabled and look at the DOM after load.
dump() {
    timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --virtual-time-budget=3000 \
        --dump-dom "file://$1" 2>/dev/null
}
# The control: the same payloads unescaped must fire, or this check proves nothing.
cat >"$tmp/control.html" <<EOF
<!doctype html><html><head><title>control</title></head><body>
<p>${script_payload}</p><p><img src=x onerror="document.body.setAttribute('data-pwned','img')"></p>
</body></html>
EOF
control=$(dump "$tmp/control.html")
grep -q "<title>PWNED-script</title>" <<<"$control" || fail "control: Chromium did not run the script payload"
grep -q 'data-pwned="img"' <<<"$control" || fail "control: Chromium did not run the onerror payload"

dom=$(dump "$run/report.html")
[[ -n $dom ]] || fail "Chromium rendered nothing"
if grep -q "<title>PWNED" <<<"$dom"; then fail "a script payload ran in the report"; fi
if grep -q 'data-pwned="' <<<"$dom"; then fail "an event-handler payload ran in the report"; fi
# The report's own script did run (it is what makes tables sortable), so scripts were enabled.
title=$(grep -o "<title>[^<]*</title>" <<<"$dom" | head -n 1)
echo "report title after load: $title"

if ((failures > 0)); then
    echo "$failures check(s) failed; run directory kept in $tmp" >&2
    trap - EXIT
    exit 1
fi
echo "ok: no secret in $(find "$run" -type f | wc -l) files or the console; no payload ran in Chromium (control payloads did)"
