//! Refs: names for images, `refs/<name>` holding `<hex digest>\n`. They are gc's roots.
//!
//! One parser reads every ref file, for the store (`resolve`, `fsck`, `gc`) and for the
//! mounter (`cfsgate mount NAME`): [`read_ref_file`]. The content is the image's digest as 64
//! hex digits, optionally `sha256:`-prefixed (what [`Repository::set_ref`] writes has no
//! prefix), followed by optional trailing whitespace (the newline); anything else is a bad
//! ref, for all of them alike. The file is type-checked before it is opened (a FIFO or device
//! in its place is refused, never opened) and read under [`MAX_REF_FILE_LEN`].
//!
//! A name is one or more `/`-separated components; each is non-empty, not `.` or `..`, has no
//! NUL and at most [`MAX_REF_COMPONENT_LEN`] bytes, and the whole is at most
//! [`MAX_REF_NAME_LEN`] bytes. So a name can never leave `refs/`.

use std::fs;
use std::path::{Path, PathBuf};

use cfsgate_sys::file::{Follow, SizeLimit};

use crate::fsverity::FsVeritySha256;

use super::fsutil;
use super::{LockKind, Repository, StoreError, REFS_DIR, TMP_DIR};

/// Longest ref name (a file path below `refs/`; PATH_MAX leaves room for the repository path).
pub const MAX_REF_NAME_LEN: usize = 1024;
/// Longest component of a ref name (NAME_MAX).
pub const MAX_REF_COMPONENT_LEN: usize = 255;
/// A ref file is one digest and a newline; a little slack for editors.
pub const MAX_REF_FILE_LEN: u64 = 128;

/// Check that `name` is a valid ref name.
pub fn validate_ref_name(name: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::BadRefName {
            name: name.chars().take(200).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_REF_NAME_LEN {
        return bad("longer than 1024 bytes");
    }
    if name.contains('\0') {
        return bad("contains NUL");
    }
    for component in name.split('/') {
        match component {
            "" => return bad("empty component (leading, trailing or doubled '/')"),
            "." | ".." => return bad("'.' or '..' component"),
            c if c.len() > MAX_REF_COMPONENT_LEN => return bad("component longer than 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

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
                // A concurrent remove_ref pruned this now-empty directory.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir != root => continue,
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

/// The digest a ref file's content names (see the module doc), or why it names none.
pub fn parse_ref_content(data: &[u8]) -> Result<FsVeritySha256, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
    let text = text.trim_end();
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    FsVeritySha256::from_hex(hex).map_err(|e| e.to_string())
}

/// Read the ref file `path` (ref `name`, for errors): type-checked before it is opened, read
/// under [`MAX_REF_FILE_LEN`], parsed by [`parse_ref_content`]. The one ref reader of the
/// store and the mounter.
pub fn read_ref_file(path: &Path, name: &str) -> Result<FsVeritySha256, StoreError> {
    let bad = |reason: String| StoreError::BadRef {
        name: name.to_string(),
        reason,
    };
    let limit = SizeLimit::new("ref file", MAX_REF_FILE_LEN);
    let data =
        cfsgate_sys::file::read(path, Follow::NoSymlinks, limit).map_err(|e| bad(e.to_string()))?;
    parse_ref_content(&data).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for good in [
            "a",
            "app/v1",
            "registry.example/ns/app:1.0",
            "x".repeat(255).as_str(),
        ] {
            assert!(validate_ref_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/abs",
            "a/",
            "a//b",
            "..",
            "a/../b",
            "./a",
            "a/.",
            "a\0b",
            "y".repeat(256).as_str(),
        ] {
            assert!(validate_ref_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ref_contents() {
        let hex = "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92";
        for good in [
            hex.to_string(),
            format!("{hex}\n"),
            format!("sha256:{hex}\n"),
            format!("sha256:{hex}\r\n"),
        ] {
            assert_eq!(parse_ref_content(good.as_bytes()).unwrap().to_hex(), hex);
        }
        for bad in [
            format!(" {hex}"),
            format!("sha512:{hex}"),
            format!("sha256:sha256:{hex}"),
            format!("{hex}\n{hex}\n"),
            hex[..63].to_string(),
            String::new(),
        ] {
            assert!(parse_ref_content(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(parse_ref_content(b"\xff").is_err());
    }
}
