#!/usr/bin/env bash
# Object-store benchmark: `cfsgate create` of a /usr copy into an empty repository and again into
# the full one (every object already present), then `fsck`, `gc` with nothing to collect, and
# `gc` after removing the ref (everything collected). Wall time and peak RSS of each command
# (`/usr/bin/time -f '%e %M'`), plus the repository's size, against a baseline: `cp -a` of the
# same tree followed by `sync` (compare the imports), and `rm -rf` of that copy (compare gc-all).
#
# Environment: SRC (default: a copy of /usr made once at $WORK/usr with `cp -a`, so the source
# does not change under the import; a copy made by the fromdir benchmark is used if FROMDIR_COPY
# names one), WORK (default /var/tmp/cfsgate-store-bench), CFSGATE (default
# target/release/cfsgate, built here). Page cache is warm (the copy was just read or written):
# the numbers are CPU- and fs-bound, not disk-bound.
# Output: markdown tables on stdout (paste them into benches/STORE-RESULTS.md): every step, then
# the imports' ratios to their yardsticks (cp -a + sync; the no-store `mkcomposefs` build).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/cfsgate-store-bench}
mkdir -p "$WORK"
if [ -z "${CFSGATE:-}" ]; then
    (cd "$ROOT" && cargo build --quiet --release --bin cfsgate)
    CFSGATE="${CARGO_TARGET_DIR:-$ROOT/target}/release/cfsgate"
fi
if [ -z "${SRC:-}" ]; then
    if [ -n "${FROMDIR_COPY:-}" ] && [ -d "$FROMDIR_COPY" ]; then
        SRC=$FROMDIR_COPY
    else
        SRC=$WORK/usr
        if [ ! -e "$WORK/usr.done" ]; then
            rm -rf "$SRC"
            cp -a /usr "$SRC"
            touch "$WORK/usr.done"
        fi
    fi
fi
REPO=$WORK/repo
rm -rf "$REPO"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

FILES=$(find "$SRC" -xdev | wc -l)
SRC_BYTES=$(du -sb --apparent-size "$SRC" | cut -f1)

# timed NAME CMD...: run CMD, record "NAME seconds peak_kib" in $WORK/times.
: > "$WORK/times"
timed() {
    local name=$1
    shift
    sync # the previous step's writeback must not be billed to this one
    /usr/bin/time -o "$WORK/time.out" -f '%e %M' "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || {
        echo "store.sh: $name failed:" >&2
        cat "$WORK/$name.err" >&2
        exit 1
    }
    echo "$name $(cat "$WORK/time.out")" >> "$WORK/times"
}

# Baseline: a plain copy of the same tree, made durable (what an import must at least do).
timed cp-baseline bash -c 'cp -a "$1" "$2" && sync' _ "$SRC" "$WORK/cp-baseline"
timed rm-baseline rm -rf "$WORK/cp-baseline" # what deleting that many files costs (compare gc-all)
# The no-store build of the same tree (what a full store's import is compared with).
timed nostore-build "$CFSGATE" mkcomposefs "$SRC" "$WORK/nostore.cfs"
timed import-empty "$CFSGATE" --repo "$REPO" create "$SRC" --ref usr
DIGEST=$(cat "$WORK/import-empty.out")
OBJECTS=$(find "$REPO/objects" -type f | wc -l)
OBJ_BYTES=$(du -sb --apparent-size "$REPO/objects" | cut -f1)
IMG_BYTES=$(stat -c %s "$REPO/images/$DIGEST")
timed import-full "$CFSGATE" --repo "$REPO" create "$SRC" --ref usr2
[ "$(cat "$WORK/import-full.out")" = "$DIGEST" ] || { echo "store.sh: re-import gave another digest" >&2; exit 1; }
timed fsck "$CFSGATE" --repo "$REPO" fsck
timed gc-nothing "$CFSGATE" --repo "$REPO" gc
"$CFSGATE" --repo "$REPO" rm usr
"$CFSGATE" --repo "$REPO" rm usr2
timed gc-all "$CFSGATE" --repo "$REPO" gc
LEFT=$(find "$REPO/objects" "$REPO/images" -type f | wc -l)

echo "Source: $SRC — $FILES entries, $SRC_BYTES bytes; $(nproc) cores; $(stat -f -c %T "$REPO") file system."
echo "Repository after import: $OBJECTS objects, $OBJ_BYTES bytes; image $IMG_BYTES bytes ($DIGEST)."
echo "Files left after the final gc: $LEFT."
echo
echo "| step | wall s | peak RSS MiB | MB/s of source |"
echo "|---|---:|---:|---:|"
while read -r name secs kib; do
    rate=$(awk -v b="$SRC_BYTES" -v s="$secs" 'BEGIN { if (s > 0) printf "%.0f", b / s / 1e6; else print "-" }')
    case $name in import-*|fsck|cp-baseline|nostore-build) ;; *) rate="-" ;; esac
    echo "| $name | $secs | $(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }') | $rate |"
done < "$WORK/times"
echo
echo "gc-all output: $(cat "$WORK/gc-all.out")"
echo
# Ratios to the yardsticks of this run (#20: an empty store at least 1.5x faster than cp -a +
# sync, i.e. ratio <= 0.67; a full store at most 1.2x the no-store build).
secs() { awk -v n="$1" '$1 == n { print $2 }' "$WORK/times"; }
echo "| import | wall s | yardstick | yardstick s | ratio | target | met |"
echo "|---|---:|---|---:|---:|---|---|"
awk -v a="$(secs import-empty)" -v b="$(secs cp-baseline)" 'BEGIN { r = a / b;
    printf "| into an empty store | %s | cp -a + sync | %s | %.2f | <= 0.67 | %s |\n", a, b, r, (r <= 0.667 ? "yes" : "no") }'
awk -v a="$(secs import-full)" -v b="$(secs nostore-build)" 'BEGIN { r = a / b;
    printf "| into the full store | %s | mkcomposefs, no store | %s | %.2f | <= 1.2 | %s |\n", a, b, r, (r <= 1.2 ? "yes" : "no") }'
echo
echo "load average: $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after; $(nproc) CPUs"
