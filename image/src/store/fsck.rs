//! fsck: recompute and cross-check everything the repository claims.
//!
//! | check | problem reported |
//! |---|---|
//! | every object's fs-verity digest (in parallel) equals its name | `corrupt_objects` |
//! | every file under `objects/` is named `xx/<62 hex>` | `stray_files` |
//! | every image's fs-verity digest equals its name, and the reader accepts it | `corrupt_images` |
//! | every object an image references is present | `missing_objects` |
//! | every ref is readable and names a stored image | `dangling_refs` |
//!
//! Temporary files left in `tmp/` by a killed writer are counted (`stale_temp_files`) but are
//! not a problem: they are not part of the repository, and gc removes them.
//! `repair` (under the exclusive lock) moves corrupt objects and images to `quarantine/`; images
//! that referenced a quarantined object then show as having missing objects until re-imported.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::fsverity::{self, FsVeritySha256, Sha256};

use super::fsutil;
use super::images::{hex_digest, read_image_tree, referenced_objects, MAX_IMAGE_LEN};
use super::layout::{QUARANTINE_DIR, TMP_DIR};
use super::{LockKind, ObjectDir, Repository, StoreError};

/// An object whose content does not match its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CorruptObject {
    /// The object's name: the fs-verity digest its content should have.
    #[serde(serialize_with = "hex_digest")]
    pub digest: FsVeritySha256,
    /// What the content hashes to, or why it could not be read.
    pub problem: String,
}

/// An image that does not match its name or cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CorruptImage {
    /// The image's name: the fs-verity digest its content should have.
    #[serde(serialize_with = "hex_digest")]
    pub digest: FsVeritySha256,
    /// What the image hashes to, or why it could not be read or parsed.
    pub problem: String,
}

/// An object an image references that is not present (or is corrupt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MissingObject {
    /// The image that references the object.
    #[serde(serialize_with = "hex_digest")]
    pub image: FsVeritySha256,
    /// The fs-verity digest of the missing or corrupt object.
    #[serde(serialize_with = "hex_digest")]
    pub object: FsVeritySha256,
}

/// A ref that is unreadable or names an image that is not stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DanglingRef {
    /// The ref's name (its path under `refs/`).
    pub name: String,
    /// Why it dangles: unreadable content, or the image it names is not stored.
    pub problem: String,
}

/// What fsck found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FsckReport {
    /// Objects whose content was hashed.
    pub objects_checked: u64,
    /// Images hashed and parsed.
    pub images_checked: u64,
    /// Refs read.
    pub refs_checked: u64,
    /// Objects whose content does not match their name.
    pub corrupt_objects: Vec<CorruptObject>,
    /// Images that do not match their name or cannot be read.
    pub corrupt_images: Vec<CorruptImage>,
    /// Objects referenced by a stored image but absent or corrupt.
    pub missing_objects: Vec<MissingObject>,
    /// Refs that cannot be resolved to a stored image.
    pub dangling_refs: Vec<DanglingRef>,
    /// Files under `objects/` not named `xx/<62 hex>`.
    pub stray_files: Vec<PathBuf>,
    /// Files left in `tmp/` (by a killed writer); counted, not a problem.
    pub stale_temp_files: u64,
    /// Where repair moved corrupt objects and images.
    pub quarantined: Vec<PathBuf>,
}

impl FsckReport {
    /// True when nothing is wrong (stale temporary files are not a problem).
    pub fn is_ok(&self) -> bool {
        self.corrupt_objects.is_empty()
            && self.corrupt_images.is_empty()
            && self.missing_objects.is_empty()
            && self.dangling_refs.is_empty()
            && self.stray_files.is_empty()
    }

    /// The report as one JSON object (with `"ok"`).
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("ok".into(), self.is_ok().into());
        }
        value.to_string()
    }
}

impl Repository {
    /// Check the whole repository. With `repair`, move corrupt objects and images aside.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport, StoreError> {
        let _lock = self.lock(if repair {
            LockKind::Exclusive
        } else {
            LockKind::Shared
        })?;
        let mut report = FsckReport::default();

        let (objects, strays) = self.objects().scan()?;
        report.objects_checked = objects.len() as u64;
        report.stray_files = strays;
        report.corrupt_objects = objects
            .par_iter()
            .filter_map(|(digest, _path)| check_object(self.objects(), digest))
            .collect();

        let images = self.scan_images()?;
        report.images_checked = images.len() as u64;
        let corrupt_names: BTreeMap<FsVeritySha256, ()> = report
            .corrupt_objects
            .iter()
            .map(|c| (c.digest, ()))
            .collect();
        let checked: Vec<_> = images
            .par_iter()
            .map(|(digest, path)| self.check_image(digest, path))
            .collect();
        for (digest, result) in images.iter().map(|(d, _)| *d).zip(checked) {
            match result {
                Ok(references) => report.missing_objects.extend(
                    references
                        .into_iter()
                        .filter(|o| corrupt_names.contains_key(o) || !self.has_object(o))
                        .map(|object| MissingObject {
                            image: digest,
                            object,
                        }),
                ),
                Err(problem) => report.corrupt_images.push(CorruptImage { digest, problem }),
            }
        }

        let refs = self.scan_refs()?;
        report.refs_checked = refs.len() as u64;
        for (name, target) in refs {
            let problem = match target {
                Err(e) => e.to_string(),
                Ok(digest) if !self.has_image(&digest) => {
                    format!("names image {digest}, which is not stored")
                }
                Ok(_) => continue,
            };
            report.dangling_refs.push(DanglingRef { name, problem });
        }
        report.stale_temp_files = fs::read_dir(self.dir(TMP_DIR))
            .map(|d| d.count() as u64)
            .unwrap_or(0);

        if repair {
            self.quarantine(&mut report)?;
        }
        Ok(report)
    }

    /// The objects a stored image references, or why the image is corrupt.
    fn check_image(
        &self,
        digest: &FsVeritySha256,
        path: &Path,
    ) -> Result<Vec<FsVeritySha256>, String> {
        let bytes =
            fsutil::read_limited(path, MAX_IMAGE_LEN, "read image").map_err(|e| e.to_string())?;
        let actual = fsverity::digest_bytes(&bytes);
        if actual != *digest {
            return Err(format!(
                "content has fs-verity digest {actual} ({} bytes)",
                bytes.len()
            ));
        }
        let what = format!("image {digest}");
        let tree = read_image_tree(&bytes, &what).map_err(|e| e.to_string())?;
        Ok(referenced_objects(&tree, &what)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect())
    }

    fn quarantine(&self, report: &mut FsckReport) -> Result<(), StoreError> {
        let dir = self.dir(QUARANTINE_DIR);
        let mut moves: Vec<(PathBuf, String)> = Vec::new();
        for object in &report.corrupt_objects {
            moves.push((
                self.object_path(&object.digest),
                format!("object-{}", object.digest),
            ));
        }
        for image in &report.corrupt_images {
            moves.push((
                self.image_path(&image.digest),
                format!("image-{}", image.digest),
            ));
        }
        if moves.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
        for (from, name) in moves {
            let to = dir.join(name);
            fs::rename(&from, &to).map_err(StoreError::io("move to quarantine", &from))?;
            report.quarantined.push(to);
        }
        fsutil::sync_dir(&dir)
    }
}

/// Hash the object `digest` (opened type-checked: a FIFO in its place is refused, not read).
fn check_object(objects: &ObjectDir, digest: &FsVeritySha256) -> Option<CorruptObject> {
    let hashed = match objects.open_object(digest) {
        Ok(Some(file)) => fsverity::digest_reader::<Sha256>(file).map_err(|e| e.to_string()),
        Ok(None) => Err("removed while checked".to_string()),
        Err(e) => Err(e.to_string()),
    };
    let problem = match hashed {
        Ok(actual) if actual == *digest => return None,
        Ok(actual) => format!("content has fs-verity digest {actual}"),
        Err(e) => format!("unreadable: {e}"),
    };
    Some(CorruptObject {
        digest: *digest,
        problem,
    })
}
