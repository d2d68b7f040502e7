//! Importing content: a directory tree, or a dump file plus a directory of backing files,
//! becomes objects and one image (and optionally a ref), in one shared-lock hold so a
//! concurrent gc cannot remove an object between its write and the image that references it.
//!
//! Each external file is copied into the store while its fs-verity digest is computed (files are
//! copied in parallel); where the source declares a digest (a dump file's DIGEST field, or the
//! digest the directory walker computed) the copy must match it, so a source that changes
//! during import, or a dump naming the wrong backing file, is an error, not a wrong image.
//! The tree's files are then pointed at their objects (`backing = xx/rest`, `digest`), the EROFS
//! writer makes the image, and [`Repository::write_image`] stores it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::dump::{self, ParseMode};
use crate::fromdir::BuildOptions;
use crate::fsverity::Sha256Digest;
use crate::tree::{Content, FileData, InodeId, Tree};

use super::{BatchStats, LockKind, ObjectBatch, Repository, StoreError};

/// Longest dump file accepted (the dump is parsed into memory as a tree; a dump line is about
/// 200 bytes, so this is millions of files).
pub const MAX_DUMP_LEN: u64 = 4 << 30;

/// What an import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// The stored image.
    pub image: Sha256Digest,
    /// Objects written and found already present.
    pub objects: BatchStats,
}

/// One external file to copy into the store.
struct Job {
    inode: InodeId,
    source: PathBuf,
    /// The digest the source declared, if any.
    expected: Option<Sha256Digest>,
    /// The size the tree records (checked when there is no digest to check).
    size: u64,
    /// `expected` was just computed from this very file, so a present object needs no
    /// re-read (a dump's DIGEST is only a claim, checked even when the object is present).
    hashed_here: bool,
}

impl Repository {
    /// Import a directory: every file's content becomes an object, the tree becomes an image.
    pub fn import_tree_from_dir(
        &self,
        root: &Path,
        ref_name: Option<&str>,
    ) -> Result<ImportReport, StoreError> {
        if let Some(name) = ref_name {
            super::refs::validate_ref_name(name)?;
        }
        // The walk hashes every file (in parallel) first, so files whose object is present are
        // never copied: re-importing a tree writes nothing. New files are read a second time,
        // while copying, and must hash the same (a file changed meanwhile is an error).
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
                        size: *size,
                        hashed_here: true,
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
        let file =
            std::fs::File::open(dump_file).map_err(StoreError::io("open dump file", dump_file))?;
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
                    size: *size,
                    hashed_here: false,
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
        let stored: Vec<(InodeId, Sha256Digest)> = jobs
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
        let image = self.write_tree(&tree)?;
        if let Some(name) = ref_name {
            self.set_ref(name, &image)?;
        }
        Ok(ImportReport { image, objects })
    }
}

fn copy_job(batch: &ObjectBatch<'_>, job: &Job) -> Result<Sha256Digest, StoreError> {
    if let Some(expected) = &job.expected {
        if job.hashed_here && batch.contains(expected) {
            return Ok(*expected);
        }
        // The digest covers the size too.
        return batch
            .add_file_verified(&job.source, expected)
            .map(|()| *expected);
    }
    let file = File::open(&job.source).map_err(StoreError::io("open", &job.source))?;
    let (digest, size) = batch.add_reader_counted(file, &job.source)?;
    if size != job.size {
        return Err(StoreError::BadSource {
            path: job.source.clone(),
            reason: format!(
                "{size} bytes copied, but the tree records {} (file changed during import)",
                job.size
            ),
        });
    }
    Ok(digest)
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
