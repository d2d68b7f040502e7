//! The image, opened once, pinned against modification, checked against the trusted digest.
//!
//! "The file checked is the file mounted, in the state it was checked" holds in both cases:
//!
//! | image file | how it is pinned | how its digest is checked | what gets mounted |
//! |---|---|---|---|
//! | has fs-verity enabled | the kernel makes verity files immutable | `FS_IOC_MEASURE_VERITY` on the open fd | that same fd |
//! | no fs-verity | its bytes are copied into a memfd sealed with `F_SEAL_WRITE \| F_SEAL_GROW \| F_SEAL_SHRINK \| F_SEAL_SEAL` | computed in userspace by reading the *sealed* memfd | that same memfd |
//!
//! Once sealed, nobody (root included) can change the memfd, so an image modified after its
//! digest was checked cannot be mounted in its modified form: a later writer changes the original
//! file, never the copy that was checked. The copy costs the image's size in memory; a composefs
//! image holds metadata only (a few MiB for a whole distribution's /usr).
//!
//! composefs header (first 32 bytes), checked before mounting:
//!
//! | offset | size | field | accepted |
//! |---|---|---|---|
//! | 0 | 4 | magic | 0xd078629a (le32) |
//! | 4 | 4 | version | 1 |
//! | 8 | 4 | flags | bit 0 = HAS_ACL (others must be 0) |
//! | 12 | 4 | composefs_version | 0 or 1 |

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use cfsgate_image::erofs::format::{
    COMPOSEFS_FLAGS_HAS_ACL, COMPOSEFS_HEADER_SIZE, COMPOSEFS_HEADER_VERSION, COMPOSEFS_MAGIC,
};
use cfsgate_image::fsverity::{FsVerityHasher, Sha256};
use cfsgate_image::FsVeritySha256;
use cfsgate_sys::file::{self, FileError, Follow};
use rustix::fs::{MemfdFlags, SealFlags};

use crate::error::MountError;
use crate::verity::measure_verity;

/// Largest image accepted. A composefs image stores metadata only (about 100 bytes a file), so
/// 1 GiB is ten million files; anything larger is refused rather than copied into memory.
pub const MAX_IMAGE_SIZE: u64 = 1 << 30;

/// Highest composefs format version (`composefs_version` header field) this mounter knows.
pub const MAX_COMPOSEFS_VERSION: u32 = 1;

/// How the bytes being mounted were pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagePinning {
    /// The image file has fs-verity enabled: the kernel keeps it immutable and measured it.
    VerityFile,
    /// The bytes were copied into a sealed memfd and the digest computed from it.
    SealedMemfd,
}

/// An image whose bytes equal the trusted digest and cannot change any more.
#[derive(Debug)]
pub struct PinnedImage {
    /// The fd to mount (the verity file or the sealed memfd).
    fd: OwnedFd,
    /// How the bytes are kept from changing.
    pub pinning: ImagePinning,
    /// The image's size in bytes.
    pub size: u64,
    /// Header flag HAS_ACL: mount with ACL support (else `noacl`).
    pub has_acl: bool,
    /// The image file name, for messages.
    pub path: PathBuf,
}

impl PinnedImage {
    /// Open `path` once, pin its bytes, and check them against `trusted` and the header rules.
    pub fn open(path: &Path, trusted: &FsVeritySha256) -> Result<Self, MountError> {
        let open_err = |source: io::Error| MountError::OpenImage {
            path: path.to_owned(),
            source,
        };
        // Type-checked before any blocking open: a FIFO at images/<digest> must not make the
        // mount wait for a writer (#14 item 6).
        let file = OwnedFd::from(file::open(path, Follow::Symlinks).map_err(|e| match e {
            FileError::NotRegular { .. } | FileError::Changed { .. } => {
                MountError::NotRegularFile {
                    path: path.to_owned(),
                }
            }
            FileError::Open { source, .. } | FileError::Read { source, .. } => open_err(source),
            other => open_err(io::Error::other(other.to_string())),
        })?);
        let stat = rustix::fs::fstat(&file).map_err(|e| open_err(e.into()))?;
        let size = stat.st_size as u64;
        if size > MAX_IMAGE_SIZE {
            return Err(MountError::ImageTooLarge {
                path: path.to_owned(),
                size,
                limit: MAX_IMAGE_SIZE,
            });
        }
        let (fd, pinning, actual, how) = match measure_verity(&file).map_err(open_err)? {
            Some(measured) => (
                file,
                ImagePinning::VerityFile,
                measured,
                "measured by the kernel",
            ),
            None => {
                let sealed = seal_copy(path, File::from(file), size)?;
                let mut reader = File::from(sealed);
                // Hashed from the sealed copy, not from the bytes as they went in: until the
                // seal, another root process could write to the memfd (/proc/PID/fd/N).
                let digest =
                    digest_sealed(&mut reader, size).map_err(|source| MountError::Pin {
                        path: path.to_owned(),
                        step: "read back sealed copy",
                        source,
                    })?;
                (
                    OwnedFd::from(reader),
                    ImagePinning::SealedMemfd,
                    digest,
                    "computed from a sealed copy",
                )
            }
        };
        if actual != *trusted {
            return Err(MountError::WrongDigest {
                path: path.to_owned(),
                expected: *trusted,
                actual,
                how,
            });
        }
        let has_acl = check_header(path, &fd)?;
        Ok(PinnedImage {
            fd,
            pinning,
            size,
            has_acl,
            path: path.to_owned(),
        })
    }

    /// The fd whose bytes were checked.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The read-back buffer's largest size: few reads for a large image, and no more than the
/// image (a 45 KiB image touches 11 pages of it, not the 64 of a fixed 256 KiB buffer, nor an
/// mmap and munmap of one).
const READ_BACK_CHUNK: u64 = 256 * 1024;

/// The fs-verity digest of the sealed copy, read from its start.
fn digest_sealed(reader: &mut File, size: u64) -> io::Result<FsVeritySha256> {
    let mut hasher = FsVerityHasher::<Sha256>::new();
    let mut buf = vec![0u8; size.clamp(1, READ_BACK_CHUNK) as usize];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Copy `size` bytes of `file` into a new memfd and seal it against any change.
fn seal_copy(path: &Path, mut file: File, size: u64) -> Result<OwnedFd, MountError> {
    let pin_err = |step: &'static str| {
        move |source: io::Error| MountError::Pin {
            path: path.to_owned(),
            step,
            source,
        }
    };
    let memfd = rustix::fs::memfd_create(
        "cfsgate-image",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| pin_err("memfd_create")(e.into()))?;
    let mut copy = File::from(memfd);
    // Bounded by the size seen at open: a file growing meanwhile cannot make the copy unbounded
    // (whatever is copied is what gets hashed and mounted).
    let copied =
        io::copy(&mut (&mut file).take(size), &mut copy).map_err(pin_err("copy into memfd"))?;
    if copied != size {
        return Err(pin_err("copy into memfd")(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("image shrank while being copied ({copied} of {size} bytes)"),
        )));
    }
    let seals = SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL;
    rustix::fs::fcntl_add_seals(&copy, seals).map_err(|e| pin_err("seal memfd")(e.into()))?;
    let now = rustix::fs::fcntl_get_seals(&copy).map_err(|e| pin_err("read seals")(e.into()))?;
    if !now.contains(seals) {
        return Err(pin_err("seal memfd")(io::Error::other(format!(
            "seals {now:?} lack {seals:?}"
        ))));
    }
    copy.seek(SeekFrom::Start(0))
        .map_err(pin_err("rewind memfd"))?;
    Ok(OwnedFd::from(copy))
}

/// Check the composefs header of the pinned bytes; returns the HAS_ACL flag.
fn check_header(path: &Path, fd: &OwnedFd) -> Result<bool, MountError> {
    let bad = |reason: String| MountError::BadHeader {
        path: path.to_owned(),
        reason,
    };
    let mut header = [0u8; COMPOSEFS_HEADER_SIZE];
    let n = rustix::io::pread(fd, &mut header, 0).map_err(|e| MountError::OpenImage {
        path: path.to_owned(),
        source: e.into(),
    })?;
    if n < COMPOSEFS_HEADER_SIZE {
        return Err(bad(format!(
            "only {n} bytes, shorter than the {COMPOSEFS_HEADER_SIZE}-byte header"
        )));
    }
    let field =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (magic, version, flags, cfs_version) = (field(0), field(4), field(8), field(12));
    if magic != COMPOSEFS_MAGIC {
        return Err(bad(format!(
            "magic {magic:#010x} is not {COMPOSEFS_MAGIC:#010x}"
        )));
    }
    if version != COMPOSEFS_HEADER_VERSION {
        return Err(bad(format!(
            "header version {version}, expected {COMPOSEFS_HEADER_VERSION}"
        )));
    }
    if flags & !COMPOSEFS_FLAGS_HAS_ACL != 0 {
        return Err(bad(format!("unknown header flags {flags:#x}")));
    }
    if cfs_version > MAX_COMPOSEFS_VERSION {
        return Err(bad(format!(
            "composefs format version {cfs_version} is newer than {MAX_COMPOSEFS_VERSION}"
        )));
    }
    Ok(flags & COMPOSEFS_FLAGS_HAS_ACL != 0)
}
