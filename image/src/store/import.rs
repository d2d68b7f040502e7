//! Importing content: a directory tree, or a dump file plus a directory of backing files,
//! becomes objects and one image (and optionally a ref), in one shared-lock hold so a
//! concurrent gc cannot remove an object between its write and the image that references it.
//!
//! Each external file's content is hashed, and copied into the store only if its object is
//! absent (files in parallel). A directory's files are hashed by the walk itself (all cores,
//! overlapped with it), so a present object costs no second read; an absent one is read again:
//! up to [`SINGLE_READ_MAX`] once into memory, hashed, checked against the walk's digest and
//! written; larger, copied while hashed again, and the copy must match. A dump's files: up to
//! [`SINGLE_READ_MAX`] read once into memory; larger, hashed, then copied while hashed again,
//! and the copy must match. A dump file's
//! DIGEST is a claim: the backing file is always hashed and must match it, so a dump naming the
//! wrong backing file, or a source that changes during import (size or digest), is an error,
//! not a wrong image.
//! The tree's files are then pointed at their objects (`backing = xx/rest`, `digest`), the EROFS
//! writer makes the image, and [`Repository::write_image`] stores it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::dump::{self, ParseMode};
use crate::fromdir::BuildOptions;
use crate::fsverity::{self, FsVeritySha256};
use crate::tree::{Content, FileData, InodeId, Tree};

use super::objects::copy_hashing;
use super::{BatchStats, LockKind, ObjectBatch, Repository, StoreError};

/// Longest dump file accepted (the dump is parsed into memory as a tree; a dump line is about
/// 200 bytes, so this is millions of files).
pub const MAX_DUMP_LEN: u64 = 4 << 30;

/// Files up to this size are read once into memory, hashed, and written from memory only if
/// absent; larger ones are hashed, then copied if absent (bounded memory: one buffer a thread).
pub const SINGLE_READ_MAX: u64 = 1 << 20;

/// What an import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// The stored image.
    pub image: FsVeritySha256,
    /// Objects written and found already present.
    pub objects: BatchStats,
}

/// One external file to copy into the store.
struct Job {
    inode: InodeId,
    source: PathBuf,
    /// The digest the source declared, if any.
    expected: Option<FsVeritySha256>,
    /// `expected` was computed by this import's own walk of the source (not a dump's claim):
    /// a present object is then taken without reading the file again.
    walked: bool,
    /// The size the tree records (checked when there is no digest to check).
    size: u64,
}

impl Repository {
    /// Import `source` as `cfsgate create` names it: a directory, or a dump file whose backing
    /// files are under `basedir` (required for a dump, refused for a directory).
    pub fn import_source(
        &self,
        source: &Path,
        basedir: Option<&Path>,
        ref_name: Option<&str>,
    ) -> Result<ImportReport, StoreError> {
        let bad = |reason: &str| StoreError::BadSource {
            path: source.to_path_buf(),
            reason: reason.to_string(),
        };
        // stat does not block, whatever is there; a dump file is opened by import_dump, which
        // refuses anything but a regular file before a blocking open.
        let meta = std::fs::metadata(source).map_err(StoreError::io("stat", source))?;
        match (meta.is_dir(), basedir) {
            (true, None) => self.import_tree_from_dir(source, ref_name),
            (true, Some(_)) => Err(bad("a directory: --basedir is for dump files")),
            (false, Some(basedir)) => self.import_dump(source, basedir, ref_name),
            (false, None) => Err(bad(
                "not a directory: a dump file needs --basedir DIR (where its backing files are)",
            )),
        }
    }

    /// Import a directory: every file's content becomes an object, the tree becomes an image.
    pub fn import_tree_from_dir(
        &self,
        root: &Path,
        ref_name: Option<&str>,
    ) -> Result<ImportReport, StoreError> {
        if let Some(name) = ref_name {
            super::refs::validate_ref_name(name)?;
        }
        // The walk hashes every file (all cores, overlapped with the walk itself); a file is
        // read again only when its object is absent, and copied then (hashed again while being
        // copied: a file that changed since the walk is an error), so re-importing a tree
        // costs what building its image does (see `copy_job`).
        let opts = BuildOptions {
            compute_digests: true,
            ..BuildOptions::default()
        };
        let tree =
            crate::fromdir::build_from_dir(root, &opts).map_err(|e| StoreError::BadSource {
                path: root.to_path_buf(),
                reason: e.to_string(),
            })?;
        let jobs = tree
            .bfs()
            .into_iter()
            .filter_map(|(inode, path)| match &tree.inode(inode).content {
                // An empty file has no object: the image stores it as a plain empty inode.
                Content::Regular(FileData::External { digest, size, .. }) if *size > 0 => {
                    Some(Job {
                        inode,
                        source: root
                            .join(OsStr::from_bytes(path.strip_prefix(b"/").unwrap_or(&path))),
                        expected: *digest,
                        walked: true,
                        size: *size,
                    })
                }
                _ => None,
            })
            .collect();
        self.import(tree, jobs, ref_name)
    }

    /// Import a dump file whose regular files' PAYLOAD paths are relative to `basedir`; each
    /// backing file is copied in and checked against the dump's DIGEST when it has one.
    pub fn import_dump(
        &self,
        dump_file: &Path,
        basedir: &Path,
        ref_name: Option<&str>,
    ) -> Result<ImportReport, StoreError> {
        if let Some(name) = ref_name {
            super::refs::validate_ref_name(name)?;
        }
        // Type-checked before the open: a FIFO named as the dump must not block the import.
        let file = cfsgate_sys::file::open(dump_file, cfsgate_sys::file::Follow::Symlinks)
            .map_err(|e| StoreError::BadSource {
                path: dump_file.to_path_buf(),
                reason: e.reason(),
            })?;
        let reader = BufReader::new(std::io::Read::take(file, MAX_DUMP_LEN));
        let tree = dump::parse(reader, ParseMode::Strict).map_err(|e| StoreError::BadSource {
            path: dump_file.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut jobs = Vec::new();
        for (inode, _) in tree.bfs() {
            if let Content::Regular(FileData::External {
                digest,
                backing: Some(backing),
                size,
            }) = &tree.inode(inode).content
            {
                jobs.push(Job {
                    inode,
                    source: backing_source(basedir, backing)?,
                    expected: *digest,
                    walked: false,
                    size: *size,
                });
            }
        }
        self.import(tree, jobs, ref_name)
    }

    /// Copy the jobs' files in, point the tree at the objects, store the image and the ref.
    fn import(
        &self,
        mut tree: Tree,
        jobs: Vec<Job>,
        ref_name: Option<&str>,
    ) -> Result<ImportReport, StoreError> {
        let _lock = self.lock(LockKind::Shared)?;
        let batch = self.object_batch()?;
        let stored: Vec<(InodeId, FsVeritySha256)> = jobs
            .par_iter()
            .map(|job| copy_job(&batch, job).map(|d| (job.inode, d)))
            .collect::<Result<_, _>>()?;
        let objects = batch.commit()?;
        for (inode, object) in stored {
            if let Content::Regular(FileData::External {
                digest, backing, ..
            }) = &mut tree.inode_mut(inode).content
            {
                *digest = Some(object);
                *backing = Some(object.object_path().into_bytes().into());
            }
        }
        let image = self.write_tree_owned(tree)?;
        if let Some(name) = ref_name {
            self.set_ref(name, &image)?;
        }
        Ok(ImportReport { image, objects })
    }
}

fn copy_job(batch: &ObjectBatch<'_>, job: &Job) -> Result<FsVeritySha256, StoreError> {
    if let (true, Some(walked)) = (job.walked, &job.expected) {
        if batch.contains(walked) {
            return Ok(*walked);
        }
    }
    if let (false, Some(expected)) = (job.walked, &job.expected) {
        // A declared digest is only a claim: checked even when the object is present. The
        // digest covers the size too.
        return batch
            .add_file_verified(&job.source, expected)
            .map(|()| *expected);
    }
    let path = &job.source;
    let mut file = File::open(path).map_err(StoreError::io("open", path))?;
    let changed = |seen: u64| StoreError::BadSource {
        path: path.clone(),
        reason: format!(
            "{seen} bytes read, but the tree records {} (file changed during import)",
            job.size
        ),
    };
    if job.size <= SINGLE_READ_MAX {
        // One read: hash in memory, write only if the object is absent.
        let mut data = Vec::with_capacity(job.size as usize);
        (&mut file)
            .take(SINGLE_READ_MAX + 1)
            .read_to_end(&mut data)
            .map_err(StoreError::io("read", path))?;
        if data.len() as u64 != job.size {
            return Err(changed(data.len() as u64));
        }
        let digest = fsverity::digest_bytes(&data);
        check_walked(job, &digest)?;
        if !batch.contains(&digest) {
            batch.add_hashed_bytes(digest, &data)?;
        }
        return Ok(digest);
    }
    if let (true, Some(walked)) = (job.walked, &job.expected) {
        // Large and absent: copied (and hashed again while copied, which must match).
        batch.add_file_verified(path, walked)?;
        return Ok(*walked);
    }
    // Large: hash first (nothing written if present), then copy, which must hash the same.
    let (digest, size) = copy_hashing(&mut file, &mut std::io::sink(), path, path)?;
    if size != job.size {
        return Err(changed(size));
    }
    check_walked(job, &digest)?;
    if !batch.contains(&digest) {
        batch.add_file_verified(path, &digest)?;
    }
    Ok(digest)
}

/// The content read now must be what the walk hashed (and the tree's image will name).
fn check_walked(job: &Job, digest: &FsVeritySha256) -> Result<(), StoreError> {
    match (job.walked, &job.expected) {
        (true, Some(walked)) if walked != digest => Err(StoreError::BadSource {
            path: job.source.clone(),
            reason: "content changed during import (its digest differs from the walk's)".into(),
        }),
        _ => Ok(()),
    }
}

/// `basedir/backing`, refusing a backing path that could leave `basedir`.
fn backing_source(basedir: &Path, backing: &[u8]) -> Result<PathBuf, StoreError> {
    let text = std::str::from_utf8(backing).map_err(|_| StoreError::BadSource {
        path: basedir.to_path_buf(),
        reason: format!(
            "backing path {:?} is not UTF-8",
            String::from_utf8_lossy(backing)
        ),
    })?;
    let relative = Path::new(text.trim_start_matches('/'));
    if relative.as_os_str().is_empty()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(StoreError::BadSource {
            path: basedir.to_path_buf(),
            reason: format!("backing path {text:?} has '..' or '.' components, or is empty"),
        });
    }
    Ok(basedir.join(relative))
}
