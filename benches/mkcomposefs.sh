#!/usr/bin/env bash
# Benchmark `cfsgate mkcomposefs` from a directory against yardsticks measured in the same run,
# and print a markdown report.
#
# Tree: copies of /usr/lib and /usr/share (made once under SCRATCH and kept), page cache warm.
# Yardsticks, same run:
#   - the SHA-256 limit of the cores: `openssl speed -evp sha256 -bytes 4096 -multi $(nproc)`
#     (4096-byte blocks are what fs-verity hashes), as seconds for the tree's bytes;
#   - `find -type f -print0 | xargs -0 -P$(nproc) fsverity digest` (hashing only, no image);
#   - CFSGATE_BASELINE, when given (e.g. an older cfsgate binary), the same command.
# Runs alternate (fsverity, cfsgate, baseline, fsverity, ...) RUNS times (default 3); the table
# gives the median wall time, its ratio to the SHA-256 limit and to fsverity digest, CPU time
# (user + sys, less disturbed than wall by other load) and peak RSS. `uptime` before and after
# says how loaded the machine was. Upstream `mkcomposefs` is included when UPSTREAM_MKCOMPOSEFS
# names a runnable binary (Debian's composefs 1.0.8 needs glibc >= 2.38, newer than bookworm's).
#
# Environment: SCRATCH (default /var/tmp/cfsgate-bench), RUNS, CFSGATE (default: build
# target/release/cfsgate), CFSGATE_BASELINE, UPSTREAM_MKCOMPOSEFS.
set -euo pipefail

SCRATCH=${SCRATCH:-/var/tmp/cfsgate-bench}
RUNS=${RUNS:-3}
cd "$(dirname "$0")/.."
if [[ -z "${CFSGATE:-}" ]]; then
    cargo build --release --bin cfsgate >&2
    CFSGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/cfsgate
fi
for tool in fsverity openssl /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (Debian packages fsverity, openssl, time)" >&2; exit 1; }
done

mkdir -p "$SCRATCH"
SRC=$SCRATCH/tree
if [[ ! -e $SCRATCH/.copied ]]; then
    echo "copying /usr/lib and /usr/share to $SRC (once)..." >&2
    rm -rf "$SRC"
    mkdir -p "$SRC"
    cp -a /usr/lib "$SRC/lib"
    cp -a /usr/share "$SRC/share"
    touch "$SCRATCH/.copied"
fi
files=$(find "$SRC" -type f | wc -l)
bytes=$(du -sb --apparent-size "$SRC" | cut -f1)
cores=$(nproc)
load_before=$(uptime)

echo "warming the page cache..." >&2
find "$SRC" -type f -print0 | xargs -0 cat >/dev/null

# SHA-256 limit: bytes per second of all cores on 4096-byte blocks (openssl prints kB/s).
sha_kbs=$(openssl speed -evp sha256 -bytes 4096 -seconds 3 -multi "$cores" 2>/dev/null |
    awk '/^sha256/ {print $2}' | tr -d k | tail -1)
limit_s=$(awk -v b="$bytes" -v k="$sha_kbs" 'BEGIN {printf "%.2f", b / (k * 1000)}')

timing=$(mktemp)
trap 'rm -f "$timing"' EXIT
declare -A walls cpus rss
# measure KEY CMD...: run once, append wall time, CPU time and peak RSS to KEY's lists.
measure() {
    local key=$1
    shift
    echo "running: $key" >&2
    /usr/bin/time -f '%e %U %S %M' -o "$timing" "$@" >/dev/null
    read -r wall user sys rss_kib <"$timing"
    walls[$key]+="$wall "
    cpus[$key]+="$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') "
    rss[$key]=$((rss_kib / 1024))
}
keys=("fsverity digest -P$cores" "cfsgate mkcomposefs")
[[ -n "${CFSGATE_BASELINE:-}" ]] && keys+=("baseline mkcomposefs")
[[ -n "${UPSTREAM_MKCOMPOSEFS:-}" ]] && keys+=("upstream mkcomposefs")
for _ in $(seq "$RUNS"); do
    measure "${keys[0]}" bash -c 'find "$1" -type f -print0 | xargs -0 -P"$2" fsverity digest' _ "$SRC" "$cores"
    measure "cfsgate mkcomposefs" "$CFSGATE" mkcomposefs "$SRC" "$SCRATCH/a.cfs"
    [[ -n "${CFSGATE_BASELINE:-}" ]] && measure "baseline mkcomposefs" "$CFSGATE_BASELINE" mkcomposefs "$SRC" "$SCRATCH/b.cfs"
    [[ -n "${UPSTREAM_MKCOMPOSEFS:-}" ]] && measure "upstream mkcomposefs" "$UPSTREAM_MKCOMPOSEFS" "$SRC" "$SCRATCH/u.cfs"
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fsv=$(echo "${walls[${keys[0]}]}" | median)

echo "Tree: copies of /usr/lib and /usr/share, $files regular files, $((bytes / 1000000)) MB; $cores cores;" \
    "page cache warm; $RUNS alternating runs each, median wall."
echo "SHA-256 limit: openssl speed -evp sha256 -bytes 4096 -multi $cores = $((${sha_kbs%.*} / 1000)) MB/s → $limit_s s for the tree."
echo "Load before: $load_before"
echo "Load after:  $(uptime)"
echo
echo "| run | median wall s | × SHA-256 limit | × fsverity digest | walls s | CPU s (user+sys) | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|"
for key in "${keys[@]}"; do
    m=$(echo "${walls[$key]}" | median)
    echo "| $key | $m | $(awk -v a="$m" -v b="$limit_s" 'BEGIN {printf "%.2f", a / b}') |" \
        "$(awk -v a="$m" -v b="$fsv" 'BEGIN {printf "%.2f", a / b}') | ${walls[$key]}| ${cpus[$key]}| ${rss[$key]} |"
done
echo
same=yes
[[ -e $SCRATCH/b.cfs ]] && { cmp -s "$SCRATCH/a.cfs" "$SCRATCH/b.cfs" || same=no; }
echo "Image: $(stat -c %s "$SCRATCH/a.cfs") bytes, fs-verity $("$CFSGATE" info measure-file "$SCRATCH/a.cfs"); identical to the baseline's: $same."
