//! gc: remove every image and object not reachable from a ref.
//!
//! Under the exclusive lock (no writer is between writing objects and referencing them):
//! roots = the images refs name; live objects = everything those images reference; everything
//! else in `images/` and `objects/` goes, and so do temporary files left in `tmp/` by killed
//! writers (with the exclusive lock held, no live writer owns any). gc refuses to run, deleting
//! nothing, if a ref is unreadable or a reachable image cannot be read: it could not know what
//! that image needs.
//!
//! [`Repository::remove_unreferenced`] is the same judgement for a few candidates: the objects
//! a failed import made durable (an [`super::ObjectBatch::abandon`]ed batch) go at once, under
//! the exclusive lock, unless a stored image (any, named or not) references them.

use std::collections::BTreeSet;
use std::fs;

use rayon::prelude::*;

use crate::fsverity::FsVeritySha256;

use super::content_index::ContentSha256;
use super::fsutil;
use super::images::{read_image_tree, referenced_objects, MAX_IMAGE_LEN};
use super::layout::TMP_DIR;
use super::{LockKind, Repository, StoreError};

/// What gc removed (or, dry run, would remove).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Objects no kept image refers to.
    pub objects_removed: u64,
    /// Images no ref names.
    pub images_removed: u64,
    /// Bytes of removed objects and images.
    pub bytes_freed: u64,
    /// Stale files removed from `tmp/`.
    pub temp_files_removed: u64,
    /// Objects and images kept.
    pub objects_kept: u64,
    /// Images some ref names.
    pub images_kept: u64,
}

/// What [`Repository::remove_unreferenced`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemovedReport {
    /// Candidate objects removed (no stored image referenced them).
    pub objects_removed: u64,
    /// Their bytes (file sizes).
    pub bytes_freed: u64,
    /// Candidates kept because a stored image references them (or they were gone already).
    pub objects_kept: u64,
}

impl Repository {
    /// Remove the candidate objects (with their content index entries, when those still name
    /// them) that no stored image references. Takes the exclusive lock, so the caller must hold
    /// no lock of this repository: once it is held no writer is between writing an object and
    /// referencing it, so an object another import deduplicated against is referenced by that
    /// import's image by then and stays. Refuses (removing nothing) when an image is unreadable.
    pub fn remove_unreferenced(
        &self,
        candidates: &[(FsVeritySha256, ContentSha256)],
    ) -> Result<RemovedReport, StoreError> {
        let mut report = RemovedReport::default();
        if candidates.is_empty() {
            return Ok(report);
        }
        let _lock = self.lock(LockKind::Exclusive)?;
        let mut live: BTreeSet<FsVeritySha256> = BTreeSet::new();
        for (digest, path) in self.scan_images()? {
            let what = format!("image {digest}");
            let refused = |e: StoreError| {
                StoreError::GcRefused(format!("{what} is unreadable ({e}): removing nothing"))
            };
            let bytes =
                fsutil::read_limited(&path, MAX_IMAGE_LEN, "read image").map_err(refused)?;
            let tree = read_image_tree(&bytes, &what).map_err(refused)?;
            live.extend(referenced_objects(&tree, &what).map_err(refused)?);
        }
        for (digest, content) in candidates {
            let path = self.object_path(digest);
            let size = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() && !live.contains(digest) => meta.len(),
                _ => {
                    report.objects_kept += 1;
                    continue;
                }
            };
            fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
            if let Some(dir) = path.parent() {
                let _ = fs::remove_dir(dir); // only when empty; writers recreate it
            }
            report.objects_removed += 1;
            report.bytes_freed += size;
            self.remove_content_entry(content, digest);
        }
        Ok(report)
    }

    /// Remove unreachable images and objects; with `dry_run`, only count them.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport, StoreError> {
        let _lock = self.lock(LockKind::Exclusive)?;
        let mut report = GcReport::default();

        let mut roots = BTreeSet::new();
        for (name, target) in self.scan_refs()? {
            match target {
                Ok(digest) => {
                    roots.insert(digest);
                }
                Err(e) => {
                    return Err(StoreError::GcRefused(format!(
                        "{e} (fix or remove refs/{name})"
                    )))
                }
            }
        }
        let mut live_objects: BTreeSet<FsVeritySha256> = BTreeSet::new();
        let mut dead = Vec::new();
        for (digest, path) in self.scan_images()? {
            if !roots.contains(&digest) {
                dead.push(path);
                report.images_removed += 1;
                continue;
            }
            let what = format!("image {digest}");
            let refused = |e: StoreError| {
                StoreError::GcRefused(format!("reachable {what} is unreadable ({e})"))
            };
            let bytes =
                fsutil::read_limited(&path, MAX_IMAGE_LEN, "read image").map_err(refused)?;
            let tree = read_image_tree(&bytes, &what).map_err(refused)?;
            live_objects.extend(referenced_objects(&tree, &what).map_err(refused)?);
            report.images_kept += 1;
        }
        let (objects, _strays) = self.objects().scan()?;
        for (digest, path) in objects {
            if live_objects.contains(&digest) {
                report.objects_kept += 1;
            } else {
                dead.push(path);
                report.objects_removed += 1;
            }
        }
        report.bytes_freed = dead
            .par_iter()
            .map(|path| fs::symlink_metadata(path).map(|m| m.len()).unwrap_or(0))
            .sum();
        let tmp_dir = self.dir(TMP_DIR);
        let temps: Vec<_> = fs::read_dir(&tmp_dir)
            .map_err(StoreError::io("list", &tmp_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        report.temp_files_removed = temps.len() as u64;
        if dry_run {
            return Ok(report);
        }
        // Unlinking is disk-bound (freeing extents, journal); several in flight keep it busy.
        dead.par_iter()
            .chain(temps.par_iter())
            .try_for_each(|path| match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(StoreError::io("remove", path)(e))
                }
                _ => Ok(()),
            })?;
        Ok(report)
    }
}
