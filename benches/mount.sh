#!/usr/bin/env bash
# Mount benchmark (root): mount + unmount latency of a /usr-sized composefs image in verity modes
# `none` and `userspace`, and userspace verification throughput against the machine's 2-core
# SHA-256 limit (`openssl speed -evp sha256 -multi 2`, 4 KiB blocks: what fs-verity hashes).
#
# Environment: SRC (default /usr) is the tree imaged; WORK (default /var/tmp/cfsgate-mount-bench)
# keeps the repository between runs; N_NONE / N_USER are the iteration counts.
# Output: a markdown table on stdout (paste it into benches/MOUNT-RESULTS.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=${SRC:-/usr}
WORK=${WORK:-/var/tmp/cfsgate-mount-bench}
N_NONE=${N_NONE:-100}
N_USER=${N_USER:-10}

[ "$(id -u)" = 0 ] || { echo "mount.sh: must run as root (it mounts)" >&2; exit 1; }
cd "$ROOT"
cargo build --quiet --release -p cfsgate-mounter --examples
BIN="$ROOT/target/release/examples"

mkdir -p "$WORK/mnt"
if [ ! -s "$WORK/digest" ] || [ ! -d "$WORK/repo/images" ]; then
    rm -rf "$WORK/repo"
    start=$(date +%s.%N)
    "$BIN/mkimage" "$SRC" "$WORK/repo" > "$WORK/digest.tmp"
    mv "$WORK/digest.tmp" "$WORK/digest"
    echo "built image of $SRC in $(echo "$(date +%s.%N) - $start" | bc) s" >&2
fi
DIGEST=$(cat "$WORK/digest")
FILES=$(find "$SRC" -xdev | wc -l)
SRC_BYTES=$(du -sb --apparent-size "$SRC" 2>/dev/null | cut -f1)

run() { "$BIN/mountbench" "$WORK/repo" "$DIGEST" "$WORK/mnt" "$1" "$2"; }
get() { awk -v k="$1" '$1 == k { print $2 }'; }

NONE=$(run none "$N_NONE")
# One untimed pass warms the page cache so every timed pass hashes from memory, like a node
# whose objects are already cached; the cold (disk-bound) case is a property of the disk.
run userspace 1 > /dev/null
USER=$(run userspace "$N_USER")

SHA_KBPS=$(openssl speed -evp sha256 -multi 2 -seconds 3 -bytes 4096 2>/dev/null | awk '$1 == "sha256" { sub("k", "", $2); print $2 }')
SHA_MBPS=$(echo "$SHA_KBPS / 1000" | bc)
VERIFY_MBPS=$(echo "$USER" | get verify_mb_per_s)
RATIO=$(echo "scale=0; 100 * $VERIFY_MBPS / $SHA_MBPS" | bc)

cat <<TABLE
Image: \`$SRC\` ($FILES entries, $((SRC_BYTES / 1000000)) MB), metadata image $(( $(echo "$NONE" | get image_bytes) / 1024 )) KiB, $(echo "$USER" | get objects) distinct objects, $(( $(echo "$USER" | get bytes_hashed) / 1000000 )) MB hashed per userspace mount. Kernel $(uname -r), $(nproc) cores.

| verity mode | iterations | mount + unmount median | p99 |
|---|---|---|---|
| none | $(echo "$NONE" | get iterations) | $(echo "$NONE" | get median_ms) ms | $(echo "$NONE" | get p99_ms) ms |
| userspace | $(echo "$USER" | get iterations) | $(echo "$USER" | get median_ms) ms | $(echo "$USER" | get p99_ms) ms |

| userspace verification | MB/s |
|---|---|
| cfsgate (objects hashed in parallel, page cache warm) | $VERIFY_MBPS |
| 2-core SHA-256 limit (\`openssl speed -evp sha256 -multi 2 -bytes 4096\`) | $SHA_MBPS |
| cfsgate / limit | $RATIO % |
TABLE
