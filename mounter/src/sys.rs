//! The only `unsafe` code of cfsgate: thin wrappers of kernel interfaces that rustix lacks.
//!
//! Each wrapper passes a `#[repr(C)]` struct laid out exactly as the kernel's UAPI header and
//! returns an `io::Result`; none keeps a pointer beyond the call. Everything else in the
//! workspace is safe code that calls these.
//!
//! | wrapper | kernel interface | UAPI header |
//! |---|---|---|
//! | [`mount_setattr_idmap`] | `mount_setattr(fd, "", AT_EMPTY_PATH, {MOUNT_ATTR_IDMAP, userns_fd})` | linux/mount.h |
//! | [`enable_verity`] | `ioctl(FS_IOC_ENABLE_VERITY)` = `_IOW('f', 133, fsverity_enable_arg)` | linux/fsverity.h |
//! | [`measure_verity`] | `ioctl(FS_IOC_MEASURE_VERITY)` = `_IOWR('f', 134, fsverity_digest)` | linux/fsverity.h |
//! | [`loop_get_free`] | `ioctl(LOOP_CTL_GET_FREE)` on /dev/loop-control | linux/loop.h |
//! | [`loop_configure`] | `ioctl(LOOP_CONFIGURE, loop_config)` on /dev/loopN | linux/loop.h |
//!
//! Layouts:
//!
//! | struct | fields (offset: type name) | size |
//! |---|---|---|
//! | `mount_attr` | 0: u64 attr_set, 8: u64 attr_clr, 16: u64 propagation, 24: u64 userns_fd | 32 |
//! | `fsverity_enable_arg` | 0: u32 version, 4: u32 hash_algorithm, 8: u32 block_size, 12: u32 salt_size, 16: u64 salt_ptr, 24: u32 sig_size, 28: u32 reserved, 32: u64 sig_ptr, 40: u64 reserved[11] | 128 |
//! | `fsverity_digest` | 0: u16 digest_algorithm, 2: u16 digest_size (in: buffer room, out: length), 4: digest bytes | 4 + room |
//! | `loop_config` | 0: u32 fd, 4: u32 block_size, 8: loop_info64 (232 bytes), 240: u64 reserved[8] | 304 |
//! | `loop_info64` | 0: u64 device, 8: u64 inode, 16: u64 rdevice, 24: u64 offset, 32: u64 sizelimit, 40: u32 number, 44: u32 encrypt_type, 48: u32 encrypt_key_size, 52: u32 flags, 56: u8 file_name[64], 120: u8 crypt_name[64], 184: u8 encrypt_key[32], 216: u64 init[2] | 232 |
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use cfsgate_image::Sha256Digest;
use rustix::ioctl::{self, opcode, Ioctl, IoctlOutput, Opcode};

/// `MOUNT_ATTR_IDMAP` (linux/mount.h).
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// `AT_EMPTY_PATH` (linux/fcntl.h): operate on the fd itself.
const AT_EMPTY_PATH: u32 = 0x1000;

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

/// `FS_VERITY_HASH_ALG_SHA256`.
const FS_VERITY_HASH_ALG_SHA256: u32 = 1;
/// The Merkle tree block size composefs uses.
const FS_VERITY_BLOCK_SIZE: u32 = 4096;
/// Room for the largest digest (SHA-512) in a measure request.
const FS_VERITY_MAX_DIGEST_SIZE: usize = 64;

#[repr(C)]
#[derive(Clone, Copy)]
struct FsverityEnableArg {
    version: u32,
    hash_algorithm: u32,
    block_size: u32,
    salt_size: u32,
    salt_ptr: u64,
    sig_size: u32,
    reserved1: u32,
    sig_ptr: u64,
    reserved2: [u64; 11],
}

/// The fixed head of `struct fsverity_digest`; the opcode encodes only this size.
#[repr(C)]
struct FsverityDigestHead {
    digest_algorithm: u16,
    digest_size: u16,
}

#[repr(C)]
struct FsverityDigestBuf {
    head: FsverityDigestHead,
    digest: [u8; FS_VERITY_MAX_DIGEST_SIZE],
}

const FS_IOC_ENABLE_VERITY: Opcode = opcode::write::<FsverityEnableArg>(b'f', 133);
const FS_IOC_MEASURE_VERITY: Opcode = opcode::read_write::<FsverityDigestHead>(b'f', 134);

/// Enable fs-verity (SHA-256, 4096-byte blocks, no salt, no signature) on a file opened
/// read-only with no writable fd open anywhere (the kernel refuses with ETXTBSY otherwise).
pub fn enable_verity(fd: impl AsFd) -> io::Result<()> {
    let arg = FsverityEnableArg {
        version: 1,
        hash_algorithm: FS_VERITY_HASH_ALG_SHA256,
        block_size: FS_VERITY_BLOCK_SIZE,
        salt_size: 0,
        salt_ptr: 0,
        sig_size: 0,
        reserved1: 0,
        sig_ptr: 0,
        reserved2: [0; 11],
    };
    // SAFETY: the opcode is FS_IOC_ENABLE_VERITY, whose argument is a `fsverity_enable_arg`
    // laid out as above; salt and signature pointers are null with zero sizes.
    unsafe {
        let call = ioctl::Setter::<FS_IOC_ENABLE_VERITY, FsverityEnableArg>::new(arg);
        ioctl::ioctl(fd, call)?;
    }
    Ok(())
}

/// The SHA-256 fs-verity digest the kernel holds for `fd`, or `None` when the file does not have
/// fs-verity enabled (ENODATA) or the kernel/filesystem has no fs-verity (ENOTTY, EOPNOTSUPP).
/// A file with a non-SHA-256 digest is an error (composefs uses SHA-256 only).
pub fn measure_verity(fd: impl AsFd) -> io::Result<Option<Sha256Digest>> {
    let mut buf = FsverityDigestBuf {
        head: FsverityDigestHead {
            digest_algorithm: 0,
            digest_size: FS_VERITY_MAX_DIGEST_SIZE as u16,
        },
        digest: [0; FS_VERITY_MAX_DIGEST_SIZE],
    };
    // SAFETY: the opcode is FS_IOC_MEASURE_VERITY; the kernel writes at most `digest_size`
    // bytes after the 4-byte head, and `buf` has exactly that much room after it.
    let result = unsafe {
        let call = ioctl::Updater::<FS_IOC_MEASURE_VERITY, FsverityDigestBuf>::new(&mut buf);
        ioctl::ioctl(fd, call)
    };
    match result {
        Ok(()) => {}
        Err(e)
            if e == rustix::io::Errno::NODATA
                || e == rustix::io::Errno::NOTTY
                || e == rustix::io::Errno::OPNOTSUPP =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    let size = usize::from(buf.head.digest_size);
    if u32::from(buf.head.digest_algorithm) != FS_VERITY_HASH_ALG_SHA256
        || size != Sha256Digest::LEN
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "file has fs-verity algorithm {} with a {size}-byte digest; composefs needs SHA-256",
                buf.head.digest_algorithm
            ),
        ));
    }
    Ok(Sha256Digest::from_slice(&buf.digest[..Sha256Digest::LEN]))
}

/// `LOOP_CTL_GET_FREE` (linux/loop.h): returns the number of a free loop device.
const LOOP_CTL_GET_FREE: Opcode = 0x4C82;
/// `LOOP_CONFIGURE`: attach a backing fd and set flags in one step.
const LOOP_CONFIGURE: Opcode = 0x4C0A;

/// `LO_FLAGS_READ_ONLY`.
pub const LO_FLAGS_READ_ONLY: u32 = 1;
/// `LO_FLAGS_AUTOCLEAR`: detach the backing file when the last opener closes the device.
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// `LO_FLAGS_DIRECT_IO`: read the backing file without a second page cache.
pub const LO_FLAGS_DIRECT_IO: u32 = 16;
/// `LO_NAME_SIZE`.
const LO_NAME_SIZE: usize = 64;
/// `LO_KEY_SIZE`.
const LO_KEY_SIZE: usize = 32;

#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; LO_NAME_SIZE],
    crypt_name: [u8; LO_NAME_SIZE],
    encrypt_key: [u8; LO_KEY_SIZE],
    init: [u64; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// `LOOP_CTL_GET_FREE`: its result is the ioctl's return value, which rustix's patterns drop.
struct LoopGetFree;

// SAFETY: LOOP_CTL_GET_FREE takes no argument and reads or writes no userspace memory.
unsafe impl Ioctl for LoopGetFree {
    type Output = u32;
    const IS_MUTATING: bool = false;
    fn opcode(&self) -> Opcode {
        LOOP_CTL_GET_FREE
    }
    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        std::ptr::null_mut()
    }
    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<u32> {
        u32::try_from(out).map_err(|_| rustix::io::Errno::RANGE)
    }
}

/// The number N of a free /dev/loopN (allocating one if needed), from /dev/loop-control.
pub fn loop_get_free(loop_control: impl AsFd) -> io::Result<u32> {
    // SAFETY: see the `Ioctl` impl of `LoopGetFree`.
    Ok(unsafe { ioctl::ioctl(loop_control, LoopGetFree)? })
}

/// Attach `backing` to the loop device `loop_dev` with `flags` (`LO_FLAGS_*`) and
/// `file_name` recorded (truncated to 63 bytes) for /sys/block/loopN/loop/backing_file readers.
pub fn loop_configure(
    loop_dev: impl AsFd,
    backing: BorrowedFd<'_>,
    flags: u32,
    file_name: &[u8],
) -> io::Result<()> {
    let mut name = [0u8; LO_NAME_SIZE];
    let len = file_name.len().min(LO_NAME_SIZE - 1);
    name[..len].copy_from_slice(&file_name[..len]);
    let config = LoopConfig {
        fd: backing.as_raw_fd() as u32,
        block_size: 0,
        info: LoopInfo64 {
            device: 0,
            inode: 0,
            rdevice: 0,
            offset: 0,
            sizelimit: 0,
            number: 0,
            encrypt_type: 0,
            encrypt_key_size: 0,
            flags,
            file_name: name,
            crypt_name: [0; LO_NAME_SIZE],
            encrypt_key: [0; LO_KEY_SIZE],
            init: [0; 2],
        },
        reserved: [0; 8],
    };
    // SAFETY: LOOP_CONFIGURE's argument is a `struct loop_config` laid out as above, only read.
    unsafe {
        let call = ioctl::Setter::<LOOP_CONFIGURE, LoopConfig>::new(config);
        ioctl::ioctl(loop_dev, call)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_sizes_and_opcodes_match_the_kernel_headers() {
        assert_eq!(std::mem::size_of::<MountAttr>(), 32);
        assert_eq!(std::mem::size_of::<FsverityEnableArg>(), 128);
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
        // Values from linux/fsverity.h as printed by the C preprocessor.
        assert_eq!(FS_IOC_ENABLE_VERITY as u64, 0x4080_6685);
        assert_eq!(FS_IOC_MEASURE_VERITY as u64, 0xc004_6686);
    }
}
