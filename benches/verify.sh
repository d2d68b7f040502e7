#!/bin/sh
# Benchmarks of `cfsgate verify` as whole processes (hyperfine), results in VERIFY-RESULTS.md:
#  1. a sealed OCI image with its composefs image stored in a repository, 3 signatures,
#     5 trusted keys (threshold 3 + composefs seal): bar < 10 ms median;
#  2. policy load + evaluation with 1,000 scopes and 50 keys (dir: image, 2-of-3 scope):
#     bar < 5 ms median.
# Needs root (the umoci fixture makes devices). usage: benches/verify.sh [RUNS]
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-500}
B=$(mktemp -d)
trap 'rm -rf "$B"' EXIT
cargo build --release -p cfsgate >/dev/null 2>&1
BENCH_DIR="$B" cargo test --release -p cfsgate-verifier --test bench_setup -- --ignored >/dev/null 2>&1
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/cfsgate

# Both must be accepted before they are timed.
"$BIN" verify "oci:$B/layout:sealed" --policy "$B/sealed-policy.json" \
    --reference registry.example/bench/app:v1 --repo "$B/repo" >/dev/null
"$BIN" verify "dir:$B/dir-img" --policy "$B/big-policy.json" \
    --reference registry.example/team-502/app:v1 >/dev/null

hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$B/sealed.json" \
    "$BIN verify oci:$B/layout:sealed --policy $B/sealed-policy.json --reference registry.example/bench/app:v1 --repo $B/repo" >/dev/null
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$B/big.json" \
    "$BIN verify dir:$B/dir-img --policy $B/big-policy.json --reference registry.example/team-502/app:v1" >/dev/null
# The floor on this machine at this moment: starting cfsgate and printing its version (the
# host's speed drifts by a quarter between runs; compare the rows above with this one).
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$B/floor.json" "$BIN --version" >/dev/null
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$B/true.json" "/bin/true" >/dev/null

python3 - "$B/sealed.json" "$B/big.json" "$B/floor.json" "$B/true.json" <<'PY'
import json, sys
names = ["sealed image, stored composefs image, 3 signatures, 5 keys (bar 10 ms; #20: 3 ms)",
         "policy of 1,000 scopes / 50 keys, 2-of-3 scope (bar 5 ms)",
         "floor: `cfsgate --version` (no bar)",
         "floor: `/bin/true` (any dynamically linked program; no bar)"]
bars = [[10.0, 3.0], [5.0], [], []]
rows = []
for path in sys.argv[1:]:
    result = json.load(open(path))["results"][0]
    times = sorted(t * 1000 for t in result["times"])
    cpu = (result["user"] + result["system"]) * 1000
    n = len(times)
    rows.append((n, times[n // 2], times[min(n - 1, int(n * 0.99))], sum(times) / n, cpu))
floor = rows[2][1]
print("| benchmark | runs | median ms | p99 ms | mean ms | CPU user+sys ms | median / `--version` | bar |")
print("|---|---|---|---|---|---|---|---|")
for (n, median, p99, mean, cpu), name, bar in zip(rows, names, bars):
    verdict = " ".join(f"{b:g} ms: {'pass' if median < b else 'FAIL'}" for b in bar) or "—"
    print(f"| {name} | {n} | {median:.2f} | {p99:.2f} | {mean:.2f} | {cpu:.2f} | {median / floor:.2f} | {verdict} |")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
# Counts that do not drift with the host: instructions (valgrind, when installed) and page
# faults of one run of the policy benchmark.
if command -v valgrind >/dev/null; then
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" verify "dir:$B/dir-img" \
        --policy "$B/big-policy.json" --reference registry.example/team-502/app:v1 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/policy benchmark: \1 instructions/p'
fi
/usr/bin/time -f "policy benchmark: %R page faults, %M KiB peak RSS" "$BIN" verify "dir:$B/dir-img" \
    --policy "$B/big-policy.json" --reference registry.example/team-502/app:v1 >/dev/null
