//! Everything that can stop a mount, each saying what failed and where.
//!
//! A mount either succeeds completely or leaves nothing behind: every error is returned before
//! `move_mount` attaches the overlay, and everything made until then (detached mounts, loop
//! devices, memfds) is held by fds that close on the way out.

use std::io;
use std::path::PathBuf;

use cfsgate_image::Sha256Digest;

use crate::objects::ObjectProblem;

/// Why a composefs image was not mounted (or unmounted).
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("cannot open image {path}: {source}")]
    OpenImage { path: PathBuf, source: io::Error },

    #[error("image {path} is not a regular file")]
    NotRegularFile { path: PathBuf },

    #[error("image {path} is {size} bytes, more than the {limit}-byte limit for a metadata image")]
    ImageTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    #[error("cannot pin image {path} against modification ({step}): {source}")]
    Pin {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },

    #[error("image {path} has fs-verity digest {actual} ({how}), not the trusted digest {expected}: refusing to mount it")]
    WrongDigest {
        path: PathBuf,
        expected: Sha256Digest,
        actual: Sha256Digest,
        how: &'static str,
    },

    #[error("image {path} is not a composefs image: {reason}")]
    BadHeader { path: PathBuf, reason: String },

    #[error("verity mode kernel refused: {reason}")]
    KernelVerityUnavailable { reason: String },

    #[error("no verity mode chosen and the kernel cannot enforce fs-verity ({reason}): choose --verity=userspace (check every object before mounting) or --verity=none explicitly")]
    NoDefaultVerityMode { reason: String },

    #[error("cannot open object directory {path}: {source}")]
    ObjectDir { path: PathBuf, source: io::Error },

    #[error("userspace verification of the objects failed, refusing to mount: {}", describe_problems(.problems))]
    Objects { problems: Vec<ObjectProblem> },

    #[error("cannot read the image tree at {path} for userspace verification: {source}")]
    ReadTree { path: String, source: io::Error },

    #[error("invalid mount options: {0}")]
    Options(String),

    #[error("{step} failed: {source}{}", kernel_log(.log))]
    Syscall {
        step: String,
        source: io::Error,
        log: Vec<String>,
    },

    #[error("{path} is not a composefs (overlay) mount point")]
    NotComposefsMount { path: PathBuf },

    #[error("cannot unmount {path}: {source}")]
    Unmount { path: PathBuf, source: io::Error },
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
