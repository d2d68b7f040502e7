//! Images: composefs EROFS images stored as `images/<hex>`, named by their own fs-verity digest.
//!
//! An image is stored only once every object it references is present, so a stored image is
//! always mountable. The objects an image references are read from the image itself (its
//! regular files' backing paths `xx/rest` and metacopy digests) by the hardened reader: the
//! image is the only record, there is no side index to get out of step.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::erofs::reader;
use crate::erofs::writer::{self, WriteOptions};
use crate::fsverity::{self, FsVeritySha256};
use crate::tree::Tree;

use super::fsutil::{self, StoredReadError};
use super::layout::{IMAGES_DIR, TMP_DIR};
use super::verity;
use super::{LockKind, Repository, StoreError, VerityMode};

/// Largest image the store accepts: images hold metadata only (a full distribution is tens of
/// MiB), and the reader needs the whole image in memory.
pub const MAX_IMAGE_LEN: u64 = 1 << 30;

/// One stored image, as `cfsgate images` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// The image's fs-verity digest (its name in `images/`).
    #[serde(serialize_with = "hex_digest")]
    pub digest: FsVeritySha256,
    /// Refs naming this image.
    pub refs: Vec<String>,
    /// Size of the image file itself.
    pub size: u64,
    /// Distinct objects it references.
    pub n_objects: u64,
    /// Bytes of its objects that other stored images reference too.
    pub shared_bytes: u64,
    /// Bytes of its objects no other stored image references.
    pub unique_bytes: u64,
}

/// A list of images as a JSON array (the `images` member of `cfsgate images --json`).
pub fn to_json(images: &[ImageInfo]) -> String {
    serde_json::to_string(images).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn hex_digest<S: serde::Serializer>(
    digest: &FsVeritySha256,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&digest.to_hex())
}

/// Parse image bytes into a tree with the hardened reader.
pub fn read_image_tree(bytes: &[u8], what: &str) -> Result<Tree, StoreError> {
    crate::erofs::reader::read_image(bytes)
        .map(|image| image.tree)
        .map_err(|e| StoreError::BadImage {
            what: what.to_string(),
            reason: e.to_string(),
        })
}

/// The objects a tree references (the reader's [`referenced_objects`](reader::referenced_objects)),
/// as digests: in the store every backing path must be an object path `xx/rest`, agreeing with
/// the file's digest when the image records one.
pub fn referenced_objects(tree: &Tree, what: &str) -> Result<BTreeSet<FsVeritySha256>, StoreError> {
    let bad = |reason: String| StoreError::BadImage {
        what: what.to_string(),
        reason,
    };
    let mut objects = BTreeSet::new();
    for object in reader::referenced_objects(tree) {
        let named = parse_object_path(&object.backing).ok_or_else(|| {
            bad(format!(
                "backing path {:?} is not an object path (xx/ + 62 lowercase hex digits)",
                String::from_utf8_lossy(&object.backing)
            ))
        })?;
        match object.digest {
            Some(declared) if declared != named => {
                return Err(bad(format!(
                    "backing object {named} disagrees with the file's digest {declared}"
                )))
            }
            _ => objects.insert(named),
        };
    }
    Ok(objects)
}

/// Refuse an image over [`MAX_IMAGE_LEN`].
fn check_image_len(image: &[u8]) -> Result<(), StoreError> {
    if image.len() as u64 > MAX_IMAGE_LEN {
        return Err(StoreError::BadImage {
            what: "image".into(),
            reason: format!("{} bytes, more than {MAX_IMAGE_LEN}", image.len()),
        });
    }
    Ok(())
}

/// `xx/rest` (optionally with a leading `/`) as a digest; `None` if it is not exactly that.
pub fn parse_object_path(path: &[u8]) -> Option<FsVeritySha256> {
    let path = path.strip_prefix(b"/").unwrap_or(path);
    if path.len() != 2 * FsVeritySha256::LEN + 1 || path[2] != b'/' {
        return None;
    }
    let text = std::str::from_utf8(path).ok()?;
    let hex = format!("{}{}", &text[..2], &text[3..]);
    let digest = FsVeritySha256::from_hex(&hex).ok()?;
    // Lowercase only: the object path of a digest is lowercase, and overlayfs looks it up as is.
    (digest.object_path() == text).then_some(digest)
}

impl Repository {
    /// Where the image with this digest lives.
    pub fn image_path(&self, digest: &FsVeritySha256) -> PathBuf {
        self.paths().image_path(digest)
    }

    /// Whether the image is stored.
    pub fn has_image(&self, digest: &FsVeritySha256) -> bool {
        self.image_path(digest).is_file()
    }

    /// The bytes of a stored image.
    pub fn read_image(&self, digest: &FsVeritySha256) -> Result<Vec<u8>, StoreError> {
        self.read_image_if_stored(digest)?
            .ok_or(StoreError::ImageNotFound(*digest))
    }

    /// The bytes of the image if it is stored (`None` where [`Repository::has_image`] says
    /// false: no such name, or not a regular file), in one open and `fstat` (no stat of the
    /// name before, and none for a `has_image` first). A symbolic link under `images/` is
    /// refused, not followed: the store never makes one.
    pub fn read_image_if_stored(
        &self,
        digest: &FsVeritySha256,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.image_path(digest);
        match fsutil::read_stored(&path, MAX_IMAGE_LEN) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(StoredReadError::NotRegular) => Ok(None),
            Err(StoredReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(StoredReadError::Io(e)) => Err(StoreError::io("read image", &path)(e)),
            Err(StoredReadError::Symlink) => Err(StoreError::BadSource {
                path,
                reason: "a symbolic link (the store never stores an image as one)".into(),
            }),
            Err(StoredReadError::TooLarge) => Err(StoreError::BadSource {
                path,
                reason: format!("longer than {MAX_IMAGE_LEN} bytes"),
            }),
        }
    }

    /// The objects an image references (in digest order).
    pub fn image_objects(&self, image: &[u8]) -> Result<BTreeSet<FsVeritySha256>, StoreError> {
        let tree = read_image_tree(image, "image")?;
        referenced_objects(&tree, "image")
    }

    /// The objects an image references that this repository lacks: what to fetch.
    pub fn missing_objects(&self, image: &[u8]) -> Result<Vec<FsVeritySha256>, StoreError> {
        let _lock = self.lock(LockKind::Shared)?;
        Ok(self
            .image_objects(image)?
            .into_iter()
            .filter(|d| !self.has_object(d))
            .collect())
    }

    /// Store an image once all its objects are present; returns its digest. Storing an image
    /// that is already present is a no-op.
    pub fn write_image(&self, image: &[u8]) -> Result<FsVeritySha256, StoreError> {
        check_image_len(image)?;
        let _lock = self.lock(LockKind::Shared)?;
        let objects = self.image_objects(image)?;
        self.store_image(image, &objects)
    }

    /// Store `image`, which references exactly `objects`, once they are all present (checked
    /// on all cores: a stat each, 100k for a distribution). The caller holds the shared lock.
    fn store_image(
        &self,
        image: &[u8],
        objects: &BTreeSet<FsVeritySha256>,
    ) -> Result<FsVeritySha256, StoreError> {
        let missing: Vec<FsVeritySha256> = objects
            .par_iter()
            .filter(|d| !self.has_object(d))
            .copied()
            .collect();
        if let Some(first) = missing.first() {
            return Err(StoreError::MissingObjects {
                count: missing.len(),
                first: *first,
                missing,
            });
        }
        let digest = fsverity::digest_bytes(image);
        let dest = self.image_path(&digest);
        if !dest.is_file() {
            self.store_image_file(&dest, &digest, image)?;
        }
        Ok(digest)
    }

    /// Write an image file durably and atomically; in kernel-verity mode fs-verity is enabled on
    /// the complete temporary file before the rename, so the name never shows an unsealed image.
    fn store_image_file(
        &self,
        dest: &Path,
        digest: &FsVeritySha256,
        image: &[u8],
    ) -> Result<(), StoreError> {
        if self.meta().verity != VerityMode::Kernel {
            return fsutil::replace_file(&self.dir(TMP_DIR), dest, image);
        }
        let (mut file, tmp) = fsutil::create_temp(&self.dir(TMP_DIR))?;
        let written = file.write_all(image).and_then(|()| file.sync_all());
        // FS_IOC_ENABLE_VERITY needs a read-only descriptor and no writer.
        drop(file);
        let sealed = written
            .map_err(StoreError::io("write", &tmp))
            .and_then(|()| verity::seal(&tmp, digest));
        if let Err(e) = sealed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        fsutil::rename_into(&tmp, dest)?;
        match dest.parent() {
            Some(parent) => fsutil::sync_dir(parent),
            None => Ok(()),
        }
    }

    /// Write `tree` as a composefs image (default format versions) and store it. Its external
    /// files must already be objects here: hold a shared [`Repository::lock`] from writing them
    /// until the image has a ref, or gc may remove them in between.
    pub fn write_tree(&self, tree: &Tree) -> Result<FsVeritySha256, StoreError> {
        self.write_tree_owned(tree.clone())
    }

    /// [`Repository::write_tree`] of a tree the caller is done with: the writer rewrites it in
    /// place instead of a copy. The objects the image references are taken from the tree, not
    /// from a parse of the image just written: the writer writes each reachable external
    /// file's backing path and digest as they are in the tree (the reader's round-trip and the
    /// conformance tests hold it to that), and parsing 100k inodes back took the main thread
    /// alone, after the walk, a large part of what a full store's import adds to a build.
    pub fn write_tree_owned(&self, tree: Tree) -> Result<FsVeritySha256, StoreError> {
        let objects = referenced_objects(&tree, "tree")?;
        let bytes = writer::write_image_owned(tree, &WriteOptions::default()).map_err(|e| {
            StoreError::BadImage {
                what: "writing a tree".into(),
                reason: e.to_string(),
            }
        })?;
        check_image_len(&bytes)?;
        let _lock = self.lock(LockKind::Shared)?;
        self.store_image(&bytes, &objects)
    }

    /// Every stored image (digest order) whose name is a digest; other names are fsck's business.
    pub(crate) fn scan_images(&self) -> Result<Vec<(FsVeritySha256, PathBuf)>, StoreError> {
        let dir = self.dir(IMAGES_DIR);
        let mut images = Vec::new();
        let entries = match fs::read_dir(&dir) {
            // Opening a repository does not create `images/`; the first stored image does.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(images),
            other => other.map_err(StoreError::io("list", &dir))?,
        };
        for entry in entries {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            if let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|n| FsVeritySha256::from_hex(n).ok())
            {
                if entry.file_name().to_str() == Some(digest.to_hex().as_str()) {
                    images.push((digest, entry.path()));
                }
            }
        }
        images.sort();
        Ok(images)
    }

    /// All stored images with their refs, sizes and sharing.
    pub fn list_images(&self) -> Result<Vec<ImageInfo>, StoreError> {
        let _lock = self.lock(LockKind::Shared)?;
        let mut refs_by_image: BTreeMap<FsVeritySha256, Vec<String>> = BTreeMap::new();
        for (name, digest) in self.list_refs()? {
            refs_by_image.entry(digest).or_default().push(name);
        }
        let mut per_image = Vec::new();
        let mut users: BTreeMap<FsVeritySha256, u32> = BTreeMap::new();
        for (digest, path) in self.scan_images()? {
            let bytes = fsutil::read_limited(&path, MAX_IMAGE_LEN, "read image")?;
            let objects = self.image_objects(&bytes)?;
            for object in &objects {
                *users.entry(*object).or_default() += 1;
            }
            per_image.push((digest, bytes.len() as u64, objects));
        }
        let mut sizes: BTreeMap<FsVeritySha256, u64> = BTreeMap::new();
        for object in users.keys() {
            let size = fs::metadata(self.object_path(object))
                .map(|m| m.len())
                .unwrap_or(0);
            sizes.insert(*object, size);
        }
        Ok(per_image
            .into_iter()
            .map(|(digest, size, objects)| {
                let (mut shared_bytes, mut unique_bytes) = (0, 0);
                for object in &objects {
                    let bytes = sizes.get(object).copied().unwrap_or(0);
                    if users.get(object).copied().unwrap_or(0) > 1 {
                        shared_bytes += bytes;
                    } else {
                        unique_bytes += bytes;
                    }
                }
                ImageInfo {
                    digest,
                    refs: refs_by_image.remove(&digest).unwrap_or_default(),
                    size,
                    n_objects: objects.len() as u64,
                    shared_bytes,
                    unique_bytes,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_parse_strictly() {
        let digest = fsverity::digest_bytes(b"x");
        let path = digest.object_path();
        assert_eq!(parse_object_path(path.as_bytes()), Some(digest));
        assert_eq!(
            parse_object_path(format!("/{path}").as_bytes()),
            Some(digest)
        );
        assert_eq!(parse_object_path(path.to_uppercase().as_bytes()), None);
        assert_eq!(parse_object_path(digest.to_hex().as_bytes()), None);
        assert_eq!(parse_object_path(format!("{path}0").as_bytes()), None);
        assert_eq!(parse_object_path(b"../etc/passwd"), None);
    }
}
