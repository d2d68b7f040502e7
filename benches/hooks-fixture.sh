# The fixture of benches/hooks.sh and scripts/symbol-order (sourced, not run): in "$work", a
# 2 MiB busybox root plus 200 small and 20 larger files stored as a composefs image, an OCI
# image of it sealed with its digest and signed (P-256), a policy that requires both, and a
# runtime config whose annotations name the image. Needs $work (an empty directory) and
# $CFSGATE (the binary); sets $run (the run dir) and the array gate (the hooks' options).
run=$work/run
# A 2 MiB busybox root plus 200 small and 20 larger files, sealed and signed.
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/usr/share/data"
cp /bin/busybox "$root/bin/busybox"; ln -s busybox "$root/bin/sh"
for i in $(seq 1 200); do echo "file $i" > "$root/usr/share/data/small-$i"; done
for i in $(seq 1 20); do head -c 65536 /dev/urandom > "$root/usr/share/data/big-$i"; done
digest=$("$CFSGATE" --repo "$work/repo" create "$root" 2>/dev/null)
"$CFSGATE" key generate --type p256 --output "$work/signer" >/dev/null
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:app" >/dev/null
umoci insert --image "$work/oci:app" "$root" / >/dev/null
umoci config --image "$work/oci:app" --config.label "containers.composefs.fsverity=sha256:$digest" >/dev/null
skopeo copy -q "oci:$work/oci:app" "dir:$work/dirimg"
"$CFSGATE" sign --key "$work/signer.key" --identity registry.example/app "dir:$work/dirimg" >/dev/null
cat > "$work/policy.json" <<POLICY
{"default":[{"type":"reject"}],"transports":{"docker":{"registry.example/app":[
 {"type":"sigstoreSigned","keyPath":"$work/signer.pub","signedIdentity":{"type":"matchRepository"}},
 {"type":"composefs","sealed":true}]}}}
POLICY
# The annotation mode (opt-in since the gate judges podman's own records by default: that
# mode's cost is measured by benches/podman.sh).
printf '{"ociVersion":"1.0.2","process":{"args":["/bin/sh"]},"root":{"path":"/placeholder"},"annotations":{"io.cfsgate.image":"dir:%s","io.cfsgate.reference":"registry.example/app:latest","io.cfsgate.container-id":"bench"}}' \
  "$work/dirimg" > "$work/config.json"
gate=(--policy "$work/policy.json" --repo "$work/repo" --audit-log "$work/audit.jsonl" --run-dir "$run")
