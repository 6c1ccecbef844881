#!/usr/bin/env bash
# Checks `engine kube`'s manifests against the Kubernetes API's schemas, offline, for the oldest and
# the newest Kubernetes we support, and checks that a YAML 1.1 parser (PyYAML, as Kubernetes' own
# parser is) reads every bundled file back byte for byte.
#
#   scripts/validate-kube.sh            # CI runs this (.ci/run)
#
# The validator is the `kubernetes-validate` package from PyPI (pinned below), which ships the API's
# JSON schemas: no cluster and no network are needed once it is installed (where `unshare -n` works,
# it runs without a network to prove it). It checks structure and types, `--strict` rejects unknown
# fields; the semantic rules it cannot check (requests = limits, the failure policy, ...) are asserted
# by engine/tests/kube/. A deliberately broken manifest must fail, or the validator is not working.
#
# Environment: ENGINE (target/debug/engine, built if missing), VENV (target/kube-validate-venv).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ENGINE=${ENGINE:-$ROOT/target/debug/engine}
VENV=${VENV:-$ROOT/target/kube-validate-venv}
VALIDATOR_VERSION=1.37.0
# The oldest Kubernetes whose Jobs have everything the manifests use enabled by default
# (backoffLimitPerIndex, podFailurePolicy's FailIndex), and the newest the validator knows.
K8S_VERSIONS=(1.29.0 1.37.0)

if [ ! -x "$ENGINE" ]; then
    cargo build -p engine --locked --quiet
fi
if [ ! -x "$VENV/bin/kubernetes-validate" ] \
    || [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null)" != "$VALIDATOR_VERSION" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$VALIDATOR_VERSION"
fi
OFFLINE=()
if unshare -n true 2>/dev/null; then
    OFFLINE=(unshare -n)
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# The same profile naming its CA file by an absolute path, which the pods get mounted at that path.
cp -r engine/tests/data/kube "$OUT/abs"
sed -i "s|ca_file: \"ca.pem\"|ca_file: \"$OUT/abs/ca.pem\"|" "$OUT/abs/tricky.ron"

render() {
    local name=$1
    shift
    "$ENGINE" kube --image registry.example/stampede-engine:0.1 --out "$OUT/$name.yaml" "$@" 2>"$OUT/$name.err" || {
        cat "$OUT/$name.err" >&2
        echo "engine kube failed for $name" >&2
        exit 1
    }
}
render closed profiles/demo.ron --shards 3 --cores 2 --namespace load --run-id demo-1
render open profiles/open.ron --shards 4 --seccomp unconfined --one-per-node --no-collector -- --rate 20000
render feeders profiles/data-driven.ron --shards 2 --create-pvc 20Gi --storage-class nfs-client \
    --results pvc:shared-results --node-selector pool=load --toleration dedicated=load:NoSchedule
render https-ca engine/tests/data/kube/tricky.ron --shards 2 --secret shop-api --seccomp localhost:profiles/io-uring.json
render absolute-ca "$OUT/abs/tricky.ron" --shards 2
render auth profiles/auth.ron --shards 2 --memory 1Gi --ttl 2h

failed=0
for f in "$OUT"/*.yaml; do
    for k in "${K8S_VERSIONS[@]}"; do
        if ! "${OFFLINE[@]}" "$VENV/bin/kubernetes-validate" --strict --quiet -k "$k" "$f"; then
            echo "INVALID: $(basename "$f") against Kubernetes $k" >&2
            failed=1
        fi
    done
done

# Every bundled file, read back by a YAML 1.1 parser through the volume's key-to-path items, is the
# file on disk, byte for byte (UTF-8 in `data`, anything else base64 in `binaryData`).
"$VENV/bin/python" - "$OUT" <<'PY' || failed=1
import base64, os, sys, yaml
out = sys.argv[1]
sources = {
    "closed": "profiles", "open": "profiles", "feeders": "profiles", "auth": "profiles",
    "https-ca": "engine/tests/data/kube", "absolute-ca": os.path.join(out, "abs"),
}
checked = 0
for name, base in sources.items():
    docs = list(yaml.safe_load_all(open(os.path.join(out, name + ".yaml"), encoding="utf-8")))
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    job = next(d for d in docs if d["kind"] == "Job"
               and d["metadata"]["labels"]["app.kubernetes.io/component"] == "load-generator")
    pod = job["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        if "configMap" not in volume:
            continue
        for item in volume["configMap"]["items"]:
            key = item["key"]
            if key in cm.get("data", {}):
                got = cm["data"][key].encode("utf-8")
            else:
                got = base64.b64decode(cm["binaryData"][key])
            if volume["name"] == "profile":
                path = os.path.join(base, item["path"])
            else:
                mount = next(m for c in pod["containers"] for m in c["volumeMounts"]
                             if m.get("subPath") == item["path"])
                path = mount["mountPath"]
            want = open(path, "rb").read()
            if got != want:
                print(f"{name}: {path} does not read back as written ({len(got)} vs {len(want)} bytes)")
                sys.exit(1)
            checked += 1
    args = pod["containers"][0]["args"]
    assert all(isinstance(a, str) for a in args), args
print(f"{checked} bundled files read back exactly")
PY

# The validator must reject a broken manifest, or the checks above prove nothing.
sed 's/^  completionMode: Indexed$/  completionMode: 7/; s/^  parallelism: /  parallelizm: /' \
    "$OUT/closed.yaml" >"$OUT/broken.yaml.bad"
if grep -q parallelizm "$OUT/broken.yaml.bad" \
    && "${OFFLINE[@]}" "$VENV/bin/kubernetes-validate" --strict --quiet -k "${K8S_VERSIONS[0]}" "$OUT/broken.yaml.bad" >/dev/null 2>&1; then
    echo "the validator accepted a broken manifest" >&2
    failed=1
fi

if [ "$failed" != 0 ]; then
    exit 1
fi
echo "engine kube manifests: $(ls "$OUT"/*.yaml | wc -l) valid against Kubernetes ${K8S_VERSIONS[*]} (kubernetes-validate $VALIDATOR_VERSION, --strict${OFFLINE:+, offline})"
