//! Everything that can stop a mount, each saying what failed and where.
//!
//! A mount either succeeds completely or leaves nothing behind: every error is returned before
//! `move_mount` attaches the overlay, and everything made until then (detached mounts, loop
//! devices, memfds) is held by fds that close on the way out.

use std::io;
use std::path::PathBuf;

use cfsgate_image::FsVeritySha256;

use crate::problem::ObjectProblem;

/// Why a composefs image was not mounted (or unmounted).
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The image file cannot be opened or its type and size read.
    #[error("cannot open image {path}: {source}")]
    OpenImage {
        /// The image file as given.
        path: PathBuf,
        /// The error the kernel returned.
        source: io::Error,
    },

    /// The image path names something other than a regular file.
    #[error("image {path} is not a regular file")]
    NotRegularFile {
        /// The image file as given.
        path: PathBuf,
    },

    /// The image is larger than `MAX_IMAGE_SIZE`, the limit for a metadata image.
    #[error("image {path} is {size} bytes, more than the {limit}-byte limit for a metadata image")]
    ImageTooLarge {
        /// The image file as given.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },

    /// Making the image immutable for the mount (measuring its verity or copying it into a
    /// sealed memfd) failed.
    #[error("cannot pin image {path} against modification ({step}): {source}")]
    Pin {
        /// The image file as given.
        path: PathBuf,
        /// The step that failed (`"read back sealed copy"`, ...).
        step: &'static str,
        /// The error the kernel returned.
        source: io::Error,
    },

    /// The pinned image's fs-verity digest is not the trusted one.
    #[error("image {path} has fs-verity digest {actual} ({how}), not the trusted digest {expected}: refusing to mount it")]
    WrongDigest {
        /// The image file as given.
        path: PathBuf,
        /// The digest the caller trusts.
        expected: FsVeritySha256,
        /// The digest the image has.
        actual: FsVeritySha256,
        /// How `actual` was obtained (`"measured by the kernel"` or computed from the sealed
        /// copy).
        how: &'static str,
    },

    /// The image's composefs header or EROFS superblock is unusable.
    #[error("image {path} is not a composefs image: {reason}")]
    BadHeader {
        /// The image file as given.
        path: PathBuf,
        /// What is wrong with the header.
        reason: String,
    },

    /// Verity mode `kernel` was asked for but the kernel or the object file system cannot
    /// enforce fs-verity.
    #[error("verity mode kernel refused: {reason}")]
    KernelVerityUnavailable {
        /// Why fs-verity is not available.
        reason: String,
    },

    /// No verity mode was given and kernel fs-verity is unavailable: cfsgate does not silently
    /// fall back to a weaker mode.
    #[error("no verity mode chosen and the kernel cannot enforce fs-verity ({reason}): choose --verity=userspace (check every object before mounting) or --verity=none explicitly")]
    NoDefaultVerityMode {
        /// Why fs-verity is not available.
        reason: String,
    },

    /// An object directory cannot be opened.
    #[error("cannot open object directory {path}: {source}")]
    ObjectDir {
        /// The object directory as given.
        path: PathBuf,
        /// The error the kernel returned.
        source: io::Error,
    },

    /// Userspace verification found objects missing or with the wrong digest.
    #[error("userspace verification of the objects failed, refusing to mount: {}", describe_problems(.problems))]
    Objects {
        /// Every problem found, one per affected file.
        problems: Vec<ObjectProblem>,
    },

    /// Reading the mounted EROFS tree to verify its objects in userspace failed.
    #[error("cannot read the image tree at {path} for userspace verification: {source}")]
    ReadTree {
        /// The path in the image being read.
        path: String,
        /// The error the kernel returned.
        source: io::Error,
    },

    /// The user namespace file of an idmapped mount cannot be opened.
    #[error("opening user namespace {}: {source}", path.display())]
    OpenUserns {
        /// The file as given (`/proc/PID/ns/user`).
        path: PathBuf,
        /// The error the kernel returned.
        source: io::Error,
    },

    /// `mount.composefs` options without `digest=`: cfsgate mounts by trusted digest only.
    #[error("option digest=<fs-verity digest of {}> is required: cfsgate mounts by trusted digest only", image.display())]
    NoDigest {
        /// The image file the digest is missing for.
        image: PathBuf,
    },

    /// The mount options are inconsistent or malformed; the text says which.
    #[error("invalid mount options: {0}")]
    Options(String),

    /// A mount system call (fsopen, fsconfig, move_mount, mount_setattr, a loop ioctl, ...)
    /// failed.
    #[error("{step} failed: {source}{}", kernel_log(.log))]
    Syscall {
        /// The call and what it was applied to (`"LOOP_CONFIGURE /dev/loop3"`, ...).
        step: String,
        /// The error the kernel returned.
        source: io::Error,
        /// Messages the kernel wrote to the fs context log (new mount API), if any.
        log: Vec<String>,
    },

    /// Unmount was asked for a path that is not an overlay mount point.
    #[error("{path} is not a composefs (overlay) mount point")]
    NotComposefsMount {
        /// The path given.
        path: PathBuf,
    },

    /// umount2 failed.
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The error the kernel returned.
        source: io::Error,
    },
}

/// At most this many object problems are spelled out in one message (the rest are counted):
/// a corrupt store can have thousands, and the first few name the fault.
const PROBLEMS_SHOWN: usize = 5;

fn describe_problems(problems: &[ObjectProblem]) -> String {
    let mut text: Vec<String> = problems
        .iter()
        .take(PROBLEMS_SHOWN)
        .map(ToString::to_string)
        .collect();
    if problems.len() > PROBLEMS_SHOWN {
        text.push(format!("and {} more", problems.len() - PROBLEMS_SHOWN));
    }
    text.join("; ")
}

fn kernel_log(log: &[String]) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!(" (kernel says: {})", log.join(" / "))
    }
}
