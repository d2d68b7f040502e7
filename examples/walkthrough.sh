#!/usr/bin/env bash
# cfsgate walk-through: build, store, sign, verify and mount an image; then show that tampered
# ones are refused. Needs root (mounts, the kernel keyring). Run it via `scripts/demo`, which
# installs what it needs first. Everything happens in a scratch directory that is removed at
# the end; nothing on the system is changed.
set -euo pipefail
cd "$(dirname "$0")/.."
CFSGATE=${CFSGATE:-$PWD/target/release/cfsgate}
[ -x "$CFSGATE" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "the walk-through mounts file systems: run it as root" >&2; exit 1; }

work=$(mktemp -d /tmp/cfsgate-walkthrough.XXXXXX)
mnt=$work/mnt
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && "$CFSGATE" umount "$mnt" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
# Each step's header; the step before it gets its time ("took 0.4 s") when the next begins.
step_start=
took() {
  [ -n "$step_start" ] || return 0
  local ms=$(( ($(date +%s%N) - step_start) / 1000000 ))
  printf '   (took %d.%d s)\n' $((ms / 1000)) $((ms % 1000 / 100))
}
step() { took; printf '\n\033[1m== %s\033[0m\n' "$*"; step_start=$(date +%s%N); }
# Commands and messages are shown with the scratch directory's paths relative to it.
short() { sed "s|$CFSGATE|cfsgate|g; s|$work/||g"; }
run() { printf '$ %s\n' "$*" | short; "$@" | short; }
refused() { # run a command that must fail; show its message
  printf '$ %s\n' "$*" | short
  if out=$("$@" 2>&1); then echo "UNEXPECTED: accepted"; echo "$out"; exit 1; fi
  printf '%s\n' "$out" | short | sed 's/^/  refused: /'
}

echo "cfsgate walk-through in the scratch directory $work (paths below are relative to it)"
step "1. A root filesystem to ship: a few files, a symlink, a hard link, xattrs"
rootfs=$work/rootfs
mkdir -p "$rootfs/etc" "$rootfs/usr/bin" "$rootfs/usr/share/doc"
echo "cfsgate demo" > "$rootfs/etc/motd"
head -c 200000 /usr/bin/env > "$rootfs/usr/bin/tool" && chmod 755 "$rootfs/usr/bin/tool"
seq 1 20000 > "$rootfs/usr/share/doc/numbers.txt"
cp "$rootfs/usr/share/doc/numbers.txt" "$rootfs/usr/share/doc/numbers-copy.txt"
ln -s ../usr/share/doc/numbers.txt "$rootfs/etc/numbers"
setfattr -n user.origin -v walkthrough "$rootfs/etc/motd"
find "$rootfs" | sed "s|$rootfs||; s|^$|/|" | sort | sed 's/^/  /'

step "2. Build the composefs image; file contents go to a content-addressed object store"
repo=$work/repo
mkdir -p "$repo/objects" "$repo/images"
echo "\$ cfsgate mkcomposefs --digest-store=REPO/objects --print-digest ROOTFS IMAGE"
digest=$("$CFSGATE" mkcomposefs --digest-store="$repo/objects" --print-digest "$rootfs" "$work/image.cfs")
echo "image digest (fs-verity): $digest"
mv "$work/image.cfs" "$repo/images/$digest"
echo "objects stored (identical files are stored once):"
(cd "$repo/objects" && find . -type f | sort | sed 's/^/  /')
echo "the image's dump (composefs-dump(5)):"
"$CFSGATE" info dump "$repo/images/$digest" | cut -c1-110 | head -n 8 | sed 's/^/  /'

step "3. Sign an image and verify the signature (cosign simple signing, skopeo dir: layout)"
"$CFSGATE" key generate --type p256 --output "$work/signer" >/dev/null
"$CFSGATE" key generate --type ed25519 --output "$work/stranger" >/dev/null
echo "key id: $("$CFSGATE" key id "$work/signer.pub")"
oci=$work/oci
umoci init --layout "$oci" >/dev/null
umoci new --image "$oci:demo" >/dev/null
umoci insert --image "$oci:demo" "$rootfs" / >/dev/null
skopeo copy -q "oci:$oci:demo" "dir:$work/dirimg"
run "$CFSGATE" sign --key "$work/signer.key" --identity registry.example/demo "dir:$work/dirimg"
run "$CFSGATE" verify --key "$work/signer.pub" --reference registry.example/demo:latest "dir:$work/dirimg"

step "4. Mount the image by its trusted digest, verifying every object first"
mkdir -p "$mnt"
run "$CFSGATE" mount --repo "$repo" --verity=userspace "$digest" "$mnt"
run cat "$mnt/etc/motd"
run ls -l "$mnt/etc" "$mnt/usr/bin"
getfattr -n user.origin "$mnt/etc/motd" 2>/dev/null | sed -n 2p | sed 's/^/  xattr: /'
run cmp "$rootfs/usr/bin/tool" "$mnt/usr/bin/tool" && echo "  content identical to the source"
run "$CFSGATE" umount "$mnt"

step "5. Tampering is refused"
echo "a) a signature from a key nobody trusts:"
refused "$CFSGATE" verify --key "$work/stranger.pub" --reference registry.example/demo:latest "dir:$work/dirimg"
echo "b) the manifest edited after signing:"
sed -i 's/"schemaVersion": *2/"schemaVersion":2 /' "$work/dirimg/manifest.json"
refused "$CFSGATE" verify --key "$work/signer.pub" --reference registry.example/demo:latest "dir:$work/dirimg"
echo "c) the image asked for under a digest it does not have:"
refused "$CFSGATE" mount --repo "$repo" --verity=userspace "$(echo "$digest" | tr 0-9a-f 1-9a-f0)" "$mnt"
echo "d) one byte of one stored object flipped behind the store's back:"
obj=$(cd "$repo/objects" && find . -type f -size +1k | sort | head -n1)
printf 'X' | dd of="$repo/objects/$obj" bs=1 seek=100 conv=notrunc status=none
refused "$CFSGATE" mount --repo "$repo" --verity=userspace "$digest" "$mnt"
echo "e) kernel-enforced verity on a kernel without fs-verity is refused, not downgraded:"
refused "$CFSGATE" mount --repo "$repo" --verity=kernel "$digest" "$mnt"

took
printf '\n\033[1m== Done: the signed image mounted; every tampered variant was refused.\033[0m\n'
