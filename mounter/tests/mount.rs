//! Real mounts of real composefs images (root only; skipped when not root, except in CI).
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use cfsgate_image::FsVeritySha256;
use cfsgate_mounter::erofs::{mount_erofs, ErofsSource};
use cfsgate_mounter::objects::ProblemKind;
use cfsgate_mounter::overlay::OverlayApi;
use cfsgate_mounter::pinned::{ImagePinning, PinnedImage};
use cfsgate_mounter::verity::kernel_has_verity;
use cfsgate_mounter::{
    kernel_supports_verity, mount_image, unmount, MountError, MountOptions, UpperLayer, VerityMode,
    VeritySupport,
};
use common::*;

fn opts(fx: &Fixture, verity: VerityMode) -> MountOptions<'static> {
    MountOptions {
        object_dirs: vec![fx.objects.clone()],
        verity: Some(verity),
        ..Default::default()
    }
}

fn xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, key, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// Every kind of entry reads back with its content and metadata.
fn assert_tree_reads_back(fx: &Fixture) {
    assert_eq!(fs::read(fx.path("inline.txt")).unwrap(), b"hello inline\n");
    assert_eq!(fs::read(fx.path("big.bin")).unwrap(), big_content());
    assert_eq!(fs::read(fx.path("sub/deeper/nested.txt")).unwrap(), NESTED);
    assert_eq!(fs::read(fx.path("empty")).unwrap(), b"");

    let inline = fs::symlink_metadata(fx.path("inline.txt")).unwrap();
    assert_eq!(
        (inline.mode(), inline.uid(), inline.gid()),
        (0o100640, 1000, 1001)
    );
    let big = fs::symlink_metadata(fx.path("big.bin")).unwrap();
    assert_eq!(
        (big.mode(), big.uid(), big.gid(), big.len()),
        (0o100755, 1234, 5678, BIG_LEN as u64)
    );
    let nested = fs::symlink_metadata(fx.path("sub/deeper/nested.txt")).unwrap();
    assert_eq!(
        (nested.mode(), nested.uid(), nested.gid()),
        (0o100444, 7, 8)
    );
    let sub = fs::symlink_metadata(fx.path("sub")).unwrap();
    assert_eq!((sub.mode(), sub.uid(), sub.gid()), (0o040750, 42, 43));
    assert_eq!(inline.mtime(), 1_700_000_000);

    assert_eq!(
        xattr(&fx.path("inline.txt"), "user.color").as_deref(),
        Some(&b"blue"[..])
    );
    assert_eq!(
        xattr(&fx.path("sub"), "user.dir").as_deref(),
        Some(&b"yes"[..])
    );

    assert_eq!(
        fs::read_link(fx.path("link")).unwrap(),
        Path::new("inline.txt")
    );
    assert_eq!(fs::read(fx.path("link")).unwrap(), b"hello inline\n");

    let null = fs::symlink_metadata(fx.path("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777, null.gid()),
        (rustix::fs::makedev(1, 3), 0o620, 5)
    );
    let disk = fs::symlink_metadata(fx.path("disk")).unwrap();
    assert!(disk.file_type().is_block_device());
    assert_eq!(disk.rdev(), rustix::fs::makedev(8, 1));
    assert!(fs::symlink_metadata(fx.path("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());

    let hard = fs::symlink_metadata(fx.path("hardlink.bin")).unwrap();
    assert_eq!(hard.nlink(), 2);
    assert_eq!(fs::read(fx.path("hardlink.bin")).unwrap(), big_content());
}

#[test]
fn every_kind_of_entry_reads_back_in_none_mode() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let report = mount_image(
        &fx.trusted,
        &fx.image,
        &fx.target,
        &opts(&fx, VerityMode::None),
    )
    .unwrap();
    assert_eq!(report.verity, VerityMode::None);
    assert_eq!(report.pinning, ImagePinning::SealedMemfd);
    assert_eq!(report.overlay, OverlayApi::NewMountApi);
    assert!(
        matches!(report.erofs, ErofsSource::LoopDevice { .. }),
        "{:?}",
        report.erofs
    );
    let result = std::panic::catch_unwind(|| assert_tree_reads_back(&fx));
    unmount(&fx.target).unwrap();
    result.unwrap();
}

#[test]
fn userspace_mode_verifies_every_object_then_mounts() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let report = mount_image(
        &fx.trusted,
        &fx.image,
        &fx.target,
        &opts(&fx, VerityMode::Userspace),
    )
    .unwrap();
    let stats = report
        .verified
        .expect("userspace mode reports what it verified");
    // big.bin (and its hard link) and nested.txt: three external names, two distinct objects.
    assert_eq!((stats.external_files, stats.objects), (3, 2));
    assert_eq!(stats.bytes_hashed, (BIG_LEN + NESTED.len()) as u64);
    let result = std::panic::catch_unwind(|| assert_tree_reads_back(&fx));
    unmount(&fx.target).unwrap();
    result.unwrap();
}

#[test]
fn legacy_mount2_overlay_fallback_reads_back() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let mut options = opts(&fx, VerityMode::None);
    options.legacy_overlay = true;
    let report = mount_image(&fx.trusted, &fx.image, &fx.target, &options).unwrap();
    assert_eq!(report.overlay, OverlayApi::LegacyMount);
    let result = std::panic::catch_unwind(|| assert_tree_reads_back(&fx));
    unmount(&fx.target).unwrap();
    result.unwrap();
}

#[test]
fn wrong_trusted_digest_refuses_and_mounts_nothing() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let mut wrong = fx.trusted;
    wrong.0[31] ^= 1;
    let before = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let err = mount_image(&wrong, &fx.image, &fx.target, &opts(&fx, VerityMode::None)).unwrap_err();
    assert!(
        matches!(err, MountError::WrongDigest { actual, .. } if actual == fx.trusted),
        "{err}"
    );
    assert!(err.to_string().contains(&wrong.to_hex()), "{err}");
    assert_eq!(fs::read_to_string("/proc/self/mountinfo").unwrap(), before);
    assert!(wait_for_no_cfsgate_loops().is_empty());
}

/// Overwrite the inline file's content inside the image file on disk.
fn tamper_inline_content(image: &Path) {
    let mut bytes = fs::read(image).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"hello inline\n")
        .expect("inline content in image");
    let mut file = fs::OpenOptions::new().write(true).open(image).unwrap();
    file.seek(SeekFrom::Start(at as u64)).unwrap();
    file.write_all(b"HACKD").unwrap();
    file.sync_all().unwrap();
    bytes[at..at + 5].copy_from_slice(b"HACKD");
    assert_eq!(fs::read(image).unwrap(), bytes);
    fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
}

#[test]
fn image_modified_after_its_digest_was_checked_is_not_what_gets_mounted() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    // Between check and mount: pin (digest checked), then tamper, then mount the pinned image.
    let pinned = PinnedImage::open(&fx.image, &fx.trusted).unwrap();
    tamper_inline_content(&fx.image);
    let erofs = mount_erofs(&pinned).unwrap();
    let file = rustix::fs::openat(
        &erofs.mount,
        "inline.txt",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let mut seen = String::new();
    fs::File::from(file).read_to_string(&mut seen).unwrap();
    assert_eq!(seen, "hello inline\n");
    drop(erofs);

    // During the mount: the file on disk changes under a live mount, the mount does not.
    let fx = Fixture::new();
    mount_image(
        &fx.trusted,
        &fx.image,
        &fx.target,
        &opts(&fx, VerityMode::None),
    )
    .unwrap();
    tamper_inline_content(&fx.image);
    let seen = fs::read(fx.path("inline.txt"));
    unmount(&fx.target).unwrap();
    assert_eq!(seen.unwrap(), b"hello inline\n");

    // And the tampered file itself no longer matches the trusted digest.
    let err = mount_image(
        &fx.trusted,
        &fx.image,
        &fx.target,
        &opts(&fx, VerityMode::None),
    )
    .unwrap_err();
    assert!(matches!(err, MountError::WrongDigest { .. }), "{err}");
}

#[test]
fn userspace_mode_refuses_one_flipped_byte_and_names_the_files() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let mut object = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fx.big_object)
        .unwrap();
    object.seek(SeekFrom::Start(123_456)).unwrap();
    let mut byte = [0u8; 1];
    object.read_exact(&mut byte).unwrap();
    object.seek(SeekFrom::Start(123_456)).unwrap();
    object.write_all(&[byte[0] ^ 0x01]).unwrap();
    drop(object);

    let err = mount_image(
        &fx.trusted,
        &fx.image,
        &fx.target,
        &opts(&fx, VerityMode::Userspace),
    )
    .unwrap_err();
    let MountError::Objects { problems } = &err else {
        panic!("expected an object failure, got {err}")
    };
    let files: Vec<&str> = problems.iter().map(|p| p.file.as_str()).collect();
    assert_eq!(files, ["/big.bin", "/hardlink.bin"]);
    assert!(problems
        .iter()
        .all(|p| matches!(p.kind, ProblemKind::DigestMismatch { .. })));
    let text = err.to_string();
    assert!(
        text.contains("/big.bin") && text.contains("corrupt"),
        "{text}"
    );
    assert!(mounts_mentioning(&fx.target.to_string_lossy()).is_empty());
    assert!(wait_for_no_cfsgate_loops().is_empty());
}

#[test]
fn userspace_mode_names_the_file_whose_object_is_missing() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let nested_object = fx
        .objects
        .join(cfsgate_image::fsverity::digest_bytes(NESTED).object_path());
    fs::remove_file(&nested_object).unwrap();
    let err = mount_image(
        &fx.trusted,
        &fx.image,
        &fx.target,
        &opts(&fx, VerityMode::Userspace),
    )
    .unwrap_err();
    let MountError::Objects { problems } = &err else {
        panic!("expected an object failure, got {err}")
    };
    assert_eq!(problems.len(), 1, "{err}");
    assert_eq!(problems[0].file, "/sub/deeper/nested.txt");
    assert_eq!(problems[0].kind, ProblemKind::Missing);
    assert!(
        err.to_string().contains("/sub/deeper/nested.txt: object"),
        "{err}"
    );
}

#[test]
fn writes_land_in_the_upper_dir_only() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let upper = fx.dir.path().join("upper");
    let work = fx.dir.path().join("work");
    fs::create_dir(&upper).unwrap();
    fs::create_dir(&work).unwrap();
    let mut options = opts(&fx, VerityMode::Userspace);
    options.upper = Some(UpperLayer {
        upperdir: upper.clone(),
        workdir: work,
    });
    let report = mount_image(&fx.trusted, &fx.image, &fx.target, &options).unwrap();
    assert!(report.writable);
    let result = std::panic::catch_unwind(|| {
        fs::write(fx.path("new.txt"), b"written in the container").unwrap();
        let mut big = fs::OpenOptions::new()
            .append(true)
            .open(fx.path("big.bin"))
            .unwrap();
        big.write_all(b"appended").unwrap();
        drop(big);
        fs::remove_file(fx.path("inline.txt")).unwrap();
        assert!(!fx.path("inline.txt").exists());
    });
    unmount(&fx.target).unwrap();
    result.unwrap();
    assert_eq!(
        fs::read(upper.join("new.txt")).unwrap(),
        b"written in the container"
    );
    let mut expected = big_content();
    expected.extend_from_slice(b"appended");
    assert_eq!(fs::read(upper.join("big.bin")).unwrap(), expected);
    let whiteout = fs::symlink_metadata(upper.join("inline.txt")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    // The object and the image are untouched.
    assert_eq!(fs::read(&fx.big_object).unwrap(), big_content());
    assert_eq!(fsverity_digest(&fx.image), fx.trusted);
    assert!(!fx.objects.join("new.txt").exists());
}

/// A process sleeping in a new user namespace mapping ids 0..65536 to 100000..165536.
struct UserNs {
    child: std::process::Child,
}

impl UserNs {
    fn new() -> UserNs {
        let child = std::process::Command::new("unshare")
            .args(["--user", "sleep", "60"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let ours = fs::read_link("/proc/self/ns/user").unwrap();
        // unshare(1) switches namespaces before exec: wait until the child is in its own.
        for _ in 0..500 {
            if fs::read_link(format!("/proc/{pid}/ns/user"))
                .map(|ns| ns != ours)
                .unwrap_or(false)
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        fs::write(format!("/proc/{pid}/uid_map"), "0 100000 65536\n").unwrap();
        fs::write(format!("/proc/{pid}/gid_map"), "0 100000 65536\n").unwrap();
        UserNs { child }
    }
    fn ns_path(&self) -> String {
        format!("/proc/{}/ns/user", self.child.id())
    }
}

impl Drop for UserNs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn idmapped_mount_shows_mapped_owners() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let userns = UserNs::new();
    let ns = fs::File::open(userns.ns_path()).unwrap();
    let mut options = opts(&fx, VerityMode::Userspace);
    options.idmap = Some(std::os::fd::AsFd::as_fd(&ns));
    let report = mount_image(&fx.trusted, &fx.image, &fx.target, &options).unwrap();
    assert!(report.idmapped);
    let result = std::panic::catch_unwind(|| {
        let inline = fs::symlink_metadata(fx.path("inline.txt")).unwrap();
        assert_eq!((inline.uid(), inline.gid()), (101_000, 101_001));
        let big = fs::symlink_metadata(fx.path("big.bin")).unwrap();
        assert_eq!((big.uid(), big.gid()), (101_234, 105_678));
        let root = fs::symlink_metadata(&fx.target).unwrap();
        assert_eq!((root.uid(), root.gid()), (100_000, 100_000));
        assert_eq!(fs::read(fx.path("big.bin")).unwrap(), big_content());
    });
    unmount(&fx.target).unwrap();
    result.unwrap();
}

#[test]
fn unmount_leaves_no_mounts_loop_devices_or_temporary_files() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let erofs_before = erofs_mounts();
    let tmp_before: Vec<_> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let report = mount_image(
        &fx.trusted,
        &fx.image,
        &fx.target,
        &opts(&fx, VerityMode::Userspace),
    )
    .unwrap();
    let target = fx.target.to_string_lossy().into_owned();
    assert_eq!(
        mounts_mentioning(&target).len(),
        1,
        "exactly the overlay is attached"
    );
    // The EROFS layer is never in the mount table, even while mounted.
    assert_eq!(erofs_mounts(), erofs_before);
    let ErofsSource::LoopDevice { number, .. } = report.erofs else {
        panic!("{:?}", report.erofs)
    };
    assert!(cfsgate_loop_devices()
        .iter()
        .any(|l| l.starts_with(&format!("loop{number}:"))));

    unmount(&fx.target).unwrap();
    assert!(mounts_mentioning(&target).is_empty());
    assert_eq!(erofs_mounts(), erofs_before);
    assert_eq!(wait_for_no_cfsgate_loops(), Vec::<String>::new());
    let tmp_after: Vec<_> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let made: Vec<_> = tmp_after
        .iter()
        .filter(|n| !tmp_before.contains(n))
        .filter(|n| n.to_string_lossy().contains("cfsgate"))
        .collect();
    assert!(made.is_empty(), "left behind: {made:?}");
    // Unmounting twice, or a non-composefs path, is an error, not a silent success.
    assert!(unmount(&fx.target).is_err());
}

#[test]
fn kernel_mode_is_refused_on_a_kernel_without_fs_verity() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    if kernel_has_verity() {
        // The refusal is this kernel's to give only without fs-verity; with it, kernel mode is
        // what the VM suite (tests/vm.rs) checks end to end.
        eprintln!("skipped: this kernel has fs-verity");
        return;
    }
    let fx = Fixture::new();
    let support = kernel_supports_verity(&fx.objects).unwrap();
    let VeritySupport::Unsupported { reason } = support else {
        panic!("fs-verity reported supported")
    };
    assert!(reason.contains("kernel lacks fs-verity"), "{reason}");

    let err = mount_image(
        &fx.trusted,
        &fx.image,
        &fx.target,
        &opts(&fx, VerityMode::Kernel),
    )
    .unwrap_err();
    assert!(
        matches!(err, MountError::KernelVerityUnavailable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("kernel lacks fs-verity"), "{err}");

    // No mode chosen: no silent downgrade either.
    let options = MountOptions {
        object_dirs: vec![fx.objects.clone()],
        ..Default::default()
    };
    let err = mount_image(&fx.trusted, &fx.image, &fx.target, &options).unwrap_err();
    assert!(
        matches!(err, MountError::NoDefaultVerityMode { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--verity=userspace"), "{err}");
    assert!(mounts_mentioning(&fx.target.to_string_lossy()).is_empty());
}

#[test]
fn a_non_composefs_file_with_the_trusted_digest_is_refused_by_its_header() {
    let Some(_serial) = root_or_skip() else {
        return;
    };
    let fx = Fixture::new();
    let mut bytes = fs::read(&fx.image).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&fx.image, &bytes).unwrap();
    let trusted: FsVeritySha256 = fsverity_digest(&fx.image);
    let err = mount_image(
        &trusted,
        &fx.image,
        &fx.target,
        &opts(&fx, VerityMode::None),
    )
    .unwrap_err();
    assert!(matches!(err, MountError::BadHeader { .. }), "{err}");
    assert!(err.to_string().contains("magic"), "{err}");
}
