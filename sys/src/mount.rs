//! Mount API extras rustix lacks: `mount_setattr(2)` with an id mapping, and the 64-bit unique
//! mount id.
//!
//! | call | kernel interface | UAPI header |
//! |---|---|---|
//! | [`mount_setattr_idmap`] | `mount_setattr(fd, "", AT_EMPTY_PATH, {MOUNT_ATTR_IDMAP, userns_fd})` | linux/mount.h |
//! | [`unique_mount_id`] | `statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID_UNIQUE)` → `stx_mnt_id` | linux/stat.h |
//! | [`mount_ids`] | that, and `statx(…, STATX_MNT_ID)` → the mountinfo id; `stx_dev_major:minor` | linux/stat.h |
//!
//! `struct mount_attr`: 0: u64 attr_set, 8: u64 attr_clr, 16: u64 propagation, 24: u64
//! userns_fd; 32 bytes.
//!
//! The mount id of `/proc/self/mountinfo` (and `STATX_MNT_ID`) is recycled: once a mount is gone
//! its id is given to the next new mount, so an attacker who can mount can make a different mount
//! carry a remembered id. The unique id (`STATX_MNT_ID_UNIQUE`, Linux 6.8) is never reused
//! during a boot. Where the kernel does not have it, [`unique_mount_id`] says so
//! ([`MountIdError::Unsupported`]) and never falls back to the recyclable one.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use rustix::fs::{AtFlags, StatxFlags};

/// `MOUNT_ATTR_IDMAP` (linux/mount.h).
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// `AT_EMPTY_PATH` (linux/fcntl.h): operate on the fd itself.
const AT_EMPTY_PATH: u32 = 0x1000;
/// `STATX_MNT_ID_UNIQUE` (linux/stat.h, Linux 6.8): `stx_mnt_id` is the 64-bit unique id.
const STATX_MNT_ID_UNIQUE: u32 = 0x0000_4000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Make the detached mount `mount_fd` (from `fsmount` or `open_tree(OPEN_TREE_CLONE)`, not yet
/// attached) show owners through the id mapping of the user namespace `userns_fd`.
pub fn mount_setattr_idmap(mount_fd: BorrowedFd<'_>, userns_fd: BorrowedFd<'_>) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns_fd.as_raw_fd() as u64,
    };
    // SAFETY: the path is a NUL-terminated static string, `attr` is a live, correctly laid out
    // `struct mount_attr` whose size is passed alongside it; the kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount_fd.as_raw_fd(),
            c"".as_ptr(),
            AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A mount's 64-bit unique id: never given to another mount until the next boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UniqueMountId(pub u64);

impl std::fmt::Display for UniqueMountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a unique mount id could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MountIdError {
    /// The kernel does not report unique mount ids (before Linux 6.8): the caller must refuse,
    /// not fall back to the recyclable id.
    #[error("this kernel does not report unique mount ids (STATX_MNT_ID_UNIQUE, Linux 6.8+)")]
    Unsupported,
    /// `statx` failed.
    #[error("statx: {0}")]
    Statx(#[source] io::Error),
}

/// The unique id of the mount `fd` lives on (`fd` may be an `O_PATH` descriptor).
pub fn unique_mount_id(fd: impl AsFd) -> Result<UniqueMountId, MountIdError> {
    let stat = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::STATX_DONT_SYNC,
        StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE),
    )
    .map_err(|e| MountIdError::Statx(e.into()))?;
    // A kernel without the flag ignores it and leaves the bit clear in stx_mask (it may still
    // fill stx_mnt_id with the old, recyclable id: never use it then).
    if stat.stx_mask & STATX_MNT_ID_UNIQUE == 0 {
        return Err(MountIdError::Unsupported);
    }
    Ok(UniqueMountId(stat.stx_mnt_id))
}

/// Who a mount is, from a descriptor on its root (e.g. the `fsmount` fd after `move_mount`):
/// what `/proc/self/mountinfo` would say of it, read without the mount table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountIds {
    /// The mountinfo (recyclable) mount id.
    pub mount_id: u64,
    /// The unique id, never reused during a boot.
    pub unique: UniqueMountId,
    /// The device the mount's root shows, as mountinfo's `major:minor`.
    pub dev: (u32, u32),
}

/// [`MountIds`] of the mount `fd` lives on; [`MountIdError::Unsupported`] before Linux 6.8.
pub fn mount_ids(fd: impl AsFd) -> Result<MountIds, MountIdError> {
    let unique = unique_mount_id(fd.as_fd())?;
    let stat = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::STATX_DONT_SYNC,
        StatxFlags::MNT_ID,
    )
    .map_err(|e| MountIdError::Statx(e.into()))?;
    if !StatxFlags::from_bits_retain(stat.stx_mask).contains(StatxFlags::MNT_ID) {
        return Err(MountIdError::Unsupported);
    }
    Ok(MountIds {
        mount_id: stat.stx_mnt_id,
        unique,
        dev: (stat.stx_dev_major, stat.stx_dev_minor),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_attr_is_the_kernels_size() {
        assert_eq!(std::mem::size_of::<MountAttr>(), 32);
    }

    #[test]
    fn unique_mount_ids_are_not_the_recyclable_ones_and_agree_within_a_mount() {
        let root = std::fs::File::open("/").expect("open /");
        let etc = std::fs::File::open("/proc/self").expect("open /proc/self");
        let root_id = unique_mount_id(&root).expect("this kernel (6.18) has unique mount ids");
        assert_eq!(unique_mount_id(&root).expect("again"), root_id);
        let proc_id = unique_mount_id(&etc).expect("proc");
        assert_ne!(root_id, proc_id, "/ and /proc are different mounts");
        // Unique ids start above 2^31 (MNT_UNIQUE_ID_OFFSET in fs/namespace.c), so they can
        // never be confused with the small recyclable ids of mountinfo.
        let old = rustix::fs::statx(&root, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)
            .expect("statx")
            .stx_mnt_id;
        assert_ne!(root_id.0, old);
    }

    #[test]
    fn mount_ids_say_what_mountinfo_says() {
        let proc_root = std::fs::File::open("/proc").expect("open /proc");
        let ids = mount_ids(&proc_root).expect("this kernel (6.18) has unique mount ids");
        assert_eq!(ids.unique, unique_mount_id(&proc_root).expect("unique id"));
        let table = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let line = table
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/proc"))
            .expect("/proc is in mountinfo");
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[0], ids.mount_id.to_string(), "{line}");
        assert_eq!(fields[2], format!("{}:{}", ids.dev.0, ids.dev.1), "{line}");
    }
}
