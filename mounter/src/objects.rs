//! Userspace verification of the objects an image references (verity mode `userspace`).
//!
//! The list of references is read from the *kernel's* view of the pinned image: the detached
//! EROFS mount that the overlay will use is walked, and every regular file's overlay xattrs are
//! read from it. So the references checked are exactly those overlayfs will follow, whatever a
//! userspace parser might think of the same bytes.
//!
//! | xattr on a regular file | meaning |
//! |---|---|
//! | `trusted.overlay.metacopy` absent | content is inline in the image: nothing to check |
//! | `trusted.overlay.metacopy` = `00 24 00 01` + 32 bytes | the object's expected SHA-256 fs-verity digest |
//! | `trusted.overlay.metacopy` = empty | no digest recorded: refused (nothing to check against) |
//! | `trusted.overlay.redirect` = `/xx/yyyy…` | the object's path inside each object directory |
//!
//! Like overlayfs, the object is looked up in the object directories in order, the first that
//! has the path wins; lookups are the store's ([`ObjectDir::open_beneath`]): they never leave
//! the directory (`RESOLVE_BENEATH`, no symlinks) and return only regular files.
//! Objects are hashed in parallel (rayon), each once however many files share it; an object with
//! fs-verity enabled is measured by the kernel instead of hashed.
//!
//! This check happens once, before the mount: unlike kernel verity it cannot notice an object
//! that is changed *after* the mount. It is the integrity a kernel without fs-verity allows.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use cfsgate_image::erofs::format::{
    METACOPY_HEADER, XATTR_OVERLAY_METACOPY, XATTR_OVERLAY_REDIRECT,
};
use cfsgate_image::fsverity::{digest_reader, Sha256};
use cfsgate_image::store::{ObjectDir, StoreError};
use cfsgate_image::FsVeritySha256;
use rayon::prelude::*;
use rustix::fs::{Dir, FileType, Mode, OFlags};

use crate::error::MountError;
pub use crate::problem::{ObjectProblem, ProblemKind};
use crate::verity::measure_verity;

/// Longest redirect value read (a path inside an object directory; the kernel's PATH_MAX).
const MAX_REDIRECT_LEN: usize = 4096;
/// Size of a metacopy xattr carrying a SHA-256 digest.
const METACOPY_WITH_DIGEST_LEN: usize = 4 + FsVeritySha256::LEN;

/// What was verified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyStats {
    /// Regular files whose content lives in an object.
    pub external_files: u64,
    /// Distinct objects checked.
    pub objects: u64,
    /// Bytes hashed in userspace (objects measured by the kernel count zero).
    pub bytes_hashed: u64,
}

/// One distinct object to check, with every file that uses it.
struct Reference {
    digest: FsVeritySha256,
    files: Vec<String>,
}

/// Check every object the mounted image `erofs_root` references against `object_dirs`.
pub fn verify_objects(
    erofs_root: BorrowedFd<'_>,
    object_dirs: &[ObjectDir],
) -> Result<VerifyStats, MountError> {
    let mut references: BTreeMap<String, Reference> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut stats = VerifyStats::default();
    collect(erofs_root, &mut references, &mut problems, &mut stats)?;

    stats.objects = references.len() as u64;
    let outcomes: Vec<(Option<ProblemKind>, u64)> = references
        .par_iter()
        .map(|(object, reference)| check_object(object, &reference.digest, object_dirs))
        .collect();
    for ((object, reference), (problem, hashed)) in references.iter().zip(outcomes) {
        stats.bytes_hashed += hashed;
        if let Some(kind) = problem {
            for file in &reference.files {
                problems.push(ObjectProblem {
                    file: file.clone(),
                    object: Some(object.clone()),
                    kind: kind.clone(),
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(stats)
    } else {
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        Err(MountError::Objects { problems })
    }
}

/// Walk the image from `root`, collecting the references of its regular files. Iterative, with
/// one directory fd open at a time (each reopened from the root by its path), so neither the
/// stack nor the fd table grows with the depth of the tree.
/// A directory whose path relative to its anchor is longer than this becomes an anchor.
const ANCHOR_AFTER: usize = 2048;

fn collect(
    root: BorrowedFd<'_>,
    references: &mut BTreeMap<String, Reference>,
    problems: &mut Vec<ObjectProblem>,
    stats: &mut VerifyStats,
) -> Result<(), MountError> {
    let tree_err = |path: &Path, e: rustix::io::Errno| MountError::ReadTree {
        path: display_path(path),
        source: e.into(),
    };
    // Each pending directory is opened relative to an anchor directory that stays open: the
    // root, or an ancestor whose path grew past ANCHOR_AFTER bytes. Relative paths then stay
    // far below PATH_MAX however deep the tree, with only a few anchors open at a time.
    let root = rustix::io::dup(root).map_err(|e| tree_err(Path::new("."), e))?;
    let mut pending: Vec<(Rc<OwnedFd>, PathBuf, PathBuf)> =
        vec![(Rc::new(root), PathBuf::from("."), PathBuf::from("."))];
    while let Some((anchor, rel, dir_path)) = pending.pop() {
        let dir = rustix::fs::openat(
            &*anchor,
            &rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| tree_err(&dir_path, e))?;
        let (child_anchor, child_base) = if rel.as_os_str().len() > ANCHOR_AFTER {
            let reopened = rustix::io::dup(&dir).map_err(|e| tree_err(&dir_path, e))?;
            (Rc::new(reopened), PathBuf::from("."))
        } else {
            (anchor, rel)
        };
        for entry in Dir::read_from(&dir).map_err(|e| tree_err(&dir_path, e))? {
            let entry = entry.map_err(|e| tree_err(&dir_path, e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let child = dir_path.join(OsStr::from_bytes(name));
            match entry.file_type() {
                FileType::Directory => pending.push((
                    Rc::clone(&child_anchor),
                    child_base.join(OsStr::from_bytes(name)),
                    child,
                )),
                FileType::RegularFile => {
                    let fd = rustix::fs::openat(
                        &dir,
                        entry.file_name(),
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
                        Mode::empty(),
                    )
                    .map_err(|e| tree_err(&child, e))?;
                    file_reference(
                        fd.as_fd(),
                        display_path(&child),
                        references,
                        problems,
                        stats,
                    )?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The image path of a walk path (`./a/b` → `/a/b`).
fn display_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    match text.strip_prefix('.') {
        Some("") => "/".into(),
        Some(rest) => rest.into(),
        None => text.into_owned(),
    }
}

/// Read one regular file's overlay xattrs and record its reference (or a problem).
fn file_reference(
    fd: BorrowedFd<'_>,
    path: String,
    references: &mut BTreeMap<String, Reference>,
    problems: &mut Vec<ObjectProblem>,
    stats: &mut VerifyStats,
) -> Result<(), MountError> {
    let Some(metacopy) = read_xattr(fd, XATTR_OVERLAY_METACOPY, METACOPY_WITH_DIGEST_LEN, &path)?
    else {
        return Ok(());
    };
    stats.external_files += 1;
    let digest = match metacopy.len() {
        0 => {
            problems.push(ObjectProblem {
                file: path,
                object: None,
                kind: ProblemKind::NoReference("fs-verity digest"),
            });
            return Ok(());
        }
        METACOPY_WITH_DIGEST_LEN if metacopy[..4] == METACOPY_HEADER => {
            FsVeritySha256::from_slice(&metacopy[4..])
        }
        _ => None,
    };
    let Some(digest) = digest else {
        problems.push(ObjectProblem {
            file: path,
            object: None,
            kind: ProblemKind::BadMetacopy(metacopy.len()),
        });
        return Ok(());
    };
    let Some(redirect) = read_xattr(fd, XATTR_OVERLAY_REDIRECT, MAX_REDIRECT_LEN, &path)? else {
        problems.push(ObjectProblem {
            file: path,
            object: None,
            kind: ProblemKind::NoReference("backing object path"),
        });
        return Ok(());
    };
    let object = String::from_utf8_lossy(&redirect)
        .trim_start_matches('/')
        .to_owned();
    let reference = references.entry(object).or_insert_with(|| Reference {
        digest,
        files: Vec::new(),
    });
    if reference.digest == digest {
        reference.files.push(path);
    } else {
        // Two files point at one object with different digests: at most one can be right, and
        // the object check below reports the files whose digest it does not match.
        problems.push(ObjectProblem {
            file: path,
            object: None,
            kind: ProblemKind::Unreadable(
                "shares its object path with a file expecting another digest".into(),
            ),
        });
    }
    Ok(())
}

/// One xattr value of at most `max` bytes, `None` when absent.
fn read_xattr(
    fd: BorrowedFd<'_>,
    key: &[u8],
    max: usize,
    path: &str,
) -> Result<Option<Vec<u8>>, MountError> {
    let mut buf = vec![0u8; max];
    let key = std::str::from_utf8(key).unwrap_or_default();
    match rustix::fs::fgetxattr(fd, key, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(MountError::ReadTree {
            path: format!("{path} (xattr {key})"),
            source: e.into(),
        }),
    }
}

/// Find `object` in the first object directory that has it and compare its digest.
/// Returns the problem, if any, and the number of bytes hashed.
fn check_object(
    object: &str,
    expected: &FsVeritySha256,
    object_dirs: &[ObjectDir],
) -> (Option<ProblemKind>, u64) {
    for dir in object_dirs {
        // The store's type-checked lookup: beneath the directory, no symlinks, a FIFO in place
        // of an object is refused without blocking (#14 item 6).
        let file = match dir.open_beneath(object) {
            Ok(Some(file)) => file,
            Ok(None) => continue,
            Err(e) => return (Some(ProblemKind::Unreadable(e.to_string())), 0),
        };
        return match digest_of(file) {
            Ok((actual, _)) if actual != *expected => (
                Some(ProblemKind::DigestMismatch {
                    expected: *expected,
                    actual,
                }),
                0,
            ),
            Ok((_, hashed)) => (None, hashed),
            Err(e) => (Some(ProblemKind::Unreadable(e.to_string())), 0),
        };
    }
    (Some(ProblemKind::Missing), 0)
}

/// The fs-verity digest of an object (a regular file): from the kernel when it has verity
/// enabled, else hashed.
fn digest_of(file: File) -> io::Result<(FsVeritySha256, u64)> {
    if let Some(measured) = measure_verity(&file)? {
        return Ok((measured, 0));
    }
    let mut counted = Counted { file, bytes: 0 };
    let digest = digest_reader::<Sha256>(&mut counted)?;
    Ok((digest, counted.bytes))
}

/// A reader counting the bytes it yields (no extra `fstat` per object for the statistics).
struct Counted {
    file: File,
    bytes: u64,
}

impl io::Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Open each object directory once (the fds are then both verified through and mounted).
pub fn open_object_dirs(dirs: &[PathBuf]) -> Result<Vec<ObjectDir>, MountError> {
    dirs.iter()
        .map(|path| {
            ObjectDir::open(path).map_err(|e| MountError::ObjectDir {
                path: path.clone(),
                source: match e {
                    StoreError::Io { source, .. } => source,
                    other => io::Error::other(other.to_string()),
                },
            })
        })
        .collect()
}
