#!/bin/sh
# /init of the VM test guest (busybox sh, PID 1). Loads the modules, mounts the test disk,
# runs the checks and prints one line per check on the console:
#
#   RESULT <name> PASS|FAIL <detail>
#
# then `GUEST-DONE` and powers off. tests/vm/run builds the initramfs this runs from and reads
# those lines back. What the host put in the initramfs:
#
#   /bin/cfsgate, /bin/fsverity, /bin/keyctl   (with their libraries under /lib*)
#   /modules/*.ko, /modules.order              loaded in that order
#   /keys/cert.der, /keys/data, /keys/data.sha256, /keys/sig.der, /keys/sig-bad.der
#                                              ECDSA P-256 certificate and signatures (openssl)
# and on the disk (/dev/vda, ext4 with the verity feature):
#   /src/...                 the tree to build an image of
#   /expected/sha256sums     sha256sum of every source file (host)
#   /expected/fsverity       `fsverity digest` of every source file (host)

export PATH=/bin:/sbin
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp /disk
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp

passed=0
failed=0
result() { # NAME PASS|FAIL DETAIL...
  name=$1 status=$2
  shift 2
  echo "RESULT $name $status $*"
  if [ "$status" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
finish() {
  echo "GUEST-SUMMARY $passed passed, $failed failed"
  echo GUEST-DONE
  sync
  poweroff -f
}

for m in $(cat /modules.order); do
  out=$(insmod "/modules/$m" 2>&1) || echo "guest: insmod $m: $out"
done
echo "guest: kernel $(uname -r)"

# The disk may take a moment to appear after virtio_blk loads.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t ext4 /dev/vda /disk; then
  result disk_mounted FAIL "cannot mount /dev/vda as ext4"
  finish
fi

if [ -e /sys/fs/ext4/features/verity ]; then
  result kernel_has_fsverity PASS "/sys/fs/ext4/features/verity present"
else
  result kernel_has_fsverity FAIL "/sys/fs/ext4/features/verity missing"
fi

REPO=/disk/repo
OBJ=$REPO/objects
LOG=/tmp/log
mkdir -p /mnt/a /mnt/b /mnt/c /mnt/erofs-a /mnt/erofs-b

# Mount the image with cfsgate in kernel verity mode. If cfsgate cannot (the mount_kernel_verity
# check then fails and says why), mount the same image and objects the way composefs does with
# busybox (EROFS, then overlay with a data-only object layer and verity=require), so the checks
# of the kernel's enforcement still run; $how says which mount a check used.
how=""
test_mount() { # DIGEST MOUNTPOINT EROFS-MOUNTPOINT
  if cfsgate mount --repo "$REPO" "$1" "$2" --verity=kernel >/tmp/mount.out 2>$LOG; then
    how="cfsgate mount --verity=kernel"
    return 0
  fi
  how="busybox mount, because cfsgate mount failed"
  mount -t erofs -o ro "$REPO/images/$1" "$3" 2>>$LOG &&
    mount -t overlay overlay \
      -o "ro,lowerdir=$3::$OBJ,metacopy=on,redirect_dir=on,verity=require" "$2" 2>>$LOG
}
test_umount() { # MOUNTPOINT EROFS-MOUNTPOINT
  case $how in
    cfsgate*) cfsgate umount "$1" || echo "guest: cfsgate umount $1 failed" ;;
    *) umount "$1"; umount "$2" ;;
  esac
}

# --- 1. build an image into a verity-enabled store ----------------------------------------------
# Preferred: the store itself (`cfsgate create`, the object-store commands are top-level; or
# `cfsgate store create`) enables fs-verity on objects and images. When the CLI cannot, the
# image is built with mkcomposefs --digest-store and fs-verity is enabled with the fsverity
# tool, so the kernel checks below still run; store_enables_verity then fails and says why.
digest=""
store_create() {
  cfsgate --repo "$REPO" create /disk/src >/tmp/create.out 2>$LOG && return 0
  grep -q "unrecognized subcommand" $LOG &&
    cfsgate --repo "$REPO" store create /disk/src >/tmp/create.out 2>>$LOG
}
if store_create; then
  digest=$(tail -1 /tmp/create.out | sed 's/^sha256://')
  bad=0
  for f in $(find "$OBJ" -type f) "$REPO/images/$digest"; do
    fsverity measure "$f" >/dev/null 2>&1 || { bad=$((bad + 1)); echo "guest: no verity on $f"; }
  done
  if grep -q '"verity": *"kernel"' "$REPO/meta.json" && [ $bad -eq 0 ]; then
    result store_enables_verity PASS "repository records kernel verity; every object and the image has fs-verity"
  else
    result store_enables_verity FAIL "meta.json: $(cat "$REPO/meta.json" 2>/dev/null); $bad file(s) without fs-verity"
    # So the kernel checks below still test the kernel, not this failure.
    for f in $(find "$OBJ" -type f) "$REPO/images/$digest"; do
      fsverity measure "$f" >/dev/null 2>&1 || fsverity enable "$f" || echo "guest: fsverity enable $f failed"
    done
  fi
else
  result store_enables_verity FAIL "cfsgate create failed: $(tr '\n' ' ' <$LOG | head -c 300)"
  rm -rf "$REPO"
  mkdir -p "$OBJ" "$REPO/images"
  if cfsgate mkcomposefs --digest-store="$OBJ" --print-digest /disk/src "$REPO/image.tmp" >/tmp/mk.out 2>$LOG; then
    digest=$(tail -1 /tmp/mk.out)
    mv "$REPO/image.tmp" "$REPO/images/$digest"
    for f in $(find "$OBJ" -type f) "$REPO/images/$digest"; do
      fsverity enable "$f" || echo "guest: fsverity enable $f failed"
    done
  else
    echo "guest: mkcomposefs failed: $(cat $LOG)"
  fi
fi
IMAGE=$REPO/images/$digest
if [ -z "$digest" ] || [ ! -f "$IMAGE" ]; then
  result image_built FAIL "no image was built"
  finish
fi
result image_built PASS "sha256:$digest"

# Objects: the kernel's measurement of each equals its name and the host's `fsverity digest`.
bad=0
count=0
for f in $(find "$OBJ" -type f); do
  count=$((count + 1))
  name=$(echo "$f" | sed "s|^$OBJ/||; s|/||")
  measured=$(fsverity measure "$f" 2>/dev/null | sed 's/^sha256://; s/ .*//')
  if [ "$measured" != "$name" ] || ! grep -q "^sha256:$name " /disk/expected/fsverity; then
    bad=$((bad + 1))
    echo "guest: object $f measured ${measured:-none}"
  fi
done
if [ $count -gt 0 ] && [ $bad -eq 0 ]; then
  result objects_kernel_measured PASS "$count objects: kernel measurement = name = host fsverity digest"
else
  result objects_kernel_measured FAIL "$bad of $count objects differ from their name or the host's digest"
fi

measured=$(fsverity measure "$IMAGE" 2>/dev/null | sed 's/^sha256://; s/ .*//')
if [ "$measured" = "$digest" ]; then
  result image_kernel_measured PASS "FS_IOC_MEASURE_VERITY of the image = mkcomposefs digest $digest"
else
  result image_kernel_measured FAIL "kernel measured '${measured:-nothing}', mkcomposefs printed $digest"
fi

if cfsgate mount --repo "$REPO" "$digest" /mnt/a --verity=kernel >/tmp/mount.out 2>$LOG; then
  if grep -q "verity kernel" /tmp/mount.out && grep -q "VerityFile" /tmp/mount.out; then
    result mount_kernel_verity PASS "$(cat /tmp/mount.out)"
  else
    result mount_kernel_verity FAIL "mounted but report says: $(cat /tmp/mount.out)"
  fi
  cfsgate umount /mnt/a || echo "guest: umount /mnt/a failed"
else
  result mount_kernel_verity FAIL "$(head -c 400 $LOG) [kernel: $(dmesg | tail -2 | tr '\n' ' ')]"
fi

if test_mount "$digest" /mnt/a /mnt/erofs-a; then
  if (cd /mnt/a && sha256sum -c -s /disk/expected/sha256sums); then
    result files_read_back PASS "$(wc -l </disk/expected/sha256sums) files match the source's sha256 ($how)"
  else
    result files_read_back FAIL "($how) $(cd /mnt/a && sha256sum -c /disk/expected/sha256sums 2>&1 | grep -v ': OK' | head -5)"
  fi
  # Fields: source (cfsgate names it "composefs") mountpoint type options ...
  if awk '$2 == "/mnt/a" && $3 == "overlay" && $4 ~ /(^|,)verity=require(,|$)/ { found = 1 }
          END { exit !found }' /proc/mounts; then
    result overlay_verity_require PASS "($how) $(grep ' /mnt/a ' /proc/mounts | head -1)"
  else
    result overlay_verity_require FAIL "($how) $(grep ' /mnt/a ' /proc/mounts | head -1)"
  fi
  test_umount /mnt/a /mnt/erofs-a
else
  result files_read_back FAIL "no mount ($how): $(head -c 300 $LOG)"
fi

# --- 3. a wrong trusted digest refuses the mount (kernel measurement) -------------------------
# The same verity-enabled image reached under another name: only the measurement can tell.
case $digest in 0*) wrong=1${digest#?} ;; *) wrong=0${digest#?} ;; esac
ln "$IMAGE" "$REPO/images/$wrong"
if cfsgate mount --repo "$REPO" "$wrong" /mnt/c --verity=kernel >/tmp/wrong.out 2>$LOG; then
  result wrong_digest_refused FAIL "mounted under digest $wrong: $(cat /tmp/wrong.out)"
  cfsgate umount /mnt/c
elif grep -q "measured by the kernel" $LOG; then
  result wrong_digest_refused PASS "$(tr '\n' ' ' <$LOG | head -c 300)"
else
  result wrong_digest_refused FAIL "refused, but not by the kernel's measurement: $(head -c 300 $LOG)"
fi
rm -f "$REPO/images/$wrong"

# --- 2. a backing object changed behind the store's back --------------------------------------
# tampered.txt's object replaced by a same-name file of other content without fs-verity;
# swapped.txt's object replaced by other content WITH fs-verity (wrong digest). Both must fail
# with EIO; every other file must still read.
object_of() { # path in the image -> object file
  cfsgate info ls "$IMAGE" | grep "^/$1	@ " | sed 's/.*@ //'
}
t_obj=$OBJ/$(object_of tampered.txt)
s_obj=$OBJ/$(object_of swapped.txt)
if [ ! -f "$t_obj" ] || [ ! -f "$s_obj" ]; then
  result tampered_object_eio FAIL "objects of tampered.txt/swapped.txt not found ($t_obj, $s_obj)"
else
  echo "tampered content, same name, no verity" >"$t_obj.new" && mv "$t_obj.new" "$t_obj"
  echo "other content with its own fs-verity" >"$s_obj.new" && fsverity enable "$s_obj.new" && mv "$s_obj.new" "$s_obj"
  sync
  echo 3 >/proc/sys/vm/drop_caches
  if test_mount "$digest" /mnt/b /mnt/erofs-b; then
    for f in tampered.txt swapped.txt; do
      err=$(cat "/mnt/b/$f" 2>&1 >/dev/null)
      if [ $? -ne 0 ] && echo "$err" | grep -qi -e "I/O error" -e "Input/output error"; then
        result "${f%.txt}_object_eio" PASS "($how) reading $f: $err"
      else
        result "${f%.txt}_object_eio" FAIL "($how) reading $f did not fail with EIO: ${err:-read succeeded}"
      fi
    done
    grep -v -e ' tampered.txt$' -e ' swapped.txt$' /disk/expected/sha256sums >/tmp/others
    if (cd /mnt/b && sha256sum -c -s /tmp/others); then
      result other_files_still_read PASS "$(wc -l </tmp/others) other files match ($how)"
    else
      result other_files_still_read FAIL "$(cd /mnt/b && sha256sum -c /tmp/others 2>&1 | grep -v ': OK' | head -5)"
    fi
    test_umount /mnt/b /mnt/erofs-b
  else
    result tampered_object_eio FAIL "mount failed: $(head -c 300 $LOG)"
  fi
fi

# --- 4. the kernel keyring verifies an ECDSA P-256 signature (KEYCTL_PKEY_VERIFY) -------------
# cfsgate adds the X.509 certificate (the kernel parses it into an asymmetric key) and asks the
# kernel to verify openssl's signature with it (enc=x962 hash=sha256); a corrupted signature
# must be refused. keyctl, independently, must agree on both.
if cfsgate keyring add ecdsa-test /keys/cert.der >/tmp/key.out 2>$LOG; then
  ring=$(keyctl search @u keyring cfsgate 2>/dev/null)
  key=$(keyctl search "$ring" asymmetric ecdsa-test 2>/dev/null)
  if ! out=$(cfsgate keyring verify ecdsa-test --message /keys/data --signature /keys/sig.der 2>&1); then
    result keyring_ecdsa_verify FAIL "cfsgate keyring verify refused a good signature: $out"
  elif bad=$(cfsgate keyring verify ecdsa-test --message /keys/data --signature /keys/sig-bad.der 2>&1); then
    result keyring_ecdsa_verify FAIL "cfsgate keyring verify accepted a corrupted signature: $bad"
  elif ! keyctl pkey_verify "$key" 0 /keys/data.sha256 /keys/sig.der enc=x962 hash=sha256 >/dev/null 2>&1; then
    result keyring_ecdsa_verify FAIL "keyctl disagrees: the kernel refused the good signature"
  elif keyctl pkey_verify "$key" 0 /keys/data.sha256 /keys/sig-bad.der enc=x962 hash=sha256 >/dev/null 2>&1; then
    result keyring_ecdsa_verify FAIL "keyctl disagrees: the kernel accepted the corrupted signature"
  else
    result keyring_ecdsa_verify PASS "key $key: cfsgate ($out) and keyctl verify the good signature and refuse the corrupted one ($(echo "$bad" | head -c 120))"
  fi
else
  result keyring_ecdsa_verify FAIL "cfsgate keyring add: $(head -c 300 $LOG)"
fi

umount /disk
finish
