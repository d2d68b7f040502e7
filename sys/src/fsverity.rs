//! fs-verity ioctls (linux/fsverity.h): turn verity on for a file, and ask the kernel for the
//! digest it enforces.
//!
//! | call | ioctl | argument |
//! |---|---|---|
//! | [`enable`] | `FS_IOC_ENABLE_VERITY` = `_IOW('f', 133, struct fsverity_enable_arg)` | SHA-256, 4096-byte blocks, no salt, no signature |
//! | [`measure_sha256`] | `FS_IOC_MEASURE_VERITY` = `_IOWR('f', 134, struct fsverity_digest)` | head + room for a SHA-512 digest |
//!
//! Layouts:
//!
//! | struct | fields (offset: type name) | size |
//! |---|---|---|
//! | `fsverity_enable_arg` | 0: u32 version, 4: u32 hash_algorithm, 8: u32 block_size, 12: u32 salt_size, 16: u64 salt_ptr, 24: u32 sig_size, 28: u32 reserved, 32: u64 sig_ptr, 40: u64 reserved\[11\] | 128 |
//! | `fsverity_digest` | 0: u16 digest_algorithm, 2: u16 digest_size (in: buffer room, out: length), 4: digest bytes | 4 + room |
//!
//! Enabling fails in ways callers must tell apart, so [`EnableError`] names them: the kernel or
//! file system has no fs-verity, verity is already on (an object hard-linked from elsewhere:
//! fine), or the file is open for writing somewhere (ETXTBSY: a writer must close first).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsFd;

use rustix::io::Errno;
use rustix::ioctl::{self, opcode, Opcode};

/// `FS_VERITY_HASH_ALG_SHA256`.
const FS_VERITY_HASH_ALG_SHA256: u32 = 1;
/// The Merkle tree block size composefs uses.
const FS_VERITY_BLOCK_SIZE: u32 = 4096;
/// Room for the largest digest (SHA-512) in a measure request.
const FS_VERITY_MAX_DIGEST_SIZE: usize = 64;
/// Length of a SHA-256 digest.
pub const SHA256_DIGEST_LEN: usize = 32;

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

/// Why fs-verity could not be enabled on a file.
#[derive(Debug, thiserror::Error)]
pub enum EnableError {
    /// The kernel or the file system cannot do fs-verity (EOPNOTSUPP, ENOTTY, EINVAL for this
    /// block size).
    #[error("fs-verity is not supported here: {0}")]
    NotSupported(#[source] io::Error),
    /// The file already has fs-verity (EEXIST).
    #[error("fs-verity is already enabled on this file")]
    AlreadyEnabled,
    /// The file is open for writing (ETXTBSY), by us or anyone else.
    #[error("the file is open for writing, fs-verity cannot be enabled")]
    OpenForWrite,
    /// Any other failure (EIO, ENOSPC, EPERM, ...).
    #[error("enabling fs-verity failed: {0}")]
    Other(#[source] io::Error),
}

impl From<EnableError> for io::Error {
    fn from(err: EnableError) -> Self {
        match err {
            EnableError::NotSupported(e) | EnableError::Other(e) => e,
            EnableError::AlreadyEnabled => Errno::EXIST.into(),
            EnableError::OpenForWrite => Errno::TXTBSY.into(),
        }
    }
}

/// Enable fs-verity (SHA-256, 4096-byte blocks, no salt, no signature) on `fd`, a file opened
/// read-only with no writable descriptor open anywhere.
pub fn enable(fd: impl AsFd) -> Result<(), EnableError> {
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
    let result = unsafe {
        let call = ioctl::Setter::<FS_IOC_ENABLE_VERITY, FsverityEnableArg>::new(arg);
        ioctl::ioctl(fd, call)
    };
    match result {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => Err(EnableError::AlreadyEnabled),
        Err(Errno::TXTBSY) => Err(EnableError::OpenForWrite),
        Err(e @ (Errno::OPNOTSUPP | Errno::NOTTY | Errno::INVAL)) => {
            Err(EnableError::NotSupported(e.into()))
        }
        Err(e) => Err(EnableError::Other(e.into())),
    }
}

/// The SHA-256 fs-verity digest the kernel holds for `fd`, or `None` when the file does not have
/// fs-verity enabled (ENODATA) or the kernel/filesystem has no fs-verity (ENOTTY, EOPNOTSUPP).
/// A file with a non-SHA-256 digest is an error (composefs uses SHA-256 only).
pub fn measure_sha256(fd: impl AsFd) -> io::Result<Option<[u8; SHA256_DIGEST_LEN]>> {
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
        Err(Errno::NODATA | Errno::NOTTY | Errno::OPNOTSUPP) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = usize::from(buf.head.digest_size);
    if u32::from(buf.head.digest_algorithm) != FS_VERITY_HASH_ALG_SHA256
        || size != SHA256_DIGEST_LEN
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "file has fs-verity algorithm {} with a {size}-byte digest; composefs needs SHA-256",
                buf.head.digest_algorithm
            ),
        ));
    }
    let mut digest = [0u8; SHA256_DIGEST_LEN];
    digest.copy_from_slice(&buf.digest[..SHA256_DIGEST_LEN]);
    Ok(Some(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_sizes_and_opcodes_match_the_kernel_headers() {
        assert_eq!(std::mem::size_of::<FsverityEnableArg>(), 128);
        assert_eq!(std::mem::size_of::<FsverityDigestHead>(), 4);
        // Values from linux/fsverity.h as printed by the C preprocessor.
        assert_eq!(FS_IOC_ENABLE_VERITY as u64, 0x4080_6685);
        assert_eq!(FS_IOC_MEASURE_VERITY as u64, 0xc004_6686);
    }

    #[test]
    fn a_file_without_verity_measures_as_none() {
        let file = tempfile::tempfile().expect("tempfile");
        assert_eq!(measure_sha256(&file).expect("measure"), None);
    }

    #[test]
    fn a_writable_file_or_an_unsupported_filesystem_is_a_typed_error() {
        // A file open for writing: ETXTBSY where fs-verity exists, "not supported" elsewhere
        // (tmpfs, and this kernel has no fs-verity at all). Never success.
        let file = tempfile::tempfile().expect("tempfile");
        let err = enable(&file).expect_err("writable file");
        assert!(
            matches!(
                err,
                EnableError::OpenForWrite | EnableError::NotSupported(_)
            ),
            "{err:?}"
        );
    }
}
