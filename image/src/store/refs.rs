//! Refs: names for images, `refs/<name>` holding `<hex digest>\n`. They are gc's roots.
//!
//! One parser reads every ref file, for the store (`resolve`, `fsck`, `gc`) and for the
//! mounter (`cfsgate mount NAME`): [`read_ref_file`], with the name check
//! [`validate_ref_name`], both defined in the leaf module `ref_file` (so the layout,
//! [`super::paths`], uses them without an open repository) and re-exported here. What
//! [`Repository::set_ref`] writes is the digest in hex without the `sha256:` prefix and a
//! newline.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fsverity::FsVeritySha256;

use super::fsutil;
use super::layout::{REFS_DIR, TMP_DIR};
use super::{LockKind, Repository, StoreError};

pub use super::ref_file::{
    parse_ref_content, read_ref_file, validate_ref_name, MAX_REF_COMPONENT_LEN, MAX_REF_FILE_LEN,
    MAX_REF_NAME_LEN,
};

/// What a ref file holds: an image digest, or why it cannot be read.
pub(crate) type RefTarget = Result<FsVeritySha256, StoreError>;

impl Repository {
    fn ref_path(&self, name: &str) -> Result<PathBuf, StoreError> {
        validate_ref_name(name)?;
        Ok(self.dir(REFS_DIR).join(name))
    }

    /// Point `name` at a stored image (replacing what it named before).
    pub fn set_ref(&self, name: &str, image: &FsVeritySha256) -> Result<(), StoreError> {
        let path = self.ref_path(name)?;
        let _lock = self.lock(LockKind::Shared)?;
        if !self.has_image(image) {
            return Err(StoreError::ImageNotFound(*image));
        }
        fsutil::replace_file(
            &self.dir(TMP_DIR),
            &path,
            format!("{}\n", image.to_hex()).as_bytes(),
        )
    }

    /// Remove a ref (the image stays until gc). Returns whether it existed.
    pub fn remove_ref(&self, name: &str) -> Result<bool, StoreError> {
        let path = self.ref_path(name)?;
        let _lock = self.lock(LockKind::Shared)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::io("remove ref", &path)(e)),
        }
        // Prune now-empty parent directories up to refs/ (remove_dir fails on non-empty ones,
        // and a concurrent set_ref recreates what it needs).
        let refs_root = self.dir(REFS_DIR);
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == refs_root || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        if let Some(parent) = path.parent() {
            // Best effort: the parent may just have been pruned.
            let _ = fsutil::sync_dir(parent);
        }
        Ok(true)
    }

    /// The image a ref names.
    pub fn read_ref(&self, name: &str) -> Result<Option<FsVeritySha256>, StoreError> {
        let path = self.ref_path(name)?;
        if !path.is_file() {
            return Ok(None);
        }
        read_ref_file(&path, name).map(Some)
    }

    /// All refs, sorted by name. Fails on an unreadable ref (fsck reports those one by one).
    pub fn list_refs(&self) -> Result<Vec<(String, FsVeritySha256)>, StoreError> {
        self.scan_refs()?
            .into_iter()
            .map(|(name, target)| target.map(|d| (name, d)))
            .collect()
    }

    /// All refs, each with its target or why it is unreadable.
    pub(crate) fn scan_refs(&self) -> Result<Vec<(String, RefTarget)>, StoreError> {
        let root = self.dir(REFS_DIR);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                // A concurrent remove_ref pruned this now-empty directory, or `refs/` itself is
                // absent (opening a repository does not create it; the first ref does).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                other => other.map_err(StoreError::io("list", &dir))?,
            };
            for entry in entries {
                let entry = entry.map_err(StoreError::io("list", &dir))?;
                let path = entry.path();
                let file_type = entry.file_type().map_err(StoreError::io("stat", &path))?;
                if file_type.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = ref_name_of(&root, &path);
                let target = read_ref_file(&path, &name);
                if target.is_err() && !path.exists() {
                    continue; // removed while being listed
                }
                out.push((name, target));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// A ref name, or an image digest (64 hex digits) of a stored image, as the image digest.
    pub fn resolve(&self, name_or_digest: &str) -> Result<FsVeritySha256, StoreError> {
        let text = name_or_digest
            .strip_prefix("sha256:")
            .unwrap_or(name_or_digest);
        if let Ok(digest) = FsVeritySha256::from_hex(text) {
            if self.has_image(&digest) {
                return Ok(digest);
            }
        }
        if validate_ref_name(name_or_digest).is_ok() {
            if let Some(digest) = self.read_ref(name_or_digest)? {
                return Ok(digest);
            }
        }
        Err(StoreError::UnknownName(name_or_digest.to_string()))
    }
}

fn ref_name_of(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
