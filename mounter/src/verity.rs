//! Verity modes and fs-verity support probing. [`VerityMode`] is the workspace's one definition
//! (`cfsgate_sys::verity`), re-exported here.
//!
//! | mode | who checks object contents | when |
//! |---|---|---|
//! | [`VerityMode::Kernel`] | the kernel: overlay `verity=require` compares each object's fs-verity digest with the one recorded in the image | on every open |
//! | [`VerityMode::Userspace`] | cfsgate: every referenced object is hashed (in parallel) before mounting | once, before the mount |
//! | [`VerityMode::None`] | nobody | never |
//!
//! The mode is always explicit in the result of a mount and never silently downgraded: asking for
//! `Kernel` where the kernel cannot enforce it is an error, and there is no default on such
//! kernels (the caller must say `Userspace` or `None`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use cfsgate_image::FsVeritySha256;
pub use cfsgate_sys::verity::{ParseVerityModeError, VerityMode};

/// Enable fs-verity on a file opened read-only with no writer anywhere (see
/// [`cfsgate_sys::fsverity::enable`] for the typed failures; here "already enabled" becomes
/// `AlreadyExists`, "open for writing" `ETXTBSY`).
pub fn enable_verity(fd: impl AsFd) -> io::Result<()> {
    cfsgate_sys::fsverity::enable(fd).map_err(io::Error::from)
}

/// The SHA-256 fs-verity digest the kernel enforces for `fd`, or `None` when the file has no
/// fs-verity (or the kernel or file system cannot have it).
pub fn measure_verity(fd: impl AsFd) -> io::Result<Option<FsVeritySha256>> {
    Ok(cfsgate_sys::fsverity::measure_sha256(fd)?.map(FsVeritySha256))
}

/// Whether fs-verity can be enabled on files in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VeritySupport {
    /// fs-verity can be enabled there.
    Supported,
    /// Not available; the reason says whether the kernel or the filesystem lacks it.
    Unsupported {
        /// What lacks it and how that was found.
        reason: String,
    },
}

/// Filesystems whose sysfs feature list advertises fs-verity when the kernel was built with it.
const VERITY_FEATURE_FILES: [&str; 3] = [
    "/sys/fs/ext4/features/verity",
    "/sys/fs/f2fs/features/verity",
    "/sys/fs/btrfs/features/verity",
];

/// Whether the running kernel was built with fs-verity, judged by the filesystems' sysfs
/// feature lists (there is no direct switch to read).
pub fn kernel_has_verity() -> bool {
    VERITY_FEATURE_FILES.iter().any(|f| Path::new(f).exists())
}

fn unsupported_reason(dir: &Path, err: &io::Error) -> String {
    if kernel_has_verity() {
        format!(
            "the filesystem holding {} does not support fs-verity ({err}); enable its verity feature (ext4: tune2fs -O verity)",
            dir.display()
        )
    } else {
        format!(
            "the running kernel lacks fs-verity (built without CONFIG_FS_VERITY: no filesystem advertises a verity feature in /sys/fs, and enabling it on a file in {} fails with: {err})",
            dir.display()
        )
    }
}

/// Probe whether fs-verity works in `dir`: enable it on an anonymous temporary file there
/// (`O_TMPFILE`, never linked, gone when closed). When no file can be created (read-only store),
/// the kernel-level answer from sysfs decides.
pub fn kernel_supports_verity(dir: &Path) -> io::Result<VeritySupport> {
    let tmp = match rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(fd) => fd,
        Err(err) => {
            let err = io::Error::from(err);
            return Ok(if kernel_has_verity() {
                VeritySupport::Supported
            } else {
                VeritySupport::Unsupported {
                    reason: unsupported_reason(dir, &err),
                }
            });
        }
    };
    rustix::io::write(&tmp, b"cfsgate fs-verity probe")?;
    // fs-verity refuses files that are open for writing: reopen read-only, close the writer.
    let reader: OwnedFd = rustix::fs::open(
        format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&tmp)),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    drop(tmp);
    match enable_verity(reader.as_fd()) {
        Ok(()) => Ok(VeritySupport::Supported),
        Err(err)
            if matches!(
                rustix::io::Errno::from_io_error(&err),
                Some(
                    rustix::io::Errno::OPNOTSUPP
                        | rustix::io::Errno::NOTTY
                        | rustix::io::Errno::INVAL
                )
            ) =>
        {
            Ok(VeritySupport::Unsupported {
                reason: unsupported_reason(dir, &err),
            })
        }
        Err(err) => Err(err),
    }
}
