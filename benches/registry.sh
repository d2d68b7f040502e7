#!/usr/bin/env bash
# Registry benchmark: `cfsgate pull` against `skopeo copy docker://… oci:` (the yardstick),
# both from the same local registry (Debian's docker-registry 2.8.2 on 127.0.0.1, plain HTTP,
# unpacked by scripts/registry-setup), for an image of about SIZE_MIB MiB (default 500) made
# by umoci: four gzip layers of incompressible files (so layer bytes ≈ file bytes).
#   - skopeo: download and store the blobs (checks digests), nothing else;
#   - cfsgate pull: download and verify the blobs into the repository, then decompress every
#     layer, store every file as an object and write the composefs image (an import);
#   - cfsgate pull again into the same repository (every layer present: import only);
#   - sha256sum over the layer blobs: the machine's hashing speed, for scale.
# RUNS runs of each (default 3), each into an empty destination after a `sync`; page cache
# warm; the median is reported, and the ratio cfsgate/skopeo of the medians.
#
# Environment: WORK (default /var/tmp/cfsgate-registry-bench), SIZE_MIB, RUNS, CFSGATE
# (default target/release/cfsgate, built here). Needs root, umoci, skopeo.
# Output: a markdown table on stdout (paste it into benches/REGISTRY-RESULTS.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/cfsgate-registry-bench}
SIZE_MIB=${SIZE_MIB:-500}
RUNS=${RUNS:-3}
mkdir -p "$WORK"
if [ -z "${CFSGATE:-}" ]; then
    (cd "$ROOT" && cargo build --quiet --release --bin cfsgate)
    CFSGATE="$ROOT/target/release/cfsgate"
fi
REGISTRY_BIN=$("$ROOT/scripts/registry-setup")

# The image: four layers of SIZE_MIB/4 MiB each, 1 MiB files of random bytes.
LAYOUT=$WORK/layout
if [ ! -e "$WORK/layout-$SIZE_MIB.done" ]; then
    rm -rf "$LAYOUT" "$WORK/bundle" "$WORK"/layout-*.done
    umoci init --layout "$LAYOUT"
    umoci new --image "$LAYOUT:big"
    umoci unpack --image "$LAYOUT:big" "$WORK/bundle"
    per_layer=$((SIZE_MIB / 4))
    for layer in 1 2 3 4; do
        mkdir -p "$WORK/bundle/rootfs/data/l$layer"
        for i in $(seq 1 "$per_layer"); do
            head -c 1048576 /dev/urandom > "$WORK/bundle/rootfs/data/l$layer/f$i"
        done
        umoci repack --image "$LAYOUT:big" "$WORK/bundle"
    done
    touch "$WORK/layout-$SIZE_MIB.done"
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$WORK/storage"
cat > "$WORK/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/storage}}
http: {addr: 127.0.0.1:$PORT}
EOF
"$REGISTRY_BIN" serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
trap 'kill $REGISTRY_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break
    sleep 0.1
done
IMAGE="docker://127.0.0.1:$PORT/bench/big:v1"
skopeo copy --quiet --dest-tls-verify=false "oci:$LAYOUT:big" "$IMAGE"
LAYER_BYTES=$(skopeo inspect --raw --tls-verify=false "$IMAGE" | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')

# seconds of one command (wall), after a sync
timed() {
    sync
    local start end
    start=$(date +%s.%N)
    "$@" > /dev/null 2>> "$WORK/commands.log"
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

skopeo_t=(); pull_t=(); again_t=(); hash_t=()
for run in $(seq 1 "$RUNS"); do
    rm -rf "$WORK/skopeo-out" "$WORK/repo"
    skopeo_t+=("$(timed skopeo copy --quiet --src-tls-verify=false "$IMAGE" "oci:$WORK/skopeo-out:v1")")
    pull_t+=("$(timed "$CFSGATE" --repo "$WORK/repo" pull --tls-verify=false "$IMAGE")")
    again_t+=("$(timed "$CFSGATE" --repo "$WORK/repo" pull --tls-verify=false "$IMAGE")")
    hash_t+=("$(timed sh -c "cat $WORK/skopeo-out/blobs/sha256/* | sha256sum")")
    echo "run $run: skopeo ${skopeo_t[-1]} s, pull ${pull_t[-1]} s, pull again ${again_t[-1]} s, sha256 ${hash_t[-1]} s" >&2
done
S=$(median "${skopeo_t[@]}"); P=$(median "${pull_t[@]}"); A=$(median "${again_t[@]}"); H=$(median "${hash_t[@]}")
MIB=$(python3 -c "print(f'{$LAYER_BYTES / 1048576:.0f}')")
cat <<EOF
Image: $MIB MiB of layer blobs (4 gzip layers of 1 MiB random files, umoci repack), registry docker-registry 2.8.2 on 127.0.0.1 (plain HTTP); $RUNS runs, medians; cfsgate $(git -C "$ROOT" rev-parse --short HEAD).

| step | what | median s | runs s | ratio to skopeo |
|---|---|---|---|---|
| skopeo | yardstick: skopeo copy docker://… oci: (download, check digests, store blobs) | $S | ${skopeo_t[*]} | 1.00 |
| pull | cfsgate pull into an empty repository (download + verify + import: objects and composefs image) | $P | ${pull_t[*]} | $(python3 -c "print(f'{$P / $S:.2f}')") |
| pull-again | cfsgate pull again (layers present: no download, import only) | $A | ${again_t[*]} | $(python3 -c "print(f'{$A / $S:.2f}')") |
| sha256 | scale: sha256sum of the layer blobs ($(python3 -c "print(f'{$LAYER_BYTES / 1048576 / max($H, 0.01):.0f}')") MiB/s) | $H | ${hash_t[*]} | $(python3 -c "print(f'{$H / $S:.2f}')") |
EOF
