//! Whether the repository's file system enforces fs-verity, and the seam for turning it on.
//!
//! Detection needs no ioctl: a file system that supports fs-verity in the running kernel says so
//! in sysfs (`/sys/fs/<fs>/features/verity`, present for ext4, f2fs and btrfs only when the
//! kernel is built with `CONFIG_FS_VERITY`). The repository's file system type comes from
//! `fstatfs`. Enabling verity on a file (`FS_IOC_ENABLE_VERITY`) is a raw ioctl: it lives in the
//! mounter crate's syscall module and is handed to [`super::Repository::set_verity_enabler`].

use std::fs::File;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// How digests of objects and images are enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerityMode {
    /// The kernel enforces fs-verity on every read of objects and images.
    Kernel,
    /// The file system cannot: cfsgate checks digests in userspace (at import, fsck, mount).
    Userspace,
}

impl VerityMode {
    /// A sentence for users saying what this mode means.
    pub fn describe(self) -> &'static str {
        match self {
            VerityMode::Kernel => "kernel fs-verity: the kernel checks every read of objects and images",
            VerityMode::Userspace => {
                "userspace verification: this file system or kernel has no fs-verity, so digests are \
                 checked by cfsgate (on import and fsck), not on every read"
            }
        }
    }
}

/// Turns fs-verity on for a complete file opened read-only (EEXIST, already enabled, must be
/// reported as success by the implementation: an object may be hard-linked elsewhere).
pub type EnableVerityFn = fn(&File) -> io::Result<()>;

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
