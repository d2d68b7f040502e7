//! [`Repository`]: an open repository, its layout, metadata and object directory. The
//! operations on it live in the sibling modules (`images`, `refs`, `gc`, `fsck`, ...), each
//! an `impl Repository` block; this module needs none of them.

use std::fs;
use std::io;
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
    /// A complete repository is only read (`meta.json`, then `objects/` and `tmp/` opened):
    /// nothing is created, so a read-only verify makes no `mkdir`. `images/` and `refs/` need
    /// not exist (the first image or ref creates its directory); should `objects/` or `tmp/`
    /// be missing (removed by hand), the four directories are made again, as every open did
    /// before.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let paths = RepoPaths::new(path.as_ref());
        let meta = meta::read(paths.root())?;
        let objects =
            match ObjectDir::open_with_staging(&paths.objects_dir(), &paths.tmp_dir(), meta.verity)
            {
                Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    ensure_dirs(&paths)?;
                    ObjectDir::open_with_staging(
                        &paths.objects_dir(),
                        &paths.tmp_dir(),
                        meta.verity,
                    )?
                }
                other => other?,
            };
        Ok(Repository {
            paths,
            meta,
            objects,
        })
    }

    /// Open the repository at `path`, creating it (directories and `meta.json`) if needed.
    /// A new repository records whether the file system can enforce fs-verity. An existing
    /// one is opened as [`Repository::open`] does, with no `mkdir` or stat first.
    pub fn create_or_open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = path.as_ref().to_path_buf();
        match Self::open(&root) {
            Err(StoreError::NotARepository { source, .. })
                if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        fs::create_dir_all(&root).map_err(StoreError::io("create repository directory", &root))?;
        if !root.join(META_FILE).exists() {
            let verity = verity::detect(&root)?;
            let fresh = RepoMeta::new(verity);
            meta::write_if_absent(&root, &fresh)?;
        }
        ensure_dirs(&RepoPaths::new(&root))?;
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
