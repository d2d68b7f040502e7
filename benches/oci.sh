#!/usr/bin/env bash
# OCI benchmark: a Debian bookworm minbase rootfs (debootstrap, made once) packed by
# `umoci insert` into an OCI layout (one gzip layer), then
#   - `cfsgate import` into an empty repository, and again into the full one (nothing new),
#   - `cfsgate compute-id` alone (hash everything, write nothing),
#   - `cfsgate seal` into the same layout,
#   - baseline: `umoci unpack` of the same image (decompress and write the rootfs).
# Each row: wall time and peak RSS (`/usr/bin/time -f '%e %M'`), after a `sync`; page cache warm.
#
# Environment: WORK (default /var/tmp/cfsgate-oci-bench), CFSGATE (default
# target/release/cfsgate, built here; it must have the import, compute-id and seal commands),
# ROOTFS (an existing rootfs to pack instead of running debootstrap).
# Needs root, umoci, and debootstrap with the Debian archive reachable unless ROOTFS is given.
# Output: a markdown table on stdout (paste it into benches/OCI-RESULTS.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/cfsgate-oci-bench}
mkdir -p "$WORK"
if [ -z "${CFSGATE:-}" ]; then
    (cd "$ROOT" && cargo build --quiet --release --bin cfsgate)
    CFSGATE="${CARGO_TARGET_DIR:-$ROOT/target}/release/cfsgate"
fi

if [ -z "${ROOTFS:-}" ]; then
    ROOTFS=$WORK/rootfs
    if [ ! -e "$WORK/rootfs.done" ]; then
        rm -rf "$ROOTFS"
        start=$SECONDS
        debootstrap --variant=minbase bookworm "$ROOTFS" > "$WORK/debootstrap.log" 2>&1
        echo "debootstrap: $((SECONDS - start)) s" >&2
        touch "$WORK/rootfs.done"
    fi
fi
LAYOUT=$WORK/layout
if [ ! -e "$WORK/layout.done" ]; then
    rm -rf "$LAYOUT"
    umoci init --layout "$LAYOUT"
    umoci new --image "$LAYOUT:bookworm"
    umoci insert --image "$LAYOUT:bookworm" "$ROOTFS" /
    umoci gc --layout "$LAYOUT"
    touch "$WORK/layout.done"
fi
REF="oci:$LAYOUT:bookworm"
REPO=$WORK/repo
rm -rf "$REPO" "$WORK/bundle"

# timed NAME CMD...: run CMD, record "NAME seconds peak_kib" in $WORK/times.
: > "$WORK/times"
timed() {
    local name=$1
    shift
    sync # the previous step's writeback must not be billed to this one
    /usr/bin/time -o "$WORK/time.out" -f '%e %M' "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || {
        echo "oci.sh: $name failed:" >&2
        cat "$WORK/$name.err" >&2
        exit 1
    }
    echo "$name $(cat "$WORK/time.out")" >> "$WORK/times"
}

timed umoci-unpack umoci unpack --image "$LAYOUT:bookworm" "$WORK/bundle"
rm -rf "$WORK/bundle"
timed import-empty "$CFSGATE" --repo "$REPO" import "$REF" --ref bookworm
DIGEST=$(cat "$WORK/import-empty.out")
OBJECTS=$(find "$REPO/objects" -type f | wc -l)
REPO_BYTES=$(du -sb "$REPO" | cut -f1)
timed import-again "$CFSGATE" --repo "$REPO" import "$REF" --ref bookworm
[ "$(cat "$WORK/import-again.out")" = "$DIGEST" ] || { echo "oci.sh: second import gave another digest" >&2; exit 1; }
[ "$(du -sb "$REPO" | cut -f1)" = "$REPO_BYTES" ] || { echo "oci.sh: second import stored something" >&2; exit 1; }
timed compute-id "$CFSGATE" compute-id "$REF"
[ "$(cat "$WORK/compute-id.out")" = "$DIGEST" ] || { echo "oci.sh: compute-id differs from import" >&2; exit 1; }
timed seal "$CFSGATE" seal "$REF" "$LAYOUT" --tag bookworm-sealed

LAYER_BYTES=$(jq -r '[.layers[].size] | add' "$LAYOUT/blobs/sha256/$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="bookworm") | .digest' "$LAYOUT/index.json" | cut -d: -f2)")
ROOTFS_BYTES=$(du -sb --apparent-size "$ROOTFS" | cut -f1)
row() {
    local name=$1 what=$2
    read -r _ secs kib < <(grep "^$name " "$WORK/times")
    printf '| %s | %s | %s | %s |\n' "$name" "$what" "$secs" "$((kib / 1024))"
}
echo "Debian bookworm minbase: rootfs $((ROOTFS_BYTES / 1048576)) MiB, one gzip layer of $((LAYER_BYTES / 1048576)) MiB; $OBJECTS objects; image sha256:$DIGEST"
echo
echo "| step | what | wall s | peak RSS MiB |"
echo "|---|---|---|---|"
row umoci-unpack "baseline: umoci unpack (decompress, write the rootfs)"
row import-empty "cfsgate import into an empty repository"
row import-again "cfsgate import again (every object present)"
row compute-id "cfsgate compute-id (hash only, nothing written)"
row seal "cfsgate seal into the same layout"
