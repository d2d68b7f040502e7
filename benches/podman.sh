#!/usr/bin/env bash
# The gate in front of podman, annotation-free (hooks.d `when: always`), in a private overlay
# store (tests/podman_gate.rs's setup):
#   1. `cfsgate hook precreate` for an image already in cfsgate's repository (sealed, signed):
#      podman's records read, the image judged, its stored composefs image hashed, mounted;
#      hyperfine, median and p99; next to `cfsgate --version` (process floor) in the same run.
#   2. the first `podman run` of a ~200 MB image (the composefs image built from the verified
#      layers in containers-storage, stored, mounted) next to the same `podman run` without
#      the hook, and `cfsgate import containers-storage:…` of that image alone; alternating
#      runs, fresh repository each time, medians and ratios.
# Results: benches/PODMAN-RESULTS.md. Needs root, podman, runc, umoci, skopeo, hyperfine,
# busybox-static.
#
#   benches/podman.sh [RUNS] [FIRST_RUNS] [MB]   # CFSGATE=path/to/cfsgate to choose the binary
set -euo pipefail
cd "$(dirname "$0")/.."
CFSGATE=${CFSGATE:-$PWD/target/release/cfsgate}
RUNS=${1:-100}
FIRST_RUNS=${2:-5}
MB=${3:-200}
[ -x "$CFSGATE" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (mounts, podman)" >&2; exit 1; }

work=$(mktemp -d /tmp/cfsgate-podmanbench.XXXXXX)
graph=$work/graph run=$work/runroot tmp=$work/tmp gate_run=$work/gate-run
mkdir -p "$tmp" "$work/nohooks"
pm=(podman --root "$graph" --runroot "$run" --tmpdir "$tmp" --storage-driver overlay --runtime runc)
cleanup() {
  "${pm[@]}" rm -af >/dev/null 2>&1 || true
  for m in $(grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$CFSGATE" key generate --type p256 --output "$work/signer" >/dev/null
cat > "$work/policy.json" <<POLICY
{"default":[{"type":"reject"}],"transports":{"docker":{"registry.example/app":[
 {"type":"sigstoreSigned","keyPath":"$work/signer.pub","signedIdentity":{"type":"matchRepository"}},
 {"type":"composefs","sealed":true}]}}}
POLICY

# image NAME ROOT: an umoci image of ROOT, sealed, copied to dir:, signed, put into the store.
image() {
  local name=$1 root=$2
  umoci init --layout "$work/oci-$name" >/dev/null
  umoci new --image "$work/oci-$name:app" >/dev/null
  umoci insert --image "$work/oci-$name:app" "$root" / >/dev/null
  "$CFSGATE" seal "oci:$work/oci-$name:app" "$work/oci-$name" --tag sealed >/dev/null 2>&1
  skopeo copy -q "oci:$work/oci-$name:sealed" "dir:$work/dir-$name"
  "$CFSGATE" sign --key "$work/signer.key" --identity registry.example/app "dir:$work/dir-$name" >/dev/null
  skopeo copy -q "dir:$work/dir-$name" "containers-storage:[overlay@$graph+$run]registry.example/app:$name"
}

small=$work/root-small
mkdir -p "$small/bin" "$small/etc" "$small/usr/share/data"
cp /bin/busybox "$small/bin/busybox"; ln -s busybox "$small/bin/sh"; ln -s busybox "$small/bin/true"
for i in $(seq 1 200); do echo "file $i" > "$small/usr/share/data/small-$i"; done
for i in $(seq 1 20); do head -c 65536 /dev/urandom > "$small/usr/share/data/big-$i"; done
image small "$small"

big=$work/root-big
cp -a "$small" "$big"
mkdir -p "$big/usr/lib/payload"
# MB MiB of incompressible files of 64 KiB to 4 MiB (like a distribution's libraries).
left=$((MB * 1024)) i=0
while [ "$left" -gt 0 ]; do
  kib=$(( (i % 4 == 0) ? 4096 : (i % 4 == 1) ? 1024 : (i % 4 == 2) ? 256 : 64 ))
  [ "$kib" -gt "$left" ] && kib=$left
  head -c $((kib * 1024)) /dev/urandom > "$big/usr/lib/payload/f$i"
  left=$((left - kib)) i=$((i + 1))
done
image big "$big"
echo "big image: $(du -sm "$big" | cut -f1) MiB in $(find "$big" -type f | wc -l) files"

gate=(--policy "$work/policy.json" --audit-log "$work/audit.jsonl" --run-dir "$gate_run")
"$CFSGATE" install-hooks --dir "$work/hooks" --audit-log "$work/audit.jsonl" --run-dir "$gate_run" \
  --arg=--policy="$work/policy.json" --arg=--repo="$work/repo" --arg=--timeout=600 >/dev/null

echo "== 1. precreate, image already in the repository, $RUNS runs"
"$CFSGATE" --repo "$work/repo" import "containers-storage:[overlay@$graph+$run]registry.example/app:small" >/dev/null 2>&1
cid=$("${pm[@]}" create --network=none registry.example/app:small /bin/true)
upper=$("${pm[@]}" inspect --format '{{.GraphDriver.Data.UpperDir}}' "$cid")
merged=${upper%/diff}/merged
printf '{"ociVersion":"1.0.2","process":{"args":["/bin/true"],"cwd":"/"},"root":{"path":"%s"},"hostname":"%s","linux":{"cgroupsPath":"/libpod_parent/libpod-%s"}}' \
  "$merged" "${cid:0:12}" "$cid" > "$work/spec.json"
reset="umount $gate_run/$cid/rootfs 2>/dev/null; rm -rf $gate_run/$cid"
# Once by hand first: a refusal shows its reason.
"$CFSGATE" hook precreate --no-engine-stderr "${gate[@]}" --repo "$work/repo" < "$work/spec.json" > /dev/null
sh -c "$reset"
hyperfine --runs "$RUNS" --warmup 5 --prepare "sh -c '$reset'" \
  --export-json "$work/precreate.json" \
  "$CFSGATE hook precreate ${gate[*]} --repo $work/repo < $work/spec.json > /dev/null" >/dev/null
hyperfine --runs "$RUNS" --warmup 5 --export-json "$work/floor.json" "$CFSGATE --version" >/dev/null
sh -c "$reset"
"${pm[@]}" rm -f "$cid" >/dev/null

echo "== 2. first run of the ${MB} MiB image, $FIRST_RUNS alternating runs"
name=registry.example/app:big
: > "$work/first.txt"
for r in $(seq 1 "$FIRST_RUNS"); do
  rm -rf "$work/repo" "$work/import-repo"
  t0=$(date +%s.%N)
  "${pm[@]}" --hooks-dir "$work/hooks" run --rm --network=none --pull=never "$name" /bin/true
  t1=$(date +%s.%N)
  "${pm[@]}" --hooks-dir "$work/nohooks" run --rm --network=none --pull=never "$name" /bin/true
  t2=$(date +%s.%N)
  "$CFSGATE" --repo "$work/import-repo" import "containers-storage:[overlay@$graph+$run]$name" >/dev/null 2>&1
  t3=$(date +%s.%N)
  "${pm[@]}" --hooks-dir "$work/hooks" run --rm --network=none --pull=never "$name" /bin/true
  t4=$(date +%s.%N)
  echo "$t0 $t1 $t2 $t3 $t4" >> "$work/first.txt"
done

echo "== summary"
python3 - "$work" <<'PY'
import json, statistics, sys
w = sys.argv[1]
def times(f):
    r = sorted(json.load(open(f"{w}/{f}.json"))["results"][0]["times"])
    return r
def pct(r, q):
    return r[min(len(r) - 1, int(q * len(r)))] * 1000
pre, floor = times("precreate"), times("floor")
print(f"precreate (stored image)  median {pct(pre, .5):7.2f} ms  p99 {pct(pre, .99):7.2f} ms  n={len(pre)}")
print(f"cfsgate --version (floor) median {pct(floor, .5):7.2f} ms  p99 {pct(floor, .99):7.2f} ms")
print(f"precreate / floor         {pct(pre, .5) / pct(floor, .5):7.1f}x")
rows = [list(map(float, l.split())) for l in open(f"{w}/first.txt")]
hook = [r[1] - r[0] for r in rows]
plain = [r[2] - r[1] for r in rows]
imp = [r[3] - r[2] for r in rows]
again = [r[4] - r[3] for r in rows]
m = statistics.median
print(f"first podman run, hook    median {m(hook):7.2f} s   ({', '.join(f'{x:.2f}' for x in hook)})")
print(f"podman run, no hook       median {m(plain):7.2f} s   ({', '.join(f'{x:.2f}' for x in plain)})")
print(f"cfsgate import alone      median {m(imp):7.2f} s")
print(f"podman run, hook, stored  median {m(again):7.2f} s")
print(f"first run / no hook       {m(hook) / m(plain):7.1f}x;  first run - no hook = {m(hook) - m(plain):.2f} s = {(m(hook) - m(plain)) / m(imp):.2f}x import")
print(f"stored run / no hook      {m(again) / m(plain):7.2f}x")
PY
"$CFSGATE" audit verify --audit-log "$work/audit.jsonl"
uptime
