#!/usr/bin/env bash
# Partial-pull benchmark: `cfsgate pull` of a zstd:chunked image (only the files the repository
# lacks, by Range requests) against `cfsgate pull --no-partial` (every layer whole) of the same
# image, and `skopeo copy docker://… oci:` as the yardstick (whole blobs, digests checked,
# nothing unpacked). Both images come from the same local registry (Debian's docker-registry
# 2.8.2 on 127.0.0.1, plain HTTP, unpacked by scripts/registry-setup).
#
# Images (tests/fixtures/oci/make-chunked-image.sh, umoci repack, pushed by `skopeo copy
# --dest-compress-format zstd:chunked`): v1 with NFILES seeded files of 4-40 KiB and a 3 MiB
# file; v2 the same seeded files plus NEWFILES new ones of 19 KiB (defaults 3000 and 340: v2's
# new content is ~10% of it), other mtimes and small random files, so no layer is shared.
#
# Steps, each into a fresh repository (cold: empty; warm: v1 pulled first, untimed):
#   skopeo        yardstick: skopeo copy of v2 into an empty OCI layout
#   full-cold     cfsgate pull --no-partial v2, empty repository
#   partial-cold  cfsgate pull v2, empty repository (every file by ranges)
#   full-warm     cfsgate pull --no-partial v2, repository holding v1
#   partial-warm  cfsgate pull v2, repository holding v1 (only the new files)
# Bytes are what the registry sent for blob GETs (whole and 206), from its access log; time is
# wall time after a `sync`, page cache warm. RUNS runs (default 3), medians, ratios to skopeo's
# median time and to v2's layer bytes.
#
# Environment: WORK (default /var/tmp/cfsgate-chunked-bench), NFILES, NEWFILES, RUNS, CFSGATE
# (default target/release/cfsgate, built here). Needs root, umoci, skopeo, python3, setcap.
# Output: a markdown table on stdout (paste it into benches/CHUNKED-RESULTS.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/cfsgate-chunked-bench}
NFILES=${NFILES:-3000}
NEWFILES=${NEWFILES:-340}
RUNS=${RUNS:-3}
mkdir -p "$WORK"
if [ -z "${CFSGATE:-}" ]; then
    (cd "$ROOT" && cargo build --quiet --release --bin cfsgate)
    CFSGATE="$ROOT/target/release/cfsgate"
fi
REGISTRY_BIN=$("$ROOT/scripts/registry-setup")
MAKE="$ROOT/tests/fixtures/oci/make-chunked-image.sh"

for v in v1 v2; do
    new=0
    [ "$v" = v2 ] && new=$NEWFILES
    if [ ! -e "$WORK/$v-$NFILES-$new.done" ]; then
        rm -rf "${WORK:?}/$v" "$WORK/$v"-*.done
        sh "$MAKE" "$WORK/$v" bench "$NFILES" "$new" >&2
        touch "$WORK/$v-$NFILES-$new.done"
    fi
done

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$WORK/storage"
cat > "$WORK/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $WORK/storage}}
http: {addr: 127.0.0.1:$PORT}
EOF
ACCESS=$WORK/access.log
"$REGISTRY_BIN" serve "$WORK/registry.yml" > "$ACCESS" 2> "$WORK/registry.log" &
REGISTRY_PID=$!
trap 'kill $REGISTRY_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break
    sleep 0.1
done
V1="docker://127.0.0.1:$PORT/bench/chunked:v1"
V2="docker://127.0.0.1:$PORT/bench/chunked:v2"
for v in v1 v2; do
    skopeo copy --quiet --dest-tls-verify=false --dest-compress-format zstd:chunked \
        "oci:$WORK/$v/src:test" "docker://127.0.0.1:$PORT/bench/chunked:$v"
done
LAYER_BYTES=$(skopeo inspect --raw --tls-verify=false "$V2" | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')

# Bytes the registry sent for blob GETs so far (access log: "GET … HTTP/1.1" STATUS BYTES …).
sent() {
    sleep 0.2
    awk '/"GET \/v2\/[^ ]*\/blobs\/sha256:/ { split($0, a, "HTTP/1.1\" "); split(a[2], f, " "); s += f[2] } END { print s + 0 }' "$ACCESS"
}
# "SECONDS BYTES" of one command, after a sync.
measure() {
    sync
    local before start end after
    before=$(sent)
    start=$(date +%s.%N)
    "$@" > /dev/null 2>> "$WORK/commands.log"
    end=$(date +%s.%N)
    after=$(sent)
    python3 -c "print(f'{$end - $start:.2f}', $after - $before)"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pull() { "$CFSGATE" --repo "$1" pull --tls-verify=false "${@:2}"; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STEPS=(skopeo full-cold partial-cold full-warm partial-warm)
declare -A T B
for run in $(seq 1 "$RUNS"); do
    line="run $run:"
    for step in "${STEPS[@]}"; do
        rm -rf "$WORK/out" "$WORK/repo"
        case $step in
            *-warm) pull "$WORK/repo" "$V1" > /dev/null 2>> "$WORK/commands.log" ;;
        esac
        case $step in
            skopeo) set -- skopeo copy --quiet --src-tls-verify=false "$V2" "oci:$WORK/out:v2" ;;
            full-*) set -- pull "$WORK/repo" --no-partial "$V2" ;;
            partial-*) set -- pull "$WORK/repo" "$V2" ;;
        esac
        read -r t b < <(measure "$@")
        T[$step]="${T[$step]:-} $t"
        B[$step]="${B[$step]:-} $b"
        line="$line $step ${t}s/${b}B"
    done
    echo "$line" >&2
done
# shellcheck disable=SC2086
S=$(median ${T[skopeo]})
MIB=$(python3 -c "print(f'{$LAYER_BYTES / 1048576:.1f}')")
cat <<EOF
v2: $MIB MiB of layer blobs ($LAYER_BYTES bytes; 2 zstd:chunked layers, $NFILES shared files + $NEWFILES new ones), registry docker-registry 2.8.2 on 127.0.0.1 (plain HTTP); $RUNS runs, medians; cfsgate $(git -C "$ROOT" rev-parse --short HEAD); load before: $LOAD_BEFORE.

| step | what | median s | runs s | time / skopeo | median bytes sent | bytes / v2 layer bytes |
|---|---|---|---|---|---|---|
EOF
declare -A WHAT=(
    [skopeo]="yardstick: skopeo copy docker://v2 oci: (whole blobs, digests checked)"
    [full-cold]="cfsgate pull --no-partial v2, empty repository"
    [partial-cold]="cfsgate pull v2, empty repository (every file by ranges)"
    [full-warm]="cfsgate pull --no-partial v2, repository holding v1"
    [partial-warm]="cfsgate pull v2, repository holding v1 (new files only)"
)
for step in "${STEPS[@]}"; do
    # shellcheck disable=SC2086
    m=$(median ${T[$step]})
    # shellcheck disable=SC2086
    mb=$(median ${B[$step]})
    echo "| $step | ${WHAT[$step]} | $m |${T[$step]} | $(python3 -c "print(f'{$m / $S:.2f}')") | $mb | $(python3 -c "print(f'{$mb / $LAYER_BYTES:.3f}')") |"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
