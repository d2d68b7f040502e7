//! Whether the repository's file system enforces fs-verity, and sealing files with it.
//!
//! Detection needs no ioctl: a file system that supports fs-verity in the running kernel says so
//! in sysfs (`/sys/fs/<fs>/features/verity`, present for ext4, f2fs and btrfs only when the
//! kernel is built with `CONFIG_FS_VERITY`). The repository's file system type comes from
//! `fstatfs`.
//!
//! In [`VerityMode::Kernel`] the store itself seals every object and image (`seal`) before its
//! name appears: `FS_IOC_ENABLE_VERITY` through `cfsgate-sys`, then `FS_IOC_MEASURE_VERITY` must
//! report the very digest the file is stored under. There is no way to store into such a
//! repository without fs-verity: a failure to seal is an error and the file never gets its name.

use std::fs::File;
use std::path::Path;

use cfsgate_sys::fsverity::EnableError;
pub use cfsgate_sys::verity::VerityMode;

use super::StoreError;
use crate::fsverity::FsVeritySha256;

/// Turn fs-verity on for the complete file `path` (no writer may have it open) and check that the
/// kernel now enforces `expected` for it. "Already enabled" is fine (an object may be
/// hard-linked from elsewhere) as long as the measured digest is `expected`.
pub(crate) fn seal(path: &Path, expected: &FsVeritySha256) -> Result<(), StoreError> {
    let file = File::open(path).map_err(StoreError::io("open for fs-verity", path))?;
    seal_file(&file, path, expected)
}

/// [`seal`] for a file opened read-only (`path` names it in errors).
pub(crate) fn seal_file(
    file: &File,
    path: &Path,
    expected: &FsVeritySha256,
) -> Result<(), StoreError> {
    let fail = |reason: String| StoreError::VeritySeal {
        path: path.to_path_buf(),
        reason,
    };
    match cfsgate_sys::fsverity::enable(file) {
        Ok(()) | Err(EnableError::AlreadyEnabled) => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    match cfsgate_sys::fsverity::measure_sha256(file) {
        Ok(Some(measured)) if measured == expected.0 => Ok(()),
        Ok(Some(measured)) => Err(fail(format!(
            "the kernel measures fs-verity digest {}, not {expected}",
            FsVeritySha256(measured)
        ))),
        Ok(None) => Err(fail("fs-verity is not enabled after enabling it".into())),
        Err(e) => Err(fail(format!("measuring fs-verity: {e}"))),
    }
}

/// `statfs` magic numbers of the file systems that can have fs-verity.
const EXT4_SUPER_MAGIC: u64 = 0xEF53;
const F2FS_SUPER_MAGIC: u64 = 0xF2F5_2010;
const BTRFS_SUPER_MAGIC: u64 = 0x9123_683E;

/// Whether the file system holding `dir` supports fs-verity in the running kernel.
pub fn detect(dir: &Path) -> Result<VerityMode, StoreError> {
    let handle = File::open(dir).map_err(StoreError::io("open", dir))?;
    let stat = rustix::fs::fstatfs(&handle).map_err(|e| StoreError::io("statfs", dir)(e.into()))?;
    // f_type is signed on some targets; the magic numbers are 32-bit patterns.
    let magic = (stat.f_type as u64) & 0xFFFF_FFFF;
    let fs_name = match magic {
        EXT4_SUPER_MAGIC => "ext4",
        F2FS_SUPER_MAGIC => "f2fs",
        BTRFS_SUPER_MAGIC => "btrfs",
        _ => return Ok(VerityMode::Userspace),
    };
    let feature = Path::new("/sys/fs").join(fs_name).join("features/verity");
    Ok(if feature.exists() {
        VerityMode::Kernel
    } else {
        VerityMode::Userspace
    })
}
