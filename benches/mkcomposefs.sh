#!/usr/bin/env bash
# Benchmark `cfsgate mkcomposefs` on a copy of /usr and print a markdown table.
#
# Runs (each once, page cache warm — dropping caches is not possible everywhere):
#   - cfsgate mkcomposefs SRC IMG                      (no store)
#   - cfsgate mkcomposefs --threads=1 SRC IMG          (one hashing thread)
#   - cfsgate mkcomposefs --digest-store=EMPTY SRC IMG (copies every object, one syncfs)
#   - cfsgate mkcomposefs --digest-store=FULL SRC IMG  (same store again: nothing to copy)
#   - find SRC -type f -print0 | xargs -0 -P2 fsverity digest   (reference: hashing only)
# with wall/user/sys time and peak RSS (`/usr/bin/time -f`, package `time`).
#
# Environment: SCRATCH (default /var/tmp/cfsgate-bench; the copy of /usr is made once and kept),
# SOURCE_TREE (default /usr), CFSGATE (a cfsgate binary; default: build target/release/cfsgate).
set -euo pipefail

SCRATCH=${SCRATCH:-/var/tmp/cfsgate-bench}
SOURCE_TREE=${SOURCE_TREE:-/usr}
cd "$(dirname "$0")/.."
if [[ -z "${CFSGATE:-}" ]]; then
    cargo build --release --bin cfsgate >&2
    CFSGATE=$PWD/target/release/cfsgate
fi
for tool in fsverity /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (Debian packages fsverity, time)" >&2; exit 1; }
done

mkdir -p "$SCRATCH"
SRC=$SCRATCH/tree
if [[ ! -e $SCRATCH/.copied ]]; then
    echo "copying $SOURCE_TREE to $SRC (once)..." >&2
    rm -rf "$SRC"
    cp -a "$SOURCE_TREE" "$SRC"
    touch "$SCRATCH/.copied"
fi
files=$(find "$SRC" -type f | wc -l)
entries=$(find "$SRC" | wc -l)
bytes=$(du -sb --apparent-size "$SRC" | cut -f1)

echo "warming the page cache..." >&2
find "$SRC" -type f -print0 | xargs -0 cat >/dev/null

timing=$(mktemp)
trap 'rm -f "$timing"' EXIT
rows=()
# measure LABEL CMD...: run CMD once, record "| LABEL | wall | user | sys | peak RSS |".
measure() {
    local label=$1
    shift
    echo "running: $label" >&2
    /usr/bin/time -f '%e %U %S %M' -o "$timing" "$@" >/dev/null
    read -r wall user sys rss_kib <"$timing"
    rows+=("| $label | $wall | $user | $sys | $((rss_kib / 1024)) |")
}

rm -rf "$SCRATCH/store" "$SCRATCH"/*.cfs
# The reference runs first and cfsgate right after it, on the same cache state.
measure "find -type f \| xargs -0 -P2 fsverity digest" \
    bash -c 'find "$1" -type f -print0 | xargs -0 -P2 fsverity digest' _ "$SRC"
measure "cfsgate mkcomposefs (no store)" "$CFSGATE" mkcomposefs "$SRC" "$SCRATCH/a.cfs"
measure "cfsgate mkcomposefs --threads=1" "$CFSGATE" mkcomposefs --threads=1 "$SRC" "$SCRATCH/b.cfs"
measure "cfsgate mkcomposefs --digest-store (empty store)" \
    "$CFSGATE" mkcomposefs --digest-store="$SCRATCH/store" "$SRC" "$SCRATCH/c.cfs"
measure "cfsgate mkcomposefs --digest-store (full store)" \
    "$CFSGATE" mkcomposefs --digest-store="$SCRATCH/store" "$SRC" "$SCRATCH/d.cfs"

same=yes
for f in b c d; do cmp -s "$SCRATCH/a.cfs" "$SCRATCH/$f.cfs" || same=no; done
objects=$(find "$SCRATCH/store" -type f | wc -l)
# The store doubles the data; drop it so the next run starts from the same state.
rm -rf "$SCRATCH/store"

echo "Source: copy of $SOURCE_TREE: $entries entries, $files regular files, $((bytes / 1048576)) MiB;" \
    "$(nproc) cores; page cache warmed (files larger than what it keeps are re-read from disk); each run once."
echo
echo "| run | wall s | user s | sys s | peak RSS MiB |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "Image: $(stat -c %s "$SCRATCH/a.cfs") bytes, fs-verity $("$CFSGATE" info measure-file "$SCRATCH/a.cfs");" \
    "identical across the four runs: $same. Store: $objects objects."
