//! [`Repository`]: an open repository, its layout, metadata and object directory. The
//! operations on it live in the sibling modules (`images`, `refs`, `gc`, `fsck`, ...), each
//! an `impl Repository` block; this module needs none of them.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::layout::{IMAGES_DIR, LOCK_FILE, META_FILE, OBJECTS_DIR, REFS_DIR, TMP_DIR};
use super::lock::{LockKind, RepoLock};
use super::meta::{self, RepoMeta};
use super::object_dir::ObjectDir;
use super::paths::RepoPaths;
use super::verity;

/// An open repository. Cheap to share between threads (`&Repository` is all the methods need).
pub struct Repository {
    paths: RepoPaths,
    meta: RepoMeta,
    objects: ObjectDir,
}

impl Repository {
    /// Open an existing repository; fails if `meta.json` is missing or of an unknown version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let paths = RepoPaths::new(path.as_ref());
        let meta = meta::read(paths.root())?;
        ensure_dirs(&paths)?;
        let objects =
            ObjectDir::open_with_staging(&paths.objects_dir(), &paths.tmp_dir(), meta.verity)?;
        Ok(Repository {
            paths,
            meta,
            objects,
        })
    }

    /// Open the repository at `path`, creating it (directories and `meta.json`) if needed.
    /// A new repository records whether the file system can enforce fs-verity.
    pub fn create_or_open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = path.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(StoreError::io("create repository directory", &root))?;
        if !root.join(META_FILE).exists() {
            let verity = verity::detect(&root)?;
            let fresh = RepoMeta::new(verity);
            meta::write_if_absent(&root, &fresh)?;
        }
        Self::open(root)
    }

    /// The repository directory.
    pub fn path(&self) -> &Path {
        self.paths.root()
    }

    /// The repository's layout.
    pub fn paths(&self) -> &RepoPaths {
        &self.paths
    }

    /// The object directory, `objects/` (staged files in `tmp/`).
    pub fn objects(&self) -> &ObjectDir {
        &self.objects
    }

    /// The metadata read from `meta.json`.
    pub fn meta(&self) -> &RepoMeta {
        &self.meta
    }

    /// Take the repository lock. Writers composing several steps (objects, then an image, then
    /// a ref) hold a shared lock across all of them so gc cannot run in between.
    pub fn lock(&self, kind: LockKind) -> Result<RepoLock, StoreError> {
        RepoLock::acquire(&self.dir(LOCK_FILE), kind)
    }

    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.paths.root().join(name)
    }
}

fn ensure_dirs(paths: &RepoPaths) -> Result<(), StoreError> {
    for name in [OBJECTS_DIR, IMAGES_DIR, REFS_DIR, TMP_DIR] {
        let dir = paths.root().join(name);
        fs::create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
    }
    Ok(())
}
