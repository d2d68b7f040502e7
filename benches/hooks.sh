#!/usr/bin/env bash
# Hook latency added to a container start (hyperfine): `cfsgate hook precreate` (policy
# evaluation: 1 signature, seal label, then the composefs mount with a writable layer, verity
# none and userspace) and `cfsgate hook create-runtime` (the mountinfo/admission check alone).
# Each precreate run gets a fresh container (the previous mount is removed in --prepare).
# Results: benches/HOOKS-RESULTS.md. Needs root, umoci, skopeo, hyperfine, busybox-static.
#
#   benches/hooks.sh [RUNS]      # CFSGATE=path/to/cfsgate to choose the binary (default: build)
# TMPDIR chooses where the repository, audit log and run dir live (their fsyncs are part of the
# hooks' time: ext4 on a virtio disk by default, /dev/shm to leave the disk out).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-200}
if [ -z "${CFSGATE:-}" ]; then
  cargo build --release --bin cfsgate >&2
  CFSGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/cfsgate
fi
[ "$(id -u)" -eq 0 ] || { echo "needs root (mounts)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cfsgate-hookbench.XXXXXX")
run=$work/run
cleanup() {
  for m in $(grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

. benches/hooks-fixture.sh
reset="umount $run/bench/rootfs 2>/dev/null; rm -rf $run/bench"

echo "== precreate (evaluate + mount), $RUNS runs each"
for verity in none userspace; do
  hyperfine --runs "$RUNS" --warmup 5 --prepare "sh -c '$reset'" \
    --export-json "$work/precreate-$verity.json" \
    "$CFSGATE hook precreate --annotations ${gate[*]} --verity $verity < $work/config.json > /dev/null"
done

echo "== create-runtime check alone"
sh -c "$reset"
"$CFSGATE" hook precreate --annotations "${gate[@]}" --verity none < "$work/config.json" > "$work/out.json"
mkdir -p "$work/bundle"
cp "$work/out.json" "$work/bundle/config.json"
printf '{"ociVersion":"1.0.2","id":"bench","pid":%d,"bundle":"%s"}' $$ "$work/bundle" > "$work/state.json"
hyperfine --runs "$RUNS" --warmup 5 --export-json "$work/create-runtime.json" \
  "$CFSGATE hook create-runtime --audit-log $work/audit.jsonl --run-dir $run < $work/state.json"

# Yardsticks in the same minute, through the same shell as the hooks (hyperfine subtracts its
# spawn time): starting this binary (`--version`) and starting any dynamically linked program
# (`/bin/true`: the dynamic loader and libc's start-up, which on a VM include ~100 CPUID
# instructions that each exit to the hypervisor).
echo "== yardsticks"
hyperfine --runs "$RUNS" --warmup 5 --export-json "$work/version.json" "$CFSGATE --version > /dev/null"
hyperfine --runs "$RUNS" --warmup 5 --export-json "$work/true.json" "/bin/true"

echo "== summary"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs; work dir $(stat -f -c %T "$work")"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
def times(name):
    r = json.load(open(f"{work}/{name}.json"))["results"][0]
    t = sorted(x * 1000 for x in r["times"])
    p = lambda q: t[min(len(t) - 1, int(q * len(t)))]
    return p(0.5), p(0.99), t[0], (r["user"] + r["system"]) * 1000, len(t)
# hyperfine subtracts its shell's spawn time, so on a loaded machine a yardstick's median can
# come out as 0: no ratio then.
ratio = lambda a, b: f"{a / b:.2f}" if b > 0 else "—"
version = times("version")[0]
true = times("true")[0]
print("| command | median ms | p99 ms | min ms | CPU ms | median / `--version` | median / `/bin/true` | p99 target | met |")
print("|---|---|---|---|---|---|---|---|---|")
rows = [("precreate-none", "`hook precreate --verity none`", 15.0),
        ("precreate-userspace", "`hook precreate --verity userspace`", None),
        ("create-runtime", "`hook create-runtime`", 5.0),
        ("version", "yardstick: `cfsgate --version`", None),
        ("true", "yardstick: `/bin/true`", None)]
for name, label, target in rows:
    med, p99, low, cpu, n = times(name)
    met = "—" if target is None else ("yes" if p99 < target else "no")
    goal = "—" if target is None else f"< {target:g}"
    print(f"| {label} | {med:.2f} | {p99:.2f} | {low:.2f} | {cpu:.2f} | {ratio(med, version)} | {ratio(med, true)} | {goal} | {met} |")
PY
"$CFSGATE" audit verify --audit-log "$work/audit.jsonl"
