//! The EROFS layer: the pinned image mounted read-only as a *detached* mount (an fd from
//! `fsmount`, attached nowhere, so it never shows in /proc/self/mountinfo).
//!
//! | try | source | when it is used |
//! |---|---|---|
//! | 1 | `source=/proc/self/fd/N`, the pinned fd itself (file-backed EROFS, kernel ≥ 6.12) | the pinned fd is a regular file on a filesystem with `read_folio` (a verity image file) |
//! | 2 | `source=/dev/loopN`, a loop device over the pinned fd: read-only, autoclear, direct I/O when the backing file allows it | the kernel refuses the file (ENOTBLK: no file-backed EROFS), and always for a sealed memfd copy (shmem has no `read_folio`: not tried) |
//!
//! Options: `ro`, and `noacl` unless the composefs header says the image has ACLs. The loop
//! device is released by the kernel (autoclear) when the EROFS superblock goes away, which is
//! when the overlay on top of it is unmounted.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::mount::MountAttrFlags;

use crate::error::MountError;
use crate::fsctx::{fd_path, syscall_error, FsContext};
use crate::pinned::{ImagePinning, PinnedImage};
use cfsgate_sys::loopdev::{
    loop_configure, loop_get_free, LO_FLAGS_AUTOCLEAR, LO_FLAGS_DIRECT_IO, LO_FLAGS_READ_ONLY,
};

/// How many times to ask for a free loop device when another process takes it first.
const LOOP_ATTACH_ATTEMPTS: usize = 16;

/// What the EROFS layer is mounted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErofsSource {
    /// Straight from the pinned file.
    File,
    /// From /dev/loopN (with whether direct I/O was accepted).
    LoopDevice {
        /// N of /dev/loopN.
        number: u32,
        /// Whether the loop device accepted direct I/O (`LO_FLAGS_DIRECT_IO`).
        direct_io: bool,
    },
}

/// A detached, read-only EROFS mount of a pinned image.
pub struct ErofsMount {
    /// The detached mount (from `fsmount`), not attached anywhere yet.
    pub mount: OwnedFd,
    /// Where its data comes from.
    pub source: ErofsSource,
}

/// Mount `image` as a detached read-only EROFS mount.
pub fn mount_erofs(image: &PinnedImage) -> Result<ErofsMount, MountError> {
    // A memfd is shmem, which has no read_folio: the kernel refuses it as a file-backed source
    // (ENOTBLK, every kernel to 6.18), so a sealed copy goes straight to a loop device.
    if image.pinning == ImagePinning::VerityFile {
        match try_mount(image, &fd_path(image.fd())) {
            Ok(mount) => {
                return Ok(ErofsMount {
                    mount,
                    source: ErofsSource::File,
                })
            }
            Err((rustix::io::Errno::NOTBLK, _)) => {}
            Err((_, err)) => return Err(err),
        }
    }
    let (loop_fd, number, direct_io) = attach_loop(image.fd(), &image.path.to_string_lossy())?;
    let mount = try_mount(image, &format!("/dev/loop{number}")).map_err(|(_, e)| e)?;
    // The superblock holds the device open now; closing ours lets autoclear fire at unmount.
    drop(loop_fd);
    Ok(ErofsMount {
        mount,
        source: ErofsSource::LoopDevice { number, direct_io },
    })
}

fn try_mount(
    image: &PinnedImage,
    source: &str,
) -> Result<OwnedFd, (rustix::io::Errno, MountError)> {
    let no_errno = |e: MountError| (rustix::io::Errno::INVAL, e);
    let ctx = FsContext::open("erofs").map_err(no_errno)?;
    ctx.set_string("source", source).map_err(no_errno)?;
    ctx.set_flag("ro").map_err(no_errno)?;
    if !image.has_acl {
        ctx.set_flag("noacl").map_err(no_errno)?;
    }
    ctx.create()?;
    ctx.mount(MountAttrFlags::MOUNT_ATTR_RDONLY)
        .map_err(no_errno)
}

/// Attach `backing` to a free loop device, read-only and autoclear, with direct I/O if the
/// backing file supports it. Returns the open device, its number and whether direct I/O is on.
fn attach_loop(backing: BorrowedFd<'_>, name: &str) -> Result<(OwnedFd, u32, bool), MountError> {
    let control = rustix::fs::open(
        "/dev/loop-control",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| syscall_error("open /dev/loop-control".into(), e, None))?;
    let mut last_busy = None;
    for _ in 0..LOOP_ATTACH_ATTEMPTS {
        let number = loop_get_free(&control).map_err(|e| MountError::Syscall {
            step: "LOOP_CTL_GET_FREE".into(),
            source: e,
            log: Vec::new(),
        })?;
        let path = format!("/dev/loop{number}");
        let dev = rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| syscall_error(format!("open {path}"), e, None))?;
        let base = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
        let mut result = loop_configure(
            dev.as_fd(),
            backing,
            base | LO_FLAGS_DIRECT_IO,
            name.as_bytes(),
        );
        let mut direct_io = true;
        if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
            // The backing file cannot do direct I/O: buffered reads are correct, just cached twice.
            result = loop_configure(dev.as_fd(), backing, base, name.as_bytes());
            direct_io = false;
        }
        match result {
            Ok(()) => return Ok((dev, number, direct_io)),
            // Another process configured this device between GET_FREE and CONFIGURE: retry.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last_busy = Some(e),
            Err(e) => {
                return Err(MountError::Syscall {
                    step: format!("LOOP_CONFIGURE {path}"),
                    source: e,
                    log: Vec::new(),
                })
            }
        }
    }
    Err(MountError::Syscall {
        step: format!(
            "attaching a loop device ({LOOP_ATTACH_ATTEMPTS} attempts, all taken by others)"
        ),
        source: last_busy.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EBUSY)),
        log: Vec::new(),
    })
}
